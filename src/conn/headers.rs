//! Header blocks this end sends: a client's requests, a server's responses
//! and pushes, trailers, and how a block is encoded and queued whole.

use super::error::Rule;
use super::rules::{self, Block};
use super::state::{Recv, Role, Send, StreamState};
use super::stream::{Finish, Pending, Stream, Trailers};
use super::{Connection, Error, StreamHints, frame_count, oom};
use crate::frame::{FRAME_HEADER_LEN, Frame, FrameType};
use crate::hpack::{Encoder, HeaderField};
use crate::pool::{PoolBuf, PoolShare};

impl Connection {
    /// Opens a stream of this end with a request: queues its HEADERS (a
    /// client's; RFC 9113 §8.3.1 pseudo-headers, CONNECT and extended
    /// CONNECT included) and remembers the hints.
    ///
    /// The id must be odd, below 2^31 and above every id this end used; the
    /// peer's SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_MAX_HEADER_LIST_SIZE
    /// and GOAWAY are honoured. With `end_stream` the request has no body.
    /// Under the baselines the stream takes its Go scratch buffer here and
    /// holds it until it ends.
    pub fn open_stream(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        hints: StreamHints,
        end_stream: bool,
    ) -> Result<(), Error> {
        self.streams.check_new_local(stream)?;
        if self.config.role == Role::Server {
            return Err(Error::Refused {
                stream,
                rule: Rule::Push { reason: "a server opens streams with push_promise" },
            });
        }
        self.check_can_open(stream)?;
        let checked = rules::check(stream, Block::Request, fields, self.peer.limits)?;
        if let Some(declared) = checked.content_length.filter(|&len| end_stream && len > 0) {
            let rule = Rule::ContentLength { declared_left: declared, offered: 0 };
            return Err(Error::Refused { stream, rule });
        }
        self.streams.try_reserve()?;
        let pending = self.new_pending(hints)?;
        let queued = self.queue_header_block(fields, |block| Frame::Headers {
            stream,
            block,
            end_stream,
            priority: None,
            pad_length: None,
        });
        if let Err(error) = queued {
            pending.release(&mut self.pool);
            return Err(error);
        }
        let send = if end_stream { Send::Ended } else { Send::Body };
        let window = i64::from(self.peer.initial_window);
        let content_length = checked.content_length.or(hints.content_length);
        self.streams.insert(stream, Stream::new(send, Recv::Open, window, content_length, pending));
        self.declare(stream, checked.content_length, end_stream)
    }

    /// Answers a stream whose HEADERS are due here: the peer's request (a
    /// server's response; a 1xx informational one may come first, any
    /// number of times) or a stream this end promised. Queues HEADERS and
    /// remembers the hints; with `end_stream` the response has no body.
    pub fn respond(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        hints: StreamHints,
        end_stream: bool,
    ) -> Result<(), Error> {
        let local = self.config.role.initiates(stream);
        match self.streams.get(stream) {
            Some(s) => s.check_send(stream, local, FrameType::Headers)?,
            None => {
                let state = self.streams.state(stream);
                return Err(Error::Refused { stream, rule: Rule::State { state, frame: FrameType::Headers } });
            }
        }
        if self.streams.state(stream) == StreamState::ReservedLocal {
            self.check_concurrency(stream)?;
        }
        let checked = rules::check(stream, Block::Response, fields, self.peer.limits)?;
        if checked.informational && end_stream {
            return Err(Error::Refused {
                stream,
                rule: Rule::Message { reason: "an informational (1xx) response does not end the stream (§8.1)" },
            });
        }
        let pending = if checked.informational { None } else { Some(self.new_pending(hints)?) };
        let queued = self.queue_header_block(fields, |block| Frame::Headers {
            stream,
            block,
            end_stream,
            priority: None,
            pad_length: None,
        });
        if let Err(error) = queued {
            if let Some(pending) = pending {
                pending.release(&mut self.pool);
            }
            return Err(error);
        }
        let Some(pending) = pending else { return Ok(()) };
        let large_body = hints.content_length.or(checked.content_length);
        let updated = self.streams.update(stream, |s| {
            *s = Stream::new(if end_stream { Send::Ended } else { Send::Body }, s.recv, s.window, large_body, pending);
        });
        if let Some(((), removed)) = updated {
            self.release(stream, removed);
        }
        self.declare(stream, checked.content_length, end_stream)
    }

    /// Promises stream `promised` on `stream` with the request `fields` (a
    /// server's PUSH_PROMISE, RFC 9113 §8.4): `stream` is a client's stream
    /// still open here, `promised` the next even id, the client allows push
    /// and the request is GET or HEAD. The promised stream is then reserved
    /// (local): [`Connection::respond`] sends its response.
    pub fn push_promise(&mut self, stream: u32, promised: u32, fields: &[HeaderField<'_>]) -> Result<(), Error> {
        let refuse = |reason| Err(Error::Refused { stream, rule: Rule::Push { reason } });
        if self.config.role != Role::Server {
            return refuse("only a server pushes (RFC 9113 §8.4)");
        }
        if !self.peer.enable_push {
            return refuse("the client's SETTINGS_ENABLE_PUSH is 0 (RFC 9113 §6.5.2)");
        }
        let open = self.streams.get(stream).is_some_and(|s| {
            !self.config.role.initiates(stream)
                && matches!(s.state(false), StreamState::Open | StreamState::HalfClosedRemote)
        });
        if !open {
            return refuse("a push goes on a client's stream this end has not ended (RFC 9113 §8.4)");
        }
        self.streams.check_new_local(promised)?;
        self.check_can_open(promised)?;
        rules::check(promised, Block::Promise, fields, self.peer.limits)?;
        self.streams.try_reserve()?;
        self.queue_header_block(fields, |block| Frame::PushPromise {
            stream,
            promised_stream: promised,
            block,
            pad_length: None,
        })?;
        let window = i64::from(self.peer.initial_window);
        self.streams.insert(promised, Stream::new(Send::Headers, Recv::Ended, window, None, Pending::empty()));
        Ok(())
    }

    /// Refuses a new stream of this end after the peer's GOAWAY or past
    /// its concurrency limit.
    fn check_can_open(&self, stream: u32) -> Result<(), Error> {
        if let Some(last_stream_id) = self.peer.goaway {
            return Err(Error::Refused { stream, rule: Rule::GoingAway { last_stream_id } });
        }
        self.check_concurrency(stream)
    }

    /// Refuses one more active stream of this end past the peer's
    /// SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §5.1.2).
    fn check_concurrency(&self, stream: u32) -> Result<(), Error> {
        let limit = self.peer.max_concurrent_streams;
        if self.streams.active_local() >= limit as usize {
            return Err(Error::Refused { stream, rule: Rule::ConcurrencyLimit { limit } });
        }
        Ok(())
    }

    /// Holds the body of `stream` to its declared `content-length`.
    fn declare(&mut self, stream: u32, content_length: Option<u64>, end_stream: bool) -> Result<(), Error> {
        match content_length {
            // With END_STREAM there is no body to hold to it (a HEAD response).
            Some(len) if !end_stream => self.streams.declare(stream, len),
            _ => Ok(()),
        }
    }

    /// Ends the stream after its pending bytes: END_STREAM on the last DATA,
    /// or a trailing HEADERS block when `trailers` is given (no
    /// pseudo-headers, RFC 9113 §8.1). A body shorter than its declared
    /// `content-length` is refused.
    ///
    /// With nothing pending the frame is queued now: trailers need no
    /// window, an empty END_STREAM DATA needs windows of at least 0 (RFC
    /// 9113 §6.9.1), and on a negative window the stream ends with an empty
    /// trailer block instead (a peer may reject even an empty DATA there).
    /// Otherwise it goes out right after the stream's last DATA (trailers
    /// are validated now, kept in a pooled buffer and HPACK-encoded then, in
    /// wire order).
    pub fn finish(&mut self, stream: u32, trailers: Option<&[HeaderField<'_>]>) -> Result<(), Error> {
        let Some(s) = self.streams.get(stream).filter(|s| s.send == Send::Body) else {
            return Err(Error::StreamNotOpen { stream });
        };
        let (pending, window) = (s.pending.len(), s.window);
        self.streams.check_complete(stream)?;
        if let Some(fields) = trailers {
            rules::check(stream, Block::Trailers, fields, self.peer.limits)?;
            crate::hpack::validate(fields)?;
        }
        if pending == 0 {
            match trailers {
                Some(fields) => self.queue_header_block(fields, trailer_frame(stream))?,
                None if window >= 0 && self.conn_window >= 0 => {
                    self.queue_frame(&Frame::Data { stream, data: &[], end_stream: true, pad_length: None })?
                }
                None => self.queue_header_block(&[], trailer_frame(stream))?,
            }
            let Connection { streams, pool, .. } = self;
            if let Some(((), removed)) = streams.update(stream, |s| {
                s.end_send(None);
                s.body_done(pool);
            }) {
                self.release(stream, removed);
            }
            return Ok(());
        }
        let stored = match trailers {
            Some(fields) => {
                self.trailers.try_reserve(1).map_err(|_| oom::<(u32, Trailers)>(1))?;
                Some(Trailers::store(&mut self.pool, fields)?)
            }
            None => None,
        };
        let joins_ring = window > 0 && !self.streams.get(stream).is_some_and(|s| s.in_ring);
        if joins_ring && self.ready.try_reserve(1).is_err() {
            if let Some(stored) = stored {
                stored.release(&mut self.pool);
            }
            return Err(oom::<u32>(1).into());
        }
        let marker = match stored {
            Some(stored) => {
                self.totals.trailer_bytes += stored.len();
                self.trailers.insert(stream, stored);
                Finish::Trailers
            }
            None => Finish::EndStream,
        };
        self.streams.update(stream, |s| {
            s.end_send(Some(marker));
            if joins_ring {
                s.in_ring = true;
            }
        });
        if joins_ring {
            self.ready.push_back(stream);
        }
        self.live_changed();
        Ok(())
    }

    /// HPACK-encodes `fields` and queues the frame `frame_for` builds around
    /// the block; all or nothing (the HPACK table changes only if queued).
    pub(super) fn queue_header_block(
        &mut self,
        fields: &[HeaderField<'_>],
        frame_for: impl for<'b> Fn(&'b [u8]) -> Frame<'b>,
    ) -> Result<(), Error> {
        let Connection { encoder, pool, output, totals, peer, .. } = self;
        let block = HeaderBlock::prepare(encoder, pool, peer.max_frame_size, fields, &frame_for)?;
        if let Err(error) = output.reserve(pool, block.wire_bound) {
            pool.release(block.scratch);
            return Err(error.into());
        }
        let result = block.emit(encoder, pool, output, &mut totals.frames, peer.max_frame_size, fields, &frame_for);
        output.release_unused(pool);
        if result.is_ok() {
            self.preface();
        }
        self.live_changed();
        result
    }

    /// Queues the trailers of the first stream whose DATA is all out, and
    /// ends the stream; false when none is due. Trailers need no window.
    pub(super) fn emit_due_trailers(&mut self) -> Result<bool, Error> {
        let Connection { trailers, trailers_due, encoder, pool, output, totals, peer, .. } = self;
        let Some((id, stored)) = trailers_due.iter().find_map(|&id| trailers.get(&id).map(|t| (id, t))) else {
            trailers_due.clear();
            return Ok(false);
        };
        let fields = stored.fields()?;
        let frame_for = trailer_frame(id);
        let block = HeaderBlock::prepare(encoder, pool, peer.max_frame_size, &fields, &frame_for)?;
        if let Err(error) = output.reserve(pool, block.wire_bound) {
            pool.release(block.scratch);
            return Err(error.into());
        }
        let emitted = block.emit(encoder, pool, output, &mut totals.frames, peer.max_frame_size, &fields, &frame_for);
        output.release_unused(pool);
        emitted?;
        drop(fields);
        trailers_due.retain(|&due| due != id);
        if let Some(stored) = self.trailers.remove(&id) {
            self.totals.trailer_bytes -= stored.len();
            stored.release(&mut self.pool);
        }
        let Connection { streams, pool, .. } = self;
        if let Some(((), removed)) = streams.update(id, |s| {
            s.finish = None;
            s.body_done(pool);
        }) {
            self.release(id, removed);
        }
        Ok(true)
    }
}

/// The HEADERS frame that carries stream `id`'s trailers.
fn trailer_frame(id: u32) -> impl for<'b> Fn(&'b [u8]) -> Frame<'b> {
    move |block| Frame::Headers { stream: id, block, end_stream: true, priority: None, pad_length: None }
}

/// A header block about to be queued: its scratch buffer (room for the
/// worst-case block) and the most wire bytes its frames can take.
struct HeaderBlock {
    scratch: PoolBuf,
    wire_bound: usize,
}

impl HeaderBlock {
    /// Checks the frame fields (without touching the HPACK table) and leases
    /// a scratch of the block's worst-case length, known from the field
    /// lengths alone: the header list is checked once, by the encode in
    /// [`HeaderBlock::emit`].
    fn prepare(
        encoder: &Encoder,
        pool: &mut PoolShare,
        max_frame_size: u32,
        fields: &[HeaderField<'_>],
        frame_for: &impl for<'b> Fn(&'b [u8]) -> Frame<'b>,
    ) -> Result<Self, Error> {
        let empty_len = frame_for(&[]).validate(max_frame_size)?;
        let block_bound = encoder.max_block_len(fields);
        // Each CONTINUATION carries up to MAX_FRAME_SIZE block bytes.
        let wire_bound = empty_len + block_bound + FRAME_HEADER_LEN * block_bound.div_ceil(max_frame_size as usize);
        let scratch = pool.lease(block_bound)?;
        Ok(Self { scratch, wire_bound })
    }

    /// Encodes the block (the encoder validates the list first: a refused
    /// list writes nothing and leaves the table as it was) and writes its
    /// frames into room already reserved; gives the scratch back either way.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        mut self,
        encoder: &mut Encoder,
        pool: &mut PoolShare,
        output: &mut super::output::OutputQueue,
        frames: &mut u64,
        max_frame_size: u32,
        fields: &[HeaderField<'_>],
        frame_for: &impl for<'b> Fn(&'b [u8]) -> Frame<'b>,
    ) -> Result<(), Error> {
        let result = encoder.encode(fields, &mut self.scratch).map_err(Error::from).and_then(|_| {
            let frame = frame_for(self.scratch.as_slice());
            let len = output.encode_reserved(&frame, max_frame_size)?;
            *frames += frame_count(&frame, len, max_frame_size);
            Ok(())
        });
        pool.release(self.scratch);
        result
    }
}
