//! Writing validated frames. Nothing here checks or fails: [`write`] runs only
//! after [`super::validate`] accepted the frame and `dst` was found big enough.

use std::ops::Range;

use bytes::BufMut;

use super::flag::{ACK, END_HEADERS, END_STREAM, PADDED, PRIORITY};
use super::header::put_header;
use super::layout::{data_room_in, first_fragment_room, padding_len};
use super::validate::{PRIORITY_LEN, PROMISED_STREAM_LEN, SETTING_LEN};
use super::{Frame, FrameType, Priority};

/// Writes `frame` for a peer whose (checked) max frame size is `max_frame_size`.
pub(super) fn write(frame: &Frame<'_>, dst: &mut impl BufMut, max_frame_size: usize) {
    match *frame {
        Frame::Data { stream, data, end_stream, pad_length } => {
            write_data(dst, stream, data, end_stream, pad_length, max_frame_size);
        }
        Frame::Headers { stream, block, end_stream, priority, pad_length } => {
            let priority_bytes = priority.map(priority_fields);
            let flags = if end_stream { END_STREAM } else { 0 } | if priority.is_some() { PRIORITY } else { 0 };
            let fixed = priority_bytes.as_ref().map_or(&[][..], |bytes| &bytes[..]);
            let head = BlockHead { frame_type: FrameType::Headers, stream, flags, pad_length, fixed };
            write_header_block(dst, &head, block, max_frame_size);
        }
        Frame::Priority { stream, priority } => {
            put_header(dst, PRIORITY_LEN, FrameType::Priority as u8, 0, stream);
            dst.put_slice(&priority_fields(priority));
        }
        Frame::RstStream { stream, error_code } => {
            put_header(dst, 4, FrameType::RstStream as u8, 0, stream);
            dst.put_u32(error_code);
        }
        Frame::Settings { settings } => {
            put_header(dst, settings.len() * SETTING_LEN, FrameType::Settings as u8, 0, 0);
            for &(id, value) in settings {
                dst.put_u16(id);
                dst.put_u32(value);
            }
        }
        Frame::SettingsAck => put_header(dst, 0, FrameType::Settings as u8, ACK, 0),
        Frame::PushPromise { stream, promised_stream, block, pad_length } => {
            let promised: [u8; PROMISED_STREAM_LEN] = promised_stream.to_be_bytes();
            let head = BlockHead { frame_type: FrameType::PushPromise, stream, flags: 0, pad_length, fixed: &promised };
            write_header_block(dst, &head, block, max_frame_size);
        }
        Frame::Ping { opaque_data, ack } => {
            put_header(dst, opaque_data.len(), FrameType::Ping as u8, if ack { ACK } else { 0 }, 0);
            dst.put_slice(&opaque_data);
        }
        Frame::Goaway { last_stream_id, error_code, debug_data } => {
            put_header(dst, 8 + debug_data.len(), FrameType::Goaway as u8, 0, 0);
            dst.put_u32(last_stream_id);
            dst.put_u32(error_code);
            dst.put_slice(debug_data);
        }
        Frame::WindowUpdate { stream, increment } => {
            put_header(dst, 4, FrameType::WindowUpdate as u8, 0, stream);
            dst.put_u32(increment);
        }
        Frame::PriorityUpdate { prioritized_stream, field_value } => {
            put_header(dst, 4 + field_value.len(), FrameType::PriorityUpdate as u8, 0, 0);
            dst.put_u32(prioritized_stream);
            dst.put_slice(field_value);
        }
        Frame::Extension { frame_type, flags, stream, payload } => {
            put_header(dst, payload.len(), frame_type, flags, stream);
            dst.put_slice(payload);
        }
    }
}

/// The 5 priority bytes: E bit + 31-bit dependency, then the on-wire weight.
fn priority_fields(priority: Priority) -> [u8; PRIORITY_LEN] {
    let exclusive = if priority.exclusive { 1 << 31 } else { 0 };
    let [d0, d1, d2, d3] = (priority.stream_dependency | exclusive).to_be_bytes();
    [d0, d1, d2, d3, priority.weight]
}

/// DATA frames of at most `data_room_in` data bytes each, every one padded
/// alike, END_STREAM on the last. Per frame: a header, then `put_slice` of the
/// chunk (plus the pad octet and zero pad bytes when padded).
fn write_data(
    dst: &mut impl BufMut,
    stream: u32,
    data: &[u8],
    end_stream: bool,
    pad_length: Option<u8>,
    max_frame_size: usize,
) {
    let padded = if pad_length.is_some() { PADDED } else { 0 };
    for (piece, last) in data_pieces(data.len(), data_room_in(pad_length, max_frame_size)) {
        let chunk = &data[piece];
        let flags = padded | if last && end_stream { END_STREAM } else { 0 };
        put_header(dst, chunk.len() + padding_len(pad_length), FrameType::Data as u8, flags, stream);
        match pad_length {
            Some(pad) => {
                dst.put_u8(pad);
                dst.put_slice(chunk);
                dst.put_bytes(0, usize::from(pad));
            }
            None => dst.put_slice(chunk),
        }
    }
}

/// The frame headers alone of unpadded DATA carrying `data_len` bytes.
pub(super) fn write_data_headers(
    dst: &mut impl BufMut,
    stream: u32,
    data_len: usize,
    end_stream: bool,
    max_frame_size: usize,
) {
    for (piece, last) in data_pieces(data_len, max_frame_size) {
        put_header(dst, piece.len(), FrameType::Data as u8, if last && end_stream { END_STREAM } else { 0 }, stream);
    }
}

/// Where `len` data bytes are cut into DATA frames of at most `room` bytes
/// (one empty frame for none), and whether each piece is the last.
fn data_pieces(len: usize, room: usize) -> impl Iterator<Item = (Range<usize>, bool)> {
    let frames = len.div_ceil(room).max(1);
    (0..frames).map(move |index| {
        let start = index * room;
        (start..len.min(start + room), index + 1 == frames)
    })
}

/// What goes in the first frame of a header block besides the block itself.
struct BlockHead<'a> {
    /// HEADERS or PUSH_PROMISE.
    frame_type: FrameType,
    stream: u32,
    /// END_STREAM / PRIORITY as needed; PADDED and END_HEADERS are added here.
    flags: u8,
    pad_length: Option<u8>,
    /// Priority fields (HEADERS) or the promised stream (PUSH_PROMISE).
    fixed: &'a [u8],
}

/// The first frame filled to the full frame size (padding and fixed fields in
/// it only), then CONTINUATION frames of up to `max_frame_size` bytes;
/// END_HEADERS on the last frame only.
fn write_header_block(dst: &mut impl BufMut, head: &BlockHead<'_>, block: &[u8], max_frame_size: usize) {
    let room = first_fragment_room(head.pad_length, head.fixed.len(), max_frame_size);
    let (first, mut rest) = block.split_at(block.len().min(room));
    let mut flags = head.flags;
    if head.pad_length.is_some() {
        flags |= PADDED;
    }
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    let payload_len = padding_len(head.pad_length) + head.fixed.len() + first.len();
    put_header(dst, payload_len, head.frame_type as u8, flags, head.stream);
    if let Some(pad) = head.pad_length {
        dst.put_u8(pad);
    }
    dst.put_slice(head.fixed);
    dst.put_slice(first);
    if let Some(pad) = head.pad_length {
        dst.put_bytes(0, usize::from(pad));
    }
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(max_frame_size));
        let flags = if tail.is_empty() { END_HEADERS } else { 0 };
        put_header(dst, chunk.len(), FrameType::Continuation as u8, flags, head.stream);
        dst.put_slice(chunk);
        rest = tail;
    }
}
