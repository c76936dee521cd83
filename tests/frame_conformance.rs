//! Our frame encoder checked against an independent decoder: the `h2` crate's
//! `Codec` (feature `unstable`). Random frame sequences and random peer
//! MAX_FRAME_SIZEs are encoded with `h2fw::frame`, then decoded by h2 and
//! compared field for field, flag for flag and byte for byte of payload.
//!
//! What h2 does not expose is checked by walking the 9-byte frame headers
//! ourselves (`split_frames`): how DATA and header blocks were cut, the pad
//! octets, SETTINGS ids h2 drops (NO_RFC7540_PRIORITIES, unknown ids) and the
//! frames h2 skips (PRIORITY_UPDATE and other extension types).
//!
//! h2 limitations worked around here, honestly:
//! - h2 has no getters for HEADERS priority fields or PADDED/PRIORITY flags,
//!   nor for PRIORITY frames or a DATA frame's pad length; those are read from
//!   h2's `Debug` output, compared with the `Debug` of h2's own
//!   `StreamDependency::new(..)` / the value expected.
//! - h2 refuses a PUSH_PROMISE whose payload after the Pad Length octet is
//!   under 5 bytes (promised id plus at least one byte), so generated
//!   PUSH_PROMISE header blocks are never empty. Empty ones are covered by the
//!   exact-byte unit tests in `src/frame`.
//! - h2 keeps only the last value of each SETTINGS id it knows (1–6, 8);
//!   the expected values are folded the same way, and the raw payload is also
//!   compared byte for byte.
//! - h2 decodes only (it keeps no stream state in `Codec`), so frames may go to
//!   any stream in any order.

use std::io::Cursor;

use bytes::Bytes;
use futures_util::StreamExt;
use h2::frame::{Frame as H2Frame, StreamDependency, StreamId};
use h2fw::frame::{DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_LEN, Frame, MAX_MAX_FRAME_SIZE, Priority, setting};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// The frames a test writes, owning their bytes.

/// A header field list: request pseudo-headers or not, then regular fields.
#[derive(Debug, Clone)]
struct Fields {
    /// `:method GET`, `:scheme http`, `:path /` and `:authority` first.
    request: Option<String>,
    /// Regular fields, all lowercase names starting with "x-".
    regular: Vec<(String, String)>,
    /// A `user-agent` field sent with a static-table name reference.
    user_agent: Option<String>,
}

impl Fields {
    /// The field list as an HPACK block, built by hand (RFC 7541): indexed
    /// static entries, literals without indexing with an indexed or new name.
    fn block(&self) -> Vec<u8> {
        let mut block = Vec::new();
        if let Some(authority) = &self.request {
            block.extend([0x82, 0x86, 0x84]); // :method GET, :scheme http, :path /
            hpack_int(&mut block, 0x00, 4, 1); // literal, name = static 1 (:authority)
            hpack_string(&mut block, authority);
        }
        for (name, value) in &self.regular {
            block.push(0x00); // literal without indexing, new name
            hpack_string(&mut block, name);
            hpack_string(&mut block, value);
        }
        if let Some(agent) = &self.user_agent {
            hpack_int(&mut block, 0x00, 4, 58); // literal, name = static 58 (user-agent)
            hpack_string(&mut block, agent);
        }
        block
    }

    /// The regular fields as h2 should hand them back.
    fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        let agent = self.user_agent.iter().map(|value| ("user-agent", value));
        for (name, value) in self.regular.iter().map(|(n, v)| (n.as_str(), v)).chain(agent) {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }
}

/// RFC 7541 §5.1 integer with an `prefix_bits`-bit prefix after `first_bits`.
fn hpack_int(out: &mut Vec<u8>, first_bits: u8, prefix_bits: u32, value: usize) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        out.push(first_bits | value as u8);
        return;
    }
    out.push(first_bits | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// RFC 7541 §5.2 string literal, not Huffman-coded.
fn hpack_string(out: &mut Vec<u8>, text: &str) {
    hpack_int(out, 0x00, 7, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// One operation of a generated sequence.
#[derive(Debug, Clone)]
enum Op {
    Data { stream: u32, data: Vec<u8>, end_stream: bool, pad_length: Option<u8> },
    Headers { stream: u32, fields: Fields, end_stream: bool, priority: Option<Priority>, pad_length: Option<u8> },
    Priority { stream: u32, priority: Priority },
    RstStream { stream: u32, error_code: u32 },
    Settings { settings: Vec<(u16, u32)> },
    SettingsAck,
    PushPromise { stream: u32, promised_stream: u32, fields: Fields, pad_length: Option<u8> },
    Ping { opaque_data: [u8; 8], ack: bool },
    Goaway { last_stream_id: u32, error_code: u32, debug_data: Vec<u8> },
    WindowUpdate { stream: u32, increment: u32 },
    PriorityUpdate { prioritized_stream: u32, field_value: Vec<u8> },
    Extension { frame_type: u8, flags: u8, stream: u32, payload: Vec<u8> },
}

impl Op {
    /// Encodes this operation with h2fw, checking `validate` predicted the length.
    fn encode(&self, out: &mut Vec<u8>, max_frame_size: u32) -> usize {
        let block; // header block storage for HEADERS / PUSH_PROMISE
        let frame = match self {
            Op::Data { stream, data, end_stream, pad_length } => {
                Frame::Data { stream: *stream, data, end_stream: *end_stream, pad_length: *pad_length }
            }
            Op::Headers { stream, fields, end_stream, priority, pad_length } => {
                block = fields.block();
                Frame::Headers {
                    stream: *stream,
                    block: &block,
                    end_stream: *end_stream,
                    priority: *priority,
                    pad_length: *pad_length,
                }
            }
            Op::Priority { stream, priority } => Frame::Priority { stream: *stream, priority: *priority },
            Op::RstStream { stream, error_code } => Frame::RstStream { stream: *stream, error_code: *error_code },
            Op::Settings { settings } => Frame::Settings { settings },
            Op::SettingsAck => Frame::SettingsAck,
            Op::PushPromise { stream, promised_stream, fields, pad_length } => {
                block = fields.block();
                Frame::PushPromise {
                    stream: *stream,
                    promised_stream: *promised_stream,
                    block: &block,
                    pad_length: *pad_length,
                }
            }
            Op::Ping { opaque_data, ack } => Frame::Ping { opaque_data: *opaque_data, ack: *ack },
            Op::Goaway { last_stream_id, error_code, debug_data } => {
                Frame::Goaway { last_stream_id: *last_stream_id, error_code: *error_code, debug_data }
            }
            Op::WindowUpdate { stream, increment } => Frame::WindowUpdate { stream: *stream, increment: *increment },
            Op::PriorityUpdate { prioritized_stream, field_value } => {
                Frame::PriorityUpdate { prioritized_stream: *prioritized_stream, field_value }
            }
            Op::Extension { frame_type, flags, stream, payload } => {
                Frame::Extension { frame_type: *frame_type, flags: *flags, stream: *stream, payload }
            }
        };
        let predicted = frame.validate(max_frame_size).expect("generated frames are valid");
        let before = out.len();
        let written = frame.encode(out, max_frame_size).expect("encodes");
        assert_eq!(written, out.len() - before);
        assert_eq!(written, predicted);
        written
    }
}

// ---------------------------------------------------------------------------
// Our own reading of the frame headers, for what h2 does not expose.

/// One frame as it sits on the wire.
#[derive(Debug)]
struct RawFrame<'a> {
    frame_type: u8,
    flags: u8,
    /// Stream identifier; `reserved` is the R bit, which we must never set.
    stream: u32,
    reserved: bool,
    payload: &'a [u8],
}

/// Splits `bytes` into frames by their 24-bit length fields.
fn split_frames(mut bytes: &[u8]) -> Vec<RawFrame<'_>> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= FRAME_HEADER_LEN, "truncated frame header");
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        let stream_word = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
        assert!(bytes.len() >= FRAME_HEADER_LEN + len, "truncated frame payload");
        let (frame, rest) = bytes.split_at(FRAME_HEADER_LEN + len);
        frames.push(RawFrame {
            frame_type: bytes[3],
            flags: bytes[4],
            stream: stream_word & 0x7fff_ffff,
            reserved: stream_word >> 31 == 1,
            payload: &frame[FRAME_HEADER_LEN..],
        });
        bytes = rest;
    }
    frames
}

const PADDED: u8 = 0x8;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PRIORITY: u8 = 0x20;

/// Removes PADDED padding from `payload`, checking the pad bytes are zero.
fn strip_padding(payload: &[u8], pad_length: Option<u8>) -> &[u8] {
    match pad_length {
        None => payload,
        Some(pad) => {
            assert_eq!(payload[0], pad, "Pad Length octet");
            let pad = usize::from(pad);
            let (body, padding) = payload[1..].split_at(payload.len() - 1 - pad);
            assert!(padding.iter().all(|&b| b == 0), "pad bytes are zero");
            body
        }
    }
}

/// Checks how one operation's bytes were cut into frames.
fn check_framing(op: &Op, bytes: &[u8], max_frame_size: u32) {
    let max = max_frame_size as usize;
    let frames = split_frames(bytes);
    for frame in &frames {
        assert!(frame.payload.len() <= max, "frame over the peer's max size");
        assert!(!frame.reserved, "reserved bit set");
    }
    match op {
        Op::Data { stream, data, end_stream, pad_length } => {
            // Every frame but the last uses the full size the peer allows.
            let room = max - pad_length.map_or(0, |p| 1 + usize::from(p));
            let expected_chunks: Vec<&[u8]> = if data.is_empty() { vec![&[]] } else { data.chunks(room).collect() };
            assert_eq!(frames.len(), expected_chunks.len());
            for (i, (frame, chunk)) in frames.iter().zip(&expected_chunks).enumerate() {
                let last = i + 1 == frames.len();
                assert_eq!((frame.frame_type, frame.stream), (0x0, *stream));
                let flags =
                    if pad_length.is_some() { PADDED } else { 0 } | if last && *end_stream { END_STREAM } else { 0 };
                assert_eq!(frame.flags, flags);
                assert_eq!(strip_padding(frame.payload, *pad_length), *chunk);
            }
        }
        Op::Headers { stream, fields, end_stream, priority, pad_length } => {
            let (fixed, priority_flag) = if priority.is_some() { (5, PRIORITY) } else { (0, 0) };
            let flags = priority_flag | if *end_stream { END_STREAM } else { 0 };
            let first = FirstFrame { frame_type: 0x1, flags, stream: *stream, pad_length: *pad_length, fixed };
            check_header_block_framing(&frames, &first, &fields.block(), max);
        }
        Op::PushPromise { stream, fields, pad_length, promised_stream } => {
            let first = FirstFrame { frame_type: 0x5, flags: 0, stream: *stream, pad_length: *pad_length, fixed: 4 };
            check_header_block_framing(&frames, &first, &fields.block(), max);
            let first = strip_padding(frames[0].payload, *pad_length);
            assert_eq!(first[..4], promised_stream.to_be_bytes());
        }
        Op::Settings { settings } => {
            assert_eq!(frames.len(), 1);
            let wire: Vec<u8> =
                settings.iter().flat_map(|(id, v)| [&id.to_be_bytes()[..], &v.to_be_bytes()].concat()).collect();
            assert_eq!(frames[0].payload, wire);
        }
        Op::PriorityUpdate { prioritized_stream, field_value } => {
            assert_eq!(frames.len(), 1);
            assert_eq!((frames[0].frame_type, frames[0].flags, frames[0].stream), (0x10, 0, 0));
            assert_eq!(frames[0].payload[..4], prioritized_stream.to_be_bytes());
            assert_eq!(frames[0].payload[4..], field_value[..]);
        }
        Op::Extension { frame_type, flags, stream, payload } => {
            assert_eq!(frames.len(), 1);
            assert_eq!((frames[0].frame_type, frames[0].flags, frames[0].stream), (*frame_type, *flags, *stream));
            assert_eq!(frames[0].payload, &payload[..]);
        }
        _ => assert_eq!(frames.len(), 1),
    }
}

/// What the first frame of a header block should be.
struct FirstFrame {
    /// HEADERS (0x1) or PUSH_PROMISE (0x5).
    frame_type: u8,
    /// Its flags besides PADDED and END_HEADERS.
    flags: u8,
    stream: u32,
    pad_length: Option<u8>,
    /// Bytes of priority fields or promised stream before the fragment.
    fixed: usize,
}

/// A header block as HEADERS/PUSH_PROMISE + CONTINUATION: the first frame full
/// when there is more, END_HEADERS on the last only, fragments in order.
fn check_header_block_framing(frames: &[RawFrame<'_>], first: &FirstFrame, block: &[u8], max: usize) {
    let mut reassembled = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let last = i + 1 == frames.len();
        assert_eq!(frame.frame_type, if i == 0 { first.frame_type } else { 0x9 });
        assert_eq!(frame.stream, first.stream);
        assert_eq!(frame.flags & END_HEADERS != 0, last, "END_HEADERS on the last frame only");
        if i == 0 {
            let padded = if first.pad_length.is_some() { PADDED } else { 0 };
            assert_eq!(frame.flags & !END_HEADERS, first.flags | padded);
            if !last {
                assert_eq!(frame.payload.len(), max, "first frame filled to the full size");
            }
            reassembled.extend_from_slice(&strip_padding(frame.payload, first.pad_length)[first.fixed..]);
        } else {
            assert_eq!(frame.flags, if last { END_HEADERS } else { 0 }, "CONTINUATION carries END_HEADERS only");
            if !last {
                assert_eq!(frame.payload.len(), max, "CONTINUATION filled to the full size");
            }
            reassembled.extend_from_slice(frame.payload);
        }
    }
    assert_eq!(reassembled, block);
}

// ---------------------------------------------------------------------------
// Decoding with h2 and comparing.

/// Every frame h2's codec reads from `bytes`, with its receive limit set to the
/// max frame size our peer advertised. Panics on any h2 decoding error.
fn h2_decode(bytes: Vec<u8>, max_frame_size: u32) -> Vec<H2Frame> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        // Cursor<Vec<u8>> is the AsyncRead + AsyncWrite the codec needs; we only read.
        let mut codec: h2::Codec<Cursor<Vec<u8>>, Bytes> = h2::Codec::new(Cursor::new(bytes));
        codec.set_max_recv_frame_size(max_frame_size as usize);
        let mut frames = Vec::new();
        while let Some(frame) = codec.next().await {
            frames.push(frame.unwrap_or_else(|e| panic!("h2 refused our bytes: {e:?}")));
        }
        frames
    })
}

/// Expected h2 `Debug` of priority fields, from h2's own constructor.
fn dependency_debug(priority: &Priority) -> String {
    let dependency = StreamId::from(priority.stream_dependency);
    format!("{:?}", StreamDependency::new(dependency, priority.weight, priority.exclusive))
}

/// Checks the h2 view of a header block: stream, flags, pseudo and regular fields.
fn check_fields(pseudo: h2::frame::Pseudo, map: HeaderMap, fields: &Fields) {
    match &fields.request {
        Some(authority) => {
            assert_eq!(pseudo.method, Some(Method::GET));
            assert_eq!(pseudo.scheme.as_deref(), Some("http"));
            assert_eq!(pseudo.path.as_deref(), Some("/"));
            assert_eq!(pseudo.authority.as_deref(), Some(authority.as_str()));
        }
        None => assert_eq!(pseudo, h2::frame::Pseudo::default()),
    }
    assert_eq!(map, fields.header_map());
}

/// Compares h2's frames, in order, with what each operation should yield.
fn check_h2_view(ops: &[Op], mut decoded: std::vec::IntoIter<H2Frame>, max_frame_size: u32) {
    for op in ops {
        let mut next = || decoded.next().unwrap_or_else(|| panic!("h2 yielded nothing for {op:?}"));
        match op {
            Op::Data { stream, data, end_stream, pad_length } => {
                let room = max_frame_size as usize - pad_length.map_or(0, |p| 1 + usize::from(p));
                let frames = data.len().div_ceil(room).max(1);
                let mut received = Vec::new();
                for i in 0..frames {
                    let H2Frame::Data(frame) = next() else { panic!("expected DATA for {op:?}") };
                    assert_eq!(u32::from(frame.stream_id()), *stream);
                    assert_eq!(frame.is_end_stream(), *end_stream && i + 1 == frames);
                    assert_eq!(frame.is_padded(), pad_length.is_some());
                    let debug = format!("{frame:?}");
                    match pad_length {
                        Some(pad) => {
                            assert!(debug.contains(&format!("pad_len: {pad} ")), "{debug}")
                        }
                        None => assert!(!debug.contains("pad_len"), "{debug}"),
                    }
                    received.extend_from_slice(frame.payload());
                }
                assert_eq!(&received, data);
            }
            Op::Headers { stream, fields, end_stream, priority, pad_length } => {
                let H2Frame::Headers(frame) = next() else { panic!("expected HEADERS for {op:?}") };
                assert_eq!(u32::from(frame.stream_id()), *stream);
                assert_eq!(frame.is_end_stream(), *end_stream);
                assert!(frame.is_end_headers());
                let debug = format!("{frame:?}");
                assert_eq!(debug.contains("PADDED"), pad_length.is_some(), "{debug}");
                assert_eq!(debug.contains("PRIORITY"), priority.is_some(), "{debug}");
                match priority {
                    Some(priority) => {
                        assert!(debug.contains(&format!("stream_dep: {}", dependency_debug(priority))), "{debug}")
                    }
                    None => assert!(!debug.contains("stream_dep"), "{debug}"),
                }
                let (pseudo, map) = frame.into_parts();
                check_fields(pseudo, map, fields);
            }
            Op::Priority { stream, priority } => {
                let H2Frame::Priority(frame) = next() else { panic!("expected PRIORITY for {op:?}") };
                let expected = format!(
                    "Priority {{ stream_id: {:?}, dependency: {} }}",
                    StreamId::from(*stream),
                    dependency_debug(priority)
                );
                assert_eq!(format!("{frame:?}"), expected);
            }
            Op::RstStream { stream, error_code } => {
                let H2Frame::Reset(frame) = next() else { panic!("expected RST_STREAM for {op:?}") };
                assert_eq!(u32::from(frame.stream_id()), *stream);
                assert_eq!(u32::from(frame.reason()), *error_code);
            }
            Op::Settings { settings } => {
                let H2Frame::Settings(frame) = next() else { panic!("expected SETTINGS for {op:?}") };
                assert!(!frame.is_ack());
                let last = |id: u16| settings.iter().rev().find(|(i, _)| *i == id).map(|&(_, v)| v);
                assert_eq!(frame.header_table_size(), last(setting::HEADER_TABLE_SIZE));
                assert_eq!(frame.is_push_enabled(), last(setting::ENABLE_PUSH).map(|v| v == 1));
                assert_eq!(frame.max_concurrent_streams(), last(setting::MAX_CONCURRENT_STREAMS));
                assert_eq!(frame.initial_window_size(), last(setting::INITIAL_WINDOW_SIZE));
                assert_eq!(frame.max_frame_size(), last(setting::MAX_FRAME_SIZE));
                assert_eq!(frame.max_header_list_size(), last(setting::MAX_HEADER_LIST_SIZE));
                assert_eq!(
                    frame.is_extended_connect_protocol_enabled(),
                    last(setting::ENABLE_CONNECT_PROTOCOL).map(|v| v == 1)
                );
            }
            Op::SettingsAck => {
                let H2Frame::Settings(frame) = next() else { panic!("expected SETTINGS ack") };
                assert!(frame.is_ack());
            }
            Op::PushPromise { stream, promised_stream, fields, pad_length } => {
                let H2Frame::PushPromise(frame) = next() else { panic!("expected PUSH_PROMISE for {op:?}") };
                assert_eq!(u32::from(frame.stream_id()), *stream);
                assert_eq!(u32::from(frame.promised_id()), *promised_stream);
                assert!(frame.is_end_headers());
                assert_eq!(format!("{frame:?}").contains("PADDED"), pad_length.is_some());
                let (pseudo, map) = frame.into_parts();
                check_fields(pseudo, map, fields);
            }
            Op::Ping { opaque_data, ack } => {
                let H2Frame::Ping(frame) = next() else { panic!("expected PING for {op:?}") };
                assert_eq!(frame.payload(), opaque_data);
                assert_eq!(frame.is_ack(), *ack);
            }
            Op::Goaway { last_stream_id, error_code, debug_data } => {
                let H2Frame::GoAway(frame) = next() else { panic!("expected GOAWAY for {op:?}") };
                assert_eq!(u32::from(frame.last_stream_id()), *last_stream_id);
                assert_eq!(u32::from(frame.reason()), *error_code);
                assert_eq!(frame.debug_data()[..], debug_data[..]);
            }
            Op::WindowUpdate { stream, increment } => {
                let H2Frame::WindowUpdate(frame) = next() else { panic!("expected WINDOW_UPDATE for {op:?}") };
                assert_eq!(u32::from(frame.stream_id()), *stream);
                assert_eq!(frame.size_increment(), *increment);
            }
            // h2 skips frame types it does not know; check_framing read them.
            Op::PriorityUpdate { .. } | Op::Extension { .. } => {}
        }
    }
    assert!(decoded.next().is_none(), "h2 decoded more frames than we wrote");
}

/// Encodes `ops` for a peer with `max_frame_size`, then checks the framing
/// ourselves and the content through h2.
fn check_sequence(ops: &[Op], max_frame_size: u32) {
    let mut out = Vec::new();
    let mut spans = Vec::new();
    for op in ops {
        let start = out.len();
        let len = op.encode(&mut out, max_frame_size);
        spans.push(start..start + len);
    }
    for (op, span) in ops.iter().zip(spans) {
        check_framing(op, &out[span], max_frame_size);
    }
    check_h2_view(ops, h2_decode(out, max_frame_size).into_iter(), max_frame_size);
}

// ---------------------------------------------------------------------------
// Generators.

/// Stream identifiers, edges included.
fn stream_id() -> impl Strategy<Value = u32> {
    prop_oneof![Just(1u32), Just(0x7fff_ffff), 1u32..=0x7fff_ffff, 1u32..100]
}

fn pad_length() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![Just(None), Just(Some(0)), Just(Some(255)), any::<u8>().prop_map(Some)]
}

/// Priority fields that do not make `stream` depend on itself.
fn priority_for(stream: u32) -> impl Strategy<Value = Priority> {
    (prop_oneof![Just(0u32), 1u32..=0x7fff_ffff], any::<u8>(), any::<bool>())
        .prop_filter("no self-dependency", move |(dependency, ..)| *dependency != stream)
        .prop_map(|(stream_dependency, weight, exclusive)| Priority { stream_dependency, weight, exclusive })
}

/// `len` lowercase letters from `seed`: cheap to build even when long.
fn letters(seed: u32, len: usize) -> String {
    (0..len).map(|i| char::from(b'a' + ((seed as usize + i * 7) % 26) as u8)).collect()
}

/// Header fields; often tens of kilobytes so blocks need one or more CONTINUATION.
fn fields(request: bool) -> impl Strategy<Value = Fields> {
    let field = (1usize..20, prop_oneof![0usize..40, 0usize..9_000, 9_000usize..24_000], any::<u32>()).prop_map(
        |(name_len, value_len, seed)| (format!("x-{}", letters(seed, name_len)), letters(seed / 3, value_len)),
    );
    let has_request = if request { Just(true).boxed() } else { any::<bool>().boxed() };
    (has_request, "[a-z0-9.]{1,30}", prop::collection::vec(field, 0..6), prop::option::of("[a-z/0-9. ]{0,40}"))
        .prop_map(|(request, authority, regular, user_agent)| Fields {
            request: request.then_some(authority),
            regular,
            user_agent,
        })
}

/// DATA bodies: small, or sized around multiples of the per-frame room (as a
/// multiple `k` and an offset, resolved once the frame size is known).
#[derive(Debug, Clone)]
enum BodySize {
    Small(usize),
    AroundRooms { k: usize, offset: i64 },
}

fn body_size() -> impl Strategy<Value = BodySize> {
    prop_oneof![
        (0usize..300).prop_map(BodySize::Small),
        (0usize..=3, -2i64..=2).prop_map(|(k, offset)| BodySize::AroundRooms { k, offset }),
    ]
}

/// A setting the RFCs accept, known ids and unknown ones.
fn valid_setting() -> impl Strategy<Value = (u16, u32)> {
    prop_oneof![
        any::<u32>().prop_map(|v| (setting::HEADER_TABLE_SIZE, v)),
        (0u32..=1).prop_map(|v| (setting::ENABLE_PUSH, v)),
        any::<u32>().prop_map(|v| (setting::MAX_CONCURRENT_STREAMS, v)),
        (0u32..=0x7fff_ffff).prop_map(|v| (setting::INITIAL_WINDOW_SIZE, v)),
        (DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).prop_map(|v| (setting::MAX_FRAME_SIZE, v)),
        any::<u32>().prop_map(|v| (setting::MAX_HEADER_LIST_SIZE, v)),
        (0u32..=1).prop_map(|v| (setting::ENABLE_CONNECT_PROTOCOL, v)),
        (0u32..=1).prop_map(|v| (setting::NO_RFC7540_PRIORITIES, v)),
        (prop_oneof![Just(0u16), Just(7u16), 10u16..=u16::MAX], any::<u32>()),
    ]
}

/// An operation, with bodies resolved against the peer's frame size.
fn op(max_frame_size: u32) -> impl Strategy<Value = Op> {
    let data = (stream_id(), body_size(), any::<u8>(), any::<bool>(), pad_length()).prop_map(
        move |(stream, size, seed, end_stream, pad_length)| {
            let room = max_frame_size as usize - pad_length.map_or(0, |p| 1 + usize::from(p));
            let len = match size {
                // Frame-sized bodies only where they stay small enough to test quickly.
                BodySize::AroundRooms { k, offset } if room <= 100_000 => {
                    (k * room).saturating_add_signed(offset as isize)
                }
                BodySize::AroundRooms { k, .. } => k * 1000,
                BodySize::Small(len) => len,
            };
            let data = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            Op::Data { stream, data, end_stream, pad_length }
        },
    );
    let headers = stream_id().prop_flat_map(|stream| {
        (fields(false), any::<bool>(), prop::option::of(priority_for(stream)), pad_length()).prop_map(
            move |(fields, end_stream, priority, pad_length)| Op::Headers {
                stream,
                fields,
                end_stream,
                priority,
                pad_length,
            },
        )
    });
    let priority = stream_id()
        .prop_flat_map(|stream| priority_for(stream).prop_map(move |priority| Op::Priority { stream, priority }));
    prop_oneof![
        3 => data,
        3 => headers,
        1 => priority,
        1 => (stream_id(), any::<u32>()).prop_map(|(stream, error_code)| Op::RstStream { stream, error_code }),
        1 => prop::collection::vec(valid_setting(), 0..20).prop_map(|settings| Op::Settings { settings }),
        1 => Just(Op::SettingsAck),
        2 => (stream_id(), stream_id(), fields(true), pad_length()).prop_map(|(stream, promised_stream, fields, pad_length)| {
            Op::PushPromise { stream, promised_stream, fields, pad_length }
        }),
        1 => (any::<[u8; 8]>(), any::<bool>()).prop_map(|(opaque_data, ack)| Op::Ping { opaque_data, ack }),
        1 => (prop_oneof![Just(0u32), stream_id()], any::<u32>(), prop::collection::vec(any::<u8>(), 0..100))
            .prop_map(|(last_stream_id, error_code, debug_data)| Op::Goaway { last_stream_id, error_code, debug_data }),
        1 => (prop_oneof![Just(0u32), stream_id()], 1u32..=0x7fff_ffff)
            .prop_map(|(stream, increment)| Op::WindowUpdate { stream, increment }),
        1 => (stream_id(), "[a-z0-9=, ;]{0,40}")
            .prop_map(|(prioritized_stream, value)| Op::PriorityUpdate { prioritized_stream, field_value: value.into_bytes() }),
        1 => (0x0au8..=0xff, any::<u8>(), prop_oneof![Just(0u32), stream_id()], prop::collection::vec(any::<u8>(), 0..100))
            .prop_map(|(frame_type, flags, stream, payload)| Op::Extension { frame_type, flags, stream, payload }),
    ]
}

/// A peer SETTINGS_MAX_FRAME_SIZE: the two ends, just above the minimum, or any.
fn max_frame_size() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(DEFAULT_MAX_FRAME_SIZE),
        Just(DEFAULT_MAX_FRAME_SIZE + 1),
        Just(MAX_MAX_FRAME_SIZE),
        DEFAULT_MAX_FRAME_SIZE..=65_536,
        DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random sequences of every frame type decode in h2 to exactly what we meant.
    #[test]
    fn random_frame_sequences_decode_in_h2(
        (max_frame_size, ops) in max_frame_size().prop_flat_map(|max| (Just(max), prop::collection::vec(op(max), 1..8)))
    ) {
        check_sequence(&ops, max_frame_size);
    }
}

// ---------------------------------------------------------------------------
// Boundaries, through h2 as well.

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 253) as u8).collect()
}

fn big_fields(total_value_len: usize) -> Fields {
    let regular = (0..total_value_len.div_ceil(4000))
        .map(|i| (format!("x-field-{i}"), letters(i as u32, 4000.min(total_value_len - i * 4000))))
        .collect();
    Fields { request: Some("example.com".into()), regular, user_agent: None }
}

#[test]
fn data_at_the_frame_size_and_one_over() {
    for max in [DEFAULT_MAX_FRAME_SIZE, 20_000] {
        for len in [max as usize, max as usize + 1] {
            let ops = [Op::Data { stream: 1, data: body(len), end_stream: true, pad_length: None }];
            check_sequence(&ops, max);
        }
    }
}

#[test]
fn empty_data_with_and_without_end_stream() {
    let ops = [
        Op::Data { stream: 1, data: vec![], end_stream: true, pad_length: None },
        Op::Data { stream: 3, data: vec![], end_stream: false, pad_length: None },
        Op::Data { stream: 5, data: vec![], end_stream: true, pad_length: Some(0) },
    ];
    check_sequence(&ops, DEFAULT_MAX_FRAME_SIZE);
}

#[test]
fn padding_of_255_on_data_headers_and_push_promise() {
    let ops = [
        Op::Data { stream: 1, data: body(10), end_stream: false, pad_length: Some(255) },
        Op::Headers { stream: 1, fields: big_fields(10), end_stream: true, priority: None, pad_length: Some(255) },
        Op::PushPromise { stream: 1, promised_stream: 2, fields: big_fields(10), pad_length: Some(255) },
    ];
    check_sequence(&ops, DEFAULT_MAX_FRAME_SIZE);
}

#[test]
fn split_data_with_padding_fills_each_frame() {
    // 16384 − 1 − 255 = 16128 data bytes per frame: three full frames and one byte.
    let ops = [Op::Data { stream: 1, data: body(3 * 16_128 + 1), end_stream: true, pad_length: Some(255) }];
    check_sequence(&ops, DEFAULT_MAX_FRAME_SIZE);
}

#[test]
fn header_block_needing_several_continuations() {
    let priority = Some(Priority { stream_dependency: 1, weight: 200, exclusive: true });
    let fields = big_fields(60_000);
    assert!(fields.block().len() > 3 * 16_384);
    let ops = [
        Op::Headers { stream: 3, fields: fields.clone(), end_stream: true, priority, pad_length: Some(7) },
        Op::PushPromise { stream: 3, promised_stream: 4, fields, pad_length: Some(7) },
    ];
    check_sequence(&ops, DEFAULT_MAX_FRAME_SIZE);
}

#[test]
fn largest_frame_size_takes_big_frames_whole() {
    let max = MAX_MAX_FRAME_SIZE;
    let ops = [
        Op::Data { stream: 1, data: body(max as usize), end_stream: false, pad_length: None },
        Op::Data { stream: 1, data: body(max as usize + 1), end_stream: true, pad_length: None },
        Op::Headers { stream: 3, fields: big_fields(60_000), end_stream: false, priority: None, pad_length: None },
        Op::Goaway { last_stream_id: 7, error_code: 0, debug_data: body(100_000) },
    ];
    check_sequence(&ops, max);
}
