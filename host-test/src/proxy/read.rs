//! The upstream's frames, read with a decoder that is not ours: the `h2`
//! crate's `Codec` (feature `unstable`) splits frames and decodes HPACK.
//!
//! The codec strips DATA padding without saying how long it was, and
//! padding counts against flow control (RFC 9113 §6.1), so the bytes pass
//! through [`Tap`] first, which notes every DATA frame's payload length
//! from its frame header.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::StreamExt as _;
use h2::Codec;
use h2::frame::Frame;
use h2fw::frame::FRAME_HEADER_LEN;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;

/// Frame type of DATA.
const DATA: u8 = 0;

/// One frame from the upstream; DATA with the bytes it takes from the
/// flow-control windows (payload plus padding).
#[derive(Debug)]
pub(crate) struct Read {
    /// The decoded frame.
    pub frame: Frame,
    /// For DATA, its flow-controlled length; 0 otherwise.
    pub flow_len: usize,
}

/// Why reading stopped, or a stream's frames were refused.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// A stream error (malformed header block, bad pseudo-headers): reset
    /// that stream; the connection goes on.
    Stream { stream: u32, reason: h2::Reason },
    /// A connection error: GOAWAY with `reason`, then close.
    Connection { reason: h2::Reason, detail: String },
    /// The socket failed or closed.
    Io(String),
}

/// Reads and decodes the frames of one upstream connection.
pub(crate) struct FrameReader {
    codec: Codec<Tap<OwnedReadHalf>, Bytes>,
}

impl FrameReader {
    /// Frames of `read`, refusing frames above `max_frame_size` (what we
    /// advertised, or the default 16 KiB).
    pub fn new(read: OwnedReadHalf, max_frame_size: usize) -> Self {
        let tap = Tap { inner: read, header: [0; FRAME_HEADER_LEN], have: 0, skip: 0, data_lengths: VecDeque::new() };
        FrameReader { codec: Codec::with_max_recv_frame_size(tap, max_frame_size) }
    }

    /// The next frame; `None` at end of stream.
    pub async fn next(&mut self) -> Option<Result<Read, ReadError>> {
        let frame = match self.codec.next().await? {
            Ok(frame) => frame,
            Err(error) => return Some(Err(classify(error))),
        };
        let flow_len = match &frame {
            Frame::Data(data) => match self.codec.get_mut().data_lengths.pop_front() {
                Some(len) => len as usize,
                None => data.payload().len(),
            },
            _ => 0,
        };
        Some(Ok(Read { frame, flow_len }))
    }
}

fn classify(error: h2::proto::Error) -> ReadError {
    use h2::proto::Error as E;
    match error {
        E::Reset(stream, reason, _) => ReadError::Stream { stream: stream.into(), reason },
        E::GoAway(debug, reason, _) => {
            ReadError::Connection { reason, detail: String::from_utf8_lossy(&debug).into_owned() }
        }
        E::Io(kind, message) => ReadError::Io(message.unwrap_or_else(|| io::Error::from(kind).to_string())),
    }
}

/// A read half that notes the payload length of every DATA frame it
/// passes on, in order. It refuses writes: the codec only reads here (every
/// frame we send is written by h2fw).
struct Tap<R> {
    inner: R,
    header: [u8; FRAME_HEADER_LEN],
    /// Header bytes seen of the current frame.
    have: usize,
    /// Payload bytes of the current frame still to pass.
    skip: usize,
    data_lengths: VecDeque<u32>,
}

impl<R> Tap<R> {
    fn scan(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (FRAME_HEADER_LEN - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == FRAME_HEADER_LEN {
                let len = u32::from_be_bytes([0, self.header[0], self.header[1], self.header[2]]);
                if self.header[3] == DATA {
                    self.data_lengths.push_back(len);
                }
                self.skip = len as usize;
                self.have = 0;
            }
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Tap<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let this = &mut *self;
            this.scan(&buf.filled()[before..]);
        }
        polled
    }
}

impl<R: Unpin> AsyncWrite for Tap<R> {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, _buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::Error::new(io::ErrorKind::Unsupported, "the upstream reader does not write")))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
