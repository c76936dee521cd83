//! Every way a connection call can fail.

use super::state::StreamState;
use crate::frame::{FrameError, FrameType};
use crate::hpack::HpackError;
use crate::pool::PoolError;

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
    /// The pool's budget, the connection's share of it, or the allocator
    /// refused memory.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The stream is not open for sending body bytes.
    #[error("stream {stream} is not open for sending")]
    StreamNotOpen { stream: u32 },
    /// The stream id cannot be opened here (RFC 9113 §5.1.1).
    #[error("stream {stream} cannot be opened: {reason}")]
    StreamIdInvalid { stream: u32, reason: &'static str },
    /// A peer WINDOW_UPDATE would take a window past 2^31 − 1.
    #[error("window of stream {stream} would exceed 2^31-1")]
    WindowOverflow { stream: u32 },
    /// The stream or the connection is above its high watermark; nothing accepted.
    #[error("stream {stream}: backpressure, {pending} bytes already pending")]
    WouldBlock { stream: u32, pending: usize },
    /// A batch's item lengths add up to more bytes than its data holds.
    #[error("batch items count {lengths} bytes, its data holds {data}")]
    BatchLength { lengths: u64, data: usize },
    /// The call would put on the wire what a conformant peer rejects.
    #[error("stream {stream}: {rule}")]
    Refused {
        /// The stream concerned (0: the connection).
        stream: u32,
        /// The rule the call would break.
        rule: Rule,
    },
}

/// A protocol rule a refused call would break, with the values at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    /// No `frame` may be sent on a stream in `state` (RFC 9113 §5.1).
    #[error("no {frame:?} may be sent on a stream that is {state} (RFC 9113 §5.1)")]
    State {
        /// The stream's state.
        state: StreamState,
        /// The frame refused.
        frame: FrameType,
    },
    /// Opening the stream would pass the peer's SETTINGS_MAX_CONCURRENT_STREAMS.
    #[error("the peer allows {limit} concurrent streams (RFC 9113 §5.1.2)")]
    ConcurrencyLimit {
        /// The peer's limit.
        limit: u32,
    },
    /// Server push is not allowed here (RFC 9113 §6.5.2, §8.4).
    #[error("no push: {reason}")]
    Push {
        /// Why.
        reason: &'static str,
    },
    /// The header list is larger than the peer's SETTINGS_MAX_HEADER_LIST_SIZE.
    #[error("header list of {size} bytes (as RFC 9113 §6.5.2 counts them), the peer accepts {limit}")]
    HeaderListSize {
        /// Size as §6.5.2 counts it (names, values, 32 per field).
        size: u64,
        /// The peer's limit.
        limit: u32,
    },
    /// `:protocol` needs the peer's SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3).
    #[error("the peer did not enable extended CONNECT (RFC 8441 §3)")]
    ExtendedConnect,
    /// The peer sent GOAWAY: no new stream (RFC 9113 §6.8).
    #[error("the peer is going away (last stream {last_stream_id}): no new stream (RFC 9113 §6.8)")]
    GoingAway {
        /// The peer's last-stream-id.
        last_stream_id: u32,
    },
    /// A GOAWAY's last-stream-id may not grow (RFC 9113 §6.8).
    #[error("GOAWAY last-stream-id {last_stream_id} is above the {previous} sent before (RFC 9113 §6.8)")]
    GoawayIncrease {
        /// The one asked for.
        last_stream_id: u32,
        /// The one sent before.
        previous: u32,
    },
    /// The header block is malformed (RFC 9113 §8).
    #[error("malformed header block: {reason}")]
    Message {
        /// What is wrong.
        reason: &'static str,
    },
    /// The body would contradict its `content-length` (RFC 9113 §8.1.1).
    #[error("content-length leaves {declared_left} bytes, {offered} offered (RFC 9113 §8.1.1)")]
    ContentLength {
        /// Bytes the declared length still allows.
        declared_left: u64,
        /// Bytes offered (0: the body was ended short).
        offered: u64,
    },
    /// The connection preface (RFC 9113 §3.4).
    #[error("connection preface: {reason} (RFC 9113 §3.4)")]
    Preface {
        /// What is wrong.
        reason: &'static str,
    },
    /// A WINDOW_UPDATE would take a window this end advertised past 2^31 − 1.
    #[error("receive window {window} + {increment} would exceed 2^31-1 (RFC 9113 §6.9.1)")]
    ReceiveWindow {
        /// The window now.
        window: i64,
        /// The increment asked for.
        increment: u32,
    },
    /// The raw escape hatch may not write `frame` on a stream the managed API tracks.
    #[error("raw {frame:?} on a stream the managed API tracks")]
    ManagedStream {
        /// The frame refused.
        frame: FrameType,
    },
}
