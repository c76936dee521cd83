//! The HPACK static table (RFC 7541 Appendix A) and how the encoder's
//! indexing policy treats each well-known name.

/// Number of static entries; dynamic indexes start right after them.
pub(super) const LEN: usize = 61;

/// Static entries: HPACK index `i` (1-based) is `ENTRIES[i - 1]`.
const ENTRIES: [(&[u8], &[u8]); LEN] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// How the indexing policy treats a field name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NameClass {
    /// Indexed when the entry is small enough for the table.
    Ordinary,
    /// Its value is usually unique to one message, so a table entry would
    /// only push out useful ones: `:path`, `age`, `content-length`, `etag`,
    /// `if-modified-since`, `if-none-match`, `location`, `set-cookie` (the
    /// list nghttp2 uses). `date` is not here: it repeats within a second.
    Unique,
    /// Credentials (`authorization`, `proxy-authorization`): always a
    /// never-indexed literal (RFC 7541 §7.1.3).
    Credential,
    /// `cookie`: a never-indexed literal when the value is shorter than
    /// [`SHORT_COOKIE`] bytes, as a short value is easy to guess (§7.1.3).
    Cookie,
}

/// Cookie values shorter than this are never indexed.
pub(super) const SHORT_COOKIE: usize = 20;

/// What the static table and the policy know about one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NameInfo {
    /// HPACK index of the first static entry with this name, 0 if none.
    pub index: usize,
    /// Number of consecutive static entries with this name.
    pub count: usize,
    /// Indexing policy class.
    pub class: NameClass,
}

/// Looks `name` up in the static table.
pub(super) fn name_info(name: &[u8]) -> NameInfo {
    use NameClass::{Cookie, Credential, Ordinary, Unique};
    let (index, count, class) = match name {
        b":authority" => (1, 1, Ordinary),
        b":method" => (2, 2, Ordinary),
        b":path" => (4, 2, Unique),
        b":scheme" => (6, 2, Ordinary),
        b":status" => (8, 7, Ordinary),
        b"accept-charset" => (15, 1, Ordinary),
        b"accept-encoding" => (16, 1, Ordinary),
        b"accept-language" => (17, 1, Ordinary),
        b"accept-ranges" => (18, 1, Ordinary),
        b"accept" => (19, 1, Ordinary),
        b"access-control-allow-origin" => (20, 1, Ordinary),
        b"age" => (21, 1, Unique),
        b"allow" => (22, 1, Ordinary),
        b"authorization" => (23, 1, Credential),
        b"cache-control" => (24, 1, Ordinary),
        b"content-disposition" => (25, 1, Ordinary),
        b"content-encoding" => (26, 1, Ordinary),
        b"content-language" => (27, 1, Ordinary),
        b"content-length" => (28, 1, Unique),
        b"content-location" => (29, 1, Ordinary),
        b"content-range" => (30, 1, Ordinary),
        b"content-type" => (31, 1, Ordinary),
        b"cookie" => (32, 1, Cookie),
        b"date" => (33, 1, Ordinary),
        b"etag" => (34, 1, Unique),
        b"expect" => (35, 1, Ordinary),
        b"expires" => (36, 1, Ordinary),
        b"from" => (37, 1, Ordinary),
        b"host" => (38, 1, Ordinary),
        b"if-match" => (39, 1, Ordinary),
        b"if-modified-since" => (40, 1, Unique),
        b"if-none-match" => (41, 1, Unique),
        b"if-range" => (42, 1, Ordinary),
        b"if-unmodified-since" => (43, 1, Ordinary),
        b"last-modified" => (44, 1, Ordinary),
        b"link" => (45, 1, Ordinary),
        b"location" => (46, 1, Unique),
        b"max-forwards" => (47, 1, Ordinary),
        b"proxy-authenticate" => (48, 1, Ordinary),
        b"proxy-authorization" => (49, 1, Credential),
        b"range" => (50, 1, Ordinary),
        b"referer" => (51, 1, Ordinary),
        b"refresh" => (52, 1, Ordinary),
        b"retry-after" => (53, 1, Ordinary),
        b"server" => (54, 1, Ordinary),
        b"set-cookie" => (55, 1, Unique),
        b"strict-transport-security" => (56, 1, Ordinary),
        b"transfer-encoding" => (57, 1, Ordinary),
        b"user-agent" => (58, 1, Ordinary),
        b"vary" => (59, 1, Ordinary),
        b"via" => (60, 1, Ordinary),
        b"www-authenticate" => (61, 1, Ordinary),
        _ => (0, 0, Ordinary),
    };
    NameInfo { index, count, class }
}

/// HPACK index of the static entry equal to (`name`, `value`), given
/// `name`'s [`NameInfo`].
pub(super) fn find_field(info: &NameInfo, value: &[u8]) -> Option<usize> {
    let first = info.index.checked_sub(1)?;
    let entries = ENTRIES.get(first..first + info.count)?;
    let offset = entries.iter().position(|&(_, v)| v == value)?;
    Some(info.index + offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name_info` must agree with `ENTRIES`: first index and run length of
    /// every static name, and nothing for a name outside the table.
    #[test]
    fn name_info_matches_entries() {
        for (i, &(name, _)) in ENTRIES.iter().enumerate() {
            let first = ENTRIES.iter().position(|&(n, _)| n == name).unwrap();
            let count = ENTRIES.iter().filter(|&&(n, _)| n == name).count();
            let info = name_info(name);
            assert_eq!((info.index, info.count), (first + 1, count), "{}", String::from_utf8_lossy(name));
            assert!(i < first + count);
        }
        assert_eq!(name_info(b"x-custom").index, 0);
        assert_eq!(name_info(b":protocol").index, 0);
    }

    #[test]
    fn find_field_returns_the_exact_static_entry() {
        assert_eq!(find_field(&name_info(b":method"), b"POST"), Some(3));
        assert_eq!(find_field(&name_info(b":status"), b"500"), Some(14));
        assert_eq!(find_field(&name_info(b":status"), b"302"), None);
        assert_eq!(find_field(&name_info(b"accept-encoding"), b"gzip, deflate"), Some(16));
        assert_eq!(find_field(&name_info(b"www-authenticate"), b""), Some(61));
        assert_eq!(find_field(&name_info(b"x-custom"), b""), None);
    }
}
