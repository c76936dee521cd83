//! Memory of the named stream mixes through the component under wasmtime
//! (one engine and compiled component for this test binary: `runtime`'s
//! process-wide `OnceLock`). Every scenario runs at its full, named size
//! ([`Sizes::FULL`]); each run also checks every stream's body end to end
//! (length and CRC-32 of the reassembled DATA against what was sent).

use h2fw::pool::PoolConfig;
use h2fw_host::mix::{Hosting, Scenario, Sizes, Trace, Writers, play};
use h2fw_host::runtime::ComponentWriter;
use h2fw_host::writer::Policy;

/// Slope of the bound: linear memory may exceed the peak of live bytes by a
/// quarter (pool chunks are powers of two, partly filled at the queue ends).
const LIVE_FACTOR: f64 = 1.25;

/// Fixed part of the bound, bytes. Linear memory holds, besides live bytes:
/// - the memory the instance starts with — 64 KiB of shadow stack, static
///   data (HPACK and Huffman tables) and the first heap pages: at most
///   [`INITIAL_MEMORY`], checked by `initial_memory_is_small`;
/// - the tiered pool's idle cache, capped at `idle_total_bytes` = 1 MiB;
/// - the arguments the host copies in: the largest `send` of the mixes is a
///   1 MiB + 5 byte gRPC message (adversarial), plus the glue's 64 KiB reserve;
/// - the `drain` result the guest builds before the host copies it out,
///   [`DRAIN_PIECE`](h2fw_host::mix::driver::DRAIN_PIECE) = 256 KiB;
/// - the HPACK dynamic table (4 KiB) and allocator slack: 64 KiB page
///   granularity and free chunks between the above.
///
/// 0.25 + 1 + 1.0625 + 0.25 = 2.5625 MiB; C0 rounds up to 3 MiB, leaving
/// 0.44 MiB of slack for the last item.
const C0: usize = 3 << 20;

/// Per peak open stream, bytes. The connection keeps a 64-byte `Stream` per
/// open stream in a `HashMap<u32, Stream>` (hashbrown: 64 bytes + 1 control
/// byte per bucket, buckets a power of two at most 7/8 full). The worst point
/// is right after the map doubles from B to 2B buckets at n = 7/8·B + 1
/// entries: both tables were live during the move, 3B·65 bytes that wasm
/// memory keeps, = 3·65·8/7 ≈ 223 bytes per stream. Measured on grpc-idle
/// just past three doublings (n = 28,673 / 57,345 / 114,689 streams): peak
/// linear memory 7.25 / 13.375 / 25.625 MiB, i.e. steps of 3 × 32,768 and
/// 3 × 65,536 buckets × 65.3 bytes over the 1.1 MiB the instance started with
/// then (its stack is smaller now).
const S: usize = 224;

/// Largest memory an instance with one connection may start with (measured:
/// 196,608 bytes, 3 pages: the instance's 128 KiB and the connection's
/// 64 KiB reserve for capped hosts).
const INITIAL_MEMORY: usize = 256 << 10;

fn run(scenario: Scenario, policy: Policy) -> Trace {
    let mut writer = Writers::new(policy, Hosting::PerConnection).and_then(|mut w| w.connect()).expect("instantiate");
    play(scenario, &Sizes::FULL, writer.as_mut())
}

/// Asserts the tiered run finished and stayed within the bound; returns its peak.
fn assert_bounded(scenario: Scenario, trace: &Trace) -> usize {
    let name = scenario.name();
    assert!(trace.error.is_none(), "{name}/tiered failed: {}", trace.error.as_ref().unwrap());
    let peak = trace.peak_linear_memory.expect("the component reports linear memory");
    let bound = LIVE_FACTOR * trace.peak_live_bytes as f64 + (C0 + S * trace.peak_open_streams) as f64;
    assert!(
        peak as f64 <= bound,
        "{name}/tiered: peak linear memory {peak} > 1.25 × {} live + {C0} + {S} × {} streams = {bound:.0}",
        trace.peak_live_bytes,
        trace.peak_open_streams,
    );
    peak
}

#[test]
fn initial_memory_is_small() {
    let writer = ComponentWriter::new(&Default::default(), &PoolConfig::default(), None).expect("instantiate");
    let initial = writer.memory().current;
    eprintln!("an instance with one connection starts with {initial} bytes of linear memory");
    assert!(initial > 0 && initial <= INITIAL_MEMORY, "the instance starts with {initial} bytes");
    assert_eq!(PoolConfig::default().idle_total_bytes, 1 << 20, "C0 counts a 1 MiB idle cache");
}

#[test]
fn grpc_idle_is_bounded() {
    let trace = run(Scenario::GrpcIdle, Policy::Tiered);
    assert_eq!(trace.peak_open_streams, 100_000);
    assert_bounded(Scenario::GrpcIdle, &trace);
    // Idling costs nothing: memory after the keepalives is what it was once all were open.
    let at = |label: &str| trace.marks.iter().find(|m| m.label == label).and_then(|m| m.sample.linear_memory);
    assert_eq!(at("opened"), at("idle"));
}

#[test]
fn grpc_chatty_is_bounded() {
    assert_bounded(Scenario::GrpcChatty, &run(Scenario::GrpcChatty, Policy::Tiered));
}

#[test]
fn upload_burst_is_bounded() {
    let trace = run(Scenario::UploadBurst, Policy::Tiered);
    assert!(trace.wire_bytes > 64 * (8 << 20), "all 64 × 8 MiB went out");
    assert_bounded(Scenario::UploadBurst, &trace);
}

#[test]
fn adversarial_is_bounded() {
    assert_bounded(Scenario::Adversarial, &run(Scenario::Adversarial, Policy::Tiered));
}

/// The seed story side by side: tiered stays bounded, does not creep from
/// cycle to cycle, and peaks at least 10× below the single global pool, which
/// runs out of the wasm32 address space (its peak at that point is its result).
#[test]
fn seed_is_bounded_flat_and_ten_times_below_single() {
    let tiered = run(Scenario::Seed, Policy::Tiered);
    let tiered_peak = assert_bounded(Scenario::Seed, &tiered);
    let cycles: Vec<usize> = tiered.marks.iter().filter_map(|m| m.sample.linear_memory).collect();
    assert_eq!(cycles.len(), Sizes::FULL.seed_cycles as usize);
    assert_eq!(cycles.last(), cycles.get(1), "linear memory after each cycle: {cycles:?}");

    let single = run(Scenario::Seed, Policy::Single);
    let single_peak = single.peak_linear_memory.expect("the component reports linear memory");
    if let Some(error) = &single.error {
        assert!(single.memory_exhausted(), "single failed for another reason than memory: {error}");
    }
    assert!(single_peak >= 10 * tiered_peak, "single peaked at {single_peak} bytes, tiered at {tiered_peak}");
}
