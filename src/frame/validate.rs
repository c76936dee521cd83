//! Field checks for every frame, done before any byte is written.

use super::layout::{data_wire_len, frame_size_checked, header_block_wire_len};
use super::{FRAME_HEADER_LEN, Frame, FrameError, FrameType, Priority, setting};

/// Largest value of a 31-bit field (stream identifiers, window increments).
const MAX_31_BIT: u32 = (1 << 31) - 1;
/// Length of the PRIORITY fields (dependency + weight), in HEADERS and PRIORITY.
pub(super) const PRIORITY_LEN: usize = 5;
/// Length of the Promised Stream ID field of PUSH_PROMISE.
pub(super) const PROMISED_STREAM_LEN: usize = 4;
/// Length of one SETTINGS entry (16-bit id, 32-bit value).
pub(super) const SETTING_LEN: usize = 6;

/// Checks every field of `frame` and returns the bytes its encoding takes.
pub(super) fn wire_len(frame: &Frame<'_>, max_frame_size: u32) -> Result<usize, FrameError> {
    let max = frame_size_checked(max_frame_size)?;
    match *frame {
        Frame::Data { stream, data, pad_length, .. } => {
            stream_required(FrameType::Data, "stream", stream)?;
            Ok(data_wire_len(data.len(), pad_length, max))
        }
        Frame::Headers { stream, block, priority, pad_length, .. } => {
            stream_required(FrameType::Headers, "stream", stream)?;
            let fixed_len = match priority {
                Some(priority) => {
                    check_priority(stream, priority)?;
                    PRIORITY_LEN
                }
                None => 0,
            };
            Ok(header_block_wire_len(block.len(), pad_length, fixed_len, max))
        }
        Frame::Priority { stream, priority } => {
            stream_required(FrameType::Priority, "stream", stream)?;
            check_priority(stream, priority)?;
            Ok(FRAME_HEADER_LEN + PRIORITY_LEN)
        }
        Frame::RstStream { stream, .. } => {
            stream_required(FrameType::RstStream, "stream", stream)?;
            Ok(FRAME_HEADER_LEN + 4)
        }
        Frame::Settings { settings } => {
            for &(id, value) in settings {
                validate_setting(id, value)?;
            }
            // A `(u16, u32)` takes 8 bytes in memory, so this product cannot overflow.
            single_frame(FrameType::Settings, settings.len() * SETTING_LEN, max)
        }
        Frame::SettingsAck => Ok(FRAME_HEADER_LEN),
        Frame::PushPromise { stream, promised_stream, block, pad_length } => {
            stream_required(FrameType::PushPromise, "stream", stream)?;
            stream_required(FrameType::PushPromise, "promised_stream", promised_stream)?;
            Ok(header_block_wire_len(block.len(), pad_length, PROMISED_STREAM_LEN, max))
        }
        Frame::Ping { .. } => Ok(FRAME_HEADER_LEN + 8),
        Frame::Goaway { last_stream_id, debug_data, .. } => {
            fits_31_bits("last_stream_id", last_stream_id)?;
            single_frame(FrameType::Goaway, 8 + debug_data.len(), max)
        }
        Frame::WindowUpdate { stream, increment } => {
            fits_31_bits("stream", stream)?;
            if increment == 0 || increment > MAX_31_BIT {
                return Err(FrameError::WindowIncrement { increment });
            }
            Ok(FRAME_HEADER_LEN + 4)
        }
        Frame::PriorityUpdate { prioritized_stream, field_value } => {
            // RFC 9218 §7.1: a Prioritized Stream ID of 0 is a PROTOCOL_ERROR.
            stream_required(FrameType::PriorityUpdate, "prioritized_stream", prioritized_stream)?;
            single_frame(FrameType::PriorityUpdate, 4 + field_value.len(), max)
        }
        Frame::Extension { frame_type, stream, payload, .. } => {
            if frame_type <= FrameType::Continuation as u8 {
                return Err(FrameError::CoreFrameType { frame_type });
            }
            fits_31_bits("stream", stream)?;
            if payload.len() > max {
                return Err(FrameError::ExtensionPayloadTooLarge { frame_type, len: payload.len(), max });
            }
            Ok(FRAME_HEADER_LEN + payload.len())
        }
    }
}

/// Checks one SETTINGS `(id, value)` pair against RFC 9113 §6.5.2 (and RFC
/// 8441/9218 for their ids); unknown ids are accepted.
pub fn validate_setting(id: u16, value: u32) -> Result<(), FrameError> {
    let valid = match id {
        setting::ENABLE_PUSH | setting::ENABLE_CONNECT_PROTOCOL | setting::NO_RFC7540_PRIORITIES => value <= 1,
        setting::INITIAL_WINDOW_SIZE => value <= MAX_31_BIT,
        setting::MAX_FRAME_SIZE => (super::DEFAULT_MAX_FRAME_SIZE..=super::MAX_MAX_FRAME_SIZE).contains(&value),
        _ => true,
    };
    if valid { Ok(()) } else { Err(FrameError::SettingValue { id, value }) }
}

/// A stream identifier field that must name a stream: not 0, within 31 bits.
fn stream_required(frame: FrameType, field: &'static str, value: u32) -> Result<(), FrameError> {
    if value == 0 {
        return Err(FrameError::StreamIdRequired { frame });
    }
    fits_31_bits(field, value)
}

/// A 31-bit field whose reserved high bit must stay clear.
fn fits_31_bits(field: &'static str, value: u32) -> Result<(), FrameError> {
    if value > MAX_31_BIT { Err(FrameError::ReservedBit { field, value }) } else { Ok(()) }
}

/// Priority fields of `stream` (HEADERS or PRIORITY): a 31-bit dependency on
/// another stream (RFC 9113 §5.3.1: a stream cannot depend on itself).
fn check_priority(stream: u32, priority: Priority) -> Result<(), FrameError> {
    fits_31_bits("stream_dependency", priority.stream_dependency)?;
    if priority.stream_dependency == stream {
        return Err(FrameError::SelfDependency { stream });
    }
    Ok(())
}

/// Wire length of a frame that cannot be split, refusing a payload over the peer's limit.
fn single_frame(frame: FrameType, payload_len: usize, max: usize) -> Result<usize, FrameError> {
    if payload_len > max {
        return Err(FrameError::PayloadTooLarge { frame, len: payload_len, max });
    }
    Ok(FRAME_HEADER_LEN + payload_len)
}
