// The build under test, chosen by H2FW_BUILD: `node` (wasm-bindgen,
// --target nodejs), `web` (wasm-bindgen, --target web, initialised from the
// file) or `component` (the WASI component under jco). Every test file
// imports the API from here, so each runs unchanged against all three.

import { readFileSync } from 'node:fs';

const BUILDS = {
  node: () => import('h2fw'),
  web: async () => {
    const web = await import('../../pkg/web/h2fw.js');
    web.initSync({ module: readFileSync(new URL('../../pkg/web/h2fw_bg.wasm', import.meta.url)) });
    return web;
  },
  component: () => import('h2fw/component'),
};

const name = process.env.H2FW_BUILD;
if (!Object.hasOwn(BUILDS, name)) {
  throw new Error(`set H2FW_BUILD to one of ${Object.keys(BUILDS).join(', ')} (got ${JSON.stringify(name)})`);
}

/** The build's name. */
export const build = name;
export const { Pool, Connection, defaultConfig, defaultPoolConfig } = await BUILDS[name]();

/** Request headers for `path` (a POST unless `method` says otherwise). */
export function request(path, authority = 'example.com', method = 'POST') {
  return [
    [':method', method],
    [':scheme', 'http'],
    [':path', path],
    [':authority', authority],
  ];
}

/** Bytes from hex text (whitespace ignored). */
export function hex(text) {
  return Uint8Array.from(text.replace(/\s+/g, '').match(/../g) ?? [], (pair) => parseInt(pair, 16));
}
