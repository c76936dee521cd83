//! [`PoolBuf`]: a leased buffer of fixed capacity.

use bytes::BufMut;
use bytes::buf::UninitSlice;

/// Where a buffer goes back to when it is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Home {
    /// A tiered size class (index into the pool's classes; at most 25).
    Class(u8),
    /// A baseline scratch pool (index into the Go model's pools; at most 7).
    #[cfg(feature = "baselines")]
    Scratch(u8),
}

/// A buffer leased from a [`Pool`](super::Pool): a byte vector whose capacity
/// is fixed for its whole life (it never reallocates), moved by value and
/// handed back with [`Pool::release`](super::Pool::release).
///
/// Writes past the capacity are refused ([`PoolBuf::append`] takes what fits;
/// as a [`BufMut`] its `remaining_mut` is the spare capacity).
#[derive(Debug)]
pub struct PoolBuf {
    bytes: Vec<u8>,
    home: Home,
    /// Id of the pool that leased it.
    pool: u32,
}

impl PoolBuf {
    /// Wraps a freshly allocated, empty vector leased by pool `pool`.
    pub(crate) fn new(bytes: Vec<u8>, home: Home, pool: u32) -> Self {
        Self { bytes, home, pool }
    }

    pub(crate) fn home(&self) -> Home {
        self.home
    }

    pub(crate) fn pool(&self) -> u32 {
        self.pool
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing is written.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Fixed capacity, bytes (what the pool accounts for this buffer).
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Room left, bytes.
    pub fn spare(&self) -> usize {
        self.bytes.capacity() - self.bytes.len()
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// Copies as much of `data` as fits; returns how many bytes were taken.
    pub fn append(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.spare());
        self.bytes.extend_from_slice(&data[..n]);
        n
    }

    /// Forgets the contents; the capacity stays.
    pub fn clear(&mut self) {
        self.bytes.clear();
    }
}

// SAFETY: `chunk_mut` exposes only the vector's spare capacity, and
// `advance_mut` (whose caller guarantees the bytes were initialised) never
// moves the length past the capacity, so the vector never reallocates.
unsafe impl BufMut for PoolBuf {
    fn remaining_mut(&self) -> usize {
        self.spare()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        assert!(cnt <= self.spare(), "advance_mut past the capacity of a PoolBuf");
        let len = self.bytes.len() + cnt;
        // SAFETY: `len <= capacity` (checked above) and the caller initialised
        // the `cnt` bytes it wrote through `chunk_mut`.
        unsafe { self.bytes.set_len(len) };
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        UninitSlice::uninit(self.bytes.spare_capacity_mut())
    }

    /// One copy into the spare capacity (the provided method goes through
    /// `chunk_mut` and `advance_mut` in a loop, a library call even for the
    /// one byte of `put_u8`).
    fn put_slice(&mut self, src: &[u8]) {
        assert!(src.len() <= self.spare(), "put_slice past the capacity of a PoolBuf");
        self.bytes.extend_from_slice(src);
    }
}
