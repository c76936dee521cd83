//! Buffer pool: power-of-two size classes, leases, one idle cache with
//! instance-wide caps, a hard byte budget and statistics.
//!
//! A [`Pool`] is a handle: clones share one set of classes, idle cache and
//! budget, the way Go's `bufPools` are shared by a whole process. Every
//! connection of an instance leases through its own [`PoolShare`], which
//! counts what that connection holds and can cap it at a share of the
//! budget, so that one connection cannot starve the others.
//!
//! Every buffer is a [`PoolBuf`] of fixed capacity. Leases come from the
//! classes between [`PoolConfig::min_class`] and [`PoolConfig::max_class`];
//! a released buffer goes back to its class's idle stack unless that class
//! holds `idle_per_class` buffers or all classes hold `idle_total_bytes`,
//! and is freed otherwise. Leased plus idle bytes never exceed
//! `budget_bytes`, and every allocation is fallible, so running out is a
//! [`PoolError`], never an abort.
//!
//! A pool and its connections live on one thread, as a wasm instance does:
//! a multi-threaded native host keeps one pool per thread.

mod buf;
mod share;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

pub(crate) use buf::Home;
pub use buf::PoolBuf;
pub use share::PoolShare;

/// Source of pool ids, so a pool knows its own buffers.
static NEXT_POOL_ID: AtomicU32 = AtomicU32::new(1);

/// A fresh pool id (the baselines' pools take theirs here too).
pub(crate) fn next_pool_id() -> u32 {
    NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed)
}

/// Largest class: the largest frame payload (2^24 − 1) rounded up.
pub const MAX_CLASS: usize = 16 << 20;

/// Pool limits. [`Pool::new`] normalises them: classes are rounded up to
/// powers of two with `1 <= min_class <= max_class <= 16 MiB`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
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

impl Default for PoolConfig {
    /// Classes 256 B to 16 MiB, 8 idle buffers per class, 1 MiB idle in
    /// all, a 256 MiB budget.
    fn default() -> Self {
        Self {
            min_class: 256,
            max_class: MAX_CLASS,
            idle_per_class: 8,
            idle_total_bytes: 1 << 20,
            budget_bytes: 256 << 20,
        }
    }
}

impl PoolConfig {
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
    /// The lease would take one connection past its share of the budget.
    #[error("connection's pool share exceeded: {requested} bytes requested, {leased} of {share} leased")]
    ShareExceeded { requested: usize, leased: usize, share: usize },
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

/// Pool-wide statistics: every connection sharing the pool together.
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
    /// Connections (shares) leasing from the pool now.
    pub connections: usize,
}

/// A class: its statistics and its idle stack.
#[derive(Debug)]
struct Class {
    stats: ClassStats,
    idle: Vec<PoolBuf>,
}

/// What the handles of one pool share.
#[derive(Debug)]
struct Classes {
    config: PoolConfig,
    classes: Vec<Class>,
    leased_bytes: usize,
    idle_bytes: usize,
    peak_leased_bytes: usize,
    peak_idle_bytes: usize,
    peak_total_bytes: usize,
    connections: usize,
}

/// A handle on a buffer pool; clones share it. See the module documentation.
#[derive(Debug, Clone)]
pub struct Pool {
    id: u32,
    shared: Rc<RefCell<Classes>>,
}

impl Default for Pool {
    /// A pool with [`PoolConfig::default`].
    fn default() -> Self {
        Self::new(PoolConfig::default())
    }
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
        let classes = Classes {
            config,
            classes,
            leased_bytes: 0,
            idle_bytes: 0,
            peak_leased_bytes: 0,
            peak_idle_bytes: 0,
            peak_total_bytes: 0,
            connections: 0,
        };
        Self { id: next_pool_id(), shared: Rc::new(RefCell::new(classes)) }
    }

    /// The (normalised) configuration.
    pub fn config(&self) -> PoolConfig {
        self.shared.borrow().config.clone()
    }

    /// Size of the class that serves a lease of `len` bytes.
    pub fn class_size(&self, len: usize) -> Result<usize, PoolError> {
        let classes = self.shared.borrow();
        classes.class_index(len).map(|i| classes.classes[i].stats.size)
    }

    /// Leases an empty buffer of the smallest class holding `len` bytes: from
    /// the class's idle stack if it has one, else freshly allocated.
    pub fn lease(&self, len: usize) -> Result<PoolBuf, PoolError> {
        self.shared.borrow_mut().lease(len, self.id)
    }

    /// Takes a buffer back: into its class's idle stack while under the
    /// caps, else frees it. A buffer leased by another pool is just freed.
    pub fn release(&self, buf: PoolBuf) {
        if buf.pool() == self.id {
            self.shared.borrow_mut().release(buf);
        }
    }

    /// Current statistics.
    pub fn stats(&self) -> PoolStats {
        self.try_stats().unwrap_or_else(|error| panic!("pool statistics: {error}"))
    }

    /// [`Pool::stats`] with its list allocated fallibly, for callers (the
    /// component) where an allocation failure must be an error.
    pub fn try_stats(&self) -> Result<PoolStats, PoolError> {
        let c = self.shared.borrow();
        Ok(PoolStats {
            classes: try_collect(c.classes.iter().map(|class| class.stats.clone()))?,
            leased_bytes: c.leased_bytes,
            idle_bytes: c.idle_bytes,
            peak_leased_bytes: c.peak_leased_bytes,
            peak_idle_bytes: c.peak_idle_bytes,
            peak_total_bytes: c.peak_total_bytes,
            connections: c.connections,
        })
    }

    /// Bytes leased now.
    pub fn leased_bytes(&self) -> usize {
        self.shared.borrow().leased_bytes
    }

    /// Bytes held now, leased plus idle.
    pub fn held_bytes(&self) -> usize {
        self.shared.borrow().held_bytes()
    }

    /// Whether `buf` was leased by this pool.
    pub(crate) fn owns(&self, buf: &PoolBuf) -> bool {
        buf.pool() == self.id
    }

    /// Counts a connection in or out (see [`PoolStats::connections`]).
    fn count_connection(&self, joined: bool) {
        let mut c = self.shared.borrow_mut();
        if joined {
            c.connections += 1;
        } else {
            c.connections -= 1;
        }
    }
}

impl Classes {
    fn held_bytes(&self) -> usize {
        self.leased_bytes + self.idle_bytes
    }

    fn class_index(&self, len: usize) -> Result<usize, PoolError> {
        if len > self.config.max_class {
            return Err(PoolError::TooLarge { requested: len, max_class: self.config.max_class });
        }
        let size = len.max(self.config.min_class).next_power_of_two();
        Ok((size / self.config.min_class).trailing_zeros() as usize)
    }

    fn lease(&mut self, len: usize, pool: u32) -> Result<PoolBuf, PoolError> {
        let index = self.class_index(len)?;
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
                PoolBuf::new(bytes, Home::Class(index as u8), pool)
            }
        };
        let bytes = buf.capacity();
        let stats = &mut self.classes[index].stats;
        stats.leased_buffers += 1;
        stats.leased_bytes += bytes;
        self.leased_bytes += bytes;
        self.peak_leased_bytes = self.peak_leased_bytes.max(self.leased_bytes);
        self.peak_total_bytes = self.peak_total_bytes.max(self.held_bytes());
        Ok(buf)
    }

    fn release(&mut self, mut buf: PoolBuf) {
        let index = match buf.home() {
            Home::Class(index) => usize::from(index),
            #[cfg(feature = "baselines")]
            Home::Scratch(_) => return,
        };
        let bytes = buf.capacity();
        self.leased_bytes -= bytes;
        buf.clear();
        let under_caps = self.classes[index].idle.len() < self.config.idle_per_class
            && self.idle_bytes + bytes <= self.config.idle_total_bytes;
        let class = &mut self.classes[index];
        class.stats.leased_buffers -= 1;
        class.stats.leased_bytes -= bytes;
        if under_caps && class.idle.try_reserve(1).is_ok() {
            class.idle.push(buf);
            class.stats.idle_buffers += 1;
            class.stats.idle_bytes += bytes;
            self.idle_bytes += bytes;
            self.peak_idle_bytes = self.peak_idle_bytes.max(self.idle_bytes);
            self.peak_total_bytes = self.peak_total_bytes.max(self.held_bytes());
        } else {
            class.stats.trims += 1;
        }
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

    /// Frees one idle buffer, largest class first; false when nothing is idle.
    fn free_one_idle(&mut self) -> bool {
        let Some(class) = self.classes.iter_mut().rev().find(|c| !c.idle.is_empty()) else { return false };
        let Some(buf) = class.idle.pop() else { return false };
        class.stats.idle_buffers -= 1;
        class.stats.idle_bytes -= buf.capacity();
        class.stats.trims += 1;
        self.idle_bytes -= buf.capacity();
        true
    }
}

/// Collects `items` into a vector reserved fallibly.
pub(crate) fn try_collect<T>(items: impl ExactSizeIterator<Item = T>) -> Result<Vec<T>, PoolError> {
    let mut out = Vec::new();
    let requested = items.len() * std::mem::size_of::<T>();
    out.try_reserve_exact(items.len()).map_err(|_| PoolError::OutOfMemory { requested })?;
    out.extend(items);
    Ok(out)
}
