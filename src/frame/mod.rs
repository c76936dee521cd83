//! RFC 9113 frame encoders (plus RFC 9218 PRIORITY_UPDATE and extension frames).
//!
//! Pure: every function writes into a caller's [`BufMut`] and allocates nothing
//! of its own. Every field is validated before the first byte is written, so an
//! error leaves `dst` untouched.

use bytes::BufMut;

mod encode;
mod header;
mod layout;
mod validate;

pub use layout::data_room;
pub use validate::validate_setting;

/// Length of the fixed frame header (RFC 9113 §4.1).
pub const FRAME_HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE before the peer says otherwise.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// Largest SETTINGS_MAX_FRAME_SIZE a peer may advertise (2^24 − 1).
pub const MAX_MAX_FRAME_SIZE: u32 = 16_777_215;
/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// SETTINGS identifiers (RFC 9113 §6.5.2, RFC 8441, RFC 9218).
pub mod setting {
    /// SETTINGS_HEADER_TABLE_SIZE
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    /// SETTINGS_ENABLE_PUSH
    pub const ENABLE_PUSH: u16 = 0x2;
    /// SETTINGS_MAX_CONCURRENT_STREAMS
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    /// SETTINGS_INITIAL_WINDOW_SIZE
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    /// SETTINGS_MAX_FRAME_SIZE
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    /// SETTINGS_MAX_HEADER_LIST_SIZE
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441)
    pub const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
    /// SETTINGS_NO_RFC7540_PRIORITIES (RFC 9218)
    pub const NO_RFC7540_PRIORITIES: u16 = 0x9;
}

/// Frame type codes this crate names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// DATA (0x0)
    Data = 0x0,
    /// HEADERS (0x1)
    Headers = 0x1,
    /// PRIORITY (0x2)
    Priority = 0x2,
    /// RST_STREAM (0x3)
    RstStream = 0x3,
    /// SETTINGS (0x4)
    Settings = 0x4,
    /// PUSH_PROMISE (0x5)
    PushPromise = 0x5,
    /// PING (0x6)
    Ping = 0x6,
    /// GOAWAY (0x7)
    Goaway = 0x7,
    /// WINDOW_UPDATE (0x8)
    WindowUpdate = 0x8,
    /// CONTINUATION (0x9)
    Continuation = 0x9,
    /// PRIORITY_UPDATE (0x10, RFC 9218)
    PriorityUpdate = 0x10,
}

/// Frame type codes as bytes, for matching the type field of a frame
/// header read off the wire.
pub mod kind {
    use super::FrameType;

    /// DATA
    pub const DATA: u8 = FrameType::Data as u8;
    /// HEADERS
    pub const HEADERS: u8 = FrameType::Headers as u8;
    /// PRIORITY
    pub const PRIORITY: u8 = FrameType::Priority as u8;
    /// RST_STREAM
    pub const RST_STREAM: u8 = FrameType::RstStream as u8;
    /// SETTINGS
    pub const SETTINGS: u8 = FrameType::Settings as u8;
    /// PUSH_PROMISE
    pub const PUSH_PROMISE: u8 = FrameType::PushPromise as u8;
    /// PING
    pub const PING: u8 = FrameType::Ping as u8;
    /// GOAWAY
    pub const GOAWAY: u8 = FrameType::Goaway as u8;
    /// WINDOW_UPDATE
    pub const WINDOW_UPDATE: u8 = FrameType::WindowUpdate as u8;
    /// CONTINUATION
    pub const CONTINUATION: u8 = FrameType::Continuation as u8;
}

/// Frame flag bits (RFC 9113 §6).
pub mod flag {
    /// END_STREAM (DATA, HEADERS).
    pub const END_STREAM: u8 = 0x1;
    /// ACK (SETTINGS, PING).
    pub const ACK: u8 = 0x1;
    /// END_HEADERS (HEADERS, PUSH_PROMISE, CONTINUATION).
    pub const END_HEADERS: u8 = 0x4;
    /// PADDED (DATA, HEADERS, PUSH_PROMISE).
    pub const PADDED: u8 = 0x8;
    /// PRIORITY (HEADERS).
    pub const PRIORITY: u8 = 0x20;
}

/// HEADERS / PRIORITY priority fields (RFC 9113 §5.3.2, §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    /// Stream this one depends on (31 bits).
    pub stream_dependency: u32,
    /// On-wire weight, 0–255 (the RFC weight minus one).
    pub weight: u8,
    /// Exclusive dependency flag.
    pub exclusive: bool,
}

/// A frame to write. Header blocks are already HPACK-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// DATA, split into as many frames as the peer's MAX_FRAME_SIZE needs;
    /// END_STREAM on the last only. Every frame carries the same `pad_length`
    /// padding (PADDED flag, Pad Length octet, zero pad bytes), and each but the
    /// last is filled to the full frame size with padding counted, so every
    /// frame holds [`data_room`] data bytes. Flow control counts the padding:
    /// each frame costs its data plus `1 + pad_length`. Empty `data` is one
    /// frame with no data.
    Data { stream: u32, data: &'a [u8], end_stream: bool, pad_length: Option<u8> },
    /// HEADERS plus CONTINUATION frames when the block does not fit one frame.
    /// The HEADERS frame holds the padding, the priority fields and END_STREAM,
    /// and is filled to the full frame size; END_HEADERS is on the last frame.
    /// An empty block is one HEADERS frame.
    Headers { stream: u32, block: &'a [u8], end_stream: bool, priority: Option<Priority>, pad_length: Option<u8> },
    /// PRIORITY.
    Priority { stream: u32, priority: Priority },
    /// RST_STREAM.
    RstStream { stream: u32, error_code: u32 },
    /// SETTINGS with the given `(id, value)` pairs, order kept.
    Settings { settings: &'a [(u16, u32)] },
    /// SETTINGS with ACK and an empty payload.
    SettingsAck,
    /// PUSH_PROMISE plus CONTINUATION frames when needed, split like HEADERS
    /// (promised stream and padding in the first frame only).
    PushPromise { stream: u32, promised_stream: u32, block: &'a [u8], pad_length: Option<u8> },
    /// PING (ACK when `ack`).
    Ping { opaque_data: [u8; 8], ack: bool },
    /// GOAWAY.
    Goaway { last_stream_id: u32, error_code: u32, debug_data: &'a [u8] },
    /// WINDOW_UPDATE (stream 0 for the connection).
    WindowUpdate { stream: u32, increment: u32 },
    /// PRIORITY_UPDATE (RFC 9218): always on stream 0.
    PriorityUpdate { prioritized_stream: u32, field_value: &'a [u8] },
    /// A frame of an extension type (core types 0x0–0x9 are refused).
    Extension { frame_type: u8, flags: u8, stream: u32, payload: &'a [u8] },
}

/// Why a frame was refused. Nothing was written when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame needs a stream but stream 0 was given.
    #[error("{frame:?}: stream identifier must not be 0")]
    StreamIdRequired { frame: FrameType },
    /// A 31-bit field had its reserved high bit set (value ≥ 2^31).
    #[error("{field}: {value} does not fit in 31 bits")]
    ReservedBit { field: &'static str, value: u32 },
    /// A stream was made to depend on itself.
    #[error("stream {stream} cannot depend on itself")]
    SelfDependency { stream: u32 },
    /// WINDOW_UPDATE increment 0 or ≥ 2^31.
    #[error("WINDOW_UPDATE increment {increment} is outside 1..=2^31-1")]
    WindowIncrement { increment: u32 },
    /// A known SETTINGS value outside its range.
    #[error("SETTINGS id {id:#x}: value {value} is out of range")]
    SettingValue { id: u16, value: u32 },
    /// An extension frame used a core frame type (0x0–0x9).
    #[error("extension frame type {frame_type:#x} is a core RFC 9113 type")]
    CoreFrameType { frame_type: u8 },
    /// A payload larger than the peer's MAX_FRAME_SIZE (or 2^24 − 1).
    #[error("{frame:?}: payload of {len} bytes exceeds the frame size limit {max}")]
    PayloadTooLarge { frame: FrameType, len: usize, max: usize },
    /// An extension frame's payload is larger than the peer's MAX_FRAME_SIZE.
    #[error("extension frame type {frame_type:#x}: payload of {len} bytes exceeds the frame size limit {max}")]
    ExtensionPayloadTooLarge { frame_type: u8, len: usize, max: usize },
    /// A max frame size argument outside 16384..=16777215.
    #[error("max frame size {value} is outside 16384..=16777215")]
    MaxFrameSize { value: u32 },
    /// The destination buffer cannot take the frame.
    #[error("buffer has room for {available} bytes, frame needs {needed}")]
    BufferTooSmall { needed: usize, available: usize },
}

impl Frame<'_> {
    /// Checks every field and returns the exact number of bytes [`Frame::encode`]
    /// would write for a peer whose SETTINGS_MAX_FRAME_SIZE is `max_frame_size`.
    pub fn validate(&self, max_frame_size: u32) -> Result<usize, FrameError> {
        validate::wire_len(self, max_frame_size)
    }

    /// Validates, then writes the frame(s) into `dst`; returns bytes written.
    ///
    /// `dst` must have room for every byte ([`BufMut::remaining_mut`]), else
    /// [`FrameError::BufferTooSmall`] is returned and nothing is written.
    pub fn encode(&self, dst: &mut impl BufMut, max_frame_size: u32) -> Result<usize, FrameError> {
        let needed = self.validate(max_frame_size)?;
        let available = dst.remaining_mut();
        if available < needed {
            return Err(FrameError::BufferTooSmall { needed, available });
        }
        encode::write(self, dst, layout::frame_size(max_frame_size));
        Ok(needed)
    }
}

/// Writes only the 9-byte frame headers of the unpadded DATA frames that
/// `Frame::Data` with `data_len` bytes would write, for a host that keeps
/// the body in its own buffer (vectored writes, or a copy it makes anyway):
/// each header goes on the wire followed by the next body bytes, as many as
/// its length field says. Returns the bytes written (9 per frame); checks
/// and errors are [`Frame::encode`]'s.
pub fn encode_data_headers(
    stream: u32,
    data_len: usize,
    end_stream: bool,
    dst: &mut impl BufMut,
    max_frame_size: u32,
) -> Result<usize, FrameError> {
    Frame::Data { stream, data: &[], end_stream, pad_length: None }.validate(max_frame_size)?;
    let max_frame_size = layout::frame_size(max_frame_size);
    let needed = data_len.div_ceil(max_frame_size).max(1) * FRAME_HEADER_LEN;
    let available = dst.remaining_mut();
    if available < needed {
        return Err(FrameError::BufferTooSmall { needed, available });
    }
    encode::write_data_headers(dst, stream, data_len, end_stream, max_frame_size);
    Ok(needed)
}

/// Appends to `out` the wire of DATA frames whose headers came from
/// [`encode_data_headers`]: each header of `headers`, then the next bytes of
/// `body`, as many as its length field says. Returns the body bytes used.
///
/// Checks everything first: headers that are not whole 9-byte DATA frame
/// headers, or that count more bytes than `body` holds, are
/// [`FrameError::BufferTooSmall`] (naming the body bytes needed and held)
/// with nothing written.
pub fn interleave_data(headers: &[u8], body: &[u8], out: &mut Vec<u8>) -> Result<usize, FrameError> {
    let header_len =
        |header: &[u8]| usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    let pieces = headers.chunks(FRAME_HEADER_LEN);
    let well_formed = headers.len().is_multiple_of(FRAME_HEADER_LEN)
        && pieces.clone().all(|header| header[3] == FrameType::Data as u8 && header[4] & flag::PADDED == 0);
    let needed: usize = if well_formed { pieces.clone().map(header_len).sum() } else { usize::MAX };
    if needed > body.len() {
        return Err(FrameError::BufferTooSmall { needed, available: body.len() });
    }
    out.reserve(headers.len() + needed);
    let mut rest = body;
    for header in pieces {
        let (piece, tail) = rest.split_at(header_len(header));
        out.extend_from_slice(header);
        out.extend_from_slice(piece);
        rest = tail;
    }
    Ok(needed)
}

#[cfg(test)]
mod validation_tests;
#[cfg(test)]
mod wire_tests;
