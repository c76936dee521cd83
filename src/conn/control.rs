//! Connection-level frames this end sends: the preface and SETTINGS, their
//! acknowledgement, PING, GOAWAY, WINDOW_UPDATE and PRIORITY.

use super::error::Rule;
use super::state::Role;
use super::{Connection, Error, MAX_WINDOW};
use crate::frame::{self, Frame, FrameError, FrameType, Priority, setting};

/// The client preface magic and an empty SETTINGS frame: what a connection
/// writes for itself when its first frame comes before `write_preface` (a
/// server's is the SETTINGS frame alone, the last 9 bytes).
const AUTO_PREFACE: [u8; 33] = *b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

impl Connection {
    /// Queues the connection preface with our SETTINGS (`settings`, order
    /// kept): the client's 24-byte magic then SETTINGS, or the server's
    /// SETTINGS alone (RFC 9113 §3.4). Once, and before anything else: any
    /// other call that writes queues it first with no settings (all at their
    /// defaults), after which this call is refused.
    pub fn write_preface(&mut self, settings: &[(u16, u32)]) -> Result<(), Error> {
        if self.local.preface_written {
            return Err(Error::Refused { stream: 0, rule: Rule::Preface { reason: "it is written once" } });
        }
        self.check_settings(settings)?;
        let magic = if self.config.role == Role::Client { &frame::PREFACE[..] } else { &[][..] };
        let frame = Frame::Settings { settings };
        let len = frame.validate(self.peer.max_frame_size)?;
        self.output.reserve(&mut self.pool, magic.len() + len)?;
        self.output.push_bytes(&mut self.pool, magic)?;
        self.output.encode_reserved(&frame, self.peer.max_frame_size)?;
        self.totals.frames += 1;
        self.local.preface_written = true;
        self.adopt_settings(settings);
        self.live_changed();
        Ok(())
    }

    /// Queues a SETTINGS frame with `settings` (after the preface's). Our
    /// INITIAL_WINDOW_SIZE moves every stream's receive window, and is
    /// refused if one would pass 2^31 − 1 (RFC 9113 §6.9.2).
    pub fn write_settings(&mut self, settings: &[(u16, u32)]) -> Result<(), Error> {
        self.check_settings(settings)?;
        self.queue_frame(&Frame::Settings { settings })?;
        self.preface();
        self.adopt_settings(settings);
        Ok(())
    }

    /// Queues the SETTINGS acknowledgement the peer is owed for each
    /// SETTINGS it sent (RFC 9113 §6.5.3). It never needs a pool chunk: when
    /// the pool refuses, a small reserve of the connection takes it.
    pub fn ack_settings(&mut self) -> Result<(), Error> {
        self.queue_control(&Frame::SettingsAck)?;
        self.preface();
        Ok(())
    }

    /// Queues a PING with `opaque_data`; with `ack`, the answer to the
    /// peer's PING, which (like [`Connection::ack_settings`]) never needs a
    /// pool chunk.
    pub fn ping(&mut self, opaque_data: [u8; 8], ack: bool) -> Result<(), Error> {
        let frame = Frame::Ping { opaque_data, ack };
        if ack {
            self.queue_control(&frame)?
        } else {
            self.queue_frame(&frame)?
        }
        self.preface();
        Ok(())
    }

    /// Queues GOAWAY: the peer's streams above `last_stream_id` were not
    /// processed. A later GOAWAY may lower `last_stream_id`, never raise it
    /// (RFC 9113 §6.8).
    pub fn goaway(&mut self, last_stream_id: u32, error_code: u32, debug_data: &[u8]) -> Result<(), Error> {
        if let Some(previous) = self.local.goaway.filter(|&previous| last_stream_id > previous) {
            return Err(Error::Refused { stream: 0, rule: Rule::GoawayIncrease { last_stream_id, previous } });
        }
        self.queue_frame(&Frame::Goaway { last_stream_id, error_code, debug_data })?;
        self.preface();
        self.local.goaway = Some(last_stream_id);
        Ok(())
    }

    /// Queues WINDOW_UPDATE: the peer may send `increment` more bytes on
    /// `stream` (0: the connection). The stream must not be idle or closed,
    /// and the window we advertised may not pass 2^31 − 1 (RFC 9113 §6.9.1);
    /// what the peer sent is counted by [`Connection::apply_peer_data`].
    pub fn window_update(&mut self, stream: u32, increment: u32) -> Result<(), Error> {
        if increment == 0 || i64::from(increment) > MAX_WINDOW {
            return Err(FrameError::WindowIncrement { increment }.into());
        }
        let window = if stream == 0 {
            self.local.conn_window
        } else {
            self.check_open_state(stream, FrameType::WindowUpdate)?;
            i64::from(self.local.initial_window) + self.streams.recv_delta(stream)
        };
        if window + i64::from(increment) > MAX_WINDOW {
            return Err(Error::Refused { stream, rule: Rule::ReceiveWindow { window, increment } });
        }
        if stream != 0 {
            self.streams.reserve_recv_delta()?;
        }
        self.queue_frame(&Frame::WindowUpdate { stream, increment })?;
        self.preface();
        if stream == 0 {
            self.local.conn_window += i64::from(increment);
        } else {
            self.streams.move_recv_delta(stream, i64::from(increment));
        }
        Ok(())
    }

    /// Queues PRIORITY for `stream` (allowed in any state, RFC 9113 §5.1).
    pub fn priority(&mut self, stream: u32, priority: Priority) -> Result<(), Error> {
        self.queue_frame(&Frame::Priority { stream, priority })?;
        self.preface();
        Ok(())
    }

    /// After a call queued its frames: if no preface was written yet, puts
    /// the preface with empty SETTINGS ahead of them (static bytes: this
    /// cannot fail, and a refused call never gets here, so it writes nothing).
    pub(super) fn preface(&mut self) {
        if !self.local.preface_written {
            self.local.preface_written = true;
            let head = if self.config.role == Role::Client { &AUTO_PREFACE[..] } else { &AUTO_PREFACE[24..] };
            self.output.push_head(head);
            self.totals.frames += 1;
            self.live_changed();
        }
    }

    /// Refuses `frame` on a stream that is idle or closed.
    pub(super) fn check_open_state(&self, stream: u32, frame: FrameType) -> Result<(), Error> {
        use super::state::StreamState::{Closed, Idle};
        match self.streams.state(stream) {
            state @ (Idle | Closed) => Err(Error::Refused { stream, rule: Rule::State { state, frame } }),
            _ => Ok(()),
        }
    }

    /// Validates our `settings` as a whole: values in range, and an
    /// INITIAL_WINDOW_SIZE that keeps every receive window within 2^31 − 1.
    fn check_settings(&self, settings: &[(u16, u32)]) -> Result<(), Error> {
        for &(id, value) in settings {
            frame::validate_setting(id, value)?;
            if id == setting::ENABLE_PUSH && value == 1 && self.config.role == Role::Server {
                return Err(Error::Refused {
                    stream: 0,
                    rule: Rule::Push { reason: "a server's SETTINGS_ENABLE_PUSH is 0 (RFC 9113 §6.5.2)" },
                });
            }
            if id == setting::INITIAL_WINDOW_SIZE
                && let Some(delta) = self.streams.largest_recv_delta()
                && i64::from(value) + delta > MAX_WINDOW
            {
                return Err(Error::Refused {
                    stream: 0,
                    rule: Rule::ReceiveWindow { window: i64::from(value) + delta, increment: 0 },
                });
            }
        }
        Ok(())
    }

    /// Takes our `settings` (already checked) into account.
    fn adopt_settings(&mut self, settings: &[(u16, u32)]) {
        for &(id, value) in settings {
            match id {
                setting::INITIAL_WINDOW_SIZE => self.local.initial_window = value,
                setting::ENABLE_PUSH => self.local.enable_push = value == 1,
                _ => {}
            }
        }
    }

    /// Queues a control frame the peer is owed at once (an ACK): in the
    /// output queue, or, when the pool refuses a chunk, in the reserve.
    fn queue_control(&mut self, frame: &Frame<'_>) -> Result<(), Error> {
        match self.queue_frame(frame) {
            Err(Error::Pool(error)) => {
                self.output.push_reserved_control(frame, self.peer.max_frame_size).map_err(|_| Error::Pool(error))?;
                self.totals.frames += 1;
                self.live_changed();
                Ok(())
            }
            other => other,
        }
    }
}
