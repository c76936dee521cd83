//! Randomised stream mixes (proptest). After every operation: the pool stays
//! within its budget and idle caps; under `Tiered`, leased bytes stay within
//! `live + per-queue slack` (see `leased_bound`); a failed call changes
//! nothing. At the end, with every stream ended and the output drained, no
//! byte is leased, and h2's decoder sees every stream's body complete and in
//! order, END_STREAM where expected, trailers, and nothing after the end.

mod conn_common;

use std::collections::BTreeMap;

use conn_common::{Fields, body, decode, observable, request, streams};
use h2fw::conn::{Config, Connection, Error, Stats, StreamHints};
use h2fw::frame::{Frame, interleave_data, setting};
use h2fw::pool::Policy;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum SendCall {
    Send,
    SendAndDrain,
    FrameInPlace,
}

#[derive(Debug, Clone)]
enum Op {
    Open {
        content_length: Option<u64>,
        end_stream: bool,
    },
    /// Body bytes through `send`, `send_and_drain` or `frame_in_place`.
    Send {
        stream: usize,
        len: usize,
        call: SendCall,
    },
    Finish {
        stream: usize,
        trailers: bool,
    },
    Reset {
        stream: usize,
    },
    WindowUpdate {
        stream: Option<usize>,
        increment: u32,
    },
    InitialWindow(u32),
    MaxFrameSize(u32),
    Ping,
    Drain {
        piece: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (prop::option::of(0u64..200_000), prop::bool::weighted(0.1))
            .prop_map(|(content_length, end_stream)| Op::Open { content_length, end_stream }),
        8 => (0usize..16, prop_oneof![1usize..300, 300usize..20_000, 20_000usize..150_000], prop_oneof![
            Just(SendCall::Send),
            Just(SendCall::SendAndDrain),
            Just(SendCall::FrameInPlace)
        ])
        .prop_map(|(stream, len, call)| Op::Send { stream, len, call }),
        2 => (0usize..16, any::<bool>()).prop_map(|(stream, trailers)| Op::Finish { stream, trailers }),
        1 => (0usize..16).prop_map(|stream| Op::Reset { stream }),
        3 => (prop::option::of(0usize..16), 1u32..200_000)
            .prop_map(|(stream, increment)| Op::WindowUpdate { stream, increment }),
        1 => (0u32..150_000).prop_map(Op::InitialWindow),
        1 => prop_oneof![Just(16_384u32), Just(20_000), Just(65_536), Just(1 << 20)].prop_map(Op::MaxFrameSize),
        1 => Just(Op::Ping),
        4 => prop_oneof![1usize..20, 20usize..5000, 5000usize..200_000].prop_map(|piece| Op::Drain { piece }),
    ]
}

/// What the test expects of one stream.
#[derive(Debug, Default)]
struct Expected {
    body: Vec<u8>,
    /// Still accepting `send` (opened with a body, not finished or reset).
    open: bool,
    ended: bool,
    trailers: bool,
    reset: bool,
    /// Send window without the bytes framed: initial size, SETTINGS deltas
    /// and WINDOW_UPDATEs since the stream opened.
    window: i64,
    /// Pending bytes a reset dropped.
    dropped: usize,
}

impl Expected {
    /// Body bytes framed so far, given what is pending now.
    fn framed(&self, pending: usize) -> usize {
        self.body.len() - pending - self.dropped
    }
}

fn trailer_fields(stream: u32) -> Fields {
    Fields::new(&[("grpc-status", "0"), ("x-stream", &stream.to_string())])
}

/// The most bytes the tiered pool may lease for the current live bytes:
/// every queue holds its bytes plus at most the unread head of its first
/// chunk and the room left in its last one (output chunks 16 KiB, stream
/// chunks at most 64 KiB, a stored trailer list at most twice its size and
/// at least the smallest class, 256 B). Idle streams add nothing.
fn leased_bound(stats: &Stats) -> usize {
    let output_slack = if stats.queued_bytes > 0 { 2 * (16 << 10) } else { 0 };
    stats.live_bytes
        + stats.trailer_bytes
        + 256 * stats.pending_streams
        + output_slack
        + stats.pending_streams * 2 * (64 << 10)
}

const STREAM_WATERMARK: usize = 256 << 10;
const CONN_WATERMARK: usize = 2 << 20;

fn run(policy: Policy, ops: Vec<Op>, budget: usize) -> Result<(), TestCaseError> {
    let mut config = Config::new(policy);
    config.pool.budget_bytes = budget;
    config.stream_high_watermark = STREAM_WATERMARK;
    config.conn_high_watermark = CONN_WATERMARK;
    let idle_cap = config.pool.idle_total_bytes;
    let mut conn = Connection::new(config);
    let mut wire = Vec::new();
    conn.write_preface().unwrap();
    let mut ids: Vec<u32> = Vec::new();
    let mut expected: BTreeMap<u32, Expected> = BTreeMap::new();
    let pick = |ids: &Vec<u32>, i: usize| if ids.is_empty() { None } else { Some(ids[i % ids.len()]) };
    let mut initial_window: i64 = 65_535;
    let mut conn_window_credit: i64 = 65_535;

    for op in ops {
        let before = conn.stats();
        let windows_before: BTreeMap<u32, i64> =
            ids.iter().filter_map(|&id| conn.stream_window(id).map(|w| (id, w))).collect();
        let settings_change = matches!(op, Op::InitialWindow(_));
        let result: Result<(), Error> = match op {
            Op::Open { content_length, end_stream } => {
                let id = ids.last().map_or(1, |last| last + 2);
                let r = conn.open_stream(id, &request("/mix").get(), StreamHints { content_length }, end_stream);
                if r.is_ok() {
                    ids.push(id);
                    let e = Expected {
                        open: !end_stream,
                        ended: end_stream,
                        window: initial_window,
                        ..Expected::default()
                    };
                    expected.insert(id, e);
                }
                r
            }
            Op::Send { stream, len, call } => match pick(&ids, stream) {
                Some(id) => {
                    let e = expected.get_mut(&id).unwrap();
                    let data = body(id, e.body.len(), len);
                    let wire_before = wire.len();
                    let sent = match call {
                        SendCall::Send => conn.send(id, &data),
                        SendCall::SendAndDrain => conn.send_and_drain(id, &data, &mut wire),
                        SendCall::FrameInPlace => {
                            let mut headers = Vec::new();
                            conn.frame_in_place(id, len, &mut wire, &mut headers).inspect(|&framed| {
                                interleave_data(&headers, &data[..framed], &mut wire).unwrap();
                            })
                        }
                    };
                    if call != SendCall::Send {
                        let drained = conn.stats().bytes_drained - before.bytes_drained;
                        prop_assert_eq!(drained, (wire.len() - wire_before) as u64);
                        if sent.is_err() {
                            prop_assert_eq!(wire.len(), wire_before, "a refused send_and_drain wrote bytes");
                        }
                    }
                    match sent {
                        Ok(0) if call == SendCall::FrameInPlace => {
                            prop_assert!(e.open);
                            Ok(())
                        }
                        Ok(n) => {
                            prop_assert!(e.open, "send accepted on a closed stream");
                            prop_assert!(n > 0 && n <= len);
                            prop_assert!(conn.stream_pending(id) <= STREAM_WATERMARK, "past the stream watermark");
                            prop_assert!(conn.stats().live_bytes <= CONN_WATERMARK, "past the connection watermark");
                            e.body.extend_from_slice(&data[..n]);
                            Ok(())
                        }
                        Err(error) => {
                            if !e.open {
                                prop_assert_eq!(&error, &Error::StreamNotOpen { stream: id });
                            }
                            Err(error)
                        }
                    }
                }
                None => Ok(()),
            },
            Op::Finish { stream, trailers } => match pick(&ids, stream) {
                Some(id) => {
                    let fields = trailer_fields(id);
                    let r = conn.finish(id, trailers.then(|| fields.get()).as_deref());
                    let e = expected.get_mut(&id).unwrap();
                    if r.is_ok() {
                        prop_assert!(e.open);
                        e.open = false;
                        e.ended = true;
                        e.trailers = trailers;
                    }
                    r
                }
                None => Ok(()),
            },
            Op::Reset { stream } => match pick(&ids, stream) {
                Some(id) => {
                    let pending = conn.stream_pending(id);
                    let r = conn.reset(id, 8);
                    if r.is_ok() {
                        let e = expected.get_mut(&id).unwrap();
                        e.open = false;
                        e.reset = true;
                        e.dropped += pending;
                    }
                    r
                }
                None => Ok(()),
            },
            Op::WindowUpdate { stream, increment } => {
                let id = stream.and_then(|i| pick(&ids, i)).unwrap_or(0);
                let r = conn.apply_window_update(id, increment);
                if r.is_ok() {
                    match expected.get_mut(&id) {
                        Some(e) => e.window += i64::from(increment),
                        None => conn_window_credit += i64::from(increment),
                    }
                }
                match r {
                    Err(Error::WindowOverflow { .. }) => Ok(()),
                    other => other,
                }
            }
            Op::InitialWindow(size) => match conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, size)]) {
                Err(Error::WindowOverflow { .. }) => Ok(()),
                Ok(()) => {
                    let delta = i64::from(size) - initial_window;
                    initial_window = i64::from(size);
                    expected.values_mut().for_each(|e| e.window += delta);
                    Ok(())
                }
                other => other,
            },
            Op::MaxFrameSize(size) => conn.apply_peer_settings(&[(setting::MAX_FRAME_SIZE, size)]),
            Op::Ping => conn.write_frame(&Frame::Ping { opaque_data: [1; 8], ack: false }),
            Op::Drain { piece } => {
                let start = wire.len();
                let r = conn.drain(piece, &mut wire);
                prop_assert!(wire.len() - start <= piece);
                prop_assert_eq!(r.as_ref().ok().copied().unwrap_or(0), wire.len() - start);
                r.map(|_| ())
            }
        };
        let after = conn.stats();
        match &result {
            Err(Error::Pool(_) | Error::WouldBlock { .. } | Error::StreamNotOpen { .. }) => {
                prop_assert_eq!(observable(&before), observable(&after), "a refused call changed the connection");
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            Ok(()) => {}
        }
        let pool = &after.pool;
        prop_assert!(pool.leased_bytes + pool.idle_bytes <= budget, "over budget");
        prop_assert!(after.live_bytes <= after.peak_live_bytes);
        let pending: usize = ids.iter().map(|&id| conn.stream_pending(id)).sum();
        prop_assert_eq!(pending, after.pending_bytes);
        // Flow control: every window is what the peer granted minus what was framed.
        let mut framed_total = 0;
        for (&id, e) in &expected {
            let framed = e.framed(conn.stream_pending(id));
            framed_total += framed;
            if let Some(window) = conn.stream_window(id) {
                prop_assert_eq!(window, e.window - framed as i64, "stream {} window", id);
            }
        }
        prop_assert_eq!(after.conn_window, conn_window_credit - framed_total as i64);
        // Framing never overdraws: only a SETTINGS decrease takes a window below zero.
        if !settings_change {
            for (id, before) in &windows_before {
                if let Some(window) = conn.stream_window(*id) {
                    prop_assert!(window >= (*before).min(0), "stream {id}: window {before} -> {window}");
                }
            }
        }
        prop_assert!(after.conn_window >= 0);
        if policy == Policy::Tiered {
            prop_assert!(pool.idle_bytes <= idle_cap);
            prop_assert!(
                pool.leased_bytes <= leased_bound(&after),
                "leased {} > bound {} ({after:?})",
                pool.leased_bytes,
                leased_bound(&after)
            );
        }
    }

    // Open every window and drain (which frees the pool under any budget),
    // end every stream, drain again.
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 30)]).unwrap();
    let _ = conn.apply_window_update(0, 1 << 30);
    let drain = |conn: &mut Connection, wire: &mut Vec<u8>| while conn.drain(1 << 16, wire).unwrap() > 0 {};
    drain(&mut conn, &mut wire);
    if policy == Policy::Tiered {
        prop_assert_eq!(conn.stats().pool.leased_bytes, 0, "open idle streams hold no buffer");
    }
    let fields: Vec<(u32, Fields)> = ids.iter().map(|&id| (id, trailer_fields(id))).collect();
    for (id, trailers) in &fields {
        let e = expected.get_mut(id).unwrap();
        if e.open {
            let with = id % 4 == 1;
            conn.finish(*id, with.then(|| trailers.get()).as_deref()).unwrap();
            e.open = false;
            e.ended = true;
            e.trailers = with;
        }
    }
    drain(&mut conn, &mut wire);
    let stats = conn.stats();
    prop_assert_eq!(stats.live_bytes, 0);
    prop_assert_eq!(stats.pool.leased_bytes, 0, "a lease outlived every stream");
    prop_assert_eq!(stats.open_streams, 0);
    prop_assert_eq!(stats.bytes_drained, wire.len() as u64);

    let views = streams(decode(&wire, 16_777_215));
    for (id, e) in &expected {
        let view = views.get(id);
        prop_assert!(view.is_some(), "stream {id} never seen");
        let view = view.unwrap();
        prop_assert!(!view.frame_after_end, "stream {id}: frame after END_STREAM");
        prop_assert_eq!(view.header_blocks.first().map(|(path, _)| path.as_deref()), Some(Some("/mix")));
        if e.reset {
            prop_assert!(view.body == e.body[..e.body.len() - e.dropped], "stream {id}: body before the reset differs");
            prop_assert_eq!(view.reset, Some(8));
        } else {
            prop_assert!(
                view.body == e.body,
                "stream {id}: body differs ({} vs {} bytes)",
                view.body.len(),
                e.body.len()
            );
            prop_assert_eq!(view.ended, e.ended, "stream {}: END_STREAM", id);
            let want = e
                .trailers
                .then(|| vec![("grpc-status".to_string(), "0".to_string()), ("x-stream".to_string(), id.to_string())]);
            prop_assert_eq!(&view.trailers, &want, "stream {}: trailers", id);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn tiered_mixes_keep_accounting_and_decode(ops in prop::collection::vec(op(), 1..80)) {
        run(Policy::Tiered, ops, 64 << 20)?;
    }

    #[test]
    fn tiered_mixes_under_a_tight_budget(ops in prop::collection::vec(op(), 1..80)) {
        run(Policy::Tiered, ops, 400 << 10)?;
    }

    #[test]
    fn baseline_mixes_keep_accounting_and_decode(ops in prop::collection::vec(op(), 1..60), go7 in any::<bool>()) {
        run(if go7 { Policy::Go7 } else { Policy::Single }, ops, 64 << 20)?;
    }
}
