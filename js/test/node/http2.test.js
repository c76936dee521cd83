// A real peer: node:http2's server (nghttp2) on loopback. The client is a
// plain TCP socket carrying h2fw's bytes; the server's SETTINGS, WINDOW_UPDATE
// and PING frames are read with a minimal frame reader and fed back. Several
// streams with bodies larger than the initial window, and trailers, must
// arrive intact at the server's request handler.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';

import { readFrames, settingsOf } from '../../examples/frames.js';
import { Connection, Pool, request } from './build.js';

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** A node:http2 server on 127.0.0.1 that records every request it handles. */
async function startServer() {
  const received = new Map();
  const server = http2.createServer({ settings: { initialWindowSize: 65_535 } }, (req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.set(req.url, { method: req.method, headers: req.headers, body, trailers: req.trailers });
      res.end(`got ${body.length}`);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, received, port: server.address().port };
}

/**
 * Uploads `bodies` (one stream each, to /upload/`name`/`stream id`) over one
 * connection from `pool`, with trailers; resolves with the connection's
 * final stats when the server has answered every stream.
 */
async function upload(pool, port, name, bodies) {
  const conn = new Connection(pool, { streamHighWatermark: 32 << 10 });
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const streams = bodies.map((body, index) => ({ id: 1 + 2 * index, body, offset: 0, finished: false }));
  const answered = new Set();
  const authority = `127.0.0.1:${port}`;

  conn.writePreface();
  conn.writeFrame({ type: 'settings', settings: [[2, 0]] }); // ENABLE_PUSH 0
  for (const [index, stream] of streams.entries()) {
    const headers = [...request(`/upload/${name}/${stream.id}`, authority), ['content-type', 'application/octet-stream']];
    // Every other stream declares its length (a hint for the writer's chunk sizes).
    conn.openStream(stream.id, headers, index % 2 ? {} : { contentLength: stream.body.length });
  }

  /** Offers what the writer will take, finishes what is all taken, writes what is ready. */
  const pump = () => {
    for (const stream of streams) {
      while (stream.offset < stream.body.length) {
        try {
          stream.offset += conn.send(stream.id, stream.body.subarray(stream.offset, stream.offset + (48 << 10)));
        } catch (error) {
          if (error.kind !== 'would-block') throw error;
          break;
        }
      }
      if (stream.offset === stream.body.length && !stream.finished) {
        conn.finish(stream.id, [['x-sha256', sha256(stream.body)], ['x-length', String(stream.body.length)]]);
        stream.finished = true;
      }
    }
    const wire = conn.drain();
    if (wire.length > 0) socket.write(wire);
  };

  const done = new Promise((resolve, reject) => {
    let pending = new Uint8Array();
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`server closed the connection; answered ${[...answered]}`)));
    socket.on('data', (chunk) => {
      try {
        const { frames, rest } = readFrames(Buffer.concat([pending, chunk]));
        pending = rest;
        for (const frame of frames) {
          if (frame.name === 'SETTINGS' && !(frame.flags & 1)) {
            conn.applyPeerSettings(settingsOf(frame.payload));
            conn.writeFrame({ type: 'settings-ack' });
          } else if (frame.name === 'WINDOW_UPDATE') {
            conn.applyWindowUpdate(frame.stream, new DataView(frame.payload.buffer, frame.payload.byteOffset).getUint32(0) & 0x7fff_ffff);
          } else if (frame.name === 'PING' && !(frame.flags & 1)) {
            conn.writeFrame({ type: 'ping', opaqueData: frame.payload, ack: true });
          } else if (frame.name === 'GOAWAY' || frame.name === 'RST_STREAM') {
            throw new Error(`server sent ${frame.name} on stream ${frame.stream}: ${Buffer.from(frame.payload).toString('hex')}`);
          } else if ((frame.name === 'HEADERS' || frame.name === 'DATA') && frame.flags & 1) {
            answered.add(frame.stream); // END_STREAM of the response
          }
        }
        pump();
        if (answered.size === streams.length) resolve();
      } catch (error) {
        reject(error);
      }
    });
  });
  pump();
  try {
    await done;
  } finally {
    socket.destroy();
  }
  const stats = conn.stats();
  conn.free();
  return stats;
}

/** Checks that the server's handler got `bodies` whole, with their trailers. */
function assertReceived(received, name, bodies) {
  bodies.forEach((body, index) => {
    const path = `/upload/${name}/${1 + 2 * index}`;
    const request = received.get(path);
    assert.ok(request, `${path} reached the handler`);
    assert.equal(request.method, 'POST');
    assert.equal(request.headers['content-type'], 'application/octet-stream');
    assert.ok(body.length > 65_535, 'larger than the initial window');
    assert.equal(request.body.length, body.length);
    assert.ok(request.body.equals(body), `${path}: body intact`);
    assert.deepEqual(
      { sha: request.trailers['x-sha256'], length: request.trailers['x-length'] },
      { sha: sha256(body), length: String(body.length) },
    );
  });
}

test('streams larger than the window, with trailers, arrive intact at node:http2', { timeout: 60_000 }, async () => {
  const { server, received, port } = await startServer();
  try {
    const bodies = [200_000, 70_001, 131_072, 100_000].map((n) => randomBytes(n));
    const pool = new Pool();
    const stats = await upload(pool, port, 'one', bodies);
    assert.equal(received.size, bodies.length);
    assertReceived(received, 'one', bodies);
    assert.deepEqual([stats.openStreams, stats.pendingBytes, stats.liveBytes], [0, 0, 0], 'everything handed out');
    assert.equal(pool.stats().leasedBytes, 0, 'every buffer back in the pool');
  } finally {
    server.close();
  }
});

test('two connections sharing one pool upload at the same time', { timeout: 60_000 }, async () => {
  const { server, received, port } = await startServer();
  try {
    const pool = new Pool();
    const first = [90_000, 150_000].map((n) => randomBytes(n));
    const second = [120_000, 66_000, 80_000].map((n) => randomBytes(n));
    await Promise.all([upload(pool, port, 'first', first), upload(pool, port, 'second', second)]);
    assert.equal(received.size, first.length + second.length);
    assertReceived(received, 'first', first);
    assertReceived(received, 'second', second);
    assert.equal(pool.stats().leasedBytes, 0);
    assert.equal(pool.stats().connections, 0);
  } finally {
    server.close();
  }
});
