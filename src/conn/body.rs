//! Body bytes: accepting them (`send` and its direct variants), framing
//! them round-robin within the windows (`drain`), and resetting a stream.

use super::state::Send;
use super::stream::{self, Finish, Pending};
use super::{BatchItem, Connection, Error, StreamHints, oom, window_room};
use crate::frame::{self, FRAME_HEADER_LEN, Frame, FrameType};
use crate::pool::PoolError;

impl Connection {
    /// Accepts body bytes for `stream`; returns how many were taken (fewer
    /// than `data.len()` under backpressure).
    ///
    /// With nothing pending on the stream, as much as the windows and the
    /// output watermark allow is framed at once; the rest waits in the
    /// stream's queue up to the stream and connection watermarks (and the
    /// pool's budget). `Error::WouldBlock` (or `Error::Pool`) when nothing
    /// could be taken, and then nothing changed. Bytes past a declared
    /// `content-length` are refused whole.
    pub fn send(&mut self, stream: u32, data: &[u8]) -> Result<usize, Error> {
        self.send_to(stream, data, None)
    }

    /// [`Connection::send`], then [`Connection::drain`] of every byte into
    /// `out`, in one call: the write path of a host that has room for the
    /// wire bytes now. Returns the body bytes taken, as `send` does.
    ///
    /// When nothing is queued ahead (no output waiting, nothing pending on
    /// the stream), the bytes the windows allow are framed straight into
    /// `out`, one copy, with no output watermark; the rest waits as with
    /// `send`, and the drain then hands out whatever else can go (other
    /// streams' DATA round-robin, due trailers). Errors are `send`'s, and
    /// then nothing changed and nothing was written. Queued bytes the drain
    /// cannot hand out for lack of memory stay queued for a later `drain`.
    pub fn send_and_drain(&mut self, stream: u32, data: &[u8], out: &mut Vec<u8>) -> Result<usize, Error> {
        let direct = self.output.len() == 0;
        let accepted = self.send_to(stream, data, direct.then_some(&mut *out))?;
        // An error here means nothing could be handed out; the bytes stay
        // queued and `stats().live_bytes` counts them.
        let _ = self.drain(usize::MAX, out);
        Ok(accepted)
    }

    /// [`Connection::send`] for many items whose bytes lie back to back in
    /// `data`, in order, pushing the bytes each item had accepted onto
    /// `accepted`; stops at the first error and returns it (the items before
    /// it stay sent). One call for many small messages, which is what makes
    /// them cheap through the component.
    ///
    /// Checked first, with nothing sent: lengths that add up to more than
    /// `data` ([`Error::BatchLength`]), and room in `accepted` ([`Error::Pool`]).
    pub fn send_batch(&mut self, items: &[BatchItem], data: &[u8], accepted: &mut Vec<usize>) -> Result<(), Error> {
        let lengths = items.iter().fold(0u64, |sum, item| sum.saturating_add(item.len as u64));
        if lengths > data.len() as u64 {
            return Err(Error::BatchLength { lengths, data: data.len() });
        }
        accepted.try_reserve(items.len()).map_err(|_| oom::<usize>(items.len()))?;
        let mut rest = data;
        for item in items {
            let (bytes, tail) = rest.split_at(item.len);
            accepted.push(self.send(item.stream, bytes)?);
            rest = tail;
        }
        Ok(())
    }

    /// DATA for `len` body bytes of `stream` that stay in the host's own
    /// buffer: hands out every queued byte into `ahead` (as `drain` would),
    /// then, if nothing of the stream waits, frames as many of the `len`
    /// bytes as the windows allow and appends only their frame headers to
    /// `headers` (see [`frame::encode_data_headers`]). Returns how many body
    /// bytes were framed; the wire is `ahead`, then each header followed by
    /// the next body bytes, as many as its length field says.
    ///
    /// Body bytes never cross into the writer: through the component this
    /// is the one path whose copies are the host's own. Bytes not framed
    /// (0 when a window is closed, the stream has bytes waiting, or memory
    /// for `ahead` is short) stay the host's, to offer again or to `send`.
    /// Errors (nothing written): the stream is not open for sending, or
    /// `len` passes its declared `content-length`.
    pub fn frame_in_place(
        &mut self,
        stream: u32,
        len: usize,
        ahead: &mut Vec<u8>,
        headers: &mut Vec<u8>,
    ) -> Result<usize, Error> {
        self.check_body_open(stream)?;
        self.streams.check_body(stream, len)?;
        // Whatever cannot be handed out for lack of memory stays queued,
        // and then no frame may jump ahead of it.
        let _ = self.drain(usize::MAX, ahead);
        let max_frame_size = self.peer.max_frame_size;
        let conn_room = window_room(self.conn_window);
        let queued = self.output.len();
        let Some(s) = self.streams.get(stream).filter(|s| s.pending.is_empty() && queued == 0) else { return Ok(0) };
        let n = len.min(window_room(s.window)).min(conn_room);
        let frames = n.div_ceil(max_frame_size as usize);
        if n == 0 || headers.try_reserve(frames * FRAME_HEADER_LEN).is_err() {
            return Ok(0);
        }
        let written = frame::encode_data_headers(stream, n, false, headers, max_frame_size)?;
        self.streams.update(stream, |s| s.window -= n as i64);
        self.streams.take_body(stream, n);
        self.conn_window -= n as i64;
        self.totals.frames += (written / FRAME_HEADER_LEN) as u64;
        self.totals.bytes_drained += (written + n) as u64;
        Ok(n)
    }

    /// Resets the stream: drops its pending bytes (buffers back to the pool
    /// at once) and queues RST_STREAM. Refused on an idle or closed stream
    /// (RFC 9113 §5.1); the peer's RST_STREAM is [`Connection::apply_peer_reset`].
    pub fn reset(&mut self, stream: u32, error_code: u32) -> Result<(), Error> {
        if stream == 0 {
            return Err(crate::frame::FrameError::StreamIdRequired { frame: FrameType::RstStream }.into());
        }
        self.check_open_state(stream, FrameType::RstStream)?;
        self.queue_frame(&Frame::RstStream { stream, error_code })?;
        self.preface();
        self.forget(stream);
        Ok(())
    }

    /// Appends up to `max_bytes` of wire bytes to `out` (queued control and
    /// header frames first, then DATA scheduled round-robin within the
    /// windows); returns how many.
    ///
    /// DATA frames are cut to fit what is left of `max_bytes` (when at least
    /// a header and one byte fit; else one is queued and its first bytes
    /// handed out). An error is returned only if nothing could be written.
    pub fn drain(&mut self, max_bytes: usize, out: &mut Vec<u8>) -> Result<usize, Error> {
        if self.output.len() == 0 && self.ready.is_empty() && self.trailers_due.is_empty() {
            return Ok(0); // nothing queued, no stream scheduled, no trailers due
        }
        let start = out.len();
        let mut error = None;
        loop {
            let room = max_bytes - (out.len() - start);
            if room == 0 {
                break;
            }
            if self.output.len() > 0 {
                let n = room.min(self.output.len());
                if out.try_reserve(n).is_err() {
                    error = Some(Error::Pool(PoolError::OutOfMemory { requested: n }));
                    break;
                }
                self.output.drain_into(&mut self.pool, n, out);
                continue;
            }
            // Trailers first; if they cannot get memory now, DATA (which
            // frees chunks) may still go out, and they are tried again.
            match self.emit_due_trailers() {
                Ok(true) => {
                    self.live_changed();
                    continue;
                }
                Ok(false) => {}
                Err(e) => error = Some(e),
            }
            match self.frame_next_data(room, out) {
                // Framing into the queue adds a frame header; trailers are
                // encoded now: live bytes can grow here.
                Ok(true) => self.live_changed(),
                Ok(false) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let written = out.len() - start;
        self.totals.bytes_drained += written as u64;
        match error {
            Some(error) if written == 0 => Err(error),
            _ => Ok(written),
        }
    }

    /// An open stream's empty send queue: no buffer, or under a baseline the
    /// stream's Go scratch buffer.
    pub(super) fn new_pending(&self, hints: StreamHints) -> Result<Pending, PoolError> {
        #[cfg(feature = "baselines")]
        if let Some(pools) = self.pool.scratch() {
            let len = crate::baseline::frame_scratch_buffer_len(self.peer.max_frame_size, hints.content_length);
            return Ok(Pending::Scratch { buf: pools.lease_scratch(len)?, read: 0 });
        }
        let _ = hints;
        Ok(Pending::empty())
    }

    /// Refuses body bytes on a stream whose body is not open here.
    fn check_body_open(&self, stream: u32) -> Result<(), Error> {
        match self.streams.get(stream) {
            Some(s) if s.send == Send::Body && s.finish.is_none() => Ok(()),
            _ => Err(Error::StreamNotOpen { stream }),
        }
    }

    /// `send`, framing what goes out at once into `direct` when given (and
    /// memory for it can be had), else into the output queue.
    fn send_to(&mut self, stream: u32, data: &[u8], direct: Option<&mut Vec<u8>>) -> Result<usize, Error> {
        self.check_body_open(stream)?;
        if data.is_empty() {
            return Ok(0);
        }
        self.streams.check_body(stream, data.len())?;
        let live = self.live_bytes();
        let Connection { config, pool, output, streams, ready, conn_window, totals, peer, .. } = self;
        let max_frame_size = peer.max_frame_size;
        let outcome = streams.update(stream, |s| -> Result<usize, Error> {
            // Room for bytes that wait (queued output counts as live bytes);
            // what goes straight into `direct` never waits.
            let room = config
                .stream_high_watermark
                .saturating_sub(s.pending.len())
                .min(config.conn_high_watermark.saturating_sub(live));
            let mut framed = 0;
            let mut rest_room = room;
            if s.pending.is_empty() {
                let windows = data.len().min(window_room(s.window)).min(window_room(*conn_window));
                let frame = |n| Frame::Data { stream, data: &data[..n], end_stream: false, pad_length: None };
                // Room for the frames at the smallest MAX_FRAME_SIZE a peer may
                // set: enough for any, and no validation pass just to size it.
                let most = windows + FRAME_HEADER_LEN * windows.div_ceil(frame::DEFAULT_MAX_FRAME_SIZE as usize);
                let direct = direct.and_then(|out| (windows > 0 && out.try_reserve(most).is_ok()).then_some(out));
                let len = match direct {
                    Some(out) => {
                        let len = frame(windows).encode(out, max_frame_size)?;
                        totals.bytes_drained += len as u64;
                        framed = windows;
                        len
                    }
                    None => {
                        framed = windows.min(room).min(config.output_high_watermark.saturating_sub(output.len()));
                        let mut len = 0;
                        // Less may fit where the whole does not (a share or a
                        // budget below the output watermark): halve until it does.
                        while framed > 0 {
                            match output.push_frame(pool, &frame(framed), max_frame_size) {
                                Ok(written) => {
                                    len = written;
                                    break;
                                }
                                Err(Error::Pool(_)) if framed > 1 => framed /= 2,
                                Err(error) => return Err(error),
                            }
                        }
                        rest_room -= framed;
                        len
                    }
                };
                if framed > 0 {
                    // Unpadded DATA: every wire byte beyond the body is a frame header.
                    totals.frames += ((len - framed) / FRAME_HEADER_LEN) as u64;
                    s.window -= framed as i64;
                    *conn_window -= framed as i64;
                }
            }

            let rest = &data[framed..];
            let rest = &rest[..rest.len().min(rest_room)];
            let mut waiting = 0;
            if !rest.is_empty() {
                let joins_ring = !s.in_ring && s.window > 0;
                let appended = if joins_ring && ready.try_reserve(1).is_err() {
                    Err(oom::<u32>(1))
                } else {
                    let large_body = s.large_body;
                    s.pending.append(pool, rest, |to_copy, pending| stream::chunk_len(large_body, to_copy, pending))
                };
                match appended {
                    Ok(n) => waiting = n,
                    Err(error) if framed == 0 => return Err(error.into()),
                    Err(_) => {}
                }
                if waiting > 0 && joins_ring {
                    ready.push_back(stream);
                    s.in_ring = true;
                }
            }
            if framed + waiting == 0 {
                return Err(Error::WouldBlock { stream, pending: s.pending.len() });
            }
            Ok(framed + waiting)
        });
        let taken = match outcome {
            Some((taken, _)) => taken?,
            None => return Err(Error::StreamNotOpen { stream }),
        };
        self.streams.take_body(stream, taken);
        self.live_changed();
        Ok(taken)
    }

    /// Frames one DATA frame of the next stream in the ring; false when no
    /// stream can send. A stream's last bytes carry END_STREAM, or, when it
    /// ends with trailers, put the stream on the trailers-due queue. No DATA
    /// frame, not even an empty END_STREAM, goes out on a window that is not
    /// positive (RFC 9113 §6.9).
    ///
    /// The frame goes straight into `out` when a frame header and a byte fit
    /// in `room`, else into the output queue. Everything it needs is
    /// reserved before anything is written.
    fn frame_next_data(&mut self, room: usize, out: &mut Vec<u8>) -> Result<bool, Error> {
        let conn_room = window_room(self.conn_window);
        if conn_room == 0 {
            return Ok(false);
        }
        let Connection { streams, ready, trailers_due, pool, output, peer, conn_window, totals, .. } = self;
        let max_frame_size = peer.max_frame_size;
        let id = loop {
            let Some(&id) = ready.front() else { return Ok(false) };
            match streams.get(id) {
                Some(s) if s.sendable() => break id,
                Some(_) => {
                    streams.update(id, |s| s.in_ring = false);
                }
                None => {}
            }
            ready.pop_front();
        };
        let direct = room > FRAME_HEADER_LEN;
        let outcome = streams.update(id, |s| -> Result<(), Error> {
            let pending = s.pending.len();
            let mut n = s.pending.front().len().min(window_room(s.window)).min(conn_room).min(max_frame_size as usize);
            if direct {
                n = n.min(room - FRAME_HEADER_LEN);
            }
            let last = n == pending;
            let end_stream = last && s.finish == Some(Finish::EndStream);
            let trailers_next = last && s.finish == Some(Finish::Trailers);
            let wire = FRAME_HEADER_LEN + n;
            if trailers_next {
                trailers_due.try_reserve(1).map_err(|_| oom::<u32>(1))?;
            }
            if direct {
                out.try_reserve(wire).map_err(|_| oom::<u8>(wire))?;
            } else {
                output.reserve(pool, wire)?;
            }

            let frame = Frame::Data { stream: id, data: &s.pending.front()[..n], end_stream, pad_length: None };
            if direct {
                frame.encode(out, max_frame_size)?;
            } else {
                output.encode_reserved(&frame, max_frame_size)?;
            }
            s.pending.consume(pool, n);
            s.window -= n as i64;
            if end_stream {
                s.finish = None;
                s.body_done(pool);
            }
            ready.pop_front();
            if s.sendable() {
                ready.push_back(id);
            } else {
                s.in_ring = false;
            }
            if trailers_next {
                trailers_due.push_back(id);
            }
            totals.frames += 1;
            *conn_window -= n as i64;
            Ok(())
        });
        let Some((framed, removed)) = outcome else { return Ok(false) };
        framed?;
        self.release(id, removed);
        Ok(true)
    }
}
