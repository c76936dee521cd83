//! Side by side in one run: the h2fw filter against Envoy's own TCP
//! tunnelling over HTTP/2 CONNECT (`tcp_proxy` with `tunneling_config`),
//! both through the same Envoy B and echo server, with a plain `tcp_proxy`
//! straight to the echo server (no tunnel) as the floor. Prints a table:
//! throughput of one 1 GiB round trip, and memory per idle tunnel with
//! 1,000 open: Envoy A's `server.memory_allocated` (its C++ heap, which
//! does not hold the VM's linear memory) and, for the filter, the VM's
//! heap (bytes allocated in it) and linear memory growth.
//!
//! `cargo run --release -p h2fw-envoy-test --bin envoy-bench [-- MiB]`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use h2fw_envoy_test::configs::{self, ECHO_AUTHORITY, FilterListener};
use h2fw_envoy_test::{EchoServer, Envoy, FILTER, connect, round_trip};

const IDLE_TUNNELS: usize = 1000;
const KB: f64 = 1000.0;
const MIB: f64 = 1_048_576.0;

/// Memory readings of one Envoy.
#[derive(Clone, Copy)]
struct Memory {
    /// `server.memory_allocated`.
    envoy: u64,
    /// The filter VM's heap, linear memory and peak heap, where there is a VM.
    vm: Option<(u64, u64, u64)>,
}

impl Memory {
    fn read(envoy: &Envoy) -> Memory {
        let gauge = |name: &str| envoy.stat(&format!("wasmcustom.h2fw.vm.{name}"));
        Memory {
            envoy: envoy.stat("server.memory_allocated").expect("server.memory_allocated"),
            vm: match (gauge("heap_bytes"), gauge("linear_memory_bytes"), gauge("peak_heap_bytes")) {
                (Some(heap), Some(linear), Some(peak)) => Some((heap, linear, peak)),
                _ => None,
            },
        }
    }
}

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
    let plain = Envoy::start("bench-plain", &configs::plain_proxy(echo.addr));

    let setups = [
        ("h2fw filter", &filter, "h2fw"),
        ("native tunneling_config", &native, "native"),
        ("plain tcp_proxy, no tunnel (floor)", &plain, "plain"),
    ];
    let mut rows = Vec::new();
    for (name, envoy, listener) in setups {
        let addr = envoy.listener(listener);
        let throughput = transfer(addr, mib << 20);
        let (before, after, streams) = idle(envoy, addr);
        drop(streams);
        rows.push((name, throughput, before, after));
    }
    println!(
        "| setup | {mib} MiB round trip, MiB/s each way | server.memory_allocated, idle → {IDLE_TUNNELS} idle tunnels | Envoy heap per idle tunnel | VM heap per idle tunnel | VM linear memory | total per idle tunnel |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let per = |before: u64, after: u64| (after as f64 - before as f64) / IDLE_TUNNELS as f64;
    let mut totals = Vec::new();
    for (name, throughput, before, after) in &rows {
        let envoy = per(before.envoy, after.envoy);
        let (vm_heap, vm_linear, total) = match (before.vm, after.vm) {
            (Some((heap0, linear0, _)), Some((heap1, linear1, peak))) => {
                // Linear memory never shrinks; a tunnel's cost in it is what
                // it allocates (the heap), which growth only rounds up.
                let heap = per(heap0, heap1);
                let linear = format!(
                    "{:.1} → {:.1} MiB (heap peak {:.1} MiB)",
                    linear0 as f64 / MIB,
                    linear1 as f64 / MIB,
                    peak as f64 / MIB
                );
                (format!("{:.2} KB", heap / KB), linear, envoy + heap)
            }
            _ => ("—".into(), "—".into(), envoy),
        };
        totals.push(total);
        println!(
            "| {name} | {throughput:.0} | {:.1} MiB → {:.1} MiB | {:.2} KB | {vm_heap} | {vm_linear} | {:.2} KB |",
            before.envoy as f64 / MIB,
            after.envoy as f64 / MIB,
            envoy / KB,
            total / KB,
        );
    }
    println!("\nthroughput h2fw / native: {:.2}x (target ≥ 0.5x)", rows[0].1 / rows[1].1);
    println!("memory per idle tunnel h2fw / native: {:.2}x (target ≤ 1x)", totals[0] / totals[1]);
    println!("Envoy's own part of the filter's setup (plain tcp_proxy) / native: {:.2}x", totals[2] / totals[1]);
}

/// MiB/s of one round trip of `len` bytes each way.
fn transfer(addr: SocketAddr, len: u64) -> f64 {
    let stream = connect(addr);
    let start = Instant::now();
    round_trip(&stream, len, Duration::from_secs(120)).expect("the round trip");
    len as f64 / MIB / start.elapsed().as_secs_f64()
}

/// Memory before and after opening the idle tunnels (each carried one
/// byte each way, so it is established), and the tunnels.
fn idle(envoy: &Envoy, addr: SocketAddr) -> (Memory, Memory, Vec<TcpStream>) {
    let settle = Duration::from_millis(6000); // stats refresh (5 s flush)
    std::thread::sleep(settle);
    let before = Memory::read(envoy);
    let mut streams: Vec<TcpStream> = (0..IDLE_TUNNELS).map(|_| connect(addr)).collect();
    for stream in &mut streams {
        stream.write_all(b"!").expect("write");
    }
    for stream in &mut streams {
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let mut byte = [0];
        stream.read_exact(&mut byte).expect("echo of the idle tunnel");
    }
    std::thread::sleep(settle);
    (before, Memory::read(envoy), streams)
}
