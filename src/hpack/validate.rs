//! RFC 9113 §8.2 field validation, run over a whole list before any byte
//! of it is encoded.

use super::{HeaderField, HpackError};

/// Checks a header list as [`super::Encoder::encode`] does before it writes
/// anything (RFC 9113 §8.2: names, values, pseudo-headers and
/// connection-specific fields), without encoding it.
pub fn validate(fields: &[HeaderField<'_>]) -> Result<(), HpackError> {
    let mut pseudo = PseudoState::default();
    for field in fields {
        if field.name.first() == Some(&b':') {
            pseudo.accept(field)?;
        } else {
            check_regular_name(field.name)?;
            pseudo.regular_seen = true;
            if is_connection_specific(field) {
                return Err(HpackError::ConnectionSpecific { name: lossy(field.name) });
            }
        }
        check_value(field)?;
    }
    Ok(())
}

/// Pseudo-header bookkeeping: which were seen, and whether a regular field was.
#[derive(Default)]
struct PseudoState {
    seen: u8,
    regular_seen: bool,
}

const METHOD: u8 = 1;
const SCHEME: u8 = 1 << 1;
const AUTHORITY: u8 = 1 << 2;
const PATH: u8 = 1 << 3;
const PROTOCOL: u8 = 1 << 4;
const STATUS: u8 = 1 << 5;
const REQUEST: u8 = METHOD | SCHEME | AUTHORITY | PATH | PROTOCOL;

impl PseudoState {
    fn accept(&mut self, field: &HeaderField<'_>) -> Result<(), HpackError> {
        let error = |reason| Err(HpackError::PseudoHeader { name: lossy(field.name), reason });
        let bit = match field.name {
            b":method" => METHOD,
            b":scheme" => SCHEME,
            b":authority" => AUTHORITY,
            b":path" => PATH,
            b":protocol" => PROTOCOL,
            b":status" => STATUS,
            _ => return error("is not a defined pseudo-header"),
        };
        if self.regular_seen {
            return error("follows a regular field");
        }
        if self.seen & bit != 0 {
            return error("appears more than once");
        }
        let other_kind = if bit == STATUS { REQUEST } else { STATUS };
        if self.seen & other_kind != 0 {
            return error("mixes request and response pseudo-headers");
        }
        self.seen |= bit;
        match bit {
            METHOD if field.value.is_empty() || !field.value.iter().all(|&b| is_tchar(b)) => {
                error("value is not a method token")
            }
            STATUS if !matches!(field.value, [b'1'..=b'9', b'0'..=b'9', b'0'..=b'9']) => {
                error("value is not a status code from 100 to 999")
            }
            _ => Ok(()),
        }
    }
}

fn check_regular_name(name: &[u8]) -> Result<(), HpackError> {
    let error = |reason| Err(HpackError::InvalidName { name: lossy(name), reason });
    if name.is_empty() {
        return error("is empty");
    }
    if any_word(name, has_uncommon_name_byte) && name.iter().any(|&b| !is_lowercase_tchar(b)) {
        if name.iter().any(u8::is_ascii_uppercase) {
            return error("contains an uppercase letter");
        }
        return error("contains a character that is not a token character");
    }
    Ok(())
}

/// RFC 9113 §8.2.2: `connection`, `keep-alive`, `proxy-connection`,
/// `transfer-encoding`, `upgrade`, and `te` with any value but `trailers`.
fn is_connection_specific(field: &HeaderField<'_>) -> bool {
    match field.name {
        b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade" => true,
        b"te" => field.value != b"trailers",
        _ => false,
    }
}

/// RFC 9113 §8.2.1 and RFC 9110 §5.5: no control byte but HTAB anywhere
/// (no NUL, CR or LF above all); no SP or HTAB at either end.
fn check_value(field: &HeaderField<'_>) -> Result<(), HpackError> {
    let error = |reason| Err(HpackError::InvalidValue { name: lossy(field.name), reason });
    let value = field.value;
    if any_word(value, has_control_byte) {
        match value.iter().find(|&&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            Some(0) => return error("contains NUL"),
            Some(b'\r') => return error("contains CR"),
            Some(b'\n') => return error("contains LF"),
            Some(_) => return error("contains a control byte (RFC 9110 §5.5)"),
            None => {} // an HTAB
        }
    }
    if value.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return error("starts with whitespace");
    }
    if value.last().is_some_and(|&b| b == b' ' || b == b'\t') {
        return error("ends with whitespace");
    }
    Ok(())
}

// Word-at-a-time checks. Names and values are almost always clean, so a
// cheap test over 8 bytes at a time proves that; only a field it cannot
// clear goes through the exact byte-by-byte check, which also names the
// error.

/// `0x01` in every byte: `ONES * b` repeats `b` in every byte of a word.
const ONES: u64 = u64::from_le_bytes([1; 8]);
/// The high bit of every byte.
const HIGHS: u64 = ONES * 0x80;

/// Whether `test` is non-zero for some 8-byte little-endian word of
/// `bytes`: its whole words, then, if bytes are left over, [`last_word`].
/// Every byte of `bytes` lands in a word and every byte of a word is a byte
/// of `bytes`, so a test that is non-zero when some byte of its word is bad
/// tells whether some byte of `bytes` is.
fn any_word(bytes: &[u8], test: impl Fn(u64) -> u64) -> bool {
    let (words, tail) = bytes.as_chunks::<8>();
    let found = words.iter().fold(0, |found, word| found | test(u64::from_le_bytes(*word)));
    found != 0 || (!tail.is_empty() && test(last_word(bytes)) != 0)
}

/// A word read from the end of `bytes` (not empty) whose every byte is a
/// byte of `bytes`: its last 8 bytes or, when it is shorter, its first and
/// last 4, 2 or 1 bytes side by side, so the word holds all of them.
fn last_word(bytes: &[u8]) -> u64 {
    if let Some(last) = bytes.last_chunk::<8>() {
        u64::from_le_bytes(*last)
    } else if let (Some(first), Some(last)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        u64::from(u32::from_le_bytes(*first)) | u64::from(u32::from_le_bytes(*last)) << 32
    } else if let (Some(first), Some(last)) = (bytes.first_chunk::<2>(), bytes.last_chunk::<2>()) {
        let half = u64::from(u16::from_le_bytes(*first)) | u64::from(u16::from_le_bytes(*last)) << 16;
        half | half << 32
    } else {
        bytes.first().map_or(0, |&b| ONES * u64::from(b))
    }
}

/// Non-zero when some byte of `word` is below 0x20 or is 0x7f (DEL). The
/// lowest byte below 0x20 wraps in `word - 0x20…20` to a high bit that
/// `!word` keeps (a byte of 0x80 or more sets no bit: `!word` clears its
/// high bit); DEL is a zero byte of `word ^ 0x7f…7f`, found the same way.
/// Zero proves `word` free of control bytes; HTAB (0x09), which a value
/// may hold, takes the exact check.
fn has_control_byte(word: u64) -> u64 {
    let del = word ^ (ONES * 0x7f);
    (word.wrapping_sub(ONES * 0x20) & !word | del.wrapping_sub(ONES) & !del) & HIGHS
}

/// Non-zero when some byte of `word` is not `-`, `^`, `_`, `` ` `` or
/// `a`–`z`: the lowercase tchars nearly every field name is made of (names
/// with digits or other tchars take the exact check). Zero proves every byte
/// of `word` a lowercase tchar.
fn has_uncommon_name_byte(word: u64) -> u64 {
    let low = word & !HIGHS;
    let common = in_range(low, b'-', b'-') | in_range(low, b'^', b'z');
    (word | !common) & HIGHS
}

/// Per byte of `low` (all below 0x80), the high bit set when the byte is in
/// `first..=last`: adding `0x80 - first` sets it for bytes from `first` on,
/// adding `0x7f - last` for bytes past `last`, and neither sum carries into
/// the next byte.
fn in_range(low: u64, first: u8, last: u8) -> u64 {
    (low + ONES * u64::from(0x80 - first)) & !(low + ONES * u64::from(0x7f - last))
}

/// RFC 9110 §5.6.2 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_uppercase() || is_lowercase_tchar(b)
}

/// A tchar that is not an uppercase letter: what an HTTP/2 field name may hold.
fn is_lowercase_tchar(b: u8) -> bool {
    LOWERCASE_TCHAR[usize::from(b)]
}

/// Per byte: whether it is a lowercase tchar.
const LOWERCASE_TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(
                c,
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
            );
        b += 1;
    }
    table
};

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that are not below 0x0e, by a byte-by-byte reading of the test.
    /// The set `has_control_byte` flags, spelled out.
    fn is_control(b: u8) -> bool {
        b < 0x20 || b == 0x7f
    }

    /// The set `has_uncommon_name_byte` clears, spelled out.
    fn is_common_name_byte(b: u8) -> bool {
        b.is_ascii_lowercase() || b"-^_`".contains(&b)
    }

    /// Each word test flags exactly the words holding a byte outside its
    /// set, for every byte value at every position, next to fillers inside
    /// and outside the set (a borrow or carry from one byte must not flag or
    /// hide another).
    #[test]
    fn word_tests_match_their_byte_definitions() {
        for filler in [b'a', b'-', b'z', 0x00, 0x0d, 0x1f, 0x20, b'/', b'A', 0x7e, 0x7f, 0x80, 0xff] {
            for pos in 0..8 {
                for b in 0..=255u8 {
                    let mut bytes = [filler; 8];
                    bytes[pos] = b;
                    let word = u64::from_le_bytes(bytes);
                    let control = bytes.iter().any(|&b| is_control(b));
                    assert_eq!(has_control_byte(word) != 0, control, "{bytes:?}");
                    let uncommon = bytes.iter().any(|&b| !is_common_name_byte(b));
                    assert_eq!(has_uncommon_name_byte(word) != 0, uncommon, "{bytes:?}");
                }
            }
        }
    }

    /// `any_word` sees every byte of slices of every length up to three
    /// words (whole words, the overlapping last word, short slices) and no
    /// byte that is not in the slice.
    #[test]
    fn any_word_sees_each_byte_and_no_other() {
        for filler in [b'a', 0xff] {
            for len in 0..=24 {
                assert!(!any_word(&vec![filler; len], has_control_byte), "len {len}");
                for pos in 0..len {
                    for b in 0..=255u8 {
                        let mut bytes = vec![filler; len];
                        bytes[pos] = b;
                        assert_eq!(any_word(&bytes, has_control_byte), is_control(b), "{bytes:?}");
                    }
                }
            }
        }
    }

    /// Byte-by-byte reading of RFC 9113 §8.2 for one regular field: the
    /// name (§8.2 lowercase, RFC 9110 tchar), connection-specific fields
    /// (§8.2.2), then the value (§8.2.1), each error as `validate` names it.
    fn reference_regular_field(name: &[u8], value: &[u8]) -> Result<(), HpackError> {
        reference_name(name)?;
        let connection_specific =
            [&b"connection"[..], b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"];
        if connection_specific.contains(&name) || (name == b"te" && value != b"trailers") {
            return Err(HpackError::ConnectionSpecific { name: lossy(name) });
        }
        reference_value(name, value)
    }

    fn reference_name(name: &[u8]) -> Result<(), HpackError> {
        let error = |reason| Err(HpackError::InvalidName { name: lossy(name), reason });
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() {
            error("is empty")
        } else if name.iter().any(u8::is_ascii_uppercase) {
            error("contains an uppercase letter")
        } else if !name.iter().all(|&b| tchar(b)) {
            error("contains a character that is not a token character")
        } else {
            Ok(())
        }
    }

    fn reference_value(name: &[u8], value: &[u8]) -> Result<(), HpackError> {
        let error = |reason| Err(HpackError::InvalidValue { name: lossy(name), reason });
        for &b in value {
            match b {
                0 => return error("contains NUL"),
                b'\r' => return error("contains CR"),
                b'\n' => return error("contains LF"),
                0x01..=0x08 | 0x0a..=0x1f | 0x7f => return error("contains a control byte (RFC 9110 §5.5)"),
                _ => {}
            }
        }
        match (value.first(), value.last()) {
            (Some(b' ' | b'\t'), _) => error("starts with whitespace"),
            (_, Some(b' ' | b'\t')) => error("ends with whitespace"),
            _ => Ok(()),
        }
    }

    mod fast_checks_match_reference {
        use proptest::collection::vec;
        use proptest::prelude::*;
        use proptest::sample::{Index, select};

        use super::*;

        /// Bytes a check must catch or let through: controls, whitespace,
        /// separators, DEL, non-ASCII, uppercase, and any byte at all.
        fn edge_byte() -> impl Strategy<Value = u8> {
            let edges = b"\0\r\n \t\x0b\x0c\x0e\x7f:/,;\"@[\\]{}()=?A".to_vec();
            prop_oneof![select(edges), 0x80..=0xffu8, b'A'..=b'Z', any::<u8>()]
        }

        /// Mostly clean bytes of any length up to five words, with up to
        /// three edge bytes dropped in at random places.
        fn bytes() -> impl Strategy<Value = Vec<u8>> {
            let clean = select(b"abcxyz0189-._^`!#$%&'*+|~".to_vec());
            (vec(clean, 0..40), vec((any::<Index>(), edge_byte()), 0..4)).prop_map(|(mut bytes, edits)| {
                for (at, b) in edits {
                    if !bytes.is_empty() {
                        let at = at.index(bytes.len());
                        bytes[at] = b;
                    }
                }
                bytes
            })
        }

        fn name() -> impl Strategy<Value = Vec<u8>> {
            let special = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"];
            prop_oneof![4 => bytes(), 1 => select(special.to_vec()).prop_map(|name| name.as_bytes().to_vec())]
        }

        fn value() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![4 => bytes(), 1 => Just(b"trailers".to_vec())]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

            /// The word-at-a-time name and value checks, and `validate` on
            /// one regular field, refuse exactly what the byte-by-byte
            /// reference refuses, with the same error.
            #[test]
            fn on_random_fields(name in name(), value in value()) {
                prop_assert_eq!(check_regular_name(&name), reference_name(&name));
                let field = HeaderField { name: &name, value: &value, sensitive: false };
                prop_assert_eq!(check_value(&field), reference_value(&name, &value));
                if name.first() != Some(&b':') {
                    prop_assert_eq!(validate(&[field]), reference_regular_field(&name, &value));
                }
            }
        }
    }

    #[test]
    fn lowercase_tchar_table_is_rfc_9110_tchar_minus_uppercase() {
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        for b in 0..=255u8 {
            assert_eq!(is_lowercase_tchar(b), tchar(b) && !b.is_ascii_uppercase(), "{b:#x}");
            assert_eq!(is_tchar(b), tchar(b), "{b:#x}");
        }
    }
}
