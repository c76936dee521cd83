// A typed use of both builds' declarations: `tsc -p test/types` must accept
// it, including each `@ts-expect-error` line being an error.

import { Connection, Pool, defaultConfig, type Frame, type H2fwError, type Header, type Stats } from 'h2fw';
import * as component from 'h2fw/component';

const pool = new Pool({ budgetBytes: 1 << 20 });
const conn = new Connection(pool, { ...defaultConfig(), streamHighWatermark: 1 << 16 });
const headers: Header[] = [[':method', 'GET'], [':path', '/'], ['authorization', 'secret', true]];
conn.writePreface();
conn.openStream(1, headers, { contentLength: 5 });
const accepted: number = conn.send(1, new Uint8Array(5));
conn.finish(1, [['x-done', String(accepted)]]);
const frame: Frame = { type: 'window-update', stream: 0, increment: 1 << 20 };
conn.writeFrame(frame);
const wire: Uint8Array = conn.drain(16_384);
const stats: Stats = conn.stats();
let detail: string | undefined;
try {
  conn.applyWindowUpdate(0, 0);
} catch (error) {
  const typed = error as H2fwError;
  detail = typed.kind === 'frame' ? typed.detail : undefined;
}
export const seen = [detail, wire.length, stats.frames];
// @ts-expect-error a header needs a value
conn.writeHeaders(3, [[':path']]);
// @ts-expect-error not a frame type
conn.writeFrame({ type: 'nope' });
conn.free();
pool.free();

const shared = new component.Pool();
new component.Connection(shared).writePreface();
