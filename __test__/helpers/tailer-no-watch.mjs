// Child process for __test__/queue-tailer.test.mjs (issue 14.6): a tailer
// whose file-system watch cannot start falls back to polling and says so.
//
//   MC_NATIVE_FAULT=tailer-no-watch node tailer-no-watch.mjs
//
// MC_NATIVE_FAULT=tailer-no-watch is the addon's test-only switch for a
// watch that fails to start (as on a file system without inotify). This
// queues a mission, lets the tailer dispatch it, appends a second one by
// temp file + rename, and prints one JSON line {logs, metas, posted,
// appendMs}: the log lines, their metas, the mission ids serve received
// and how long the append took to reach serve.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { startQueueTailer } from '../../esm/queue-tailer.mjs';
import { startScriptedServe } from './scripted-serve.mjs';

const POLL_MS = 200;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-no-watch-'));
const file = path.join(root, 'sessions', 'mc-polled', 'session.json');
fs.mkdirSync(path.dirname(file), { recursive: true });
const session = { id: 'mc-polled', missions: [{ id: 'm-first', objective: 'o', status: 'queued' }] };
fs.writeFileSync(file, JSON.stringify(session, null, 2));

const serve = await startScriptedServe(() => ({ status: 202, body: { executor_id: 'ex-1' } }));
const posted = () => serve.requests.map((r) => JSON.parse(r.body).mission_id);
const logs = [];
const metas = {};
const tailer = await startQueueTailer({
  aiwgServeUrl: serve.url,
  watchDir: root,
  pollIntervalMs: POLL_MS,
  disableWSSubscription: true,
  logger: (msg, meta) => {
    logs.push(msg);
    (metas[msg] ||= []).push(meta);
  },
});
const until = async (check) => {
  const deadline = Date.now() + 10_000;
  while (!check() && Date.now() < deadline) await delay(5);
};
const written = () => JSON.parse(fs.readFileSync(file, 'utf8'));
await until(() => written().missions[0].status === 'assigned');
const doc = written();
doc.missions.push({ id: 'm-appended', objective: 'o', status: 'queued' });
fs.writeFileSync(`${file}.append.tmp`, JSON.stringify(doc, null, 2));
const appendedAt = Date.now();
fs.renameSync(`${file}.append.tmp`, file);
await until(() => posted().includes('m-appended'));
const appendMs = Date.now() - appendedAt;
await tailer.stop();
await serve.close();
fs.rmSync(root, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify({ logs, metas, posted: posted(), appendMs, pollMs: POLL_MS })}\n`);
