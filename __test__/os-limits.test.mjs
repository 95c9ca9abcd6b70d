// Issue 14.4 and 14.5: a bridge out of file descriptors, and out of inotify
// watches.
//
// Out of descriptors: the bridge runs in a child
// whose shell set `ulimit -n 32` before exec'ing node: Node and the addon's
// runtime take about 25 of them, so a handful are left for claims,
// connections, reads and writes. Every mission must still be dispatched as
// descriptors free up, once each, every file must stay whole, and the
// shortage must be logged once, not once per file.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fork, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeServe } from './helpers/lifecycle-serve.mjs';
import { scope, waitFor } from './helpers/waiting.mjs';
import { reportFault, sessionReads } from './helpers/fault-report.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const BRIDGE = path.join(here, 'helpers', 'lifecycle-bridge.mjs');
const LIMIT = 32;
const SESSIONS = 200;
const MISSIONS = 2;

/** Why a shell cannot lower the descriptor limit here, or null. */
function whyNoUlimit() {
  if (process.platform === 'win32') return 'no ulimit on Windows';
  const probe = spawnSync('/bin/sh', ['-c', `ulimit -n ${LIMIT} && ulimit -n`], { encoding: 'utf8' });
  if (probe.status !== 0 || probe.stdout.trim() !== String(LIMIT)) {
    return `/bin/sh cannot set ulimit -n ${LIMIT}: ${probe.stderr || probe.stdout}`.trim();
  }
  return null;
}

describe('out of file descriptors (ulimit -n 32)', { skip: whyNoUlimit() ?? false }, () => {
  it(`${SESSIONS * MISSIONS} missions in ${SESSIONS} sessions: all dispatched once as descriptors free up, no file broken, the shortage logged once`, async (t) => {
    const s = scope(t);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-emfile-'));
    s.defer(() => fs.rmSync(root, { recursive: true, force: true }));
    for (let i = 0; i < SESSIONS; i++) {
      const dir = path.join(root, 'sessions', `s-${i}`);
      fs.mkdirSync(dir, { recursive: true });
      const missions = Array.from({ length: MISSIONS }, (_, j) => ({ id: `m-${j}`, status: 'queued', objective: `o ${i}/${j}` }));
      fs.writeFileSync(path.join(dir, 'session.json'), JSON.stringify({ id: `s-${i}`, missions }, null, 2));
    }
    const serve = await startFakeServe({ executorFor: () => 'ex-1' });
    s.defer(() => serve.close());

    const logs = [];
    const child = fork(BRIDGE, [], {
      // The limit is set by the shell that then becomes node: only the bridge has it.
      execPath: '/bin/sh',
      execArgv: ['-c', `ulimit -n ${LIMIT} && exec "$0" "$@"`, process.execPath],
      env: { ...process.env, LIFECYCLE_BRIDGE_OPTIONS: JSON.stringify({ aiwgServeUrl: serve.url, watchDir: root }) },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    s.defer(() => child.kill('SIGKILL'));
    child.on('message', (m) => {
      if (m.type === 'log') logs.push(m);
    });

    // Corrupt reads: every file parses whenever it is looked at.
    const files = fs.readdirSync(path.join(root, 'sessions')).map((dir) => path.join(root, 'sessions', dir, 'session.json'));
    const reads = sessionReads(files);
    const total = SESSIONS * MISSIONS;
    const started = performance.now();
    await waitFor(() => reads.statuses().filter((st) => st === 'assigned').length === total, 150_000, `all ${total} missions assigned`);
    const allMs = performance.now() - started;

    const posted = serve.dispatches.map((d) => `${d.sessionId}/${d.missionId}`);
    assert.equal(posted.length, total, 'one POST per mission');
    assert.equal(new Set(posted).size, total, 'no mission POSTed twice');
    const named = (msg) => logs.filter((l) => l.msg === msg);
    // The point of the test is the shortage: it must have happened.
    const exhausted = named('queue-tailer:descriptors-exhausted');
    assert.equal(exhausted.length, 1, `the shortage logged once: ${JSON.stringify(exhausted.map((l) => l.meta))}`);
    assert.match(exhausted[0].meta.error, /Too many open files/);
    assert.equal(exhausted[0].meta.limit, LIMIT);
    for (const flood of ['queue-tailer:session-unreadable', 'queue-tailer:write-failed', 'queue-tailer:dispatch-error', 'queue-tailer:skip-no-longer-queued']) {
      assert.deepEqual(named(flood).map((l) => l.meta), [], `${flood}: the shortage is not a file's fault`);
    }
    const leftovers = fs
      .readdirSync(path.join(root, 'sessions'))
      .flatMap((dir) => fs.readdirSync(path.join(root, 'sessions', dir)))
      .filter((name) => !['session.json', 'log.jsonl', '.session.json.lock'].includes(name));
    assert.deepEqual(leftovers, [], 'no temp file left');
    reportFault(t, { reads, posted, recoverMs: allMs, note: `all assigned ${Math.round(allMs)} ms after the bridge started, under ulimit -n ${LIMIT}` });

    child.send({ type: 'stop' });
    assert.deepEqual(await exited, { code: 0, signal: null }, 'the bridge stops and exits by itself');
  });
});

// Issue 14.5: the inotify watch limit. The limit is lowered in a user
// namespace of the bridge's own (`/proc/sys/user/max_inotify_watches` there
// bounds the watches of the processes inside it), so nothing else on the
// machine, and no test running beside this one, feels it, and nothing is
// left to restore when the bridge exits.
const WATCHES = 64;
const WATCH_SESSIONS = 500;
const LOWER = `echo ${WATCHES} > /proc/sys/user/max_inotify_watches`;
const NAMESPACED = ['--user', '--map-root-user', '/bin/sh', '-c', `${LOWER} && exec "$0" "$@"`];

/** Why the watch limit cannot be lowered for one process tree here, or null. */
function whyNoWatchLimit() {
  if (process.platform !== 'linux') return 'inotify is Linux only';
  const probe = spawnSync('unshare', ['--user', '--map-root-user', '/bin/sh', '-c', `${LOWER} && cat /proc/sys/user/max_inotify_watches`], { encoding: 'utf8' });
  if (probe.status !== 0 || probe.stdout.trim() !== String(WATCHES)) {
    return `no user namespace to lower max_inotify_watches in: ${probe.error?.message ?? (probe.stderr || probe.stdout)}`.trim();
  }
  return null;
}

describe(`the inotify watch limit (${WATCHES} watches, ${WATCH_SESSIONS} sessions)`, { skip: whyNoWatchLimit() ?? false }, () => {
  it('every session is dispatched, appends to unwatched ones are seen by polling, and the fallback is logged once', async (t) => {
    const s = scope(t);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-watches-'));
    s.defer(() => fs.rmSync(root, { recursive: true, force: true }));
    const file = (i) => path.join(root, 'sessions', `s-${i}`, 'session.json');
    const write = (i, missions) => {
      fs.writeFileSync(`${file(i)}.tmp`, JSON.stringify({ id: `s-${i}`, missions }, null, 2));
      fs.renameSync(`${file(i)}.tmp`, file(i));
    };
    for (let i = 0; i < WATCH_SESSIONS; i++) {
      fs.mkdirSync(path.dirname(file(i)), { recursive: true });
      write(i, [{ id: 'm-0', status: 'queued', objective: `o ${i}` }]);
    }
    const serve = await startFakeServe({ executorFor: () => 'ex-1' });
    s.defer(() => serve.close());
    const pollIntervalMs = 200;
    const logs = [];
    const child = fork(BRIDGE, [], {
      execPath: 'unshare',
      execArgv: [...NAMESPACED, process.execPath],
      env: { ...process.env, LIFECYCLE_BRIDGE_OPTIONS: JSON.stringify({ aiwgServeUrl: serve.url, watchDir: root, pollIntervalMs }) },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    s.defer(() => child.kill('SIGKILL'));
    child.on('message', (m) => {
      if (m.type === 'log') logs.push(m);
    });
    const posted = () => serve.dispatches.map((d) => `${d.sessionId}/${d.missionId}`);
    const reads = sessionReads(Array.from({ length: WATCH_SESSIONS }, (_, i) => file(i)));
    await waitFor(() => reads.statuses().every((st) => st === 'assigned'), 60_000, `all ${WATCH_SESSIONS} missions assigned`);
    assert.equal(posted().length, WATCH_SESSIONS);
    // The log lines come over IPC a moment after the POSTs.
    await waitFor(() => logs.some((l) => l.msg === 'queue-tailer:watch-degraded'), 10_000, 'the fallback reported');
    const degraded = logs.filter((l) => l.msg === 'queue-tailer:watch-degraded');
    assert.equal(degraded.length, 1, `the fallback logged once: ${JSON.stringify(degraded.map((l) => l.meta))}`);
    const { watched, polled } = degraded[0].meta;
    assert.ok(watched > 0 && watched <= WATCHES, `watched ${watched}`);
    assert.ok(polled > 0, `polled ${polled}`);
    assert.equal(degraded[0].meta.pollIntervalMs, pollIntervalMs);

    // An append to every tenth session: most of them cannot be watched.
    const appended = Array.from({ length: WATCH_SESSIONS / 10 }, (_, n) => n * 10 + 7);
    const t0 = performance.now();
    for (const i of appended) write(i, [{ id: 'm-0', status: 'assigned', objective: `o ${i}` }, { id: 'm-1', status: 'queued', objective: `more ${i}` }]);
    await waitFor(() => posted().length >= WATCH_SESSIONS + appended.length, 20_000, 'every append dispatched');
    t.diagnostic(`${appended.length} appends dispatched within ${Math.round(performance.now() - t0)} ms; watched ${watched}, polled ${polled}`);
    assert.equal(new Set(posted()).size, posted().length, 'no mission POSTed twice');
    for (const i of appended) assert.ok(posted().includes(`s-${i}/m-1`), `s-${i}'s append`);
    await waitFor(() => reads.statuses().every((st) => st === 'assigned'), 10_000, 'every mission assigned');
    assert.equal(logs.filter((l) => l.msg === 'queue-tailer:watch-degraded').length, 1, 'the fallback logged once, to the end');
    reportFault(t, { reads, posted: posted(), recoverMs: performance.now() - t0, note: `${appended.length} appends dispatched by polling (${pollIntervalMs} ms)` });

    child.send({ type: 'stop' });
    assert.deepEqual(await exited, { code: 0, signal: null }, 'the bridge stops and exits by itself');
  });
});
