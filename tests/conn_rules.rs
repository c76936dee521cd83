//! Proves issue 10's rules, one table per group: every call that would put
//! on the wire what a conformant peer rejects (RFC 9113 §3.4, §5.1, §5.1.1,
//! §5.1.2, §6.5.2, §6.8, §6.9, §8.1, §8.3, §8.4, §8.5; RFC 8441; RFC 9110
//! §5.5) is refused with a typed error that names the rule and the stream,
//! writes nothing and leaves the connection usable.
//!
//! Each row builds a connection (its role, the peer's settings, prior
//! calls), makes the call and matches the error. For every row: the
//! connection's statistics (all but the peak of leased bytes, see
//! `settled`) and stream states are what they were; draining
//! it yields exactly the bytes a twin built the same way, which never made
//! the call, yields (what was queued before the call, no more); and a valid
//! call then succeeds, with the whole wire decoded by h2's codec. Tests
//! outside the tables prove what a table row cannot: the empty END_STREAM
//! on a negative window (issue 10's first repro), the ACKs under a pool
//! budget too small for a fresh chunk, the refused list of the peer's
//! GOAWAY, raw DATA debiting the connection window, and the preface that
//! every first call writes.

mod conn_common;

use conn_common::{
    EMPTY_SETTINGS, Fields, alone, body, decode, drain_all, get_request, pool_with_budget, raw_frames, request,
    response,
};
use h2::frame::Frame as H2Frame;
use h2fw::conn::{Config, Connection, Error, HeadersOptions, MAX_WINDOW, Role, Rule, Stats, StreamHints, StreamState};
use h2fw::frame::{Frame, FrameError, FrameType, PREFACE, Priority, setting};
use h2fw::hpack::HpackError;
use h2fw::pool::{Pool, PoolError};

const MAX: u32 = MAX_WINDOW as u32;
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;

/// One row: a connection of `role` whose peer sent `peer` and on which
/// `setup` ran, a `call` that must fail as `want` says (`want_text` is its
/// pattern, for messages), and calls that must then succeed (`then`).
struct Row {
    name: &'static str,
    role: Role,
    peer: &'static [(u16, u32)],
    setup: fn(&mut Connection),
    call: fn(&mut Connection) -> Result<(), Error>,
    want: fn(&Error) -> bool,
    want_text: &'static str,
    then: fn(&mut Connection),
}

/// A [`Row`]: `row!(name, role, peer settings, |c| setup, |c| call, error pattern, |c| valid calls)`.
macro_rules! row {
    ($name:expr, $role:expr, $peer:expr, |$s:ident| $setup:expr, |$c:ident| $call:expr, $want:pat, |$t:ident| $then:expr $(,)?) => {
        Row {
            name: $name,
            role: $role,
            peer: &$peer,
            setup: |$s: &mut Connection| {
                let _ = &$s; // rows without a setup leave it unused
                $setup
            },
            call: |$c: &mut Connection| -> Result<(), Error> { $call.map(|_| ()) },
            want: |error: &Error| matches!(error, $want),
            want_text: stringify!($want),
            then: |$t: &mut Connection| $then,
        }
    };
}

const CLIENT: Role = Role::Client;
const SERVER: Role = Role::Server;
const NONE: [(u16, u32); 0] = [];
const H: StreamHints = StreamHints { content_length: None };

fn connection(role: Role, peer: &[(u16, u32)], setup: fn(&mut Connection)) -> Connection {
    let mut conn = alone(Config { role, ..Config::default() });
    conn.apply_peer_settings(peer).unwrap();
    setup(&mut conn);
    conn
}

fn drained(conn: &mut Connection) -> Vec<u8> {
    let mut wire = Vec::new();
    drain_all(conn, 1 << 20, &mut wire);
    wire
}

/// Checks every row as the file's header says.
fn check(rows: &[Row]) {
    for row in rows {
        let name = row.name;
        let mut conn = connection(row.role, row.peer, row.setup);
        let mut twin = connection(row.role, row.peer, row.setup);
        let stats = conn.stats();
        let states: Vec<StreamState> = (0..=16).map(|id| conn.stream_state(id)).collect();
        let error = match (row.call)(&mut conn) {
            Ok(()) => panic!("{name}: accepted, want {}", row.want_text),
            Err(error) => error,
        };
        assert!((row.want)(&error), "{name}: got {error:?}, want {}", row.want_text);
        assert_eq!(settled(conn.stats()), settled(stats), "{name}: the refused call changed the statistics");
        let states_after: Vec<StreamState> = (0..=16).map(|id| conn.stream_state(id)).collect();
        assert_eq!(states_after, states, "{name}: the refused call changed a stream's state");
        let mut wire = drained(&mut conn);
        assert_eq!(wire, drained(&mut twin), "{name}: the refused call wrote bytes");
        assert_eq!(settled(conn.stats()), settled(twin.stats()), "{name}");

        (row.then)(&mut conn);
        wire.extend(drained(&mut conn));
        let frames = match row.role {
            Role::Client => raw_frames(wire.strip_prefix(&PREFACE[..]).expect("{name}: the client's magic")),
            Role::Server => raw_frames(&wire),
        };
        assert_eq!(frames.first().map(|f| (f.0, f.1)), Some((SETTINGS, 0)), "{name}: the preface's SETTINGS");
        // h2 decodes the whole wire (it panics on anything it refuses).
        let decoded = decode(&wire, 16_384);
        assert_eq!(decoded.len(), frames.len() - continuations(&frames), "{name}");
    }
}

/// `stats` but its peak of leased bytes: a header block refused by the
/// encoder held its scratch and output room for a moment (and gave both
/// back), which the peak records.
fn settled(stats: Stats) -> Stats {
    Stats { peak_leased_bytes: 0, ..stats }
}

/// CONTINUATION frames, which h2's codec folds into their HEADERS.
fn continuations(frames: &[(u8, u8, u32, usize)]) -> usize {
    frames.iter().filter(|f| f.0 == 0x9).count()
}

fn open(conn: &mut Connection, id: u32) {
    conn.open_stream(id, &request("/r").get(), H, false).unwrap();
}

/// The peer (a client) opens stream `id`, its request complete or not.
fn peer_opens(conn: &mut Connection, id: u32, end_stream: bool) {
    conn.apply_peer_headers(id, end_stream).unwrap();
}

/// `base` with `extra` fields appended.
fn with(base: Fields, extra: &[(&str, &str)]) -> Fields {
    let mut fields = base;
    fields.0.extend(Fields::new(extra).0);
    fields
}

/// `base` without the field `name`.
fn without(base: Fields, name: &str) -> Fields {
    Fields(base.0.into_iter().filter(|(n, _)| n != name.as_bytes()).collect())
}

/// The size of a header list as RFC 9113 §6.5.2 counts it.
fn list_size(fields: &Fields) -> u64 {
    fields.0.iter().map(|(n, v)| n.len() as u64 + v.len() as u64 + 32).sum()
}

/// `base` with an `x-pad` field that makes it `size` bytes as §6.5.2 counts them.
fn padded(base: Fields, size: u64) -> Fields {
    let pad = size - list_size(&base) - 5 - 32;
    let fields = with(base, &[("x-pad", &"p".repeat(pad as usize))]);
    assert_eq!(list_size(&fields), size);
    fields
}

#[test]
fn stream_identifiers() {
    check(&[
        row!(
            "a client opens an even id",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(2, &request("/").get(), H, false),
            Error::StreamIdInvalid { stream: 2, .. },
            |c| open(c, 1),
        ),
        row!(
            "a client opens stream 0",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(0, &request("/").get(), H, false),
            Error::StreamIdInvalid { stream: 0, .. },
            |c| open(c, 1),
        ),
        row!(
            "a client opens an id past 2^31 - 1",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream((1 << 31) + 1, &request("/").get(), H, false),
            Error::StreamIdInvalid { stream: 0x8000_0001, .. },
            |c| open(c, (1 << 31) - 1),
        ),
        row!(
            "a client's ids go backwards",
            CLIENT,
            NONE,
            |c| open(c, 5),
            |c| c.open_stream(3, &request("/").get(), H, false),
            Error::StreamIdInvalid { stream: 3, .. },
            |c| open(c, 7),
        ),
        row!(
            "a client reuses an id",
            CLIENT,
            NONE,
            |c| open(c, 5),
            |c| c.open_stream(5, &request("/").get(), H, false),
            Error::StreamIdInvalid { stream: 5, .. },
            |c| open(c, 7),
        ),
        row!(
            "a client's ids go backwards after a raw HEADERS used a higher one",
            CLIENT,
            NONE,
            |c| {
                open(c, 1);
                let options = HeadersOptions { end_stream: true, ..HeadersOptions::default() };
                c.raw().write_headers(9, &request("/raw").get(), options).unwrap();
            },
            |c| c.open_stream(7, &request("/").get(), H, false),
            Error::StreamIdInvalid { stream: 7, .. },
            |c| open(c, 11),
        ),
        row!(
            "a server promises an odd id",
            SERVER,
            NONE,
            |c| peer_opens(c, 1, true),
            |c| c.push_promise(1, 3, &get_request("/p").get()),
            Error::StreamIdInvalid { stream: 3, .. },
            |c| c.push_promise(1, 2, &get_request("/p").get()).unwrap(),
        ),
        row!(
            "a server's promised ids go backwards",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, true);
                c.push_promise(1, 4, &get_request("/p").get()).unwrap();
            },
            |c| c.push_promise(1, 2, &get_request("/p").get()),
            Error::StreamIdInvalid { stream: 2, .. },
            |c| c.push_promise(1, 6, &get_request("/p").get()).unwrap(),
        ),
        row!(
            "a server opens a stream with a request",
            SERVER,
            NONE,
            |c| peer_opens(c, 1, true),
            |c| c.open_stream(2, &request("/").get(), H, false),
            Error::Refused { stream: 2, rule: Rule::Push { .. } },
            |c| c.push_promise(1, 2, &get_request("/p").get()).unwrap(),
        ),
        row!(
            "the peer (a client) opens an even id",
            SERVER,
            NONE,
            |c| (),
            |c| c.apply_peer_headers(2, false),
            Error::Refused { stream: 2, rule: Rule::State { state: StreamState::Idle, frame: FrameType::Headers } },
            |c| {
                peer_opens(c, 1, true);
                c.respond(1, &response("200").get(), H, true).unwrap();
            },
        ),
    ]);
}

#[test]
fn stream_states() {
    use FrameType::{Headers, RstStream, WindowUpdate};
    use StreamState::{Closed, HalfClosedLocal, HalfClosedRemote, Idle, Open};
    check(&[
        row!(
            "a client resets an idle stream",
            CLIENT,
            NONE,
            |c| (),
            |c| c.reset(1, 8),
            Error::Refused { stream: 1, rule: Rule::State { state: Idle, frame: RstStream } },
            |c| {
                open(c, 1);
                c.reset(1, 8).unwrap();
            },
        ),
        row!(
            "a client resets a closed stream (ended both ways)",
            CLIENT,
            NONE,
            |c| {
                c.open_stream(1, &request("/").get(), H, true).unwrap();
                c.apply_peer_headers(1, true).unwrap();
            },
            |c| c.reset(1, 8),
            Error::Refused { stream: 1, rule: Rule::State { state: Closed, frame: RstStream } },
            |c| open(c, 3),
        ),
        row!(
            "a client resets a stream twice",
            CLIENT,
            NONE,
            |c| {
                open(c, 1);
                c.reset(1, 8).unwrap();
            },
            |c| c.reset(1, 8),
            Error::Refused { stream: 1, rule: Rule::State { state: Closed, frame: RstStream } },
            |c| open(c, 3),
        ),
        row!(
            "a client resets a stream it skipped (implicitly closed)",
            CLIENT,
            NONE,
            |c| open(c, 5),
            |c| c.reset(3, 8),
            Error::Refused { stream: 3, rule: Rule::State { state: Closed, frame: RstStream } },
            |c| c.reset(5, 8).unwrap(),
        ),
        row!(
            "a server resets an idle stream",
            SERVER,
            NONE,
            |c| (),
            |c| c.reset(1, 8),
            Error::Refused { stream: 1, rule: Rule::State { state: Idle, frame: RstStream } },
            |c| {
                peer_opens(c, 1, false);
                c.reset(1, 8).unwrap();
            },
        ),
        row!(
            "a server resets a closed stream",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, true);
                c.respond(1, &response("204").get(), H, true).unwrap();
            },
            |c| c.reset(1, 8),
            Error::Refused { stream: 1, rule: Rule::State { state: Closed, frame: RstStream } },
            |c| peer_opens(c, 3, false),
        ),
        row!(
            "a server responds on an idle stream",
            SERVER,
            NONE,
            |c| (),
            |c| c.respond(1, &response("200").get(), H, true),
            Error::Refused { stream: 1, rule: Rule::State { state: Idle, frame: Headers } },
            |c| {
                peer_opens(c, 1, true);
                c.respond(1, &response("200").get(), H, true).unwrap();
            },
        ),
        row!(
            "a second final response without END_STREAM (the request still open)",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, false);
                c.respond(1, &response("200").get(), H, false).unwrap();
            },
            |c| c.respond(1, &response("200").get(), H, false),
            Error::Refused { stream: 1, rule: Rule::State { state: Open, frame: Headers } },
            |c| {
                c.send(1, b"body").unwrap();
                c.finish(1, Some(&Fields::new(&[("grpc-status", "0")]).get())).unwrap();
            },
        ),
        row!(
            "a second final response without END_STREAM (the request complete)",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, true);
                c.respond(1, &response("100").get(), H, false).unwrap();
                c.respond(1, &response("200").get(), H, false).unwrap();
            },
            |c| c.respond(1, &response("200").get(), H, false),
            Error::Refused { stream: 1, rule: Rule::State { state: HalfClosedRemote, frame: Headers } },
            |c| c.finish(1, None).unwrap(),
        ),
        row!(
            "a server's HEADERS after its END_STREAM",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, false);
                c.respond(1, &response("200").get(), H, true).unwrap();
            },
            |c| c.respond(1, &response("200").get(), H, false),
            Error::Refused { stream: 1, rule: Rule::State { state: HalfClosedLocal, frame: Headers } },
            |c| {
                peer_opens(c, 3, true);
                c.respond(3, &response("200").get(), H, true).unwrap();
            },
        ),
        row!(
            "a server's HEADERS after its reset",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, false);
                c.reset(1, 8).unwrap();
            },
            |c| c.respond(1, &response("200").get(), H, true),
            Error::Refused { stream: 1, rule: Rule::State { state: Closed, frame: Headers } },
            |c| {
                peer_opens(c, 3, true);
                c.respond(3, &response("200").get(), H, true).unwrap();
            },
        ),
        row!(
            "a server's trailers after its END_STREAM",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, false);
                c.respond(1, &response("200").get(), H, false).unwrap();
                c.finish(1, None).unwrap();
            },
            |c| c.finish(1, Some(&Fields::new(&[("grpc-status", "0")]).get())),
            Error::StreamNotOpen { stream: 1 },
            |c| c.reset(1, 0).unwrap(),
        ),
        row!(
            "a client's trailers after its END_STREAM",
            CLIENT,
            NONE,
            |c| c.open_stream(1, &request("/").get(), H, true).unwrap(),
            |c| c.finish(1, Some(&Fields::new(&[("grpc-status", "0")]).get())),
            Error::StreamNotOpen { stream: 1 },
            |c| open(c, 3),
        ),
        row!(
            "a client's DATA after its reset",
            CLIENT,
            NONE,
            |c| {
                open(c, 1);
                c.reset(1, 8).unwrap();
            },
            |c| c.send(1, b"late"),
            Error::StreamNotOpen { stream: 1 },
            |c| open(c, 3),
        ),
        row!(
            "a client answers its own stream",
            CLIENT,
            NONE,
            |c| open(c, 1),
            |c| c.respond(1, &response("200").get(), H, false),
            Error::Refused { stream: 1, rule: Rule::State { state: Open, frame: Headers } },
            |c| c.finish(1, None).unwrap(),
        ),
        row!(
            "WINDOW_UPDATE on an idle stream",
            CLIENT,
            NONE,
            |c| (),
            |c| c.window_update(1, 100),
            Error::Refused { stream: 1, rule: Rule::State { state: Idle, frame: WindowUpdate } },
            |c| {
                open(c, 1);
                c.window_update(1, 100).unwrap();
            },
        ),
        row!(
            "WINDOW_UPDATE on a closed stream",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, true);
                c.respond(1, &response("200").get(), H, true).unwrap();
            },
            |c| c.window_update(1, 100),
            Error::Refused { stream: 1, rule: Rule::State { state: Closed, frame: WindowUpdate } },
            |c| c.window_update(0, 100).unwrap(),
        ),
        row!(
            "the peer's HEADERS after its END_STREAM",
            CLIENT,
            NONE,
            |c| {
                open(c, 1);
                c.apply_peer_headers(1, true).unwrap();
            },
            |c| c.apply_peer_headers(1, false),
            Error::Refused { stream: 1, rule: Rule::State { state: HalfClosedRemote, frame: Headers } },
            |c| c.finish(1, None).unwrap(),
        ),
    ]);
}

#[test]
fn peer_limits() {
    const MCS_1: [(u16, u32); 1] = [(setting::MAX_CONCURRENT_STREAMS, 1)];
    const NO_PUSH: [(u16, u32); 1] = [(setting::ENABLE_PUSH, 0)];
    const HEADER_LIST_300: [(u16, u32); 1] = [(setting::MAX_HEADER_LIST_SIZE, 300)];
    check(&[
        row!(
            "past MAX_CONCURRENT_STREAMS",
            CLIENT,
            MCS_1,
            |c| open(c, 1),
            |c| c.open_stream(3, &request("/").get(), H, false),
            Error::Refused { stream: 3, rule: Rule::ConcurrencyLimit { limit: 1 } },
            |c| {
                // Stream 1 closes once both sides ended; then 3 may open.
                c.finish(1, None).unwrap();
                c.apply_peer_headers(1, true).unwrap();
                open(c, 3);
            },
        ),
        row!(
            "past MAX_CONCURRENT_STREAMS: a half-closed (local) stream counts",
            CLIENT,
            MCS_1,
            |c| c.open_stream(1, &request("/").get(), H, true).unwrap(),
            |c| c.open_stream(3, &request("/").get(), H, false),
            Error::Refused { stream: 3, rule: Rule::ConcurrencyLimit { limit: 1 } },
            |c| {
                c.apply_peer_reset(1).unwrap();
                open(c, 3);
            },
        ),
        row!(
            "MAX_CONCURRENT_STREAMS of 0",
            CLIENT,
            [(setting::MAX_CONCURRENT_STREAMS, 0)],
            |c| (),
            |c| c.open_stream(1, &request("/").get(), H, false),
            Error::Refused { stream: 1, rule: Rule::ConcurrencyLimit { limit: 0 } },
            |c| {
                c.apply_peer_settings(&MCS_1).unwrap();
                open(c, 1);
            },
        ),
        row!(
            "a server's pushed response past MAX_CONCURRENT_STREAMS (reserved streams do not count)",
            SERVER,
            MCS_1,
            |c| {
                peer_opens(c, 1, true);
                c.push_promise(1, 2, &get_request("/a").get()).unwrap();
                c.push_promise(1, 4, &get_request("/b").get()).unwrap();
                c.respond(2, &response("200").get(), H, false).unwrap();
            },
            |c| c.respond(4, &response("200").get(), H, false),
            Error::Refused { stream: 4, rule: Rule::ConcurrencyLimit { limit: 1 } },
            |c| {
                c.finish(2, None).unwrap();
                c.respond(4, &response("200").get(), H, true).unwrap();
            },
        ),
        row!(
            "a push the peer disabled",
            SERVER,
            NO_PUSH,
            |c| peer_opens(c, 1, true),
            |c| c.push_promise(1, 2, &get_request("/p").get()),
            Error::Refused { stream: 1, rule: Rule::Push { .. } },
            |c| c.respond(1, &response("200").get(), H, true).unwrap(),
        ),
        row!(
            "a push from a client",
            CLIENT,
            NONE,
            |c| open(c, 1),
            |c| c.push_promise(1, 2, &get_request("/p").get()),
            Error::Refused { stream: 1, rule: Rule::Push { .. } },
            |c| c.finish(1, None).unwrap(),
        ),
        row!(
            "a push on a stream the server has ended",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, false);
                c.respond(1, &response("200").get(), H, true).unwrap();
            },
            |c| c.push_promise(1, 2, &get_request("/p").get()),
            Error::Refused { stream: 1, rule: Rule::Push { .. } },
            |c| {
                peer_opens(c, 3, true);
                c.push_promise(3, 2, &get_request("/p").get()).unwrap();
            },
        ),
        row!(
            "a request over MAX_HEADER_LIST_SIZE",
            CLIENT,
            HEADER_LIST_300,
            |c| (),
            |c| c.open_stream(1, &padded(request("/r"), 301).get(), H, false),
            Error::Refused { stream: 1, rule: Rule::HeaderListSize { size: 301, limit: 300 } },
            |c| c.open_stream(1, &padded(request("/r"), 300).get(), H, true).unwrap(),
        ),
        row!(
            "a response over MAX_HEADER_LIST_SIZE",
            SERVER,
            HEADER_LIST_300,
            |c| peer_opens(c, 1, true),
            |c| c.respond(1, &padded(response("200"), 301).get(), H, true),
            Error::Refused { stream: 1, rule: Rule::HeaderListSize { size: 301, limit: 300 } },
            |c| c.respond(1, &padded(response("200"), 300).get(), H, true).unwrap(),
        ),
        row!(
            "trailers over MAX_HEADER_LIST_SIZE",
            CLIENT,
            HEADER_LIST_300,
            |c| open(c, 1),
            |c| c.finish(1, Some(&padded(Fields::default(), 301).get())),
            Error::Refused { stream: 1, rule: Rule::HeaderListSize { size: 301, limit: 300 } },
            |c| c.finish(1, Some(&padded(Fields::default(), 300).get())).unwrap(),
        ),
        row!(
            "a promise over MAX_HEADER_LIST_SIZE",
            SERVER,
            HEADER_LIST_300,
            |c| peer_opens(c, 1, true),
            |c| c.push_promise(1, 2, &padded(get_request("/r"), 301).get()),
            Error::Refused { stream: 2, rule: Rule::HeaderListSize { size: 301, limit: 300 } },
            |c| c.push_promise(1, 2, &padded(get_request("/r"), 300).get()).unwrap(),
        ),
        row!(
            ":protocol without the peer's ENABLE_CONNECT_PROTOCOL (then accepted with it)",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(1, &extended_connect().get(), H, false),
            Error::Refused { stream: 1, rule: Rule::ExtendedConnect },
            |c| {
                c.apply_peer_settings(&[(setting::ENABLE_CONNECT_PROTOCOL, 1)]).unwrap();
                c.open_stream(1, &extended_connect().get(), H, false).unwrap();
            },
        ),
        row!(
            "a new stream after the peer's GOAWAY",
            CLIENT,
            NONE,
            |c| {
                for id in [1, 3, 5] {
                    open(c, id);
                }
                let mut refused = Vec::new();
                c.apply_peer_goaway(1, &mut refused).unwrap();
                assert_eq!(refused, [3, 5]);
            },
            |c| c.open_stream(7, &request("/").get(), H, false),
            Error::Refused { stream: 7, rule: Rule::GoingAway { last_stream_id: 1 } },
            |c| {
                // Stream 1 was processed: it carries on.
                c.send(1, b"still going").unwrap();
                c.finish(1, None).unwrap();
            },
        ),
        row!(
            "a push after the peer's GOAWAY",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, true);
                c.apply_peer_goaway(0, &mut Vec::new()).unwrap();
            },
            |c| c.push_promise(1, 2, &get_request("/p").get()),
            Error::Refused { stream: 2, rule: Rule::GoingAway { last_stream_id: 0 } },
            |c| c.respond(1, &response("200").get(), H, true).unwrap(),
        ),
        row!(
            "our GOAWAY's last-stream-id increases",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 5, true);
                c.goaway(5, 0, b"draining").unwrap();
            },
            |c| c.goaway(7, 0, b"again"),
            Error::Refused { stream: 0, rule: Rule::GoawayIncrease { last_stream_id: 7, previous: 5 } },
            |c| {
                c.goaway(3, 0, b"lower").unwrap();
                c.goaway(3, 0, b"same").unwrap();
            },
        ),
        row!(
            "the peer opens a stream above our GOAWAY's last-stream-id",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, true);
                c.goaway(1, 0, b"").unwrap();
            },
            |c| c.apply_peer_headers(3, true),
            Error::Refused { stream: 3, rule: Rule::GoingAway { last_stream_id: 1 } },
            |c| c.respond(1, &response("200").get(), H, true).unwrap(),
        ),
    ]);
}

/// An extended CONNECT request (RFC 8441 §4).
fn extended_connect() -> Fields {
    Fields::new(&[
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "https"),
        (":path", "/chat"),
        (":authority", "example.com"),
    ])
}

/// A CONNECT request (RFC 9113 §8.5).
fn connect() -> Fields {
    Fields::new(&[(":method", "CONNECT"), (":authority", "example.com:443")])
}

#[test]
fn message_rules() {
    check(&[
        row!(
            "a request without :method",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(1, &without(request("/"), ":method").get(), H, false),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| open(c, 1),
        ),
        row!(
            "a request without :scheme",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(1, &without(request("/"), ":scheme").get(), H, false),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| open(c, 1),
        ),
        row!(
            "a request without :path",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(1, &without(request("/"), ":path").get(), H, false),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| open(c, 1),
        ),
        row!(
            "a request without :authority or host (then accepted with host)",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(1, &without(request("/"), ":authority").get(), H, false),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| {
                let with_host = with(without(request("/"), ":authority"), &[("host", "example.com")]);
                c.open_stream(1, &with_host.get(), H, true).unwrap();
            },
        ),
        row!(
            "a request with an empty :path",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(1, &request("").get(), H, false),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| open(c, 1),
        ),
        row!(
            "a request with :status",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(1, &Fields::new(&[(":status", "200")]).get(), H, false),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| open(c, 1),
        ),
        row!(
            "a request with :status among request pseudo-headers",
            CLIENT,
            NONE,
            |c| (),
            |c| {
                let mut fields = Fields::new(&[(":status", "200")]);
                fields.0.extend(request("/").0);
                c.open_stream(1, &fields.get(), H, false)
            },
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| open(c, 1),
        ),
        row!(
            "CONNECT with :path",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(1, &with(connect(), &[(":path", "/")]).get(), H, false),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| c.open_stream(1, &connect().get(), H, false).unwrap(),
        ),
        row!(
            "CONNECT with :scheme",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(1, &with(connect(), &[(":scheme", "https")]).get(), H, false),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| c.open_stream(1, &connect().get(), H, false).unwrap(),
        ),
        row!(
            "CONNECT without :authority",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(1, &without(connect(), ":authority").get(), H, false),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| c.open_stream(1, &connect().get(), H, false).unwrap(),
        ),
        row!(
            ":protocol on a method other than CONNECT",
            CLIENT,
            [(setting::ENABLE_CONNECT_PROTOCOL, 1)],
            |c| (),
            |c| c.open_stream(1, &with(get_request("/"), &[(":protocol", "websocket")]).get(), H, false),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| c.open_stream(1, &extended_connect().get(), H, false).unwrap(),
        ),
        row!(
            ":protocol without extended CONNECT",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(1, &extended_connect().get(), H, false),
            Error::Refused { stream: 1, rule: Rule::ExtendedConnect },
            |c| c.open_stream(1, &connect().get(), H, false).unwrap(),
        ),
        row!(
            "a control byte (0x01) in a request's value",
            CLIENT,
            NONE,
            |c| open(c, 1),
            |c| c.open_stream(3, &with(request("/"), &[("x-a", "a\u{1}b")]).get(), H, false),
            Error::Hpack(HpackError::InvalidValue { .. }),
            |c| c.open_stream(3, &with(request("/"), &[("x-a", "a\tb")]).get(), H, false).unwrap(),
        ),
        row!(
            "DEL (0x7f) in a request's :path",
            CLIENT,
            NONE,
            |c| open(c, 1),
            |c| c.open_stream(3, &request("/a\u{7f}").get(), H, false),
            Error::Hpack(HpackError::InvalidValue { .. }),
            |c| open(c, 3),
        ),
        row!(
            "a control byte (0x01) in a response's value",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, true);
                peer_opens(c, 3, true);
                c.respond(1, &response("200").get(), H, true).unwrap();
            },
            |c| c.respond(3, &with(response("200"), &[("x-a", "\u{1}")]).get(), H, true),
            Error::Hpack(HpackError::InvalidValue { .. }),
            |c| c.respond(3, &response("200").get(), H, true).unwrap(),
        ),
        row!(
            "DEL (0x7f) in a trailer's value",
            CLIENT,
            NONE,
            |c| open(c, 1),
            |c| c.finish(1, Some(&Fields::new(&[("grpc-message", "a\u{7f}")]).get())),
            Error::Hpack(HpackError::InvalidValue { .. }),
            |c| c.finish(1, Some(&Fields::new(&[("grpc-message", "a")]).get())).unwrap(),
        ),
        row!(
            "a control byte (0x01) in a promised request",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, true);
                c.respond(1, &response("200").get(), H, false).unwrap();
            },
            |c| c.push_promise(1, 2, &with(get_request("/p"), &[("x-a", "\u{1}")]).get()),
            Error::Hpack(HpackError::InvalidValue { .. }),
            |c| c.push_promise(1, 2, &get_request("/p").get()).unwrap(),
        ),
        row!(
            "a response without :status",
            SERVER,
            NONE,
            |c| peer_opens(c, 1, true),
            |c| c.respond(1, &Fields::new(&[("x-a", "b")]).get(), H, true),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| c.respond(1, &response("200").get(), H, true).unwrap(),
        ),
        row!(
            "a 101 response",
            SERVER,
            NONE,
            |c| peer_opens(c, 1, true),
            |c| c.respond(1, &response("101").get(), H, false),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| {
                c.respond(1, &response("103").get(), H, false).unwrap();
                c.respond(1, &response("200").get(), H, true).unwrap();
            },
        ),
        row!(
            "an informational response with END_STREAM",
            SERVER,
            NONE,
            |c| peer_opens(c, 1, true),
            |c| c.respond(1, &response("100").get(), H, true),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| {
                c.respond(1, &response("100").get(), H, false).unwrap();
                c.respond(1, &response("200").get(), H, true).unwrap();
            },
        ),
        row!(
            "a promised POST",
            SERVER,
            NONE,
            |c| peer_opens(c, 1, true),
            |c| c.push_promise(1, 2, &request("/p").get()),
            Error::Refused { stream: 2, rule: Rule::Message { .. } },
            |c| c
                .push_promise(1, 2, &with(without(get_request("/p"), ":method"), &[(":method", "HEAD")]).get())
                .unwrap(),
        ),
        row!(
            "a client's trailers with a pseudo-header",
            CLIENT,
            NONE,
            |c| open(c, 1),
            |c| c.finish(1, Some(&Fields::new(&[(":status", "200"), ("grpc-status", "0")]).get())),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| c.finish(1, Some(&Fields::new(&[("grpc-status", "0")]).get())).unwrap(),
        ),
        row!(
            "a server's trailers with a pseudo-header",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, true);
                c.respond(1, &response("200").get(), H, false).unwrap();
                c.send(1, b"body").unwrap();
            },
            |c| c.finish(1, Some(&Fields::new(&[(":path", "/")]).get())),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| c.finish(1, Some(&Fields::new(&[("grpc-status", "0")]).get())).unwrap(),
        ),
        row!(
            "a body past its content-length",
            CLIENT,
            NONE,
            |c| {
                c.open_stream(1, &with(request("/"), &[("content-length", "5")]).get(), H, false).unwrap();
                c.send(1, b"abc").unwrap();
            },
            |c| c.send(1, b"def"),
            Error::Refused { stream: 1, rule: Rule::ContentLength { declared_left: 2, offered: 3 } },
            |c| {
                assert_eq!(c.send(1, b"de").unwrap(), 2);
                c.finish(1, None).unwrap();
            },
        ),
        row!(
            "a body past its content-length, through send_and_drain",
            CLIENT,
            NONE,
            |c| c.open_stream(1, &with(request("/"), &[("content-length", "5")]).get(), H, false).unwrap(),
            |c| c.send_and_drain(1, b"abcdef", &mut Vec::new()),
            Error::Refused { stream: 1, rule: Rule::ContentLength { declared_left: 5, offered: 6 } },
            |c| {
                assert_eq!(c.send(1, b"abcde").unwrap(), 5);
                c.finish(1, None).unwrap();
            },
        ),
        row!(
            "a body past its content-length, framed in place",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, true);
                c.respond(1, &with(response("200"), &[("content-length", "5")]).get(), H, false).unwrap();
            },
            |c| c.frame_in_place(1, 6, &mut Vec::new(), &mut Vec::new()),
            Error::Refused { stream: 1, rule: Rule::ContentLength { declared_left: 5, offered: 6 } },
            |c| {
                assert_eq!(c.send(1, b"abcde").unwrap(), 5);
                c.finish(1, None).unwrap();
            },
        ),
        row!(
            "a body ended short of its content-length",
            CLIENT,
            NONE,
            |c| {
                c.open_stream(1, &with(request("/"), &[("content-length", "5")]).get(), H, false).unwrap();
                c.send(1, b"abc").unwrap();
            },
            |c| c.finish(1, None),
            Error::Refused { stream: 1, rule: Rule::ContentLength { declared_left: 2, offered: 0 } },
            |c| {
                c.send(1, b"de").unwrap();
                c.finish(1, Some(&Fields::new(&[("grpc-status", "0")]).get())).unwrap();
            },
        ),
        row!(
            "a response body ended short of its content-length, with trailers",
            SERVER,
            NONE,
            |c| {
                peer_opens(c, 1, true);
                c.respond(1, &with(response("200"), &[("content-length", "3")]).get(), H, false).unwrap();
            },
            |c| c.finish(1, Some(&Fields::new(&[("grpc-status", "0")]).get())),
            Error::Refused { stream: 1, rule: Rule::ContentLength { declared_left: 3, offered: 0 } },
            |c| {
                c.send(1, b"abc").unwrap();
                c.finish(1, None).unwrap();
            },
        ),
        row!(
            "a content-length that is not a number",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(1, &with(request("/"), &[("content-length", "5x")]).get(), H, false),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| c.open_stream(1, &with(request("/"), &[("content-length", "0")]).get(), H, true).unwrap(),
        ),
        row!(
            "two content-length fields that differ",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(
                1,
                &with(request("/"), &[("content-length", "5"), ("content-length", "6")]).get(),
                H,
                false
            ),
            Error::Refused { stream: 1, rule: Rule::Message { .. } },
            |c| {
                let same = with(request("/"), &[("content-length", "1"), ("content-length", "1")]);
                c.open_stream(1, &same.get(), H, false).unwrap();
                c.send(1, b"x").unwrap();
                c.finish(1, None).unwrap();
            },
        ),
    ]);
}

#[test]
fn preface_rules() {
    check(&[
        row!(
            "write_preface twice",
            CLIENT,
            NONE,
            |c| c.write_preface(&[(setting::ENABLE_PUSH, 0)]).unwrap(),
            |c| c.write_preface(&[]),
            Error::Refused { stream: 0, rule: Rule::Preface { .. } },
            |c| c.ping(*b"still ok", false).unwrap(),
        ),
        row!(
            "write_preface after a call queued it",
            SERVER,
            NONE,
            |c| c.ping(*b"first!!!", false).unwrap(),
            |c| c.write_preface(&[(setting::MAX_CONCURRENT_STREAMS, 10)]),
            Error::Refused { stream: 0, rule: Rule::Preface { .. } },
            |c| c.write_settings(&[(setting::MAX_CONCURRENT_STREAMS, 10)]).unwrap(),
        ),
        row!(
            "a server's preface enabling push",
            SERVER,
            NONE,
            |c| (),
            |c| c.write_preface(&[(setting::ENABLE_PUSH, 1)]),
            Error::Refused { stream: 0, rule: Rule::Push { .. } },
            |c| c.write_preface(&[(setting::ENABLE_PUSH, 0)]).unwrap(),
        ),
        row!(
            "a refused first header block writes nothing, not even the preface",
            CLIENT,
            NONE,
            |c| (),
            |c| c.open_stream(1, &with(request("/"), &[("x-a", "\u{1}")]).get(), H, false),
            Error::Hpack(HpackError::InvalidValue { .. }),
            |c| open(c, 1),
        ),
        row!(
            "a refused first response writes nothing, not even the preface",
            SERVER,
            NONE,
            |c| peer_opens(c, 1, true),
            |c| c.respond(1, &response("2x0").get(), H, true),
            Error::Hpack(HpackError::PseudoHeader { .. }),
            |c| c.respond(1, &response("200").get(), H, true).unwrap(),
        ),
        row!(
            "a refused first PRIORITY writes nothing, not even the preface",
            CLIENT,
            NONE,
            |c| (),
            |c| c.priority(0, Priority { stream_dependency: 0, weight: 1, exclusive: false }),
            Error::Frame(FrameError::StreamIdRequired { frame: FrameType::Priority }),
            |c| c.priority(1, Priority { stream_dependency: 0, weight: 1, exclusive: false }).unwrap(),
        ),
        row!(
            "a preface with an invalid setting",
            CLIENT,
            NONE,
            |c| (),
            |c| c.write_preface(&[(setting::MAX_FRAME_SIZE, 100)]),
            Error::Frame(FrameError::SettingValue { id: setting::MAX_FRAME_SIZE, value: 100 }),
            |c| c.write_preface(&[(setting::MAX_FRAME_SIZE, 1 << 20)]).unwrap(),
        ),
    ]);
}

#[test]
fn every_first_call_writes_the_preface_first() {
    /// A first call; it appends to the wire whatever it hands out itself.
    type Call = fn(&mut Connection, &mut Vec<u8>);
    let calls: [(&str, Role, Call, u8); 13] = [
        ("ping", CLIENT, |c, _| c.ping([1; 8], false).unwrap(), PING),
        ("ping ack", SERVER, |c, _| c.ping([1; 8], true).unwrap(), PING),
        ("ack_settings", CLIENT, |c, _| c.ack_settings().unwrap(), SETTINGS),
        ("write_settings", SERVER, |c, _| c.write_settings(&[(setting::MAX_CONCURRENT_STREAMS, 7)]).unwrap(), SETTINGS),
        ("window_update", CLIENT, |c, _| c.window_update(0, 1000).unwrap(), 0x8),
        ("goaway", SERVER, |c, _| c.goaway(0, 0, b"").unwrap(), 0x7),
        (
            "priority",
            CLIENT,
            |c, _| c.priority(3, Priority { stream_dependency: 0, weight: 1, exclusive: false }).unwrap(),
            0x2,
        ),
        ("open_stream", CLIENT, |c, _| open(c, 1), HEADERS),
        (
            "respond",
            SERVER,
            |c, _| {
                peer_opens(c, 1, true);
                c.respond(1, &response("200").get(), H, true).unwrap();
            },
            HEADERS,
        ),
        (
            "push_promise",
            SERVER,
            |c, _| {
                peer_opens(c, 1, true);
                c.push_promise(1, 2, &get_request("/p").get()).unwrap();
            },
            0x5,
        ),
        (
            "reset",
            SERVER,
            |c, _| {
                peer_opens(c, 1, false);
                c.reset(1, 8).unwrap();
            },
            0x3,
        ),
        (
            "send_and_drain",
            CLIENT,
            |c, wire| {
                c.open_stream(1, &request("/").get(), H, false).unwrap();
                c.send_and_drain(1, b"x", wire).unwrap();
            },
            HEADERS,
        ),
        (
            "frame_in_place",
            SERVER,
            |c, wire| {
                peer_opens(c, 1, true);
                c.respond(1, &response("200").get(), H, false).unwrap();
                let mut headers = Vec::new();
                assert_eq!(c.frame_in_place(1, 1, wire, &mut headers).unwrap(), 1);
                h2fw::frame::interleave_data(&headers, b"x", wire).unwrap();
            },
            HEADERS,
        ),
    ];
    for (name, role, call, first) in calls {
        let mut conn = alone(Config { role, ..Config::default() });
        let mut wire = Vec::new();
        call(&mut conn, &mut wire);
        drain_all(&mut conn, 1 << 20, &mut wire);
        let rest = match role {
            Role::Client => wire.strip_prefix(&PREFACE[..]).unwrap_or_else(|| panic!("{name}: no magic")),
            Role::Server => &wire[..],
        };
        let rest = rest.strip_prefix(&EMPTY_SETTINGS[..]).unwrap_or_else(|| panic!("{name}: no SETTINGS first"));
        assert_eq!(raw_frames(rest).first().map(|f| f.0), Some(first), "{name}: then the call's frame");
        let frames = decode(&wire, 16_384);
        assert!(matches!(&frames[0], H2Frame::Settings(s) if !s.is_ack()), "{name}");
        assert!(matches!(conn.write_preface(&[]), Err(Error::Refused { rule: Rule::Preface { .. }, .. })), "{name}");
    }
    // A drain with nothing queued writes nothing, not even the preface.
    let mut conn = alone(Config::default());
    let mut wire = Vec::new();
    assert_eq!(conn.drain(usize::MAX, &mut wire), Ok(0));
    assert!(wire.is_empty());
    conn.write_preface(&[]).unwrap();

    // The settings given to write_preface are the preface's; the raw escape
    // hatch writes the magic alone and counts as the preface.
    let mut conn = alone(Config::default());
    conn.write_preface(&[(setting::ENABLE_PUSH, 0), (setting::INITIAL_WINDOW_SIZE, 1 << 20)]).unwrap();
    open(&mut conn, 1);
    let wire = drained(&mut conn);
    assert_eq!(&wire[..24], PREFACE);
    assert_eq!(raw_frames(&wire).iter().map(|f| (f.0, f.3)).collect::<Vec<_>>()[0], (SETTINGS, 12));
    let frames = decode(&wire, 16_384);
    let H2Frame::Settings(settings) = &frames[0] else { panic!("{frames:?}") };
    assert_eq!((settings.is_push_enabled(), settings.initial_window_size()), (Some(false), Some(1 << 20)));
    let mut conn = alone(Config::default());
    conn.raw().write_preface_magic().unwrap();
    assert!(matches!(conn.write_preface(&[]), Err(Error::Refused { rule: Rule::Preface { .. }, .. })));
    conn.ping([0; 8], false).unwrap();
    let wire = drained(&mut conn);
    assert_eq!(raw_frames(wire.strip_prefix(&PREFACE[..]).unwrap()).iter().map(|f| f.0).collect::<Vec<_>>(), [PING]);
}

#[test]
fn raw_frames_on_managed_streams() {
    check(&[
        row!(
            "raw DATA on a managed stream",
            CLIENT,
            NONE,
            |c| open(c, 1),
            |c| c.raw().write_frame(&Frame::Data { stream: 1, data: b"raw", end_stream: true, pad_length: None }),
            Error::Refused { stream: 1, rule: Rule::ManagedStream { frame: FrameType::Data } },
            |c| {
                c.send(1, b"managed").unwrap();
                c.finish(1, None).unwrap();
            },
        ),
        row!(
            "raw HEADERS on a managed stream",
            CLIENT,
            NONE,
            |c| open(c, 1),
            |c| c.raw().write_headers(
                1,
                &Fields::new(&[("grpc-status", "0")]).get(),
                HeadersOptions { end_stream: true, ..HeadersOptions::default() }
            ),
            Error::Refused { stream: 1, rule: Rule::ManagedStream { frame: FrameType::Headers } },
            |c| c.finish(1, Some(&Fields::new(&[("grpc-status", "0")]).get())).unwrap(),
        ),
        row!(
            "a raw HEADERS frame on a managed stream",
            SERVER,
            NONE,
            |c| peer_opens(c, 1, true),
            |c| c.raw().write_frame(&Frame::Headers {
                stream: 1,
                block: &[0x88],
                end_stream: true,
                priority: None,
                pad_length: None
            }),
            Error::Refused { stream: 1, rule: Rule::ManagedStream { frame: FrameType::Headers } },
            |c| c.respond(1, &response("200").get(), H, true).unwrap(),
        ),
        row!(
            "raw PUSH_PROMISE on a managed stream",
            SERVER,
            NONE,
            |c| peer_opens(c, 1, true),
            |c| c.raw().write_push_promise(1, 2, &get_request("/p").get(), None),
            Error::Refused { stream: 1, rule: Rule::ManagedStream { frame: FrameType::PushPromise } },
            |c| c.push_promise(1, 2, &get_request("/p").get()).unwrap(),
        ),
        row!(
            "raw RST_STREAM on a managed stream",
            CLIENT,
            NONE,
            |c| open(c, 1),
            |c| c.raw().write_frame(&Frame::RstStream { stream: 1, error_code: 8 }),
            Error::Refused { stream: 1, rule: Rule::ManagedStream { frame: FrameType::RstStream } },
            |c| c.reset(1, 8).unwrap(),
        ),
    ]);
}

#[test]
fn raw_data_on_an_unmanaged_stream_comes_off_the_connection_window() {
    let mut conn = alone(Config::default());
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 20)]).unwrap();
    open(&mut conn, 1);
    let raw = body(3, 0, 60_000);
    conn.raw().write_frame(&Frame::Data { stream: 3, data: &raw, end_stream: true, pad_length: None }).unwrap();
    assert_eq!(conn.stats().conn_window, 65_535 - 60_000);
    let mut wire = drained(&mut conn);
    // The managed stream gets what the raw DATA left of the connection window.
    let managed = body(1, 0, 10_000);
    assert_eq!(conn.send(1, &managed).unwrap(), 10_000);
    wire.extend(drained(&mut conn));
    assert_eq!(conn.stats().conn_window, 0);
    assert_eq!(conn.stream_pending(1), 10_000 - 5_535);
    conn.apply_window_update(0, 10_000).unwrap();
    conn.finish(1, None).unwrap();
    wire.extend(drained(&mut conn));
    let data: Vec<(u8, u32, usize)> =
        raw_frames(&wire).into_iter().filter(|f| f.0 == DATA).map(|f| (f.1, f.2, f.3)).collect();
    assert_eq!(
        data,
        [
            (0, 3, 16_384),
            (0, 3, 16_384),
            (0, 3, 16_384),
            (END_STREAM, 3, 10_848),
            (0, 1, 5_535),
            (END_STREAM, 1, 4_465)
        ]
    );
    let views = conn_common::streams(decode(&wire, 16_384));
    assert_eq!((views[&3].body == raw, views[&1].body == managed), (true, true));
    assert_eq!(conn.stats().conn_window, 10_000 - 4_465);
}

#[test]
fn flow_control_rules() {
    check(&[
        row!(
            "WINDOW_UPDATE past 2^31 - 1 on the connection",
            CLIENT,
            NONE,
            |c| (),
            |c| c.window_update(0, MAX - 65_535 + 1),
            Error::Refused { stream: 0, rule: Rule::ReceiveWindow { window: 65_535, increment: 0x7fff_0001 } },
            |c| c.window_update(0, MAX - 65_535).unwrap(),
        ),
        row!(
            "WINDOW_UPDATE past 2^31 - 1 on a stream",
            SERVER,
            NONE,
            |c| peer_opens(c, 1, false),
            |c| c.window_update(1, MAX - 65_535 + 1),
            Error::Refused { stream: 1, rule: Rule::ReceiveWindow { window: 65_535, increment: 0x7fff_0001 } },
            |c| c.window_update(1, MAX - 65_535).unwrap(),
        ),
        row!(
            "WINDOW_UPDATE past 2^31 - 1, counting what the peer sent",
            CLIENT,
            NONE,
            |c| {
                open(c, 1);
                c.apply_peer_data(1, 1000).unwrap();
            },
            |c| c.window_update(1, MAX - 64_535 + 1),
            Error::Refused { stream: 1, rule: Rule::ReceiveWindow { window: 64_535, increment: 0x7fff_03e9 } },
            |c| {
                c.window_update(1, MAX - 64_535).unwrap();
                c.window_update(0, 1000).unwrap();
            },
        ),
        row!(
            "WINDOW_UPDATE of 0",
            CLIENT,
            NONE,
            |c| open(c, 1),
            |c| c.window_update(1, 0),
            Error::Frame(FrameError::WindowIncrement { increment: 0 }),
            |c| c.window_update(1, 1).unwrap(),
        ),
        row!(
            "our INITIAL_WINDOW_SIZE past a stream's receive window",
            CLIENT,
            NONE,
            |c| {
                open(c, 1);
                c.window_update(1, MAX - 65_535).unwrap();
            },
            |c| c.write_settings(&[(setting::INITIAL_WINDOW_SIZE, 65_536)]),
            Error::Refused { stream: 0, rule: Rule::ReceiveWindow { window: 0x8000_0000, increment: 0 } },
            |c| c
                .write_settings(&[(setting::INITIAL_WINDOW_SIZE, 65_535), (setting::MAX_FRAME_SIZE, 1 << 20)])
                .unwrap(),
        ),
    ]);
}

/// Issue 10's first repro: `open_stream(1, POST)`, one body byte, the
/// peer's INITIAL_WINDOW_SIZE to 0 (the window is −1), `finish`: no DATA may
/// go out on a negative window, not even an empty one, so the stream ends at
/// once with an empty trailer block (HEADERS need no window). On a window of
/// exactly 0 an empty DATA with END_STREAM fits (RFC 9113 §6.9.1), at once.
#[test]
fn the_empty_end_stream_never_goes_on_a_negative_window() {
    let mut conn = alone(Config::default());
    open(&mut conn, 1);
    assert_eq!(conn.send(1, b"x").unwrap(), 1);
    let wire = drained(&mut conn);
    let frames: Vec<(u8, u8, u32, usize)> = raw_frames(&wire);
    assert_eq!(frames[1..], [(HEADERS, 0x4, 1, frames[1].3), (DATA, 0, 1, 1)]);
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]).unwrap();
    conn.ack_settings().unwrap();
    assert_eq!(conn.stream_window(1), Some(-1));
    let ack = drained(&mut conn);
    assert_eq!(raw_frames(&ack), [(SETTINGS, ACK, 0, 0)]);

    conn.finish(1, None).unwrap();
    assert_eq!(conn.stream_state(1), StreamState::HalfClosedLocal);
    let end = drained(&mut conn);
    assert_eq!(end, [0, 0, 0, HEADERS, END_STREAM | 0x4, 0, 0, 0, 1], "an empty trailer block, no DATA");
    assert_eq!(conn.stream_window(1), Some(-1), "HEADERS take nothing of the window");

    // On a connection window of exactly 0: the empty DATA goes at once.
    let mut conn = alone(Config::default());
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 20)]).unwrap();
    open(&mut conn, 1);
    assert_eq!(conn.send(1, &[7; 65_535]).unwrap(), 65_535);
    drained(&mut conn);
    assert_eq!(conn.stats().conn_window, 0);
    conn.finish(1, None).unwrap();
    assert_eq!(drained(&mut conn), [0, 0, 0, DATA, END_STREAM, 0, 0, 0, 1]);
    // And once the peer ends its side, the stream is closed and forgotten.
    conn.apply_peer_headers(1, true).unwrap();
    assert_eq!((conn.stream_state(1), conn.stream_window(1)), (StreamState::Closed, None));
}

/// SETTINGS ACK and PING ACK are owed to the peer at once (RFC 9113 §6.5.3,
/// §6.7): with the pool's budget held by pending body bytes, so that no
/// fresh output chunk can be leased, they still queue (in the connection's
/// small reserve) and drain, in order; other frames are refused. When the
/// reserve is full they are refused too, typed, changing nothing.
#[test]
fn acks_queue_without_a_fresh_chunk() {
    let pool: Pool = pool_with_budget(64 << 10);
    let mut conn = Connection::new(Config::default(), &pool);
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]).unwrap();
    open(&mut conn, 1);
    let mut wire = drained(&mut conn);
    let data = body(1, 0, 1 << 20);
    let mut taken = 0;
    let refusal = loop {
        match conn.send(1, &data[taken..]) {
            Ok(n) => taken += n,
            Err(error) => break error,
        }
    };
    assert!(matches!(refusal, Error::Pool(PoolError::BudgetExceeded { .. })), "{refusal:?}");
    assert!(pool.stats().leased_bytes + (16 << 10) > 64 << 10, "no room for a chunk: {:?}", pool.stats());
    let before = conn.stats();
    let ping = conn.ping(*b"needs 16", false);
    assert!(matches!(ping, Err(Error::Pool(_))), "a PING needs a chunk: {ping:?}");
    assert_eq!(conn.stats(), before);

    conn.ack_settings().unwrap();
    conn.ping(*b"answer!!", true).unwrap();
    conn.ack_settings().unwrap();
    let mut acks = 3;
    let full = loop {
        let before = conn.stats();
        match conn.ping(*b"more....", true) {
            Ok(()) => acks += 1,
            Err(error) => {
                assert_eq!(conn.stats(), before, "a refused ACK changed the connection");
                break error;
            }
        }
        assert!(acks < 100, "the reserve is small");
    };
    assert!(matches!(full, Error::Pool(_)), "{full:?}");
    assert!(acks >= 4, "the reserve holds {acks} ACKs");
    assert_eq!(conn.stats().frames, before.frames + acks);
    let held = pool.stats().leased_bytes;

    let start = wire.len();
    drain_all(&mut conn, 1 << 20, &mut wire);
    let drained_frames: Vec<(u8, u8, u32, usize)> = raw_frames(&wire[start..]);
    let mut want = vec![(SETTINGS, ACK, 0, 0), (PING, ACK, 0, 8), (SETTINGS, ACK, 0, 0)];
    want.resize(acks as usize, (PING, ACK, 0, 8));
    assert_eq!(drained_frames, want);
    assert_eq!(pool.stats().leased_bytes, held, "the reserve is not the pool's");
    let frames = decode(&wire, 16_384);
    let pings: Vec<[u8; 8]> =
        frames.iter().filter_map(|f| if let H2Frame::Ping(p) = f { Some(*p.payload()) } else { None }).collect();
    assert_eq!(pings[..2], [*b"answer!!", *b"more...."]);

    // Drained, the reserve takes ACKs again; the peer opens the window and
    // everything else goes out too.
    conn.ack_settings().unwrap();
    // One byte more than the body: the END_STREAM goes out on a positive window.
    conn.apply_window_update(0, 1 << 20).unwrap();
    conn.apply_window_update(1, (1 << 20) + 1).unwrap();
    while taken < data.len() {
        drain_all(&mut conn, 1 << 20, &mut wire);
        taken += conn.send(1, &data[taken..]).unwrap();
    }
    conn.finish(1, None).unwrap();
    drain_all(&mut conn, 1 << 20, &mut wire);
    let views = conn_common::streams(decode(&wire, 16_384));
    assert!(views[&1].body == data && views[&1].ended);
    assert_eq!(pool.stats().leased_bytes, 0);
}

/// The peer's GOAWAY: the streams this end opened above its last-stream-id
/// are dropped (their buffers back to the pool) and listed, in order, for
/// the host to retry; a later GOAWAY never raises the last-stream-id, and
/// lists only the streams it newly refuses.
#[test]
fn the_peers_goaway_lists_the_refused_streams() {
    let mut conn = alone(Config::default());
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]).unwrap();
    for id in [1, 3, 5, 7, 9] {
        open(&mut conn, id);
        conn.send(id, &body(id, 0, 10_000)).unwrap();
    }
    drained(&mut conn);
    assert_eq!(conn.stats().pending_bytes, 50_000);
    let mut refused = vec![99];
    conn.apply_peer_goaway(5, &mut refused).unwrap();
    assert_eq!(refused, [99, 7, 9], "appended, in order");
    for (id, state) in [(5, StreamState::Open), (7, StreamState::Closed), (9, StreamState::Closed)] {
        assert_eq!(conn.stream_state(id), state, "stream {id}");
    }
    let stats = conn.stats();
    assert_eq!((stats.pending_bytes, stats.pending_streams, stats.open_streams), (30_000, 3, 3));
    assert_eq!(conn.send(7, b"x"), Err(Error::StreamNotOpen { stream: 7 }));

    let mut again = Vec::new();
    conn.apply_peer_goaway(9, &mut again).unwrap();
    assert!(again.is_empty());
    let refused = conn.open_stream(11, &request("/").get(), H, false);
    assert_eq!(refused, Err(Error::Refused { stream: 11, rule: Rule::GoingAway { last_stream_id: 5 } }));
    conn.apply_peer_goaway(1, &mut again).unwrap();
    assert_eq!(again, [3, 5]);
    assert_eq!(conn.stats().pending_bytes, 10_000);
    conn.apply_window_update(1, 1 << 20).unwrap();
    conn.finish(1, None).unwrap();
    let views = conn_common::streams(decode(&drained(&mut conn), 16_384));
    assert!(views[&1].body == body(1, 0, 10_000) && views[&1].ended);
    assert_eq!(conn.stats().leased_bytes, 0);
}

/// Library bugs the first version of these tests found, each as its
/// minimal repro (they failed at 6f15601).
mod bugs {
    use super::*;

    /// A refused raw header block counts as the preface having been written
    /// (`Raw::write_headers` sets the flag before it queues), so the managed
    /// API never writes the preface: the wire starts with the PING.
    #[test]
    fn a_refused_raw_header_block_does_not_stand_for_the_preface() {
        let mut conn = alone(Config::default());
        let refused = conn.raw().write_headers(0, &response("200").get(), HeadersOptions::default());
        assert!(refused.is_err());
        conn.ping([0; 8], false).unwrap();
        let wire = drained(&mut conn);
        assert!(wire.starts_with(PREFACE), "{wire:?}");
    }

    /// Raw padded DATA comes off the connection window by its data alone;
    /// the whole payload (pad length byte and padding included) is flow
    /// controlled (RFC 9113 §6.9.1).
    #[test]
    fn raw_padded_data_debits_its_whole_payload() {
        let mut conn = alone(Config::default());
        let frame = Frame::Data { stream: 3, data: &[1; 100], end_stream: false, pad_length: Some(10) };
        conn.raw().write_frame(&frame).unwrap();
        assert_eq!(conn.stats().conn_window, 65_535 - (1 + 100 + 10));
    }

    /// A request that declares a body (`content-length` above 0) and ends
    /// with its HEADERS is malformed (RFC 9113 §8.1.1): h2's server answers
    /// it with RST_STREAM(PROTOCOL_ERROR). `conn_conformance.rs` found it.
    #[test]
    fn a_request_declaring_a_body_it_does_not_send_is_refused() {
        let mut conn = alone(Config::default());
        let refused = conn.open_stream(1, &with(request("/"), &[("content-length", "5")]).get(), H, true);
        assert!(
            matches!(
                refused,
                Err(Error::Refused { stream: 1, rule: Rule::ContentLength { .. } | Rule::Message { .. } })
            ),
            "{refused:?}"
        );
    }

    /// A promised request carries no content (RFC 9113 §8.4.1): h2's client
    /// resets a promise whose `content-length` is not 0 (PROTOCOL_ERROR).
    #[test]
    fn a_promise_with_content_is_refused() {
        let mut conn = alone(Config { role: Role::Server, ..Config::default() });
        peer_opens(&mut conn, 1, true);
        let refused = conn.push_promise(1, 2, &with(get_request("/p"), &[("content-length", "7")]).get());
        assert!(matches!(refused, Err(Error::Refused { stream: 2, rule: Rule::Message { .. } })), "{refused:?}");
    }

    /// `reset(0)` is refused as if stream 0 were a closed stream; it is the
    /// connection (a frame error, as before the stream states).
    #[test]
    fn reset_of_stream_0_is_a_frame_error() {
        let mut conn = alone(Config::default());
        assert_eq!(conn.reset(0, 8), Err(Error::Frame(FrameError::StreamIdRequired { frame: FrameType::RstStream })));
    }
}
