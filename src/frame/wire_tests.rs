//! Exact bytes of every frame, written by hand from the RFC 9113 §4.1 / §6
//! (and RFC 9218 §7.1) layouts: 24-bit length, type, flags, R + 31-bit stream,
//! then the payload fields in order.

use super::*;

/// Bytes from space-separated hex pairs.
fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace().map(|pair| u8::from_str_radix(pair, 16).expect("test hex")).collect()
}

/// Encodes `frame` into a Vec, checking that `validate` predicted the length.
fn encoded(frame: Frame<'_>, max_frame_size: u32) -> Vec<u8> {
    let predicted = frame.validate(max_frame_size).expect("valid frame");
    let mut out = Vec::new();
    let written = frame.encode(&mut out, max_frame_size).expect("encodes");
    assert_eq!(written, out.len(), "encode returns the bytes written");
    assert_eq!(predicted, out.len(), "validate predicts the bytes written");
    out
}

/// A 9-byte frame header built field by field (RFC 9113 §4.1).
fn head(len: usize, frame_type: u8, flags: u8, stream: u32) -> Vec<u8> {
    let mut h = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, frame_type, flags];
    h.extend_from_slice(&stream.to_be_bytes());
    h
}

/// `n` bytes counting up (mod 251) so misplaced slices show.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[test]
fn ping_and_ping_ack() {
    let opaque_data = [1, 2, 3, 4, 5, 6, 7, 8];
    assert_eq!(
        encoded(Frame::Ping { opaque_data, ack: true }, DEFAULT_MAX_FRAME_SIZE),
        hex("00 00 08 06 01 00 00 00 00 01 02 03 04 05 06 07 08")
    );
    assert_eq!(
        encoded(Frame::Ping { opaque_data, ack: false }, DEFAULT_MAX_FRAME_SIZE),
        hex("00 00 08 06 00 00 00 00 00 01 02 03 04 05 06 07 08")
    );
}

#[test]
fn settings_list_keeps_order_and_ack_is_empty() {
    let settings =
        [(setting::MAX_CONCURRENT_STREAMS, 100), (setting::INITIAL_WINDOW_SIZE, 0x1_0000), (0xabcd, u32::MAX)];
    assert_eq!(
        encoded(Frame::Settings { settings: &settings }, DEFAULT_MAX_FRAME_SIZE),
        hex("00 00 12 04 00 00 00 00 00  00 03 00 00 00 64  00 04 00 01 00 00  ab cd ff ff ff ff")
    );
    assert_eq!(encoded(Frame::Settings { settings: &[] }, DEFAULT_MAX_FRAME_SIZE), hex("00 00 00 04 00 00 00 00 00"));
    assert_eq!(encoded(Frame::SettingsAck, DEFAULT_MAX_FRAME_SIZE), hex("00 00 00 04 01 00 00 00 00"));
}

#[test]
fn data_plain_padded_and_empty() {
    let hello = Frame::Data { stream: 1, data: b"hello", end_stream: true, pad_length: None };
    assert_eq!(encoded(hello, DEFAULT_MAX_FRAME_SIZE), hex("00 00 05 00 01 00 00 00 01 68 65 6c 6c 6f"));
    // PADDED (0x8): Pad Length 3, "hi", three zero octets; length 1 + 2 + 3.
    let padded = Frame::Data { stream: 3, data: b"hi", end_stream: false, pad_length: Some(3) };
    assert_eq!(encoded(padded, DEFAULT_MAX_FRAME_SIZE), hex("00 00 06 00 08 00 00 00 03 03 68 69 00 00 00"));
    // Some(0) still sets PADDED and writes the Pad Length octet.
    let pad_zero = Frame::Data { stream: 1, data: b"", end_stream: true, pad_length: Some(0) };
    assert_eq!(encoded(pad_zero, DEFAULT_MAX_FRAME_SIZE), hex("00 00 01 00 09 00 00 00 01 00"));
    let empty_end = Frame::Data { stream: 0x7fff_ffff, data: b"", end_stream: true, pad_length: None };
    assert_eq!(encoded(empty_end, DEFAULT_MAX_FRAME_SIZE), hex("00 00 00 00 01 7f ff ff ff"));
    let empty = Frame::Data { stream: 1, data: b"", end_stream: false, pad_length: None };
    assert_eq!(encoded(empty, DEFAULT_MAX_FRAME_SIZE), hex("00 00 00 00 00 00 00 00 01"));
}

#[test]
fn data_255_bytes_of_padding() {
    let frame = Frame::Data { stream: 1, data: b"x", end_stream: false, pad_length: Some(255) };
    let mut expected = hex("00 01 01 00 08 00 00 00 01 ff 78");
    expected.extend_from_slice(&[0; 255]);
    assert_eq!(encoded(frame, DEFAULT_MAX_FRAME_SIZE), expected);
}

#[test]
fn headers_plain_and_with_priority_and_padding() {
    let plain =
        Frame::Headers { stream: 1, block: &[0x82, 0x86, 0x84], end_stream: true, priority: None, pad_length: None };
    // END_STREAM 0x1 | END_HEADERS 0x4.
    assert_eq!(encoded(plain, DEFAULT_MAX_FRAME_SIZE), hex("00 00 03 01 05 00 00 00 01 82 86 84"));

    let priority = Priority { stream_dependency: 3, weight: 15, exclusive: true };
    let full =
        Frame::Headers { stream: 5, block: &[0x82], end_stream: false, priority: Some(priority), pad_length: Some(2) };
    // PRIORITY 0x20 | PADDED 0x8 | END_HEADERS 0x4; Pad Length, E + dependency,
    // weight, block, padding: 1 + 4 + 1 + 1 + 2 = 9.
    assert_eq!(
        encoded(full, DEFAULT_MAX_FRAME_SIZE),
        hex("00 00 09 01 2c 00 00 00 05  02  80 00 00 03  0f  82  00 00")
    );

    let empty_block = Frame::Headers { stream: 1, block: &[], end_stream: false, priority: None, pad_length: None };
    assert_eq!(encoded(empty_block, DEFAULT_MAX_FRAME_SIZE), hex("00 00 00 01 04 00 00 00 01"));
}

#[test]
fn headers_255_bytes_of_padding() {
    let frame = Frame::Headers { stream: 1, block: &[0x82], end_stream: false, priority: None, pad_length: Some(255) };
    let mut expected = hex("00 01 01 01 0c 00 00 00 01 ff 82");
    expected.extend_from_slice(&[0; 255]);
    assert_eq!(encoded(frame, DEFAULT_MAX_FRAME_SIZE), expected);
}

#[test]
fn priority_and_rst_stream() {
    let priority = Priority { stream_dependency: 1, weight: 255, exclusive: false };
    assert_eq!(
        encoded(Frame::Priority { stream: 7, priority }, DEFAULT_MAX_FRAME_SIZE),
        hex("00 00 05 02 00 00 00 00 07 00 00 00 01 ff")
    );
    let exclusive = Priority { stream_dependency: 0, weight: 0, exclusive: true };
    assert_eq!(
        encoded(Frame::Priority { stream: 1, priority: exclusive }, DEFAULT_MAX_FRAME_SIZE),
        hex("00 00 05 02 00 00 00 00 01 80 00 00 00 00")
    );
    assert_eq!(
        encoded(Frame::RstStream { stream: 1, error_code: 0x8 }, DEFAULT_MAX_FRAME_SIZE),
        hex("00 00 04 03 00 00 00 00 01 00 00 00 08")
    );
}

#[test]
fn push_promise_plain_and_padded() {
    let plain = Frame::PushPromise { stream: 1, promised_stream: 2, block: &[0x82, 0x87], pad_length: None };
    assert_eq!(encoded(plain, DEFAULT_MAX_FRAME_SIZE), hex("00 00 06 05 04 00 00 00 01 00 00 00 02 82 87"));
    // PADDED | END_HEADERS; Pad Length, R + promised id, block, padding.
    let padded = Frame::PushPromise { stream: 1, promised_stream: 2, block: &[0x82, 0x87], pad_length: Some(1) };
    assert_eq!(encoded(padded, DEFAULT_MAX_FRAME_SIZE), hex("00 00 08 05 0c 00 00 00 01 01 00 00 00 02 82 87 00"));
}

#[test]
fn goaway_window_update_priority_update_extension() {
    let goaway = Frame::Goaway { last_stream_id: 0x7fff_ffff, error_code: 0x2, debug_data: b"ab" };
    assert_eq!(
        encoded(goaway, DEFAULT_MAX_FRAME_SIZE),
        hex("00 00 0a 07 00 00 00 00 00 7f ff ff ff 00 00 00 02 61 62")
    );
    let window = Frame::WindowUpdate { stream: 0, increment: 0x7fff_ffff };
    assert_eq!(encoded(window, DEFAULT_MAX_FRAME_SIZE), hex("00 00 04 08 00 00 00 00 00 7f ff ff ff"));
    let stream_window = Frame::WindowUpdate { stream: 3, increment: 1 };
    assert_eq!(encoded(stream_window, DEFAULT_MAX_FRAME_SIZE), hex("00 00 04 08 00 00 00 00 03 00 00 00 01"));
    // RFC 9218 §7.1: type 0x10, stream 0, prioritized stream id, ASCII field value.
    let update = Frame::PriorityUpdate { prioritized_stream: 1, field_value: b"u=3,i" };
    assert_eq!(encoded(update, DEFAULT_MAX_FRAME_SIZE), hex("00 00 09 10 00 00 00 00 00 00 00 00 01 75 3d 33 2c 69"));
    let extension = Frame::Extension { frame_type: 0x0a, flags: 0xff, stream: 0x7fff_ffff, payload: &[1, 2] };
    assert_eq!(encoded(extension, DEFAULT_MAX_FRAME_SIZE), hex("00 00 02 0a ff 7f ff ff ff 01 02"));
}

#[test]
fn data_exactly_frame_size_is_one_frame_one_more_is_two() {
    let data = pattern(16_384 + 1);
    let exact = Frame::Data { stream: 1, data: &data[..16_384], end_stream: true, pad_length: None };
    let mut expected = head(16_384, 0x0, 0x1, 1);
    expected.extend_from_slice(&data[..16_384]);
    assert_eq!(encoded(exact, 16_384), expected);

    let over = Frame::Data { stream: 1, data: &data, end_stream: true, pad_length: None };
    let mut expected = head(16_384, 0x0, 0x0, 1);
    expected.extend_from_slice(&data[..16_384]);
    expected.extend(head(1, 0x0, 0x1, 1));
    expected.push(data[16_384]);
    assert_eq!(encoded(over, 16_384), expected);
}

#[test]
fn split_data_with_padding_fills_every_frame() {
    // Each frame: Pad Length + 16128 data + 255 zeros = 16384 bytes.
    let data = pattern(2 * 16_128 + 1);
    let frame = Frame::Data { stream: 9, data: &data, end_stream: true, pad_length: Some(255) };
    let mut expected = Vec::new();
    for (chunk, flags) in [(&data[..16_128], 0x08), (&data[16_128..32_256], 0x08), (&data[32_256..], 0x09)] {
        expected.extend(head(1 + chunk.len() + 255, 0x0, flags, 9));
        expected.push(255);
        expected.extend_from_slice(chunk);
        expected.extend_from_slice(&[0; 255]);
    }
    assert_eq!(encoded(frame, 16_384), expected);
    assert_eq!(data_room(Some(255), 16_384), Ok(16_128));
    assert_eq!(data_room(None, MAX_MAX_FRAME_SIZE), Ok(16_777_215));
    assert_eq!(data_room(Some(0), 16_384), Ok(16_383));
}

#[test]
fn data_at_the_largest_frame_size() {
    let data = pattern(16_777_216);
    let exact = Frame::Data { stream: 1, data: &data[..16_777_215], end_stream: false, pad_length: None };
    let out = encoded(exact, MAX_MAX_FRAME_SIZE);
    assert_eq!(out[..9], hex("ff ff ff 00 00 00 00 00 01"));
    assert_eq!(out[9..], data[..16_777_215]);

    let over = Frame::Data { stream: 1, data: &data, end_stream: true, pad_length: None };
    let out = encoded(over, MAX_MAX_FRAME_SIZE);
    assert_eq!(out.len(), 2 * 9 + data.len());
    assert_eq!(out[..9], hex("ff ff ff 00 00 00 00 00 01"));
    assert_eq!(out[9 + 16_777_215..][..9], hex("00 00 01 00 01 00 00 00 01"));
    assert_eq!(out[9..9 + 16_777_215], data[..16_777_215]);
    assert_eq!(out[out.len() - 1], data[16_777_215]);
}

#[test]
fn header_block_one_byte_over_gets_one_continuation() {
    let block = pattern(16_384 + 10);
    let exact =
        Frame::Headers { stream: 1, block: &block[..16_384], end_stream: false, priority: None, pad_length: None };
    let mut expected = head(16_384, 0x1, 0x4, 1);
    expected.extend_from_slice(&block[..16_384]);
    assert_eq!(encoded(exact, 16_384), expected);

    let over = Frame::Headers { stream: 1, block: &block, end_stream: true, priority: None, pad_length: None };
    // END_STREAM stays on HEADERS; END_HEADERS moves to the CONTINUATION.
    let mut expected = head(16_384, 0x1, 0x1, 1);
    expected.extend_from_slice(&block[..16_384]);
    expected.extend(head(10, 0x9, 0x4, 1));
    expected.extend_from_slice(&block[16_384..]);
    assert_eq!(encoded(over, 16_384), expected);
}

#[test]
fn header_block_needing_several_continuations() {
    // First frame: 1 pad octet + 5 priority + 16368 block + 10 pad = 16384.
    let block = pattern(3 * 16_384 + 5);
    let priority = Priority { stream_dependency: 1, weight: 7, exclusive: false };
    let frame =
        Frame::Headers { stream: 3, block: &block, end_stream: true, priority: Some(priority), pad_length: Some(10) };
    let mut expected = head(16_384, 0x1, 0x01 | 0x08 | 0x20, 3);
    expected.extend(hex("0a 00 00 00 01 07"));
    expected.extend_from_slice(&block[..16_368]);
    expected.extend_from_slice(&[0; 10]);
    expected.extend(head(16_384, 0x9, 0x0, 3));
    expected.extend_from_slice(&block[16_368..32_752]);
    expected.extend(head(16_384, 0x9, 0x0, 3));
    expected.extend_from_slice(&block[32_752..49_136]);
    expected.extend(head(21, 0x9, 0x4, 3));
    expected.extend_from_slice(&block[49_136..]);
    assert_eq!(encoded(frame, 16_384), expected);
}

#[test]
fn push_promise_split_keeps_promised_stream_and_padding_in_first_frame() {
    // First frame: 1 pad octet + 4 promised id + 16376 block + 3 pad = 16384.
    let block = pattern(16_376 + 1);
    let frame = Frame::PushPromise { stream: 1, promised_stream: 4, block: &block, pad_length: Some(3) };
    let mut expected = head(16_384, 0x5, 0x08, 1);
    expected.extend(hex("03 00 00 00 04"));
    expected.extend_from_slice(&block[..16_376]);
    expected.extend_from_slice(&[0; 3]);
    expected.extend(head(1, 0x9, 0x4, 1));
    expected.push(block[16_376]);
    assert_eq!(encoded(frame, 16_384), expected);
}

#[test]
fn larger_frame_size_changes_the_split() {
    let block = pattern(20_000);
    let frame = Frame::Headers { stream: 1, block: &block, end_stream: false, priority: None, pad_length: None };
    let mut expected = head(20_000, 0x1, 0x4, 1);
    expected.extend_from_slice(&block);
    assert_eq!(encoded(frame, 32_768), expected);
    assert_eq!(encoded(frame, 16_384).len(), 2 * 9 + 20_000);
}

#[test]
fn writes_into_fixed_slices_and_bytes_mut() {
    let frame = Frame::WindowUpdate { stream: 1, increment: 5 };
    let mut buf = [0xee_u8; 14];
    let mut dst = &mut buf[..];
    assert_eq!(frame.encode(&mut dst, DEFAULT_MAX_FRAME_SIZE), Ok(13));
    assert_eq!(dst.len(), 1);
    assert_eq!(buf, hex("00 00 04 08 00 00 00 00 01 00 00 00 05 ee")[..]);

    let mut bytes = bytes::BytesMut::new();
    assert_eq!(frame.encode(&mut bytes, DEFAULT_MAX_FRAME_SIZE), Ok(13));
    assert_eq!(bytes[..], hex("00 00 04 08 00 00 00 00 01 00 00 00 05")[..]);
}

#[test]
fn data_headers_interleaved_with_the_body_are_the_data_frames() {
    for (len, max) in
        [(0, 16_384), (1, 16_384), (16_384, 16_384), (16_385, 16_384), (50_000, 20_000), (1 << 20, 1 << 20)]
    {
        let data = pattern(len);
        for end_stream in [false, true] {
            let mut headers = Vec::new();
            let written = encode_data_headers(7, len, end_stream, &mut headers, max).unwrap();
            assert_eq!(written, headers.len());
            assert_eq!(headers.len(), len.div_ceil(max as usize).max(1) * FRAME_HEADER_LEN);
            // Each header, then as many body bytes as its length field says.
            let mut wire = Vec::new();
            let mut body = &data[..];
            for header in headers.chunks(FRAME_HEADER_LEN) {
                let n = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
                let (piece, rest) = body.split_at(n);
                wire.extend_from_slice(header);
                wire.extend_from_slice(piece);
                body = rest;
            }
            assert!(body.is_empty(), "the headers count every body byte ({len} in frames of {max})");
            let frame = Frame::Data { stream: 7, data: &data, end_stream, pad_length: None };
            assert_eq!(wire, encoded(frame, max), "{len} bytes in frames of {max}, end_stream {end_stream}");
            let mut interleaved = b"before".to_vec();
            assert_eq!(interleave_data(&headers, &data, &mut interleaved), Ok(len));
            assert_eq!(interleaved[6..], wire[..]);
        }
    }
    assert_eq!(
        encode_data_headers(0, 5, false, &mut Vec::new(), 16_384),
        Err(FrameError::StreamIdRequired { frame: FrameType::Data })
    );
    assert_eq!(
        encode_data_headers(1, 5, false, &mut [0u8; 8].as_mut_slice(), 16_384),
        Err(FrameError::BufferTooSmall { needed: 9, available: 8 })
    );
}

#[test]
fn interleaving_refuses_headers_that_do_not_fit_the_body() {
    let mut headers = Vec::new();
    encode_data_headers(1, 20_000, false, &mut headers, 16_384).unwrap();
    let mut out = Vec::new();
    let short = pattern(19_999);
    assert_eq!(
        interleave_data(&headers, &short, &mut out),
        Err(FrameError::BufferTooSmall { needed: 20_000, available: 19_999 })
    );
    assert_eq!(interleave_data(&headers[..10], &pattern(20_000), &mut out).map_err(drop), Err(()), "a cut header");
    let ping = head(8, 0x6, 0, 0);
    assert_eq!(interleave_data(&ping, &pattern(8), &mut out).map_err(drop), Err(()), "not a DATA header");
    assert!(out.is_empty());
}
