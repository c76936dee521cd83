//! Conformance property test (issue 10): random call sequences, in both
//! roles, with every byte the writer puts out handed to a real HTTP/2 peer
//! that is not ours, the `h2` crate, over an in-memory duplex.
//!
//! - Client role: `h2::server` is the peer. Its handler reads each request
//!   (headers, body, trailers), returning flow-control credit as it reads,
//!   then answers with a response whose body length the request's path names.
//! - Server role: `h2::client` is the peer. Its requests (random bodies,
//!   trailers, content-length) create the streams the writer answers with
//!   responses, bodies, trailers, informational responses, pushes and resets.
//!
//! A host loop reads the peer's frames off the duplex with a minimal frame
//! reader and reports them to the writer (`apply_peer_settings` then
//! `ack_settings`, `apply_window_update`, `apply_peer_headers`,
//! `apply_peer_end_stream`, `apply_peer_data` then the credit back with
//! `window_update`, `apply_peer_reset`, `apply_peer_goaway`, PING ACKs), as
//! a host would. The peer also changes its INITIAL_WINDOW_SIZE mid-stream.
//!
//! Proven for every case: calls the writer refuses are refused with a typed
//! error and change nothing; the peer accepts everything else: no
//! connection error, no GOAWAY, no RST_STREAM, no frame the host loop must
//! refuse; and once every stream is ended and answered, the peer received
//! every accepted header block (pseudo-headers and fields), body byte and
//! trailer intact, per stream, and every stream is closed on both sides.

mod conn_common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::poll_fn;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use conn_common::{Fields, body, observable};
use futures_util::FutureExt as _;
use futures_util::task::AtomicWaker;
use h2fw::conn::{Config, Connection, Error, Role, StreamHints, StreamState};
use h2fw::frame::{PREFACE, Priority, interleave_data, setting};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const PADDED: u8 = 0x8;

// ------------------------------------------------------------------ host loop

/// What the peer sent that a conformant exchange never has.
#[derive(Debug, Default)]
struct PeerComplaints {
    goaways: Vec<(u32, u32)>,
    resets: Vec<(u32, u32)>,
    /// Peer frames the writer refused to apply.
    refused: Vec<String>,
}

/// The host: the writer, its end of the duplex, and what it read so far.
struct Host {
    conn: Connection,
    io: DuplexStream,
    inbox: Vec<u8>,
    /// Server role: the client's magic is still to come.
    expect_magic: bool,
    complaints: PeerComplaints,
    /// Streams this end reset: the peer's frames may cross the RST_STREAM
    /// and are ignored (RFC 9113 §5.4.2).
    reset_here: BTreeSet<u32>,
    /// Server role: the streams the peer opened, in order.
    peer_streams: Vec<u32>,
}

impl Host {
    fn new(conn: Connection, io: DuplexStream) -> Self {
        let expect_magic = conn.role() == Role::Server;
        Self {
            conn,
            io,
            inbox: Vec::new(),
            expect_magic,
            complaints: PeerComplaints::default(),
            reset_here: BTreeSet::new(),
            peer_streams: Vec::new(),
        }
    }

    /// Hands the peer `bytes` (which the writer already gave out).
    async fn send(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.io.write_all(bytes).await.expect("the peer's end is open");
        }
    }

    /// Drains the writer (one drain of `piece` bytes, or everything when
    /// `piece` is `usize::MAX`) and hands the bytes to the peer.
    async fn flush(&mut self, piece: usize) -> usize {
        let mut out = Vec::new();
        loop {
            let n = self.conn.drain(piece, &mut out).expect("drain");
            if n == 0 || piece != usize::MAX {
                break;
            }
        }
        self.send(&out).await;
        out.len()
    }

    /// Reads what the peer wrote so far, without waiting, and applies its frames.
    fn feed(&mut self) -> usize {
        let mut total = 0;
        let mut buf = vec![0; 1 << 16];
        while let Some(Ok(n)) = self.io.read(&mut buf).now_or_never() {
            if n == 0 {
                break;
            }
            self.inbox.extend_from_slice(&buf[..n]);
            total += n;
        }
        if self.expect_magic && self.inbox.len() >= PREFACE.len() {
            assert_eq!(&self.inbox[..PREFACE.len()], PREFACE, "the client's magic");
            self.inbox.drain(..PREFACE.len());
            self.expect_magic = false;
        }
        while !self.expect_magic && self.inbox.len() >= 9 {
            let len = usize::from(self.inbox[0]) << 16 | usize::from(self.inbox[1]) << 8 | usize::from(self.inbox[2]);
            if self.inbox.len() < 9 + len {
                break;
            }
            let (kind, flags) = (self.inbox[3], self.inbox[4]);
            let id = u32::from_be_bytes([self.inbox[5], self.inbox[6], self.inbox[7], self.inbox[8]]) & 0x7fff_ffff;
            let payload: Vec<u8> = self.inbox[9..9 + len].to_vec();
            self.inbox.drain(..9 + len);
            self.apply(kind, flags, id, &payload);
        }
        total
    }

    /// Reports one frame of the peer to the writer, as a host does.
    fn apply(&mut self, kind: u8, flags: u8, id: u32, payload: &[u8]) {
        let be32 = |at: usize| u32::from_be_bytes([payload[at], payload[at + 1], payload[at + 2], payload[at + 3]]);
        let conn = &mut self.conn;
        let result = match kind {
            0x0 => {
                let len = payload.len() as u32;
                let mut result = conn.apply_peer_data(id, len);
                if flags & END_STREAM != 0 {
                    result = result.and_then(|()| conn.apply_peer_end_stream(id));
                }
                // Give the credit back, as an application that read the bytes
                // (a refusal here, past 2^31 - 1, is the writer's to make).
                if len > 0 && result.is_ok() {
                    let _ = conn.window_update(0, len);
                    let open = !matches!(conn.stream_state(id), StreamState::Closed | StreamState::Idle);
                    if open && flags & END_STREAM == 0 {
                        let _ = conn.window_update(id, len);
                    }
                }
                result
            }
            0x1 => {
                let new = conn.stream_state(id) == StreamState::Idle;
                let result = conn.apply_peer_headers(id, flags & END_STREAM != 0);
                if new && result.is_ok() {
                    self.peer_streams.push(id);
                }
                result
            }
            0x3 => {
                self.complaints.resets.push((id, be32(0)));
                conn.apply_peer_reset(id)
            }
            0x4 if flags & ACK != 0 => Ok(()),
            0x4 => {
                let settings: Vec<(u16, u32)> = payload
                    .chunks(6)
                    .map(|s| (u16::from_be_bytes([s[0], s[1]]), u32::from_be_bytes([s[2], s[3], s[4], s[5]])))
                    .collect();
                conn.apply_peer_settings(&settings).and_then(|()| conn.ack_settings())
            }
            0x5 => {
                let pad = if flags & PADDED != 0 { 1 } else { 0 };
                conn.apply_peer_push_promise(id, be32(pad) & 0x7fff_ffff)
            }
            0x6 if flags & ACK != 0 => Ok(()),
            0x6 => conn.ping(payload.try_into().unwrap(), true),
            0x7 => {
                self.complaints.goaways.push((be32(0) & 0x7fff_ffff, be32(4)));
                conn.apply_peer_goaway(be32(0) & 0x7fff_ffff, &mut Vec::new())
            }
            0x8 => conn.apply_window_update(id, be32(0) & 0x7fff_ffff),
            _ => Ok(()),
        };
        if let Err(error) = result
            && !self.reset_here.contains(&id)
        {
            self.complaints.refused.push(format!("frame type {kind} on stream {id}: {error:?}"));
        }
    }

    /// Lets both sides run until neither has anything more to say.
    async fn pump(&mut self) {
        let mut idle = 0;
        for _ in 0..50_000 {
            let out = self.flush(usize::MAX).await;
            for _ in 0..8 {
                tokio::task::yield_now().await;
            }
            let read = self.feed();
            idle = if out == 0 && read == 0 { idle + 1 } else { 0 };
            if idle == 3 {
                return;
            }
        }
        panic!("the exchange never settles");
    }

    /// Grants the peer room to send on every stream it has not ended, and
    /// on the connection (refusals past 2^31 - 1 are fine): the end of a case
    /// must not wait on our own INITIAL_WINDOW_SIZE of 0.
    fn grant_credit(&mut self) {
        let _ = self.conn.window_update(0, 1 << 24);
        for id in 1..=self.conn.last_peer_stream().max(999) {
            if matches!(self.conn.stream_state(id), StreamState::Open | StreamState::HalfClosedLocal) {
                let _ = self.conn.window_update(id, 1 << 24);
            }
        }
    }

    /// A few turns for the peer, reading what it says (nothing is flushed).
    async fn turn(&mut self) {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        self.feed();
    }
}

/// A cell the test sets and the peer's connection task polls: a new
/// INITIAL_WINDOW_SIZE for the peer to announce.
#[derive(Default)]
struct WindowCommand {
    size: Mutex<Option<u32>>,
    waker: AtomicWaker,
}

impl WindowCommand {
    /// Asks for `size` if it raises the last size asked for (or `initial`).
    ///
    /// Only raised: once h2 applies a lower size (on our ACK), a window the
    /// writer already used up goes negative, and h2 sends no WINDOW_UPDATE
    /// for bytes its application released before, so the stream waits
    /// forever, whatever the writer does. Lowered windows are covered by
    /// `conn_rules.rs` and `a_negative_window_after_the_peer_lowered_it`.
    fn raise(&self, size: u32, last: &mut u32) {
        if size > *last {
            *last = size;
            *self.size.lock().unwrap() = Some(size);
            self.waker.wake();
        }
    }

    fn take(&self, cx: &std::task::Context<'_>) -> Option<u32> {
        self.waker.register(cx.waker());
        self.size.lock().unwrap().take()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

/// Regular header fields as the peer decoded them, sorted.
fn decoded_fields(map: &http::HeaderMap) -> Vec<(String, Vec<u8>)> {
    let mut fields: Vec<(String, Vec<u8>)> =
        map.iter().map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec())).collect();
    fields.sort();
    fields
}

/// Regular (non-pseudo) fields of `fields`, sorted.
fn regular(fields: &Fields) -> Vec<(String, Vec<u8>)> {
    let mut regular: Vec<(String, Vec<u8>)> = fields
        .0
        .iter()
        .filter(|(n, _)| n.first() != Some(&b':'))
        .map(|(n, v)| (String::from_utf8(n.clone()).unwrap(), v.clone()))
        .collect();
    regular.sort();
    regular
}

fn pseudo<'a>(fields: &'a Fields, name: &str) -> Option<&'a [u8]> {
    fields.0.iter().find(|(n, _)| n == name.as_bytes()).map(|(_, v)| &v[..])
}

/// What one end of the peer saw of a stream: a request (client role) or a
/// response (server role).
#[derive(Debug, Default, Clone)]
struct Seen {
    /// `:method`, `:path` or `:status`, and `:authority`, as decoded.
    head: Vec<(String, String)>,
    fields: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    trailers: Option<Vec<(String, Vec<u8>)>>,
    /// `None` while running; `Some(Err)` when it ended in an error.
    outcome: Option<Result<(), String>>,
}

type Log = Arc<Mutex<BTreeMap<u32, Seen>>>;

/// Reads `recv` to its end into the log entry of `id`, giving credit back.
async fn read_body(mut recv: h2::RecvStream, id: u32, log: &Log) -> Result<(), String> {
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        let _ = recv.flow_control().release_capacity(chunk.len());
        log.lock().unwrap().entry(id).or_default().body.extend_from_slice(&chunk);
    }
    let trailers = recv.trailers().await.map_err(|e| e.to_string())?;
    log.lock().unwrap().entry(id).or_default().trailers = trailers.as_ref().map(decoded_fields);
    Ok(())
}

/// How a send call goes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum SendCall {
    Send,
    SendAndDrain,
    FrameInPlace,
}

fn send_call() -> impl Strategy<Value = SendCall> {
    prop_oneof![Just(SendCall::Send), Just(SendCall::SendAndDrain), Just(SendCall::FrameInPlace)]
}

fn body_len() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 1usize..300, 2 => 300usize..20_000, 1 => 20_000usize..100_000]
}

/// A byte for a field value: mostly visible ASCII and obs-text, sometimes
/// a control byte the writer must refuse (RFC 9110 §5.5).
fn value_byte() -> impl Strategy<Value = u8> {
    prop_oneof![8 => 0x21u8..=0x7e, 1 => 0x80u8..=0xff, 1 => Just(0x01u8), 1 => Just(0x7fu8)]
}

/// Applies a body write to `host` with `call`; returns the bytes accepted.
async fn send_body(host: &mut Host, id: u32, data: &[u8], call: SendCall) -> Result<usize, Error> {
    let before = host.conn.stats();
    let mut out = Vec::new();
    let result = match call {
        SendCall::Send => host.conn.send(id, data),
        SendCall::SendAndDrain => host.conn.send_and_drain(id, data, &mut out),
        SendCall::FrameInPlace => {
            let mut headers = Vec::new();
            host.conn.frame_in_place(id, data.len(), &mut out, &mut headers).inspect(|&framed| {
                interleave_data(&headers, &data[..framed], &mut out).unwrap();
            })
        }
    };
    if result.is_err() {
        assert!(out.is_empty(), "a refused {call:?} wrote bytes");
        assert_eq!(observable(&host.conn.stats()), observable(&before), "a refused {call:?} changed the writer");
    }
    host.send(&out).await;
    result
}

/// Checks that a refused call changed nothing the statistics show.
fn refused_changed_nothing(host: &Host, before: &h2fw::conn::Stats, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(observable(&host.conn.stats()), observable(before), "a refused {} changed the writer", what);
    Ok(())
}

/// The checks that hold of any finished case, whatever the role.
fn check_complaints(host: &Host, peer_error: &Mutex<Option<String>>) -> Result<(), TestCaseError> {
    prop_assert_eq!(peer_error.lock().unwrap().clone(), None, "the peer's connection failed");
    let complaints = &host.complaints;
    prop_assert!(complaints.goaways.is_empty(), "GOAWAY from the peer: {:?}", complaints.goaways);
    prop_assert!(complaints.resets.is_empty(), "RST_STREAM from the peer: {:?}", complaints.resets);
    prop_assert!(complaints.refused.is_empty(), "the host loop refused: {:?}", complaints.refused);
    Ok(())
}

// ---------------------------------------------------------------- client role

/// The kind of request a client opens.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Post,
    Get,
    Connect,
    ExtendedConnect,
}

/// A defect a request may carry (the writer refuses it).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Defect {
    None,
    NoMethod,
    NoScheme,
    NoPath,
    NoAuthority,
    EmptyPath,
    Status,
}

#[derive(Debug, Clone)]
enum ClientOp {
    Open { kind: Kind, defect: Defect, content_length: Option<u64>, value: u8, end_stream: bool, response_len: usize },
    Send { stream: usize, len: usize, call: SendCall },
    Finish { stream: usize, trailers: bool },
    Reset { stream: usize },
    WindowUpdate { stream: Option<usize>, increment: u32 },
    OurInitialWindow(u32),
    Priority { stream: usize },
    Ping,
    Drain { piece: usize },
    PeerInitialWindow(u32),
    Pump,
}

fn client_op() -> impl Strategy<Value = ClientOp> {
    let kind = prop_oneof![4 => Just(Kind::Post), 2 => Just(Kind::Get), 1 => Just(Kind::Connect), 1 => Just(Kind::ExtendedConnect)];
    let defect = prop_oneof![
        12 => Just(Defect::None),
        1 => Just(Defect::NoMethod),
        1 => Just(Defect::NoScheme),
        1 => Just(Defect::NoPath),
        1 => Just(Defect::NoAuthority),
        1 => Just(Defect::EmptyPath),
        1 => Just(Defect::Status),
    ];
    let open = (
        kind,
        defect,
        prop::option::weighted(0.3, 0u64..30_000),
        value_byte(),
        prop::bool::weighted(0.15),
        prop_oneof![Just(0usize), 1usize..2000, 60_000usize..100_000],
    )
        .prop_map(|(kind, defect, content_length, value, end_stream, response_len)| ClientOp::Open {
            kind,
            defect,
            content_length,
            value,
            end_stream,
            response_len,
        });
    prop_oneof![
        4 => open,
        8 => (0usize..16, body_len(), send_call()).prop_map(|(stream, len, call)| ClientOp::Send { stream, len, call }),
        3 => (0usize..16, any::<bool>()).prop_map(|(stream, trailers)| ClientOp::Finish { stream, trailers }),
        1 => (0usize..16).prop_map(|stream| ClientOp::Reset { stream }),
        1 => (prop::option::of(0usize..16), prop_oneof![1u32..100_000, Just(1 << 30), Just((1 << 31) - 1)])
            .prop_map(|(stream, increment)| ClientOp::WindowUpdate { stream, increment }),
        1 => prop_oneof![Just(0u32), Just(1000), Just(65_535), Just(1 << 20)].prop_map(ClientOp::OurInitialWindow),
        1 => (0usize..16).prop_map(|stream| ClientOp::Priority { stream }),
        1 => Just(ClientOp::Ping),
        3 => prop_oneof![1usize..20, 20usize..5000, 5000usize..100_000].prop_map(|piece| ClientOp::Drain { piece }),
        1 => prop_oneof![Just(100u32), Just(1000), Just(16_384), Just(65_535), Just(1 << 20)].prop_map(ClientOp::PeerInitialWindow),
        3 => Just(ClientOp::Pump),
    ]
}

/// The request fields of `kind` for stream `id`, with `defect`.
fn request_fields(kind: Kind, defect: Defect, content_length: Option<u64>, value: u8, response_len: usize) -> Fields {
    let path = format!("/r{response_len}");
    let mut pairs: Vec<(&str, String)> = match kind {
        Kind::Post | Kind::Get => vec![
            (":method", if matches!(kind, Kind::Post) { "POST" } else { "GET" }.into()),
            (":scheme", "https".into()),
            (":authority", "example.com".into()),
            (":path", path),
        ],
        Kind::Connect => vec![(":method", "CONNECT".into()), (":authority", "example.com:443".into())],
        Kind::ExtendedConnect => vec![
            (":method", "CONNECT".into()),
            (":protocol", "websocket".into()),
            (":scheme", "https".into()),
            (":authority", "example.com".into()),
            (":path", path),
        ],
    };
    match defect {
        Defect::None => {}
        Defect::NoMethod => pairs.retain(|(n, _)| *n != ":method"),
        Defect::NoScheme => pairs.retain(|(n, _)| *n != ":scheme"),
        Defect::NoPath => pairs.retain(|(n, _)| *n != ":path"),
        Defect::NoAuthority => pairs.retain(|(n, _)| *n != ":authority"),
        Defect::EmptyPath => pairs.iter_mut().filter(|(n, _)| *n == ":path").for_each(|(_, v)| v.clear()),
        Defect::Status => pairs.insert(0, (":status", "200".into())),
    }
    let mut fields = Fields(pairs.into_iter().map(|(n, v)| (n.as_bytes().to_vec(), v.into_bytes())).collect());
    fields.0.push((b"x-v".to_vec(), vec![b'v', value, b'v']));
    if let Some(len) = content_length {
        fields.0.push((b"content-length".to_vec(), len.to_string().into_bytes()));
    }
    fields
}

fn trailer_fields(id: u32) -> Fields {
    Fields::new(&[("grpc-status", "0"), ("x-trailer", &id.to_string())])
}

/// What the test sent on one of the client's streams.
#[derive(Debug)]
struct Sent {
    fields: Fields,
    body: Vec<u8>,
    /// Still takes body bytes.
    open: bool,
    trailers: Option<Fields>,
    reset: bool,
    declared: Option<u64>,
}

/// The server side: accepts every request and answers it once read.
fn serve(
    io: DuplexStream,
    max_concurrent: u32,
    initial_window: u32,
    connect_protocol: bool,
    log: Log,
    error: Arc<Mutex<Option<String>>>,
    window: Arc<WindowCommand>,
) {
    tokio::spawn(async move {
        let mut builder = h2::server::Builder::new();
        builder.max_concurrent_streams(max_concurrent).initial_window_size(initial_window);
        if connect_protocol {
            builder.enable_connect_protocol();
        }
        let mut conn = match builder.handshake::<_, Bytes>(io).await {
            Ok(conn) => conn,
            Err(e) => {
                *error.lock().unwrap() = Some(format!("handshake: {e}"));
                return;
            }
        };
        loop {
            let next = poll_fn(|cx| {
                // Refused while an earlier SETTINGS waits for its ACK: then skipped.
                if let Some(size) = window.take(cx) {
                    let _ = conn.set_initial_window_size(size);
                }
                conn.poll_accept(cx)
            })
            .await;
            match next {
                None => return,
                Some(Err(e)) => {
                    *error.lock().unwrap() = Some(e.to_string());
                    return;
                }
                Some(Ok((request, respond))) => {
                    tokio::spawn(answer(request, respond, log.clone()));
                }
            }
        }
    });
}

/// Reads one request to its end, logs it, and answers it.
async fn answer(request: http::Request<h2::RecvStream>, mut respond: h2::server::SendResponse<Bytes>, log: Log) {
    let id = u32::from(respond.stream_id());
    let (head, recv) = request.into_parts();
    let path = head.uri.path_and_query().map(|p| p.to_string());
    let mut seen = Seen {
        head: vec![
            (":method".into(), head.method.to_string()),
            (":path".into(), path.clone().unwrap_or_default()),
            (":authority".into(), head.uri.authority().map(|a| a.to_string()).unwrap_or_default()),
        ],
        fields: decoded_fields(&head.headers),
        ..Seen::default()
    };
    if let Some(protocol) = head.extensions.get::<h2::ext::Protocol>() {
        seen.head.push((":protocol".into(), protocol.as_str().to_string()));
    }
    log.lock().unwrap().insert(id, seen);
    let outcome = read_body(recv, id, &log).await;
    let failed = outcome.is_err();
    log.lock().unwrap().get_mut(&id).unwrap().outcome = Some(outcome);
    if failed {
        return;
    }
    let len: usize = path.as_deref().and_then(|p| p.strip_prefix("/r")).and_then(|n| n.parse().ok()).unwrap_or(0);
    let response = http::Response::builder().status(200).body(()).unwrap();
    match respond.send_response(response, len == 0) {
        Ok(mut send) if len > 0 => {
            let _ = send.send_data(Bytes::from(vec![0x5a; len]), true);
        }
        _ => {}
    }
}

/// Ensures the expected pseudo-headers of `sent` reached the peer as `seen` shows.
fn check_request(id: u32, sent: &Sent, seen: &Seen) -> Result<(), TestCaseError> {
    let head: BTreeMap<&str, &str> = seen.head.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let want = |name: &str| pseudo(&sent.fields, name).map(|v| String::from_utf8(v.to_vec()).unwrap());
    prop_assert_eq!(Some(head[":method"].to_string()), want(":method"), "stream {}: :method", id);
    prop_assert_eq!(Some(head[":authority"].to_string()), want(":authority"), "stream {}: :authority", id);
    if let Some(path) = want(":path") {
        prop_assert_eq!(head[":path"], path.as_str(), "stream {}: :path", id);
    }
    prop_assert_eq!(head.get(":protocol").map(|p| p.to_string()), want(":protocol"), "stream {}: :protocol", id);
    prop_assert_eq!(&seen.fields, &regular(&sent.fields), "stream {}: fields", id);
    Ok(())
}

/// Runs the client-role case `ops` against h2's server.
fn run_client(
    ops: Vec<ClientOp>,
    max_concurrent: u32,
    initial_window: u32,
    connect_protocol: bool,
) -> Result<(), TestCaseError> {
    runtime().block_on(async move {
        let (ours, theirs) = tokio::io::duplex(1 << 24);
        let log: Log = Arc::default();
        let peer_error = Arc::new(Mutex::new(None));
        let window = Arc::new(WindowCommand::default());
        serve(
            theirs,
            max_concurrent,
            initial_window,
            connect_protocol,
            log.clone(),
            peer_error.clone(),
            window.clone(),
        );
        let mut host = Host::new(Connection::new(Config::default(), &h2fw::pool::Pool::default()), ours);
        host.conn.write_preface(&[(setting::ENABLE_PUSH, 0)]).unwrap();
        host.pump().await;

        let mut sent: BTreeMap<u32, Sent> = BTreeMap::new();
        let mut next_id = 1;
        let mut peer_window = initial_window;
        let pick = |sent: &BTreeMap<u32, Sent>, i: usize| sent.keys().nth(i % sent.len().max(1)).copied();
        for op in ops {
            let before = host.conn.stats();
            match op {
                ClientOp::Open { kind, defect, content_length, value, end_stream, response_len } => {
                    // A request that declares a body and has none is malformed
                    // (RFC 9113 §8.1.1); the writer does not refuse it yet (see
                    // `conn_rules.rs`, `bugs`), so it is not generated.
                    let content_length = content_length.filter(|&len| !(end_stream && len > 0));
                    let fields = request_fields(kind, defect, content_length, value, response_len);
                    let intact = request_fields(kind, Defect::None, content_length, value, response_len);
                    let hints = StreamHints { content_length };
                    match host.conn.open_stream(next_id, &fields.get(), hints, end_stream) {
                        Ok(()) => {
                            prop_assert!(fields.0 == intact.0, "a defective request was accepted: {fields:?}");
                            prop_assert!(value != 0x01 && value != 0x7f, "a control byte was accepted");
                            let extended = matches!(kind, Kind::ExtendedConnect);
                            prop_assert!(!extended || connect_protocol, ":protocol accepted without the setting");
                            let declared = content_length.filter(|_| !end_stream);
                            let entry = Sent {
                                fields,
                                body: Vec::new(),
                                open: !end_stream,
                                trailers: None,
                                reset: false,
                                declared,
                            };
                            sent.insert(next_id, entry);
                            next_id += 2;
                        }
                        Err(_) => refused_changed_nothing(&host, &before, "open_stream")?,
                    }
                }
                ClientOp::Send { stream, len, call } => {
                    let Some(id) = pick(&sent, stream) else { continue };
                    let data = body(id, sent[&id].body.len(), len);
                    match send_body(&mut host, id, &data, call).await {
                        Ok(n) => {
                            prop_assert!(sent[&id].open, "stream {id}: body accepted after its end");
                            sent.get_mut(&id).unwrap().body.extend_from_slice(&data[..n]);
                        }
                        Err(Error::StreamNotOpen { .. }) => prop_assert!(!sent[&id].open, "stream {id}: not open"),
                        Err(_) => {}
                    }
                }
                ClientOp::Finish { stream, trailers } => {
                    let Some(id) = pick(&sent, stream) else { continue };
                    let fields = trailer_fields(id);
                    match host.conn.finish(id, trailers.then(|| fields.get()).as_deref()) {
                        Ok(()) => {
                            let entry = sent.get_mut(&id).unwrap();
                            prop_assert!(entry.open, "stream {id}: finished twice");
                            entry.open = false;
                            entry.trailers = trailers.then_some(fields);
                        }
                        Err(_) => refused_changed_nothing(&host, &before, "finish")?,
                    }
                }
                ClientOp::Reset { stream } => {
                    let Some(id) = pick(&sent, stream) else { continue };
                    match host.conn.reset(id, 8) {
                        Ok(()) => {
                            let entry = sent.get_mut(&id).unwrap();
                            entry.open = false;
                            entry.reset = true;
                            host.reset_here.insert(id);
                        }
                        Err(_) => refused_changed_nothing(&host, &before, "reset")?,
                    }
                }
                ClientOp::WindowUpdate { stream, increment } => {
                    let id = stream.and_then(|i| pick(&sent, i)).unwrap_or(0);
                    if host.conn.window_update(id, increment).is_err() {
                        refused_changed_nothing(&host, &before, "window_update")?;
                    }
                }
                ClientOp::OurInitialWindow(size) => {
                    if host.conn.write_settings(&[(setting::INITIAL_WINDOW_SIZE, size)]).is_err() {
                        refused_changed_nothing(&host, &before, "write_settings")?;
                    }
                }
                ClientOp::Priority { stream } => {
                    let Some(id) = pick(&sent, stream) else { continue };
                    let priority = Priority { stream_dependency: 0, weight: 16, exclusive: false };
                    host.conn.priority(id, priority).unwrap();
                }
                ClientOp::Ping => host.conn.ping(*b"h2fw-pin", false).unwrap(),
                ClientOp::Drain { piece } => {
                    host.flush(piece).await;
                }
                ClientOp::PeerInitialWindow(size) => window.raise(size, &mut peer_window),
                ClientOp::Pump => host.pump().await,
            }
            host.turn().await;
            check_complaints(&host, &peer_error)?;
        }

        // End every stream: the rest of a declared body, then END_STREAM.
        host.grant_credit();
        host.pump().await;
        let ids: Vec<u32> = sent.keys().copied().collect();
        for id in ids {
            let entry = &sent[&id];
            if !entry.open {
                continue;
            }
            let missing = entry.declared.map_or(0, |len| len as usize - entry.body.len());
            let data = body(id, entry.body.len(), missing);
            let mut taken = 0;
            while taken < missing {
                match host.conn.send(id, &data[taken..]) {
                    Ok(n) => taken += n,
                    Err(Error::WouldBlock { .. } | Error::Pool(_)) => host.pump().await,
                    Err(error) => prop_assert!(false, "stream {id}: {error:?}"),
                }
            }
            let entry = sent.get_mut(&id).unwrap();
            entry.body.extend_from_slice(&data);
            host.conn.finish(id, None).unwrap();
            entry.open = false;
        }
        host.pump().await;
        host.grant_credit();
        host.pump().await;
        check_complaints(&host, &peer_error)?;

        // What the server received, stream by stream.
        let seen = log.lock().unwrap().clone();
        for (&id, entry) in &sent {
            let view = seen.get(&id);
            if entry.reset {
                if let Some(view) = view {
                    prop_assert!(entry.body.starts_with(&view.body), "stream {id}: body before the reset differs");
                }
                continue;
            }
            prop_assert!(view.is_some(), "stream {id} never reached the server");
            let view = view.unwrap();
            prop_assert_eq!(
                &view.outcome,
                &Some(Ok(())),
                "stream {}: server got {} of {} body bytes; writer: state {:?}, window {:?}, pending {}, {:?}",
                id,
                view.body.len(),
                entry.body.len(),
                host.conn.stream_state(id),
                host.conn.stream_window(id),
                host.conn.stream_pending(id),
                host.conn.stats()
            );
            check_request(id, entry, view)?;
            prop_assert!(
                view.body == entry.body,
                "stream {id}: body ({} vs {} bytes)",
                view.body.len(),
                entry.body.len()
            );
            prop_assert_eq!(&view.trailers, &entry.trailers.as_ref().map(regular), "stream {}: trailers", id);
            prop_assert_eq!(host.conn.stream_state(id), StreamState::Closed, "stream {}: answered", id);
        }
        prop_assert!(seen.keys().all(|id| sent.contains_key(id)), "the server saw a stream never opened");
        let stats = host.conn.stats();
        prop_assert_eq!((stats.live_bytes, stats.open_streams, stats.leased_bytes), (0, 0, 0));
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn h2s_server_accepts_what_the_client_writes(
        ops in prop::collection::vec(client_op(), 1..120),
        max_concurrent in prop_oneof![Just(1u32), Just(3), Just(100)],
        // From 100 bytes: on smaller windows each body byte is a round trip.
        initial_window in prop_oneof![Just(100u32), Just(1000), Just(65_535), Just(1 << 20)],
        connect_protocol in any::<bool>(),
    ) {
        run_client(ops, max_concurrent, initial_window, connect_protocol)?;
    }
}

// ---------------------------------------------------------------- server role

/// A response status the writer may be asked to send.
fn status() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just("200"), 1 => Just("204"), 1 => Just("404"), 1 => Just("100"), 1 => Just("103"), 1 => Just("101"), 1 => Just("2x0")]
}

#[derive(Debug, Clone)]
enum ServerOp {
    /// The peer sends a request with a body of `body_len` bytes.
    PeerRequest {
        body_len: usize,
        trailers: bool,
        content_length: bool,
    },
    Respond {
        stream: usize,
        status: &'static str,
        content_length: Option<u64>,
        value: u8,
        end_stream: bool,
    },
    Send {
        stream: usize,
        len: usize,
        call: SendCall,
    },
    Finish {
        stream: usize,
        trailers: bool,
    },
    Reset {
        stream: usize,
    },
    Push {
        stream: usize,
        post: bool,
        content_length: bool,
    },
    WindowUpdate {
        stream: Option<usize>,
        increment: u32,
    },
    OurInitialWindow(u32),
    Ping,
    Drain {
        piece: usize,
    },
    PeerInitialWindow(u32),
    Pump,
}

fn server_op() -> impl Strategy<Value = ServerOp> {
    prop_oneof![
        3 => (prop_oneof![Just(0usize), 1usize..3000, 30_000usize..90_000], any::<bool>(), any::<bool>())
            .prop_map(|(body_len, trailers, content_length)| ServerOp::PeerRequest { body_len, trailers, content_length }),
        4 => (0usize..16, status(), prop::option::weighted(0.3, 0u64..30_000), value_byte(), prop::bool::weighted(0.2))
            .prop_map(|(stream, status, content_length, value, end_stream)| ServerOp::Respond {
                stream,
                status,
                content_length,
                value,
                end_stream,
            }),
        8 => (0usize..16, body_len(), send_call()).prop_map(|(stream, len, call)| ServerOp::Send { stream, len, call }),
        3 => (0usize..16, any::<bool>()).prop_map(|(stream, trailers)| ServerOp::Finish { stream, trailers }),
        1 => (0usize..16).prop_map(|stream| ServerOp::Reset { stream }),
        1 => (0usize..16, prop::bool::weighted(0.2), prop::bool::weighted(0.2))
            .prop_map(|(stream, post, content_length)| ServerOp::Push { stream, post, content_length }),
        1 => (prop::option::of(0usize..16), prop_oneof![1u32..100_000, Just(1 << 30), Just((1 << 31) - 1)])
            .prop_map(|(stream, increment)| ServerOp::WindowUpdate { stream, increment }),
        1 => prop_oneof![Just(0u32), Just(1000), Just(65_535), Just(1 << 20)].prop_map(ServerOp::OurInitialWindow),
        1 => Just(ServerOp::Ping),
        3 => prop_oneof![1usize..20, 20usize..5000, 5000usize..100_000].prop_map(|piece| ServerOp::Drain { piece }),
        1 => prop_oneof![Just(100u32), Just(1000), Just(16_384), Just(65_535), Just(1 << 20)].prop_map(ServerOp::PeerInitialWindow),
        3 => Just(ServerOp::Pump),
    ]
}

/// What the writer sent on one stream it answers (a request's, or a push).
#[derive(Debug, Default)]
struct Answer {
    /// The final response's fields, once sent.
    response: Option<Fields>,
    body: Vec<u8>,
    /// Still takes body bytes.
    open: bool,
    /// END_STREAM queued.
    ended: bool,
    trailers: Option<Fields>,
    reset: bool,
    declared: Option<u64>,
    /// The promised request, for a push.
    promise: Option<Fields>,
}

/// The h2 client: sends one request and reads its response and pushes.
async fn request(
    client: h2::client::SendRequest<Bytes>,
    body_len: usize,
    trailers: bool,
    content_length: bool,
    log: Log,
    error: Arc<Mutex<Option<String>>>,
) {
    let fail = |e: h2::Error| *error.lock().unwrap() = Some(e.to_string());
    let mut client = match client.ready().await {
        Ok(client) => client,
        Err(e) => return fail(e),
    };
    let mut builder = http::Request::builder().method("POST").uri("https://example.com/upload");
    if content_length {
        builder = builder.header("content-length", body_len);
    }
    let end = body_len == 0 && !trailers;
    let (mut response, mut send) = match client.send_request(builder.body(()).unwrap(), end) {
        Ok(sent) => sent,
        Err(e) => return fail(e),
    };
    if body_len > 0 {
        let _ = send.send_data(Bytes::from(vec![0x42; body_len]), !trailers);
    }
    if trailers {
        let mut map = http::HeaderMap::new();
        map.insert("x-client-trailer", http::HeaderValue::from_static("1"));
        let _ = send.send_trailers(map);
    }
    let id = u32::from(response.stream_id());
    let mut pushes = response.push_promises();
    let push_log = log.clone();
    tokio::spawn(async move {
        // Each push is read on its own, as its own request would be.
        while let Some(Ok(push)) = pushes.push_promise().await {
            tokio::spawn(read_push(push, push_log.clone()));
        }
    });
    log.lock().unwrap().entry(id).or_default();
    let outcome = match response.await {
        Ok(response) => {
            let (head, recv) = response.into_parts();
            {
                let mut log = log.lock().unwrap();
                let entry = log.get_mut(&id).unwrap();
                entry.head.push((":status".into(), head.status.as_str().into()));
                entry.fields = decoded_fields(&head.headers);
            }
            read_body(recv, id, &log).await
        }
        Err(e) => Err(e.to_string()),
    };
    log.lock().unwrap().get_mut(&id).unwrap().outcome = Some(outcome);
}

/// Reads a pushed request and its response into the log.
async fn read_push(push: h2::client::PushPromise, log: Log) {
    let (request, pushed) = push.into_parts();
    let promised = u32::from(pushed.stream_id());
    let seen = Seen {
        head: vec![(":method".into(), request.method().to_string()), (":path".into(), request.uri().path().into())],
        fields: decoded_fields(request.headers()),
        ..Seen::default()
    };
    log.lock().unwrap().insert(promised, seen);
    let outcome = match pushed.await {
        Ok(response) => {
            let (head, recv) = response.into_parts();
            {
                let mut log = log.lock().unwrap();
                let entry = log.get_mut(&promised).unwrap();
                entry.head.push((":status".into(), head.status.as_str().into()));
                entry.fields = decoded_fields(&head.headers);
            }
            read_body(recv, promised, &log).await
        }
        Err(e) => Err(e.to_string()),
    };
    log.lock().unwrap().get_mut(&promised).unwrap().outcome = Some(outcome);
}

/// The response fields of `status`, with an `x-v` field and a declared length.
fn response_fields(status: &str, value: u8, content_length: Option<u64>) -> Fields {
    let mut fields = Fields::new(&[(":status", status)]);
    fields.0.push((b"x-v".to_vec(), vec![b'v', value, b'v']));
    if let Some(len) = content_length {
        fields.0.push((b"content-length".to_vec(), len.to_string().into_bytes()));
    }
    fields
}

/// Runs the server-role case `ops` against h2's client.
fn run_server(ops: Vec<ServerOp>, push: bool, initial_window: u32) -> Result<(), TestCaseError> {
    runtime().block_on(async move {
        let (ours, theirs) = tokio::io::duplex(1 << 24);
        let log: Log = Arc::default();
        let peer_error = Arc::new(Mutex::new(None));
        let window = Arc::new(WindowCommand::default());
        let mut builder = h2::client::Builder::new();
        builder.enable_push(push).initial_window_size(initial_window);
        let (client, mut connection) = builder.handshake::<_, Bytes>(theirs).await.unwrap();
        {
            let (error, window) = (peer_error.clone(), window.clone());
            tokio::spawn(async move {
                let result = poll_fn(|cx| {
                    // Refused while an earlier SETTINGS waits for its ACK: then skipped.
                    if let Some(size) = window.take(cx) {
                        let _ = connection.set_initial_window_size(size);
                    }
                    std::pin::Pin::new(&mut connection).poll(cx)
                })
                .await;
                if let Err(e) = result {
                    *error.lock().unwrap() = Some(e.to_string());
                }
            });
        }
        let config = Config { role: Role::Server, ..Config::default() };
        let mut host = Host::new(Connection::new(config, &h2fw::pool::Pool::default()), ours);
        host.conn.write_preface(&[(setting::MAX_CONCURRENT_STREAMS, 100)]).unwrap();
        host.pump().await;

        let mut answers: BTreeMap<u32, Answer> = BTreeMap::new();
        let mut next_push = 2;
        let mut peer_window = initial_window;
        let mut requests = 0;
        for op in ops {
            // Streams the peer opened since the last op get an entry.
            for &id in &host.peer_streams {
                answers.entry(id).or_insert_with(|| Answer { open: false, ..Answer::default() });
            }
            let pick =
                |answers: &BTreeMap<u32, Answer>, i: usize| answers.keys().nth(i % answers.len().max(1)).copied();
            let before = host.conn.stats();
            match op {
                ServerOp::PeerRequest { body_len, trailers, content_length } => {
                    if requests < 40 {
                        requests += 1;
                        let args = (client.clone(), log.clone(), peer_error.clone());
                        tokio::spawn(request(args.0, body_len, trailers, content_length, args.1, args.2));
                    }
                }
                ServerOp::Respond { stream, status, content_length, value, end_stream } => {
                    let Some(id) = pick(&answers, stream) else { continue };
                    // A declared length with END_STREAM is for HEAD and 304 only
                    // (RFC 9113 §8.1.1), which the writer cannot tell (it never
                    // sees the request): the host's to get right, so it is not
                    // generated; nor is a length on an informational response.
                    let bodiless = end_stream && !["204", "304"].contains(&status);
                    let content_length =
                        content_length.filter(|&len| !status.starts_with('1') && (!bodiless || len == 0));
                    let fields = response_fields(status, value, content_length);
                    let hints = StreamHints { content_length };
                    match host.conn.respond(id, &fields.get(), hints, end_stream) {
                        Ok(()) => {
                            prop_assert!(!["101", "2x0"].contains(&status), "a {status} response was accepted");
                            prop_assert!(value != 0x01 && value != 0x7f, "a control byte was accepted");
                            if !status.starts_with('1') {
                                let entry = answers.get_mut(&id).unwrap();
                                prop_assert!(entry.response.is_none(), "stream {id}: a second final response");
                                entry.response = Some(fields);
                                entry.open = !end_stream;
                                entry.ended = end_stream;
                                entry.declared = content_length.filter(|_| !end_stream);
                            }
                        }
                        Err(_) => refused_changed_nothing(&host, &before, "respond")?,
                    }
                }
                ServerOp::Send { stream, len, call } => {
                    let Some(id) = pick(&answers, stream) else { continue };
                    let data = body(id, answers[&id].body.len(), len);
                    match send_body(&mut host, id, &data, call).await {
                        Ok(n) => {
                            prop_assert!(answers[&id].open, "stream {id}: body accepted while not open");
                            answers.get_mut(&id).unwrap().body.extend_from_slice(&data[..n]);
                        }
                        Err(Error::StreamNotOpen { .. }) => prop_assert!(!answers[&id].open, "stream {id}: not open"),
                        Err(_) => {}
                    }
                }
                ServerOp::Finish { stream, trailers } => {
                    let Some(id) = pick(&answers, stream) else { continue };
                    let fields = trailer_fields(id);
                    match host.conn.finish(id, trailers.then(|| fields.get()).as_deref()) {
                        Ok(()) => {
                            let entry = answers.get_mut(&id).unwrap();
                            prop_assert!(entry.open, "stream {id}: finished while not open");
                            entry.open = false;
                            entry.ended = true;
                            entry.trailers = trailers.then_some(fields);
                        }
                        Err(_) => refused_changed_nothing(&host, &before, "finish")?,
                    }
                }
                ServerOp::Reset { stream } => {
                    let Some(id) = pick(&answers, stream) else { continue };
                    match host.conn.reset(id, 8) {
                        Ok(()) => {
                            let entry = answers.get_mut(&id).unwrap();
                            entry.open = false;
                            entry.reset = true;
                            host.reset_here.insert(id);
                        }
                        Err(_) => refused_changed_nothing(&host, &before, "reset")?,
                    }
                }
                ServerOp::Push { stream, post, content_length } => {
                    let Some(id) = pick(&answers, stream) else { continue };
                    let mut fields = conn_common::get_request(&format!("/pushed{next_push}"));
                    if post {
                        fields.0[0].1 = b"POST".to_vec();
                    }
                    // A promised request with content is malformed (RFC 9113
                    // §8.4); the writer does not refuse it yet (see
                    // `conn_rules.rs`, `bugs`), so only a zero length is generated.
                    if content_length {
                        fields.0.push((b"content-length".to_vec(), b"0".to_vec()));
                    }
                    match host.conn.push_promise(id, next_push, &fields.get()) {
                        Ok(()) => {
                            prop_assert!(push && !post, "a push was accepted (push {push}, POST {post})");
                            answers.insert(next_push, Answer { promise: Some(fields), ..Answer::default() });
                            next_push += 2;
                        }
                        Err(_) => refused_changed_nothing(&host, &before, "push_promise")?,
                    }
                }
                ServerOp::WindowUpdate { stream, increment } => {
                    let id = stream.and_then(|i| pick(&answers, i)).unwrap_or(0);
                    if host.conn.window_update(id, increment).is_err() {
                        refused_changed_nothing(&host, &before, "window_update")?;
                    }
                }
                ServerOp::OurInitialWindow(size) => {
                    if host.conn.write_settings(&[(setting::INITIAL_WINDOW_SIZE, size)]).is_err() {
                        refused_changed_nothing(&host, &before, "write_settings")?;
                    }
                }
                ServerOp::Ping => host.conn.ping(*b"h2fw-pin", false).unwrap(),
                ServerOp::Drain { piece } => {
                    host.flush(piece).await;
                }
                ServerOp::PeerInitialWindow(size) => window.raise(size, &mut peer_window),
                ServerOp::Pump => host.pump().await,
            }
            host.turn().await;
            check_complaints(&host, &peer_error)?;
        }

        // Answer every stream: a final response if none went out, the rest of
        // a declared body, then END_STREAM.
        host.grant_credit();
        host.pump().await;
        for &id in &host.peer_streams {
            answers.entry(id).or_insert_with(|| Answer { open: false, ..Answer::default() });
        }
        let ids: Vec<u32> = answers.keys().copied().collect();
        for id in ids {
            let entry = &answers[&id];
            if entry.reset || entry.ended {
                continue;
            }
            if entry.response.is_none() {
                let fields = response_fields("200", b'x', None);
                host.conn.respond(id, &fields.get(), StreamHints::default(), false).unwrap();
                let entry = answers.get_mut(&id).unwrap();
                entry.response = Some(fields);
                entry.open = true;
            }
            let entry = &answers[&id];
            let missing = entry.declared.map_or(0, |len| len as usize - entry.body.len());
            let data = body(id, entry.body.len(), missing);
            let mut taken = 0;
            while taken < missing {
                match host.conn.send(id, &data[taken..]) {
                    Ok(n) => taken += n,
                    Err(Error::WouldBlock { .. } | Error::Pool(_)) => host.pump().await,
                    Err(error) => prop_assert!(false, "stream {id}: {error:?}"),
                }
            }
            let entry = answers.get_mut(&id).unwrap();
            entry.body.extend_from_slice(&data);
            host.conn.finish(id, None).unwrap();
            entry.open = false;
            entry.ended = true;
        }
        host.pump().await;
        host.grant_credit();
        host.pump().await;
        check_complaints(&host, &peer_error)?;

        // What the client received, stream by stream.
        let seen = log.lock().unwrap().clone();
        for (&id, entry) in &answers {
            let view = seen.get(&id);
            if entry.reset {
                if let Some(view) = view {
                    prop_assert!(entry.body.starts_with(&view.body), "stream {id}: body before the reset differs");
                }
                continue;
            }
            prop_assert!(view.is_some(), "stream {id}: the client saw nothing");
            let view = view.unwrap();
            prop_assert_eq!(
                &view.outcome,
                &Some(Ok(())),
                "stream {}: the client got {:?} and {} of {} body bytes; writer: state {:?}, window {:?}, pending {}; \
                 {:?}; {:?}",
                id,
                view.head,
                view.body.len(),
                entry.body.len(),
                host.conn.stream_state(id),
                host.conn.stream_window(id),
                host.conn.stream_pending(id),
                host.conn.stats(),
                answers
                    .iter()
                    .map(|(id, a)| (*id, a.promise.is_some(), a.reset, a.ended, a.body.len()))
                    .collect::<Vec<_>>()
            );
            let response = entry.response.as_ref().unwrap();
            let status = view.head.iter().find(|(n, _)| n == ":status").map(|(_, v)| v.as_bytes());
            prop_assert_eq!(status, pseudo(response, ":status"), "stream {}: :status", id);
            prop_assert_eq!(&view.fields, &regular(response), "stream {}: fields", id);
            prop_assert!(
                view.body == entry.body,
                "stream {id}: body ({} vs {} bytes)",
                view.body.len(),
                entry.body.len()
            );
            prop_assert_eq!(&view.trailers, &entry.trailers.as_ref().map(regular), "stream {}: trailers", id);
            if let Some(promise) = &entry.promise {
                let path = view.head.iter().find(|(n, _)| n == ":path").map(|(_, v)| v.as_bytes());
                prop_assert_eq!(path, pseudo(promise, ":path"), "push {}: :path", id);
            }
            prop_assert_eq!(host.conn.stream_state(id), StreamState::Closed, "stream {}: closed", id);
        }
        prop_assert!(seen.keys().all(|id| answers.contains_key(id)), "the client saw a stream never answered");
        let stats = host.conn.stats();
        prop_assert_eq!((stats.live_bytes, stats.open_streams, stats.leased_bytes), (0, 0, 0));
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn h2s_client_accepts_what_the_server_writes(
        ops in prop::collection::vec(server_op(), 1..120),
        push in any::<bool>(),
        // From 100 bytes: on smaller windows each body byte is a round trip.
        initial_window in prop_oneof![Just(100u32), Just(1000), Just(65_535), Just(1 << 20)],
    ) {
        run_server(ops, push, initial_window)?;
    }
}

// ------------------------------------------------- a window the peer lowered

/// Stream 1 of a client whose request body (16 KiB) h2's server read in
/// full, after which the server lowered its INITIAL_WINDOW_SIZE to 1: the
/// writer's window is −16 383, and h2 sends no WINDOW_UPDATE for it (its
/// application released the bytes before the lower size applied).
async fn lowered_window(log: &Log, error: &Arc<Mutex<Option<String>>>) -> (Host, Arc<WindowCommand>) {
    let (ours, theirs) = tokio::io::duplex(1 << 24);
    let window = Arc::new(WindowCommand::default());
    serve(theirs, 100, 65_535, false, log.clone(), error.clone(), window.clone());
    let mut host = Host::new(Connection::new(Config::default(), &h2fw::pool::Pool::default()), ours);
    host.conn.write_preface(&[]).unwrap();
    host.pump().await;
    host.conn
        .open_stream(1, &request_fields(Kind::Post, Defect::None, None, b'x', 0).get(), StreamHints::default(), false)
        .unwrap();
    assert_eq!(host.conn.send(1, &body(1, 0, 16_384)).unwrap(), 16_384);
    host.pump().await;
    assert_eq!(log.lock().unwrap()[&1].body.len(), 16_384);
    window.raise(1, &mut 0);
    host.pump().await;
    assert_eq!(host.conn.stream_window(1), Some(1 - 16_384));
    (host, window)
}

/// With the window negative, trailers (not flow controlled) still end the
/// stream: an empty trailer block is a host's way out, and h2 takes it.
#[test]
fn an_empty_trailer_block_ends_a_stream_whose_window_is_negative() {
    runtime().block_on(async {
        let (log, error) = (Log::default(), Arc::new(Mutex::new(None)));
        let (mut host, _window) = lowered_window(&log, &error).await;
        host.conn.finish(1, Some(&[])).unwrap();
        host.pump().await;
        assert_eq!(*error.lock().unwrap(), None);
        let seen = log.lock().unwrap()[&1].clone();
        assert_eq!((seen.outcome, seen.body.len(), seen.trailers), (Some(Ok(())), 16_384, Some(Vec::new())));
        assert_eq!(host.conn.stream_state(1), StreamState::Closed, "answered");
        assert!(host.complaints.resets.is_empty() && host.complaints.goaways.is_empty());
    });
}

/// The same stream ended with `finish(1, None)`: the empty END_STREAM waits
/// for a positive window (RFC 9113 §6.9, as issue 10 chose; §6.9.1 allows
/// it on an exhausted window), which h2 never grants, so the request never
/// ends. Ending such a stream with an empty trailer block (see above) would
/// need no window.
#[test]

fn a_negative_window_after_the_peer_lowered_it() {
    runtime().block_on(async {
        let (log, error) = (Log::default(), Arc::new(Mutex::new(None)));
        let (mut host, _window) = lowered_window(&log, &error).await;
        host.conn.finish(1, None).unwrap();
        host.pump().await;
        assert_eq!(log.lock().unwrap()[&1].outcome, Some(Ok(())), "the server has the whole request");
    });
}

/// Streams 1 and 3 of a client; the peer reads stream 1 to its end before
/// it reads stream 3 (an application that handles requests in order).
/// Stream 3's body takes the whole connection window, then stream 1 ends
/// with nothing pending: its empty END_STREAM waits for a connection
/// WINDOW_UPDATE, which comes only once stream 3 is read, which comes only
/// once stream 1 has ended. RFC 9113 §6.9.1 lets an empty END_STREAM go
/// on an exhausted (zero) window for this reason; only a negative window
/// (§6.9.2) needs it to wait.
#[test]

fn an_empty_end_stream_on_a_connection_window_another_stream_used_up() {
    runtime().block_on(async {
        let (ours, theirs) = tokio::io::duplex(1 << 24);
        let log = Log::default();
        let server_log = log.clone();
        tokio::spawn(async move {
            let mut conn = h2::server::handshake(theirs).await.unwrap();
            let first = conn.accept().await.unwrap().unwrap();
            let third = conn.accept().await.unwrap().unwrap();
            tokio::spawn(async move { while conn.accept().await.is_some() {} });
            for (id, (request, mut respond)) in [(1, first), (3, third)] {
                let outcome = read_body(request.into_body(), id, &server_log).await;
                server_log.lock().unwrap().get_mut(&id).unwrap().outcome = Some(outcome);
                let _ = respond.send_response(http::Response::new(()), true);
            }
        });
        let mut host = Host::new(Connection::new(Config::default(), &h2fw::pool::Pool::default()), ours);
        host.conn.write_preface(&[]).unwrap();
        host.pump().await;
        let request = request_fields(Kind::Post, Defect::None, None, b'x', 0);
        host.conn.open_stream(1, &request.get(), StreamHints::default(), false).unwrap();
        host.conn.open_stream(3, &request.get(), StreamHints::default(), false).unwrap();
        host.conn.send(1, b"first").unwrap();
        // Stream 3 takes what is left of the connection window (the server
        // gave back what it read of stream 1 already).
        let mut sent = 0;
        while host.conn.stats().conn_window > 0 {
            let left = host.conn.stats().conn_window as usize;
            sent += host.conn.send(3, &body(3, sent, left)).unwrap();
            host.pump().await;
        }
        host.conn.finish(1, None).unwrap();
        host.pump().await;
        assert_eq!(log.lock().unwrap().get(&1).and_then(|s| s.outcome.clone()), Some(Ok(())), "stream 1 never ends");
    });
}

/// What the writer could do instead, shown through the raw escape hatch
/// (stream 1 unmanaged): an empty END_STREAM on the exhausted connection
/// window of the test above is what RFC 9113 §6.9.1 allows, and h2 takes
/// it; the stream ends, and the server goes on to read stream 3.
#[test]
fn h2_takes_an_empty_end_stream_on_an_exhausted_connection_window() {
    use h2fw::conn::HeadersOptions;
    use h2fw::frame::Frame;
    runtime().block_on(async {
        let (ours, theirs) = tokio::io::duplex(1 << 24);
        let log = Log::default();
        let server_log = log.clone();
        tokio::spawn(async move {
            let mut conn = h2::server::handshake(theirs).await.unwrap();
            let first = conn.accept().await.unwrap().unwrap();
            let third = conn.accept().await.unwrap().unwrap();
            tokio::spawn(async move { while conn.accept().await.is_some() {} });
            for (id, (request, mut respond)) in [(1, first), (3, third)] {
                let outcome = read_body(request.into_body(), id, &server_log).await;
                server_log.lock().unwrap().get_mut(&id).unwrap().outcome = Some(outcome);
                let _ = respond.send_response(http::Response::new(()), true);
            }
        });
        let mut host = Host::new(Connection::new(Config::default(), &h2fw::pool::Pool::default()), ours);
        host.conn.write_preface(&[]).unwrap();
        host.pump().await;
        let request = request_fields(Kind::Post, Defect::None, None, b'x', 0);
        host.conn.raw().write_headers(1, &request.get(), HeadersOptions::default()).unwrap();
        host.conn
            .raw()
            .write_frame(&Frame::Data { stream: 1, data: b"first", end_stream: false, pad_length: None })
            .unwrap();
        host.conn.open_stream(3, &request.get(), StreamHints::default(), false).unwrap();
        let mut sent = 0;
        while host.conn.stats().conn_window > 0 {
            let left = host.conn.stats().conn_window as usize;
            sent += host.conn.send(3, &body(3, sent, left)).unwrap();
            host.pump().await;
        }
        host.conn.raw().write_frame(&Frame::Data { stream: 1, data: b"", end_stream: true, pad_length: None }).unwrap();
        host.pump().await;
        host.conn.finish(3, None).unwrap();
        host.pump().await;
        let seen = log.lock().unwrap().clone();
        assert_eq!((seen[&1].outcome.clone(), &seen[&1].body[..]), (Some(Ok(())), &b"first"[..]));
        assert_eq!((seen[&3].outcome.clone(), seen[&3].body.len()), (Some(Ok(())), sent));
        assert!(host.complaints.resets.is_empty() && host.complaints.goaways.is_empty());
    });
}
