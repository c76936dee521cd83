//! The mixes' own correctness, through the native writer (fast): every
//! scenario, small, under every policy, delivers each stream's body complete
//! and in order (the mix reassembles DATA per stream from the drained bytes
//! and compares length and CRC-32 with what it sent); and that check does
//! fail when a writer corrupts, reorders or truncates a body.

use h2fw::baseline::ScratchStats;
use h2fw::conn::{BatchItem, Connection, HeadersOptions, Stats, StreamHints};
use h2fw::frame::{Frame, Priority};
use h2fw::hpack::HeaderField;
use h2fw::pool::{Pool, PoolStats};
use h2fw_host::mix::{Failure, Hosting, POLICIES, Scenario, Sizes, Writers, fleet, play};
use h2fw_host::writer::{MemoryStats, WriteError, Writer};

/// Small enough for seconds per run (and for the baselines' 512 KiB per
/// stream), big enough that windows, backpressure, resets and stalls happen.
fn small() -> Sizes {
    Sizes {
        idle_streams: 400,
        idle_keepalives: 20,
        chatty_streams: 200,
        chatty_rounds: 4,
        uploads: 8,
        upload_bytes: 3 << 20,
        seed_cycles: 3,
        seed_chatty_rounds: 2,
        adversarial_streams: 400,
        adversarial_concurrency: 60,
        fleet_connections: 6,
        fleet_streams: 30,
        fleet_cycles: 3,
        fleet_uploads: 2,
    }
}

#[test]
fn every_scenario_delivers_every_body_under_every_policy() {
    for scenario in Scenario::ALL {
        for policy in POLICIES {
            let mut writer = Writers::new(policy, Hosting::Native).unwrap().connect().unwrap();
            let trace = play(scenario, &small(), writer.as_mut());
            let name = format!("{}/{}", scenario.name(), policy.name());
            assert!(trace.error.is_none(), "{name}: {}", trace.error.unwrap());
            assert!(trace.streams > 0 && trace.wire_bytes > 0, "{name} did nothing");
        }
    }
}

#[test]
fn the_fleet_delivers_every_body_under_every_policy() {
    for policy in POLICIES {
        let trace = fleet::play(policy, Hosting::Native, &small()).unwrap();
        let name = format!("fleet/{}", policy.name());
        assert!(trace.error.is_none(), "{name}: {}", trace.error.unwrap());
        assert_eq!((trace.connections, trace.peak_open_streams), (6, 6 * 30 + 2), "{name}");
        // 6 × 30 gRPC streams plus 2 uploads in each of 3 cycles.
        assert_eq!(trace.streams, 6 * 30 + 3 * 2, "{name}");
        assert!(trace.wire_bytes > 3 * 2 * (3 << 20), "{name}: every upload went out");
    }
}

/// How a [`Tampering`] writer breaks one body.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Flip one bit of the first byte of the `n`-th send.
    FlipBit(u64),
    /// Hold back the `n`-th send and pass it after the next send on its stream.
    Reorder(u64),
    /// Pass all but the last byte of the `n`-th send, yet report it all taken.
    Truncate(u64),
}

/// A native connection that breaks one body as told while reporting success.
struct Tampering {
    inner: Connection,
    fault: Fault,
    sends: u64,
    held: Option<(u32, Vec<u8>)>,
}

impl Tampering {
    /// Forwards `bytes` whole (the small mix used here never hits backpressure).
    fn pass(&mut self, stream: u32, bytes: &[u8]) -> Result<(), WriteError> {
        let taken = Writer::send(&mut self.inner, stream, bytes)?;
        assert_eq!(taken, bytes.len(), "the tampering test expects no backpressure");
        Ok(())
    }
}

impl Writer for Tampering {
    fn send(&mut self, stream: u32, data: &[u8]) -> Result<usize, WriteError> {
        self.sends += 1;
        if let Some((_, held)) = self.held.take_if(|(held_stream, _)| *held_stream == stream) {
            self.pass(stream, data)?;
            self.pass(stream, &held)?;
            return Ok(data.len());
        }
        match self.fault {
            Fault::FlipBit(n) if n == self.sends => {
                let mut flipped = data.to_vec();
                flipped[0] ^= 1;
                self.pass(stream, &flipped)?;
            }
            Fault::Reorder(n) if n == self.sends => self.held = Some((stream, data.to_vec())),
            Fault::Truncate(n) if n == self.sends => self.pass(stream, &data[..data.len() - 1])?,
            _ => self.pass(stream, data)?,
        }
        Ok(data.len())
    }
    fn send_and_drain(&mut self, stream: u32, data: &[u8], out: &mut Vec<u8>) -> Result<usize, WriteError> {
        let taken = self.send(stream, data)?;
        Writer::drain(&mut self.inner, usize::MAX, out)?;
        Ok(taken)
    }
    fn frame_in_place(&mut self, stream: u32, data: &[u8], out: &mut Vec<u8>) -> Result<usize, WriteError> {
        Writer::frame_in_place(&mut self.inner, stream, data, out)
    }
    fn send_batch(&mut self, items: &[BatchItem], data: &[u8], accepted: &mut Vec<usize>) -> Result<(), WriteError> {
        Writer::send_batch(&mut self.inner, items, data, accepted)
    }
    fn finish(&mut self, stream: u32, trailers: Option<&[HeaderField<'_>]>) -> Result<(), WriteError> {
        if let Some((_, held)) = self.held.take_if(|(held_stream, _)| *held_stream == stream) {
            self.pass(stream, &held)?;
        }
        Writer::finish(&mut self.inner, stream, trailers)
    }
    fn apply_peer_settings(&mut self, settings: &[(u16, u32)]) -> Result<(), WriteError> {
        Writer::apply_peer_settings(&mut self.inner, settings)
    }
    fn apply_window_update(&mut self, stream: u32, increment: u32) -> Result<(), WriteError> {
        Writer::apply_window_update(&mut self.inner, stream, increment)
    }
    fn apply_peer_headers(&mut self, stream: u32, end_stream: bool) -> Result<(), WriteError> {
        Writer::apply_peer_headers(&mut self.inner, stream, end_stream)
    }
    fn apply_peer_end_stream(&mut self, stream: u32) -> Result<(), WriteError> {
        Writer::apply_peer_end_stream(&mut self.inner, stream)
    }
    fn apply_peer_reset(&mut self, stream: u32) -> Result<(), WriteError> {
        Writer::apply_peer_reset(&mut self.inner, stream)
    }
    fn apply_peer_goaway(&mut self, last_stream_id: u32) -> Result<Vec<u32>, WriteError> {
        Writer::apply_peer_goaway(&mut self.inner, last_stream_id)
    }
    fn apply_peer_data(&mut self, stream: u32, len: u32) -> Result<(), WriteError> {
        Writer::apply_peer_data(&mut self.inner, stream, len)
    }
    fn write_preface(&mut self, settings: &[(u16, u32)]) -> Result<(), WriteError> {
        Writer::write_preface(&mut self.inner, settings)
    }
    fn write_settings(&mut self, settings: &[(u16, u32)]) -> Result<(), WriteError> {
        Writer::write_settings(&mut self.inner, settings)
    }
    fn ack_settings(&mut self) -> Result<(), WriteError> {
        Writer::ack_settings(&mut self.inner)
    }
    fn priority(&mut self, stream: u32, priority: Priority) -> Result<(), WriteError> {
        Writer::priority(&mut self.inner, stream, priority)
    }
    fn push_promise(&mut self, stream: u32, promised: u32, fields: &[HeaderField<'_>]) -> Result<(), WriteError> {
        Writer::push_promise(&mut self.inner, stream, promised, fields)
    }
    fn apply_peer_push_promise(&mut self, stream: u32, promised: u32) -> Result<(), WriteError> {
        Writer::apply_peer_push_promise(&mut self.inner, stream, promised)
    }
    fn ping(&mut self, opaque_data: [u8; 8], ack: bool) -> Result<(), WriteError> {
        Writer::ping(&mut self.inner, opaque_data, ack)
    }
    fn goaway(&mut self, last_stream_id: u32, error_code: u32, debug_data: &[u8]) -> Result<(), WriteError> {
        Writer::goaway(&mut self.inner, last_stream_id, error_code, debug_data)
    }
    fn window_update(&mut self, stream: u32, increment: u32) -> Result<(), WriteError> {
        Writer::window_update(&mut self.inner, stream, increment)
    }
    fn raw_write_preface_magic(&mut self) -> Result<(), WriteError> {
        Writer::raw_write_preface_magic(&mut self.inner)
    }
    fn raw_write_frame(&mut self, frame: &Frame<'_>) -> Result<(), WriteError> {
        Writer::raw_write_frame(&mut self.inner, frame)
    }
    fn raw_write_headers(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        options: HeadersOptions,
    ) -> Result<(), WriteError> {
        Writer::raw_write_headers(&mut self.inner, stream, fields, options)
    }
    fn raw_write_push_promise(
        &mut self,
        stream: u32,
        promised: u32,
        fields: &[HeaderField<'_>],
        pad: Option<u8>,
    ) -> Result<(), WriteError> {
        Writer::raw_write_push_promise(&mut self.inner, stream, promised, fields, pad)
    }
    fn respond(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        hints: StreamHints,
        end_stream: bool,
    ) -> Result<(), WriteError> {
        Writer::respond(&mut self.inner, stream, fields, hints, end_stream)
    }
    fn open_stream(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        hints: StreamHints,
        end_stream: bool,
    ) -> Result<(), WriteError> {
        Writer::open_stream(&mut self.inner, stream, fields, hints, end_stream)
    }
    fn reset(&mut self, stream: u32, error_code: u32) -> Result<(), WriteError> {
        Writer::reset(&mut self.inner, stream, error_code)
    }
    fn drain(&mut self, max_bytes: usize, out: &mut Vec<u8>) -> Result<usize, WriteError> {
        Writer::drain(&mut self.inner, max_bytes, out)
    }
    fn stats(&mut self) -> Result<Stats, WriteError> {
        Writer::stats(&mut self.inner)
    }
    fn pool_stats(&mut self) -> Result<PoolStats, WriteError> {
        Writer::pool_stats(&mut self.inner)
    }
    fn model_stats(&mut self) -> Result<Option<ScratchStats>, WriteError> {
        Writer::model_stats(&mut self.inner)
    }
    fn linear_memory(&self) -> Option<MemoryStats> {
        None
    }
}

#[test]
fn corrupted_reordered_or_truncated_bodies_are_caught() {
    // 50 streams send one message each per round: send 60 is stream #10's
    // second message, and its third (send 110) is the one it is swapped with.
    let sizes = Sizes { chatty_streams: 50, chatty_rounds: 3, ..small() };
    for (fault, expected) in
        [(Fault::FlipBit(80), "CRC-32"), (Fault::Reorder(60), "CRC-32"), (Fault::Truncate(70), "body bytes arrived")]
    {
        let mut writer =
            Tampering { inner: Connection::new(Default::default(), &Pool::default()), fault, sends: 0, held: None };
        let trace = play(Scenario::GrpcChatty, &sizes, &mut writer);
        match &trace.error {
            Some(error @ Failure::Mismatch { .. }) => {
                assert!(error.to_string().contains(expected), "{fault:?}: expected {expected:?}, got {error}")
            }
            other => panic!("{fault:?}: expected a mismatch naming {expected:?}, got {other:?}"),
        }
    }
}
