//! 100 000 open streams that each sent one small message, all drained: under
//! `Tiered` they hold no buffer at all (the pool's leased bytes are zero);
//! under `go7` each holds its Go scratch buffer, which the same statistics
//! attribute to them.

mod conn_common;

use conn_common::{drain_all, request};
use h2fw::conn::{Config, Connection, StreamHints};
use h2fw::pool::Policy;

/// Opens `count` streams, sends a 200-byte message on each, drains as it goes.
fn idle_streams(policy: Policy, count: u32) -> Connection {
    let mut conn = Connection::new(Config::new(policy));
    conn.apply_window_update(0, (1 << 31) - 1 - 65_535).unwrap();
    let fields = request("/svc/Method");
    let message = [0x42; 200];
    let mut wire = Vec::new();
    for i in 0..count {
        let id = 2 * i + 1;
        conn.open_stream(id, &fields.get(), StreamHints::default(), false).unwrap();
        assert_eq!(conn.send(id, &message).unwrap(), 200);
        if i % 256 == 255 {
            drain_all(&mut conn, 1 << 20, &mut wire);
            wire.clear();
        }
    }
    drain_all(&mut conn, 1 << 20, &mut wire);
    conn
}

#[test]
fn a_hundred_thousand_idle_streams_hold_no_buffer() {
    let conn = idle_streams(Policy::Tiered, 100_000);
    let stats = conn.stats();
    assert_eq!(stats.open_streams, 100_000);
    assert_eq!((stats.live_bytes, stats.pending_bytes, stats.pending_streams), (0, 0, 0));
    assert_eq!(stats.pool.leased_bytes, 0);
    assert!(stats.pool.idle_bytes <= 1 << 20, "idle within the cap");
    assert!(stats.bytes_drained > 100_000 * 200);
}

#[test]
fn go7_idle_streams_each_hold_their_scratch_buffer() {
    let conn = idle_streams(Policy::Go7, 1000);
    let stats = conn.stats();
    assert_eq!(stats.open_streams, 1000);
    assert_eq!(stats.live_bytes, 0);
    // frameScratchBufferLen with the default 16 KiB frames and no length: 16 KiB each.
    assert_eq!(stats.pool.scratch_pools[0].leased_bytes, 1000 * 16_384);
    assert_eq!(stats.pool.leased_bytes, 1000 * 16_384);
}
