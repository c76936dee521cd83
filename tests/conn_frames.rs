//! Raw frame writes, ordering, stream lifecycle and errors; every byte the
//! connection produces is decoded by h2.

mod conn_common;

use conn_common::{Fields, Peer, alone, body, decode, drain_all, raw_frames, request, streams};
use h2::frame::Frame as H2Frame;
#[cfg(feature = "baselines")]
use h2fw::baseline::{GoPools, Model};
use h2fw::conn::{Config, Connection, Error, HeadersOptions, StreamHints};
use h2fw::frame::{Frame, FrameError, FrameType, PREFACE, Priority, setting};
use h2fw::hpack::HpackError;
use h2fw::pool::Pool;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;

fn tiered() -> Connection {
    alone(Config::default())
}

fn open(conn: &mut Connection, stream: u32) {
    conn.open_stream(stream, &request("/f").get(), StreamHints::default(), false).unwrap();
}

fn drained(conn: &mut Connection) -> Vec<u8> {
    let mut wire = Vec::new();
    drain_all(conn, 1 << 20, &mut wire);
    wire
}

#[test]
fn the_preface_comes_first() {
    let mut conn = tiered();
    conn.write_preface().unwrap();
    conn.write_frame(&Frame::Settings { settings: &[(setting::ENABLE_PUSH, 0)] }).unwrap();
    let wire = drained(&mut conn);
    assert_eq!(&wire[..24], PREFACE);
    assert!(matches!(&decode(&wire, 16_384)[..], [H2Frame::Settings(_)]));
}

#[test]
fn control_frames_go_out_ahead_of_waiting_data() {
    let mut conn = tiered();
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]).unwrap();
    open(&mut conn, 1);
    assert_eq!(conn.send(1, &[1; 1000]).unwrap(), 1000);
    let priority = Priority { stream_dependency: 0, weight: 15, exclusive: false };
    conn.write_frame(&Frame::Ping { opaque_data: *b"pingpong", ack: false }).unwrap();
    conn.write_frame(&Frame::SettingsAck).unwrap();
    conn.write_frame(&Frame::WindowUpdate { stream: 0, increment: 5 }).unwrap();
    conn.write_frame(&Frame::RstStream { stream: 7, error_code: 8 }).unwrap();
    conn.write_frame(&Frame::Priority { stream: 9, priority }).unwrap();
    conn.write_frame(&Frame::Goaway { last_stream_id: 0, error_code: 0, debug_data: b"bye" }).unwrap();
    conn.apply_window_update(1, 1000).unwrap();
    let types: Vec<u8> = raw_frames(&drained(&mut conn)).iter().map(|f| f.0).collect();
    assert_eq!(types, [HEADERS, 0x6, 0x4, 0x8, 0x3, 0x2, 0x7, DATA]);
}

#[test]
fn invalid_raw_frames_queue_nothing() {
    let mut conn = tiered();
    conn.write_frame(&Frame::Ping { opaque_data: [0; 8], ack: true }).unwrap();
    let queued = conn.stats().queued_bytes;
    let frames = conn.stats().frames;
    let bad = [
        (
            Frame::Data { stream: 0, data: b"x", end_stream: false, pad_length: None },
            FrameError::StreamIdRequired { frame: FrameType::Data },
        ),
        (Frame::WindowUpdate { stream: 1, increment: 0 }, FrameError::WindowIncrement { increment: 0 }),
        (
            Frame::Extension { frame_type: 0x3, flags: 0, stream: 0, payload: b"" },
            FrameError::CoreFrameType { frame_type: 0x3 },
        ),
        (
            Frame::Settings { settings: &[(setting::ENABLE_PUSH, 2)] },
            FrameError::SettingValue { id: setting::ENABLE_PUSH, value: 2 },
        ),
    ];
    for (frame, error) in bad {
        assert_eq!(conn.write_frame(&frame), Err(Error::Frame(error)));
        assert_eq!((conn.stats().queued_bytes, conn.stats().frames), (queued, frames));
    }
    let wire = drained(&mut conn);
    assert!(matches!(&decode(&wire, 16_384)[..], [H2Frame::Ping(p)] if p.is_ack()));
}

#[test]
fn raw_data_is_split_at_the_peer_frame_size_and_not_flow_controlled() {
    let mut conn = tiered();
    conn.apply_peer_settings(&[(setting::MAX_FRAME_SIZE, 20_000), (setting::INITIAL_WINDOW_SIZE, 0)]).unwrap();
    let data = body(3, 0, 100_000);
    conn.write_frame(&Frame::Data { stream: 3, data: &data, end_stream: true, pad_length: Some(3) }).unwrap();
    assert_eq!(conn.stats().frames, 6); // 19 996 data bytes per padded frame
    let wire = drained(&mut conn);
    let lens: Vec<usize> = raw_frames(&wire).iter().map(|f| f.3).collect();
    assert_eq!(lens, [20_000, 20_000, 20_000, 20_000, 20_000, 20 + 4]);
    let views = streams(decode(&wire, 20_000));
    assert!(views[&3].body == data && views[&3].ended);
}

#[test]
fn a_refused_header_list_leaves_the_hpack_table_unchanged() {
    let mut conn = tiered();
    let valid = Fields::new(&[(":status", "200"), ("x-first", "indexed-if-encoded")]);
    let mut invalid = valid.clone();
    invalid.0.push((b"Bad-Name".to_vec(), b"v".to_vec()));
    let refused = conn.write_headers(1, &invalid.get(), HeadersOptions::default());
    assert!(matches!(refused, Err(Error::Hpack(HpackError::InvalidName { .. }))), "{refused:?}");
    // The list is refused by the encode itself, after the scratch and the
    // output room were taken: both went back, and no frame byte was queued.
    let stats = conn.stats();
    assert_eq!((stats.queued_bytes, stats.frames, stats.leased_bytes), (0, 0, 0));
    assert_eq!(conn.pool().stats().leased_bytes, 0);
    let refused = conn.open_stream(1, &invalid.get(), StreamHints::default(), false);
    assert!(matches!(refused, Err(Error::Hpack(HpackError::InvalidName { .. }))), "{refused:?}");
    assert_eq!(conn.stats().open_streams, 0);
    // A frame error is found before any HPACK work, too.
    let on_stream_0 = conn.write_headers(0, &valid.get(), HeadersOptions::default());
    assert_eq!(on_stream_0, Err(Error::Frame(FrameError::StreamIdRequired { frame: FrameType::Headers })));
    let padding = HeadersOptions { pad_length: Some(255), priority: None, end_stream: false };
    assert!(conn.write_headers(1, &valid.get(), padding).is_ok());
    assert_eq!(conn.stats().frames, 1);
    // If either refusal had inserted "x-first", h2 would now decode a
    // reference to a table entry it never saw.
    conn.write_headers(3, &valid.get(), HeadersOptions::default()).unwrap();
    let views = streams(decode(&drained(&mut conn), 16_384));
    let want = [(None, vec![("x-first".to_string(), "indexed-if-encoded".to_string())])];
    assert_eq!(views[&1].header_blocks, want);
    assert_eq!(views[&3].header_blocks, want);
}

#[test]
fn large_header_blocks_continue_across_frames() {
    let mut conn = tiered();
    // Symbols with long Huffman codes, so the block stays about 40 KB.
    let values: Vec<String> = (0..40).map(|i| format!("{i:04}{}", "~^|{}".repeat(199))).collect();
    let mut fields = request("/big");
    for (i, value) in values.iter().enumerate() {
        fields.0.push((format!("x-h{i}").into_bytes(), value.clone().into_bytes()));
    }
    conn.open_stream(1, &fields.get(), StreamHints::default(), true).unwrap();
    conn.write_push_promise(1, 2, &fields.get(), Some(0)).unwrap();
    let wire = drained(&mut conn);
    let types: Vec<u8> = raw_frames(&wire).iter().map(|f| f.0).collect();
    assert!(types.iter().filter(|&&t| t == CONTINUATION).count() >= 4, "{types:?}");
    let frames = decode(&wire, 16_384);
    let promised = frames.iter().any(|f| matches!(f, H2Frame::PushPromise(p) if u32::from(p.promised_id()) == 2));
    assert!(promised);
    let views = streams(frames);
    let (path, decoded) = &views[&1].header_blocks[0];
    assert_eq!(path.as_deref(), Some("/big"));
    assert_eq!(decoded.len(), 40);
    assert!(decoded.iter().zip(&values).all(|((_, v), want)| v == want));
    assert!(views[&1].ended);
}

#[test]
fn stream_ids_must_rise_and_stay_below_2_31() {
    let mut conn = tiered();
    let fields = request("/id");
    let open = |conn: &mut Connection, id| conn.open_stream(id, &fields.get(), StreamHints::default(), false);
    assert!(matches!(open(&mut conn, 0), Err(Error::StreamIdInvalid { stream: 0, .. })));
    assert!(matches!(open(&mut conn, 1 << 31), Err(Error::StreamIdInvalid { .. })));
    open(&mut conn, 5).unwrap();
    assert!(matches!(open(&mut conn, 5), Err(Error::StreamIdInvalid { stream: 5, .. })));
    assert!(matches!(open(&mut conn, 3), Err(Error::StreamIdInvalid { stream: 3, .. })));
    assert_eq!(conn.stats().frames, 1, "refused opens queue nothing");
    open(&mut conn, (1 << 31) - 1).unwrap();
    assert_eq!(conn.stats().open_streams, 2);
}

#[test]
fn end_stream_rides_on_the_last_data_frame_or_an_empty_one() {
    let mut conn = tiered();
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]).unwrap();
    open(&mut conn, 1);
    open(&mut conn, 3);
    conn.send(1, &[1; 20_000]).unwrap();
    conn.finish(1, None).unwrap(); // pending: END_STREAM waits for the data
    conn.finish(3, None).unwrap(); // nothing pending: an empty DATA now
    assert_eq!(conn.stats().open_streams, 0);
    assert_eq!(conn.send(1, b"late"), Err(Error::StreamNotOpen { stream: 1 }));
    assert_eq!(conn.finish(1, None), Err(Error::StreamNotOpen { stream: 1 }));
    conn.apply_window_update(1, 20_000).unwrap();
    let data: Vec<(u8, u32, usize)> =
        raw_frames(&drained(&mut conn)).into_iter().filter(|f| f.0 == DATA).map(|f| (f.1, f.2, f.3)).collect();
    assert_eq!(data, [(END_STREAM, 3, 0), (0, 1, 16_384), (END_STREAM, 1, 3616)]);
    assert_eq!(conn.stats().leased_bytes, 0);
    assert_eq!(conn.pool().stats().leased_bytes, 0);
}

#[test]
fn trailers_follow_the_last_data_and_are_checked_up_front() {
    let mut conn = tiered();
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]).unwrap();
    open(&mut conn, 1);
    conn.send(1, &body(1, 0, 5000)).unwrap();
    let pseudo = Fields::new(&[(":status", "200")]);
    assert!(matches!(conn.finish(1, Some(&pseudo.get())), Err(Error::Hpack(HpackError::PseudoHeader { .. }))));
    let bad = Fields::new(&[("grpc-status", "0\r\n")]);
    assert!(matches!(conn.finish(1, Some(&bad.get())), Err(Error::Hpack(HpackError::InvalidValue { .. }))));
    assert_eq!(conn.send(1, &body(1, 5000, 1000)).unwrap(), 1000, "still open after refused trailers");
    // Header blocks queued after `finish` but emitted before the trailers
    // must not confuse HPACK: the trailers are encoded when they go out.
    let trailers = Fields::new(&[("grpc-status", "0"), ("grpc-message", "fine")]);
    conn.finish(1, Some(&trailers.get())).unwrap();
    assert!(conn.stats().trailer_bytes > 0);
    open(&mut conn, 3);
    conn.write_headers(
        5,
        &Fields::new(&[(":status", "200"), ("grpc-message", "fine")]).get(),
        HeadersOptions::default(),
    )
    .unwrap();
    conn.apply_window_update(1, 6000).unwrap();
    let wire = drained(&mut conn);
    let frames: Vec<(u8, u8, u32)> = raw_frames(&wire).into_iter().map(|f| (f.0, f.1 & END_STREAM, f.2)).collect();
    assert_eq!(frames.iter().rfind(|f| f.2 == 1), Some(&(HEADERS, END_STREAM, 1)));
    let views = streams(decode(&wire, 16_384));
    assert_eq!(views[&1].body, body(1, 0, 6000));
    let want: Vec<(String, String)> = trailers
        .0
        .iter()
        .map(|(n, v)| (String::from_utf8_lossy(n).into(), String::from_utf8_lossy(v).into()))
        .collect();
    assert_eq!(views[&1].trailers.as_ref(), Some(&want));
    assert_eq!(conn.stats().trailer_bytes, 0);
    assert_eq!(conn.stats().leased_bytes, 0);
    assert_eq!(conn.pool().stats().leased_bytes, 0);
}

/// Resets a stream holding pending bytes on `conn`; `scratch_leased` reads
/// the Go scratch bytes leased (0 under `tiered`), which count as held too.
fn reset_returns_buffers(mut conn: Connection, scratch_leased: &dyn Fn() -> usize, policy: &str) {
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]).unwrap();
    open(&mut conn, 1);
    let taken = conn.send(1, &[1; 200_000]).unwrap();
    let held = conn.stats().leased_bytes + scratch_leased();
    assert!(held >= taken, "{policy}");
    conn.reset(1, 8).unwrap();
    let stats = conn.stats();
    assert_eq!((stats.pending_bytes, stats.pending_streams, stats.open_streams), (0, 0, 0));
    // Only the output chunk holding HEADERS and RST_STREAM stays leased.
    assert_eq!((stats.leased_bytes, scratch_leased()), (16 << 10, 0), "{policy}");
    assert_eq!(conn.pool().stats().leased_bytes, 16 << 10, "{policy}");
    assert_eq!(conn.send(1, b"x"), Err(Error::StreamNotOpen { stream: 1 }));
    assert_eq!(conn.reset(0, 8), Err(Error::Frame(FrameError::StreamIdRequired { frame: FrameType::RstStream })));
    let views = streams(decode(&drained(&mut conn), 16_384));
    assert_eq!((views[&1].body.len(), views[&1].reset), (0, Some(8)));
    assert_eq!((conn.stats().leased_bytes, scratch_leased()), (0, 0), "{policy}");
    assert_eq!(conn.pool().stats().leased_bytes, 0);
}

#[test]
fn reset_drops_pending_bytes_and_returns_their_buffers_at_once() {
    reset_returns_buffers(tiered(), &|| 0, "tiered");
}

#[cfg(feature = "baselines")]
#[test]
fn go7_reset_drops_pending_bytes_and_returns_their_buffers_at_once() {
    let go = GoPools::new(Model::Go7);
    let conn = Connection::with_baseline(Config::default(), &Pool::default(), &go);
    reset_returns_buffers(conn, &|| go.stats().leased_bytes, "go7");
}

#[test]
fn any_drain_size_yields_the_same_streams() {
    let script = |conn: &mut Connection, peer: &mut Peer, piece: usize| {
        conn.write_preface().unwrap();
        conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 30_000)]).unwrap();
        for id in [1, 3, 5] {
            open(conn, id);
            conn.send(id, &body(id, 0, 50_000)).unwrap();
        }
        conn.finish(3, Some(&Fields::new(&[("grpc-status", "0")]).get())).unwrap();
        conn.write_frame(&Frame::Ping { opaque_data: [7; 8], ack: false }).unwrap();
        for id in [1, 3, 5] {
            conn.apply_window_update(id, 20_000).unwrap();
        }
        conn.apply_window_update(0, 1 << 20).unwrap();
        loop {
            let n = conn.drain(piece, &mut peer.wire).unwrap();
            assert!(n <= piece);
            if n == 0 {
                break;
            }
        }
        assert_eq!(conn.stats().live_bytes, 0);
        streams(decode(&peer.wire, 16_384))
    };
    let reference = script(&mut tiered(), &mut Peer::default(), 1 << 20);
    for piece in [1, 5, 9, 10, 17, 4096, 16_393] {
        let views = script(&mut tiered(), &mut Peer::default(), piece);
        for id in [1, 3, 5] {
            assert!(views[&id].body == reference[&id].body, "piece {piece}, stream {id}");
            assert_eq!(views[&id].body, body(id, 0, 50_000));
            assert_eq!((views[&id].ended, &views[&id].trailers), (reference[&id].ended, &reference[&id].trailers));
        }
    }
}

/// The header block of the first HEADERS frame in `wire`.
fn first_block(wire: &[u8]) -> &[u8] {
    let len = usize::from(wire[0]) << 16 | usize::from(wire[1]) << 8 | usize::from(wire[2]);
    assert_eq!(wire[3], HEADERS);
    &wire[9..9 + len]
}

#[test]
fn table_size_limits_reach_the_wire_as_size_updates() {
    let fields = Fields::new(&[(":status", "200"), ("x-a", "b")]);
    // The peer shrinks its table to 0: the next block starts with a
    // dynamic table size update to 0 (RFC 7541 §6.3: 001 + 5-bit integer).
    let mut conn = tiered();
    conn.apply_peer_settings(&[(setting::HEADER_TABLE_SIZE, 0)]).unwrap();
    conn.write_headers(1, &fields.get(), HeadersOptions::default()).unwrap();
    let wire = drained(&mut conn);
    assert_eq!(first_block(&wire)[0], 0x20);
    assert_eq!(streams(decode(&wire, 16_384))[&1].header_blocks[0].1, [("x-a".to_string(), "b".to_string())]);

    // Our own cap of 1024 below the peer's 4096 is announced by the first
    // block: 0x3f then 1024 - 31 = 993 in 7-bit groups (0xe1, 0x07).
    let config = Config { max_header_table_size: 1024, ..Config::default() };
    let mut conn = Connection::new(config, &Pool::default());
    conn.apply_peer_settings(&[(setting::HEADER_TABLE_SIZE, 65_536)]).unwrap();
    conn.write_headers(1, &fields.get(), HeadersOptions::default()).unwrap();
    let wire = drained(&mut conn);
    assert_eq!(first_block(&wire)[..3], [0x3f, 0xe1, 0x07]);
    assert_eq!(streams(decode(&wire, 16_384))[&1].header_blocks[0].1, [("x-a".to_string(), "b".to_string())]);
}

#[test]
fn the_frame_count_matches_the_frames_on_the_wire() {
    let mut conn = tiered();
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 40_000)]).unwrap();
    let mut fields = request("/count");
    fields.0.push((b"x-long".to_vec(), "~^|{}".repeat(8000).into_bytes()));
    conn.open_stream(1, &fields.get(), StreamHints::default(), false).unwrap(); // HEADERS + 2 CONTINUATION
    conn.send(1, &[1; 100_000]).unwrap(); // framed now and pending
    conn.write_frame(&Frame::Data { stream: 3, data: &[3; 40_000], end_stream: false, pad_length: Some(9) }).unwrap();
    conn.finish(1, Some(&Fields::new(&[("grpc-status", "0")]).get())).unwrap();
    conn.apply_window_update(1, 100_000).unwrap();
    let mut wire = Vec::new();
    drain_all(&mut conn, 5000, &mut wire);
    assert_eq!(conn.stats().frames as usize, raw_frames(&wire).len());
}
