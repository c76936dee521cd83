//! 100 000 open streams that each sent one small message, all drained: under
//! `tiered` they hold no buffer at all (the connection's and the pool's
//! leased bytes are zero); under `go7` each holds its Go scratch buffer,
//! which the Go pools' statistics attribute to them.

mod conn_common;

use conn_common::{drain_all, request};
#[cfg(feature = "baselines")]
use h2fw::baseline::{GoPools, Model};
use h2fw::conn::{Config, Connection, StreamHints};
use h2fw::pool::Pool;

/// Opens `count` streams on `conn`, sends a 200-byte message on each,
/// drains as it goes.
fn idle_streams(mut conn: Connection, count: u32) -> Connection {
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
    let conn = idle_streams(Connection::new(Config::default(), &Pool::default()), 100_000);
    let stats = conn.stats();
    assert_eq!(stats.open_streams, 100_000);
    assert_eq!((stats.live_bytes, stats.pending_bytes, stats.pending_streams), (0, 0, 0));
    assert_eq!(stats.leased_bytes, 0);
    let pool = conn.pool().stats();
    assert_eq!(pool.leased_bytes, 0);
    assert!(pool.idle_bytes <= 1 << 20, "idle within the cap");
    assert!(stats.bytes_drained > 100_000 * 200);
}

#[cfg(feature = "baselines")]
#[test]
fn go7_idle_streams_each_hold_their_scratch_buffer() {
    let go = GoPools::new(Model::Go7);
    let conn = idle_streams(Connection::with_baseline(Config::default(), &Pool::default(), &go), 1000);
    let stats = conn.stats();
    assert_eq!(stats.open_streams, 1000);
    assert_eq!(stats.live_bytes, 0);
    // frameScratchBufferLen with the default 16 KiB frames and no length: 16 KiB each.
    let scratch = go.stats();
    assert_eq!(scratch.pools[0].leased_bytes, 1000 * 16_384);
    // All that is held is the scratch: nothing of the tiered pool.
    assert_eq!(scratch.leased_bytes, 1000 * 16_384);
    assert_eq!((stats.leased_bytes, conn.pool().stats().leased_bytes), (0, 0));
}
