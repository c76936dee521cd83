//! [`Tunnel`]: one downstream TCP connection carried over an HTTP/2 CONNECT
//! stream (RFC 9113 §8.5) on a client connection of its own, host-agnostic.
//!
//! Every byte toward the upstream is written by an h2fw [`Connection`]
//! leasing from the VM's one [`Pool`]: the preface and SETTINGS, the CONNECT
//! request, DATA for the client's bytes within the upstream's windows,
//! SETTINGS ACK, PING ACK and WINDOW_UPDATE for what arrives, RST_STREAM and
//! GOAWAY at the end. Frames from the upstream are parsed here
//! ([`crate::frames`]) and the response header block decoded with
//! `loona-hpack`; DATA payloads are handed back for the client.
//!
//! This is the one module that calls the h2fw writer.

use std::borrow::Cow;

use h2fw::conn::{Config, Connection, Error as WriterError, StreamHints, StreamState};
use h2fw::frame::setting;
use h2fw::hpack::HeaderField;
use h2fw::pool::{Pool, PoolBuf, PoolError};
use loona_hpack::Decoder;

use crate::error_code;
use crate::frames::{FeedError, Frame, FrameError, FrameReader, settings_pairs};
use crate::inbox::Inbox;

/// The one stream of the tunnel's connection.
const STREAM: u32 = 1;
/// SETTINGS_MAX_FRAME_SIZE we advertise (the RFC default), which bounds a
/// partial frame held between reads.
pub const MAX_FRAME_SIZE: u32 = 16_384;
/// Largest response header block (all HEADERS and CONTINUATION fragments).
pub const MAX_HEADER_BLOCK: usize = 16 << 10;
/// HPACK dynamic table size, ours and the upstream's: none. A tunnel's
/// connection carries one header block each way, which no table entry
/// could help, and a table costs every idle tunnel memory (the writer's
/// hash index for a 4 KiB table is 4 KiB by itself).
const HEADER_TABLE_SIZE: u32 = 0;
/// The connection window before any WINDOW_UPDATE (RFC 9113 §6.9.2).
const INITIAL_CONN_WINDOW: u32 = 65_535;

/// How a tunnel is set up (from the plugin configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelConfig {
    /// `:authority` of the CONNECT request (host:port).
    pub authority: String,
    /// Receive window we grant the upstream, per stream and for the
    /// connection: from 65,535 (the RFC's initial window; the plugin
    /// configuration enforces the range) to 2^31 − 1.
    pub recv_window: u32,
    /// Client bytes the writer may hold pending beyond the upstream's
    /// windows (its stream high watermark).
    pub stream_buffer: usize,
    /// Client bytes held in the VM on top of that before the client is
    /// paused (see [`Tunnel::can_take`]); twice as many end the tunnel.
    pub hold_bytes: usize,
    /// Most bytes one tunnel's writer may lease from the pool.
    pub pool_share: Option<usize>,
}

impl Default for TunnelConfig {
    /// Authority `upstream:443`, a 4 MiB receive window, 256 KiB pending in
    /// the writer, no pool share, and `hold_bytes` 1 MiB: Envoy's default
    /// per-connection buffer limit. When frames must go out, the host's
    /// buffer (about that limit at most) is taken whole on top of what is
    /// held, and so stays within the twice `hold_bytes` that ends a tunnel.
    fn default() -> Self {
        Self {
            authority: "upstream:443".into(),
            recv_window: 4 << 20,
            stream_buffer: 256 << 10,
            hold_bytes: 1 << 20,
            pool_share: None,
        }
    }
}

/// Why a tunnel ended: the reason logged, and what the GOAWAY says.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EndReason {
    /// The upstream answered the CONNECT with a non-2xx status.
    #[error("upstream refused the tunnel with status {status}")]
    Refused { status: u16 },
    /// The upstream ended its side of the stream (END_STREAM).
    #[error("upstream ended the tunnel (END_STREAM)")]
    UpstreamEnded,
    /// The upstream reset the stream.
    #[error("upstream reset the tunnel (RST_STREAM {})", error_code::name(*code))]
    UpstreamReset { code: u32 },
    /// The upstream sent GOAWAY.
    #[error("upstream sent GOAWAY ({}, last stream {last_stream}){}", error_code::name(*code), debug_suffix(debug))]
    GoAway { code: u32, last_stream: u32, debug: String },
    /// The upstream closed the TCP connection.
    #[error("upstream closed the connection")]
    UpstreamClosed,
    /// The client closed (or reset) its connection.
    #[error("client closed the connection")]
    ClientClosed,
    /// An upstream frame was malformed.
    #[error("malformed upstream frame: {0}")]
    Malformed(#[from] FrameError),
    /// The upstream broke the protocol in a well-formed frame.
    #[error("upstream protocol error: {0}")]
    Protocol(&'static str),
    /// The response header block was not valid HPACK.
    #[error("response header block: {0}")]
    Hpack(#[from] loona_hpack::decoder::DecoderError),
    /// The response header block is larger than we accept.
    #[error("response header block exceeds {limit} bytes")]
    HeaderBlockTooLarge { limit: usize },
    /// A frame of the upstream that the writer, told of it, found out of
    /// place or out of range (SETTINGS, WINDOW_UPDATE, a stream's state).
    #[error("upstream frame refused by the writer: {0}")]
    PeerState(WriterError),
    /// The writer refused (a budget, its share, or VM memory).
    #[error("writer refused: {0}")]
    Writer(WriterError),
    /// The client's bytes held in the VM reached twice `hold_bytes`: the
    /// host's buffer limit is above what the upstream's windows let out
    /// per write (see the filter's documentation).
    #[error("{held} client bytes held while the upstream's windows are closed (limit {limit})")]
    HoldExceeded { held: usize, limit: usize },
    /// The pool refused a buffer for upstream or held client bytes.
    #[error("pool refused memory: {0}")]
    Pool(#[from] PoolError),
    /// The VM ran out of linear memory while serving this tunnel.
    #[error("VM out of linear memory")]
    VmMemory,
    /// A host call failed.
    #[error("host call {call} failed with status {status}")]
    Host { call: &'static str, status: u32 },
}

fn debug_suffix(debug: &str) -> String {
    if debug.is_empty() { String::new() } else { format!(": {debug:?}") }
}

impl From<WriterError> for EndReason {
    fn from(error: WriterError) -> Self {
        Self::Writer(error)
    }
}

impl EndReason {
    /// Whether the tunnel ended because something went wrong (logged as a
    /// warning) rather than because a peer ended it.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Self::UpstreamEnded | Self::GoAway { code: 0, .. } | Self::UpstreamClosed | Self::ClientClosed)
    }

    /// A short stable name, for the counter of tunnels closed for this reason.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Refused { .. } => "refused",
            Self::UpstreamEnded => "upstream_end_stream",
            Self::UpstreamReset { .. } => "upstream_reset",
            Self::GoAway { .. } => "upstream_goaway",
            Self::UpstreamClosed => "upstream_closed",
            Self::ClientClosed => "client_closed",
            Self::Malformed(_) | Self::Protocol(_) => "protocol_error",
            Self::Hpack(_) | Self::HeaderBlockTooLarge { .. } => "compression_error",
            Self::PeerState(_) => "peer_state",
            Self::Writer(WriterError::Pool(_)) | Self::Pool(_) | Self::VmMemory | Self::HoldExceeded { .. } => "memory",
            Self::Writer(_) => "writer",
            Self::Host { .. } => "host",
        }
    }

    /// The error code of the GOAWAY that ends the connection.
    fn code(&self) -> u32 {
        match self {
            Self::Malformed(error) => error.code(),
            Self::Protocol(_) | Self::PeerState(_) => error_code::PROTOCOL_ERROR,
            Self::Hpack(_) | Self::HeaderBlockTooLarge { .. } => error_code::COMPRESSION_ERROR,
            Self::Writer(_) | Self::Pool(_) | Self::VmMemory | Self::Host { .. } | Self::HoldExceeded { .. } => {
                error_code::INTERNAL_ERROR
            }
            _ => error_code::NO_ERROR,
        }
    }
}

/// Where the CONNECT stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// CONNECT sent, no final response yet.
    Connecting,
    /// 2xx received: bytes flow both ways.
    Open,
    /// Over (closing frames queued).
    Ended,
}

/// A header block being gathered from HEADERS and CONTINUATION frames.
#[derive(Debug)]
struct Block {
    fragments: PoolBuf,
    end_stream: bool,
}

/// One tunnel. See the module documentation.
pub struct Tunnel {
    conn: Connection,
    pool: Pool,
    reader: FrameReader,
    decoder: Decoder<'static>,
    block: Option<Block>,
    state: State,
    inbox: Inbox,
    hold_bytes: usize,
    /// The client sent its last byte.
    client_done: bool,
    /// END_STREAM is queued for the client's last byte.
    finished: bool,
    recv_window: u32,
    /// DATA bytes received and not granted again yet, on the stream and so
    /// on the connection (its only stream).
    unacked: u32,
    counts: FrameCounts,
}

/// WINDOW_UPDATE frames since the last [`Tunnel::take_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// Received from the upstream.
    pub window_updates_received: u64,
    /// Queued toward the upstream.
    pub window_updates_sent: u64,
}

impl Tunnel {
    /// A tunnel whose connection has queued its preface, SETTINGS, the
    /// connection window and the CONNECT request: they go out with the
    /// first bytes the host lets it write.
    pub fn new(config: &TunnelConfig, pool: &Pool) -> Result<Self, EndReason> {
        let writer_config = Config {
            pool_share: config.pool_share,
            stream_high_watermark: config.stream_buffer,
            conn_high_watermark: config.stream_buffer,
            max_header_table_size: HEADER_TABLE_SIZE as usize,
            ..Config::default()
        };
        let mut conn = Connection::new(writer_config, pool);
        conn.write_preface(&[
            (setting::HEADER_TABLE_SIZE, HEADER_TABLE_SIZE),
            (setting::ENABLE_PUSH, 0),
            (setting::INITIAL_WINDOW_SIZE, config.recv_window),
            (setting::MAX_FRAME_SIZE, MAX_FRAME_SIZE),
            (setting::MAX_HEADER_LIST_SIZE, MAX_HEADER_BLOCK as u32),
        ])?;
        if let Some(increment) = config.recv_window.checked_sub(INITIAL_CONN_WINDOW).filter(|i| *i > 0) {
            conn.window_update(0, increment)?;
        }
        let request = [
            HeaderField { name: b":method", value: b"CONNECT", sensitive: false },
            HeaderField { name: b":authority", value: config.authority.as_bytes(), sensitive: false },
        ];
        conn.open_stream(STREAM, &request, StreamHints::default(), false)?;
        let mut decoder = Decoder::new();
        // Until the upstream has seen our SETTINGS it may still index within
        // the RFC's 4096 bytes, which the decoder then follows; after, it
        // may not grow the table past ours.
        decoder.set_max_allowed_table_size(HEADER_TABLE_SIZE as usize);
        Ok(Self {
            conn,
            pool: pool.clone(),
            reader: FrameReader::new(pool, MAX_FRAME_SIZE as usize),
            decoder,
            block: None,
            state: State::Connecting,
            inbox: Inbox::default(),
            hold_bytes: config.hold_bytes,
            client_done: false,
            finished: false,
            recv_window: config.recv_window,
            unacked: 0,
            counts: FrameCounts::default(),
        })
    }

    /// Whether the upstream accepted the tunnel (2xx) and it has not ended.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether `len` more client bytes may be taken now, all of them (the
    /// host can only hand over its buffer whole): when nothing is held, any
    /// amount (the host's buffer limit bounds it); else as long as the held
    /// bytes stay within `hold_bytes`. Otherwise the client waits in the
    /// host's buffer, which pauses it.
    pub fn can_take(&self, len: usize) -> bool {
        self.state != State::Ended && (self.inbox.is_empty() || self.inbox.len() + len <= self.hold_bytes)
    }

    /// Whether frames must go out now even if the host's buffer holds
    /// client bytes beyond `hold_bytes` (which then have to be taken): queued
    /// frames, or (once open) held bytes that a window lets out.
    pub fn must_write(&self) -> bool {
        let stats = self.conn.stats();
        let window_open = self.state == State::Open
            && stats.conn_window > 0
            && self.conn.stream_window(STREAM).is_some_and(|w| w > 0);
        stats.queued_bytes > 0 || (window_open && (stats.pending_bytes > 0 || !self.inbox.is_empty()))
    }

    /// Takes client bytes: once the tunnel is open and nothing is held, DATA
    /// for as much as the windows allow is framed straight into `wire` and
    /// the writer keeps what fits under its watermark; the rest is held.
    pub fn take_client(&mut self, data: &[u8], wire: &mut Vec<u8>) -> Result<(), EndReason> {
        let mut rest = data;
        if self.state == State::Open && self.inbox.is_empty() {
            self.conn.drain(usize::MAX, wire)?;
            match self.conn.send_and_drain(STREAM, data, wire) {
                Ok(accepted) => rest = &data[accepted..],
                Err(WriterError::WouldBlock { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        let limit = self.hold_bytes.saturating_mul(2);
        if self.inbox.len() + rest.len() > limit && !rest.is_empty() {
            return Err(EndReason::HoldExceeded { held: self.inbox.len() + rest.len(), limit });
        }
        self.inbox.push(&self.pool, rest)?;
        Ok(())
    }

    /// The client sent its last byte: END_STREAM follows the bytes it sent.
    pub fn client_finished(&mut self) {
        self.client_done = true;
    }

    /// Moves held bytes into the writer as far as it takes them, then
    /// appends every frame that can go now to `wire`.
    pub fn flush(&mut self, wire: &mut Vec<u8>) -> Result<(), EndReason> {
        if self.state == State::Open {
            while !self.inbox.is_empty() {
                match self.conn.send(STREAM, self.inbox.front()) {
                    Ok(accepted) => self.inbox.consume(&self.pool, accepted),
                    Err(WriterError::WouldBlock { .. }) => break,
                    Err(error) => return Err(error.into()),
                }
            }
            if self.client_done && !self.finished && self.inbox.is_empty() {
                self.conn.finish(STREAM, None)?;
                self.finished = true;
            }
        }
        self.conn.drain(usize::MAX, wire)?;
        Ok(())
    }

    /// Whether everything the client sent, and its END_STREAM, has been
    /// handed out.
    pub fn settled(&self) -> bool {
        let stats = self.conn.stats();
        self.finished && stats.pending_bytes == 0 && stats.queued_bytes == 0
    }

    /// The frame counts since the last call (and resets them).
    pub fn take_counts(&mut self) -> FrameCounts {
        std::mem::take(&mut self.counts)
    }

    /// Client bytes held in the VM (the writer's pending bytes included).
    pub fn held_bytes(&self) -> usize {
        self.inbox.len() + self.conn.stream_pending(STREAM) + self.reader.held_bytes()
    }

    /// Handles bytes from the upstream: appends DATA payloads for the client
    /// to `to_client` and queues what the frames call for (SETTINGS ACK,
    /// PING ACK, WINDOW_UPDATE). An `Err` ends the tunnel; `to_client` still
    /// holds the payloads that came before, for the client.
    pub fn on_upstream(&mut self, bytes: &[u8], to_client: &mut Vec<u8>) -> Result<(), EndReason> {
        if self.state == State::Ended {
            return Ok(());
        }
        let mut reader = std::mem::replace(&mut self.reader, FrameReader::new(&self.pool, 0));
        let result = reader.feed(bytes, |frame| self.on_frame(frame, to_client));
        self.reader = reader;
        match result {
            Ok(()) => Ok(()),
            Err(FeedError::Frame(error)) => Err(error.into()),
            Err(FeedError::Pool(error)) => Err(error.into()),
            Err(FeedError::Handler(reason)) => Err(reason),
        }
    }

    /// Queues the frames that end the connection: RST_STREAM (CANCEL) while
    /// our side of the stream is open and the upstream did not end it, then
    /// GOAWAY with the reason's error code. Best effort: memory may refuse.
    pub fn end(&mut self, reason: &EndReason) {
        if self.state == State::Ended {
            return;
        }
        self.state = State::Ended;
        // The writer knows whether the stream is still open on either side
        // (the upstream's END_STREAM, RST_STREAM and refusal were applied).
        if self.conn.stream_state(STREAM) != StreamState::Closed {
            let _ = self.conn.reset(STREAM, error_code::CANCEL);
        }
        let _ = self.conn.goaway(0, reason.code(), reason.kind().as_bytes());
        self.inbox.release(&self.pool);
    }

    fn on_frame(&mut self, frame: Frame<'_>, to_client: &mut Vec<u8>) -> Result<(), EndReason> {
        match frame {
            Frame::Data { stream, data, flow_len, end_stream } => {
                self.on_data(stream, data, flow_len, end_stream, to_client)
            }
            Frame::Headers { stream, fragment, end_stream, end_headers } => {
                if stream != STREAM {
                    return Err(EndReason::Protocol("HEADERS on a stream we did not open"));
                }
                if end_headers {
                    return self.on_header_block(fragment, end_stream);
                }
                let mut fragments = self.pool.lease(MAX_HEADER_BLOCK)?;
                fragments.append(fragment);
                self.block = Some(Block { fragments, end_stream });
                Ok(())
            }
            Frame::Continuation { fragment, end_headers, .. } => {
                let Some(mut block) = self.block.take() else {
                    return Err(EndReason::Protocol("CONTINUATION without HEADERS"));
                };
                if block.fragments.append(fragment) < fragment.len() {
                    self.pool.release(block.fragments);
                    return Err(EndReason::HeaderBlockTooLarge { limit: MAX_HEADER_BLOCK });
                }
                if !end_headers {
                    self.block = Some(block);
                    return Ok(());
                }
                let result = self.on_header_block_buf(&block);
                self.pool.release(block.fragments);
                result
            }
            Frame::RstStream { stream, code } => {
                self.conn.apply_peer_reset(stream).map_err(EndReason::PeerState)?;
                Err(EndReason::UpstreamReset { code })
            }
            Frame::SettingsAck | Frame::Ignored => Ok(()),
            Frame::Settings { pairs } => {
                let mut parsed = [(0u16, 0u32); 16];
                let mut count = 0;
                for pair in settings_pairs(pairs) {
                    // Unknown ids must be ignored; the writer ignores them too,
                    // so only the first 16 known ones need to reach it.
                    if count < parsed.len() && (1..=9).contains(&pair.0) {
                        parsed[count] = pair;
                        count += 1;
                    }
                }
                self.conn.apply_peer_settings(&parsed[..count]).map_err(EndReason::PeerState)?;
                self.conn.ack_settings()?;
                Ok(())
            }
            Frame::Ping { data, ack: false } => {
                self.conn.ping(data, true)?;
                Ok(())
            }
            Frame::Ping { ack: true, .. } => Ok(()),
            Frame::GoAway { last_stream, code, debug } => {
                // Our one stream is then either refused (above `last_stream`,
                // dropped by the writer) or lets the tunnel end here all the same.
                let mut refused = Vec::new();
                self.conn.apply_peer_goaway(last_stream, &mut refused).map_err(EndReason::PeerState)?;
                Err(EndReason::GoAway { code, last_stream, debug: String::from_utf8_lossy(debug).into_owned() })
            }
            Frame::WindowUpdate { stream, increment } => {
                self.counts.window_updates_received += 1;
                self.conn.apply_window_update(stream, increment).map_err(EndReason::PeerState)
            }
        }
    }

    fn on_data(
        &mut self,
        stream: u32,
        data: &[u8],
        flow_len: usize,
        end_stream: bool,
        to_client: &mut Vec<u8>,
    ) -> Result<(), EndReason> {
        if stream != STREAM {
            return Err(EndReason::Protocol("DATA on a stream we did not open"));
        }
        if self.state != State::Open {
            return Err(EndReason::Protocol("DATA before a 2xx response"));
        }
        to_client.try_reserve(data.len()).map_err(|_| PoolError::OutOfMemory { requested: data.len() })?;
        to_client.extend_from_slice(data);
        // At most MAX_FRAME_SIZE (the reader's check), so it fits in u32.
        let len = flow_len as u32;
        self.conn.apply_peer_data(STREAM, len).map_err(EndReason::PeerState)?;
        if end_stream {
            self.conn.apply_peer_end_stream(STREAM).map_err(EndReason::PeerState)?;
            return Err(EndReason::UpstreamEnded);
        }
        // The payload is on its way to the client (Envoy stops reading the
        // upstream while the client is slow, so no more DATA comes and no
        // more is granted): grant it again once half a window is used, for
        // the stream and the connection alike. A peer cannot overrun the
        // window then: at least half of it (32 KiB or more) is always
        // granted ahead, and one frame carries at most 16 KiB.
        self.unacked += len;
        if self.unacked >= self.recv_window / 2 {
            self.conn.window_update(0, self.unacked)?;
            self.conn.window_update(STREAM, self.unacked)?;
            self.counts.window_updates_sent += 2;
            self.unacked = 0;
        }
        Ok(())
    }

    fn on_header_block_buf(&mut self, block: &Block) -> Result<(), EndReason> {
        self.on_header_block(block.fragments.as_slice(), block.end_stream)
    }

    /// A whole response header block: the final response opens or refuses
    /// the tunnel; informational ones are skipped; one after the response
    /// is trailers, which must end the stream.
    fn on_header_block(&mut self, block: &[u8], end_stream: bool) -> Result<(), EndReason> {
        let mut status = None;
        let mut first = true;
        let mut status_ok = true;
        // Every block goes through the decoder: its table must follow the upstream's.
        self.decoder.decode_with_cb(block, |name: Cow<'_, [u8]>, value: Cow<'_, [u8]>| {
            if first && &*name == b":status" {
                status = parse_status(&value);
                status_ok = status.is_some();
            } else if name.first() == Some(&b':') {
                status_ok = false;
            }
            first = false;
        })?;
        if self.state != State::Ended {
            self.conn.apply_peer_headers(STREAM, end_stream).map_err(EndReason::PeerState)?;
        }
        match self.state {
            State::Connecting => {
                let Some(status) = status.filter(|_| status_ok) else {
                    return Err(EndReason::Protocol("response without a valid :status first"));
                };
                match status {
                    100..=199 if !end_stream => Ok(()),
                    200..=299 if end_stream => {
                        self.state = State::Open;
                        Err(EndReason::UpstreamEnded)
                    }
                    200..=299 => {
                        self.state = State::Open;
                        Ok(())
                    }
                    _ => Err(EndReason::Refused { status }),
                }
            }
            State::Open if end_stream => Err(EndReason::UpstreamEnded),
            State::Open => Err(EndReason::Protocol("a second header block without END_STREAM")),
            State::Ended => Ok(()),
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.inbox.release(&self.pool);
        if let Some(block) = self.block.take() {
            self.pool.release(block.fragments);
        }
    }
}

/// A three-digit status code.
fn parse_status(value: &[u8]) -> Option<u16> {
    match value {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
