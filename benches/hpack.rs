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

mod clock;
mod corpus;
mod h2_peer;
mod report;
mod wire;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use h2::frame::{Headers, Pseudo, StreamId};
use h2fw::conn::{Config, Connection, HeadersOptions};
use h2fw::hpack::{Encoder, HeaderField};
use h2fw::pool::Pool;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

use corpus::{Block, Corpus};
use report::Unit;

/// Blocks per connection of the corpus (six connections).
const MESSAGES: usize = 200;
/// The paths, in table order. `h2fw_conn` and the `h2_codec` paths write
/// framed HEADERS; `h2fw_*` take raw bytes and validate them, `h2_codec` takes
/// prebuilt (already validated) header maps, `h2_codec_from_bytes` builds them.
const PATHS: [&str; 4] = ["h2fw_hpack", "h2fw_conn", "h2_codec", "h2_codec_from_bytes"];

/// The corpus as h2fw takes it: per connection, per block, borrowed fields.
fn h2fw_fields(corpus: &Corpus) -> Vec<Vec<Vec<HeaderField<'_>>>> {
    corpus
        .connections
        .iter()
        .map(|connection| connection.blocks.iter().map(|block| block.header_fields()).collect())
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

/// Header block bytes in a run of HEADERS / CONTINUATION frames (frame headers not counted).
fn block_bytes(wire: &[u8]) -> usize {
    wire::frames(wire, &[0x1, 0x9]).unwrap_or_else(|error| panic!("{error}")).payload
}

/// What one corpus pass measured, per connection.
struct Pass {
    /// Time of the timed part.
    elapsed: Vec<Duration>,
    /// Header block bytes written.
    sizes: Vec<usize>,
}

impl Pass {
    fn new() -> Self {
        Pass { elapsed: Vec::new(), sizes: Vec::new() }
    }
}

/// Encodes every connection with h2fw's bare HPACK encoder into `out`.
fn encode_h2fw_hpack(fields: &[Vec<Vec<HeaderField<'_>>>], out: &mut Vec<u8>) -> Pass {
    let mut pass = Pass::new();
    for connection in fields {
        let mut encoder = Encoder::new();
        out.clear();
        pass.elapsed.push(
            clock::time(|| {
                for block in connection {
                    encoder.encode(black_box(block), out).expect("h2fw refused a corpus block");
                }
            })
            .1,
        );
        pass.sizes.push(out.len());
    }
    pass
}

/// Encodes every connection as HEADERS frames through h2fw's connection
/// (its raw escape hatch: the corpus mixes requests and responses, and no
/// preface is written, so the wire is the HEADERS frames alone); `inspect`
/// sees each connection's wire bytes (untimed).
fn encode_h2fw_conn(
    fields: &[Vec<Vec<HeaderField<'_>>>],
    out: &mut Vec<u8>,
    mut inspect: impl FnMut(usize, &[u8]),
) -> Pass {
    let mut pass = Pass::new();
    for (index, connection) in fields.iter().enumerate() {
        let mut writer = Connection::new(Config::default(), &Pool::default());
        out.clear();
        pass.elapsed.push(
            clock::time(|| {
                for (index, block) in connection.iter().enumerate() {
                    let options = HeadersOptions::default();
                    writer
                        .raw()
                        .write_headers(stream_of(index), black_box(block), options)
                        .expect("h2fw refused a corpus block");
                    writer.drain(usize::MAX, out).expect("drain");
                }
            })
            .1,
        );
        pass.sizes.push(block_bytes(out));
        inspect(index, out);
    }
    pass
}

/// Checks that `h2`'s decoder reads `wire` back as exactly `connection`'s
/// blocks: the sizes compared below are of correct encodings.
fn check_decodes(connection: &corpus::Connection, wire: &[u8]) {
    let frames = h2_peer::decode(wire, h2fw::frame::DEFAULT_MAX_FRAME_SIZE as usize)
        .unwrap_or_else(|error| panic!("{}: h2 cannot decode: {error:?}", connection.name));
    assert_eq!(frames.len(), connection.blocks.len(), "{}: one HEADERS frame per block", connection.name);
    for (index, (frame, block)) in frames.into_iter().zip(&connection.blocks).enumerate() {
        let h2::frame::Frame::Headers(headers) = frame else {
            panic!("{}: frame {index} is not HEADERS", connection.name)
        };
        let (pseudo, map) = headers.into_parts();
        let mut decoded: Vec<(String, String)> = [
            (":method", pseudo.method.as_ref().map(|method| method.as_str().to_owned())),
            (":scheme", pseudo.scheme.as_deref().map(str::to_owned)),
            (":authority", pseudo.authority.as_deref().map(str::to_owned)),
            (":path", pseudo.path.as_deref().map(str::to_owned)),
            (":status", pseudo.status.map(|status| status.as_str().to_owned())),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value?)))
        .collect();
        decoded.extend(
            map.iter().map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            }),
        );
        let expected: Vec<(String, String)> =
            block.fields.iter().map(|field| (field.name.clone(), field.value.clone())).collect();
        assert_eq!(decoded, expected, "{}: block {index} decodes differently", connection.name);
    }
}

/// Encodes every connection as HEADERS frames through `h2`'s codec. With
/// `from_bytes`, building `h2`'s frames from the raw names and values (which
/// is where `h2` validates them) is timed too.
fn encode_h2_codec(corpus: &Corpus, from_bytes: bool) -> Pass {
    let mut pass = Pass::new();
    for connection in &corpus.connections {
        let mut codec = h2_peer::codec(h2fw::frame::DEFAULT_MAX_FRAME_SIZE as usize);
        let mut encode = |frames: Vec<Headers>| {
            for frame in frames {
                h2_peer::write(&mut codec, black_box(frame).into());
            }
        };
        let build = || -> Vec<Headers> {
            connection
                .blocks
                .iter()
                .enumerate()
                .map(|(index, block)| h2_headers(black_box(block), stream_of(index)))
                .collect()
        };
        pass.elapsed.push(if from_bytes {
            clock::time(|| encode(build())).1
        } else {
            let frames = build();
            clock::time(|| encode(frames)).1
        });
        pass.sizes.push(block_bytes(&codec.get_mut().written));
    }
    pass
}

/// One corpus pass of a path: the corpus, h2fw's fields of it, a reused output buffer.
type PassFn = fn(&Corpus, &[Vec<Vec<HeaderField<'_>>>], &mut Vec<u8>) -> Pass;

/// Runs `iters` corpus passes and records the time of each path and connection.
fn sample(path: &str, corpus: &Corpus, iters: u64, mut pass: impl FnMut() -> Pass) -> Duration {
    let mut per_connection = vec![Duration::ZERO; corpus.connections.len()];
    let total = report::sample(&format!("hpack/{path}"), iters, || {
        let elapsed = pass().elapsed;
        for (sum, part) in per_connection.iter_mut().zip(&elapsed) {
            *sum += *part;
        }
        elapsed.iter().sum()
    });
    for (connection, elapsed) in corpus.connections.iter().zip(&per_connection) {
        report::record(&format!("hpack/{path}/{}", connection.name), iters, *elapsed);
    }
    total
}

fn print_sizes(corpus: &Corpus, fields: &[Vec<Vec<HeaderField<'_>>>]) {
    let ours =
        encode_h2fw_conn(fields, &mut Vec::new(), |index, wire| check_decodes(&corpus.connections[index], wire)).sizes;
    let bare = encode_h2fw_hpack(fields, &mut Vec::new()).sizes;
    assert_eq!(ours, bare, "the connection's header blocks differ from the encoder's");
    let theirs = encode_h2_codec(corpus, false).sizes;
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
        "HPACK encoded size (header block bytes, frame headers excluded; h2fw's blocks checked by h2's decoder)",
        &["connection", "blocks", "input bytes", "h2fw", "h2", "h2fw / h2"],
        &rows,
    );
}

/// Rounds of the paired pass (each runs every path over the whole corpus once).
const PAIRED_ROUNDS: usize = 100;

fn print_rates(corpus: &Corpus, paired: &[(&str, f64)]) {
    let (blocks, input) = (corpus.blocks() as f64, corpus.input_bytes() as f64);
    let rate = |name: &str| report::measured(&format!("hpack/{name}")).map(|m| 1.0 / m.seconds_per_iter);
    let versus = |ours: Option<f64>, theirs: &str| match (ours, rate(theirs)) {
        (Some(ours), Some(theirs)) => format!("{}×", report::sig3(ours / theirs)),
        _ => "–".to_owned(),
    };
    let mut rows = Vec::new();
    for path in PATHS {
        let Some(m) = report::measured(&format!("hpack/{path}")) else { continue };
        rows.push(vec![
            path.to_owned(),
            format!("{:.0}", blocks / m.seconds_per_iter / 1e3),
            report::sig3(input / m.seconds_per_iter / 1e6),
            format!("{:.0}", m.seconds_per_iter * 1e9 / blocks),
            versus(rate(path), "h2_codec"),
            paired
                .iter()
                .find(|(name, _)| *name == path)
                .map_or("–".to_owned(), |(_, speed)| format!("**{}×**", report::sig3(*speed))),
            versus(rate(path), "h2_codec_from_bytes"),
            m.iterations.to_string(),
        ]);
    }
    report::print_table(
        &format!(
            "HPACK encode rate, whole corpus (median of samples; paired: median over {PAIRED_ROUNDS} rounds \
             running every path once, of its speed over h2_codec's in the same round)"
        ),
        &[
            "path",
            "k blocks/s",
            "MB/s of input",
            "ns/block",
            "vs h2_codec",
            "vs h2_codec, paired",
            "vs h2_codec_from_bytes",
            "corpus passes",
        ],
        &rows,
    );

    let mut rows = Vec::new();
    for connection in &corpus.connections {
        let per_block = |path: &str| {
            report::measured(&format!("hpack/{path}/{}", connection.name))
                .map(|m| m.seconds_per_iter * 1e9 / connection.blocks.len() as f64)
        };
        let cell = |value: Option<f64>| value.map_or("–".to_owned(), |ns| format!("{ns:.0}"));
        let speed = |ours: Option<f64>, theirs: Option<f64>| match (ours, theirs) {
            (Some(ours), Some(theirs)) => format!("{}×", report::sig3(theirs / ours)),
            _ => "–".to_owned(),
        };
        let (ours, theirs, theirs_from_bytes) =
            (per_block("h2fw_conn"), per_block("h2_codec"), per_block("h2_codec_from_bytes"));
        rows.push(vec![
            connection.name.to_owned(),
            cell(ours),
            cell(theirs),
            cell(theirs_from_bytes),
            speed(ours, theirs),
            speed(ours, theirs_from_bytes),
        ]);
    }
    report::print_table(
        "HPACK ns/block per connection: h2fw_conn against h2",
        &["connection", "h2fw_conn", "h2_codec", "h2_codec_from_bytes", "speed vs h2_codec", "vs from_bytes"],
        &rows,
    );
}

fn main() {
    let corpus = Corpus::generate(MESSAGES);
    let fields = h2fw_fields(&corpus);
    let mut criterion = Criterion::default().without_plots().configure_from_args();
    let mut group = criterion.benchmark_group("hpack");
    group
        .throughput(Throughput::ElementsAndBytes {
            elements: corpus.blocks() as u64,
            bytes: corpus.input_bytes() as u64,
        })
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    // h2_codec first: the paired pass compares every path to it.
    let passes: [(&'static str, PassFn); 4] = [
        ("h2_codec", |corpus, _, _| encode_h2_codec(corpus, false)),
        ("h2fw_hpack", |_, fields, out| encode_h2fw_hpack(fields, out)),
        ("h2fw_conn", |_, fields, out| encode_h2fw_conn(fields, out, |_, _| ())),
        ("h2_codec_from_bytes", |corpus, _, _| encode_h2_codec(corpus, true)),
    ];
    let mut out = Vec::new();
    for (path, pass) in passes {
        group.bench_function(path, |b| {
            b.iter_custom(|iters| sample(path, &corpus, iters, || pass(&corpus, &fields, &mut out)))
        });
    }
    let (corpus, fields) = (&corpus, &fields);
    let units: Vec<(&'static str, Unit<'_>)> = passes
        .into_iter()
        .map(|(path, pass)| {
            let mut out = Vec::new();
            let unit: Unit<'_> = Box::new(move || pass(corpus, fields, &mut out).elapsed.iter().sum());
            (path, unit)
        })
        .collect();
    group.finish();
    criterion.final_summary();
    let paired = report::paired_speeds("hpack", PAIRED_ROUNDS, units);
    print_rates(corpus, &paired);
    print_sizes(corpus, fields);
}
