//! The stateful writer a host talks to: peer settings, HPACK, an output queue
//! of pooled chunks, per-stream send queues, flow control and scheduling.
//!
//! Memory follows the bytes waiting to be written. Framed bytes wait in one
//! output queue of densely packed 16 KiB chunks (control frames, header
//! blocks, and DATA that could be framed at once). Body bytes that cannot be
//! framed yet (window exhausted, or the output queue above
//! [`Config::output_high_watermark`]) wait in their stream's queue of small
//! chunks sized from the stream's hints and writes; [`Connection::drain`]
//! empties the output queue, then frames pending DATA round-robin straight
//! into the host's buffer, and every chunk goes back to the pool the moment
//! its bytes are framed or drained. A pending DATA frame carries bytes of one
//! chunk (at most 16 KiB, or 64 KiB for a large declared body), so frame
//! sizes follow chunk sizes. A stream's trailers are HPACK-encoded when its
//! last DATA is out, in a step of their own. An open stream with nothing
//! pending holds no buffer (under the baselines it holds its Go scratch
//! buffer, which is what they model).
//!
//! Under `Tiered`, leased bytes stay within the live bytes (stored trailers
//! count twice: their buffer is rounded up to a class) plus, per non-empty
//! queue, the drained part of its first chunk and the unfilled part of its
//! last: at most 32 KiB for the output queue and 128 KiB per stream with
//! pending bytes, plus 256 B per stream whose trailers are stored (its
//! DATA may be out while its trailers still wait for memory). Idle streams add nothing; idle
//! bytes stay within the pool's idle caps. `tests/conn_random_mixes.rs`
//! checks this after every call.

mod output;
mod stream;

use std::collections::VecDeque;

use foldhash::HashMap;
use foldhash::HashMapExt as _;

#[cfg(feature = "baselines")]
use crate::baseline::{GoPools, frame_scratch_buffer_len};
use crate::frame::{self, FRAME_HEADER_LEN, Frame, FrameError, Priority};
use crate::hpack::{Encoder, HeaderField, HpackError};
use crate::pool::{Pool, PoolBuf, PoolError, PoolShare};
use output::OutputQueue;
use stream::{Finish, Pending, Stream, Trailers};

/// Largest flow-control window (RFC 9113 §6.9.1).
pub const MAX_WINDOW: i64 = (1 << 31) - 1;
/// Largest stream identifier (31 bits).
pub const MAX_STREAM_ID: u32 = (1 << 31) - 1;
/// Connection and stream send windows before the peer says otherwise.
pub const DEFAULT_WINDOW: u32 = 65_535;
/// Size of an output queue chunk (or the pool's largest class if smaller).
pub const OUTPUT_CHUNK_LEN: usize = 16 << 10;

/// Connection limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Most bytes this connection may hold leased from the shared pool (its
    /// share of the budget); `None`: only the pool's budget applies.
    pub pool_share: Option<usize>,
    /// Pending body bytes per stream above which `send` refuses more.
    pub stream_high_watermark: usize,
    /// Live bytes for the whole connection above which `send` refuses more.
    pub conn_high_watermark: usize,
    /// Largest HPACK dynamic table we keep, whatever the peer advertises.
    pub max_header_table_size: usize,
    /// Queued output bytes up to which `send` frames DATA at once (densely,
    /// in call order); past it, body bytes wait in their stream's queue and
    /// `drain` frames them round-robin.
    pub output_high_watermark: usize,
}

impl Default for Config {
    /// No pool share (the pool's budget alone), 512 KiB pending per stream
    /// (what Go's per-stream scratch buffer holds at most, so that no stream
    /// waits on more than it would there), 64 MiB live per connection, a
    /// 4096-byte HPACK table (the RFC default) and 64 KiB of output framed
    /// ahead.
    fn default() -> Self {
        Self {
            pool_share: None,
            stream_high_watermark: 512 << 10,
            conn_high_watermark: 64 << 20,
            max_header_table_size: crate::hpack::DEFAULT_TABLE_SIZE,
            output_high_watermark: 64 << 10,
        }
    }
}

/// What the host tells us about a stream's body when it opens it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamHints {
    /// Declared Content-Length, if any.
    pub content_length: Option<u64>,
}

/// Options of a HEADERS write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadersOptions {
    /// Set END_STREAM.
    pub end_stream: bool,
    /// Priority fields (sets the PRIORITY flag).
    pub priority: Option<Priority>,
    /// Padding (sets the PADDED flag, even for 0).
    pub pad_length: Option<u8>,
}

/// Every way a connection call can fail. The connection stays usable and no
/// partial frame is queued when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A frame field was invalid.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A header list was invalid.
    #[error(transparent)]
    Hpack(#[from] HpackError),
    /// The pool's budget, the connection's share of it, or the allocator
    /// refused memory.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The stream is not open for sending.
    #[error("stream {stream} is not open for sending")]
    StreamNotOpen { stream: u32 },
    /// The stream id was used before or is not above the last one opened.
    #[error("stream {stream} cannot be opened: {reason}")]
    StreamIdInvalid { stream: u32, reason: &'static str },
    /// A peer WINDOW_UPDATE would take a window past 2^31 − 1.
    #[error("window of stream {stream} would exceed 2^31-1")]
    WindowOverflow { stream: u32 },
    /// The stream or the connection is above its high watermark; nothing accepted.
    #[error("stream {stream}: backpressure, {pending} bytes already pending")]
    WouldBlock { stream: u32, pending: usize },
    /// A batch's item lengths add up to more bytes than its data holds.
    #[error("batch items count {lengths} bytes, its data holds {data}")]
    BatchLength { lengths: u64, data: usize },
}

/// One item of [`Connection::send_batch`]: the next `len` bytes of the
/// batch's data go to `stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchItem {
    /// Stream the bytes are for.
    pub stream: u32,
    /// How many of the batch's bytes.
    pub len: usize,
}

/// Connection statistics (the shared pool's are [`Pool::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes this connection holds leased from the pool.
    pub leased_bytes: usize,
    /// Peak of `leased_bytes`.
    pub peak_leased_bytes: usize,
    /// Bytes accepted but not yet drained (pending DATA, deferred trailers
    /// and queued output).
    pub live_bytes: usize,
    /// Peak of `live_bytes`.
    pub peak_live_bytes: usize,
    /// Body bytes waiting in stream queues.
    pub pending_bytes: usize,
    /// Framed bytes waiting in the output queue.
    pub queued_bytes: usize,
    /// Streams open for sending.
    pub open_streams: usize,
    /// Frames written so far.
    pub frames: u64,
    /// Bytes handed to the host so far.
    pub bytes_drained: u64,
    /// Streams with body bytes pending (open or finishing).
    pub pending_streams: usize,
    /// Trailer fields held (serialised) until their stream's DATA is out.
    pub trailer_bytes: usize,
    /// Connection send window (negative never; zero blocks all DATA).
    pub conn_window: i64,
}

/// The frame writer of one HTTP/2 connection. Dropping it gives every
/// buffer it holds back to the pool.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    pool: PoolShare,
    encoder: Encoder,
    /// Peer's SETTINGS_MAX_FRAME_SIZE.
    max_frame_size: u32,
    /// Peer's SETTINGS_INITIAL_WINDOW_SIZE.
    initial_window: u32,
    conn_window: i64,
    output: OutputQueue,
    /// Streams opened with a body that have not ended (finishing included).
    streams: HashMap<u32, Stream>,
    /// Trailers of finishing streams, waiting for their last DATA.
    trailers: HashMap<u32, Trailers>,
    /// Round-robin ring of streams with DATA to frame (stale ids are skipped).
    ready: VecDeque<u32>,
    /// Streams whose DATA is all out and whose trailers are still to queue
    /// (a separate step, after the last DATA chunk went back to the pool).
    trailers_due: VecDeque<u32>,
    last_opened: u32,
    open_streams: usize,
    pending_streams: usize,
    pending_bytes: usize,
    trailer_bytes: usize,
    peak_live_bytes: usize,
    frames: u64,
    bytes_drained: u64,
}

impl Connection {
    /// A connection leasing from `pool` (shared with every other connection
    /// made with a clone of it), with the peer's settings at their RFC defaults.
    pub fn new(config: Config, pool: &Pool) -> Self {
        let output = OutputQueue::new(OUTPUT_CHUNK_LEN.min(pool.config().max_class));
        Self {
            pool: PoolShare::new(pool, config.pool_share),
            encoder: Encoder::with_max_table_size(config.max_header_table_size),
            max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
            initial_window: DEFAULT_WINDOW,
            conn_window: i64::from(DEFAULT_WINDOW),
            output,
            streams: HashMap::new(),
            trailers: HashMap::new(),
            ready: VecDeque::new(),
            trailers_due: VecDeque::new(),
            last_opened: 0,
            open_streams: 0,
            pending_streams: 0,
            pending_bytes: 0,
            trailer_bytes: 0,
            peak_live_bytes: 0,
            frames: 0,
            bytes_drained: 0,
            config,
        }
    }

    /// A connection whose streams each hold a Go scratch buffer from
    /// `scratch` for their life, as the baseline models; output still
    /// leases from `pool`.
    #[cfg(feature = "baselines")]
    pub fn with_baseline(config: Config, pool: &Pool, scratch: &GoPools) -> Self {
        let mut connection = Self::new(config, pool);
        connection.pool = PoolShare::new(pool, connection.config.pool_share).with_scratch(scratch);
        connection
    }

    /// The pool this connection leases from.
    pub fn pool(&self) -> &Pool {
        self.pool.pool()
    }

    /// Baselines only: the Go scratch pools its streams take buffers from.
    #[cfg(feature = "baselines")]
    pub fn scratch(&self) -> Option<&GoPools> {
        self.pool.scratch()
    }

    /// Applies the peer's SETTINGS (MAX_FRAME_SIZE, HEADER_TABLE_SIZE,
    /// INITIAL_WINDOW_SIZE, ...). Validated as a whole before any takes effect.
    ///
    /// A change of INITIAL_WINDOW_SIZE moves every open stream's window by
    /// the difference (RFC 9113 §6.9.2), possibly below zero; one that would
    /// take a window past 2^31 − 1 (at any step, for repeated ids) is refused.
    pub fn apply_peer_settings(&mut self, settings: &[(u16, u32)]) -> Result<(), Error> {
        for &(id, value) in settings {
            frame::validate_setting(id, value)?;
        }
        let mut initial_values = settings.iter().filter(|(id, _)| *id == frame::setting::INITIAL_WINDOW_SIZE);
        let largest_delta = initial_values.clone().map(|&(_, v)| i64::from(v) - i64::from(self.initial_window)).max();
        let final_initial = initial_values.next_back().map_or(self.initial_window, |&(_, v)| v);
        let final_delta = i64::from(final_initial) - i64::from(self.initial_window);
        if let Some(delta) = largest_delta.filter(|d| *d > 0)
            && let Some((&stream, _)) = self.streams.iter().find(|(_, s)| s.window + delta > MAX_WINDOW)
        {
            return Err(Error::WindowOverflow { stream });
        }
        let unblocked =
            self.streams.values().filter(|s| !s.in_ring && !s.pending.is_empty() && s.window + final_delta > 0).count();
        self.ready.try_reserve(unblocked).map_err(|_| oom::<u32>(unblocked))?;

        for &(id, value) in settings {
            match id {
                frame::setting::HEADER_TABLE_SIZE => self.encoder.set_peer_table_size(value),
                frame::setting::MAX_FRAME_SIZE => self.max_frame_size = value,
                _ => {}
            }
        }
        if final_delta != 0 {
            self.initial_window = final_initial;
            for (&id, s) in &mut self.streams {
                s.window += final_delta;
                if !s.in_ring && s.sendable() {
                    s.in_ring = true;
                    self.ready.push_back(id);
                }
            }
        }
        Ok(())
    }

    /// Applies a WINDOW_UPDATE received from the peer (stream 0: connection).
    ///
    /// An update for a stream that is not open (closed, or never opened
    /// here) is ignored, as RFC 9113 §6.9 allows for recently closed streams.
    pub fn apply_window_update(&mut self, stream: u32, increment: u32) -> Result<(), Error> {
        if increment == 0 || i64::from(increment) > MAX_WINDOW {
            return Err(FrameError::WindowIncrement { increment }.into());
        }
        let increment = i64::from(increment);
        if stream == 0 {
            if self.conn_window + increment > MAX_WINDOW {
                return Err(Error::WindowOverflow { stream });
            }
            self.conn_window += increment;
            return Ok(());
        }
        let Some(s) = self.streams.get_mut(&stream) else { return Ok(()) };
        if s.window + increment > MAX_WINDOW {
            return Err(Error::WindowOverflow { stream });
        }
        let unblocks = !s.in_ring && !s.pending.is_empty() && s.window + increment > 0;
        if unblocks {
            self.ready.try_reserve(1).map_err(|_| oom::<u32>(1))?;
            self.ready.push_back(stream);
            s.in_ring = true;
        }
        s.window += increment;
        Ok(())
    }

    /// Queues the 24-byte client connection preface.
    pub fn write_preface(&mut self) -> Result<(), Error> {
        self.output.push_bytes(&mut self.pool, frame::PREFACE)?;
        self.live_changed();
        Ok(())
    }

    /// Queues one frame as given (DATA here is raw: split at the peer's
    /// MAX_FRAME_SIZE, not flow-controlled). Control frames go out ahead of
    /// stream DATA still waiting in stream queues.
    pub fn write_frame(&mut self, frame: &crate::frame::Frame<'_>) -> Result<(), Error> {
        let len = self.output.push_frame(&mut self.pool, frame, self.max_frame_size)?;
        self.frames += frame_count(frame, len, self.max_frame_size);
        self.live_changed();
        Ok(())
    }

    /// HPACK-encodes `fields` and queues HEADERS (+ CONTINUATION).
    pub fn write_headers(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        options: HeadersOptions,
    ) -> Result<(), Error> {
        let HeadersOptions { end_stream, priority, pad_length } = options;
        self.queue_header_block(fields, |block| Frame::Headers { stream, block, end_stream, priority, pad_length })
    }

    /// HPACK-encodes `fields` and queues PUSH_PROMISE (+ CONTINUATION).
    pub fn write_push_promise(
        &mut self,
        stream: u32,
        promised_stream: u32,
        fields: &[HeaderField<'_>],
        pad_length: Option<u8>,
    ) -> Result<(), Error> {
        self.queue_header_block(fields, |block| Frame::PushPromise { stream, promised_stream, block, pad_length })
    }

    /// Opens a flow-controlled stream: queues its HEADERS and remembers the hints.
    ///
    /// The id must be non-zero, below 2^31 and above every id opened before
    /// (so never reused). With `end_stream` the stream has no body and
    /// nothing is kept. Under the baselines the stream takes its Go scratch
    /// buffer here and holds it until it ends.
    pub fn open_stream(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        hints: StreamHints,
        end_stream: bool,
    ) -> Result<(), Error> {
        let reason = if stream == 0 {
            Some("stream 0 is the connection")
        } else if stream > MAX_STREAM_ID {
            Some("stream identifiers are below 2^31")
        } else if stream <= self.last_opened {
            Some("not above the last stream opened")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(Error::StreamIdInvalid { stream, reason });
        }
        let pending = if end_stream {
            None
        } else {
            self.streams.try_reserve(1).map_err(|_| oom::<(u32, Stream)>(1))?;
            Some(self.new_pending(hints)?)
        };
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
        self.last_opened = stream;
        if let Some(pending) = pending {
            let window = i64::from(self.initial_window);
            self.streams.insert(stream, Stream::new(window, hints.content_length, pending));
            self.open_streams += 1;
        }
        Ok(())
    }

    /// An open stream's empty send queue: no buffer, or under a baseline the
    /// stream's Go scratch buffer.
    fn new_pending(&self, hints: StreamHints) -> Result<Pending, PoolError> {
        #[cfg(feature = "baselines")]
        if let Some(pools) = self.pool.scratch() {
            let buf = pools.lease_scratch(frame_scratch_buffer_len(self.max_frame_size, hints.content_length))?;
            return Ok(Pending::Scratch { buf, read: 0 });
        }
        let _ = hints;
        Ok(Pending::empty())
    }

    /// Accepts body bytes for `stream`; returns how many were taken (fewer
    /// than `data.len()` under backpressure).
    ///
    /// With nothing pending on the stream, as much as the windows and the
    /// output watermark allow is framed at once; the rest waits in the
    /// stream's queue up to the stream and connection watermarks (and the
    /// pool's budget). `Error::WouldBlock` (or `Error::Pool`) when nothing
    /// could be taken, and then nothing changed.
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
    /// `Error::StreamNotOpen` (nothing written) is the only error.
    pub fn frame_in_place(
        &mut self,
        stream: u32,
        len: usize,
        ahead: &mut Vec<u8>,
        headers: &mut Vec<u8>,
    ) -> Result<usize, Error> {
        if self.streams.get(&stream).is_none_or(|s| s.finish.is_some()) {
            return Err(Error::StreamNotOpen { stream });
        }
        // Whatever cannot be handed out for lack of memory stays queued,
        // and then no frame may jump ahead of it.
        let _ = self.drain(usize::MAX, ahead);
        let Some(s) = self.streams.get_mut(&stream).filter(|s| s.pending.is_empty() && self.output.len() == 0) else {
            return Ok(0);
        };
        let n = len.min(window_room(s.window)).min(window_room(self.conn_window));
        let frames = n.div_ceil(self.max_frame_size as usize);
        if n == 0 || headers.try_reserve(frames * FRAME_HEADER_LEN).is_err() {
            return Ok(0);
        }
        let written = frame::encode_data_headers(stream, n, false, headers, self.max_frame_size)?;
        s.window -= n as i64;
        self.conn_window -= n as i64;
        self.frames += (written / FRAME_HEADER_LEN) as u64;
        self.bytes_drained += (written + n) as u64;
        Ok(n)
    }

    /// `send`, framing what goes out at once into `direct` when given (and
    /// memory for it can be had), else into the output queue.
    fn send_to(&mut self, stream: u32, data: &[u8], direct: Option<&mut Vec<u8>>) -> Result<usize, Error> {
        let live = self.live_bytes();
        let Self { config, pool, output, streams, ready, .. } = self;
        let Some(s) = streams.get_mut(&stream).filter(|s| s.finish.is_none()) else {
            return Err(Error::StreamNotOpen { stream });
        };
        if data.is_empty() {
            return Ok(0);
        }
        // Room for bytes that wait (queued output counts as live bytes);
        // what goes straight into `direct` never waits.
        let room = config
            .stream_high_watermark
            .saturating_sub(s.pending.len())
            .min(config.conn_high_watermark.saturating_sub(live));

        let mut framed = 0;
        let mut rest_room = room;
        if s.pending.is_empty() {
            let windows = data.len().min(window_room(s.window)).min(window_room(self.conn_window));
            let frame = |n| Frame::Data { stream, data: &data[..n], end_stream: false, pad_length: None };
            // Room for the frames at the smallest MAX_FRAME_SIZE a peer may
            // set: enough for any, and no validation pass just to size it.
            let most = windows + FRAME_HEADER_LEN * windows.div_ceil(frame::DEFAULT_MAX_FRAME_SIZE as usize);
            let direct = direct.and_then(|out| (windows > 0 && out.try_reserve(most).is_ok()).then_some(out));
            let len = match direct {
                Some(out) => {
                    let len = frame(windows).encode(out, self.max_frame_size)?;
                    self.bytes_drained += len as u64;
                    framed = windows;
                    len
                }
                None => {
                    framed = windows.min(room).min(config.output_high_watermark.saturating_sub(output.len()));
                    let mut len = 0;
                    // Less may fit where the whole does not (a share or a
                    // budget below the output watermark): halve until it does.
                    while framed > 0 {
                        match output.push_frame(pool, &frame(framed), self.max_frame_size) {
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
                self.frames += ((len - framed) / FRAME_HEADER_LEN) as u64;
                s.window -= framed as i64;
                self.conn_window -= framed as i64;
            }
        }

        let rest = &data[framed..];
        let rest = &rest[..rest.len().min(rest_room)];
        let mut waiting = 0;
        if !rest.is_empty() {
            let was_empty = s.pending.is_empty();
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
            if waiting > 0 {
                if joins_ring {
                    ready.push_back(stream);
                    s.in_ring = true;
                }
                if was_empty {
                    self.pending_streams += 1;
                }
            }
        }
        if framed + waiting == 0 {
            return Err(Error::WouldBlock { stream, pending: s.pending.len() });
        }
        self.pending_bytes += waiting;
        self.live_changed();
        Ok(framed + waiting)
    }

    /// Ends the stream after its pending bytes: END_STREAM on the last DATA,
    /// or a trailing HEADERS block when `trailers` is given.
    ///
    /// With nothing pending the frame is queued now; otherwise it goes out
    /// right after the stream's last DATA (trailers are validated now, kept
    /// in a pooled buffer and HPACK-encoded then, in wire order).
    pub fn finish(&mut self, stream: u32, trailers: Option<&[HeaderField<'_>]>) -> Result<(), Error> {
        let Some(s) = self.streams.get(&stream).filter(|s| s.finish.is_none()) else {
            return Err(Error::StreamNotOpen { stream });
        };
        if let Some(fields) = trailers {
            Trailers::check_no_pseudo(fields)?;
            crate::hpack::validate(fields)?;
        }
        if s.pending.is_empty() {
            match trailers {
                Some(fields) => self.queue_header_block(fields, |block| Frame::Headers {
                    stream,
                    block,
                    end_stream: true,
                    priority: None,
                    pad_length: None,
                })?,
                None => self.write_frame(&Frame::Data { stream, data: &[], end_stream: true, pad_length: None })?,
            }
            self.close(stream);
        } else {
            let finish = match trailers {
                Some(fields) => {
                    self.trailers.try_reserve(1).map_err(|_| oom::<(u32, Trailers)>(1))?;
                    let stored = Trailers::store(&mut self.pool, fields)?;
                    self.trailer_bytes += stored.len();
                    self.trailers.insert(stream, stored);
                    Finish::Trailers
                }
                None => Finish::EndStream,
            };
            if let Some(s) = self.streams.get_mut(&stream) {
                s.finish = Some(finish);
            }
            self.live_changed();
        }
        self.open_streams -= 1;
        Ok(())
    }

    /// Resets the stream: drops its pending bytes (buffers back to the pool
    /// at once) and queues RST_STREAM.
    ///
    /// Any stream id but 0 may be reset (also one the peer opened, or one
    /// already ended here); only a stream open here has state to drop.
    pub fn reset(&mut self, stream: u32, error_code: u32) -> Result<(), Error> {
        self.write_frame(&Frame::RstStream { stream, error_code })?;
        if self.streams.get(&stream).is_some_and(|s| s.finish.is_none()) {
            self.open_streams -= 1;
        }
        self.close(stream);
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
        self.bytes_drained += written as u64;
        match error {
            Some(error) if written == 0 => Err(error),
            _ => Ok(written),
        }
    }

    /// Current statistics.
    pub fn stats(&self) -> Stats {
        Stats {
            leased_bytes: self.pool.leased_bytes(),
            peak_leased_bytes: self.pool.peak_leased_bytes(),
            live_bytes: self.live_bytes(),
            peak_live_bytes: self.peak_live_bytes,
            pending_bytes: self.pending_bytes,
            queued_bytes: self.output.len(),
            open_streams: self.open_streams,
            frames: self.frames,
            bytes_drained: self.bytes_drained,
            pending_streams: self.pending_streams,
            trailer_bytes: self.trailer_bytes,
            conn_window: self.conn_window,
        }
    }

    /// The send window of `stream`, if it is open here (finishing included).
    pub fn stream_window(&self, stream: u32) -> Option<i64> {
        self.streams.get(&stream).map(|s| s.window)
    }

    /// Body bytes pending on `stream` (0 if it is not open here).
    pub fn stream_pending(&self, stream: u32) -> usize {
        self.streams.get(&stream).map_or(0, |s| s.pending.len())
    }

    fn live_bytes(&self) -> usize {
        self.pending_bytes + self.trailer_bytes + self.output.len()
    }

    fn live_changed(&mut self) {
        self.peak_live_bytes = self.peak_live_bytes.max(self.live_bytes());
    }

    /// Forgets `stream`, giving its buffers back.
    fn close(&mut self, stream: u32) {
        if let Some(s) = self.streams.remove(&stream) {
            if !s.pending.is_empty() {
                self.pending_streams -= 1;
                self.pending_bytes -= s.pending.len();
            }
            s.pending.release(&mut self.pool);
        }
        if let Some(trailers) = self.trailers.remove(&stream) {
            self.trailer_bytes -= trailers.len();
            trailers.release(&mut self.pool);
        }
    }

    /// HPACK-encodes `fields` and queues the frame `frame_for` builds around
    /// the block; all or nothing (the HPACK table changes only if queued).
    fn queue_header_block(
        &mut self,
        fields: &[HeaderField<'_>],
        frame_for: impl for<'b> Fn(&'b [u8]) -> Frame<'b>,
    ) -> Result<(), Error> {
        let block = HeaderBlock::prepare(self, fields, &frame_for)?;
        if let Err(error) = self.output.reserve(&mut self.pool, block.wire_bound) {
            self.pool.release(block.scratch);
            return Err(error.into());
        }
        let result = block.emit(self, fields, &frame_for);
        self.output.release_unused(&mut self.pool);
        self.live_changed();
        result
    }

    /// Frames one DATA frame of the next stream in the ring; false when no
    /// stream can send. A stream's last bytes carry END_STREAM, or, when it
    /// ends with trailers, put the stream on the trailers-due queue.
    ///
    /// The frame goes straight into `out` when a frame header and a byte fit
    /// in `room`, else into the output queue. Everything it needs is
    /// reserved before anything is written.
    fn frame_next_data(&mut self, room: usize, out: &mut Vec<u8>) -> Result<bool, Error> {
        let conn_room = window_room(self.conn_window);
        if conn_room == 0 {
            return Ok(false);
        }
        let Self { streams, ready, trailers_due, pool, output, max_frame_size, .. } = self;
        let max_frame_size = *max_frame_size;
        let (id, s) = loop {
            let Some(&id) = ready.front() else { return Ok(false) };
            match streams.get_mut(&id) {
                Some(s) if s.sendable() => break (id, s),
                Some(s) => s.in_ring = false,
                None => {}
            }
            ready.pop_front();
        };
        let direct = room > FRAME_HEADER_LEN;
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
        ready.pop_front();
        if s.sendable() {
            ready.push_back(id);
        } else {
            s.in_ring = false;
        }
        if trailers_next {
            trailers_due.push_back(id);
        }
        self.frames += 1;
        self.conn_window -= n as i64;
        self.pending_bytes -= n;
        if last {
            self.pending_streams -= 1;
        }
        if end_stream {
            self.close(id);
        }
        Ok(true)
    }

    /// Queues the trailers of the first stream whose DATA is all out, and
    /// forgets the stream; false when none is due. Trailers need no window.
    fn emit_due_trailers(&mut self) -> Result<bool, Error> {
        let Self { trailers, trailers_due, encoder, pool, output, frames, max_frame_size, .. } = self;
        let Some((id, stored)) = trailers_due.iter().find_map(|&id| trailers.get(&id).map(|t| (id, t))) else {
            trailers_due.clear();
            return Ok(false);
        };
        let fields = stored.fields()?;
        let frame_for = trailer_frame(id);
        let block = HeaderBlock::prepare_with(encoder, pool, *max_frame_size, &fields, &frame_for)?;
        if let Err(error) = output.reserve(pool, block.wire_bound) {
            pool.release(block.scratch);
            return Err(error.into());
        }
        let emitted = block.emit_into(encoder, pool, output, frames, *max_frame_size, &fields, &frame_for);
        output.release_unused(pool);
        emitted?;
        drop(fields);
        trailers_due.retain(|&due| due != id);
        self.close(id);
        Ok(true)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for (_, stream) in self.streams.drain() {
            stream.pending.release(&mut self.pool);
        }
        for (_, trailers) in self.trailers.drain() {
            trailers.release(&mut self.pool);
        }
        self.output.release_all(&mut self.pool);
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
    fn prepare(
        conn: &mut Connection,
        fields: &[HeaderField<'_>],
        frame_for: &impl for<'b> Fn(&'b [u8]) -> Frame<'b>,
    ) -> Result<Self, Error> {
        Self::prepare_with(&conn.encoder, &mut conn.pool, conn.max_frame_size, fields, frame_for)
    }

    /// Checks the frame fields (without touching the HPACK table) and leases
    /// a scratch of the block's worst-case length, known from the field
    /// lengths alone: the header list is checked once, by the encode in
    /// [`HeaderBlock::emit_into`].
    fn prepare_with(
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

    fn emit(
        self,
        conn: &mut Connection,
        fields: &[HeaderField<'_>],
        frame_for: &impl for<'b> Fn(&'b [u8]) -> Frame<'b>,
    ) -> Result<(), Error> {
        let Connection { encoder, pool, output, frames, max_frame_size, .. } = conn;
        self.emit_into(encoder, pool, output, frames, *max_frame_size, fields, frame_for)
    }

    /// Encodes the block (the encoder validates the list first: a refused
    /// list writes nothing and leaves the table as it was) and writes its
    /// frames into room already reserved; gives the scratch back either way.
    #[allow(clippy::too_many_arguments)]
    fn emit_into(
        mut self,
        encoder: &mut Encoder,
        pool: &mut PoolShare,
        output: &mut OutputQueue,
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

/// Frames on the wire in `len` bytes of `frame` (DATA and header blocks may
/// be split), from the frame layer's own lengths: each extra frame costs
/// what the frame costs with an empty payload (DATA) or one frame header
/// (CONTINUATION).
fn frame_count(frame: &Frame<'_>, len: usize, max_frame_size: u32) -> u64 {
    let (payload, empty) = match *frame {
        Frame::Data { stream, data, end_stream, pad_length } => {
            (data.len(), Frame::Data { stream, data: &[], end_stream, pad_length })
        }
        Frame::Headers { stream, block, end_stream, priority, pad_length } => {
            (block.len(), Frame::Headers { stream, block: &[], end_stream, priority, pad_length })
        }
        Frame::PushPromise { stream, promised_stream, block, pad_length } => {
            (block.len(), Frame::PushPromise { stream, promised_stream, block: &[], pad_length })
        }
        _ => return 1,
    };
    let Ok(empty_len) = empty.validate(max_frame_size) else { return 1 };
    let extra = len.saturating_sub(payload + empty_len);
    let per_frame = if matches!(frame, Frame::Data { .. }) { empty_len } else { FRAME_HEADER_LEN };
    1 + (extra / per_frame) as u64
}

/// A window as a byte count (0 when exhausted or negative).
fn window_room(window: i64) -> usize {
    usize::try_from(window).unwrap_or(0)
}

/// The error for a container that could not grow by `count` items of `T`.
fn oom<T>(count: usize) -> PoolError {
    PoolError::OutOfMemory { requested: count.saturating_mul(size_of::<T>()) }
}
