//! Frames from the upstream: an incremental reader that cuts a byte stream
//! into HTTP/2 frames (RFC 9113 §4) and checks each one's shape (§6) before
//! the tunnel acts on it.
//!
//! Bytes arrive in whatever pieces Envoy reads them. Whole frames are parsed
//! in place; only a frame cut at the end of a piece is copied, into a buffer
//! leased from the shared pool and given back as soon as the frame is whole.
//! A tunnel waiting for bytes in a frame boundary holds nothing.

use h2fw::pool::{Pool, PoolBuf, PoolError};

use h2fw::frame::{flag, kind};

/// Length of a frame header.
pub const HEADER_LEN: usize = 9;

/// Why an upstream frame was refused. Each names the frame and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Longer than the SETTINGS_MAX_FRAME_SIZE we advertised.
    #[error("{kind} frame of {len} bytes exceeds our SETTINGS_MAX_FRAME_SIZE {max}")]
    TooLarge { kind: &'static str, len: usize, max: usize },
    /// A fixed-size frame with another length, or a frame too short for its fields.
    #[error("{kind} frame has length {len}, {expected}")]
    Length { kind: &'static str, len: usize, expected: &'static str },
    /// A connection-level frame on a stream, or a stream frame on stream 0.
    #[error("{kind} frame on stream {stream}: {reason}")]
    Stream { kind: &'static str, stream: u32, reason: &'static str },
    /// Pad Length not smaller than the payload.
    #[error("{kind} frame padding {pad} does not fit its {len}-byte payload")]
    Padding { kind: &'static str, pad: usize, len: usize },
    /// A header block not continued by CONTINUATION frames of its stream,
    /// or a CONTINUATION without a header block.
    #[error("header block of stream {stream}: {reason}")]
    Continuation { stream: u32, reason: &'static str },
    /// WINDOW_UPDATE with a zero increment (RFC 9113 §6.9).
    #[error("WINDOW_UPDATE on stream {stream} with increment 0")]
    ZeroIncrement { stream: u32 },
    /// PUSH_PROMISE although we sent SETTINGS_ENABLE_PUSH 0.
    #[error("PUSH_PROMISE on stream {stream}, push is disabled")]
    Push { stream: u32 },
}

impl FrameError {
    /// The HTTP/2 error code a GOAWAY for this error carries.
    pub fn code(&self) -> u32 {
        match self {
            Self::TooLarge { .. } | Self::Length { .. } => crate::error_code::FRAME_SIZE_ERROR,
            _ => crate::error_code::PROTOCOL_ERROR,
        }
    }
}

/// One checked frame, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// DATA: `data` without padding; `flow_len` is what it costs the
    /// receive windows (the whole payload, padding included).
    Data { stream: u32, data: &'a [u8], flow_len: usize, end_stream: bool },
    /// HEADERS: the first fragment of a header block (padding and priority removed).
    Headers { stream: u32, fragment: &'a [u8], end_stream: bool, end_headers: bool },
    /// CONTINUATION: a further fragment of the current header block.
    Continuation { stream: u32, fragment: &'a [u8], end_headers: bool },
    /// RST_STREAM.
    RstStream { stream: u32, code: u32 },
    /// SETTINGS (not ACK): `(id, value)` pairs in wire order, six bytes each.
    Settings { pairs: &'a [u8] },
    /// SETTINGS ACK.
    SettingsAck,
    /// PING.
    Ping { data: [u8; 8], ack: bool },
    /// GOAWAY.
    GoAway { last_stream: u32, code: u32, debug: &'a [u8] },
    /// WINDOW_UPDATE (stream 0: the connection).
    WindowUpdate { stream: u32, increment: u32 },
    /// PRIORITY or an extension frame: nothing to do (RFC 9113 §5.5).
    Ignored,
}

/// The fixed nine bytes in front of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl Header {
    fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff;
        Self { len, kind: bytes[3], flags: bytes[4], stream }
    }
}

/// The name of a frame type, for errors.
fn kind_name(kind: u8) -> &'static str {
    match kind {
        kind::DATA => "DATA",
        kind::HEADERS => "HEADERS",
        kind::PRIORITY => "PRIORITY",
        kind::RST_STREAM => "RST_STREAM",
        kind::SETTINGS => "SETTINGS",
        kind::PUSH_PROMISE => "PUSH_PROMISE",
        kind::PING => "PING",
        kind::GOAWAY => "GOAWAY",
        kind::WINDOW_UPDATE => "WINDOW_UPDATE",
        kind::CONTINUATION => "CONTINUATION",
        _ => "extension",
    }
}

/// Cuts the upstream byte stream into checked frames.
#[derive(Debug)]
pub struct FrameReader {
    pool: Pool,
    max_frame_size: usize,
    /// The start of a frame cut at the end of the last piece.
    partial: Option<PoolBuf>,
    /// Stream of a header block still waiting for CONTINUATION frames.
    open_block: Option<u32>,
}

/// What stopped [`FrameReader::feed`]: a refused frame, or memory for a
/// partial frame, or what the caller's handler returned.
#[derive(Debug)]
pub enum FeedError<E> {
    /// The frame was malformed.
    Frame(FrameError),
    /// The pool refused a buffer for a partial frame.
    Pool(PoolError),
    /// The handler refused a frame.
    Handler(E),
}

impl FrameReader {
    /// A reader for frames up to `max_frame_size` payload bytes (the
    /// SETTINGS_MAX_FRAME_SIZE we advertise), buffering partial frames in `pool`.
    pub fn new(pool: &Pool, max_frame_size: usize) -> Self {
        Self { pool: pool.clone(), max_frame_size, partial: None, open_block: None }
    }

    /// Bytes of a partial frame held now.
    pub fn held_bytes(&self) -> usize {
        self.partial.as_ref().map_or(0, PoolBuf::len)
    }

    /// Hands every whole frame of `bytes` (after what an earlier call held)
    /// to `handle`, in order, and keeps a frame cut at the end. Stops at the
    /// first malformed frame or handler error.
    pub fn feed<E>(
        &mut self,
        mut bytes: &[u8],
        mut handle: impl FnMut(Frame<'_>) -> Result<(), E>,
    ) -> Result<(), FeedError<E>> {
        if let Some(mut partial) = self.partial.take() {
            let result = self.complete(&mut partial, &mut bytes, &mut handle);
            match result {
                Ok(true) => self.pool.release(partial),
                Ok(false) => {
                    self.partial = Some(partial);
                    return Ok(());
                }
                Err(error) => {
                    self.pool.release(partial);
                    return Err(error);
                }
            }
        }
        while bytes.len() >= HEADER_LEN {
            let header = Header::parse(bytes[..HEADER_LEN].try_into().expect("nine bytes"));
            self.check_len(&header).map_err(FeedError::Frame)?;
            let Some(frame) = bytes.get(HEADER_LEN..HEADER_LEN + header.len) else { break };
            self.dispatch(&header, frame, &mut handle)?;
            bytes = &bytes[HEADER_LEN + header.len..];
        }
        if !bytes.is_empty() {
            let need = match bytes.get(..HEADER_LEN) {
                Some(head) => HEADER_LEN + Header::parse(head.try_into().expect("nine bytes")).len,
                None => HEADER_LEN + self.max_frame_size,
            };
            let mut partial = self.pool.lease(need).map_err(FeedError::Pool)?;
            partial.append(bytes);
            self.partial = Some(partial);
        }
        Ok(())
    }

    /// Adds bytes to a partial frame; true (after handling it) once it is whole.
    fn complete<E>(
        &mut self,
        partial: &mut PoolBuf,
        bytes: &mut &[u8],
        handle: &mut impl FnMut(Frame<'_>) -> Result<(), E>,
    ) -> Result<bool, FeedError<E>> {
        if partial.len() < HEADER_LEN {
            let n = (HEADER_LEN - partial.len()).min(bytes.len());
            partial.append(&bytes[..n]);
            *bytes = &bytes[n..];
            if partial.len() < HEADER_LEN {
                return Ok(false);
            }
        }
        let header = Header::parse(partial.as_slice()[..HEADER_LEN].try_into().expect("nine bytes"));
        self.check_len(&header).map_err(FeedError::Frame)?;
        let n = (HEADER_LEN + header.len - partial.len()).min(bytes.len());
        if partial.append(&bytes[..n]) < n {
            // Leased for an unknown header at the largest frame size: always fits.
            return Err(FeedError::Frame(FrameError::TooLarge {
                kind: kind_name(header.kind),
                len: header.len,
                max: self.max_frame_size,
            }));
        }
        *bytes = &bytes[n..];
        if partial.len() < HEADER_LEN + header.len {
            return Ok(false);
        }
        self.dispatch(&header, &partial.as_slice()[HEADER_LEN..], handle)?;
        Ok(true)
    }

    fn check_len(&self, header: &Header) -> Result<(), FrameError> {
        if header.len > self.max_frame_size {
            return Err(FrameError::TooLarge {
                kind: kind_name(header.kind),
                len: header.len,
                max: self.max_frame_size,
            });
        }
        Ok(())
    }

    fn dispatch<E>(
        &mut self,
        header: &Header,
        payload: &[u8],
        handle: &mut impl FnMut(Frame<'_>) -> Result<(), E>,
    ) -> Result<(), FeedError<E>> {
        let frame = self.parse(header, payload).map_err(FeedError::Frame)?;
        handle(frame).map_err(FeedError::Handler)
    }

    /// Checks one whole frame (RFC 9113 §6) and the CONTINUATION sequence (§6.10).
    fn parse<'a>(&mut self, h: &Header, payload: &'a [u8]) -> Result<Frame<'a>, FrameError> {
        let name = kind_name(h.kind);
        let len = payload.len();
        if let Some(stream) = self.open_block
            && h.kind != kind::CONTINUATION
        {
            return Err(FrameError::Continuation { stream, reason: "interrupted by another frame" });
        }
        let on_stream = |reason| {
            if h.stream == 0 { Err(FrameError::Stream { kind: name, stream: 0, reason }) } else { Ok(()) }
        };
        let on_connection = || {
            if h.stream != 0 {
                Err(FrameError::Stream { kind: name, stream: h.stream, reason: "must be on stream 0" })
            } else {
                Ok(())
            }
        };
        let exact = |expected_len: usize, expected: &'static str| {
            if len != expected_len { Err(FrameError::Length { kind: name, len, expected }) } else { Ok(()) }
        };
        Ok(match h.kind {
            kind::DATA => {
                on_stream("must be on a stream")?;
                let data = unpad(name, h.flags, payload)?;
                Frame::Data { stream: h.stream, data, flow_len: len, end_stream: h.flags & flag::END_STREAM != 0 }
            }
            kind::HEADERS => {
                on_stream("must be on a stream")?;
                let mut fragment = unpad(name, h.flags, payload)?;
                if h.flags & flag::PRIORITY != 0 {
                    fragment = fragment.get(5..).ok_or(FrameError::Length {
                        kind: name,
                        len,
                        expected: "at least 5 bytes with the PRIORITY flag",
                    })?;
                }
                let end_headers = h.flags & flag::END_HEADERS != 0;
                if !end_headers {
                    self.open_block = Some(h.stream);
                }
                Frame::Headers { stream: h.stream, fragment, end_stream: h.flags & flag::END_STREAM != 0, end_headers }
            }
            kind::CONTINUATION => {
                match self.open_block {
                    Some(stream) if stream == h.stream => {}
                    Some(stream) => {
                        return Err(FrameError::Continuation { stream, reason: "continued on another stream" });
                    }
                    None => {
                        return Err(FrameError::Continuation { stream: h.stream, reason: "no header block is open" });
                    }
                }
                let end_headers = h.flags & flag::END_HEADERS != 0;
                if end_headers {
                    self.open_block = None;
                }
                Frame::Continuation { stream: h.stream, fragment: payload, end_headers }
            }
            kind::PRIORITY => {
                on_stream("must be on a stream")?;
                exact(5, "expected 5")?;
                Frame::Ignored
            }
            kind::RST_STREAM => {
                on_stream("must be on a stream")?;
                exact(4, "expected 4")?;
                Frame::RstStream { stream: h.stream, code: be32(payload) }
            }
            kind::SETTINGS => {
                on_connection()?;
                if h.flags & flag::ACK != 0 {
                    exact(0, "expected 0 with ACK")?;
                    Frame::SettingsAck
                } else if !len.is_multiple_of(6) {
                    return Err(FrameError::Length { kind: name, len, expected: "a multiple of 6" });
                } else {
                    Frame::Settings { pairs: payload }
                }
            }
            kind::PUSH_PROMISE => return Err(FrameError::Push { stream: h.stream }),
            kind::PING => {
                on_connection()?;
                exact(8, "expected 8")?;
                Frame::Ping { data: payload.try_into().expect("eight bytes"), ack: h.flags & flag::ACK != 0 }
            }
            kind::GOAWAY => {
                on_connection()?;
                if len < 8 {
                    return Err(FrameError::Length { kind: name, len, expected: "at least 8" });
                }
                Frame::GoAway {
                    last_stream: be32(payload) & 0x7fff_ffff,
                    code: be32(&payload[4..]),
                    debug: &payload[8..],
                }
            }
            kind::WINDOW_UPDATE => {
                exact(4, "expected 4")?;
                let increment = be32(payload) & 0x7fff_ffff;
                if increment == 0 {
                    return Err(FrameError::ZeroIncrement { stream: h.stream });
                }
                Frame::WindowUpdate { stream: h.stream, increment }
            }
            _ => Frame::Ignored,
        })
    }
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        if let Some(partial) = self.partial.take() {
            self.pool.release(partial);
        }
    }
}

/// The payload of a DATA or HEADERS frame without its padding (RFC 9113 §6.1).
fn unpad<'a>(kind: &'static str, flags: u8, payload: &'a [u8]) -> Result<&'a [u8], FrameError> {
    if flags & flag::PADDED == 0 {
        return Ok(payload);
    }
    let Some((&pad, rest)) = payload.split_first() else {
        return Err(FrameError::Length { kind, len: 0, expected: "at least 1 with the PADDED flag" });
    };
    let pad = usize::from(pad);
    if pad > rest.len() {
        return Err(FrameError::Padding { kind, pad, len: payload.len() });
    }
    Ok(&rest[..rest.len() - pad])
}

/// A big-endian u32 from the first four bytes.
fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// SETTINGS pairs `(id, value)` from a checked SETTINGS payload.
pub fn settings_pairs(pairs: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    pairs.chunks_exact(6).map(|p| (u16::from_be_bytes([p[0], p[1]]), be32(&p[2..])))
}

#[cfg(test)]
mod tests {
    use h2fw::pool::{Pool, PoolConfig, PoolError};

    use super::{FeedError, FrameError, FrameReader, HEADER_LEN, kind};
    use crate::error_code;
    use crate::testing::{Owned, frame, pool};

    const MAX: usize = 16_384;

    /// Feeds `pieces` in order; the frames handed out, or the first error.
    fn read(reader: &mut FrameReader, pieces: &[&[u8]]) -> Result<Vec<Owned>, FrameError> {
        let mut frames = Vec::new();
        for piece in pieces {
            reader
                .feed(piece, |f| -> Result<(), ()> {
                    frames.push(Owned::from(f));
                    Ok(())
                })
                .map_err(|e| match e {
                    FeedError::Frame(error) => error,
                    other => panic!("unexpected {other:?}"),
                })?;
        }
        Ok(frames)
    }

    fn read_one(bytes: &[u8]) -> Result<Vec<Owned>, FrameError> {
        read(&mut FrameReader::new(&pool(), MAX), &[bytes])
    }

    /// A stream holding one frame of every kind the reader hands out.
    fn every_kind() -> (Vec<u8>, Vec<Owned>) {
        let mut wire = Vec::new();
        let mut want = Vec::new();
        let settings = [0, 4, 0, 1, 0, 0, 0, 3, 0, 0, 0, 100];
        wire.extend(frame(kind::SETTINGS, 0, 0, &settings));
        want.push(Owned::Settings(vec![(4, 65_536), (3, 100)]));
        wire.extend(frame(kind::SETTINGS, 0x1, 0, &[]));
        want.push(Owned::SettingsAck);
        // HEADERS, padded and with priority, continued once.
        let mut headers = vec![2];
        headers.extend_from_slice(&[0x80, 0, 0, 3, 16]);
        headers.extend_from_slice(b"\x88ab");
        headers.extend_from_slice(&[0, 0]);
        wire.extend(frame(kind::HEADERS, 0x8 | 0x20, 1, &headers));
        want.push(Owned::Headers { stream: 1, fragment: b"\x88ab".to_vec(), end_stream: false, end_headers: false });
        wire.extend(frame(kind::CONTINUATION, 0x4, 1, b"cd"));
        want.push(Owned::Continuation { stream: 1, fragment: b"cd".to_vec(), end_headers: true });
        // DATA, padded: the padding counts for flow control.
        wire.extend(frame(kind::DATA, 0x8, 1, &[3, b'h', b'i', 0, 0, 0]));
        want.push(Owned::Data { stream: 1, data: b"hi".to_vec(), flow_len: 6, end_stream: false });
        wire.extend(frame(kind::DATA, 0x1, 1, &vec![7; MAX]));
        want.push(Owned::Data { stream: 1, data: vec![7; MAX], flow_len: MAX, end_stream: true });
        wire.extend(frame(kind::PRIORITY, 0, 1, &[0, 0, 0, 0, 9]));
        want.push(Owned::Ignored);
        wire.extend(frame(kind::RST_STREAM, 0, 1, &8u32.to_be_bytes()));
        want.push(Owned::RstStream { stream: 1, code: 8 });
        wire.extend(frame(kind::PING, 0, 0, b"12345678"));
        want.push(Owned::Ping { data: *b"12345678", ack: false });
        wire.extend(frame(kind::WINDOW_UPDATE, 0, 0, &0x8000_0400u32.to_be_bytes()));
        want.push(Owned::WindowUpdate { stream: 0, increment: 0x400 });
        wire.extend(frame(0xfa, 0xff, 5, b"extension"));
        want.push(Owned::Ignored);
        wire.extend(frame(kind::GOAWAY, 0, 0, &[0x80, 0, 0, 1, 0, 0, 0, 0, b'b', b'y', b'e']));
        want.push(Owned::GoAway { last_stream: 1, code: 0, debug: b"bye".to_vec() });
        (wire, want)
    }

    #[test]
    fn every_kind_of_frame_is_read_whole() {
        let (wire, want) = every_kind();
        assert_eq!(read_one(&wire), Ok(want));
    }

    #[test]
    fn frames_cut_anywhere_read_the_same_and_hold_nothing_after() {
        let (wire, want) = every_kind();
        let pool = pool();
        // Every cut point of a short prefix, and every frame boundary ± 1.
        for cut in (0..wire.len()).step_by(7).chain([1, 8, 9, 10, wire.len() - 1]) {
            let mut reader = FrameReader::new(&pool, MAX);
            let (a, b) = wire.split_at(cut);
            assert_eq!(read(&mut reader, &[a, b]).as_ref(), Ok(&want), "cut at {cut}");
            assert_eq!(reader.held_bytes(), 0);
        }
        // One byte at a time.
        let mut reader = FrameReader::new(&pool, MAX);
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(read(&mut reader, &bytes), Ok(want));
        assert_eq!(pool.leased_bytes(), 0, "partial frames went back to the pool");
    }

    #[test]
    fn a_partial_frame_is_held_in_the_pool_until_whole() {
        let pool = pool();
        let mut reader = FrameReader::new(&pool, MAX);
        let data = frame(kind::DATA, 0, 1, &[1; 1000]);
        assert_eq!(read(&mut reader, &[&data[..500]]), Ok(vec![]));
        assert_eq!(reader.held_bytes(), 500);
        assert!(pool.leased_bytes() >= data.len());
        let frames = read(&mut reader, &[&data[500..]]).expect("whole");
        assert_eq!(frames.len(), 1);
        assert_eq!(pool.leased_bytes(), 0);
        // A reader dropped while holding a partial frame gives it back too.
        assert_eq!(read(&mut reader, &[&data[..3]]), Ok(vec![]));
        drop(reader);
        assert_eq!(pool.leased_bytes(), 0);
    }

    #[test]
    fn malformed_frames_are_refused_with_what_was_wrong() {
        use FrameError::*;
        let cases: Vec<(Vec<u8>, FrameError)> = vec![
            (frame(kind::DATA, 0, 1, &vec![0; MAX + 1]), TooLarge { kind: "DATA", len: MAX + 1, max: MAX }),
            (frame(kind::SETTINGS, 0, 0, &[0; 5]), Length { kind: "SETTINGS", len: 5, expected: "a multiple of 6" }),
            (
                frame(kind::SETTINGS, 0x1, 0, &[0; 6]),
                Length { kind: "SETTINGS", len: 6, expected: "expected 0 with ACK" },
            ),
            (frame(kind::SETTINGS, 0, 1, &[]), Stream { kind: "SETTINGS", stream: 1, reason: "must be on stream 0" }),
            (frame(kind::PING, 0, 0, &[0; 7]), Length { kind: "PING", len: 7, expected: "expected 8" }),
            (frame(kind::PING, 0, 3, &[0; 8]), Stream { kind: "PING", stream: 3, reason: "must be on stream 0" }),
            (frame(kind::GOAWAY, 0, 0, &[0; 7]), Length { kind: "GOAWAY", len: 7, expected: "at least 8" }),
            (frame(kind::GOAWAY, 0, 1, &[0; 8]), Stream { kind: "GOAWAY", stream: 1, reason: "must be on stream 0" }),
            (frame(kind::RST_STREAM, 0, 1, &[0; 3]), Length { kind: "RST_STREAM", len: 3, expected: "expected 4" }),
            (
                frame(kind::RST_STREAM, 0, 0, &[0; 4]),
                Stream { kind: "RST_STREAM", stream: 0, reason: "must be on a stream" },
            ),
            (frame(kind::PRIORITY, 0, 1, &[0; 4]), Length { kind: "PRIORITY", len: 4, expected: "expected 5" }),
            (
                frame(kind::WINDOW_UPDATE, 0, 1, &[0; 3]),
                Length { kind: "WINDOW_UPDATE", len: 3, expected: "expected 4" },
            ),
            (frame(kind::WINDOW_UPDATE, 0, 1, &[0x80, 0, 0, 0]), ZeroIncrement { stream: 1 }),
            (frame(kind::DATA, 0, 0, b"x"), Stream { kind: "DATA", stream: 0, reason: "must be on a stream" }),
            (
                frame(kind::DATA, 0x8, 1, &[]),
                Length { kind: "DATA", len: 0, expected: "at least 1 with the PADDED flag" },
            ),
            (frame(kind::DATA, 0x8, 1, &[3, 0, 0]), Padding { kind: "DATA", pad: 3, len: 3 }),
            (frame(kind::HEADERS, 0x8, 1, &[9, 0]), Padding { kind: "HEADERS", pad: 9, len: 2 }),
            (
                frame(kind::HEADERS, 0x24, 1, &[0; 4]),
                Length { kind: "HEADERS", len: 4, expected: "at least 5 bytes with the PRIORITY flag" },
            ),
            (
                frame(kind::HEADERS, 0x4, 0, &[0x88]),
                Stream { kind: "HEADERS", stream: 0, reason: "must be on a stream" },
            ),
            (frame(kind::CONTINUATION, 0x4, 1, &[0x88]), Continuation { stream: 1, reason: "no header block is open" }),
            (frame(kind::PUSH_PROMISE, 0x4, 1, &[0, 0, 0, 2, 0x88]), Push { stream: 1 }),
        ];
        for (wire, want) in cases {
            assert_eq!(read_one(&wire), Err(want.clone()), "{want}");
            let code = if matches!(want, TooLarge { .. } | Length { .. }) {
                error_code::FRAME_SIZE_ERROR
            } else {
                error_code::PROTOCOL_ERROR
            };
            assert_eq!(want.code(), code, "{want}");
        }
    }

    #[test]
    fn a_header_block_must_be_continued_on_its_own_stream_without_interruption() {
        let open = frame(kind::HEADERS, 0, 1, &[0x88]);
        let mut interrupted = open.clone();
        interrupted.extend(frame(kind::PING, 0, 0, &[0; 8]));
        assert_eq!(
            read_one(&interrupted),
            Err(FrameError::Continuation { stream: 1, reason: "interrupted by another frame" })
        );
        let mut elsewhere = open;
        elsewhere.extend(frame(kind::CONTINUATION, 0x4, 3, &[0x88]));
        assert_eq!(
            read_one(&elsewhere),
            Err(FrameError::Continuation { stream: 1, reason: "continued on another stream" })
        );
    }

    #[test]
    fn an_oversized_header_is_refused_before_its_payload_arrives() {
        // Only the nine header bytes: the length alone is refused, nothing is leased for it.
        let pool = pool();
        let mut reader = FrameReader::new(&pool, MAX);
        let wire = frame(kind::DATA, 0, 1, &vec![0; 1 << 20]);
        assert_eq!(
            read(&mut reader, &[&wire[..HEADER_LEN]]),
            Err(FrameError::TooLarge { kind: "DATA", len: 1 << 20, max: MAX })
        );
        // Cut inside the header: refused once the header is whole.
        let mut reader = FrameReader::new(&pool, MAX);
        assert_eq!(
            read(&mut reader, &[&wire[..4], &wire[4..HEADER_LEN + 10]]),
            Err(FrameError::TooLarge { kind: "DATA", len: 1 << 20, max: MAX })
        );
        assert_eq!(pool.leased_bytes(), 0);
    }

    #[test]
    fn the_handler_error_stops_the_feed_at_that_frame() {
        let mut wire = frame(kind::PING, 0, 0, &[1; 8]);
        wire.extend(frame(kind::PING, 0, 0, &[2; 8]));
        let mut seen = 0;
        let result = FrameReader::new(&pool(), MAX).feed(&wire, |_| {
            seen += 1;
            Err("stop")
        });
        assert!(matches!(result, Err(FeedError::Handler("stop"))));
        assert_eq!(seen, 1);
    }

    #[test]
    fn a_pool_that_refuses_a_partial_frame_is_a_typed_error() {
        let pool = Pool::new(PoolConfig { budget_bytes: 1024, ..PoolConfig::default() });
        let wire = frame(kind::DATA, 0, 1, &[0; 4000]);
        let result = FrameReader::new(&pool, MAX).feed(&wire[..100], |_| Ok::<_, ()>(()));
        assert!(matches!(result, Err(FeedError::Pool(PoolError::BudgetExceeded { .. }))), "{result:?}");
    }
}
