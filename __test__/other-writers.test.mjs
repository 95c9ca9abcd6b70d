// §9.5 and issue 5.1: another process appends missions to the session.json
// the bridge is writing back to, the way `aiwg mc` does (in place, or temp
// file + rename, never with our lock). Nothing it wrote may be lost, and no
// mission may be started twice.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { startQueueTailer } from '../esm/queue-tailer.mjs';
import { startScriptedServe } from './helpers/scripted-serve.mjs';
import { scope, waitFor, within } from './helpers/waiting.mjs';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const APPENDER = path.join(HERE, 'helpers', 'queue-appender.mjs');
const COUNT = 300;

/** Every 7th mission is refused for good (400), the rest accepted after 0–9 ms. */
const refused = (i) => i % 7 === 3;
const indexOf = (missionId) => Number(missionId.slice(-4));

function runAppender(file, mode) {
  const child = spawn(process.execPath, [APPENDER, file, String(COUNT), '5', mode, 'x'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  return new Promise((resolve, reject) => {
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out).ids) : reject(new Error(`appender exited ${code}`))));
  });
}

describe('another process appends missions while the bridge writes back (§9.5)', () => {
  for (const mode of ['in-place', 'rename']) {
    it(`${mode}: 300 missions 5 ms apart are all kept, each POSTed once, each in the state its answer implies`, async (t) => {
      const { defer } = scope(t);
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-writers-'));
      defer(() => fs.promises.rm(root, { recursive: true, force: true }));
      const file = path.join(root, 'sessions', 's1', 'session.json');
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, JSON.stringify({ id: 's1', name: 'writers', state: 'active', missions: [] }, null, 2));

      const serve = await startScriptedServe((req) => {
        const { mission_id: id } = JSON.parse(req.body);
        if (refused(indexOf(id))) return { status: 400, body: { error: 'invalid_request', message: 'no' } };
        return { status: 202, delayMs: indexOf(id) % 10, body: { executor_id: 'ex-1', mission_id: id } };
      });
      defer(() => serve.close());
      const logs = [];
      const tailer = await startQueueTailer({
        aiwgServeUrl: serve.url,
        watchDir: root,
        disableWSSubscription: true,
        logger: (msg, meta) => logs.push({ msg, meta }),
      });
      defer(() => tailer.stop());

      const ids = await within(runAppender(file, mode), 60_000, 'the appender');
      const settled = () => {
        const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
        return doc.missions.length === COUNT && doc.missions.every((m) => m.status !== 'queued') && doc;
      };
      const doc = await waitFor(() => { try { return settled(); } catch { return false; } }, 30_000, 'every mission settled').catch((err) => {
        // Say what was left: missions lost from the file, or still queued.
        const now = JSON.parse(fs.readFileSync(file, 'utf8')).missions;
        const inFile = new Set(now.map((m) => m.id));
        const lost = ids.filter((id) => !inFile.has(id));
        const queued = now.filter((m) => m.status === 'queued').map((m) => m.id);
        const posted = new Set(serve.requests.map((r) => JSON.parse(r.body).mission_id));
        const tail = logs.slice(-20).map((l) => `${l.msg} ${JSON.stringify(l.meta)}`);
        err.message += `; ${now.length} in the file; lost: ${lost.join(', ') || 'none'}; still queued: ${queued.map((id) => `${id}${posted.has(id) ? ' (POSTed)' : ''}`).join(', ') || 'none'}; last log lines:\n${tail.join('\n')}`;
        throw err;
      });

      assert.deepEqual(doc.missions.map((m) => m.id).sort(), [...ids].sort(), 'every appended mission is in the file');
      const posts = new Map();
      for (const r of serve.requests) {
        const id = JSON.parse(r.body).mission_id;
        posts.set(id, (posts.get(id) ?? 0) + 1);
      }
      const twice = [...posts].filter(([, n]) => n > 1);
      assert.deepEqual(twice, [], 'no mission was POSTed twice');
      assert.equal(posts.size, COUNT, 'every mission was POSTed');
      for (const m of doc.missions) {
        if (refused(indexOf(m.id))) {
          assert.equal(m.status, 'failed', m.id);
          assert.equal(m.failureReason, 'invalid_request', m.id);
        } else {
          assert.equal(m.status, 'assigned', m.id);
          assert.equal(m.executorId, 'ex-1', m.id);
        }
      }
      // Say what the race looked like, for whoever reads the test output.
      const restored = logs.filter((l) => l.msg === 'queue-tailer:outcome-restored').length;
      t.diagnostic(`${mode}: ${restored} outcomes reverted by the other writer were restored`);
    });
  }
});

const HEARTBEAT = path.join(HERE, 'helpers', 'heartbeat-writer.mjs');

/** Start the heartbeat writer on `file`; → `{stop}`: SIGTERM, then its last heartbeat. */
function startHeartbeat(file) {
  const child = spawn(process.execPath, [HEARTBEAT, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  const exited = new Promise((resolve, reject) => {
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out).heartbeat) : reject(new Error(`heartbeat writer exited ${code}`))));
  });
  return {
    stop: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

describe('a writer faster than our fsync (issue 14, item 7)', () => {
  it('outcomes it keeps beating are tried until they land, saved beside the session at stop, and made by the next bridge: none lost, none POSTed twice, its own writes kept', async (t) => {
    const { defer } = scope(t);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-fast-writer-'));
    defer(() => fs.promises.rm(root, { recursive: true, force: true }));
    const file = path.join(root, 'sessions', 's1', 'session.json');
    const owedFile = path.join(path.dirname(file), '.session.json.pending');
    const PER = 5;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const missions = Array.from({ length: PER }, (_, k) => ({ id: `m-fast-${k}`, objective: 'o', status: 'queued' }));
    fs.writeFileSync(file, JSON.stringify({ id: 's1', missions }, null, 2));
    const heartbeat = startHeartbeat(file);
    defer(() => heartbeat.stop().catch(() => {}));
    await waitFor(() => (JSON.parse(fs.readFileSync(file, 'utf8')).heartbeat ?? 0) > 100, 10_000, 'the writer running');

    const serve = await startScriptedServe(() => ({ status: 202, body: { executor_id: 'ex-fast' } }));
    defer(() => serve.close());
    const bridge = (logs) => startQueueTailer({
      aiwgServeUrl: serve.url,
      watchDir: root,
      disableWSSubscription: true,
      logger: (msg, meta) => logs.push({ msg, meta }),
    });
    const firstLogs = [];
    const first = await bridge(firstLogs);
    await waitFor(() => serve.requests.length >= PER, 10_000, 'every mission POSTed');
    await new Promise((r) => setTimeout(r, 1000));
    const stopping = Date.now();
    await first.stop();
    const stopMs = Date.now() - stopping;
    // Every accepted outcome is in the file or saved beside it.
    const readMissions = () => {
      for (;;) {
        try {
          return JSON.parse(fs.readFileSync(file, 'utf8')).missions;
        } catch {
          // Between the writer's write and its rename: read again.
        }
      }
    };
    const landed = readMissions().filter((m) => m.status === 'assigned').map((m) => m.id);
    const owed = fs.existsSync(owedFile) ? fs.readFileSync(owedFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l).update.missionId) : [];
    assert.deepEqual([...new Set([...landed, ...owed])].sort(), missions.map((m) => m.id), `landed ${landed}, saved ${owed}`);
    assert.ok(!firstLogs.some((l) => l.msg === 'queue-tailer:pending-lost'), 'a save failed');

    // The next bridge starts while the writer still runs: it takes the saved
    // writes in and keeps trying; once the writer stops, they land.
    const secondLogs = [];
    const second = await bridge(secondLogs);
    defer(() => second.stop());
    await new Promise((r) => setTimeout(r, 500));
    const last = await heartbeat.stop();
    await waitFor(() => readMissions().every((m) => m.status === 'assigned'), 15_000, 'every outcome written once the writer stopped');
    await waitFor(() => !fs.existsSync(owedFile), 5000, 'the saved writes forgotten');
    assert.equal(serve.requests.length, PER, 'a mission was POSTed twice');
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(doc.heartbeat, last, "the writer's last write was lost");
    assert.ok(doc.missions.every((m) => m.executorId === 'ex-fast'));
    assert.deepEqual(fs.readdirSync(path.dirname(file)).filter((n) => n.endsWith('.tmp')), []);
    t.diagnostic(`${PER} missions, ${serve.requests.length} POSTs; at the first stop (${stopMs} ms) ${landed.length} landed, ${owed.length} saved; writer's last heartbeat ${last} kept; all ${PER} assigned after it stopped`);
  });
});

describe('an event reverted by another writer (issue 14, item 8)', () => {
  it('a lock-less writer that puts a mission back as it was before an event we wrote gets the event written again, each time; a mission changed otherwise is left alone', async (t) => {
    const { defer } = scope(t);
    const { startFakeServe } = await import('./helpers/lifecycle-serve.mjs');
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-event-revert-'));
    defer(() => fs.promises.rm(root, { recursive: true, force: true }));
    const file = path.join(root, 'sessions', 's1', 'session.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // An executor holds m-1 already: the bridge follows it at start (§9.1).
    const missions = [
      { id: 'm-1', objective: 'o', status: 'assigned', executorId: 'ex-1' },
      { id: 'm-2', objective: 'p', status: 'assigned', executorId: 'ex-1' },
    ];
    fs.writeFileSync(file, JSON.stringify({ id: 's1', missions }, null, 2));
    const serve = await startFakeServe();
    defer(() => serve.close());
    const logs = [];
    const tailer = await startQueueTailer({
      aiwgServeUrl: serve.url,
      watchDir: root,
      logger: (msg, meta) => logs.push({ msg, meta }),
    });
    defer(() => tailer.stop());
    await waitFor(() => serve.open('ex-1').length > 0, 10_000, 'the executor followed');
    const statuses = () => JSON.parse(fs.readFileSync(file, 'utf8')).missions.map((m) => m.status);
    // What a lock-less writer read before the event's write.
    const asRead = fs.readFileSync(file, 'utf8');
    serve.send('ex-1', { event: 'mission.started', mission_id: 'm-1', ts: '2026-12-03T00:00:00.000Z', data: { agent_runtime: 'claude' } });
    await waitFor(() => statuses()[0] === 'running', 10_000, 'the event written');
    const restored = () => logs.filter((l) => l.msg === 'queue-tailer:event-restored');
    for (let round = 1; round <= 3; round++) {
      // ... and writes it back after our write, in place.
      fs.writeFileSync(file, asRead);
      await waitFor(() => restored().length === round && statuses()[0] === 'running', 10_000, `revert ${round} restored`);
    }
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(doc.missions[0].startedAt, '2026-12-03T00:00:00.000Z');
    assert.equal(doc.missions[0].agentRuntime, 'claude');
    assert.deepEqual(restored().map((l) => [l.meta.missionId, l.meta.status, l.meta.path]), Array(3).fill(['m-1', 'running', file]));
    // A mission put back but changed (a new objective) is somebody's edit: kept.
    const edited = JSON.parse(asRead);
    edited.missions[0].objective = 'changed by hand';
    fs.writeFileSync(file, JSON.stringify(edited, null, 2));
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(statuses(), ['assigned', 'assigned']);
    assert.equal(restored().length, 3);
    t.diagnostic(`3 reverts of one event, 3 restored; an edit left alone`);
  });
});
