// The connection's operations through the JS API: exact bytes for the
// fixed-format frames, flow control, backpressure, trailers, the shared pool.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PREFACE, readFrames } from '../../examples/frames.js';
import { Connection, Pool, defaultConfig, defaultPoolConfig, hex, request } from './build.js';

/** The frames `conn` hands out now, as `[name, flags, stream, payload length]`. */
function drained(conn) {
  const { frames, rest } = readFrames(conn.drain());
  assert.equal(rest.length, 0, 'whole frames only');
  return frames.map((frame) => [frame.name, frame.flags, frame.stream, frame.payload.length]);
}

test('the defaults are the library defaults', () => {
  assert.deepEqual(defaultConfig(), {
    poolShare: null,
    streamHighWatermark: 512 << 10,
    connHighWatermark: 64 << 20,
    maxHeaderTableSize: 4096,
    outputHighWatermark: 64 << 10,
  });
  assert.deepEqual(defaultPoolConfig(), {
    minClass: 256,
    maxClass: 16 << 20,
    idlePerClass: 8,
    idleTotalBytes: 1 << 20,
    budgetBytes: 256 << 20,
  });
});

test('preface and fixed-format frames, byte for byte', () => {
  const conn = new Connection(new Pool());
  conn.writePreface();
  assert.deepEqual(conn.drain(), PREFACE);
  conn.writeFrame({ type: 'settings', settings: [[3, 100], [4, 1 << 20]] });
  assert.deepEqual(conn.drain(), hex('00000c 04 00 00000000  0003 00000064  0004 00100000'));
  conn.writeFrame({ type: 'settings-ack' });
  conn.writeFrame({ type: 'window-update', stream: 0, increment: 1 << 20 });
  conn.writeFrame({ type: 'ping', opaqueData: hex('0102030405060708'), ack: true });
  conn.writeFrame({ type: 'goaway', lastStreamId: 7, errorCode: 2, debugData: new TextEncoder().encode('bye') });
  conn.reset(5, 8);
  assert.deepEqual(
    conn.drain(),
    hex(`000000 04 01 00000000
         000004 08 00 00000000 00100000
         000008 06 01 00000000 0102030405060708
         00000b 07 00 00000000 00000007 00000002 627965
         000004 03 00 00000005 00000008`),
  );
  conn.writeFrame({ type: 'extension', frameType: 0xfa, flags: 3, stream: 9, payload: hex('ab') });
  conn.writeFrame({ type: 'priority', stream: 3, priority: { streamDependency: 1, weight: 15, exclusive: true } });
  assert.deepEqual(conn.drain(), hex('000001 fa 03 00000009 ab  000005 02 00 00000003 80000001 0f'));
});

test('a body larger than the windows waits for WINDOW_UPDATE, then ends with trailers', () => {
  const conn = new Connection(new Pool());
  conn.openStream(1, request('/upload'), { contentLength: 100_000 });
  const body = new Uint8Array(100_000).fill(7);
  assert.equal(conn.send(1, body), body.length, 'below the stream watermark: all accepted');
  conn.finish(1, [['x-checksum', 'abc']]);
  const first = drained(conn);
  assert.deepEqual(first[0].slice(0, 3), ['HEADERS', 0x4, 1]);
  const dataBytes = (frames) => frames.filter(([name]) => name === 'DATA').reduce((sum, f) => sum + f[3], 0);
  assert.equal(dataBytes(first), 65_535, 'the initial windows');
  assert.equal(conn.stats().pendingBytes, 100_000 - 65_535);
  assert.deepEqual(drained(conn), [], 'nothing more until the peer opens the windows');

  conn.applyWindowUpdate(0, 40_000);
  conn.applyWindowUpdate(1, 40_000);
  const rest = drained(conn);
  assert.equal(dataBytes(rest), 100_000 - 65_535);
  assert.deepEqual(rest.at(-1).slice(0, 3), ['HEADERS', 0x5, 1], 'trailers: END_STREAM | END_HEADERS');
  assert.ok(rest.every(([, flags, stream], i) => stream === 1 && (i === rest.length - 1 || !(flags & 1))));
  const stats = conn.stats();
  assert.deepEqual([stats.openStreams, stats.pendingBytes, stats.liveBytes], [0, 0, 0]);
  assert.equal(stats.connWindow, 65_535 + 40_000 - 100_000);
});

test('sendAndDrain hands out the frames at once; finish without trailers ends with an empty DATA', () => {
  const conn = new Connection(new Pool());
  conn.openStream(1, request('/'));
  conn.drain();
  const sent = conn.sendAndDrain(1, new TextEncoder().encode('hello'));
  assert.equal(sent.accepted, 5);
  assert.deepEqual(sent.wire, hex('000005 00 00 00000001 68656c6c6f'));
  conn.finish(1);
  assert.deepEqual(conn.drain(), hex('000000 00 01 00000001'));
});

test('drain(maxBytes) hands out at most that many bytes', () => {
  const conn = new Connection(new Pool());
  conn.writePreface();
  assert.deepEqual(conn.drain(10), PREFACE.subarray(0, 10));
  assert.deepEqual(conn.drain(), PREFACE.subarray(10));
});

test('backpressure: past the stream watermark send takes less, then throws would-block', () => {
  const conn = new Connection(new Pool(), { streamHighWatermark: 1000 });
  conn.applyPeerSettings([[4, 0]]); // INITIAL_WINDOW_SIZE 0: nothing can be framed
  conn.openStream(1, request('/'));
  assert.equal(conn.send(1, new Uint8Array(3000)), 1000);
  assert.throws(() => conn.send(1, new Uint8Array(1)), { name: 'H2fwError', kind: 'would-block' });
  assert.equal(conn.stats().pendingBytes, 1000);
});

test('one pool shared by two connections', () => {
  const pool = new Pool({ budgetBytes: 1 << 20 });
  const a = new Connection(pool);
  const b = new Connection(pool, { poolShare: 64 << 10 });
  assert.equal(pool.stats().connections, 2);
  a.writePreface();
  b.writePreface();
  assert.ok(pool.stats().leasedBytes > 0, 'queued output is leased from the pool');
  assert.equal(pool.stats().leasedBytes, a.stats().leasedBytes + b.stats().leasedBytes);
  a.drain();
  b.drain();
  assert.equal(pool.stats().leasedBytes, 0, 'drained chunks go back at once');
  a.free();
  assert.equal(pool.stats().connections, 1);
  b.free();
  assert.equal(pool.stats().connections, 0);
  assert.ok(pool.stats().classes.every((c) => c.leasedBuffers === 0));
});
