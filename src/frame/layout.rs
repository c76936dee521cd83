//! How a DATA payload or a header block is cut into frames of the peer's
//! MAX_FRAME_SIZE, and how many wire bytes that takes.
//!
//! The functions taking a `max_frame_size: usize` expect a size already checked
//! by [`frame_size_checked`] (16384..=16777215): every fixed overhead here is at
//! most 261 bytes, so the subtractions below cannot underflow.

use super::{DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_LEN, FrameError, MAX_MAX_FRAME_SIZE};

/// Checks a peer's SETTINGS_MAX_FRAME_SIZE and returns it as a length.
pub(super) fn frame_size_checked(max_frame_size: u32) -> Result<usize, FrameError> {
    if (DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&max_frame_size) {
        Ok(frame_size(max_frame_size))
    } else {
        Err(FrameError::MaxFrameSize { value: max_frame_size })
    }
}

/// A checked max frame size as a length (at most 2^24 − 1, fits any usize ≥ 32 bits).
pub(super) fn frame_size(max_frame_size: u32) -> usize {
    max_frame_size as usize
}

/// Payload bytes a PADDED frame spends on padding: the Pad Length octet plus
/// the pad bytes; 0 when not padded.
pub(super) fn padding_len(pad_length: Option<u8>) -> usize {
    pad_length.map_or(0, |pad| 1 + usize::from(pad))
}

/// The most data bytes one DATA frame carries for a peer whose
/// SETTINGS_MAX_FRAME_SIZE is `max_frame_size`, with `pad_length` padding in
/// every frame (RFC 9113 §6.1: padding counts toward the frame size).
pub fn data_room(pad_length: Option<u8>, max_frame_size: u32) -> Result<usize, FrameError> {
    Ok(data_room_in(pad_length, frame_size_checked(max_frame_size)?))
}

/// [`data_room`] for a checked frame size.
pub(super) fn data_room_in(pad_length: Option<u8>, max_frame_size: usize) -> usize {
    max_frame_size - padding_len(pad_length)
}

/// Wire bytes of `data_len` data bytes sent as DATA frames: one frame when
/// empty, otherwise as many full frames as needed. Cannot overflow: a slice
/// holds at most `isize::MAX` bytes and framing adds under 2% to that.
pub(super) fn data_wire_len(data_len: usize, pad_length: Option<u8>, max_frame_size: usize) -> usize {
    let frames = data_len.div_ceil(data_room_in(pad_length, max_frame_size)).max(1);
    frames * (FRAME_HEADER_LEN + padding_len(pad_length)) + data_len
}

/// Header block bytes the first frame (HEADERS or PUSH_PROMISE) can hold after
/// its padding and `fixed_len` bytes of fixed fields (priority or promised stream).
pub(super) fn first_fragment_room(pad_length: Option<u8>, fixed_len: usize, max_frame_size: usize) -> usize {
    max_frame_size - padding_len(pad_length) - fixed_len
}

/// Wire bytes of a header block of `block_len` bytes sent as one HEADERS or
/// PUSH_PROMISE frame plus the CONTINUATION frames the rest needs.
pub(super) fn header_block_wire_len(
    block_len: usize,
    pad_length: Option<u8>,
    fixed_len: usize,
    max_frame_size: usize,
) -> usize {
    let first_room = first_fragment_room(pad_length, fixed_len, max_frame_size);
    let continuations = block_len.saturating_sub(first_room).div_ceil(max_frame_size);
    (1 + continuations) * FRAME_HEADER_LEN + padding_len(pad_length) + fixed_len + block_len
}
