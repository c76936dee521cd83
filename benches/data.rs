//! DATA framing throughput: h2fw's frame layer and connection path against a
//! plain memcpy of the same bytes (the limit), the same copy done frame by
//! frame (`memcpy_framed`), and `h2`'s `Codec`, in one run.
//!
//! Each iteration frames a 16 MiB slice of body into DATA frames of 16 KiB
//! (the default MAX_FRAME_SIZE) or 1 MiB; criterion runs enough iterations
//! that every path processes well over 1 GiB. The ratio table printed at the
//! end is what BENCHMARKS.md quotes.
//!
//! `cargo bench --bench data`

mod clock;
mod h2_peer;
mod report;
mod wire;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput};
use h2::frame::{Data, StreamId};
use h2fw::conn::{Config, Connection, Error, StreamHints};
use h2fw::frame::{FRAME_HEADER_LEN, Frame, setting};
use h2fw::hpack::HeaderField;
use h2fw::pool::Pool;
use report::Unit;

/// Body bytes framed per iteration: a slice of the GiB.
const UNIT: usize = 16 << 20;
/// Frame sizes measured: the RFC default and a peer that allows 1 MiB.
const FRAME_SIZES: [(usize, &str); 2] = [(16 << 10, "16KiB"), (1 << 20, "1MiB")];
/// Peer's initial stream window and connection window: far above one unit,
/// replenished after each unit as a reading peer would.
const WINDOW: u32 = 1 << 30;
/// The paths, in table order; the first is the limit.
const PATHS: [&str; 6] = ["memcpy", "memcpy_framed", "h2fw_frame", "h2fw_conn", "h2fw_conn_queued", "h2_codec"];

/// The body: 16 MiB of a non-repeating byte pattern.
fn body() -> Vec<u8> {
    (0..UNIT as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

/// Checks that a path's last unit is whole DATA frames of at most
/// `frame_size` that `h2`'s decoder reads back as `body`; `None` when the
/// path did not run.
fn check(path: &str, wire: &[u8], frame_size: usize, body: &[u8]) -> Option<wire::Frames> {
    if wire.is_empty() {
        return None;
    }
    let frames = wire::frames(wire, &[0x0]).unwrap_or_else(|error| panic!("{path}: {error}"));
    assert!(frames.largest <= frame_size, "{path}: a frame of {} bytes exceeds {frame_size}", frames.largest);
    let decoded =
        h2_peer::decode(wire, frame_size).unwrap_or_else(|error| panic!("{path}: h2 cannot decode: {error:?}"));
    let mut carried = Vec::with_capacity(body.len());
    for frame in decoded {
        let h2::frame::Frame::Data(data) = frame else { panic!("{path}: h2 decoded a frame that is not DATA") };
        carried.extend_from_slice(data.payload());
    }
    assert!(carried == body, "{path}: the DATA frames do not carry the body");
    Some(frames)
}

/// Wire bytes of `UNIT` body bytes in frames of `frame_size`.
fn framed_len(frame_size: usize) -> usize {
    UNIT + UNIT.div_ceil(frame_size) * FRAME_HEADER_LEN
}

/// The connection path: one open stream with windows wide open; body goes in
/// one frame's worth per call and its frames come out into a reused buffer,
/// through `send_and_drain` (`h2fw_conn`), or through `send` and then `drain`
/// (`h2fw_conn_queued`: every byte copied into the output queue first).
struct ConnectionPath {
    connection: Connection,
    queued: bool,
}

/// The stream the body goes out on.
const STREAM: u32 = 1;
/// Its request headers.
const REQUEST: [HeaderField<'static>; 4] = [
    HeaderField { name: b":method", value: b"POST", sensitive: false },
    HeaderField { name: b":scheme", value: b"https", sensitive: false },
    HeaderField { name: b":authority", value: b"upload.example.com", sensitive: false },
    HeaderField { name: b":path", value: b"/v1/objects", sensitive: false },
];

impl ConnectionPath {
    fn new(frame_size: usize, queued: bool) -> Result<Self, Error> {
        let mut connection = Connection::new(Config::default(), &Pool::default());
        connection.apply_peer_settings(&[
            (setting::INITIAL_WINDOW_SIZE, WINDOW),
            (setting::MAX_FRAME_SIZE, frame_size as u32),
        ])?;
        connection.apply_window_update(0, WINDOW - 65_535)?;
        connection.open_stream(STREAM, &REQUEST, StreamHints::default(), false)?;
        connection.drain(usize::MAX, &mut Vec::new())?;
        Ok(ConnectionPath { connection, queued })
    }

    /// Frames `body` into `out` (cleared first), then gives the windows back.
    fn frame_unit(&mut self, body: &[u8], frame_size: usize, out: &mut Vec<u8>) -> Result<(), Error> {
        out.clear();
        for piece in body.chunks(frame_size) {
            let mut rest = piece;
            while !rest.is_empty() {
                let before = out.len();
                let sent = if self.queued {
                    self.connection.send(STREAM, rest)
                } else {
                    self.connection.send_and_drain(STREAM, rest, out)
                };
                let taken = match sent {
                    Ok(taken) => taken,
                    Err(Error::WouldBlock { .. }) => 0,
                    Err(error) => return Err(error),
                };
                if self.queued || taken == 0 {
                    self.connection.drain(usize::MAX, out)?;
                }
                rest = rest.get(taken..).unwrap_or_default();
                assert!(taken > 0 || out.len() > before, "connection made no progress");
            }
        }
        self.connection.apply_window_update(0, UNIT as u32)?;
        self.connection.apply_window_update(STREAM, UNIT as u32)?;
        Ok(())
    }
}

/// Rounds of the paired pass (each runs every path on one unit).
const PAIRED_ROUNDS: usize = 60;

/// What one frame size measured: the frames each framing path wrote per
/// unit, and each path's paired speed relative to memcpy.
struct FrameSizeRun {
    written: BTreeMap<&'static str, wire::Frames>,
    paired: Vec<(&'static str, f64)>,
}

/// Benches every path at one frame size with criterion, then runs the
/// paired pass over the same units, then checks what each path wrote.
fn bench_frame_size(criterion: &mut Criterion, body: &[u8], frame_size: usize, label: &str) -> FrameSizeRun {
    let mut copied = vec![0u8; UNIT];
    let mut framed_copy = vec![0u8; framed_len(frame_size)];
    let mut outs: [Vec<u8>; 3] = std::array::from_fn(|_| Vec::with_capacity(framed_len(frame_size)));
    let [frame_out, conn_out, queued_out] = &mut outs;
    let mut conn = ConnectionPath::new(frame_size, false).expect("connection setup");
    let mut queued = ConnectionPath::new(frame_size, true).expect("connection setup");
    let data = Frame::Data { stream: STREAM, data: body, end_stream: false, pad_length: None };
    let shared = Bytes::copy_from_slice(body);
    let mut codec = h2_peer::codec(frame_size);
    codec.get_mut().written.reserve(framed_len(frame_size));

    let mut units: Vec<(&'static str, Unit<'_>)> = vec![
        ("memcpy", Box::new(|| clock::time(|| copied.copy_from_slice(black_box(body))).1)),
        // The same copy in frame-sized pieces, each after a 9-byte header:
        // what any framer must at least do (no single huge memcpy).
        (
            "memcpy_framed",
            Box::new(|| {
                clock::time(|| {
                    let frames = framed_copy.chunks_mut(FRAME_HEADER_LEN + frame_size);
                    for (frame, payload) in frames.zip(black_box(body).chunks(frame_size)) {
                        let (header, rest) = frame.split_at_mut(FRAME_HEADER_LEN);
                        header.copy_from_slice(&[0; FRAME_HEADER_LEN]);
                        rest.copy_from_slice(payload);
                    }
                })
                .1
            }),
        ),
        (
            "h2fw_frame",
            Box::new(|| {
                clock::time(|| {
                    frame_out.clear();
                    black_box(&data).encode(frame_out, frame_size as u32).expect("frame layer refused DATA");
                })
                .1
            }),
        ),
        (
            "h2fw_conn",
            Box::new(|| {
                clock::time(|| conn.frame_unit(black_box(body), frame_size, conn_out).expect("connection refused DATA"))
                    .1
            }),
        ),
        (
            "h2fw_conn_queued",
            Box::new(|| {
                clock::time(|| {
                    queued.frame_unit(black_box(body), frame_size, queued_out).expect("connection refused DATA")
                })
                .1
            }),
        ),
        (
            "h2_codec",
            Box::new(|| {
                clock::time(|| {
                    codec.get_mut().written.clear();
                    for start in (0..UNIT).step_by(frame_size) {
                        let payload = shared.slice(start..(start + frame_size).min(UNIT));
                        h2_peer::write(&mut codec, Data::new(StreamId::from(STREAM), payload).into());
                    }
                })
                .1
            }),
        ),
    ];

    let mut group = criterion.benchmark_group(format!("data_{label}"));
    group
        .throughput(Throughput::Bytes(UNIT as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (path, unit) in &mut units {
        let name = format!("data_{label}/{path}");
        group.bench_function(*path, |b| b.iter_custom(|iters| report::sample(&name, iters, &mut *unit)));
    }
    group.finish();
    let paired = report::paired_speeds(&format!("data_{label}"), PAIRED_ROUNDS, units);

    let mut written = BTreeMap::new();
    let wires = [("h2fw_frame", &outs[0]), ("h2fw_conn", &outs[1]), ("h2fw_conn_queued", &outs[2])];
    for (path, wire) in wires.into_iter().chain([("h2_codec", &codec.get_mut().written)]) {
        written.extend(check(path, wire, frame_size, body).map(|frames| (path, frames)));
    }
    FrameSizeRun { written, paired }
}

fn print_ratios(runs: &BTreeMap<&str, FrameSizeRun>) {
    let gib = (1u64 << 30) as f64;
    let mut rows = Vec::new();
    for (_, label) in FRAME_SIZES {
        let Some(run) = runs.get(label) else { continue };
        let measured = |path: &str| report::measured(&format!("data_{label}/{path}"));
        let rate = |path: &str| measured(path).map(|m| UNIT as f64 / m.seconds_per_iter / gib);
        for path in PATHS {
            let (Some(m), Some(path_rate)) = (measured(path), rate(path)) else { continue };
            let versus = |other: &str| {
                rate(other).map_or("–".to_owned(), |other| format!("{}×", report::sig3(path_rate / other)))
            };
            let paired = run.paired.iter().find(|(name, _)| *name == path);
            rows.push(vec![
                label.to_owned(),
                path.to_owned(),
                report::sig3(path_rate),
                versus("memcpy"),
                paired.map_or("–".to_owned(), |(_, speed)| format!("**{}×**", report::sig3(*speed))),
                versus("h2_codec"),
                report::sig3(m.iterations as f64 * UNIT as f64 / gib),
                run.written.get(path).map_or("–".to_owned(), |frames| frames.count.to_string()),
            ]);
        }
    }
    report::print_table(
        &format!(
            "DATA framing, 16 MiB per iteration (median of samples; paired: median over {PAIRED_ROUNDS} rounds \
             running every path once, of its speed over memcpy's in the same round)"
        ),
        &["frames", "path", "GiB/s", "vs memcpy", "vs memcpy, paired", "vs h2", "GiB processed", "frames per 16 MiB"],
        &rows,
    );
}

fn main() {
    let body = body();
    let mut criterion = Criterion::default().without_plots().configure_from_args();
    let mut runs = BTreeMap::new();
    for (frame_size, label) in FRAME_SIZES {
        runs.insert(label, bench_frame_size(&mut criterion, &body, frame_size, label));
    }
    criterion.final_summary();
    print_ratios(&runs);
}
