//! What the host tells the writer about the peer's frames: its SETTINGS and
//! WINDOW_UPDATEs, and its side of every stream (HEADERS, END_STREAM,
//! RST_STREAM, PUSH_PROMISE, DATA received, GOAWAY).
//!
//! A call the peer's frame could not conformantly have caused (HEADERS on a
//! stream it already ended, say) is refused with [`Error::Refused`]: the
//! host should then treat the peer's frame as a protocol error.

use super::error::Rule;
use super::state::{Recv, Role, Send, StreamState};
use super::stream::{Pending, Stream};
use super::{Connection, Error, MAX_WINDOW, oom};
use crate::frame::{self, FrameError, FrameType, setting};

impl Connection {
    /// Applies the peer's SETTINGS (MAX_FRAME_SIZE, HEADER_TABLE_SIZE,
    /// INITIAL_WINDOW_SIZE, MAX_CONCURRENT_STREAMS, ENABLE_PUSH,
    /// MAX_HEADER_LIST_SIZE, ENABLE_CONNECT_PROTOCOL). Validated as a whole
    /// before any takes effect; the acknowledgement is
    /// [`Connection::ack_settings`].
    ///
    /// A change of INITIAL_WINDOW_SIZE moves every open stream's window by
    /// the difference (RFC 9113 §6.9.2), possibly below zero; one that would
    /// take a window past 2^31 − 1 (at any step, for repeated ids) is refused.
    pub fn apply_peer_settings(&mut self, settings: &[(u16, u32)]) -> Result<(), Error> {
        for &(id, value) in settings {
            frame::validate_setting(id, value)?;
        }
        let mut initial_values = settings.iter().filter(|(id, _)| *id == setting::INITIAL_WINDOW_SIZE);
        let current = i64::from(self.peer.initial_window);
        let largest_delta = initial_values.clone().map(|&(_, v)| i64::from(v) - current).max();
        let final_initial = initial_values.next_back().map_or(self.peer.initial_window, |&(_, v)| v);
        let final_delta = i64::from(final_initial) - current;
        if let Some(delta) = largest_delta.filter(|d| *d > 0)
            && let Some((&stream, _)) = self.streams.iter().find(|(_, s)| s.window + delta > MAX_WINDOW)
        {
            return Err(Error::WindowOverflow { stream });
        }
        let unblocked = self.streams.iter().filter(|(_, s)| !s.in_ring && s.window + final_delta > 0).count();
        self.ready.try_reserve(unblocked).map_err(|_| oom::<u32>(unblocked))?;

        for &(id, value) in settings {
            match id {
                setting::HEADER_TABLE_SIZE => self.encoder.set_peer_table_size(value),
                setting::MAX_FRAME_SIZE => self.peer.max_frame_size = value,
                setting::MAX_CONCURRENT_STREAMS => self.peer.max_concurrent_streams = value,
                setting::ENABLE_PUSH => self.peer.enable_push = value == 1,
                setting::MAX_HEADER_LIST_SIZE => self.peer.limits.max_header_list_size = value,
                setting::ENABLE_CONNECT_PROTOCOL => self.peer.limits.connect_protocol = value == 1,
                _ => {}
            }
        }
        if final_delta != 0 {
            self.peer.initial_window = final_initial;
            let ready = &mut self.ready;
            self.streams.for_each_window(|id, s| {
                s.window += final_delta;
                if !s.in_ring && s.sendable() {
                    s.in_ring = true;
                    ready.push_back(id);
                }
            });
        }
        Ok(())
    }

    /// Applies a WINDOW_UPDATE received from the peer (stream 0: connection).
    ///
    /// An update for a stream that is not kept here (closed, or never
    /// opened) is ignored, as RFC 9113 §6.9 allows for recently closed streams.
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
        let Some(s) = self.streams.get(stream) else { return Ok(()) };
        if s.window + increment > MAX_WINDOW {
            return Err(Error::WindowOverflow { stream });
        }
        if !s.in_ring {
            self.ready.try_reserve(1).map_err(|_| oom::<u32>(1))?;
        }
        if let Some(s) = self.streams.window_mut(stream) {
            s.window += increment;
            if !s.in_ring && s.sendable() {
                s.in_ring = true;
                self.ready.push_back(stream);
            }
        }
        Ok(())
    }

    /// The peer sent HEADERS on `stream` (its request to a server, a
    /// response or trailers to a client, or the response on a stream it
    /// promised); `end_stream`: they carried END_STREAM.
    pub fn apply_peer_headers(&mut self, stream: u32, end_stream: bool) -> Result<(), Error> {
        let recv = if end_stream { Recv::Ended } else { Recv::Open };
        if self.streams.get(stream).is_some() {
            let refused = self.refuse_peer(stream, FrameType::Headers, |s| s.recv == Recv::Ended);
            refused?;
            self.update_recv(stream, |current| if end_stream { Recv::Ended } else { current.max_open() });
            return Ok(());
        }
        let opens = self.config.role == Role::Server
            && !self.config.role.initiates(stream)
            && self.streams.state(stream) == StreamState::Idle;
        if !opens {
            let state = self.streams.state(stream);
            return Err(Error::Refused { stream, rule: Rule::State { state, frame: FrameType::Headers } });
        }
        if let Some(last_stream_id) = self.local.goaway.filter(|&last| stream > last) {
            return Err(Error::Refused { stream, rule: Rule::GoingAway { last_stream_id } });
        }
        self.streams.try_reserve()?;
        let window = i64::from(self.peer.initial_window);
        self.streams.insert(stream, Stream::new(Send::Headers, recv, window, None, Pending::empty()));
        Ok(())
    }

    /// The peer ended its side of `stream` (END_STREAM on DATA).
    pub fn apply_peer_end_stream(&mut self, stream: u32) -> Result<(), Error> {
        self.refuse_peer(stream, FrameType::Data, |s| s.recv != Recv::Open)?;
        self.update_recv(stream, |_| Recv::Ended);
        Ok(())
    }

    /// The peer reset `stream`: it is closed, and its pending bytes are dropped.
    pub fn apply_peer_reset(&mut self, stream: u32) -> Result<(), Error> {
        if self.streams.get(stream).is_none() && self.streams.state(stream) == StreamState::Idle {
            let rule = Rule::State { state: StreamState::Idle, frame: FrameType::RstStream };
            return Err(Error::Refused { stream, rule });
        }
        self.forget(stream);
        Ok(())
    }

    /// The peer (a server) promised stream `promised` on `stream`: it is
    /// reserved (remote) until the peer's HEADERS for it arrive.
    pub fn apply_peer_push_promise(&mut self, stream: u32, promised: u32) -> Result<(), Error> {
        let refuse = |reason| Err(Error::Refused { stream, rule: Rule::Push { reason } });
        if self.config.role != Role::Client || !self.local.enable_push {
            return refuse("this end does not accept pushes (RFC 9113 §6.5.2)");
        }
        if promised % 2 == 1 || self.streams.state(promised) != StreamState::Idle {
            return refuse("a promised stream is a new even-numbered one (RFC 9113 §6.6)");
        }
        self.streams.try_reserve()?;
        let window = i64::from(self.peer.initial_window);
        self.streams.insert(promised, Stream::new(Send::Ended, Recv::Reserved, window, None, Pending::empty()));
        Ok(())
    }

    /// The peer sent GOAWAY: no new stream from now on, and the streams this
    /// end opened above `last_stream_id` were not processed. Those are
    /// dropped (buffers back to the pool) and appended to `refused`, in
    /// order, for the host to retry elsewhere.
    pub fn apply_peer_goaway(&mut self, last_stream_id: u32, refused: &mut Vec<u32>) -> Result<(), Error> {
        let start = refused.len();
        self.streams.local_above(last_stream_id, refused)?;
        for i in start..refused.len() {
            self.forget(refused[i]);
        }
        let last = self.peer.goaway.map_or(last_stream_id, |earlier| earlier.min(last_stream_id));
        self.peer.goaway = Some(last);
        Ok(())
    }

    /// The peer sent `len` flow-controlled bytes (a DATA frame's payload,
    /// padding included) on `stream`: they come off the receive windows
    /// that [`Connection::window_update`] replenishes.
    pub fn apply_peer_data(&mut self, stream: u32, len: u32) -> Result<(), Error> {
        if self.streams.get(stream).is_some() {
            self.streams.reserve_recv_delta()?;
            self.streams.move_recv_delta(stream, -i64::from(len));
        }
        self.local.conn_window -= i64::from(len);
        Ok(())
    }

    /// Refuses a peer frame of `frame` type on `stream` when the stream is
    /// not kept here or `ended` says its side is over.
    fn refuse_peer(&self, stream: u32, frame: FrameType, ended: impl Fn(&Stream) -> bool) -> Result<(), Error> {
        match self.streams.get(stream) {
            Some(s) if !ended(s) => Ok(()),
            _ => {
                let state = self.streams.state(stream);
                Err(Error::Refused { stream, rule: Rule::State { state, frame } })
            }
        }
    }

    /// Moves the peer's side of `stream` and lets the table close it.
    fn update_recv(&mut self, stream: u32, to: impl FnOnce(Recv) -> Recv) {
        if let Some(((), removed)) = self.streams.update(stream, |s| s.recv = to(s.recv)) {
            self.release(stream, removed);
        }
    }
}

impl Recv {
    /// A reserved side opens with the peer's HEADERS; others stay.
    fn max_open(self) -> Recv {
        if self == Recv::Reserved { Recv::Open } else { self }
    }
}
