//! The VM's global allocator: the system allocator with a ballast.
//!
//! The filter allocates fallibly, but the SDK and the host do not: Envoy
//! copies buffers into the VM through the SDK's `proxy_on_memory_allocate`,
//! and an allocation that fails there aborts, which traps the VM and ends
//! every tunnel of the worker. So a ballast is held from the start; the
//! first allocation that the system allocator refuses frees it and is tried
//! again, and the filter, seeing the pressure flag, closes the tunnel it was
//! serving (typed reason: VM out of linear memory). The ballast is taken
//! back on a later tick once memory allows.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// Ballast size: room for Envoy's default 1 MiB downstream buffer copied in
/// and its frames copied out.
const LEN: usize = 2 << 20;
const ALIGN: usize = 16;

static BALLAST: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static PRESSURE: AtomicBool = AtomicBool::new(false);

/// The allocator. See the module documentation.
struct Ballasted;

#[global_allocator]
static ALLOCATOR: Ballasted = Ballasted;

fn layout() -> Layout {
    Layout::from_size_align(LEN, ALIGN).expect("constant layout is valid")
}

/// Frees the ballast; false if it was not held.
fn give_up() -> bool {
    let ballast = BALLAST.swap(std::ptr::null_mut(), Ordering::Relaxed);
    if ballast.is_null() {
        return false;
    }
    // SAFETY: the ballast was allocated by `System` with `layout()`.
    unsafe { System.dealloc(ballast, layout()) };
    PRESSURE.store(true, Ordering::Relaxed);
    true
}

// SAFETY: every call goes to `System`, once more after freeing the ballast.
unsafe impl GlobalAlloc for Ballasted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as given.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() && give_up() { unsafe { System.alloc(layout) } } else { p }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as given.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() && give_up() { unsafe { System.alloc_zeroed(layout) } } else { p }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as given.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as given.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() && give_up() { unsafe { System.realloc(ptr, layout, new_size) } } else { p }
    }
}

/// Takes the ballast (back) if it is not held and memory allows.
pub fn refill() {
    if BALLAST.load(Ordering::Relaxed).is_null() {
        // SAFETY: a valid, non-zero layout.
        let p = unsafe { System.alloc(layout()) };
        if !p.is_null() {
            BALLAST.store(p, Ordering::Relaxed);
        }
    }
}

/// Whether the ballast was given up since the last call (and clears it).
pub fn take_pressure() -> bool {
    PRESSURE.swap(false, Ordering::Relaxed)
}

/// The VM's linear memory, bytes.
pub fn linear_memory() -> usize {
    core::arch::wasm32::memory_size(0) * 65_536
}
