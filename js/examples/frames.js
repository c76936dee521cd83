// A minimal HTTP/2 frame reader (RFC 9113 §4.1): splits bytes into frames
// and describes them. It reads frame headers and the simple payloads; header
// blocks stay HPACK-encoded. Works in Node and in browsers.

/** The 24-byte client connection preface. */
export const PREFACE = new TextEncoder().encode('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Frame type names by type code. */
export const TYPES = {
  0x0: 'DATA',
  0x1: 'HEADERS',
  0x2: 'PRIORITY',
  0x3: 'RST_STREAM',
  0x4: 'SETTINGS',
  0x5: 'PUSH_PROMISE',
  0x6: 'PING',
  0x7: 'GOAWAY',
  0x8: 'WINDOW_UPDATE',
  0x9: 'CONTINUATION',
  0x10: 'PRIORITY_UPDATE',
};

/** Flag names by frame type. */
const FLAGS = {
  DATA: { 0x1: 'END_STREAM', 0x8: 'PADDED' },
  HEADERS: { 0x1: 'END_STREAM', 0x4: 'END_HEADERS', 0x8: 'PADDED', 0x20: 'PRIORITY' },
  SETTINGS: { 0x1: 'ACK' },
  PUSH_PROMISE: { 0x4: 'END_HEADERS', 0x8: 'PADDED' },
  PING: { 0x1: 'ACK' },
  CONTINUATION: { 0x4: 'END_HEADERS' },
};

const SETTINGS = {
  1: 'HEADER_TABLE_SIZE',
  2: 'ENABLE_PUSH',
  3: 'MAX_CONCURRENT_STREAMS',
  4: 'INITIAL_WINDOW_SIZE',
  5: 'MAX_FRAME_SIZE',
  6: 'MAX_HEADER_LIST_SIZE',
};

const ERRORS = [
  'NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED',
  'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED',
];

/**
 * Splits `bytes` into whole frames: `{ frames, rest }`, where each frame is
 * `{ offset, type, name, flags, stream, payload }` and `rest` holds the bytes
 * of an incomplete last frame.
 */
export function readFrames(bytes) {
  const frames = [];
  let offset = 0;
  while (bytes.length - offset >= 9) {
    const length = (bytes[offset] << 16) | (bytes[offset + 1] << 8) | bytes[offset + 2];
    if (bytes.length - offset < 9 + length) break;
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset);
    const type = bytes[offset + 3];
    frames.push({
      offset,
      type,
      name: TYPES[type] ?? `0x${type.toString(16)}`,
      flags: bytes[offset + 4],
      stream: view.getUint32(5) & 0x7fff_ffff,
      payload: bytes.subarray(offset + 9, offset + 9 + length),
    });
    offset += 9 + length;
  }
  return { frames, rest: bytes.subarray(offset) };
}

/** `[id, value]` pairs of a SETTINGS payload. */
export function settingsOf(payload) {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const pairs = [];
  for (let at = 0; at + 6 <= payload.length; at += 6) pairs.push([view.getUint16(at), view.getUint32(at + 2)]);
  return pairs;
}

/** The names of a frame's set flags, `|`-joined (`-` for none). */
export function flagNames(frame) {
  const names = FLAGS[frame.name] ?? {};
  const set = [];
  for (let bit = 1; bit <= 0x80; bit <<= 1) {
    if (frame.flags & bit) set.push(names[bit] ?? `0x${bit.toString(16)}`);
  }
  return set.length ? set.join('|') : '-';
}

const hex = (bytes) => Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
const errorName = (code) => ERRORS[code] ?? `0x${code.toString(16)}`;

/** Payload without padding (for DATA, HEADERS and PUSH_PROMISE with PADDED). */
function unpadded(frame) {
  if (!(frame.flags & 0x8)) return frame.payload;
  const pad = frame.payload[0];
  return frame.payload.subarray(1, frame.payload.length - pad);
}

/** The 5 priority bytes at the start of `bytes`, in words. */
function priority(bytes) {
  const dependency = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
  return `depends on ${dependency & 0x7fff_ffff}${dependency >>> 31 ? ' (exclusive)' : ''} weight ${bytes[4]}`;
}

/** What a frame's payload says, in a few words. */
export function describe(frame) {
  const view = new DataView(frame.payload.buffer, frame.payload.byteOffset, frame.payload.length);
  switch (frame.name) {
    case 'DATA':
      return `${unpadded(frame).length} data bytes${frame.flags & 0x8 ? `, ${frame.payload[0]} padding` : ''}`;
    case 'HEADERS': {
      const block = unpadded(frame);
      if (!(frame.flags & 0x20)) return `${block.length}-byte header block`;
      return `${block.length - 5}-byte header block, ${priority(block)}`;
    }
    case 'CONTINUATION':
      return `${frame.payload.length}-byte header block fragment`;
    case 'PUSH_PROMISE': {
      const promised = unpadded(frame);
      return `promises stream ${new DataView(promised.buffer, promised.byteOffset).getUint32(0) & 0x7fff_ffff}`;
    }
    case 'PRIORITY':
      return priority(frame.payload);
    case 'RST_STREAM':
      return errorName(view.getUint32(0));
    case 'SETTINGS':
      return settingsOf(frame.payload).map(([id, value]) => `${SETTINGS[id] ?? `0x${id.toString(16)}`}=${value}`).join(', ');
    case 'PING':
      return `opaque ${hex(frame.payload)}`;
    case 'GOAWAY': {
      const debug = new TextDecoder().decode(frame.payload.subarray(8));
      return `last stream ${view.getUint32(0) & 0x7fff_ffff}, ${errorName(view.getUint32(4))}${debug ? `, "${debug}"` : ''}`;
    }
    case 'WINDOW_UPDATE':
      return `increment ${view.getUint32(0) & 0x7fff_ffff}`;
    default:
      return `${frame.payload.length}-byte payload`;
  }
}
