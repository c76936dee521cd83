//! Buffer pool: size classes, leases, idle caches, a hard byte budget and
//! statistics; plus the `single` and `go7` baselines behind the same interface.
//!
//! Every buffer is a [`PoolBuf`] of fixed capacity. Tiered leases
//! ([`Pool::lease`]) come from power-of-two classes between
//! [`PoolConfig::min_class`] and [`PoolConfig::max_class`]; a released buffer
//! goes back to its class's idle stack unless that class holds
//! `idle_per_class` buffers or all classes hold `idle_total_bytes`, and is
//! freed otherwise. Baseline scratch leases ([`Pool::lease_scratch`]) follow
//! the Go model in [`go`]. Leased plus idle bytes never exceed
//! `budget_bytes`, and every allocation is fallible, so running out is a
//! [`PoolError`], never an abort.

mod buf;
pub mod go;

use std::sync::atomic::{AtomicU32, Ordering};

use buf::Home;
pub use buf::PoolBuf;
use go::GoPools;

/// Source of pool ids, so a pool knows its own buffers.
static NEXT_POOL_ID: AtomicU32 = AtomicU32::new(1);

/// Largest class: the largest frame payload (2^24 − 1) rounded up.
pub const MAX_CLASS: usize = 16 << 20;

/// Which buffering policy a pool (and the connection above it) follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Power-of-two classes, capped idle caches, chunks sized from hints.
    Tiered,
    /// Go after CL 508415: seven classes, per-stream scratch for the stream's life.
    ///
    /// Models `bufPools [7]sync.Pool` in golang/net `http2/transport.go`:
    /// a stream takes a scratch buffer of `frameScratchBufferLen` bytes
    /// ([`go::frame_scratch_buffer_len`]) from `bufPools[bufPoolIndex(len)]`
    /// ([`go::buf_pool_index`]); a popped buffer shorter than asked is
    /// dropped and one of exactly the asked length allocated; the buffer goes
    /// back to the same pool when the stream's body is done.
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

impl Policy {
    /// Lowercase name (`tiered`, `go7`, `single`).
    pub fn name(self) -> &'static str {
        match self {
            Policy::Tiered => "tiered",
            Policy::Go7 => "go7",
            Policy::Single => "single",
        }
    }
}

/// Pool limits. [`Pool::new`] normalises them: classes are rounded up to
/// powers of two with `1 <= min_class <= max_class <= 16 MiB`.
///
/// The idle caps apply to the tiered classes; the baselines' scratch pools
/// are bounded only by the Go GC model, as `sync.Pool` is. The budget applies
/// to everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Buffering policy.
    pub policy: Policy,
    /// Smallest class, bytes (power of two).
    pub min_class: usize,
    /// Largest class, bytes (power of two, at most 16 MiB).
    pub max_class: usize,
    /// Idle buffers kept per class.
    pub idle_per_class: usize,
    /// Idle bytes kept over all classes.
    pub idle_total_bytes: usize,
    /// Hard cap on bytes held (leased plus idle).
    pub budget_bytes: usize,
}

impl PoolConfig {
    /// Defaults: classes 256 B to 16 MiB, 8 idle buffers per class, 1 MiB
    /// idle in all, a 256 MiB budget.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            min_class: 256,
            max_class: MAX_CLASS,
            idle_per_class: 8,
            idle_total_bytes: 1 << 20,
            budget_bytes: 256 << 20,
        }
    }

    fn normalized(mut self) -> Self {
        self.min_class = self.min_class.clamp(1, MAX_CLASS).next_power_of_two();
        self.max_class = self.max_class.clamp(self.min_class, MAX_CLASS).next_power_of_two();
        self
    }
}

/// Why a lease failed. Nothing is leased when one is returned (idle buffers
/// may have been freed trying to make room).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The lease would take the pool past its byte budget.
    #[error("pool budget exceeded: {requested} bytes requested, {held} of {budget} held")]
    BudgetExceeded { requested: usize, held: usize, budget: usize },
    /// The allocator refused (e.g. the host capped linear memory).
    #[error("out of memory allocating {requested} bytes")]
    OutOfMemory { requested: usize },
    /// The request is larger than the largest class.
    #[error("{requested} bytes requested, the largest buffer class is {max_class}")]
    TooLarge { requested: usize, max_class: usize },
}

/// Statistics of one size class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Upper bound of the class, bytes.
    pub size: usize,
    /// Buffers currently leased.
    pub leased_buffers: usize,
    /// Bytes currently leased (buffer capacities).
    pub leased_bytes: usize,
    /// Buffers idle in the cache.
    pub idle_buffers: usize,
    /// Bytes idle in the cache.
    pub idle_bytes: usize,
    /// Leases served from the idle cache.
    pub hits: u64,
    /// Leases that allocated.
    pub misses: u64,
    /// Returned buffers freed because a cap was reached.
    pub trims: u64,
}

/// Pool-wide statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Per class, smallest first.
    pub classes: Vec<ClassStats>,
    /// Bytes leased now.
    pub leased_bytes: usize,
    /// Bytes idle now.
    pub idle_bytes: usize,
    /// Peak of leased bytes.
    pub peak_leased_bytes: usize,
    /// Peak of idle bytes.
    pub peak_idle_bytes: usize,
    /// Peak of leased plus idle bytes.
    pub peak_total_bytes: usize,
    /// Baselines only: the Go scratch pools (one for `single`, seven for
    /// `go7`; the last one's `size` is `usize::MAX`, unbounded).
    pub scratch_pools: Vec<ClassStats>,
    /// Baselines only: garbage-collection cycles of the Go model.
    pub gc_cycles: u64,
}

/// A tiered class: its statistics and its idle stack.
#[derive(Debug)]
struct Class {
    stats: ClassStats,
    idle: Vec<PoolBuf>,
}

/// The buffer pool. See the module documentation.
#[derive(Debug)]
pub struct Pool {
    id: u32,
    config: PoolConfig,
    classes: Vec<Class>,
    /// The Go scratch pools under the baselines, `None` under `Tiered`.
    go: Option<GoPools>,
    leased_bytes: usize,
    idle_bytes: usize,
    peak_leased_bytes: usize,
    peak_idle_bytes: usize,
    peak_total_bytes: usize,
}

impl Pool {
    /// An empty pool (allocates nothing but its class table).
    pub fn new(config: PoolConfig) -> Self {
        let config = config.normalized();
        let count = (config.max_class / config.min_class).trailing_zeros() as usize + 1;
        let classes = (0..count)
            .map(|i| Class {
                stats: ClassStats { size: config.min_class << i, ..ClassStats::default() },
                idle: Vec::new(),
            })
            .collect();
        let go = match config.policy {
            Policy::Tiered => None,
            Policy::Single => Some(GoPools::single()),
            Policy::Go7 => Some(GoPools::go7()),
        };
        Self {
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            config,
            classes,
            go,
            leased_bytes: 0,
            idle_bytes: 0,
            peak_leased_bytes: 0,
            peak_idle_bytes: 0,
            peak_total_bytes: 0,
        }
    }

    /// The (normalised) configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Size of the class that serves a lease of `len` bytes.
    pub fn class_size(&self, len: usize) -> Result<usize, PoolError> {
        self.class_index(len).map(|i| self.classes[i].stats.size)
    }

    fn class_index(&self, len: usize) -> Result<usize, PoolError> {
        if len > self.config.max_class {
            return Err(PoolError::TooLarge { requested: len, max_class: self.config.max_class });
        }
        let size = len.max(self.config.min_class).next_power_of_two();
        Ok((size / self.config.min_class).trailing_zeros() as usize)
    }

    /// Leases an empty buffer of the smallest class holding `len` bytes: from
    /// the class's idle stack if it has one, else freshly allocated.
    pub fn lease(&mut self, len: usize) -> Result<PoolBuf, PoolError> {
        let index = self.class_index(len)?;
        let mut allocated = false;
        let buf = match self.classes[index].idle.pop() {
            Some(buf) => {
                let stats = &mut self.classes[index].stats;
                stats.hits += 1;
                stats.idle_buffers -= 1;
                stats.idle_bytes -= buf.capacity();
                self.idle_bytes -= buf.capacity();
                buf
            }
            None => {
                let bytes = self.allocate(self.classes[index].stats.size)?;
                self.classes[index].stats.misses += 1;
                allocated = true;
                PoolBuf::new(bytes, Home::Class(index as u8), self.id)
            }
        };
        self.leased(&buf, allocated);
        Ok(buf)
    }

    /// Leases a stream's scratch buffer of `len` bytes (at least 1). Under
    /// the baselines this is Go's get-or-allocate-exact on the pool
    /// [`go::buf_pool_index`] picks (`single`: the one pool): a popped buffer
    /// at least `len` long is reused whatever its size, a shorter one is
    /// dropped. Under `Tiered` it is [`Pool::lease`].
    pub fn lease_scratch(&mut self, len: usize) -> Result<PoolBuf, PoolError> {
        let len = len.max(1);
        let Some(go) = self.go.as_mut() else {
            return self.lease(len);
        };
        let index = go.index(len);
        let pool = &mut go.pools[index];
        let popped = pool.get();
        let mut allocated = false;
        if let Some(buf) = &popped {
            self.idle_bytes -= buf.capacity();
        }
        let buf = match popped {
            Some(mut buf) if buf.capacity() >= len => {
                pool.stats.hits += 1;
                buf.clear();
                buf
            }
            too_small => {
                if too_small.is_some() {
                    pool.stats.trims += 1;
                }
                drop(too_small);
                let bytes = self.allocate(len)?;
                self.go_pool(index).stats.misses += 1;
                allocated = true;
                PoolBuf::new(bytes, Home::Scratch(index as u8), self.id)
            }
        };
        self.leased(&buf, allocated);
        Ok(buf)
    }

    /// Takes a buffer back: into its idle cache (tiered: while under the
    /// caps; baselines: always, as `sync.Pool.Put`), else frees it. A buffer
    /// leased by another pool is just freed.
    pub fn release(&mut self, mut buf: PoolBuf) {
        if buf.pool() != self.id {
            return;
        }
        let bytes = buf.capacity();
        self.leased_bytes -= bytes;
        buf.clear();
        match buf.home() {
            Home::Class(index) => {
                let index = usize::from(index);
                let under_caps = self.classes[index].idle.len() < self.config.idle_per_class
                    && self.idle_bytes + bytes <= self.config.idle_total_bytes;
                let class = &mut self.classes[index];
                class.stats.leased_buffers -= 1;
                class.stats.leased_bytes -= bytes;
                if under_caps && class.idle.try_reserve(1).is_ok() {
                    class.idle.push(buf);
                    class.stats.idle_buffers += 1;
                    class.stats.idle_bytes += bytes;
                    self.idle(bytes);
                } else {
                    class.stats.trims += 1;
                }
            }
            Home::Scratch(index) => {
                let pool = self.go_pool(usize::from(index));
                pool.stats.leased_buffers -= 1;
                pool.stats.leased_bytes -= bytes;
                match pool.put(buf) {
                    Ok(()) => self.idle(bytes),
                    Err(_freed) => pool.stats.trims += 1,
                }
            }
        }
    }

    /// Current statistics.
    pub fn stats(&self) -> PoolStats {
        self.try_stats().unwrap_or_else(|error| panic!("pool statistics: {error}"))
    }

    /// [`Pool::stats`] with its two small lists allocated fallibly, for
    /// callers (the component) where an allocation failure must be an error.
    pub fn try_stats(&self) -> Result<PoolStats, PoolError> {
        let scratch = self.go.as_ref().map_or(&[][..], |go| &go.pools[..]);
        Ok(PoolStats {
            classes: try_collect(self.classes.iter().map(|c| c.stats.clone()))?,
            leased_bytes: self.leased_bytes,
            idle_bytes: self.idle_bytes,
            peak_leased_bytes: self.peak_leased_bytes,
            peak_idle_bytes: self.peak_idle_bytes,
            peak_total_bytes: self.peak_total_bytes,
            scratch_pools: try_collect(scratch.iter().map(|p| p.stats.clone()))?,
            gc_cycles: self.go.as_ref().map_or(0, |go| go.gc.cycles),
        })
    }

    /// Bytes leased now.
    pub fn leased_bytes(&self) -> usize {
        self.leased_bytes
    }

    /// Bytes held now, leased plus idle.
    pub fn held_bytes(&self) -> usize {
        self.leased_bytes + self.idle_bytes
    }

    /// The baseline scratch pool `index`; only called with a `Home::Scratch`
    /// index, which exists only when the Go model does.
    fn go_pool(&mut self, index: usize) -> &mut go::SyncPool {
        let go = self.go.as_mut().expect("scratch buffers exist only under a baseline policy");
        &mut go.pools[index]
    }

    /// Allocates `size` bytes within the budget, freeing idle buffers to make
    /// room (and once more, all of them, if the allocator refuses).
    fn allocate(&mut self, size: usize) -> Result<Vec<u8>, PoolError> {
        let budget = self.config.budget_bytes;
        if self.leased_bytes.saturating_add(size) > budget {
            return Err(PoolError::BudgetExceeded { requested: size, held: self.held_bytes(), budget });
        }
        while self.held_bytes() + size > budget && self.free_one_idle() {}
        let mut bytes = Vec::new();
        if bytes.try_reserve_exact(size).is_err() {
            while self.free_one_idle() {}
            bytes.try_reserve_exact(size).map_err(|_| PoolError::OutOfMemory { requested: size })?;
        }
        Ok(bytes)
    }

    /// Under a baseline, advances the GC model by an allocation of `bytes`
    /// (already leased) and runs a cycle when one is due.
    fn advance_gc(&mut self, bytes: usize) {
        let held = self.held_bytes();
        let Some(go) = self.go.as_mut() else { return };
        let freed = go.allocated(bytes, |freed| held - freed);
        self.idle_bytes -= freed;
    }

    /// Frees one idle buffer (largest tiered class first, then the Go
    /// victim and primary caches); false when nothing is idle.
    fn free_one_idle(&mut self) -> bool {
        let freed = match self.classes.iter_mut().rev().find(|c| !c.idle.is_empty()) {
            Some(class) => class.idle.pop().map(|buf| {
                class.stats.idle_buffers -= 1;
                class.stats.idle_bytes -= buf.capacity();
                class.stats.trims += 1;
                buf.capacity()
            }),
            None => self.go.as_mut().and_then(|go| go.pools.iter_mut().find_map(go::SyncPool::free_one)),
        };
        match freed {
            Some(bytes) => {
                self.idle_bytes -= bytes;
                true
            }
            None => false,
        }
    }

    /// Counts `buf` as leased, in its class's (or scratch pool's) stats and
    /// the totals; a freshly `allocated` one also advances the GC model.
    fn leased(&mut self, buf: &PoolBuf, allocated: bool) {
        let bytes = buf.capacity();
        let stats = match buf.home() {
            Home::Class(index) => &mut self.classes[usize::from(index)].stats,
            Home::Scratch(index) => &mut self.go_pool(usize::from(index)).stats,
        };
        stats.leased_buffers += 1;
        stats.leased_bytes += bytes;
        self.leased_bytes += bytes;
        self.peak_leased_bytes = self.peak_leased_bytes.max(self.leased_bytes);
        self.peak_total_bytes = self.peak_total_bytes.max(self.held_bytes());
        if allocated {
            self.advance_gc(bytes);
        }
    }

    fn idle(&mut self, bytes: usize) {
        self.idle_bytes += bytes;
        self.peak_idle_bytes = self.peak_idle_bytes.max(self.idle_bytes);
        self.peak_total_bytes = self.peak_total_bytes.max(self.held_bytes());
    }
}

#[cfg(test)]
mod tests;

/// Collects `items` into a vector reserved fallibly.
fn try_collect<T>(items: impl ExactSizeIterator<Item = T>) -> Result<Vec<T>, PoolError> {
    let mut out = Vec::new();
    let requested = items.len() * std::mem::size_of::<T>();
    out.try_reserve_exact(items.len()).map_err(|_| PoolError::OutOfMemory { requested })?;
    out.extend(items);
    Ok(out)
}
