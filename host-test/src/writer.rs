//! One interface over the two ways to drive a connection writer: the native
//! library and the component under wasmtime. The CLI and the stream mixes
//! are written against it, so both run the exact same calls.

use h2fw::baseline::{GoPools, Model, ScratchStats};
use h2fw::conn::{BatchItem, Config, Connection, Error, HeadersOptions, Stats, StreamHints};
use h2fw::frame::{Frame, Priority};
use h2fw::hpack::HeaderField;
use h2fw::pool::{Pool, PoolStats};

/// How a writer buffers: h2fw's tiered pool, or one of Go's pools as modelled
/// by the `baselines` build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// h2fw: power-of-two classes, capped idle cache, chunks sized from hints.
    Tiered,
    /// Go after CL 508415: seven classes, per-stream scratch for the stream's life.
    Go7,
    /// Go before CL 508415: one global pool, any big-enough buffer reused.
    Single,
}

impl Policy {
    /// Every policy, in table order.
    pub const ALL: [Policy; 3] = [Policy::Tiered, Policy::Go7, Policy::Single];

    /// Lowercase name (`tiered`, `go7`, `single`).
    pub fn name(self) -> &'static str {
        match self {
            Policy::Tiered => "tiered",
            Policy::Go7 => "go7",
            Policy::Single => "single",
        }
    }

    /// The Go model a baseline runs (`None` for tiered).
    pub fn model(self) -> Option<Model> {
        match self {
            Policy::Tiered => None,
            Policy::Go7 => Some(Model::Go7),
            Policy::Single => Some(Model::Single),
        }
    }

    /// A native connection under this policy, leasing from `pool` (and,
    /// under a baseline, from `scratch`, which must be of its model).
    pub fn native(self, config: Config, pool: &Pool, scratch: Option<&GoPools>) -> Connection {
        match scratch {
            Some(scratch) => Connection::with_baseline(config, pool, scratch),
            None => Connection::new(config, pool),
        }
    }
}

/// Linear memory of a component instance, as its `ResourceLimiter` saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Current size, bytes.
    pub current: usize,
    /// Largest size reached, bytes.
    pub peak: usize,
    /// Growth requests seen (granted or not).
    pub growths: u64,
    /// Growth requests refused because of the cap.
    pub refused: u64,
}

/// Which typed error the writer returned (mirrors `h2fw::conn::Error` and the WIT `error` variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Invalid frame field.
    Frame,
    /// Invalid header list.
    Hpack,
    /// Pool budget exceeded.
    Budget,
    /// The connection's share of the pool exceeded.
    Share,
    /// Allocator refused (memory cap).
    OutOfMemory,
    /// Request larger than the largest pool class.
    TooLarge,
    /// Stream not open for sending.
    StreamNotOpen,
    /// Stream id cannot be opened.
    StreamIdInvalid,
    /// Peer window update overflow.
    WindowOverflow,
    /// Backpressure: nothing accepted.
    WouldBlock,
    /// Batch lengths past the batch's data.
    BatchLength,
    /// A protocol rule would be broken (the message names it).
    Refused,
}

/// Why a writer call failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The writer refused the call with a typed error; it stays usable.
    #[error("{kind:?}: {message}")]
    Rejected {
        /// Which error.
        kind: ErrorKind,
        /// The library's message, naming the field.
        message: String,
    },
    /// The runtime failed (trap, wasmtime error): the instance is unusable.
    #[error("host: {0:#}")]
    Host(anyhow::Error),
}

impl From<Error> for WriteError {
    fn from(error: Error) -> Self {
        use h2fw::pool::PoolError;
        let kind = match &error {
            Error::Frame(_) => ErrorKind::Frame,
            Error::Hpack(_) => ErrorKind::Hpack,
            Error::Pool(PoolError::BudgetExceeded { .. }) => ErrorKind::Budget,
            Error::Pool(PoolError::ShareExceeded { .. }) => ErrorKind::Share,
            Error::Pool(PoolError::OutOfMemory { .. }) => ErrorKind::OutOfMemory,
            Error::Pool(PoolError::TooLarge { .. }) => ErrorKind::TooLarge,
            Error::StreamNotOpen { .. } => ErrorKind::StreamNotOpen,
            Error::StreamIdInvalid { .. } => ErrorKind::StreamIdInvalid,
            Error::WindowOverflow { .. } => ErrorKind::WindowOverflow,
            Error::WouldBlock { .. } => ErrorKind::WouldBlock,
            Error::BatchLength { .. } => ErrorKind::BatchLength,
            Error::Refused { .. } => ErrorKind::Refused,
        };
        WriteError::Rejected { kind, message: error.to_string() }
    }
}

/// An HTTP/2 connection writer (see `h2fw::conn::Connection` for each call's meaning).
pub trait Writer {
    /// Peer SETTINGS.
    fn apply_peer_settings(&mut self, settings: &[(u16, u32)]) -> Result<(), WriteError>;
    /// Peer WINDOW_UPDATE.
    fn apply_window_update(&mut self, stream: u32, increment: u32) -> Result<(), WriteError>;
    /// Peer HEADERS on a stream.
    fn apply_peer_headers(&mut self, stream: u32, end_stream: bool) -> Result<(), WriteError>;
    /// Peer END_STREAM on DATA.
    fn apply_peer_end_stream(&mut self, stream: u32) -> Result<(), WriteError>;
    /// Peer RST_STREAM.
    fn apply_peer_reset(&mut self, stream: u32) -> Result<(), WriteError>;
    /// Peer GOAWAY; returns the refused streams of this end.
    fn apply_peer_goaway(&mut self, last_stream_id: u32) -> Result<Vec<u32>, WriteError>;
    /// Peer DATA received (off our receive windows).
    fn apply_peer_data(&mut self, stream: u32, len: u32) -> Result<(), WriteError>;
    /// Peer PUSH_PROMISE on `stream`, reserving `promised`.
    fn apply_peer_push_promise(&mut self, stream: u32, promised: u32) -> Result<(), WriteError>;
    /// The preface with our SETTINGS.
    fn write_preface(&mut self, settings: &[(u16, u32)]) -> Result<(), WriteError>;
    /// SETTINGS after the preface.
    fn write_settings(&mut self, settings: &[(u16, u32)]) -> Result<(), WriteError>;
    /// SETTINGS acknowledgement.
    fn ack_settings(&mut self) -> Result<(), WriteError>;
    /// PRIORITY.
    fn priority(&mut self, stream: u32, priority: Priority) -> Result<(), WriteError>;
    /// PING (or its acknowledgement).
    fn ping(&mut self, opaque_data: [u8; 8], ack: bool) -> Result<(), WriteError>;
    /// GOAWAY.
    fn goaway(&mut self, last_stream_id: u32, error_code: u32, debug_data: &[u8]) -> Result<(), WriteError>;
    /// WINDOW_UPDATE for what the peer may send.
    fn window_update(&mut self, stream: u32, increment: u32) -> Result<(), WriteError>;
    /// Escape hatch: the client preface magic alone.
    fn raw_write_preface_magic(&mut self) -> Result<(), WriteError>;
    /// Escape hatch: one frame as given (DATA not flow-controlled).
    fn raw_write_frame(&mut self, frame: &Frame<'_>) -> Result<(), WriteError>;
    /// Escape hatch: HEADERS (+ CONTINUATION).
    fn raw_write_headers(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        options: HeadersOptions,
    ) -> Result<(), WriteError>;
    /// Escape hatch: PUSH_PROMISE (+ CONTINUATION).
    fn raw_write_push_promise(
        &mut self,
        stream: u32,
        promised_stream: u32,
        fields: &[HeaderField<'_>],
        pad_length: Option<u8>,
    ) -> Result<(), WriteError>;
    /// A server's response on a stream whose HEADERS are due.
    fn respond(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        hints: StreamHints,
        end_stream: bool,
    ) -> Result<(), WriteError>;
    /// Open a stream with a request.
    fn open_stream(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        hints: StreamHints,
        end_stream: bool,
    ) -> Result<(), WriteError>;
    /// A server's PUSH_PROMISE on `stream`, reserving `promised`.
    fn push_promise(&mut self, stream: u32, promised: u32, fields: &[HeaderField<'_>]) -> Result<(), WriteError>;
    /// Body bytes; returns how many were accepted.
    fn send(&mut self, stream: u32, data: &[u8]) -> Result<usize, WriteError>;
    /// Body bytes, then every wire byte that can go appended to `out`;
    /// returns how many body bytes were accepted.
    fn send_and_drain(&mut self, stream: u32, data: &[u8], out: &mut Vec<u8>) -> Result<usize, WriteError>;
    /// DATA for `data`, kept on the host's side: appends every queued byte,
    /// then the frames of as much of `data` as the windows allow, to `out`;
    /// returns how many body bytes were framed.
    fn frame_in_place(&mut self, stream: u32, data: &[u8], out: &mut Vec<u8>) -> Result<usize, WriteError>;
    /// `send` for many items whose bytes lie back to back in `data`; pushes
    /// each processed item's accepted bytes and stops at the first error.
    fn send_batch(&mut self, items: &[BatchItem], data: &[u8], accepted: &mut Vec<usize>) -> Result<(), WriteError>;
    /// End a stream, optionally with trailers.
    fn finish(&mut self, stream: u32, trailers: Option<&[HeaderField<'_>]>) -> Result<(), WriteError>;
    /// Reset a stream.
    fn reset(&mut self, stream: u32, error_code: u32) -> Result<(), WriteError>;
    /// Append up to `max_bytes` wire bytes to `out`.
    fn drain(&mut self, max_bytes: usize, out: &mut Vec<u8>) -> Result<usize, WriteError>;
    /// Connection statistics.
    fn stats(&mut self) -> Result<Stats, WriteError>;
    /// Statistics of the pool the connection leases from (shared with any
    /// other connection of the same pool).
    fn pool_stats(&mut self) -> Result<PoolStats, WriteError>;
    /// Statistics of the Go model the connection's streams lease from, if any.
    fn model_stats(&mut self) -> Result<Option<ScratchStats>, WriteError>;
    /// Linear memory of the component instance; `None` for the native writer.
    fn linear_memory(&self) -> Option<MemoryStats>;
}

impl Writer for Connection {
    fn apply_peer_settings(&mut self, settings: &[(u16, u32)]) -> Result<(), WriteError> {
        Ok(Connection::apply_peer_settings(self, settings)?)
    }
    fn apply_window_update(&mut self, stream: u32, increment: u32) -> Result<(), WriteError> {
        Ok(Connection::apply_window_update(self, stream, increment)?)
    }
    fn apply_peer_headers(&mut self, stream: u32, end_stream: bool) -> Result<(), WriteError> {
        Ok(Connection::apply_peer_headers(self, stream, end_stream)?)
    }
    fn apply_peer_end_stream(&mut self, stream: u32) -> Result<(), WriteError> {
        Ok(Connection::apply_peer_end_stream(self, stream)?)
    }
    fn apply_peer_reset(&mut self, stream: u32) -> Result<(), WriteError> {
        Ok(Connection::apply_peer_reset(self, stream)?)
    }
    fn apply_peer_goaway(&mut self, last_stream_id: u32) -> Result<Vec<u32>, WriteError> {
        let mut refused = Vec::new();
        Connection::apply_peer_goaway(self, last_stream_id, &mut refused)?;
        Ok(refused)
    }
    fn apply_peer_data(&mut self, stream: u32, len: u32) -> Result<(), WriteError> {
        Ok(Connection::apply_peer_data(self, stream, len)?)
    }
    fn apply_peer_push_promise(&mut self, stream: u32, promised: u32) -> Result<(), WriteError> {
        Ok(Connection::apply_peer_push_promise(self, stream, promised)?)
    }
    fn write_preface(&mut self, settings: &[(u16, u32)]) -> Result<(), WriteError> {
        Ok(Connection::write_preface(self, settings)?)
    }
    fn write_settings(&mut self, settings: &[(u16, u32)]) -> Result<(), WriteError> {
        Ok(Connection::write_settings(self, settings)?)
    }
    fn ack_settings(&mut self) -> Result<(), WriteError> {
        Ok(Connection::ack_settings(self)?)
    }
    fn priority(&mut self, stream: u32, priority: Priority) -> Result<(), WriteError> {
        Ok(Connection::priority(self, stream, priority)?)
    }
    fn ping(&mut self, opaque_data: [u8; 8], ack: bool) -> Result<(), WriteError> {
        Ok(Connection::ping(self, opaque_data, ack)?)
    }
    fn goaway(&mut self, last_stream_id: u32, error_code: u32, debug_data: &[u8]) -> Result<(), WriteError> {
        Ok(Connection::goaway(self, last_stream_id, error_code, debug_data)?)
    }
    fn window_update(&mut self, stream: u32, increment: u32) -> Result<(), WriteError> {
        Ok(Connection::window_update(self, stream, increment)?)
    }
    fn raw_write_preface_magic(&mut self) -> Result<(), WriteError> {
        Ok(self.raw().write_preface_magic()?)
    }
    fn raw_write_frame(&mut self, frame: &Frame<'_>) -> Result<(), WriteError> {
        Ok(self.raw().write_frame(frame)?)
    }
    fn raw_write_headers(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        options: HeadersOptions,
    ) -> Result<(), WriteError> {
        Ok(self.raw().write_headers(stream, fields, options)?)
    }
    fn raw_write_push_promise(
        &mut self,
        stream: u32,
        promised_stream: u32,
        fields: &[HeaderField<'_>],
        pad_length: Option<u8>,
    ) -> Result<(), WriteError> {
        Ok(self.raw().write_push_promise(stream, promised_stream, fields, pad_length)?)
    }
    fn respond(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        hints: StreamHints,
        end_stream: bool,
    ) -> Result<(), WriteError> {
        Ok(Connection::respond(self, stream, fields, hints, end_stream)?)
    }
    fn open_stream(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        hints: StreamHints,
        end_stream: bool,
    ) -> Result<(), WriteError> {
        Ok(Connection::open_stream(self, stream, fields, hints, end_stream)?)
    }
    fn push_promise(&mut self, stream: u32, promised: u32, fields: &[HeaderField<'_>]) -> Result<(), WriteError> {
        Ok(Connection::push_promise(self, stream, promised, fields)?)
    }
    fn send(&mut self, stream: u32, data: &[u8]) -> Result<usize, WriteError> {
        Ok(Connection::send(self, stream, data)?)
    }
    fn send_and_drain(&mut self, stream: u32, data: &[u8], out: &mut Vec<u8>) -> Result<usize, WriteError> {
        Ok(Connection::send_and_drain(self, stream, data, out)?)
    }
    fn frame_in_place(&mut self, stream: u32, data: &[u8], out: &mut Vec<u8>) -> Result<usize, WriteError> {
        let mut headers = Vec::new();
        let framed = Connection::frame_in_place(self, stream, data.len(), out, &mut headers)?;
        interleave(&headers, data, framed, out)
    }
    fn send_batch(&mut self, items: &[BatchItem], data: &[u8], accepted: &mut Vec<usize>) -> Result<(), WriteError> {
        Ok(Connection::send_batch(self, items, data, accepted)?)
    }
    fn finish(&mut self, stream: u32, trailers: Option<&[HeaderField<'_>]>) -> Result<(), WriteError> {
        Ok(Connection::finish(self, stream, trailers)?)
    }
    fn reset(&mut self, stream: u32, error_code: u32) -> Result<(), WriteError> {
        Ok(Connection::reset(self, stream, error_code)?)
    }
    fn drain(&mut self, max_bytes: usize, out: &mut Vec<u8>) -> Result<usize, WriteError> {
        Ok(Connection::drain(self, max_bytes, out)?)
    }
    fn stats(&mut self) -> Result<Stats, WriteError> {
        Ok(Connection::stats(self))
    }
    fn pool_stats(&mut self) -> Result<PoolStats, WriteError> {
        Ok(self.pool().stats())
    }
    fn model_stats(&mut self) -> Result<Option<ScratchStats>, WriteError> {
        Ok(self.scratch().map(GoPools::stats))
    }
    fn linear_memory(&self) -> Option<MemoryStats> {
        None
    }
}

/// Appends the DATA frames of `frame_in_place`: each of `headers`, then the
/// body bytes it counts, which must be the `framed` bytes the writer reported.
pub(crate) fn interleave(headers: &[u8], data: &[u8], framed: usize, out: &mut Vec<u8>) -> Result<usize, WriteError> {
    match h2fw::frame::interleave_data(headers, data.get(..framed).unwrap_or(data), out) {
        Ok(used) if used == framed => Ok(framed),
        outcome => Err(WriteError::Host(anyhow::anyhow!(
            "frame_in_place reported {framed} bytes framed, its headers say {outcome:?}"
        ))),
    }
}
