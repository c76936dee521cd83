//! The Rust peer we measure against: `h2`'s frame `Codec` (feature `unstable`)
//! writing into memory, driven synchronously.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use h2::Codec;
use h2::frame::Frame;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An in-memory socket: writes append to `written` (vectored, as a real
/// socket is, so the codec takes its fastest path); reads see end of stream.
#[derive(Debug, Default)]
pub struct MemoryIo {
    /// Every byte the codec wrote.
    pub written: Vec<u8>,
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
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// `h2`'s codec over a [`MemoryIo`], for a peer whose MAX_FRAME_SIZE is `max_frame_size`.
pub fn codec(max_frame_size: usize) -> Codec<MemoryIo, Bytes> {
    let mut codec = Codec::new(MemoryIo::default());
    codec.set_max_send_frame_size(max_frame_size);
    codec
}

/// Buffers `frame` and flushes it into the codec's [`MemoryIo`]. The sink never
/// blocks, so every poll is ready at once.
pub fn write(codec: &mut Codec<MemoryIo, Bytes>, frame: Frame<Bytes>) {
    let mut context = Context::from_waker(Waker::noop());
    assert!(codec.poll_ready(&mut context).is_ready(), "in-memory codec not ready");
    codec.buffer(frame).expect("h2 refused a frame of the benchmark");
    assert!(codec.flush(&mut context).is_ready(), "in-memory flush pending");
}
