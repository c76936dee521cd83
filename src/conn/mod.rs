//! The stateful writer a host talks to: peer settings, HPACK, an output queue
//! of pooled chunks, per-stream send queues, flow control and scheduling.

use crate::frame::{FrameError, Priority};
use crate::hpack::{HeaderField, HpackError};
use crate::pool::{Policy, PoolError, PoolStats};

/// Connection limits and pool configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Pool policy, classes, idle caps and budget.
    pub pool: crate::pool::PoolConfig,
    /// Pending body bytes per stream above which `send` refuses more.
    pub stream_high_watermark: usize,
    /// Live bytes for the whole connection above which `send` refuses more.
    pub conn_high_watermark: usize,
    /// Largest HPACK dynamic table we keep, whatever the peer advertises.
    pub max_header_table_size: usize,
}

impl Config {
    /// Defaults for `policy`.
    pub fn new(policy: Policy) -> Self {
        let _ = policy;
        todo!("conn layer")
    }
}

/// What the host tells us about a stream's body when it opens it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamHints {
    /// Declared Content-Length, if any.
    pub content_length: Option<u64>,
}

/// Options of a HEADERS write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadersOptions {
    /// Set END_STREAM.
    pub end_stream: bool,
    /// Priority fields (sets the PRIORITY flag).
    pub priority: Option<Priority>,
    /// Padding (sets the PADDED flag, even for 0).
    pub pad_length: Option<u8>,
}

/// Every way a connection call can fail. The connection stays usable and no
/// partial frame is queued when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A frame field was invalid.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A header list was invalid.
    #[error(transparent)]
    Hpack(#[from] HpackError),
    /// The pool's budget or the allocator refused memory.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The stream is not open for sending.
    #[error("stream {stream} is not open for sending")]
    StreamNotOpen { stream: u32 },
    /// The stream id was used before or is not above the last one opened.
    #[error("stream {stream} cannot be opened: {reason}")]
    StreamIdInvalid { stream: u32, reason: &'static str },
    /// A peer WINDOW_UPDATE would take a window past 2^31 − 1.
    #[error("window of stream {stream} would exceed 2^31-1")]
    WindowOverflow { stream: u32 },
    /// The stream or the connection is above its high watermark; nothing accepted.
    #[error("stream {stream}: backpressure, {pending} bytes already pending")]
    WouldBlock { stream: u32, pending: usize },
}

/// Connection statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Pool statistics.
    pub pool: PoolStats,
    /// Bytes accepted but not yet drained (pending DATA plus queued output).
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
}

/// The frame writer of one HTTP/2 connection.
#[derive(Debug)]
pub struct Connection {}

impl Connection {
    /// A connection with the peer's settings at their RFC defaults.
    pub fn new(config: Config) -> Self {
        let _ = config;
        todo!("conn layer")
    }

    /// Applies the peer's SETTINGS (MAX_FRAME_SIZE, HEADER_TABLE_SIZE,
    /// INITIAL_WINDOW_SIZE, ...). Validated as a whole before any takes effect.
    pub fn apply_peer_settings(&mut self, settings: &[(u16, u32)]) -> Result<(), Error> {
        let _ = settings;
        todo!("conn layer")
    }

    /// Applies a WINDOW_UPDATE received from the peer (stream 0: connection).
    pub fn apply_window_update(&mut self, stream: u32, increment: u32) -> Result<(), Error> {
        let _ = (stream, increment);
        todo!("conn layer")
    }

    /// Queues the 24-byte client connection preface.
    pub fn write_preface(&mut self) -> Result<(), Error> {
        todo!("conn layer")
    }

    /// Queues one frame as given (DATA here is raw: split at the peer's
    /// MAX_FRAME_SIZE, not flow-controlled). Control frames go out ahead of
    /// stream DATA still waiting in stream queues.
    pub fn write_frame(&mut self, frame: &crate::frame::Frame<'_>) -> Result<(), Error> {
        let _ = frame;
        todo!("conn layer")
    }

    /// HPACK-encodes `fields` and queues HEADERS (+ CONTINUATION).
    pub fn write_headers(&mut self, stream: u32, fields: &[HeaderField<'_>], options: HeadersOptions) -> Result<(), Error> {
        let _ = (stream, fields, options);
        todo!("conn layer")
    }

    /// HPACK-encodes `fields` and queues PUSH_PROMISE (+ CONTINUATION).
    pub fn write_push_promise(
        &mut self,
        stream: u32,
        promised_stream: u32,
        fields: &[HeaderField<'_>],
        pad_length: Option<u8>,
    ) -> Result<(), Error> {
        let _ = (stream, promised_stream, fields, pad_length);
        todo!("conn layer")
    }

    /// Opens a flow-controlled stream: queues its HEADERS and remembers the hints.
    pub fn open_stream(&mut self, stream: u32, fields: &[HeaderField<'_>], hints: StreamHints, end_stream: bool) -> Result<(), Error> {
        let _ = (stream, fields, hints, end_stream);
        todo!("conn layer")
    }

    /// Accepts body bytes for `stream`; returns how many were taken (fewer
    /// than `data.len()` under backpressure).
    pub fn send(&mut self, stream: u32, data: &[u8]) -> Result<usize, Error> {
        let _ = (stream, data);
        todo!("conn layer")
    }

    /// Ends the stream after its pending bytes: END_STREAM on the last DATA,
    /// or a trailing HEADERS block when `trailers` is given.
    pub fn finish(&mut self, stream: u32, trailers: Option<&[HeaderField<'_>]>) -> Result<(), Error> {
        let _ = (stream, trailers);
        todo!("conn layer")
    }

    /// Resets the stream: drops its pending bytes (buffers back to the pool
    /// at once) and queues RST_STREAM.
    pub fn reset(&mut self, stream: u32, error_code: u32) -> Result<(), Error> {
        let _ = (stream, error_code);
        todo!("conn layer")
    }

    /// Appends up to `max_bytes` of wire bytes to `out` (queued control and
    /// header frames first, then DATA scheduled round-robin within the
    /// windows); returns how many.
    pub fn drain(&mut self, max_bytes: usize, out: &mut Vec<u8>) -> Result<usize, Error> {
        let _ = (max_bytes, out);
        todo!("conn layer")
    }

    /// Current statistics.
    pub fn stats(&self) -> Stats {
        todo!("conn layer")
    }
}
