// Frame scripts (JSON Lines, one operation a line; the project's
// docs/frame-script.md) run through an h2fw `Connection`, in Node or in a
// browser. Strict like the CLI: unknown types and fields, and missing ones,
// stop the run with a message naming the line.

const enc = new TextEncoder();

/** Per `type`: required fields, optional fields, and the call it makes. */
const OPS = {
  preface: [[], [], (conn) => conn.writePreface()],
  settings: [['settings'], [], (conn, op) => conn.writeFrame({ type: 'settings', settings: op.settings })],
  settings_ack: [[], [], (conn) => conn.writeFrame({ type: 'settings-ack' })],
  peer_settings: [['settings'], [], (conn, op) => conn.applyPeerSettings(op.settings)],
  headers: [
    ['stream', 'headers'],
    ['end_stream', 'priority', 'pad_length'],
    (conn, op) =>
      conn.writeHeaders(op.stream, op.headers, {
        endStream: op.end_stream,
        priority: op.priority && nestedPriority(op.priority),
        padLength: op.pad_length,
      }),
  ],
  data: [
    ['stream'],
    ['data', 'data_b64', 'repeat', 'end_stream', 'pad_length'],
    (conn, op) =>
      conn.writeFrame({ type: 'data', stream: op.stream, data: body(op), endStream: op.end_stream, padLength: op.pad_length }),
  ],
  priority: [
    ['stream', 'stream_dependency', 'weight'],
    ['exclusive'],
    (conn, op) => conn.writeFrame({ type: 'priority', stream: op.stream, priority: priorityOf(op) }),
  ],
  rst_stream: [['stream', 'error_code'], [], (conn, op) => conn.writeFrame({ type: 'rst-stream', stream: op.stream, errorCode: op.error_code })],
  push_promise: [
    ['stream', 'promised_stream', 'headers'],
    ['pad_length'],
    (conn, op) => conn.writePushPromise(op.stream, op.promised_stream, op.headers, op.pad_length),
  ],
  ping: [[], ['opaque_data', 'ack'], (conn, op) => conn.writeFrame({ type: 'ping', opaqueData: opaque(op.opaque_data), ack: op.ack })],
  goaway: [
    ['last_stream_id', 'error_code'],
    ['debug_data'],
    (conn, op) =>
      conn.writeFrame({ type: 'goaway', lastStreamId: op.last_stream_id, errorCode: op.error_code, debugData: enc.encode(op.debug_data ?? '') }),
  ],
  window_update: [['stream', 'increment'], [], (conn, op) => conn.writeFrame({ type: 'window-update', stream: op.stream, increment: op.increment })],
  raw: [
    ['frame_type', 'flags', 'stream', 'payload_b64'],
    [],
    (conn, op) =>
      conn.writeFrame({ type: 'extension', frameType: op.frame_type, flags: op.flags, stream: op.stream, payload: base64(op.payload_b64, 'payload_b64') }),
  ],
};

/** A script error: the line's problem (the writer's `H2fwError` kind, if it refused). */
class ScriptError extends Error {}

/** Refuses fields of `object` outside `required` and `optional`, and missing required ones. */
function checkFields(object, what, required, optional = []) {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) throw new ScriptError(`${what}: expected an object`);
  for (const key of Object.keys(object)) {
    if (!required.includes(key) && !optional.includes(key)) throw new ScriptError(`${what}: unknown field \`${key}\``);
  }
  for (const key of required) {
    if (!(key in object)) throw new ScriptError(`${what}: missing field \`${key}\``);
  }
}

/** The priority fields of `object` (`stream_dependency`, `weight`, `exclusive`). */
function priorityOf(object) {
  return { streamDependency: object.stream_dependency, weight: object.weight, exclusive: object.exclusive };
}

/** A `headers` line's `priority` object. */
function nestedPriority(object) {
  checkFields(object, 'priority', ['stream_dependency', 'weight'], ['exclusive']);
  return priorityOf(object);
}

function base64(text, what) {
  try {
    return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  } catch {
    throw new ScriptError(`${what}: invalid base64`);
  }
}

/** The body of a `data` line: exactly one of `data`, `data_b64`, `repeat`. */
function body(op) {
  const given = ['data', 'data_b64', 'repeat'].filter((key) => key in op);
  if (given.length !== 1) throw new ScriptError('data: give exactly one of `data`, `data_b64`, `repeat`');
  if ('data' in op) return enc.encode(op.data);
  if ('data_b64' in op) return base64(op.data_b64, 'data_b64');
  checkFields(op.repeat, 'repeat', ['byte', 'len']);
  return new Uint8Array(op.repeat.len).fill(op.repeat.byte);
}

/** `opaque_data`: exactly 16 hex digits (all zero when absent). */
function opaque(hex = '0000000000000000') {
  if (!/^[0-9a-fA-F]{16}$/.test(hex)) throw new ScriptError(`opaque_data: ${JSON.stringify(hex)} is not 16 hex digits`);
  return Uint8Array.from(hex.match(/../g), (pair) => parseInt(pair, 16));
}

/**
 * Runs `script` through `conn`, draining after every line. Returns
 * `{ bytes, error }`: every byte written by the lines before the first bad
 * one, and `{ line, message, kind }` for that line (none if all ran).
 */
export function runScript(script, conn) {
  const chunks = [];
  let error;
  const lines = script.split('\n');
  for (const [index, text] of lines.entries()) {
    const line = text.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      let op;
      try {
        op = JSON.parse(line);
      } catch (parseError) {
        throw new ScriptError(`invalid JSON: ${parseError.message}`);
      }
      const spec = OPS[op?.type];
      if (spec === undefined) throw new ScriptError(`unknown type ${JSON.stringify(op?.type)}`);
      const [required, optional, run] = spec;
      checkFields(op, op.type, ['type', ...required], optional);
      run(conn, op);
      chunks.push(conn.drain());
    } catch (cause) {
      if (!(cause instanceof ScriptError) && cause?.name !== 'H2fwError') throw cause;
      error = { line: index + 1, message: `line ${index + 1}: ${cause.message}`, kind: cause.kind };
      break;
    }
  }
  const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  chunks.reduce((offset, chunk) => (bytes.set(chunk, offset), offset + chunk.length), 0);
  return { bytes, error };
}
