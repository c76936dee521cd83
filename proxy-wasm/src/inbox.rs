//! [`Inbox`]: client bytes held in the VM until the writer takes them.
//!
//! Envoy's downstream buffer can only be replaced whole, so the filter takes
//! the client's bytes whole; what the writer cannot take yet (its windows
//! and watermarks are full) waits here, in chunks leased from the shared
//! pool, each given back the moment its last byte is taken. A chunk is as
//! large as the bytes at hand, and twice the last one when more keep
//! coming, up to 16 KiB: the client's first bytes wait for the upstream's
//! answer in every new tunnel at once, and a 16 KiB chunk for each would
//! make the VM's peak (and so its linear memory) grow with the number of
//! tunnels opening together.

use std::collections::VecDeque;

use h2fw::pool::{Pool, PoolBuf, PoolError};

/// Largest chunk.
const CHUNK_LEN: usize = 16 << 10;

/// A FIFO of bytes in pooled chunks.
#[derive(Debug, Default)]
pub struct Inbox {
    chunks: VecDeque<PoolBuf>,
    /// Bytes of the first chunk already taken.
    read: usize,
    len: usize,
}

impl Inbox {
    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is held (and so no chunk).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `data`; on a refusal the bytes appended so far stay.
    pub fn push(&mut self, pool: &Pool, mut data: &[u8]) -> Result<(), PoolError> {
        while !data.is_empty() {
            if self.chunks.back().is_none_or(|c| c.spare() == 0) {
                let grown = self.chunks.back().map_or(0, |c| c.capacity() * 2);
                let len = data.len().max(grown).min(CHUNK_LEN);
                self.chunks.try_reserve(1).map_err(|_| PoolError::OutOfMemory { requested: size_of::<PoolBuf>() })?;
                self.chunks.push_back(pool.lease(len)?);
            }
            let last = self.chunks.back_mut().expect("a chunk with room was just ensured");
            let n = last.append(data);
            self.len += n;
            data = &data[n..];
        }
        Ok(())
    }

    /// The oldest bytes held, up to one chunk's worth.
    pub fn front(&self) -> &[u8] {
        self.chunks.front().map_or(&[], |c| &c.as_slice()[self.read..])
    }

    /// Drops the `n` oldest bytes (at most [`Inbox::front`]'s length).
    pub fn consume(&mut self, pool: &Pool, n: usize) {
        let Some(front) = self.chunks.front() else { return };
        let n = n.min(front.len() - self.read);
        self.read += n;
        self.len -= n;
        if self.read == front.len() && (front.spare() == 0 || self.len == 0) {
            if let Some(chunk) = self.chunks.pop_front() {
                pool.release(chunk);
            }
            self.read = 0;
        }
    }

    /// Gives every chunk back.
    pub fn release(&mut self, pool: &Pool) {
        for chunk in self.chunks.drain(..) {
            pool.release(chunk);
        }
        self.read = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::{CHUNK_LEN, Inbox};
    use crate::testing::pool;

    #[test]
    fn a_few_bytes_take_a_small_chunk_and_a_stream_of_them_grows_to_16_kib() {
        let pool = pool();
        let mut inbox = Inbox::default();
        inbox.push(&pool, b"!").expect("push");
        assert!(pool.leased_bytes() <= 256, "{} bytes leased for one byte", pool.leased_bytes());
        let bytes: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        for piece in bytes.chunks(100) {
            inbox.push(&pool, piece).expect("push");
        }
        assert_eq!(inbox.len(), 1 + bytes.len());
        assert!(inbox.chunks.iter().all(|c| c.capacity() <= CHUNK_LEN));
        assert!(inbox.chunks.len() < 16, "{} chunks: they grow", inbox.chunks.len());
        // FIFO order, and every chunk goes back as it empties.
        let mut out = Vec::new();
        while !inbox.is_empty() {
            let n = inbox.front().len().min(777);
            out.extend_from_slice(&inbox.front()[..n]);
            inbox.consume(&pool, n);
        }
        assert_eq!(out[0], b'!');
        assert!(out[1..] == bytes[..]);
        assert_eq!(pool.leased_bytes(), 0);
    }
}
