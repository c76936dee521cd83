//! Helpers shared by the conn and mix tests: build a `Connection` on a pool
//! (under the Go baselines too, with feature `baselines`), drive it, decode
//! its output with the `h2` crate's `Codec`, and group frames by stream.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Cursor;

use bytes::Bytes;
use futures_util::StreamExt;
use h2::frame::Frame as H2Frame;
#[cfg(feature = "baselines")]
use h2fw::baseline::{GoPools, Model};
use h2fw::conn::{Config, Connection, Stats};
use h2fw::frame::PREFACE;
use h2fw::hpack::HeaderField;
use h2fw::pool::{Pool, PoolConfig};

/// A connection alone in a pool of its own with the default limits.
pub fn alone(config: Config) -> Connection {
    Connection::new(config, &Pool::default())
}

/// A pool with the default classes and idle caps and a budget of `budget_bytes`.
pub fn pool_with_budget(budget_bytes: usize) -> Pool {
    Pool::new(PoolConfig { budget_bytes, ..PoolConfig::default() })
}

/// A connection on `pool`: tiered (`model` None), or under a Go baseline,
/// whose streams then take their scratch buffers from the Go pools returned.
#[cfg(feature = "baselines")]
pub fn connect(config: Config, pool: &Pool, model: Option<Model>) -> (Connection, Option<GoPools>) {
    match model {
        None => (Connection::new(config, pool), None),
        Some(model) => {
            let go = GoPools::new(model);
            (Connection::with_baseline(config, pool, &go), Some(go))
        }
    }
}

/// Name of a buffering policy: `tiered`, or the Go model's.
#[cfg(feature = "baselines")]
pub fn policy_name(model: Option<Model>) -> &'static str {
    model.map_or("tiered", Model::name)
}

/// Owned header fields, borrowed as `HeaderField`s with [`Fields::get`].
#[derive(Debug, Clone, Default)]
pub struct Fields(pub Vec<(Vec<u8>, Vec<u8>)>);

impl Fields {
    pub fn new(pairs: &[(&str, &str)]) -> Self {
        Fields(pairs.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect())
    }

    pub fn get(&self) -> Vec<HeaderField<'_>> {
        self.0.iter().map(|(name, value)| HeaderField { name, value, sensitive: false }).collect()
    }
}

/// A POST request's header fields.
pub fn request(path: &str) -> Fields {
    Fields::new(&[(":method", "POST"), (":scheme", "https"), (":authority", "example.com"), (":path", path)])
}

/// A GET request's header fields (what a server may promise).
pub fn get_request(path: &str) -> Fields {
    Fields::new(&[(":method", "GET"), (":scheme", "https"), (":authority", "example.com"), (":path", path)])
}

/// A response's header fields with `status`.
pub fn response(status: &str) -> Fields {
    Fields::new(&[(":status", status)])
}

/// The SETTINGS frame of a preface with every setting at its default: an
/// empty payload, type 0x4, no flags, stream 0.
pub const EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 0x4, 0, 0, 0, 0, 0];

/// `wire` past a client's preface with default settings (the 24-byte magic
/// and an empty SETTINGS frame), which it must start with.
pub fn after_preface(wire: &[u8]) -> &[u8] {
    let rest = wire.strip_prefix(&PREFACE[..]).expect("the wire starts with the preface magic");
    rest.strip_prefix(&EMPTY_SETTINGS[..]).expect("the magic is followed by an empty SETTINGS frame")
}

/// Drains everything the connection will give now, in pieces of `piece` bytes.
pub fn drain_all(conn: &mut Connection, piece: usize, wire: &mut Vec<u8>) -> usize {
    let mut total = 0;
    loop {
        let n = conn.drain(piece, wire).expect("drain");
        total += n;
        if n == 0 {
            return total;
        }
    }
}

/// Decodes `wire` (after the client preface, if it starts with one) with
/// h2's Codec; panics on anything h2 refuses.
pub fn decode(wire: &[u8], max_frame_size: u32) -> Vec<H2Frame> {
    let wire = wire.strip_prefix(&PREFACE[..]).unwrap_or(wire).to_vec();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let mut codec: h2::Codec<Cursor<Vec<u8>>, Bytes> =
            h2::Codec::with_max_recv_frame_size(Cursor::new(wire), max_frame_size as usize);
        codec.set_max_recv_header_list_size(usize::MAX / 8);
        let mut frames = Vec::new();
        while let Some(frame) = codec.next().await {
            frames.push(frame.expect("h2 decodes every frame"));
        }
        frames
    })
}

/// Header fields as decoded: (name, value).
pub type DecodedFields = Vec<(String, String)>;

/// What a peer saw of one stream.
#[derive(Debug, Default)]
pub struct StreamView {
    /// Header blocks as (pseudo `:path`, regular fields), in order.
    pub header_blocks: Vec<(Option<String>, DecodedFields)>,
    pub body: Vec<u8>,
    pub data_frames: usize,
    /// END_STREAM seen (on DATA or HEADERS).
    pub ended: bool,
    /// A frame for the stream after END_STREAM (a protocol violation).
    pub frame_after_end: bool,
    /// Trailers: a later header block without pseudo-headers, with END_STREAM.
    pub trailers: Option<DecodedFields>,
    pub reset: Option<u32>,
}

/// Groups decoded frames by stream.
pub fn streams(frames: Vec<H2Frame>) -> BTreeMap<u32, StreamView> {
    let mut views: BTreeMap<u32, StreamView> = BTreeMap::new();
    for frame in frames {
        match frame {
            H2Frame::Data(data) => {
                let view = views.entry(data.stream_id().into()).or_default();
                view.frame_after_end |= view.ended;
                view.body.extend_from_slice(data.payload());
                view.data_frames += 1;
                view.ended |= data.is_end_stream();
            }
            H2Frame::Headers(headers) => {
                let view = views.entry(headers.stream_id().into()).or_default();
                view.frame_after_end |= view.ended;
                let end = headers.is_end_stream();
                let (pseudo, map) = headers.into_parts();
                let fields: DecodedFields = map
                    .iter()
                    .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                    .collect();
                let first_block = view.header_blocks.is_empty();
                if !first_block && end && pseudo.path.is_none() && pseudo.status.is_none() {
                    view.trailers = Some(fields.clone());
                }
                view.header_blocks.push((pseudo.path.map(|p| p.to_string()), fields));
                view.ended |= end;
            }
            H2Frame::Reset(reset) => {
                views.entry(reset.stream_id().into()).or_default().reset = Some(reset.reason().into());
            }
            _ => {}
        }
    }
    views
}

/// A body of `len` bytes that differs per stream and per offset.
pub fn body(stream: u32, offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len).map(|i| (i as u32).wrapping_mul(31).wrapping_add(stream.wrapping_mul(7)) as u8).collect()
}

/// The peer's side of a test connection: everything drained so far, decoded
/// in one piece (HPACK state carries over between batches).
#[derive(Debug, Default)]
pub struct Peer {
    pub wire: Vec<u8>,
    frames_seen: usize,
}

impl Peer {
    /// Drains everything and returns the DATA payload bytes per stream that
    /// this batch carried (decoded by h2).
    pub fn drain_data(&mut self, conn: &mut Connection, max_frame_size: u32) -> BTreeMap<u32, usize> {
        drain_all(conn, 1 << 20, &mut self.wire);
        let frames = decode(&self.wire, max_frame_size);
        let mut sent = BTreeMap::new();
        for frame in &frames[self.frames_seen..] {
            if let H2Frame::Data(data) = frame {
                *sent.entry(u32::from(data.stream_id())).or_default() += data.payload().len();
            }
        }
        self.frames_seen = frames.len();
        sent
    }
}

/// One frame as it is on the wire: (type, flags, stream, payload length).
pub fn raw_frames(mut wire: &[u8]) -> Vec<(u8, u8, u32, usize)> {
    wire = wire.strip_prefix(&PREFACE[..]).unwrap_or(wire);
    let mut frames = Vec::new();
    while wire.len() >= 9 {
        let len = usize::from(wire[0]) << 16 | usize::from(wire[1]) << 8 | usize::from(wire[2]);
        let stream = u32::from_be_bytes([wire[5], wire[6], wire[7], wire[8]]) & 0x7fff_ffff;
        frames.push((wire[3], wire[4], stream, len));
        wire = &wire[(9 + len).min(wire.len())..];
    }
    assert!(wire.is_empty(), "trailing partial frame");
    frames
}

/// Counters a refused call must leave alone.
pub fn observable(stats: &Stats) -> (usize, usize, usize, usize, u64, usize) {
    (stats.live_bytes, stats.pending_bytes, stats.queued_bytes, stats.open_streams, stats.frames, stats.leased_bytes)
}
