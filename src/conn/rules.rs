//! Message rules a header block must follow before it may go out (RFC 9113
//! §8.1, §8.3, §8.4, RFC 8441 §4): the pseudo-header fields each kind of
//! block needs, what a declared `content-length` says, and the size the
//! peer's SETTINGS_MAX_HEADER_LIST_SIZE counts (§6.5.2). Names, values and
//! pseudo-header order are the HPACK layer's checks (`hpack::validate`).

use super::Error;
use super::error::Rule;
use crate::hpack::HeaderField;

/// What a header block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Block {
    /// A client's request.
    Request,
    /// A server's response (informational or final).
    Response,
    /// The request a PUSH_PROMISE carries.
    Promise,
    /// Trailers: no pseudo-header field at all.
    Trailers,
}

/// What the checks learned of a valid block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Checked {
    /// A 1xx response: the final response is still to come.
    pub(super) informational: bool,
    /// The declared `content-length`, if any.
    pub(super) content_length: Option<u64>,
}

/// The peer's limits that header blocks must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PeerLimits {
    /// SETTINGS_MAX_HEADER_LIST_SIZE (unlimited until the peer says).
    pub(super) max_header_list_size: u32,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441).
    pub(super) connect_protocol: bool,
}

impl Default for PeerLimits {
    fn default() -> Self {
        Self { max_header_list_size: u32::MAX, connect_protocol: false }
    }
}

/// Checks `fields` as a `block` on `stream` under the peer's `limits`.
pub(super) fn check(
    stream: u32,
    block: Block,
    fields: &[HeaderField<'_>],
    limits: PeerLimits,
) -> Result<Checked, Error> {
    let refuse = |rule| Err(Error::Refused { stream, rule });
    let size = fields.iter().map(|f| f.name.len() as u64 + f.value.len() as u64 + 32).sum::<u64>();
    if size > u64::from(limits.max_header_list_size) {
        return refuse(Rule::HeaderListSize { size, limit: limits.max_header_list_size });
    }
    let pseudo = |name: &[u8]| fields.iter().find(|f| f.name == name).map(|f| f.value);
    let message = |reason| refuse(Rule::Message { reason });
    let mut checked = Checked { content_length: content_length(stream, fields)?, ..Checked::default() };
    match block {
        Block::Trailers => {
            if fields.iter().any(|f| f.name.first() == Some(&b':')) {
                return message("trailers carry no pseudo-header field (§8.1)");
            }
        }
        Block::Response => {
            let Some(status) = pseudo(b":status") else { return message("a response needs :status (§8.3.2)") };
            if status == b"101" {
                return message("HTTP/2 has no 101 Switching Protocols (§8.6)");
            }
            checked.informational = status.first() == Some(&b'1');
        }
        Block::Request | Block::Promise => {
            if pseudo(b":status").is_some() {
                return message("a request carries no :status (§8.3.1)");
            }
            let Some(method) = pseudo(b":method") else { return message("a request needs :method (§8.3.1)") };
            let protocol = pseudo(b":protocol");
            if block == Block::Promise && !matches!(method, b"GET" | b"HEAD") {
                return message("a promised request is safe and cacheable: GET or HEAD (§8.4)");
            }
            if block == Block::Promise && checked.content_length.is_some_and(|len| len > 0) {
                return message("a promised request carries no content (§8.4.1)");
            }
            if method == b"CONNECT" && protocol.is_none() {
                if pseudo(b":scheme").is_some() || pseudo(b":path").is_some() {
                    return message("CONNECT carries no :scheme or :path (§8.5)");
                }
                if pseudo(b":authority").is_none_or(<[u8]>::is_empty) {
                    return message("CONNECT needs :authority (§8.5)");
                }
                return Ok(checked);
            }
            if protocol.is_some() {
                if method != b"CONNECT" {
                    return message(":protocol goes only with CONNECT (RFC 8441 §4)");
                }
                if !limits.connect_protocol {
                    return refuse(Rule::ExtendedConnect);
                }
            }
            if pseudo(b":scheme").is_none_or(<[u8]>::is_empty) {
                return message("a request needs :scheme (§8.3.1)");
            }
            match pseudo(b":path") {
                None | Some(b"") => return message("a request needs a non-empty :path (§8.3.1)"),
                Some(_) => {}
            }
            if pseudo(b":authority").is_none_or(<[u8]>::is_empty) && !fields.iter().any(|f| f.name == b"host") {
                return message("a request needs :authority or host (§8.3.1)");
            }
        }
    }
    Ok(checked)
}

/// The value every `content-length` field of `fields` declares: digits
/// only, and the same in every field (RFC 9110 §8.6).
fn content_length(stream: u32, fields: &[HeaderField<'_>]) -> Result<Option<u64>, Error> {
    let mut declared = None;
    for field in fields.iter().filter(|f| f.name == b"content-length") {
        let value = std::str::from_utf8(field.value)
            .ok()
            .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|text| text.parse::<u64>().ok());
        match (value, declared) {
            (Some(value), None) => declared = Some(value),
            (Some(value), Some(earlier)) if value == earlier => {}
            _ => {
                return Err(Error::Refused {
                    stream,
                    rule: Rule::Message { reason: "content-length is one decimal number (RFC 9110 §8.6)" },
                });
            }
        }
    }
    Ok(declared)
}
