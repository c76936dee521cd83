//! [`Inbox`]: client bytes held in the VM until the writer takes them.
//!
//! Envoy's downstream buffer can only be replaced whole, so the filter takes
//! the client's bytes whole; what the writer cannot take yet (its windows
//! and watermarks are full) waits here, in 16 KiB chunks leased from the
//! shared pool, each given back the moment its last byte is taken.

use std::collections::VecDeque;

use h2fw::pool::{Pool, PoolBuf, PoolError};

/// Size of one chunk.
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
                self.chunks.try_reserve(1).map_err(|_| PoolError::OutOfMemory { requested: size_of::<PoolBuf>() })?;
                self.chunks.push_back(pool.lease(CHUNK_LEN)?);
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
