//! A backend whose GOAWAY leaves streams the proxy already opened
//! unprocessed (its last stream id below them), scripted with the `h2`
//! crate's codec: the stream at or below the last id finishes on the old
//! connection; a refused request without a body is opened again on a new
//! connection and succeeds; a refused request with a body (already partly
//! sent, so not replayable) is reset to the client with REFUSED_STREAM.

mod proxy_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use h2::frame::{Data, Frame, GoAway, Headers, Pseudo, Settings, StreamId};
use h2fw_host::proxy::client::ChannelBody;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use proxy_common::*;
use tokio::io::AsyncReadExt as _;

const LIMIT: Duration = Duration::from_secs(20);
/// Streams the first connection waits for before its GOAWAY.
const BEFORE_GOAWAY: usize = 3;

/// Serves connections: the first waits for three request heads, says
/// GOAWAY with the lowest stream id as its last, and answers only that
/// stream; later ones answer every request. Each answer names its
/// connection and path.
async fn backend(listener: tokio::net::TcpListener) {
    let connections = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((mut tcp, _)) = listener.accept().await else { return };
        let number = connections.fetch_add(1, Ordering::Relaxed) + 1;
        tokio::spawn(async move {
            let mut preface = [0u8; 24];
            if tcp.read_exact(&mut preface).await.is_err() {
                return;
            }
            let mut codec: h2::Codec<_, Bytes> = h2::Codec::new(tcp);
            if codec.send(Settings::default().into()).await.is_err() {
                return;
            }
            let mut heads = Vec::new();
            while let Some(Ok(frame)) = codec.next().await {
                let reply = match frame {
                    Frame::Settings(settings) if !settings.is_ack() => vec![Settings::ack().into()],
                    Frame::Headers(headers) => {
                        let id = headers.stream_id();
                        let path = headers.into_parts().0.path.map(|path| path.to_string()).unwrap_or_default();
                        heads.push((id, path));
                        if number > 1 {
                            answer(number, heads.last().expect("just pushed"))
                        } else if heads.len() == BEFORE_GOAWAY {
                            let mut frames = vec![GoAway::new(heads[0].0, h2::Reason::NO_ERROR).into()];
                            frames.extend(answer(number, &heads[0]));
                            frames
                        } else {
                            vec![]
                        }
                    }
                    _ => vec![],
                };
                for frame in reply {
                    if codec.send(frame).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

/// A 200 whose body says `connection path`, ending the stream.
fn answer(connection: usize, (id, path): &(StreamId, String)) -> Vec<Frame<Bytes>> {
    let head = Headers::new(*id, Pseudo::response(StatusCode::OK), HeaderMap::new());
    let mut data = Data::new(*id, Bytes::from(format!("{connection} {path}")));
    data.set_end_stream(true);
    vec![head.into(), data.into()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goaway_below_open_streams_retries_the_bodiless_and_refuses_the_rest() {
    let listener = tokio::net::TcpListener::bind(loopback()).await.expect("bind");
    let upstream = listener.local_addr().expect("address");
    tokio::spawn(backend(listener));
    let proxy = proxy(upstream, 1);
    let mut senders = clients(&proxy, 1).await;
    let sender = &mut senders[0];

    // In order, so that the upstream sees them as streams 1, 3 and 5.
    let get = |path: &str| {
        let request = Request::builder().method(Method::GET).uri(format!("http://127.0.0.1{path}"));
        request.body(ChannelBody::empty()).expect("request")
    };
    sender.ready().await.expect("ready");
    let first = sender.send_request(get("/first"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = sender.send_request(get("/second"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (body, third) = open(sender, "/third", HeaderMap::new()).await;
    assert!(body.data(Bytes::from_static(b"a body already on its way")).await);

    let text = |response: http::Response<hyper::body::Incoming>| async move {
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("text")
    };
    let first = within(LIMIT, "/first", first).await.expect("/first");
    assert_eq!(text(first).await, "1 /first", "answered on the connection that said GOAWAY");
    let second = within(LIMIT, "/second", second).await.expect("/second is retried");
    assert_eq!(text(second).await, "2 /second", "opened again on a new connection");
    let error = within(LIMIT, "/third", third).await.expect_err("/third cannot be replayed");
    assert_eq!(reason(&error), Some(h2::Reason::REFUSED_STREAM), "{error}");

    let stats = stats_when(&proxy, LIMIT, "streams forgotten", |s| s.upstream.streams == 0).await;
    assert_eq!(stats.upstream.opened, 2, "{stats}");
}
