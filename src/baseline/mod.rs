//! The `single` and `go7` baselines: models of Go's scratch-buffer pools,
//! kept out of the production pool (cargo feature `baselines`) so that the
//! benchmark host can run the same stream mixes under Go's policy.
//!
//! What is modelled is `golang.org/x/net/http2/transport.go`,
//! `clientStream.writeRequestBody`: every request body is written through a
//! scratch buffer of [`frame_scratch_buffer_len`] bytes, taken from a
//! `sync.Pool` with get-or-allocate-exact logic and put back when the body is
//! done (for a streaming gRPC call: when the stream ends). A [`GoPools`] is
//! shared by every connection of an instance, as Go's pools are by a whole
//! process; the connections' output queues still use the tiered pool.
//!
//! `sync.Pool` is modelled as seen from one P (GOMAXPROCS=1; the guest is
//! single-threaded): a primary cache (a `private` slot plus a `shared` deque)
//! and a victim cache. A garbage-collection cycle moves primary to victim and
//! frees the old victim (`poolCleanup`), so an idle buffer survives at most
//! two cycles. Cycles are driven by `GcModel`, whose heap is the scratch
//! buffers held. Limits of the model: with N Ps Go keeps up to N private
//! slots and N shared deques, so it can only hold more; garbage waiting for
//! the next cycle is not counted, which understates Go's real footprint;
//! only scratch allocations advance the GC clock, while a real program also
//! allocates elsewhere (more frequent cycles) and keeps other live heap
//! (less frequent cycles). Go's pools have no budget: only the allocator
//! (a host's memory cap, or the 4 GiB wasm32 space) stops them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use crate::pool::{ClassStats, PoolBuf, PoolError, try_collect};

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
struct SyncPool {
    primary: Local,
    victim: Local,
    stats: ClassStats,
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
    fn get(&mut self) -> Option<PoolBuf> {
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
    fn put(&mut self, buf: PoolBuf) -> Result<(), PoolBuf> {
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
    fn free_one(&mut self) -> Option<usize> {
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
struct GcModel {
    marked: usize,
    allocated: usize,
    cycles: u64,
}

impl GcModel {
    /// Records an allocation; true when it takes the heap to the goal.
    fn allocated(&mut self, bytes: usize) -> bool {
        self.allocated = self.allocated.saturating_add(bytes);
        self.marked.saturating_add(self.allocated) >= self.marked.saturating_mul(2).max(GC_MIN_HEAP)
    }
}

/// Which of Go's pools a [`GoPools`] models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// Go after CL 508415: seven pools by size, per-stream scratch for the stream's life.
    Go7,
    /// Go before CL 508415: one global pool, any big-enough buffer reused.
    ///
    /// Models the single `bufPool sync.Pool` of golang/net
    /// `http2/transport.go` before CL 508415:
    /// `if bp, ok := bufPool.Get().(*[]byte); ok && len(*bp) >= scratchLen
    /// { defer bufPool.Put(bp); buf = *bp } else { buf = make([]byte,
    /// scratchLen); defer bufPool.Put(&buf) }` — so a 512 KiB buffer left by
    /// an upload is reused, and held, by a stream that needs a few hundred
    /// bytes.
    Single,
}

impl Model {
    /// Lowercase name (`go7`, `single`).
    pub fn name(self) -> &'static str {
        match self {
            Model::Go7 => "go7",
            Model::Single => "single",
        }
    }
}

/// Statistics of a [`GoPools`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScratchStats {
    /// The pools: one for `single`, seven for `go7` (the last one's `size`
    /// is `usize::MAX`, unbounded).
    pub pools: Vec<ClassStats>,
    /// Scratch bytes leased now.
    pub leased_bytes: usize,
    /// Scratch bytes idle in the pools now.
    pub idle_bytes: usize,
    /// Peak of leased plus idle scratch bytes.
    pub peak_total_bytes: usize,
    /// Garbage-collection cycles so far.
    pub gc_cycles: u64,
}

/// The pools and the GC clock that ages them.
#[derive(Debug)]
struct Scratch {
    model: Model,
    pools: Vec<SyncPool>,
    gc: GcModel,
    leased_bytes: usize,
    idle_bytes: usize,
    peak_total_bytes: usize,
}

/// A handle on Go's scratch pools, shared by every connection that clones
/// it (see the module documentation).
#[derive(Debug, Clone)]
pub struct GoPools {
    id: u32,
    shared: Rc<RefCell<Scratch>>,
}

impl GoPools {
    /// Empty pools of `model`: one for `single` (its size label is
    /// `usize::MAX`, no upper bound), or seven bounded by 16 KiB, 32 KiB …
    /// 512 KiB, then unbounded.
    pub fn new(model: Model) -> Self {
        let pools = match model {
            Model::Single => vec![SyncPool::new(usize::MAX)],
            Model::Go7 => (0..GO7_POOLS)
                .map(|i| SyncPool::new(if i + 1 < GO7_POOLS { 16_384 << i } else { usize::MAX }))
                .collect(),
        };
        let scratch =
            Scratch { model, pools, gc: GcModel::default(), leased_bytes: 0, idle_bytes: 0, peak_total_bytes: 0 };
        Self { id: crate::pool::next_pool_id(), shared: Rc::new(RefCell::new(scratch)) }
    }

    /// The model.
    pub fn model(&self) -> Model {
        self.shared.borrow().model
    }

    /// Leases a stream's scratch buffer of `len` bytes (at least 1): Go's
    /// get-or-allocate-exact on the pool [`buf_pool_index`] picks (`single`:
    /// the one pool). A popped buffer at least `len` long is reused whatever
    /// its size; a shorter one is dropped.
    pub fn lease_scratch(&self, len: usize) -> Result<PoolBuf, PoolError> {
        self.shared.borrow_mut().lease(len.max(1), self.id)
    }

    /// Puts a scratch buffer back (`sync.Pool.Put`); one of another pool is just freed.
    pub fn release(&self, buf: PoolBuf) {
        if buf.pool() == self.id {
            self.shared.borrow_mut().release(buf);
        }
    }

    /// Current statistics.
    pub fn stats(&self) -> ScratchStats {
        self.try_stats().unwrap_or_else(|error| panic!("scratch statistics: {error}"))
    }

    /// [`GoPools::stats`], failing instead of aborting when its list cannot be allocated.
    pub fn try_stats(&self) -> Result<ScratchStats, PoolError> {
        let s = self.shared.borrow();
        Ok(ScratchStats {
            pools: try_collect(s.pools.iter().map(|p| p.stats.clone()))?,
            leased_bytes: s.leased_bytes,
            idle_bytes: s.idle_bytes,
            peak_total_bytes: s.peak_total_bytes,
            gc_cycles: s.gc.cycles,
        })
    }
}

impl Scratch {
    fn held_bytes(&self) -> usize {
        self.leased_bytes + self.idle_bytes
    }

    fn index(&self, len: usize) -> usize {
        if self.pools.len() == 1 { 0 } else { buf_pool_index(len) }
    }

    fn lease(&mut self, len: usize, id: u32) -> Result<PoolBuf, PoolError> {
        let index = self.index(len);
        let popped = self.pools[index].get();
        if let Some(buf) = &popped {
            self.idle_bytes -= buf.capacity();
        }
        let (buf, allocated) = match popped {
            Some(mut buf) if buf.capacity() >= len => {
                self.pools[index].stats.hits += 1;
                buf.clear();
                (buf, false)
            }
            too_small => {
                if too_small.is_some() {
                    self.pools[index].stats.trims += 1;
                }
                drop(too_small);
                let bytes = self.allocate(len)?;
                self.pools[index].stats.misses += 1;
                (PoolBuf::new(bytes, crate::pool::Home::Scratch(index as u8), id), true)
            }
        };
        let bytes = buf.capacity();
        let stats = &mut self.pools[index].stats;
        stats.leased_buffers += 1;
        stats.leased_bytes += bytes;
        self.leased_bytes += bytes;
        self.peak_total_bytes = self.peak_total_bytes.max(self.held_bytes());
        if allocated && self.gc.allocated(bytes) {
            self.collect();
        }
        Ok(buf)
    }

    fn release(&mut self, mut buf: PoolBuf) {
        let crate::pool::Home::Scratch(index) = buf.home() else { return };
        let bytes = buf.capacity();
        buf.clear();
        self.leased_bytes -= bytes;
        let pool = &mut self.pools[usize::from(index)];
        pool.stats.leased_buffers -= 1;
        pool.stats.leased_bytes -= bytes;
        match pool.put(buf) {
            Ok(()) => {
                self.idle_bytes += bytes;
                self.peak_total_bytes = self.peak_total_bytes.max(self.held_bytes());
            }
            Err(_freed) => pool.stats.trims += 1,
        }
    }

    /// `make([]byte, size)`, fallibly; if the allocator refuses, frees every
    /// idle buffer (as a GC cycle under memory pressure would) and tries once more.
    fn allocate(&mut self, size: usize) -> Result<Vec<u8>, PoolError> {
        let mut bytes = Vec::new();
        if bytes.try_reserve_exact(size).is_err() {
            while let Some(freed) = self.pools.iter_mut().find_map(SyncPool::free_one) {
                self.idle_bytes -= freed;
            }
            bytes.try_reserve_exact(size).map_err(|_| PoolError::OutOfMemory { requested: size })?;
        }
        Ok(bytes)
    }

    /// A GC cycle: `poolCleanup` on every pool; the heap it marks live is
    /// what is still held.
    fn collect(&mut self) {
        let freed: usize = self.pools.iter_mut().map(SyncPool::collect).sum();
        self.idle_bytes -= freed;
        self.gc = GcModel { marked: self.held_bytes(), allocated: 0, cycles: self.gc.cycles + 1 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::Home;

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

    #[test]
    fn single_reuses_any_larger_buffer_for_a_small_stream() {
        let pool = GoPools::new(Model::Single);
        let upload = pool.lease_scratch(frame_scratch_buffer_len(1 << 20, Some(8 << 20))).unwrap();
        assert_eq!(upload.capacity(), 512 << 10);
        pool.release(upload);
        let small = pool.lease_scratch(frame_scratch_buffer_len(1 << 20, Some(300))).unwrap();
        assert_eq!(small.capacity(), 512 << 10, "the small stream holds the upload's 512 KiB buffer");
        let scratch = &pool.stats().pools[0];
        assert_eq!((scratch.hits, scratch.misses, scratch.leased_bytes), (1, 1, 512 << 10));
        pool.release(small);
    }

    #[test]
    fn single_drops_a_popped_buffer_that_is_too_small() {
        let pool = GoPools::new(Model::Single);
        let small = pool.lease_scratch(100).unwrap();
        pool.release(small);
        let bigger = pool.lease_scratch(1000).unwrap();
        assert_eq!(bigger.capacity(), 1000, "allocated at exactly the asked length");
        let stats = pool.stats();
        assert_eq!((stats.idle_bytes, stats.pools[0].trims, stats.pools[0].misses), (0, 1, 2));
        pool.release(bigger);
        assert_eq!(pool.stats().idle_bytes, 1000);
    }

    #[test]
    fn go7_keeps_small_streams_out_of_large_buffers() {
        let pool = GoPools::new(Model::Go7);
        let upload = pool.lease_scratch(512 << 10).unwrap();
        pool.release(upload);
        let small = pool.lease_scratch(301).unwrap();
        assert_eq!(small.capacity(), 301);
        let stats = pool.stats();
        assert_eq!(stats.pools.len(), 7);
        assert_eq!((stats.pools[5].idle_bytes, stats.pools[0].leased_bytes), (512 << 10, 301));
        let sizes: Vec<usize> = stats.pools.iter().map(|p| p.size).collect();
        assert_eq!(sizes, [16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, usize::MAX]);
        pool.release(small);
    }

    #[test]
    fn go_idle_buffers_are_freed_by_the_second_gc_cycle() {
        let pool = GoPools::new(Model::Go7);
        let kept = pool.lease_scratch(100 << 10).unwrap();
        pool.release(kept);
        // Allocate (and keep) 512 KiB buffers: the heap is 100 KiB idle plus
        // what is leased; the first cycle comes when the heap reaches 4 MiB.
        let mut leased = Vec::new();
        while pool.stats().gc_cycles == 0 {
            leased.push(pool.lease_scratch(512 << 10).unwrap());
        }
        assert_eq!(leased.len(), 8, "100 KiB + 8 x 512 KiB crosses 4 MiB");
        assert_eq!(pool.stats().pools[3].idle_bytes, 100 << 10, "one cycle: moved to the victim cache");
        // The goal is now twice the marked heap (100 KiB + 4 MiB leased).
        while pool.stats().gc_cycles == 1 {
            leased.push(pool.lease_scratch(512 << 10).unwrap());
        }
        assert_eq!(leased.len(), 17, "4196 KiB marked, goal 8392 KiB: 9 more 512 KiB allocations");
        let stats = pool.stats();
        assert_eq!((stats.pools[3].idle_bytes, stats.pools[3].trims), (0, 1), "second cycle frees it");
        for buf in leased {
            pool.release(buf);
        }
    }
}
