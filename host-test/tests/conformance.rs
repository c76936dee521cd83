//! Every frame script in tests/scripts/ encoded through the component gives
//! the native library's bytes, and those bytes say what the script asked
//! for: checked against RFC 9113's frame layout read here and against the
//! `h2` crate's decoder.

mod common;

use std::path::{Path, PathBuf};

use common::{
    ACK, END_HEADERS, END_STREAM, H2Decoder, PADDED, PREFACE, PRIORITY, RawFrame, Representation, block_start,
    decoded_fields, raw_frames, representations,
};
use h2fw::conn::{Config, Connection};
use h2fw::pool::{Pool, PoolConfig};
use h2fw_host::runtime::ComponentWriter;
use h2fw_host::script::{self, Op, ScriptHeader};
use h2fw_host::writer::Writer;

const DEFAULT_TABLE_SIZE: usize = 4096;

fn scripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn scripts_cover_every_operation_type() {
    let mut seen = std::collections::BTreeSet::new();
    for path in scripts() {
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            seen.insert(value["type"].as_str().unwrap().to_string());
        }
    }
    let all = [
        "preface",
        "settings",
        "settings_ack",
        "peer_settings",
        "headers",
        "data",
        "priority",
        "rst_stream",
        "push_promise",
        "ping",
        "goaway",
        "window_update",
        "raw",
    ];
    for kind in all {
        assert!(seen.contains(kind), "no script uses `{kind}`");
    }
}

#[test]
fn component_bytes_equal_native_and_decode_as_scripted() {
    let scripts = scripts();
    assert!(scripts.len() >= 4, "scripts missing from tests/scripts");
    for path in scripts {
        check_script(&path);
    }
}

fn drain_all(writer: &mut dyn Writer) -> Vec<u8> {
    let mut bytes = Vec::new();
    while writer.drain(1 << 20, &mut bytes).unwrap() > 0 {}
    bytes
}

fn check_script(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let config = Config::default();
    let mut native = Connection::new(config.clone(), &Pool::default());
    let mut component = ComponentWriter::new(&config, &PoolConfig::default(), None).unwrap();
    let mut peer = Peer::new(config.max_header_table_size);
    let mut decoder = H2Decoder::default();
    for (index, line) in text.lines().enumerate() {
        let at = format!("{}:{}", path.display(), index + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let op = script::parse_line(line).unwrap_or_else(|error| panic!("{at}: {error}"));
        script::apply(&op, &mut native).unwrap_or_else(|error| panic!("{at}: native: {error}"));
        script::apply(&op, &mut component).unwrap_or_else(|error| panic!("{at}: component: {error}"));
        let bytes = drain_all(&mut native);
        assert_eq!(drain_all(&mut component), bytes, "{at}: component and native bytes differ");
        check_op(&op, &bytes, &mut peer, &mut decoder, &at);
    }
}

/// What the receiving peer advertised, and the HPACK table sizes the
/// encoder must signal because of it (RFC 7541 §4.2).
struct Peer {
    max_frame_size: usize,
    table_cap: usize,
    /// Table size last signaled to (or assumed by) the decoder.
    signaled: usize,
    /// Smallest effective size since the last header block, and the latest.
    changed: Option<(usize, usize)>,
}

impl Peer {
    fn new(table_cap: usize) -> Self {
        let mut peer = Peer { max_frame_size: 16_384, table_cap, signaled: DEFAULT_TABLE_SIZE, changed: None };
        peer.table_size(DEFAULT_TABLE_SIZE);
        peer
    }

    fn table_size(&mut self, advertised: usize) {
        let effective = advertised.min(self.table_cap);
        let smallest = self.changed.map_or(effective, |(smallest, _)| smallest.min(effective));
        self.changed = Some((smallest, effective));
    }

    /// Size updates the next header block must start with.
    fn take_updates(&mut self) -> Vec<Representation> {
        let Some((smallest, last)) = self.changed.take() else { return vec![] };
        let signaled = std::mem::replace(&mut self.signaled, last);
        if smallest < last {
            vec![Representation::SizeUpdate(smallest), Representation::SizeUpdate(last)]
        } else if last != signaled {
            vec![Representation::SizeUpdate(last)]
        } else {
            vec![]
        }
    }
}

fn check_op(op: &Op, bytes: &[u8], peer: &mut Peer, decoder: &mut H2Decoder, at: &str) {
    if let Op::Preface {} = op {
        assert_eq!(bytes, PREFACE, "{at}");
        return;
    }
    if let Op::PeerSettings { settings } = op {
        assert!(bytes.is_empty(), "{at}: peer_settings wrote bytes");
        for &(id, value) in settings {
            match id {
                1 => peer.table_size(value as usize),
                5 => peer.max_frame_size = value as usize,
                _ => {}
            }
        }
        decoder.apply_settings(settings);
        return;
    }
    let raw = raw_frames(bytes);
    for frame in &raw {
        assert!(frame.payload.len() <= peer.max_frame_size, "{at}: frame of {} bytes", frame.payload.len());
        assert!(!frame.reserved_bit, "{at}: reserved bit set");
    }
    let decoded = decoder.decode(bytes);
    use h2::frame::Frame as H2;
    match op {
        Op::Preface {} | Op::PeerSettings { .. } => unreachable!(),
        Op::Settings { settings } => {
            let payload: Vec<u8> = settings
                .iter()
                .flat_map(|&(id, value)| [&id.to_be_bytes()[..], &value.to_be_bytes()].concat())
                .collect();
            assert_eq!(raw, [RawFrame { kind: 4, flags: 0, stream: 0, reserved_bit: false, payload }], "{at}");
            let [H2::Settings(decoded)] = &decoded[..] else { panic!("{at}: h2 read {decoded:?}") };
            assert!(!decoded.is_ack(), "{at}");
            let max_frame_size = settings.iter().rev().find(|(id, _)| *id == 5).map(|&(_, value)| value);
            assert_eq!(decoded.max_frame_size(), max_frame_size, "{at}");
        }
        Op::SettingsAck {} => {
            assert_eq!(
                raw,
                [RawFrame { kind: 4, flags: ACK, stream: 0, reserved_bit: false, payload: vec![] }],
                "{at}"
            );
            let [H2::Settings(decoded)] = &decoded[..] else { panic!("{at}: h2 read {decoded:?}") };
            assert!(decoded.is_ack(), "{at}");
        }
        Op::Headers { stream, headers, end_stream, priority, pad_length } => {
            let start = check_header_block(&raw, 1, *stream, headers, *pad_length, peer, at);
            assert_eq!(raw[0].flags & END_STREAM != 0, *end_stream, "{at}: END_STREAM");
            assert_eq!(raw[0].flags & PRIORITY != 0, priority.is_some(), "{at}: PRIORITY flag");
            let expected = priority.map(|p| (p.exclusive, p.stream_dependency, p.weight));
            assert_eq!(start.priority, expected, "{at}: priority fields");
            assert_eq!(decoded.len(), 1, "{at}: h2 read {decoded:?}");
            let Some(H2::Headers(decoded)) = decoded.into_iter().next() else { panic!("{at}: h2 read no HEADERS") };
            assert_eq!(u32::from(decoded.stream_id()), *stream, "{at}");
            assert_eq!(decoded.is_end_stream(), *end_stream, "{at}");
            let (pseudo, fields) = decoded.into_parts();
            assert_eq!(decoded_fields(&pseudo, &fields), expected_fields(headers), "{at}: header fields");
        }
        Op::PushPromise { stream, promised_stream, headers, pad_length } => {
            let start = check_header_block(&raw, 5, *stream, headers, *pad_length, peer, at);
            assert_eq!(start.promised_stream, Some(*promised_stream), "{at}");
            assert_eq!(decoded.len(), 1, "{at}: h2 read {decoded:?}");
            let Some(H2::PushPromise(decoded)) = decoded.into_iter().next() else {
                panic!("{at}: h2 read no PUSH_PROMISE")
            };
            assert_eq!(u32::from(decoded.stream_id()), *stream, "{at}");
            assert_eq!(u32::from(decoded.promised_id()), *promised_stream, "{at}");
            let (pseudo, fields) = decoded.into_parts();
            assert_eq!(decoded_fields(&pseudo, &fields), expected_fields(headers), "{at}: header fields");
        }
        Op::Data { stream, data, data_b64, repeat, end_stream, pad_length } => {
            use base64::Engine as _;
            let body = match (data, data_b64, repeat) {
                (Some(text), _, _) => text.as_bytes().to_vec(),
                (_, Some(encoded), _) => base64::engine::general_purpose::STANDARD.decode(encoded).unwrap(),
                (_, _, Some(repeat)) => vec![repeat.byte; repeat.len],
                _ => unreachable!("the writer accepted a data line without a body"),
            };
            let mut sent = Vec::new();
            for (i, frame) in raw.iter().enumerate() {
                let last = i + 1 == raw.len();
                assert_eq!((frame.kind, frame.stream), (0, *stream), "{at}: frame {i}");
                assert_eq!(frame.flags & END_STREAM != 0, last && *end_stream, "{at}: END_STREAM on frame {i}");
                assert_eq!(frame.flags & PADDED != 0, pad_length.is_some(), "{at}: PADDED on frame {i}");
                if !last {
                    assert_eq!(frame.payload.len(), peer.max_frame_size, "{at}: frame {i} is not full");
                }
                let mut payload = &frame.payload[..];
                if let Some(pad) = pad_length {
                    assert_eq!(payload[0], *pad, "{at}: pad length of frame {i}");
                    let (data, padding) = payload[1..].split_at(payload.len() - 1 - *pad as usize);
                    assert!(padding.iter().all(|&b| b == 0), "{at}: padding");
                    payload = data;
                }
                sent.extend_from_slice(payload);
            }
            assert!(!raw.is_empty(), "{at}: no DATA frame");
            assert!(sent == body, "{at}: DATA payload differs from the body");
            let mut received = Vec::new();
            assert_eq!(decoded.len(), raw.len(), "{at}: h2 read {} frames", decoded.len());
            for frame in &decoded {
                let H2::Data(data) = frame else { panic!("{at}: h2 read {frame:?}") };
                assert_eq!(data.is_padded(), pad_length.is_some(), "{at}");
                received.extend_from_slice(data.payload());
            }
            assert!(received == body, "{at}: h2 read a different body");
        }
        Op::Priority { stream, stream_dependency, weight, exclusive } => {
            let word = stream_dependency | if *exclusive { 1 << 31 } else { 0 };
            let payload = [&word.to_be_bytes()[..], &[*weight]].concat();
            assert_eq!(raw, [RawFrame { kind: 2, flags: 0, stream: *stream, reserved_bit: false, payload }], "{at}");
            let [H2::Priority(_)] = decoded.as_slice() else { panic!("{at}: h2 read {decoded:?}") };
        }
        Op::RstStream { stream, error_code } => {
            let payload = error_code.to_be_bytes().to_vec();
            assert_eq!(raw, [RawFrame { kind: 3, flags: 0, stream: *stream, reserved_bit: false, payload }], "{at}");
            let [H2::Reset(reset)] = decoded.as_slice() else { panic!("{at}: h2 read {decoded:?}") };
            assert_eq!((u32::from(reset.stream_id()), u32::from(reset.reason())), (*stream, *error_code), "{at}");
        }
        Op::Ping { opaque_data, ack } => {
            let opaque: [u8; 8] = match opaque_data {
                Some(hex) => std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()),
                None => [0; 8],
            };
            let flags = if *ack { ACK } else { 0 };
            assert_eq!(
                raw,
                [RawFrame { kind: 6, flags, stream: 0, reserved_bit: false, payload: opaque.to_vec() }],
                "{at}"
            );
            let [H2::Ping(ping)] = decoded.as_slice() else { panic!("{at}: h2 read {decoded:?}") };
            assert_eq!((*ping.payload(), ping.is_ack()), (opaque, *ack), "{at}");
        }
        Op::Goaway { last_stream_id, error_code, debug_data } => {
            let payload =
                [&last_stream_id.to_be_bytes()[..], &error_code.to_be_bytes(), debug_data.as_bytes()].concat();
            assert_eq!(raw, [RawFrame { kind: 7, flags: 0, stream: 0, reserved_bit: false, payload }], "{at}");
            let [H2::GoAway(goaway)] = decoded.as_slice() else { panic!("{at}: h2 read {decoded:?}") };
            assert_eq!(u32::from(goaway.last_stream_id()), *last_stream_id, "{at}");
            assert_eq!(u32::from(goaway.reason()), *error_code, "{at}");
            assert_eq!(goaway.debug_data().as_ref(), debug_data.as_bytes(), "{at}");
        }
        Op::WindowUpdate { stream, increment } => {
            let payload = increment.to_be_bytes().to_vec();
            assert_eq!(raw, [RawFrame { kind: 8, flags: 0, stream: *stream, reserved_bit: false, payload }], "{at}");
            let [H2::WindowUpdate(update)] = decoded.as_slice() else { panic!("{at}: h2 read {decoded:?}") };
            assert_eq!((u32::from(update.stream_id()), update.size_increment()), (*stream, *increment), "{at}");
        }
        Op::Raw { frame_type, flags, stream, payload_b64 } => {
            use base64::Engine as _;
            let payload = base64::engine::general_purpose::STANDARD.decode(payload_b64).unwrap();
            let expected = RawFrame { kind: *frame_type, flags: *flags, stream: *stream, reserved_bit: false, payload };
            assert_eq!(raw, [expected], "{at}");
            // h2 skips frame types it does not know (RFC 9113 §4.1).
            assert!(decoded.is_empty(), "{at}: h2 read {decoded:?}");
        }
    }
}

/// Checks a HEADERS (`kind` 1) or PUSH_PROMISE (`kind` 5) frame and its
/// CONTINUATION frames; returns the first frame's parts.
fn check_header_block(
    raw: &[RawFrame],
    kind: u8,
    stream: u32,
    headers: &[ScriptHeader],
    pad_length: Option<u8>,
    peer: &mut Peer,
    at: &str,
) -> common::BlockStart {
    assert!(!raw.is_empty(), "{at}: no frame");
    let start = block_start(&raw[0]);
    let mut block = start.fragment.clone();
    for (i, frame) in raw.iter().enumerate() {
        let last = i + 1 == raw.len();
        assert_eq!((frame.kind, frame.stream), (if i == 0 { kind } else { 9 }, stream), "{at}: frame {i}");
        assert_eq!(frame.flags & END_HEADERS != 0, last, "{at}: END_HEADERS on frame {i}");
        if !last {
            assert_eq!(frame.payload.len(), peer.max_frame_size, "{at}: frame {i} is not full");
        }
        if i > 0 {
            assert_eq!(frame.flags, if last { END_HEADERS } else { 0 }, "{at}: CONTINUATION flags");
            block.extend_from_slice(&frame.payload);
        }
    }
    assert_eq!(raw[0].flags & PADDED != 0, pad_length.is_some(), "{at}: PADDED flag");
    assert_eq!(start.pad_length, pad_length, "{at}: pad length");

    let representations = representations(&block);
    let updates = peer.take_updates();
    assert_eq!(representations[..updates.len()], updates[..], "{at}: table size updates at the start of the block");
    assert!(
        representations[updates.len()..].iter().all(|r| !matches!(r, Representation::SizeUpdate(_))),
        "{at}: unexpected table size update in {representations:?}"
    );
    let never_indexed = representations.iter().filter(|r| **r == Representation::NeverIndexed).count();
    let sensitive = headers.iter().filter(|header| header.sensitive).count();
    assert_eq!(never_indexed, sensitive, "{at}: never-indexed literals");
    assert_eq!(representations.len() - updates.len(), headers.len(), "{at}: one representation per field");
    start
}

fn expected_fields(headers: &[ScriptHeader]) -> Vec<(String, String)> {
    let mut fields: Vec<_> = headers.iter().map(|header| (header.name.clone(), header.value.clone())).collect();
    fields.sort();
    fields
}
