//! Stream states (RFC 9113 §5.1) and the table of streams that are not
//! closed: who may open which identifiers, what each stream may still send,
//! and the counts that follow from those states.
//!
//! Every change to a stream goes through [`Streams::update`] (or
//! `insert`/`remove`), which compares the stream before and after and moves
//! the counts accordingly: nothing else adjusts them.

use foldhash::HashMap;
use foldhash::HashMapExt as _;

use super::Error;
use super::error::Rule;
use super::stream::{Finish, Stream};
use crate::frame::FrameType;

/// Which end of the connection this writer is (RFC 9113 §5.1.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// Opens odd-numbered streams; writes the connection preface.
    #[default]
    Client,
    /// Answers the client's streams; pushes on even-numbered ones.
    Server,
}

impl Role {
    /// Whether this end initiates stream `id` (odd for a client, even for a server).
    pub fn initiates(self, id: u32) -> bool {
        (id % 2 == 1) == (self == Role::Client)
    }
}

/// A stream's state as this end sees it (RFC 9113 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamState {
    /// Not used yet.
    Idle,
    /// Promised by this end (PUSH_PROMISE sent), its HEADERS not sent yet.
    ReservedLocal,
    /// Promised by the peer, its HEADERS not received yet.
    ReservedRemote,
    /// Both ends may send.
    Open,
    /// This end sent END_STREAM; the peer may still send.
    HalfClosedLocal,
    /// The peer sent END_STREAM; this end may still send.
    HalfClosedRemote,
    /// Done: ended both ways, or reset.
    Closed,
}

impl std::fmt::Display for StreamState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StreamState::Idle => "idle",
            StreamState::ReservedLocal => "reserved (local)",
            StreamState::ReservedRemote => "reserved (remote)",
            StreamState::Open => "open",
            StreamState::HalfClosedLocal => "half-closed (local)",
            StreamState::HalfClosedRemote => "half-closed (remote)",
            StreamState::Closed => "closed",
        })
    }
}

/// This end's sending side of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Send {
    /// Its HEADERS are still to be sent (the peer opened the stream, or
    /// this end promised it); informational (1xx) responses keep it here.
    Headers,
    /// HEADERS sent: DATA and trailers may follow.
    Body,
    /// END_STREAM sent (or queued behind the stream's pending DATA).
    Ended,
}

/// The peer's sending side of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recv {
    /// The peer promised the stream; its HEADERS have not arrived.
    Reserved,
    /// The peer may send.
    Open,
    /// The peer sent END_STREAM.
    Ended,
}

/// What the counts see of one stream.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Class {
    /// Open for `send` (HEADERS sent, not finishing).
    sending: bool,
    /// Body bytes wait in its queue.
    pending: usize,
    /// Initiated here and open or half-closed: counts against the peer's
    /// SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §5.1.2).
    active_local: bool,
}

/// The streams that are not closed, and which identifiers each end used.
#[derive(Debug)]
pub(super) struct Streams {
    map: HashMap<u32, Stream>,
    role: Role,
    /// Highest identifier this end opened or promised.
    last_local: u32,
    /// Highest identifier the peer opened or promised.
    last_remote: u32,
    sending: usize,
    pending_streams: usize,
    pending_bytes: usize,
    active_local: usize,
    /// Body bytes still to come on streams that declared a `content-length`
    /// (few streams do, so they are not kept in every [`Stream`]).
    declared: HashMap<u32, u64>,
    /// Per stream that has one, our WINDOW_UPDATEs minus what the peer sent:
    /// its receive window is our INITIAL_WINDOW_SIZE plus this (streams
    /// without an entry sit at the initial size).
    recv_delta: HashMap<u32, i64>,
}

impl Streams {
    pub(super) fn new(role: Role) -> Self {
        Self {
            map: HashMap::new(),
            role,
            last_local: 0,
            last_remote: 0,
            sending: 0,
            pending_streams: 0,
            pending_bytes: 0,
            active_local: 0,
            declared: HashMap::new(),
            recv_delta: HashMap::new(),
        }
    }

    /// Streams open for `send`.
    pub(super) fn sending(&self) -> usize {
        self.sending
    }

    /// Streams with body bytes pending.
    pub(super) fn pending_streams(&self) -> usize {
        self.pending_streams
    }

    /// Body bytes pending over all streams.
    pub(super) fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Streams initiated here that count against the peer's concurrency limit.
    pub(super) fn active_local(&self) -> usize {
        self.active_local
    }

    /// Highest identifier the peer opened or promised.
    pub(super) fn last_remote(&self) -> u32 {
        self.last_remote
    }

    /// The state of `id`.
    pub(super) fn state(&self, id: u32) -> StreamState {
        match self.map.get(&id) {
            Some(stream) => stream.state(self.role.initiates(id)),
            None => {
                let last = if self.role.initiates(id) { self.last_local } else { self.last_remote };
                if id > last { StreamState::Idle } else { StreamState::Closed }
            }
        }
    }

    pub(super) fn get(&self, id: u32) -> Option<&Stream> {
        self.map.get(&id)
    }

    /// Every stream, for changes that touch them all (SETTINGS).
    pub(super) fn iter(&self) -> impl Iterator<Item = (&u32, &Stream)> {
        self.map.iter()
    }

    /// Makes room for one more stream.
    pub(super) fn try_reserve(&mut self) -> Result<(), Error> {
        self.map.try_reserve(1).map_err(|_| super::oom::<(u32, Stream)>(1).into())
    }

    /// Refuses `id` as a new stream of this end (RFC 9113 §5.1.1): zero,
    /// past 2^31 − 1, of the peer's parity, or not above every identifier
    /// this end used.
    pub(super) fn check_new_local(&self, id: u32) -> Result<(), Error> {
        let reason = if id == 0 {
            "stream 0 is the connection"
        } else if id > super::MAX_STREAM_ID {
            "stream identifiers are below 2^31"
        } else if !self.role.initiates(id) {
            match self.role {
                Role::Client => "a client opens odd-numbered streams",
                Role::Server => "a server opens (pushes) even-numbered streams",
            }
        } else if id <= self.last_local {
            "not above the last stream opened"
        } else {
            return Ok(());
        };
        Err(Error::StreamIdInvalid { stream: id, reason })
    }

    /// Adds a stream (room reserved with [`Streams::try_reserve`]) and
    /// records its identifier as used by the end that initiated it.
    pub(super) fn insert(&mut self, id: u32, stream: Stream) {
        self.note_used(id);
        self.count(Class::default(), self.class(id, &stream));
        self.map.insert(id, stream);
    }

    /// Records `id` as used (a raw HEADERS may open a stream the table does
    /// not keep), so that no later stream reuses it.
    pub(super) fn note_used(&mut self, id: u32) {
        let last = if self.role.initiates(id) { &mut self.last_local } else { &mut self.last_remote };
        *last = (*last).max(id);
    }

    /// Changes stream `id` with `f`, then moves the counts by what changed,
    /// and forgets the stream once it is closed (ended both ways, nothing
    /// pending): the caller releases the buffers of the stream it returns.
    pub(super) fn update<R>(&mut self, id: u32, f: impl FnOnce(&mut Stream) -> R) -> Option<(R, Option<Stream>)> {
        let stream = self.map.get_mut(&id)?;
        let before = class_of(self.role, id, stream);
        let result = f(stream);
        let after = class_of(self.role, id, stream);
        let closed = stream.is_closed();
        self.count(before, after);
        let removed = if closed { self.remove(id) } else { None };
        Some((result, removed))
    }

    /// Records that stream `id` declared a body of `len` bytes.
    pub(super) fn declare(&mut self, id: u32, len: u64) -> Result<(), Error> {
        self.declared.try_reserve(1).map_err(|_| super::oom::<(u32, u64)>(1))?;
        self.declared.insert(id, len);
        Ok(())
    }

    /// Refuses `n` more body bytes on `id` past its declared length (RFC 9113 §8.1.1).
    pub(super) fn check_body(&self, id: u32, n: usize) -> Result<(), Error> {
        match self.declared.get(&id) {
            Some(&left) if n as u64 > left => {
                Err(Error::Refused { stream: id, rule: Rule::ContentLength { declared_left: left, offered: n as u64 } })
            }
            _ => Ok(()),
        }
    }

    /// Counts `n` body bytes taken on `id` (checked with [`Streams::check_body`]).
    pub(super) fn take_body(&mut self, id: u32, n: usize) {
        if let Some(left) = self.declared.get_mut(&id) {
            *left -= n as u64;
        }
    }

    /// Refuses to end `id`'s body before its declared length is reached.
    pub(super) fn check_complete(&self, id: u32) -> Result<(), Error> {
        match self.declared.get(&id) {
            Some(&left) if left > 0 => {
                Err(Error::Refused { stream: id, rule: Rule::ContentLength { declared_left: left, offered: 0 } })
            }
            _ => Ok(()),
        }
    }

    /// `id`'s receive window minus our INITIAL_WINDOW_SIZE.
    pub(super) fn recv_delta(&self, id: u32) -> i64 {
        self.recv_delta.get(&id).copied().unwrap_or(0)
    }

    /// The largest such difference, if any stream has one.
    pub(super) fn largest_recv_delta(&self) -> Option<i64> {
        self.recv_delta.values().copied().max()
    }

    /// Makes room to track one more receive window.
    pub(super) fn reserve_recv_delta(&mut self) -> Result<(), Error> {
        self.recv_delta.try_reserve(1).map_err(|_| super::oom::<(u32, i64)>(1).into())
    }

    /// Moves `id`'s receive window by `by` (room reserved with
    /// [`Streams::reserve_recv_delta`]); a stream not kept here has none.
    pub(super) fn move_recv_delta(&mut self, id: u32, by: i64) {
        if self.map.contains_key(&id) {
            *self.recv_delta.entry(id).or_insert(0) += by;
        }
    }

    /// Forgets stream `id` (reset, refused, or closed); the caller releases its buffers.
    pub(super) fn remove(&mut self, id: u32) -> Option<Stream> {
        self.declared.remove(&id);
        self.recv_delta.remove(&id);
        let stream = self.map.remove(&id)?;
        self.count(self.class(id, &stream), Class::default());
        Some(stream)
    }

    /// Forgets every stream, handing each to `release`.
    pub(super) fn clear(&mut self, mut release: impl FnMut(Stream)) {
        for (_, stream) in self.map.drain() {
            release(stream);
        }
        self.declared.clear();
        self.recv_delta.clear();
        (self.sending, self.pending_streams, self.pending_bytes, self.active_local) = (0, 0, 0, 0);
    }

    /// Appends the identifiers of streams this end initiated above `last`,
    /// in order, to `ids` (the ones a GOAWAY refuses).
    pub(super) fn local_above(&self, last: u32, ids: &mut Vec<u32>) -> Result<(), Error> {
        let matching = |&id: &u32| id > last && self.role.initiates(id);
        let count = self.map.keys().filter(|id| matching(id)).count();
        ids.try_reserve(count).map_err(|_| super::oom::<u32>(count))?;
        let start = ids.len();
        ids.extend(self.map.keys().copied().filter(matching));
        ids[start..].sort_unstable();
        Ok(())
    }

    /// Stream `id`, for changes to its window and ring flag only (nothing
    /// the counts see).
    pub(super) fn window_mut(&mut self, id: u32) -> Option<&mut Stream> {
        self.map.get_mut(&id)
    }

    /// Calls `f` on every stream; `f` may change windows and ring flags
    /// only (nothing the counts see).
    pub(super) fn for_each_window(&mut self, mut f: impl FnMut(u32, &mut Stream)) {
        for (&id, stream) in &mut self.map {
            f(id, stream);
        }
    }

    fn class(&self, id: u32, stream: &Stream) -> Class {
        class_of(self.role, id, stream)
    }

    fn count(&mut self, before: Class, after: Class) {
        self.sending = self.sending + usize::from(after.sending) - usize::from(before.sending);
        self.active_local = self.active_local + usize::from(after.active_local) - usize::from(before.active_local);
        self.pending_streams = self.pending_streams + usize::from(after.pending > 0) - usize::from(before.pending > 0);
        self.pending_bytes = self.pending_bytes + after.pending - before.pending;
    }
}

fn class_of(role: Role, id: u32, stream: &Stream) -> Class {
    let state = stream.state(role.initiates(id));
    Class {
        sending: stream.send == Send::Body && stream.finish.is_none(),
        pending: stream.pending.len(),
        active_local: role.initiates(id)
            && matches!(state, StreamState::Open | StreamState::HalfClosedLocal | StreamState::HalfClosedRemote),
    }
}

impl Stream {
    /// The stream's state; `local`: this end initiated it.
    pub(super) fn state(&self, local: bool) -> StreamState {
        match (self.send, self.recv) {
            (_, Recv::Reserved) => StreamState::ReservedRemote,
            (Send::Headers, Recv::Ended) if local => StreamState::ReservedLocal,
            (Send::Headers | Send::Body, Recv::Open) => StreamState::Open,
            (Send::Ended, Recv::Open) => StreamState::HalfClosedLocal,
            (Send::Headers | Send::Body, Recv::Ended) => StreamState::HalfClosedRemote,
            (Send::Ended, Recv::Ended) => StreamState::Closed,
        }
    }

    /// Ended both ways with nothing left to frame: nothing to keep.
    pub(super) fn is_closed(&self) -> bool {
        self.send == Send::Ended && self.recv == Recv::Ended && self.pending.is_empty() && self.finish.is_none()
    }

    /// Refuses a frame of `frame` type from this end unless the stream can
    /// still carry one: HEADERS while its headers are due, DATA and
    /// trailers while its body is open.
    pub(super) fn check_send(&self, id: u32, local: bool, frame: FrameType) -> Result<(), Error> {
        let allowed = match frame {
            FrameType::Headers => self.send == Send::Headers,
            _ => self.send == Send::Body && self.finish.is_none(),
        };
        if allowed {
            return Ok(());
        }
        Err(Error::Refused { stream: id, rule: Rule::State { state: self.state(local), frame } })
    }

    /// Gives back what the body held once it is all out: nothing under the
    /// tiered pool, the Go scratch buffer under a baseline (Go returns it
    /// when the body is written, not when the peer ends the stream).
    pub(super) fn body_done(&mut self, pool: &mut crate::pool::PoolShare) {
        std::mem::replace(&mut self.pending, super::stream::Pending::empty()).release(pool);
    }

    /// Marks the body ended: at once, or after its pending bytes with `finish`.
    pub(super) fn end_send(&mut self, finish: Option<Finish>) {
        self.finish = finish;
        self.send = Send::Ended;
    }
}
