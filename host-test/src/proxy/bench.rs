//! `h2fw proxy-bench`: the component proxy beside the same proxy with
//! hyper's HTTP/2 client upstream, in one run, as a printed table.
//!
//! - Throughput: `h2load` through each proxy to `nghttpd`, requests per
//!   second, with small requests and with 64 KiB request bodies (the bytes
//!   the upstream writer carries); runs alternate between the two proxies
//!   and each reports its median.
//! - Memory: long-lived streams held open through each proxy to the echo
//!   backend, each having echoed one small message; what the upstream
//!   writer holds then. For the component, its instance's linear memory;
//!   for hyper, the heap its client (hyper and `h2`) allocated and still
//!   holds, counted by [`super::heap::CountingAllocator`] (so the `h2fw`
//!   binary must run it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::BodyExt as _;

use super::client::{self, BodySender};
use super::echo::EchoServer;
use super::nghttp2::{self, Nghttpd};
use super::{Proxy, ProxyConfig, ProxyStats, UpstreamKind, heap, mib};

/// Options of `h2fw proxy-bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyBenchArgs {
    /// Upstream connections of each proxy.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// h2load clients (`-c`).
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// h2load streams per client (`-m`).
    #[arg(long, default_value_t = 32)]
    pub streams: usize,
    /// Requests per small-request run (`-n`).
    #[arg(long, default_value_t = 100_000)]
    pub requests: usize,
    /// Requests per 64 KiB-upload run.
    #[arg(long, default_value_t = 20_000)]
    pub uploads: usize,
    /// Runs per proxy and workload; each proxy reports its median.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Long-lived streams held open for the memory row (0: skip it).
    #[arg(long, default_value_t = 100_000)]
    pub long_lived: usize,
    /// Client connections the long-lived streams are spread over.
    #[arg(long, default_value_t = 100)]
    pub long_lived_clients: usize,
}

/// Body bytes of one upload.
const UPLOAD: usize = 64 << 10;
/// Bytes of the message each long-lived stream echoes.
const MESSAGE: usize = 128;
/// Streams opened at once in the memory rows.
const WAVE: usize = 128;
/// Longest one h2load run may take.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Runs the benchmark and prints its table.
pub fn run(args: &ProxyBenchArgs) -> anyhow::Result<()> {
    let docroot = docroot()?;
    let nghttpd = Nghttpd::start(&docroot, &[])?;
    println!(
        "h2fw proxy-bench: h2load -c {} -m {} -t 1 through each proxy ({} upstream connections) to nghttpd --no-tls; median of {} runs",
        args.clients, args.streams, args.connections, args.runs
    );
    println!("{:<34} {:>14} {:>14} {:>7}  target ≥ 0.80", "workload", "component req/s", "hyper req/s", "ratio");
    let upload = docroot.join("upload.bin");
    let workloads = [
        ("GET, 100 B response", args.requests, None),
        ("POST 64 KiB body, 100 B response", args.uploads, Some(upload.as_path())),
    ];
    for (name, requests, data) in workloads {
        let mut rates = [Vec::new(), Vec::new()];
        for _ in 0..args.runs {
            for (index, kind) in [UpstreamKind::Component, UpstreamKind::Hyper].into_iter().enumerate() {
                let proxy = start(kind, nghttpd.address(), args.connections)?;
                let mut h2load_args: Vec<String> = ["-c", &args.clients.to_string(), "-m", &args.streams.to_string()]
                    .into_iter()
                    .map(String::from)
                    .collect();
                h2load_args.extend(["-t".into(), "1".into(), "-n".into(), requests.to_string()]);
                if let Some(data) = data {
                    h2load_args.extend(["-d".into(), data.display().to_string()]);
                }
                h2load_args.push(format!("http://{}/small.txt", proxy.address()));
                let report = nghttp2::h2load(&h2load_args, RUN_LIMIT)?;
                ensure!(report.all_succeeded(), "{name} through the {} proxy:\n{}", kind.name(), report.output);
                rates[index].push(report.requests_per_second);
            }
        }
        let (component, hyper) = (median(&mut rates[0]), median(&mut rates[1]));
        let ratio = component / hyper;
        let verdict = if ratio >= 0.8 { "met" } else { "missed" };
        println!("{name:<34} {component:>14.0} {hyper:>14.0} {ratio:>7.2}  {verdict}");
    }
    if args.long_lived > 0 {
        memory(args)?;
    }
    let _ = std::fs::remove_dir_all(&docroot);
    Ok(())
}

fn start(kind: UpstreamKind, upstream: SocketAddr, connections: usize) -> anyhow::Result<Proxy> {
    let listen = SocketAddr::from(([127, 0, 0, 1], 0));
    Ok(Proxy::start(ProxyConfig { connections, kind, ..ProxyConfig::new(listen, upstream) })?)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A fresh document root: a 100-byte `small.txt`, and the upload body.
fn docroot() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("h2fw-proxy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("small.txt"), [b'x'; 100])?;
    let upload: Vec<u8> = (0..UPLOAD).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(dir.join("upload.bin"), upload)?;
    Ok(dir)
}

/// The memory rows: long-lived streams through each proxy.
fn memory(args: &ProxyBenchArgs) -> anyhow::Result<()> {
    let Some(_) = heap::upstream_bytes() else {
        bail!("the memory rows need the counting allocator: run the `h2fw` binary");
    };
    let echo = EchoServer::start(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut rows = Vec::new();
    for kind in [UpstreamKind::Component, UpstreamKind::Hyper] {
        let proxy = start(kind, echo.address(), args.connections)?;
        let held = runtime.block_on(hold_streams(&proxy, args.long_lived, args.long_lived_clients));
        let row =
            held.with_context(|| format!("{} long-lived streams through the {} proxy", args.long_lived, kind.name()))?;
        rows.push((kind, row));
    }
    let streams = args.long_lived as f64;
    println!();
    println!(
        "memory with {} long-lived streams open through each proxy ({} client connections, {} upstream), \
         each having echoed one {MESSAGE} B message",
        args.long_lived, args.long_lived_clients, args.connections
    );
    println!("{:<58} {:>12} {:>12}", "what the upstream side holds", "total", "per stream");
    let mut writer = [0.0; 2];
    for (index, (kind, (before, after))) in rows.iter().enumerate() {
        let heap = |stats: &ProxyStats| stats.upstream_heap.unwrap_or(0) as f64;
        let (label, bytes) = match (kind, &after.upstream.writer, &before.upstream.writer) {
            (UpstreamKind::Component, Some(now), Some(then)) => (
                "component: linear memory of the instance",
                (now.linear_memory.current - then.linear_memory.current) as f64,
            ),
            _ => ("hyper: h2 client heap (counting allocator)", heap(after) - heap(before)),
        };
        writer[index] = bytes;
        println!("{label:<58} {:>12} {:>10.0} B", mib(bytes as usize), bytes / streams);
        if *kind == UpstreamKind::Component {
            let host = heap(after) - heap(before);
            println!(
                "{:<58} {:>12} {:>10.0} B",
                "component: host heap of its upstream side (not the writer)",
                mib(host as usize),
                host / streams
            );
        }
    }
    let ratio = writer[0] / writer[1];
    let verdict = if ratio <= 1.0 / 3.0 { "met" } else { "missed" };
    println!("writer memory, component / h2: {ratio:.2} (target ≤ 0.33: {verdict})");
    Ok(())
}

/// Opens `streams` long-lived streams through `proxy` over `clients`
/// connections, echoes one message on each, and returns the proxy's
/// figures before the first and with all of them open; then ends them.
async fn hold_streams(proxy: &Proxy, streams: usize, clients: usize) -> anyhow::Result<(ProxyStats, ProxyStats)> {
    let before = proxy.stats().await?;
    let mut senders = Vec::with_capacity(clients);
    for _ in 0..clients {
        senders.push(client::connect(proxy.address()).await?);
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let (release, released) = tokio::sync::watch::channel(false);
    let echoed_streams = Arc::new(AtomicUsize::new(0));
    for index in 0..streams {
        let mut sender = senders[index % clients].clone();
        let mut released = released.clone();
        let done = echoed_streams.clone();
        tasks.spawn(async move {
            let (body, request_body) = client::channel();
            let request = Request::builder()
                .method(Method::POST)
                .uri(format!("http://127.0.0.1/stream/{index}"))
                .body(request_body)
                .context("request")?;
            sender.ready().await?;
            let response = sender.send_request(request);
            let message = Bytes::from(vec![(index % 251) as u8; MESSAGE]);
            ensure!(body.data(message.clone()).await, "stream {index}: request gone");
            let mut response = response.await.with_context(|| format!("stream {index}: response head"))?.into_body();
            let mut echoed = 0;
            while echoed < MESSAGE {
                let frame = response.frame().await.context("response ended early")?;
                echoed += frame.with_context(|| format!("stream {index}: echo"))?.data_ref().map_or(0, Bytes::len);
            }
            done.fetch_add(1, Ordering::Relaxed);
            // Hold the stream open until every stream is.
            let _ = released.wait_for(|released| *released).await;
            end(body, &mut response).await.with_context(|| format!("stream {index}: end"))
        });
        // Open in waves: h2 0.4.20 resets a connection's streams when more
        // than a few hundred small DATA frames wait unread on it (its
        // "excessive load" budget), and a burst of echoes would be that.
        if (index + 1) % WAVE == 0 {
            let deadline = Instant::now() + Duration::from_secs(30);
            while echoed_streams.load(Ordering::Relaxed) <= index {
                ensure!(Instant::now() < deadline, "stream {index} not echoed in time");
                if let Some(result) = tasks.try_join_next() {
                    result??;
                    bail!("a stream ended before the others were open");
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    // Wait until every stream echoed its message.
    let deadline = started + Duration::from_secs(600);
    while echoed_streams.load(Ordering::Relaxed) < streams {
        let echoed = echoed_streams.load(Ordering::Relaxed);
        ensure!(Instant::now() < deadline, "only {echoed} of {streams} streams echoed in time");
        if let Some(result) = tasks.try_join_next() {
            result??;
            bail!("a stream ended before the others were open");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = proxy.stats().await?;
    let _ = release.send(true);
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok((before, after))
}

/// Ends a request body and reads its response to the end.
async fn end(body: BodySender, response: &mut hyper::body::Incoming) -> anyhow::Result<()> {
    drop(body);
    while let Some(frame) = response.frame().await {
        frame?;
    }
    Ok(())
}
