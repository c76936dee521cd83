//! An allocator refusal inside a connection call is `Error::Pool(OutOfMemory)`,
//! never an abort, and changes nothing: this binary's global allocator
//! refuses large allocations while `REFUSE` is set, as a wasm host does when
//! it caps linear memory.

mod conn_common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

use conn_common::{Fields, body, decode, drain_all, request, streams};
use h2fw::conn::{Config, Connection, Error, HeadersOptions, StreamHints};
use h2fw::pool::{Pool, PoolError};

struct Refusing;

static REFUSE: AtomicBool = AtomicBool::new(false);
const LARGE: usize = 4096;

// SAFETY: delegates to `System`, except that it may return null (a refusal
// the `GlobalAlloc` contract allows).
unsafe impl GlobalAlloc for Refusing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LARGE && REFUSE.load(Ordering::SeqCst) {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= LARGE && REFUSE.load(Ordering::SeqCst) {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Refusing = Refusing;

fn refusing<T>(f: impl FnOnce() -> T) -> T {
    REFUSE.store(true, Ordering::SeqCst);
    let result = f();
    REFUSE.store(false, Ordering::SeqCst);
    result
}

fn is_oom<T: std::fmt::Debug>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::Pool(PoolError::OutOfMemory { .. })))
}

#[test]
fn refused_allocations_are_typed_errors_and_change_nothing() {
    // One test function: the allocator switch is process-wide.
    let mut conn = Connection::new(Config::default(), &Pool::default());
    let mut wire = Vec::new();
    conn.write_preface(&[]).unwrap();
    conn.open_stream(1, &request("/oom").get(), StreamHints::default(), false).unwrap();
    drain_all(&mut conn, 1 << 16, &mut wire);
    // send: what fits in the idle 16 KiB chunk the HEADERS left behind goes
    // out (the write halved until it fits), then no chunk can be allocated.
    let data = body(1, 0, 30_000);
    let mut first = 0;
    let sent = loop {
        match refusing(|| conn.send(1, &data[first..])) {
            Ok(taken) => first += taken,
            refused => break refused,
        }
    };
    assert!(is_oom(&sent), "{sent:?}");
    assert!(first > 15_000 && first < 16 << 10, "{first} bytes fit in the chunk already held");
    let before = conn.stats();
    // A header block whose scratch cannot be allocated.
    let value = "x".repeat(6000);
    let big = Fields::new(&[(":status", "200"), ("x-big", &value)]);
    let mut big_request = request("/big");
    big_request.0.push((b"x-big".to_vec(), value.clone().into_bytes()));
    let opened = refusing(|| conn.open_stream(3, &big_request.get(), StreamHints::default(), true));
    assert!(is_oom(&opened), "{opened:?}");
    let headers = refusing(|| conn.raw().write_headers(5, &big.get(), HeadersOptions::default()));
    assert!(is_oom(&headers), "{headers:?}");
    let stats = conn.stats();
    assert_eq!((stats.live_bytes, stats.frames, stats.leased_bytes), (before.live_bytes, before.frames, 16 << 10));
    assert_eq!(conn.pool().leased_bytes(), 16 << 10);

    // Allowed again: the same calls succeed.
    assert_eq!(conn.send(1, &data[first..]).unwrap(), data.len() - first);
    conn.open_stream(3, &big_request.get(), StreamHints::default(), true).unwrap();
    conn.raw().write_headers(5, &big.get(), HeadersOptions { end_stream: true, ..HeadersOptions::default() }).unwrap();

    // drain: the host's buffer cannot grow; nothing is taken from the queue.
    let queued = conn.stats().queued_bytes;
    let mut out = Vec::new();
    let drained = refusing(|| conn.drain(1 << 16, &mut out));
    assert!(is_oom(&drained), "{drained:?}");
    assert_eq!((out.len(), conn.stats().queued_bytes), (0, queued));

    conn.finish(1, None).unwrap();
    drain_all(&mut conn, 1 << 16, &mut wire);
    let views = streams(decode(&wire, 16_384));
    assert!(views[&1].body == data && views[&1].ended);
    assert_eq!(views[&3].header_blocks[0], (Some("/big".to_string()), vec![("x-big".to_string(), value.clone())]));
    assert_eq!(views[&5].header_blocks[0].1, [("x-big".to_string(), value)]);
    assert_eq!(conn.stats().leased_bytes, 0);
    assert_eq!(conn.pool().leased_bytes(), 0);
}
