//! Per-stream send state: window, hints, pending body bytes, how it ends.

use std::collections::VecDeque;

use crate::hpack::HeaderField;
use crate::pool::{PoolBuf, PoolError, PoolShare};

/// Largest pending chunk of a stream without a large declared body.
pub(super) const STREAM_CHUNK_CAP: usize = 16 << 10;
/// Largest pending chunk of a stream that declared more than
/// [`STREAM_CHUNK_CAP`] bytes of body.
pub(super) const LARGE_BODY_CHUNK_CAP: usize = 64 << 10;

/// How a stream ends once its pending bytes are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Finish {
    /// END_STREAM on the last DATA frame.
    EndStream,
    /// A HEADERS block with END_STREAM after the last DATA frame; the fields
    /// wait in the connection's trailer table (see [`Trailers`]) and are
    /// encoded when emitted, so that HPACK sees blocks in wire order.
    Trailers,
}

/// Body bytes accepted but not yet framed.
#[derive(Debug)]
pub(super) enum Pending {
    /// Tiered: chunks leased as bytes arrive, each released once framed; an
    /// empty queue holds no chunk and no deque allocation.
    Chunks { chunks: VecDeque<PoolBuf>, read: usize, len: usize },
    /// Baselines: the stream's scratch buffer, held until the stream ends
    /// (Go writes every body through it); pending bytes are `read..len()`.
    #[cfg(feature = "baselines")]
    Scratch { buf: PoolBuf, read: usize },
}

impl Pending {
    /// No bytes and no buffer.
    pub(super) fn empty() -> Self {
        Pending::Chunks { chunks: VecDeque::new(), read: 0, len: 0 }
    }

    /// Pending bytes.
    pub(super) fn len(&self) -> usize {
        match self {
            Pending::Chunks { len, .. } => *len,
            #[cfg(feature = "baselines")]
            Pending::Scratch { buf, read, .. } => buf.len() - read,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next pending bytes that are contiguous in memory.
    pub(super) fn front(&self) -> &[u8] {
        match self {
            Pending::Chunks { chunks, read, .. } => chunks.front().map_or(&[][..], |c| &c.as_slice()[*read..]),
            #[cfg(feature = "baselines")]
            Pending::Scratch { buf, read, .. } => &buf.as_slice()[*read..],
        }
    }

    /// Marks `n` bytes of [`Pending::front`] framed; a chunk framed to its
    /// end goes back to the pool at once.
    pub(super) fn consume(&mut self, pool: &mut PoolShare, n: usize) {
        match self {
            Pending::Chunks { chunks, read, len } => {
                *read += n;
                *len -= n;
                if chunks.front().is_some_and(|c| *read == c.len())
                    && let Some(chunk) = chunks.pop_front()
                {
                    pool.release(chunk);
                    *read = 0;
                }
                if chunks.is_empty() {
                    *chunks = VecDeque::new();
                }
            }
            #[cfg(feature = "baselines")]
            Pending::Scratch { buf, read, .. } => {
                *read += n;
                if *read == buf.len() {
                    buf.clear();
                    *read = 0;
                }
            }
        }
    }

    /// Copies as much of `data` as fits. Tiered: fills the last chunk, then
    /// leases chunks of `chunk_len(bytes still to copy, bytes pending)`
    /// until done or the pool refuses. Baselines: what fits in the scratch
    /// buffer. Returns the bytes taken; an error only if none were.
    pub(super) fn append(
        &mut self,
        pool: &mut PoolShare,
        data: &[u8],
        chunk_len: impl Fn(usize, usize) -> usize,
    ) -> Result<usize, PoolError> {
        match self {
            Pending::Chunks { chunks, len, .. } => {
                let mut taken = chunks.back_mut().map_or(0, |c| c.append(data));
                let mut refused = None;
                while taken < data.len() {
                    let rest = &data[taken..];
                    let leased = chunks
                        .try_reserve(1)
                        .map_err(|_| PoolError::OutOfMemory { requested: size_of::<PoolBuf>() })
                        .and_then(|()| pool.lease(chunk_len(rest.len(), *len + taken)));
                    match leased {
                        Ok(mut chunk) => {
                            taken += chunk.append(rest);
                            chunks.push_back(chunk);
                        }
                        Err(error) => {
                            refused = Some(error);
                            break;
                        }
                    }
                }
                if chunks.is_empty() {
                    // Nothing taken: drop any room the deque reserved.
                    *chunks = VecDeque::new();
                }
                *len += taken;
                match refused {
                    Some(error) if taken == 0 => Err(error),
                    _ => Ok(taken),
                }
            }
            #[cfg(feature = "baselines")]
            Pending::Scratch { buf, .. } => Ok(buf.append(data)),
        }
    }

    /// Gives every buffer back to the pool.
    pub(super) fn release(self, pool: &mut PoolShare) {
        match self {
            Pending::Chunks { chunks, .. } => chunks.into_iter().for_each(|c| pool.release(c)),
            #[cfg(feature = "baselines")]
            Pending::Scratch { buf, .. } => pool.release(buf),
        }
    }
}

/// Size of the next pending chunk (the pool rounds it up to its class): the
/// bytes still to copy, or a quarter of what is already pending if more (so
/// a backlog of small writes gets geometrically larger chunks), at most
/// 16 KiB, or 64 KiB for a stream that declared a large body.
pub(super) fn chunk_len(large_body: bool, to_copy: usize, pending: usize) -> usize {
    let cap = if large_body { LARGE_BODY_CHUNK_CAP } else { STREAM_CHUNK_CAP };
    to_copy.max(pending / 4).clamp(1, cap)
}

/// One stream that is not closed (kept small: a connection may hold
/// 100 000 of them): both ends' sides, and what this end still sends.
#[derive(Debug)]
pub(super) struct Stream {
    /// This end's side.
    pub(super) send: super::state::Send,
    /// The peer's side.
    pub(super) recv: super::state::Recv,
    /// Send window (negative after a SETTINGS decrease).
    pub(super) window: i64,
    pub(super) pending: Pending,
    /// How the body ends once its pending bytes are framed (set by `finish`).
    pub(super) finish: Option<Finish>,
    /// Declared a Content-Length above [`STREAM_CHUNK_CAP`].
    pub(super) large_body: bool,
    /// Whether the stream's id is in the connection's round-robin ring.
    pub(super) in_ring: bool,
}

impl Stream {
    /// A stream whose sides are `send` and `recv`, with send `window`.
    pub(super) fn new(
        send: super::state::Send,
        recv: super::state::Recv,
        window: i64,
        content_length: Option<u64>,
        pending: Pending,
    ) -> Self {
        let large_body = content_length.is_some_and(|declared| declared > STREAM_CHUNK_CAP as u64);
        Self { send, recv, window, pending, finish: None, large_body, in_ring: false }
    }

    /// Whether the stream has a DATA frame to frame now (connection window
    /// aside): pending bytes, or an empty END_STREAM, and a positive window
    /// (RFC 9113 §6.9: no flow-controlled frame, empty or not, otherwise).
    pub(super) fn sendable(&self) -> bool {
        self.window > 0 && (!self.pending.is_empty() || self.finish == Some(Finish::EndStream))
    }
}

/// Trailer fields kept in a pooled buffer until they can be encoded: per
/// field one flag byte (1 = sensitive), the name and value lengths as
/// big-endian u32, then the name and value bytes.
#[derive(Debug)]
pub(super) struct Trailers {
    buf: PoolBuf,
    count: usize,
}

const FIELD_HEAD_LEN: usize = 9;

impl Trailers {
    /// Serialises `fields` into one buffer leased from `pool`.
    pub(super) fn store(pool: &mut PoolShare, fields: &[HeaderField<'_>]) -> Result<Self, PoolError> {
        let len = fields.iter().fold(0usize, |sum, f| {
            sum.saturating_add(FIELD_HEAD_LEN).saturating_add(f.name.len()).saturating_add(f.value.len())
        });
        let mut buf = pool.lease(len)?;
        for field in fields {
            // Lengths fit in u32: the whole list fits in one pool class (≤ 16 MiB).
            buf.append(&[u8::from(field.sensitive)]);
            buf.append(&(field.name.len() as u32).to_be_bytes());
            buf.append(&(field.value.len() as u32).to_be_bytes());
            buf.append(field.name);
            buf.append(field.value);
        }
        Ok(Self { buf, count: fields.len() })
    }

    /// Bytes held.
    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Gives the buffer back to the pool.
    pub(super) fn release(self, pool: &mut PoolShare) {
        pool.release(self.buf);
    }

    /// The stored fields, borrowed.
    pub(super) fn fields(&self) -> Result<Vec<HeaderField<'_>>, PoolError> {
        let mut fields = Vec::new();
        fields
            .try_reserve_exact(self.count)
            .map_err(|_| PoolError::OutOfMemory { requested: self.count * size_of::<HeaderField<'_>>() })?;
        let mut rest = self.buf.as_slice();
        while let Some((head, tail)) = rest.split_first_chunk::<FIELD_HEAD_LEN>() {
            let name_len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let value_len = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) as usize;
            let Some((name, tail)) = tail.split_at_checked(name_len) else { break };
            let Some((value, tail)) = tail.split_at_checked(value_len) else { break };
            fields.push(HeaderField { name, value, sensitive: head[0] == 1 });
            rest = tail;
        }
        Ok(fields)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_stream_costs_at_most_64_bytes_of_state() {
        // 100 000 open streams: under 10 MB of hash table on a 64-bit host.
        assert!(size_of::<Stream>() <= 64, "{} bytes", size_of::<Stream>());
    }

    #[test]
    fn chunks_follow_writes_and_backlog_up_to_the_cap() {
        assert_eq!(chunk_len(false, 200, 0), 200);
        assert_eq!(chunk_len(false, 200, 4000), 1000, "a quarter of the backlog");
        assert_eq!(chunk_len(false, 1 << 20, 0), STREAM_CHUNK_CAP);
        assert_eq!(chunk_len(true, 1 << 20, 0), LARGE_BODY_CHUNK_CAP);
        assert_eq!(chunk_len(true, 300, 0), 300, "a large body still gets small chunks for small writes");
        assert_eq!(chunk_len(false, 0, 0), 1);
    }
}
