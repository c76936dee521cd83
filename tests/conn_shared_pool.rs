//! Many connections leasing from one shared pool: per-connection shares of
//! the budget, one budget for all, idle connections holding nothing, and
//! dropped connections giving everything back. Every wire a connection
//! produces is decoded with h2's `Codec`. (The randomised version, 2 to 6
//! connections on one pool, is in `conn_random_mixes.rs`.)

mod conn_common;

use std::collections::BTreeMap;

use conn_common::{Fields, body, decode, drain_all, observable, pool_with_budget, request, streams};
use h2fw::conn::{Config, Connection, Error, StreamHints};
use h2fw::frame::setting;
use h2fw::pool::{Pool, PoolError};

const K: usize = 1 << 10;

fn open(conn: &mut Connection, stream: u32) {
    conn.open_stream(stream, &request("/shared").get(), StreamHints::default(), false).unwrap();
}

/// A connection on `pool` whose peer grants no stream window (so every body
/// byte waits in the pool) and a wide connection window.
fn stalled(config: Config, pool: &Pool) -> Connection {
    let mut conn = Connection::new(config, pool);
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]).unwrap();
    conn.apply_window_update(0, 1 << 30).unwrap();
    conn
}

/// Sends all of `data` on `stream`, draining into `wire` whenever the
/// connection pushes back; `check` sees the connection after every call.
fn send_all(conn: &mut Connection, stream: u32, data: &[u8], wire: &mut Vec<u8>, check: impl Fn(&Connection)) {
    let mut sent = 0;
    while sent < data.len() {
        match conn.send(stream, &data[sent..]) {
            Ok(n) => sent += n,
            Err(Error::Pool(_) | Error::WouldBlock { .. }) => {
                assert!(drain_all(conn, 1 << 20, wire) > 0, "stuck on stream {stream}");
            }
            Err(error) => panic!("stream {stream}: {error}"),
        }
        check(conn);
    }
}

/// The pool's leased bytes are what `conns` hold together.
fn assert_pool_is_the_sum(pool: &Pool, conns: &[&Connection]) {
    let held: usize = conns.iter().map(|c| c.stats().leased_bytes).sum();
    assert_eq!(pool.leased_bytes(), held, "pool leased bytes vs the connections'");
}

// Proves: a connection's `pool_share` caps what it holds leased from a
// shared pool. Its sends are refused with the typed `ShareExceeded` (taking
// what fits first, then nothing, and changing nothing) and its leased bytes
// never pass the share, while a second connection without a share on the
// same pool keeps sending and queuing twenty times as much. Once A's peer
// opens its window and A drains, A sends again, still within its share, and
// both wires decode with h2 carrying exactly the bodies sent.
#[test]
fn a_share_caps_one_connection_while_another_keeps_queuing() {
    const SHARE: usize = 64 * K;
    let pool = Pool::default();
    let config = Config { pool_share: Some(SHARE), ..Config::default() };
    let mut a = stalled(config, &pool);
    let mut b = stalled(Config::default(), &pool);
    let (mut wire_a, mut wire_b) = (Vec::new(), Vec::new());
    open(&mut a, 1);
    for id in [1, 3, 5] {
        open(&mut b, id);
    }
    assert_eq!(pool.stats().connections, 2);

    // A takes 16 KiB chunks until its share (with the HEADERS chunk) is full.
    let data_a = body(1, 0, 1 << 20);
    let mut taken = 0;
    let refusal = loop {
        match a.send(1, &data_a[taken..]) {
            Ok(n) => taken += n,
            Err(error) => break error,
        }
        assert!(a.stats().leased_bytes <= SHARE);
    };
    assert!(
        matches!(refusal, Error::Pool(PoolError::ShareExceeded { share: SHARE, leased, .. }) if leased <= SHARE),
        "{refusal:?}"
    );
    assert_eq!(taken, SHARE - 16 * K, "the share less the output chunk holding the HEADERS");
    assert_eq!(a.stats().leased_bytes, SHARE);
    let before = a.stats();
    let again = a.send(1, &data_a[taken..]);
    assert!(matches!(again, Err(Error::Pool(PoolError::ShareExceeded { .. }))), "{again:?}");
    assert_eq!(observable(&a.stats()), observable(&before), "a refused call changed A");

    // B, on the same pool, queues twenty times A's share.
    let data_b: BTreeMap<u32, Vec<u8>> = [1, 3, 5].map(|id| (id, body(id, 0, 440 * K))).into();
    for (&id, data) in &data_b {
        assert_eq!(b.send(id, data).unwrap(), data.len(), "stream {id} of B");
    }
    let b_leased = b.stats().leased_bytes;
    assert!(b_leased >= 20 * SHARE, "B holds {b_leased}");
    assert_eq!(a.stats().leased_bytes, SHARE, "A unchanged");
    assert_pool_is_the_sum(&pool, &[&a, &b]);
    // A is still refused by its share, not by the pool's budget.
    let still = a.send(1, &data_a[taken..]);
    assert!(matches!(still, Err(Error::Pool(PoolError::ShareExceeded { .. }))), "{still:?}");

    // A's peer reads: A drains, holds nothing, and sends the rest.
    a.apply_window_update(1, 1 << 20).unwrap();
    assert!(drain_all(&mut a, 1 << 20, &mut wire_a) > taken);
    assert_eq!(a.stats().leased_bytes, 0);
    let resumed = a.send(1, &data_a[taken..]).unwrap();
    assert!(resumed > 0);
    taken += resumed;
    send_all(&mut a, 1, &data_a[taken..], &mut wire_a, |a| assert!(a.stats().leased_bytes <= SHARE));
    // The body used the whole stream window; the empty END_STREAM waits for
    // a positive one (RFC 9113 §6.9): the peer returns the credit it read.
    a.apply_window_update(1, 1 << 20).unwrap();
    a.finish(1, None).unwrap();
    drain_all(&mut a, 1 << 20, &mut wire_a);
    assert!(a.stats().peak_leased_bytes <= SHARE);

    // B's peer reads too.
    for &id in data_b.keys() {
        b.apply_window_update(id, 1 << 20).unwrap();
        b.finish(id, None).unwrap();
    }
    drain_all(&mut b, 1 << 20, &mut wire_b);
    assert_eq!((a.stats().leased_bytes, b.stats().leased_bytes, pool.leased_bytes()), (0, 0, 0));

    let views_a = streams(decode(&wire_a, 16_384));
    assert!(views_a[&1].body == data_a && views_a[&1].ended, "A's body");
    let views_b = streams(decode(&wire_b, 16_384));
    for (id, data) in &data_b {
        assert!(views_b[id].body == *data && views_b[id].ended, "B's stream {id}");
    }
}

// Proves: a connection whose output is fully drained holds no pool buffer
// (its streams stay open, idle), and the pool's idle cache stays within
// `idle_total_bytes` however many connections pass bursts through it: 200
// connections each queue a burst at once (some 60 MiB leased together),
// then drain one by one; after each drain that connection holds nothing,
// the pool's leased bytes are what the others still hold, and idle bytes
// (now and at their peak) never pass the cap. A second round of bursts is
// served from the idle cache. Each connection's wire decodes with h2.
#[test]
fn drained_connections_hold_nothing_and_idle_stays_capped() {
    const CONNECTIONS: u32 = 200;
    let pool = Pool::default();
    let cap = pool.config().idle_total_bytes;
    let mut conns: Vec<Connection> = (0..CONNECTIONS).map(|_| Connection::new(Config::default(), &pool)).collect();
    let mut wires: Vec<Vec<u8>> = vec![Vec::new(); conns.len()];
    let mut sent: Vec<BTreeMap<u32, Vec<u8>>> = vec![BTreeMap::new(); conns.len()];
    let burst =
        |i: usize, round: usize, id: u32| body(id + i as u32, round * 300 * K, [300 * K, 700, 20 * K][id as usize / 2]);

    for round in 0..2 {
        let hits_before: u64 = pool.stats().classes.iter().map(|c| c.hits).sum();
        // Every connection queues its burst: more than the windows take at once.
        for (i, conn) in conns.iter_mut().enumerate() {
            if round == 0 {
                conn.write_preface(&[]).unwrap();
                for id in [1, 3, 5] {
                    open(conn, id);
                }
            }
            for id in [1, 3, 5] {
                let data = burst(i, round, id);
                assert_eq!(conn.send(id, &data).unwrap(), data.len());
                sent[i].entry(id).or_default().extend_from_slice(&data);
            }
        }
        let stats = pool.stats();
        assert!(stats.leased_bytes >= CONNECTIONS as usize * 320 * K, "{}", stats.leased_bytes);
        assert!(stats.idle_bytes <= cap);

        // Then each drains in turn, its peer granting what the burst needs.
        for i in 0..conns.len() {
            let conn = &mut conns[i];
            conn.apply_window_update(0, 330 * K as u32).unwrap();
            for id in [1, 3, 5] {
                conn.apply_window_update(id, 330 * K as u32).unwrap();
            }
            drain_all(conn, 1 << 20, &mut wires[i]);
            let stats = conn.stats();
            assert_eq!((stats.live_bytes, stats.leased_bytes, stats.open_streams), (0, 0, 3), "connection {i}");
            let all: Vec<&Connection> = conns.iter().collect();
            assert_pool_is_the_sum(&pool, &all);
            let pool_stats = pool.stats();
            assert!(pool_stats.idle_bytes <= cap, "idle {} past the cap", pool_stats.idle_bytes);
        }
        let stats = pool.stats();
        assert_eq!(stats.leased_bytes, 0, "every connection drained: nothing leased");
        assert!(stats.idle_bytes <= cap && stats.peak_idle_bytes <= cap, "{stats:?}");
        let hits: u64 = stats.classes.iter().map(|c| c.hits).sum();
        assert!(hits > hits_before, "round {round}: idle buffers are leased again");
    }

    for (i, wire) in wires.iter().enumerate() {
        let views = streams(decode(wire, 16_384));
        for (id, data) in &sent[i] {
            assert!(views[id].body == *data && !views[id].ended, "connection {i}, stream {id}");
        }
    }
    assert_eq!(pool.stats().connections, CONNECTIONS as usize);
    drop(conns);
    assert_eq!(pool.stats().connections, 0);
}

// Proves: dropping a connection that still holds queued output, pending
// body bytes and stored trailers gives every one of its buffers back: after
// each drop the pool's leased bytes are exactly what the remaining
// connections hold, `connections` counts down, and idle bytes stay within
// the cap. The connection that stays is unaffected: it drains and h2
// decodes its wire.
#[test]
fn dropping_a_connection_returns_everything_it_held() {
    let pool = Pool::default();
    let cap = pool.config().idle_total_bytes;
    let mut keep = stalled(Config::default(), &pool);
    let mut wire = Vec::new();
    keep.write_preface(&[]).unwrap();
    open(&mut keep, 1);
    let kept_body = body(1, 0, 100 * K);
    assert_eq!(keep.send(1, &kept_body).unwrap(), kept_body.len());
    let kept = keep.stats().leased_bytes;
    assert!(kept >= kept_body.len());

    let trailers = Fields::new(&[("grpc-status", "0")]);
    let mut doomed: Vec<Connection> = (0..3)
        .map(|i| {
            let mut conn = stalled(Config::default(), &pool);
            conn.write_preface(&[]).unwrap();
            for id in [1, 3, 5] {
                open(&mut conn, id);
                assert_eq!(conn.send(id, &body(id, 0, (i + 1) * 50 * K)).unwrap(), (i + 1) * 50 * K);
            }
            conn.finish(3, Some(&trailers.get())).unwrap();
            conn.ping([i as u8; 8], false).unwrap();
            let stats = conn.stats();
            assert!(stats.queued_bytes > 0 && stats.pending_bytes > 0 && stats.trailer_bytes > 0, "{stats:?}");
            conn
        })
        .collect();
    assert_eq!(pool.stats().connections, 4);
    let held: usize = doomed.iter().map(|c| c.stats().leased_bytes).sum();
    assert_eq!(pool.leased_bytes(), kept + held);

    while let Some(conn) = doomed.pop() {
        drop(conn);
        let stats = pool.stats();
        let held: usize = doomed.iter().map(|c| c.stats().leased_bytes).sum();
        assert_eq!(stats.leased_bytes, kept + held, "what the remaining connections hold");
        assert_eq!(stats.connections, 1 + doomed.len());
        assert!(stats.idle_bytes <= cap);
    }
    assert_eq!(pool.leased_bytes(), keep.stats().leased_bytes);

    keep.apply_window_update(1, 1 << 20).unwrap();
    keep.finish(1, None).unwrap();
    drain_all(&mut keep, 1 << 20, &mut wire);
    let views = streams(decode(&wire, 16_384));
    assert!(views[&1].body == kept_body && views[&1].ended);
    assert_eq!(pool.leased_bytes(), 0);
    drop(keep);
    assert_eq!(pool.stats().connections, 0);
}

// Proves: dropping a connection under a Go baseline gives its streams'
// scratch buffers back to the Go pools and its output chunks to the tiered
// pool, however much it still had pending.
#[cfg(feature = "baselines")]
#[test]
fn dropping_a_baseline_connection_returns_its_scratch_buffers() {
    use h2fw::baseline::{GoPools, Model};

    let pool = Pool::default();
    let go = GoPools::new(Model::Go7);
    let mut conn = Connection::with_baseline(Config::default(), &pool, &go);
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]).unwrap();
    for id in [1, 3] {
        open(&mut conn, id);
        assert_eq!(conn.send(id, &body(id, 0, 10 * K)).unwrap(), 10 * K);
    }
    assert_eq!(go.stats().leased_bytes, 2 * 16_384);
    assert_eq!(pool.leased_bytes(), conn.stats().leased_bytes);
    assert!(pool.leased_bytes() > 0, "the HEADERS wait in an output chunk");
    assert_eq!(pool.stats().connections, 1);
    drop(conn);
    let scratch = go.stats();
    assert_eq!((scratch.leased_bytes, scratch.idle_bytes), (0, 2 * 16_384));
    assert_eq!((pool.leased_bytes(), pool.stats().connections), (0, 0));
}

/// Whether `result` is the pool's refusal for its budget of `budget` bytes.
fn is_budget<T>(result: &Result<T, Error>, budget: usize) -> bool {
    matches!(result, Err(Error::Pool(PoolError::BudgetExceeded { budget: b, .. })) if *b == budget)
}

// Proves: one budget binds all connections together. With a 128 KiB pool,
// connection A filling it makes B's leases fail with the typed
// `BudgetExceeded` (B holds nothing, so its share is not what refuses):
// `send`, `send_and_drain`, `open_stream` and `ping` write nothing,
// change nothing and leave B usable. Once A's peer reads and A drains, the
// same calls on B succeed, and both wires decode with h2.
#[test]
fn one_budget_binds_every_connection() {
    const BUDGET: usize = 128 * K;
    let pool = pool_with_budget(BUDGET);
    let mut a = stalled(Config::default(), &pool);
    let mut b = stalled(Config::default(), &pool);
    let (mut wire_a, mut wire_b) = (Vec::new(), Vec::new());
    open(&mut b, 1);
    drain_all(&mut b, 1 << 20, &mut wire_b);
    assert_eq!(b.stats().leased_bytes, 0);

    open(&mut a, 1);
    let data_a = body(1, 0, 1 << 20);
    let mut taken = 0;
    while let Ok(n) = a.send(1, &data_a[taken..]) {
        taken += n;
    }
    assert_eq!(pool.leased_bytes(), a.stats().leased_bytes);
    assert!(pool.leased_bytes() + 256 > BUDGET, "A filled the pool: {:?}", pool.stats());
    assert!(pool.held_bytes() <= BUDGET);

    let before = b.stats();
    let wire_len = wire_b.len();
    let sent = b.send(1, b"hello");
    assert!(is_budget(&sent, BUDGET), "{sent:?}");
    let sent = b.send_and_drain(1, b"hello", &mut wire_b);
    assert!(is_budget(&sent, BUDGET), "{sent:?}");
    let opened = b.open_stream(3, &request("/late").get(), StreamHints::default(), false);
    assert!(is_budget(&opened, BUDGET), "{opened:?}");
    let ping = b.ping([2; 8], false);
    assert!(is_budget(&ping, BUDGET), "{ping:?}");
    assert_eq!(b.drain(usize::MAX, &mut wire_b), Ok(0));
    assert_eq!(wire_b.len(), wire_len, "nothing written for B");
    assert_eq!(b.stats(), before, "B unchanged");
    b.apply_window_update(1, 1 << 20).unwrap();

    // A's peer reads; A drains and gives its buffers back.
    a.apply_window_update(1, 1 << 20).unwrap();
    drain_all(&mut a, 1 << 20, &mut wire_a);
    assert_eq!(a.stats().leased_bytes, 0);

    assert_eq!(b.send(1, b"hello").unwrap(), 5);
    b.open_stream(3, &request("/late").get(), StreamHints::default(), false).unwrap();
    b.ping([2; 8], false).unwrap();
    b.finish(1, None).unwrap();
    drain_all(&mut b, 1 << 20, &mut wire_b);
    send_all(&mut a, 1, &data_a[taken..], &mut wire_a, |_| assert!(pool.held_bytes() <= BUDGET));
    // The body used the whole stream window; the empty END_STREAM waits for
    // a positive one (RFC 9113 §6.9): the peer returns the credit it read.
    a.apply_window_update(1, 1 << 20).unwrap();
    a.finish(1, None).unwrap();
    drain_all(&mut a, 1 << 20, &mut wire_a);
    assert_eq!(pool.leased_bytes(), 0);

    let views_a = streams(decode(&wire_a, 16_384));
    assert!(views_a[&1].body == data_a && views_a[&1].ended, "A's body");
    let views_b = streams(decode(&wire_b, 16_384));
    assert!(views_b[&1].body == b"hello" && views_b[&1].ended);
    assert_eq!(views_b[&3].header_blocks[0].0.as_deref(), Some("/late"));
}

#[test]
fn a_large_send_under_a_small_share_takes_what_fits_instead_of_nothing() {
    // With open windows and nothing queued, `send` frames up to the 64 KiB
    // output watermark at once; a 64 KiB share cannot hold all of that (five
    // 16 KiB chunks with the frame headers), so it must take less, not refuse.
    let pool = Pool::default();
    let mut conn = Connection::new(Config { pool_share: Some(64 << 10), ..Config::default() }, &pool);
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 20)]).unwrap();
    conn.apply_window_update(0, 1 << 20).unwrap();
    open(&mut conn, 1);
    let mut wire = Vec::new();
    drain_all(&mut conn, usize::MAX, &mut wire);
    assert_eq!(conn.stats().leased_bytes, 0);
    let data = body(1, 0, 100_000);
    let mut sent = 0;
    while sent < data.len() {
        let taken = conn.send(1, &data[sent..]).expect("a connection holding nothing takes some bytes");
        assert!(taken > 0 && conn.stats().leased_bytes <= 64 << 10);
        sent += taken;
        drain_all(&mut conn, usize::MAX, &mut wire);
    }
    conn.finish(1, None).unwrap();
    drain_all(&mut conn, usize::MAX, &mut wire);
    let views = streams(decode(&wire, 16_384));
    assert!(views[&1].ended && views[&1].body == data, "stream 1 arrived whole");
}
