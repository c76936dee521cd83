//! RFC 7541 HPACK encoder with RFC 9113 §8.2 field validation.

use bytes::BufMut;

/// Default SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// One header field to encode. `sensitive` fields are never indexed
/// (RFC 7541 §6.2.3) and never emitted as a table reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderField<'a> {
    /// Field name (lowercase token, or a pseudo-header such as `:path`).
    pub name: &'a [u8],
    /// Field value.
    pub value: &'a [u8],
    /// Encode as a never-indexed literal.
    pub sensitive: bool,
}

/// Why a header list was refused. Nothing was encoded and the encoder's
/// table is unchanged when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// Field name empty, not lowercase, or not a token.
    #[error("header name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// Field value with NUL/CR/LF or leading/trailing whitespace.
    #[error("header {name:?}: value {reason}")]
    InvalidValue { name: String, reason: &'static str },
    /// A connection-specific field (RFC 9113 §8.2.2).
    #[error("header {name:?} is connection-specific and not allowed in HTTP/2")]
    ConnectionSpecific { name: String },
    /// An unknown, repeated or misplaced pseudo-header field.
    #[error("pseudo-header {name:?}: {reason}")]
    PseudoHeader { name: String, reason: &'static str },
}

/// HPACK encoder: owns the dynamic table and the pending table-size updates.
#[derive(Debug)]
pub struct Encoder {}

impl Encoder {
    /// Encoder with the default table size (4096) and encoder-side cap.
    pub fn new() -> Self {
        todo!("hpack layer")
    }

    /// Records the peer's SETTINGS_HEADER_TABLE_SIZE; the size update goes out
    /// at the start of the next header block (smallest seen, then final).
    pub fn set_peer_table_size(&mut self, size: u32) {
        let _ = size;
        todo!("hpack layer")
    }

    /// Validates `fields`, then appends their header block to `dst`. On error
    /// nothing is written and the table is unchanged.
    pub fn encode(&mut self, fields: &[HeaderField<'_>], dst: &mut impl BufMut) -> Result<usize, HpackError> {
        let _ = (fields, dst);
        todo!("hpack layer")
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

/// An owned header list, built from raw bytes or from `http` types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderList {}

impl HeaderList {
    /// Empty list.
    pub fn new() -> Self {
        todo!("hpack layer")
    }
    /// Appends a field (`sensitive`: never indexed).
    pub fn push(&mut self, name: &[u8], value: &[u8], sensitive: bool) {
        let _ = (name, value, sensitive);
        todo!("hpack layer")
    }
    /// Request pseudo-headers (`:method`, `:scheme`, `:authority`, `:path`)
    /// from `method` and `uri`, then `headers` (HeaderValue::is_sensitive kept).
    pub fn request(method: &http::Method, uri: &http::Uri, headers: &http::HeaderMap) -> Self {
        let _ = (method, uri, headers);
        todo!("hpack layer")
    }
    /// `:status` then `headers`.
    pub fn response(status: http::StatusCode, headers: &http::HeaderMap) -> Self {
        let _ = (status, headers);
        todo!("hpack layer")
    }
    /// Trailer fields from `headers`.
    pub fn trailers(headers: &http::HeaderMap) -> Self {
        let _ = headers;
        todo!("hpack layer")
    }
    /// Borrowed view for [`Encoder::encode`].
    pub fn fields(&self) -> Vec<HeaderField<'_>> {
        todo!("hpack layer")
    }
}
