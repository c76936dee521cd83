//! The Rust peer we measure against: `h2`'s frame `Codec` (feature `unstable`)
//! writing into memory, driven synchronously.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::StreamExt;
use h2::Codec;
use h2::frame::Frame;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An in-memory socket: writes append to `written` (vectored, as a real
/// socket is, so the codec takes its fastest path); reads take `readable`
/// from the front, then see end of stream.
#[derive(Debug, Default)]
pub struct MemoryIo {
    /// Every byte the codec wrote.
    pub written: Vec<u8>,
    /// Bytes left for the codec to read.
    pub readable: Bytes,
}

impl AsyncWrite for MemoryIo {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut total = 0;
        for buf in bufs {
            self.written.extend_from_slice(buf);
            total += buf.len();
        }
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for MemoryIo {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let len = buf.remaining().min(self.readable.len());
        buf.put_slice(&self.readable.split_to(len));
        Poll::Ready(Ok(()))
    }
}

/// `h2`'s codec over a [`MemoryIo`], for a peer whose MAX_FRAME_SIZE is `max_frame_size`.
pub fn codec(max_frame_size: usize) -> Codec<MemoryIo, Bytes> {
    let mut codec = Codec::new(MemoryIo::default());
    codec.set_max_send_frame_size(max_frame_size);
    codec
}

/// Decodes every frame of `wire` with `h2`'s codec, accepting frames of up to
/// `max_frame_size` (header blocks go through its HPACK decoder, tables
/// starting at the RFC defaults).
pub fn decode(wire: &[u8], max_frame_size: usize) -> Result<Vec<Frame>, h2::proto::Error> {
    let io = MemoryIo { written: Vec::new(), readable: Bytes::copy_from_slice(wire) };
    let mut codec: Codec<MemoryIo, Bytes> = Codec::with_max_recv_frame_size(io, max_frame_size);
    let mut context = Context::from_waker(Waker::noop());
    let mut frames = Vec::new();
    while let Poll::Ready(Some(frame)) = codec.poll_next_unpin(&mut context) {
        frames.push(frame?);
    }
    Ok(frames)
}

/// Buffers `frame` and flushes it into the codec's [`MemoryIo`]. The sink never
/// blocks, so every poll is ready at once.
pub fn write(codec: &mut Codec<MemoryIo, Bytes>, frame: Frame<Bytes>) {
    let mut context = Context::from_waker(Waker::noop());
    assert!(codec.poll_ready(&mut context).is_ready(), "in-memory codec not ready");
    codec.buffer(frame).expect("h2 refused a frame of the benchmark");
    assert!(codec.flush(&mut context).is_ready(), "in-memory flush pending");
}
