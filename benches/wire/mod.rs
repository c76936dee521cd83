//! Walks a run of HTTP/2 frames: how the benches (and `h2fw bench`) check
//! that each path wrote whole frames carrying every byte, whatever frame
//! sizes the writer chose.

/// Frame header length (RFC 9113 §4.1).
const HEADER_LEN: usize = 9;

/// What a run of frames holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Frames {
    /// Number of frames.
    pub count: usize,
    /// Payload bytes over all frames (frame headers excluded).
    pub payload: usize,
    /// Largest payload of one frame.
    pub largest: usize,
}

/// Sums the frames of `wire`, which must hold whole frames whose types are
/// all in `types`.
pub fn frames(wire: &[u8], types: &[u8]) -> Result<Frames, String> {
    let mut rest = wire;
    let mut frames = Frames::default();
    while !rest.is_empty() {
        let Some(&[l0, l1, l2, frame_type, ..]) = rest.get(..HEADER_LEN) else {
            return Err(format!("truncated frame header after {} frames", frames.count));
        };
        if !types.contains(&frame_type) {
            return Err(format!("frame {} has type {frame_type:#x}, expected one of {types:?}", frames.count));
        }
        let len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
        rest = rest.get(HEADER_LEN + len..).ok_or_else(|| format!("frame {} is truncated", frames.count))?;
        frames.count += 1;
        frames.payload += len;
        frames.largest = frames.largest.max(len);
    }
    Ok(frames)
}
