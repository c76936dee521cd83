// The web build in a real browser: the example page (examples/browser),
// served from loopback, encodes frame scripts in headless Chromium (Debian's
// `chromium`, driven by playwright-core; CHROMIUM names the binary). The test
// reads what the page shows: the decoded frames, the error line, and the
// SHA-256 of the bytes, which must equal the Node build's for the same script.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';

import { chromium } from 'playwright-core';

import { Connection, Pool } from 'h2fw';
import { runScript } from '../../examples/frame-script.js';
import { serve } from '../../examples/serve.js';

const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** What the page shows after encoding `script`: table rows (without the index column), summary, error. */
async function encodeInPage(page, script) {
  await page.fill('#script', script);
  await page.click('#encode');
  await page.waitForFunction(() => document.getElementById('status').textContent !== 'encoding…');
  assert.equal(await page.textContent('#status'), 'encoded');
  const rows = await page.$$eval('#frames tr', (trs) => trs.map((tr) => [...tr.children].slice(1).map((td) => td.textContent)));
  return { rows, summary: await page.textContent('#summary'), error: await page.textContent('#error') };
}

/** The summary the page should show for `script`, computed with the Node build. */
function nodeSummary(script) {
  const { bytes } = runScript(script, new Connection(new Pool()));
  return `${bytes.length} bytes, sha256 ${createHash('sha256').update(bytes).digest('hex')}`;
}

test('the example page encodes frame scripts in Chromium and shows the frames decoded', { timeout: 120_000 }, async (t) => {
  const server = await serve(0);
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  t.after(async () => {
    await browser.close();
    server.close();
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(30_000);
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error));
  await page.goto(`http://127.0.0.1:${server.address().port}/examples/browser/`);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'ready');

  await t.test('the example script of docs/frame-script.md', async () => {
    const script = await page.inputValue('#script');
    const { rows, summary, error } = await encodeInPage(page, script);
    const headers = rows[2];
    const blockLength = Number(headers[4]);
    const data = (offset, flags, length) => [String(offset), 'DATA', flags, '1', String(length), `${length} data bytes`];
    const dataStart = 24 + 9 + 12 + 9 + blockLength;
    assert.deepEqual(rows, [
      ['0', 'preface', '-', '-', '24', 'client connection preface'],
      ['24', 'SETTINGS', '-', '0', '12', 'MAX_CONCURRENT_STREAMS=100, INITIAL_WINDOW_SIZE=1048576'],
      ['45', 'HEADERS', 'END_HEADERS', '1', String(blockLength), `${blockLength}-byte header block`],
      ...[0, 1, 2, 3, 4, 5].map((i) => data(dataStart + i * (9 + 16_384), '-', 16_384)),
      data(dataStart + 6 * (9 + 16_384), 'END_STREAM', 100_000 - 6 * 16_384),
      [String(dataStart + 7 * 9 + 100_000), 'GOAWAY', '-', '0', '8', 'last stream 0, NO_ERROR'],
    ]);
    assert.ok(blockLength > 0);
    assert.equal(error, '');
    assert.equal(summary, nodeSummary(script));
  });

  await t.test('a refused line: its error is shown, the frames before it are whole', async () => {
    const script = [
      '{"type":"peer_settings","settings":[[5,32768]]}',
      '{"type":"data","stream":1,"data_b64":"aGVsbG8=","pad_length":3}',
      '# MAX_FRAME_SIZE 32768 splits this body in two',
      '{"type":"data","stream":3,"repeat":{"byte":0,"len":40000}}',
      '{"type":"headers","stream":5,"headers":[["Bad","x"]]}',
      '{"type":"ping"}',
    ].join('\n');
    const { rows, summary, error } = await encodeInPage(page, script);
    assert.deepEqual(rows, [
      ['0', 'DATA', 'PADDED', '1', '9', '5 data bytes, 3 padding'],
      ['18', 'DATA', '-', '3', '32768', '32768 data bytes'],
      [String(18 + 9 + 32_768), 'DATA', '-', '3', '7232', '7232 data bytes'],
    ]);
    assert.match(error, /^line 5: header name "Bad": .* \(hpack\)$/);
    assert.equal(summary, nodeSummary(script));
  });

  await t.test('a line the script format refuses names the line and the field', async () => {
    const { rows, error } = await encodeInPage(page, '{"type":"ping"}\n{"type":"ping","opaque":"00"}');
    assert.deepEqual(rows.map((row) => row[1]), ['PING']);
    assert.equal(error, 'line 2: ping: unknown field `opaque`');
  });

  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
});
