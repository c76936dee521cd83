//! A host that caps the component's linear memory gets typed errors, never a
//! trap, and once it drains, the same connection carries on.

mod common;

use common::{H2Decoder, PREFACE, request};
use h2::frame::Frame as H2;
use h2fw::conn::{Config, StreamHints};
use h2fw::pool::PoolConfig;
use h2fw_host::runtime::ComponentWriter;
use h2fw_host::writer::{ErrorKind, WriteError, Writer};

/// Room the cap leaves above the memory the instance starts with.
const HEADROOM: usize = 512 << 10;
/// Bytes per `send` call in the burst.
const CHUNK: usize = 16 << 10;

/// Limits that let the burst run into the memory cap, not into a watermark or the budget.
fn config() -> Config {
    Config { stream_high_watermark: 64 << 20, conn_high_watermark: 64 << 20, ..Config::default() }
}

/// A pool whose budget is not what stops the burst.
fn pool() -> PoolConfig {
    PoolConfig { budget_bytes: 64 << 20, ..PoolConfig::default() }
}

/// The body byte at `offset` of `stream`: recognisable and position dependent.
fn body_byte(stream: u32, offset: usize) -> u8 {
    (offset.wrapping_mul(31) as u8) ^ (stream as u8)
}

fn body(stream: u32, from: usize, len: usize) -> Vec<u8> {
    (from..from + len).map(|offset| body_byte(stream, offset)).collect()
}

/// Sends `len` more body bytes on `stream`; returns the refusal, if any.
/// Panics if the component trapped.
fn offer(writer: &mut ComponentWriter, stream: u32, sent: &mut usize, len: usize) -> Option<(ErrorKind, String)> {
    match writer.send(stream, &body(stream, *sent, len)) {
        Ok(taken) => {
            *sent += taken;
            None
        }
        Err(WriteError::Rejected { kind, message }) => Some((kind, message)),
        Err(error @ WriteError::Host(_)) => panic!("the component trapped: {error}"),
    }
}

fn drain_in_slices(writer: &mut ComponentWriter, out: &mut Vec<u8>) {
    loop {
        match writer.drain(CHUNK, out) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) => panic!("drain failed: {error}"),
        }
    }
}

#[test]
fn capped_memory_gives_typed_errors_and_the_connection_recovers() {
    let initial = ComponentWriter::new(&config(), &pool(), None).unwrap().memory().current;
    let cap = initial + HEADROOM;
    let mut writer = ComponentWriter::new(&config(), &pool(), Some(cap)).unwrap();
    let mut wire = Vec::new();
    writer.write_preface(&[]).unwrap();
    // Let stream windows take everything, so that DATA only waits on the connection window.
    writer.apply_peer_settings(&[(4, (1 << 31) - 1)]).unwrap();
    let streams = [1u32, 3, 5, 7];
    for stream in streams {
        let path = format!("/upload/{stream}");
        writer.open_stream(stream, &request(&path), StreamHints::default(), false).unwrap();
    }
    drain_in_slices(&mut writer, &mut wire);

    // Burst: the connection window (65535) holds the DATA back, so the body
    // bytes pile up in the component until its memory runs out, and every
    // stream in turn is refused.
    let mut sent = [0usize; 4];
    let mut refusals = Vec::new();
    let mut calls = 0;
    while refusals.len() < streams.len() {
        calls += 1;
        assert!(calls < 4 * HEADROOM / CHUNK, "the burst never hit the memory cap");
        let index = calls % streams.len();
        match offer(&mut writer, streams[index], &mut sent[index], CHUNK) {
            Some(refusal) => refusals.push(refusal),
            None => refusals.clear(),
        }
    }
    for (kind, message) in &refusals {
        assert!(matches!(kind, ErrorKind::OutOfMemory | ErrorKind::Budget), "{kind:?}: {message}");
    }
    let memory = writer.memory();
    assert!(memory.refused > 0, "the cap never refused a growth: {memory:?}");
    assert!(memory.peak <= cap, "memory {} beyond the cap {cap}", memory.peak);
    let accepted: usize = sent.iter().sum();
    assert!(accepted > HEADROOM / 2, "only {accepted} bytes accepted under a {HEADROOM}-byte headroom");

    // Memory is full; an argument larger than any hole the burst left still
    // reaches the component (through its reserve) and gets a typed answer.
    offer(&mut writer, streams[0], &mut sent[0], 3 * CHUNK);
    // So does `send-and-drain` (the connection window is spent: nothing can
    // go out, so the bytes would have to wait in memory that is not there).
    let more = body(streams[1], sent[1], CHUNK);
    match writer.send_and_drain(streams[1], &more, &mut wire) {
        Ok(taken) => sent[1] += taken,
        Err(WriteError::Rejected { kind, message }) => {
            assert!(matches!(kind, ErrorKind::OutOfMemory | ErrorKind::Budget), "{kind:?}: {message}")
        }
        Err(error @ WriteError::Host(_)) => panic!("the component trapped: {error}"),
    }

    // The peer opens the connection window; the host drains; the same
    // connection takes more bytes and finishes every stream.
    writer.apply_window_update(0, (1 << 31) - 1 - 65_535).unwrap();
    drain_in_slices(&mut writer, &mut wire);
    for (index, &stream) in streams.iter().enumerate() {
        let more = body(stream, sent[index], CHUNK);
        let taken = writer.send_and_drain(stream, &more, &mut wire).unwrap();
        assert_eq!(taken, CHUNK, "stream {stream} after the drain");
        sent[index] += taken;
        writer.finish(stream, None).unwrap();
        drain_in_slices(&mut writer, &mut wire);
    }
    let stats = writer.stats().unwrap();
    assert_eq!((stats.live_bytes, stats.open_streams), (0, 0), "{stats:?}");
    assert!(writer.memory().peak <= cap);

    // Every byte accepted went out, in order, and decodes.
    assert!(wire.starts_with(PREFACE));
    let mut decoder = H2Decoder::default();
    decoder.apply_settings(&[(4, (1 << 31) - 1)]);
    let mut received = [const { Vec::new() }; 4];
    let mut ended = [false; 4];
    for frame in decoder.decode(&wire[PREFACE.len()..]) {
        match frame {
            H2::Headers(headers) => assert!(streams.contains(&u32::from(headers.stream_id()))),
            H2::Data(data) => {
                let index = streams.iter().position(|&s| s == u32::from(data.stream_id())).unwrap();
                assert!(!ended[index], "DATA after END_STREAM on stream {}", streams[index]);
                received[index].extend_from_slice(data.payload());
                ended[index] = data.is_end_stream();
            }
            H2::Settings(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
    for (index, &stream) in streams.iter().enumerate() {
        assert!(ended[index], "stream {stream} never ended");
        assert_eq!(received[index].len(), sent[index], "stream {stream}");
        assert!(received[index] == body(stream, 0, sent[index]), "stream {stream}: body differs");
    }
}

#[test]
fn a_cap_below_the_initial_memory_fails_instantiation_cleanly() {
    let error = ComponentWriter::new(&config(), &pool(), Some(0)).err().expect("instantiated with no memory");
    assert!(format!("{error:#}").contains("instantiat"), "{error:#}");
}

/// At a full cap (connections opened until one is refused), opening another
/// connection, passing arguments within the 64 KiB reserve, and passing
/// larger ones each give a typed error or a value, never a trap; once the
/// cap is lifted the first connection carries on.
#[test]
fn a_full_cap_gives_typed_errors_for_arguments_on_both_sides_of_the_reserve() {
    let mut writer = ComponentWriter::new(&config(), &pool(), None).expect("instantiating");
    writer.write_preface(&[]).unwrap();
    writer.apply_peer_settings(&[(4, (1 << 31) - 1)]).unwrap();
    writer.apply_window_update(0, (1 << 31) - 1 - 65_535).unwrap();
    writer.open_stream(1, &request("/full"), StreamHints::default(), false).unwrap();
    let mut wire = Vec::new();
    drain_in_slices(&mut writer, &mut wire);

    let current = writer.memory().current;
    writer.set_memory_cap(Some(current));
    let mut fillers = Vec::new();
    let refusal = loop {
        match ComponentWriter::connect(writer.instance(), &config()) {
            Ok(filler) => fillers.push(filler),
            Err(error) => break error,
        }
        assert!(fillers.len() < 10_000, "a full cap never refused a connection");
    };
    assert!(
        matches!(refusal.downcast_ref::<WriteError>(), Some(WriteError::Rejected { kind: ErrorKind::OutOfMemory, .. })),
        "opening a connection at a full cap: {refusal:#}"
    );

    let reserve = h2fw::COMPONENT_ARGUMENT_RESERVE;
    for len in [1, reserve / 2, reserve - 64, reserve - 1, reserve, reserve + 1, 4 * reserve] {
        match writer.send(1, &body(1, 0, len)) {
            Ok(_) | Err(WriteError::Rejected { kind: ErrorKind::OutOfMemory | ErrorKind::Budget, .. }) => {}
            Err(error) => panic!("send of {len} bytes at a full cap: {error}"),
        }
    }
    // Arguments past the reserve are refused by the host, before the call.
    let Err(WriteError::Rejected { kind: ErrorKind::OutOfMemory, message }) = writer.send(1, &body(1, 0, 4 * reserve))
    else {
        panic!("a 256 KiB argument at a full cap was not refused");
    };
    assert!(message.contains("room under the memory cap"), "{message}");
    assert_eq!(writer.memory().peak, current, "the cap held");

    writer.set_memory_cap(None);
    drop(fillers);
    let sent = writer.send(1, &body(1, 0, 1000)).unwrap();
    writer.finish(1, None).unwrap();
    drain_in_slices(&mut writer, &mut wire);
    assert_eq!(sent, 1000);
    assert!(wire.starts_with(PREFACE));
    let mut decoder = H2Decoder::default();
    decoder.apply_settings(&[(4, (1 << 31) - 1)]);
    let frames = decoder.decode(&wire[PREFACE.len()..]);
    assert!(matches!(frames.last(), Some(H2::Data(data)) if data.is_end_stream()), "{frames:?}");
}
