// The h2fw WASI component (the same h2fw.wasm that wasmtime runs),
// transpiled by jco into pkg/component, behind the API of the wasm-bindgen
// build: the same classes, arguments, results and thrown `H2fwError`s.
// Conversion only: every call goes to the component as it is; the checks
// here are the ones the wasm-bindgen build makes while converting, since
// jco coerces numbers silently (`-1 >>> 0`).

import { conn } from '../pkg/component/h2fw.js';

/** An `Error` named `H2fwError` with `kind` (and `detail`). */
function h2fwError(kind, detail, message) {
  const error = new Error(message);
  error.name = 'H2fwError';
  error.kind = kind;
  if (detail !== undefined) error.detail = detail;
  return error;
}

/** How a wrong value shows in a message. */
function shown(value) {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean') {
    return String(value);
  }
  return `a value of type ${typeof value}`;
}

/** The `argument` error: `what` is not `expected` but `got`. */
function argument(what, expected, got) {
  return argumentText(what, expected, shown(got));
}

/** The `argument` error, with what was got in words. */
function argumentText(what, expected, got) {
  return h2fwError('argument', undefined, `${what}: expected ${expected}, got ${got}`);
}

/** Calls the component, turning its WIT `error` into an `H2fwError`. */
function call(f) {
  try {
    return f();
  } catch (error) {
    const payload = error?.payload;
    if (payload?.detail === undefined) throw error;
    const { tag, val } = payload.detail;
    const nested = tag === 'frame' || tag === 'hpack' || tag === 'pool';
    // A refusal names its rule (an enum: jco gives its case name).
    const detail = nested ? val.tag : tag === 'refused' ? val.rule : undefined;
    throw h2fwError(tag, detail, payload.message);
  }
}

function integer(value, what, max) {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw argument(what, `an integer in 0..=${max}`, value);
  }
  return value;
}
const u32 = (value, what) => integer(value, what, 0xffff_ffff);
const u8 = (value, what) => integer(value, what, 0xff);
const absent = (value) => value === undefined || value === null;
const optional = (value, convert) => (absent(value) ? undefined : convert(value));

function boolOr(value, what, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw argument(what, 'a boolean', value);
  return value;
}

function bytes(value, what) {
  if (!(value instanceof Uint8Array)) throw argument(what, 'a Uint8Array', value);
  return value;
}

function array(value, what) {
  if (!Array.isArray(value)) throw argument(what, 'an array', value);
  return value;
}

/** An options object's fields (`{}` for undefined or null); refuses unknown ones. */
function fields(value, what, known) {
  if (absent(value)) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw argument(what, 'an object', value);
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw h2fwError('argument', undefined, `${what}: unknown field \`${key}\` (known: ${known.join(', ')})`);
    }
  }
  return value;
}

const utf8 = new TextEncoder();

/** `[name, value, sensitive?]` entries as the WIT `header-list`: bytes back to back plus lengths. */
function headerList(value, what) {
  const parts = [];
  const lengths = array(value, what).map((entry, index) => {
    const at = `${what}[${index}]`;
    const field = array(entry, at);
    if (field.length < 2 || field.length > 3) {
      throw argumentText(at, '[name, value] or [name, value, sensitive]', `a ${field.length}-element array`);
    }
    const [name, text, sensitive] = field;
    if (typeof name !== 'string') throw argument(`${at}[0] (name)`, 'a string', name);
    if (typeof text !== 'string') throw argument(`${at}[1] (value)`, 'a string', text);
    const nameBytes = utf8.encode(name);
    const valueBytes = utf8.encode(text);
    parts.push(nameBytes, valueBytes);
    return {
      nameLen: nameBytes.length,
      valueLen: valueBytes.length,
      sensitive: boolOr(sensitive, `${at}[2] (sensitive)`, false),
    };
  });
  const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  parts.reduce((offset, part) => (joined.set(part, offset), offset + part.length), 0);
  return { bytes: joined, fields: lengths };
}

function settings(value, what) {
  return array(value, what).map((pair, index) => {
    const at = `${what}[${index}]`;
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw Array.isArray(pair) ? argumentText(at, '[id, value]', `a ${pair.length}-element array`) : argument(at, 'an array', pair);
    }
    return { id: integer(pair[0], `${at}[0] (id)`, 0xffff), value: u32(pair[1], `${at}[1] (value)`) };
  });
}

function priority(value, what) {
  const given = fields(value, what, ['streamDependency', 'weight', 'exclusive']);
  return {
    streamDependency: u32(given.streamDependency, `${what}.streamDependency`),
    weight: u8(given.weight, `${what}.weight`),
    exclusive: boolOr(given.exclusive, `${what}.exclusive`, false),
  };
}

/** Per frame `type`: its fields (besides `type`) and their conversion into the WIT variant's payload. */
const FRAMES = {
  data: [['stream', 'data', 'endStream', 'padLength'], (f) => ({
    stream: u32(f.stream, 'frame.stream'),
    data: bytes(f.data, 'frame.data'),
    endStream: boolOr(f.endStream, 'frame.endStream', false),
    padLength: optional(f.padLength, (v) => u8(v, 'frame.padLength')),
  })],
  headers: [['stream', 'block', 'endStream', 'priority', 'padLength'], (f) => ({
    stream: u32(f.stream, 'frame.stream'),
    block: bytes(f.block, 'frame.block'),
    endStream: boolOr(f.endStream, 'frame.endStream', false),
    priority: optional(f.priority, (v) => priority(v, 'frame.priority')),
    padLength: optional(f.padLength, (v) => u8(v, 'frame.padLength')),
  })],
  priority: [['stream', 'priority'], (f) => ({ stream: u32(f.stream, 'frame.stream'), priority: priority(f.priority, 'frame.priority') })],
  'rst-stream': [['stream', 'errorCode'], (f) => ({ stream: u32(f.stream, 'frame.stream'), errorCode: u32(f.errorCode, 'frame.errorCode') })],
  settings: [['settings'], (f) => settings(f.settings, 'frame.settings')],
  'settings-ack': [[], () => undefined],
  'push-promise': [['stream', 'promisedStream', 'block', 'padLength'], (f) => ({
    stream: u32(f.stream, 'frame.stream'),
    promisedStream: u32(f.promisedStream, 'frame.promisedStream'),
    block: bytes(f.block, 'frame.block'),
    padLength: optional(f.padLength, (v) => u8(v, 'frame.padLength')),
  })],
  ping: [['opaqueData', 'ack'], (f) => {
    const opaque = bytes(f.opaqueData, 'frame.opaqueData');
    if (opaque.length !== 8) throw argumentText('frame.opaqueData', '8 bytes', `${opaque.length} bytes`);
    const opaqueData = new DataView(opaque.buffer, opaque.byteOffset, 8).getBigUint64(0);
    return { opaqueData, ack: boolOr(f.ack, 'frame.ack', false) };
  }],
  goaway: [['lastStreamId', 'errorCode', 'debugData'], (f) => ({
    lastStreamId: u32(f.lastStreamId, 'frame.lastStreamId'),
    errorCode: u32(f.errorCode, 'frame.errorCode'),
    debugData: absent(f.debugData) ? new Uint8Array() : bytes(f.debugData, 'frame.debugData'),
  })],
  'window-update': [['stream', 'increment'], (f) => ({ stream: u32(f.stream, 'frame.stream'), increment: u32(f.increment, 'frame.increment') })],
  'priority-update': [['prioritizedStream', 'fieldValue'], (f) => ({
    prioritizedStream: u32(f.prioritizedStream, 'frame.prioritizedStream'),
    fieldValue: bytes(f.fieldValue, 'frame.fieldValue'),
  })],
  extension: [['frameType', 'flags', 'stream', 'payload'], (f) => ({
    frameType: u8(f.frameType, 'frame.frameType'),
    flags: u8(f.flags, 'frame.flags'),
    stream: u32(f.stream, 'frame.stream'),
    payload: bytes(f.payload, 'frame.payload'),
  })],
};

function frame(value) {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw argument('frame', 'an object', value);
  const tag = value.type;
  if (!Object.hasOwn(FRAMES, tag)) throw argument('frame.type', `one of ${Object.keys(FRAMES).join(', ')}`, tag);
  const [known, convert] = FRAMES[tag];
  return { tag, val: convert(fields(value, `frame (${tag})`, ['type', ...known])) };
}

/** The given fields over the component's defaults (numbers only; `poolShare` may be null). */
function withDefaults(value, defaults, known) {
  const given = fields(value, 'config', known);
  const config = { ...defaults };
  for (const key of known) {
    if (given[key] === undefined) continue;
    config[key] = key === 'poolShare' ? optional(given[key], (v) => u32(v, 'config.poolShare')) : u32(given[key], `config.${key}`);
  }
  return config;
}

const CONFIG_FIELDS = ['poolShare', 'streamHighWatermark', 'connHighWatermark', 'maxHeaderTableSize', 'outputHighWatermark'];
const POOL_CONFIG_FIELDS = ['minClass', 'maxClass', 'idlePerClass', 'idleTotalBytes', 'budgetBytes'];

/** A WIT record with 64-bit counts as plain numbers. */
function numbers(record) {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, typeof value === 'bigint' ? Number(value) : value]));
}

/** The library's `Config::default()`. */
export function defaultConfig() {
  // The JavaScript builds write a client's side (the library's default role).
  const { role: _client, ...config } = conn.defaultConfig();
  return { ...config, poolShare: config.poolShare ?? null };
}

/** The library's `PoolConfig::default()`. */
export function defaultPoolConfig() {
  return conn.defaultPoolConfig();
}

/** The component's pool resource behind each `Pool`. */
const resources = new WeakMap();

/** A buffer pool shared by every connection created with it. */
export class Pool {
  /** An empty pool; fields missing from `config` take their defaults. */
  constructor(config) {
    const given = withDefaults(config, conn.defaultPoolConfig(), POOL_CONFIG_FIELDS);
    resources.set(this, new conn.Pool(given));
  }

  /** Current statistics. */
  stats() {
    const stats = call(() => resources.get(this).stats());
    return { ...numbers(stats), classes: stats.classes.map(numbers) };
  }

  /** Drops this handle (connections made from it keep the pool alive). */
  free() {
    resources.get(this)[Symbol.dispose]();
  }

  [Symbol.dispose]() {
    this.free();
  }
}

/** The frame writer of one HTTP/2 connection; see the wasm-bindgen build's `Connection`. */
export class Connection {
  #conn;

  /** A connection leasing from `pool`; fields missing from `config` take their defaults. */
  constructor(pool, config) {
    const resource = resources.get(pool);
    if (resource === undefined) throw argument('pool', 'a Pool', pool);
    const given = withDefaults(config, conn.defaultConfig(), CONFIG_FIELDS);
    this.#conn = call(() => conn.Connection.open(resource, { ...given, poolShare: given.poolShare ?? undefined }));
  }

  /** Applies the peer's SETTINGS; validated as a whole before any takes effect. */
  applyPeerSettings(list) {
    const converted = settings(list, 'settings');
    call(() => this.#conn.applyPeerSettings(converted));
  }

  /** Applies a WINDOW_UPDATE received from the peer (stream 0: the connection). */
  applyWindowUpdate(stream, increment) {
    const args = [u32(stream, 'stream'), u32(increment, 'increment')];
    call(() => this.#conn.applyWindowUpdate(...args));
  }

  /** Queues the client connection preface: the magic and our SETTINGS (none when omitted), once and first. */
  writePreface(list) {
    const converted = list === undefined ? [] : settings(list, 'settings');
    call(() => this.#conn.writePreface(converted));
  }

  /** Queues the 24-byte client preface magic alone (the escape hatch). */
  writePrefaceMagic() {
    call(() => this.#conn.rawWritePrefaceMagic());
  }

  /** Queues one frame as given (the escape hatch). */
  writeFrame(value) {
    const converted = frame(value);
    call(() => this.#conn.rawWriteFrame(converted));
  }

  /** HPACK-encodes `headers` and queues HEADERS (+ CONTINUATION). */
  writeHeaders(stream, headers, options) {
    const id = u32(stream, 'stream');
    const list = headerList(headers, 'headers');
    const given = fields(options, 'options', ['endStream', 'priority', 'padLength']);
    const converted = {
      endStream: boolOr(given.endStream, 'options.endStream', false),
      priority: optional(given.priority, (v) => priority(v, 'options.priority')),
      padLength: optional(given.padLength, (v) => u8(v, 'options.padLength')),
    };
    call(() => this.#conn.rawWriteHeaders(id, list, converted));
  }

  /** HPACK-encodes `headers` and queues PUSH_PROMISE (+ CONTINUATION). */
  writePushPromise(stream, promisedStream, headers, padLength) {
    const args = [
      u32(stream, 'stream'),
      u32(promisedStream, 'promisedStream'),
      headerList(headers, 'headers'),
      optional(padLength, (v) => u8(v, 'padLength')),
    ];
    call(() => this.#conn.rawWritePushPromise(...args));
  }

  /** Opens a flow-controlled stream: queues its HEADERS and remembers the hints. */
  openStream(stream, headers, options) {
    const id = u32(stream, 'stream');
    const list = headerList(headers, 'headers');
    const given = fields(options, 'options', ['contentLength', 'endStream']);
    const length = optional(given.contentLength, (v) => BigInt(integer(v, 'options.contentLength', Number.MAX_SAFE_INTEGER)));
    const endStream = boolOr(given.endStream, 'options.endStream', false);
    call(() => this.#conn.openStream(id, list, { contentLength: length }, endStream));
  }

  /** Accepts body bytes; returns how many were taken. */
  send(stream, data) {
    const args = [u32(stream, 'stream'), bytes(data, 'data')];
    return call(() => this.#conn.send(...args));
  }

  /** `send`, then `drain` of every byte, in one call. */
  sendAndDrain(stream, data) {
    const args = [u32(stream, 'stream'), bytes(data, 'data')];
    return call(() => this.#conn.sendAndDrain(...args));
  }

  /** Ends the stream after its pending bytes (with `trailers`, if given). */
  finish(stream, trailers) {
    const args = [u32(stream, 'stream'), optional(trailers, (v) => headerList(v, 'trailers'))];
    call(() => this.#conn.finish(...args));
  }

  /** Resets the stream: drops its pending bytes and queues RST_STREAM. */
  reset(stream, errorCode) {
    const args = [u32(stream, 'stream'), u32(errorCode, 'errorCode')];
    call(() => this.#conn.reset(...args));
  }

  /** Takes up to `maxBytes` wire bytes (all of them when omitted). */
  drain(maxBytes) {
    const max = optional(maxBytes, (v) => u32(v, 'maxBytes')) ?? 0xffff_ffff;
    return call(() => this.#conn.drain(max));
  }

  /** Current statistics of this connection. */
  stats() {
    return numbers(this.#conn.stats());
  }

  /** Gives every buffer this connection holds back to its pool. */
  free() {
    this.#conn[Symbol.dispose]();
  }

  [Symbol.dispose]() {
    this.free();
  }
}
