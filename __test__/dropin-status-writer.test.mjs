// Generated inputs for the status writer and the session files (issue 10):
// seeded random sessions and updates of every type JS lets a caller pass,
// each applied by the package and by a reference written here from SPEC §2
// and §4 (`missions[i] = {...current, ...patch, status}`, `m && m.id ===
// missionId`, `JSON.stringify(session, null, 2)`). Results and files must
// be the same. Bounded in cases and in time.
// Run: node --test __test__/dropin-status-writer.test.mjs

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { readSession, writeSessionAtomic } from '../esm/queue-tailer.mjs';
import { applyStatusUpdate, applyStatusUpdatesBatched } from '../esm/status-writer.mjs';
import { prng as rng } from './helpers/prng.mjs';

const SEED = Number(process.env.DROPIN_SEED ?? 0x5eed10);
const CASES = Number(process.env.DROPIN_CASES ?? 1500);
const TIME_LIMIT_MS = 20_000;

// tmpfs where there is one: the property is about values, not the disk.
const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const root = fs.mkdtempSync(path.join(base, 'mc-dropin-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));


function generator(seed) {
  const r = rng(seed);
  const int = (n) => Math.floor(r() * n);
  const pick = (xs) => xs[int(xs.length)];
  const strings = ['', 'a', 'queued', 'running', 'done', '0', '1', '10', 'é', '😀', '😀'.slice(0, 1), '\udc00x', 'q"\\\n\t', '\u0001', '\u2028', 'x'.repeat(40)];
  const numbers = [0, -0, 1, -1, 1.5, 0.1, 1e21, 1e-7, 2 ** 53 + 2, -(2 ** 31), NaN, Infinity, -Infinity];
  const keys = ['id', 'status', 'note', 'x', 'y', '0', '1', '10', '01', 'é', '__proto__', 'updatedAt', '😀'];
  function value(depth = 0) {
    switch (int(depth > 2 ? 4 : 7)) {
      case 0: return pick(strings);
      case 1: return pick(numbers);
      case 2: return pick([true, false, null]);
      case 3: return pick([undefined, pick(strings)]);
      case 4: return Array.from({ length: int(3) }, () => value(depth + 1));
      case 5: return object(depth + 1);
      default: return pick([new Date(int(1e12)), pick(strings)]);
    }
  }
  /** `o` with a few more own fields (defined, so that `__proto__` is a field as JSON.parse makes it). */
  function fill(o, depth) {
    for (let i = int(4); i > 0; i--) Object.defineProperty(o, pick(keys), { value: value(depth), enumerable: true, writable: true, configurable: true });
    return o;
  }
  const object = (depth = 0) => fill({}, depth);
  const ids = ['a', 'b', 'c', 1, 2, null, '', '1'];
  function mission() {
    switch (int(12)) {
      case 0: return null;
      case 1: return pick([5, 'str', true, [1, 2]]);
      case 2: return { status: pick(['queued', 'running']), objective: 'no id' };
      default: {
        const m = { id: pick(ids), status: pick(['queued', 'assigned', 'running', 'done', undefined]) };
        return fill(m, 1);
      }
    }
  }
  function session() {
    switch (int(20)) {
      case 0: return null;
      case 1: return pick([0, '', false, 'text', 7, []]);
      case 2: return { id: 's', missions: pick([undefined, null, 'x', {}]) };
      default: {
        const s = { id: pick(['s', 1, undefined]), name: pick(strings), missions: Array.from({ length: int(5) }, mission) };
        return fill(s, 1);
      }
    }
  }
  /** The file: JSON.stringify's text, sometimes compact or with numbers only JSON text can spell. */
  function fileText(doc) {
    const text = JSON.stringify(doc, null, int(3) === 0 ? 0 : 2);
    if (text === undefined) return '';
    switch (int(8)) {
      case 0: return text.replace(/^\{/, '{"raw":-1e400,"exp":1E2,"frac":1.0,');
      case 1: return text.slice(0, Math.max(0, text.length - 1 - int(5)));
      default: return text;
    }
  }
  function update() {
    const u = {};
    if (int(8)) u.missionId = int(10) ? pick(ids) : pick([undefined, NaN, {}, [], Infinity, -0]);
    if (int(10)) u.status = int(8) ? pick(['assigned', 'running', 'done', 'failed']) : value(2);
    switch (int(6)) {
      case 0: break;
      case 1: u.patch = pick([null, 'pq', [7, 8], 3, undefined]); break;
      default: u.patch = object(1);
    }
    if (int(3) === 0) u.transitionFrom = int(4) ? pick(['queued', 'assigned', 'running']) : pick(['', 0, NaN, null, { q: 1 }, 1]);
    return u;
  }
  return { session, fileText, update, int };
}

/** The reference for one update on the in-memory session (SPEC §4). */
function applyOne(session, update) {
  const missions = Array.isArray(session.missions) ? session.missions : [];
  const index = missions.findIndex((m) => m && m.id === update.missionId);
  if (index === -1) return 'missing';
  if (update.transitionFrom && missions[index].status !== update.transitionFrom) return 'stale';
  missions[index] = { ...missions[index], ...update.patch, status: update.status };
  return 'applied';
}

function parseOrNull(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Fresh copies of an update, so that the package and the reference see the same values. */
function copies(update) {
  return [update, { ...update }];
}

const sameValue = (a, b, message) => assert.deepStrictEqual(a, b, message);

describe('status writer on generated inputs: the reference behaviour, value for value and byte for byte', () => {
  it(`${CASES} seeded cases (seed ${SEED.toString(16)})`, async () => {
    const g = generator(SEED);
    const started = Date.now();
    let ran = 0;
    const seen = { updated: 0, stale: 0, 'missing-mission': 0, 'missing-session': 0, batched: 0 };
    for (let n = 0; n < CASES && Date.now() - started < TIME_LIMIT_MS; n++, ran++) {
      const file = path.join(root, `c${n}`, 'session.json');
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, g.fileText(g.session()));
      // What is on disk (a cut through a surrogate pair is written as U+FFFD).
      const text = fs.readFileSync(file, 'utf8');
      const context = `case ${n}: ${text.slice(0, 200)}`;
      if (g.int(4) === 0) {
        const updates = Array.from({ length: 1 + g.int(4) }, g.update);
        const result = await applyStatusUpdatesBatched(file, updates);
        const session = parseOrNull(text);
        if (!session) {
          sameValue(result, { outcome: 'missing-session', applied: [], missing: updates.map((u) => u.missionId) }, context);
          assert.equal(fs.readFileSync(file, 'utf8'), text, context);
          continue;
        }
        const applied = [];
        const missing = [];
        for (const u of updates) {
          const what = applyOne(session, u);
          if (what === 'applied') applied.push(u.missionId);
          if (what === 'missing') missing.push(u.missionId);
        }
        sameValue(result, { outcome: 'updated', applied, missing }, context);
        const after = fs.readFileSync(file, 'utf8');
        if (applied.length === 0) assert.equal(after, text, `${context}: nothing applied, nothing written`);
        else {
          session.updatedAt = JSON.parse(after).updatedAt;
          assert.equal(after, JSON.stringify(session, null, 2), context);
        }
        seen.batched++;
        continue;
      }
      const [mine, theirs] = copies(g.update());
      const result = await applyStatusUpdate(file, mine);
      seen[result.outcome]++;
      const session = parseOrNull(text);
      if (!session) {
        sameValue(result, { outcome: 'missing-session' }, context);
        continue;
      }
      const what = applyOne(session, theirs);
      if (what === 'missing') {
        sameValue(result, { outcome: 'missing-mission' }, context);
        assert.equal(fs.readFileSync(file, 'utf8'), text, context);
      } else if (what === 'stale') {
        sameValue(result, { outcome: 'stale', session }, context);
        assert.equal(fs.readFileSync(file, 'utf8'), text, context);
      } else {
        assert.equal(result.outcome, 'updated', context);
        session.updatedAt = result.session.updatedAt;
        sameValue(result.session, session, context);
        assert.equal(fs.readFileSync(file, 'utf8'), JSON.stringify(session, null, 2), context);
      }
    }
    assert.ok(ran >= Math.min(CASES, 200), `ran ${ran} cases`);
    for (const [outcome, count] of Object.entries(seen)) assert.ok(count > 0, `no case gave ${outcome}: the generator needs widening`);
  });

  it('readSession and writeSessionAtomic round-trip generated sessions as JSON.parse and JSON.stringify do', async () => {
    const g = generator(SEED ^ 0xabc);
    const started = Date.now();
    for (let n = 0; n < 500 && Date.now() - started < TIME_LIMIT_MS; n++) {
      const file = path.join(root, `w${n}`, 'session.json');
      const doc = g.session();
      if (doc === null || typeof doc !== 'object') continue;
      const copy = { ...doc };
      await writeSessionAtomic(file, doc);
      copy.updatedAt = doc.updatedAt;
      const text = fs.readFileSync(file, 'utf8');
      assert.equal(text, JSON.stringify(Array.isArray(doc) ? doc : copy, null, 2), `case ${n}`);
      sameValue(await readSession(file), JSON.parse(text), `case ${n}`);
    }
  });
});
