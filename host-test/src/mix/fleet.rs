//! `fleet`: the seed at its own scale. A proxy keeps many connections to
//! one gRPC backend; each carries long-lived gRPC streams that chat small
//! messages, and every cycle a different set of connections also carries
//! one large upload each, all at once. Every connection of a run lives in
//! one component instance (shared hosting) or in one instance each.
//!
//! The backend's settings are a gRPC server's: SETTINGS_MAX_FRAME_SIZE
//! 16,384 (the default, and grpc-go's). With it, Go's formula gives every
//! stream, gRPC or upload, a 16 KiB scratch buffer, so `go7` and `single`
//! hold the same; where uploads' peers allow 1 MiB frames (`seed`), `single`
//! hands their 512 KiB buffers to gRPC streams.

use std::time::Instant;

use super::driver::{DRAIN_PIECE, Failure, Mark, PeerSettings, PoolBytes, Run, Sample, Trace};
use super::scenario::{Mix, Sizes};
use super::{Hosting, SAMPLE_EVERY, Writers};
use crate::writer::{Policy, WriteError, Writer};

/// What the backend advertises: 16 KiB frames, otherwise as [`PeerSettings::UPSTREAM`].
pub const PEER: PeerSettings = PeerSettings { max_frame_size: 16_384, ..PeerSettings::UPSTREAM };

/// Seed of connection `i`'s mix (xored with `i`).
const SEED: u64 = 0xf1ee_7000;

/// One connection of the fleet: its run, its proxy side, its gRPC streams.
struct Member<'w> {
    run: Run<'w>,
    mix: Mix,
    grpc: Vec<u32>,
}

/// An upload in flight: which member carries it, its stream, bytes left.
struct Upload {
    member: usize,
    stream: u32,
    left: u64,
    done: bool,
}

/// What the fleet tracks besides each connection's own run.
struct Fleet<'a> {
    writers: &'a Writers,
    hosting: Hosting,
    started: Instant,
    peak_live_bytes: usize,
    peak_open_streams: usize,
    marks: Vec<Mark>,
}

/// Plays `fleet` at `sizes` for `policy` under `hosting`; the trace covers
/// every connection (bytes and frames summed, linear memory of every
/// instance together, live bytes summed across connections at once).
pub fn play(policy: Policy, hosting: Hosting, sizes: &Sizes) -> anyhow::Result<Trace> {
    let mut writers = Writers::new(policy, hosting)?;
    let count = sizes.fleet_connections as usize;
    let mut boxes: Vec<Box<dyn Writer>> = Vec::with_capacity(count);
    for _ in 0..count {
        boxes.push(writers.connect()?);
    }
    let mut members: Vec<Member<'_>> = boxes
        .iter_mut()
        .enumerate()
        .map(|(i, writer)| Member {
            run: Run::new(writer.as_mut(), PEER, SAMPLE_EVERY),
            mix: Mix::new(SEED ^ i as u64),
            grpc: Vec::new(),
        })
        .collect();
    let mut fleet = Fleet {
        writers: &writers,
        hosting,
        started: Instant::now(),
        peak_live_bytes: 0,
        peak_open_streams: 0,
        marks: Vec::new(),
    };
    let result = fleet.drive(&mut members, sizes);
    let pool = fleet.pool_bytes(&mut members).unwrap_or_default();
    let memory = fleet.writers.linear_memory();
    let mut trace = Trace {
        connections: count,
        idle_pool_bytes: pool.idle,
        streams: 0,
        frames: 0,
        wire_bytes: 0,
        peak_live_bytes: fleet.peak_live_bytes,
        peak_pool_bytes: pool.peak,
        peak_linear_memory: memory.map(|m| m.peak),
        final_linear_memory: memory.map(|m| m.current),
        memory_refused: memory.is_some_and(|m| m.refused > 0),
        peak_open_streams: fleet.peak_open_streams,
        seconds: fleet.started.elapsed().as_secs_f64(),
        error: result.err(),
        samples: fleet.marks.iter().map(|mark| mark.sample).collect(),
        marks: fleet.marks,
    };
    for member in members {
        let one = member.run.finish_run(Ok(()));
        trace.streams += one.streams;
        trace.frames += one.frames;
        trace.wire_bytes += one.wire_bytes;
        trace.peak_live_bytes = trace.peak_live_bytes.max(one.peak_live_bytes);
        if trace.error.is_none() {
            trace.error = one.error;
        }
    }
    Ok(trace)
}

impl Fleet<'_> {
    /// Opens every connection's streams, runs the cycles, ends every stream
    /// and checks every body.
    fn drive(&mut self, members: &mut [Member<'_>], sizes: &Sizes) -> Result<(), Failure> {
        for member in members.iter_mut() {
            member.run.connect()?;
            member.grpc = member.mix.open_grpc(&mut member.run, sizes.fleet_streams)?;
        }
        self.mark(members, "opened")?;
        let count = members.len();
        for cycle in 0..sizes.fleet_cycles as usize {
            for Member { run, mix, grpc } in members.iter_mut() {
                mix.chatty_rounds(run, grpc, 1)?;
            }
            // A different set of connections each cycle, rotating.
            let carriers = (0..(sizes.fleet_uploads as usize).min(count))
                .map(|i| (cycle * sizes.fleet_uploads as usize + i) % count);
            self.burst(members, carriers.collect(), sizes.upload_bytes)?;
            self.mark(members, format!("cycle {}", cycle + 1))?;
        }
        for Member { run, mix, grpc } in members.iter_mut() {
            mix.finish_all(run, grpc)?;
            run.verify()?;
        }
        Ok(())
    }

    /// One upload of `len` bytes on each of `carriers`, all at once: each
    /// round every upload offers a piece, the fleet's live bytes are summed,
    /// and every carrier's socket takes a piece.
    fn burst(&mut self, members: &mut [Member<'_>], carriers: Vec<usize>, len: u64) -> Result<(), Failure> {
        let mut uploads = Vec::with_capacity(carriers.len());
        for member in carriers {
            let Member { run, mix, .. } = &mut members[member];
            uploads.push(Upload { member, stream: mix.open_upload(run, len)?, left: len, done: false });
        }
        let open = members.iter().map(|member| member.run.open_streams()).sum();
        self.peak_open_streams = self.peak_open_streams.max(open);
        while uploads.iter().any(|upload| !upload.done) {
            for upload in uploads.iter_mut().filter(|upload| !upload.done) {
                let Member { run, mix, .. } = &mut members[upload.member];
                upload.done = mix.upload_step(run, upload.stream, &mut upload.left)?;
            }
            let live = live_bytes(members)?;
            self.peak_live_bytes = self.peak_live_bytes.max(live);
            for upload in &uploads {
                members[upload.member].run.drain(DRAIN_PIECE)?;
            }
        }
        for upload in &uploads {
            members[upload.member].run.settle()?;
        }
        Ok(())
    }

    /// Records a named point: linear memory of every instance, pool bytes,
    /// live bytes and wire bytes of every connection.
    fn mark(&mut self, members: &mut [Member<'_>], label: impl Into<String>) -> Result<(), Failure> {
        let live = live_bytes(members)?;
        self.peak_live_bytes = self.peak_live_bytes.max(live);
        let pool = self.pool_bytes(members).map_err(|error| Failure::Writer { call: "pool_stats", error })?;
        let sample = Sample {
            calls: 0,
            seconds: self.started.elapsed().as_secs_f64(),
            wire_bytes: members.iter_mut().map(|member| member.run.peer().wire_bytes()).sum(),
            linear_memory: self.writers.linear_memory().map(|m| m.current),
            live_bytes: live,
            pool_bytes: pool.held,
            idle_pool_bytes: pool.idle,
            open_streams: members.iter().map(|member| member.run.open_streams()).sum(),
        };
        self.peak_open_streams = self.peak_open_streams.max(sample.open_streams);
        self.marks.push(Mark { label: label.into(), sample });
        Ok(())
    }

    /// Pool bytes of the run: the one shared pool (and Go model), or the
    /// sum over every instance's own.
    fn pool_bytes(&self, members: &mut [Member<'_>]) -> Result<PoolBytes, WriteError> {
        let pools = if self.hosting == Hosting::PerConnection { members.len() } else { members.len().min(1) };
        let mut total = PoolBytes::default();
        for member in &mut members[..pools] {
            let one = PoolBytes::of(member.run.writer())?;
            total.held += one.held;
            total.idle += one.idle;
            total.peak += one.peak;
        }
        Ok(total)
    }
}

/// Live bytes of every connection together, now.
fn live_bytes(members: &mut [Member<'_>]) -> Result<usize, Failure> {
    let mut live = 0;
    for member in members {
        live += member.run.writer().stats().map_err(|error| Failure::Writer { call: "stats", error })?.live_bytes;
    }
    Ok(live)
}
