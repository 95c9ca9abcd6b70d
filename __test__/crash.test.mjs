// Issue 5.3: a bridge SIGKILLed at random moments of a busy run (50 kills,
// fixed seed) never leaves a session.json that does not parse, a temp file
// that outlives the next start, or a mission that cannot progress; a
// restart finishes the work.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { startScriptedServe } from './helpers/scripted-serve.mjs';
import { scope, waitFor, within } from './helpers/waiting.mjs';
import { spawnBridge } from './helpers/bridge-process.mjs';
import { prng } from './helpers/prng.mjs';

const SEED = 0x5eed5;
const KILLS = 50;
const SESSIONS = 8;
const PER_SESSION = 150;


/** Temp files beside the session files, with the pid in their name. */
function temps(files) {
  return files.flatMap((f) => fs.readdirSync(path.dirname(f)).filter((n) => n.endsWith('.tmp')).map((n) => ({
    name: n,
    pid: Number(n.split('.')[3]),
  })));
}

describe('a bridge killed at random moments (issue 5.3)', () => {
  it(`${KILLS} SIGKILLs with seed ${SEED}: files always parse, no stray temps after a start, a restart finishes everything`, async (t) => {
    const s = scope(t);
    const random = prng(SEED);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-crash-'));
    s.defer(() => fs.promises.rm(root, { recursive: true, force: true }));
    const files = [];
    for (let n = 0; n < SESSIONS; n++) {
      const file = path.join(root, 'sessions', `s${n}`, 'session.json');
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const missions = Array.from({ length: PER_SESSION }, (_, i) => ({ id: `m-s${n}-${i}`, objective: `o ${i}`, status: 'queued' }));
      fs.writeFileSync(file, JSON.stringify({ id: `s${n}`, missions }, null, 2));
      files.push(file);
    }
    // Every 9th mission is refused for good; the rest accepted, slowly
    // enough that kills land mid-dispatch and mid-write.
    const refused = (id) => Number(id.split('-')[2]) % 9 === 4;
    const serve = await startScriptedServe((req) => {
      const id = JSON.parse(req.body).mission_id;
      return refused(id)
        ? { status: 400, delayMs: 5, body: { error: 'invalid_request' } }
        : { status: 202, delayMs: 5 + Math.floor(random() * 25), body: { executor_id: 'ex-1' } };
    });
    s.defer(() => serve.close());
    const options = { aiwgServeUrl: serve.url, watchDir: root, disableWSSubscription: true, retryBaseMs: 20 };

    const parseAll = () => files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
    let deadPids = [];
    let leftByKills = 0;
    for (let k = 0; k < KILLS; k++) {
      const bridge = spawnBridge(s, options);
      // Once this one has started, what dead bridges left behind is gone.
      await within(waitFor(() => bridge.logs.some((l) => l.msg === 'queue-tailer:start'), 30_000, 'start'), 31_000, 'bridge start');
      await waitFor(() => bridge.logs.length > 1 || bridge.messages.some((m) => m.type === 'ready'), 30_000, 'the first sweep under way');
      await delay(5 + Math.floor(random() * 120));
      bridge.child.kill('SIGKILL');
      await bridge.exited;
      const stray = temps(files).filter((f) => deadPids.includes(f.pid));
      assert.deepEqual(stray, [], `kill ${k}: temp files of earlier dead bridges are still there`);
      assert.doesNotThrow(parseAll, `kill ${k}: a session.json does not parse`);
      deadPids = [...deadPids, bridge.child.pid];
      leftByKills += temps(files).length;
    }

    // A restart finishes the work.
    const last = spawnBridge(s, options);
    await within(last.ready, 60_000, 'the last bridge ready');
    await waitFor(() => parseAll().every((doc) => doc.missions.every((m) => m.status !== 'queued')), 60_000, 'no mission left queued');
    last.child.send({ type: 'stop' });
    assert.deepEqual(await within(last.exited, 10_000, 'the last bridge exits'), { code: 0, signal: null });

    for (const doc of parseAll()) {
      assert.equal(doc.missions.length, PER_SESSION, `${doc.id}: every mission is still there`);
      for (const m of doc.missions) {
        assert.equal(m.status, refused(m.id) ? 'failed' : 'assigned', m.id);
      }
    }
    assert.deepEqual(temps(files), [], 'no temp file left at all');
    const keys = new Set(serve.requests.map((r) => r.headers['idempotency-key']));
    assert.equal(keys.size, SESSIONS * PER_SESSION, 'every mission was POSTed');
    t.diagnostic(`${serve.requests.length} POSTs for ${keys.size} missions over ${KILLS} kills; ${leftByKills} temp files left by kills were cleared`);
  });
});
