//! Helpers shared by the host tests: an independent reading of the wire
//! (RFC 9113 §4.1 frame headers, RFC 7541 §6 representation kinds) and a
//! driver for the `h2` crate's decoder.
#![allow(dead_code)] // each test binary uses its own part

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A POST request's header fields for `path` on example.com.
pub fn request(path: &str) -> [h2fw::hpack::HeaderField<'_>; 4] {
    use h2fw::hpack::HeaderField;
    let field = |name: &'static str, value: &'static str| HeaderField {
        name: name.as_bytes(),
        value: value.as_bytes(),
        sensitive: false,
    };
    [
        field(":method", "POST"),
        field(":scheme", "https"),
        HeaderField { name: b":path", value: path.as_bytes(), sensitive: false },
        field(":authority", "example.com"),
    ]
}

/// The 24-byte client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One frame as its 9-byte header says (RFC 9113 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub reserved_bit: bool,
    pub payload: Vec<u8>,
}

/// Splits `bytes` into frames; panics unless they end on a frame boundary.
pub fn raw_frames(mut bytes: &[u8]) -> Vec<RawFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 9, "{} trailing bytes do not make a frame header", bytes.len());
        let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
        let stream_word = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
        assert!(bytes.len() >= 9 + len, "frame of {len} bytes is cut short");
        frames.push(RawFrame {
            kind: bytes[3],
            flags: bytes[4],
            stream: stream_word & 0x7fff_ffff,
            reserved_bit: stream_word >> 31 == 1,
            payload: bytes[9..9 + len].to_vec(),
        });
        bytes = &bytes[9 + len..];
    }
    frames
}

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY: u8 = 0x20;

/// A HEADERS or PUSH_PROMISE frame's parts (RFC 9113 §6.2, §6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockStart {
    pub pad_length: Option<u8>,
    /// Exclusive, dependency, wire weight.
    pub priority: Option<(bool, u32, u8)>,
    pub promised_stream: Option<u32>,
    pub fragment: Vec<u8>,
}

/// Parses a HEADERS (`kind` 1) or PUSH_PROMISE (`kind` 5) payload.
pub fn block_start(frame: &RawFrame) -> BlockStart {
    let mut payload = &frame.payload[..];
    let mut pad_length = None;
    if frame.flags & PADDED != 0 {
        pad_length = Some(payload[0]);
        payload = &payload[1..];
    }
    let mut priority = None;
    let mut promised_stream = None;
    if frame.kind == 1 && frame.flags & PRIORITY != 0 {
        let word = u32::from_be_bytes(payload[..4].try_into().unwrap());
        priority = Some((word >> 31 == 1, word & 0x7fff_ffff, payload[4]));
        payload = &payload[5..];
    }
    if frame.kind == 5 {
        promised_stream = Some(u32::from_be_bytes(payload[..4].try_into().unwrap()) & 0x7fff_ffff);
        payload = &payload[4..];
    }
    let padding = pad_length.unwrap_or(0) as usize;
    assert!(payload.len() >= padding, "padding longer than the payload");
    let (fragment, pad) = payload.split_at(payload.len() - padding);
    assert!(pad.iter().all(|&byte| byte == 0), "padding must be zero");
    BlockStart { pad_length, priority, promised_stream, fragment: fragment.to_vec() }
}

/// Kinds of HPACK representations (RFC 7541 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    Indexed(usize),
    IncrementalIndexing,
    WithoutIndexing,
    NeverIndexed,
    SizeUpdate(usize),
}

/// The representations of a header block, by kind; decoding only integers
/// and string lengths (no Huffman), enough to see how each field was sent.
pub fn representations(mut block: &[u8]) -> Vec<Representation> {
    fn integer(block: &mut &[u8], prefix_bits: u32) -> usize {
        let max = (1usize << prefix_bits) - 1;
        let mut value = (block[0] as usize) & max;
        *block = &block[1..];
        if value < max {
            return value;
        }
        let mut shift = 0;
        loop {
            let byte = block[0];
            *block = &block[1..];
            value += ((byte & 0x7f) as usize) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                return value;
            }
        }
    }
    fn string(block: &mut &[u8]) {
        let len = integer(block, 7);
        *block = &block[len..];
    }
    fn literal(block: &mut &[u8], prefix_bits: u32) {
        if integer(block, prefix_bits) == 0 {
            string(block);
        }
        string(block);
    }
    let mut out = Vec::new();
    while !block.is_empty() {
        let first = block[0];
        out.push(if first & 0x80 != 0 {
            Representation::Indexed(integer(&mut block, 7))
        } else if first & 0xc0 == 0x40 {
            literal(&mut block, 6);
            Representation::IncrementalIndexing
        } else if first & 0xe0 == 0x20 {
            Representation::SizeUpdate(integer(&mut block, 5))
        } else if first & 0xf0 == 0x10 {
            literal(&mut block, 4);
            Representation::NeverIndexed
        } else {
            literal(&mut block, 4);
            Representation::WithoutIndexing
        });
    }
    out
}

/// Feeds bytes to the `h2` crate's frame decoder (`h2::Codec`) and collects
/// the frames it reads.
pub struct H2Decoder {
    input: Rc<RefCell<Vec<u8>>>,
    codec: h2::Codec<Feed, Bytes>,
}

impl Default for H2Decoder {
    fn default() -> Self {
        let input = Rc::new(RefCell::new(Vec::new()));
        let mut codec = h2::Codec::new(Feed(input.clone()));
        codec.set_max_recv_header_list_size(16 << 20);
        H2Decoder { input, codec }
    }
}

impl H2Decoder {
    /// Decodes `bytes` (whole frames, no preface); panics on a decode error.
    pub fn decode(&mut self, bytes: &[u8]) -> Vec<h2::frame::Frame> {
        self.input.borrow_mut().extend_from_slice(bytes);
        let mut frames = Vec::new();
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        loop {
            match Pin::new(&mut self.codec).poll_next(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => frames.push(frame),
                Poll::Ready(Some(Err(error))) => panic!("h2 rejected the bytes: {error:?}"),
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        assert!(self.input.borrow().is_empty(), "h2 left {} bytes unread", self.input.borrow().len());
        frames
    }

    /// Mirrors the peer's SETTINGS on the decoder side.
    pub fn apply_settings(&mut self, settings: &[(u16, u32)]) {
        for &(id, value) in settings {
            match id {
                1 => self.codec.set_recv_header_table_size(value as usize),
                5 => self.codec.set_max_recv_frame_size(value as usize),
                _ => {}
            }
        }
    }
}

/// In-memory transport for the decoder: reads what was fed, discards writes.
pub struct Feed(Rc<RefCell<Vec<u8>>>);

impl AsyncRead for Feed {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut input = self.0.borrow_mut();
        if input.is_empty() {
            return Poll::Pending;
        }
        let n = input.len().min(buf.remaining());
        buf.put_slice(&input[..n]);
        input.drain(..n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Feed {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Header fields of a decoded HEADERS / PUSH_PROMISE, pseudo-headers first,
/// as (name, value) text pairs sorted for comparison.
pub fn decoded_fields(pseudo: &h2::frame::Pseudo, fields: &http::HeaderMap) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(method) = &pseudo.method {
        out.push((":method".to_string(), method.to_string()));
    }
    if let Some(scheme) = &pseudo.scheme {
        out.push((":scheme".to_string(), String::from(&**scheme)));
    }
    if let Some(authority) = &pseudo.authority {
        out.push((":authority".to_string(), String::from(&**authority)));
    }
    if let Some(path) = &pseudo.path {
        out.push((":path".to_string(), String::from(&**path)));
    }
    if let Some(status) = &pseudo.status {
        out.push((":status".to_string(), status.as_str().to_string()));
    }
    for (name, value) in fields {
        out.push((name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()));
    }
    out.sort();
    out
}
