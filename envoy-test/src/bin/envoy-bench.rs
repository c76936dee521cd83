//! Side by side in one run: the h2fw filter against Envoy's own TCP
//! tunnelling over HTTP/2 CONNECT (`tcp_proxy` with `tunneling_config`),
//! both through the same Envoy B and echo server. Prints a table:
//! throughput of one 1 GiB round trip, and memory with 1,000 idle tunnels
//! (Envoy A's `server.memory_allocated`, the VM's linear memory).
//!
//! `cargo run --release -p h2fw-envoy-test --bin envoy-bench [-- MiB]`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use h2fw_envoy_test::configs::{self, ECHO_AUTHORITY, FilterListener};
use h2fw_envoy_test::{EchoServer, Envoy, FILTER, connect, round_trip};

const IDLE_TUNNELS: usize = 1000;

fn main() {
    let mib: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let echo = EchoServer::start();
    let b = Envoy::start("bench-b", &configs::terminator(echo.addr, false));
    let listeners = [FilterListener {
        name: "h2fw",
        plugin: format!("authority={ECHO_AUTHORITY}"),
        upstream: b.listener("connect"),
    }];
    let filter = Envoy::start("bench-filter", &configs::filter_proxy(FILTER, "", &listeners));
    let native = Envoy::start("bench-native", &configs::native_proxy(b.listener("connect")));

    let mut rows = Vec::new();
    for (name, envoy, listener) in [("h2fw filter", &filter, "h2fw"), ("native tunneling_config", &native, "native")] {
        let addr = envoy.listener(listener);
        let throughput = transfer(addr, mib << 20);
        let (before, after, streams) = idle(envoy, addr);
        let vm = envoy.stat("wasmcustom.h2fw.vm.linear_memory_bytes");
        drop(streams);
        rows.push((name, throughput, before, after, vm));
    }
    println!(
        "| setup | {mib} MiB round trip, MiB/s each way | server.memory_allocated idle → {IDLE_TUNNELS} idle tunnels | per idle tunnel | VM linear memory |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, throughput, before, after, vm) in &rows {
        let per = (*after as f64 - *before as f64) / IDLE_TUNNELS as f64;
        let vm = vm.map_or("—".to_string(), |v| format!("{:.1} MiB", v as f64 / 1048576.0));
        println!(
            "| {name} | {throughput:.0} | {:.1} MiB → {:.1} MiB | {per:.0} B | {vm} |",
            *before as f64 / 1048576.0,
            *after as f64 / 1048576.0
        );
    }
    let ratio = rows[0].1 / rows[1].1;
    println!("\nthroughput h2fw / native: {ratio:.2}x (target ≥ 0.5x)");
}

/// MiB/s of one round trip of `len` bytes each way.
fn transfer(addr: SocketAddr, len: u64) -> f64 {
    let stream = connect(addr);
    let start = Instant::now();
    round_trip(&stream, len, Duration::from_secs(120)).expect("the round trip");
    len as f64 / 1048576.0 / start.elapsed().as_secs_f64()
}

/// `server.memory_allocated` before and after opening the idle tunnels
/// (each carried one byte each way, so it is established), and the tunnels.
fn idle(envoy: &Envoy, addr: SocketAddr) -> (u64, u64, Vec<TcpStream>) {
    std::thread::sleep(Duration::from_millis(500));
    let before = envoy.stat("server.memory_allocated").expect("server.memory_allocated");
    let mut streams: Vec<TcpStream> = (0..IDLE_TUNNELS).map(|_| connect(addr)).collect();
    for stream in &mut streams {
        stream.write_all(b"!").expect("write");
    }
    for stream in &mut streams {
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let mut byte = [0];
        stream.read_exact(&mut byte).expect("echo of the idle tunnel");
    }
    std::thread::sleep(Duration::from_millis(6000)); // stats refresh (5 s flush)
    let after = envoy.stat("server.memory_allocated").expect("server.memory_allocated");
    (before, after, streams)
}
