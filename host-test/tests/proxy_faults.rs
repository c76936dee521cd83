//! Faults on one stream or one connection reach only the streams they
//! touch: a client cancelling mid-body, the backend resetting a stream, the
//! backend closing a connection with GOAWAY, and the backend killed and
//! restarted. Each time the proxy stays up and the other streams carry on.

mod proxy_common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use h2fw_host::proxy::Proxy;
use h2fw_host::proxy::client::{BodySender, ChannelBody};
use h2fw_host::proxy::echo::Outcome;
use h2fw_host::proxy::nghttp2::ChildGuard;
use http::{HeaderMap, StatusCode};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use proxy_common::*;

const LIMIT: Duration = Duration::from_secs(20);

/// A stream held open: its request body's sender and its response body.
struct Held {
    path: String,
    body: BodySender,
    response: Incoming,
}

impl Held {
    /// Opens `path` and echoes one message on it.
    async fn open(sender: &mut SendRequest<ChannelBody>, path: &str) -> Held {
        let (body, response) = open(sender, path, HeaderMap::new()).await;
        let response = within(LIMIT, path, response).await.unwrap_or_else(|error| panic!("{path}: {error}"));
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let mut held = Held { path: path.into(), body, response: response.into_body() };
        held.echo("hello").await;
        held
    }

    /// Sends `text` and reads it back.
    async fn echo(&mut self, text: &str) {
        assert!(self.body.data(Bytes::from(text.to_string())).await, "{}: request gone", self.path);
        let echoed = within(LIMIT, &self.path, read_exactly(&mut self.response, text.len())).await;
        assert_eq!(echoed.unwrap_or_else(|error| panic!("{}: {error}", self.path)), text.as_bytes());
    }

    /// Ends the request and reads the response to its end.
    async fn finish(self) {
        drop(self.body);
        let rest = within(LIMIT, &self.path, http_body_util::BodyExt::collect(self.response)).await;
        assert!(rest.unwrap_or_else(|error| panic!("{}: {error}", self.path)).to_bytes().is_empty());
    }
}

/// One client connection to `proxy`, with a stream to `path` held open on it.
async fn beside(proxy: &Proxy, path: &str) -> (SendRequest<ChannelBody>, Held) {
    let mut sender = clients(proxy, 1).await.remove(0);
    let held = Held::open(&mut sender, path).await;
    (sender, held)
}

/// The client resets one stream mid-body: the backend sees that stream
/// cancelled (RST_STREAM CANCEL from the proxy), another stream on the same
/// client connection goes on, and the proxy forgets the cancelled one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cancelling_mid_body_cancels_only_its_stream() {
    let (echo, proxy) = echo_and_proxy(2);
    let (mut sender, mut other) = beside(&proxy, "/other").await;
    let sender = &mut sender;

    let mut cancelled = Held::open(sender, "/cancel-me").await;
    cancelled.echo(&"x".repeat(40_000)).await;
    cancelled.body.abort(h2::Reason::CANCEL).await;
    let outcome = seen(&echo, "/cancel-me").await.outcome;
    assert_eq!(outcome, Outcome::Reset { code: Some(u32::from(h2::Reason::CANCEL)) });

    other.echo("still here").await;
    other.finish().await;
    assert_eq!(seen(&echo, "/other").await.outcome, Outcome::Complete { bytes: 15 });
    stats_when(&proxy, LIMIT, "streams forgotten", |s| s.upstream.streams == 0 && s.in_flight == 0).await;
}

/// The backend resets one stream before its response head and another
/// after echoing some DATA: each client stream is reset with the backend's code
/// (ENHANCE_YOUR_CALM), and a stream beside them carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_reset_reaches_only_its_stream_with_its_code() {
    let (_echo, proxy) = echo_and_proxy(2);
    let (mut sender, mut other) = beside(&proxy, "/other").await;
    let sender = &mut sender;
    let calm = h2::Reason::ENHANCE_YOUR_CALM;

    let path = format!("/reset-before-head/{}", u32::from(calm));
    let before = exchange(sender, &path, HeaderMap::new(), vec![], None);
    let error = within(LIMIT, "reset before head", before).await.expect_err("the stream must be reset");
    assert_eq!(reason(&error), Some(calm), "{error}");

    let (body, response) = open(sender, &format!("/reset-after-data/{}", u32::from(calm)), HeaderMap::new()).await;
    assert!(body.data(Bytes::from_static(b"first")).await);
    let mut response = within(LIMIT, "reset after data", response).await.expect("head").into_body();
    assert_eq!(read_exactly(&mut response, 5).await.expect("the first DATA"), b"first");
    assert!(body.data(Bytes::from_static(b"second")).await);
    let error = within(LIMIT, "the reset", http_body_util::BodyExt::collect(response)).await;
    let error = error.expect_err("the stream must be reset after its first DATA");
    assert_eq!(reason(&error), Some(calm), "{error}");

    other.echo("still here").await;
    other.finish().await;
    stats_when(&proxy, LIMIT, "streams forgotten", |s| s.upstream.streams == 0).await;
}

/// The backend starts a graceful shutdown (GOAWAY) of the only upstream
/// connection while a long-lived stream runs on it: that stream finishes
/// there, new requests go over a new connection, and the old one closes
/// once drained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_goaway_drains_its_connection_while_a_new_one_carries_new_streams() {
    let (echo, proxy) = echo_and_proxy(1);
    let (mut sender, mut long) = beside(&proxy, "/long").await;
    let sender = &mut sender;

    let goaway =
        within(LIMIT, "/goaway", exchange(sender, "/goaway", HeaderMap::new(), vec![Bytes::from("bye")], None));
    assert_eq!(goaway.await.expect("/goaway").status, StatusCode::OK);
    let draining = stats_when(&proxy, LIMIT, "the connection draining", |s| s.upstream.draining == 1).await;
    assert_eq!(draining.upstream.opened, 1, "{draining}");

    let after = exchange(sender, "/after", HeaderMap::new(), vec![Bytes::from("new connection")], None);
    let after = within(LIMIT, "/after", after).await.expect("/after");
    assert_eq!(after.status, StatusCode::OK);
    let stats = proxy.stats().await.expect("stats");
    assert_eq!(stats.upstream.opened, 2, "a new connection for new streams: {stats}");

    long.echo("on the draining connection").await;
    long.finish().await;
    assert_eq!(seen(&echo, "/long").await.outcome, Outcome::Complete { bytes: 31 });
    let stats = stats_when(&proxy, LIMIT, "the drained connection closed", |s| {
        s.upstream.connections == 1 && s.upstream.draining == 0
    })
    .await;
    assert_eq!(stats.upstream.streams, 0, "{stats}");
}

/// The echo backend as a process of its own on `port` (0: any).
fn echo_process(port: u16) -> (ChildGuard, SocketAddr) {
    announced(&["echo-server", "--listen", &format!("127.0.0.1:{port}")], Stdio::inherit())
}

/// The backend process is killed (SIGKILL) while a stream runs through it:
/// that stream fails, requests meanwhile get 502, and once the backend is
/// back on the same port the same proxy carries new streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_and_restarted_fails_only_the_streams_it_carried() {
    let (mut backend, address) = echo_process(0);
    let proxy = proxy(address, 2);
    let mut senders = clients(&proxy, 2).await;
    let Held { body: _doomed_body, response: doomed, .. } = Held::open(&mut senders[0], "/doomed").await;

    backend.0.kill().expect("kill the backend");
    let _ = backend.0.wait();
    let failed = within(LIMIT, "the doomed stream", http_body_util::BodyExt::collect(doomed)).await;
    let error = failed.expect_err("a stream whose backend died must fail");
    assert_eq!(reason(&error), Some(h2::Reason::INTERNAL_ERROR), "{error}");

    let down = exchange(&mut senders[1], "/while-down", HeaderMap::new(), vec![], None);
    let down = within(LIMIT, "/while-down", down).await.expect("an answer while the backend is down");
    assert_eq!(down.status, StatusCode::BAD_GATEWAY);

    let (_backend, _) = echo_process(address.port());
    let mut back = Held::open(&mut senders[1], "/back").await;
    back.echo("the same proxy").await;
    back.finish().await;
    let mut again = Held::open(&mut senders[0], "/again").await;
    again.echo("the first client too").await;
    again.finish().await;
    let stats = stats_when(&proxy, LIMIT, "streams forgotten", |s| s.upstream.streams == 0).await;
    assert!(stats.upstream.opened >= 2, "{stats}");
}
