// End to end: the queue tailer (SPEC §5, §6 steps 4–6, §8, §9.1, §9.8,
// §9.10, §10) against a fake `aiwg serve` (node:http + `ws` on one port,
// helpers/lifecycle-serve.mjs) that answers dispatches and pushes the
// executor-v1 fixture events down real WebSockets, on real session files in
// temp directories. Bridges run in this process, or in a child
// (helpers/lifecycle-bridge.mjs) when the test kills or stops the process.
// Run: node --test __test__/lifecycle.test.mjs

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';

import { startQueueTailer } from '../esm/queue-tailer.mjs';
import { startFakeServe } from './helpers/lifecycle-serve.mjs';
import { WebSocket } from 'ws';
import { scope, waitFor, within } from './helpers/waiting.mjs';
import { spawnBridge as forkBridge } from './helpers/bridge-process.mjs';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const FIXTURES = path.join(HERE, 'fixtures', 'executor-v1');
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
// Fast reconnects and retries, so nothing here waits on the defaults.
const FAST = { retryBaseMs: 5, reconnectBaseMs: 20, reconnectMaxMs: 200 };
const WAIT = 8_000;

// ---------------------------------------------------------------------------
// helpers

function tmpRoot(s) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-lifecycle-'));
  s.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function mission(id, status = 'queued', extra = {}) {
  return { id, objective: `objective of ${id}`, status, loop: 0, maxIterations: 5, priority: 'normal', mode: 'direct', ...extra };
}
function session(id, missions, extra = {}) {
  return {
    id,
    name: `name of ${id}`,
    state: 'active',
    maxMissions: 8,
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    missions,
    mutationKeys: ['kept'],
    ...extra,
  };
}
function sessionFile(root, dir) {
  return path.join(root, 'sessions', dir, 'session.json');
}
/** Write a session as the newer CLI does: temp file + rename. */
function writeSession(file, doc) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.test-${process.pid}-${Math.random().toString(16).slice(2)}`;
  fs.writeFileSync(tmp, JSON.stringify(doc, null, 2));
  fs.renameSync(tmp, file);
}
function readDoc(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}
function missionIn(file, id) {
  return readDoc(file)?.missions?.find((m) => m && m.id === id);
}
/** Poll session.json until mission `id` has `status`; → the mission. */
function waitStatus(file, id, status, ms = WAIT) {
  return waitFor(
    () => {
      const m = missionIn(file, id);
      return m && m.status === status ? m : null;
    },
    ms,
    `${id} to be ${status} in ${file} (now ${missionIn(file, id)?.status})`,
  );
}
function journal(file) {
  const p = path.join(path.dirname(file), 'log.jsonl');
  return fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : '';
}
function journalEntries(file) {
  return journal(file)
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

/** An executor-v1 fixture, without its `_comment`. */
function fixture(rel) {
  const doc = JSON.parse(fs.readFileSync(path.join(FIXTURES, rel), 'utf8'));
  delete doc._comment;
  return doc;
}
let tsSeq = 0;
/** Distinct ISO timestamps, so every patch field is traceable to its event. */
function freshTs() {
  tsSeq += 1;
  return new Date(Date.UTC(2031, 0, 1) + tsSeq * 1000).toISOString();
}
/** The fixture `events/mission-<name>.json` re-addressed to a mission and executor. */
function ev(name, missionId, executorId) {
  const e = fixture(`events/mission-${name}.json`);
  e.mission_id = missionId;
  e.executor_id = executorId;
  e.ts = freshTs();
  return e;
}
/** The resync fixture for `executorId`, owning `owned`. */
function resync(executorId, owned) {
  const e = fixture('resync/executor-resync.json');
  e.executor_id = executorId;
  e.ts = freshTs();
  e.data.owned_mission_ids = owned;
  return e;
}

/** SPEC §5's patch for each fixture event (fixture values written out). */
const PATCH = {
  started: (e) => ({ startedAt: e.ts, agentRuntime: 'claude-code', ptySessionId: 'pty-session-uuid' }),
  'hitl-required': (e) => ({
    hitlId: 'hitl-7a9c-uuid',
    hitlPrompt: 'Approve schema migration? (y/n)',
    hitlContext: 'Migration touches users.email — nullable=true → nullable=false. 47 rows affected.',
    hitlAt: e.ts,
  }),
  'hitl-responded': (e) => ({ hitlRespondedAt: e.ts, hitlResponse: 'y' }),
  suspended: (e) => ({ suspendedAt: e.ts, checkpointId: 'ckpt-uuid', suspendReason: 'mgmt_server_shutdown' }),
  resumed: (e) => ({ resumedAt: e.ts, resumedFrom: 'suspended' }),
  completed: (e) => ({ completedAt: e.ts, exitCode: 0, summary: 'command completed successfully' }),
  failed: (e) => ({
    failedAt: e.ts,
    failureReason: 'non_zero_exit',
    failureMessage: 'agent process exited with code 1',
    exitCode: 1,
  }),
  aborted: (e) => ({ abortedAt: e.ts, abortedBy: 'operator', abortReason: 'kill_session via dashboard' }),
};
const STATUS = {
  started: 'running',
  'hitl-required': 'hitl_required',
  'hitl-responded': 'running',
  suspended: 'suspended',
  resumed: 'running',
  completed: 'done',
  failed: 'failed',
  aborted: 'aborted',
};

function subset(meta, want) {
  if (!meta || typeof meta !== 'object') return false;
  return Object.entries(want).every(([k, v]) => JSON.stringify(meta[k]) === JSON.stringify(v));
}
function logsOf(logs, msg, want = {}) {
  return logs.filter((l) => l.msg === msg && subset(l.meta, want));
}
/** Wait for the (n+1)-th log line `msg` whose meta contains `want`. */
function waitLog(logs, msg, want = {}, n = 0, ms = WAIT) {
  return waitFor(() => logsOf(logs, msg, want)[n], ms, `log ${msg} ${JSON.stringify(want)} #${n + 1}`);
}

/** Whether flock(1) is here, to hold a session's lock from another process. */
const FLOCK = spawnSync('flock', ['--version']).status === 0;

/** Hold the flock of `lockPath` in a child process until `release()` (or teardown). */
async function holdLock(s, lockPath) {
  const child = spawn('flock', [lockPath, 'sh', '-c', 'echo held; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const release = () => child.stdin.end();
  s.defer(async () => {
    release();
    await exited;
  });
  await within(new Promise((resolve) => child.stdout.once('data', resolve)), WAIT, 'the lock held');
  return { release, exited };
}

/** A tailer in this process; stopped in teardown. */
async function startBridge(s, options) {
  const logs = [];
  const tailer = await startQueueTailer({
    ...FAST,
    ...options,
    logger: (msg, meta) => logs.push({ msg, meta }),
  });
  s.defer(() => tailer.stop());
  return { tailer, logs };
}

/** A fake serve; closed in teardown. */
async function serveFor(s, options) {
  const serve = await startFakeServe(options);
  s.defer(() => serve.close());
  return serve;
}

/** Send to `executorId`'s open sockets; there must be one. */
function push(serve, executorId, data) {
  const n = serve.send(executorId, data);
  assert.ok(n >= 1, `no open socket of ${executorId} to send to`);
}

/** Wait until `executorId` has had `n` connections and exactly one, the latest, is open. */
function waitConnections(serve, executorId, n, ms = WAIT) {
  return waitFor(
    () => {
      const mine = serve.connections.filter((c) => c.executorId === executorId);
      return mine.length >= n && mine.at(-1).open && serve.open(executorId).length === 1;
    },
    ms,
    `${n} connection(s) of ${executorId}, the latest open alone`,
  );
}

/**
 * Send the fixture event `name` for one mission and check its outcome:
 * the event-applied line, then session.json (polled).
 */
async function drive(bridge, serve, file, missionId, executorId, name, outcome = 'updated') {
  const e = ev(name, missionId, executorId);
  const n = logsOf(bridge.logs, 'queue-tailer:event-applied', { missionId, event: e.event }).length;
  push(serve, executorId, e);
  const line = await waitLog(bridge.logs, 'queue-tailer:event-applied', { missionId, event: e.event }, n);
  assert.deepEqual(
    { missionId: line.meta.missionId, event: line.meta.event, newStatus: line.meta.newStatus, outcome: line.meta.outcome },
    { missionId, event: e.event, newStatus: STATUS[name], outcome },
  );
  if (outcome !== 'updated') return { event: e, mission: missionIn(file, missionId) };
  const m = await waitStatus(file, missionId, STATUS[name]);
  for (const [k, v] of Object.entries(PATCH[name](e))) {
    assert.deepEqual(m[k], v, `${missionId} after ${e.event}: ${k}`);
  }
  return { event: e, mission: m };
}

/** A bridge in a child process, with the fast timings above. */
function spawnBridge(s, options) {
  return forkBridge(s, { ...FAST, ...options });
}

// ---------------------------------------------------------------------------

describe('mission lifecycle over the executor stream (SPEC §5, §6.5)', () => {
  it('queued → assigned → running → hitl_required → running → suspended → running → done; failed; aborted; no-ops, stale and unknown missions', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const EX = 'sandbox-01-uuid';
    const [A, F, X] = ['m-life-a', 'm-life-f', 'm-life-x'];
    const file = sessionFile(root, 'life');
    writeSession(file, session('mc-life', [mission(A), mission(F), mission(X)]));
    assert.deepEqual(readDoc(file).missions.map((m) => m.status), ['queued', 'queued', 'queued']);

    const serve = await serveFor(s, { executorFor: () => EX });
    const bridge = await startBridge(s, { aiwgServeUrl: serve.url, watchDir: root });

    // queued → assigned after the POST (§6.4).
    assert.deepEqual(serve.dispatches.map((d) => d.missionId).sort(), [A, F, X].sort());
    for (const id of [A, F, X]) {
      assert.ok(serve.dispatches.every((d) => d.sessionId === 'mc-life'));
      const m = await waitStatus(file, id, 'assigned');
      assert.equal(m.executorId, EX);
      assert.match(m.dispatchedAt, ISO);
      assert.equal(m.dispatchAttempts, 1);
      assert.equal(m.estimatedStart, null);
      assert.equal(m.objective, `objective of ${id}`);
      assert.equal(logsOf(bridge.logs, 'queue-tailer:dispatched', { missionId: id, sessionId: 'mc-life', executorId: EX, attempts: 1 }).length, 1);
    }
    await waitConnections(serve, EX, 1);

    // A: the whole way.
    const started = await drive(bridge, serve, file, A, EX, 'started'); // transitionFrom assigned
    await drive(bridge, serve, file, A, EX, 'hitl-required');
    await drive(bridge, serve, file, A, EX, 'hitl-responded'); // data.text → hitlResponse
    await drive(bridge, serve, file, A, EX, 'suspended');
    await drive(bridge, serve, file, A, EX, 'resumed');

    // Events that change nothing: no event-applied line, session.json untouched.
    const before = fs.readFileSync(file, 'utf8');
    const appliedBefore = logsOf(bridge.logs, 'queue-tailer:event-applied').length;
    for (const name of ['assigned', 'progress', 'reconnected']) push(serve, EX, ev(name, A, EX));
    // Stale: mission.started while running (transitionFrom assigned does not hold).
    // It also marks the point where the no-ops above have been handled.
    const stale = await drive(bridge, serve, file, A, EX, 'started', 'stale');
    assert.equal(logsOf(bridge.logs, 'queue-tailer:event-applied').length, appliedBefore + 1, 'only the stale event logged event-applied');
    for (const name of ['mission.assigned', 'mission.progress', 'mission.reconnected']) {
      assert.equal(logsOf(bridge.logs, 'queue-tailer:event-applied', { event: name }).length, 0, name);
    }
    assert.equal(fs.readFileSync(file, 'utf8'), before, 'no-op and stale events leave session.json as it was');
    assert.equal(stale.mission.startedAt, started.event.ts, 'startedAt still from the first mission.started');
    // Stale too: hitl_responded when the mission is not hitl_required.
    await drive(bridge, serve, file, A, EX, 'hitl-responded', 'stale');
    assert.equal(fs.readFileSync(file, 'utf8'), before);

    // An event about a mission nobody dispatched.
    push(serve, EX, ev('completed', 'm-nobody-knows', EX));
    await waitLog(bridge.logs, 'queue-tailer:event-unmapped-mission', { missionId: 'm-nobody-knows', event: 'mission.completed' });
    assert.equal(fs.readFileSync(file, 'utf8'), before);

    const done = (await drive(bridge, serve, file, A, EX, 'completed')).mission;
    // Earlier patches and the mission's own fields are kept.
    assert.equal(done.startedAt, started.event.ts);
    assert.equal(done.hitlResponse, 'y');
    assert.equal(done.resumedFrom, 'suspended');
    assert.equal(done.executorId, EX);
    assert.equal(done.mode, 'direct');
    const doc = readDoc(file);
    assert.deepEqual(doc.mutationKeys, ['kept']);
    assert.equal(doc.name, 'name of mc-life');

    // F: started → failed.
    await drive(bridge, serve, file, F, EX, 'started');
    await drive(bridge, serve, file, F, EX, 'failed');
    // X: aborted straight from assigned (no transitionFrom on aborted).
    await drive(bridge, serve, file, X, EX, 'aborted');

    // Ended missions are forgotten (§6.5): later events about them are unmapped.
    for (const id of [A, F, X]) {
      push(serve, EX, ev('resumed', id, EX));
      await waitLog(bridge.logs, 'queue-tailer:event-unmapped-mission', { missionId: id, event: 'mission.resumed' });
    }
    assert.deepEqual(readDoc(file).missions.map((m) => m.status), ['done', 'failed', 'aborted']);
    assert.equal(serve.dispatches.length, 3, 'no mission was dispatched twice');
  });

  it('log.jsonl beside session.json: one JSON object per line, ts last, one line per dispatch outcome and per event of a known mission (§9.10)', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const EX = 'ex-journal';
    const [A, B] = ['m-jrnl-a', 'm-jrnl-b'];
    const file = sessionFile(root, 'jrnl');
    writeSession(file, session('mc-jrnl', [mission(A), mission(B)]));
    const serve = await serveFor(s, {
      executorFor: () => EX,
      // B's dispatch is refused: a failed dispatch outcome.
      dispatchAnswer: (d) => (d.missionId === B ? { status: 404, body: { error: 'agent_not_found' } } : undefined),
    });
    const bridge = await startBridge(s, { aiwgServeUrl: serve.url, watchDir: root });
    await waitStatus(file, A, 'assigned');
    await waitStatus(file, B, 'failed');
    await waitConnections(serve, EX, 1);

    const sent = [];
    sent.push((await drive(bridge, serve, file, A, EX, 'started')).event);
    sent.push((await drive(bridge, serve, file, A, EX, 'started', 'stale')).event);
    push(serve, EX, ev('completed', 'm-jrnl-unknown', EX)); // unknown mission: not journaled
    await waitLog(bridge.logs, 'queue-tailer:event-unmapped-mission', { missionId: 'm-jrnl-unknown' });
    sent.push((await drive(bridge, serve, file, A, EX, 'completed')).event);

    const want = 2 + sent.length;
    await waitFor(() => journalEntries(file).length >= want, WAIT, `${want} journal lines`);
    await delay(100); // nothing more arrives
    const text = journal(file);
    assert.ok(text.endsWith('\n'));
    const lines = text.split('\n').slice(0, -1);
    assert.equal(lines.length, want, text);
    for (const line of lines) {
      const entry = JSON.parse(line);
      assert.equal(typeof entry, 'object');
      assert.ok(entry && !Array.isArray(entry));
      assert.equal(Object.keys(entry).at(-1), 'ts', `ts last: ${line}`);
      assert.match(entry.ts, ISO);
      assert.ok(!line.includes('m-jrnl-unknown'));
    }
    const entries = lines.map((l) => JSON.parse(l));
    const byMission = (id) => entries.filter((e) => JSON.stringify(e).includes(`"${id}"`));
    // One line per dispatch outcome: A accepted, B failed.
    const dispatchA = byMission(A).filter((e) => !JSON.stringify(e).includes('mission.'));
    const dispatchB = byMission(B);
    assert.equal(dispatchA.length, 1, JSON.stringify(dispatchA));
    assert.equal(dispatchB.length, 1, JSON.stringify(dispatchB));
    assert.ok(JSON.stringify(dispatchA[0]).includes('accepted'), JSON.stringify(dispatchA[0]));
    assert.ok(JSON.stringify(dispatchB[0]).includes('executor_not_found'), JSON.stringify(dispatchB[0]));
    // One line per event, in the order the events came (each was applied before the next was sent).
    const eventLines = byMission(A).filter((e) => JSON.stringify(e).includes('mission.'));
    assert.deepEqual(
      eventLines.map((e) => Object.values(e).find((v) => typeof v === 'string' && v.startsWith('mission.'))),
      sent.map((e) => e.event),
    );
    assert.ok(JSON.stringify(eventLines[1]).includes('stale'));
  });

  /** Missions sent started → hitl_required → hitl_responded → completed back to back. */
  async function backToBack(t) {
    const s = scope(t);
    const root = tmpRoot(s);
    const EX = 'ex-order';
    const file = sessionFile(root, 'order');
    const ids = ['m-ord-1', 'm-ord-2', 'm-ord-3'];
    writeSession(file, session('mc-order', ids.map((id) => mission(id))));
    const serve = await serveFor(s, { executorFor: () => EX });
    const bridge = await startBridge(s, { aiwgServeUrl: serve.url, watchDir: root });
    await waitConnections(serve, EX, 1);
    const sent = [];
    for (const id of ids) {
      for (const name of ['started', 'hitl-required', 'hitl-responded', 'completed']) {
        const e = ev(name, id, EX);
        sent.push(`${id} ${e.event}`);
        push(serve, EX, e);
      }
    }
    for (const id of ids) await waitStatus(file, id, 'done');
    await waitFor(() => logsOf(bridge.logs, 'queue-tailer:event-applied').length >= sent.length, WAIT, 'every event-applied');
    await waitFor(() => journalEntries(file).filter((e) => JSON.stringify(e).includes('mission.')).length >= sent.length, WAIT, 'every event line');
    return { file, bridge, sent, ids };
  }

  it('events sent back to back are applied in arrival order (every transitionFrom holds)', async (t) => {
    const { file, bridge, sent, ids } = await backToBack(t);
    const applied = logsOf(bridge.logs, 'queue-tailer:event-applied');
    assert.equal(applied.length, sent.length);
    assert.ok(applied.every((l) => l.meta.outcome === 'updated'), JSON.stringify(applied.map((l) => l.meta)));
    for (const id of ids) {
      const m = missionIn(file, id);
      assert.equal(m.hitlResponse, 'y');
      assert.match(m.startedAt, ISO);
      assert.match(m.hitlRespondedAt, ISO);
      assert.match(m.completedAt, ISO);
    }
  });

  it(
    'log.jsonl and event-applied follow the order of events sent back to back',
    async (t) => {
      const { file, bridge, sent } = await backToBack(t);
      const logged = logsOf(bridge.logs, 'queue-tailer:event-applied').map((l) => `${l.meta.missionId} ${l.meta.event}`);
      const journaled = journalEntries(file)
        .filter((e) => JSON.stringify(e).includes('mission.'))
        .map((e) => `${e.missionId} ${e.event}`);
      assert.deepEqual(journaled, sent, 'log.jsonl in arrival order');
      assert.deepEqual(logged, sent, 'event-applied in arrival order');
    },
  );

  it(
    'log.jsonl: status-less events of a known mission (assigned, progress, reconnected) get a line too (§9.10 "every executor event for a known mission")',
    async (t) => {
      const s = scope(t);
      const root = tmpRoot(s);
      const EX = 'ex-noop-journal';
      const A = 'm-noop-a';
      const file = sessionFile(root, 'noop');
      writeSession(file, session('mc-noop', [mission(A)]));
      const serve = await serveFor(s, { executorFor: () => EX });
      const bridge = await startBridge(s, { aiwgServeUrl: serve.url, watchDir: root });
      await waitConnections(serve, EX, 1);
      await drive(bridge, serve, file, A, EX, 'started');
      for (const name of ['assigned', 'progress', 'reconnected']) push(serve, EX, ev(name, A, EX));
      await drive(bridge, serve, file, A, EX, 'completed');
      await delay(100);
      const events = journalEntries(file).map((e) => e.event).filter(Boolean);
      for (const name of ['mission.assigned', 'mission.progress', 'mission.reconnected']) {
        assert.ok(events.includes(name), `${name} in log.jsonl: ${JSON.stringify(events)}`);
      }
    },
  );

  it(
    'an event sent the moment the dispatch is answered, on the executor\'s already-open stream, is not lost',
    async (t) => {
      const s = scope(t);
      const root = tmpRoot(s);
      const EX = 'ex-eager';
      const file = sessionFile(root, 'eager');
      writeSession(file, session('mc-eager', [mission('m-eager-0')]));
      let serve;
      serve = await serveFor(s, {
        executorFor: () => EX,
        dispatchAnswer: (d) => {
          // The executor starts at once: its event follows the 202 on the open stream.
          if (d.missionId !== 'm-eager-0') setImmediate(() => serve.send(EX, ev('started', d.missionId, EX)));
          return undefined;
        },
      });
      const bridge = await startBridge(s, { aiwgServeUrl: serve.url, watchDir: root });
      await waitConnections(serve, EX, 1);
      const doc = readDoc(file);
      doc.missions.push(mission('m-eager-1'));
      writeSession(file, doc);
      await waitLog(bridge.logs, 'queue-tailer:dispatched', { missionId: 'm-eager-1' });
      await waitStatus(file, 'm-eager-1', 'running', 2_000);
    },
  );
});

describe('the tailer with an injected WebSocketImpl (§5, §6.4)', () => {
  it('streams run through the given class: one socket per executor, events land, the token is hidden, stop closes them', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const EX = 'ex-injected';
    const M = 'm-injected-1';
    const file = sessionFile(root, 'inj');
    writeSession(file, session('mc-inj', [mission(M)]));
    const serve = await serveFor(s, { executorFor: () => EX });
    const constructed = [];
    // `ws`'s client is browser-style (addEventListener, close(code, reason)); count what the tailer builds.
    class Counted extends WebSocket {
      constructor(url) {
        super(url);
        constructed.push(url);
      }
    }
    const bridge = await startBridge(s, {
      aiwgServeUrl: serve.url,
      watchDir: root,
      WebSocketImpl: Counted,
      executorTokens: { [EX]: 'inj-s3cret' },
    });
    await waitStatus(file, M, 'assigned');
    await waitConnections(serve, EX, 1);
    assert.equal(constructed.length, 1);
    assert.match(constructed[0], /\/ws\/executors\/ex-injected\?token=inj-s3cret$/);
    await drive(bridge, serve, file, M, EX, 'started');
    await drive(bridge, serve, file, M, EX, 'completed');
    await waitLog(bridge.logs, 'queue-tailer:ws-state', { executorId: EX, state: 'opened' });
    assert.ok(!JSON.stringify(bridge.logs).includes('inj-s3cret'), 'no token in any log line');
    await bridge.tailer.stop();
    await waitFor(() => serve.connections.every((c) => !c.open), WAIT, 'the socket closed by stop()');
    assert.equal(constructed.length, 1, 'no socket after stop()');
  });

  // The same bound as a native stream's (issue 12): while the tailer cannot
  // write (another process holds the session's lock), an injected stream's
  // events stop at the tailer's inbox, then in the stream, and its socket
  // is paused; once the lock is free, every event lands.
  it('a tailer that cannot keep up pauses an injected `ws` socket; every event lands once it can', { skip: !FLOCK && 'needs flock(1)' }, async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const EX = 'ex-held-back';
    const [DONE, BUSY] = ['m-flow-done', 'm-flow-busy'];
    const FLOOD = 4000;
    const pad = 'p'.repeat(8 * 1024); // 32 MB in all: more than the loopback buffers hold
    const file = sessionFile(root, 'flow');
    writeSession(file, session('mc-flow', [mission(DONE, 'running', { executorId: EX }), mission(BUSY, 'running', { executorId: EX })]));
    const serve = await serveFor(s, { executorFor: () => EX });
    const sockets = [];
    class Paused extends WebSocket {
      constructor(url) {
        super(url);
        this.pauses = 0;
        this.resumes = 0;
        sockets.push(this);
      }

      pause() {
        this.pauses += 1;
        super.pause();
      }

      resume() {
        this.resumes += 1;
        super.resume();
      }
    }
    const holder = await holdLock(s, path.join(path.dirname(file), '.session.json.lock'));
    const bridge = await startBridge(s, { aiwgServeUrl: serve.url, watchDir: root, WebSocketImpl: Paused });
    await waitConnections(serve, EX, 1);
    await waitLog(bridge.logs, 'queue-tailer:ws-state', { executorId: EX, state: 'opened' });
    // A status write that waits for the lock, and the journal lines behind it.
    push(serve, EX, ev('completed', DONE, EX));
    for (let n = 0; n < FLOOD; n += 1) push(serve, EX, { event: 'mission.progress', mission_id: BUSY, executor_id: EX, data: { n, pad } });
    await waitFor(() => sockets[0].pauses > 0, WAIT, 'the injected socket paused');
    await delay(200);
    assert.equal(missionIn(file, DONE).status, 'running', 'nothing written while the lock is held');
    assert.ok(sockets[0].isPaused, 'still paused while the tailer is full');
    holder.release();
    await waitStatus(file, DONE, 'done', 30_000);
    await waitFor(() => journalEntries(file).filter((e) => e.event === 'mission.progress').length === FLOOD, 30_000, 'every progress event journaled');
    assert.equal(sockets[0].isPaused, false, 'resumed');
    assert.ok(sockets[0].resumes > 0);
    assert.equal(sockets.length, 1, 'one connection throughout');
    assert.deepEqual(logsOf(bridge.logs, 'executor-ws:backpressure-unavailable'), []);
  });
});

describe('resilience', () => {
  it('serve killed and restarted on the same port: the stream reconnects and later events land (§6.6)', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const EX = 'ex-restart';
    const [A, B] = ['m-srv-a', 'm-srv-b'];
    const file = sessionFile(root, 'srv');
    writeSession(file, session('mc-srv', [mission(A)]));
    const first = await serveFor(s, { executorFor: () => EX });
    const bridge = await startBridge(s, { aiwgServeUrl: first.url, watchDir: root });
    await waitConnections(first, EX, 1);
    await drive(bridge, first, file, A, EX, 'started');

    await first.close();
    await waitLog(bridge.logs, 'queue-tailer:ws-state', { executorId: EX, state: 'closed' });
    await waitLog(bridge.logs, 'executor-ws:reconnect', { executorId: EX });
    // While serve is down a new mission is queued: it stays queued (§9.2), not failed.
    const doc = readDoc(file);
    doc.missions.push(mission(B));
    writeSession(file, doc);
    await waitLog(bridge.logs, 'queue-tailer:dispatch-deferred', { missionId: B });
    assert.equal(missionIn(file, B).status, 'queued');
    await delay(100); // a few refused reconnects

    const second = await serveFor(s, { port: first.port, executorFor: () => EX });
    assert.equal(second.url, first.url);
    await waitConnections(second, EX, 1);
    await waitLog(bridge.logs, 'queue-tailer:ws-state', { executorId: EX, state: 'opened' }, 1);
    await drive(bridge, second, file, A, EX, 'completed');
    // B gets dispatched to the new serve and its events land too.
    await waitStatus(file, B, 'assigned');
    await waitLog(bridge.logs, 'queue-tailer:dispatched', { missionId: B });
    await drive(bridge, second, file, B, EX, 'started');
    await drive(bridge, second, file, B, EX, 'completed');
    assert.equal(second.connections.filter((c) => c.executorId === EX).length, 1, 'one stream per executor after the restart');
  });

  it('bridge SIGKILLed while missions run: a new bridge on the same watchDir re-follows their executors (§9.1)', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const [EX, EX2] = ['ex-kill-1', 'ex-kill-2'];
    const file = sessionFile(root, 'kill');
    writeSession(file, session('mc-kill', [mission('m-kill-run')]));
    const serve = await serveFor(s, { executorFor: () => EX });

    const one = spawnBridge(s, { aiwgServeUrl: serve.url, watchDir: root });
    await within(one.ready, WAIT, 'first bridge ready');
    await waitConnections(serve, EX, 1);
    // The bridge may still be remembering the mission when the file says assigned.
    await waitLog(one.logs, 'queue-tailer:dispatched', { missionId: 'm-kill-run' });
    await drive(one, serve, file, 'm-kill-run', EX, 'started');

    one.child.kill('SIGKILL');
    assert.equal((await within(one.exited, WAIT, 'first bridge exit')).signal, 'SIGKILL');
    await waitFor(() => serve.open(EX).length === 0, WAIT, 'the killed bridge\'s stream to drop');

    // What another bridge left behind: missions held by executors, in every held status,
    // and one that ended.
    const doc = readDoc(file);
    doc.missions.push(
      mission('m-kill-asg', 'assigned', { executorId: EX }),
      mission('m-kill-hitl', 'hitl_required', { executorId: EX2, hitlId: 'hitl-7a9c-uuid' }),
      mission('m-kill-susp', 'suspended', { executorId: EX2 }),
      mission('m-kill-done', 'done', { executorId: EX }),
    );
    writeSession(file, doc);

    const two = spawnBridge(s, { aiwgServeUrl: serve.url, watchDir: root });
    await within(two.ready, WAIT, 'second bridge ready');
    await waitConnections(serve, EX, 2);
    await waitConnections(serve, EX2, 1);
    assert.equal(serve.dispatches.length, 1, 'nothing re-dispatched');

    await drive(two, serve, file, 'm-kill-run', EX, 'completed');
    await drive(two, serve, file, 'm-kill-asg', EX, 'started');
    await drive(two, serve, file, 'm-kill-hitl', EX2, 'hitl-responded');
    await drive(two, serve, file, 'm-kill-susp', EX2, 'resumed');
    // An ended mission is not followed.
    push(serve, EX, ev('failed', 'm-kill-done', EX));
    await waitLog(two.logs, 'queue-tailer:event-unmapped-mission', { missionId: 'm-kill-done' });
    assert.equal(missionIn(file, 'm-kill-done').status, 'done');
    assert.equal(serve.connections.filter((c) => c.executorId === EX).length, 2, 'one stream per bridge');
  });

  it('executor.resync: running missions the executor no longer owns fail with executor_lost; owned, ended and other executors\' missions are untouched (§9.1)', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const [EX, EX2] = ['sandbox-01-uuid', 'sandbox-02-uuid'];
    const ids = ['m-rs-lost', 'm-rs-owned', 'm-rs-done', 'm-rs-ext-done', 'm-rs-hitl'];
    const other = 'm-rs-other';
    const file = sessionFile(root, 'resync');
    writeSession(file, session('mc-resync', [...ids, other].map((id) => mission(id))));
    // The serve sends executor.resync as the first frame of every connection.
    const owned = new Map([
      [EX, [...ids]],
      [EX2, [other]],
    ]);
    const serve = await serveFor(s, {
      executorFor: ({ missionId }) => (missionId === other ? EX2 : EX),
      onConnection: (conn) => conn.ws.send(JSON.stringify(resync(conn.executorId, owned.get(conn.executorId) ?? []))),
    });
    const bridge = await startBridge(s, { aiwgServeUrl: serve.url, watchDir: root });
    await waitConnections(serve, EX, 1);
    await waitConnections(serve, EX2, 1);
    for (const id of ids) await drive(bridge, serve, file, id, EX, 'started');
    await drive(bridge, serve, file, other, EX2, 'started');
    await drive(bridge, serve, file, 'm-rs-hitl', EX, 'hitl-required');
    await drive(bridge, serve, file, 'm-rs-done', EX, 'completed');
    // Another process ends a mission the bridge still follows.
    const doc = readDoc(file);
    Object.assign(doc.missions.find((m) => m.id === 'm-rs-ext-done'), { status: 'done', completedAt: 'elsewhere' });
    writeSession(file, doc);
    await delay(100);
    const untouched = Object.fromEntries(['m-rs-owned', 'm-rs-done', 'm-rs-ext-done', other].map((id) => [id, missionIn(file, id)]));
    assert.equal(logsOf(bridge.logs, 'queue-tailer:event-applied', { event: 'executor.resync' }).length, 0, 'the first resync owned everything');

    // The executor reconnects owning only one of its missions.
    owned.set(EX, ['m-rs-owned', '11111111-2222-3333-4444-555555555555']);
    owned.set(EX2, []); // must not matter: EX2 does not reconnect
    serve.open(EX).forEach((c) => c.ws.terminate());
    await waitConnections(serve, EX, 2);
    const lost = await waitStatus(file, 'm-rs-lost', 'failed');
    assert.equal(lost.failureReason, 'executor_lost');
    const hitl = await waitStatus(file, 'm-rs-hitl', 'failed');
    assert.equal(hitl.failureReason, 'executor_lost');
    await waitLog(bridge.logs, 'queue-tailer:event-applied', { missionId: 'm-rs-lost', event: 'executor.resync', newStatus: 'failed', outcome: 'updated' });
    await delay(150);
    for (const [id, m] of Object.entries(untouched)) assert.deepEqual(missionIn(file, id), m, `${id} untouched`);
    assert.equal(logsOf(bridge.logs, 'queue-tailer:event-applied', { missionId: 'm-rs-done' }).filter((l) => l.meta.event === 'executor.resync').length, 0);
    assert.equal(logsOf(bridge.logs, 'queue-tailer:event-applied', { missionId: 'm-rs-ext-done', outcome: 'updated' }).filter((l) => l.meta.event === 'executor.resync').length, 0);
    // Lost missions are forgotten like any ended one; the owned one still follows events.
    await drive(bridge, serve, file, 'm-rs-owned', EX, 'completed');
    push(serve, EX, ev('completed', 'm-rs-lost', EX));
    await waitLog(bridge.logs, 'queue-tailer:event-unmapped-mission', { missionId: 'm-rs-lost' });
    assert.equal(missionIn(file, 'm-rs-lost').status, 'failed');
  });

  it('malformed, binary and oversized (> 1 MiB) frames are logged, the bridge stays up and later events land (§9.7, §10)', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const EX = 'ex-frames';
    const A = 'm-frames-a';
    const file = sessionFile(root, 'frames');
    writeSession(file, session('mc-frames', [mission(A)]));
    const serve = await serveFor(s, { executorFor: () => EX });
    const bridge = await startBridge(s, { aiwgServeUrl: serve.url, watchDir: root });
    await waitConnections(serve, EX, 1);
    await waitLog(bridge.logs, 'queue-tailer:dispatched', { missionId: A });

    push(serve, EX, 'not json {');
    push(serve, EX, '[1,2,3]');
    push(serve, EX, '42');
    push(serve, EX, 'null');
    push(serve, EX, Buffer.from(JSON.stringify(ev('started', A, EX))));
    push(serve, EX, '');
    await waitLog(bridge.logs, 'executor-ws:bad-message', { executorId: EX }, 5);
    assert.equal(missionIn(file, A).status, 'assigned', 'the binary frame was not applied');
    assert.equal(serve.connections.length, 1, 'bad frames do not cost the connection');
    await drive(bridge, serve, file, A, EX, 'started');

    // Oversized: 1 MiB + 1 KiB of valid JSON text.
    const big = ev('progress', A, EX);
    big.data.summary = 'x'.repeat(1024 * 1024 + 1024);
    push(serve, EX, big);
    await waitFor(
      () =>
        logsOf(bridge.logs, 'executor-ws:bad-message', { executorId: EX }).length > 6 ||
        logsOf(bridge.logs, 'executor-ws:reconnect', { executorId: EX }).length > 0,
      WAIT,
      'the oversized frame logged or the stream re-opened',
    );
    if (logsOf(bridge.logs, 'executor-ws:reconnect', { executorId: EX }).length > 0) {
      await waitConnections(serve, EX, 2); // the stream was re-opened
    } else {
      assert.equal(serve.open(EX).length, 1);
    }
    await drive(bridge, serve, file, A, EX, 'completed');
    assert.ok(bridge.logs.every((l) => JSON.stringify(l.meta).length < 64 * 1024), 'the oversized frame is not echoed into a log line');
  });

  it(
    'an unknown event type is logged and dropped (§10)',
    async (t) => {
      const s = scope(t);
      const root = tmpRoot(s);
      const EX = 'ex-unknown-event';
      const A = 'm-unk-a';
      const file = sessionFile(root, 'unk');
      writeSession(file, session('mc-unk', [mission(A)]));
      const serve = await serveFor(s, { executorFor: () => EX });
      const bridge = await startBridge(s, { aiwgServeUrl: serve.url, watchDir: root });
      await waitConnections(serve, EX, 1);
      await waitLog(bridge.logs, 'queue-tailer:dispatched', { missionId: A });
      const from = bridge.logs.length;
      push(serve, EX, { event: 'mission.exploded', executor_id: EX, mission_id: A, ts: freshTs(), data: {} });
      push(serve, EX, 'sentinel: not json');
      await waitLog(bridge.logs, 'executor-ws:bad-message', { executorId: EX });
      const between = bridge.logs.slice(from).filter((l) => l.msg !== 'executor-ws:bad-message');
      assert.ok(
        between.some((l) => JSON.stringify(l.meta).includes('mission.exploded')),
        `a log line names the unknown event: ${JSON.stringify(between)}`,
      );
      assert.equal(missionIn(file, A).status, 'assigned');
    },
  );

  it('an event without a mission id is logged and dropped (§10)', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const EX = 'ex-no-mission-id';
    const A = 'm-nomid-a';
    const file = sessionFile(root, 'nomid');
    writeSession(file, session('mc-nomid', [mission(A)]));
    const serve = await serveFor(s, { executorFor: () => EX });
    const bridge = await startBridge(s, { aiwgServeUrl: serve.url, watchDir: root });
    await waitConnections(serve, EX, 1);
    await waitLog(bridge.logs, 'queue-tailer:dispatched', { missionId: A });
    const before = fs.readFileSync(file, 'utf8');
    const from = bridge.logs.length;
    const e = ev('completed', A, EX);
    delete e.mission_id;
    push(serve, EX, e);
    await waitFor(() => bridge.logs.slice(from).length > 0, WAIT, 'a log line for the event without mission id');
    assert.equal(fs.readFileSync(file, 'utf8'), before);
    await drive(bridge, serve, file, A, EX, 'started');
  });
});

describe('secrets, scale and options', () => {
  it('an executorTokens token reaches serve in the WS URL but never a log line nor log.jsonl (§5, §9.8)', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const EX = 'ex/tok en';
    const TOKEN = 'Zq9+s3cr3t/tok en&x=1';
    const A = 'm-tok-a';
    const file = sessionFile(root, 'tok');
    writeSession(file, session('mc-tok', [mission(A)]));
    let refused = 0;
    const serve = await serveFor(s, {
      executorFor: () => EX,
      // The first upgrade is refused: the error path is logged too.
      rejectUpgrade: () => (refused++ === 0 ? 401 : 0),
    });
    const bridge = await startBridge(s, { aiwgServeUrl: serve.url, watchDir: root, executorTokens: { [EX]: TOKEN } });
    await waitConnections(serve, EX, 1);
    const conn = serve.open(EX)[0];
    assert.equal(conn.token, TOKEN);
    assert.ok(conn.url.startsWith(`/ws/executors/${encodeURIComponent(EX)}?token=${encodeURIComponent(TOKEN)}`), conn.url);
    assert.ok(serve.upgrades.length >= 2);
    await waitLog(bridge.logs, 'executor-ws:opened', { executorId: EX });
    await drive(bridge, serve, file, A, EX, 'started');
    serve.open(EX).forEach((c) => c.ws.terminate()); // a reconnect is logged too
    await waitConnections(serve, EX, 2);
    await drive(bridge, serve, file, A, EX, 'completed');
    await bridge.tailer.stop();

    const needles = [TOKEN, encodeURIComponent(TOKEN), 's3cr3t', 'Zq9'];
    assert.ok(logsOf(bridge.logs, 'executor-ws:error', { executorId: EX }).length >= 1, 'the refused upgrade was logged');
    assert.ok(logsOf(bridge.logs, 'executor-ws:reconnect', { executorId: EX }).length >= 2);
    for (const l of bridge.logs) {
      const text = JSON.stringify(l.meta) ?? '';
      for (const n of needles) assert.ok(!text.includes(n) && !l.msg.includes(n), `token in ${l.msg} ${text}`);
    }
    const opened = logsOf(bridge.logs, 'executor-ws:opened', { executorId: EX });
    assert.ok(opened.length >= 2);
    for (const l of opened) assert.match(l.meta.url, /token=\*\*\*/);
    const j = journal(file);
    assert.ok(j.length > 0);
    for (const n of needles) assert.ok(!j.includes(n), `token in log.jsonl: ${j}`);
  });

  it('5 executors × 20 missions across 4 sessions: every mission ends done on disk, one WS per executor', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const EXECUTORS = ['ex-many-0', 'ex-many-1', 'ex-many-2', 'ex-many-3', 'ex-many-4'];
    const SESSIONS = ['s0', 's1', 's2', 's3'];
    const all = []; // {id, file, ex}
    const executorOf = new Map();
    let n = 0;
    for (const sid of SESSIONS) {
      const file = sessionFile(root, sid);
      const missions = [];
      for (let i = 0; i < 25; i++) {
        const id = `m-many-${String(n).padStart(3, '0')}`;
        executorOf.set(id, EXECUTORS[n % 5]);
        all.push({ id, file, ex: EXECUTORS[n % 5] });
        missions.push(mission(id));
        n++;
      }
      writeSession(file, session(`mc-many-${sid}`, missions));
    }
    assert.equal(all.length, 100);
    const serve = await serveFor(s, { executorFor: ({ missionId }) => executorOf.get(missionId) });
    const bridge = await startBridge(s, { aiwgServeUrl: serve.url, watchDir: root });
    assert.equal(serve.dispatches.length, 100);
    for (const ex of EXECUTORS) await waitConnections(serve, ex, 1);
    await waitFor(() => all.every((m) => missionIn(m.file, m.id)?.status === 'assigned'), WAIT, 'all assigned');

    for (const m of all) push(serve, m.ex, ev('started', m.id, m.ex));
    await waitFor(() => all.every((m) => missionIn(m.file, m.id)?.status === 'running'), 15_000, 'all running');
    for (const m of all) push(serve, m.ex, ev('completed', m.id, m.ex));
    await waitFor(() => all.every((m) => missionIn(m.file, m.id)?.status === 'done'), 15_000, 'all done');
    await waitFor(() => logsOf(bridge.logs, 'queue-tailer:event-applied').length >= 200, WAIT, '200 event-applied');

    for (const m of all) {
      const got = missionIn(m.file, m.id);
      assert.equal(got.executorId, m.ex);
      assert.match(got.startedAt, ISO);
      assert.match(got.completedAt, ISO);
    }
    const applied = logsOf(bridge.logs, 'queue-tailer:event-applied');
    assert.equal(applied.length, 200);
    assert.ok(applied.every((l) => l.meta.outcome === 'updated'), JSON.stringify(applied.filter((l) => l.meta.outcome !== 'updated')));
    assert.equal(serve.dispatches.length, 100, 'no mission dispatched twice');
    for (const ex of EXECUTORS) {
      assert.equal(serve.connections.filter((c) => c.executorId === ex).length, 1, `exactly one WS for ${ex}`);
      assert.equal(logsOf(bridge.logs, 'queue-tailer:ws-state', { executorId: ex, state: 'opened' }).length, 1);
    }
    assert.equal(serve.connections.length, 5);
    for (const sid of SESSIONS) {
      const entries = journalEntries(sessionFile(root, sid));
      assert.equal(entries.length, 25 * 3, `${sid}: 25 dispatch + 50 event lines`);
    }
  });

  it('disableWSSubscription: no WS connection at all', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const file = sessionFile(root, 'nows');
    writeSession(file, session('mc-nows', [mission('m-nows-a')]));
    const serve = await serveFor(s, { executorFor: () => 'ex-nows' });
    const bridge = await startBridge(s, {
      aiwgServeUrl: serve.url,
      watchDir: root,
      disableWSSubscription: true,
      subscribeExecutors: ['ex-nows-listed'],
    });
    await waitStatus(file, 'm-nows-a', 'assigned');
    await delay(300);
    assert.equal(serve.upgrades.length, 0);
    assert.equal(logsOf(bridge.logs, 'queue-tailer:ws-state').length, 0);
    assert.equal(bridge.logs.filter((l) => l.msg.startsWith('executor-ws:')).length, 0);
  });

  it('subscribeExecutors: streams open at start for the listed executors, with no missions', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    fs.mkdirSync(path.join(root, 'sessions'), { recursive: true });
    const serve = await serveFor(s, {});
    const bridge = await startBridge(s, {
      aiwgServeUrl: serve.url,
      watchDir: root,
      subscribeExecutors: ['ex-listed-1', 'ex-listed-2'],
      executorTokens: { 'ex-listed-2': 'tok-2' },
    });
    await waitConnections(serve, 'ex-listed-1', 1);
    await waitConnections(serve, 'ex-listed-2', 1);
    assert.equal(serve.open('ex-listed-1')[0].token, null);
    assert.equal(serve.open('ex-listed-2')[0].token, 'tok-2');
    assert.equal(serve.dispatches.length, 0);
    await waitLog(bridge.logs, 'queue-tailer:ws-state', { executorId: 'ex-listed-1', state: 'opened' });
    // An event on such a stream about a mission nobody knows is just unmapped.
    push(serve, 'ex-listed-1', ev('started', 'm-listed-unknown', 'ex-listed-1'));
    await waitLog(bridge.logs, 'queue-tailer:event-unmapped-mission', { missionId: 'm-listed-unknown' });
    await delay(100);
    assert.equal(serve.connections.length, 2);
  });

  it('stop(): every stream closes with 1000 and the bridge process exits by itself (§5, §6.6)', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const file = sessionFile(root, 'stop');
    writeSession(file, session('mc-stop', [mission('m-stop-a')]));
    const serve = await serveFor(s, { executorFor: () => 'ex-stop-dispatched' });
    const bridge = spawnBridge(s, { aiwgServeUrl: serve.url, watchDir: root, subscribeExecutors: ['ex-stop-listed'] });
    await within(bridge.ready, WAIT, 'bridge ready');
    await waitConnections(serve, 'ex-stop-listed', 1);
    await waitConnections(serve, 'ex-stop-dispatched', 1);
    await waitStatus(file, 'm-stop-a', 'assigned');

    bridge.child.send({ type: 'stop' });
    const codes = await within(Promise.all(serve.connections.map((c) => c.closed)), WAIT, 'the streams to close');
    assert.deepEqual(codes, [1000, 1000]);
    assert.deepEqual(serve.connections.map((c) => c.closeReason), ['shutdown', 'shutdown']);
    await waitFor(() => bridge.messages.some((m) => m.type === 'stopped'), WAIT, 'stopped');
    const exit = await within(bridge.exited, 5_000, 'the bridge process to exit by itself after stop()');
    assert.deepEqual(exit, { code: 0, signal: null }, bridge.stderr);
    assert.equal(logsOf(bridge.logs, 'queue-tailer:stop').length, 1);
    assert.equal(logsOf(bridge.logs, 'executor-ws:stopped').length, 2);
    await delay(200);
    assert.equal(serve.connections.length, 2, 'no reconnect after stop()');
  });
});
