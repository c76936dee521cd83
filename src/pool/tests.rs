use super::*;

fn tiered() -> PoolConfig {
    PoolConfig::new(Policy::Tiered)
}

#[test]
fn leases_come_from_the_smallest_class_that_fits() {
    let mut pool = Pool::new(tiered());
    let cases =
        [(0, 256), (1, 256), (256, 256), (257, 512), (16_384, 16_384), (16_385, 32_768), (MAX_CLASS, MAX_CLASS)];
    for (len, class) in cases {
        let buf = pool.lease(len).unwrap();
        assert_eq!(buf.capacity(), class, "lease({len})");
        pool.release(buf);
    }
    assert_eq!(
        pool.lease(MAX_CLASS + 1).unwrap_err(),
        PoolError::TooLarge { requested: MAX_CLASS + 1, max_class: MAX_CLASS }
    );
    assert_eq!(pool.stats().classes.len(), 17); // 2^8 ..= 2^24
}

#[test]
fn config_is_normalised_to_powers_of_two() {
    let config = PoolConfig { min_class: 300, max_class: 40_000, ..tiered() };
    let pool = Pool::new(config);
    assert_eq!((pool.config().min_class, pool.config().max_class), (512, 65_536));
    let sizes: Vec<usize> = pool.stats().classes.iter().map(|c| c.size).collect();
    assert_eq!(sizes, [512, 1024, 2048, 4096, 8192, 16_384, 32_768, 65_536]);
    let pool = Pool::new(PoolConfig { min_class: 0, max_class: usize::MAX, ..tiered() });
    assert_eq!((pool.config().min_class, pool.config().max_class), (1, MAX_CLASS));
}

#[test]
fn a_released_buffer_is_reused_by_its_class() {
    let mut pool = Pool::new(tiered());
    let mut buf = pool.lease(1000).unwrap();
    assert_eq!(buf.append(&[7; 2000]), 1024, "append stops at the capacity");
    pool.release(buf);
    let stats = pool.stats();
    assert_eq!((stats.leased_bytes, stats.idle_bytes), (0, 1024));
    let again = pool.lease(600).unwrap();
    assert!(again.is_empty(), "a reused buffer comes back empty");
    let class = &pool.stats().classes[2];
    assert_eq!((class.size, class.hits, class.misses, class.leased_buffers, class.idle_buffers), (1024, 1, 1, 1, 0));
    pool.release(again);
}

#[test]
fn idle_caches_are_capped_per_class_and_in_total() {
    let config = PoolConfig { idle_per_class: 2, idle_total_bytes: 5000, ..tiered() };
    let mut pool = Pool::new(config);
    let small: Vec<PoolBuf> = (0..3).map(|_| pool.lease(256).unwrap()).collect();
    for buf in small {
        pool.release(buf);
    }
    let class = &pool.stats().classes[0];
    assert_eq!((class.idle_buffers, class.trims), (2, 1), "third 256 B buffer freed: per-class cap");
    let big: Vec<PoolBuf> = (0..2).map(|_| pool.lease(4096).unwrap()).collect();
    for buf in big {
        pool.release(buf);
    }
    let stats = pool.stats();
    // 512 idle + one 4096 = 4608 <= 5000; a second 4096 would exceed it.
    assert_eq!((stats.idle_bytes, stats.classes[4].idle_buffers, stats.classes[4].trims), (4608, 1, 1));
    assert_eq!(stats.peak_idle_bytes, 4608);
    assert_eq!(stats.peak_leased_bytes, 8192);
}

#[test]
fn a_lease_past_the_budget_is_an_error_and_changes_nothing() {
    let config = PoolConfig { budget_bytes: 10_000, ..tiered() };
    let mut pool = Pool::new(config);
    let a = pool.lease(4096).unwrap();
    let b = pool.lease(4096).unwrap();
    let before = pool.stats();
    assert_eq!(
        pool.lease(4096).unwrap_err(),
        PoolError::BudgetExceeded { requested: 4096, held: 8192, budget: 10_000 }
    );
    assert_eq!(pool.stats(), before);
    pool.release(a);
    pool.release(b);
    // Both idle now: 8192 held. A 1024 lease fits; an 8192 lease needs the
    // idle buffers trimmed first, and gets them trimmed.
    let c = pool.lease(1024).unwrap();
    let d = pool.lease(8192).unwrap();
    let stats = pool.stats();
    assert!(stats.leased_bytes + stats.idle_bytes <= 10_000);
    assert_eq!(stats.leased_bytes, 1024 + 8192);
    assert_eq!(stats.classes[4].trims, 2);
    pool.release(c);
    pool.release(d);
}

#[test]
fn single_reuses_any_larger_buffer_for_a_small_stream() {
    let mut pool = Pool::new(PoolConfig::new(Policy::Single));
    let upload = pool.lease_scratch(go::frame_scratch_buffer_len(1 << 20, Some(8 << 20))).unwrap();
    assert_eq!(upload.capacity(), 512 << 10);
    pool.release(upload);
    let small = pool.lease_scratch(go::frame_scratch_buffer_len(1 << 20, Some(300))).unwrap();
    assert_eq!(small.capacity(), 512 << 10, "the small stream holds the upload's 512 KiB buffer");
    let scratch = &pool.stats().scratch_pools[0];
    assert_eq!((scratch.hits, scratch.misses, scratch.leased_bytes), (1, 1, 512 << 10));
    pool.release(small);
}

#[test]
fn single_drops_a_popped_buffer_that_is_too_small() {
    let mut pool = Pool::new(PoolConfig::new(Policy::Single));
    let small = pool.lease_scratch(100).unwrap();
    pool.release(small);
    let bigger = pool.lease_scratch(1000).unwrap();
    assert_eq!(bigger.capacity(), 1000, "allocated at exactly the asked length");
    let stats = pool.stats();
    assert_eq!((stats.idle_bytes, stats.scratch_pools[0].trims, stats.scratch_pools[0].misses), (0, 1, 2));
    pool.release(bigger);
    assert_eq!(pool.stats().idle_bytes, 1000);
}

#[test]
fn go7_keeps_small_streams_out_of_large_buffers() {
    let mut pool = Pool::new(PoolConfig::new(Policy::Go7));
    let upload = pool.lease_scratch(512 << 10).unwrap();
    pool.release(upload);
    let small = pool.lease_scratch(301).unwrap();
    assert_eq!(small.capacity(), 301);
    let stats = pool.stats();
    assert_eq!(stats.scratch_pools.len(), 7);
    assert_eq!((stats.scratch_pools[5].idle_bytes, stats.scratch_pools[0].leased_bytes), (512 << 10, 301));
    let sizes: Vec<usize> = stats.scratch_pools.iter().map(|p| p.size).collect();
    assert_eq!(sizes, [16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, usize::MAX]);
    pool.release(small);
}

#[test]
fn go_idle_buffers_are_freed_by_the_second_gc_cycle() {
    let mut pool = Pool::new(PoolConfig::new(Policy::Go7));
    let kept = pool.lease_scratch(100 << 10).unwrap();
    pool.release(kept);
    // Allocate (and keep) 512 KiB buffers: the heap is 100 KiB idle plus
    // what is leased; the first cycle comes when the heap reaches 4 MiB.
    let mut leased = Vec::new();
    while pool.stats().gc_cycles == 0 {
        leased.push(pool.lease_scratch(512 << 10).unwrap());
    }
    assert_eq!(leased.len(), 8, "100 KiB + 8 x 512 KiB crosses 4 MiB");
    assert_eq!(pool.stats().scratch_pools[3].idle_bytes, 100 << 10, "one cycle: moved to the victim cache");
    // The goal is now twice the marked heap (100 KiB + 4 MiB leased).
    while pool.stats().gc_cycles == 1 {
        leased.push(pool.lease_scratch(512 << 10).unwrap());
    }
    assert_eq!(leased.len(), 17, "4196 KiB marked, goal 8392 KiB: 9 more 512 KiB allocations");
    let stats = pool.stats();
    assert_eq!((stats.scratch_pools[3].idle_bytes, stats.scratch_pools[3].trims), (0, 1), "second cycle frees it");
    for buf in leased {
        pool.release(buf);
    }
}

#[test]
fn budget_trimming_reaches_the_go_caches() {
    let config = PoolConfig { budget_bytes: 1 << 20, ..PoolConfig::new(Policy::Single) };
    let mut pool = Pool::new(config);
    let a = pool.lease_scratch(600 << 10).unwrap();
    pool.release(a);
    // 600 KiB idle; a 600 KiB lease reuses it, a 700 KiB one must free it.
    let b = pool.lease_scratch(700 << 10).unwrap();
    let stats = pool.stats();
    assert_eq!((stats.leased_bytes, stats.idle_bytes), (700 << 10, 0));
    pool.release(b);
}

#[test]
fn a_buffer_from_another_pool_is_freed_not_counted() {
    let mut a = Pool::new(tiered());
    let mut b = Pool::new(PoolConfig::new(Policy::Go7));
    let from_a = a.lease(100).unwrap();
    let from_b = b.lease_scratch(100).unwrap();
    let (before_a, before_b) = (a.stats(), b.stats());
    a.release(from_b);
    b.release(from_a);
    assert_eq!((a.stats(), b.stats()), (before_a, before_b));
}

#[test]
fn a_buffer_as_buf_mut_fills_to_its_capacity_and_never_grows() {
    use bytes::BufMut;
    let mut pool = Pool::new(tiered());
    let mut buf = pool.lease(256).unwrap();
    buf.put_u8(1);
    buf.put_slice(&[2; 254]);
    buf.put_u8(3);
    assert_eq!((buf.len(), buf.capacity(), buf.remaining_mut()), (256, 256, 0));
    assert_eq!((buf.as_slice()[0], buf.as_slice()[1], buf.as_slice()[254], buf.as_slice()[255]), (1, 2, 2, 3));
    let past = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| buf.put_u8(4)));
    assert!(past.is_err(), "a write past the capacity must not reallocate");
    assert_eq!((buf.len(), buf.capacity()), (256, 256));
    pool.release(buf);
}
