//! RFC 7541 §5: integer and string literal representations.

use bytes::BufMut;

use super::{Huffman, huffman};

/// Most bytes one integer can take: the prefix byte, then 7 bits a byte.
pub(super) const MAX_INT_LEN: usize = 1 + (usize::BITS as usize).div_ceil(7);

/// Most bytes a string literal of `len` bytes can take: its Huffman code
/// is at most 30 bits a byte (only [`Huffman::Always`] uses a longer one).
pub(super) fn max_string_len(len: usize, huffman: Huffman) -> usize {
    let body = if huffman == Huffman::Always { len.saturating_mul(4) } else { len };
    MAX_INT_LEN.saturating_add(body)
}

/// Writes `value` with an N-bit prefix (§5.1); `flags` holds the bits above
/// the prefix in the first byte.
pub(super) fn put_int(dst: &mut impl BufMut, flags: u8, prefix_bits: u8, value: usize) {
    let prefix_max = (1usize << prefix_bits) - 1;
    if value < prefix_max {
        dst.put_u8(flags | value as u8);
        return;
    }
    dst.put_u8(flags | prefix_max as u8);
    let mut rest = value - prefix_max;
    while rest >= 0x80 {
        dst.put_u8(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.put_u8(rest as u8);
}

/// Writes a string literal (§5.2), Huffman-coded as `huffman` says.
pub(super) fn put_string(dst: &mut impl BufMut, s: &[u8], huffman: Huffman) {
    if huffman != Huffman::Never {
        let coded_len = huffman::encoded_len(s);
        if coded_len < s.len() || huffman == Huffman::Always {
            put_int(dst, 0x80, 7, coded_len);
            huffman::encode(s, dst);
            return;
        }
    }
    put_int(dst, 0x00, 7, s.len());
    dst.put_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(flags: u8, prefix: u8, value: usize) -> Vec<u8> {
        let mut out = Vec::new();
        put_int(&mut out, flags, prefix, value);
        out
    }

    /// RFC 7541 C.1.1–C.1.3, and the edges of a prefix.
    #[test]
    fn integers_match_rfc_examples() {
        assert_eq!(int(0, 5, 10), [0x0a]); // C.1.1
        assert_eq!(int(0, 5, 1337), [0x1f, 0x9a, 0x0a]); // C.1.2
        assert_eq!(int(0, 8, 42), [0x2a]); // C.1.3
        assert_eq!(int(0x80, 7, 126), [0xfe]);
        assert_eq!(int(0x80, 7, 127), [0xff, 0x00]);
        assert_eq!(int(0x40, 6, 63), [0x7f, 0x00]);
        assert_eq!(int(0x20, 5, 4096), [0x3f, 0xe1, 0x1f]);
        assert!(int(0, 1, usize::MAX).len() <= MAX_INT_LEN);
    }

    #[test]
    fn strings_use_huffman_only_when_strictly_shorter() {
        let mut out = Vec::new();
        put_string(&mut out, b"www.example.com", Huffman::WhenShorter);
        // RFC 7541 C.4.1: 0x8c then 12 coded bytes.
        assert_eq!(out, [0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff]);
        out.clear();
        // Codes of 8 bits and more never make a string shorter.
        put_string(&mut out, b"&&", Huffman::WhenShorter);
        assert_eq!(out, [0x02, b'&', b'&']);
        out.clear();
        put_string(&mut out, b"&&", Huffman::Always);
        assert_eq!(out, [0x82, 0xf8, 0xf8]);
        out.clear();
        put_string(&mut out, b"www.example.com", Huffman::Never);
        assert_eq!(out[0], 15);
        assert_eq!(&out[1..], b"www.example.com");
    }
}
