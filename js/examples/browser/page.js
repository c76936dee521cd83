// The example page: encodes the frame script in the textarea with the web
// build and shows every frame written, decoded, plus the bytes' SHA-256.

import init, { Connection, Pool } from '../../pkg/web/h2fw.js';
import { runScript } from '../frame-script.js';
import { PREFACE, describe, flagNames, readFrames } from '../frames.js';

const $ = (id) => document.getElementById(id);

/** One table row of cells. */
function row(cells) {
  const tr = document.createElement('tr');
  for (const cell of cells) tr.appendChild(document.createElement('td')).textContent = cell;
  return tr;
}

async function encode() {
  const pool = new Pool();
  const conn = new Connection(pool);
  const { bytes, error } = runScript($('script').value, conn);
  conn.free();
  pool.free();

  const rows = [];
  let start = 0;
  if (PREFACE.every((byte, i) => bytes[i] === byte)) {
    rows.push(['0', 'preface', '-', '-', String(PREFACE.length), 'client connection preface']);
    start = PREFACE.length;
  }
  const { frames, rest } = readFrames(bytes.subarray(start));
  for (const frame of frames) {
    rows.push([String(start + frame.offset), frame.name, flagNames(frame), String(frame.stream), String(frame.payload.length), describe(frame)]);
  }
  if (rest.length) rows.push([String(bytes.length - rest.length), 'incomplete', '-', '-', String(rest.length), '']);
  $('frames').replaceChildren(...rows.map((cells, index) => row([String(index), ...cells])));

  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const sha = Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
  $('summary').textContent = `${bytes.length} bytes, sha256 ${sha}`;
  $('error').textContent = error ? `${error.message}${error.kind ? ` (${error.kind})` : ''}` : '';
  $('status').textContent = 'encoded';
}

await init();
$('encode').addEventListener('click', () => {
  $('status').textContent = 'encoding…';
  encode().catch((failure) => {
    $('error').textContent = String(failure);
    $('status').textContent = 'failed';
  });
});
$('encode').disabled = false;
$('status').textContent = 'ready';
