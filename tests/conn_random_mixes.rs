//! Randomised stream mixes (proptest), on one connection alone in its pool
//! and on 2 to 6 connections sharing one pool. After every operation: the
//! pool stays within its budget and idle caps, its leased bytes are the sum
//! of its connections' and each connection stays within its share; under
//! `tiered`, a connection's leased bytes stay within `live + per-queue slack`
//! (see `leased_bound`); a failed call changes nothing (and is refused only
//! where the streams' states say it must be), and a call on one connection
//! changes nothing of the others. The peer (a server) answers streams at
//! random: a response that ends its side, a response then END_STREAM on
//! DATA, or RST_STREAM; a stream closes once both sides are done. At the
//! end, with every stream ended, answered and the output drained, every
//! stream is closed, no byte is leased, and h2's decoder sees every stream's
//! body complete and in order, END_STREAM where expected, trailers, and
//! nothing after the end, on every connection's wire; once the connections
//! are dropped the pool counts none of them.

mod conn_common;

use std::collections::BTreeMap;

use conn_common::{Fields, body, decode, observable, pool_with_budget, request, streams};
#[cfg(feature = "baselines")]
use h2fw::baseline::{GoPools, Model};
use h2fw::conn::{Config, Connection, Error, Rule, Stats, StreamHints, StreamState};
use h2fw::frame::{FrameType, interleave_data, setting};
use h2fw::pool::Pool;
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
    /// The peer's response HEADERS without END_STREAM.
    PeerResponds {
        stream: usize,
    },
    /// The peer ends its side: END_STREAM on its HEADERS (a response, or
    /// trailers after one) or on DATA (after a response).
    PeerEnds {
        stream: usize,
        on_headers: bool,
    },
    /// The peer resets the stream.
    PeerResets {
        stream: usize,
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
        1 => (0usize..16).prop_map(|stream| Op::PeerResponds { stream }),
        2 => (0usize..16, any::<bool>()).prop_map(|(stream, on_headers)| Op::PeerEnds { stream, on_headers }),
        1 => (0usize..16).prop_map(|stream| Op::PeerResets { stream }),
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
    /// Pending bytes a reset (ours or the peer's) dropped.
    dropped: usize,
    /// The peer sent its response HEADERS.
    peer_responded: bool,
    /// The peer ended its side (END_STREAM).
    peer_ended: bool,
    /// The peer reset the stream.
    peer_reset: bool,
}

impl Expected {
    /// Closed as RFC 9113 §5.1 has it: reset by either end, or ended by both
    /// (this end's END_STREAM counts from `finish`, queued or not).
    fn closed(&self) -> bool {
        self.reset || self.peer_reset || (self.ended && self.peer_ended)
    }

    /// Whether the peer may still send on the stream.
    fn peer_open(&self) -> bool {
        !self.peer_ended && !self.reset && !self.peer_reset
    }

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
///
/// `trailers_waiting`: streams whose DATA is all out but whose stored
/// trailers are not (they wait for memory to be encoded, which on a shared
/// pool another connection may hold): no longer pending streams, they still
/// hold their trailer list.
fn leased_bound(stats: &Stats, trailers_waiting: usize) -> usize {
    let output_slack = if stats.queued_bytes > 0 { 2 * (16 << 10) } else { 0 };
    stats.live_bytes
        + stats.trailer_bytes
        + 256 * (stats.pending_streams + trailers_waiting)
        + output_slack
        + stats.pending_streams * 2 * (64 << 10)
}

const STREAM_WATERMARK: usize = 256 << 10;
const CONN_WATERMARK: usize = 2 << 20;

/// The connections' limits; `pool_share` caps what one may hold leased.
fn config(pool_share: Option<usize>) -> Config {
    Config {
        pool_share,
        stream_high_watermark: STREAM_WATERMARK,
        conn_high_watermark: CONN_WATERMARK,
        ..Config::default()
    }
}

/// One connection under test, its wire, and what the test expects of it.
struct Mix {
    conn: Connection,
    wire: Vec<u8>,
    ids: Vec<u32>,
    expected: BTreeMap<u32, Expected>,
    initial_window: i64,
    conn_window_credit: i64,
    /// Baselines: the Go scratch pools of the connection's streams.
    #[cfg(feature = "baselines")]
    scratch: Option<GoPools>,
}

impl Mix {
    /// A tiered connection on `pool`, its preface queued.
    fn tiered(pool: &Pool, pool_share: Option<usize>) -> Self {
        Self::start(Connection::new(config(pool_share), pool))
    }

    /// A connection on `pool` under a Go baseline, its preface queued.
    #[cfg(feature = "baselines")]
    fn baseline(pool: &Pool, model: Model) -> Self {
        let go = GoPools::new(model);
        let mut mix = Self::start(Connection::with_baseline(config(None), pool, &go));
        mix.scratch = Some(go);
        mix
    }

    fn start(mut conn: Connection) -> Self {
        conn.write_preface(&[]).unwrap();
        Self {
            conn,
            wire: Vec::new(),
            ids: Vec::new(),
            expected: BTreeMap::new(),
            initial_window: 65_535,
            conn_window_credit: 65_535,
            #[cfg(feature = "baselines")]
            scratch: None,
        }
    }

    /// Whether the connection is tiered (its streams hold no Go scratch buffer).
    #[cfg(feature = "baselines")]
    fn is_tiered(&self) -> bool {
        self.scratch.is_none()
    }

    #[cfg(not(feature = "baselines"))]
    fn is_tiered(&self) -> bool {
        true
    }

    /// Go scratch bytes the connection's streams hold (0 under `tiered`).
    #[cfg(feature = "baselines")]
    fn scratch_leased(&self) -> usize {
        self.scratch.as_ref().map_or(0, |go| go.stats().leased_bytes)
    }

    #[cfg(not(feature = "baselines"))]
    fn scratch_leased(&self) -> usize {
        0
    }

    fn pick(&self, i: usize) -> Option<u32> {
        if self.ids.is_empty() { None } else { Some(self.ids[i % self.ids.len()]) }
    }

    /// Applies `op`, then checks what holds of this connection after any call.
    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        let before = self.conn.stats();
        let windows_before: BTreeMap<u32, i64> =
            self.ids.iter().filter_map(|&id| self.conn.stream_window(id).map(|w| (id, w))).collect();
        let settings_change = matches!(op, Op::InitialWindow(_));
        let result: Result<(), Error> = match op {
            Op::Open { content_length, end_stream } => {
                let id = self.ids.last().map_or(1, |last| last + 2);
                let r = self.conn.open_stream(id, &request("/mix").get(), StreamHints { content_length }, end_stream);
                if r.is_ok() {
                    self.ids.push(id);
                    let e = Expected {
                        open: !end_stream,
                        ended: end_stream,
                        window: self.initial_window,
                        ..Expected::default()
                    };
                    self.expected.insert(id, e);
                }
                r
            }
            Op::Send { stream, len, call } => match self.pick(stream) {
                Some(id) => {
                    let Self { conn, wire, expected, .. } = self;
                    let e = expected.get_mut(&id).unwrap();
                    let data = body(id, e.body.len(), len);
                    let wire_before = wire.len();
                    let sent = match call {
                        SendCall::Send => conn.send(id, &data),
                        SendCall::SendAndDrain => conn.send_and_drain(id, &data, wire),
                        SendCall::FrameInPlace => {
                            let mut headers = Vec::new();
                            conn.frame_in_place(id, len, wire, &mut headers).inspect(|&framed| {
                                interleave_data(&headers, &data[..framed], wire).unwrap();
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
            Op::Finish { stream, trailers } => match self.pick(stream) {
                Some(id) => {
                    let fields = trailer_fields(id);
                    let r = self.conn.finish(id, trailers.then(|| fields.get()).as_deref());
                    let e = self.expected.get_mut(&id).unwrap();
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
            Op::Reset { stream } => match self.pick(stream) {
                Some(id) => {
                    let pending = self.conn.stream_pending(id);
                    let r = self.conn.reset(id, 8);
                    let e = self.expected.get_mut(&id).unwrap();
                    match &r {
                        Ok(()) => {
                            prop_assert!(!e.closed(), "stream {id}: reset accepted on a closed stream");
                            e.open = false;
                            e.reset = true;
                            e.dropped += pending;
                        }
                        Err(error) => {
                            let want = Error::Refused {
                                stream: id,
                                rule: Rule::State { state: StreamState::Closed, frame: FrameType::RstStream },
                            };
                            if e.closed() {
                                prop_assert_eq!(error, &want);
                            }
                        }
                    }
                    r
                }
                None => Ok(()),
            },
            Op::WindowUpdate { stream, increment } => {
                let id = stream.and_then(|i| self.pick(i)).unwrap_or(0);
                let r = self.conn.apply_window_update(id, increment);
                if r.is_ok() {
                    match self.expected.get_mut(&id) {
                        Some(e) => e.window += i64::from(increment),
                        None => self.conn_window_credit += i64::from(increment),
                    }
                }
                match r {
                    Err(Error::WindowOverflow { .. }) => Ok(()),
                    other => other,
                }
            }
            Op::InitialWindow(size) => match self.conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, size)]) {
                Err(Error::WindowOverflow { .. }) => Ok(()),
                Ok(()) => {
                    let delta = i64::from(size) - self.initial_window;
                    self.initial_window = i64::from(size);
                    self.expected.values_mut().for_each(|e| e.window += delta);
                    Ok(())
                }
                other => other,
            },
            Op::MaxFrameSize(size) => self.conn.apply_peer_settings(&[(setting::MAX_FRAME_SIZE, size)]),
            Op::Ping => self.conn.ping([1; 8], false),
            Op::Drain { piece } => {
                let start = self.wire.len();
                let r = self.conn.drain(piece, &mut self.wire);
                prop_assert!(self.wire.len() - start <= piece);
                prop_assert_eq!(r.as_ref().ok().copied().unwrap_or(0), self.wire.len() - start);
                r.map(|_| ())
            }
            Op::PeerResponds { stream } => match self.pick(stream) {
                Some(id) if !self.expected[&id].peer_responded => {
                    let r = self.conn.apply_peer_headers(id, false);
                    let e = self.expected.get_mut(&id).unwrap();
                    prop_assert_eq!(r.is_ok(), e.peer_open(), "stream {}: the peer's HEADERS: {:?}", id, r);
                    if r.is_ok() {
                        e.peer_responded = true;
                    }
                    r
                }
                _ => Ok(()),
            },
            Op::PeerEnds { stream, on_headers } => match self.pick(stream) {
                Some(id) => {
                    let peer_open = self.expected[&id].peer_open();
                    let responded = self.expected[&id].peer_responded;
                    let r = if on_headers {
                        self.conn.apply_peer_headers(id, true)
                    } else if responded {
                        self.conn.apply_peer_end_stream(id)
                    } else {
                        // DATA comes after the response's HEADERS.
                        self.conn.apply_peer_headers(id, false).and_then(|()| self.conn.apply_peer_end_stream(id))
                    };
                    prop_assert_eq!(r.is_ok(), peer_open, "stream {}: the peer's END_STREAM: {:?}", id, r);
                    let e = self.expected.get_mut(&id).unwrap();
                    if r.is_ok() {
                        e.peer_responded = true;
                        e.peer_ended = true;
                    }
                    r
                }
                None => Ok(()),
            },
            Op::PeerResets { stream } => match self.pick(stream) {
                Some(id) => {
                    let pending = self.conn.stream_pending(id);
                    let known = self.conn.stream_window(id).is_some();
                    let r = self.conn.apply_peer_reset(id);
                    // A stream that was used is never idle: the peer's reset of
                    // a closed one is a late frame, ignored.
                    prop_assert!(r.is_ok(), "stream {id}: the peer's RST_STREAM: {r:?}");
                    let e = self.expected.get_mut(&id).unwrap();
                    prop_assert!(known || e.closed(), "stream {id}: forgotten before it closed");
                    if known {
                        e.open = false;
                        e.peer_reset = true;
                        e.dropped += pending;
                    }
                    r
                }
                None => Ok(()),
            },
        };
        let conn = &self.conn;
        let after = conn.stats();
        match &result {
            Err(Error::Pool(_) | Error::WouldBlock { .. } | Error::StreamNotOpen { .. } | Error::Refused { .. }) => {
                prop_assert_eq!(observable(&before), observable(&after), "a refused call changed the connection");
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            Ok(()) => {}
        }
        prop_assert!(after.live_bytes <= after.peak_live_bytes);
        prop_assert!(after.leased_bytes <= after.peak_leased_bytes);
        let pending: usize = self.ids.iter().map(|&id| conn.stream_pending(id)).sum();
        prop_assert_eq!(pending, after.pending_bytes);
        // Flow control: every window is what the peer granted minus what was framed.
        let mut framed_total = 0;
        for (&id, e) in &self.expected {
            let framed = e.framed(conn.stream_pending(id));
            framed_total += framed;
            if let Some(window) = conn.stream_window(id) {
                prop_assert_eq!(window, e.window - framed as i64, "stream {} window", id);
            }
        }
        prop_assert_eq!(after.conn_window, self.conn_window_credit - framed_total as i64);
        // Framing never overdraws: only a SETTINGS decrease takes a window below zero.
        if !settings_change {
            for (id, before) in &windows_before {
                if let Some(window) = conn.stream_window(*id) {
                    prop_assert!(window >= (*before).min(0), "stream {id}: window {before} -> {window}");
                }
            }
        }
        prop_assert!(after.conn_window >= 0);
        if self.is_tiered() {
            // A stream finished with trailers stays known (a window) until
            // they are out, and after that until the peer ends its side too;
            // none waits when no trailer list is stored.
            let trailers_waiting = if after.trailer_bytes == 0 {
                0
            } else {
                self.expected
                    .iter()
                    .filter(|&(&id, e)| e.trailers && conn.stream_window(id).is_some() && conn.stream_pending(id) == 0)
                    .count()
            };
            let bound = leased_bound(&after, trailers_waiting);
            prop_assert!(
                after.leased_bytes <= bound,
                "leased {} > bound {bound} ({trailers_waiting} trailer lists waiting, {after:?})",
                after.leased_bytes
            );
        }
        Ok(())
    }

    /// Opens every window, as a peer that reads everything would.
    fn open_windows(&mut self) {
        self.conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 30)]).unwrap();
        let _ = self.conn.apply_window_update(0, 1 << 30);
    }

    /// The peer answers every stream it has not ended or reset: a response
    /// with END_STREAM (or trailers after its response). Every stream is
    /// then closed.
    fn peer_answers_every_stream(&mut self) -> Result<(), TestCaseError> {
        for (&id, e) in &mut self.expected {
            if e.peer_open() {
                prop_assert_eq!(self.conn.apply_peer_headers(id, true), Ok(()), "stream {}", id);
                e.peer_responded = true;
                e.peer_ended = true;
            }
            prop_assert_eq!(self.conn.stream_state(id), StreamState::Closed, "stream {}", id);
            prop_assert_eq!(self.conn.stream_window(id), None, "stream {} is forgotten", id);
        }
        Ok(())
    }

    /// Ends every stream still open (with trailers on every other one).
    fn finish_open_streams(&mut self) {
        let fields: Vec<(u32, Fields)> = self.ids.iter().map(|&id| (id, trailer_fields(id))).collect();
        for (id, trailers) in &fields {
            let e = self.expected.get_mut(id).unwrap();
            if e.open {
                let with = id % 4 == 1;
                self.conn.finish(*id, with.then(|| trailers.get()).as_deref()).unwrap();
                e.open = false;
                e.ended = true;
                e.trailers = with;
            }
        }
    }

    /// With every stream ended and everything drained: nothing is live or
    /// leased, and h2 decodes every stream as expected from the wire.
    fn verify(&self) -> Result<(), TestCaseError> {
        let stats = self.conn.stats();
        prop_assert_eq!(stats.live_bytes, 0);
        prop_assert_eq!(stats.leased_bytes, 0, "a lease outlived every stream");
        prop_assert_eq!(self.scratch_leased(), 0, "a scratch buffer outlived every stream");
        prop_assert_eq!(stats.open_streams, 0);
        prop_assert_eq!(stats.bytes_drained, self.wire.len() as u64);

        let views = streams(decode(&self.wire, 16_777_215));
        for (id, e) in &self.expected {
            let view = views.get(id);
            prop_assert!(view.is_some(), "stream {id} never seen");
            let view = view.unwrap();
            prop_assert!(!view.frame_after_end, "stream {id}: frame after END_STREAM");
            prop_assert_eq!(view.header_blocks.first().map(|(path, _)| path.as_deref()), Some(Some("/mix")));
            let want_trailers = e
                .trailers
                .then(|| vec![("grpc-status".to_string(), "0".to_string()), ("x-stream".to_string(), id.to_string())]);
            if e.reset {
                prop_assert!(
                    view.body == e.body[..e.body.len() - e.dropped],
                    "stream {id}: body before the reset differs"
                );
                prop_assert_eq!(view.reset, Some(8));
            } else if e.peer_reset {
                // What went out before the peer's reset: a prefix of the
                // body, and the end only if this end had ended it.
                prop_assert!(
                    view.body == e.body[..e.body.len() - e.dropped],
                    "stream {id}: body before the peer's reset differs"
                );
                prop_assert_eq!(view.reset, None);
                prop_assert!(!view.ended || e.ended, "stream {id}: END_STREAM it was not given");
                prop_assert!(view.trailers.is_none() || view.trailers == want_trailers, "stream {id}: trailers");
            } else {
                prop_assert!(
                    view.body == e.body,
                    "stream {id}: body differs ({} vs {} bytes)",
                    view.body.len(),
                    e.body.len()
                );
                prop_assert_eq!(view.ended, e.ended, "stream {}: END_STREAM", id);
                // On a negative window the stream ends with an empty trailer
                // block instead of an empty DATA: no trailers either way.
                let trailers = view.trailers.clone().filter(|fields| !fields.is_empty() || want_trailers.is_some());
                prop_assert_eq!(&trailers, &want_trailers, "stream {}: trailers", id);
            }
        }
        Ok(())
    }
}

/// What must hold of `pool` and the connections sharing it after any call:
/// the pool's leased bytes are the connections' together, it holds no more
/// than its budget and idles no more than its idle cap, every connection is
/// within its share, and the pool counts every connection.
fn check_pool(pool: &Pool, mixes: &[Mix], shares: &[Option<usize>]) -> Result<(), TestCaseError> {
    let stats = pool.stats();
    let config = pool.config();
    let leased: usize = mixes.iter().map(|m| m.conn.stats().leased_bytes).sum();
    prop_assert_eq!(stats.leased_bytes, leased, "pool leased bytes are not the connections' sum");
    prop_assert!(stats.leased_bytes + stats.idle_bytes <= config.budget_bytes, "over budget");
    prop_assert!(stats.idle_bytes <= config.idle_total_bytes, "idle past the cap");
    prop_assert!(stats.peak_total_bytes <= config.budget_bytes, "peak over budget");
    for (i, (mix, share)) in mixes.iter().zip(shares).enumerate() {
        if let Some(share) = share {
            let held = mix.conn.stats();
            prop_assert!(held.leased_bytes <= *share, "connection {i}: {} leased past its share", held.leased_bytes);
            prop_assert!(held.peak_leased_bytes <= *share, "connection {i}: peak past its share");
        }
    }
    prop_assert_eq!(stats.connections, mixes.len());
    Ok(())
}

/// Drains every connection in 64 KiB pieces, round-robin, until none has
/// anything left. A connection may be refused memory (its trailers need a
/// chunk that another connection holds) while another still frees some;
/// a round in which none makes progress must see no error.
fn drain_everything(mixes: &mut [Mix]) -> Result<(), TestCaseError> {
    loop {
        let mut progress = false;
        let mut refused = Vec::new();
        for (i, mix) in mixes.iter_mut().enumerate() {
            match mix.conn.drain(1 << 16, &mut mix.wire) {
                Ok(n) => progress |= n > 0,
                Err(error) => refused.push((i, error)),
            }
        }
        if !progress {
            prop_assert!(refused.is_empty(), "stuck with everything drainable: {refused:?}");
            return Ok(());
        }
    }
}

/// Runs `ops` on connection `i % n` of `mixes` (all on `pool`), checking the
/// pool after each and that no other connection changed; then opens every
/// window, drains, checks that no open idle tiered stream holds a buffer,
/// ends every stream, drains, lets the peer answer every stream (all are
/// then closed), and verifies every wire; then drops the connections and
/// checks the pool is left with nothing leased.
fn run_on(
    pool: Pool,
    mut mixes: Vec<Mix>,
    shares: &[Option<usize>],
    ops: Vec<(usize, Op)>,
) -> Result<(), TestCaseError> {
    check_pool(&pool, &mixes, shares)?;
    for (i, op) in ops {
        let i = i % mixes.len();
        let others_before: Vec<Stats> =
            mixes.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, m)| m.conn.stats()).collect();
        mixes[i].step(op)?;
        let others_after: Vec<Stats> =
            mixes.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, m)| m.conn.stats()).collect();
        prop_assert_eq!(others_before, others_after, "a call on connection {} changed another", i);
        check_pool(&pool, &mixes, shares)?;
    }

    // Open every window and drain (which frees the pool under any budget),
    // end every stream, drain again.
    mixes.iter_mut().for_each(Mix::open_windows);
    drain_everything(&mut mixes)?;
    for mix in &mixes {
        if mix.is_tiered() {
            prop_assert_eq!(mix.conn.stats().leased_bytes, 0, "open idle streams hold no buffer");
        }
    }
    check_pool(&pool, &mixes, shares)?;
    mixes.iter_mut().for_each(Mix::finish_open_streams);
    check_pool(&pool, &mixes, shares)?;
    drain_everything(&mut mixes)?;
    check_pool(&pool, &mixes, shares)?;
    for mix in &mut mixes {
        mix.peer_answers_every_stream()?;
    }
    check_pool(&pool, &mixes, shares)?;
    for mix in &mixes {
        mix.verify()?;
    }
    prop_assert_eq!(pool.leased_bytes(), 0);
    drop(mixes);
    let stats = pool.stats();
    prop_assert_eq!((stats.leased_bytes, stats.connections), (0, 0), "dropped connections left leases");
    prop_assert!(stats.idle_bytes <= pool.config().idle_total_bytes);
    Ok(())
}

/// One connection alone in its pool.
fn run(pool: Pool, mix: Mix, ops: Vec<Op>) -> Result<(), TestCaseError> {
    run_on(pool, vec![mix], &[None], ops.into_iter().map(|op| (0, op)).collect())
}

/// A `budget`-byte pool shared by one tiered connection per entry of
/// `connections`: its share, and whether its peer starts with stream
/// windows of 0 (so that its body bytes pile up in the pool).
fn run_shared(
    connections: Vec<(Option<usize>, bool)>,
    budget: usize,
    ops: Vec<(usize, Op)>,
) -> Result<(), TestCaseError> {
    let pool = pool_with_budget(budget);
    let shares: Vec<Option<usize>> = connections.iter().map(|&(share, _)| share).collect();
    let mixes = shares.iter().map(|&share| Mix::tiered(&pool, share)).collect();
    let stalls = connections.iter().enumerate().filter(|(_, (_, stalled))| *stalled);
    let ops = stalls.map(|(i, _)| (i, Op::InitialWindow(0))).chain(ops).collect();
    run_on(pool, mixes, &shares, ops)
}

/// A connection's share: none (only the budget), or one that binds often.
fn share() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(48 << 10)),
        1 => Just(Some(96 << 10)),
        1 => Just(Some(256 << 10)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn tiered_mixes_keep_accounting_and_decode(ops in prop::collection::vec(op(), 1..80)) {
        let pool = pool_with_budget(64 << 20);
        run(pool.clone(), Mix::tiered(&pool, None), ops)?;
    }

    #[test]
    fn tiered_mixes_under_a_tight_budget(ops in prop::collection::vec(op(), 1..80)) {
        let pool = pool_with_budget(400 << 10);
        run(pool.clone(), Mix::tiered(&pool, None), ops)?;
    }

    #[cfg(feature = "baselines")]
    #[test]
    fn baseline_mixes_keep_accounting_and_decode(ops in prop::collection::vec(op(), 1..60), go7 in any::<bool>()) {
        let pool = pool_with_budget(64 << 20);
        run(pool.clone(), Mix::baseline(&pool, if go7 { Model::Go7 } else { Model::Single }), ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // Connections sharing one pool: a budget that binds (128 KiB to 400 KiB)
    // or does not (64 MiB), shares that bind on some connections, and some
    // peers that start with closed stream windows.
    #[test]
    fn connections_sharing_a_pool_keep_accounting_and_decode(
        connections in prop::collection::vec((share(), prop::bool::weighted(0.4)), 2..=6),
        budget in prop_oneof![Just(64usize << 20), Just(400 << 10), Just(200 << 10), Just(128 << 10)],
        ops in prop::collection::vec((0usize..6, op()), 1..240),
    ) {
        run_shared(connections, budget, ops)?;
    }
}
