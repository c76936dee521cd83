//! Frame writes (managed and through the raw escape hatch), ordering,
//! stream lifecycle and errors; every byte the connection produces is
//! decoded by h2.

mod conn_common;

use conn_common::{
    Fields, Peer, after_preface, alone, body, decode, drain_all, get_request, raw_frames, request, response, streams,
};
use h2::frame::Frame as H2Frame;
#[cfg(feature = "baselines")]
use h2fw::baseline::{GoPools, Model};
use h2fw::conn::{Config, Connection, Error, HeadersOptions, Role, Rule, StreamHints, StreamState};
use h2fw::frame::{Frame, FrameError, FrameType, PREFACE, Priority, setting};
use h2fw::hpack::HpackError;
use h2fw::pool::Pool;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
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
    conn.write_preface(&[(setting::ENABLE_PUSH, 0)]).unwrap();
    let wire = drained(&mut conn);
    assert_eq!(&wire[..24], PREFACE);
    assert!(matches!(&decode(&wire, 16_384)[..], [H2Frame::Settings(s)] if s.is_push_enabled() == Some(false)));
    // A server's preface is its SETTINGS alone.
    let mut server = alone(Config { role: Role::Server, ..Config::default() });
    server.write_preface(&[(setting::MAX_CONCURRENT_STREAMS, 100)]).unwrap();
    let wire = drained(&mut server);
    assert_eq!(raw_frames(&wire), [(SETTINGS, 0, 0, 6)]);
    assert!(matches!(&decode(&wire, 16_384)[..], [H2Frame::Settings(s)] if s.max_concurrent_streams() == Some(100)));
}

#[test]
fn control_frames_go_out_ahead_of_waiting_data() {
    let mut conn = tiered();
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]).unwrap();
    open(&mut conn, 1);
    assert_eq!(conn.send(1, &[1; 1000]).unwrap(), 1000);
    let priority = Priority { stream_dependency: 0, weight: 15, exclusive: false };
    conn.ping(*b"pingpong", false).unwrap();
    conn.ack_settings().unwrap();
    conn.window_update(0, 5).unwrap();
    // RST_STREAM on a stream that was never opened: only the raw escape hatch writes it.
    conn.raw().write_frame(&Frame::RstStream { stream: 7, error_code: 8 }).unwrap();
    conn.priority(9, priority).unwrap();
    conn.goaway(0, 0, b"bye").unwrap();
    conn.apply_window_update(1, 1000).unwrap();
    let types: Vec<u8> = raw_frames(&drained(&mut conn)).iter().map(|f| f.0).collect();
    // The preface's SETTINGS first (queued by the first call), then the rest in call order.
    assert_eq!(types, [SETTINGS, HEADERS, 0x6, 0x4, 0x8, 0x3, 0x2, 0x7, DATA]);
}

#[test]
fn invalid_raw_frames_queue_nothing() {
    let mut conn = tiered();
    conn.ping([0; 8], true).unwrap();
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
        assert_eq!(conn.raw().write_frame(&frame), Err(Error::Frame(error)));
        assert_eq!((conn.stats().queued_bytes, conn.stats().frames), (queued, frames));
    }
    let wire = drained(&mut conn);
    assert!(matches!(&decode(after_preface(&wire), 16_384)[..], [H2Frame::Ping(p)] if p.is_ack()));
}

#[test]
fn raw_data_is_split_at_the_peer_frame_size_and_held_to_no_stream_window() {
    let mut conn = tiered();
    conn.apply_peer_settings(&[(setting::MAX_FRAME_SIZE, 20_000), (setting::INITIAL_WINDOW_SIZE, 0)]).unwrap();
    let data = body(3, 0, 100_000);
    conn.raw().write_frame(&Frame::Data { stream: 3, data: &data, end_stream: true, pad_length: Some(3) }).unwrap();
    // Raw use stands for the preface: no SETTINGS frame was queued ahead.
    assert_eq!(conn.stats().frames, 6); // 19 996 data bytes per padded frame
    // Not held to any window, but it does come off the connection window.
    assert!(conn.stats().conn_window <= 65_535 - 100_000, "{:?}", conn.stats());
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
    conn.write_preface(&[]).unwrap();
    let mut wire = drained(&mut conn);
    let frames = conn.stats().frames;
    let refused = conn.raw().write_headers(1, &invalid.get(), HeadersOptions::default());
    assert!(matches!(refused, Err(Error::Hpack(HpackError::InvalidName { .. }))), "{refused:?}");
    // The list is refused by the encode itself, after the scratch and the
    // output room were taken: both went back, and no frame byte was queued.
    let stats = conn.stats();
    assert_eq!((stats.queued_bytes, stats.frames, stats.leased_bytes), (0, frames, 0));
    assert_eq!(conn.pool().stats().leased_bytes, 0);

    // The same through the managed API, as a request (which its message rules accept).
    let mut invalid_request = request("/r");
    invalid_request.0.extend(invalid.0[1..].iter().cloned());
    let refused = conn.open_stream(1, &invalid_request.get(), StreamHints::default(), false);
    assert!(matches!(refused, Err(Error::Hpack(HpackError::InvalidName { .. }))), "{refused:?}");
    let stats = conn.stats();
    assert_eq!((stats.open_streams, stats.queued_bytes, stats.frames, stats.leased_bytes), (0, 0, frames, 0));
    // A frame error is found before any HPACK work, too.
    let on_stream_0 = conn.raw().write_headers(0, &valid.get(), HeadersOptions::default());
    assert_eq!(on_stream_0, Err(Error::Frame(FrameError::StreamIdRequired { frame: FrameType::Headers })));
    let padding = HeadersOptions { pad_length: Some(255), priority: None, end_stream: false };
    assert!(conn.raw().write_headers(1, &valid.get(), padding).is_ok());
    assert_eq!(conn.stats().frames, frames + 1);
    // If any refusal had inserted "x-first", h2 would now decode a
    // reference to a table entry it never saw.
    conn.raw().write_headers(3, &valid.get(), HeadersOptions::default()).unwrap();
    wire.extend(drained(&mut conn));
    let views = streams(decode(after_preface(&wire), 16_384));
    let want = [(None, vec![("x-first".to_string(), "indexed-if-encoded".to_string())])];
    assert_eq!(views[&1].header_blocks, want);
    assert_eq!(views[&3].header_blocks, want);
}

#[test]
fn large_header_blocks_continue_across_frames() {
    // Symbols with long Huffman codes, so each block stays about 40 KB.
    let values: Vec<String> = (0..40).map(|i| format!("{i:04}{}", "~^|{}".repeat(199))).collect();
    let with_values = |mut fields: Fields| {
        for (i, value) in values.iter().enumerate() {
            fields.0.push((format!("x-h{i}").into_bytes(), value.clone().into_bytes()));
        }
        fields
    };
    let check_fields = |decoded: &[(String, String)]| {
        assert_eq!(decoded.len(), 40);
        assert!(decoded.iter().zip(&values).all(|((_, v), want)| v == want));
    };
    let continuations = |wire: &[u8]| raw_frames(wire).iter().filter(|f| f.0 == CONTINUATION).count();

    // A client's request: HEADERS + CONTINUATION.
    let mut conn = tiered();
    conn.open_stream(1, &with_values(request("/big")).get(), StreamHints::default(), true).unwrap();
    let wire = drained(&mut conn);
    assert!(continuations(&wire) >= 2, "{:?}", raw_frames(&wire));
    let views = streams(decode(&wire, 16_384));
    let (path, decoded) = &views[&1].header_blocks[0];
    assert_eq!(path.as_deref(), Some("/big"));
    check_fields(decoded);
    assert!(views[&1].ended);

    // A server's push: PUSH_PROMISE + CONTINUATION, then the response.
    let mut server = alone(Config { role: Role::Server, ..Config::default() });
    server.apply_peer_headers(1, true).unwrap();
    server.push_promise(1, 2, &with_values(get_request("/big")).get()).unwrap();
    server.respond(1, &with_values(response("200")).get(), StreamHints::default(), true).unwrap();
    let wire = drained(&mut server);
    assert!(continuations(&wire) >= 4, "{:?}", raw_frames(&wire));
    let mut frames = decode(&wire, 16_384);
    let at = frames.iter().position(|f| matches!(f, H2Frame::PushPromise(p) if u32::from(p.promised_id()) == 2));
    let H2Frame::PushPromise(promise) = frames.remove(at.expect("the PUSH_PROMISE decodes")) else { unreachable!() };
    let (pseudo, map) = promise.into_parts();
    assert_eq!(pseudo.path.as_deref(), Some("/big"));
    let promised: Vec<(String, String)> =
        map.iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string())).collect();
    check_fields(&promised);
    let views = streams(frames);
    check_fields(&views[&1].header_blocks[0].1);
    assert!(views[&1].ended);
    assert_eq!(server.stream_state(1), StreamState::Closed);
    assert_eq!(server.stream_state(2), StreamState::ReservedLocal);
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
    assert_eq!(conn.stats().frames, 2, "the preface's SETTINGS and one HEADERS: refused opens queue nothing");
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
    conn.finish(3, None).unwrap(); // nothing pending: an empty DATA fits a window of 0 (RFC 9113 §6.9.1)
    assert_eq!(conn.stats().open_streams, 0);
    assert_eq!(conn.send(1, b"late"), Err(Error::StreamNotOpen { stream: 1 }));
    assert_eq!(conn.finish(1, None), Err(Error::StreamNotOpen { stream: 1 }));
    let mut wire = drained(&mut conn);
    let early: Vec<(u8, u32, usize)> =
        raw_frames(&wire).into_iter().filter(|f| f.0 == DATA).map(|f| (f.1, f.2, f.3)).collect();
    assert_eq!(early, [(END_STREAM, 3, 0)], "only the empty END_STREAM, on a window of 0");
    conn.apply_window_update(1, 20_000).unwrap();
    wire.extend(drained(&mut conn));
    let data: Vec<(u8, u32, usize)> =
        raw_frames(&wire).into_iter().filter(|f| f.0 == DATA).map(|f| (f.1, f.2, f.3)).collect();
    assert_eq!(data, [(END_STREAM, 3, 0), (0, 1, 16_384), (END_STREAM, 1, 3616)]);
    // Half-closed until the peer ends its side too.
    assert_eq!(
        (conn.stream_state(1), conn.stream_state(3)),
        (StreamState::HalfClosedLocal, StreamState::HalfClosedLocal)
    );
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
    let refused = conn.finish(1, Some(&pseudo.get()));
    assert!(matches!(refused, Err(Error::Refused { stream: 1, rule: Rule::Message { .. } })), "{refused:?}");
    let bad = Fields::new(&[("grpc-status", "0\r\n")]);
    assert!(matches!(conn.finish(1, Some(&bad.get())), Err(Error::Hpack(HpackError::InvalidValue { .. }))));
    assert_eq!(conn.send(1, &body(1, 5000, 1000)).unwrap(), 1000, "still open after refused trailers");
    // Header blocks queued after `finish` but emitted before the trailers
    // must not confuse HPACK: the trailers are encoded when they go out.
    let trailers = Fields::new(&[("grpc-status", "0"), ("grpc-message", "fine")]);
    conn.finish(1, Some(&trailers.get())).unwrap();
    assert!(conn.stats().trailer_bytes > 0);
    open(&mut conn, 3);
    conn.raw()
        .write_headers(
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
    let queued = conn.stats().queued_bytes;
    assert!(conn.reset(0, 8).is_err(), "stream 0 is the connection");
    let again = conn.reset(1, 8);
    assert_eq!(
        again,
        Err(Error::Refused {
            stream: 1,
            rule: Rule::State { state: StreamState::Closed, frame: FrameType::RstStream }
        })
    );
    assert_eq!(conn.stats().queued_bytes, queued, "refused resets queue nothing");
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
        conn.write_preface(&[]).unwrap();
        conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 30_000)]).unwrap();
        for id in [1, 3, 5] {
            open(conn, id);
            conn.send(id, &body(id, 0, 50_000)).unwrap();
        }
        conn.finish(3, Some(&Fields::new(&[("grpc-status", "0")]).get())).unwrap();
        conn.ping([7; 8], false).unwrap();
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
    conn.raw().write_headers(1, &fields.get(), HeadersOptions::default()).unwrap();
    let wire = drained(&mut conn);
    assert_eq!(first_block(&wire)[0], 0x20);
    assert_eq!(streams(decode(&wire, 16_384))[&1].header_blocks[0].1, [("x-a".to_string(), "b".to_string())]);

    // Our own cap of 1024 below the peer's 4096 is announced by the first
    // block: 0x3f then 1024 - 31 = 993 in 7-bit groups (0xe1, 0x07).
    let config = Config { max_header_table_size: 1024, ..Config::default() };
    let mut conn = Connection::new(config, &Pool::default());
    conn.apply_peer_settings(&[(setting::HEADER_TABLE_SIZE, 65_536)]).unwrap();
    conn.raw().write_headers(1, &fields.get(), HeadersOptions::default()).unwrap();
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
    conn.raw()
        .write_frame(&Frame::Data { stream: 3, data: &[3; 40_000], end_stream: false, pad_length: Some(9) })
        .unwrap();
    conn.finish(1, Some(&Fields::new(&[("grpc-status", "0")]).get())).unwrap();
    conn.apply_window_update(1, 100_000).unwrap();
    let mut wire = Vec::new();
    drain_all(&mut conn, 5000, &mut wire);
    assert_eq!(conn.stats().frames as usize, raw_frames(&wire).len());
}
