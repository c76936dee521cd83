//! Backpressure: writes past a watermark or the pool budget are partly taken
//! or refused, never buffered without bound; a refused call changes nothing;
//! once drained, the same connection carries on.

mod conn_common;

use conn_common::{Fields, Peer, body, decode, drain_all, observable, pool_with_budget, request, streams};
use h2fw::conn::{Config, Connection, Error, HeadersOptions, StreamHints};
use h2fw::frame::{Frame, setting};
use h2fw::pool::{Pool, PoolError};

fn open(conn: &mut Connection, stream: u32) {
    conn.open_stream(stream, &request("/bp").get(), StreamHints::default(), false).unwrap();
}

/// A connection on `pool` whose peer grants no stream window, so every body byte waits.
fn stalled(config: Config, pool: &Pool) -> Connection {
    let mut conn = Connection::new(config, pool);
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]).unwrap();
    conn.apply_window_update(0, 1 << 30).unwrap();
    conn
}

#[test]
fn the_stream_watermark_takes_part_of_a_write_then_refuses() {
    let config = Config { stream_high_watermark: 100_000, ..Config::default() };
    let mut conn = stalled(config, &Pool::default());
    open(&mut conn, 1);
    assert_eq!(conn.send(1, &body(1, 0, 60_000)).unwrap(), 60_000);
    assert_eq!(conn.send(1, &body(1, 60_000, 60_000)).unwrap(), 40_000);
    let before = conn.stats();
    assert_eq!(conn.send(1, &[0; 10]), Err(Error::WouldBlock { stream: 1, pending: 100_000 }));
    assert_eq!(observable(&conn.stats()), observable(&before));
    // Another stream is not held back by stream 1's watermark.
    open(&mut conn, 3);
    assert_eq!(conn.send(3, &body(3, 0, 10)).unwrap(), 10);
    // Once the peer reads, stream 1 takes bytes again.
    conn.apply_window_update(1, 50_000).unwrap();
    let mut peer = Peer::default();
    assert_eq!(peer.drain_data(&mut conn, 16_384).get(&1), Some(&50_000));
    assert_eq!(conn.send(1, &body(1, 100_000, 70_000)).unwrap(), 50_000);
}

#[test]
fn the_connection_watermark_counts_every_stream_and_queued_output() {
    let config = Config { conn_high_watermark: 150_000, ..Config::default() };
    let mut conn = stalled(config, &Pool::default());
    open(&mut conn, 1);
    open(&mut conn, 3);
    open(&mut conn, 5);
    assert_eq!(conn.send(1, &[1; 100_000]).unwrap(), 100_000);
    let live = conn.stats().live_bytes; // 100 000 pending plus the preface and three queued HEADERS frames
    assert!(live > 100_000);
    assert_eq!(conn.send(3, &[3; 100_000]).unwrap(), 150_000 - live);
    assert_eq!(conn.stats().live_bytes, 150_000);
    assert_eq!(conn.send(5, &[5; 1]), Err(Error::WouldBlock { stream: 5, pending: 0 }));
    // Draining the queued preface and HEADERS makes room for exactly that many bytes.
    let queued = conn.stats().queued_bytes;
    drain_all(&mut conn, 1 << 20, &mut Vec::new());
    assert_eq!(conn.send(5, &[5; 100_000]).unwrap(), queued);
}

#[test]
fn a_write_past_the_budget_is_refused_and_the_connection_carries_on_after_draining() {
    let mut conn = stalled(Config::default(), &pool_with_budget(96 << 10));
    let mut wire = Vec::new();
    conn.write_preface(&[]).unwrap();
    open(&mut conn, 1);
    let data = body(1, 0, 200_000);
    let taken = conn.send(1, &data).unwrap();
    assert!(taken < 96 << 10, "took {taken} bytes within a 96 KiB budget");
    let stats = conn.pool().stats();
    assert!(stats.leased_bytes + stats.idle_bytes <= 96 << 10);
    assert_eq!(conn.stats().leased_bytes, stats.leased_bytes, "alone in its pool");

    // Everything further is refused, whole, with nothing changed.
    let before = conn.stats();
    let refused = conn.send(1, &data[taken..]);
    assert!(matches!(refused, Err(Error::Pool(PoolError::BudgetExceeded { .. }))), "{refused:?}");
    let big = vec![0u8; 64 << 10];
    let raw = conn.raw().write_frame(&Frame::Data { stream: 7, data: &big, end_stream: false, pad_length: None });
    assert!(matches!(raw, Err(Error::Pool(PoolError::BudgetExceeded { .. }))), "{raw:?}");
    let long_value = "v".repeat(40_000);
    let fields = Fields::new(&[(":status", "200"), ("x-big", &long_value), ("x-tag", "kept-out")]);
    let headers = conn.raw().write_headers(9, &fields.get(), HeadersOptions::default());
    assert!(matches!(headers, Err(Error::Pool(_))), "{headers:?}");
    assert_eq!(observable(&conn.stats()), observable(&before));

    // The peer opens the window; draining frees the pool; the same
    // connection takes the rest, and the refused header block never
    // touched the HPACK table (h2 decodes what follows).
    conn.apply_window_update(1, 1 << 20).unwrap();
    let mut sent = taken;
    while sent < data.len() {
        drain_all(&mut conn, 1 << 16, &mut wire);
        sent += conn.send(1, &data[sent..]).unwrap();
    }
    conn.finish(1, None).unwrap();
    let small = Fields::new(&[(":status", "200"), ("x-tag", "after")]);
    conn.raw()
        .write_headers(9, &small.get(), HeadersOptions { end_stream: true, ..HeadersOptions::default() })
        .unwrap();
    drain_all(&mut conn, 1 << 16, &mut wire);
    assert_eq!(conn.stats().leased_bytes, 0);
    assert_eq!(conn.pool().stats().leased_bytes, 0);
    let views = streams(decode(&wire, 16_384));
    assert!(views[&1].body == data && views[&1].ended);
    assert_eq!(views[&9].header_blocks, [(None, vec![("x-tag".to_string(), "after".to_string())])]);
}

#[test]
fn trailers_waiting_for_memory_do_not_hold_back_other_streams() {
    let mut conn = stalled(Config::default(), &pool_with_budget(96 << 10));
    let mut wire = Vec::new();
    open(&mut conn, 1);
    open(&mut conn, 3);
    drain_all(&mut conn, 1 << 20, &mut wire); // the HEADERS; their chunk goes idle
    let small = body(1, 0, 1000);
    assert_eq!(conn.send(1, &small).unwrap(), 1000);
    let trailers = Fields::new(&[("grpc-status", "0")]);
    conn.finish(1, Some(&trailers.get())).unwrap();
    // Stream 3 fills the rest of the budget: less than an output chunk is left.
    let big = body(3, 0, 200_000);
    let mut taken = 0;
    while let Ok(n) = conn.send(3, &big[taken..]) {
        taken += n;
    }
    let stats = conn.pool().stats();
    assert!(stats.leased_bytes + (16 << 10) > 96 << 10, "{stats:?}");
    assert_eq!(conn.stats().leased_bytes, stats.leased_bytes, "alone in its pool");

    // Stream 1 is first in line, but its trailers need an output chunk that
    // only stream 3's DATA can free: everything must still go out.
    conn.apply_window_update(1, 1 << 20).unwrap();
    conn.apply_window_update(3, 1 << 20).unwrap();
    drain_all(&mut conn, 1 << 20, &mut wire);
    let views = streams(decode(&wire, 16_384));
    assert_eq!(views[&1].body, small);
    assert_eq!(views[&1].trailers.as_deref(), Some(&[("grpc-status".to_string(), "0".to_string())][..]));
    assert_eq!(views[&3].body, big[..taken]);
    let stats = conn.stats();
    assert_eq!((stats.live_bytes, stats.leased_bytes, stats.open_streams), (0, 0, 1));
    assert_eq!(conn.pool().stats().leased_bytes, 0);
}
