//! Models of Go's scratch-buffer pools, for the `single` and `go7` baselines.
//!
//! What is modelled is `golang.org/x/net/http2/transport.go`,
//! `clientStream.writeRequestBody`: every request body is written through a
//! scratch buffer of [`frame_scratch_buffer_len`] bytes, taken from a
//! `sync.Pool` with get-or-allocate-exact logic and put back when the body is
//! done (for a streaming gRPC call: when the stream ends).
//!
//! `sync.Pool` is modelled as seen from one P (GOMAXPROCS=1; the guest is
//! single-threaded): a primary cache (a `private` slot plus a `shared` deque)
//! and a victim cache. A garbage-collection cycle moves primary to victim and
//! frees the old victim (`poolCleanup`), so an idle buffer survives at most
//! two cycles. Cycles are driven by `GcModel`. Limits of the model: with N
//! Ps Go keeps up to N private slots and N shared deques, so it can only hold
//! more; garbage waiting for the next cycle is not counted, which understates
//! Go's real footprint; only pool allocations advance the GC clock, while a
//! real program also allocates elsewhere (more frequent cycles) and keeps
//! other live heap (less frequent cycles).

use std::collections::VecDeque;

use super::{ClassStats, PoolBuf};

/// Largest scratch buffer Go uses (`const max = 512 << 10`).
pub const MAX_SCRATCH_LEN: usize = 512 << 10;

/// Number of `bufPools` after golang/net CL 508415.
pub const GO7_POOLS: usize = 7;

/// Go's heap floor (`heapminimum`, 4 MiB at GOGC=100).
pub const GC_MIN_HEAP: usize = 4 << 20;

/// `clientStream.frameScratchBufferLen`: `max(1, min(peer max frame size,
/// content length + 1, 512 KiB))`, the content-length term only when the
/// length is declared.
///
/// ```go
/// const max = 512 << 10
/// n := int64(maxFrameSize)
/// if n > max { n = max }
/// if cl := cs.reqBodyContentLength; cl != -1 && cl+1 < n { n = cl + 1 }
/// if n < 1 { return 1 }
/// return int(n)
/// ```
pub fn frame_scratch_buffer_len(max_frame_size: u32, content_length: Option<u64>) -> usize {
    let mut n = (max_frame_size as usize).min(MAX_SCRATCH_LEN);
    if let Some(cl) = content_length
        && cl.saturating_add(1) < n as u64
    {
        // cl + 1 < n <= 512 KiB, so this fits in usize.
        n = (cl + 1) as usize;
    }
    n.max(1)
}

/// `bufPoolIndex`: which of the seven pools serves a scratch buffer of `size`
/// bytes: `{0, 16 KiB]` is 0, then one pool per doubling up to
/// `{256 KiB, 512 KiB]` (5), and everything larger is 6.
///
/// ```go
/// if size <= 16384 { return 0 }
/// size -= 1
/// bits := bits.Len(uint(size))
/// index := bits - 14
/// if index >= len(bufPools) { return len(bufPools) - 1 }
/// return index
/// ```
pub fn buf_pool_index(size: usize) -> usize {
    if size <= 16_384 {
        return 0;
    }
    let bits = (usize::BITS - (size - 1).leading_zeros()) as usize;
    (bits - 14).min(GO7_POOLS - 1)
}

/// One P's share of a `sync.Pool` (`poolLocal`).
#[derive(Debug, Default)]
struct Local {
    private: Option<PoolBuf>,
    /// `poolChain`: the back is the head (push and pop), the front the tail.
    shared: VecDeque<PoolBuf>,
}

impl Local {
    fn len(&self) -> usize {
        usize::from(self.private.is_some()) + self.shared.len()
    }
}

/// One `sync.Pool` of `*[]byte` on one P, with its statistics.
#[derive(Debug)]
pub(crate) struct SyncPool {
    primary: Local,
    victim: Local,
    pub(crate) stats: ClassStats,
}

impl SyncPool {
    fn new(size: usize) -> Self {
        Self {
            primary: Local::default(),
            victim: Local::default(),
            stats: ClassStats { size, ..ClassStats::default() },
        }
    }

    /// `Pool.Get`: the private slot, the shared head, then (`getSlow`) the
    /// victim's private slot and its shared tail.
    pub(crate) fn get(&mut self) -> Option<PoolBuf> {
        let buf = self
            .primary
            .private
            .take()
            .or_else(|| self.primary.shared.pop_back())
            .or_else(|| self.victim.private.take())
            .or_else(|| self.victim.shared.pop_front())?;
        self.stats.idle_buffers -= 1;
        self.stats.idle_bytes -= buf.capacity();
        Some(buf)
    }

    /// `Pool.Put`: the private slot if empty, else the shared head. Hands the
    /// buffer back if the deque cannot grow (the caller frees it).
    pub(crate) fn put(&mut self, buf: PoolBuf) -> Result<(), PoolBuf> {
        let bytes = buf.capacity();
        if self.primary.private.is_none() {
            self.primary.private = Some(buf);
        } else {
            if self.primary.shared.try_reserve(1).is_err() {
                return Err(buf);
            }
            self.primary.shared.push_back(buf);
        }
        self.stats.idle_buffers += 1;
        self.stats.idle_bytes += bytes;
        Ok(())
    }

    /// `poolCleanup` for this pool: frees the victim, the primary becomes the
    /// victim. Returns the bytes freed.
    fn collect(&mut self) -> usize {
        let old_victim = std::mem::replace(&mut self.victim, std::mem::take(&mut self.primary));
        let freed: usize = old_victim.private.iter().chain(old_victim.shared.iter()).map(PoolBuf::capacity).sum();
        self.stats.trims += old_victim.len() as u64;
        self.stats.idle_buffers -= old_victim.len();
        self.stats.idle_bytes -= freed;
        freed
    }

    /// Frees one idle buffer, victim first and oldest first (budget
    /// trimming, which Go does not have). Returns its bytes.
    pub(crate) fn free_one(&mut self) -> Option<usize> {
        let buf = self
            .victim
            .shared
            .pop_front()
            .or_else(|| self.victim.private.take())
            .or_else(|| self.primary.shared.pop_front())
            .or_else(|| self.primary.private.take())?;
        self.stats.idle_buffers -= 1;
        self.stats.idle_bytes -= buf.capacity();
        self.stats.trims += 1;
        Some(buf.capacity())
    }
}

/// When Go would run a garbage-collection cycle, GOGC=100 style: a cycle
/// starts once the heap (bytes marked live by the last cycle plus bytes
/// allocated since) reaches the goal `max(2 × marked, 4 MiB)`. Go starts a
/// little before the goal; the model starts at it.
#[derive(Debug, Default)]
pub(crate) struct GcModel {
    marked: usize,
    allocated: usize,
    pub(crate) cycles: u64,
}

impl GcModel {
    /// Records an allocation; true when it takes the heap to the goal.
    fn allocated(&mut self, bytes: usize) -> bool {
        self.allocated = self.allocated.saturating_add(bytes);
        self.marked.saturating_add(self.allocated) >= self.marked.saturating_mul(2).max(GC_MIN_HEAP)
    }
}

/// The baseline's scratch pools (one for `single`, seven for `go7`) and the
/// GC clock that ages them.
#[derive(Debug)]
pub(crate) struct GoPools {
    pub(crate) pools: Vec<SyncPool>,
    pub(crate) gc: GcModel,
}

impl GoPools {
    /// `single`: one pool. Its size label is `usize::MAX` (no upper bound).
    pub(crate) fn single() -> Self {
        Self { pools: vec![SyncPool::new(usize::MAX)], gc: GcModel::default() }
    }

    /// `go7`: pools bounded by 16 KiB, 32 KiB … 512 KiB, then unbounded.
    pub(crate) fn go7() -> Self {
        let pools =
            (0..GO7_POOLS).map(|i| SyncPool::new(if i + 1 < GO7_POOLS { 16_384 << i } else { usize::MAX })).collect();
        Self { pools, gc: GcModel::default() }
    }

    /// Which pool serves a scratch buffer of `len` bytes.
    pub(crate) fn index(&self, len: usize) -> usize {
        if self.pools.len() == 1 { 0 } else { buf_pool_index(len) }
    }

    /// Records an allocation of `bytes`; if it starts a GC cycle, runs
    /// `poolCleanup` on every pool and returns the bytes freed. `held_after`
    /// computes what the cycle marks live from the bytes freed.
    pub(crate) fn allocated(&mut self, bytes: usize, held_after: impl FnOnce(usize) -> usize) -> usize {
        if !self.gc.allocated(bytes) {
            return 0;
        }
        let freed = self.pools.iter_mut().map(SyncPool::collect).sum();
        self.gc = GcModel { marked: held_after(freed), allocated: 0, cycles: self.gc.cycles + 1 };
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::buf::Home;

    fn buf(cap: usize) -> PoolBuf {
        PoolBuf::new(Vec::with_capacity(cap), Home::Scratch(0), 0)
    }

    #[test]
    fn buf_pool_index_matches_go_at_class_boundaries() {
        // Worked by hand from Go's code: bits.Len(size-1) - 14, capped at 6.
        let cases = [
            (0, 0),
            (1, 0),
            (16_384, 0),
            (16_385, 1), // Len(16384) = 15
            (32_768, 1), // Len(32767) = 15
            (32_769, 2), // Len(32768) = 16
            (65_536, 2),
            (65_537, 3),
            (131_072, 3),
            (131_073, 4),
            (262_144, 4),
            (262_145, 5),
            (524_288, 5), // Len(524287) = 19
            (524_289, 6), // Len(524288) = 20
            (16 << 20, 6),
            (usize::MAX, 6),
        ];
        for (size, index) in cases {
            assert_eq!(buf_pool_index(size), index, "size {size}");
        }
    }

    #[test]
    fn scratch_len_follows_go_formula() {
        // Streaming (no Content-Length): the peer's frame size, capped at 512 KiB.
        assert_eq!(frame_scratch_buffer_len(16_384, None), 16_384);
        assert_eq!(frame_scratch_buffer_len(1 << 20, None), 512 << 10);
        assert_eq!(frame_scratch_buffer_len(16_777_215, None), 512 << 10);
        // Declared length: one byte more than declared, when that is smaller.
        assert_eq!(frame_scratch_buffer_len(1 << 20, Some(300)), 301);
        assert_eq!(frame_scratch_buffer_len(16_384, Some(16_383)), 16_384);
        assert_eq!(frame_scratch_buffer_len(16_384, Some(16_384)), 16_384);
        assert_eq!(frame_scratch_buffer_len(1 << 20, Some(8 << 20)), 512 << 10);
        assert_eq!(frame_scratch_buffer_len(1 << 20, Some(u64::MAX)), 512 << 10);
        // Empty body: max(1, 0 + 1).
        assert_eq!(frame_scratch_buffer_len(16_384, Some(0)), 1);
    }

    #[test]
    fn sync_pool_get_order_is_private_then_shared_head_then_victim() {
        let mut pool = SyncPool::new(usize::MAX);
        for cap in [1, 2, 3] {
            pool.put(buf(cap)).unwrap();
        }
        // private = 1, shared (tail→head) = [2, 3]
        assert_eq!(pool.get().map(|b| b.capacity()), Some(1));
        assert_eq!(pool.get().map(|b| b.capacity()), Some(3));
        pool.put(buf(4)).unwrap(); // private = 4, shared = [2]
        pool.collect(); // victim = {4, [2]}
        pool.put(buf(5)).unwrap(); // primary private = 5
        assert_eq!(pool.get().map(|b| b.capacity()), Some(5));
        assert_eq!(pool.get().map(|b| b.capacity()), Some(4));
        assert_eq!(pool.get().map(|b| b.capacity()), Some(2));
        assert!(pool.get().is_none());
        assert_eq!(pool.stats.idle_buffers, 0);
    }

    #[test]
    fn an_idle_buffer_survives_exactly_two_collections() {
        let mut pool = SyncPool::new(usize::MAX);
        pool.put(buf(10)).unwrap();
        assert_eq!(pool.collect(), 0);
        assert_eq!(pool.stats.idle_bytes, 10);
        assert_eq!(pool.collect(), 10);
        assert_eq!(pool.stats.idle_bytes, 0);
        assert_eq!(pool.stats.trims, 1);
    }

    #[test]
    fn gc_goal_is_twice_the_marked_heap_with_a_4_mib_floor() {
        let mut gc = GcModel::default();
        assert!(!gc.allocated(GC_MIN_HEAP - 1));
        assert!(gc.allocated(1));
        let mut gc = GcModel { marked: 10 << 20, allocated: 0, cycles: 0 };
        assert!(!gc.allocated((10 << 20) - 1));
        assert!(gc.allocated(1));
    }
}
