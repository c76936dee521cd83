//! HEADERS / HPACK: encode rate and encoded size of h2fw against `h2`'s
//! `Codec` on a realistic corpus (benches/corpus: gRPC, browser page loads,
//! REST APIs, both directions), in one run.
//!
//! One iteration encodes the whole corpus, each connection with a fresh
//! encoder (tables start empty, as on a new connection). Setting up
//! connections and `h2`'s frames is outside the timed part; `h2` takes its
//! header maps by value, so dropping them is part of its encode.
//!
//! `cargo bench --bench hpack`

mod corpus;
mod h2_peer;
mod report;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use h2::frame::{Headers, Pseudo, StreamId};
use h2fw::conn::{Config, Connection, HeadersOptions};
use h2fw::frame::FRAME_HEADER_LEN;
use h2fw::hpack::{Encoder, HeaderField};
use h2fw::pool::Policy;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

use corpus::{Block, Corpus};

/// Blocks per connection of the corpus (six connections).
const MESSAGES: usize = 200;
/// The paths, in table order; `h2fw_conn` and `h2_codec` both write framed HEADERS.
const PATHS: [&str; 3] = ["h2fw_hpack", "h2fw_conn", "h2_codec"];

/// The corpus as h2fw takes it: per connection, per block, borrowed fields.
fn h2fw_fields(corpus: &Corpus) -> Vec<Vec<Vec<HeaderField<'_>>>> {
    corpus
        .connections
        .iter()
        .map(|connection| {
            connection
                .blocks
                .iter()
                .map(|block| {
                    block
                        .fields
                        .iter()
                        .map(|field| HeaderField { name: field.name.as_bytes(), value: field.value.as_bytes(), sensitive: field.sensitive })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// The corpus block as `h2` takes it: pseudo-headers plus a header map, with
/// `authorization` marked sensitive exactly where the corpus marks it.
fn h2_headers(block: &Block, stream: u32) -> Headers {
    let mut fields = HeaderMap::with_capacity(block.fields.len());
    for field in block.fields.iter().filter(|field| !field.name.starts_with(':')) {
        let name = HeaderName::from_bytes(field.name.as_bytes()).expect("corpus names are valid");
        let mut value = HeaderValue::from_str(&field.value).expect("corpus values are valid");
        value.set_sensitive(field.sensitive);
        fields.append(name, value);
    }
    let stream = StreamId::from(stream);
    if let Some(status) = block.get(":status") {
        let status = StatusCode::from_bytes(status.as_bytes()).expect("corpus status is valid");
        Headers::new(stream, Pseudo::response(status), fields)
    } else if let Some(method) = block.get(":method") {
        let uri = format!(
            "{}://{}{}",
            block.get(":scheme").unwrap_or("https"),
            block.get(":authority").unwrap_or_default(),
            block.get(":path").unwrap_or("/")
        );
        let method = Method::from_bytes(method.as_bytes()).expect("corpus method is valid");
        let uri = uri.parse::<Uri>().expect("corpus URI is valid");
        Headers::new(stream, Pseudo::request(method, uri, None), fields)
    } else {
        Headers::trailers(stream, fields)
    }
}

/// Stream of the `index`th block of a connection: a new client stream each.
fn stream_of(index: usize) -> u32 {
    1 + 2 * index as u32
}

/// Header block bytes in a run of frames (frame headers not counted).
fn block_bytes(wire: &[u8]) -> usize {
    let mut rest = wire;
    let mut payload = 0;
    while let Some(header) = rest.get(..FRAME_HEADER_LEN) {
        let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        payload += len;
        rest = rest.get(FRAME_HEADER_LEN + len..).expect("truncated frame");
    }
    payload
}

/// Encodes every connection with h2fw's bare HPACK encoder into `out`.
fn encode_h2fw_hpack(fields: &[Vec<Vec<HeaderField<'_>>>], out: &mut Vec<u8>) -> (Duration, Vec<usize>) {
    let mut elapsed = Duration::ZERO;
    let mut sizes = Vec::new();
    for connection in fields {
        let mut encoder = Encoder::new();
        out.clear();
        elapsed += report::stopwatch(|| {
            for block in connection {
                encoder.encode(black_box(block), out).expect("h2fw refused a corpus block");
            }
        });
        sizes.push(out.len());
    }
    (elapsed, sizes)
}

/// Encodes every connection as HEADERS frames through h2fw's connection.
fn encode_h2fw_conn(fields: &[Vec<Vec<HeaderField<'_>>>], out: &mut Vec<u8>) -> (Duration, Vec<usize>) {
    let mut elapsed = Duration::ZERO;
    let mut sizes = Vec::new();
    for connection in fields {
        let mut writer = Connection::new(Config::new(Policy::Tiered));
        out.clear();
        elapsed += report::stopwatch(|| {
            for (index, block) in connection.iter().enumerate() {
                writer.write_headers(stream_of(index), black_box(block), HeadersOptions::default()).expect("h2fw refused a corpus block");
                writer.drain(usize::MAX, out).expect("drain");
            }
        });
        sizes.push(block_bytes(out));
    }
    (elapsed, sizes)
}

/// Encodes every connection as HEADERS frames through `h2`'s codec.
fn encode_h2_codec(corpus: &Corpus) -> (Duration, Vec<usize>) {
    let mut elapsed = Duration::ZERO;
    let mut sizes = Vec::new();
    for connection in &corpus.connections {
        let frames: Vec<Headers> = connection.blocks.iter().enumerate().map(|(index, block)| h2_headers(block, stream_of(index))).collect();
        let mut codec = h2_peer::codec(h2fw::frame::DEFAULT_MAX_FRAME_SIZE as usize);
        elapsed += report::stopwatch(|| {
            for frame in frames {
                h2_peer::write(&mut codec, black_box(frame).into());
            }
        });
        sizes.push(block_bytes(&codec.get_mut().written));
    }
    (elapsed, sizes)
}

fn print_sizes(corpus: &Corpus, fields: &[Vec<Vec<HeaderField<'_>>>]) {
    let (_, ours) = encode_h2fw_conn(fields, &mut Vec::new());
    let (_, bare) = encode_h2fw_hpack(fields, &mut Vec::new());
    assert_eq!(ours, bare, "the connection's header blocks differ from the encoder's");
    let (_, theirs) = encode_h2_codec(corpus);
    let mut rows = Vec::new();
    let mut totals = (0, 0, 0, 0);
    for ((connection, ours), theirs) in corpus.connections.iter().zip(&ours).zip(&theirs) {
        let input: usize = connection.blocks.iter().map(Block::input_bytes).sum();
        totals = (totals.0 + connection.blocks.len(), totals.1 + input, totals.2 + ours, totals.3 + theirs);
        rows.push(vec![
            connection.name.to_owned(),
            connection.blocks.len().to_string(),
            input.to_string(),
            ours.to_string(),
            theirs.to_string(),
            format!("{:.3}", *ours as f64 / *theirs as f64),
        ]);
    }
    let (blocks, input, ours, theirs) = totals;
    rows.push(vec![
        "**all**".to_owned(),
        blocks.to_string(),
        input.to_string(),
        ours.to_string(),
        theirs.to_string(),
        format!("{:.3}", ours as f64 / theirs as f64),
    ]);
    report::print_table(
        "HPACK encoded size (header block bytes, frame headers excluded)",
        &["connection", "blocks", "input bytes", "h2fw", "h2", "h2fw / h2"],
        &rows,
    );
}

fn print_rates(corpus: &Corpus) {
    let (blocks, input) = (corpus.blocks() as f64, corpus.input_bytes() as f64);
    let rate = |path: &str| report::measured(&format!("hpack/{path}")).map(|m| blocks / m.seconds_per_iter);
    let mut rows = Vec::new();
    for path in PATHS {
        let (Some(m), Some(path_rate)) = (report::measured(&format!("hpack/{path}")), rate(path)) else { continue };
        let versus_h2 = rate("h2_codec").map_or("–".to_owned(), |theirs| format!("{}×", report::sig3(path_rate / theirs)));
        rows.push(vec![
            path.to_owned(),
            format!("{:.0}", path_rate / 1e3),
            report::sig3(input / m.seconds_per_iter / 1e6),
            report::sig3(m.seconds_per_iter * 1e9 / blocks),
            versus_h2,
            m.iterations.to_string(),
        ]);
    }
    report::print_table(
        "HPACK encode rate (median of samples)",
        &["path", "k blocks/s", "MB/s of input", "ns/block", "vs h2", "corpus passes"],
        &rows,
    );
}

fn main() {
    let corpus = Corpus::generate(MESSAGES);
    let fields = h2fw_fields(&corpus);
    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("hpack");
    group
        .throughput(Throughput::ElementsAndBytes { elements: corpus.blocks() as u64, bytes: corpus.input_bytes() as u64 })
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut out = Vec::new();
    group.bench_function("h2fw_hpack", |b| {
        b.iter_custom(|iters| report::sample("hpack/h2fw_hpack", iters, || encode_h2fw_hpack(&fields, &mut out).0))
    });
    group.bench_function("h2fw_conn", |b| {
        b.iter_custom(|iters| report::sample("hpack/h2fw_conn", iters, || encode_h2fw_conn(&fields, &mut out).0))
    });
    group.bench_function("h2_codec", |b| b.iter_custom(|iters| report::sample("hpack/h2_codec", iters, || encode_h2_codec(&corpus).0)));
    group.finish();
    criterion.final_summary();
    print_rates(&corpus);
    print_sizes(&corpus, &fields);
}

