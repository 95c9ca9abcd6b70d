// Issue 14.4: a bridge out of file descriptors. The bridge runs in a child
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

/** Every session file under `root`, parsed (a parse error throws). */
function readAll(root) {
  return fs.readdirSync(path.join(root, 'sessions')).map((dir) => {
    const text = fs.readFileSync(path.join(root, 'sessions', dir, 'session.json'), 'utf8');
    return JSON.parse(text);
  });
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
    let reads = 0;
    const total = SESSIONS * MISSIONS;
    const assigned = () => {
      const sessions = readAll(root);
      reads += sessions.length;
      return sessions.flatMap((x) => x.missions).filter((m) => m.status === 'assigned').length;
    };
    await waitFor(() => assigned() === total, 150_000, `all ${total} missions assigned`);

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
    assert.ok(reads > 0);

    child.send({ type: 'stop' });
    assert.deepEqual(await exited, { code: 0, signal: null }, 'the bridge stops and exits by itself');
  });
});
