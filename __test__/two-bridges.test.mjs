// §9.5 and issue 5.2: two bridges on one queue POST every mission once, and
// when one is killed with SIGKILL the other finishes its work.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startScriptedServe } from './helpers/scripted-serve.mjs';
import { scope, waitFor, within } from './helpers/waiting.mjs';
import { spawnBridge } from './helpers/bridge-process.mjs';
import { reportFault, sessionReads, tempsBeside } from './helpers/fault-report.mjs';

const SESSIONS = 4;

function queue(s, perSession) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-bridges-'));
  s.defer(() => fs.promises.rm(root, { recursive: true, force: true }));
  const files = [];
  for (let n = 0; n < SESSIONS; n++) {
    const file = path.join(root, 'sessions', `s${n}`, 'session.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const missions = Array.from({ length: perSession }, (_, i) => ({
      id: `m-${(1_700_000_000_000 + i).toString(36)}-s${n}i${i}`,
      objective: `mission ${i} of s${n}`,
      status: 'queued',
    }));
    fs.writeFileSync(file, JSON.stringify({ id: `s${n}`, missions }, null, 2));
    files.push(file);
  }
  return { root, files };
}

const missionsOf = (files) => files.flatMap((f) => JSON.parse(fs.readFileSync(f, 'utf8')).missions);

/** POSTs per Idempotency-Key. */
function postsByKey(serve) {
  const posts = new Map();
  for (const r of serve.requests) {
    const key = r.headers['idempotency-key'];
    posts.set(key, (posts.get(key) ?? 0) + 1);
  }
  return posts;
}

describe('two bridges on one queue (§9.5)', () => {
  it('both running: every mission is POSTed exactly once and assigned', async (t) => {
    const s = scope(t);
    const { root, files } = queue(s, 40);
    const serve = await startScriptedServe((req) => ({ status: 202, delayMs: 2 + (req.body.length % 8), body: { executor_id: 'ex-1' } }));
    s.defer(() => serve.close());
    const options = { aiwgServeUrl: serve.url, watchDir: root, disableWSSubscription: true, maxInflight: 4 };
    const [a, b] = [spawnBridge(s, options), spawnBridge(s, options)];
    await within(Promise.all([a.ready, b.ready]), 30_000, 'both bridges ready');
    await waitFor(() => missionsOf(files).every((m) => m.status === 'assigned'), 30_000, 'every mission assigned');

    const posts = postsByKey(serve);
    assert.equal(posts.size, SESSIONS * 40, 'every mission was POSTed');
    assert.deepEqual([...posts].filter(([, n]) => n > 1), [], 'no mission was POSTed twice');
    const dispatchedBy = (bridge) => bridge.logs.filter((l) => l.msg === 'queue-tailer:dispatched').length;
    // The log lines come over IPC a moment after the writes they report.
    await waitFor(() => dispatchedBy(a) + dispatchedBy(b) >= SESSIONS * 40, 10_000, 'every dispatch reported');
    assert.equal(dispatchedBy(a) + dispatchedBy(b), SESSIONS * 40, 'each dispatch was reported by one bridge');
    t.diagnostic(`split: ${dispatchedBy(a)} / ${dispatchedBy(b)}`);
  });

  it('one is SIGKILLed mid-run: the survivor finishes; only what was in flight at the kill is POSTed again', async (t) => {
    const s = scope(t);
    const { root, files } = queue(s, 60);
    // Slow answers, so the kill lands while dispatches are in flight.
    const serve = await startScriptedServe(() => ({ status: 202, delayMs: 40, body: { executor_id: 'ex-1' } }));
    s.defer(() => serve.close());
    const options = { aiwgServeUrl: serve.url, watchDir: root, disableWSSubscription: true, maxInflight: 4 };
    const victim = spawnBridge(s, options);
    await waitFor(() => victim.logs.some((l) => l.msg === 'queue-tailer:dispatched'), 30_000, 'the first bridge dispatching');
    const survivor = spawnBridge(s, options);
    await waitFor(() => survivor.logs.some((l) => l.msg === 'queue-tailer:start'), 30_000, 'the second bridge started');
    await waitFor(() => serve.requests.length >= 40, 30_000, 'a busy run');
    victim.child.kill('SIGKILL');
    await victim.exited;
    const killedAt = performance.now();
    const atKill = serve.requests.length;

    const reads = sessionReads(files);
    await waitFor(() => reads.statuses().every((st) => st === 'assigned'), 60_000, 'every mission assigned after the kill');
    const posts = postsByKey(serve);
    assert.equal(posts.size, SESSIONS * 60, 'every mission was POSTed');
    const again = [...posts].filter(([, n]) => n > 1);
    // A dispatch the victim had sent but whose outcome was not on disk yet
    // is started again by the survivor, under the same Idempotency-Key: the
    // victim's maxInflight requests, plus answers it had read and not yet
    // written (a slot is free once serve answers), each at most twice.
    assert.ok(again.length <= 2 * options.maxInflight, `${again.length} missions POSTed again`);
    assert.ok(again.every(([, n]) => n === 2), 'none more than twice');
    assert.ok(survivor.logs.filter((l) => l.msg === 'queue-tailer:dispatched').length > 0, 'the survivor dispatched');
    // Temp files the victim was writing at the kill go once the survivor
    // sees it gone (§9.6), not only at a restart.
    await waitFor(() => tempsBeside(files).length === 0, 5000, "the killed bridge's temp files cleared");
    const posted = serve.requests.map((r) => r.headers['idempotency-key']);
    reportFault(t, { reads, posted, recoverMs: performance.now() - killedAt, note: `${atKill} requests at the kill; ${again.length} in flight then POSTed again by the survivor (same key)` });
  });
});

describe('two bridges share a large queue (issue 14, item 10)', () => {
  it('a busy session is handed over between batches: each bridge dispatches a fair part, every mission once', { timeout: 90_000 }, async (t) => {
    const s = scope(t);
    const { root, files } = queue(s, 100);
    // About 2 s of work for one bridge alone: long enough for both to share
    // it. Serve answers nothing until each bridge has seen the other (one
    // may start well after the other on a loaded machine).
    let bothUp;
    const gate = new Promise((resolve) => (bothUp = resolve));
    const serve = await startScriptedServe(async () => {
      await gate;
      return { status: 202, delayMs: 15, body: { executor_id: 'ex-1' } };
    });
    s.defer(() => serve.close());
    const options = { aiwgServeUrl: serve.url, watchDir: root, disableWSSubscription: true, maxInflight: 4 };
    const [a, b] = [spawnBridge(s, options), spawnBridge(s, options)];
    const sawOther = (bridge) => bridge.logs.some((l) => l.msg === 'queue-tailer:peer-bridges' && l.meta.peers === 1);
    await waitFor(() => sawOther(a) && sawOther(b), 30_000, 'each bridge sees the other');
    bothUp();
    const reads = sessionReads(files);
    await waitFor(() => reads.statuses().every((st) => st === 'assigned'), 60_000, 'every mission assigned');
    await within(Promise.all([a.ready, b.ready]), 30_000, 'both bridges ready');

    const posts = postsByKey(serve);
    assert.equal(posts.size, SESSIONS * 100, 'every mission was POSTed');
    assert.deepEqual([...posts].filter(([, n]) => n > 1), [], 'no mission was POSTed twice');
    const dispatchedBy = (bridge) => bridge.logs.filter((l) => l.msg === 'queue-tailer:dispatched').length;
    // The log lines come over IPC a moment after the writes they report.
    await waitFor(() => dispatchedBy(a) + dispatchedBy(b) >= SESSIONS * 100, 10_000, 'every dispatch reported');
    const split = [dispatchedBy(a), dispatchedBy(b)];
    assert.equal(split[0] + split[1], SESSIONS * 100, 'each dispatch was reported by one bridge');
    reportFault(t, { reads, posted: serve.requests.map((r) => r.headers['idempotency-key']), note: `split ${split[0]} / ${split[1]}` });
    // Even would be 200 / 200.
    assert.ok(Math.min(...split) >= SESSIONS * 100 * 0.25, `split ${split[0]} / ${split[1]}`);

    // Each takes its presence file away when it stops.
    for (const bridge of [a, b]) bridge.child.send({ type: 'stop' });
    for (const bridge of [a, b]) assert.deepEqual(await within(bridge.exited, 15_000, 'a bridge exits'), { code: 0, signal: null });
    assert.deepEqual(fs.readdirSync(path.join(root, '.mc-native-leases', 'bridges')), [], 'a presence file left after stop');
  });
});

describe('two bridges follow each executor once (issue 14, item 9)', () => {
  it('only the lease holder follows an executor and applies its events, also for missions the other dispatched; SIGKILL hands the lease over', async (t) => {
    const s = scope(t);
    const { startFakeServe } = await import('./helpers/lifecycle-serve.mjs');
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-lease-'));
    s.defer(() => fs.promises.rm(root, { recursive: true, force: true }));
    const fileOf = (session) => path.join(root, 'sessions', session, 'session.json');
    const write = (session, missions) => {
      const file = fileOf(session);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(`${file}.tmp`, JSON.stringify({ id: session, missions }, null, 2));
      fs.renameSync(`${file}.tmp`, file);
    };
    // Mission m-N lives in session sN.
    const status = (id) => JSON.parse(fs.readFileSync(fileOf(`s${id.slice(2)}`), 'utf8')).missions[0].status;
    write('s1', [{ id: 'm-1', objective: 'o', status: 'assigned', executorId: 'ex-1' }]);
    const serve = await startFakeServe();
    s.defer(() => serve.close());
    const options = { aiwgServeUrl: serve.url, watchDir: root, reconnectBaseMs: 50, reconnectMaxMs: 200 };
    const a = spawnBridge(s, options);
    await within(a.ready, 30_000, 'bridge A ready');
    await waitFor(() => serve.open('ex-1').length === 1, 10_000, 'A follows ex-1');
    const b = spawnBridge(s, options);
    await within(b.ready, 30_000, 'bridge B ready');
    await waitFor(() => b.logs.some((l) => l.msg === 'queue-tailer:executor-lease-waiting'), 10_000, 'B waits for the lease');
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(serve.connections.length, 1, 'B opened no stream of its own');

    serve.send('ex-1', { event: 'mission.started', mission_id: 'm-1', ts: '2026-12-03T00:00:00.000Z' });
    await waitFor(() => status('m-1') === 'running', 10_000, 'the event written');
    // Missions queued now go to whichever bridge claims their session
    // first; their events come on A's stream whoever dispatched them.
    const queued = ['m-2', 'm-3', 'm-4', 'm-5', 'm-6', 'm-7'];
    for (const id of queued) write(`s${id.slice(2)}`, [{ id, objective: 'p', status: 'queued' }]);
    await waitFor(() => queued.every((id) => status(id) === 'assigned'), 10_000, 'all dispatched');
    for (const id of queued) serve.send('ex-1', { event: 'mission.started', mission_id: id, ts: '2026-12-03T00:00:01.000Z' });
    await waitFor(() => queued.every((id) => status(id) === 'running'), 10_000, 'all started');
    const applied = (bridge) => bridge.logs.filter((l) => l.msg === 'queue-tailer:event-applied').map((l) => [l.meta.missionId, l.meta.outcome]);
    const all = ['m-1', ...queued];
    // Log lines come over IPC a moment after the write they report.
    await waitFor(() => applied(a).length >= all.length, 10_000, "A's event-applied lines");
    assert.deepEqual(applied(b), [], 'B applied nothing');
    assert.deepEqual(applied(a).sort(), all.map((id) => [id, 'updated']));
    const dispatchedBy = (bridge) => bridge.logs.filter((l) => l.msg === 'queue-tailer:dispatched').length;

    a.child.kill('SIGKILL');
    await a.exited;
    const killedAt = performance.now();
    await waitFor(() => b.logs.some((l) => l.msg === 'queue-tailer:executor-lease-taken'), 10_000, 'B takes the lease over');
    await waitFor(() => serve.open('ex-1').length === 1, 10_000, 'B follows ex-1');
    for (const id of all) serve.send('ex-1', { event: 'mission.completed', mission_id: id, ts: '2026-12-03T00:00:02.000Z', data: { exit_code: 0 } });
    await waitFor(() => all.every((id) => status(id) === 'done'), 10_000, 'all done after the takeover');
    const recoverMs = performance.now() - killedAt;
    await waitFor(() => applied(b).length >= all.length, 10_000, "B's event-applied lines");
    assert.deepEqual(applied(b).sort(), all.map((id) => [id, 'updated']));
    const journaled = (id) => {
      const journal = fs.readFileSync(path.join(path.dirname(fileOf(`s${id.slice(2)}`)), 'log.jsonl'), 'utf8');
      return journal.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'event').map((e) => e.event);
    };
    // Journal lines land just after the write they report.
    await waitFor(() => all.every((id) => journaled(id).length >= 2), 10_000, 'the events journaled');
    await new Promise((r) => setTimeout(r, 200));
    for (const id of all) assert.deepEqual(journaled(id), ['mission.started', 'mission.completed'], `${id}: each event journaled once`);
    assert.equal(serve.dispatches.length, queued.length, 'each POSTed once');
    const posted = serve.dispatches.map((d) => `${d.sessionId}/${d.missionId}`);
    reportFault(t, { reads: sessionReads(all.map((id) => fileOf(`s${id.slice(2)}`))), posted, recoverMs, landed: 'done', note: `dispatched by A ${dispatchedBy(a)}, by B ${dispatchedBy(b)}; events applied by A ${all.length}, by B after the takeover ${all.length}, each journaled once` });
    b.child.send({ type: 'stop' });
    assert.deepEqual(await within(b.exited, 15_000, 'B exits'), { code: 0, signal: null });
  });
});
