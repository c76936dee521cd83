//! One run of a mix: a writer, the peer reading what it drains, the proxy's
//! record of what it sent per stream, and the memory trace.

use std::collections::HashMap;
use std::time::Instant;

use h2fw::conn::{Stats, StreamHints};
use h2fw::frame::setting;
use h2fw::hpack::HeaderField;

use super::peer::{Peer, Violation};
use crate::writer::{ErrorKind, WriteError, Writer};

/// What the peer advertises: its SETTINGS and its connection window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSettings {
    /// SETTINGS_MAX_FRAME_SIZE.
    pub max_frame_size: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE.
    pub initial_window: u32,
    /// Connection window after the peer's first WINDOW_UPDATE on stream 0.
    pub connection_window: u32,
}

impl PeerSettings {
    /// A proxy's upstream as Go and gRPC servers commonly configure it: 1 MiB
    /// frames, 4 MiB stream windows, a 16 MiB connection window.
    pub const UPSTREAM: PeerSettings =
        PeerSettings { max_frame_size: 1 << 20, initial_window: 4 << 20, connection_window: 16 << 20 };
}

/// The connection window before any WINDOW_UPDATE (RFC 9113 §6.9.2).
const DEFAULT_CONNECTION_WINDOW: u32 = 65_535;

/// Consecutive ticks without progress after which a run is declared stuck
/// (far above any stall a mix asks the peer for).
const STUCK_TICKS: u64 = 100_000;

/// How much the proxy's socket takes per write, like a send buffer.
pub const DRAIN_PIECE: usize = 256 << 10;

/// RST_STREAM error code CANCEL (RFC 9113 §7).
pub const CANCEL: u32 = 0x8;

/// One point of a run's memory trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Sample {
    /// Writer calls made so far: the run's clock.
    pub calls: u64,
    /// Wall time since the run started.
    pub seconds: f64,
    /// Wire bytes drained so far.
    pub wire_bytes: u64,
    /// Linear memory size (component only).
    pub linear_memory: Option<usize>,
    /// Bytes accepted but not yet drained.
    pub live_bytes: usize,
    /// Bytes the pool holds, leased plus idle.
    pub pool_bytes: usize,
    /// Of those, idle bytes.
    pub idle_pool_bytes: usize,
    /// Streams the proxy has open.
    pub open_streams: usize,
}

/// A named point of a run (e.g. the end of a seed cycle), sampled there.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Mark {
    /// What had just finished.
    pub label: String,
    /// The state at that point.
    #[serde(flatten)]
    pub sample: Sample,
}

/// Why a run stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The writer refused a call, or its runtime failed.
    #[error("{call}: {error}")]
    Writer {
        /// The writer call.
        call: &'static str,
        /// What it returned.
        error: WriteError,
    },
    /// The wire bytes broke RFC 9113.
    #[error(transparent)]
    Peer(#[from] Violation),
    /// Nothing was sent or drained for many ticks in a row.
    #[error("no progress for {ticks} ticks")]
    Stuck {
        /// Ticks without progress.
        ticks: u64,
    },
    /// A stream's delivered body differs from what was sent.
    #[error("stream {stream}: {reason}")]
    Mismatch {
        /// The stream.
        stream: u32,
        /// How it differs.
        reason: String,
    },
}

/// What the proxy handed the writer for one stream.
#[derive(Debug, Clone, Default)]
struct Sent {
    bytes: u64,
    checksum: crc32fast::Hasher,
    finished: bool,
    reset: bool,
}

/// A writer being driven through a mix, with the peer on the other end.
pub struct Run<'w> {
    writer: &'w mut dyn Writer,
    settings: PeerSettings,
    peer: Peer,
    sent: HashMap<u32, Sent>,
    next_stream: u32,
    open_streams: usize,
    peak_open_streams: usize,
    calls: u64,
    sample_every: u64,
    tick: u64,
    idle_ticks: u64,
    wire: Vec<u8>,
    updates: Vec<(u32, u32)>,
    ended: Vec<u32>,
    started: Instant,
    stats: Stats,
    pool: PoolBytes,
    samples: Vec<Sample>,
    marks: Vec<Mark>,
}

impl<'w> Run<'w> {
    /// A run of `writer` against a peer that advertises `settings`; a sample
    /// is taken every `sample_every` writer calls.
    pub fn new(writer: &'w mut dyn Writer, settings: PeerSettings, sample_every: u64) -> Self {
        Run {
            writer,
            settings,
            peer: Peer::new(settings.max_frame_size, settings.initial_window),
            sent: HashMap::new(),
            next_stream: 1,
            open_streams: 0,
            peak_open_streams: 0,
            calls: 0,
            sample_every: sample_every.max(1),
            tick: 0,
            idle_ticks: 0,
            wire: Vec::with_capacity(DRAIN_PIECE),
            updates: Vec::new(),
            ended: Vec::new(),
            started: Instant::now(),
            stats: Stats::default(),
            pool: PoolBytes::default(),
            samples: Vec::new(),
            marks: Vec::new(),
        }
    }

    /// Starts the connection: the client preface and SETTINGS, the peer's
    /// SETTINGS applied and acknowledged, and the peer's connection window.
    pub fn connect(&mut self) -> Result<(), Failure> {
        self.sample()?;
        let ours = [(setting::ENABLE_PUSH, 0), (setting::INITIAL_WINDOW_SIZE, 1 << 20)];
        self.call("write_preface", |w| w.write_preface(&ours))?;
        let theirs = [
            (setting::HEADER_TABLE_SIZE, 4096),
            (setting::MAX_FRAME_SIZE, self.settings.max_frame_size),
            (setting::INITIAL_WINDOW_SIZE, self.settings.initial_window),
        ];
        self.call("apply_peer_settings", |w| w.apply_peer_settings(&theirs))?;
        self.call("ack_settings", |w| w.ack_settings())?;
        if let Some(increment) =
            self.settings.connection_window.checked_sub(DEFAULT_CONNECTION_WINDOW).filter(|&i| i > 0)
        {
            self.call("apply_window_update", |w| w.apply_window_update(0, increment))?;
            self.peer.grant_connection(increment);
        }
        Ok(())
    }

    /// The writer being driven.
    pub fn writer(&mut self) -> &mut dyn Writer {
        &mut *self.writer
    }

    /// The peer (to stall or release window updates).
    pub fn peer(&mut self) -> &mut Peer {
        &mut self.peer
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.open_streams
    }

    /// Drain pieces taken so far: the mix's tick.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// Opens the next client stream with `fields`; returns its id.
    pub fn open(&mut self, fields: &[HeaderField<'_>], content_length: Option<u64>) -> Result<u32, Failure> {
        let stream = self.next_stream;
        let hints = StreamHints { content_length };
        self.call("open_stream", |w| w.open_stream(stream, fields, hints, false))?;
        self.next_stream += 2;
        self.sent.insert(stream, Sent::default());
        self.open_streams += 1;
        self.peak_open_streams = self.peak_open_streams.max(self.open_streams);
        Ok(stream)
    }

    /// Offers body bytes; returns how many the writer took (0 under backpressure).
    pub fn send(&mut self, stream: u32, data: &[u8]) -> Result<usize, Failure> {
        let taken = match self.call("send", |w| w.send(stream, data)) {
            Err(Failure::Writer { error: WriteError::Rejected { kind: ErrorKind::WouldBlock, .. }, .. }) => 0,
            other => other?,
        };
        let accepted = data.get(..taken).ok_or_else(|| Failure::Mismatch {
            stream,
            reason: format!("send took {taken} of {} bytes", data.len()),
        })?;
        if taken > 0 {
            self.idle_ticks = 0;
        }
        let sent = self.sent.entry(stream).or_default();
        sent.bytes += taken as u64;
        sent.checksum.update(accepted);
        Ok(taken)
    }

    /// Ends a stream after its pending bytes (END_STREAM or trailers).
    pub fn finish(&mut self, stream: u32, trailers: Option<&[HeaderField<'_>]>) -> Result<(), Failure> {
        self.call("finish", |w| w.finish(stream, trailers))?;
        self.close(stream, false);
        Ok(())
    }

    /// Resets a stream with `error_code`.
    pub fn reset(&mut self, stream: u32, error_code: u32) -> Result<(), Failure> {
        self.call("reset", |w| w.reset(stream, error_code))?;
        self.close(stream, true);
        Ok(())
    }

    /// Writes a PING (a keepalive on an otherwise idle connection).
    pub fn ping(&mut self, opaque_data: [u8; 8]) -> Result<(), Failure> {
        self.call("ping", |w| w.ping(opaque_data, false))
    }

    fn close(&mut self, stream: u32, reset: bool) {
        if let Some(sent) = self.sent.get_mut(&stream)
            && !sent.finished
            && !sent.reset
        {
            sent.finished = !reset;
            sent.reset = reset;
            self.open_streams -= 1;
        }
    }

    /// Drains up to `max_bytes` like one socket write, lets the peer read
    /// them, and applies the WINDOW_UPDATEs it sends back. Returns the bytes.
    pub fn drain(&mut self, max_bytes: usize) -> Result<usize, Failure> {
        self.tick += 1;
        let mut wire = std::mem::take(&mut self.wire);
        wire.clear();
        let drained = self.call("drain", |w| w.drain(max_bytes, &mut wire));
        let read = drained.and_then(|n| {
            if n != wire.len() || n > max_bytes {
                return Err(Failure::Mismatch {
                    stream: 0,
                    reason: format!("drain({max_bytes}) reported {n} bytes, appended {}", wire.len()),
                });
            }
            self.peer.read(&wire)?;
            Ok(n)
        });
        self.wire = wire;
        let n = read?;
        let mut updates = std::mem::take(&mut self.updates);
        updates.clear();
        self.peer.window_updates(self.tick, &mut updates);
        for &(stream, increment) in &updates {
            match self.call("apply_window_update", |w| w.apply_window_update(stream, increment)) {
                // A stream the proxy already ended or reset: the update arrived late (RFC 9113 §6.9).
                Err(Failure::Writer { error: WriteError::Rejected { kind: ErrorKind::StreamNotOpen, .. }, .. })
                    if stream != 0 => {}
                other => other?,
            }
        }
        // The server ends its side of every stream we ended (HEADERS with END_STREAM).
        let mut ended = std::mem::take(&mut self.ended);
        self.peer.take_ended(&mut ended);
        for &stream in &ended {
            self.call("apply_peer_headers", |w| w.apply_peer_headers(stream, true))?;
        }
        ended.clear();
        self.ended = ended;
        let progress = n > 0 || !updates.is_empty();
        self.updates = updates;
        self.idle_ticks = if progress { 0 } else { self.idle_ticks + 1 };
        if self.idle_ticks > STUCK_TICKS {
            return Err(Failure::Stuck { ticks: self.idle_ticks });
        }
        Ok(n)
    }

    /// Whether the last [`Run::drain`] moved anything: bytes out or windows
    /// reopened (either may let the writer send more).
    fn drain_progressed(&mut self, max_bytes: usize) -> Result<bool, Failure> {
        let n = self.drain(max_bytes)?;
        Ok(n > 0 || !self.updates.is_empty())
    }

    /// Drains until the writer has nothing it may send and the peer nothing
    /// more to grant.
    pub fn settle(&mut self) -> Result<(), Failure> {
        while self.drain_progressed(DRAIN_PIECE)? {}
        Ok(())
    }

    /// Checks every stream's delivery against what was sent: same length and
    /// CRC-32 for ended and open streams, END_STREAM exactly on finished ones,
    /// RST_STREAM and no more than was sent on reset ones. Call after
    /// [`Run::settle`] with no stalls left.
    pub fn verify(&self) -> Result<(), Failure> {
        let mut streams: Vec<_> = self.sent.iter().collect();
        streams.sort_unstable_by_key(|(stream, _)| **stream);
        for (&stream, sent) in streams {
            let mismatch = |reason: String| Err(Failure::Mismatch { stream, reason });
            let Some(got) = self.peer.delivered(stream) else { return mismatch("never arrived".into()) };
            if got.header_blocks == 0 {
                return mismatch("no HEADERS arrived".into());
            }
            if sent.reset {
                if got.reset.is_none() {
                    return mismatch("reset but no RST_STREAM arrived".into());
                }
                if got.bytes > sent.bytes {
                    return mismatch(format!("{} body bytes arrived, {} were sent", got.bytes, sent.bytes));
                }
                continue;
            }
            if got.reset.is_some() {
                return mismatch("RST_STREAM arrived but the stream was not reset".into());
            }
            if got.end_stream != sent.finished {
                return mismatch(format!("END_STREAM arrived: {}, stream finished: {}", got.end_stream, sent.finished));
            }
            if got.bytes != sent.bytes {
                return mismatch(format!("{} body bytes arrived, {} were sent", got.bytes, sent.bytes));
            }
            let (got_crc, sent_crc) = (got.checksum.clone().finalize(), sent.checksum.clone().finalize());
            if got_crc != sent_crc {
                return mismatch(format!("body CRC-32 {got_crc:08x} arrived, {sent_crc:08x} was sent"));
            }
        }
        Ok(())
    }

    /// Records a named point of the run.
    pub fn mark(&mut self, label: impl Into<String>) -> Result<(), Failure> {
        let sample = self.sample()?;
        self.marks.push(Mark { label: label.into(), sample });
        Ok(())
    }

    /// Makes one writer call. Calls refused for memory (pool budget,
    /// allocator) or backpressure are retried while draining frees room;
    /// when a drain frees nothing the refusal is the run's result.
    fn call<T>(
        &mut self,
        call: &'static str,
        mut f: impl FnMut(&mut dyn Writer) -> Result<T, WriteError>,
    ) -> Result<T, Failure> {
        loop {
            let result = f(&mut *self.writer);
            self.calls += 1;
            if self.calls.is_multiple_of(self.sample_every) {
                // A failed call's own error says more than the failed sample after it.
                let sampled = self.sample();
                if result.is_ok() {
                    sampled?;
                }
            }
            match result {
                Err(WriteError::Rejected { kind, .. })
                    if retried(call, kind) && self.drain_progressed(DRAIN_PIECE)? => {}
                other => return other.map_err(|error| Failure::Writer { call, error }),
            }
        }
    }

    fn sample(&mut self) -> Result<Sample, Failure> {
        self.stats = self.writer.stats().map_err(|error| Failure::Writer { call: "stats", error })?;
        self.pool = PoolBytes::of(self.writer).map_err(|error| Failure::Writer { call: "pool_stats", error })?;
        let sample = Sample {
            calls: self.calls,
            seconds: self.started.elapsed().as_secs_f64(),
            wire_bytes: self.peer.wire_bytes(),
            linear_memory: self.writer.linear_memory().map(|m| m.current),
            live_bytes: self.stats.live_bytes,
            pool_bytes: self.pool.held,
            idle_pool_bytes: self.pool.idle,
            open_streams: self.open_streams,
        };
        self.samples.push(sample);
        Ok(sample)
    }

    /// Ends the run: a last sample (when the writer still answers) and the
    /// figures of the run, with `result` as its error.
    pub fn finish_run(mut self, result: Result<(), Failure>) -> Trace {
        let last = self.sample();
        let error = result.err().or(last.err());
        let memory = self.writer.linear_memory();
        let counts = self.peer.counts();
        Trace {
            connections: 1,
            idle_pool_bytes: self.pool.idle,
            streams: self.sent.len(),
            frames: counts.total(),
            wire_bytes: self.peer.wire_bytes(),
            peak_live_bytes: self.stats.peak_live_bytes,
            peak_pool_bytes: self.pool.peak,
            peak_linear_memory: memory.map(|m| m.peak),
            final_linear_memory: memory.map(|m| m.current),
            memory_refused: memory.is_some_and(|m| m.refused > 0),
            peak_open_streams: self.peak_open_streams,
            seconds: self.started.elapsed().as_secs_f64(),
            error,
            samples: self.samples,
            marks: self.marks,
        }
    }
}

/// What a writer's pool and Go model hold together (the Go model's scratch
/// buffers under a baseline, the tiered pool's buffers in any case).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolBytes {
    /// Leased plus idle bytes now.
    pub held: usize,
    /// Idle bytes now.
    pub idle: usize,
    /// Sum of the two peaks of leased plus idle bytes.
    pub peak: usize,
}

impl PoolBytes {
    /// Reads them from `writer`.
    pub fn of(writer: &mut dyn Writer) -> Result<PoolBytes, WriteError> {
        let pool = writer.pool_stats()?;
        let model = writer.model_stats()?.unwrap_or_default();
        Ok(PoolBytes {
            held: pool.leased_bytes + pool.idle_bytes + model.leased_bytes + model.idle_bytes,
            idle: pool.idle_bytes + model.idle_bytes,
            peak: pool.peak_total_bytes + model.peak_total_bytes,
        })
    }
}

/// Whether a refusal of `call` is retried after a drain: running out of
/// memory (pool budget, allocator) may pass once queued bytes leave, and so
/// may backpressure — except for `send`, whose caller moves on to other
/// streams, and for `drain`, which is what frees room.
fn retried(call: &str, kind: ErrorKind) -> bool {
    match kind {
        ErrorKind::Budget | ErrorKind::Share | ErrorKind::OutOfMemory => call != "drain",
        ErrorKind::WouldBlock => call != "drain" && call != "send",
        _ => false,
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Trace {
    /// Connections the run drove.
    pub connections: usize,
    /// Idle pool bytes at the end (tiered pool and Go model together).
    pub idle_pool_bytes: usize,
    /// Streams opened.
    pub streams: usize,
    /// Frames the peer read.
    pub frames: u64,
    /// Wire bytes the peer read.
    pub wire_bytes: u64,
    /// Peak of live bytes (the writer's own count).
    pub peak_live_bytes: usize,
    /// Peak of pool bytes, leased plus idle.
    pub peak_pool_bytes: usize,
    /// Peak linear memory (component only).
    pub peak_linear_memory: Option<usize>,
    /// Linear memory at the end.
    pub final_linear_memory: Option<usize>,
    /// The host refused a linear-memory growth at some point.
    pub memory_refused: bool,
    /// Most streams open at once.
    pub peak_open_streams: usize,
    /// Wall time of the run.
    pub seconds: f64,
    /// Why the run stopped early, if it did.
    pub error: Option<Failure>,
    /// Samples every few writer calls.
    pub samples: Vec<Sample>,
    /// Named points.
    pub marks: Vec<Mark>,
}

impl Trace {
    /// The run ended because memory ran out: the pool budget, the allocator,
    /// or a trap after the host refused to grow linear memory.
    pub fn memory_exhausted(&self) -> bool {
        match &self.error {
            Some(Failure::Writer { error: WriteError::Rejected { kind, .. }, .. }) => {
                matches!(kind, ErrorKind::Budget | ErrorKind::OutOfMemory)
            }
            Some(Failure::Writer { error: WriteError::Host(_), .. }) => self.memory_refused,
            _ => false,
        }
    }
}
