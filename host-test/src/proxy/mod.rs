//! `h2fw proxy`: an HTTP/2 reverse proxy whose upstream write path is the
//! h2fw component.
//!
//! Clients speak cleartext HTTP/2 (prior knowledge) to hyper's server
//! ([`listen`]). Every request goes over a pool of upstream HTTP/2
//! connections ([`upstream`]) whose every frame is written by h2fw
//! connections living in one component instance, and whose incoming frames
//! the `h2` crate's codec decodes ([`read`]). [`hyper_upstream`] is the same
//! proxy with hyper's HTTP/2 client upstream instead, for `h2fw proxy-bench`.
//!
//! Threading: the component's store is `!Send`, so a proxy runs on one
//! thread of its own: a current-thread tokio runtime with a `LocalSet` that
//! owns the instance, every client connection, every upstream connection
//! and every stream. Each writer call is synchronous and short (about a
//! microsecond), so the task holding the bytes calls the writer itself: no
//! channel sits between a client's stream and the writer, so no body byte
//! waits anywhere but in the writer, and the writer's backpressure is a
//! return value the task acts on. One proxy uses one core; a host that
//! wants more runs one proxy (one instance) per core.

pub mod bench;
pub mod cli;
pub mod client;
pub mod echo;
pub mod heap;
pub mod hyper_upstream;
mod listen;
pub mod nghttp2;
mod read;
pub mod upstream;

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2fw::conn::Config;
use h2fw::pool::{PoolConfig, PoolStats};
use http::{Request, Response};
use http_body::Body;
use tokio::sync::{mpsc, oneshot};

use crate::writer::{MemoryStats, WriteError};

/// A client's request body, as the upstream side gets it (polled outside
/// the upstream's heap scope: its bytes are the client side's).
pub type ClientBody = heap::Tagged<hyper::body::Incoming>;

/// Why a request could not be carried, as the client is told: errors with
/// an HTTP/2 reason ([`ProxyError::reset_reason`]) reset the client's
/// stream with it; the others answer 502 before the response head, or
/// reset with INTERNAL_ERROR after it.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No connection to the upstream could be made.
    #[error("cannot connect to upstream {address}: {message}")]
    Connect {
        /// The upstream's address.
        address: SocketAddr,
        /// What the connect failed with.
        message: String,
    },
    /// The upstream connection carrying the stream closed or failed.
    #[error("upstream connection {connection} lost: {message}")]
    ConnectionLost {
        /// The proxy's number for the connection.
        connection: u64,
        /// Why it ended.
        message: String,
    },
    /// The upstream reset the stream (RST_STREAM).
    #[error("upstream reset stream {stream}")]
    Reset {
        /// The upstream stream id.
        stream: u32,
        /// The upstream's error code.
        #[source]
        reason: h2::Error,
    },
    /// The upstream will not process the stream: it was above a GOAWAY's
    /// last stream id, or reset with REFUSED_STREAM. Safe to retry.
    #[error("upstream refused stream {stream} (GOAWAY last stream {last_stream})")]
    Refused {
        /// The upstream stream id.
        stream: u32,
        /// The GOAWAY's last stream id.
        last_stream: u32,
        /// REFUSED_STREAM.
        #[source]
        reason: h2::Error,
    },
    /// The upstream broke the protocol on this stream.
    #[error("upstream stream {stream}: {message}")]
    Protocol {
        /// The upstream stream id.
        stream: u32,
        /// What was wrong.
        message: String,
    },
    /// The writer refused a call for a reason other than backpressure.
    #[error("the h2fw writer refused {call} on stream {stream}")]
    Writer {
        /// The writer call.
        call: &'static str,
        /// The upstream stream id (0: the connection).
        stream: u32,
        /// The writer's typed error.
        #[source]
        error: WriteError,
    },
    /// The client's request body failed (the client reset its stream).
    #[error("client request body failed")]
    ClientBody(#[source] hyper::Error),
    /// hyper's client (the baseline upstream) failed.
    #[error("hyper upstream failed")]
    Hyper(#[source] hyper::Error),
    /// The proxy is shutting down, or its thread is gone.
    #[error("the proxy is shutting down")]
    Shutdown,
    /// The proxy could not start.
    #[error("cannot start the proxy: {0}")]
    Start(String),
}

impl ProxyError {
    /// The HTTP/2 error code the client's stream is reset with, if this
    /// error carries one (an upstream reset, passed on as it came).
    pub fn reset_reason(&self) -> Option<h2::Reason> {
        match self {
            ProxyError::Reset { reason, .. } | ProxyError::Refused { reason, .. } => reason.reason(),
            _ => None,
        }
    }
}

/// Which upstream side a proxy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UpstreamKind {
    /// Frames written by h2fw connections in one component instance.
    Component,
    /// hyper's HTTP/2 client (the `h2` crate), what a Rust user would pick.
    Hyper,
}

impl UpstreamKind {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            UpstreamKind::Component => "component",
            UpstreamKind::Hyper => "hyper",
        }
    }
}

/// How to run a proxy.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where clients connect (port 0: any free port).
    pub listen: SocketAddr,
    /// The backend.
    pub upstream: SocketAddr,
    /// Upstream connections in the pool.
    pub connections: usize,
    /// Which upstream side.
    pub kind: UpstreamKind,
    /// Limits of each h2fw connection.
    pub writer: Config,
    /// Limits of the instance's pool.
    pub pool: PoolConfig,
    /// SETTINGS_INITIAL_WINDOW_SIZE the proxy gives the upstream (response bodies).
    pub stream_window: u32,
    /// Connection receive window the proxy gives the upstream.
    pub connection_window: u32,
    /// SETTINGS_MAX_CONCURRENT_STREAMS the proxy allows each client.
    pub client_streams: u32,
}

impl ProxyConfig {
    /// A component proxy from `listen` to `upstream` with the defaults:
    /// 4 connections, the writer's and pool's default limits, and hyper's
    /// client windows (2 MiB per stream, 5 MiB per connection) so that the
    /// two upstream sides read alike.
    pub fn new(listen: SocketAddr, upstream: SocketAddr) -> Self {
        ProxyConfig {
            listen,
            upstream,
            connections: 4,
            kind: UpstreamKind::Component,
            writer: Config::default(),
            pool: PoolConfig::default(),
            stream_window: 2 << 20,
            connection_window: 5 << 20,
            client_streams: 1 << 20,
        }
    }
}

/// What an upstream side reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamStats {
    /// Upstream connections open (ready, opening or draining).
    pub connections: usize,
    /// Of which draining after a GOAWAY.
    pub draining: usize,
    /// Upstream connections opened so far.
    pub opened: u64,
    /// Streams open on upstream connections.
    pub streams: usize,
    /// The component's side, when it runs one.
    pub writer: Option<WriterStats>,
}

/// The component instance behind a component upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Linear memory of the instance.
    pub linear_memory: MemoryStats,
    /// The instance's pool: leased and idle bytes across its connections.
    pub pool: PoolStats,
    /// Bytes waiting in the writers now (pending DATA, queued frames).
    pub live_bytes: usize,
    /// Largest sum of live bytes over the connections seen (sampled after
    /// body bytes go in or are refused, at most once a millisecond, and at
    /// every statistics call).
    pub peak_live_bytes: usize,
}

/// The statistics line of a proxy.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyStats {
    /// Which upstream side.
    pub kind: UpstreamKind,
    /// Client connections open.
    pub clients: usize,
    /// Requests received so far.
    pub requests: u64,
    /// Requests in flight (from arrival to the end of their response).
    pub in_flight: usize,
    /// Requests per second since the previous statistics call.
    pub requests_per_second: f64,
    /// Heap bytes the upstream side holds, when the allocator counts them.
    pub upstream_heap: Option<usize>,
    /// The upstream side's own figures.
    pub upstream: UpstreamStats,
}

impl fmt::Display for ProxyStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.upstream;
        write!(
            f,
            "h2fw proxy ({}): upstream connections {} ({} draining, {} opened), open streams {}, clients {}, \
             requests {} ({:.0}/s), in flight {}",
            self.kind.name(),
            u.connections,
            u.draining,
            u.opened,
            u.streams,
            self.clients,
            self.requests,
            self.requests_per_second,
            self.in_flight,
        )?;
        if let Some(w) = &u.writer {
            write!(
                f,
                ", linear memory {} (peak {}), pool live {} idle {}, writer live {} (peak {})",
                mib(w.linear_memory.current),
                mib(w.linear_memory.peak),
                mib(w.pool.leased_bytes),
                mib(w.pool.idle_bytes),
                mib(w.live_bytes),
                mib(w.peak_live_bytes),
            )?;
        }
        if let Some(heap) = self.upstream_heap {
            write!(f, ", upstream heap {}", mib(heap))?;
        }
        Ok(())
    }
}

/// `bytes` in MiB, one decimal.
pub(crate) fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// An upstream side: forwards one request, reports its figures. Runs on
/// the proxy's thread (nothing here is `Send`).
pub trait Upstream: 'static {
    /// The response body it hands the client side.
    type Body: Body<Data = Bytes, Error = ProxyError> + 'static;

    /// Carries `request` to the backend and returns its response head,
    /// with a body that streams the rest.
    fn forward(&self, request: Request<ClientBody>) -> impl Future<Output = Result<Response<Self::Body>, ProxyError>>;

    /// Current figures.
    fn stats(&self) -> UpstreamStats;
}

/// The listen side's counters.
#[derive(Debug, Default)]
struct Counters {
    clients: Cell<usize>,
    requests: Cell<u64>,
    in_flight: Cell<usize>,
}

/// What the proxy's thread is asked.
enum Command {
    Stats(oneshot::Sender<ProxyStats>),
}

/// A running proxy on a thread of its own; dropping it stops the proxy.
pub struct Proxy {
    address: SocketAddr,
    commands: Option<mpsc::UnboundedSender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Binds `config.listen` and starts serving on a new thread.
    pub fn start(config: ProxyConfig) -> Result<Proxy, ProxyError> {
        let listener = std::net::TcpListener::bind(config.listen)
            .map_err(|error| ProxyError::Start(format!("cannot listen on {}: {error}", config.listen)))?;
        let address = listener.local_addr().map_err(|error| ProxyError::Start(error.to_string()))?;
        listener.set_nonblocking(true).map_err(|error| ProxyError::Start(error.to_string()))?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let (started, start_result) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("h2fw-proxy-{}", config.kind.name()))
            .spawn(move || run(config, listener, receiver, started))
            .map_err(|error| ProxyError::Start(error.to_string()))?;
        let proxy = Proxy { address, commands: Some(commands), thread: Some(thread) };
        start_result.recv().map_err(|_| ProxyError::Shutdown)??;
        Ok(proxy)
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The statistics line's figures now.
    pub async fn stats(&self) -> Result<ProxyStats, ProxyError> {
        let (reply, answer) = oneshot::channel();
        let commands = self.commands.as_ref().ok_or(ProxyError::Shutdown)?;
        commands.send(Command::Stats(reply)).map_err(|_| ProxyError::Shutdown)?;
        answer.await.map_err(|_| ProxyError::Shutdown)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Closing the channel ends the proxy's runtime, which drops every task.
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    config: ProxyConfig,
    listener: std::net::TcpListener,
    commands: mpsc::UnboundedReceiver<Command>,
    started: std::sync::mpsc::Sender<Result<(), ProxyError>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = started.send(Err(ProxyError::Start(error.to_string())));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => {
                let _ = started.send(Err(ProxyError::Start(error.to_string())));
                return;
            }
        };
        match config.kind {
            UpstreamKind::Component => match upstream::ComponentUpstream::new(&config) {
                Ok(upstream) => serve(config, listener, Rc::new(upstream), commands, started).await,
                Err(error) => {
                    let _ = started.send(Err(error));
                }
            },
            UpstreamKind::Hyper => {
                let upstream = Rc::new(hyper_upstream::HyperUpstream::new(&config));
                serve(config, listener, upstream, commands, started).await
            }
        }
    });
}

/// Serves clients until the command channel closes.
async fn serve<U: Upstream>(
    config: ProxyConfig,
    listener: tokio::net::TcpListener,
    upstream: Rc<U>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    started: std::sync::mpsc::Sender<Result<(), ProxyError>>,
) {
    let counters = Rc::new(Counters::default());
    let accept = tokio::task::spawn_local(listen::accept(listener, upstream.clone(), counters.clone(), config.clone()));
    let _ = started.send(Ok(()));
    let mut last = (Instant::now(), 0u64);
    while let Some(command) = commands.recv().await {
        match command {
            Command::Stats(reply) => {
                let now = Instant::now();
                let requests = counters.requests.get();
                let elapsed = now.duration_since(last.0).max(Duration::from_micros(1)).as_secs_f64();
                let requests_per_second = (requests - last.1) as f64 / elapsed;
                last = (now, requests);
                let _ = reply.send(ProxyStats {
                    kind: config.kind,
                    clients: counters.clients.get(),
                    requests,
                    in_flight: counters.in_flight.get(),
                    requests_per_second,
                    upstream_heap: heap::upstream_bytes(),
                    upstream: upstream.stats(),
                });
            }
        }
    }
    accept.abort();
}
