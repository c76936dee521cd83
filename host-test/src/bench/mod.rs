//! `h2fw bench`: the benchmark workloads of `benches/` driven through the
//! [`Writer`] interface, so the same calls run on the native library and on
//! the component under wasmtime, and the table shows the component's cost as
//! a ratio to native.
//!
//! Runs are timed in thread CPU time ([`clock`]), and rounds alternate
//! native and component runs with each side reporting its median run, so
//! load from other processes on a shared machine lands on both sides alike.

pub mod cli;

#[path = "../../../benches/clock/mod.rs"]
mod clock;
#[path = "../../../benches/corpus/mod.rs"]
mod corpus;
#[path = "../../../benches/wire/mod.rs"]
mod wire;

use std::time::Duration;

use h2fw::conn::{BatchItem, Config, Connection, HeadersOptions, StreamHints};
use h2fw::frame::{FRAME_HEADER_LEN, setting};
use h2fw::hpack::HeaderField;
use h2fw::pool::{Pool, PoolConfig};

use crate::runtime::ComponentWriter;
use crate::writer::{ErrorKind, WriteError, Writer};

pub use corpus::Corpus;

/// Largest drain request: every queued byte (the WIT `drain` takes a u32).
const DRAIN_ALL: usize = u32::MAX as usize;
/// Peer's initial stream window and connection window: far above what one
/// run sends, so flow control never stalls the DATA workloads.
const WINDOW: u32 = 1 << 30;

/// Which writer a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The native library (`h2fw::conn::Connection`).
    Native,
    /// The component under wasmtime (`ComponentWriter`).
    Component,
}

impl Side {
    /// A fresh writer of this side; building it is never timed.
    pub fn writer(self, config: &Config) -> anyhow::Result<Box<dyn Writer>> {
        Ok(match self {
            Side::Native => Box::new(Connection::new(config.clone(), &Pool::default())),
            Side::Component => Box::new(ComponentWriter::new(config, &PoolConfig::default(), None)?),
        })
    }
}

fn check_taken(stream: u32, taken: usize, len: usize) -> Result<(), WriteError> {
    if taken == len {
        Ok(())
    } else {
        Err(WriteError::Host(anyhow::anyhow!(
            "stream {stream}: {taken} of {len} bytes taken in the small-frame workload"
        )))
    }
}

/// Request headers of the streams the DATA and small-frame workloads open.
fn request(path: &'static [u8]) -> [HeaderField<'static>; 5] {
    [
        HeaderField { name: b":method", value: b"POST", sensitive: false },
        HeaderField { name: b":scheme", value: b"https", sensitive: false },
        HeaderField { name: b":authority", value: b"backend.example.com", sensitive: false },
        HeaderField { name: b":path", value: path, sensitive: false },
        HeaderField { name: b"content-type", value: b"application/grpc", sensitive: false },
    ]
}

/// Tells `writer` its peer advertised `max_frame_size` and wide-open windows,
/// and opens streams `1, 3, …` (`streams` of them) for sending.
fn open_streams(writer: &mut dyn Writer, max_frame_size: usize, streams: u32) -> anyhow::Result<()> {
    writer.apply_peer_settings(&[
        (setting::INITIAL_WINDOW_SIZE, WINDOW),
        (setting::MAX_FRAME_SIZE, max_frame_size as u32),
    ])?;
    writer.apply_window_update(0, WINDOW - 65_535)?;
    for index in 0..streams {
        writer.open_stream(1 + 2 * index, &request(b"/objects.v1.Store/Put"), StreamHints::default(), false)?;
    }
    writer.drain(DRAIN_ALL, &mut Vec::new())?;
    Ok(())
}

/// How a workload hands body bytes in and takes wire bytes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calls {
    /// One `send_and_drain` per write (framed straight into the host's buffer).
    SendAndDrain,
    /// A `send`, then a `drain` (every byte goes through the output queue).
    SendThenDrain,
    /// One `frame_in_place` per write: the body stays on the host's side,
    /// which puts the frame headers it gets back in front of its bytes.
    FrameInPlace,
}

impl Calls {
    /// How the table names the calls.
    pub fn label(self) -> &'static str {
        match self {
            Calls::SendAndDrain => "send-and-drain",
            Calls::SendThenDrain => "send + drain",
            Calls::FrameInPlace => "frame-in-place",
        }
    }
}

/// Sends `data` on `stream` through `writer` with `calls`, the wire bytes
/// going to `out`, until every byte is taken.
fn send_all(
    writer: &mut dyn Writer,
    calls: Calls,
    stream: u32,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), WriteError> {
    let mut rest = data;
    while !rest.is_empty() {
        let before = out.len();
        let sent = match calls {
            Calls::SendAndDrain => writer.send_and_drain(stream, rest, out),
            Calls::SendThenDrain => writer.send(stream, rest),
            Calls::FrameInPlace => writer.frame_in_place(stream, rest, out),
        };
        let taken = match sent {
            Ok(taken) => taken,
            Err(WriteError::Rejected { kind: ErrorKind::WouldBlock, .. }) => 0,
            Err(error) => return Err(error),
        };
        if calls == Calls::SendThenDrain || taken == 0 {
            writer.drain(DRAIN_ALL, out)?;
        }
        rest = rest.get(taken..).unwrap_or_default();
        if taken == 0 && out.len() == before {
            return Err(WriteError::Host(anyhow::anyhow!(
                "stream {stream}: the writer took nothing and had nothing to drain"
            )));
        }
    }
    Ok(())
}

/// DATA framing as in `benches/data.rs`: `body` sent one frame's worth per
/// write with `calls`, `repeat` times on one stream. Returns the time of the
/// calls.
pub fn data(side: Side, calls: Calls, body: &[u8], frame_size: usize, repeat: usize) -> anyhow::Result<Duration> {
    let mut writer = side.writer(&Config::default())?;
    open_streams(writer.as_mut(), frame_size, 1)?;
    let mut out = Vec::with_capacity(body.len() + body.len().div_ceil(frame_size) * FRAME_HEADER_LEN);
    let mut elapsed = Duration::ZERO;
    for _ in 0..repeat {
        out.clear();
        let (sent, took) = clock::time(|| {
            body.chunks(frame_size).try_for_each(|piece| send_all(writer.as_mut(), calls, 1, piece, &mut out))
        });
        sent?;
        elapsed += took;
        check_data(&out, body.len(), frame_size)?;
        writer.apply_window_update(0, body.len() as u32)?;
        writer.apply_window_update(1, body.len() as u32)?;
    }
    Ok(elapsed)
}

/// The HPACK corpus as in `benches/hpack.rs`: each connection on a fresh
/// writer, one `write_headers` plus one `drain` per block. Returns the time of
/// those calls.
pub fn headers(side: Side, corpus: &Corpus) -> anyhow::Result<Duration> {
    let mut elapsed = Duration::ZERO;
    let mut out = Vec::new();
    for connection in &corpus.connections {
        let blocks: Vec<Vec<HeaderField<'_>>> = connection.blocks.iter().map(|block| block.header_fields()).collect();
        let mut writer = side.writer(&Config::default())?;
        out.clear();
        let (written, took) = clock::time(|| {
            blocks.iter().enumerate().try_for_each(|(index, fields)| {
                writer.raw_write_headers(1 + 2 * index as u32, fields, HeadersOptions::default())?;
                writer.drain(DRAIN_ALL, &mut out).map(drop)
            })
        });
        written?;
        elapsed += took;
    }
    Ok(elapsed)
}

/// Small gRPC-sized messages spread over `streams` open streams, written
/// one at a time with `calls`. Returns the time of the calls.
pub fn small_frames(side: Side, calls: Calls, message: &[u8], streams: u32, count: usize) -> anyhow::Result<Duration> {
    let mut writer = side.writer(&Config::default())?;
    open_streams(writer.as_mut(), h2fw::frame::DEFAULT_MAX_FRAME_SIZE as usize, streams)?;
    let mut out = Vec::with_capacity(count * (message.len() + FRAME_HEADER_LEN));
    let (sent, elapsed) = clock::time(|| {
        (0..count)
            .try_for_each(|index| send_all(writer.as_mut(), calls, 1 + 2 * (index as u32 % streams), message, &mut out))
    });
    sent?;
    check_data(&out, count * message.len(), h2fw::frame::DEFAULT_MAX_FRAME_SIZE as usize)?;
    Ok(elapsed)
}

/// The same messages, `batch` at a time: one `send_batch` plus one `drain`
/// per batch (`count` rounded down to whole batches). Returns the time of
/// those calls.
pub fn small_frames_batched(
    side: Side,
    message: &[u8],
    streams: u32,
    count: usize,
    batch: usize,
) -> anyhow::Result<Duration> {
    let mut writer = side.writer(&Config::default())?;
    open_streams(writer.as_mut(), h2fw::frame::DEFAULT_MAX_FRAME_SIZE as usize, streams)?;
    let items: Vec<BatchItem> =
        (0..batch).map(|index| BatchItem { stream: 1 + 2 * (index as u32 % streams), len: message.len() }).collect();
    let data = message.repeat(batch);
    let batches = count / batch.max(1);
    let mut out = Vec::with_capacity(batches * batch * (message.len() + FRAME_HEADER_LEN));
    let mut accepted = Vec::with_capacity(batch);
    let (sent, elapsed) = clock::time(|| {
        (0..batches).try_for_each(|_| {
            accepted.clear();
            writer.send_batch(&items, &data, &mut accepted)?;
            if accepted.len() != items.len() {
                return Err(WriteError::Host(anyhow::anyhow!(
                    "send_batch processed {} of {} items",
                    accepted.len(),
                    items.len()
                )));
            }
            for (item, &taken) in items.iter().zip(&accepted) {
                check_taken(item.stream, taken, item.len)?;
            }
            writer.drain(DRAIN_ALL, &mut out).map(drop)
        })
    });
    sent?;
    check_data(&out, batches * batch * message.len(), h2fw::frame::DEFAULT_MAX_FRAME_SIZE as usize)?;
    Ok(elapsed)
}

/// Checks that `wire` is whole DATA frames of at most `max_frame_size` bytes
/// (the writer may choose smaller ones) carrying `body_len` bytes.
fn check_data(wire: &[u8], body_len: usize, max_frame_size: usize) -> anyhow::Result<()> {
    let frames = wire::frames(wire, &[0x0]).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(frames.payload == body_len, "DATA frames carry {} body bytes, expected {body_len}", frames.payload);
    anyhow::ensure!(
        frames.largest <= max_frame_size,
        "a DATA frame of {} bytes exceeds {max_frame_size}",
        frames.largest
    );
    Ok(())
}

/// Median of `samples` (non-empty).
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}
