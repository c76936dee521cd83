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
    if name.iter().any(|&b| !is_lowercase_tchar(b)) {
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

/// RFC 9113 §8.2.1: no NUL, CR or LF anywhere; no SP or HTAB at either end.
fn check_value(field: &HeaderField<'_>) -> Result<(), HpackError> {
    let error = |reason| Err(HpackError::InvalidValue { name: lossy(field.name), reason });
    let value = field.value;
    if has_nul_cr_or_lf(value) {
        return match value.iter().find(|&&b| b == 0 || b == b'\r' || b == b'\n') {
            Some(0) => error("contains NUL"),
            Some(b'\r') => error("contains CR"),
            _ => error("contains LF"),
        };
    }
    if value.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return error("starts with whitespace");
    }
    if value.last().is_some_and(|&b| b == b' ' || b == b'\t') {
        return error("ends with whitespace");
    }
    Ok(())
}

/// Whether `value` holds a NUL, CR or LF byte. Values are long and almost
/// always clean, so this scans 8 bytes at a time: `w - 0x01…01 & !w &
/// 0x80…80` is non-zero exactly when a byte of `w` is zero, and a byte equal
/// to `c` is a zero byte of `w ^ c…c`.
fn has_nul_cr_or_lf(value: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES * 0x80;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let (words, tail) = value.as_chunks::<8>();
    let found = words.iter().fold(0, |found, w| {
        let w = u64::from_le_bytes(*w);
        found | has_zero(w) | has_zero(w ^ (ONES * u64::from(b'\r'))) | has_zero(w ^ (ONES * u64::from(b'\n')))
    });
    found != 0 || tail.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n')
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

    /// The word-at-a-time scan agrees with a byte-by-byte one for every
    /// byte value at every position of the word part and of the tail, and
    /// next to other bytes (a borrow from one byte must not flag another).
    #[test]
    fn nul_cr_lf_scan_matches_bytewise() {
        for filler in [b'a', 0x01, 0x80, 0xff, b'\r'] {
            for len in [1, 7, 8, 9, 16, 21] {
                for pos in 0..len {
                    for b in 0..=255u8 {
                        let mut value = vec![filler; len];
                        value[pos] = b;
                        let bytewise = value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n');
                        assert_eq!(has_nul_cr_or_lf(&value), bytewise, "{value:?}");
                    }
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
