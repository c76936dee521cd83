//! The h2fw filter in real Envoy processes: client → Envoy A (h2fw filter,
//! tcp_proxy) → Envoy B (stock HTTP/2 CONNECT terminator, Envoy's own codec)
//! → echo server. Everything on 127.0.0.1; every Envoy is killed on drop.

use std::net::TcpStream;
use std::time::Duration;

use h2fw_envoy_test::configs::{self, ECHO_AUTHORITY, FilterListener, REFUSED_AUTHORITY};
use h2fw_envoy_test::{BadUpstream, CLOSE_MARK, EchoServer, Envoy, FILTER, closed_by_peer, connect, reset, round_trip};

const IO_TIMEOUT: Duration = Duration::from_secs(60);
const LOG_TIMEOUT: Duration = Duration::from_secs(10);

/// The whole topology; dropped in reverse order.
struct Topology {
    a: Envoy,
    _b: Envoy,
    _bad: BadUpstream,
    _echo: EchoServer,
}

impl Topology {
    /// Envoy B with 64 KiB windows; Envoy A with listeners `echo` (to B,
    /// `echo.test:443`), `refused` (to B, `refused.test:443`), `goaway` (to
    /// B's listener that ends connections after 1 s) and `bad` (to an
    /// upstream that sends a malformed frame), all in one VM with `vm`.
    fn start(vm: &str, plugin: &str) -> Topology {
        let echo = EchoServer::start();
        let bad = BadUpstream::start();
        let b = Envoy::start("b", &configs::terminator(echo.addr, true));
        let listener = |name, authority: &str, upstream| FilterListener {
            name,
            plugin: format!("authority={authority} {plugin}"),
            upstream,
        };
        let listeners = [
            listener("echo", ECHO_AUTHORITY, b.listener("connect")),
            listener("refused", REFUSED_AUTHORITY, b.listener("connect")),
            listener("goaway", ECHO_AUTHORITY, b.listener("goaway")),
            listener("bad", ECHO_AUTHORITY, bad.addr),
        ];
        let a = Envoy::start("a", &configs::filter_proxy(FILTER, vm, &listeners));
        Topology { a, _b: b, _bad: bad, _echo: echo }
    }

    fn connect(&self, listener: &str) -> TcpStream {
        connect(self.a.listener(listener))
    }

    /// The filter's log line for the tunnel of `stream`'s client, which
    /// must say `reason`.
    fn closed_line(&self, stream: &TcpStream, reason: &str) -> String {
        self.closed_line_of(stream.local_addr().expect("local address"), reason)
    }

    fn closed_line_of(&self, client: std::net::SocketAddr, reason: &str) -> String {
        let client = format!("client {client})");
        self.a.wait_for_log(&[&client, "closed: ", reason], LOG_TIMEOUT).unwrap_or_else(|| {
            let ours: Vec<_> = self.a.log().lines().filter(|l| l.contains(&client)).map(str::to_string).collect();
            panic!("no log line for {client} closing with {reason:?}; its lines: {ours:#?}")
        })
    }

    /// No VM failure in Envoy A's log.
    fn assert_no_trap(&self) {
        let log = self.a.log();
        for bad in ["Function: proxy_on", "wasm trap", "panicked at", "Wasm VM failed", "unreachable"] {
            assert!(!log.contains(bad), "Envoy A's log shows a VM failure ({bad:?})");
        }
    }

    fn stat(&self, name: &str) -> u64 {
        self.a.stat(name).unwrap_or_else(|| panic!("no statistic {name}"))
    }
}

#[test]
fn round_trips_of_1b_64kib_64mib_through_one_tunnel() {
    let topology = Topology::start("", "");
    let stream = topology.connect("echo");
    for len in [1, 64 << 10, 64 << 20] {
        round_trip(&stream, len, IO_TIMEOUT).unwrap_or_else(|e| panic!("{len} bytes: {e}"));
    }
    drop(stream);
    // 64 MiB each way through 64 KiB windows: the upstream's WINDOW_UPDATEs
    // were applied, and ours were sent.
    let received = topology.stat("wasmcustom.h2fw.frames.window_update_received");
    let sent = topology.stat("wasmcustom.h2fw.frames.window_update_sent");
    assert!(received >= (64 << 20) / (64 << 10), "{received} WINDOW_UPDATEs received");
    assert!(sent >= (64 << 20) / (4 << 20), "{sent} WINDOW_UPDATEs sent");
    assert_eq!(topology.stat("wasmcustom.h2fw.tunnels.opened"), 1);
    topology.assert_no_trap();
}

#[test]
fn a_thousand_concurrent_tunnels_each_intact() {
    const TUNNELS: usize = 1000;
    let topology = Topology::start("", "");
    let addr = topology.a.listener("echo");
    let streams: Vec<TcpStream> = (0..TUNNELS).map(|_| connect(addr)).collect();
    // Every tunnel open at once, then a small exchange on each.
    for (i, stream) in streams.iter().enumerate() {
        let message = format!("tunnel {i} says hello");
        let mut writer = stream;
        std::io::Write::write_all(&mut writer, message.as_bytes()).expect("write");
    }
    for (i, stream) in streams.iter().enumerate() {
        let message = format!("tunnel {i} says hello");
        let mut got = vec![0; message.len()];
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let mut reader = stream;
        std::io::Read::read_exact(&mut reader, &mut got).unwrap_or_else(|e| panic!("tunnel {i}: {e}"));
        assert_eq!(got, message.as_bytes(), "tunnel {i}");
    }
    std::thread::sleep(Duration::from_millis(300)); // a tick refreshes the gauges
    let gauge = |name: &str| topology.stat(&format!("wasmcustom.h2fw.{name}"));
    assert_eq!(gauge("tunnels.active"), TUNNELS as u64);
    assert_eq!(gauge("tunnels.opened"), TUNNELS as u64);
    let memory = gauge("vm.linear_memory_bytes");
    println!(
        "{TUNNELS} open tunnels: VM linear memory {memory} B, heap {} B (peak {} B); pool leased {} B, idle {} B, \
         peak leased {} B, peak total {} B, connections {}",
        gauge("vm.heap_bytes"),
        gauge("vm.peak_heap_bytes"),
        gauge("pool.leased_bytes"),
        gauge("pool.idle_bytes"),
        gauge("pool.peak_leased_bytes"),
        gauge("pool.peak_total_bytes"),
        gauge("pool.connections"),
    );
    assert_eq!(gauge("pool.connections"), TUNNELS as u64, "one writer per tunnel, one pool");
    // Idle tunnels hold no pooled buffer beyond the pool's idle cache.
    assert_eq!(gauge("pool.leased_bytes"), 0, "idle tunnels lease nothing");
    drop(streams);
    topology.assert_no_trap();
}

#[test]
fn faults_close_only_their_tunnel_with_the_reason_logged() {
    let topology = Topology::start("", "");
    let healthy: Vec<TcpStream> = (0..4).map(|_| topology.connect("echo")).collect();
    let check_healthy = |when: &str| {
        for stream in &healthy {
            round_trip(stream, 4096, IO_TIMEOUT).unwrap_or_else(|e| panic!("healthy tunnel after {when}: {e}"));
        }
    };
    check_healthy("start");

    // The echo server closes mid-stream.
    let mut stream = topology.connect("echo");
    round_trip(&stream, 1000, IO_TIMEOUT).expect("before the close");
    std::io::Write::write_all(&mut stream, CLOSE_MARK).expect("write");
    assert!(closed_by_peer(&mut stream, IO_TIMEOUT), "client connection closed after the echo server closed");
    topology.closed_line(&stream, "upstream ended the tunnel (END_STREAM)");
    check_healthy("the echo server closed one connection");

    // Envoy B refuses the tunnel with 403.
    let mut stream = topology.connect("refused");
    std::io::Write::write_all(&mut stream, b"let me in").expect("write");
    assert!(closed_by_peer(&mut stream, IO_TIMEOUT), "client connection closed after the 403");
    topology.closed_line(&stream, "upstream refused the tunnel with status 403");
    check_healthy("a refused tunnel");

    // Envoy B sends GOAWAY (its connection reached max_connection_duration).
    let mut stream = topology.connect("goaway");
    round_trip(&stream, 1000, IO_TIMEOUT).expect("before the GOAWAY");
    assert!(closed_by_peer(&mut stream, IO_TIMEOUT), "client connection closed after the GOAWAY");
    topology.closed_line(&stream, "upstream sent GOAWAY (NO_ERROR");
    check_healthy("a GOAWAY");

    // The client resets its connection.
    let stream = topology.connect("echo");
    round_trip(&stream, 1000, IO_TIMEOUT).expect("before the reset");
    let client = stream.local_addr().expect("local address");
    reset(stream);
    topology.closed_line_of(client, "client closed the connection");
    check_healthy("a client reset");

    // The upstream sends a malformed frame.
    let mut stream = topology.connect("bad");
    std::io::Write::write_all(&mut stream, b"hello").expect("write");
    assert!(closed_by_peer(&mut stream, IO_TIMEOUT), "client connection closed after the malformed frame");
    topology.closed_line(&stream, "malformed upstream frame: SETTINGS frame has length 5, a multiple of 6");
    check_healthy("a malformed frame");

    assert_eq!(topology.stat("wasmcustom.h2fw.tunnels.closed.upstream_end_stream"), 1);
    assert_eq!(topology.stat("wasmcustom.h2fw.tunnels.closed.refused"), 1);
    assert_eq!(topology.stat("wasmcustom.h2fw.tunnels.closed.upstream_goaway"), 1);
    assert_eq!(topology.stat("wasmcustom.h2fw.tunnels.closed.protocol_error"), 1);
    topology.assert_no_trap();
}

#[test]
fn a_tight_pool_budget_refuses_and_closes_tunnels_without_a_trap() {
    // 512 KiB for the whole VM; clients that send 1 MiB each and never read,
    // so their bytes pile up behind B's 64 KiB windows.
    const TUNNELS: usize = 8;
    let topology = Topology::start("pool_budget=524288 pool_idle_bytes=65536", "");
    let streams: Vec<TcpStream> = (0..TUNNELS).map(|_| topology.connect("echo")).collect();
    let writers: Vec<_> = streams
        .iter()
        .map(|s| {
            let mut s = s.try_clone().expect("clone");
            std::thread::spawn(move || {
                let _ = s.set_write_timeout(Some(Duration::from_secs(20)));
                let chunk = vec![7u8; 64 << 10];
                for _ in 0..16 {
                    if std::io::Write::write_all(&mut s, &chunk).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    let refused = topology
        .a
        .wait_for_log(&["closed: ", "pool budget exceeded"], Duration::from_secs(30))
        .expect("a tunnel closed with the typed pool refusal");
    println!("{refused}");
    for (writer, mut stream) in writers.into_iter().zip(streams) {
        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
        drop(stream.shutdown(std::net::Shutdown::Both));
        let _ = writer.join();
        let _ = closed_by_peer(&mut stream, Duration::from_millis(100));
    }
    assert!(topology.stat("wasmcustom.h2fw.tunnels.closed.memory") >= 1);
    // The VM is alive: a new tunnel works once the others are gone.
    std::thread::sleep(Duration::from_millis(500));
    let fresh = topology.connect("echo");
    round_trip(&fresh, 100 << 10, IO_TIMEOUT).expect("a fresh tunnel after the refusals");
    topology.assert_no_trap();
}
