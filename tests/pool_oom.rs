//! An allocator failure is a typed error, never an abort: this test binary's
//! global allocator refuses large allocations while `REFUSE_LARGE` is set,
//! as a wasm host does when it caps linear memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

use h2fw::pool::{Policy, Pool, PoolConfig, PoolError};

struct Refusing;

static REFUSE_LARGE: AtomicBool = AtomicBool::new(false);
const LARGE: usize = 256 << 10;

// SAFETY: delegates to `System`, except that it may return null (a refusal
// the `GlobalAlloc` contract allows).
unsafe impl GlobalAlloc for Refusing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LARGE && REFUSE_LARGE.load(Ordering::SeqCst) {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Refusing = Refusing;

#[test]
fn allocator_refusal_is_out_of_memory_and_the_pool_carries_on() {
    for policy in [Policy::Tiered, Policy::Go7, Policy::Single] {
        let mut pool = Pool::new(PoolConfig::new(policy));
        let small = pool.lease(4096).unwrap();
        let before = pool.stats();
        REFUSE_LARGE.store(true, Ordering::SeqCst);
        let tiered = pool.lease(2 << 20);
        let scratch = pool.lease_scratch(512 << 10);
        REFUSE_LARGE.store(false, Ordering::SeqCst);
        assert_eq!(tiered.unwrap_err(), PoolError::OutOfMemory { requested: 2 << 20 }, "{policy:?}");
        assert_eq!(scratch.unwrap_err(), PoolError::OutOfMemory { requested: 512 << 10 }, "{policy:?}");
        assert_eq!(pool.stats(), before, "{policy:?}: a refused lease changes nothing");
        let big = pool.lease(2 << 20).unwrap();
        assert_eq!(big.capacity(), 2 << 20);
        pool.release(big);
        pool.release(small);
        assert_eq!(pool.stats().leased_bytes, 0);
    }
}
