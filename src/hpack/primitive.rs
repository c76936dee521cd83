//! RFC 7541 §5: integer and string literal representations.

use std::mem::MaybeUninit;

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
    let (bytes, len) = int_bytes(flags, prefix_bits, value);
    dst.put_slice(&bytes[..len]);
}

/// The bytes of `value` with an N-bit prefix (§5.1), and their number.
fn int_bytes(flags: u8, prefix_bits: u8, value: usize) -> ([u8; MAX_INT_LEN], usize) {
    let mut bytes = [0; MAX_INT_LEN];
    let prefix_max = (1usize << prefix_bits) - 1;
    if value < prefix_max {
        bytes[0] = flags | value as u8;
        return (bytes, 1);
    }
    bytes[0] = flags | prefix_max as u8;
    let mut len = 1;
    let mut rest = value - prefix_max;
    // `rest` has at most 64 bits: at most MAX_INT_LEN - 2 bytes of 7 bits
    // before this loop ends, then the last one.
    while rest >= 0x80 && len < MAX_INT_LEN - 1 {
        bytes[len] = 0x80 | (rest & 0x7f) as u8;
        rest >>= 7;
        len += 1;
    }
    bytes[len] = rest as u8;
    (bytes, len + 1)
}

/// Writes a string literal (§5.2), Huffman-coded as `huffman` says.
pub(super) fn put_string(dst: &mut impl BufMut, s: &[u8], huffman: Huffman) {
    let coded = match huffman {
        Huffman::Never => false,
        Huffman::WhenShorter => !s.is_empty() && put_huffman(dst, s, s.len() - 1),
        Huffman::Always => put_huffman(dst, s, huffman::max_len(s.len())),
    };
    if !coded {
        put_int(dst, 0x00, 7, s.len());
        dst.put_slice(s);
    }
}

/// Writes `s` as a Huffman-coded string literal if its code takes at most
/// `max_len` bytes; else writes nothing and returns false.
///
/// With room for the longest literal in `dst`'s next contiguous chunk (as
/// a buffer sized by [`max_string_len`] has), the code goes straight there
/// behind room for the longest length prefix, and coding stops as soon as
/// it is too long; the prefix is written once the length is known (the
/// code moving up if its prefix is shorter). Otherwise the code's length
/// is summed first, and the code put word by word.
fn put_huffman(dst: &mut impl BufMut, s: &[u8], max_len: usize) -> bool {
    let (_, head_room) = int_bytes(0x80, 7, max_len);
    // SAFETY: only initialised bytes are written through this slice.
    let room = unsafe { dst.chunk_mut().as_uninit_slice_mut() };
    let Some(body) = room.get_mut(head_room..head_room.saturating_add(max_len)) else {
        return put_huffman_word_by_word(dst, s, max_len);
    };
    let (words, _) = body.as_chunks_mut::<4>();
    let all_words = words.len();
    let mut free_words = words.iter_mut();
    let coded = huffman::encode(s, |word| free_words.next().map(|free| *free = word.map(MaybeUninit::new)).is_some());
    let mut len = 4 * (all_words - free_words.len());
    let Some((last, last_len)) = coded else { return false };
    let Some(tail) = body.get_mut(len..len + last_len) else { return false };
    tail.write_copy_of_slice(&last[..last_len]);
    len += last_len;
    let (head, head_len) = int_bytes(0x80, 7, len);
    if head_len < head_room {
        room.copy_within(head_room..head_room + len, head_len);
    }
    room[..head_len].write_copy_of_slice(&head[..head_len]);
    // SAFETY: the first `head_len + len` bytes of `chunk_mut` were written
    // just above.
    unsafe { dst.advance_mut(head_len + len) };
    true
}

/// [`put_huffman`] for a destination without the contiguous room.
fn put_huffman_word_by_word(dst: &mut impl BufMut, s: &[u8], max_len: usize) -> bool {
    let len = huffman::encoded_len(s);
    if len > max_len {
        return false;
    }
    put_int(dst, 0x80, 7, len);
    let coded = huffman::encode(s, |word| {
        dst.put_slice(&word);
        true
    });
    if let Some((last, last_len)) = coded {
        dst.put_slice(&last[..last_len]);
    }
    true
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
        // usize::MAX - 1 after the 1-bit prefix: 0x7e, then eight 0x7f
        // groups, then the top bit.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(int(0, 1, usize::MAX), [0x01, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    }

    /// A string literal as §5.2 defines it, from the code table bit by bit:
    /// Huffman-coded when `huffman` says so for the code's length.
    fn reference_literal(s: &[u8], huffman: Huffman) -> Vec<u8> {
        let mut bits: String = s
            .iter()
            .map(|&b| huffman::CODES[usize::from(b)])
            .map(|(code, len)| format!("{code:0len$b}", len = usize::from(len)))
            .collect();
        while !bits.len().is_multiple_of(8) {
            bits.push('1');
        }
        let code: Vec<u8> =
            (0..bits.len()).step_by(8).map(|i| u8::from_str_radix(&bits[i..i + 8], 2).unwrap()).collect();
        let coded = match huffman {
            Huffman::Never => false,
            Huffman::WhenShorter => code.len() < s.len(),
            Huffman::Always => true,
        };
        let (flags, body) = if coded { (0x80, code) } else { (0x00, s.to_vec()) };
        let mut out = int(flags, 7, body.len());
        out.extend_from_slice(&body);
        out
    }

    /// Both ways `put_string` codes (straight into contiguous room, and in
    /// pieces when the room is split) write the reference literal, for
    /// strings that Huffman shortens and that it does not, around the
    /// lengths where the length prefix grows (so the code moves up).
    #[test]
    fn literals_match_the_reference_whatever_the_room() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let lens = [
            0, 1, 2, 3, 4, 5, 7, 8, 31, 32, 33, 100, 126, 127, 128, 129, 150, 160, 200, 254, 255, 256, 300, 1000,
            20_000,
        ];
        for len in lens {
            for alphabet in [
                &b"0123456789abcdefghijklmnopqrstuvwxyz-./"[..],
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZ+/=_",
                b"\x00\x01\x80\xff~^|{}",
            ] {
                for _ in 0..4 {
                    let s: Vec<u8> = (0..len).map(|_| alphabet[next() as usize % alphabet.len()]).collect();
                    for huffman in [Huffman::WhenShorter, Huffman::Always, Huffman::Never] {
                        let want = reference_literal(&s, huffman);
                        let mut roomy = Vec::with_capacity(max_string_len(len, Huffman::Always));
                        put_string(&mut roomy, &s, huffman);
                        assert_eq!(roomy, want, "{huffman:?} {s:?}");
                        // One byte of room, then the rest: split room.
                        let mut first = [0u8; 1];
                        let mut rest = vec![0u8; want.len() - 1];
                        let mut split = (&mut first[..]).chain_mut(&mut rest[..]);
                        put_string(&mut split, &s, huffman);
                        assert_eq!([&first[..], &rest].concat(), want, "{huffman:?} {s:?}");
                    }
                }
            }
        }
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
