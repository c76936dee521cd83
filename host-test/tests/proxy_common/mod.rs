//! Helpers shared by the proxy tests: an echo backend and a proxy on
//! loopback, and one request's exchange through them.
#![allow(dead_code)] // each test binary uses its own part

use std::future::Future;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2fw_host::proxy::client::{self, BodySender, ChannelBody, Digest};
use h2fw_host::proxy::echo::{EchoServer, Seen};
use h2fw_host::proxy::nghttp2::ChildGuard;
use h2fw_host::proxy::{Proxy, ProxyConfig, ProxyStats};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;

/// Any free loopback port.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A component proxy with `connections` upstream connections in front of `upstream`.
pub fn proxy(upstream: SocketAddr, connections: usize) -> Proxy {
    Proxy::start(ProxyConfig { connections, ..ProxyConfig::new(loopback(), upstream) }).expect("proxy starts")
}

/// Starts `h2fw` with `args` (a subcommand that prints `listening on
/// ADDR` first), standard error as `stderr` says; returns it and that address.
pub fn announced(args: &[&str], stderr: Stdio) -> (ChildGuard, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_h2fw"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|error| panic!("h2fw {args:?}: {error}"));
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufReader::new(stdout).read_line(&mut line).expect("its address");
    let address = line.trim().strip_prefix("listening on ").and_then(|address| address.parse().ok());
    (ChildGuard(child), address.unwrap_or_else(|| panic!("h2fw {args:?} said {line:?}")))
}

/// An echo backend and a component proxy in front of it.
pub fn echo_and_proxy(connections: usize) -> (EchoServer, Proxy) {
    let echo = EchoServer::start(loopback()).expect("echo backend starts");
    let proxy = proxy(echo.address(), connections);
    (echo, proxy)
}

/// `future`, or a panic naming `what` after `limit`.
pub async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future).await.unwrap_or_else(|_| panic!("{what}: no result within {limit:?}"))
}

/// Polls `check` (every 20 ms, up to `limit`) until it holds.
pub async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not so within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The proxy's statistics, once they satisfy `check` (up to `limit`).
pub async fn stats_when(proxy: &Proxy, limit: Duration, what: &str, check: impl Fn(&ProxyStats) -> bool) -> ProxyStats {
    let deadline = Instant::now() + limit;
    loop {
        let stats = proxy.stats().await.expect("stats");
        if check(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "{what}: not so within {limit:?}; last {stats}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the backend has seen `path` end, and returns how.
pub async fn seen(echo: &EchoServer, path: &str) -> Seen {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(seen) = echo.seen().into_iter().find(|seen| seen.path == path) {
            return seen;
        }
        assert!(Instant::now() < deadline, "the backend never saw {path} end; it saw {:?}", echo.seen());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `clients` client connections to `proxy`.
pub async fn clients(proxy: &Proxy, clients: usize) -> Vec<SendRequest<ChannelBody>> {
    let mut senders = Vec::with_capacity(clients);
    for _ in 0..clients {
        senders.push(client::connect(proxy.address()).await.expect("client connects"));
    }
    senders
}

/// A request to `path` whose body is fed through the returned sender.
pub async fn open(
    sender: &mut SendRequest<ChannelBody>,
    path: &str,
    headers: HeaderMap,
) -> (BodySender, impl Future<Output = Result<http::Response<Incoming>, hyper::Error>> + use<>) {
    let (body, request_body) = client::channel();
    let mut request = Request::builder().method(Method::POST).uri(format!("http://127.0.0.1{path}"));
    *request.headers_mut().expect("builder") = headers;
    let request = request.body(request_body).expect("request");
    sender.ready().await.expect("connection ready");
    (body, sender.send_request(request))
}

/// What came back for one request.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub digest: Digest,
    pub trailers: Option<HeaderMap>,
}

/// Sends `chunks` then `trailers` (or END_STREAM) to `path`, reading the
/// response as it comes; returns it, or the error the response ended with.
pub async fn exchange(
    sender: &mut SendRequest<ChannelBody>,
    path: &str,
    headers: HeaderMap,
    chunks: Vec<Bytes>,
    trailers: Option<HeaderMap>,
) -> Result<Answer, hyper::Error> {
    let (body, response) = open(sender, path, headers).await;
    let feed = tokio::spawn(async move {
        for chunk in chunks {
            if !body.data(chunk).await {
                return;
            }
        }
        if let Some(trailers) = trailers {
            body.trailers(trailers).await;
        }
    });
    let response = response.await?;
    let status = response.status();
    let mut body = response.into_body();
    let mut digest = Digest::default();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            digest.update(data);
        }
        if let Ok(map) = frame.into_trailers() {
            trailers = Some(map);
        }
    }
    let _ = feed.await;
    Ok(Answer { status, digest, trailers })
}

/// Reads `body` until `len` more data bytes came, and returns them.
pub async fn read_exactly(body: &mut Incoming, len: usize) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        match body.frame().await {
            None => return Err(format!("the body ended after {} of {len} bytes", bytes.len())),
            Some(Err(error)) => return Err(format!("the body failed after {} of {len} bytes: {error}", bytes.len())),
            Some(Ok(frame)) => bytes.extend_from_slice(frame.data_ref().map_or(&[][..], |data| &data[..])),
        }
    }
    Ok(bytes)
}

/// The HTTP/2 error code a hyper error carries.
pub fn reason(error: &hyper::Error) -> Option<h2::Reason> {
    h2fw_host::proxy::echo::h2_reason(error)
}
