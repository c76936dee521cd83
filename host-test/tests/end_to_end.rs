//! The component's bytes, sent over loopback to a real HTTP/2 server (hyper),
//! with the server's SETTINGS and WINDOW_UPDATE frames fed back into the
//! component: every request arrives intact at the server's handler.

use std::collections::BTreeMap;
use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2fw::conn::{Config, StreamHints};
use h2fw::frame::Frame;
use h2fw::hpack::HeaderField;
use h2fw::pool::PoolConfig;
use h2fw_host::runtime::ComponentWriter;
use h2fw_host::writer::{ErrorKind, WriteError, Writer};
use http_body_util::{BodyExt, Empty};
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Whole test, start to finish.
const DEADLINE: Duration = Duration::from_secs(60);
/// The server's windows: small, so that bodies need its WINDOW_UPDATEs.
const SERVER_WINDOW: u32 = 65_535;
/// The server's HPACK table: smaller than the default, so the encoder must signal it.
const SERVER_TABLE_SIZE: u32 = 1024;

/// What the handler saw of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body_len: usize,
    body_hash: u64,
    trailers: BTreeMap<String, String>,
}

/// One request the client sends.
struct Upload {
    stream: u32,
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String, bool)>,
    body: Vec<u8>,
    content_length: bool,
    trailers: Vec<(&'static str, String)>,
}

impl Upload {
    fn expected(&self) -> Seen {
        let mut headers: BTreeMap<String, String> =
            self.headers.iter().map(|(name, value, _)| (name.to_string(), value.clone())).collect();
        if self.content_length {
            headers.insert("content-length".into(), self.body.len().to_string());
        }
        Seen {
            method: self.method.into(),
            path: self.path.into(),
            headers,
            body_len: self.body.len(),
            body_hash: fnv1a(&self.body),
            trailers: self.trailers.iter().map(|(name, value)| (name.to_string(), value.clone())).collect(),
        }
    }
}

/// FNV-1a, 64-bit: a body fingerprint both sides compute the same way.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(seed).wrapping_add(i as u8 >> 3)).collect()
}

fn uploads() -> Vec<Upload> {
    vec![
        Upload {
            stream: 1,
            method: "POST",
            path: "/upload/large",
            headers: vec![("content-type", "application/octet-stream".into(), false)],
            body: pattern(300_000, 7),
            content_length: true,
            trailers: vec![],
        },
        Upload {
            stream: 3,
            method: "POST",
            path: "/grpc.Echo/Unary",
            headers: vec![
                ("content-type", "application/grpc".into(), false),
                ("te", "trailers".into(), false),
                ("authorization", "Bearer not-for-the-table".into(), true),
            ],
            body: pattern(1_000, 13),
            content_length: false,
            trailers: vec![("grpc-status", "0".into()), ("x-checksum", format!("{:016x}", fnv1a(&pattern(1_000, 13))))],
        },
        Upload {
            stream: 5,
            method: "GET",
            path: "/small?q=1",
            headers: vec![("accept", "*/*".into(), false)],
            body: vec![],
            content_length: false,
            trailers: vec![],
        },
        Upload {
            stream: 7,
            method: "PUT",
            path: "/upload/streamed",
            headers: vec![("content-type", "text/plain".into(), false)],
            body: pattern(150_001, 3),
            content_length: false,
            trailers: vec![("x-end", "yes".into())],
        },
        Upload {
            stream: 9,
            method: "POST",
            path: "/upload/exact-window",
            headers: vec![],
            body: pattern(SERVER_WINDOW as usize, 5),
            content_length: true,
            trailers: vec![],
        },
    ]
}

async fn handle(
    request: Request<hyper::body::Incoming>,
    seen: mpsc::Sender<Seen>,
) -> Result<Response<Empty<Bytes>>, hyper::Error> {
    let (parts, body) = request.into_parts();
    let collected = body.collect().await?;
    let trailers = collected
        .trailers()
        .map(|map| map.iter().map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string())).collect())
        .unwrap_or_default();
    let body = collected.to_bytes();
    let headers =
        parts.headers.iter().map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string())).collect();
    let path = parts.uri.path_and_query().map(|pq| pq.to_string()).unwrap_or_default();
    let _ = seen.send(Seen {
        method: parts.method.to_string(),
        path,
        headers,
        body_len: body.len(),
        body_hash: fnv1a(&body),
        trailers,
    });
    Ok(Response::new(Empty::new()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_arrive_intact_at_a_real_http2_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (seen_tx, seen_rx) = mpsc::channel();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder
            .initial_stream_window_size(SERVER_WINDOW)
            .initial_connection_window_size(SERVER_WINDOW)
            .adaptive_window(false)
            .header_table_size(SERVER_TABLE_SIZE);
        let service = service_fn(move |request| handle(request, seen_tx.clone()));
        builder.serve_connection(TokioIo::new(tcp), service).await
    });

    let uploads = uploads();
    let expected: BTreeMap<String, Seen> =
        uploads.iter().map(|upload| (upload.path.to_string(), upload.expected())).collect();
    let client = tokio::task::spawn_blocking(move || run_client(address, &uploads, &seen_rx));
    let seen = tokio::time::timeout(DEADLINE, client).await.expect("timed out").unwrap();
    server.abort();

    assert_eq!(seen.len(), expected.len(), "requests seen: {:?}", seen.keys());
    for (path, want) in &expected {
        let got = &seen[path];
        assert_eq!(got.method, want.method, "{path}");
        assert_eq!((got.body_len, got.body_hash), (want.body_len, want.body_hash), "{path}: body");
        assert_eq!(got.trailers, want.trailers, "{path}: trailers");
        for (name, value) in &want.headers {
            assert_eq!(got.headers.get(name), Some(value), "{path}: header {name}");
        }
    }
}

/// Drives the component against the server until the handler has seen
/// every request; returns what it saw, by path.
fn run_client(
    address: std::net::SocketAddr,
    uploads: &[Upload],
    seen: &mpsc::Receiver<Seen>,
) -> BTreeMap<String, Seen> {
    let deadline = Instant::now() + DEADLINE;
    let mut tcp = TcpStream::connect(address).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut writer = ComponentWriter::new(&Config::default(), &PoolConfig::default(), None).unwrap();
    writer.write_preface(&[]).unwrap();
    writer.raw_write_frame(&Frame::Settings { settings: &[(2, 0)] }).unwrap();

    let mut offsets = vec![0usize; uploads.len()];
    let mut finished = vec![false; uploads.len()];
    let mut opened = false;
    let mut settled = false;
    let mut incoming = Vec::new();
    let mut out = Vec::new();
    let mut results = BTreeMap::new();
    while results.len() < uploads.len() {
        assert!(Instant::now() < deadline, "client timed out; server saw {:?}", results.keys());
        // Open the streams once the server's first SETTINGS were applied, so
        // the header blocks carry the table size it asked for.
        if settled && !opened {
            for upload in uploads {
                let fields = upload_fields(upload);
                let hints = StreamHints { content_length: upload.content_length.then_some(upload.body.len() as u64) };
                writer.open_stream(upload.stream, &fields.borrowed(), hints, upload.body.is_empty()).unwrap();
            }
            opened = true;
        }
        if opened {
            feed_bodies(&mut writer, uploads, &mut offsets, &mut finished);
        }
        out.clear();
        while writer.drain(64 << 10, &mut out).unwrap() > 0 {}
        tcp.write_all(&out).unwrap();

        let mut buf = [0u8; 16 << 10];
        match tcp.read(&mut buf) {
            Ok(0) => panic!("server closed the connection; it saw {:?}", results.keys()),
            Ok(n) => incoming.extend_from_slice(&buf[..n]),
            Err(error) if matches!(error.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => {}
            Err(error) => panic!("read: {error}"),
        }
        for frame in take_frames(&mut incoming) {
            match frame.kind {
                // SETTINGS: apply and acknowledge (RFC 9113 §6.5.3).
                4 if frame.flags & 1 == 0 => {
                    let settings: Vec<(u16, u32)> = frame
                        .payload
                        .chunks_exact(6)
                        .map(|s| (u16::from_be_bytes([s[0], s[1]]), u32::from_be_bytes([s[2], s[3], s[4], s[5]])))
                        .collect();
                    writer.apply_peer_settings(&settings).unwrap();
                    writer.raw_write_frame(&Frame::SettingsAck).unwrap();
                    settled = true;
                }
                8 => {
                    let increment = u32::from_be_bytes(frame.payload[..4].try_into().unwrap()) & 0x7fff_ffff;
                    writer.apply_window_update(frame.stream, increment).unwrap();
                }
                3 => panic!("server reset stream {}: {:?}", frame.stream, frame.payload),
                7 => panic!("server sent GOAWAY: {:?}", frame.payload),
                // PING: answer it (RFC 9113 §6.7).
                6 if frame.flags & 1 == 0 => {
                    let opaque_data = frame.payload[..8].try_into().unwrap();
                    writer.raw_write_frame(&Frame::Ping { opaque_data, ack: true }).unwrap();
                }
                _ => {}
            }
        }
        while let Ok(request) = seen.try_recv() {
            results.insert(request.path.clone(), request);
        }
    }
    results
}

/// Offers each stream the rest of its body, finishing it when all was taken.
fn feed_bodies(writer: &mut ComponentWriter, uploads: &[Upload], offsets: &mut [usize], finished: &mut [bool]) {
    for (index, upload) in uploads.iter().enumerate() {
        if finished[index] || upload.body.is_empty() {
            continue;
        }
        let rest = &upload.body[offsets[index]..];
        if !rest.is_empty() {
            match writer.send(upload.stream, &rest[..rest.len().min(32 << 10)]) {
                Ok(taken) => offsets[index] += taken,
                // Backpressure: the rest is offered again after the next drain.
                Err(WriteError::Rejected { kind: ErrorKind::WouldBlock, .. }) => {}
                Err(error) => panic!("stream {}: {error}", upload.stream),
            }
        }
        if offsets[index] == upload.body.len() {
            let trailers = upload_trailers(upload);
            let trailers = trailers.borrowed();
            writer.finish(upload.stream, (!upload.trailers.is_empty()).then_some(&trailers[..])).unwrap();
            finished[index] = true;
        }
    }
}

/// Owned header fields, borrowed as the writer takes them.
struct Fields(Vec<(Vec<u8>, Vec<u8>, bool)>);

impl Fields {
    fn borrowed(&self) -> Vec<HeaderField<'_>> {
        self.0.iter().map(|(name, value, sensitive)| HeaderField { name, value, sensitive: *sensitive }).collect()
    }
}

fn upload_fields(upload: &Upload) -> Fields {
    let mut fields = vec![
        (b":method".to_vec(), upload.method.as_bytes().to_vec(), false),
        (b":scheme".to_vec(), b"http".to_vec(), false),
        (b":authority".to_vec(), b"127.0.0.1".to_vec(), false),
        (b":path".to_vec(), upload.path.as_bytes().to_vec(), false),
    ];
    for (name, value, sensitive) in &upload.headers {
        fields.push((name.as_bytes().to_vec(), value.as_bytes().to_vec(), *sensitive));
    }
    if upload.content_length {
        fields.push((b"content-length".to_vec(), upload.body.len().to_string().into_bytes(), false));
    }
    Fields(fields)
}

fn upload_trailers(upload: &Upload) -> Fields {
    Fields(
        upload
            .trailers
            .iter()
            .map(|(name, value)| (name.as_bytes().to_vec(), value.as_bytes().to_vec(), false))
            .collect(),
    )
}

/// A frame from the server: type, flags, stream, payload.
struct ServerFrame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// Takes the complete frames (RFC 9113 §4.1) off the front of `incoming`.
fn take_frames(incoming: &mut Vec<u8>) -> Vec<ServerFrame> {
    let mut frames = Vec::new();
    let mut at = 0;
    while incoming.len() - at >= 9 {
        let header = &incoming[at..at + 9];
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        if incoming.len() - at < 9 + len {
            break;
        }
        frames.push(ServerFrame {
            kind: header[3],
            flags: header[4],
            stream: u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff,
            payload: incoming[at + 9..at + 9 + len].to_vec(),
        });
        at += 9 + len;
    }
    incoming.drain(..at);
    frames
}
