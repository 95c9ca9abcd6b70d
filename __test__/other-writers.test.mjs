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
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out).ids) : reject(new Error(`appender exited ${code}`))));
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
