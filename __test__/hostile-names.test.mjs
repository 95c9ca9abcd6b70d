// Issue 5.5 and §10: hostile names and planted links under watchDir. Session
// ids and directory names with `..`, `/`, NUL and control characters are
// URL-encoded and written only in their own directory; a symlinked session
// directory is not followed; symlinks planted at the lock and claim paths
// beside a session are never written through.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startQueueTailer } from '../esm/queue-tailer.mjs';
import { startScriptedServe } from './helpers/scripted-serve.mjs';
import { scope, waitFor } from './helpers/waiting.mjs';

/** Directory name → session id written in its session.json. */
const SESSIONS = {
  'ctl\u0001\u001bdir': 'plain-id',
  '..x': '../../etc',
  'x..': 'a/b/../c',
  'tab\there': 'nul\u0000id',
  'new\nline': '\u0007bell?#%',
};

describe('hostile names and planted links (§10, issue 5.5)', () => {
  it('odd ids and dir names are encoded and kept in their own dir; planted links are never followed', async (t) => {
    const s = scope(t);
    const outer = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-hostile-'));
    s.defer(() => fs.promises.rm(outer, { recursive: true, force: true }));
    const root = path.join(outer, 'watch');
    const sessionFile = (dir) => path.join(root, 'sessions', dir, 'session.json');
    const write = (file, id, missionId) => {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, JSON.stringify({ id, missions: [{ id: missionId, objective: 'o', status: 'queued' }] }, null, 2));
    };
    Object.entries(SESSIONS).forEach(([dir, id], i) => write(sessionFile(dir), id, `m-odd-${i}`));

    // Outside watchDir: a session reached only through a symlinked directory,
    // and victims that planted links point at.
    const outside = path.join(outer, 'outside', 'session.json');
    write(outside, 'outside', 'm-outside');
    const outsideBefore = fs.readFileSync(outside, 'utf8');
    fs.symlinkSync(path.dirname(outside), path.join(root, 'sessions', 'linked'));
    write(sessionFile('planted'), 'planted', 'm-planted');
    const victims = ['lock-victim', 'claim-victim'].map((n) => path.join(outer, n));
    fs.symlinkSync(victims[0], path.join(root, 'sessions', 'planted', '.session.json.lock'));
    fs.symlinkSync(victims[1], path.join(root, 'sessions', 'planted', '.session.json.claim'));

    const serve = await startScriptedServe(() => ({ status: 202, body: { executor_id: 'ex-1' } }));
    s.defer(() => serve.close());
    const logs = [];
    const tailer = await startQueueTailer({ aiwgServeUrl: serve.url, watchDir: root, disableWSSubscription: true, logger: (msg, meta) => logs.push({ msg, meta }) });
    s.defer(() => tailer.stop());

    const dirs = [...Object.keys(SESSIONS), 'planted'];
    const status = (file) => JSON.parse(fs.readFileSync(file, 'utf8')).missions[0].status;
    await waitFor(() => dirs.every((d) => status(sessionFile(d)) === 'assigned'), 10_000, 'every legitimate mission assigned');

    const urls = serve.requests.map((r) => r.url).sort();
    const expected = [...Object.values(SESSIONS), 'planted'].map((id) => `/api/v1/sessions/${encodeURIComponent(id)}/dispatch`).sort();
    assert.deepEqual(urls, expected, 'one POST per legitimate session, its id URL-encoded');
    assert.ok(!serve.requests.some((r) => r.body.includes('m-outside')), 'the symlinked session was not dispatched');
    assert.equal(fs.readFileSync(outside, 'utf8'), outsideBefore, 'the session behind the symlink is untouched');
    for (const v of victims) assert.equal(fs.existsSync(v), false, `${path.basename(v)} was created through a planted link`);
    for (const n of ['.session.json.lock', '.session.json.claim']) {
      assert.ok(fs.lstatSync(path.join(root, 'sessions', 'planted', n)).isSymbolicLink(), `${n} is still the planted link`);
    }
    assert.deepEqual(fs.readdirSync(outer).sort(), ['outside', 'watch'], 'nothing created beside watchDir');
    for (const [dir, id] of Object.entries(SESSIONS)) {
      assert.equal(JSON.parse(fs.readFileSync(sessionFile(dir), 'utf8')).id, id, `${JSON.stringify(dir)} kept its own session`);
    }
    assert.ok(!logs.some((l) => l.msg === 'queue-tailer:dispatch-error'), JSON.stringify(logs.filter((l) => l.msg === 'queue-tailer:dispatch-error')));
  });
});
