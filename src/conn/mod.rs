//! The stateful writer a host talks to: peer settings, HPACK, an output queue
//! of pooled chunks, per-stream send queues, flow control and scheduling,
//! and the rules that keep every call sequence conformant.
//!
//! **Conformance.** Every call either queues bytes a conformant peer
//! accepts or is refused with a typed [`Error`] that names the rule and
//! writes nothing. The connection knows its [`Role`]; every stream's state
//! (RFC 9113 §5.1) lives in [`state`]; the peer's settings, GOAWAY and its
//! side of each stream come in through the `apply_*` calls (the host reads
//! the peer's frames). The preface and our SETTINGS go out first, once,
//! whatever call comes first. [`Connection::raw`] is the escape hatch for
//! tools and tests that must write arbitrary frames.
//!
//! **Memory** follows the bytes waiting to be written. Framed bytes wait in
//! one output queue of densely packed 16 KiB chunks (control frames, header
//! blocks, and DATA that could be framed at once). Body bytes that cannot be
//! framed yet (window exhausted, or the output queue above
//! [`Config::output_high_watermark`]) wait in their stream's queue of small
//! chunks sized from the stream's hints and writes; [`Connection::drain`]
//! empties the output queue, then frames pending DATA round-robin straight
//! into the host's buffer, and every chunk goes back to the pool the moment
//! its bytes are framed or drained. A pending DATA frame carries bytes of one
//! chunk (at most 16 KiB, or 64 KiB for a large declared body), so frame
//! sizes follow chunk sizes. A stream's trailers are HPACK-encoded when its
//! last DATA is out, in a step of their own. An open stream with nothing
//! pending holds no buffer (under the baselines it holds its Go scratch
//! buffer, which is what they model).
//!
//! Under `Tiered`, leased bytes stay within the live bytes (stored trailers
//! count twice: their buffer is rounded up to a class) plus, per non-empty
//! queue, the drained part of its first chunk and the unfilled part of its
//! last: at most 32 KiB for the output queue and 128 KiB per stream with
//! pending bytes, plus 256 B per stream whose trailers are stored (its
//! DATA may be out while its trailers still wait for memory). Idle streams
//! add nothing; idle bytes stay within the pool's idle caps.
//! `tests/conn_random_mixes.rs` checks this after every call.

mod body;
mod control;
mod error;
mod headers;
mod output;
mod peer;
mod raw;
mod rules;
mod state;
mod stream;

use std::collections::VecDeque;

use foldhash::HashMap;
use foldhash::HashMapExt as _;

#[cfg(feature = "baselines")]
use crate::baseline::GoPools;
use crate::frame::{self, Frame, Priority};
use crate::hpack::{Encoder, EncoderConfig};
use crate::pool::{Pool, PoolError, PoolShare};
pub use error::{Error, Rule};
use output::OutputQueue;
pub use raw::Raw;
use rules::PeerLimits;
use state::Streams;
pub use state::{Role, StreamState};
use stream::Trailers;

/// Largest flow-control window (RFC 9113 §6.9.1).
pub const MAX_WINDOW: i64 = (1 << 31) - 1;
/// Largest stream identifier (31 bits).
pub const MAX_STREAM_ID: u32 = (1 << 31) - 1;
/// Connection and stream send windows before the peer says otherwise.
pub const DEFAULT_WINDOW: u32 = 65_535;
/// Size of an output queue chunk (or the pool's largest class if smaller).
pub const OUTPUT_CHUNK_LEN: usize = 16 << 10;

/// Connection limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Which end of the connection this is.
    pub role: Role,
    /// Most bytes this connection may hold leased from the shared pool (its
    /// share of the budget); `None`: only the pool's budget applies.
    pub pool_share: Option<usize>,
    /// Pending body bytes per stream above which `send` refuses more.
    pub stream_high_watermark: usize,
    /// Live bytes for the whole connection above which `send` refuses more.
    pub conn_high_watermark: usize,
    /// Largest HPACK dynamic table we keep, whatever the peer advertises.
    pub max_header_table_size: usize,
    /// Queued output bytes up to which `send` frames DATA at once (densely,
    /// in call order); past it, body bytes wait in their stream's queue and
    /// `drain` frames them round-robin.
    pub output_high_watermark: usize,
}

impl Default for Config {
    /// A client; no pool share (the pool's budget alone), 512 KiB pending
    /// per stream (what Go's per-stream scratch buffer holds at most, so
    /// that no stream waits on more than it would there), 64 MiB live per
    /// connection, a 4096-byte HPACK table (the RFC default) and 64 KiB of
    /// output framed ahead.
    fn default() -> Self {
        Self {
            role: Role::Client,
            pool_share: None,
            stream_high_watermark: 512 << 10,
            conn_high_watermark: 64 << 20,
            max_header_table_size: crate::hpack::DEFAULT_TABLE_SIZE,
            output_high_watermark: 64 << 10,
        }
    }
}

/// What the host tells us about a stream's body when it opens it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamHints {
    /// Declared Content-Length, if any (a `content-length` field in the
    /// headers declares it too, and is then what the body is held to).
    pub content_length: Option<u64>,
}

/// Options of a raw HEADERS write ([`Raw::write_headers`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadersOptions {
    /// Set END_STREAM.
    pub end_stream: bool,
    /// Priority fields (sets the PRIORITY flag).
    pub priority: Option<Priority>,
    /// Padding (sets the PADDED flag, even for 0).
    pub pad_length: Option<u8>,
}

/// One item of [`Connection::send_batch`]: the next `len` bytes of the
/// batch's data go to `stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchItem {
    /// Stream the bytes are for.
    pub stream: u32,
    /// How many of the batch's bytes.
    pub len: usize,
}

/// Connection statistics (the shared pool's are [`Pool::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes this connection holds leased from the pool.
    pub leased_bytes: usize,
    /// Peak of `leased_bytes`.
    pub peak_leased_bytes: usize,
    /// Bytes accepted but not yet drained (pending DATA, deferred trailers
    /// and queued output).
    pub live_bytes: usize,
    /// Peak of `live_bytes`.
    pub peak_live_bytes: usize,
    /// Body bytes waiting in stream queues.
    pub pending_bytes: usize,
    /// Framed bytes waiting in the output queue.
    pub queued_bytes: usize,
    /// Streams open for sending.
    pub open_streams: usize,
    /// Frames written so far.
    pub frames: u64,
    /// Bytes handed to the host so far.
    pub bytes_drained: u64,
    /// Streams with body bytes pending (open or finishing).
    pub pending_streams: usize,
    /// Trailer fields held (serialised) until their stream's DATA is out.
    pub trailer_bytes: usize,
    /// Connection send window (zero or less blocks all DATA).
    pub conn_window: i64,
}

/// What the peer advertised or announced.
#[derive(Debug)]
struct PeerState {
    /// SETTINGS_MAX_FRAME_SIZE.
    max_frame_size: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE.
    initial_window: u32,
    /// SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until it says).
    max_concurrent_streams: u32,
    /// SETTINGS_ENABLE_PUSH.
    enable_push: bool,
    /// What header blocks must respect.
    limits: PeerLimits,
    /// The last-stream-id of its GOAWAY, once one came.
    goaway: Option<u32>,
}

/// What this end advertised or announced.
#[derive(Debug)]
struct LocalState {
    /// The preface and our first SETTINGS are queued.
    preface_written: bool,
    /// Our SETTINGS_INITIAL_WINDOW_SIZE: every stream's receive window starts there.
    initial_window: u32,
    /// Our SETTINGS_ENABLE_PUSH (a client's: whether the peer may push).
    enable_push: bool,
    /// The connection's receive window.
    conn_window: i64,
    /// The last-stream-id of our GOAWAY, once one went out.
    goaway: Option<u32>,
}

/// Running totals for [`Stats`].
#[derive(Debug, Default)]
struct Totals {
    trailer_bytes: usize,
    peak_live_bytes: usize,
    frames: u64,
    bytes_drained: u64,
}

/// The frame writer of one HTTP/2 connection. Dropping it gives every
/// buffer it holds back to the pool.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    pool: PoolShare,
    encoder: Encoder,
    streams: Streams,
    output: OutputQueue,
    /// Trailers of finishing streams, waiting for their last DATA.
    trailers: HashMap<u32, Trailers>,
    /// Round-robin ring of streams with DATA to frame (stale ids are skipped).
    ready: VecDeque<u32>,
    /// Streams whose DATA is all out and whose trailers are still to queue
    /// (a separate step, after the last DATA chunk went back to the pool).
    trailers_due: VecDeque<u32>,
    /// Connection send window.
    conn_window: i64,
    peer: PeerState,
    local: LocalState,
    totals: Totals,
}

impl Connection {
    /// A connection leasing from `pool` (shared with every other connection
    /// made with a clone of it), with the peer's settings at their RFC defaults.
    pub fn new(config: Config, pool: &Pool) -> Self {
        Self::try_new(config, pool).expect("memory for a connection")
    }

    /// [`Connection::new`], refused with [`PoolError::OutOfMemory`] instead
    /// when the allocator cannot give the HPACK table's index (a few KiB).
    pub fn try_new(config: Config, pool: &Pool) -> Result<Self, Error> {
        let encoder = Encoder::try_with_config(EncoderConfig {
            table_size_cap: config.max_header_table_size,
            ..Default::default()
        })
        .map_err(|requested| PoolError::OutOfMemory { requested })?;
        let output = OutputQueue::new(OUTPUT_CHUNK_LEN.min(pool.config().max_class));
        Ok(Self {
            pool: PoolShare::new(pool, config.pool_share),
            encoder,
            streams: Streams::new(config.role),
            output,
            trailers: HashMap::new(),
            ready: VecDeque::new(),
            trailers_due: VecDeque::new(),
            conn_window: i64::from(DEFAULT_WINDOW),
            peer: PeerState {
                max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
                initial_window: DEFAULT_WINDOW,
                max_concurrent_streams: u32::MAX,
                enable_push: true,
                limits: PeerLimits::default(),
                goaway: None,
            },
            local: LocalState {
                preface_written: false,
                initial_window: DEFAULT_WINDOW,
                enable_push: true,
                conn_window: i64::from(DEFAULT_WINDOW),
                goaway: None,
            },
            totals: Totals::default(),
            config,
        })
    }

    /// A connection whose streams each hold a Go scratch buffer from
    /// `scratch` for their life, as the baseline models; output still
    /// leases from `pool`.
    #[cfg(feature = "baselines")]
    pub fn with_baseline(config: Config, pool: &Pool, scratch: &GoPools) -> Self {
        Self::try_with_baseline(config, pool, scratch).expect("memory for a connection")
    }

    /// [`Connection::with_baseline`], refused as [`Connection::try_new`] is.
    #[cfg(feature = "baselines")]
    pub fn try_with_baseline(config: Config, pool: &Pool, scratch: &GoPools) -> Result<Self, Error> {
        let mut connection = Self::try_new(config, pool)?;
        connection.pool = PoolShare::new(pool, connection.config.pool_share).with_scratch(scratch);
        Ok(connection)
    }

    /// The pool this connection leases from.
    pub fn pool(&self) -> &Pool {
        self.pool.pool()
    }

    /// Baselines only: the Go scratch pools its streams take buffers from.
    #[cfg(feature = "baselines")]
    pub fn scratch(&self) -> Option<&GoPools> {
        self.pool.scratch()
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.config.role
    }

    /// The highest stream id the peer opened or promised: the last-stream-id
    /// of a GOAWAY that lets every stream it started finish.
    pub fn last_peer_stream(&self) -> u32 {
        self.streams.last_remote()
    }

    /// The state of `stream` as this end sees it (RFC 9113 §5.1).
    pub fn stream_state(&self, stream: u32) -> StreamState {
        self.streams.state(stream)
    }

    /// The escape hatch: frames written as given, for tools and tests (see [`Raw`]).
    pub fn raw(&mut self) -> Raw<'_> {
        Raw::new(self)
    }

    /// Current statistics.
    pub fn stats(&self) -> Stats {
        Stats {
            leased_bytes: self.pool.leased_bytes(),
            peak_leased_bytes: self.pool.peak_leased_bytes(),
            live_bytes: self.live_bytes(),
            peak_live_bytes: self.totals.peak_live_bytes,
            pending_bytes: self.streams.pending_bytes(),
            queued_bytes: self.output.len(),
            open_streams: self.streams.sending(),
            frames: self.totals.frames,
            bytes_drained: self.totals.bytes_drained,
            pending_streams: self.streams.pending_streams(),
            trailer_bytes: self.totals.trailer_bytes,
            conn_window: self.conn_window,
        }
    }

    /// The send window of `stream`, if it is not closed here.
    pub fn stream_window(&self, stream: u32) -> Option<i64> {
        self.streams.get(stream).map(|s| s.window)
    }

    /// Body bytes pending on `stream` (0 if it is not open here).
    pub fn stream_pending(&self, stream: u32) -> usize {
        self.streams.get(stream).map_or(0, |s| s.pending.len())
    }

    fn live_bytes(&self) -> usize {
        self.streams.pending_bytes() + self.totals.trailer_bytes + self.output.len()
    }

    fn live_changed(&mut self) {
        self.totals.peak_live_bytes = self.totals.peak_live_bytes.max(self.live_bytes());
    }

    /// Queues `frame` (validated, all or nothing) and counts it.
    fn queue_frame(&mut self, frame: &Frame<'_>) -> Result<(), Error> {
        let len = self.output.push_frame(&mut self.pool, frame, self.peer.max_frame_size)?;
        self.totals.frames += frame_count(frame, len, self.peer.max_frame_size);
        self.live_changed();
        Ok(())
    }

    /// Gives back the buffers of a stream the table let go (if it did), and
    /// its stored trailers.
    fn release(&mut self, id: u32, stream: Option<stream::Stream>) {
        let Some(stream) = stream else { return };
        stream.pending.release(&mut self.pool);
        if let Some(trailers) = self.trailers.remove(&id) {
            self.totals.trailer_bytes -= trailers.len();
            trailers.release(&mut self.pool);
        }
    }

    /// Forgets `stream` (reset or refused), giving its buffers back.
    fn forget(&mut self, stream: u32) {
        let removed = self.streams.remove(stream);
        self.release(stream, removed);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let Self { streams, pool, trailers, output, .. } = self;
        streams.clear(|stream| stream.pending.release(pool));
        for (_, stored) in trailers.drain() {
            stored.release(pool);
        }
        output.release_all(pool);
    }
}

/// Frames on the wire in `len` bytes of `frame` (DATA and header blocks may
/// be split), from the frame layer's own lengths: each extra frame costs
/// what the frame costs with an empty payload (DATA) or one frame header
/// (CONTINUATION).
fn frame_count(frame: &Frame<'_>, len: usize, max_frame_size: u32) -> u64 {
    let (payload, empty) = match *frame {
        Frame::Data { stream, data, end_stream, pad_length } => {
            (data.len(), Frame::Data { stream, data: &[], end_stream, pad_length })
        }
        Frame::Headers { stream, block, end_stream, priority, pad_length } => {
            (block.len(), Frame::Headers { stream, block: &[], end_stream, priority, pad_length })
        }
        Frame::PushPromise { stream, promised_stream, block, pad_length } => {
            (block.len(), Frame::PushPromise { stream, promised_stream, block: &[], pad_length })
        }
        _ => return 1,
    };
    let Ok(empty_len) = empty.validate(max_frame_size) else { return 1 };
    let extra = len.saturating_sub(payload + empty_len);
    let per_frame = if matches!(frame, Frame::Data { .. }) { empty_len } else { frame::FRAME_HEADER_LEN };
    1 + (extra / per_frame) as u64
}

/// A window as a byte count (0 when exhausted or negative).
fn window_room(window: i64) -> usize {
    usize::try_from(window).unwrap_or(0)
}

/// The error for a container that could not grow by `count` items of `T`.
fn oom<T>(count: usize) -> PoolError {
    PoolError::OutOfMemory { requested: count.saturating_mul(size_of::<T>()) }
}
