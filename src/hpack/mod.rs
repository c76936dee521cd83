//! RFC 7541 HPACK encoder with RFC 9113 §8.2 field validation.
//!
//! [`Encoder::encode`] checks a whole header list first (names, values,
//! pseudo-headers, connection-specific fields), then writes its header
//! block: indexed fields for full static or dynamic table matches, literals
//! otherwise (with an indexed name when there is one), inserted into the
//! dynamic table per [`Indexing`], never-indexed for sensitive fields.
//! Strings are Huffman-coded only when that is strictly shorter.

mod encoder;
mod huffman;
mod list;
mod primitive;
mod static_table;
mod table;
mod validate;

pub use encoder::{Encoder, EncoderConfig, Huffman, Indexing};
pub use list::{HeaderList, split_fields};
pub use validate::validate;

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
    /// `dst` has less room than the block may need in the worst case.
    #[error("output buffer has {available} bytes free, the header block may need {needed}")]
    BufferTooSmall { needed: usize, available: usize },
    /// A header list given as names and values back to back (see
    /// [`split_fields`]) whose field lengths do not add up to its bytes.
    #[error("header field lengths count {lengths} bytes, the list holds {bytes}")]
    FieldLengths { lengths: u64, bytes: usize },
}
