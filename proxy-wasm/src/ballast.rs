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
//!
//! It also counts the bytes allocated through it ([`heap_bytes`]), which
//! is what the filter's own state costs, apart from how far the linear
//! memory grew.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// Ballast size: room for Envoy's default 1 MiB downstream buffer copied in
/// and its frames copied out.
const LEN: usize = 2 << 20;
const ALIGN: usize = 16;

static BALLAST: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static PRESSURE: AtomicBool = AtomicBool::new(false);
/// Bytes allocated through [`Ballasted`] and not freed.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Peak of [`LIVE`].
static PEAK: AtomicUsize = AtomicUsize::new(0);

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

/// Counts `p` (of `len` bytes) as allocated unless it is null.
fn counted(p: *mut u8, len: usize) -> *mut u8 {
    if !p.is_null() {
        let live = LIVE.fetch_add(len, Ordering::Relaxed) + len;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
    p
}

// SAFETY: every call goes to `System`, once more after freeing the ballast.
unsafe impl GlobalAlloc for Ballasted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as given.
        let p = unsafe { System.alloc(layout) };
        let p = if p.is_null() && give_up() { unsafe { System.alloc(layout) } } else { p };
        counted(p, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as given.
        let p = unsafe { System.alloc_zeroed(layout) };
        let p = if p.is_null() && give_up() { unsafe { System.alloc_zeroed(layout) } } else { p };
        counted(p, layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as given.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as given.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        let p = if p.is_null() && give_up() { unsafe { System.realloc(ptr, layout, new_size) } } else { p };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        counted(p, new_size)
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

/// Bytes the filter (and the SDK) hold allocated now, the ballast apart.
pub fn heap_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Peak of [`heap_bytes`].
pub fn peak_heap_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// The VM's linear memory, bytes.
pub fn linear_memory() -> usize {
    core::arch::wasm32::memory_size(0) * 65_536
}
