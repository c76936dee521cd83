// Bad input: every refused call throws an H2fwError whose `kind` (and
// `detail`) mirror the library's typed error and whose message names the
// field; nothing is written, and the connection goes on working.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { readFrames } from '../../examples/frames.js';
import { Connection, Pool, request } from './build.js';

const bytes = (n) => new Uint8Array(n);

/** [what, call, kind, detail, message pattern] */
const CASES = [
  ['window increment 0', (c) => c.applyWindowUpdate(0, 0), 'frame', 'window-increment', /increment 0/],
  ['negative increment', (c) => c.applyWindowUpdate(1, -1), 'argument', undefined, /^increment: expected an integer in 0\.\.=4294967295, got -1$/],
  ['fractional stream id', (c) => c.send(1.5, bytes(1)), 'argument', undefined, /^stream: .* got 1.5/],
  ['window overflow', (c) => c.applyWindowUpdate(1, 2 ** 31 - 1), 'window-overflow', undefined, /stream 1/],
  ['MAX_FRAME_SIZE too small', (c) => c.applyPeerSettings([[5, 100]]), 'frame', 'setting-value', /0x5: value 100/],
  ['setting pair of three', (c) => c.applyPeerSettings([[5, 100, 1]]), 'argument', undefined, /^settings\[0\]: expected \[id, value\], got a 3-element array$/],
  ['upper-case header name', (c) => c.writeHeaders(3, [['Bad', 'x']]), 'hpack', 'invalid-name', /"Bad"/],
  ['value with a newline', (c) => c.writeHeaders(3, [['x-a', 'b\nc']]), 'hpack', 'invalid-value', /"x-a"/],
  ['connection header', (c) => c.writeHeaders(3, [['connection', 'close']]), 'hpack', 'connection-specific', /"connection"/],
  ['unknown pseudo-header', (c) => c.writeHeaders(3, [[':bogus', 'x']]), 'hpack', 'pseudo-header', /":bogus"/],
  ['header without a value', (c) => c.writeHeaders(3, [[':path']]), 'argument', undefined, /^headers\[0\]: expected \[name, value\] or \[name, value, sensitive\], got a 1-element array$/],
  ['header name not a string', (c) => c.writeHeaders(3, [[1, 'x']]), 'argument', undefined, /^headers\[0\]\[0\] \(name\): expected a string, got 1$/],
  ['sensitive not a boolean', (c) => c.writeHeaders(3, [['a', 'b', 1]]), 'argument', undefined, /\[2\] \(sensitive\)/],
  ['headers not an array', (c) => c.writeHeaders(3, 'x: y'), 'argument', undefined, /^headers: expected an array/],
  ['unknown option', (c) => c.writeHeaders(3, [['a', 'b']], { endstream: true }), 'argument', undefined, /`endstream`/],
  ['stream 0', (c) => c.openStream(0, request('/')), 'stream-id-invalid', undefined, /stream 0/],
  ['stream id reused', (c) => c.openStream(1, request('/')), 'stream-id-invalid', undefined, /stream 1/],
  ['send on a stream never opened', (c) => c.send(9, bytes(1)), 'stream-not-open', undefined, /stream 9/],
  ['body not bytes', (c) => c.send(1, 'text'), 'argument', undefined, /^data: expected a Uint8Array, got "text"/],
  ['pseudo-header in trailers', (c) => c.finish(1, [[':status', '200']]), 'refused', 'message', /trailers carry no pseudo-header/],
  ['unknown frame type', (c) => c.writeFrame({ type: 'nope' }), 'argument', undefined, /^frame.type: .* got "nope"/],
  ['unknown frame field', (c) => c.writeFrame({ type: 'settings-ack', ack: true }), 'argument', undefined, /`ack`/],
  ['short ping data', (c) => c.writeFrame({ type: 'ping', opaqueData: bytes(3) }), 'argument', undefined, /^frame.opaqueData: expected 8 bytes, got 3 bytes$/],
  ['DATA on stream 0', (c) => c.writeFrame({ type: 'data', stream: 0, data: bytes(1) }), 'frame', 'stream-id-required', /stream identifier/],
  ['core type as extension', (c) => c.writeFrame({ type: 'extension', frameType: 1, flags: 0, stream: 1, payload: bytes(0) }), 'frame', 'core-frame-type', /type 0x1/],
  ['stream depends on itself', (c) => c.writeFrame({ type: 'priority', stream: 3, priority: { streamDependency: 3, weight: 1 } }), 'frame', 'self-dependency', /stream 3/],
  ['pad length 300', (c) => c.writeHeaders(3, [['a', 'b']], { padLength: 300 }), 'argument', undefined, /^options.padLength/],
  ['RST_STREAM on stream 0', (c) => c.reset(0, 8), 'frame', 'stream-id-required', /stream identifier/],
  ['RST_STREAM on a stream never opened', (c) => c.reset(7, 8), 'refused', 'state', /stream 7: .* idle/],
];

for (const [what, call, kind, detail, message] of CASES) {
  test(`${what}: ${kind}${detail ? `/${detail}` : ''}, nothing written, still usable`, () => {
    const conn = new Connection(new Pool());
    conn.openStream(1, request('/'));
    conn.drain();
    const before = conn.stats();

    assert.throws(() => call(conn), (error) => {
      assert.ok(error instanceof Error);
      assert.equal(error.name, 'H2fwError');
      assert.equal(error.kind, kind);
      assert.equal(error.detail, detail);
      assert.match(error.message, message);
      return true;
    });
    assert.deepEqual(conn.drain(), new Uint8Array(), 'nothing written');
    assert.deepEqual(conn.stats(), before, 'nothing changed');

    conn.writeHeaders(3, [[':status', '200']]);
    conn.send(1, bytes(10));
    const { frames } = readFrames(conn.drain());
    assert.deepEqual(frames.map((f) => [f.name, f.stream]), [['HEADERS', 3], ['DATA', 1]]);
  });
}

/** Sends 4 KiB at a time on a new stream that cannot send, until refused: `[bytes taken, error]`. */
function fillUntilRefused(conn, stream) {
  conn.openStream(stream, request('/'));
  conn.drain();
  let taken = 0;
  for (;;) {
    try {
      taken += conn.send(stream, bytes(4096));
    } catch (error) {
      return [taken, error];
    }
  }
}

test("a connection's pool share and the pool's budget refuse with pool errors", () => {
  const pool = new Pool({ budgetBytes: 128 << 10, maxClass: 16 << 10 });
  const shared = new Connection(pool, { poolShare: 48 << 10 });
  shared.applyPeerSettings([[4, 0]]);
  const [taken, refusal] = fillUntilRefused(shared, 1);
  assert.deepEqual([refusal.kind, refusal.detail], ['pool', 'share-exceeded']);
  assert.match(refusal.message, /share exceeded/);
  assert.ok(taken > 0 && taken <= 48 << 10, `took ${taken} bytes within the 48 KiB share`);

  const unbounded = new Connection(pool);
  unbounded.applyPeerSettings([[4, 0]]);
  const [more, exhausted] = fillUntilRefused(unbounded, 1);
  assert.deepEqual([exhausted.kind, exhausted.detail], ['pool', 'budget-exceeded']);
  assert.match(exhausted.message, /budget exceeded/);
  assert.ok(pool.stats().leasedBytes <= 128 << 10 && more > 0);
});

test('bad configs throw argument errors naming the field', () => {
  const pool = new Pool();
  assert.throws(() => new Connection(pool, { poolShare: -1 }), { kind: 'argument', message: /^config.poolShare/ });
  assert.throws(() => new Connection(pool, { streamHighWatermark: '1' }), { kind: 'argument', message: /^config.streamHighWatermark/ });
  assert.throws(() => new Pool({ budget: 1 }), { kind: 'argument', message: /`budget`/ });
  assert.throws(() => new Pool([]), { kind: 'argument', message: /^config: expected an object/ });
});
