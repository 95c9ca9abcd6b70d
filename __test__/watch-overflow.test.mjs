// Issue 14.5, second half: a watch queue that overflows (inotify's
// IN_Q_OVERFLOW, notify's `Rescan` flag) loses events, so the bridge
// rescans every session. Deterministic here: the bridge runs in a child
// process that is SIGSTOPped, so nothing reads its inotify queue; more
// events than /proc/sys/fs/inotify/max_queued_events are made in its
// watched tree; then a mission is appended to another session, whose events
// the kernel drops (the queue is full). After SIGCONT, only the rescan can
// find that mission: with a working watch the bridge does not poll at all
// (and pollIntervalMs is 10 minutes anyway).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { spawnBridge } from './helpers/bridge-process.mjs';
import { startScriptedServe } from './helpers/scripted-serve.mjs';
import { scope, waitFor } from './helpers/waiting.mjs';

const MAX_QUEUED = '/proc/sys/fs/inotify/max_queued_events';
/** More events than this are not worth making in a test. */
const MOST_EVENTS = 1_000_000;

/** The kernel's per-instance inotify queue length, or why there is none to overflow here. */
function queueLimit() {
  if (process.platform !== 'linux') return { skip: 'inotify is Linux only' };
  let text;
  try {
    text = fs.readFileSync(MAX_QUEUED, 'utf8');
  } catch (err) {
    return { skip: `cannot read ${MAX_QUEUED}: ${err.code}` };
  }
  const limit = Number.parseInt(text, 10);
  if (!(limit > 0)) return { skip: `${MAX_QUEUED} reads ${JSON.stringify(text.trim())}` };
  if (limit > MOST_EVENTS) return { skip: `${MAX_QUEUED} is ${limit}: too many events to overflow it in a test` };
  return { limit };
}

/** Every thread of `pid` is stopped (state T, or t under a tracer). */
function stopped(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).every((tid) => {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // The state follows the command name's closing parenthesis.
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state === 'T' || state === 't';
    });
  } catch {
    return false;
  }
}

/** A session file `dir` under `root` holding `missions`; → its path. */
function writeSession(root, dir, missions) {
  const file = path.join(root, 'sessions', dir, 'session.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ id: dir, missions }, null, 2));
  return file;
}

const statusOf = (file, id) => JSON.parse(fs.readFileSync(file, 'utf8')).missions.find((m) => m.id === id)?.status;

const QUEUE = queueLimit();

describe('watch-queue overflow (issue 14.5)', { skip: QUEUE.skip }, () => {
  it('events lost to a full inotify queue: the overflow is logged once and a full rescan finds the mission they announced, POSTed once', { timeout: 60_000 }, async (t) => {
    const s = scope(t);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-watch-overflow-'));
    s.defer(() => fs.rmSync(root, { recursive: true, force: true }));
    const seed = writeSession(root, 'mc-seed', [{ id: 'm-seed', objective: 'o', status: 'queued' }]);
    const late = writeSession(root, 'mc-late', [{ id: 'm-done', objective: 'o', status: 'done' }]);
    // The flood's targets: two files in the watched tree that are no session's.
    const floods = ['flood-a.bin', 'flood-b.bin'].map((n) => path.join(root, 'sessions', 'mc-seed', n));
    for (const f of floods) fs.writeFileSync(f, '');

    const serve = await startScriptedServe(() => ({ status: 202, body: { executor_id: 'ex-overflow' } }));
    s.defer(() => serve.close());
    const posted = () => serve.requests.map((r) => JSON.parse(r.body).mission_id);
    const POLL_MS = 600_000;
    const bridge = spawnBridge(s, { aiwgServeUrl: serve.url, watchDir: root, pollIntervalMs: POLL_MS, disableWSSubscription: true });
    await bridge.ready;
    await waitFor(() => statusOf(seed, 'm-seed') === 'assigned', 10_000, `the seed mission assigned (${bridge.stderr})`);
    // The bridge's own events (its write of the seed) are read by now.
    await delay(200);
    assert.ok(!bridge.logs.some((l) => l.msg === 'queue-tailer:watch-degraded'), 'the watch must cover the tree: no polling here');

    const pid = bridge.child.pid;
    process.kill(pid, 'SIGSTOP');
    let resumed = false;
    const resume = () => {
      if (!resumed && !bridge.exit) process.kill(pid, 'SIGCONT');
      resumed = true;
    };
    s.defer(async () => resume());
    await waitFor(() => stopped(pid), 5000, 'the bridge stopped');

    // One byte written in place is one IN_MODIFY event; the two files take
    // turns, so no event is the same as the one before it, which is all
    // inotify merges. (Rewriting a file with O_TRUNC would be slow on ext4:
    // a truncate flushes the old data.)
    const writes = QUEUE.limit + 1000;
    const fds = floods.map((f) => fs.openSync(f, 'r+'));
    try {
      const byte = Buffer.from('x');
      for (let i = 0; i < writes; i++) fs.writeSync(fds[i % 2], byte, 0, 1, 0);
    } finally {
      for (const fd of fds) fs.closeSync(fd);
    }
    // The queue is full: this append's events are dropped.
    const doc = JSON.parse(fs.readFileSync(late, 'utf8'));
    doc.missions.push({ id: 'm-late', objective: 'o', status: 'queued' });
    fs.writeFileSync(`${late}.append.tmp`, JSON.stringify(doc, null, 2));
    fs.renameSync(`${late}.append.tmp`, late);
    assert.ok(stopped(pid), 'the bridge ran during the flood');
    assert.deepEqual(posted(), ['m-seed']);

    const resumedAt = Date.now();
    resume();
    await waitFor(() => posted().includes('m-late'), 20_000, 'the appended mission POSTed after SIGCONT');
    const foundMs = Date.now() - resumedAt;
    await waitFor(() => statusOf(late, 'm-late') === 'assigned', 10_000, 'the appended mission assigned');
    const assignedMs = Date.now() - resumedAt;
    // Anything that would POST it again has had its chance.
    await delay(500);
    assert.deepEqual(posted(), ['m-seed', 'm-late'], 'each mission POSTed exactly once');
    const overflows = bridge.logs.filter((l) => l.msg === 'queue-tailer:watch-overflow');
    assert.equal(overflows.length, 1, `one watch-overflow line: ${JSON.stringify(overflows)}`);
    assert.equal(overflows[0].meta.watchDir, fs.realpathSync(root));
    assert.ok(overflows[0].meta.changed >= 1, JSON.stringify(overflows[0].meta));
    assert.ok(!bridge.logs.some((l) => l.msg === 'queue-tailer:watch-degraded'), 'an overflow is not a degraded watch');
    assert.equal(statusOf(seed, 'm-seed'), 'assigned');
    t.diagnostic(`queue ${QUEUE.limit} events, ${writes} writes; overflow line ${JSON.stringify(overflows[0].meta)}; after SIGCONT: POSTed in ${foundMs} ms, assigned in ${assignedMs} ms (poll interval ${POLL_MS} ms)`);

    bridge.child.send({ type: 'stop' });
    await bridge.exited;
    assert.deepEqual(bridge.exit, { code: 0, signal: null }, bridge.stderr);
  });
});
