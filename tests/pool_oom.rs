//! An allocator failure is a typed error, never an abort: this test binary's
//! global allocator refuses large allocations while `REFUSE_LARGE` is set,
//! as a wasm host does when it caps linear memory. Both the tiered pool and
//! (feature `baselines`) Go's scratch pools carry on afterwards.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(feature = "baselines")]
use h2fw::baseline::{GoPools, Model};
use h2fw::pool::{Pool, PoolConfig, PoolError};

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
    // One test function: the allocator switch is process-wide.
    let pool = Pool::new(PoolConfig::default());
    let small = pool.lease(4096).unwrap();
    let before = pool.stats();
    REFUSE_LARGE.store(true, Ordering::SeqCst);
    let big = pool.lease(2 << 20);
    // The size of Go's largest scratch buffer, from the tiered classes.
    let scratch_sized = pool.lease(512 << 10);
    REFUSE_LARGE.store(false, Ordering::SeqCst);
    assert_eq!(big.unwrap_err(), PoolError::OutOfMemory { requested: 2 << 20 });
    assert_eq!(scratch_sized.unwrap_err(), PoolError::OutOfMemory { requested: 512 << 10 });
    assert_eq!(pool.stats(), before, "a refused lease changes nothing");
    let big = pool.lease(2 << 20).unwrap();
    assert_eq!(big.capacity(), 2 << 20);
    pool.release(big);
    pool.release(small);
    assert_eq!(pool.stats().leased_bytes, 0);

    #[cfg(feature = "baselines")]
    for model in [Model::Go7, Model::Single] {
        let go = GoPools::new(model);
        let small = go.lease_scratch(4096).unwrap();
        let before = go.stats();
        REFUSE_LARGE.store(true, Ordering::SeqCst);
        let scratch = go.lease_scratch(512 << 10);
        REFUSE_LARGE.store(false, Ordering::SeqCst);
        assert_eq!(scratch.unwrap_err(), PoolError::OutOfMemory { requested: 512 << 10 }, "{model:?}");
        assert_eq!(go.stats(), before, "{model:?}: a refused lease changes nothing");
        let scratch = go.lease_scratch(512 << 10).unwrap();
        assert_eq!(scratch.capacity(), 512 << 10, "{model:?}");
        go.release(scratch);
        go.release(small);
        assert_eq!(go.stats().leased_bytes, 0, "{model:?}");
    }
}
