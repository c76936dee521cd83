use super::*;
use crate::pool::PoolShare;

fn tiered() -> PoolConfig {
    PoolConfig::default()
}

#[test]
fn leases_come_from_the_smallest_class_that_fits() {
    let pool = Pool::new(tiered());
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
    let pool = Pool::new(tiered());
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
    let pool = Pool::new(config);
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
    let pool = Pool::new(config);
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
fn a_buffer_from_another_pool_is_freed_not_counted() {
    let a = Pool::new(tiered());
    let b = Pool::new(tiered());
    let from_a = a.lease(100).unwrap();
    let from_b = b.lease(100).unwrap();
    let (before_a, before_b) = (a.stats(), b.stats());
    a.release(from_b);
    b.release(from_a);
    assert_eq!((a.stats(), b.stats()), (before_a, before_b));
}

#[test]
fn a_buffer_as_buf_mut_fills_to_its_capacity_and_never_grows() {
    use bytes::BufMut;
    let pool = Pool::new(tiered());
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

#[test]
fn clones_share_one_pool_and_shares_count_what_each_connection_leases() {
    let pool = Pool::new(PoolConfig { idle_total_bytes: 1280, ..tiered() });
    let clone = pool.clone();
    let mut first = PoolShare::new(&pool, None);
    let mut second = PoolShare::new(&clone, Some(1024));
    assert_eq!(pool.stats().connections, 2);
    let a = first.lease(4096).unwrap();
    let b = second.lease(1000).unwrap();
    assert_eq!((first.leased_bytes(), second.leased_bytes(), pool.leased_bytes()), (4096, 1024, 5120));
    assert_eq!(
        second.lease(1).unwrap_err(),
        PoolError::ShareExceeded { requested: 256, leased: 1024, share: 1024 },
        "the second connection is at its share"
    );
    let c = first.lease(1).unwrap();
    first.release(a);
    second.release(b);
    first.release(c);
    // One idle cache for both, capped for the whole pool: 1024 + 256 fits, 4096 does not.
    let stats = clone.stats();
    assert_eq!((stats.leased_bytes, stats.idle_bytes, first.leased_bytes(), second.leased_bytes()), (0, 1280, 0, 0));
    drop(second);
    assert_eq!(pool.stats().connections, 1);
}
