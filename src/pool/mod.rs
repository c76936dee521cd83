//! Buffer pool: size classes, leases, idle caches, a hard byte budget and
//! statistics; plus the `single` and `go7` baselines behind the same interface.

/// Which buffering policy a pool (and the connection above it) follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Power-of-two classes, capped idle caches, chunks sized from hints.
    Tiered,
    /// Go after CL 508415: seven classes, per-stream scratch for the stream's life.
    Go7,
    /// Go before CL 508415: one global pool, any big-enough buffer reused.
    Single,
}

/// Pool limits.
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

/// Why a lease failed. The pool is unchanged when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The lease would take the pool past its byte budget.
    #[error("pool budget exceeded: {requested} bytes requested, {held} of {budget} held")]
    BudgetExceeded { requested: usize, held: usize, budget: usize },
    /// The allocator refused (e.g. the host capped linear memory).
    #[error("out of memory allocating {requested} bytes")]
    OutOfMemory { requested: usize },
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
}
