//! [`HeaderList`]: an owned header list in one byte buffer.

use super::{HeaderField, HpackError};

/// Cuts a header list held as every name and value back to back in `bytes`
/// into fields, given per field its name length, value length and
/// sensitivity, and appends them to `out` (the caller reserves room: this
/// only pushes). The form a host hands the component, two lists whatever
/// the number of fields.
///
/// Lengths that do not add up to exactly `bytes.len()` are
/// [`HpackError::FieldLengths`], and then `out` is unchanged.
pub fn split_fields<'a>(
    bytes: &'a [u8],
    lengths: impl Iterator<Item = (usize, usize, bool)> + Clone,
    out: &mut Vec<HeaderField<'a>>,
) -> Result<(), HpackError> {
    let total = lengths
        .clone()
        .fold(0u64, |sum, (name, value, _)| sum.saturating_add(name as u64).saturating_add(value as u64));
    if total != bytes.len() as u64 {
        return Err(HpackError::FieldLengths { lengths: total, bytes: bytes.len() });
    }
    let mut rest = bytes;
    for (name_len, value_len, sensitive) in lengths {
        let (name, tail) = rest.split_at(name_len);
        let (value, tail) = tail.split_at(value_len);
        out.push(HeaderField { name, value, sensitive });
        rest = tail;
    }
    Ok(())
}

/// An owned header list, built from raw bytes or from `http` types.
///
/// All names and values sit back to back in one buffer; each field keeps
/// only where its name and value end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderList {
    bytes: Vec<u8>,
    fields: Vec<FieldEnds>,
}

/// Where one field's name and value end in `HeaderList::bytes`; it starts
/// where the previous field's value ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldEnds {
    name_end: usize,
    value_end: usize,
    sensitive: bool,
}

impl HeaderList {
    /// Empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a field (`sensitive`: never indexed).
    pub fn push(&mut self, name: &[u8], value: &[u8], sensitive: bool) {
        self.bytes.extend_from_slice(name);
        let name_end = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.fields.push(FieldEnds { name_end, value_end: self.bytes.len(), sensitive });
    }

    /// Request pseudo-headers (`:method`, `:scheme`, `:authority`, `:path`)
    /// from `method` and `uri`, then `headers` (HeaderValue::is_sensitive kept).
    ///
    /// `:scheme` and `:authority` (without userinfo) appear when `uri` has
    /// them; `:path` is the path and query, `/` when empty. A CONNECT request gets only
    /// `:method` and `:authority` (RFC 9113 §8.5).
    pub fn request(method: &http::Method, uri: &http::Uri, headers: &http::HeaderMap) -> Self {
        // RFC 9113 §8.3.1: no userinfo in :authority.
        let authority =
            uri.authority().map(|a| a.as_str().rsplit_once('@').map_or(a.as_str(), |(_, host)| host).as_bytes());
        let uri_len = uri.scheme_str().map_or(0, str::len)
            + authority.map_or(0, <[u8]>::len)
            + uri.path_and_query().map_or(1, |p| p.as_str().len());
        // 29: the four pseudo-header names.
        let mut list = Self::with_capacity_for(headers, 4, 29 + method.as_str().len() + uri_len);
        list.push(b":method", method.as_str().as_bytes(), false);
        if method == http::Method::CONNECT {
            if let Some(authority) = authority {
                list.push(b":authority", authority, false);
            }
        } else {
            if let Some(scheme) = uri.scheme_str() {
                list.push(b":scheme", scheme.as_bytes(), false);
            }
            if let Some(authority) = authority {
                list.push(b":authority", authority, false);
            }
            let path = uri.path_and_query().map_or("", |p| p.as_str());
            list.push(b":path", if path.is_empty() { b"/" } else { path.as_bytes() }, false);
        }
        list.extend_from(headers);
        list
    }

    /// `:status` then `headers`.
    pub fn response(status: http::StatusCode, headers: &http::HeaderMap) -> Self {
        let mut list = Self::with_capacity_for(headers, 1, 10);
        list.push(b":status", status.as_str().as_bytes(), false);
        list.extend_from(headers);
        list
    }

    /// Trailer fields from `headers`.
    pub fn trailers(headers: &http::HeaderMap) -> Self {
        let mut list = Self::with_capacity_for(headers, 0, 0);
        list.extend_from(headers);
        list
    }

    /// Borrowed view for [`Encoder::encode`](super::Encoder::encode).
    pub fn fields(&self) -> Vec<HeaderField<'_>> {
        let mut start = 0;
        self.fields
            .iter()
            .map(|f| {
                let field = HeaderField {
                    name: &self.bytes[start..f.name_end],
                    value: &self.bytes[f.name_end..f.value_end],
                    sensitive: f.sensitive,
                };
                start = f.value_end;
                field
            })
            .collect()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the list has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Empty list with room for `headers` plus `extra_fields` fields of
    /// `extra_bytes` bytes in all.
    fn with_capacity_for(headers: &http::HeaderMap, extra_fields: usize, extra_bytes: usize) -> Self {
        let bytes = headers.iter().map(|(n, v)| n.as_str().len() + v.len()).sum::<usize>() + extra_bytes;
        Self { bytes: Vec::with_capacity(bytes), fields: Vec::with_capacity(headers.len() + extra_fields) }
    }

    fn extend_from(&mut self, headers: &http::HeaderMap) {
        for (name, value) in headers {
            self.push(name.as_str().as_bytes(), value.as_bytes(), value.is_sensitive());
        }
    }
}
