//! The component's interface carries the library's behaviour unchanged:
//! the same defaults, the same typed errors with the same messages, the same
//! statistics, and `send-batch`, `send-and-drain` and `frame-in-place` do
//! what the library's calls do.

use h2fw::conn::{BatchItem, Config, Connection, HeadersOptions, StreamHints};
use h2fw::frame::{Frame, Priority};
use h2fw::hpack::HeaderField;
use h2fw::pool::{Pool, PoolConfig};
use h2fw_host::runtime::ComponentWriter;
use h2fw_host::writer::{ErrorKind, WriteError, Writer};

fn field<'a>(name: &'a str, value: &'a str) -> HeaderField<'a> {
    HeaderField { name: name.as_bytes(), value: value.as_bytes(), sensitive: false }
}

fn request() -> Vec<HeaderField<'static>> {
    vec![field(":method", "POST"), field(":scheme", "https"), field(":path", "/"), field(":authority", "example.com")]
}

/// Small limits, so that watermarks, the budget and the largest class are
/// reachable in a test.
fn small_config() -> Config {
    Config { stream_high_watermark: 4096, ..Config::default() }
}

/// A pool small enough for its budget and largest class to be reached.
fn small_pool() -> PoolConfig {
    PoolConfig { max_class: 64 << 10, budget_bytes: 256 << 10, ..PoolConfig::default() }
}

/// The same connection natively and through the component, each alone in a pool of `pool` limits.
fn pair(config: Config, pool: PoolConfig) -> (Connection, ComponentWriter) {
    let component = ComponentWriter::new(&config, &pool, None).unwrap();
    (Connection::new(config, &Pool::new(pool)), component)
}

fn drain_all(writer: &mut dyn Writer) -> Vec<u8> {
    let mut out = Vec::new();
    while writer.drain(1 << 20, &mut out).unwrap() > 0 {}
    out
}

#[test]
fn default_config_is_the_library_default() {
    assert_eq!(ComponentWriter::default_config().unwrap(), Config::default());
    assert_eq!(ComponentWriter::default_pool_config().unwrap(), PoolConfig::default());
}

type Call = fn(&mut dyn Writer) -> Result<(), WriteError>;

/// One invalid call per error case the host can provoke, with the kind it must get.
fn invalid_calls() -> Vec<(&'static str, ErrorKind, Call)> {
    vec![
        ("window increment 0", ErrorKind::Frame, |w| {
            w.raw_write_frame(&Frame::WindowUpdate { stream: 0, increment: 0 })
        }),
        ("stream id 0 on DATA", ErrorKind::Frame, |w| {
            w.raw_write_frame(&Frame::Data { stream: 0, data: b"x", end_stream: false, pad_length: None })
        }),
        ("reserved bit", ErrorKind::Frame, |w| w.raw_write_frame(&Frame::RstStream { stream: 1 << 31, error_code: 0 })),
        ("self dependency", ErrorKind::Frame, |w| {
            let priority = Priority { stream_dependency: 3, weight: 0, exclusive: false };
            w.raw_write_frame(&Frame::Priority { stream: 3, priority })
        }),
        ("core extension type", ErrorKind::Frame, |w| {
            w.raw_write_frame(&Frame::Extension { frame_type: 1, flags: 0, stream: 1, payload: b"" })
        }),
        ("ENABLE_PUSH 2", ErrorKind::Frame, |w| w.apply_peer_settings(&[(2, 2)])),
        ("MAX_FRAME_SIZE too small", ErrorKind::Frame, |w| w.apply_peer_settings(&[(5, 100)])),
        ("uppercase name", ErrorKind::Hpack, |w| {
            w.raw_write_headers(1, &[field(":method", "GET"), field("X-Upper", "v")], HeadersOptions::default())
        }),
        ("connection header", ErrorKind::Hpack, |w| {
            w.raw_write_headers(1, &[field("connection", "close")], HeadersOptions::default())
        }),
        ("pseudo after regular", ErrorKind::Hpack, |w| {
            w.raw_write_headers(1, &[field("accept", "*/*"), field(":path", "/")], HeadersOptions::default())
        }),
        ("value with CR", ErrorKind::Hpack, |w| {
            w.raw_write_headers(1, &[field("x-a", "a\rb")], HeadersOptions::default())
        }),
        ("send on a stream never opened", ErrorKind::StreamNotOpen, |w| w.send(99, b"data").map(drop)),
        ("open stream 0", ErrorKind::StreamIdInvalid, |w| w.open_stream(0, &request(), StreamHints::default(), false)),
        ("open a stream again", ErrorKind::StreamIdInvalid, |w| {
            w.open_stream(1, &request(), StreamHints::default(), false)?;
            w.open_stream(1, &request(), StreamHints::default(), false)
        }),
        ("window overflow", ErrorKind::WindowOverflow, |w| w.apply_window_update(0, (1 << 31) - 1)),
        ("above the stream watermark", ErrorKind::WouldBlock, |w| {
            w.open_stream(1, &request(), StreamHints::default(), false)?;
            loop {
                w.send(1, &[7; 4096])?;
            }
        }),
        ("over the budget", ErrorKind::Budget, |w| {
            for stream in (1..).step_by(2) {
                w.open_stream(stream, &request(), StreamHints::default(), false)?;
                w.send(stream, &[7; 4096])?;
            }
            unreachable!()
        }),
        ("header block larger than the largest class", ErrorKind::TooLarge, |w| {
            let value = "v".repeat(100 << 10);
            w.raw_write_headers(1, &[field(":method", "GET"), field("x-big", &value)], HeadersOptions::default())
        }),
    ]
}

#[test]
fn errors_are_the_library_errors_and_leave_the_connection_usable() {
    for (name, kind, call) in invalid_calls() {
        let (mut native, mut component) = pair(small_config(), small_pool());
        let native_error = call(&mut native).expect_err(name);
        let component_error = call(&mut component).expect_err(name);
        let WriteError::Rejected { kind: native_kind, message: native_message } = native_error else { unreachable!() };
        let WriteError::Rejected { kind: component_kind, message } = component_error else {
            panic!("{name}: {component_error}")
        };
        assert_eq!(native_kind, kind, "{name}: {native_message}");
        assert_eq!(component_kind, kind, "{name}: {message}");
        if kind == ErrorKind::TooLarge {
            // The HPACK worst-case bound counts integers of usize::BITS, so
            // the bytes requested differ between the 64-bit native build and
            // the 32-bit guest; the limit they hit is the same.
            assert!(message.ends_with("the largest buffer class is 65536"), "{name}: {message}");
        } else {
            assert_eq!(message, native_message, "{name}");
        }

        // Still usable, and still in step with the library.
        for writer in [&mut native as &mut dyn Writer, &mut component] {
            writer.raw_write_frame(&Frame::Ping { opaque_data: *b"stillok!", ack: false }).unwrap();
        }
        let bytes = drain_all(&mut native);
        let ping = [&[0, 0, 8, 6, 0, 0, 0, 0, 0][..], b"stillok!"].concat();
        assert!(bytes.windows(ping.len()).any(|window| window == ping), "{name}: no PING after the error");
        assert_eq!(drain_all(&mut component), bytes, "{name}");
    }
}

#[test]
fn statistics_are_the_library_statistics() {
    let (mut native, mut component) = pair(small_config(), small_pool());
    for writer in [&mut native as &mut dyn Writer, &mut component] {
        writer.write_preface(&[]).unwrap();
        writer.open_stream(1, &request(), StreamHints { content_length: Some(10_000) }, false).unwrap();
        writer.open_stream(3, &request(), StreamHints::default(), false).unwrap();
        writer.send(1, &[1; 3000]).unwrap();
        writer.send(3, &[3; 100]).unwrap();
        writer.drain(500, &mut Vec::new()).unwrap();
    }
    let stats = Writer::stats(&mut native).unwrap();
    assert!(stats.live_bytes > 0 && stats.open_streams == 2 && stats.leased_bytes > 0, "{stats:?}");
    assert_eq!(component.stats().unwrap(), stats);
    let pool = Writer::pool_stats(&mut native).unwrap();
    assert!(pool.connections == 1 && pool.leased_bytes == stats.leased_bytes, "{pool:?}");
    assert_eq!(component.pool_stats().unwrap(), pool);
}

#[test]
fn send_batch_stops_at_the_first_error_after_sending_the_items_before_it() {
    let (mut native, mut component) = pair(Config::default(), PoolConfig::default());
    let item = |stream, len| BatchItem { stream, len };
    let items = [item(1, 100), item(3, 7), item(1, 300), item(9, 5), item(3, 9)];
    let data: Vec<u8> = (0..421u32).map(|i| i as u8).collect();
    let mut wires = [Vec::new(), Vec::new()];
    for (writer, wire) in [&mut native as &mut dyn Writer, &mut component].into_iter().zip(&mut wires) {
        writer.open_stream(1, &request(), StreamHints::default(), false).unwrap();
        writer.open_stream(3, &request(), StreamHints::default(), false).unwrap();
        let mut accepted = Vec::new();
        let stopped = writer.send_batch(&items, &data, &mut accepted);
        assert_eq!(accepted, [100, 7, 300]);
        assert!(matches!(stopped, Err(WriteError::Rejected { kind: ErrorKind::StreamNotOpen, .. })), "{stopped:?}");

        // Lengths past the data: refused whole, nothing sent.
        accepted.clear();
        let refused = writer.send_batch(&[item(3, 2), item(1, 10)], &data[..11], &mut accepted);
        match refused {
            Err(WriteError::Rejected { kind: ErrorKind::BatchLength, message }) => {
                assert_eq!(message, "batch items count 12 bytes, its data holds 11")
            }
            other => panic!("{other:?}"),
        }
        assert!(accepted.is_empty());
        writer.send_batch(&[item(3, 11), item(1, 0)], &data[..11], &mut accepted).unwrap();
        assert_eq!(accepted, [11, 0]);
        *wire = drain_all(writer);
    }
    assert_eq!(wires[0], wires[1]);
    // The items' bytes went to their streams in order: the first 100 bytes on
    // stream 1, the next 7 on stream 3, ...
    let mut native_alone = Connection::new(Config::default(), &Pool::default());
    native_alone.open_stream(1, &request(), StreamHints::default(), false).unwrap();
    native_alone.open_stream(3, &request(), StreamHints::default(), false).unwrap();
    for (stream, range) in [(1, 0..100), (3, 100..107), (1, 107..407), (3, 0..11)] {
        native_alone.send(stream, &data[range]).unwrap();
    }
    assert_eq!(drain_all(&mut native_alone), wires[0]);
}

#[test]
fn send_and_drain_hands_out_what_the_library_does() {
    let (mut native, mut component) = pair(small_config(), small_pool());
    let mut wires = [Vec::new(), Vec::new()];
    for (writer, wire) in [&mut native as &mut dyn Writer, &mut component].into_iter().zip(&mut wires) {
        writer.apply_peer_settings(&[(4, 10_000)]).unwrap();
        writer.open_stream(1, &request(), StreamHints::default(), false).unwrap();
        writer.open_stream(3, &request(), StreamHints::default(), false).unwrap();
        writer.raw_write_frame(&Frame::Ping { opaque_data: *b"queued!!", ack: false }).unwrap();
        // Output queued ahead, a write within the window, one past it (the
        // rest waits, up to the 4096-byte stream watermark), a refused one.
        assert_eq!(writer.send_and_drain(1, &[1; 3000], wire).unwrap(), 3000);
        assert_eq!(writer.send_and_drain(3, &[3; 20_000], wire).unwrap(), 10_000 + 4096);
        let refused = writer.send_and_drain(5, b"never opened", wire);
        assert!(matches!(refused, Err(WriteError::Rejected { kind: ErrorKind::StreamNotOpen, .. })), "{refused:?}");
        writer.apply_window_update(3, 4096).unwrap();
        assert_eq!(writer.send_and_drain(1, &[1; 10], wire).unwrap(), 10);
    }
    assert_eq!(wires[0], wires[1]);
    assert_eq!(component.stats().unwrap(), Writer::stats(&mut native).unwrap());
    assert_eq!(Writer::stats(&mut native).unwrap().live_bytes, 0, "every accepted byte went out");
}

#[test]
fn frame_in_place_hands_out_what_the_library_does() {
    let (mut native, mut component) = pair(small_config(), small_pool());
    let mut wires = [Vec::new(), Vec::new()];
    let body: Vec<u8> = (0..40_000u32).map(|i| (i % 253) as u8).collect();
    for (writer, wire) in [&mut native as &mut dyn Writer, &mut component].into_iter().zip(&mut wires) {
        writer.apply_peer_settings(&[(4, 30_000)]).unwrap();
        writer.open_stream(1, &request(), StreamHints::default(), false).unwrap();
        // Headers queued ahead, then two frames (16384 + 13616) within the 30000 window.
        assert_eq!(writer.frame_in_place(1, &body, wire).unwrap(), 30_000);
        assert_eq!(writer.frame_in_place(1, &body[30_000..], wire).unwrap(), 0, "the window is spent");
        let refused = writer.frame_in_place(3, &body, wire);
        assert!(matches!(refused, Err(WriteError::Rejected { kind: ErrorKind::StreamNotOpen, .. })), "{refused:?}");
        writer.apply_window_update(1, 10_000).unwrap();
        assert_eq!(writer.frame_in_place(1, &body[30_000..], wire).unwrap(), 10_000);
    }
    assert_eq!(wires[0], wires[1]);
    assert_eq!(component.stats().unwrap(), Writer::stats(&mut native).unwrap());
}

#[test]
fn a_header_list_whose_lengths_do_not_add_up_is_refused_with_a_typed_error() {
    let mut component = ComponentWriter::new(&Config::default(), &PoolConfig::default(), None).unwrap();
    let bytes = b":methodGET:schemehttps:path/:authorityexample.com";
    let good = [(7, 3, false), (7, 5, false), (5, 1, false), (10, 11, false)];
    for (lengths, total) in
        [(&good[..3], 28), (&[(7, 3, false), (7, 5, false), (5, 1, false), (10, 12, false)][..], 50)]
    {
        match component.write_headers_flat(1, bytes, lengths, HeadersOptions::default()) {
            Err(WriteError::Rejected { kind: ErrorKind::Hpack, message }) => {
                assert_eq!(message, format!("header field lengths count {total} bytes, the list holds 49"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(component.stats().unwrap().queued_bytes, 0, "nothing queued");
    }
    component.write_headers_flat(1, bytes, &good, HeadersOptions::default()).unwrap();
    let mut native = Connection::new(Config::default(), &Pool::default());
    native.raw_write_headers(1, &request_get(), HeadersOptions::default()).unwrap();
    assert_eq!(drain_all(&mut component), drain_all(&mut native));
}

fn request_get() -> Vec<HeaderField<'static>> {
    vec![field(":method", "GET"), field(":scheme", "https"), field(":path", "/"), field(":authority", "example.com")]
}
