//! An HTTP/2 echo backend (hyper's server) for the proxy's tests and
//! benchmark: every response streams the request's body and trailers back
//! as they arrive, so long-lived bidirectional streams and uploads alike
//! come back intact. A few paths misbehave on purpose:
//!
//! - `/reset-before-head/CODE`: RST_STREAM with CODE instead of a response;
//! - `/reset-after-data/CODE`: the head and the first DATA echoed, then
//!   RST_STREAM with CODE when more of the request arrives;
//! - `/goaway`: echoes, and starts a graceful shutdown of its connection (GOAWAY).
//!
//! It notes how each request body ended, for tests to check what the
//! backend saw.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::{Notify, oneshot};

/// How a request body ended, as the backend saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It ended normally after `bytes` bytes.
    Complete {
        /// Body bytes received.
        bytes: u64,
    },
    /// The client side reset it (or its connection went away).
    Reset {
        /// The RST_STREAM code, when there was one.
        code: Option<u32>,
    },
    /// The backend reset it on purpose (a `/reset-...` path).
    ResetByBackend,
}

/// One request the backend saw end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its path.
    pub path: String,
    /// How its body ended.
    pub outcome: Outcome,
}

/// What the backend saw, shared with whoever started it.
pub type Log = Arc<Mutex<Vec<Seen>>>;

/// Where outcomes go: a [`Log`], or nowhere (a long-running backend).
type Notes = Option<Log>;

/// An echo backend on a thread of its own; dropping it stops it at once
/// (every connection closes without a GOAWAY, as if killed).
pub struct EchoServer {
    address: SocketAddr,
    log: Log,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Listens on `listen` (port 0: any free port) and serves.
    pub fn start(listen: SocketAddr) -> std::io::Result<EchoServer> {
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let log = Log::default();
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let served = log.clone();
        let thread = std::thread::Builder::new().name("h2fw-echo".into()).spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                tokio::select! {
                    () = serve(listener, Some(served)) => {}
                    _ = stopped => {}
                }
            });
        })?;
        Ok(EchoServer { address, log, stop: Some(stop), thread: Some(thread) })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every request body that ended so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves echo connections on `listener` until dropped, noting outcomes in `log` if given.
pub async fn serve(listener: tokio::net::TcpListener, log: Option<Log>) {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder.max_concurrent_streams(1 << 20);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let _ = tcp.set_nodelay(true);
        let goaway = Arc::new(Notify::new());
        let (log, trigger) = (log.clone(), goaway.clone());
        let service = service_fn(move |request| {
            let (log, trigger) = (log.clone(), trigger.clone());
            async move { respond(request, log, &trigger) }
        });
        let connection = builder.serve_connection(TokioIo::new(tcp), service);
        connections.spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                () = goaway.notified() => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
}

fn respond(request: Request<Incoming>, log: Notes, goaway: &Notify) -> Result<Response<EchoBody>, h2::Error> {
    let path = request.uri().path().to_string();
    let code = |prefix: &str| path.strip_prefix(prefix).and_then(|code| code.parse::<u32>().ok());
    if let Some(code) = code("/reset-before-head/") {
        note(&log, &path, Outcome::ResetByBackend);
        return Err(h2::Reason::from(code).into());
    }
    if path == "/goaway" {
        goaway.notify_one();
    }
    let reset_after_data = code("/reset-after-data/").map(h2::Reason::from);
    let content_type = request.headers().get(http::header::CONTENT_TYPE).cloned();
    let body = EchoBody {
        incoming: request.into_body(),
        reset_after_data,
        data_sent: false,
        bytes: 0,
        log,
        path,
        done: false,
    };
    let mut response = Response::new(body);
    if let Some(content_type) = content_type {
        response.headers_mut().insert(http::header::CONTENT_TYPE, content_type);
    }
    Ok(response)
}

fn note(log: &Notes, path: &str, outcome: Outcome) {
    if let Some(Ok(mut log)) = log.as_ref().map(|log| log.lock()) {
        log.push(Seen { path: path.to_string(), outcome });
    }
}

/// The request's body, streamed back frame by frame.
pub struct EchoBody {
    incoming: Incoming,
    reset_after_data: Option<h2::Reason>,
    data_sent: bool,
    bytes: u64,
    log: Notes,
    path: String,
    done: bool,
}

impl Body for EchoBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let polled = loop {
            match std::task::ready!(Pin::new(&mut this.incoming).poll_frame(cx)) {
                // The empty DATA that carried the request's END_STREAM: echoed
                // as is, it would be an empty DATA frame without END_STREAM,
                // and h2 peers reset a connection past 100 of those.
                Some(Ok(frame)) if frame.data_ref().is_some_and(Bytes::is_empty) => continue,
                polled => break polled,
            }
        };
        if let Some(reason) = this.reset_after_data.filter(|_| this.data_sent) {
            this.done = true;
            note(&this.log, &this.path, Outcome::ResetByBackend);
            return Poll::Ready(Some(Err(reason.into())));
        }
        Poll::Ready(match polled {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                    this.data_sent = true;
                }
                Some(Ok(frame))
            }
            Some(Err(error)) => {
                this.done = true;
                let code = h2_reason(&error).map(u32::from);
                note(&this.log, &this.path, Outcome::Reset { code });
                Some(Err(h2::Reason::CANCEL.into()))
            }
            None => {
                this.done = true;
                note(&this.log, &this.path, Outcome::Complete { bytes: this.bytes });
                None
            }
        })
    }
}

impl Drop for EchoBody {
    /// hyper stops polling a response whose stream the client reset: look
    /// at what the request body has left to say (its reset code) now.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let code = loop {
            match Pin::new(&mut self.incoming).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(error))) => break h2_reason(&error).map(u32::from),
                Poll::Ready(None) | Poll::Pending => break None,
            }
        };
        note(&self.log, &self.path, Outcome::Reset { code });
    }
}

/// The HTTP/2 error code somewhere in `error`'s sources.
pub fn h2_reason(error: &(dyn std::error::Error + 'static)) -> Option<h2::Reason> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(reason) = error.downcast_ref::<h2::Error>().and_then(h2::Error::reason) {
            return Some(reason);
        }
        cause = error.source();
    }
    None
}
