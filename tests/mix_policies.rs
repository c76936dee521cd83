//! The seed story's mix, run natively under `single`, `go7` and `tiered`:
//! long-lived small streams (gRPC-like, no Content-Length; and slow requests
//! declaring a few hundred bytes) opened between large uploads, on a peer
//! that allows 1 MiB frames for the uploads. Every policy carries the same
//! bytes; peak pool bytes differ by what each policy holds for streams that
//! are open but idle.
//!
//! Two variants: the peer keeps 1 MiB frames (so Go gives every streaming
//! stream a 512 KiB scratch buffer under both baselines, golang/go issues
//! 79831 and 81018), or lowers MAX_FRAME_SIZE to 16 KiB before the small
//! streams open. Go's buffer pool is process-wide, so in a proxy the uploads'
//! 512 KiB buffers meet streams of other connections whose peers use 16 KiB
//! frames; one connection whose peer changes its setting reproduces that,
//! and shows `single` handing those buffers to small streams (the 800 GiB
//! story) where `go7` does not.
//!
//! Under a baseline the output queue still leases from the tiered pool and
//! the streams' scratch buffers come from Go's pools, which count only
//! their own bytes: a baseline's peak pool bytes are the tiered pool's peak
//! plus the scratch pools' peak (at least the peak of the two together).

#![cfg(feature = "baselines")]

mod conn_common;

use conn_common::{connect, drain_all, policy_name, pool_with_budget, request};
use h2fw::baseline::{Model, ScratchStats};
use h2fw::conn::{Config, Connection, Stats, StreamHints};
use h2fw::frame::setting;
use h2fw::pool::PoolStats;

const ROUNDS: u32 = 4;
const UPLOADS: u32 = 4;
const UPLOAD_LEN: usize = 4 << 20;
const WRITE: usize = 64 << 10;
const GRPC_STREAMS: u32 = 250;
const SMALL_STREAMS: u32 = 250;
const MESSAGE: usize = 200;

/// Sends all of `data` on `stream`, draining (as the host would) whenever
/// the connection pushes back.
fn send_all(conn: &mut Connection, stream: u32, data: &[u8], wire: &mut Vec<u8>) {
    let mut sent = 0;
    while sent < data.len() {
        match conn.send(stream, &data[sent..]) {
            Ok(n) => sent += n,
            Err(_) => {
                assert!(drain_all(conn, 1 << 20, wire) > 0, "stuck on stream {stream}");
                wire.clear();
            }
        }
    }
}

/// What one run measured: the connection's statistics, the tiered pool's,
/// the Go scratch pools' (baselines only) and the body bytes carried.
struct Run {
    stats: Stats,
    pool: PoolStats,
    scratch: ScratchStats,
    body_bytes: u64,
}

/// Runs the mix under `model` (`None`: tiered); `small_stream_frames`: the
/// peer's MAX_FRAME_SIZE while the small streams open (`None`: it stays at 1 MiB).
fn run_mix(model: Option<Model>, small_stream_frames: Option<u32>) -> Run {
    // Never the limit here: peaks are what is measured (Go's pools have no budget).
    let pool = pool_with_budget(4 << 30);
    let (mut conn, go) = connect(Config::default(), &pool, model);
    conn.apply_peer_settings(&[(setting::MAX_FRAME_SIZE, 1 << 20), (setting::INITIAL_WINDOW_SIZE, 1 << 24)]).unwrap();
    conn.apply_window_update(0, (1 << 31) - 1 - 65_535).unwrap();
    let mut wire = Vec::new();
    let mut next_id = 1;
    let mut long_lived = Vec::new();
    let mut body_bytes = 0u64;
    let chunk = vec![0x55; WRITE];
    let message = [0x42; MESSAGE];

    for _ in 0..ROUNDS {
        conn.apply_peer_settings(&[(setting::MAX_FRAME_SIZE, 1 << 20)]).unwrap();
        // Large uploads, written in interleaved 64 KiB pieces.
        let uploads: Vec<u32> = (0..UPLOADS).map(|i| next_id + 2 * i).collect();
        next_id += 2 * UPLOADS;
        for &id in &uploads {
            let hints = StreamHints { content_length: Some(UPLOAD_LEN as u64) };
            conn.open_stream(id, &request("/upload").get(), hints, false).unwrap();
        }
        for _ in 0..UPLOAD_LEN / WRITE {
            for &id in &uploads {
                send_all(&mut conn, id, &chunk, &mut wire);
            }
            drain_all(&mut conn, 256 << 10, &mut wire);
            wire.clear();
        }
        for &id in &uploads {
            conn.finish(id, None).unwrap();
        }
        body_bytes += (UPLOADS as usize * UPLOAD_LEN) as u64;
        drain_all(&mut conn, 1 << 20, &mut wire);
        wire.clear();
        // The server answers each upload once it has it all: the streams close.
        for &id in &uploads {
            conn.apply_peer_headers(id, true).unwrap();
        }

        if let Some(size) = small_stream_frames {
            conn.apply_peer_settings(&[(setting::MAX_FRAME_SIZE, size)]).unwrap();
        }
        // Long-lived small streams open after them and stay open.
        for i in 0..GRPC_STREAMS + SMALL_STREAMS {
            let id = next_id;
            next_id += 2;
            let content_length = (i >= GRPC_STREAMS).then_some(300);
            conn.open_stream(id, &request("/svc/Call").get(), StreamHints { content_length }, false).unwrap();
            long_lived.push(id);
        }
        // Every long-lived stream sends one small message per round.
        for &id in &long_lived {
            send_all(&mut conn, id, &message, &mut wire);
        }
        body_bytes += (long_lived.len() * MESSAGE) as u64;
        drain_all(&mut conn, 1 << 20, &mut wire);
        wire.clear();
    }
    let stats = conn.stats();
    assert_eq!(stats.live_bytes, 0);
    assert_eq!(stats.open_streams, long_lived.len());
    let pool = conn.pool().stats();
    assert_eq!(pool.leased_bytes, stats.leased_bytes, "alone in its pool");
    let scratch = go.map(|go| go.stats()).unwrap_or_default();
    Run { stats, pool, scratch, body_bytes }
}

/// Peak pool bytes of a run: the tiered pool's peak plus the scratch pools'.
fn peak_pool_bytes(run: &Run) -> usize {
    run.pool.peak_total_bytes + run.scratch.peak_total_bytes
}

/// Peak pool bytes per policy (single, go7, tiered), printed as a table,
/// and the scratch pools' peaks alone (single, go7).
fn peaks(small_stream_frames: Option<u32>) -> ([usize; 3], [usize; 2]) {
    let label = small_stream_frames
        .map_or("1 MiB frames throughout".to_string(), |s| format!("{s}-byte frames for small streams"));
    println!("mix: {label}");
    println!("policy   peak pool   peak tiered  peak scratch  peak leased  peak live   leased at end  gc cycles");
    let mut peaks = [0; 3];
    let mut scratch_peaks = [0; 2];
    let mut bytes = Vec::new();
    for (i, model) in [Some(Model::Single), Some(Model::Go7), None].into_iter().enumerate() {
        let run = run_mix(model, small_stream_frames);
        let (stats, pool, scratch) = (&run.stats, &run.pool, &run.scratch);
        println!(
            "{:<8} {:>10} {:>12} {:>13} {:>12} {:>11} {:>14} {:>10}",
            policy_name(model),
            peak_pool_bytes(&run),
            pool.peak_total_bytes,
            scratch.peak_total_bytes,
            stats.peak_leased_bytes,
            stats.peak_live_bytes,
            pool.leased_bytes + scratch.leased_bytes,
            scratch.gc_cycles
        );
        match model {
            None => {
                assert_eq!(pool.leased_bytes, 0, "tiered: the open idle streams hold nothing");
                assert_eq!(stats.leased_bytes, 0, "tiered: the open idle streams hold nothing");
            }
            Some(_) => scratch_peaks[i] = scratch.peak_total_bytes,
        }
        peaks[i] = peak_pool_bytes(&run);
        bytes.push(run.body_bytes);
    }
    assert!(bytes.windows(2).all(|w| w[0] == w[1]), "every policy carried the same body bytes");
    (peaks, scratch_peaks)
}

#[test]
fn tiered_peak_pool_bytes_are_at_least_ten_times_below_single() {
    for small_stream_frames in [None, Some(16_384)] {
        let ([single, go7, tiered], [single_scratch, go7_scratch]) = peaks(small_stream_frames);
        assert!(tiered * 10 <= single, "tiered {tiered} vs single {single}");
        assert!(tiered * 10 <= go7, "tiered {tiered} vs go7 {go7}");
        // Go's scratch buffers alone already hold ten times what tiered does.
        assert!(tiered * 10 <= single_scratch, "tiered {tiered} vs single's scratch {single_scratch}");
        assert!(tiered * 10 <= go7_scratch, "tiered {tiered} vs go7's scratch {go7_scratch}");
        if small_stream_frames.is_some() {
            assert!(go7 < single, "go7 {go7} vs single {single}: size classes keep small streams out of big buffers");
            assert!(go7_scratch < single_scratch, "go7 {go7_scratch} vs single {single_scratch}: scratch alone");
        }
    }
}
