// RFC 7541 Appendix C, byte for byte, where the connection API can express
// it. The connection's encoder codes a string with Huffman only when that is
// shorter and indexes selectively (never `:path`, `location`, `set-cookie`),
// so C.4 (requests, Huffman) is reproduced whole, and C.1 through the
// dynamic table size updates that a peer's HEADER_TABLE_SIZE causes. C.2.1–
// C.2.3, C.3, C.5 and C.6 need the RFC's "always"/"never" Huffman or
// index-everything choices, which the connection does not offer (the
// library's own tests check them against its encoder directly).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { readFrames } from '../../examples/frames.js';
import { Connection, Pool, hex } from './build.js';

/** Writes `fields` as HEADERS on `stream`, checks the frame header, returns the block. */
function headerBlock(conn, stream, fields) {
  conn.writeHeaders(stream, fields);
  const { frames, rest } = readFrames(conn.drain());
  assert.equal(rest.length, 0);
  assert.equal(frames.length, 1);
  const [frame] = frames;
  assert.deepEqual([frame.name, frame.flags, frame.stream], ['HEADERS', 0x4, stream], 'HEADERS with END_HEADERS');
  return frame.payload;
}

const REQUESTS = [
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
    ['cache-control', 'no-cache'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ],
];

test('C.4: three requests with Huffman coding on one connection', () => {
  const conn = new Connection(new Pool());
  const expected = [
    '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
    '8286 84be 5886 a8eb 1064 9cbf',
    '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
  ];
  REQUESTS.forEach((fields, index) => {
    assert.deepEqual(headerBlock(conn, 1 + 2 * index, fields), hex(expected[index]), `C.4.${index + 1}`);
  });
});

test('C.2.4: an indexed field', () => {
  const conn = new Connection(new Pool());
  assert.deepEqual(headerBlock(conn, 1, [[':method', 'GET']]), hex('82'));
});

test('C.1.1 and C.1.2: integers in a 5-bit prefix, as dynamic table size updates', () => {
  const conn = new Connection(new Pool());
  conn.applyPeerSettings([[1, 10]]); // HEADER_TABLE_SIZE 10: fits the prefix (C.1.1: 0a)
  assert.deepEqual(headerBlock(conn, 1, [[':method', 'GET']]), hex('2a 82'));
  conn.applyPeerSettings([[1, 1337]]); // C.1.2: 1337 is 1f 9a 0a
  assert.deepEqual(headerBlock(conn, 3, [[':method', 'GET']]), hex('3f 9a 0a 82'));
});
