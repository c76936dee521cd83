//! Frame scripts (docs/frame-script.md): JSON Lines, one operation a line,
//! parsed strictly and run through any [`Writer`].

use std::fmt;
use std::io::{BufRead, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use h2fw::conn::HeadersOptions;
use h2fw::frame::{Frame, Priority};
use h2fw::hpack::HeaderField;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::writer::{WriteError, Writer};

/// One script line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// The 24-byte client connection preface.
    Preface {},
    /// One SETTINGS frame.
    Settings { settings: Vec<(u16, u32)> },
    /// SETTINGS with ACK.
    SettingsAck {},
    /// What the peer advertised; writes nothing.
    PeerSettings { settings: Vec<(u16, u32)> },
    /// HEADERS (+ CONTINUATION), HPACK-encoded by the writer.
    Headers {
        stream: u32,
        headers: Vec<ScriptHeader>,
        #[serde(default)]
        end_stream: bool,
        #[serde(default)]
        priority: Option<ScriptPriority>,
        #[serde(default)]
        pad_length: Option<u8>,
    },
    /// DATA frames; exactly one of `data`, `data_b64`, `repeat`.
    Data {
        stream: u32,
        #[serde(default)]
        data: Option<String>,
        #[serde(default)]
        data_b64: Option<String>,
        #[serde(default)]
        repeat: Option<Repeat>,
        #[serde(default)]
        end_stream: bool,
        #[serde(default)]
        pad_length: Option<u8>,
    },
    /// PRIORITY.
    Priority {
        stream: u32,
        stream_dependency: u32,
        weight: u8,
        #[serde(default)]
        exclusive: bool,
    },
    /// RST_STREAM.
    RstStream { stream: u32, error_code: u32 },
    /// PUSH_PROMISE (+ CONTINUATION).
    PushPromise {
        stream: u32,
        promised_stream: u32,
        headers: Vec<ScriptHeader>,
        #[serde(default)]
        pad_length: Option<u8>,
    },
    /// PING.
    Ping {
        #[serde(default)]
        opaque_data: Option<String>,
        #[serde(default)]
        ack: bool,
    },
    /// GOAWAY.
    Goaway {
        last_stream_id: u32,
        error_code: u32,
        #[serde(default)]
        debug_data: String,
    },
    /// WINDOW_UPDATE.
    WindowUpdate { stream: u32, increment: u32 },
    /// One frame of an extension type.
    Raw { frame_type: u8, flags: u8, stream: u32, payload_b64: String },
}

/// A header field: `[name, value]` or `[name, value, sensitive]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptHeader {
    /// Field name.
    pub name: String,
    /// Field value.
    pub value: String,
    /// Never indexed.
    pub sensitive: bool,
}

impl<'de> Deserialize<'de> for ScriptHeader {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = ScriptHeader;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header [name, value] or [name, value, sensitive]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ScriptHeader, A::Error> {
                let name = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let value = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let sensitive = seq.next_element()?.unwrap_or(false);
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(4, &self));
                }
                Ok(ScriptHeader { name, value, sensitive })
            }
        }
        deserializer.deserialize_seq(HeaderVisitor)
    }
}

/// Priority fields of a `headers` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptPriority {
    /// Stream depended on.
    pub stream_dependency: u32,
    /// On-wire weight (RFC weight minus one).
    pub weight: u8,
    /// Exclusive flag.
    #[serde(default)]
    pub exclusive: bool,
}

impl From<ScriptPriority> for Priority {
    fn from(priority: ScriptPriority) -> Self {
        Priority {
            stream_dependency: priority.stream_dependency,
            weight: priority.weight,
            exclusive: priority.exclusive,
        }
    }
}

/// `len` copies of `byte`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    /// The byte.
    pub byte: u8,
    /// How many.
    pub len: usize,
}

/// Why a script stopped: the 1-based line and the reason.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ScriptError {
    /// Line number, from 1.
    pub line: usize,
    /// What was wrong.
    pub reason: ScriptFailure,
}

/// What stopped a script.
#[derive(Debug, thiserror::Error)]
pub enum ScriptFailure {
    /// The line is not a valid operation.
    #[error("{0}")]
    Parse(String),
    /// The writer refused the operation (or its runtime failed).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Reading the script or writing the output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Parses one non-blank, non-comment line.
pub fn parse_line(line: &str) -> Result<Op, String> {
    serde_json::from_str(line).map_err(|error| error.to_string())
}

/// Bytes asked for per `drain` call.
const DRAIN_CHUNK: usize = 1 << 20;

/// Runs `script` through `writer` line by line, writing every frame to `out`
/// after its line. Stops at the first bad or rejected line; the frames of
/// the lines before it are in `out` (flushed), whole. Returns the bytes written.
pub fn run(script: impl BufRead, writer: &mut dyn Writer, out: &mut impl Write) -> Result<u64, ScriptError> {
    let mut progress = Progress::default();
    let result = run_lines(script, writer, out, &mut progress);
    let flushed = out.flush();
    result?;
    // A failed flush loses frames of the last line at least.
    flushed.map_err(|error| ScriptError { line: progress.line, reason: error.into() })?;
    Ok(progress.written)
}

/// How far a run got.
#[derive(Default)]
struct Progress {
    /// Last line read, from 1.
    line: usize,
    /// Bytes written to the output.
    written: u64,
}

fn run_lines(
    script: impl BufRead,
    writer: &mut dyn Writer,
    out: &mut impl Write,
    progress: &mut Progress,
) -> Result<(), ScriptError> {
    let mut bytes = Vec::new();
    for (index, line) in script.lines().enumerate() {
        progress.line = index + 1;
        let fail = |reason: ScriptFailure| ScriptError { line: index + 1, reason };
        let line = line.map_err(|error| fail(error.into()))?;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let op = parse_line(trimmed).map_err(|reason| fail(ScriptFailure::Parse(reason)))?;
        apply(&op, writer).map_err(fail)?;
        bytes.clear();
        while writer.drain(DRAIN_CHUNK, &mut bytes).map_err(|error| fail(error.into()))? > 0 {}
        out.write_all(&bytes).map_err(|error| fail(error.into()))?;
        progress.written += bytes.len() as u64;
    }
    Ok(())
}

/// Performs one operation on `writer` (nothing is drained).
pub fn apply(op: &Op, writer: &mut dyn Writer) -> Result<(), ScriptFailure> {
    match op {
        Op::Preface {} => writer.raw_write_preface_magic()?,
        Op::Settings { settings } => writer.raw_write_frame(&Frame::Settings { settings })?,
        Op::SettingsAck {} => writer.raw_write_frame(&Frame::SettingsAck)?,
        Op::PeerSettings { settings } => writer.apply_peer_settings(settings)?,
        Op::Headers { stream, headers, end_stream, priority, pad_length } => {
            let options = HeadersOptions {
                end_stream: *end_stream,
                priority: priority.map(Priority::from),
                pad_length: *pad_length,
            };
            writer.raw_write_headers(*stream, &fields(headers), options)?
        }
        Op::Data { stream, data, data_b64, repeat, end_stream, pad_length } => {
            let body = match (data, data_b64, repeat) {
                (Some(text), None, None) => text.as_bytes().to_vec(),
                (None, Some(encoded), None) => decode_base64("data_b64", encoded)?,
                (None, None, Some(repeat)) => vec![repeat.byte; repeat.len],
                _ => return Err(ScriptFailure::Parse("data: give exactly one of `data`, `data_b64`, `repeat`".into())),
            };
            writer.raw_write_frame(&Frame::Data {
                stream: *stream,
                data: &body,
                end_stream: *end_stream,
                pad_length: *pad_length,
            })?
        }
        Op::Priority { stream, stream_dependency, weight, exclusive } => writer.raw_write_frame(&Frame::Priority {
            stream: *stream,
            priority: Priority { stream_dependency: *stream_dependency, weight: *weight, exclusive: *exclusive },
        })?,
        Op::RstStream { stream, error_code } => {
            writer.raw_write_frame(&Frame::RstStream { stream: *stream, error_code: *error_code })?
        }
        Op::PushPromise { stream, promised_stream, headers, pad_length } => {
            writer.raw_write_push_promise(*stream, *promised_stream, &fields(headers), *pad_length)?
        }
        Op::Ping { opaque_data, ack } => {
            let opaque_data = match opaque_data {
                Some(hex) => parse_opaque_data(hex)?,
                None => [0; 8],
            };
            writer.raw_write_frame(&Frame::Ping { opaque_data, ack: *ack })?
        }
        Op::Goaway { last_stream_id, error_code, debug_data } => writer.raw_write_frame(&Frame::Goaway {
            last_stream_id: *last_stream_id,
            error_code: *error_code,
            debug_data: debug_data.as_bytes(),
        })?,
        Op::WindowUpdate { stream, increment } => {
            writer.raw_write_frame(&Frame::WindowUpdate { stream: *stream, increment: *increment })?
        }
        Op::Raw { frame_type, flags, stream, payload_b64 } => {
            let payload = decode_base64("payload_b64", payload_b64)?;
            writer.raw_write_frame(&Frame::Extension {
                frame_type: *frame_type,
                flags: *flags,
                stream: *stream,
                payload: &payload,
            })?
        }
    }
    Ok(())
}

fn fields(headers: &[ScriptHeader]) -> Vec<HeaderField<'_>> {
    headers
        .iter()
        .map(|header| HeaderField {
            name: header.name.as_bytes(),
            value: header.value.as_bytes(),
            sensitive: header.sensitive,
        })
        .collect()
}

fn decode_base64(field: &str, encoded: &str) -> Result<Vec<u8>, ScriptFailure> {
    BASE64.decode(encoded).map_err(|error| ScriptFailure::Parse(format!("{field}: invalid base64: {error}")))
}

/// `opaque_data`: exactly 16 hex digits, first byte first.
fn parse_opaque_data(hex: &str) -> Result<[u8; 8], ScriptFailure> {
    let invalid = || ScriptFailure::Parse(format!("opaque_data: {hex:?} is not 16 hex digits"));
    if hex.len() != 16 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    u64::from_str_radix(hex, 16).map(u64::to_be_bytes).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_op_with_defaults() {
        let op =
            parse_line(r#"{"type":"headers","stream":1,"headers":[[":method","GET"],["authorization","x",true]]}"#)
                .unwrap();
        assert_eq!(
            op,
            Op::Headers {
                stream: 1,
                headers: vec![
                    ScriptHeader { name: ":method".into(), value: "GET".into(), sensitive: false },
                    ScriptHeader { name: "authorization".into(), value: "x".into(), sensitive: true },
                ],
                end_stream: false,
                priority: None,
                pad_length: None,
            }
        );
        assert_eq!(parse_line(r#"{"type":"preface"}"#).unwrap(), Op::Preface {});
        assert_eq!(
            parse_line(r#"{"type":"ping","opaque_data":"0102030405060708"}"#).unwrap(),
            Op::Ping { opaque_data: Some("0102030405060708".into()), ack: false }
        );
    }

    #[test]
    fn rejects_unknown_fields_and_types() {
        let unknown = parse_line(r#"{"type":"goaway","last_stream_id":0,"error_code":0,"debug":"x"}"#).unwrap_err();
        assert!(unknown.contains("unknown field `debug`"), "{unknown}");
        let unit = parse_line(r#"{"type":"preface","stream":1}"#).unwrap_err();
        assert!(unit.contains("unknown field `stream`"), "{unit}");
        let nested = parse_line(r#"{"type":"data","stream":1,"repeat":{"byte":1,"len":2,"x":3}}"#).unwrap_err();
        assert!(nested.contains("unknown field `x`"), "{nested}");
        let kind = parse_line(r#"{"type":"continuation","stream":1}"#).unwrap_err();
        assert!(kind.contains("unknown variant `continuation`"), "{kind}");
        let header = parse_line(r#"{"type":"headers","stream":1,"headers":[["a","b",true,1]]}"#).unwrap_err();
        assert!(header.contains("invalid length 4"), "{header}");
    }

    #[test]
    fn opaque_data_is_exactly_sixteen_hex_digits() {
        assert_eq!(parse_opaque_data("00000000000000ff").unwrap(), [0, 0, 0, 0, 0, 0, 0, 0xff]);
        assert!(parse_opaque_data("ff").is_err());
        assert!(parse_opaque_data("+0000000000000ff").is_err());
    }
}
