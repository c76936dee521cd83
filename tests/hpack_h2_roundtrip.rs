//! Property test: random header lists, sensitive flags and peer table size
//! changes, encoded by our encoder and decoded by an independent decoder,
//! the `h2` crate's codec, on one connection (so its table state carries
//! over from block to block).
//!
//! What h2 shows is checked against what we sent: pseudo-header values, and
//! regular fields in order (h2's HeaderMap groups values by name, in order
//! of a name's first appearance, so the expectation is grouped the same
//! way). h2 does not report whether a field arrived never-indexed, so a
//! small walker over the block's representations checks that, and the table
//! size updates at the start of each block (RFC 7541 §4.2).

use std::io::Cursor;

use bytes::Bytes;
use futures_util::StreamExt;
use h2::Codec;
use h2::frame::Frame;
use h2fw::hpack::{Encoder, EncoderConfig, HeaderField, Huffman, Indexing};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

/// One field as generated: name, value, sensitive.
type Field = (Vec<u8>, Vec<u8>, bool);

/// One header block and the peer's table size settings received before it.
#[derive(Debug, Clone)]
struct Block {
    size_changes: Vec<u32>,
    fields: Vec<Field>,
}

// ------------------------------------------------------------------ strategies

const NAMES: &[&str] = &[
    "x-a",
    "x-b",
    "content-type",
    "cookie",
    "authorization",
    "proxy-authorization",
    "date",
    "user-agent",
    "accept",
    "accept-encoding",
    "cache-control",
    "etag",
    "set-cookie",
    "content-length",
    "location",
    "age",
    "x-weird!#$%&'*+.^_`|~0",
];

const VALUES: &[&str] =
    &["", "1", "gzip, deflate", "text/html", "private", "no-cache", "a=b; c=d", "0123456789abcdefghij"];

const CONNECTION_SPECIFIC: &[&[u8]] =
    &[b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te"];

/// Bytes h2 accepts in a regular field value: visible ASCII, SP, HTAB, obs-text.
fn value_byte() -> impl Strategy<Value = u8> {
    prop_oneof![8 => 0x20u8..=0x7e, 2 => 0x80u8..=0xff, 1 => Just(b'\t')]
}

fn trim(mut v: Vec<u8>) -> Vec<u8> {
    while v.last().is_some_and(|&b| b == b' ' || b == b'\t') {
        v.pop();
    }
    let start = v.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(v.len());
    v.split_off(start)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => select(VALUES).prop_map(|v| v.as_bytes().to_vec()),
        4 => vec(value_byte(), 0..40).prop_map(trim),
        1 => vec(value_byte(), 0..3200).prop_map(trim),
    ]
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => select(NAMES).prop_map(|n| n.as_bytes().to_vec()),
        1 => "[a-z0-9!#$%&'*+.^_`|~-]{1,16}"
            .prop_filter("connection-specific", |n| !CONNECTION_SPECIFIC.contains(&n.as_bytes()))
            .prop_map(String::into_bytes),
    ]
}

fn regular_field() -> impl Strategy<Value = Field> {
    (name(), value(), prop::bool::weighted(0.2)).prop_map(|(n, v, s)| (n, v, s))
}

/// A `:path` value: ASCII (h2 stores it as a str) with HTAB and SP inside.
/// Control bytes are refused by the encoder in every value (RFC 9110 §5.5;
/// `rejects_bad_values` in `hpack_encoder.rs`), so they never reach h2.
fn path() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![Just(b'\t'), 0x20u8..=0x7e];
    vec(byte, 0..30).prop_map(|rest| trim([b"/".as_slice(), &rest].concat()))
}

fn pseudo(name: &str, value: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Option<Field>> {
    let name = name.as_bytes().to_vec();
    prop::option::weighted(0.8, (value, prop::bool::weighted(0.1)).prop_map(move |(v, s)| (name.clone(), v, s)))
}

fn request_pseudo() -> impl Strategy<Value = Vec<Field>> {
    let method = select(&["GET", "POST", "PUT", "DELETE", "CUSTOM-M"][..]).prop_map(|m| m.as_bytes().to_vec());
    let scheme = select(&["http", "https"][..]).prop_map(|s| s.as_bytes().to_vec());
    let authority = prop_oneof![Just(b"www.example.com".to_vec()), "[a-z0-9.:-]{1,20}".prop_map(String::into_bytes)];
    let protocol = Just(b"websocket".to_vec());
    (
        pseudo(":method", method),
        pseudo(":scheme", scheme),
        pseudo(":authority", authority),
        pseudo(":path", path()),
        pseudo(":protocol", protocol),
    )
        .prop_flat_map(|(a, b, c, d, e)| Just([a, b, c, d, e].into_iter().flatten().collect::<Vec<_>>()).prop_shuffle())
}

fn response_pseudo() -> impl Strategy<Value = Vec<Field>> {
    (100u16..=999, prop::bool::weighted(0.1))
        .prop_map(|(s, sens)| vec![(b":status".to_vec(), s.to_string().into_bytes(), sens)])
}

fn header_list() -> impl Strategy<Value = Vec<Field>> {
    let pseudo = prop_oneof![request_pseudo(), response_pseudo(), Just(Vec::new())];
    (pseudo, vec(regular_field(), 0..14)).prop_map(|(mut p, r)| {
        p.extend(r);
        p
    })
}

fn block() -> impl Strategy<Value = Block> {
    let size = select(&[0u32, 32, 60, 100, 256, 1024, 4096, 8192, 65536][..]);
    (prop::collection::vec(size, 0..3).prop_map(|v| v), header_list())
        .prop_map(|(size_changes, fields)| Block { size_changes, fields })
}

fn config() -> impl Strategy<Value = EncoderConfig> {
    let cap = select(&[0usize, 64, 256, 4096, 8192][..]);
    let indexing = select(&[Indexing::Selective, Indexing::All][..]);
    let huffman = select(&[Huffman::WhenShorter, Huffman::Never, Huffman::Always][..]);
    (cap, indexing, huffman).prop_map(|(table_size_cap, indexing, huffman)| EncoderConfig {
        table_size_cap,
        indexing,
        huffman,
        ..EncoderConfig::default()
    })
}

// -------------------------------------------------------- representation walk

/// The kinds of representation in a header block (RFC 7541 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rep {
    Indexed,
    Incremental,
    WithoutIndexing,
    NeverIndexed,
    SizeUpdate(usize),
}

fn read_int(block: &[u8], pos: &mut usize, prefix_bits: u32) -> usize {
    let mask = (1usize << prefix_bits) - 1;
    let mut value = usize::from(block[*pos]) & mask;
    *pos += 1;
    if value == mask {
        let mut shift = 0;
        loop {
            let b = block[*pos];
            *pos += 1;
            value += usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    value
}

fn skip_string(block: &[u8], pos: &mut usize) {
    let len = read_int(block, pos, 7);
    *pos += len;
}

/// Kinds of the representations in `block`, in order.
fn representations(block: &[u8]) -> Vec<Rep> {
    let mut reps = Vec::new();
    let mut pos = 0;
    while pos < block.len() {
        let first = block[pos];
        let (rep, prefix_bits) = match first {
            0x80..=0xff => (Rep::Indexed, 7),
            0x40..=0x7f => (Rep::Incremental, 6),
            0x20..=0x3f => (Rep::SizeUpdate(0), 5),
            0x10..=0x1f => (Rep::NeverIndexed, 4),
            _ => (Rep::WithoutIndexing, 4),
        };
        let index = read_int(block, &mut pos, prefix_bits);
        match rep {
            Rep::Indexed => reps.push(rep),
            Rep::SizeUpdate(_) => reps.push(Rep::SizeUpdate(index)),
            _ => {
                if index == 0 {
                    skip_string(block, &mut pos);
                }
                skip_string(block, &mut pos);
                reps.push(rep);
            }
        }
    }
    reps
}

/// RFC 7541 §4.2 model of the size updates owed at the next block.
struct SizeModel {
    cap: usize,
    announced: usize,
    current: usize,
    smallest: Option<usize>,
}

impl SizeModel {
    fn change(&mut self, peer: u32) {
        self.current = (peer as usize).min(self.cap);
        self.smallest = Some(self.smallest.map_or(self.current, |s| s.min(self.current)));
    }

    fn updates(&mut self) -> Vec<Rep> {
        let mut out = Vec::new();
        if let Some(smallest) = self.smallest.take()
            && smallest < self.announced
        {
            out.push(Rep::SizeUpdate(smallest));
            self.announced = smallest;
        }
        if self.current != self.announced {
            out.push(Rep::SizeUpdate(self.current));
            self.announced = self.current;
        }
        out
    }
}

/// Whether the encoder must send `field` never-indexed: marked sensitive,
/// a credential, or a short cookie.
fn must_be_never_indexed(field: &Field) -> bool {
    let (name, value, sensitive) = field;
    *sensitive || name == b"authorization" || name == b"proxy-authorization" || (name == b"cookie" && value.len() < 20)
}

// ----------------------------------------------------------------- the check

fn frame(stream_id: u32, block: &[u8]) -> Vec<u8> {
    let len = u32::try_from(block.len()).unwrap();
    assert!(len < 1 << 24);
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.push(0x1); // HEADERS
    out.push(0x1 | 0x4); // END_STREAM | END_HEADERS
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(block);
    out
}

/// What h2 decoded from one block: pseudo-headers (name, value) in a fixed
/// order, then regular fields in HeaderMap order.
type Decoded = (Vec<(Vec<u8>, Vec<u8>)>, Vec<(Vec<u8>, Vec<u8>)>);

fn expected(fields: &[Field]) -> Decoded {
    let mut pseudo = Vec::new();
    for name in [":method", ":scheme", ":authority", ":path", ":protocol", ":status"] {
        if let Some((n, v, _)) = fields.iter().find(|(n, ..)| n == name.as_bytes()) {
            pseudo.push((n.clone(), v.clone()));
        }
    }
    let mut groups: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    for (n, v, _) in fields.iter().filter(|(n, ..)| n.first() != Some(&b':')) {
        match groups.iter_mut().find(|(g, _)| g == n) {
            Some((_, values)) => values.push(v.clone()),
            None => groups.push((n.clone(), vec![v.clone()])),
        }
    }
    let regular = groups.into_iter().flat_map(|(n, vs)| vs.into_iter().map(move |v| (n.clone(), v))).collect();
    (pseudo, regular)
}

fn decode_all(wire: Vec<u8>, blocks: &[Block]) -> Vec<Decoded> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let mut codec: Codec<_, Bytes> = Codec::with_max_recv_frame_size(Cursor::new(wire), (1 << 24) - 1);
        codec.set_max_recv_header_list_size(usize::MAX / 8);
        let mut decoded = Vec::new();
        for (i, block) in blocks.iter().enumerate() {
            // The peer's SETTINGS_HEADER_TABLE_SIZE, as its decoder sees it.
            for &size in &block.size_changes {
                codec.set_recv_header_table_size(size as usize);
            }
            let frame = codec.next().await.expect("a frame").unwrap_or_else(|e| panic!("block {i}: h2 error {e:?}"));
            let Frame::Headers(headers) = frame else { panic!("block {i}: not HEADERS: {frame:?}") };
            assert!(headers.is_end_stream());
            let (p, map) = headers.into_parts();
            let mut pseudo = Vec::new();
            let mut add = |name: &str, value: Option<&[u8]>| {
                if let Some(v) = value {
                    pseudo.push((name.as_bytes().to_vec(), v.to_vec()));
                }
            };
            add(":method", p.method.as_ref().map(|m| m.as_str().as_bytes()));
            add(":scheme", p.scheme.as_ref().map(|s| s.as_bytes()));
            add(":authority", p.authority.as_ref().map(|s| s.as_bytes()));
            add(":path", p.path.as_ref().map(|s| s.as_bytes()));
            add(":protocol", p.protocol.as_ref().map(|s| s.as_str().as_bytes()));
            add(":status", p.status.as_ref().map(|s| s.as_str().as_bytes()));
            let regular = map.iter().map(|(n, v)| (n.as_str().as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
            decoded.push((pseudo, regular));
        }
        assert!(codec.next().await.is_none(), "bytes left after the last block");
        decoded
    })
}

fn check(config: EncoderConfig, blocks: Vec<Block>) {
    let mut encoder = Encoder::with_config(config);
    let mut model = SizeModel {
        cap: config.table_size_cap,
        announced: 4096,
        current: 4096.min(config.table_size_cap),
        smallest: None,
    };
    let mut wire = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        for &size in &block.size_changes {
            encoder.set_peer_table_size(size);
            model.change(size);
        }
        let fields: Vec<HeaderField<'_>> =
            block.fields.iter().map(|(n, v, s)| HeaderField { name: n, value: v, sensitive: *s }).collect();
        let mut bytes = Vec::new();
        let written = encoder.encode(&fields, &mut bytes).unwrap_or_else(|e| panic!("block {i}: {e}"));
        assert_eq!(written, bytes.len());
        assert!(encoder.table_size() <= encoder.max_table_size());

        let reps = representations(&bytes);
        let updates = model.updates();
        assert_eq!(reps[..updates.len()], updates[..], "block {i}: size updates");
        let field_reps = &reps[updates.len()..];
        assert_eq!(field_reps.len(), block.fields.len(), "block {i}: one representation per field");
        for (rep, field) in field_reps.iter().zip(&block.fields) {
            if must_be_never_indexed(field) {
                assert_eq!(*rep, Rep::NeverIndexed, "block {i}: {field:?}");
            }
        }
        wire.extend(frame(2 * i as u32 + 1, &bytes));
    }
    let decoded = decode_all(wire, &blocks);
    for (i, (block, got)) in blocks.iter().zip(decoded).enumerate() {
        assert_eq!(got, expected(&block.fields), "block {i}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn h2_decodes_what_we_encode(config in config(), blocks in vec(block(), 1..8)) {
        check(config, blocks);
    }
}

/// The Huffman code of every byte a value may hold through h2 (HTAB, SP,
/// visible ASCII, obs-text), in `:path` and in a regular value, coded with
/// `Huffman::Always`. Control bytes are refused before encoding now; their
/// codes are checked by the unit tests of `hpack::huffman`.
#[test]
fn h2_decodes_every_huffman_code() {
    let config = EncoderConfig { huffman: Huffman::Always, ..EncoderConfig::default() };
    let path: Vec<u8> = [b"/\t".as_slice(), &(0x20..=0x7eu8).collect::<Vec<_>>()].concat();
    let value: Vec<u8> =
        [b"v".as_slice(), &(0x20..=0xffu8).filter(|&b| b != 0x7f).collect::<Vec<_>>(), b"\tv"].concat();
    let fields = vec![(b":path".to_vec(), path, false), (b"x-all".to_vec(), value, false)];
    check(config, vec![Block { size_changes: vec![], fields }]);
}
