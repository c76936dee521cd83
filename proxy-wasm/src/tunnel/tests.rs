//! The tunnel against an upstream played by hand (every frame, well-formed
//! or not) and against the `h2` crate's server, natively.

use std::borrow::Cow;

use h2fw::conn::Error as WriterError;
use h2fw::frame::{flag, kind};
use h2fw::pool::{Pool, PoolConfig, PoolError};
use loona_hpack::Decoder;

use super::{EndReason, MAX_HEADER_BLOCK, Tunnel, TunnelConfig};
use crate::error_code;
use crate::frames::FrameReader;
use crate::testing::{Owned, frame, pool};

const AUTHORITY: &str = "echo.test:443";

fn config() -> TunnelConfig {
    TunnelConfig { authority: AUTHORITY.into(), ..TunnelConfig::default() }
}

/// HPACK `:status` as a literal without indexing (static name 8).
fn status_block(status: &[u8; 3]) -> Vec<u8> {
    let mut block = vec![0x08, 3];
    block.extend_from_slice(status);
    block
}

/// The upstream's response HEADERS on stream 1 (one frame).
fn response(status: &[u8; 3], end_stream: bool) -> Vec<u8> {
    let flags = flag::END_HEADERS | if end_stream { flag::END_STREAM } else { 0 };
    frame(kind::HEADERS, flags, 1, &status_block(status))
}

fn data(stream: u32, payload: &[u8], end_stream: bool) -> Vec<u8> {
    frame(kind::DATA, if end_stream { flag::END_STREAM } else { 0 }, stream, payload)
}

fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(kind::WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

/// What the tunnel wrote toward the upstream, read back frame by frame
/// (after the client preface, which the first read checks and skips).
struct Upstream {
    reader: FrameReader,
    preface_seen: bool,
}

impl Upstream {
    fn new(pool: &Pool) -> Self {
        Self { reader: FrameReader::new(pool, 1 << 20), preface_seen: false }
    }

    fn read(&mut self, mut wire: &[u8]) -> Vec<Owned> {
        if !self.preface_seen {
            assert_eq!(&wire[..24], h2fw::frame::PREFACE, "the client preface comes first");
            wire = &wire[24..];
            self.preface_seen = true;
        }
        let mut frames = Vec::new();
        self.reader
            .feed(wire, |f| -> Result<(), ()> {
                frames.push(Owned::from(f));
                Ok(())
            })
            .expect("the tunnel writes well-formed frames");
        frames
    }
}

/// A tunnel past its handshake (what it wrote read and dropped), with its
/// upstream's reader.
fn started(config: &TunnelConfig, pool: &Pool) -> (Tunnel, Upstream) {
    let mut tunnel = Tunnel::new(config, pool).expect("a tunnel");
    let mut upstream = Upstream::new(pool);
    let mut wire = Vec::new();
    tunnel.flush(&mut wire).expect("flush");
    upstream.read(&wire);
    (tunnel, upstream)
}

/// A tunnel the upstream accepted with 200.
fn opened(config: &TunnelConfig, pool: &Pool) -> (Tunnel, Upstream) {
    let (mut tunnel, upstream) = started(config, pool);
    tunnel.on_upstream(&response(b"200", false), &mut Vec::new()).expect("200 opens");
    assert!(tunnel.is_open());
    (tunnel, upstream)
}

/// Feeds `bytes` from the upstream; the bytes for the client and the result.
fn feed(tunnel: &mut Tunnel, bytes: &[u8]) -> (Vec<u8>, Result<(), EndReason>) {
    let mut to_client = Vec::new();
    let result = tunnel.on_upstream(bytes, &mut to_client);
    (to_client, result)
}

/// Ends the tunnel for `reason` and returns the closing frames it wrote.
fn closing(tunnel: &mut Tunnel, upstream: &mut Upstream, reason: &EndReason) -> Vec<Owned> {
    tunnel.end(reason);
    let mut wire = Vec::new();
    tunnel.flush(&mut wire).expect("flush");
    upstream.read(&wire)
}

fn goaway(code: u32, kind: &str) -> Owned {
    Owned::GoAway { last_stream: 0, code, debug: kind.as_bytes().to_vec() }
}

const CANCEL: Owned = Owned::RstStream { stream: 1, code: error_code::CANCEL };

#[test]
fn the_handshake_is_preface_settings_window_and_a_connect_request() {
    let pool = pool();
    let mut tunnel = Tunnel::new(&config(), &pool).expect("a tunnel");
    let mut wire = Vec::new();
    tunnel.flush(&mut wire).expect("flush");
    let frames = Upstream::new(&pool).read(&wire);
    let [
        Owned::Settings(settings),
        Owned::WindowUpdate { stream: 0, increment },
        Owned::Headers { stream: 1, fragment, end_stream: false, end_headers: true },
    ] = &frames[..]
    else {
        panic!("preface SETTINGS, connection WINDOW_UPDATE, CONNECT HEADERS; got {frames:?}")
    };
    let window = config().recv_window;
    assert_eq!(settings, &[(1, 0), (2, 0), (4, window), (5, 16_384), (6, MAX_HEADER_BLOCK as u32)]);
    assert_eq!(*increment, window - 65_535, "the connection window matches the streams'");
    let mut fields = Vec::new();
    Decoder::new()
        .decode_with_cb(fragment, |name: Cow<'_, [u8]>, value: Cow<'_, [u8]>| {
            fields.push((name.into_owned(), value.into_owned()));
        })
        .expect("valid HPACK");
    assert_eq!(
        fields,
        [(b":method".to_vec(), b"CONNECT".to_vec()), (b":authority".to_vec(), AUTHORITY.as_bytes().to_vec())],
        "a CONNECT request has no :scheme and no :path (RFC 9113 §8.5)"
    );
}

#[test]
fn settings_and_pings_from_the_upstream_are_acknowledged() {
    let pool = pool();
    let (mut tunnel, mut upstream) = started(&config(), &pool);
    let mut bytes = frame(kind::SETTINGS, 0, 0, &[0, 4, 0, 0, 0x40, 0, 0, 0x0f, 0, 0, 0, 1]);
    bytes.extend(frame(kind::PING, 0, 0, b"pingdata"));
    bytes.extend(frame(kind::PING, flag::ACK, 0, b"answered"));
    let (to_client, result) = feed(&mut tunnel, &bytes);
    assert_eq!((to_client, result), (vec![], Ok(())));
    let mut wire = Vec::new();
    tunnel.flush(&mut wire).expect("flush");
    assert_eq!(upstream.read(&wire), [Owned::SettingsAck, Owned::Ping { data: *b"pingdata", ack: true }]);
}

#[test]
fn bytes_flow_both_ways_once_a_2xx_opens_the_tunnel_and_windows_are_granted_again() {
    let pool = pool();
    let config = TunnelConfig { recv_window: 65_535, ..config() };
    let (mut tunnel, mut upstream) = started(&config, &pool);
    // Client bytes before the answer wait in the tunnel.
    let mut wire = Vec::new();
    tunnel.take_client(b"early", &mut wire).expect("take");
    tunnel.flush(&mut wire).expect("flush");
    assert!(wire.is_empty(), "nothing goes out before the 2xx");
    assert_eq!(tunnel.held_bytes(), 5);
    // An informational response is skipped; the 200 opens the tunnel.
    let mut answer = frame(kind::HEADERS, flag::END_HEADERS, 1, &status_block(b"100"));
    answer.extend(response(b"200", false));
    assert_eq!(feed(&mut tunnel, &answer), (vec![], Ok(())));
    assert!(tunnel.is_open());
    tunnel.take_client(b" and late", &mut wire).expect("take");
    tunnel.flush(&mut wire).expect("flush");
    let sent: Vec<u8> = upstream
        .read(&wire)
        .into_iter()
        .flat_map(|f| match f {
            Owned::Data { stream: 1, data, end_stream: false, .. } => data,
            other => panic!("only DATA on stream 1, got {other:?}"),
        })
        .collect();
    assert_eq!(sent, b"early and late");
    // The upstream's DATA goes to the client; half a window used is granted again.
    let payload = vec![9; 16_384];
    let (to_client, result) = feed(&mut tunnel, &[data(1, &payload, false), data(1, &payload, false)].concat());
    assert_eq!((to_client.len(), result), (2 * payload.len(), Ok(())));
    let mut wire = Vec::new();
    tunnel.flush(&mut wire).expect("flush");
    assert_eq!(
        upstream.read(&wire),
        [Owned::WindowUpdate { stream: 0, increment: 32_768 }, Owned::WindowUpdate { stream: 1, increment: 32_768 }]
    );
    assert_eq!(tunnel.take_counts().window_updates_sent, 2);
    // The client's end: END_STREAM after its bytes, and the tunnel is settled.
    tunnel.client_finished();
    let mut wire = Vec::new();
    tunnel.flush(&mut wire).expect("flush");
    assert_eq!(upstream.read(&wire), [Owned::Data { stream: 1, data: vec![], flow_len: 0, end_stream: true }]);
    assert!(tunnel.settled());
}

#[test]
fn a_non_2xx_answer_refuses_the_tunnel() {
    let pool = pool();
    let (mut tunnel, mut upstream) = started(&config(), &pool);
    let (_, result) = feed(&mut tunnel, &response(b"403", true));
    let reason = result.expect_err("403 refuses");
    assert_eq!(reason, EndReason::Refused { status: 403 });
    assert_eq!(reason.to_string(), "upstream refused the tunnel with status 403");
    // Our side of the stream is still open: it is reset, then the connection goes.
    assert_eq!(closing(&mut tunnel, &mut upstream, &reason), [CANCEL, goaway(0, "refused")]);
}

#[test]
fn the_upstream_ends_the_tunnel_by_end_stream_reset_or_goaway() {
    let pool = pool();
    // END_STREAM: the last payload still reaches the client.
    let (mut tunnel, mut upstream) = opened(&config(), &pool);
    let (to_client, result) = feed(&mut tunnel, &data(1, b"bye", true));
    assert_eq!((to_client, result.clone()), (b"bye".to_vec(), Err(EndReason::UpstreamEnded)));
    let reason = result.unwrap_err();
    assert!(!reason.is_failure());
    assert_eq!(closing(&mut tunnel, &mut upstream, &reason), [CANCEL, goaway(0, "upstream_end_stream")]);

    // RST_STREAM: the stream is closed, so only GOAWAY follows.
    let (mut tunnel, mut upstream) = opened(&config(), &pool);
    let (_, result) = feed(&mut tunnel, &frame(kind::RST_STREAM, 0, 1, &8u32.to_be_bytes()));
    let reason = result.unwrap_err();
    assert_eq!(reason.to_string(), "upstream reset the tunnel (RST_STREAM CANCEL)");
    assert_eq!(closing(&mut tunnel, &mut upstream, &reason), [goaway(0, "upstream_reset")]);

    // GOAWAY, with its debug data in the reason.
    let (mut tunnel, mut upstream) = opened(&config(), &pool);
    let (_, result) = feed(&mut tunnel, &frame(kind::GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0, b'b', b'y', b'e']));
    let reason = result.unwrap_err();
    assert_eq!(reason.to_string(), "upstream sent GOAWAY (NO_ERROR, last stream 1): \"bye\"");
    assert_eq!(closing(&mut tunnel, &mut upstream, &reason), [CANCEL, goaway(0, "upstream_goaway")]);
    // After the end nothing more is read.
    assert_eq!(feed(&mut tunnel, &data(1, b"late", false)), (vec![], Ok(())));
}

#[test]
fn bad_upstream_frames_end_the_tunnel_with_a_reason_and_the_matching_goaway_code() {
    let pool = pool();
    let cases: [(Vec<u8>, bool, &str, u32); 7] = [
        (
            frame(kind::SETTINGS, 0, 0, &[0; 5]),
            false,
            "malformed upstream frame: SETTINGS frame has length 5, a multiple of 6",
            error_code::FRAME_SIZE_ERROR,
        ),
        (
            data(1, b"x", false),
            false,
            "upstream protocol error: DATA before a 2xx response",
            error_code::PROTOCOL_ERROR,
        ),
        (
            data(3, b"x", false),
            true,
            "upstream protocol error: DATA on a stream we did not open",
            error_code::PROTOCOL_ERROR,
        ),
        (
            frame(kind::RST_STREAM, 0, 3, &[0; 4]),
            true,
            "upstream frame refused by the writer: stream 3: no RstStream may be sent on a stream that is idle (RFC 9113 §5.1)",
            error_code::PROTOCOL_ERROR,
        ),
        (
            frame(kind::HEADERS, flag::END_HEADERS, 1, &[0x82]),
            false,
            "upstream protocol error: response without a valid :status first",
            error_code::PROTOCOL_ERROR,
        ),
        (
            frame(kind::HEADERS, flag::END_HEADERS, 1, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            false,
            "response header block",
            error_code::COMPRESSION_ERROR,
        ),
        (
            response(b"200", false),
            true,
            "upstream protocol error: a second header block without END_STREAM",
            error_code::PROTOCOL_ERROR,
        ),
    ];
    for (bytes, open, message, code) in cases {
        let (mut tunnel, mut upstream) = if open { opened(&config(), &pool) } else { started(&config(), &pool) };
        let (_, result) = feed(&mut tunnel, &bytes);
        let reason = result.expect_err(message);
        assert!(reason.to_string().starts_with(message), "{reason} (wanted {message})");
        assert!(reason.is_failure());
        let frames = closing(&mut tunnel, &mut upstream, &reason);
        assert!(matches!(frames.last(), Some(Owned::GoAway { code: c, .. }) if *c == code), "{message}: {frames:?}");
    }
    assert_eq!(pool.leased_bytes(), 0, "every buffer went back");
}

#[test]
fn a_response_header_block_past_the_limit_is_refused_and_its_buffer_returned() {
    let pool = pool();
    let (mut tunnel, mut upstream) = started(&config(), &pool);
    let mut bytes = frame(kind::HEADERS, 0, 1, &status_block(b"200"));
    bytes.extend(frame(kind::CONTINUATION, 0, 1, &vec![0; MAX_HEADER_BLOCK]));
    let (_, result) = feed(&mut tunnel, &bytes);
    let reason = result.unwrap_err();
    assert_eq!(reason, EndReason::HeaderBlockTooLarge { limit: MAX_HEADER_BLOCK });
    closing(&mut tunnel, &mut upstream, &reason);
    drop(tunnel);
    assert_eq!(pool.leased_bytes(), 0);

    // A block cut across CONTINUATION frames within the limit opens the tunnel.
    let (mut tunnel, _) = started(&config(), &pool);
    let block = status_block(b"204");
    let mut bytes = frame(kind::HEADERS, 0, 1, &block[..2]);
    bytes.extend(frame(kind::CONTINUATION, flag::END_HEADERS, 1, &block[2..]));
    assert_eq!(feed(&mut tunnel, &bytes), (vec![], Ok(())));
    assert!(tunnel.is_open());
}

#[test]
fn a_client_faster_than_the_windows_is_paused_not_buffered_without_bound() {
    let pool = pool();
    let config = TunnelConfig { stream_buffer: 64 << 10, hold_bytes: 128 << 10, ..config() };
    let (mut tunnel, mut upstream) = opened(&config, &pool);
    let chunk = vec![5; 32 << 10];
    let mut taken = 0;
    let mut wire = Vec::new();
    while tunnel.can_take(chunk.len()) {
        tunnel.take_client(&chunk, &mut wire).expect("take");
        tunnel.flush(&mut wire).expect("flush");
        taken += chunk.len();
        assert!(taken < 1 << 20, "the tunnel kept taking without a window");
    }
    let on_wire: usize =
        upstream.read(&wire).iter().map(|f| if let Owned::Data { data, .. } = f { data.len() } else { 0 }).sum();
    assert_eq!(on_wire, 65_535, "DATA within the upstream's initial windows");
    assert!(tunnel.held_bytes() <= config.stream_buffer + config.hold_bytes);
    assert!(!tunnel.must_write(), "nothing can go while the windows are closed");
    // Past twice hold_bytes a forced take ends the tunnel instead.
    let flood = vec![5; 2 * config.hold_bytes];
    let reason = tunnel.take_client(&flood, &mut Vec::new()).unwrap_err();
    assert!(matches!(reason, EndReason::HoldExceeded { limit, .. } if limit == 2 * config.hold_bytes), "{reason}");
    // A window update lets held bytes out.
    let (mut tunnel, mut upstream) = opened(&config, &pool);
    let mut wire = Vec::new();
    while tunnel.can_take(chunk.len()) {
        tunnel.take_client(&chunk, &mut wire).expect("take");
    }
    tunnel.flush(&mut wire).expect("flush");
    upstream.read(&wire);
    let held = tunnel.held_bytes();
    let grant = [window_update(0, 40_000), window_update(1, 40_000)].concat();
    assert_eq!(feed(&mut tunnel, &grant), (vec![], Ok(())));
    assert!(tunnel.must_write());
    let mut wire = Vec::new();
    tunnel.flush(&mut wire).expect("flush");
    let sent: usize =
        upstream.read(&wire).iter().map(|f| if let Owned::Data { data, .. } = f { data.len() } else { 0 }).sum();
    assert_eq!(sent, 40_000);
    assert_eq!(tunnel.held_bytes(), held - 40_000);
}

#[test]
fn a_pool_that_refuses_memory_is_a_typed_reason() {
    // Not even the first output chunk.
    let tiny = Pool::new(PoolConfig { budget_bytes: 4096, ..PoolConfig::default() });
    let Err(reason) = Tunnel::new(&config(), &tiny) else { panic!("a 4 KiB pool cannot hold a tunnel") };
    assert!(matches!(reason, EndReason::Writer(WriterError::Pool(PoolError::BudgetExceeded { .. }))), "{reason}");
    assert_eq!(reason.kind(), "memory");
    // Room for the handshake, not for held client bytes.
    let small = Pool::new(PoolConfig { budget_bytes: 96 << 10, ..PoolConfig::default() });
    let (mut tunnel, _) = opened(&config(), &small);
    let mut wire = Vec::new();
    let result = (0..16).try_for_each(|_| tunnel.take_client(&[1; 32 << 10], &mut wire));
    let reason = result.unwrap_err();
    assert_eq!(reason.kind(), "memory", "{reason}");
    assert!(reason.to_string().contains("pool budget exceeded"), "{reason}");
}

/// The `h2` crate's server as the upstream, over an in-memory pipe.
mod h2_upstream {
    use std::time::Duration;

    use bytes::Bytes;
    use h2::Reason;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::{AUTHORITY, EndReason, Tunnel, TunnelConfig, config, pool};

    /// What the server does with the CONNECT request.
    #[derive(Clone, Copy)]
    enum Answer {
        /// 200, then echoes the body and ends when the client does.
        Echo,
        /// This status, with END_STREAM.
        Status(u16),
        /// RST_STREAM with this code.
        Reset(Reason),
        /// GOAWAY (NO_ERROR) for the connection.
        GoAway,
    }

    /// The request as the server saw it.
    #[derive(Debug, PartialEq, Eq)]
    struct Seen {
        method: String,
        authority: Option<String>,
        scheme: Option<String>,
        path: Option<String>,
    }

    async fn serve(io: DuplexStream, answer: Answer) -> Seen {
        let mut conn = h2::server::handshake(io).await.expect("handshake");
        let (request, mut respond) = conn.accept().await.expect("a request").expect("a valid request");
        let seen = Seen {
            method: request.method().to_string(),
            authority: request.uri().authority().map(ToString::to_string),
            scheme: request.uri().scheme_str().map(str::to_string),
            path: request.uri().path_and_query().map(ToString::to_string),
        };
        if let Answer::GoAway = answer {
            conn.abrupt_shutdown(Reason::NO_ERROR);
        }
        // The connection is driven on its own while the stream is served.
        let driver = tokio::spawn(async move { while let Some(Ok(_)) = conn.accept().await {} });
        match answer {
            Answer::Echo => {
                let mut send = respond.send_response(http::Response::new(()), false).expect("200");
                let mut body = request.into_body();
                while let Some(chunk) = body.data().await {
                    let chunk = chunk.expect("body bytes");
                    body.flow_control().release_capacity(chunk.len()).expect("release");
                    send.send_data(chunk, false).expect("echo");
                }
                send.send_data(Bytes::new(), true).expect("end");
            }
            Answer::Status(status) => {
                let response = http::Response::builder().status(status).body(()).expect("response");
                respond.send_response(response, true).expect("status");
            }
            Answer::Reset(reason) => respond.send_reset(reason),
            Answer::GoAway => {}
        }
        let _ = driver.await;
        seen
    }

    /// Runs the tunnel against the server: sends `upload` (as fast as the
    /// tunnel takes it), then the client's end, and reads until the tunnel
    /// ends. The bytes for the client and why it ended.
    async fn run(config: &TunnelConfig, answer: Answer, upload: &[u8]) -> (Vec<u8>, EndReason, Seen, Tunnel) {
        let (mut io, server_io) = tokio::io::duplex(1 << 20);
        let server = tokio::spawn(serve(server_io, answer));
        let pool = pool();
        let mut tunnel = Tunnel::new(config, &pool).expect("a tunnel");
        let (mut sent, mut back, mut buf) = (0, Vec::new(), vec![0; 64 << 10]);
        let reason = loop {
            let mut wire = Vec::new();
            while sent < upload.len() && tunnel.can_take(16 << 10) {
                let end = (sent + (16 << 10)).min(upload.len());
                tunnel.take_client(&upload[sent..end], &mut wire).expect("take");
                sent = end;
            }
            if sent == upload.len() {
                tunnel.client_finished();
            }
            tunnel.flush(&mut wire).expect("flush");
            io.write_all(&wire).await.expect("write to the server");
            let read = tokio::time::timeout(Duration::from_secs(10), io.read(&mut buf)).await;
            let n = read.expect("the server answers within 10 s").expect("read");
            if n == 0 {
                break EndReason::UpstreamClosed;
            }
            if let Err(reason) = tunnel.on_upstream(&buf[..n], &mut back) {
                break reason;
            }
        };
        tunnel.end(&reason);
        let mut wire = Vec::new();
        tunnel.flush(&mut wire).expect("closing frames");
        let _ = io.write_all(&wire).await;
        drop(io);
        (back, reason, server.await.expect("the server"), tunnel)
    }

    fn connect_seen() -> Seen {
        Seen { method: "CONNECT".into(), authority: Some(AUTHORITY.into()), scheme: None, path: None }
    }

    #[tokio::test]
    async fn a_mebibyte_round_trips_through_h2_with_window_updates_both_ways() {
        let upload: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        // 64 KiB windows on both sides: a mebibyte needs many updates each way.
        let config = TunnelConfig { recv_window: 65_535, ..config() };
        let (back, reason, seen, mut tunnel) = run(&config, Answer::Echo, &upload).await;
        assert_eq!(seen, connect_seen(), "h2 took our CONNECT request");
        assert_eq!(reason, EndReason::UpstreamEnded, "the server ended after the client did");
        assert_eq!(back.len(), upload.len());
        assert!(back == upload, "the bytes came back identical");
        let counts = tunnel.take_counts();
        assert!(counts.window_updates_received >= 16, "{counts:?}");
        assert!(counts.window_updates_sent >= 16, "{counts:?}");
    }

    #[tokio::test]
    async fn h2_refusing_resetting_or_going_away_ends_the_tunnel_with_that_reason() {
        let (_, reason, seen, _) = run(&config(), Answer::Status(403), b"").await;
        assert_eq!((reason, seen), (EndReason::Refused { status: 403 }, connect_seen()));
        let (_, reason, _, _) = run(&config(), Answer::Reset(Reason::REFUSED_STREAM), b"").await;
        assert_eq!(reason, EndReason::UpstreamReset { code: 7 });
        let (_, reason, _, _) = run(&config(), Answer::GoAway, b"hello").await;
        assert!(matches!(reason, EndReason::GoAway { code: 0, .. }), "{reason}");
    }
}
