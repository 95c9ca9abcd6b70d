// Child process for __test__/queue-tailer.test.mjs: a failure inside the
// native tailer after `ready` (SPEC §6, issue 12) is reported, not lost.
//
//   MC_NATIVE_FAULT=tailer-after-ready node tailer-fault.mjs [stop|nostop]
//
// MC_NATIVE_FAULT is the addon's test-only fault switch: a tailer task
// panics right after `ready`. This starts a tailer on an empty temp dir,
// waits for its `queue-tailer:stop` line (the tailer stops itself after an
// internal error), then (mode `stop`) calls stop() and records how it
// settled. It prints one JSON line {logs, metas, started, rejected} and then
// does nothing: no timers, no handles. The parent expects the process to
// exit by itself, with code 0 (no unhandled rejection, no crash).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { startQueueTailer } from '../../esm/queue-tailer.mjs';

const mode = process.argv[2] || 'stop';
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-tailer-fault-'));
const logs = [];
const metas = {};
const tailer = await startQueueTailer({
  aiwgServeUrl: 'http://127.0.0.1:9',
  watchDir: root,
  disableWSSubscription: true,
  logger: (msg, meta) => {
    logs.push(msg);
    (metas[msg] ||= []).push(meta);
  },
});
const started = typeof tailer.stop === 'function';
const deadline = Date.now() + 10_000;
while (!logs.includes('queue-tailer:stop') && Date.now() < deadline) await delay(10);
let rejected = null;
if (mode === 'stop') {
  try {
    await tailer.stop();
  } catch (err) {
    rejected = { isError: err instanceof Error, message: err.message };
  }
}
fs.rmSync(root, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify({ logs, metas, started, rejected })}\n`);
