//! The output queue: framed bytes waiting for the host, densely packed in
//! pooled chunks of one size (frames may span chunk boundaries).

use std::collections::VecDeque;

use bytes::BufMut;
use bytes::buf::UninitSlice;

use crate::frame::{Frame, FrameError};
use crate::pool::{PoolBuf, PoolError, PoolShare};

/// Room kept outside the pool for the ACKs a peer is owed at once (a
/// SETTINGS ACK is 9 bytes, a PING ACK 17).
const CONTROL_RESERVE: usize = 64;

/// Chunks in wire order. Every chunk but the last is full; the first may be
/// partly drained already (`read`). Control frames that found no chunk wait
/// in `control`, after the chunks; once the host has been handed part of
/// them (`control_started`), the rest goes before any chunk queued since.
#[derive(Debug)]
pub(super) struct OutputQueue {
    /// Static bytes that go out before everything else (the preface the
    /// connection writes for itself), still to hand out.
    head: &'static [u8],
    chunks: VecDeque<PoolBuf>,
    /// The reserve: ACKs queued when the pool refused a chunk.
    control: Vec<u8>,
    /// Part of `control` went out: its rest comes first, so no frame is cut.
    control_started: bool,
    /// Bytes of the first chunk already handed to the host.
    read: usize,
    /// Bytes queued (written, not yet drained).
    len: usize,
    /// Lease size of a chunk.
    chunk_len: usize,
}

impl OutputQueue {
    pub(super) fn new(chunk_len: usize) -> Self {
        let mut control = Vec::new();
        // Without the reserve, ACKs need a chunk like any frame.
        let _ = control.try_reserve_exact(CONTROL_RESERVE);
        Self { head: &[], chunks: VecDeque::new(), control, control_started: false, read: 0, len: 0, chunk_len }
    }

    /// Puts `bytes` ahead of everything queued (no allocation, cannot fail).
    pub(super) fn push_head(&mut self, bytes: &'static [u8]) {
        self.head = bytes;
        self.len += bytes.len();
    }

    /// Writes a small control `frame` into the reserve (no allocation);
    /// refused when the reserve is full. It goes out after the chunks.
    pub(super) fn push_reserved_control(&mut self, frame: &Frame<'_>, max_frame_size: u32) -> Result<(), FrameError> {
        let needed = frame.validate(max_frame_size)?;
        let available = self.control.capacity() - self.control.len();
        if needed > available {
            return Err(FrameError::BufferTooSmall { needed, available });
        }
        let written = frame.encode(&mut self.control, max_frame_size)?;
        self.len += written;
        Ok(())
    }

    /// Bytes queued.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Makes room for `n` more bytes, leasing chunks as needed. All or
    /// nothing: on error no chunk stays leased.
    pub(super) fn reserve(&mut self, pool: &mut PoolShare, n: usize) -> Result<(), PoolError> {
        let spare = self.chunks.back().map_or(0, PoolBuf::spare);
        let missing = n.saturating_sub(spare);
        let new_chunks = missing.div_ceil(self.chunk_len);
        if new_chunks == 0 {
            return Ok(());
        }
        self.chunks.try_reserve(new_chunks).map_err(|_| PoolError::OutOfMemory { requested: missing })?;
        for leased in 0..new_chunks {
            match pool.lease(self.chunk_len) {
                Ok(chunk) => self.chunks.push_back(chunk),
                Err(error) => {
                    for _ in 0..leased {
                        if let Some(chunk) = self.chunks.pop_back() {
                            pool.release(chunk);
                        }
                    }
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Writes `frame` into room made by [`OutputQueue::reserve`]; returns its length.
    pub(super) fn encode_reserved(&mut self, frame: &Frame<'_>, max_frame_size: u32) -> Result<usize, FrameError> {
        // Most frames are small and fit in the last chunk, when that is the
        // only one with room: write there directly (a frame that does not
        // fit is refused before a byte is written, then spans chunks).
        let len = self.chunks.len();
        if len > 0
            && (len == 1 || self.chunks[len - 2].spare() == 0)
            && let Some(last) = self.chunks.back_mut()
            && let Ok(written) = frame.encode(last, max_frame_size)
        {
            self.len += written;
            return Ok(written);
        }
        let written = frame.encode(&mut ChunkWriter::new(&mut self.chunks), max_frame_size)?;
        self.len += written;
        Ok(written)
    }

    /// Validates `frame`, makes room and writes it; all or nothing.
    pub(super) fn push_frame(
        &mut self,
        pool: &mut PoolShare,
        frame: &Frame<'_>,
        max_frame_size: u32,
    ) -> Result<usize, super::Error> {
        let len = frame.validate(max_frame_size)?;
        self.reserve(pool, len)?;
        Ok(self.encode_reserved(frame, max_frame_size)?)
    }

    /// Queues raw bytes; all or nothing.
    pub(super) fn push_bytes(&mut self, pool: &mut PoolShare, bytes: &[u8]) -> Result<(), PoolError> {
        self.reserve(pool, bytes.len())?;
        ChunkWriter::new(&mut self.chunks).put_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }

    /// Gives back chunks left empty at the end by an over-sized reservation.
    pub(super) fn release_unused(&mut self, pool: &mut PoolShare) {
        while self.chunks.back().is_some_and(PoolBuf::is_empty) {
            if let Some(chunk) = self.chunks.pop_back() {
                pool.release(chunk);
            }
        }
    }

    /// Gives every chunk back, queued bytes and all (the connection is gone).
    pub(super) fn release_all(&mut self, pool: &mut PoolShare) {
        self.head = &[];
        for chunk in self.chunks.drain(..) {
            pool.release(chunk);
        }
        self.control.clear();
        self.control_started = false;
        self.read = 0;
        self.len = 0;
    }

    /// Moves up to `max` queued bytes to `out` (which has room for them),
    /// releasing every chunk drained to its end; returns how many.
    pub(super) fn drain_into(&mut self, pool: &mut PoolShare, max: usize, out: &mut Vec<u8>) -> usize {
        let n = self.head.len().min(max);
        out.extend_from_slice(&self.head[..n]);
        self.head = &self.head[n..];
        self.len -= n;
        let mut moved = n;
        if self.control_started {
            // Left with the reserve's rest, `max` is reached.
            moved += self.drain_control(max - moved, out);
        }
        while moved < max
            && let Some(front) = self.chunks.front()
        {
            let unread = &front.as_slice()[self.read..];
            let n = unread.len().min(max - moved);
            out.extend_from_slice(&unread[..n]);
            self.read += n;
            moved += n;
            self.len -= n;
            if self.read == front.len() {
                // Only the last chunk can have room left, and then nothing is queued.
                if let Some(chunk) = self.chunks.pop_front() {
                    pool.release(chunk);
                }
                self.read = 0;
            }
        }
        if self.chunks.is_empty() {
            moved += self.drain_control(max - moved, out);
        }
        moved
    }

    /// Moves up to `max` bytes of the reserve to `out`; returns how many.
    fn drain_control(&mut self, max: usize, out: &mut Vec<u8>) -> usize {
        let n = self.control.len().min(max);
        out.extend_from_slice(&self.control[..n]);
        self.control.drain(..n);
        self.len -= n;
        self.control_started = !self.control.is_empty() && (self.control_started || n > 0);
        n
    }
}

/// A [`BufMut`] over the spare room of the last chunks of a queue: the
/// partly written last chunk, then the empty ones just leased.
struct ChunkWriter<'a> {
    chunks: &'a mut VecDeque<PoolBuf>,
    /// The chunk being written.
    index: usize,
    remaining: usize,
}

impl<'a> ChunkWriter<'a> {
    fn new(chunks: &'a mut VecDeque<PoolBuf>) -> Self {
        // Chunks with room form a suffix (every chunk before them is full).
        let with_room = chunks.iter().rev().take_while(|c| c.spare() > 0).count();
        let index = chunks.len() - with_room;
        let remaining = chunks.range(index..).map(PoolBuf::spare).sum();
        Self { chunks, index, remaining }
    }

    /// Moves past full chunks; the current chunk, if any, has room.
    fn skip_full(&mut self) {
        while self.chunks.get(self.index).is_some_and(|c| c.spare() == 0) {
            self.index += 1;
        }
    }
}

// SAFETY: `chunk_mut` returns the spare room of the current chunk and
// `advance_mut` advances that same chunk (PoolBuf's own `advance_mut`
// refuses to pass its capacity), so initialised bytes are only ever exposed.
unsafe impl BufMut for ChunkWriter<'_> {
    fn remaining_mut(&self) -> usize {
        self.remaining
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        if cnt == 0 {
            return;
        }
        self.skip_full();
        let chunk = self.chunks.get_mut(self.index).expect("advance_mut past the reserved room");
        // SAFETY: the caller initialised `cnt` bytes of the slice `chunk_mut`
        // returned, which is this chunk's spare room.
        unsafe { chunk.advance_mut(cnt) };
        self.remaining -= cnt;
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.skip_full();
        match self.chunks.get_mut(self.index) {
            Some(chunk) => chunk.chunk_mut(),
            None => UninitSlice::new(&mut []),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{Pool, PoolConfig};

    fn small_pool(budget_bytes: usize) -> PoolShare {
        PoolShare::new(&Pool::new(PoolConfig { min_class: 256, budget_bytes, ..PoolConfig::default() }), None)
    }

    #[test]
    fn frames_span_chunks_and_drain_byte_for_byte() {
        let mut pool = small_pool(1 << 20);
        let mut queue = OutputQueue::new(256);
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let frames = [
            Frame::Ping { opaque_data: *b"12345678", ack: false },
            Frame::Data { stream: 1, data: &data, end_stream: true, pad_length: Some(4) },
            Frame::Goaway { last_stream_id: 1, error_code: 0, debug_data: &data[..300] },
        ];
        let mut expected = Vec::new();
        for frame in &frames {
            queue.push_frame(&mut pool, frame, 16_384).unwrap();
            frame.encode(&mut expected, 16_384).unwrap();
        }
        assert_eq!(queue.len(), expected.len());
        assert_eq!(pool.leased_bytes(), expected.len().div_ceil(256) * 256, "densely packed");
        let mut out = Vec::new();
        while queue.len() > 0 {
            queue.drain_into(&mut pool, 7, &mut out);
            // Drained chunks go back at once: at most one partly read chunk
            // beyond the bytes still queued.
            assert!(pool.leased_bytes() <= queue.len().div_ceil(256) * 256 + 256);
        }
        assert_eq!(out, expected);
        assert_eq!(pool.leased_bytes(), 0);
    }

    #[test]
    fn a_partly_drained_reserve_goes_out_before_later_chunks() {
        // Found by fuzzing: a PING ACK in the reserve, drained 9 bytes at a
        // time, had a frame queued in a chunk after it cut it in two.
        let mut pool = small_pool(1 << 20);
        let mut queue = OutputQueue::new(256);
        let ack = Frame::Ping { opaque_data: [7; 8], ack: true };
        let later = Frame::Priority {
            stream: 3,
            priority: crate::frame::Priority { stream_dependency: 1, weight: 9, exclusive: false },
        };
        let mut expected = Vec::new();
        queue.push_reserved_control(&ack, 16_384).unwrap();
        ack.encode(&mut expected, 16_384).unwrap();
        let mut out = Vec::new();
        assert_eq!(queue.drain_into(&mut pool, 9, &mut out), 9);
        queue.push_frame(&mut pool, &later, 16_384).unwrap();
        later.encode(&mut expected, 16_384).unwrap();
        while queue.len() > 0 {
            queue.drain_into(&mut pool, 5, &mut out);
        }
        assert_eq!(out, expected);
        assert_eq!(pool.leased_bytes(), 0);
    }

    #[test]
    fn a_reservation_that_cannot_be_met_leases_nothing() {
        let mut pool = small_pool(1024);
        let mut queue = OutputQueue::new(256);
        queue.push_bytes(&mut pool, &[1; 100]).unwrap();
        assert_eq!(pool.leased_bytes(), 256);
        // 156 bytes fit in the tail; 1000 more need 4 chunks, the budget has 3.
        assert!(queue.push_bytes(&mut pool, &[2; 1156]).is_err());
        assert_eq!((pool.leased_bytes(), queue.len()), (256, 100));
        queue.push_bytes(&mut pool, &[2; 900]).unwrap();
        assert_eq!((pool.leased_bytes(), queue.len()), (1024, 1000));
    }

    #[test]
    fn unused_reserved_chunks_are_given_back() {
        let mut pool = small_pool(1 << 20);
        let mut queue = OutputQueue::new(256);
        queue.push_bytes(&mut pool, &[1; 10]).unwrap();
        queue.reserve(&mut pool, 2000).unwrap();
        assert_eq!(pool.leased_bytes(), 256 * 8, "246 bytes of room in the tail, 7 chunks for the other 1754");
        queue.release_unused(&mut pool);
        assert_eq!(pool.leased_bytes(), 256);
        let mut out = Vec::new();
        queue.drain_into(&mut pool, 100, &mut out);
        queue.release_unused(&mut pool);
        assert_eq!((out.len(), pool.leased_bytes()), (10, 0));
    }
}
