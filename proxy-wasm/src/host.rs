//! The proxy-wasm host calls the filter makes, each returning its status:
//! the SDK's own wrappers panic on a status they do not expect, and a panic
//! traps the VM, which would end every tunnel of the worker.

use proxy_wasm::types::{BufferType, LogLevel, MetricType, StreamType};

use crate::tunnel::EndReason;

/// The ABI's "OK" status.
const OK: u32 = 0;
/// The ABI's "not found" status (an empty buffer, a missing property).
const NOT_FOUND: u32 = 1;

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_buffer_bytes(kind: BufferType, start: usize, max: usize, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_set_buffer_bytes(kind: BufferType, start: usize, size: usize, data: *const u8, len: usize) -> u32;
    fn proxy_continue_stream(stream: StreamType) -> u32;
    fn proxy_close_stream(stream: StreamType) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_define_metric(kind: MetricType, name: *const u8, name_len: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_log(level: LogLevel, message: *const u8, len: usize) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_property(path: *const u8, path_len: usize, data: *mut *mut u8, size: *mut usize) -> u32;
}

fn check(call: &'static str, status: u32) -> Result<(), EndReason> {
    if status == OK { Ok(()) } else { Err(EndReason::Host { call, status }) }
}

/// Takes ownership of bytes the host allocated in the VM (through the SDK's
/// `proxy_on_memory_allocate`, a boxed slice of exactly `size` bytes).
///
/// # Safety
/// `data` is null or points to `size` bytes allocated that way.
unsafe fn owned(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() { Vec::new() } else { unsafe { Vec::from_raw_parts(data, size, size) } }
}

/// Up to `max` bytes of a host buffer from `start` (empty if it has none).
pub fn get_buffer(kind: BufferType, start: usize, max: usize) -> Result<Vec<u8>, EndReason> {
    let (mut data, mut size) = (std::ptr::null_mut(), 0);
    // SAFETY: the host writes a pointer it allocated in the VM and its size.
    let status = unsafe { proxy_get_buffer_bytes(kind, start, max, &mut data, &mut size) };
    if status == NOT_FOUND {
        return Ok(Vec::new());
    }
    check("proxy_get_buffer_bytes", status)?;
    // SAFETY: see above.
    Ok(unsafe { owned(data, size) })
}

/// Replaces `size` bytes of a host buffer at `start` with `bytes` (Envoy:
/// `start` 0 and `size` at least the length replaces all; `size` 0 at 0
/// prepends; `start` at or past the length appends).
pub fn set_buffer(kind: BufferType, start: usize, size: usize, bytes: &[u8]) -> Result<(), EndReason> {
    // SAFETY: the host only reads `bytes`.
    check("proxy_set_buffer_bytes", unsafe { proxy_set_buffer_bytes(kind, start, size, bytes.as_ptr(), bytes.len()) })
}

/// Hands the downstream buffer on to the next filter (tcp_proxy), which
/// writes it upstream.
pub fn continue_downstream() -> Result<(), EndReason> {
    // SAFETY: no pointers.
    check("proxy_continue_stream", unsafe { proxy_continue_stream(StreamType::Downstream) })
}

/// Closes the downstream connection after flushing what it has to write.
pub fn close_downstream() -> Result<(), EndReason> {
    // SAFETY: no pointers.
    check("proxy_close_stream", unsafe { proxy_close_stream(StreamType::Downstream) })
}

/// Makes later calls act on the context `id` (from a root's tick).
pub fn set_effective_context(id: u32) -> Result<(), EndReason> {
    // SAFETY: no pointers.
    check("proxy_set_effective_context", unsafe { proxy_set_effective_context(id) })
}

/// Defines a metric; `None` if the host refused.
pub fn define_metric(kind: MetricType, name: &str) -> Option<u32> {
    let mut id = 0;
    // SAFETY: the host reads `name` and writes `id`.
    let status = unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) };
    (status == OK).then_some(id)
}

/// Adds `offset` to a counter or gauge. Statistics are best effort.
pub fn increment_metric(id: u32, offset: i64) {
    // SAFETY: no pointers.
    let _ = unsafe { proxy_increment_metric(id, offset) };
}

/// Logs through Envoy. Logging is best effort.
pub fn log(level: LogLevel, message: &str) {
    // SAFETY: the host only reads `message`.
    let _ = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

/// Asks for `on_tick` every `period` milliseconds.
pub fn set_tick_period(period: u32) -> Result<(), EndReason> {
    // SAFETY: no pointers.
    check("proxy_set_tick_period_milliseconds", unsafe { proxy_set_tick_period_milliseconds(period) })
}

/// A property's bytes (`path` parts joined by NUL), `None` if it has none.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    let joined = path.join("\0");
    let (mut data, mut size) = (std::ptr::null_mut(), 0);
    // SAFETY: the host reads the path and writes a pointer it allocated and its size.
    let status = unsafe { proxy_get_property(joined.as_ptr(), joined.len(), &mut data, &mut size) };
    // SAFETY: see above.
    (status == OK).then(|| unsafe { owned(data, size) })
}
