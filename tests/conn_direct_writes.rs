//! The write paths that skip the output queue. `send_and_drain` frames what
//! can go at once straight into the host's buffer (one copy) in frames as
//! large as the peer allows, after anything queued ahead of it, and the rest
//! waits exactly as with `send`. `frame_in_place` frames body bytes the host
//! keeps (no copy), after everything queued. Refused calls write nothing.

mod conn_common;

use conn_common::{alone, body, decode, raw_frames, request, streams};
use h2fw::conn::{BatchItem, Config, Connection, Error, StreamHints};
use h2fw::frame::{interleave_data, setting};

const DATA: u8 = 0x0;
const PING: u8 = 0x6;

/// A connection whose peer allows `max_frame_size` and grants `window` to
/// every stream and to the connection, with stream 1 open, and the wire
/// holding the preface (magic and SETTINGS) and stream 1's HEADERS.
fn connection(max_frame_size: u32, window: u32) -> (Connection, Vec<u8>) {
    let mut conn = alone(Config::default());
    let settings = [(setting::INITIAL_WINDOW_SIZE, window), (setting::MAX_FRAME_SIZE, max_frame_size)];
    conn.apply_peer_settings(&settings).unwrap();
    if window > 65_535 {
        conn.apply_window_update(0, window - 65_535).unwrap();
    }
    conn.open_stream(1, &request("/upload").get(), StreamHints::default(), false).unwrap();
    let mut wire = Vec::new();
    conn.drain(usize::MAX, &mut wire).unwrap();
    (conn, wire)
}

/// Types and lengths of the frames in `wire` (past the preface magic) after the first `skip`.
fn kinds(wire: &[u8], skip: usize) -> Vec<(u8, usize)> {
    raw_frames(wire).iter().skip(skip).map(|f| (f.0, f.3)).collect()
}

#[test]
fn a_write_within_the_windows_goes_out_whole_in_frames_of_the_peers_size() {
    let (mut conn, mut wire) = connection(1 << 20, 1 << 30);
    let headers = wire.len() as u64;
    let data = body(1, 0, 3 << 20);
    assert_eq!(conn.send_and_drain(1, &data, &mut wire).unwrap(), 3 << 20, "past the stream watermark: none waits");

    assert_eq!(kinds(&wire, 2), [(DATA, 1 << 20); 3], "after the SETTINGS and the HEADERS");
    assert_eq!(streams(decode(&wire, 1 << 20))[&1].body, data);
    let stats = conn.stats();
    assert_eq!((stats.live_bytes, stats.leased_bytes), (0, 0), "nothing was queued on the way");
    assert_eq!(conn.pool().stats().leased_bytes, 0);
    assert_eq!(stats.bytes_drained, wire.len() as u64);
    assert!(stats.bytes_drained > headers);
    assert_eq!(stats.frames, 2 + 3, "the preface's SETTINGS, the HEADERS that opened the stream, three DATA frames");
    assert_eq!(conn.stream_window(1), Some((1 << 30) - (3 << 20)));
}

#[test]
fn output_queued_ahead_goes_first() {
    let (mut conn, mut wire) = connection(16_384, 1 << 20);
    conn.ping(*b"ahead!!!", false).unwrap();
    assert_eq!(conn.send_and_drain(1, &body(1, 0, 40_000), &mut wire).unwrap(), 40_000);
    assert_eq!(kinds(&wire, 2), [(PING, 8), (DATA, 16_384), (DATA, 16_384), (DATA, 40_000 - 2 * 16_384)]);
    assert_eq!(streams(decode(&wire, 16_384))[&1].body, body(1, 0, 40_000));
    assert_eq!(conn.stats().live_bytes, 0);
}

#[test]
fn what_the_window_refuses_waits_and_follows_the_next_window_update() {
    let (mut conn, mut wire) = connection(16_384, 20_000);
    assert_eq!(conn.send_and_drain(1, &body(1, 0, 50_000), &mut wire).unwrap(), 50_000);
    assert_eq!(streams(decode(&wire, 16_384))[&1].body, body(1, 0, 20_000), "the window's worth, no more");
    assert_eq!(conn.stream_pending(1), 30_000);
    assert_eq!(conn.stream_window(1), Some(0));

    conn.apply_window_update(1, 1 << 20).unwrap();
    conn.finish(1, None).unwrap();
    // The next call on another stream hands out stream 1's rest as well.
    conn.open_stream(3, &request("/other").get(), StreamHints::default(), false).unwrap();
    assert_eq!(conn.send_and_drain(3, b"hello", &mut wire).unwrap(), 5);
    let views = streams(decode(&wire, 16_384));
    assert_eq!(views[&1].body, body(1, 0, 50_000));
    assert!(views[&1].ended);
    assert_eq!(views[&3].body, b"hello");
    assert_eq!(conn.stats().live_bytes, 0);
}

#[test]
fn the_result_decodes_like_send_then_drain() {
    let writes = [(1, 100), (3, 70_000), (1, 20_000), (3, 1), (1, 300_000)];
    let run = |one_call: bool| {
        let (mut conn, mut wire) = connection(16_384, 100_000);
        conn.open_stream(3, &request("/two").get(), StreamHints { content_length: Some(1 << 20) }, false).unwrap();
        let mut offsets = [0usize; 4];
        for (id, len) in writes {
            let data = body(id, offsets[id as usize], len);
            let taken = if one_call {
                conn.send_and_drain(id, &data, &mut wire).unwrap()
            } else {
                let taken = conn.send(id, &data).unwrap();
                conn.drain(usize::MAX, &mut wire).unwrap();
                taken
            };
            offsets[id as usize] += taken;
        }
        conn.apply_window_update(0, 1 << 20).unwrap();
        for id in [1, 3] {
            conn.apply_window_update(id, 1 << 20).unwrap();
            conn.finish(id, None).unwrap();
        }
        conn.drain(usize::MAX, &mut wire).unwrap();
        (streams(decode(&wire, 16_384)), offsets)
    };
    let (one_call, taken) = run(true);
    let (two_calls, taken_by_two) = run(false);
    assert_eq!(taken, taken_by_two);
    for id in [1u32, 3] {
        assert_eq!(one_call[&id].body, body(id, 0, taken[id as usize]), "stream {id}");
        assert_eq!(one_call[&id].body, two_calls[&id].body);
        assert!(one_call[&id].ended);
    }
}

#[test]
fn a_refused_call_writes_nothing() {
    let (mut conn, mut wire) = connection(16_384, 1 << 20);
    wire.clear();
    assert_eq!(conn.send_and_drain(5, b"never opened", &mut wire), Err(Error::StreamNotOpen { stream: 5 }));
    conn.finish(1, None).unwrap();
    assert_eq!(conn.send_and_drain(1, b"after the end", &mut wire), Err(Error::StreamNotOpen { stream: 1 }));
    assert!(wire.is_empty());
    // The END_STREAM that `finish` queued is still waiting for a drain.
    assert!(conn.stats().queued_bytes > 0);
}

/// `frame_in_place` of `data`, assembled into `wire`; returns the bytes framed.
fn in_place(conn: &mut Connection, stream: u32, data: &[u8], wire: &mut Vec<u8>) -> Result<usize, Error> {
    let mut headers = Vec::new();
    let framed = conn.frame_in_place(stream, data.len(), wire, &mut headers)?;
    assert_eq!(interleave_data(&headers, &data[..framed], wire), Ok(framed));
    Ok(framed)
}

#[test]
fn in_place_writes_are_the_wire_of_send_and_drain() {
    let writes: [(u32, usize); 5] = [(1, 100), (1, 70_000), (1, 1 << 20), (1, 5), (1, 16_384)];
    let mut wires = [Vec::new(), Vec::new()];
    let mut conns = [connection(16_384, 1 << 30), connection(16_384, 1 << 30)];
    for (index, ((conn, headers_wire), wire)) in conns.iter_mut().zip(&mut wires).enumerate() {
        wire.append(headers_wire);
        conn.ping(*b"ahead!!!", false).unwrap();
        let mut offset = 0;
        for (stream, len) in writes {
            let data = body(stream, offset, len);
            let taken = if index == 0 {
                in_place(conn, stream, &data, wire).unwrap()
            } else {
                conn.send_and_drain(stream, &data, wire).unwrap()
            };
            assert_eq!(taken, len);
            offset += len;
        }
    }
    assert_eq!(wires[0], wires[1]);
    // The same accounting (peak live bytes aside: `send_and_drain` queues
    // its first write behind the PING for a moment).
    let counters = |conn: &Connection| {
        let stats = conn.stats();
        (stats.frames, stats.bytes_drained, stats.conn_window, stats.live_bytes, conn.stream_window(1))
    };
    assert_eq!(counters(&conns[0].0), counters(&conns[1].0));
    assert_eq!(streams(decode(&wires[0], 16_384))[&1].body, body(1, 0, 70_105 + (1 << 20) + 16_384));
}

#[test]
fn in_place_frames_what_the_windows_allow_after_what_waits() {
    let (mut conn, mut wire) = connection(16_384, 20_000);
    // Window closed for stream 1: nothing framed, the bytes stay the host's.
    assert_eq!(in_place(&mut conn, 1, &body(1, 0, 30_000), &mut wire).unwrap(), 20_000);
    assert_eq!(in_place(&mut conn, 1, &body(1, 20_000, 10_000), &mut wire).unwrap(), 0);
    // Bytes the host queued with `send` go out first, once the window opens.
    assert_eq!(conn.send(1, &body(1, 20_000, 4_000)).unwrap(), 4_000);
    assert_eq!(in_place(&mut conn, 1, &body(1, 24_000, 6_000), &mut wire).unwrap(), 0, "bytes of the stream wait");
    conn.apply_window_update(1, 5_000).unwrap();
    assert_eq!(in_place(&mut conn, 1, &body(1, 24_000, 6_000), &mut wire).unwrap(), 1_000);
    assert_eq!(conn.stream_window(1), Some(0));
    assert_eq!(streams(decode(&wire, 16_384))[&1].body, body(1, 0, 25_000));

    assert_eq!(conn.frame_in_place(9, 10, &mut wire, &mut Vec::new()), Err(Error::StreamNotOpen { stream: 9 }));
    let stats = conn.stats();
    assert_eq!((stats.live_bytes, stats.pending_bytes, stats.leased_bytes), (0, 0, 0));
    assert_eq!(conn.pool().stats().leased_bytes, 0);
    assert_eq!(stats.bytes_drained, wire.len() as u64);
}

#[test]
fn a_batch_is_a_send_per_item_and_stops_at_the_first_error() {
    let (mut conn, mut wire) = connection(16_384, 1 << 20);
    conn.open_stream(3, &request("/two").get(), StreamHints::default(), false).unwrap();
    let data: Vec<u8> = (0..60u8).collect();
    let items = [BatchItem { stream: 3, len: 10 }, BatchItem { stream: 1, len: 20 }, BatchItem { stream: 5, len: 1 }];
    let mut accepted = Vec::new();
    assert_eq!(conn.send_batch(&items, &data, &mut accepted), Err(Error::StreamNotOpen { stream: 5 }));
    assert_eq!(accepted, [10, 20]);
    let too_long = [BatchItem { stream: 1, len: 30 }, BatchItem { stream: 3, len: 31 }];
    assert_eq!(conn.send_batch(&too_long, &data, &mut accepted), Err(Error::BatchLength { lengths: 61, data: 60 }));
    assert_eq!(accepted, [10, 20], "nothing of a refused batch was sent");
    conn.drain(usize::MAX, &mut wire).unwrap();
    let views = streams(decode(&wire, 16_384));
    assert_eq!((&views[&3].body[..], &views[&1].body[..]), (&data[..10], &data[10..30]));
}
