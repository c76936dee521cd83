//! Test helpers: HTTP/2 frames built by hand (well-formed or not), and
//! frames read back as owned values to compare.

use h2fw::pool::{Pool, PoolConfig};

use crate::frames::{Frame, settings_pairs};

/// One frame on the wire: the nine-byte header and `payload` as given.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A pool with the default limits.
pub fn pool() -> Pool {
    Pool::new(PoolConfig::default())
}

/// A [`Frame`] as a test keeps it, owning its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned {
    Data { stream: u32, data: Vec<u8>, flow_len: usize, end_stream: bool },
    Headers { stream: u32, fragment: Vec<u8>, end_stream: bool, end_headers: bool },
    Continuation { stream: u32, fragment: Vec<u8>, end_headers: bool },
    RstStream { stream: u32, code: u32 },
    Settings(Vec<(u16, u32)>),
    SettingsAck,
    Ping { data: [u8; 8], ack: bool },
    GoAway { last_stream: u32, code: u32, debug: Vec<u8> },
    WindowUpdate { stream: u32, increment: u32 },
    Ignored,
}

impl From<Frame<'_>> for Owned {
    fn from(frame: Frame<'_>) -> Self {
        match frame {
            Frame::Data { stream, data, flow_len, end_stream } => {
                Owned::Data { stream, data: data.to_vec(), flow_len, end_stream }
            }
            Frame::Headers { stream, fragment, end_stream, end_headers } => {
                Owned::Headers { stream, fragment: fragment.to_vec(), end_stream, end_headers }
            }
            Frame::Continuation { stream, fragment, end_headers } => {
                Owned::Continuation { stream, fragment: fragment.to_vec(), end_headers }
            }
            Frame::RstStream { stream, code } => Owned::RstStream { stream, code },
            Frame::Settings { pairs } => Owned::Settings(settings_pairs(pairs).collect()),
            Frame::SettingsAck => Owned::SettingsAck,
            Frame::Ping { data, ack } => Owned::Ping { data, ack },
            Frame::GoAway { last_stream, code, debug } => Owned::GoAway { last_stream, code, debug: debug.to_vec() },
            Frame::WindowUpdate { stream, increment } => Owned::WindowUpdate { stream, increment },
            Frame::Ignored => Owned::Ignored,
        }
    }
}
