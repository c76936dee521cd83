//! The escape hatch: frames written as given, for tools and tests (frame
//! scripts, conformance suites) that must put arbitrary frames on the wire.

use super::error::Rule;
use super::{Connection, Error, HeadersOptions};
use crate::frame::{self, Frame, FrameType};
use crate::hpack::HeaderField;

/// Writes frames as given, with none of the managed API's rules: what it
/// writes is the caller's responsibility, except that it may not touch a
/// stream the managed API tracks (DATA, HEADERS, PUSH_PROMISE or
/// RST_STREAM there is refused), raw DATA still comes off the connection
/// window, and stream ids it uses are never reused by the managed API.
/// Anything written here counts as the preface having been written.
#[derive(Debug)]
pub struct Raw<'a> {
    conn: &'a mut Connection,
}

impl<'a> Raw<'a> {
    pub(super) fn new(conn: &'a mut Connection) -> Self {
        Self { conn }
    }

    /// Queues the 24-byte client connection preface alone.
    pub fn write_preface_magic(&mut self) -> Result<(), Error> {
        self.conn.output.push_bytes(&mut self.conn.pool, frame::PREFACE)?;
        self.conn.local.preface_written = true;
        self.conn.live_changed();
        Ok(())
    }

    /// Queues one frame as given (DATA is split at the peer's
    /// MAX_FRAME_SIZE, not held to any window).
    pub fn write_frame(&mut self, frame: &Frame<'_>) -> Result<(), Error> {
        let (stream, kind) = match *frame {
            Frame::Data { stream, .. } => (stream, Some(FrameType::Data)),
            Frame::Headers { stream, .. } => (stream, Some(FrameType::Headers)),
            Frame::PushPromise { stream, .. } => (stream, Some(FrameType::PushPromise)),
            Frame::RstStream { stream, .. } => (stream, Some(FrameType::RstStream)),
            _ => (0, None),
        };
        if let Some(kind) = kind {
            self.check_unmanaged(stream, kind)?;
        }
        let (queued, frames) = (self.conn.output.len(), self.conn.totals.frames);
        self.conn.queue_frame(frame)?;
        self.note(frame);
        if kind == Some(FrameType::Data) {
            // Flow control counts each DATA frame's payload, padding included (§6.9.1).
            let wire = self.conn.output.len() - queued;
            let headers = (self.conn.totals.frames - frames) as usize * frame::FRAME_HEADER_LEN;
            self.conn.conn_window -= (wire - headers) as i64;
        }
        Ok(())
    }

    /// HPACK-encodes `fields` and queues HEADERS (+ CONTINUATION) on a
    /// stream the managed API does not track.
    pub fn write_headers(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        options: HeadersOptions,
    ) -> Result<(), Error> {
        self.check_unmanaged(stream, FrameType::Headers)?;
        let HeadersOptions { end_stream, priority, pad_length } = options;
        self.queue_block(|conn| {
            conn.queue_header_block(fields, |block| Frame::Headers { stream, block, end_stream, priority, pad_length })
        })?;
        self.conn.streams.note_used(stream);
        Ok(())
    }

    /// HPACK-encodes `fields` and queues PUSH_PROMISE (+ CONTINUATION) on a
    /// stream the managed API does not track.
    pub fn write_push_promise(
        &mut self,
        stream: u32,
        promised_stream: u32,
        fields: &[HeaderField<'_>],
        pad_length: Option<u8>,
    ) -> Result<(), Error> {
        self.check_unmanaged(stream, FrameType::PushPromise)?;
        self.queue_block(|conn| {
            conn.queue_header_block(fields, |block| Frame::PushPromise { stream, promised_stream, block, pad_length })
        })?;
        self.conn.streams.note_used(promised_stream);
        Ok(())
    }

    /// Queues a header block with `queue`, as raw writes do (no preface of
    /// the connection's own), leaving the preface flag as it was if refused.
    fn queue_block(&mut self, queue: impl FnOnce(&mut Connection) -> Result<(), Error>) -> Result<(), Error> {
        let was = std::mem::replace(&mut self.conn.local.preface_written, true);
        let queued = queue(self.conn);
        if queued.is_err() {
            self.conn.local.preface_written = was;
        }
        queued
    }

    /// Refuses a `frame` on a stream the managed API tracks.
    fn check_unmanaged(&self, stream: u32, frame: FrameType) -> Result<(), Error> {
        if self.conn.streams.get(stream).is_some() {
            return Err(Error::Refused { stream, rule: Rule::ManagedStream { frame } });
        }
        Ok(())
    }

    /// Records what a written frame used: the preface, stream ids.
    fn note(&mut self, frame: &Frame<'_>) {
        self.conn.local.preface_written = true;
        match *frame {
            Frame::Headers { stream, .. } => self.conn.streams.note_used(stream),
            Frame::PushPromise { promised_stream, .. } => self.conn.streams.note_used(promised_stream),
            _ => {}
        }
    }
}
