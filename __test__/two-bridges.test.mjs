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
    const atKill = serve.requests.length;

    await waitFor(() => missionsOf(files).every((m) => m.status === 'assigned'), 60_000, 'every mission assigned after the kill');
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
    t.diagnostic(`${atKill} requests at the kill; ${again.length} POSTed again`);
  });
});
