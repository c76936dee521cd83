//! The peer of a mix: reads the wire bytes the writer drains, the way the
//! server side of the connection would, and acts on them. It parses every
//! frame header (payloads as far as flow control and stream state need),
//! reassembles each stream's DATA into a length and a CRC-32, checks the
//! writer's RFC 9113 obligations that a mix can observe (frame sizes, stream
//! states, header-block sequencing, flow-control windows), and hands back the
//! WINDOW_UPDATEs a receiver sends as it consumes data — except for streams
//! (or the connection) the mix has told it to stall.

use std::collections::HashMap;

use h2fw::frame::{FRAME_HEADER_LEN, PREFACE, flag, kind};

/// Largest flow-control window (RFC 9113 §6.9.1).
const MAX_WINDOW: i64 = (1 << 31) - 1;

/// Default connection window before any WINDOW_UPDATE (RFC 9113 §6.9.2).
const DEFAULT_CONNECTION_WINDOW: i64 = 65_535;

/// Something in the drained bytes that a conforming writer would not send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("peer: at wire byte {offset}: {reason}")]
pub struct Violation {
    /// Wire offset of the frame (or byte) at fault.
    pub offset: u64,
    /// What was wrong.
    pub reason: String,
}

/// What one stream delivered to the peer.
#[derive(Debug, Clone, Default)]
pub struct Delivered {
    /// DATA payload bytes received (padding excluded).
    pub bytes: u64,
    /// CRC-32 of those bytes, in arrival order.
    pub checksum: crc32fast::Hasher,
    /// HEADERS blocks received (request headers, then trailers).
    pub header_blocks: u32,
    /// END_STREAM seen.
    pub end_stream: bool,
    /// RST_STREAM error code, once seen.
    pub reset: Option<u32>,
    window: i64,
    unacked: i64,
}

/// Frames received, by type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// DATA frames.
    pub data: u64,
    /// HEADERS frames.
    pub headers: u64,
    /// CONTINUATION frames.
    pub continuation: u64,
    /// RST_STREAM frames.
    pub rst_stream: u64,
    /// Any other type.
    pub other: u64,
}

impl FrameCounts {
    /// All frames.
    pub fn total(&self) -> u64 {
        self.data + self.headers + self.continuation + self.rst_stream + self.other
    }
}

/// The frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct Current {
    offset: u64,
    kind: u8,
    flags: u8,
    stream: u32,
    len: usize,
    read: usize,
    /// DATA only: payload bytes that are padding, once the pad length is known.
    padding: usize,
}

/// The receiving end of one connection.
#[derive(Debug)]
pub struct Peer {
    max_frame_size: u32,
    initial_window: i64,
    wire_bytes: u64,
    preface_left: usize,
    header: [u8; FRAME_HEADER_LEN],
    header_len: usize,
    current: Option<Current>,
    /// Payload of the current control frame (kept only for types we decode).
    control: Vec<u8>,
    /// Stream whose header block still expects CONTINUATION.
    continuation: Option<u32>,
    last_stream: u32,
    streams: HashMap<u32, Delivered>,
    connection_window: i64,
    connection_unacked: i64,
    /// Streams with consumed bytes not yet acknowledged (may hold closed ones).
    unacked_streams: Vec<u32>,
    stalled_streams: HashMap<u32, u64>,
    connection_stalled_until: u64,
    counts: FrameCounts,
    /// Streams whose END_STREAM arrived since [`Peer::take_ended`]: the
    /// server then ends its side too (it answers with END_STREAM).
    ended: Vec<u32>,
}

impl Peer {
    /// A peer that expects the client preface first and has advertised
    /// `max_frame_size` and `initial_window` (its SETTINGS, applied to the writer
    /// by the mix before any stream opens).
    pub fn new(max_frame_size: u32, initial_window: u32) -> Self {
        Peer {
            max_frame_size,
            initial_window: i64::from(initial_window),
            wire_bytes: 0,
            preface_left: PREFACE.len(),
            header: [0; FRAME_HEADER_LEN],
            header_len: 0,
            current: None,
            control: Vec::new(),
            continuation: None,
            last_stream: 0,
            streams: HashMap::new(),
            connection_window: DEFAULT_CONNECTION_WINDOW,
            connection_unacked: 0,
            unacked_streams: Vec::new(),
            stalled_streams: HashMap::new(),
            connection_stalled_until: 0,
            counts: FrameCounts::default(),
            ended: Vec::new(),
        }
    }

    /// Wire bytes read so far.
    pub fn wire_bytes(&self) -> u64 {
        self.wire_bytes
    }

    /// Moves the streams whose END_STREAM arrived since the last call into `out`.
    pub fn take_ended(&mut self, out: &mut Vec<u32>) {
        out.append(&mut self.ended);
    }

    /// Frames read so far, by type.
    pub fn counts(&self) -> FrameCounts {
        self.counts
    }

    /// What `stream` delivered, if it was opened.
    pub fn delivered(&self, stream: u32) -> Option<&Delivered> {
        self.streams.get(&stream)
    }

    /// Records a connection-window increment the peer granted outside
    /// [`Peer::window_updates`] (the opening WINDOW_UPDATE on stream 0).
    pub fn grant_connection(&mut self, increment: u32) {
        self.connection_window += i64::from(increment);
    }

    /// Withholds WINDOW_UPDATEs for `stream` until tick `until`.
    pub fn stall_stream(&mut self, stream: u32, until: u64) {
        self.stalled_streams.insert(stream, until);
    }

    /// Withholds connection WINDOW_UPDATEs until tick `until`.
    pub fn stall_connection(&mut self, until: u64) {
        self.connection_stalled_until = until;
    }

    /// Lifts every stall.
    pub fn release_stalls(&mut self) {
        self.stalled_streams.clear();
        self.connection_stalled_until = 0;
    }

    /// The WINDOW_UPDATEs (stream, increment) the peer sends at tick `now` for
    /// the data it consumed: one per open, unstalled stream, then the
    /// connection's. Its own view of the windows grows accordingly.
    pub fn window_updates(&mut self, now: u64, out: &mut Vec<(u32, u32)>) {
        let mut still_unacked = Vec::new();
        for stream in std::mem::take(&mut self.unacked_streams) {
            let Some(delivered) = self.streams.get_mut(&stream) else { continue };
            if delivered.end_stream || delivered.reset.is_some() || delivered.unacked == 0 {
                delivered.unacked = 0;
                continue;
            }
            if self.stalled_streams.get(&stream).is_some_and(|&until| until > now) {
                still_unacked.push(stream);
                continue;
            }
            self.stalled_streams.remove(&stream);
            let increment = delivered.unacked.min(MAX_WINDOW - delivered.window);
            delivered.unacked = 0;
            if increment > 0 {
                delivered.window += increment;
                out.push((stream, increment as u32));
            }
        }
        self.unacked_streams = still_unacked;
        if self.connection_unacked > 0 && self.connection_stalled_until <= now {
            let increment = self.connection_unacked.min(MAX_WINDOW - self.connection_window);
            self.connection_unacked = 0;
            if increment > 0 {
                self.connection_window += increment;
                out.push((0, increment as u32));
            }
        }
    }

    /// Reads the next drained bytes.
    pub fn read(&mut self, mut bytes: &[u8]) -> Result<(), Violation> {
        while !bytes.is_empty() {
            let taken = if self.preface_left > 0 {
                self.read_preface(bytes)?
            } else if let Some(current) = self.current {
                let n = (current.len - current.read).min(bytes.len());
                self.read_payload(current, &bytes[..n])?;
                n
            } else {
                let n = (FRAME_HEADER_LEN - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
                self.header_len += n;
                if self.header_len == FRAME_HEADER_LEN {
                    self.header_len = 0;
                    self.begin_frame()?;
                }
                n
            };
            self.wire_bytes += taken as u64;
            bytes = &bytes[taken..];
            // A frame with an empty payload ends as soon as its header is read.
            if let Some(current) = self.current
                && current.read == current.len
            {
                self.current = None;
                self.end_frame(current)?;
            }
        }
        Ok(())
    }

    fn violation(&self, offset: u64, reason: impl Into<String>) -> Violation {
        Violation { offset, reason: reason.into() }
    }

    fn read_preface(&mut self, bytes: &[u8]) -> Result<usize, Violation> {
        let start = PREFACE.len() - self.preface_left;
        let n = self.preface_left.min(bytes.len());
        if bytes[..n] != PREFACE[start..start + n] {
            return Err(self.violation(self.wire_bytes, "the connection preface does not match RFC 9113 §3.4"));
        }
        self.preface_left -= n;
        Ok(n)
    }

    fn begin_frame(&mut self) -> Result<(), Violation> {
        let h = self.header;
        let len = u32::from_be_bytes([0, h[0], h[1], h[2]]);
        let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
        let offset = self.wire_bytes + 1 - FRAME_HEADER_LEN as u64;
        let current = Current { offset, kind: h[3], flags: h[4], stream, len: len as usize, read: 0, padding: 0 };
        if len > self.max_frame_size {
            return Err(self.violation(
                offset,
                format!("frame of {len} bytes exceeds the peer's MAX_FRAME_SIZE {}", self.max_frame_size),
            ));
        }
        if let Some(expected) = self.continuation
            && (current.kind != kind::CONTINUATION || stream != expected)
        {
            return Err(self.violation(
                offset,
                format!("type {:#x} on stream {stream} inside the header block of stream {expected}", current.kind),
            ));
        }
        match current.kind {
            kind::DATA => self.begin_data(current)?,
            kind::HEADERS => self.begin_headers(current)?,
            kind::CONTINUATION if self.continuation.is_none() => {
                return Err(self.violation(offset, format!("CONTINUATION on stream {stream} outside a header block")));
            }
            kind::SETTINGS | kind::PING | kind::GOAWAY if stream != 0 => {
                return Err(self.violation(offset, format!("type {:#x} on stream {stream}, must be 0", current.kind)));
            }
            kind::RST_STREAM | kind::PRIORITY | kind::PUSH_PROMISE if stream == 0 => {
                return Err(self.violation(offset, format!("type {:#x} on stream 0", current.kind)));
            }
            _ => {}
        }
        self.control.clear();
        self.current = Some(current);
        Ok(())
    }

    fn begin_data(&mut self, current: Current) -> Result<(), Violation> {
        let Current { offset, stream, len, .. } = current;
        let len = len as i64;
        let connection_window = self.connection_window;
        let Some(delivered) = self.streams.get_mut(&stream) else {
            return Err(self.violation(offset, format!("DATA on stream {stream}, which was never opened")));
        };
        let why = if delivered.end_stream {
            Some("after END_STREAM")
        } else if delivered.reset.is_some() {
            Some("after RST_STREAM")
        } else if current.flags & flag::PADDED != 0 && len == 0 {
            Some("PADDED without a pad length byte")
        } else if len > delivered.window {
            Some("beyond the stream's flow-control window")
        } else if len > connection_window {
            Some("beyond the connection's flow-control window")
        } else {
            None
        };
        if let Some(why) = why {
            let window = delivered.window;
            return Err(self.violation(
                offset,
                format!("DATA of {len} bytes on stream {stream} {why} (stream window {window}, connection window {connection_window})"),
            ));
        }
        delivered.window -= len;
        self.connection_window -= len;
        Ok(())
    }

    fn begin_headers(&mut self, current: Current) -> Result<(), Violation> {
        let Current { offset, stream, flags, .. } = current;
        if stream == 0 || stream % 2 == 0 {
            return Err(self.violation(offset, format!("HEADERS on stream {stream}, not a client stream")));
        }
        let initial_window = self.initial_window;
        let opening = !self.streams.contains_key(&stream);
        if opening && stream <= self.last_stream {
            return Err(self.violation(offset, format!("stream {stream} opened after stream {}", self.last_stream)));
        }
        let delivered =
            self.streams.entry(stream).or_insert_with(|| Delivered { window: initial_window, ..Delivered::default() });
        let why = if delivered.end_stream {
            Some("after END_STREAM")
        } else if delivered.reset.is_some() {
            Some("after RST_STREAM")
        } else if !opening && flags & flag::END_STREAM == 0 {
            Some("as trailers without END_STREAM")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(self.violation(offset, format!("HEADERS on stream {stream} {why}")));
        }
        delivered.header_blocks += 1;
        if opening {
            self.last_stream = stream;
        }
        if flags & flag::END_HEADERS == 0 {
            self.continuation = Some(stream);
        }
        Ok(())
    }

    fn read_payload(&mut self, mut current: Current, bytes: &[u8]) -> Result<(), Violation> {
        let start = current.read;
        current.read += bytes.len();
        self.current = Some(current);
        match current.kind {
            kind::DATA => {
                let mut body = bytes;
                if current.flags & flag::PADDED != 0 && start == 0 {
                    let pad = usize::from(bytes[0]);
                    if pad + 1 > current.len {
                        return Err(self.violation(
                            current.offset,
                            format!("DATA pad length {pad} exceeds its payload of {}", current.len),
                        ));
                    }
                    current.padding = pad;
                    self.current = Some(current);
                    body = &bytes[1..];
                }
                // Bytes past `len - padding` are padding.
                let data_end = current.len - current.padding;
                let body_start = current.read - body.len();
                let data_len = data_end.saturating_sub(body_start).min(body.len());
                if let Some(delivered) = self.streams.get_mut(&current.stream) {
                    delivered.bytes += data_len as u64;
                    delivered.checksum.update(&body[..data_len]);
                }
            }
            kind::RST_STREAM | kind::WINDOW_UPDATE | kind::SETTINGS => self.control.extend_from_slice(bytes),
            _ => {}
        }
        Ok(())
    }

    fn end_frame(&mut self, current: Current) -> Result<(), Violation> {
        let Current { offset, kind, flags, stream, len, .. } = current;
        match kind {
            kind::DATA => {
                self.counts.data += 1;
                self.connection_unacked += len as i64;
                if let Some(delivered) = self.streams.get_mut(&stream) {
                    if delivered.unacked == 0 && len > 0 {
                        self.unacked_streams.push(stream);
                    }
                    delivered.unacked += len as i64;
                    if flags & flag::END_STREAM != 0 {
                        delivered.end_stream = true;
                        self.ended.push(stream);
                    }
                }
            }
            kind::HEADERS | kind::CONTINUATION => {
                if kind == kind::HEADERS {
                    self.counts.headers += 1;
                } else {
                    self.counts.continuation += 1;
                }
                let stream_ends = kind == kind::HEADERS && flags & flag::END_STREAM != 0;
                if let Some(delivered) = self.streams.get_mut(&stream) {
                    if stream_ends && !delivered.end_stream {
                        self.ended.push(stream);
                    }
                    delivered.end_stream |= stream_ends;
                }
                if flags & flag::END_HEADERS != 0 {
                    self.continuation = None;
                }
            }
            kind::RST_STREAM => {
                self.counts.rst_stream += 1;
                let code = self.control_u32(offset, "RST_STREAM")?;
                let Some(delivered) = self.streams.get_mut(&stream) else {
                    return Err(
                        self.violation(offset, format!("RST_STREAM on stream {stream}, which was never opened"))
                    );
                };
                delivered.reset = Some(code);
            }
            kind::WINDOW_UPDATE => {
                self.counts.other += 1;
                let increment = self.control_u32(offset, "WINDOW_UPDATE")? & 0x7fff_ffff;
                if increment == 0 {
                    return Err(self.violation(offset, "WINDOW_UPDATE with a zero increment"));
                }
            }
            kind::SETTINGS => {
                self.counts.other += 1;
                let ack = flags & flag::ACK != 0;
                if (ack && len != 0) || len % 6 != 0 {
                    return Err(self.violation(offset, format!("SETTINGS payload of {len} bytes (ack: {ack})")));
                }
            }
            kind::PING if len != 8 => return Err(self.violation(offset, format!("PING payload of {len} bytes"))),
            kind::PRIORITY if len != 5 => {
                return Err(self.violation(offset, format!("PRIORITY payload of {len} bytes")));
            }
            kind::GOAWAY if len < 8 => return Err(self.violation(offset, format!("GOAWAY payload of {len} bytes"))),
            _ => self.counts.other += 1,
        }
        Ok(())
    }

    /// The 4-byte payload of the control frame just read.
    fn control_u32(&self, offset: u64, name: &str) -> Result<u32, Violation> {
        match <[u8; 4]>::try_from(self.control.as_slice()) {
            Ok(bytes) => Ok(u32::from_be_bytes(bytes)),
            Err(_) => {
                Err(self.violation(offset, format!("{name} payload of {} bytes, expected 4", self.control.len())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame as RFC 9113 §4.1 lays it out, built by hand.
    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn opened(streams: &[u32], window: u32) -> (Peer, Vec<u8>) {
        let mut wire = PREFACE.to_vec();
        for &stream in streams {
            wire.extend(frame(kind::HEADERS, flag::END_HEADERS, stream, &[0x82]));
        }
        (Peer::new(16_384, window), wire)
    }

    fn crc(bytes: &[u8]) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(bytes);
        hasher.finalize()
    }

    #[test]
    fn reassembles_data_split_at_every_byte_and_skips_padding() {
        let (_, mut wire) = opened(&[1, 3], 65_535);
        wire.extend(frame(kind::DATA, 0, 1, b"hello "));
        wire.extend(frame(kind::DATA, 0, 3, b"other"));
        // PADDED: pad length 3, data "world", then 3 bytes of padding.
        wire.extend(frame(kind::DATA, flag::PADDED | flag::END_STREAM, 1, b"\x03world\0\0\0"));
        let mut whole = Peer::new(16_384, 65_535);
        whole.read(&wire).unwrap();
        let mut bytewise = Peer::new(16_384, 65_535);
        for byte in &wire {
            bytewise.read(std::slice::from_ref(byte)).unwrap();
        }
        for peer in [&whole, &bytewise] {
            let one = peer.delivered(1).unwrap();
            assert_eq!((one.bytes, one.checksum.clone().finalize(), one.end_stream), (11, crc(b"hello world"), true));
            let three = peer.delivered(3).unwrap();
            assert_eq!((three.bytes, three.checksum.clone().finalize(), three.end_stream), (5, crc(b"other"), false));
            assert_eq!(peer.counts().data, 3);
            assert_eq!(peer.counts().headers, 2);
            assert_eq!(peer.wire_bytes(), wire.len() as u64);
        }
        // Padding counts against flow control: 6 + 9 bytes of stream 1, 5 of stream 3.
        let mut updates = Vec::new();
        whole.window_updates(1, &mut updates);
        assert_eq!(updates, vec![(3, 5), (0, 20)], "stream 1 ended, so only stream 3 and the connection get updates");
    }

    #[test]
    fn flow_control_violations_are_caught() {
        let (mut peer, mut wire) = opened(&[1], 10);
        wire.extend(frame(kind::DATA, 0, 1, &[7; 10]));
        peer.read(&wire).unwrap();
        let err = peer.read(&frame(kind::DATA, 0, 1, &[7; 1])).unwrap_err();
        assert!(err.reason.contains("stream's flow-control window"), "{err}");

        // The connection window (65,535) binds across streams.
        let (mut peer, mut wire) = opened(&[1, 3], 60_000);
        wire.extend(frame(kind::DATA, 0, 1, &[0; 16_384]));
        wire.extend(frame(kind::DATA, 0, 1, &[0; 16_384]));
        wire.extend(frame(kind::DATA, 0, 3, &[0; 16_384]));
        peer.read(&wire).unwrap();
        let err = peer.read(&frame(kind::DATA, 0, 3, &[0; 16_384])).unwrap_err();
        assert!(err.reason.contains("connection's flow-control window"), "{err}");
    }

    #[test]
    fn window_updates_restore_windows_and_honour_stalls() {
        let (mut peer, mut wire) = opened(&[1, 3], 100);
        wire.extend(frame(kind::DATA, 0, 1, &[1; 100]));
        wire.extend(frame(kind::DATA, 0, 3, &[1; 40]));
        peer.read(&wire).unwrap();
        peer.stall_stream(3, 5);
        peer.stall_connection(2);
        let mut updates = Vec::new();
        peer.window_updates(1, &mut updates);
        assert_eq!(updates, vec![(1, 100)]);
        // Stream 1 has its window back: another 100 bytes are within it.
        peer.read(&frame(kind::DATA, 0, 1, &[1; 100])).unwrap_or_else(|e| panic!("{e}"));
        updates.clear();
        peer.window_updates(2, &mut updates);
        assert_eq!(updates, vec![(1, 100), (0, 240)]);
        updates.clear();
        peer.window_updates(5, &mut updates);
        assert_eq!(updates, vec![(3, 40)], "stream 3's stall ends at tick 5");
    }

    #[test]
    fn stream_state_and_sequencing_errors_are_caught() {
        let cases: [(&str, Vec<u8>); 7] = [
            ("never opened", frame(kind::DATA, 0, 7, b"x")),
            (
                "after END_STREAM",
                [frame(kind::DATA, flag::END_STREAM, 1, b"x"), frame(kind::DATA, 0, 1, b"y")].concat(),
            ),
            (
                "after RST_STREAM",
                [frame(kind::RST_STREAM, 0, 1, &[0, 0, 0, 8]), frame(kind::DATA, 0, 1, b"y")].concat(),
            ),
            (
                "inside the header block of stream 9",
                [frame(kind::HEADERS, 0, 9, &[0x82]), frame(kind::DATA, 0, 1, b"y")].concat(),
            ),
            ("stream 3 opened after stream 5", frame(kind::HEADERS, flag::END_HEADERS, 3, &[0x82])),
            ("exceeds the peer's MAX_FRAME_SIZE", frame(kind::DATA, 0, 1, &[0; 16_385])),
            ("trailers without END_STREAM", frame(kind::HEADERS, flag::END_HEADERS, 1, &[0x82])),
        ];
        for (expected, bytes) in cases {
            let (mut peer, wire) = opened(&[1, 5], 1 << 20);
            peer.read(&wire).unwrap();
            let err = peer.read(&bytes).expect_err(expected);
            assert!(err.to_string().contains(expected), "expected {expected:?}, got {err}");
        }
        let mut peer = Peer::new(16_384, 100);
        let err = peer.read(b"PRI * HTTP/1.1\r\n").unwrap_err();
        assert!(err.reason.contains("preface"), "{err}");
    }
}
