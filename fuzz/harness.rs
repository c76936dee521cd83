//! The fuzz harness: plain Rust, no libFuzzer. The fuzz targets
//! (`fuzz_targets/conn_calls.rs` on the native `Connection`,
//! `fuzz_targets/component_calls.rs` on the component under wasmtime) and
//! the corpus replay test (`host-test/tests/fuzz_replay.rs`) call [`run`]
//! and [`run_component`].
//!
//! The input is decoded with `arbitrary` into a role, a pool (budget down to
//! 2 KiB, so memory refusals happen; class and idle limits; sometimes a
//! connection share), connection limits, the peer's first SETTINGS and up to
//! [`MAX_CALLS`] calls over a small stream id space (valid and invalid ids)
//! and sizes around 0, 1, 16 KiB, 64 KiB ± 1 and larger. One `Connection`
//! is driven through them; after every call:
//!
//! - nothing panicked;
//! - a refused call (`Err`) left `stats()` unchanged (its peak of leased
//!   bytes may only grow: a refused call may lease and give back) and handed
//!   out no byte;
//! - the pool's leased bytes are the connection's, leased + idle stay within
//!   the budget, idle within the idle cap, leased within the share;
//! - `stats()` is consistent (live = pending + trailers + queued, peaks
//!   above current values), and `bytes_drained` is every byte handed out.
//!
//! At the end everything is drained, the whole wire is decoded with h2's
//! `Codec` (no decode error), walked frame by frame (no HEADERS, DATA or
//! PUSH_PROMISE on a stream after our END_STREAM or RST_STREAM; DATA within
//! the connection window the peer granted), and once the connection is
//! dropped the pool holds no lease.
//!
//! The component target drives the same calls through the WIT, with a
//! memory cap the input places (see [`CapPlan`]), and also checks:
//!
//! - nothing traps: every call returns a value or a typed error;
//! - while the cap refused no growth, the wire is byte for byte the native
//!   connection's for the same input;
//! - once the calls are done, memory is filled to a full cap (connections
//!   opened until one is refused) and every export is called, with
//!   arguments of 0, 1, 64 KiB ± 1 and 1 MiB: each returns a value or a
//!   typed error, and after the cap is lifted the wire still decodes.

#![allow(dead_code)]

use std::collections::HashSet;
use std::io::Cursor;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use futures_util::{FutureExt as _, StreamExt as _};
use h2fw::conn::{BatchItem, Config, Connection, HeadersOptions, MAX_STREAM_ID, Role, Stats, StreamHints};
use h2fw::frame::{self, FRAME_HEADER_LEN, Frame, PREFACE, Priority};
use h2fw::hpack::HeaderField;
use h2fw::pool::{MAX_CLASS, Pool, PoolConfig, PoolStats};
use h2fw_host::runtime::{Build, ComponentInstance, ComponentWriter};
use h2fw_host::writer::{ErrorKind, WriteError, Writer};

/// Calls taken from one input at most.
pub const MAX_CALLS: usize = 256;

const IDS: [u32; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, MAX_STREAM_ID - 1, MAX_STREAM_ID, 1 << 31, u32::MAX];

const SIZES: [usize; 20] = [
    0,
    1,
    2,
    9,
    100,
    1000,
    4095,
    4096,
    16_383,
    16_384,
    16_385,
    32_768,
    65_535,
    65_536,
    65_537,
    100_000,
    131_072,
    262_145,
    1 << 20,
    (1 << 20) + 1,
];

const U32S: [u32; 22] = [
    0,
    1,
    2,
    3,
    100,
    4095,
    4096,
    4097,
    16_383,
    16_384,
    16_385,
    65_535,
    65_536,
    65_537,
    1 << 20,
    16_777_215,
    16_777_216,
    (1 << 31) - 65_535,
    (1 << 31) - 2,
    (1 << 31) - 1,
    1 << 31,
    u32::MAX,
];

const SETTING_IDS: [u16; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x10, 0xff];

const BUDGETS: [usize; 12] =
    [2048, 4096, 6000, 8192, 16_384, 20_000, 32_768, 65_536, 131_072, 300_000, 1 << 20, 256 << 20];
const MAX_CLASSES: [usize; 4] = [MAX_CLASS, 16_384, 4096, 65_536];
const MIN_CLASSES: [usize; 3] = [256, 1, 4096];
const IDLE_PER_CLASS: [usize; 3] = [8, 0, 1];
const IDLE_TOTAL: [usize; 3] = [1 << 20, 0, 4096];
const STREAM_WATERMARKS: [usize; 5] = [512 << 10, 0, 1, 16_384, 65_536];
const CONN_WATERMARKS: [usize; 4] = [64 << 20, 0, 16_384, 1 << 20];
const OUTPUT_WATERMARKS: [usize; 5] = [64 << 10, 0, 1, 16_384, 1 << 20];
const TABLE_SIZES: [usize; 3] = [4096, 0, 256];
const HINTS: [Option<u64>; 7] = [None, Some(0), Some(1), Some(16_384), Some(65_536), Some(70_000), Some(u64::MAX)];

fn pick<T: Copy>(table: &[T], index: u8) -> T {
    table[usize::from(index) % table.len()]
}

/// A stream id from [`IDS`].
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Id(u8);

impl Id {
    fn get(self) -> u32 {
        pick(&IDS, self.0)
    }
}

/// A length: from [`SIZES`] or any up to 64 KiB.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Size {
    Table(u8),
    Small(u16),
}

impl Size {
    fn get(self) -> usize {
        match self {
            Size::Table(i) => pick(&SIZES, i),
            Size::Small(n) => usize::from(n),
        }
    }
}

/// A u32 (window increment, setting value): from [`U32S`] or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Value {
    Table(u8),
    Any(u32),
}

impl Value {
    fn get(self) -> u32 {
        match self {
            Value::Table(i) => pick(&U32S, i),
            Value::Any(v) => v,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Setting {
    id: u8,
    value: Value,
}

fn settings(list: &[Setting]) -> Vec<(u16, u32)> {
    list.iter().take(16).map(|s| (pick(&SETTING_IDS, s.id), s.value.get())).collect()
}

/// A header list from [`templates`].
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct FieldsSel {
    index: u8,
    sensitive: bool,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Call {
    WritePreface(Vec<Setting>),
    WriteSettings(Vec<Setting>),
    AckSettings,
    Ping { opaque: u8, ack: bool },
    Goaway { last: Id, code: u8, debug: Size },
    WindowUpdate { stream: Id, increment: Value },
    Priority { stream: Id, dependency: Id, weight: u8, exclusive: bool },
    OpenStream { stream: Id, fields: FieldsSel, hint: u8, end_stream: bool },
    Respond { stream: Id, fields: FieldsSel, hint: u8, end_stream: bool },
    PushPromise { stream: Id, promised: Id, fields: FieldsSel },
    Send { stream: Id, len: Size },
    SendAndDrain { stream: Id, len: Size },
    FrameInPlace { stream: Id, len: Size },
    SendBatch { items: Vec<(Id, Size)>, short: bool },
    Finish { stream: Id, trailers: Option<FieldsSel> },
    Reset { stream: Id, code: u8 },
    Drain { max: Size },
    PeerSettings(Vec<Setting>),
    PeerWindowUpdate { stream: Id, increment: Value },
    PeerHeaders { stream: Id, end_stream: bool },
    PeerEndStream { stream: Id },
    PeerReset { stream: Id },
    PeerPushPromise { stream: Id, promised: Id },
    PeerGoaway { last: Id },
    PeerData { stream: Id, len: Value },
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Input {
    server: bool,
    budget: u8,
    max_class: u8,
    min_class: u8,
    idle_per_class: u8,
    idle_total: u8,
    share: Option<u8>,
    stream_watermark: u8,
    conn_watermark: u8,
    output_watermark: u8,
    table_size: u8,
    peer_settings: Vec<Setting>,
    calls: Vec<Call>,
}

type Owned = Vec<(Vec<u8>, Vec<u8>)>;

fn list(pairs: &[(&str, &str)]) -> Owned {
    pairs.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
}

/// Header lists, valid and not, for requests, responses, pushes and trailers.
fn templates() -> &'static [Owned] {
    static TEMPLATES: OnceLock<Vec<Owned>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let req = |method: &str, extra: &[(&str, &str)]| {
            let mut l =
                list(&[(":method", method), (":scheme", "https"), (":authority", "example.com"), (":path", "/x")]);
            l.extend(list(extra));
            l
        };
        let resp = |status: &str, extra: &[(&str, &str)]| {
            let mut l = list(&[(":status", status)]);
            l.extend(list(extra));
            l
        };
        let big = |n: usize| "v".repeat(n);
        vec![
            req("POST", &[]),
            req("GET", &[]),
            req("HEAD", &[]),
            list(&[(":method", "CONNECT"), (":authority", "example.com:443")]),
            req("CONNECT", &[(":protocol", "websocket")]),
            resp("200", &[]),
            resp("100", &[]),
            resp("204", &[]),
            resp("200", &[("content-length", "0")]),
            resp("200", &[("content-length", "16385")]),
            req("POST", &[("content-length", "1")]),
            req("POST", &[("content-length", "70000")]),
            list(&[("grpc-status", "0"), ("x-trailer", "t")]),
            Vec::new(),
            resp("200", &[("X-Bad", "1")]),
            resp("200", &[("connection", "close")]),
            list(&[(":method", "GET"), (":scheme", "https"), (":authority", "example.com")]),
            resp("200", &[("x-big", &big(20_000))]),
            req("POST", &[("x-big", &big(70_000))]),
            req("POST", &[("te", "trailers")]),
            req("POST", &[("te", "gzip")]),
            list(&[(":status", "200"), ("grpc-status", "0")]),
            resp("200", &[("content-length", "abc")]),
            list(&[(":status", "200"), (":status", "204")]),
            resp("101", &[]),
            req("GET", &[("cookie", "a=1"), ("cookie", "b=2"), ("accept", "*/*")]),
            resp("200", &[("content-length", "65537"), ("content-type", "text/plain")]),
            req("GET", &[("x-nul", "a\0b")]),
            req("GET", &[("", "empty-name")]),
        ]
    })
}

fn fields(sel: FieldsSel) -> Vec<HeaderField<'static>> {
    let list = &templates()[usize::from(sel.index) % templates().len()];
    list.iter().map(|(n, v)| HeaderField { name: n, value: v, sensitive: sel.sensitive }).collect()
}

/// Body bytes (a pattern), enough for the largest batch.
fn body() -> &'static [u8] {
    static BODY: OnceLock<Vec<u8>> = OnceLock::new();
    BODY.get_or_init(|| (0..(SIZES[SIZES.len() - 1] * 9)).map(|i| (i % 251) as u8).collect())
}

/// Linear memory allowed above what the instance has when the cap is placed.
const HEADROOMS: [usize; 5] = [0, 16 << 10, 64 << 10, 128 << 10, 1 << 20];

/// Argument sizes for the full-cap probe: around the component's 64 KiB reserve.
const PROBE_SIZES: [usize; 8] = [0, 1, 4096, 65_408, 65_535, 65_536, 65_537, 1 << 20];

/// Where the component target caps linear memory: before call `at` (after
/// the last call when past it), `headroom` above the instance's size then;
/// lifted before call `lift_at` when that comes later.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct CapPlan {
    at: u8,
    headroom: u8,
    lift_at: u8,
}

/// The component target's input: a cap plan, then the native target's input.
#[derive(Arbitrary, Debug, Clone)]
pub struct ComponentInput {
    cap: CapPlan,
    input: Input,
}

/// Decodes `data` and drives one native connection through it; panics on
/// any failed check.
pub fn run(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let (pool, config) = setup(&input);
    let conn = Connection::new(config, &pool);
    let mut d = Driver::new(conn, &input, None);
    d.run_calls(&input);
    d.finish(input.server);
}

/// Decodes `data` and drives one connection of the component through it
/// under its cap plan, then the full-cap probe; panics on any failed check.
pub fn run_component(data: &[u8]) {
    let Ok(ComponentInput { cap, input }) = ComponentInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let (pool_config, config) = setup(&input);
    let instance = ComponentInstance::new(Build::Production, &pool_config.config(), None).expect("instantiating");
    let instance = std::rc::Rc::new(std::cell::RefCell::new(instance));
    let writer = ComponentWriter::connect(&instance, &config).expect("connecting without a cap");
    let mut d = Driver::new(writer, &input, Some(cap));
    d.run_calls(&input);
    d.drain_all();
    if d.conn.memory().refused == 0 && !d.out_of_memory {
        let native = {
            let conn = Connection::new(config.clone(), &pool_config);
            let mut n = Driver::new(conn, &input, None);
            n.run_calls(&input);
            n.drain_all();
            n.wire
        };
        assert!(
            d.wire == native,
            "the component's wire ({} bytes) is not the native one ({} bytes)",
            d.wire.len(),
            native.len()
        );
    }
    d.probe_full_cap(&config);
    d.conn.set_memory_cap(None);
    d.finish(input.server);
}

/// The pool and connection limits an input asks for.
fn setup(input: &Input) -> (Pool, Config) {
    let pool = Pool::new(PoolConfig {
        min_class: pick(&MIN_CLASSES, input.min_class),
        max_class: pick(&MAX_CLASSES, input.max_class),
        idle_per_class: pick(&IDLE_PER_CLASS, input.idle_per_class),
        idle_total_bytes: pick(&IDLE_TOTAL, input.idle_total),
        budget_bytes: pick(&BUDGETS, input.budget),
    });
    let config = Config {
        role: if input.server { Role::Server } else { Role::Client },
        pool_share: input.share.map(|i| pick(&BUDGETS, i)),
        stream_high_watermark: pick(&STREAM_WATERMARKS, input.stream_watermark),
        conn_high_watermark: pick(&CONN_WATERMARKS, input.conn_watermark),
        max_header_table_size: pick(&TABLE_SIZES, input.table_size),
        output_high_watermark: pick(&OUTPUT_WATERMARKS, input.output_watermark),
    };
    (pool, config)
}

/// What the harness needs of a writer beyond [`Writer`].
pub trait Target: Writer {
    /// Drops the connection; returns its pool's statistics afterwards.
    fn close(self) -> PoolStats;
    /// Caps linear memory at `headroom` bytes above its size (`None`: no cap).
    fn set_memory_cap(&mut self, headroom: Option<usize>);
}

impl Target for Connection {
    fn close(self) -> PoolStats {
        let pool = self.pool().clone();
        drop(self);
        pool.stats()
    }
    fn set_memory_cap(&mut self, _headroom: Option<usize>) {}
}

impl Target for ComponentWriter {
    fn close(self) -> PoolStats {
        let instance = self.instance().clone();
        drop(self);
        typed(instance.borrow_mut().pool_stats(), "pool stats").expect("pool stats with the cap lifted")
    }
    fn set_memory_cap(&mut self, headroom: Option<usize>) {
        let current = ComponentWriter::memory(self).current;
        ComponentWriter::set_memory_cap(self, headroom.map(|headroom| current + headroom));
    }
}

/// `result` with a trap turned into a panic: only typed errors may come back.
fn typed<T>(result: Result<T, WriteError>, what: &str) -> Result<T, WriteError> {
    if let Err(WriteError::Host(error)) = &result {
        panic!("{what} trapped: {error:#}");
    }
    result
}

struct Driver<W: Target> {
    conn: W,
    budget: usize,
    idle_total: usize,
    share: Option<usize>,
    cap: Option<CapPlan>,
    /// Every byte handed out, in order.
    wire: Vec<u8>,
    /// Largest MAX_FRAME_SIZE the peer had.
    max_frame_size: u32,
    /// Connection window the peer granted (65 535 plus its updates).
    conn_credit: i64,
    /// A call was refused for memory (the cap, or arguments the host would
    /// not pass under it).
    out_of_memory: bool,
}

/// What a refused call may not change: every statistic but the peak of
/// leased bytes, which a call may raise while it leases and gives back.
fn unchanged(before: &Stats, after: &Stats) -> bool {
    Stats { peak_leased_bytes: 0, ..before.clone() } == Stats { peak_leased_bytes: 0, ..after.clone() }
        && after.peak_leased_bytes >= before.peak_leased_bytes
}

impl<W: Target> Driver<W> {
    fn new(conn: W, input: &Input, cap: Option<CapPlan>) -> Self {
        let mut d = Driver {
            conn,
            budget: pick(&BUDGETS, input.budget),
            idle_total: pick(&IDLE_TOTAL, input.idle_total),
            share: input.share.map(|i| pick(&BUDGETS, i)),
            cap,
            wire: Vec::new(),
            max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
            conn_credit: 65_535,
            out_of_memory: false,
        };
        d.check_accounting("new");
        d
    }

    fn stats(&mut self) -> Stats {
        typed(self.conn.stats(), "stats").expect("stats cannot fail")
    }

    /// The peer's first SETTINGS, then the input's calls, under the cap plan.
    fn run_calls(&mut self, input: &Input) {
        self.step(&Call::PeerSettings(input.peer_settings.clone()));
        let calls = &input.calls[..input.calls.len().min(MAX_CALLS)];
        for (index, call) in calls.iter().enumerate() {
            if let Some(plan) = self.cap {
                if usize::from(plan.at) == index {
                    self.conn.set_memory_cap(Some(pick(&HEADROOMS, plan.headroom)));
                }
                if usize::from(plan.lift_at) == index && plan.lift_at > plan.at {
                    self.conn.set_memory_cap(None);
                }
            }
            self.step(call);
        }
        if let Some(plan) = self.cap.filter(|plan| usize::from(plan.at) >= calls.len()) {
            self.conn.set_memory_cap(Some(pick(&HEADROOMS, plan.headroom)));
        }
    }

    fn step(&mut self, call: &Call) {
        let before = self.stats();
        let mut out = Vec::new();
        // `atomic`: an error means nothing changed (false for a batch whose
        // first items went through).
        let mut atomic = true;
        let c = &mut self.conn;
        let result: Result<(), WriteError> = match call {
            Call::WritePreface(list) => c.write_preface(&settings(list)),
            Call::WriteSettings(list) => c.write_settings(&settings(list)),
            Call::AckSettings => c.ack_settings(),
            Call::Ping { opaque, ack } => c.ping([*opaque; 8], *ack),
            Call::Goaway { last, code, debug } => c.goaway(last.get(), u32::from(*code), &body()[..debug.get()]),
            Call::WindowUpdate { stream, increment } => c.window_update(stream.get(), increment.get()),
            Call::Priority { stream, dependency, weight, exclusive } => c.priority(
                stream.get(),
                Priority { stream_dependency: dependency.get(), weight: *weight, exclusive: *exclusive },
            ),
            Call::OpenStream { stream, fields: sel, hint, end_stream } => c.open_stream(
                stream.get(),
                &fields(*sel),
                StreamHints { content_length: pick(&HINTS, *hint) },
                *end_stream,
            ),
            Call::Respond { stream, fields: sel, hint, end_stream } => {
                c.respond(stream.get(), &fields(*sel), StreamHints { content_length: pick(&HINTS, *hint) }, *end_stream)
            }
            Call::PushPromise { stream, promised, fields: sel } => {
                c.push_promise(stream.get(), promised.get(), &fields(*sel))
            }
            Call::Send { stream, len } => {
                let data = &body()[..len.get()];
                c.send(stream.get(), data).map(|n| check_taken("send", n, data.len()))
            }
            Call::SendAndDrain { stream, len } => {
                let data = &body()[..len.get()];
                c.send_and_drain(stream.get(), data, &mut out).map(|n| check_taken("send_and_drain", n, data.len()))
            }
            Call::FrameInPlace { stream, len } => {
                let len = len.get();
                c.frame_in_place(stream.get(), &body()[..len], &mut out).map(|n| {
                    assert!(n <= len, "frame_in_place framed {n} of {len} bytes");
                })
            }
            Call::SendBatch { items, short } => {
                let items: Vec<BatchItem> =
                    items.iter().take(8).map(|(id, len)| BatchItem { stream: id.get(), len: len.get() }).collect();
                let total: usize = items.iter().map(|i| i.len).sum();
                let data = &body()[..if *short { total.saturating_sub(1) } else { total }];
                let mut accepted = Vec::new();
                let result = c.send_batch(&items, data, &mut accepted);
                assert!(accepted.len() <= items.len());
                for (item, &n) in items.iter().zip(&accepted) {
                    check_taken("send_batch", n, item.len);
                }
                atomic = accepted.is_empty();
                result
            }
            Call::Finish { stream, trailers } => {
                let trailers = trailers.map(fields);
                c.finish(stream.get(), trailers.as_deref())
            }
            Call::Reset { stream, code } => c.reset(stream.get(), u32::from(*code)),
            Call::Drain { max } => {
                let max = max.get();
                c.drain(max, &mut out).map(|n| {
                    assert!(n <= max, "drain handed out {n} bytes, max {max}");
                    assert_eq!(n, out.len(), "drain's count is not what it appended");
                })
            }
            Call::PeerSettings(list) => {
                let list = settings(list);
                let result = c.apply_peer_settings(&list);
                if result.is_ok() {
                    for &(id, value) in &list {
                        if id == frame::setting::MAX_FRAME_SIZE {
                            self.max_frame_size = self.max_frame_size.max(value);
                        }
                    }
                }
                result
            }
            Call::PeerWindowUpdate { stream, increment } => {
                let (stream, increment) = (stream.get(), increment.get());
                let result = c.apply_window_update(stream, increment);
                if result.is_ok() && stream == 0 {
                    self.conn_credit += i64::from(increment);
                }
                result
            }
            Call::PeerHeaders { stream, end_stream } => c.apply_peer_headers(stream.get(), *end_stream),
            Call::PeerEndStream { stream } => c.apply_peer_end_stream(stream.get()),
            Call::PeerReset { stream } => c.apply_peer_reset(stream.get()),
            Call::PeerPushPromise { stream, promised } => c.apply_peer_push_promise(stream.get(), promised.get()),
            Call::PeerGoaway { last } => c.apply_peer_goaway(last.get()).map(drop),
            Call::PeerData { stream, len } => c.apply_peer_data(stream.get(), len.get()),
        };
        let result = typed(result, &format!("{call:?}"));
        if let Err(WriteError::Rejected { kind: ErrorKind::OutOfMemory, .. }) = &result {
            self.out_of_memory = true;
        }
        let after = self.stats();
        if let Err(error) = &result {
            assert!(out.is_empty(), "{call:?} refused ({error}) but handed out {} bytes", out.len());
            if atomic {
                assert!(
                    unchanged(&before, &after),
                    "{call:?} refused ({error}) but changed stats:\nbefore {before:?}\nafter  {after:?}"
                );
            }
        }
        self.wire.extend_from_slice(&out);
        self.check_accounting(&format!("{call:?}"));
    }

    fn check_accounting(&mut self, what: &str) {
        let stats = self.stats();
        // Under a full cap the pool's statistics may be refused (typed).
        if let Ok(pool) = typed(self.conn.pool_stats(), "pool stats") {
            assert_eq!(
                pool.leased_bytes, stats.leased_bytes,
                "after {what}: pool and connection disagree on leased bytes"
            );
            assert!(
                pool.leased_bytes + pool.idle_bytes <= self.budget,
                "after {what}: {} leased + {} idle past the budget {}",
                pool.leased_bytes,
                pool.idle_bytes,
                self.budget
            );
            assert!(pool.idle_bytes <= self.idle_total, "after {what}: {} idle past the cap", pool.idle_bytes);
        }
        if let Some(share) = self.share {
            assert!(stats.leased_bytes <= share, "after {what}: {} leased past the share {share}", stats.leased_bytes);
        }
        assert_eq!(
            stats.live_bytes,
            stats.pending_bytes + stats.trailer_bytes + stats.queued_bytes,
            "after {what}: live bytes are not pending + trailers + queued: {stats:?}"
        );
        assert!(stats.leased_bytes <= stats.peak_leased_bytes, "after {what}: leased above its peak: {stats:?}");
        assert!(stats.live_bytes <= stats.peak_live_bytes, "after {what}: live above its peak: {stats:?}");
        assert_eq!(
            stats.bytes_drained,
            self.wire.len() as u64,
            "after {what}: bytes_drained is not the bytes handed out"
        );
    }

    /// Drains until nothing is left, or the writer refuses (typed).
    fn drain_all(&mut self) {
        for _ in 0..100_000 {
            let before = self.stats();
            let mut out = Vec::new();
            match typed(self.conn.drain(usize::MAX, &mut out), "final drain") {
                Ok(0) => break,
                Ok(n) => assert_eq!(n, out.len()),
                Err(error) => {
                    assert!(out.is_empty());
                    assert!(unchanged(&before, &self.stats()), "refused final drain ({error}) changed stats");
                    break;
                }
            }
            self.wire.extend_from_slice(&out);
            self.check_accounting("final drain");
        }
    }

    fn finish(mut self, server: bool) {
        self.drain_all();
        self.check_accounting("final drain");
        let pool = self.conn.close();
        assert_eq!(pool.leased_bytes, 0, "a lease outlived its connection");
        check_wire(&self.wire, !server, self.max_frame_size, self.conn_credit);
    }
}

impl Driver<ComponentWriter> {
    /// Fills memory to a full cap and calls every export: each returns a
    /// value or a typed error, never a trap.
    fn probe_full_cap(&mut self, config: &Config) {
        // The escape hatch writes what it is given: its calls go to a
        // connection of their own, whose wire is not checked.
        let (mut spare, fillers) = fill(&mut self.conn, config);
        let spare = &mut spare;
        for &size in &PROBE_SIZES {
            let data = &body()[..size];
            let big = "v".repeat(size);
            let list = [HeaderField { name: b"x-big", value: big.as_bytes(), sensitive: false }];
            let settings_list: Vec<(u16, u32)> = (0..size / 8).map(|i| (0x10 + (i % 8) as u16, 1)).collect();
            let mut out = Vec::new();
            let mut accepted = Vec::new();
            let c = &mut self.conn;
            let outcomes: [(&str, Result<(), WriteError>); 28] = [
                ("apply_peer_settings", c.apply_peer_settings(&settings_list)),
                ("apply_window_update", c.apply_window_update(1, 1)),
                ("apply_peer_headers", c.apply_peer_headers(2, false)),
                ("apply_peer_end_stream", c.apply_peer_end_stream(1)),
                ("apply_peer_reset", c.apply_peer_reset(3)),
                ("apply_peer_push_promise", c.apply_peer_push_promise(1, 2)),
                ("apply_peer_goaway", c.apply_peer_goaway(u32::MAX >> 1).map(drop)),
                ("apply_peer_data", c.apply_peer_data(1, 1)),
                ("write_preface", c.write_preface(&settings_list)),
                ("write_settings", c.write_settings(&settings_list)),
                ("ack_settings", c.ack_settings()),
                ("ping", c.ping([1; 8], true)),
                ("goaway", c.goaway(0, 0, data)),
                ("window_update", c.window_update(0, 1)),
                ("priority", c.priority(1, Priority { stream_dependency: 0, weight: 1, exclusive: false })),
                ("open_stream", c.open_stream(1, &list, StreamHints::default(), false)),
                ("respond", c.respond(1, &list, StreamHints::default(), false)),
                ("push_promise", c.push_promise(1, 2, &list)),
                ("send", c.send(1, data).map(drop)),
                ("send_and_drain", c.send_and_drain(1, data, &mut out).map(drop)),
                ("frame_in_place", c.frame_in_place(1, data, &mut out).map(drop)),
                ("send_batch", c.send_batch(&[BatchItem { stream: 1, len: size }], data, &mut accepted)),
                ("finish", c.finish(1, Some(&list))),
                ("reset", c.reset(1, 8)),
                (
                    "raw_write_frame",
                    spare.raw_write_frame(&Frame::Data { stream: 1, data, end_stream: false, pad_length: None }),
                ),
                ("raw_write_headers", spare.raw_write_headers(1, &list, HeadersOptions::default())),
                ("raw_write_push_promise", spare.raw_write_push_promise(1, 2, &list, None)),
                ("drain", c.drain(size, &mut out).map(drop)),
            ];
            for (name, outcome) in outcomes {
                let _ = typed(outcome, &format!("{name} with {size} bytes under a full cap"));
            }
            let _ = typed(spare.raw_write_preface_magic(), "raw_write_preface_magic under a full cap");
            let _ = typed(c.pool_stats(), "pool stats under a full cap");
            let _ = self.stats();
            // What the probe's calls queued is handed out with the rest.
            self.wire.extend_from_slice(&out);
        }
        self.conn.set_memory_cap(None);
        drop(fillers);
        self.drain_all();
    }
}

/// Opens a spare connection in `writer`'s instance, caps its memory where
/// it is, then opens more until one is refused (typed) for memory; returns
/// them all, to be dropped after the probe.
fn fill(writer: &mut ComponentWriter, config: &Config) -> (ComponentWriter, Vec<ComponentWriter>) {
    let spare = ComponentWriter::connect(writer.instance(), config).expect("connecting before the full cap");
    Target::set_memory_cap(writer, Some(0));
    let mut fillers = Vec::new();
    loop {
        match ComponentWriter::connect(writer.instance(), config) {
            Ok(filler) => fillers.push(filler),
            Err(error) => match error.downcast_ref::<WriteError>() {
                Some(WriteError::Rejected { kind: ErrorKind::OutOfMemory, .. }) => return (spare, fillers),
                _ => panic!("opening a connection under a full cap did not give out-of-memory: {error:#}"),
            },
        }
        assert!(fillers.len() < 100_000, "a full cap never refused a connection");
    }
}

fn check_taken(call: &str, taken: usize, offered: usize) {
    assert!(taken <= offered, "{call} took {taken} of {offered} bytes");
    assert!(offered == 0 || taken > 0, "{call} returned Ok(0) for {offered} bytes (WouldBlock was due)");
}

/// Decodes the wire with h2's Codec and walks its frames.
fn check_wire(wire: &[u8], client: bool, max_frame_size: u32, conn_credit: i64) {
    if wire.is_empty() {
        return;
    }
    let frames = if client {
        wire.strip_prefix(&PREFACE[..]).expect("a client's wire starts with the preface magic")
    } else {
        assert!(!wire.starts_with(&PREFACE[..]), "a server wrote the client magic");
        wire
    };
    // h2's Codec: every frame decodes.
    let mut codec: h2::Codec<Cursor<Vec<u8>>, Bytes> =
        h2::Codec::with_max_recv_frame_size(Cursor::new(frames.to_vec()), max_frame_size as usize);
    codec.set_max_recv_header_list_size(usize::MAX / 8);
    let mut first = true;
    loop {
        match codec.next().now_or_never().expect("h2's Codec on an in-memory wire never waits") {
            None => break,
            Some(Ok(frame)) => {
                if first {
                    assert!(matches!(frame, h2::frame::Frame::Settings(_)), "the wire starts with {frame:?}");
                    first = false;
                }
            }
            Some(Err(error)) => panic!("h2 refuses the wire: {error:?}"),
        }
    }
    // Frame by frame: stream states and the connection window.
    let mut ended: HashSet<u32> = HashSet::new();
    let mut data_total: i64 = 0;
    let mut rest = frames;
    let mut in_block = false;
    while !rest.is_empty() {
        assert!(rest.len() >= FRAME_HEADER_LEN, "a truncated frame header ends the wire");
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let (kind, flags) = (rest[3], rest[4]);
        let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff;
        assert!(rest.len() >= FRAME_HEADER_LEN + len, "a truncated frame ends the wire");
        match kind {
            // DATA
            0x0 => {
                assert!(!ended.contains(&stream), "DATA on stream {stream} after it ended");
                data_total += len as i64;
                if flags & 0x1 != 0 {
                    ended.insert(stream);
                }
            }
            // HEADERS
            0x1 => {
                assert!(!ended.contains(&stream), "HEADERS on stream {stream} after it ended");
                if flags & 0x1 != 0 {
                    ended.insert(stream);
                }
                in_block = flags & 0x4 == 0;
            }
            // RST_STREAM
            0x3 => {
                ended.insert(stream);
            }
            // PUSH_PROMISE
            0x5 => {
                assert!(!ended.contains(&stream), "PUSH_PROMISE on stream {stream} after it ended");
                in_block = flags & 0x4 == 0;
            }
            // CONTINUATION
            0x9 => {
                assert!(in_block, "CONTINUATION outside a header block");
                in_block = flags & 0x4 == 0;
            }
            _ => {}
        }
        if kind != 0x1 && kind != 0x5 && kind != 0x9 {
            assert!(!in_block, "frame type {kind:#x} inside a header block");
        }
        rest = &rest[FRAME_HEADER_LEN + len..];
    }
    assert!(!in_block, "the wire ends inside a header block");
    assert!(data_total <= conn_credit, "{data_total} DATA bytes sent, the peer granted {conn_credit}");
}
