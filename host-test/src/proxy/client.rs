//! A hyper HTTP/2 client for driving a proxy from tests and the benchmark:
//! request bodies fed through a channel (so streams can stay open and talk
//! in rounds), and a body digest both ends compute alike.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::mpsc;

/// One HTTP/2 client connection (its task runs on the current runtime).
pub async fn connect(address: SocketAddr) -> Result<SendRequest<ChannelBody>, ClientError> {
    let tcp = tokio::net::TcpStream::connect(address).await.map_err(|error| ClientError::Connect(error.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder.max_concurrent_reset_streams(1 << 16);
    let (sender, connection) = builder.handshake(TokioIo::new(tcp)).await.map_err(ClientError::Http)?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Why the client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connect failed.
    #[error("connect: {0}")]
    Connect(String),
    /// hyper's client failed.
    #[error("http: {0}")]
    Http(#[source] hyper::Error),
}

/// A request body fed by a [`BodySender`]; it ends when the sender is
/// dropped. [`ChannelBody::empty`] is no body at all (END_STREAM on HEADERS).
pub struct ChannelBody {
    frames: Option<mpsc::Receiver<Result<Frame<Bytes>, h2::Error>>>,
}

impl ChannelBody {
    /// No body: the request's HEADERS end its stream.
    pub fn empty() -> Self {
        ChannelBody { frames: None }
    }
}

/// Feeds a [`ChannelBody`].
pub struct BodySender {
    frames: mpsc::Sender<Result<Frame<Bytes>, h2::Error>>,
}

/// A body and its sender, holding at most one frame in between.
pub fn channel() -> (BodySender, ChannelBody) {
    let (frames, receiver) = mpsc::channel(1);
    (BodySender { frames }, ChannelBody { frames: Some(receiver) })
}

impl BodySender {
    /// Sends `data`; false once the request is gone.
    pub async fn data(&self, data: Bytes) -> bool {
        self.frames.send(Ok(Frame::data(data))).await.is_ok()
    }

    /// Sends the trailers, which end the body.
    pub async fn trailers(self, trailers: HeaderMap) -> bool {
        self.frames.send(Ok(Frame::trailers(trailers))).await.is_ok()
    }

    /// Resets the request's stream with `reason` (RST_STREAM from the client).
    pub async fn abort(self, reason: h2::Reason) {
        let _ = self.frames.send(Err(reason.into())).await;
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        match self.frames.as_mut() {
            Some(frames) => frames.poll_recv(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_none()
    }
}

/// FNV-1a (64-bit) over a body, fed in pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    hash: u64,
    len: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Digest { hash: 0xcbf2_9ce4_8422_2325, len: 0 }
    }
}

impl Digest {
    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        self.hash = bytes.iter().fold(self.hash, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    }

    /// The digest of `bytes` alone.
    pub fn of(bytes: &[u8]) -> Self {
        let mut digest = Digest::default();
        digest.update(bytes);
        digest
    }

    /// `length:hash`, as a header value.
    pub fn value(&self) -> String {
        format!("{}:{:016x}", self.len, self.hash)
    }
}
