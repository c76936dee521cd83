//! The clock the benchmarks time with: the calling thread's CPU time.
//!
//! Machines running these benches are shared (two cores, several builds), so
//! wall time counts the slices other processes take; the thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`, user plus kernel) counts only the work
//! measured. Elsewhere than Linux it falls back to wall time.

use std::time::Duration;

/// What `work` returned, and the time it took on this thread.
pub fn time<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let start = now();
    let result = work();
    (result, now().saturating_sub(start))
}

/// CPU time this thread has used so far.
#[cfg(target_os = "linux")]
fn now() -> Duration {
    /// `struct timespec` on 64-bit Linux.
    #[repr(C)]
    struct Timespec {
        seconds: i64,
        nanoseconds: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    const _: () = assert!(size_of::<usize>() == 8, "the timespec layout above is the 64-bit one");
    let mut time = Timespec { seconds: 0, nanoseconds: 0 };
    // SAFETY: `time` is a valid, writable `struct timespec`, and this clock
    // always exists on Linux, so the call only writes into it.
    let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(time.seconds.unsigned_abs(), time.nanoseconds.unsigned_abs() as u32)
}

/// Wall time since the first call.
#[cfg(not(target_os = "linux"))]
fn now() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}
