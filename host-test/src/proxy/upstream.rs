//! The upstream side written by h2fw: a pool of HTTP/2 connections to one
//! backend, every frame of which is written by an h2fw connection living in
//! one component instance. This module is the only user of the
//! [`Writer`] trait in the proxy.
//!
//! - **Writing.** The task that holds a body chunk hands it to the writer
//!   (`send`); each connection has one flush task that drains the writer
//!   into its socket. When the writer refuses more (a watermark, the
//!   budget, its memory), the task keeps the chunk it holds and stops
//!   reading the client's body until the flush task reports bytes out: so
//!   the client's flow-control window closes, and no body byte waits
//!   anywhere but in the writer.
//! - **Reading.** Each connection's reader decodes frames with the `h2`
//!   codec ([`super::read`]) and feeds back to the writer what the writer
//!   must know: SETTINGS (acknowledged), WINDOW_UPDATE, PING (answered),
//!   RST_STREAM and GOAWAY. Response heads, DATA and trailers go to the
//!   stream's queue, which the client side drains; DATA is credited back
//!   to the upstream (WINDOW_UPDATE) as the client side takes it, so the
//!   response bytes held here stay within the windows we advertised.
//! - **GOAWAY.** A connection that receives one takes no new streams;
//!   streams above its last stream id fail as refused (a request without a
//!   body is opened again on another connection; one with a body is reset
//!   to the client with REFUSED_STREAM, which says it is safe to retry).
//!   The rest finish; then the connection says GOAWAY itself and closes,
//!   and the next request that finds the pool short opens a new one.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf as _, Bytes};
use h2::frame::Frame as H2Frame;
use h2fw::conn::{Config, DEFAULT_WINDOW, MAX_STREAM_ID, StreamHints};
use h2fw::frame::{DEFAULT_MAX_FRAME_SIZE, setting};
use h2fw::hpack::HeaderField;
use h2fw::pool::PoolConfig;
use http::request::Parts;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body::{Body, Frame as BodyFrame};
use http_body_util::BodyExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Notify, oneshot};

use super::heap::Tagged;
use super::read::{FrameReader, ReadError};
use super::{ClientBody, ProxyConfig, ProxyError, Upstream, UpstreamStats, WriterStats};
use crate::runtime::{Build, ComponentInstance, ComponentWriter, SharedInstance};
use crate::writer::{ErrorKind, WriteError, Writer};

/// Frames we accept (we do not advertise a larger SETTINGS_MAX_FRAME_SIZE).
const MAX_RECV_FRAME: usize = DEFAULT_MAX_FRAME_SIZE as usize;
/// Most bytes one `send` hands the writer (the argument is copied into the
/// guest's memory for the call).
const MAX_SEND: usize = 64 << 10;
/// Most bytes one `drain` takes out of the writer.
const DRAIN_BYTES: usize = 256 << 10;
/// How long a connect, and then the upstream's first SETTINGS, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a request is opened again after its connection went away
/// before the upstream saw it.
const ATTEMPTS: usize = 3;
/// Least time between two samples of the writers' live bytes.
const SAMPLE_EVERY: Duration = Duration::from_millis(1);

/// The component upstream: the pool of connections and the instance
/// behind them.
pub struct ComponentUpstream {
    shared: Rc<Shared>,
}

/// What every connection and stream of the pool reaches.
struct Shared {
    address: SocketAddr,
    size: usize,
    writer: Config,
    pool: PoolConfig,
    stream_window: u32,
    connection_window: u32,
    instance: RefCell<SharedInstance>,
    conns: RefCell<Vec<Rc<Conn>>>,
    /// Requests waiting for a stream slot, first come first served.
    waiting: RefCell<VecDeque<Slot>>,
    connecting: Cell<usize>,
    /// Bytes left some writer (or a connection ended): a call refused by
    /// the pool (budget, memory) may succeed now.
    pool_progress: Notify,
    next_conn: Cell<u64>,
    opened: Cell<u64>,
    peak_live: Cell<usize>,
    sampled_at: Cell<Option<Instant>>,
}

impl ComponentUpstream {
    /// The pool for `config.upstream`, with a fresh instance (no connection yet).
    pub fn new(config: &ProxyConfig) -> Result<Self, ProxyError> {
        let instance = new_instance(&config.pool)?;
        Ok(ComponentUpstream {
            shared: Rc::new(Shared {
                address: config.upstream,
                size: config.connections.max(1),
                writer: config.writer.clone(),
                pool: config.pool.clone(),
                stream_window: config.stream_window,
                connection_window: config.connection_window.max(DEFAULT_WINDOW),
                instance: RefCell::new(instance),
                conns: RefCell::new(Vec::new()),
                waiting: RefCell::new(VecDeque::new()),
                connecting: Cell::new(0),
                pool_progress: Notify::new(),
                next_conn: Cell::new(1),
                opened: Cell::new(0),
                peak_live: Cell::new(0),
                sampled_at: Cell::new(None),
            }),
        })
    }
}

fn new_instance(pool: &PoolConfig) -> Result<SharedInstance, ProxyError> {
    let instance = ComponentInstance::new(Build::Production, pool, None)
        .map_err(|error| ProxyError::Start(format!("cannot instantiate the h2fw component: {error:#}")))?;
    Ok(Rc::new(RefCell::new(instance)))
}

impl Upstream for ComponentUpstream {
    type Body = UpstreamBody;

    async fn forward(&self, request: Request<ClientBody>) -> Result<Response<UpstreamBody>, ProxyError> {
        let (parts, body) = request.into_parts();
        let fields = RequestFields::new(&parts);
        let end_stream = body.is_end_stream();
        let hints = StreamHints { content_length: content_length(&parts.headers) };
        let mut body = Some(body);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let conn = Shared::acquire(&self.shared).await?;
            let id = match conn.open(&self.shared, &fields.borrowed(), hints, end_stream).await {
                Ok(id) => id,
                // The connection went away before the stream was opened:
                // nothing was sent, so try another.
                Err(Opened::Gone(error)) => {
                    if attempt < ATTEMPTS {
                        continue;
                    }
                    return Err(error);
                }
                Err(Opened::Failed(error)) => return Err(error),
            };
            let mut response = StreamRef::new(&self.shared, conn.clone(), id, Side::Response);
            if !end_stream && let Some(body) = body.take() {
                let request = StreamRef::new(&self.shared, conn, id, Side::Request);
                tokio::task::spawn_local(Tagged::upstream(pump(request, body)));
            }
            match response.head().await {
                Ok((status, headers)) => {
                    let mut head = Response::new(UpstreamBody { stream: response });
                    *head.status_mut() = status;
                    *head.headers_mut() = headers;
                    return Ok(head);
                }
                // Nothing of a bodiless request was processed: open it again.
                Err(error @ ProxyError::Refused { .. }) if end_stream && attempt < ATTEMPTS => drop(error),
                Err(error) => return Err(error),
            }
        }
    }

    fn stats(&self) -> UpstreamStats {
        let shared = &self.shared;
        let conns = shared.conns.borrow();
        let (live, writer) = shared.sample_live(true);
        let instance = shared.instance.borrow();
        let pool = instance.borrow_mut().pool_stats().unwrap_or_default();
        let linear_memory = instance.borrow().memory();
        UpstreamStats {
            connections: conns.len() + shared.connecting.get(),
            draining: conns.iter().filter(|conn| matches!(conn.state.borrow().phase, Phase::Draining { .. })).count(),
            opened: shared.opened.get(),
            streams: conns.iter().map(|conn| conn.state.borrow().streams.len()).sum(),
            writer: writer.then_some(WriterStats {
                linear_memory,
                pool,
                live_bytes: live,
                peak_live_bytes: shared.peak_live.get(),
            }),
        }
    }
}

/// Where a request waiting in line is handed its connection (or the error).
type Slot = oneshot::Sender<Result<Rc<Conn>, ProxyError>>;

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connected; waiting for the upstream's first SETTINGS.
    Handshake,
    /// Takes new streams.
    Ready,
    /// After a GOAWAY (or with stream ids used up): the streams at or
    /// below `last_stream` finish, no new ones open.
    Draining { last_stream: u32 },
    /// Done: the flush task writes what is left and shuts the socket.
    Closed,
}

/// One upstream connection: its h2fw writer and what the proxy tracks.
struct Conn {
    id: u64,
    /// `None` once the connection ended (its guest connection is dropped,
    /// which gives its buffers back to the pool).
    writer: RefCell<Option<ComponentWriter>>,
    state: RefCell<ConnState>,
    /// Work for the flush task.
    flush: Notify,
    /// Bytes left this writer, or the connection ended: a refused `send`
    /// may go through now.
    progress: Notify,
    /// The reader should stop.
    closing: Notify,
}

struct ConnState {
    phase: Phase,
    streams: HashMap<u32, Entry>,
    /// Slots promised to requests that have not opened their stream yet.
    reserved: usize,
    next_id: u32,
    max_concurrent: usize,
    /// What the upstream may still send on the connection.
    recv_window: i64,
    /// Taken by the client side, not yet credited back.
    unreleased: u32,
}

/// One stream, as the proxy tracks it.
struct Entry {
    /// What the upstream sent that the client side has not taken yet.
    events: VecDeque<Event>,
    waker: Option<Waker>,
    recv_window: i64,
    unreleased: u32,
    /// The writer holds the request side (not finished, not reset).
    sending: bool,
    /// The final response head arrived.
    head: bool,
    /// Nothing more will come from upstream (its END_STREAM, a reset, a failure).
    received_all: bool,
    /// The client side is done with the response.
    responded: bool,
}

/// What the upstream sent on a stream, for the client side.
enum Event {
    Head(Box<(StatusCode, HeaderMap)>),
    Data(Bytes),
    Trailers(Box<HeaderMap>),
    End,
    Failed(ProxyError),
}

/// How opening a stream failed.
enum Opened {
    /// Its connection went away first; nothing was sent.
    Gone(ProxyError),
    /// The writer refused it.
    Failed(ProxyError),
}

/// What a `send` came to.
enum Sent {
    /// Bytes taken.
    Taken(usize),
    /// Nothing taken; wait for bytes to leave this connection's writer.
    Connection,
    /// Nothing taken; wait for bytes to leave any writer of the pool.
    Pool,
}

impl Shared {
    /// A stream slot on the least loaded ready connection, waiting in line
    /// when none has room (and opening connections up to the pool's size).
    async fn acquire(shared: &Rc<Shared>) -> Result<Rc<Conn>, ProxyError> {
        Shared::grow(shared);
        if shared.waiting.borrow().is_empty()
            && let Some(conn) = shared.reserve()
        {
            return Ok(conn);
        }
        let (slot, granted) = oneshot::channel();
        shared.waiting.borrow_mut().push_back(slot);
        shared.dispatch();
        granted.await.unwrap_or(Err(ProxyError::Shutdown))
    }

    fn reserve(&self) -> Option<Rc<Conn>> {
        let conns = self.conns.borrow();
        let conn = conns.iter().filter(|conn| conn.has_room()).min_by_key(|conn| conn.active())?;
        conn.state.borrow_mut().reserved += 1;
        Some(conn.clone())
    }

    /// Hands free slots to waiting requests, in order.
    fn dispatch(&self) {
        loop {
            let mut waiting = self.waiting.borrow_mut();
            while waiting.front().is_some_and(|slot| slot.is_closed()) {
                waiting.pop_front();
            }
            if waiting.is_empty() {
                return;
            }
            let Some(conn) = self.reserve() else { return };
            let slot = waiting.pop_front().expect("checked above");
            drop(waiting);
            if let Err(Ok(conn)) = slot.send(Ok(conn)) {
                conn.state.borrow_mut().reserved -= 1;
            }
        }
    }

    /// Opens connections until the pool has its size (draining ones do not count).
    fn grow(shared: &Rc<Shared>) {
        let usable = shared.conns.borrow().iter().filter(|conn| conn.usable()).count() + shared.connecting.get();
        for _ in usable..shared.size {
            shared.connecting.set(shared.connecting.get() + 1);
            tokio::task::spawn_local(Tagged::upstream(run_connection(shared.clone())));
        }
    }

    /// A connect failed: if no connection can serve the requests in line,
    /// they fail with `error`.
    fn connect_failed(&self, error: &ProxyError) {
        if self.connecting.get() > 0 || self.conns.borrow().iter().any(|conn| conn.usable()) {
            return;
        }
        for slot in self.waiting.borrow_mut().drain(..) {
            let _ = slot.send(Err(ProxyError::Connect { address: self.address, message: error.to_string() }));
        }
    }

    /// The writers' live bytes now, and whether any writer answered; also
    /// updates the peak (at most once per [`SAMPLE_EVERY`] unless `force`).
    fn sample_live(&self, force: bool) -> (usize, bool) {
        let now = Instant::now();
        if !force && self.sampled_at.get().is_some_and(|at| now.duration_since(at) < SAMPLE_EVERY) {
            return (0, false);
        }
        self.sampled_at.set(Some(now));
        let mut live = 0;
        for conn in self.conns.borrow().iter() {
            if let Some(writer) = conn.writer.borrow_mut().as_mut() {
                live += writer.stats().map_or(0, |stats| stats.live_bytes);
            }
        }
        self.peak_live.set(self.peak_live.get().max(live));
        (live, true)
    }

    /// The instance trapped: every connection in it is dead. Fail them all
    /// and start a fresh instance for the next ones.
    fn instance_failed(&self, error: &WriteError) {
        let conns: Vec<Rc<Conn>> = self.conns.borrow().clone();
        for conn in conns {
            conn.fail(self, &format!("the h2fw instance failed: {error}"));
        }
        if let Ok(instance) = new_instance(&self.pool) {
            *self.instance.borrow_mut() = instance;
        }
    }
}

/// Connects, handshakes, then reads the connection until it ends.
async fn run_connection(shared: Rc<Shared>) {
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(shared.address)).await;
    shared.connecting.set(shared.connecting.get() - 1);
    let connect_error = |message: String| ProxyError::Connect { address: shared.address, message };
    let tcp = match connected {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(error)) => return shared.connect_failed(&connect_error(error.to_string())),
        Err(_) => return shared.connect_failed(&connect_error("timed out".into())),
    };
    let _ = tcp.set_nodelay(true);
    let id = shared.next_conn.get();
    shared.next_conn.set(id + 1);
    let conn = match Conn::new(&shared, id) {
        Ok(conn) => Rc::new(conn),
        Err(error) => return shared.connect_failed(&error),
    };
    shared.conns.borrow_mut().push(conn.clone());
    shared.opened.set(shared.opened.get() + 1);
    let (read, write) = tcp.into_split();
    let flusher = tokio::task::spawn_local(Tagged::upstream(flush(conn.clone(), shared.clone(), write)));
    conn.flush.notify_one();
    let message = conn.read(&shared, FrameReader::new(read, MAX_RECV_FRAME)).await;
    // Give the flush task a moment to write a GOAWAY we queued.
    let _ = tokio::time::timeout(Duration::from_secs(1), flusher).await;
    conn.fail(&shared, &message);
    if !shared.waiting.borrow().is_empty() {
        Shared::grow(&shared);
    }
}

/// Drains the writer into the socket whenever there is work.
async fn flush(conn: Rc<Conn>, shared: Rc<Shared>, mut socket: OwnedWriteHalf) {
    let mut wire = Vec::with_capacity(DRAIN_BYTES);
    loop {
        wire.clear();
        let drained = conn.with_writer(&shared, |writer| writer.drain(DRAIN_BYTES, &mut wire));
        match drained {
            Ok(0) | Err(_) => {
                if conn.state.borrow().phase == Phase::Closed || conn.writer.borrow().is_none() {
                    let _ = socket.shutdown().await;
                    return;
                }
                conn.flush.notified().await;
            }
            Ok(_) => {
                if socket.write_all(&wire).await.is_err() {
                    conn.closing.notify_one();
                    return;
                }
                conn.progress.notify_waiters();
                shared.pool_progress.notify_waiters();
            }
        }
    }
}

/// Sends the client's request body upstream, holding each chunk until the
/// writer has taken all of it; then the trailers, or END_STREAM.
async fn pump(mut stream: StreamRef, mut body: ClientBody) {
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(error)) => return stream.cancel(ProxyError::ClientBody(error)),
        };
        match frame.into_data() {
            Ok(data) => {
                if stream.send_all(data).await.is_err() {
                    return stream.done_sending();
                }
            }
            Err(frame) => {
                let trailers = frame.into_trailers().ok();
                return stream.finish(trailers.as_ref()).await;
            }
        }
    }
    stream.finish(None).await
}

impl Conn {
    /// A connection in the pool's instance, with the preface, our SETTINGS
    /// and the connection window queued.
    fn new(shared: &Shared, id: u64) -> Result<Self, ProxyError> {
        let writer = ComponentWriter::connect(&shared.instance.borrow(), &shared.writer)
            .map_err(|error| ProxyError::Writer { call: "connect", stream: 0, error: WriteError::Host(error) })?;
        let conn = Conn {
            id,
            writer: RefCell::new(Some(writer)),
            state: RefCell::new(ConnState {
                phase: Phase::Handshake,
                streams: HashMap::new(),
                reserved: 0,
                next_id: 1,
                max_concurrent: usize::MAX,
                recv_window: i64::from(shared.connection_window),
                unreleased: 0,
            }),
            flush: Notify::new(),
            progress: Notify::new(),
            closing: Notify::new(),
        };
        let settings = [(setting::ENABLE_PUSH, 0), (setting::INITIAL_WINDOW_SIZE, shared.stream_window)];
        conn.call(shared, "write_preface", 0, |writer| writer.write_preface(&settings))?;
        let increment = shared.connection_window - DEFAULT_WINDOW;
        if increment > 0 {
            conn.call(shared, "window_update", 0, |writer| writer.window_update(0, increment))?;
        }
        Ok(conn)
    }

    /// Counts toward the pool's size: not draining, not closed.
    fn usable(&self) -> bool {
        matches!(self.state.borrow().phase, Phase::Handshake | Phase::Ready)
    }

    fn has_room(&self) -> bool {
        let state = self.state.borrow();
        state.phase == Phase::Ready && state.streams.len() + state.reserved < state.max_concurrent
    }

    fn active(&self) -> usize {
        let state = self.state.borrow();
        state.streams.len() + state.reserved
    }

    /// Runs `call` on the writer; a trap fails the whole instance.
    fn with_writer<T>(
        &self,
        shared: &Shared,
        call: impl FnOnce(&mut ComponentWriter) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        let result = {
            let mut writer = self.writer.borrow_mut();
            match writer.as_mut() {
                Some(writer) => call(writer),
                None => return Err(WriteError::Host(anyhow::anyhow!("connection {} is closed", self.id))),
            }
        };
        if let Err(error @ WriteError::Host(_)) = &result {
            shared.instance_failed(error);
        }
        result
    }

    /// [`Conn::with_writer`], naming the call and stream in the error.
    fn call<T>(
        &self,
        shared: &Shared,
        call: &'static str,
        stream: u32,
        f: impl FnOnce(&mut ComponentWriter) -> Result<T, WriteError>,
    ) -> Result<T, ProxyError> {
        self.with_writer(shared, f).map_err(|error| ProxyError::Writer { call, stream, error })
    }

    fn lost(&self, message: impl Into<String>) -> ProxyError {
        ProxyError::ConnectionLost { connection: self.id, message: message.into() }
    }

    /// Opens a stream for the request (using the slot reserved for it).
    async fn open(
        &self,
        shared: &Shared,
        fields: &[HeaderField<'_>],
        hints: StreamHints,
        end_stream: bool,
    ) -> Result<u32, Opened> {
        let mut reserved = true;
        let result = loop {
            let pool_progress = shared.pool_progress.notified();
            tokio::pin!(pool_progress);
            pool_progress.as_mut().enable();
            if self.state.borrow().phase != Phase::Ready {
                break Err(Opened::Gone(self.lost("draining before the stream opened")));
            }
            let id = self.state.borrow().next_id;
            match self.with_writer(shared, |writer| writer.open_stream(id, fields, hints, end_stream)) {
                Ok(()) => {
                    let mut state = self.state.borrow_mut();
                    state.reserved -= 1;
                    reserved = false;
                    state.streams.insert(id, Entry::new(shared.stream_window, !end_stream));
                    state.next_id = id + 2;
                    if state.next_id > MAX_STREAM_ID {
                        state.phase = Phase::Draining { last_stream: MAX_STREAM_ID };
                    }
                    break Ok(id);
                }
                Err(WriteError::Rejected { kind, .. }) if pool_refusal(kind) => {
                    if self.pool_is_empty(shared) {
                        break Err(Opened::Failed(self.lost("the writer's pool refuses even when empty")));
                    }
                    pool_progress.await;
                }
                Err(error @ WriteError::Host(_)) => break Err(Opened::Gone(self.lost(error.to_string()))),
                Err(error) => break Err(Opened::Failed(ProxyError::Writer { call: "open_stream", stream: id, error })),
            }
        };
        if reserved {
            self.state.borrow_mut().reserved -= 1;
            shared.dispatch();
        }
        self.flush.notify_one();
        result
    }

    /// Whether the instance's pool holds nothing, so that waiting for it
    /// to give memory back would wait forever.
    fn pool_is_empty(&self, shared: &Shared) -> bool {
        let instance = shared.instance.borrow();
        let leased = instance.borrow_mut().pool_stats().map_or(0, |stats| stats.leased_bytes);
        leased == 0
    }

    /// Offers `data` to the stream's writer.
    fn send(&self, shared: &Shared, id: u32, data: &[u8]) -> Result<Sent, ProxyError> {
        if !self.state.borrow().streams.get(&id).is_some_and(|entry| entry.sending) {
            return Err(self.lost("stream no longer sending"));
        }
        match self.with_writer(shared, |writer| writer.send(id, data)) {
            Ok(taken) => {
                shared.sample_live(false);
                self.flush.notify_one();
                Ok(Sent::Taken(taken))
            }
            Err(WriteError::Rejected { kind: ErrorKind::WouldBlock, .. }) => {
                shared.sample_live(false);
                self.flush.notify_one();
                Ok(Sent::Connection)
            }
            Err(WriteError::Rejected { kind, .. }) if pool_refusal(kind) && !self.pool_is_empty(shared) => {
                shared.sample_live(false);
                self.flush.notify_one();
                Ok(Sent::Pool)
            }
            Err(error) => Err(ProxyError::Writer { call: "send", stream: id, error }),
        }
    }

    /// Resets stream `id` in the writer (RST_STREAM with `code`) if the
    /// writer still holds it, and marks it no longer sending.
    fn reset_writer(&self, shared: &Shared, id: u32, code: h2::Reason) {
        let sending =
            self.state.borrow_mut().streams.get_mut(&id).is_some_and(|entry| std::mem::take(&mut entry.sending));
        if sending {
            let _ = self.with_writer(shared, |writer| writer.reset(id, code.into()));
            self.flush.notify_one();
        }
    }

    /// Marks stream `id` no longer sending, after the writer forgot it.
    fn forget_writer(&self, id: u32) {
        if let Some(entry) = self.state.borrow_mut().streams.get_mut(&id) {
            entry.sending = false;
        }
        self.flush.notify_one();
    }

    /// Queues `event` for the client side of stream `id`.
    fn push(&self, id: u32, event: Event) {
        let mut state = self.state.borrow_mut();
        let Some(entry) = state.streams.get_mut(&id) else { return };
        if matches!(event, Event::End | Event::Failed(_)) {
            entry.received_all = true;
        }
        entry.events.push_back(event);
        if let Some(waker) = entry.waker.take() {
            waker.wake();
        }
    }

    /// Forgets stream `id`: credits back the DATA nobody will take, frees its slot.
    fn remove(&self, shared: &Shared, id: u32) {
        let Some(entry) = self.state.borrow_mut().streams.remove(&id) else { return };
        let untaken: usize =
            entry.events.iter().map(|event| if let Event::Data(data) = event { data.len() } else { 0 }).sum();
        self.credit_connection(shared, untaken);
        self.close_if_drained();
        shared.dispatch();
    }

    /// The client side took `n` bytes of stream `id`'s DATA: credit them back.
    fn credit(&self, shared: &Shared, id: u32, n: usize) {
        let update = {
            let mut state = self.state.borrow_mut();
            state.streams.get_mut(&id).and_then(|entry| {
                entry.unreleased += n as u32;
                let due = !entry.received_all && entry.unreleased >= shared.stream_window / 2;
                due.then(|| {
                    entry.recv_window += i64::from(entry.unreleased);
                    std::mem::take(&mut entry.unreleased)
                })
            })
        };
        if let Some(increment) = update.filter(|&increment| increment > 0) {
            let _ = self.with_writer(shared, |writer| writer.window_update(id, increment));
            self.flush.notify_one();
        }
        self.credit_connection(shared, n);
    }

    /// Credits `n` bytes back to the connection window when half of it is due.
    fn credit_connection(&self, shared: &Shared, n: usize) {
        let increment = {
            let mut state = self.state.borrow_mut();
            state.unreleased += n as u32;
            if state.unreleased < shared.connection_window / 2 {
                return;
            }
            state.recv_window += i64::from(state.unreleased);
            std::mem::take(&mut state.unreleased)
        };
        let _ = self.with_writer(shared, |writer| writer.window_update(0, increment));
        self.flush.notify_one();
    }

    /// A draining connection with no stream left closes (GOAWAY, then FIN).
    fn close_if_drained(&self) {
        let mut state = self.state.borrow_mut();
        if matches!(state.phase, Phase::Draining { .. }) && state.streams.is_empty() && state.reserved == 0 {
            state.phase = Phase::Closed;
            drop(state);
            if let Some(writer) = self.writer.borrow_mut().as_mut() {
                let _ = writer.goaway(0, 0, &[]);
            }
            self.flush.notify_one();
            self.closing.notify_one();
        }
    }

    /// Reads frames until the connection ends; returns why it ended.
    async fn read(&self, shared: &Shared, mut reader: FrameReader) -> String {
        let handshake = tokio::time::sleep(CONNECT_TIMEOUT);
        tokio::pin!(handshake);
        loop {
            let next = tokio::select! {
                next = reader.next() => next,
                () = self.closing.notified() => return "closed (drained, or a write failed)".into(),
                () = &mut handshake, if self.state.borrow().phase == Phase::Handshake => {
                    return "no SETTINGS from the upstream in time".into();
                }
            };
            let read = match next {
                None => return "the upstream closed the connection".into(),
                Some(Ok(read)) => read,
                Some(Err(ReadError::Io(message))) => return message,
                Some(Err(ReadError::Stream { stream, reason })) => {
                    self.stream_error(shared, stream, reason, "malformed frame");
                    continue;
                }
                Some(Err(ReadError::Connection { reason, detail })) => {
                    return self.connection_error(shared, reason, &detail);
                }
            };
            if let Err(message) = self.on_frame(shared, read.frame, read.flow_len) {
                return message;
            }
        }
    }

    /// Queues GOAWAY with `reason`; the connection then ends.
    fn connection_error(&self, shared: &Shared, reason: h2::Reason, detail: &str) -> String {
        let last_stream_id = 0;
        let _ = self.with_writer(shared, |writer| writer.goaway(last_stream_id, reason.into(), detail.as_bytes()));
        self.state.borrow_mut().phase = Phase::Closed;
        self.flush.notify_one();
        format!("protocol error ({reason:?}): {detail}")
    }

    /// Resets stream `id` with `reason` and tells its client side.
    fn stream_error(&self, shared: &Shared, id: u32, reason: h2::Reason, what: &str) {
        if !self.state.borrow().streams.contains_key(&id) {
            return;
        }
        // The writer may have ended its side already; RST_STREAM is still due.
        if let Some(entry) = self.state.borrow_mut().streams.get_mut(&id) {
            entry.sending = true;
        }
        self.reset_writer(shared, id, reason);
        self.push(id, Event::Failed(ProxyError::Protocol { stream: id, message: format!("{what} ({reason:?})") }));
    }

    /// Feeds one frame to the writer or to its stream; `Err` ends the connection.
    fn on_frame(&self, shared: &Shared, frame: H2Frame, flow_len: usize) -> Result<(), String> {
        match frame {
            H2Frame::Settings(settings) if settings.is_ack() => {}
            H2Frame::Settings(settings) => {
                let values = settings_list(&settings);
                if let Err(error) = self.with_writer(shared, |writer| writer.apply_peer_settings(&values)) {
                    let reason = match error {
                        WriteError::Rejected { kind: ErrorKind::WindowOverflow, .. } => h2::Reason::FLOW_CONTROL_ERROR,
                        _ => h2::Reason::PROTOCOL_ERROR,
                    };
                    return Err(self.connection_error(shared, reason, &format!("SETTINGS refused: {error}")));
                }
                let _ = self.with_writer(shared, |writer| writer.ack_settings());
                let mut state = self.state.borrow_mut();
                if let Some(max) = settings.max_concurrent_streams() {
                    state.max_concurrent = max as usize;
                }
                if state.phase == Phase::Handshake {
                    state.phase = Phase::Ready;
                }
                drop(state);
                self.flush.notify_one();
                shared.dispatch();
            }
            H2Frame::WindowUpdate(update) => {
                let stream = u32::from(update.stream_id());
                let increment = update.size_increment();
                match self.with_writer(shared, |writer| writer.apply_window_update(stream, increment)) {
                    Ok(()) => self.flush.notify_one(),
                    Err(error) if stream == 0 => {
                        return Err(self.connection_error(shared, h2::Reason::FLOW_CONTROL_ERROR, &error.to_string()));
                    }
                    Err(_) => self.stream_error(shared, stream, h2::Reason::FLOW_CONTROL_ERROR, "bad WINDOW_UPDATE"),
                }
            }
            H2Frame::Ping(ping) if ping.is_ack() => {}
            H2Frame::Ping(ping) => {
                let opaque_data = *ping.payload();
                let _ = self.with_writer(shared, |writer| writer.ping(opaque_data, true));
                self.flush.notify_one();
            }
            H2Frame::GoAway(goaway) => self.on_goaway(shared, u32::from(goaway.last_stream_id())),
            H2Frame::Reset(reset) => self.on_reset(shared, u32::from(reset.stream_id()), reset.reason()),
            H2Frame::Headers(headers) => self.on_headers(shared, headers),
            H2Frame::Data(data) => return self.on_data(shared, data, flow_len),
            H2Frame::PushPromise(_) => {
                return Err(self.connection_error(
                    shared,
                    h2::Reason::PROTOCOL_ERROR,
                    "PUSH_PROMISE with push disabled",
                ));
            }
            H2Frame::Priority(_) => {}
        }
        Ok(())
    }

    fn on_goaway(&self, shared: &Shared, last_stream: u32) {
        let refused: Vec<u32> = {
            let mut state = self.state.borrow_mut();
            let last = match state.phase {
                Phase::Draining { last_stream: before } => before.min(last_stream),
                _ => last_stream,
            };
            if state.phase != Phase::Closed {
                state.phase = Phase::Draining { last_stream: last };
            }
            state.streams.keys().copied().filter(|&id| id > last).collect()
        };
        // The writer forgets the streams the upstream will not process.
        let _ = self.with_writer(shared, |writer| writer.apply_peer_goaway(last_stream));
        for id in refused {
            self.forget_writer(id);
            let reason = h2::Error::from(h2::Reason::REFUSED_STREAM);
            self.push(id, Event::Failed(ProxyError::Refused { stream: id, last_stream, reason }));
        }
        self.close_if_drained();
        if !shared.waiting.borrow().is_empty() {
            // A replacement is opened by the next `acquire`; wake the line now.
            shared.dispatch();
        }
    }

    fn on_reset(&self, shared: &Shared, id: u32, reason: h2::Reason) {
        let complete = self.state.borrow().streams.get(&id).map(|entry| entry.received_all);
        let Some(complete) = complete else { return };
        // The upstream is done with the stream: the writer forgets it too,
        // writing nothing back (RFC 9113 §5.4.2).
        let _ = self.with_writer(shared, |writer| writer.apply_peer_reset(id));
        self.forget_writer(id);
        if !complete {
            let error = if reason == h2::Reason::REFUSED_STREAM {
                ProxyError::Refused { stream: id, last_stream: 0, reason: reason.into() }
            } else {
                ProxyError::Reset { stream: id, reason: reason.into() }
            };
            self.push(id, Event::Failed(error));
        }
    }

    fn on_headers(&self, shared: &Shared, headers: h2::frame::Headers) {
        let id = u32::from(headers.stream_id());
        let end_stream = headers.is_end_stream();
        // The writer keeps the upstream's side of the stream too.
        let _ = self.with_writer(shared, |writer| writer.apply_peer_headers(id, end_stream));
        let Some(has_head) = self.state.borrow().streams.get(&id).map(|entry| entry.head) else { return };
        let (pseudo, fields) = headers.into_parts();
        if has_head {
            if !end_stream {
                return self.stream_error(shared, id, h2::Reason::PROTOCOL_ERROR, "trailers without END_STREAM");
            }
            self.push(id, Event::Trailers(Box::new(fields)));
            return self.push(id, Event::End);
        }
        let Some(status) = pseudo.status else {
            return self.stream_error(shared, id, h2::Reason::PROTOCOL_ERROR, "response without :status");
        };
        if status.is_informational() {
            return; // 1xx: the final head follows
        }
        if let Some(entry) = self.state.borrow_mut().streams.get_mut(&id) {
            entry.head = true;
        }
        self.push(id, Event::Head(Box::new((status, fields))));
        if end_stream {
            self.push(id, Event::End);
        }
    }

    fn on_data(&self, shared: &Shared, data: h2::frame::Data, flow_len: usize) -> Result<(), String> {
        let id = u32::from(data.stream_id());
        let end_stream = data.is_end_stream();
        // What the upstream sent comes off the receive windows the writer
        // tracks (its WINDOW_UPDATEs are held to them); END_STREAM ends its side.
        let _ = self.with_writer(shared, |writer| {
            writer.apply_peer_data(id, flow_len as u32)?;
            if end_stream { writer.apply_peer_end_stream(id) } else { Ok(()) }
        });
        let payload = data.into_payload();
        let verdict = {
            let mut state = self.state.borrow_mut();
            state.recv_window -= flow_len as i64;
            let window_exceeded = state.recv_window < 0;
            match state.streams.get_mut(&id) {
                _ if window_exceeded => DataVerdict::ConnectionWindow,
                None => DataVerdict::Stale,
                Some(entry) => {
                    entry.recv_window -= flow_len as i64;
                    if entry.received_all {
                        DataVerdict::Stale
                    } else if entry.recv_window < 0 {
                        DataVerdict::StreamWindow
                    } else if !entry.head {
                        DataVerdict::BeforeHead
                    } else {
                        DataVerdict::Take
                    }
                }
            }
        };
        // Padding, and DATA nobody takes, only come back to the windows.
        let padding = flow_len - payload.len();
        match verdict {
            DataVerdict::ConnectionWindow => {
                return Err(self.connection_error(
                    shared,
                    h2::Reason::FLOW_CONTROL_ERROR,
                    "connection window exceeded",
                ));
            }
            DataVerdict::Stale => self.credit_connection(shared, flow_len),
            DataVerdict::StreamWindow => {
                self.credit_connection(shared, flow_len);
                self.stream_error(shared, id, h2::Reason::FLOW_CONTROL_ERROR, "stream window exceeded");
            }
            DataVerdict::BeforeHead => {
                self.credit_connection(shared, flow_len);
                self.stream_error(shared, id, h2::Reason::PROTOCOL_ERROR, "DATA before the response head");
            }
            DataVerdict::Take => {
                if padding > 0 {
                    self.credit(shared, id, padding);
                }
                if !payload.is_empty() {
                    self.push(id, Event::Data(payload));
                }
                if end_stream {
                    self.push(id, Event::End);
                }
            }
        }
        Ok(())
    }

    /// Ends the connection: every stream still on it fails with `message`,
    /// and the guest connection is dropped.
    fn fail(&self, shared: &Shared, message: &str) {
        let ids: Vec<u32> = {
            let mut state = self.state.borrow_mut();
            state.phase = Phase::Closed;
            state.streams.iter().filter(|(_, entry)| !entry.received_all).map(|(&id, _)| id).collect()
        };
        for id in ids {
            if let Some(entry) = self.state.borrow_mut().streams.get_mut(&id) {
                entry.sending = false;
            }
            self.push(id, Event::Failed(self.lost(message)));
        }
        for entry in self.state.borrow_mut().streams.values_mut() {
            entry.sending = false;
        }
        drop(self.writer.borrow_mut().take());
        self.progress.notify_waiters();
        self.flush.notify_one();
        self.closing.notify_one();
        shared.conns.borrow_mut().retain(|conn| conn.id != self.id);
        shared.pool_progress.notify_waiters();
        shared.dispatch();
    }
}

/// What to do with a DATA frame.
enum DataVerdict {
    /// Within the windows, after the head: for the client side.
    Take,
    /// For a stream we no longer track, or whose response is over.
    Stale,
    /// Past the stream's window: reset the stream.
    StreamWindow,
    /// Before the response head: reset the stream.
    BeforeHead,
    /// Past the connection's window: end the connection.
    ConnectionWindow,
}

/// Whether `kind` is the pool refusing memory (wait for any writer to drain).
fn pool_refusal(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::Budget | ErrorKind::Share | ErrorKind::OutOfMemory)
}

/// The upstream's SETTINGS as (identifier, value) pairs for the writer.
fn settings_list(settings: &h2::frame::Settings) -> Vec<(u16, u32)> {
    let values = [
        (setting::HEADER_TABLE_SIZE, settings.header_table_size()),
        (setting::ENABLE_PUSH, settings.is_push_enabled().map(u32::from)),
        (setting::MAX_CONCURRENT_STREAMS, settings.max_concurrent_streams()),
        (setting::INITIAL_WINDOW_SIZE, settings.initial_window_size()),
        (setting::MAX_FRAME_SIZE, settings.max_frame_size()),
        (setting::MAX_HEADER_LIST_SIZE, settings.max_header_list_size()),
        (setting::ENABLE_CONNECT_PROTOCOL, settings.is_extended_connect_protocol_enabled().map(u32::from)),
    ];
    values.into_iter().filter_map(|(id, value)| Some((id, value?))).collect()
}

impl Entry {
    fn new(window: u32, sending: bool) -> Self {
        Entry {
            events: VecDeque::new(),
            waker: None,
            recv_window: i64::from(window),
            unreleased: 0,
            sending,
            head: false,
            received_all: false,
            responded: false,
        }
    }
}

/// The request side of a stream stopped early.
struct Stopped;

/// One side of one upstream stream: the client side's (response) or the
/// pump's (request). Dropped before its side is done, it resets the stream.
struct StreamRef {
    shared: Rc<Shared>,
    conn: Rc<Conn>,
    id: u32,
    side: Side,
    done: bool,
}

/// Which side of a stream a [`StreamRef`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The request: the pump, sending the client's body.
    Request,
    /// The response: the client side, taking what the upstream sent.
    Response,
}

impl StreamRef {
    fn new(shared: &Rc<Shared>, conn: Rc<Conn>, id: u32, side: Side) -> Self {
        StreamRef { shared: shared.clone(), conn, id, side, done: false }
    }

    /// The next event of the stream's response side.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        let mut state = self.conn.state.borrow_mut();
        let Some(entry) = state.streams.get_mut(&self.id) else {
            return Poll::Ready(Event::Failed(self.conn.lost("stream gone")));
        };
        match entry.events.pop_front() {
            Some(event) => Poll::Ready(event),
            None => {
                entry.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Waits for the final response head.
    async fn head(&mut self) -> Result<(StatusCode, HeaderMap), ProxyError> {
        let event = std::future::poll_fn(|cx| self.poll_event(cx)).await;
        match event {
            Event::Head(head) => Ok(*head),
            Event::Failed(error) => {
                self.response_done();
                Err(error)
            }
            Event::Data(_) | Event::Trailers(_) | Event::End => {
                self.response_done();
                Err(ProxyError::Protocol { stream: self.id, message: "a body before the response head".into() })
            }
        }
    }

    /// The response side is over: forget the stream once the request side is too.
    fn response_done(&mut self) {
        self.side_done(|entry| {
            entry.responded = true;
            !entry.sending
        });
    }

    /// This side is over: `mark` records it on the stream and says whether
    /// the other side is over too, and then the stream is forgotten.
    fn side_done(&mut self, mark: impl FnOnce(&mut Entry) -> bool) {
        self.done = true;
        let mut state = self.conn.state.borrow_mut();
        let Some(entry) = state.streams.get_mut(&self.id) else { return };
        let forget = mark(entry);
        drop(state);
        if forget {
            self.conn.remove(&self.shared, self.id);
        }
    }

    /// Hands all of `data` to the writer, waiting while it refuses more;
    /// `Err` when the stream cannot take more (its client side is told).
    async fn send_all(&mut self, mut data: Bytes) -> Result<(), Stopped> {
        while !data.is_empty() {
            let conn_progress = self.conn.progress.notified();
            let pool_progress = self.shared.pool_progress.notified();
            tokio::pin!(conn_progress, pool_progress);
            conn_progress.as_mut().enable();
            pool_progress.as_mut().enable();
            let piece = &data[..data.len().min(MAX_SEND)];
            match self.conn.send(&self.shared, self.id, piece) {
                Ok(Sent::Taken(n)) => data.advance(n),
                Ok(Sent::Connection) => conn_progress.await,
                Ok(Sent::Pool) => pool_progress.await,
                Err(error) => {
                    if self.conn.state.borrow().streams.get(&self.id).is_some_and(|entry| entry.sending) {
                        // The writer refused the bytes themselves: the
                        // stream cannot go on.
                        self.conn.reset_writer(&self.shared, self.id, h2::Reason::INTERNAL_ERROR);
                        self.conn.push(self.id, Event::Failed(error));
                    }
                    return Err(Stopped);
                }
            }
        }
        Ok(())
    }

    /// Ends the request side: trailers, or END_STREAM.
    async fn finish(&mut self, trailers: Option<&HeaderMap>) {
        let fields = trailers.map(|map| header_fields(map, |_| false));
        loop {
            let pool_progress = self.shared.pool_progress.notified();
            tokio::pin!(pool_progress);
            pool_progress.as_mut().enable();
            if !self.conn.state.borrow().streams.get(&self.id).is_some_and(|entry| entry.sending) {
                break;
            }
            let id = self.id;
            let finished = self.conn.with_writer(&self.shared, |writer| writer.finish(id, fields.as_deref()));
            match finished {
                Ok(()) => break,
                Err(WriteError::Rejected { kind, .. })
                    if pool_refusal(kind) && !self.conn.pool_is_empty(&self.shared) =>
                {
                    pool_progress.await;
                }
                Err(error) => {
                    self.conn.reset_writer(&self.shared, id, h2::Reason::INTERNAL_ERROR);
                    self.conn.push(id, Event::Failed(ProxyError::Writer { call: "finish", stream: id, error }));
                    break;
                }
            }
        }
        self.conn.flush.notify_one();
        self.done_sending();
    }

    /// The request side is over (finished, or its stream gone).
    fn done_sending(&mut self) {
        self.side_done(|entry| {
            entry.sending = false;
            entry.responded
        });
    }

    /// The client abandoned the stream (`error` says how): if it is still
    /// open either way, reset it upstream (CANCEL) and tell the other side;
    /// then this side is over.
    fn cancel(&mut self, error: ProxyError) {
        let open = {
            let mut state = self.conn.state.borrow_mut();
            state.streams.get_mut(&self.id).and_then(|entry| {
                let open = entry.sending || !entry.received_all;
                // RST_STREAM is due even when the writer ended its side.
                entry.sending |= open;
                open.then_some(entry.received_all)
            })
        };
        if let Some(received_all) = open {
            self.conn.reset_writer(&self.shared, self.id, h2::Reason::CANCEL);
            if !received_all {
                self.conn.push(self.id, Event::Failed(error));
            }
        }
        match self.side {
            Side::Request => self.done_sending(),
            Side::Response => self.response_done(),
        }
    }
}

impl Drop for StreamRef {
    /// A side dropped before it was over (the client went away, or the
    /// proxy is stopping) cancels the stream.
    fn drop(&mut self) {
        if !self.done {
            self.cancel(ProxyError::Shutdown);
        }
    }
}

/// A response body streamed from an upstream stream.
pub struct UpstreamBody {
    stream: StreamRef,
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = ProxyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, ProxyError>>> {
        let stream = &mut self.stream;
        if stream.done {
            return Poll::Ready(None);
        }
        let event = std::task::ready!(stream.poll_event(cx));
        Poll::Ready(match event {
            Event::Data(data) => {
                stream.conn.credit(&stream.shared, stream.id, data.len());
                Some(Ok(BodyFrame::data(data)))
            }
            Event::Trailers(trailers) => Some(Ok(BodyFrame::trailers(*trailers))),
            Event::End => {
                stream.response_done();
                None
            }
            Event::Failed(error) => {
                stream.response_done();
                Some(Err(error))
            }
            Event::Head(_) => {
                stream.response_done();
                Some(Err(ProxyError::Protocol { stream: stream.id, message: "a second response head".into() }))
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        self.stream.done
    }
}

/// A request's header fields as the writer takes them, owned.
struct RequestFields {
    fields: Vec<(Vec<u8>, Vec<u8>, bool)>,
}

impl RequestFields {
    /// The pseudo-header fields, then every field but the connection-specific
    /// ones (RFC 9113 §8.2.2) and `host` (carried as `:authority`).
    fn new(parts: &Parts) -> Self {
        let uri = &parts.uri;
        let authority = uri
            .authority()
            .map(|authority| authority.as_str().as_bytes().to_vec())
            .or_else(|| parts.headers.get(header::HOST).map(|host| host.as_bytes().to_vec()))
            .unwrap_or_default();
        let path = uri.path_and_query().map_or("/", |path| path.as_str());
        let mut fields = vec![
            (b":method".to_vec(), parts.method.as_str().as_bytes().to_vec(), false),
            (b":scheme".to_vec(), uri.scheme_str().unwrap_or("http").as_bytes().to_vec(), false),
            (b":authority".to_vec(), authority, false),
            (b":path".to_vec(), path.as_bytes().to_vec(), false),
        ];
        let skip = |name: &header::HeaderName| name == header::HOST;
        fields.extend(
            header_fields(&parts.headers, skip)
                .into_iter()
                .map(|field| (field.name.to_vec(), field.value.to_vec(), field.sensitive)),
        );
        RequestFields { fields }
    }

    fn borrowed(&self) -> Vec<HeaderField<'_>> {
        self.fields.iter().map(|(name, value, sensitive)| HeaderField { name, value, sensitive: *sensitive }).collect()
    }
}

/// `map`'s fields as the writer takes them, without connection-specific
/// ones (RFC 9113 §8.2.2: `te` only as `trailers`) nor those `skip` names.
fn header_fields<'a>(map: &'a HeaderMap, skip: impl Fn(&header::HeaderName) -> bool) -> Vec<HeaderField<'a>> {
    map.iter()
        .filter(|(name, value)| {
            let connection_specific = [
                header::CONNECTION,
                header::TRANSFER_ENCODING,
                header::UPGRADE,
                header::HeaderName::from_static("keep-alive"),
                header::HeaderName::from_static("proxy-connection"),
            ]
            .contains(name);
            let te = *name == header::TE && value.as_bytes() != b"trailers";
            !connection_specific && !te && !skip(name)
        })
        .map(|(name, value)| HeaderField {
            name: name.as_str().as_bytes(),
            value: value.as_bytes(),
            sensitive: value.is_sensitive(),
        })
        .collect()
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}
