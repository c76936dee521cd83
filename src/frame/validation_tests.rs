//! Every refusal: the right error with the right fields, and nothing written.

use super::*;

const MAX: u32 = DEFAULT_MAX_FRAME_SIZE;
const RESERVED: u32 = 1 << 31;

/// `frame` is refused with `expected` by `validate` and by `encode`, and
/// `encode` leaves what the destination already held untouched.
fn assert_refused(frame: Frame<'_>, max_frame_size: u32, expected: FrameError) {
    assert_eq!(frame.validate(max_frame_size), Err(expected.clone()), "validate {frame:?}");
    let mut dst = vec![0xa5; 3];
    assert_eq!(frame.encode(&mut dst, max_frame_size), Err(expected), "encode {frame:?}");
    assert_eq!(dst, [0xa5; 3], "nothing written for {frame:?}");
}

fn data(stream: u32) -> Frame<'static> {
    Frame::Data { stream, data: b"abc", end_stream: false, pad_length: None }
}

fn headers(stream: u32, priority: Option<Priority>) -> Frame<'static> {
    Frame::Headers { stream, block: &[0x82], end_stream: false, priority, pad_length: Some(1) }
}

fn depends_on(stream_dependency: u32) -> Priority {
    Priority { stream_dependency, weight: 16, exclusive: true }
}

#[test]
fn stream_frames_refuse_stream_zero() {
    let cases = [
        (data(0), FrameType::Data),
        (headers(0, None), FrameType::Headers),
        (Frame::Priority { stream: 0, priority: depends_on(1) }, FrameType::Priority),
        (Frame::RstStream { stream: 0, error_code: 0 }, FrameType::RstStream),
        (
            Frame::PushPromise { stream: 0, promised_stream: 2, block: &[0x82], pad_length: None },
            FrameType::PushPromise,
        ),
        (
            Frame::PushPromise { stream: 1, promised_stream: 0, block: &[0x82], pad_length: None },
            FrameType::PushPromise,
        ),
        (Frame::PriorityUpdate { prioritized_stream: 0, field_value: b"u=1" }, FrameType::PriorityUpdate),
    ];
    for (frame, frame_type) in cases {
        assert_refused(frame, MAX, FrameError::StreamIdRequired { frame: frame_type });
    }
}

#[test]
fn thirty_one_bit_fields_refuse_the_reserved_bit() {
    for value in [RESERVED, RESERVED | 1, u32::MAX] {
        let cases = [
            (data(value), "stream"),
            (headers(value, None), "stream"),
            (headers(1, Some(depends_on(value))), "stream_dependency"),
            (Frame::Priority { stream: value, priority: depends_on(1) }, "stream"),
            (Frame::Priority { stream: 1, priority: depends_on(value) }, "stream_dependency"),
            (Frame::RstStream { stream: value, error_code: 0 }, "stream"),
            (Frame::PushPromise { stream: value, promised_stream: 2, block: &[0x82], pad_length: None }, "stream"),
            (
                Frame::PushPromise { stream: 1, promised_stream: value, block: &[0x82], pad_length: None },
                "promised_stream",
            ),
            (Frame::Goaway { last_stream_id: value, error_code: 0, debug_data: b"" }, "last_stream_id"),
            (Frame::WindowUpdate { stream: value, increment: 1 }, "stream"),
            (Frame::PriorityUpdate { prioritized_stream: value, field_value: b"u=1" }, "prioritized_stream"),
            (Frame::Extension { frame_type: 0xa, flags: 0, stream: value, payload: b"" }, "stream"),
        ];
        for (frame, field) in cases {
            assert_refused(frame, MAX, FrameError::ReservedBit { field, value });
        }
    }
}

#[test]
fn largest_31_bit_values_are_accepted() {
    let top = RESERVED - 1;
    let frames = [
        data(top),
        headers(top, Some(depends_on(top - 1))),
        Frame::Priority { stream: 1, priority: depends_on(top) },
        Frame::PushPromise { stream: top, promised_stream: top, block: &[0x82], pad_length: None },
        Frame::Goaway { last_stream_id: top, error_code: u32::MAX, debug_data: b"" },
        Frame::PriorityUpdate { prioritized_stream: top, field_value: b"" },
    ];
    for frame in frames {
        assert!(frame.validate(MAX).is_ok(), "{frame:?}");
    }
}

#[test]
fn a_stream_cannot_depend_on_itself() {
    assert_refused(headers(5, Some(depends_on(5))), MAX, FrameError::SelfDependency { stream: 5 });
    assert_refused(
        Frame::Priority { stream: 7, priority: depends_on(7) },
        MAX,
        FrameError::SelfDependency { stream: 7 },
    );
}

#[test]
fn window_increment_must_be_1_to_2_pow_31_minus_1() {
    for increment in [0, RESERVED, u32::MAX] {
        for stream in [0, 1] {
            assert_refused(Frame::WindowUpdate { stream, increment }, MAX, FrameError::WindowIncrement { increment });
        }
    }
    for increment in [1, RESERVED - 1] {
        assert_eq!(Frame::WindowUpdate { stream: 0, increment }.validate(MAX), Ok(13));
    }
}

#[test]
fn setting_values_out_of_range_are_refused() {
    let bad = [
        (setting::ENABLE_PUSH, 2),
        (setting::ENABLE_PUSH, u32::MAX),
        (setting::INITIAL_WINDOW_SIZE, RESERVED),
        (setting::MAX_FRAME_SIZE, 16_383),
        (setting::MAX_FRAME_SIZE, 16_777_216),
        (setting::MAX_FRAME_SIZE, 0),
        (setting::ENABLE_CONNECT_PROTOCOL, 2),
        (setting::NO_RFC7540_PRIORITIES, 2),
    ];
    for (id, value) in bad {
        let expected = FrameError::SettingValue { id, value };
        assert_eq!(validate_setting(id, value), Err(expected.clone()));
        // The bad pair in the middle of a list: the whole frame is refused.
        let settings = [(setting::HEADER_TABLE_SIZE, 0), (id, value), (setting::ENABLE_PUSH, 0)];
        assert_refused(Frame::Settings { settings: &settings }, MAX, expected);
    }
}

#[test]
fn setting_values_in_range_and_unknown_ids_are_accepted() {
    let good = [
        (setting::HEADER_TABLE_SIZE, u32::MAX),
        (setting::ENABLE_PUSH, 0),
        (setting::ENABLE_PUSH, 1),
        (setting::MAX_CONCURRENT_STREAMS, u32::MAX),
        (setting::INITIAL_WINDOW_SIZE, RESERVED - 1),
        (setting::MAX_FRAME_SIZE, 16_384),
        (setting::MAX_FRAME_SIZE, 16_777_215),
        (setting::MAX_HEADER_LIST_SIZE, u32::MAX),
        (setting::ENABLE_CONNECT_PROTOCOL, 1),
        (setting::NO_RFC7540_PRIORITIES, 1),
        (0x0, u32::MAX),
        (0x7, u32::MAX),
        (0xffff, u32::MAX),
    ];
    for (id, value) in good {
        assert_eq!(validate_setting(id, value), Ok(()), "id {id:#x} value {value}");
    }
    assert_eq!(Frame::Settings { settings: &good }.validate(MAX), Ok(9 + 6 * good.len()));
}

#[test]
fn extension_frames_cannot_use_core_types() {
    for frame_type in 0x0..=0x9 {
        let frame = Frame::Extension { frame_type, flags: 0, stream: 1, payload: b"x" };
        assert_refused(frame, MAX, FrameError::CoreFrameType { frame_type });
    }
    for frame_type in [0xa, 0x10, 0xff] {
        assert_eq!(Frame::Extension { frame_type, flags: 0, stream: 0, payload: b"x" }.validate(MAX), Ok(10));
    }
}

#[test]
fn single_frame_payloads_over_the_frame_size_are_refused() {
    let fits = |frame: Frame<'_>, max: u32| frame.validate(max).is_ok();
    for max in [DEFAULT_MAX_FRAME_SIZE, 20_000] {
        let limit = max as usize;
        let settings = vec![(setting::MAX_CONCURRENT_STREAMS, 1); limit / 6 + 1];
        let too_many = &settings[..];
        let just_fits = &settings[..limit / 6];
        assert!(fits(Frame::Settings { settings: just_fits }, max));
        let len = too_many.len() * 6;
        assert_refused(
            Frame::Settings { settings: too_many },
            max,
            FrameError::PayloadTooLarge { frame: FrameType::Settings, len, max: limit },
        );

        let bytes = vec![b'a'; limit + 1];
        assert!(fits(Frame::Goaway { last_stream_id: 0, error_code: 0, debug_data: &bytes[..limit - 8] }, max));
        assert_refused(
            Frame::Goaway { last_stream_id: 0, error_code: 0, debug_data: &bytes[..limit - 7] },
            max,
            FrameError::PayloadTooLarge { frame: FrameType::Goaway, len: limit + 1, max: limit },
        );

        assert!(fits(Frame::PriorityUpdate { prioritized_stream: 1, field_value: &bytes[..limit - 4] }, max));
        assert_refused(
            Frame::PriorityUpdate { prioritized_stream: 1, field_value: &bytes[..limit - 3] },
            max,
            FrameError::PayloadTooLarge { frame: FrameType::PriorityUpdate, len: limit + 1, max: limit },
        );

        assert!(fits(Frame::Extension { frame_type: 0xb, flags: 0, stream: 0, payload: &bytes[..limit] }, max));
        assert_refused(
            Frame::Extension { frame_type: 0xb, flags: 0, stream: 0, payload: &bytes },
            max,
            FrameError::ExtensionPayloadTooLarge { frame_type: 0xb, len: limit + 1, max: limit },
        );
    }
}

#[test]
fn max_frame_size_argument_must_be_legal() {
    let frames = [data(1), Frame::SettingsAck, Frame::Ping { opaque_data: [0; 8], ack: false }, headers(1, None)];
    for value in [0, 16_383, 16_777_216, u32::MAX] {
        for frame in frames {
            assert_refused(frame, value, FrameError::MaxFrameSize { value });
        }
        assert_eq!(data_room(None, value), Err(FrameError::MaxFrameSize { value }));
    }
}

#[test]
fn fixed_size_destination_too_small() {
    let ping = Frame::Ping { opaque_data: [9; 8], ack: true };
    let mut buf = [0u8; 16];
    let mut dst = &mut buf[..];
    assert_eq!(ping.encode(&mut dst, MAX), Err(FrameError::BufferTooSmall { needed: 17, available: 16 }));
    assert_eq!(dst.len(), 16);
    assert_eq!(buf, [0; 16]);

    // A split DATA write one byte short: none of its frames is written.
    let body = vec![7u8; 40_000];
    let frame = Frame::Data { stream: 1, data: &body, end_stream: true, pad_length: Some(4) };
    let needed = 3 * 9 + 3 * 5 + 40_000;
    let mut buf = vec![0u8; needed - 1];
    let mut dst = &mut buf[..];
    assert_eq!(frame.encode(&mut dst, MAX), Err(FrameError::BufferTooSmall { needed, available: needed - 1 }));
    assert!(buf.iter().all(|&b| b == 0));

    // Exactly enough room works, and the same frame can be written after a refusal.
    let mut buf = vec![0u8; needed];
    let mut dst = &mut buf[..];
    assert_eq!(frame.encode(&mut dst, MAX), Ok(needed));
    assert!(dst.is_empty());
}
