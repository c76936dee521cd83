//! Scheduling and buffering: round-robin DATA, chunk sizes from hints and
//! writes, dense output, and the baselines' per-stream scratch buffers.

mod conn_common;

use conn_common::{Peer, body, decode, drain_all, raw_frames, request, streams};
#[cfg(feature = "baselines")]
use h2fw::baseline::{GoPools, Model};
#[cfg(feature = "baselines")]
use h2fw::conn::Error;
use h2fw::conn::{Config, Connection, StreamHints};
use h2fw::frame::setting;
use h2fw::pool::{Pool, PoolStats};

const DATA: u8 = 0x0;
const K: usize = 1 << 10;

fn open(conn: &mut Connection, stream: u32, content_length: Option<u64>) {
    conn.open_stream(stream, &request("/s").get(), StreamHints { content_length }, false).unwrap();
}

/// A connection whose peer grants no stream window yet, alone in its pool.
fn stalled(max_frame_size: u32) -> Connection {
    stall(Connection::new(Config::default(), &Pool::default()), max_frame_size)
}

/// `stalled` under a Go baseline: also returns the Go scratch pools.
#[cfg(feature = "baselines")]
fn stalled_baseline(model: Model, max_frame_size: u32) -> (Connection, GoPools) {
    let go = GoPools::new(model);
    let conn = Connection::with_baseline(Config::default(), &Pool::default(), &go);
    (stall(conn, max_frame_size), go)
}

/// Takes the peer's stream windows away and opens the connection window.
fn stall(mut conn: Connection, max_frame_size: u32) -> Connection {
    let settings = [(setting::INITIAL_WINDOW_SIZE, 0), (setting::MAX_FRAME_SIZE, max_frame_size)];
    conn.apply_peer_settings(&settings).unwrap();
    conn.apply_window_update(0, 1 << 30).unwrap();
    conn
}

fn class(stats: &PoolStats, size: usize) -> (usize, usize) {
    let c = stats.classes.iter().find(|c| c.size == size).unwrap();
    (c.leased_buffers, c.leased_bytes)
}

#[test]
fn data_is_scheduled_round_robin_over_streams() {
    let mut conn = stalled(16_384);
    for id in [1, 3, 5] {
        open(&mut conn, id, None);
        assert_eq!(conn.send(id, &body(id, 0, 48 * K)).unwrap(), 48 * K);
    }
    for id in [1, 3, 5] {
        conn.apply_window_update(id, 1 << 20).unwrap();
    }
    let mut wire = Vec::new();
    drain_all(&mut conn, 1 << 20, &mut wire);
    let order: Vec<u32> = raw_frames(&wire).iter().filter(|f| f.0 == DATA).map(|f| f.2).collect();
    assert_eq!(order, [1, 3, 5, 1, 3, 5, 1, 3, 5]);
    let views = streams(decode(&wire, 16_384));
    assert!([1, 3, 5].iter().all(|&id| views[&id].body == body(id, 0, 48 * K)));
}

#[test]
fn pending_chunks_are_sized_from_hints_and_writes() {
    let mut conn = stalled(1 << 20);
    open(&mut conn, 1, None); // gRPC-like: small messages, no length
    open(&mut conn, 3, Some(8 << 20)); // a large declared upload
    open(&mut conn, 5, None); // a large streaming upload
    let output = conn.pool().stats().leased_bytes; // the chunk holding the HEADERS
    assert_eq!(output, 16 * K);
    assert_eq!(conn.stats().leased_bytes, output, "alone in its pool");

    for i in 0..10 {
        assert_eq!(conn.send(1, &body(1, i * 200, 200)).unwrap(), 200);
    }
    // 2000 bytes in chunks of at most 512 bytes, though the peer allows
    // 1 MiB frames, with less than one such chunk unused.
    let stats = conn.pool().stats();
    let small: usize = stats.classes.iter().filter(|c| c.size <= 512).map(|c| c.leased_bytes).sum();
    assert_eq!(stats.leased_bytes, output + small);
    assert!((2000..2000 + 512).contains(&small), "{small}");

    // 512 KiB each: the default stream watermark.
    assert_eq!(conn.send(3, &vec![3; 512 * K]).unwrap(), 512 * K);
    assert_eq!(class(&conn.pool().stats(), 64 * K), (8, 512 * K), "declared 8 MiB: 64 KiB chunks");
    assert_eq!(conn.send(5, &vec![5; 512 * K]).unwrap(), 512 * K);
    assert_eq!(class(&conn.pool().stats(), 16 * K), (1 + 32, (1 + 32) * 16 * K), "streaming: 16 KiB chunks");

    for id in [1, 3, 5] {
        conn.apply_window_update(id, 1 << 21).unwrap();
    }
    let mut wire = Vec::new();
    drain_all(&mut conn, 1 << 22, &mut wire);
    let largest = |id: u32| raw_frames(&wire).iter().filter(|f| f.0 == DATA && f.2 == id).map(|f| f.3).max();
    assert!(largest(1) <= Some(512));
    assert_eq!((largest(3), largest(5)), (Some(64 * K), Some(16 * K)));
    assert_eq!(conn.stats().leased_bytes, 0);
    assert_eq!(conn.pool().stats().leased_bytes, 0);
}

#[test]
fn a_backlog_of_small_writes_gets_growing_chunks_and_stays_dense() {
    let mut conn = stalled(16_384);
    open(&mut conn, 1, None);
    let mut pending = 0;
    for i in 0..1000 {
        pending += conn.send(1, &body(1, i * 200, 200)).unwrap();
    }
    assert_eq!(pending, 200_000);
    let stats = conn.pool().stats();
    assert_eq!(conn.stats().leased_bytes, stats.leased_bytes, "alone in its pool");
    let chunks: usize = stats.classes.iter().map(|c| c.leased_buffers).sum::<usize>() - 1; // minus the output chunk
    let leased = stats.leased_bytes - 16 * K;
    assert!(chunks < 60, "{chunks} chunks for 1000 writes");
    assert!(leased <= pending * 5 / 4 + 16 * K, "{leased} bytes leased for {pending} pending");
}

#[test]
fn data_framed_at_once_is_packed_densely() {
    let config = Config { output_high_watermark: 1 << 20, ..Config::default() };
    let mut conn = Connection::new(config, &Pool::default());
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 20)]).unwrap();
    conn.apply_window_update(0, 1 << 30).unwrap();
    for id in (1..2000).step_by(2) {
        open(&mut conn, id, None);
        assert_eq!(conn.send(id, &body(id, 0, 200)).unwrap(), 200);
    }
    let stats = conn.stats();
    assert_eq!(stats.pending_bytes, 0, "everything framed at once");
    assert!(stats.leased_bytes <= stats.queued_bytes + 16 * K, "{stats:?}");
    assert_eq!(conn.pool().stats().leased_bytes, stats.leased_bytes, "alone in its pool");
    let mut peer = Peer::default();
    let sent = peer.drain_data(&mut conn, 16_384);
    assert!(sent.len() == 1000 && sent.values().all(|&n| n == 200));
    assert_eq!(conn.stats().leased_bytes, 0, "open idle streams hold nothing");
    assert_eq!(conn.pool().stats().leased_bytes, 0);
}

#[cfg(feature = "baselines")]
#[test]
fn go7_streams_hold_a_go_sized_scratch_buffer_for_their_life() {
    let (mut conn, go) = stalled_baseline(Model::Go7, 16_384);
    open(&mut conn, 1, None);
    open(&mut conn, 3, Some(100));
    let scratch = &go.stats().pools[0];
    assert_eq!((scratch.leased_buffers, scratch.leased_bytes), (2, 16_384 + 101));
    // The scratch buffer is all a stream can hold: Go reads no more than it.
    assert_eq!(conn.send(1, &[1; 20_000]).unwrap(), 16_384);
    assert_eq!(conn.send(1, &[1; 10]), Err(Error::WouldBlock { stream: 1, pending: 16_384 }));
    assert_eq!(conn.send(3, &[3; 100]).unwrap(), 100);
    conn.apply_window_update(1, 1 << 20).unwrap();
    conn.apply_window_update(3, 1 << 20).unwrap();
    drain_all(&mut conn, 1 << 20, &mut Vec::new());
    // Drained but open: each stream still holds its buffer.
    assert_eq!(go.stats().pools[0].leased_bytes, 16_384 + 101);
    conn.finish(1, None).unwrap();
    conn.finish(3, None).unwrap();
    drain_all(&mut conn, 1 << 20, &mut Vec::new());
    // The server answers each request: the streams close.
    conn.apply_peer_headers(1, true).unwrap();
    conn.apply_peer_headers(3, true).unwrap();
    let stats = go.stats();
    assert_eq!((stats.pools[0].leased_bytes, stats.pools[0].idle_bytes), (0, 16_384 + 101));
}

#[cfg(feature = "baselines")]
#[test]
fn single_hands_an_uploads_buffer_to_a_small_stream_and_go7_does_not() {
    for (policy, small_scratch) in [(Model::Single, 512 * K), (Model::Go7, 301)] {
        let (mut conn, go) = stalled_baseline(policy, 1 << 20);
        conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 24)]).unwrap();
        open(&mut conn, 1, Some(8 << 20));
        let mut sent = 0;
        while sent < 8 << 20 {
            sent += conn.send(1, &vec![1; (8 << 20) - sent]).unwrap();
            drain_all(&mut conn, 1 << 22, &mut Vec::new());
        }
        conn.finish(1, None).unwrap();
        drain_all(&mut conn, 1 << 20, &mut Vec::new());
        conn.apply_peer_headers(1, true).unwrap(); // the server answers the upload
        open(&mut conn, 3, Some(300));
        let scratch: usize = go.stats().pools.iter().map(|p| p.leased_bytes).sum();
        assert_eq!(scratch, small_scratch, "{policy:?}");
        assert_eq!(go.stats().leased_bytes, small_scratch, "{policy:?}");
    }
}

/// Go returns a stream's scratch buffer when its body is written
/// (`writeRequestBody` puts it back on return), not when the peer answers;
/// the model now keeps it until the stream closes, so baseline peaks count
/// buffers Go has already given back for every stream awaiting its response.
#[cfg(feature = "baselines")]
#[test]
fn go7_scratch_goes_back_when_the_body_is_written() {
    let (mut conn, go) = stalled_baseline(Model::Go7, 16_384);
    open(&mut conn, 1, None);
    conn.apply_window_update(1, 1 << 20).unwrap();
    assert_eq!(conn.send(1, &[1; 1000]).unwrap(), 1000);
    conn.finish(1, None).unwrap();
    drain_all(&mut conn, 1 << 20, &mut Vec::new());
    assert_eq!(go.stats().pools[0].leased_bytes, 0, "the body is out: Go has put the buffer back");
}
