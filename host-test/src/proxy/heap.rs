//! Heap bytes held by a proxy's upstream side, for `h2fw proxy-bench`.
//!
//! [`CountingAllocator`] wraps the system allocator. An allocation made
//! while the current thread is inside an upstream scope ([`Tagged`],
//! [`scope`]) is counted until it is freed, wherever that happens: it
//! carries its tag in its address (it is handed out 8 bytes into a
//! 16-byte-aligned block, every other allocation is 16-byte aligned), so a
//! free needs no table. A reallocation keeps the tag of the first
//! allocation. The count is exact for what upstream code allocated; bytes
//! it merely holds that others allocated (a request body chunk hyper read
//! from the client) are not in it.
//!
//! Only the `h2fw` binary installs the allocator; elsewhere the scopes cost
//! a thread-local write and [`upstream_bytes`] is `None`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};

thread_local! {
    /// Whether the current thread runs upstream code now.
    static UPSTREAM: Cell<bool> = const { Cell::new(false) };
}

/// Bytes allocated in upstream scopes and not yet freed.
static UPSTREAM_BYTES: AtomicIsize = AtomicIsize::new(0);
/// Set by the first allocation through [`CountingAllocator`].
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Alignment of every block taken from the system allocator.
const BLOCK_ALIGN: usize = 16;
/// Offset of a tagged allocation inside its block.
const TAG_OFFSET: usize = 8;

/// The counting global allocator (see the module documentation).
pub struct CountingAllocator;

/// Heap bytes allocated by upstream code and still live; `None` when the
/// process does not run [`CountingAllocator`].
pub fn upstream_bytes() -> Option<usize> {
    INSTALLED.load(Ordering::Relaxed).then(|| UPSTREAM_BYTES.load(Ordering::Relaxed).max(0) as usize)
}

/// Runs `f` with the current thread's upstream flag set to `upstream`.
pub fn scope<R>(upstream: bool, f: impl FnOnce() -> R) -> R {
    let before = UPSTREAM.with(|flag| flag.replace(upstream));
    let result = f();
    UPSTREAM.with(|flag| flag.set(before));
    result
}

fn in_upstream() -> bool {
    UPSTREAM.try_with(Cell::get).unwrap_or(false)
}

fn is_tagged(ptr: *mut u8) -> bool {
    ptr as usize % BLOCK_ALIGN == TAG_OFFSET
}

/// The block of a tagged allocation of `size` bytes (`None` past isize).
fn tagged_block(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(BLOCK_ALIGN)?, BLOCK_ALIGN).ok()
}

/// The block of an untagged allocation of `layout` (`None` past isize).
fn plain_block(layout: Layout) -> Option<Layout> {
    layout.align_to(BLOCK_ALIGN).ok()
}

fn count(delta: isize) {
    UPSTREAM_BYTES.fetch_add(delta, Ordering::Relaxed);
}

/// Allocates for `layout` with `system` (`alloc` or `alloc_zeroed` of
/// [`System`], which it calls with a block of non-zero size), tagged when
/// upstream code asks.
fn allocate(layout: Layout, system: impl FnOnce(Layout) -> *mut u8) -> *mut u8 {
    INSTALLED.store(true, Ordering::Relaxed);
    if layout.align() <= TAG_OFFSET && in_upstream() {
        let Some(block) = tagged_block(layout.size()) else { return std::ptr::null_mut() };
        let block = system(block);
        if block.is_null() {
            return block;
        }
        count(layout.size() as isize);
        // SAFETY: the block is BLOCK_ALIGN bytes longer than asked.
        return unsafe { block.add(TAG_OFFSET) };
    }
    plain_block(layout).map_or(std::ptr::null_mut(), system)
}

// SAFETY: every block comes from `System` with the layout it is returned
// with: tagged blocks are `tagged_block(size)` and handed out at
// `TAG_OFFSET`, which keeps an alignment of 8 (only layouts aligned to at
// most 8 are tagged); untagged blocks are `plain_block(layout)`, aligned to
// at least 16, so the two are told apart by address.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `allocate` asks for blocks at least as large as `layout`, which is not empty.
        allocate(layout, |block| unsafe { System.alloc(block) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        allocate(layout, |block| unsafe { System.alloc_zeroed(block) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_tagged(ptr)
            && let Some(block) = tagged_block(layout.size())
        {
            count(-(layout.size() as isize));
            // SAFETY: a tagged pointer sits TAG_OFFSET into a block of this layout.
            unsafe { System.dealloc(ptr.sub(TAG_OFFSET), block) }
        } else if let Some(block) = plain_block(layout) {
            // SAFETY: allocated with this block layout.
            unsafe { System.dealloc(ptr, block) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if is_tagged(ptr)
            && let Some(block) = tagged_block(layout.size())
        {
            let Some(grown) = tagged_block(new_size) else { return std::ptr::null_mut() };
            // SAFETY: a tagged pointer sits TAG_OFFSET into a block of this
            // layout; the block keeps its 16-byte alignment, so the new
            // pointer is tagged too.
            let block = unsafe { System.realloc(ptr.sub(TAG_OFFSET), block, grown.size()) };
            if block.is_null() {
                return block;
            }
            count(new_size as isize - layout.size() as isize);
            // SAFETY: as in `alloc`.
            return unsafe { block.add(TAG_OFFSET) };
        }
        let Some(block) = plain_block(layout) else { return std::ptr::null_mut() };
        // SAFETY: allocated with this block layout; the result keeps its alignment.
        unsafe { System.realloc(ptr, block, new_size) }
    }
}

pin_project_lite::pin_project! {
    /// A future, or a body, polled with the upstream flag set to `upstream`.
    pub struct Tagged<T> {
        #[pin]
        inner: T,
        upstream: bool,
    }
}

impl<T> Tagged<T> {
    /// `inner`, counted as upstream code.
    pub fn upstream(inner: T) -> Self {
        Tagged { inner, upstream: true }
    }

    /// `inner`, not counted (a client's body that upstream code polls).
    pub fn other(inner: T) -> Self {
        Tagged { inner, upstream: false }
    }
}

impl<F: Future> Future for Tagged<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        scope(*this.upstream, || this.inner.poll(cx))
    }
}

impl<B: Body> Body for Tagged<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        scope(*this.upstream, || this.inner.poll_frame(cx))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
