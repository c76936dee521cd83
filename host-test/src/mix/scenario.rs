//! The named stream mixes: what a proxy's connection to one upstream carries.

use std::collections::{HashMap, VecDeque};

use h2fw::hpack::{HeaderField, HeaderList};

use super::driver::{CANCEL, DRAIN_PIECE, Failure, PeerSettings, Run};
use super::rng::Rng;

/// A named stream mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Many long-lived gRPC streams, one small message each, then idle.
    GrpcIdle,
    /// gRPC streams exchanging small messages over many rounds.
    GrpcChatty,
    /// Concurrent large uploads with a declared Content-Length.
    UploadBurst,
    /// The seed story: chatty gRPC and upload bursts alternating on one connection.
    Seed,
    /// Heavy-tailed sizes, flow-control stalls, resets, odd socket writes.
    Adversarial,
}

impl Scenario {
    /// Every scenario, in table order.
    pub const ALL: [Scenario; 5] =
        [Scenario::GrpcIdle, Scenario::GrpcChatty, Scenario::UploadBurst, Scenario::Seed, Scenario::Adversarial];

    /// The scenario's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::GrpcIdle => "grpc-idle",
            Scenario::GrpcChatty => "grpc-chatty",
            Scenario::UploadBurst => "upload-burst",
            Scenario::Seed => "seed",
            Scenario::Adversarial => "adversarial",
        }
    }

    /// What the peer advertises in this scenario.
    pub fn peer_settings(self) -> PeerSettings {
        match self {
            // Small windows make the peer's withheld updates bite.
            Scenario::Adversarial => {
                PeerSettings { initial_window: 65_535, connection_window: 1 << 20, ..PeerSettings::UPSTREAM }
            }
            _ => PeerSettings::UPSTREAM,
        }
    }

    /// Plays the mix on `run` (already connected), ending with everything
    /// sent drained.
    pub fn play(self, run: &mut Run<'_>, sizes: &Sizes) -> Result<(), Failure> {
        let mut mix = Mix::new(self as u64);
        match self {
            Scenario::GrpcIdle => mix.grpc_idle(run, sizes),
            Scenario::GrpcChatty => {
                let streams = mix.open_grpc(run, sizes.chatty_streams)?;
                mix.chatty_rounds(run, &streams, sizes.chatty_rounds)?;
                mix.finish_all(run, &streams)
            }
            Scenario::UploadBurst => mix.upload_burst(run, sizes.uploads, sizes.upload_bytes),
            Scenario::Seed => mix.seed(run, sizes),
            Scenario::Adversarial => mix.adversarial(run, sizes),
        }
    }
}

/// How big each mix is. [`Sizes::FULL`] is the named scenarios as specified;
/// tests may run smaller ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizes {
    /// `grpc-idle`: streams opened.
    pub idle_streams: u32,
    /// `grpc-idle`: keepalive PINGs while the streams idle.
    pub idle_keepalives: u32,
    /// `grpc-chatty` and `seed`: gRPC streams.
    pub chatty_streams: u32,
    /// `grpc-chatty`: rounds of one message per stream.
    pub chatty_rounds: u32,
    /// `upload-burst` and `seed`: concurrent uploads per burst.
    pub uploads: u32,
    /// `upload-burst` and `seed`: body bytes per upload.
    pub upload_bytes: u64,
    /// `seed`: chatty-then-burst cycles.
    pub seed_cycles: u32,
    /// `seed`: chatty rounds per cycle.
    pub seed_chatty_rounds: u32,
    /// `adversarial`: streams over the run.
    pub adversarial_streams: u32,
    /// `adversarial`: streams open at once, at most.
    pub adversarial_concurrency: usize,
    /// `fleet`: connections.
    pub fleet_connections: u32,
    /// `fleet`: long-lived gRPC streams per connection.
    pub fleet_streams: u32,
    /// `fleet`: chatty-then-burst cycles.
    pub fleet_cycles: u32,
    /// `fleet`: connections carrying one upload each in a burst.
    pub fleet_uploads: u32,
}

impl Sizes {
    /// The named scenarios at their specified size.
    pub const FULL: Sizes = Sizes {
        idle_streams: 100_000,
        idle_keepalives: 1_000,
        chatty_streams: 10_000,
        chatty_rounds: 40,
        uploads: 64,
        upload_bytes: 8 << 20,
        seed_cycles: 8,
        seed_chatty_rounds: 5,
        adversarial_streams: 2_000,
        adversarial_concurrency: 200,
        fleet_connections: 1_000,
        fleet_streams: 1_000,
        fleet_cycles: 4,
        fleet_uploads: 64,
    };

    /// Every count and size scaled by `factor` (at least one of each, and at
    /// least three seed cycles so that cycles after the second exist).
    pub fn scaled(factor: f64) -> Sizes {
        let f = FULL_SCALE_FLOOR.max(factor);
        let scale = |n: u32| ((f64::from(n) * f).round() as u32).max(1);
        let full = Sizes::FULL;
        Sizes {
            idle_streams: scale(full.idle_streams),
            idle_keepalives: scale(full.idle_keepalives),
            chatty_streams: scale(full.chatty_streams),
            chatty_rounds: scale(full.chatty_rounds),
            uploads: scale(full.uploads),
            upload_bytes: ((full.upload_bytes as f64 * f) as u64).max(1),
            seed_cycles: scale(full.seed_cycles).max(3),
            seed_chatty_rounds: scale(full.seed_chatty_rounds),
            adversarial_streams: scale(full.adversarial_streams),
            adversarial_concurrency: (full.adversarial_concurrency as f64 * f).round().max(1.0) as usize,
            fleet_connections: scale(full.fleet_connections),
            fleet_streams: scale(full.fleet_streams),
            fleet_cycles: scale(full.fleet_cycles).max(3),
            fleet_uploads: scale(full.fleet_uploads),
        }
    }
}

/// Smallest factor [`Sizes::scaled`] applies.
const FULL_SCALE_FLOOR: f64 = 1e-4;

/// Seed of every mix (xored with the scenario), so runs repeat exactly.
const SEED: u64 = 0x6832_6677_6d69_7800;

/// Messages the proxy sends between two socket writes in the gRPC phases.
const MESSAGES_PER_DRAIN: u32 = 64;

/// How much the proxy reads from an upload's client at a time.
const READ_PIECE: usize = 64 << 10;

/// Request headers of a unary-or-streaming gRPC call.
fn grpc_headers() -> HeaderList {
    let mut headers = HeaderList::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", "backend.internal:443"),
        (":path", "/pkg.Service/Method"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("grpc-accept-encoding", "identity,gzip"),
        ("user-agent", "grpc-go/1.64.0"),
    ] {
        headers.push(name.as_bytes(), value.as_bytes(), false);
    }
    headers
}

/// Request headers of an upload of `len` bytes.
fn upload_headers(len: u64) -> HeaderList {
    let mut headers = HeaderList::new();
    let len = len.to_string();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", "storage.internal:443"),
        (":path", "/v1/objects/upload"),
        ("content-type", "application/octet-stream"),
        ("content-length", len.as_str()),
    ] {
        headers.push(name.as_bytes(), value.as_bytes(), false);
    }
    headers.push(b"authorization", b"Bearer mix-token", true);
    headers
}

/// Body bytes the proxy holds per stream until `send` takes them, in order.
#[derive(Debug, Default)]
struct Held {
    order: VecDeque<u32>,
    bytes: HashMap<u32, (Vec<u8>, usize)>,
}

impl Held {
    /// Sends `data` on `stream` right away when nothing is held for it,
    /// holding what the writer does not take.
    fn send_or_hold(&mut self, run: &mut Run<'_>, stream: u32, data: &[u8]) -> Result<(), Failure> {
        let taken = if self.holds(stream) { 0 } else { run.send(stream, data)? };
        if let Some(rest) = data.get(taken..).filter(|rest| !rest.is_empty()) {
            self.hold(stream, rest);
        }
        Ok(())
    }

    /// Appends `data` to what is held for `stream`.
    fn hold(&mut self, stream: u32, data: &[u8]) {
        let (bytes, _) = self.bytes.entry(stream).or_insert_with(|| {
            self.order.push_back(stream);
            (Vec::new(), 0)
        });
        bytes.extend_from_slice(data);
    }

    fn holds(&self, stream: u32) -> bool {
        self.bytes.contains_key(&stream)
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Forgets what is held for `stream` (it was reset).
    fn forget(&mut self, stream: u32) {
        self.bytes.remove(&stream);
        self.order.retain(|&s| s != stream);
    }

    /// Offers each held buffer once, round robin; returns the bytes taken.
    fn offer(&mut self, run: &mut Run<'_>) -> Result<usize, Failure> {
        let mut total = 0;
        for _ in 0..self.order.len() {
            let Some(stream) = self.order.pop_front() else { break };
            let Some((bytes, offset)) = self.bytes.get_mut(&stream) else { continue };
            let taken = run.send(stream, bytes.get(*offset..).unwrap_or_default())?;
            *offset += taken;
            total += taken;
            if *offset >= bytes.len() {
                self.bytes.remove(&stream);
            } else {
                self.order.push_back(stream);
            }
        }
        Ok(total)
    }

    /// Offers and drains until nothing is held.
    fn flush(&mut self, run: &mut Run<'_>) -> Result<(), Failure> {
        while !self.is_empty() {
            self.offer(run)?;
            run.drain(DRAIN_PIECE)?;
        }
        Ok(())
    }
}

/// Fills `buf` with a gRPC length-prefixed message (uncompressed) whose
/// payload is `len` random bytes.
fn grpc_message(rng: &mut Rng, buf: &mut Vec<u8>, len: usize) {
    buf.clear();
    buf.push(0);
    buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    buf.resize(5 + len, 0);
    rng.fill(&mut buf[5..]);
}

/// Fills `buf` with `len` random body bytes.
fn body_piece(rng: &mut Rng, buf: &mut Vec<u8>, len: usize) {
    buf.resize(len, 0);
    rng.fill(buf);
}

/// The proxy's side of a mix: its random source and read buffers.
pub(super) struct Mix {
    rng: Rng,
    held: Held,
    scratch: Vec<u8>,
}

impl Mix {
    /// A mix whose random choices come from `seed`.
    pub(super) fn new(seed: u64) -> Self {
        Mix { rng: Rng::new(SEED ^ seed), held: Held::default(), scratch: Vec::new() }
    }

    /// Sends one gRPC message with a payload of `len` bytes on `stream`.
    fn send_message(&mut self, run: &mut Run<'_>, stream: u32, len: usize) -> Result<(), Failure> {
        grpc_message(&mut self.rng, &mut self.scratch, len);
        self.held.send_or_hold(run, stream, &self.scratch)
    }

    /// Sends the `i`-th message of a round; the socket takes a piece every
    /// few messages, as a proxy's event loop would.
    fn paced_message(&mut self, run: &mut Run<'_>, stream: u32, len: usize, i: u32) -> Result<(), Failure> {
        self.send_message(run, stream, len)?;
        if i.is_multiple_of(MESSAGES_PER_DRAIN) {
            self.held.offer(run)?;
            run.drain(DRAIN_PIECE)?;
        }
        Ok(())
    }

    /// Opens `count` gRPC streams (HEADERS only), draining as a socket would.
    pub(super) fn open_grpc(&mut self, run: &mut Run<'_>, count: u32) -> Result<Vec<u32>, Failure> {
        let headers = grpc_headers();
        let fields = headers.fields();
        let mut streams = Vec::with_capacity(count as usize);
        for i in 1..=count {
            streams.push(run.open(&fields, None)?);
            if i.is_multiple_of(MESSAGES_PER_DRAIN) {
                run.drain(DRAIN_PIECE)?;
            }
        }
        run.settle()?;
        Ok(streams)
    }

    /// Half-closes `streams` (END_STREAM) once what they hold is sent.
    pub(super) fn finish_all(&mut self, run: &mut Run<'_>, streams: &[u32]) -> Result<(), Failure> {
        self.held.flush(run)?;
        for (i, &stream) in (1u32..).zip(streams) {
            run.finish(stream, None)?;
            if i.is_multiple_of(MESSAGES_PER_DRAIN) {
                run.drain(DRAIN_PIECE)?;
            }
        }
        run.settle()
    }

    /// `grpc-idle`: each stream opens and sends one message of 50–300 bytes;
    /// then the streams stay open while keepalive PINGs go by.
    fn grpc_idle(&mut self, run: &mut Run<'_>, sizes: &Sizes) -> Result<(), Failure> {
        let headers = grpc_headers();
        let fields = headers.fields();
        for i in 1..=sizes.idle_streams {
            let stream = run.open(&fields, None)?;
            let len = self.rng.range(50, 300);
            self.paced_message(run, stream, len, i)?;
        }
        self.held.flush(run)?;
        run.settle()?;
        run.mark("opened")?;
        for i in 0..sizes.idle_keepalives {
            run.ping(u64::from(i).to_be_bytes())?;
            run.drain(DRAIN_PIECE)?;
        }
        run.mark("idle")
    }

    /// Rounds in which every stream sends one message of 50–500 bytes; the
    /// socket takes a piece every few messages and the peer replenishes the
    /// windows as it reads.
    pub(super) fn chatty_rounds(&mut self, run: &mut Run<'_>, streams: &[u32], rounds: u32) -> Result<(), Failure> {
        for _ in 0..rounds {
            for (i, &stream) in (1u32..).zip(streams) {
                let len = self.rng.range(50, 500);
                self.paced_message(run, stream, len, i)?;
            }
            self.held.flush(run)?;
            run.settle()?;
        }
        Ok(())
    }

    /// `count` uploads of `len` bytes each, with Content-Length, written as a
    /// proxy does: each upload's client is read `READ_PIECE` at a time, the
    /// writer takes as much as it accepts, then the socket takes a piece.
    fn upload_burst(&mut self, run: &mut Run<'_>, count: u32, len: u64) -> Result<(), Failure> {
        let headers = upload_headers(len);
        let fields = headers.fields();
        let mut uploads = Vec::with_capacity(count as usize);
        for _ in 0..count {
            uploads.push((run.open(&fields, Some(len))?, len));
        }
        while !uploads.is_empty() {
            loop {
                for (stream, left) in &mut uploads {
                    if *left > 0 && !self.held.holds(*stream) {
                        let n = READ_PIECE.min(usize::try_from(*left).unwrap_or(READ_PIECE));
                        body_piece(&mut self.rng, &mut self.scratch, n);
                        self.held.hold(*stream, &self.scratch);
                        *left -= n as u64;
                    }
                }
                if self.held.offer(run)? == 0 {
                    break;
                }
            }
            let mut i = 0;
            while let Some(&(stream, left)) = uploads.get(i) {
                if left == 0 && !self.held.holds(stream) {
                    run.finish(stream, None)?;
                    uploads.swap_remove(i);
                } else {
                    i += 1;
                }
            }
            run.drain(DRAIN_PIECE)?;
        }
        run.settle()
    }

    /// Opens an upload of `len` bytes (with Content-Length); returns its stream.
    pub(super) fn open_upload(&mut self, run: &mut Run<'_>, len: u64) -> Result<u32, Failure> {
        let headers = upload_headers(len);
        run.open(&headers.fields(), Some(len))
    }

    /// One step of an upload with `left` bytes still to read from its client:
    /// reads a piece when nothing is held, offers what is held, and ends the
    /// stream once everything went in. Returns whether the upload is done.
    pub(super) fn upload_step(&mut self, run: &mut Run<'_>, stream: u32, left: &mut u64) -> Result<bool, Failure> {
        if *left > 0 && !self.held.holds(stream) {
            let n = READ_PIECE.min(usize::try_from(*left).unwrap_or(READ_PIECE));
            body_piece(&mut self.rng, &mut self.scratch, n);
            self.held.hold(stream, &self.scratch);
            *left -= n as u64;
        }
        self.held.offer(run)?;
        if *left == 0 && !self.held.holds(stream) {
            run.finish(stream, None)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// `seed`: gRPC streams that live through every cycle chat, then a burst
    /// of uploads runs to completion; repeated.
    fn seed(&mut self, run: &mut Run<'_>, sizes: &Sizes) -> Result<(), Failure> {
        let grpc = self.open_grpc(run, sizes.chatty_streams)?;
        for cycle in 1..=sizes.seed_cycles {
            self.chatty_rounds(run, &grpc, sizes.seed_chatty_rounds)?;
            self.upload_burst(run, sizes.uploads, sizes.upload_bytes)?;
            run.mark(format!("cycle {cycle}"))?;
        }
        self.finish_all(run, &grpc)
    }

    /// `adversarial`: streams arrive in bursts; gRPC-like ones send a few
    /// messages of Pareto sizes (40 B to 1 MiB), uploads declare a Pareto
    /// Content-Length (16 KiB to 64 MiB) and are read in Pareto pieces; some
    /// end with trailers, some are reset part-way; the peer withholds window
    /// updates for random streams and for the connection; the socket takes
    /// random amounts, down to single bytes.
    fn adversarial(&mut self, run: &mut Run<'_>, sizes: &Sizes) -> Result<(), Failure> {
        let grpc = grpc_headers();
        let grpc_fields = grpc.fields();
        let mut trailers = HeaderList::new();
        trailers.push(b"x-request-checksum", b"crc32=00000000", false);
        let trailer_fields = trailers.fields();
        let mut flows: Vec<Flow> = Vec::new();
        let mut opened = 0;
        while opened < sizes.adversarial_streams || !flows.is_empty() {
            let arrivals = if self.rng.chance(0.3) { self.rng.range(1, 16) } else { 0 };
            for _ in 0..arrivals {
                if opened == sizes.adversarial_streams || flows.len() >= sizes.adversarial_concurrency {
                    break;
                }
                flows.push(open_flow(run, opened, &grpc_fields)?);
                opened += 1;
            }
            for flow in &mut flows {
                if self.held.holds(flow.stream) {
                    continue;
                }
                // Whether a message is ready now is timing (the mix's generator);
                // what each stream sends comes from its own generator, so every
                // policy gets the same bodies whatever its backpressure.
                match &mut flow.body {
                    Body::Messages(left) if *left > 0 && self.rng.chance(0.3) => {
                        *left -= 1;
                        let len = flow.rng.pareto(40, 1.2, 1 << 20);
                        grpc_message(&mut flow.rng, &mut self.scratch, len);
                    }
                    Body::Upload(left) if *left > 0 => {
                        let n = flow.rng.pareto(512, 1.0, 1 << 20).min(usize::try_from(*left).unwrap_or(usize::MAX));
                        *left -= n as u64;
                        body_piece(&mut flow.rng, &mut self.scratch, n);
                    }
                    _ => continue,
                }
                flow.offered += self.scratch.len() as u64;
                self.held.hold(flow.stream, &self.scratch);
            }
            self.held.offer(run)?;
            let mut i = 0;
            while let Some(flow) = flows.get(i) {
                let stream = flow.stream;
                if flow.reset_after.is_some_and(|after| flow.offered >= after) {
                    run.reset(stream, CANCEL)?;
                    self.held.forget(stream);
                } else if flow.body.is_done() && !self.held.holds(stream) {
                    run.finish(stream, flow.trailers.then_some(trailer_fields.as_slice()))?;
                } else {
                    i += 1;
                    continue;
                }
                flows.swap_remove(i);
            }
            let now = run.tick();
            if !flows.is_empty() && self.rng.chance(0.05) {
                let stream = flows[self.rng.below(flows.len() as u64) as usize].stream;
                let until = now + self.rng.range(1, 400) as u64;
                run.peer().stall_stream(stream, until);
            }
            if self.rng.chance(0.003) {
                let until = now + self.rng.range(1, 100) as u64;
                run.peer().stall_connection(until);
            }
            let piece = match self.rng.below(10) {
                0..=6 => DRAIN_PIECE,
                7 | 8 => self.rng.range(1, 4096),
                _ => self.rng.range(1, 16),
            };
            run.drain(piece)?;
        }
        run.peer().release_stalls();
        run.settle()
    }
}

/// Opens adversarial flow number `index`: gRPC-like (60%) or an upload
/// (40%), its shape drawn from a generator of its own.
fn open_flow(run: &mut Run<'_>, index: u32, grpc_fields: &[HeaderField<'_>]) -> Result<Flow, Failure> {
    let mut rng = Rng::new(SEED ^ 0xad5e ^ (u64::from(index) << 20));
    let (stream, body) = if rng.chance(0.6) {
        let stream = run.open(grpc_fields, None)?;
        (stream, Body::Messages(rng.range(1, 30) as u32))
    } else {
        let len = rng.pareto(16 << 10, 0.9, 64 << 20) as u64;
        let headers = upload_headers(len);
        (run.open(&headers.fields(), Some(len))?, Body::Upload(len))
    };
    let reset_after = rng.chance(0.08).then(|| rng.below(64 << 10));
    let trailers = rng.chance(0.1);
    Ok(Flow { stream, body, offered: 0, reset_after, trailers, rng })
}

/// What an adversarial stream still has to send.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// gRPC messages left.
    Messages(u32),
    /// Upload bytes left.
    Upload(u64),
}

impl Body {
    fn is_done(self) -> bool {
        matches!(self, Body::Messages(0) | Body::Upload(0))
    }
}

/// One adversarial stream.
#[derive(Debug)]
struct Flow {
    stream: u32,
    body: Body,
    /// Body bytes handed to the proxy's buffers so far.
    offered: u64,
    /// Reset once this many bytes were offered.
    reset_after: Option<u64>,
    /// End with a trailing HEADERS block instead of END_STREAM on DATA.
    trailers: bool,
    /// Where its sizes and bytes come from.
    rng: Rng,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_one_is_the_named_sizes_and_small_scales_keep_every_part() {
        assert_eq!(Sizes::scaled(1.0), Sizes::FULL);
        let tiny = Sizes::scaled(1e-9);
        assert!(
            tiny.idle_streams >= 1 && tiny.uploads >= 1 && tiny.upload_bytes >= 1 && tiny.adversarial_concurrency >= 1
        );
        assert_eq!(tiny.seed_cycles, 3);
        assert_eq!(Sizes::scaled(0.5).idle_streams, 50_000);
    }
}
