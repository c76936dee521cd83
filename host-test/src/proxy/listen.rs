//! The client side: hyper's HTTP/2 server (cleartext, prior knowledge) on
//! the proxy's thread, handing each request to the upstream side.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::heap::Tagged;
use super::{Counters, ProxyConfig, ProxyError, Upstream};

/// Runs futures hyper hands over (each client stream) on the proxy's
/// `LocalSet`, so that they need not be `Send`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalExec;

impl<F: Future + 'static> hyper::rt::Executor<F> for LocalExec {
    fn execute(&self, future: F) {
        tokio::task::spawn_local(future);
    }
}

/// Accepts client connections forever.
pub(crate) async fn accept<U: Upstream>(
    listener: tokio::net::TcpListener,
    upstream: Rc<U>,
    counters: Rc<Counters>,
    config: ProxyConfig,
) {
    let mut builder = http2::Builder::new(LocalExec);
    builder.max_concurrent_streams(config.client_streams);
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            // Out of descriptors, or a connection reset before accept: try again shortly.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (upstream, counters_here) = (upstream.clone(), counters.clone());
        let service = service_fn(move |request| handle(upstream.clone(), counters_here.clone(), request));
        let connection = builder.serve_connection(TokioIo::new(tcp), service);
        let counters = counters.clone();
        counters.clients.set(counters.clients.get() + 1);
        tokio::task::spawn_local(async move {
            let _ = connection.await;
            counters.clients.set(counters.clients.get() - 1);
        });
    }
}

/// One client request: forwarded upstream; an upstream reset before the
/// response head resets the client's stream with the same code, any other
/// failure there answers 502 naming it.
async fn handle<U: Upstream>(
    upstream: Rc<U>,
    counters: Rc<Counters>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody<U::Body>>, ProxyError> {
    counters.requests.set(counters.requests.get() + 1);
    let in_flight = InFlight::new(counters);
    let request = request.map(Tagged::other);
    match Tagged::upstream(upstream.forward(request)).await {
        Ok(response) => Ok(response.map(|body| ProxyBody::Upstream { body: Tagged::upstream(body), in_flight })),
        Err(error) if error.reset_reason().is_some() => Err(error),
        Err(error) => {
            let mut response = Response::new(ProxyBody::Message { text: Some(Bytes::from(format!("{error}\n"))) });
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            Ok(response)
        }
    }
}

/// Counts a request in flight until dropped.
pub(crate) struct InFlight(Rc<Counters>);

impl InFlight {
    fn new(counters: Rc<Counters>) -> Self {
        counters.in_flight.set(counters.in_flight.get() + 1);
        InFlight(counters)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}

pin_project_lite::pin_project! {
    /// What a client receives: the upstream's body, or the proxy's own message.
    #[project = ProxyBodyProj]
    pub(crate) enum ProxyBody<B> {
        /// The upstream's response body.
        Upstream { #[pin] body: Tagged<B>, in_flight: InFlight },
        /// A 502's text.
        Message { text: Option<Bytes> },
    }
}

impl<B: Body<Data = Bytes, Error = ProxyError>> Body for ProxyBody<B> {
    type Data = Bytes;
    type Error = ProxyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        match self.project() {
            ProxyBodyProj::Upstream { body, .. } => body.poll_frame(cx),
            ProxyBodyProj::Message { text } => Poll::Ready(text.take().map(|text| Ok(Frame::data(text)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Upstream { body, .. } => body.is_end_stream(),
            ProxyBody::Message { text } => text.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream { body, .. } => body.size_hint(),
            ProxyBody::Message { text } => SizeHint::with_exact(text.as_ref().map_or(0, |text| text.len() as u64)),
        }
    }
}
