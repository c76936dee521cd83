//! The baseline upstream side: hyper's HTTP/2 client (the `h2` crate) over
//! a pool of connections, what a Rust user would build. `h2fw proxy-bench`
//! runs it beside the component upstream, with the same client side.

use std::cell::Cell;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::heap::Tagged;
use super::{ClientBody, ProxyConfig, ProxyError, Upstream, UpstreamStats};

/// Runs what hyper's client spawns (its connection task, each request
/// body's pipe) on the proxy's `LocalSet`, counted as upstream heap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpstreamExec;

impl<F: std::future::Future + 'static> hyper::rt::Executor<F> for UpstreamExec {
    fn execute(&self, future: F) {
        tokio::task::spawn_local(Tagged::upstream(future));
    }
}

/// hyper's client over `connections` connections, used round-robin.
pub struct HyperUpstream {
    address: SocketAddr,
    builder: http2::Builder<UpstreamExec>,
    slots: Vec<tokio::sync::Mutex<Option<SendRequest<ClientBody>>>>,
    next: Cell<usize>,
    opened: Cell<u64>,
    open: Rc<Cell<usize>>,
    streams: Rc<Cell<usize>>,
}

impl HyperUpstream {
    /// The pool for `config.upstream` (connections open on first use),
    /// with the same windows as the component upstream advertises.
    pub fn new(config: &ProxyConfig) -> Self {
        let mut builder = http2::Builder::new(UpstreamExec);
        builder
            .initial_stream_window_size(config.stream_window)
            .initial_connection_window_size(config.connection_window)
            .adaptive_window(false);
        HyperUpstream {
            address: config.upstream,
            builder,
            slots: (0..config.connections.max(1)).map(|_| tokio::sync::Mutex::new(None)).collect(),
            next: Cell::new(0),
            opened: Cell::new(0),
            open: Rc::new(Cell::new(0)),
            streams: Rc::new(Cell::new(0)),
        }
    }

    /// The next connection's sender, connecting it if it is not open.
    async fn sender(&self) -> Result<SendRequest<ClientBody>, ProxyError> {
        let index = self.next.get();
        self.next.set((index + 1) % self.slots.len());
        let mut slot = self.slots[index].lock().await;
        if let Some(sender) = slot.as_ref().filter(|sender| !sender.is_closed()) {
            return Ok(sender.clone());
        }
        let connect_error = |message: String| ProxyError::Connect { address: self.address, message };
        let tcp = TcpStream::connect(self.address).await.map_err(|error| connect_error(error.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let (sender, connection) =
            self.builder.handshake(TokioIo::new(tcp)).await.map_err(|error| connect_error(error.to_string()))?;
        self.opened.set(self.opened.get() + 1);
        let open = self.open.clone();
        open.set(open.get() + 1);
        tokio::task::spawn_local(Tagged::upstream(async move {
            let _ = connection.await;
            open.set(open.get() - 1);
        }));
        *slot = Some(sender.clone());
        Ok(sender)
    }
}

impl Upstream for HyperUpstream {
    type Body = HyperBody;

    async fn forward(&self, request: Request<ClientBody>) -> Result<Response<HyperBody>, ProxyError> {
        let mut sender = self.sender().await?;
        sender.ready().await.map_err(ProxyError::Hyper)?;
        let response = sender.send_request(request).await.map_err(ProxyError::Hyper)?;
        let streams = self.streams.clone();
        streams.set(streams.get() + 1);
        Ok(response.map(|body| HyperBody { body, streams }))
    }

    fn stats(&self) -> UpstreamStats {
        UpstreamStats {
            connections: self.open.get(),
            draining: 0,
            opened: self.opened.get(),
            streams: self.streams.get(),
            writer: None,
        }
    }
}

/// A response body from hyper's client; counts as an open stream until dropped.
pub struct HyperBody {
    body: Incoming,
    streams: Rc<Cell<usize>>,
}

impl Drop for HyperBody {
    fn drop(&mut self) {
        self.streams.set(self.streams.get() - 1);
    }
}

impl Body for HyperBody {
    type Data = Bytes;
    type Error = ProxyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        Pin::new(&mut self.body).poll_frame(cx).map_err(ProxyError::Hyper)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
