//! The 9-byte frame header (RFC 9113 §4.1).

use bytes::BufMut;

/// Writes a frame header: 24-bit payload length, type, flags, then the
/// stream identifier with the reserved bit clear. Callers pass a validated
/// `payload_len` (≤ 2^24 − 1) and `stream` (< 2^31).
pub(super) fn put_header(dst: &mut impl BufMut, payload_len: usize, frame_type: u8, flags: u8, stream: u32) {
    debug_assert!(payload_len < 1 << 24 && stream < 1 << 31);
    let [_, len_hi, len_mid, len_lo] = (payload_len as u32).to_be_bytes();
    let [s0, s1, s2, s3] = stream.to_be_bytes();
    dst.put_slice(&[len_hi, len_mid, len_lo, frame_type, flags, s0, s1, s2, s3]);
}
