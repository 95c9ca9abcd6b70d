// Session files and the status writer (SPEC §1, §2, §4, §8, §9.6, §10):
// discoverSessions, readSession, writeSessionAtomic, queuedMissions,
// buildDispatchPayload, backoffMs, applyStatusUpdate, applyStatusUpdatesBatched.
// Real files in temp directories, the real addon, no mocks.
// Run: node --test __test__/session-files.test.mjs

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';

import {
  discoverSessions,
  readSession,
  writeSessionAtomic,
  queuedMissions,
  buildDispatchPayload,
  backoffMs,
} from '../esm/queue-tailer.mjs';
import { applyStatusUpdate, applyStatusUpdatesBatched } from '../esm/status-writer.mjs';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const READER = path.join(HERE, 'helpers', 'tailer-session-reader.mjs');
/** What a session directory holds after our writes: the file, and the lock our writers share (§9.5). */
const WRITTEN = ['.session.json.lock', 'session.json'];
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// ---------------------------------------------------------------------------
// helpers

const roots = [];
after(() => {
  for (const dir of roots) fs.rmSync(dir, { recursive: true, force: true });
});
function tmpRoot() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-session-files-'));
  roots.push(dir);
  return dir;
}
function sessionPath(root, dir = 's1') {
  return path.join(root, 'sessions', dir, 'session.json');
}
/** Write `doc` the way the JS original (and `aiwg mc`) writes it. */
function writeJsonFile(file, doc) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(doc, null, 2));
}
function clone(v) {
  return JSON.parse(JSON.stringify(v));
}
/** Everything that changes when a file is replaced or rewritten. */
function fileStateBig(file) {
  const st = fs.statSync(file, { bigint: true });
  return { bytes: fs.readFileSync(file, 'utf8'), ino: st.ino, mtimeNs: st.mtimeNs };
}
function assertTypeError(err, name) {
  assert.ok(err instanceof TypeError, `expected a TypeError, got ${err && err.constructor && err.constructor.name}: ${err && err.message}`);
  assert.ok(err.message.includes(name), `TypeError should name "${name}": ${err.message}`);
  return true;
}
async function assertRejectsTypeError(promise, name) {
  assert.ok(promise instanceof Promise, 'an async function must return a promise, even for bad input');
  await assert.rejects(promise, (err) => assertTypeError(err, name));
}
/** A session document shaped like SPEC §8. */
function sessionDoc(id = 'mc-lz3k9a0-a1b2c3', missions = []) {
  return {
    id,
    name: 'demo',
    state: 'active',
    maxMissions: 4,
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    missions,
    mutationKeys: ['k1', 'k2'],
  };
}
function mission(id, status = 'queued', extra = {}) {
  return { id, objective: `do ${id}`, status, loop: 0, maxIterations: 5, priority: 'normal', mode: 'direct', ...extra };
}

/**
 * Counts atomic writes in `dir`: every replacement goes through a uniquely
 * named temp file in the same directory (§2, §9.6), so the number of
 * distinct names other than `session.json` seen by an fs.watch is the
 * number of writes.
 */
function writeCounter(dir) {
  const names = new Set();
  const watcher = fs.watch(dir, (_event, name) => {
    // Each write is one temp file; the writers' lock file is not a write.
    if (name && !WRITTEN.includes(String(name))) names.add(String(name));
  });
  return {
    async count() {
      // inotify events arrive asynchronously; give them a moment to land.
      let last = -1;
      for (let i = 0; i < 20 && last !== names.size; i++) {
        last = names.size;
        await delay(25);
      }
      return names.size;
    },
    close() {
      watcher.close();
    },
  };
}

function runReader(file, stopFile) {
  const child = spawn(process.execPath, [READER, file, stopFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  const lines = [];
  const waiters = [];
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
      for (const w of waiters.splice(0)) w();
    }
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  async function message(type, ms) {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = lines.find((l) => l.type === type);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`reader: no '${type}' message within ${ms} ms`);
      await Promise.race([new Promise((r) => waiters.push(r)), delay(50, null, { ref: false }), exited]);
    }
  }
  return { child, message, exited };
}

// ---------------------------------------------------------------------------
// writeSessionAtomic: byte-identical JSON

/** Documents whose JSON.stringify(…, null, 2) the native writer must reproduce byte for byte. */
function varietyDocs() {
  const controls = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('') + '\u007f';
  return {
    'key order with numeric-looking keys': {
      b: 1,
      2: 'two',
      1: 'one',
      a: { 10: 'ten', 9: 'nine', z: 0, '01': 'not an index', '-1': 'negative', '1.5': 'float key' },
      4294967294: 'largest array index',
      4294967295: 'not an array index',
      9007199254740993: 'huge',
      '': 'empty key',
      ' ': 'space key',
    },
    'unicode, emoji, escapes and control chars': {
      plain: 'ascii',
      accents: 'é à ç ß Ω',
      cjk: '漢字かなカナ한국어',
      rtl: 'שלום عربي',
      emoji: '😀 👩‍👩‍👧 🏳️‍🌈 🇫🇷 ✔︎',
      combining: 'e\u0301 n\u0303',
      separators: 'line\u2028para\u2029end',
      bom: '\ufeffbom',
      quotes: '"double" \'single\' `back`',
      slashes: 'back\\slash /forward/ \\u0041 not an escape',
      controls,
      'ключ 🔑': 'unicode key',
      'tab\tkey\n"quoted"': 'escaped key',
      highest: '\u{10ffff}',
    },
    'integers, floats and big numbers': {
      zero: 0,
      negZero: -0,
      ints: [1, -1, 42, 1000000, 2147483647, -2147483648, 4294967296],
      safe: [Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53],
      big: [2 ** 53 + 2, 12345678901234567890, -12345678901234567890, 1e20, 123456789012345680000, 2 ** 64, 1e300],
      floats: [0.1, 0.2 + 0.3, 1 / 3, -2.5, 1.5e-7, 1e-7, 0.000001, 1e21, 1e-324 + 5e-324, 5e-324, 1.7976931348623157e308, 100.5, 3.14159],
      nonFinite: [NaN, Infinity, -Infinity],
      epochish: 1732147200000,
    },
    'nested and empty containers': {
      emptyObj: {},
      emptyArr: [],
      nestedEmpty: [[], {}, [[]], [{}], { a: {} }, { a: [] }],
      deep: { a: { b: { c: { d: { e: { f: [1, [2, [3, [4, { g: null }]]]] } } } } } },
      mixed: [null, true, false, 'x', 0, { k: [] }],
    },
    'JS-only values as JSON.stringify treats them': {
      keep: 1,
      undef: undefined,
      fn() {},
      sym: Symbol('s'),
      arr: [undefined, () => 1, Symbol('t'), 2],
      date: new Date(Date.UTC(2024, 1, 29, 12, 0, 0, 7)),
      custom: { toJSON: () => ({ replaced: true }) },
      boxed: [Object(1), Object('s'), Object(false)],
    },
    'a real session with unknown fields and updatedAt in the middle': {
      ...sessionDoc('mc-m3x1k2p-0f9e8d', [
        mission('m-m3x1k2p-abc123', 'queued', { completion: 'tests green', targetAgent: 'coder', futureField: { x: [1, 2] } }),
        mission('m-m3x1k2q-abc124', 'running', { executorId: 'ex-1', dispatchedAt: '2025-01-01T00:00:01.000Z', estimatedStart: null }),
        null,
        mission('m-m3x1k2r-abc125', 'done'),
      ]),
      laterVersionKey: { nested: ['preserve', 'me'] },
    },
    'no updatedAt yet': { id: 's', missions: [] },
    'an empty object': {},
  };
}

describe('writeSessionAtomic: the file is JSON.stringify(session, null, 2), byte for byte', () => {
  for (const [name, doc] of Object.entries(varietyDocs())) {
    it(name, async () => {
      const file = sessionPath(tmpRoot());
      const hadUpdatedAt = Object.prototype.hasOwnProperty.call(doc, 'updatedAt');
      const before = Date.now();
      const ret = await writeSessionAtomic(file, doc);
      const afterMs = Date.now();
      assert.equal(ret, undefined);
      assert.match(doc.updatedAt, ISO, 'updatedAt is stamped on the caller object');
      const t = Date.parse(doc.updatedAt);
      assert.ok(t >= before - 1 && t <= afterMs + 1, `updatedAt ${doc.updatedAt} is now`);
      const text = fs.readFileSync(file, 'utf8');
      assert.equal(text, JSON.stringify(doc, null, 2));
      assert.ok(!text.endsWith('\n'), 'no trailing newline');
      if (!hadUpdatedAt) {
        const keys = Object.keys(JSON.parse(text));
        assert.equal(keys.at(-1), 'updatedAt', 'a new updatedAt key goes last, as assignment adds it');
      }
    });
  }

  // JSON.stringify writes a lone surrogate as a \udXXX escape; so must we (issue 10, item 13).
  it('keeps a lone surrogate as JSON.stringify escapes it', async () => {
    const file = sessionPath(tmpRoot());
    const doc = { id: 's', split: '😀'.slice(0, 1), tail: '😀'.slice(1), both: 'a\ud83d\ude00b' };
    await writeSessionAtomic(file, doc);
    const text = fs.readFileSync(file, 'utf8');
    assert.equal(text, JSON.stringify(doc, null, 2));
    assert.match(text, /"split": "\\ud83d"/);
    assert.equal((await readSession(file)).split, '\ud83d');
  });

  it('rewrites over an existing file and replaces it whole (smaller content, no leftovers)', async () => {
    const file = sessionPath(tmpRoot());
    const big = sessionDoc('s', Array.from({ length: 200 }, (_, i) => mission(`m-${i}`)));
    await writeSessionAtomic(file, big);
    const small = { id: 's', missions: [] };
    await writeSessionAtomic(file, small);
    assert.equal(fs.readFileSync(file, 'utf8'), JSON.stringify(small, null, 2));
  });

  it('a non-JSON-able session (BigInt, cycle) rejects and leaves the old file intact', async () => {
    const file = sessionPath(tmpRoot());
    await writeSessionAtomic(file, { id: 'old' });
    const before = fs.readFileSync(file, 'utf8');
    await assert.rejects(writeSessionAtomic(file, { id: 'x', n: 10n }), TypeError);
    const cyclic = { id: 'c' };
    cyclic.self = cyclic;
    await assert.rejects(writeSessionAtomic(file, cyclic), TypeError);
    assert.equal(fs.readFileSync(file, 'utf8'), before);
    assert.deepEqual(fs.readdirSync(path.dirname(file)).sort(), WRITTEN);
  });
});

describe('writeSessionAtomic: file safety', () => {
  it('creates missing parent directories', async () => {
    const root = tmpRoot();
    const file = path.join(root, 'a', 'b', 'c', 'sessions', 'x y', 'session.json');
    const doc = { id: 'x y', missions: [] };
    await writeSessionAtomic(file, doc);
    assert.equal(fs.readFileSync(file, 'utf8'), JSON.stringify(doc, null, 2));
  });

  it('stamps a fresh ISO updatedAt on every write, on the caller object too', async () => {
    const file = sessionPath(tmpRoot());
    const doc = sessionDoc();
    await writeSessionAtomic(file, doc);
    const first = doc.updatedAt;
    assert.notEqual(first, '2025-01-01T00:00:00.000Z');
    assert.match(first, ISO);
    await delay(5);
    await writeSessionAtomic(file, doc);
    assert.match(doc.updatedAt, ISO);
    assert.ok(Date.parse(doc.updatedAt) > Date.parse(first), 'a later write stamps a later time');
    assert.equal((await readSession(file)).updatedAt, doc.updatedAt);
    // the key keeps its place (assignment to an existing key does not move it)
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8'))), Object.keys(sessionDoc()));
  });

  it('leaves no temp files behind, after sequential and concurrent writes', async () => {
    const root = tmpRoot();
    const file = sessionPath(root);
    for (let i = 0; i < 10; i++) await writeSessionAtomic(file, { id: 's', i });
    await Promise.all(Array.from({ length: 20 }, (_, i) => writeSessionAtomic(file, { id: 's', i })));
    assert.deepEqual(fs.readdirSync(path.dirname(file)).sort(), WRITTEN);
    assert.equal(typeof JSON.parse(fs.readFileSync(file, 'utf8')).i, 'number');
  });

  it('keeps the file mode (0600 stays 0600, 0640 stays 0640); a new file gets what fs.writeFileSync gives', async () => {
    const root = tmpRoot();
    const file = sessionPath(root);
    await writeSessionAtomic(file, { id: 's' });
    const reference = path.join(root, 'reference.json');
    fs.writeFileSync(reference, '{}');
    assert.equal(fs.statSync(file).mode & 0o777, fs.statSync(reference).mode & 0o777, 'new file mode');

    fs.chmodSync(file, 0o600);
    await writeSessionAtomic(file, { id: 's', n: 1 });
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    await applyStatusUpdate(file, { missionId: 'nope', status: 'x' }); // no write
    fs.writeFileSync(file, JSON.stringify({ id: 's', missions: [{ id: 'm', status: 'queued' }] }, null, 2));
    fs.chmodSync(file, 0o640);
    const r = await applyStatusUpdate(file, { missionId: 'm', status: 'assigned' });
    assert.equal(r.outcome, 'updated');
    assert.equal(fs.statSync(file).mode & 0o777, 0o640, 'the status writer keeps the mode too');
  });

  it('does not follow symlinks planted at temp-like names in the directory', async () => {
    const root = tmpRoot();
    const file = sessionPath(root);
    const dir = path.dirname(file);
    fs.mkdirSync(dir, { recursive: true });
    const victim = path.join(root, 'victim.txt');
    fs.writeFileSync(victim, 'keep me');
    const nowhere = path.join(root, 'created-through-a-link.txt');
    const names = [
      '.session.json.tmp',
      'session.json.tmp',
      'session.json.new',
      'session.json~',
      `session.json.${process.pid}.tmp`,
      `.session.json.${process.pid}.tmp`,
      `session.json.tmp-${process.pid}`,
      '.session.json.000000.tmp',
      '.session.json.XXXXXX.tmp',
      '.session.json.aaaaaa.tmp',
    ];
    names.forEach((n, i) => fs.symlinkSync(i % 2 ? victim : nowhere, path.join(dir, n)));

    const doc = { id: 's', missions: [] };
    for (let i = 0; i < 5; i++) await writeSessionAtomic(file, doc);
    writeJsonFile(file, { id: 's', missions: [{ id: 'm', status: 'queued' }] });
    await applyStatusUpdate(file, { missionId: 'm', status: 'assigned' });

    assert.equal(fs.readFileSync(victim, 'utf8'), 'keep me', 'the symlink target is untouched');
    assert.equal(fs.existsSync(nowhere), false, 'nothing was created through a dangling symlink');
    assert.ok(fs.lstatSync(file).isFile() && !fs.lstatSync(file).isSymbolicLink());
    for (const n of names) assert.ok(fs.lstatSync(path.join(dir, n)).isSymbolicLink(), `${n} is still the planted link`);
    const left = fs.readdirSync(dir).filter((n) => !WRITTEN.includes(n) && !names.includes(n));
    assert.deepEqual(left, [], 'no temp files left');
  });

  it('a reader in another process and a setImmediate loop never see a partial or missing file', async () => {
    const root = tmpRoot();
    const file = sessionPath(root);
    const stopFile = path.join(root, 'stop');
    // Alternate big and small documents so that a torn write would show.
    const big = (seq) => ({ id: 's', seq, missions: Array.from({ length: 600 }, (_, i) => mission(`m-${seq}-${i}`, 'queued', { pad: 'x'.repeat(100) })) });
    const small = (seq) => ({ id: 's', seq, missions: [] });
    await writeSessionAtomic(file, big(0));

    const reader = runReader(file, stopFile);
    try {
      await reader.message('ready', 10_000);

      const local = { reads: 0, whole: 0, partial: 0, missing: 0 };
      let running = true;
      const loop = new Promise((resolve) => {
        const tick = () => {
          if (!running) return resolve();
          local.reads++;
          try {
            JSON.parse(fs.readFileSync(file, 'utf8'));
            local.whole++;
          } catch (err) {
            if (err.code === 'ENOENT') local.missing++;
            else local.partial++;
          }
          setImmediate(tick);
        };
        setImmediate(tick);
      });

      const deadline = Date.now() + 15_000;
      let seq = 1;
      for (; seq <= 120 && Date.now() < deadline; seq++) {
        await writeSessionAtomic(file, seq % 2 ? small(seq) : big(seq));
      }
      // and a few racing each other
      await Promise.all(Array.from({ length: 10 }, (_, i) => writeSessionAtomic(file, i % 2 ? small(seq + i) : big(seq + i))));
      running = false;
      await loop;
      fs.writeFileSync(stopFile, '');
      const done = await reader.message('done', 10_000);

      assert.equal(done.partial, 0, `the other process saw a partial file: ${done.firstBad}`);
      assert.equal(done.missing, 0, `the other process found no file: ${done.firstBad}`);
      assert.ok(done.versions > 2, `the other process read while writes happened (saw ${done.versions} versions in ${done.reads} reads)`);
      assert.equal(local.partial, 0, 'the in-process reader saw a partial file');
      assert.equal(local.missing, 0, 'the in-process reader found no file');
      assert.ok(local.reads > 10, `the in-process reader ran while writing (${local.reads} reads)`);
      assert.deepEqual(fs.readdirSync(path.dirname(file)).sort(), WRITTEN);
    } finally {
      fs.writeFileSync(stopFile, '');
      const ended = await Promise.race([reader.exited, delay(5000, null, { ref: false })]);
      if (!ended) reader.child.kill('SIGKILL');
    }
  });
});

// ---------------------------------------------------------------------------
// discoverSessions / readSession

describe('discoverSessions', () => {
  it('lists <root>/sessions/<dir>/session.json for directories only, sorted by name', async () => {
    const root = tmpRoot();
    const sessions = path.join(root, 'sessions');
    for (const d of ['b', 'a', 'C', 'with space', '.hidden', 'é', 'no-file-yet', '10', '9']) fs.mkdirSync(path.join(sessions, d), { recursive: true });
    fs.writeFileSync(path.join(sessions, 'b', 'session.json'), '{}');
    fs.writeFileSync(path.join(sessions, 'stray.json'), '{}');
    fs.writeFileSync(path.join(sessions, 'zfile'), '');
    fs.symlinkSync(path.join(sessions, 'a'), path.join(sessions, 'link-to-dir'));
    fs.symlinkSync(path.join(root, 'missing'), path.join(sessions, 'dangling'));

    const found = await discoverSessions(root);
    const dirs = ['.hidden', '10', '9', 'C', 'a', 'b', 'no-file-yet', 'with space', 'é'];
    assert.deepEqual(found, dirs.map((d) => path.join(root, 'sessions', d, 'session.json')));
  });

  it('resolves [] when sessions/ (or the root itself) is missing, or sessions/ is empty', async () => {
    const root = tmpRoot();
    assert.deepEqual(await discoverSessions(root), []);
    assert.deepEqual(await discoverSessions(path.join(root, 'does', 'not', 'exist')), []);
    fs.mkdirSync(path.join(root, 'sessions'));
    assert.deepEqual(await discoverSessions(root), []);
  });

  it('rejects when sessions is a file, not a directory', async () => {
    const root = tmpRoot();
    fs.writeFileSync(path.join(root, 'sessions'), 'not a dir');
    await assert.rejects(discoverSessions(root), (err) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /sessions|ENOTDIR|not a directory/i);
      return true;
    });
  });

  it('rejects when the root is a file', async () => {
    const root = tmpRoot();
    const f = path.join(root, 'f');
    fs.writeFileSync(f, '');
    await assert.rejects(discoverSessions(f));
  });
});

describe('readSession', () => {
  it('missing file → null', async () => {
    const root = tmpRoot();
    assert.equal(await readSession(path.join(root, 'nope', 'session.json')), null);
  });

  it('partial or garbage → null', async () => {
    const root = tmpRoot();
    const file = path.join(root, 'session.json');
    const full = JSON.stringify(sessionDoc('s', [mission('m-1')]), null, 2);
    for (const text of ['', ' ', full.slice(0, full.length / 2), full.slice(0, -1), '{"id": "s",', 'not json', '\u0000\u0001\u0002', 'undefined', "{'id': 's'}", '{"a":1}{"b":2}', '\ufeff{"id":"bom"}']) {
      fs.writeFileSync(file, text);
      assert.equal(await readSession(file), null, `for ${JSON.stringify(text.slice(0, 30))}`);
    }
    fs.writeFileSync(file, Buffer.from([0xff, 0xfe, 0x00, 0x7b]));
    assert.equal(await readSession(file), null);
  });

  it('valid → the parsed value, as JSON.parse gives it', async () => {
    const root = tmpRoot();
    const file = path.join(root, 'session.json');
    for (const doc of Object.values(varietyDocs())) {
      const text = JSON.stringify(doc, null, 2);
      fs.writeFileSync(file, text);
      assert.deepEqual(await readSession(file), JSON.parse(text));
    }
    const compact = '{"z":1,"a":[1,2,{"b":null}],"n":12345678901234567890,"f":1e21,"e":"\\u00e9\\ud83d\\ude00"}';
    fs.writeFileSync(file, compact);
    const got = await readSession(file);
    assert.deepEqual(got, JSON.parse(compact));
    assert.deepEqual(Object.keys(got), ['z', 'a', 'n', 'f', 'e']);
    fs.writeFileSync(file, '  \n{"id":"ws"}\n\n');
    assert.deepEqual(await readSession(file), { id: 'ws' });
    fs.writeFileSync(file, '[1,"two"]');
    assert.deepEqual(await readSession(file), [1, 'two']);
  });
});

// ---------------------------------------------------------------------------
// queuedMissions / buildDispatchPayload / backoffMs

describe('queuedMissions', () => {
  it('returns [{sessionId, mission}] for non-null queued missions, in array order, same objects', () => {
    const a = mission('a');
    const c = mission('c');
    const session = {
      id: 'sess',
      missions: [null, a, { id: 'b', status: 'QUEUED' }, { id: 'r', status: 'running' }, 'queued', 7, undefined, { status: 'queued ' }, c, { id: 'd' }],
    };
    const out = queuedMissions(session);
    assert.ok(Array.isArray(out), 'sync: an array, not a promise');
    assert.deepEqual(out, [{ sessionId: 'sess', mission: a }, { sessionId: 'sess', mission: c }]);
    assert.equal(out[0].mission, a);
    assert.equal(out[1].mission, c);
  });

  it('null session, missing or non-array missions → []', () => {
    for (const s of [null, undefined, {}, { id: 's' }, { id: 's', missions: null }, { id: 's', missions: 'queued' }, { id: 's', missions: { 0: mission('a') } }, { id: 's', missions: 3 }, { id: 's', missions: [] }]) {
      assert.deepEqual(queuedMissions(s), [], `for ${JSON.stringify(s)}`);
    }
  });

  it('a session without id gives sessionId undefined', () => {
    const m = mission('a');
    assert.deepEqual(queuedMissions({ missions: [m] }), [{ sessionId: undefined, mission: m }]);
  });
});

/** The SPEC §2 table, written as the original JS would compute it. */
function specPayload(m, sessionId) {
  return {
    mission_id: m.id,
    objective: m.objective,
    completion: m.completion || null,
    long_running: Boolean(m.longRunning),
    executor_filter: {
      executor_id: m.targetExecutorId || null,
      capabilities: m.requiredCapabilities || [],
      agent_id: m.targetAgentId || null,
    },
    metadata: { mc_session_id: sessionId, mode: m.mode || 'direct', priority: m.priority || 'normal', ...m.metadata },
  };
}

describe('buildDispatchPayload', () => {
  const cases = {
    'bare mission: defaults': [
      { id: 'm-1', objective: 'o' },
      { mission_id: 'm-1', objective: 'o', completion: null, long_running: false, executor_filter: { executor_id: null, capabilities: [], agent_id: null }, metadata: { mc_session_id: 'sid', mode: 'direct', priority: 'normal' } },
    ],
    'every field set': [
      { id: 'm-2', objective: 'build it', completion: 'tests pass', longRunning: true, targetExecutorId: 'ex-1', requiredCapabilities: ['gpu', 'net'], targetAgentId: 'agent-7', mode: 'pty-orchestrator', priority: 'high', status: 'queued', loop: 0 },
      { mission_id: 'm-2', objective: 'build it', completion: 'tests pass', long_running: true, executor_filter: { executor_id: 'ex-1', capabilities: ['gpu', 'net'], agent_id: 'agent-7' }, metadata: { mc_session_id: 'sid', mode: 'pty-orchestrator', priority: 'high' } },
    ],
    "'' / 0 / false fall through (||)": [
      { id: 'm-3', objective: '', completion: '', longRunning: 0, targetExecutorId: '', requiredCapabilities: false, targetAgentId: 0, mode: '', priority: 0 },
      { mission_id: 'm-3', objective: '', completion: null, long_running: false, executor_filter: { executor_id: null, capabilities: [], agent_id: null }, metadata: { mc_session_id: 'sid', mode: 'direct', priority: 'normal' } },
    ],
    'null / false everywhere': [
      { id: 'm-4', objective: 'x', completion: false, longRunning: null, targetExecutorId: null, requiredCapabilities: null, targetAgentId: false, mode: null, priority: false, metadata: null },
      { mission_id: 'm-4', objective: 'x', completion: null, long_running: false, executor_filter: { executor_id: null, capabilities: [], agent_id: null }, metadata: { mc_session_id: 'sid', mode: 'direct', priority: 'normal' } },
    ],
    'truthy non-booleans pass through; empty array and object are truthy': [
      { id: 'm-5', objective: 'x', completion: 0.5, longRunning: 'yes', targetExecutorId: 7, requiredCapabilities: 'gpu', targetAgentId: { a: 1 }, mode: [], priority: 3 },
      { mission_id: 'm-5', objective: 'x', completion: 0.5, long_running: true, executor_filter: { executor_id: 7, capabilities: 'gpu', agent_id: { a: 1 } }, metadata: { mc_session_id: 'sid', mode: [], priority: 3 } },
    ],
    'longRunning [] and {} are true; requiredCapabilities [] stays []': [
      { id: 'm-6', objective: 'x', longRunning: [], requiredCapabilities: [], completion: {} },
      { mission_id: 'm-6', objective: 'x', completion: {}, long_running: true, executor_filter: { executor_id: null, capabilities: [], agent_id: null }, metadata: { mc_session_id: 'sid', mode: 'direct', priority: 'normal' } },
    ],
    'metadata spread overrides mc_session_id, mode and priority and adds keys': [
      { id: 'm-7', objective: 'x', mode: 'direct', priority: 'low', metadata: { priority: 'urgent', mc_session_id: 'forged', extra: { deep: [1] }, mode: null } },
      { mission_id: 'm-7', objective: 'x', completion: null, long_running: false, executor_filter: { executor_id: null, capabilities: [], agent_id: null }, metadata: { mc_session_id: 'forged', mode: null, priority: 'urgent', extra: { deep: [1] } } },
    ],
    'metadata as a string or an array spreads its indices; a number spreads nothing': [
      { id: 'm-8', objective: 'x', metadata: 'ab' },
      { mission_id: 'm-8', objective: 'x', completion: null, long_running: false, executor_filter: { executor_id: null, capabilities: [], agent_id: null }, metadata: { mc_session_id: 'sid', mode: 'direct', priority: 'normal', 0: 'a', 1: 'b' } },
    ],
    'metadata array': [
      { id: 'm-9', objective: 'x', metadata: ['p'], targetAgent: 'ignored' },
      { mission_id: 'm-9', objective: 'x', completion: null, long_running: false, executor_filter: { executor_id: null, capabilities: [], agent_id: null }, metadata: { mc_session_id: 'sid', mode: 'direct', priority: 'normal', 0: 'p' } },
    ],
    'metadata number / true': [
      { id: 'm-10', objective: 'x', metadata: 5 },
      { mission_id: 'm-10', objective: 'x', completion: null, long_running: false, executor_filter: { executor_id: null, capabilities: [], agent_id: null }, metadata: { mc_session_id: 'sid', mode: 'direct', priority: 'normal' } },
    ],
    'unicode objective and ids untouched': [
      { id: 'm-ü-😀', objective: 'faire ça 😀\n"quoted"', completion: 'fin ✔' },
      { mission_id: 'm-ü-😀', objective: 'faire ça 😀\n"quoted"', completion: 'fin ✔', long_running: false, executor_filter: { executor_id: null, capabilities: [], agent_id: null }, metadata: { mc_session_id: 'sid', mode: 'direct', priority: 'normal' } },
    ],
  };

  for (const [name, [m, expected]] of Object.entries(cases)) {
    it(name, () => {
      const before = clone(m);
      const got = buildDispatchPayload(m, { sessionId: 'sid' });
      assert.deepEqual(got, expected);
      assert.deepEqual(got, specPayload(m, 'sid'), 'agrees with the SPEC formula');
      assert.deepEqual(Object.keys(got), ['mission_id', 'objective', 'completion', 'long_running', 'executor_filter', 'metadata']);
      assert.deepEqual(Object.keys(got.executor_filter), ['executor_id', 'capabilities', 'agent_id']);
      assert.deepEqual(Object.keys(got.metadata).slice(0, 3).sort(), Object.keys(expected.metadata).slice(0, 3).sort());
      assert.deepEqual(m, before, 'the mission is not modified');
    });
  }

  it('metadata keys come in spread order: mc_session_id, mode, priority, then the others', () => {
    const got = buildDispatchPayload({ id: 'm', objective: 'o', metadata: { zeta: 1, priority: 'p', alpha: 2 } }, { sessionId: 's' });
    assert.deepEqual(Object.keys(got.metadata), ['mc_session_id', 'mode', 'priority', 'zeta', 'alpha']);
    assert.equal(got.metadata.priority, 'p');
  });

  it('sessionId is passed through as given (absent → undefined)', () => {
    const m = { id: 'm', objective: 'o' };
    assert.equal(buildDispatchPayload(m, { sessionId: 'a/b ../x' }).metadata.mc_session_id, 'a/b ../x');
    const none = buildDispatchPayload(m, {});
    assert.equal(none.metadata.mc_session_id, undefined);
    assert.deepEqual(none, specPayload(m, undefined));
  });

  it('a mission without id or objective gives undefined for them', () => {
    const got = buildDispatchPayload({}, { sessionId: 's' });
    assert.equal(got.mission_id, undefined);
    assert.equal(got.objective, undefined);
    assert.equal(got.completion, null);
  });

  it('is synchronous', () => {
    const got = buildDispatchPayload({ id: 'm', objective: 'o' }, { sessionId: 's' });
    assert.ok(!(got instanceof Promise));
  });
});

describe('backoffMs', () => {
  it('min(30000, baseMs * 2^(attempt-1)), attempt 1-based, synchronous', () => {
    const table = [
      [1, 500, 500],
      [2, 500, 1000],
      [3, 500, 2000],
      [6, 500, 16000],
      [7, 500, 30000],
      [100, 500, 30000],
      [1, 5, 5],
      [10, 5, 2560],
      [14, 5, 30000],
      [1, 0, 0],
      [0, 500, 250],
      [1, 40000, 30000],
    ];
    for (const [attempt, base, want] of table) {
      const got = backoffMs(attempt, base);
      assert.equal(typeof got, 'number');
      assert.equal(got, want, `backoffMs(${attempt}, ${base})`);
      assert.equal(got, Math.min(30000, base * 2 ** (attempt - 1)));
    }
  });
});

// ---------------------------------------------------------------------------
// applyStatusUpdate / applyStatusUpdatesBatched

describe('applyStatusUpdate', () => {
  it("updated: {...current, ...patch, status} with status last, whole file = JSON.stringify(expected, null, 2)", async () => {
    const root = tmpRoot();
    const file = sessionPath(root);
    const original = {
      ...sessionDoc('mc-m3x1k2p-0f9e8d', [
        mission('m-1', 'queued', { targetAgent: 'coder', unicode: 'ça 😀 \u2028', nums: [0.1, 1e21, 1.5e-7, 12345678901234567000, -0], later: { keep: true } }),
        null,
        mission('m-2', 'running', { executorId: 'ex-9' }),
      ]),
      unknownTop: { a: [{}, []], '2': 'numeric', '1': 'keys' },
    };
    writeJsonFile(file, original);
    const patch = { executorId: 'ex-1', status: 'ignored-by-status-last', loop: 3, estimatedStart: null, nested: { x: 1 } };
    const before = Date.now();
    const r = await applyStatusUpdate(file, { missionId: 'm-1', status: 'assigned', transitionFrom: 'queued', patch });
    assert.equal(r.outcome, 'updated');

    const expected = JSON.parse(JSON.stringify(original));
    const cur = expected.missions[0];
    expected.missions[0] = { ...cur, ...patch, status: 'assigned' };
    expected.updatedAt = r.session.updatedAt;
    assert.match(r.session.updatedAt, ISO);
    assert.ok(Date.parse(r.session.updatedAt) >= before - 1);
    assert.deepEqual(r, { outcome: 'updated', session: expected });
    assert.equal(fs.readFileSync(file, 'utf8'), JSON.stringify(expected, null, 2));
    assert.deepEqual(Object.keys(r.session.missions[0]), Object.keys(expected.missions[0]));
    assert.equal(r.session.missions[0].status, 'assigned');
  });

  it('without a status in the mission, status is appended after the patch keys', async () => {
    const file = sessionPath(tmpRoot());
    const original = { id: 's', missions: [{ id: 'm', objective: 'o' }] };
    writeJsonFile(file, original);
    const r = await applyStatusUpdate(file, { missionId: 'm', status: 'done', patch: { a: 1, b: 2 } });
    assert.equal(r.outcome, 'updated');
    assert.deepEqual(Object.keys(r.session.missions[0]), ['id', 'objective', 'a', 'b', 'status']);
    const expected = { ...original, missions: [{ id: 'm', objective: 'o', a: 1, b: 2, status: 'done' }], updatedAt: r.session.updatedAt };
    assert.equal(fs.readFileSync(file, 'utf8'), JSON.stringify(expected, null, 2));
  });

  it('a patch with integer-like keys is written in JS key order', {
  }, async () => {
    const file = sessionPath(tmpRoot());
    const original = { id: 's', missions: [{ id: 'm', status: 'queued', a: 1 }] };
    writeJsonFile(file, original);
    const patch = { 10: 'ten', z: 2 };
    const r = await applyStatusUpdate(file, { missionId: 'm', status: 'x', patch });
    const expected = { ...original, missions: [{ ...original.missions[0], ...patch, status: 'x' }], updatedAt: r.session.updatedAt };
    assert.equal(fs.readFileSync(file, 'utf8'), JSON.stringify(expected, null, 2));
  });

  it('no transitionFrom → applied whatever the status; null/absent patch → status only', async () => {
    const file = sessionPath(tmpRoot());
    writeJsonFile(file, { id: 's', missions: [mission('a', 'done'), mission('b', 'failed')] });
    let r = await applyStatusUpdate(file, { missionId: 'a', status: 'running' });
    assert.equal(r.outcome, 'updated');
    assert.deepEqual(r.session.missions[0], { ...mission('a', 'done'), status: 'running' });
    r = await applyStatusUpdate(file, { missionId: 'b', status: 'queued', patch: null });
    assert.equal(r.outcome, 'updated');
    assert.deepEqual(r.session.missions[1], { ...mission('b', 'failed'), status: 'queued' });
    assert.deepEqual(await readSession(file), r.session);
  });

  it('stale: transitionFrom differs → {outcome:"stale", session} and nothing is written', async () => {
    const file = sessionPath(tmpRoot());
    writeJsonFile(file, sessionDoc('s', [mission('a', 'running')]));
    const before = fileStateBig(file);
    await delay(20);
    const r = await applyStatusUpdate(file, { missionId: 'a', status: 'assigned', transitionFrom: 'queued', patch: { x: 1 } });
    assert.deepEqual(r, { outcome: 'stale', session: JSON.parse(before.bytes) });
    assert.deepEqual(fileStateBig(file), before, 'file bytes, inode and mtime unchanged');
  });

  it('missing-mission: unknown id, strict id equality, null entries, non-array missions; nothing written', async () => {
    const root = tmpRoot();
    const file = sessionPath(root);
    const docs = [
      { id: 's', missions: [mission('a')] },
      { id: 's', missions: [{ id: 1, status: 'queued' }] },
      { id: 's', missions: [null, 'a', ['a']] },
      { id: 's', missions: { a: mission('a') } },
      { id: 's', missions: null },
      { id: 's', missions: 'a' },
      { id: 's' },
    ];
    for (const doc of docs) {
      writeJsonFile(file, doc);
      const before = fileStateBig(file);
      const missionId = doc.missions && doc.missions[0] && doc.missions[0].id === 1 ? '1' : doc.missions?.[0]?.id === 'a' ? 'zz' : 'a';
      const r = await applyStatusUpdate(file, { missionId, status: 'done' });
      assert.deepEqual(r, { outcome: 'missing-mission' }, `for ${JSON.stringify(doc)}`);
      assert.deepEqual(fileStateBig(file), before);
    }
  });

  it('null entries before the mission are skipped and kept', async () => {
    const file = sessionPath(tmpRoot());
    writeJsonFile(file, { id: 's', missions: [null, 'str', mission('a')] });
    const r = await applyStatusUpdate(file, { missionId: 'a', status: 'assigned', transitionFrom: 'queued' });
    assert.equal(r.outcome, 'updated');
    assert.deepEqual(r.session.missions.slice(0, 2), [null, 'str']);
    assert.equal(r.session.missions[2].status, 'assigned');
  });

  it('missing-session: no file, garbage, partial; nothing is created or written', async () => {
    const root = tmpRoot();
    const absent = sessionPath(root, 'absent');
    assert.deepEqual(await applyStatusUpdate(absent, { missionId: 'a', status: 'done' }), { outcome: 'missing-session' });
    assert.equal(fs.existsSync(absent), false);
    assert.equal(fs.existsSync(path.dirname(absent)), false);
    const file = sessionPath(root);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    for (const text of ['garbage', '{"id":"s","missions":[{"id":"a","status":"que', '']) {
      fs.writeFileSync(file, text);
      assert.deepEqual(await applyStatusUpdate(file, { missionId: 'a', status: 'done' }), { outcome: 'missing-session' });
      assert.equal(fs.readFileSync(file, 'utf8'), text);
    }
  });

  it('a file holding JSON null is a missing session (readSession → null)', {
  }, async () => {
    const file = sessionPath(tmpRoot());
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'null');
    assert.equal(await readSession(file), null);
    assert.deepEqual(await applyStatusUpdate(file, { missionId: 'a', status: 'done' }), { outcome: 'missing-session' });
    assert.deepEqual(await applyStatusUpdatesBatched(file, [{ missionId: 'a', status: 'done' }]), { outcome: 'missing-session', applied: [], missing: ['a'] });
  });

  it('50 concurrent calls on one file lose nothing (different missions)', async () => {
    const file = sessionPath(tmpRoot());
    const ids = Array.from({ length: 50 }, (_, i) => `m-${i}`);
    writeJsonFile(file, sessionDoc('s', ids.map((id) => mission(id))));
    const results = await Promise.all(ids.map((id, i) => applyStatusUpdate(file, { missionId: id, status: 'assigned', transitionFrom: 'queued', patch: { n: i } })));
    assert.deepEqual(results.map((r) => r.outcome), ids.map(() => 'updated'));
    const doc = await readSession(file);
    assert.equal(doc.missions.length, 50);
    doc.missions.forEach((m, i) => {
      assert.equal(m.status, 'assigned', `mission ${m.id}`);
      assert.equal(m.n, i);
    });
    assert.deepEqual(doc.mutationKeys, ['k1', 'k2']);
    assert.deepEqual(fs.readdirSync(path.dirname(file)).sort(), WRITTEN);
  });

  it('50 concurrent calls on one mission apply in call order (FIFO per path)', {
  }, async () => {
    const file = sessionPath(tmpRoot());
    writeJsonFile(file, { id: 's', missions: [mission('a', 's0')] });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => applyStatusUpdate(file, { missionId: 'a', status: `s${i + 1}`, transitionFrom: `s${i}`, patch: { [`step${i + 1}`]: true } })),
    );
    assert.deepEqual(results.map((r) => r.outcome), results.map(() => 'updated'), 'every transition found its predecessor applied');
    results.forEach((r, i) => assert.equal(r.session.missions[0].status, `s${i + 1}`));
    const m = (await readSession(file)).missions[0];
    assert.equal(m.status, 's50');
    for (let i = 1; i <= 50; i++) assert.equal(m[`step${i}`], true);
  });
});

describe('applyStatusUpdatesBatched', () => {
  it('one read, updates in order, one write; stale in neither list', async () => {
    const file = sessionPath(tmpRoot());
    const original = sessionDoc('s', [mission('a'), mission('b', 'running'), mission('c', 'assigned')]);
    writeJsonFile(file, original);
    const before = fileStateBig(file);
    const counter = writeCounter(path.dirname(file));
    try {
      const updates = [
        { missionId: 'a', status: 'assigned', transitionFrom: 'queued', patch: { executorId: 'ex' } },
        { missionId: 'b', status: 'assigned', transitionFrom: 'queued' }, // stale
        { missionId: 'zz', status: 'done' }, // missing
        { missionId: 'a', status: 'running', transitionFrom: 'assigned', patch: { startedAt: 't' } },
        { missionId: 'c', status: 'done' },
        { missionId: 'yy', status: 'done', transitionFrom: 'queued' }, // missing
      ];
      const r = await applyStatusUpdatesBatched(file, updates);
      assert.deepEqual(r, { outcome: 'updated', applied: ['a', 'a', 'c'], missing: ['zz', 'yy'] });
      assert.equal(await counter.count(), 1, 'exactly one write');
      const after = fileStateBig(file);
      assert.notEqual(after.ino, before.ino, 'replaced atomically');
      const doc = JSON.parse(after.bytes);
      const expected = clone(original);
      expected.missions[0] = { ...expected.missions[0], executorId: 'ex', status: 'running', startedAt: 't' };
      expected.missions[2] = { ...expected.missions[2], status: 'done' };
      expected.updatedAt = doc.updatedAt;
      assert.match(doc.updatedAt, ISO);
      assert.equal(after.bytes, JSON.stringify(expected, null, 2));
    } finally {
      counter.close();
    }
  });

  it('the write counter sees one write per applyStatusUpdate (calibration)', async () => {
    const file = sessionPath(tmpRoot());
    writeJsonFile(file, { id: 's', missions: [mission('a'), mission('b')] });
    const counter = writeCounter(path.dirname(file));
    try {
      await applyStatusUpdate(file, { missionId: 'a', status: 'assigned' });
      await applyStatusUpdate(file, { missionId: 'b', status: 'assigned' });
      await applyStatusUpdate(file, { missionId: 'a', status: 'running' });
      assert.equal(await counter.count(), 3);
    } finally {
      counter.close();
    }
  });

  it('nothing applied (stale, missing, empty list) → no write at all', async () => {
    const file = sessionPath(tmpRoot());
    writeJsonFile(file, { id: 's', missions: [mission('a', 'running')] });
    const before = fileStateBig(file);
    await delay(20);
    const counter = writeCounter(path.dirname(file));
    try {
      assert.deepEqual(
        await applyStatusUpdatesBatched(file, [{ missionId: 'a', status: 'x', transitionFrom: 'queued' }, { missionId: 'q', status: 'x' }]),
        { outcome: 'updated', applied: [], missing: ['q'] },
      );
      assert.deepEqual(await applyStatusUpdatesBatched(file, []), { outcome: 'updated', applied: [], missing: [] });
      assert.equal(await counter.count(), 0);
      assert.deepEqual(fileStateBig(file), before);
    } finally {
      counter.close();
    }
  });

  it('missing session → {outcome:"missing-session", applied:[], missing:<every id>}', async () => {
    const root = tmpRoot();
    const file = sessionPath(root);
    const r = await applyStatusUpdatesBatched(file, [{ missionId: 'a', status: 'x' }, { missionId: 'b', status: 'y', transitionFrom: 'queued' }, { missionId: 'a', status: 'z' }]);
    assert.deepEqual(r, { outcome: 'missing-session', applied: [], missing: ['a', 'b', 'a'] });
    assert.equal(fs.existsSync(path.dirname(file)), false);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '{"id": "s", "missions": [');
    assert.deepEqual(await applyStatusUpdatesBatched(file, [{ missionId: 'a', status: 'x' }]), { outcome: 'missing-session', applied: [], missing: ['a'] });
    assert.equal(fs.readFileSync(file, 'utf8'), '{"id": "s", "missions": [');
  });

  it('non-array missions: every update is missing, nothing written', async () => {
    const file = sessionPath(tmpRoot());
    writeJsonFile(file, { id: 's', missions: { a: mission('a') } });
    const before = fileStateBig(file);
    assert.deepEqual(await applyStatusUpdatesBatched(file, [{ missionId: 'a', status: 'x' }]), { outcome: 'updated', applied: [], missing: ['a'] });
    assert.deepEqual(fileStateBig(file), before);
  });

  it('concurrent batches and single updates on one path lose nothing', async () => {
    const file = sessionPath(tmpRoot());
    const ids = Array.from({ length: 40 }, (_, i) => `m-${i}`);
    writeJsonFile(file, { id: 's', missions: ids.map((id) => mission(id)) });
    const ops = [];
    for (let i = 0; i < 40; i += 4) {
      ops.push(applyStatusUpdatesBatched(file, [0, 1].map((k) => ({ missionId: ids[i + k], status: 'assigned', transitionFrom: 'queued' }))));
      ops.push(applyStatusUpdate(file, { missionId: ids[i + 2], status: 'assigned', transitionFrom: 'queued' }));
      ops.push(applyStatusUpdate(file, { missionId: ids[i + 3], status: 'assigned', transitionFrom: 'queued' }));
    }
    await Promise.all(ops);
    const doc = await readSession(file);
    assert.deepEqual(doc.missions.map((m) => m.status), ids.map(() => 'assigned'));
  });
});

// ---------------------------------------------------------------------------
// wrong argument types (§10)

describe('arguments of other types: what the original does (issue 10)', () => {
  it('a path that is not a string: TypeError where path/fs would throw, null or missing-session where it reads', async () => {
    await assertRejectsTypeError(discoverSessions(5), 'path');
    await assertRejectsTypeError(discoverSessions(undefined), 'path');
    assert.equal(await readSession(null), null);
    assert.equal(await readSession({}), null);
    await assertRejectsTypeError(writeSessionAtomic(5, {}), 'path');
    assert.deepEqual(await applyStatusUpdate(path.join(tmpRoot(), 'nope.json'), { missionId: 'a', status: 'x' }), { outcome: 'missing-session' });
  });

  it('a session that cannot take updatedAt or be written rejects with a TypeError, as in strict-mode JS', async () => {
    const dir = tmpRoot();
    for (const bad of [undefined, null, 'text', 5, true]) {
      await assert.rejects(writeSessionAtomic(path.join(dir, 'x.json'), bad), TypeError, `for ${String(bad)}`);
    }
    const fn = () => {};
    await assert.rejects(writeSessionAtomic(path.join(dir, 'x.json'), fn), (e) => e instanceof TypeError && /data/.test(e.message));
    assert.equal(typeof fn.updatedAt, 'string', 'the stamp lands before the write fails');
    assert.ok(!fs.existsSync(path.join(dir, 'x.json')));
  });

  it('an update that is not an object: missing-session when there is no session, a TypeError when there is one', async () => {
    const file = sessionPath(tmpRoot());
    assert.deepEqual(await applyStatusUpdate(file, null), { outcome: 'missing-session' });
    writeJsonFile(file, sessionDoc('s', [mission('a')]));
    const before = fs.readFileSync(file, 'utf8');
    await assert.rejects(applyStatusUpdate(file, null), TypeError);
    await assert.rejects(applyStatusUpdatesBatched(file, [{ missionId: 'a', status: 'x' }, null]), TypeError);
    await assert.rejects(applyStatusUpdatesBatched(file, { missionId: 'a' }), TypeError, 'not iterable');
    assert.equal(fs.readFileSync(file, 'utf8'), before, 'nothing written');
  });

  it('fields of other types are read as plain JS reads them', async () => {
    const file = sessionPath(tmpRoot());
    writeJsonFile(file, sessionDoc('s', [{ status: 'queued', objective: 'no id' }, mission('a')]));
    // No missionId: `m.id === undefined` finds the mission without an id.
    const noId = await applyStatusUpdate(file, { status: 'assigned' });
    assert.equal(noId.outcome, 'updated');
    assert.equal(noId.session.missions[0].status, 'assigned');
    // No status: `{...current, status: undefined}` drops it from the file.
    const noStatus = await applyStatusUpdate(file, { missionId: 'a' });
    assert.equal(noStatus.outcome, 'updated');
    assert.ok('status' in noStatus.session.missions[1] && noStatus.session.missions[1].status === undefined);
    assert.ok(!('status' in JSON.parse(fs.readFileSync(file, 'utf8')).missions[1]));
    // A string patch spreads its characters.
    const spread = await applyStatusUpdate(file, { missionId: 'a', status: 'x', patch: 'pq' });
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')).missions[1], { ...mission('a'), status: 'x', 0: 'p', 1: 'q' });
    assert.equal(spread.session.missions[1][1], 'q');
  });

  it('the process survives all of it and the functions still work', async () => {
    const file = sessionPath(tmpRoot());
    await writeSessionAtomic(file, { id: 'ok', missions: [] });
    assert.deepEqual((await readSession(file)).id, 'ok');
  });
});

// ---------------------------------------------------------------------------
// the same value as the original for every input (issue 10)

describe('drop-in: what the JavaScript module returns and writes', () => {
  it('readSession: a directory, or a file name with a trailing slash, is null (item 2)', async () => {
    const root = tmpRoot();
    const file = sessionPath(root);
    writeJsonFile(file, sessionDoc('s'));
    assert.equal(await readSession(path.dirname(file)), null);
    assert.equal(await readSession(`${file}/`), null);
    assert.deepEqual(await applyStatusUpdatesBatched(path.dirname(file), [{ missionId: 'a', status: 'x' }, { missionId: 7, status: 'y' }]), {
      outcome: 'missing-session',
      applied: [],
      missing: ['a', 7],
    });
    assert.deepEqual(await applyStatusUpdate(path.dirname(file), { missionId: 'a', status: 'x' }), { outcome: 'missing-session' });
  });

  it('a FIFO planted at session.json is not waited on for a writer: null / missing-session at once', { skip: process.platform === 'win32' }, async () => {
    const root = tmpRoot();
    const file = sessionPath(root);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    execFileSync('mkfifo', [file]);
    // An open for reading blocks until a writer comes: none ever does.
    const within = (p) => Promise.race([p, delay(10_000).then(() => assert.fail('waited on the FIFO'))]);
    assert.equal(await within(readSession(file)), null);
    assert.deepEqual(await within(applyStatusUpdate(file, { missionId: 'a', status: 'x' })), { outcome: 'missing-session' });
    assert.deepEqual(await within(applyStatusUpdatesBatched(file, [{ missionId: 'a', status: 'x' }])), {
      outcome: 'missing-session',
      applied: [],
      missing: ['a'],
    });
    assert.ok(fs.statSync(file).isFIFO(), 'the FIFO is left where it was');
  });

  it('readSession takes a Buffer or a file: URL as fs does', async () => {
    const file = sessionPath(tmpRoot());
    writeJsonFile(file, { id: 'u' });
    assert.deepEqual(await readSession(Buffer.from(file)), { id: 'u' });
    assert.deepEqual(await readSession(new URL(`file://${file}`)), { id: 'u' });
  });

  it('a patch key holding undefined removes that field from the file; the result keeps the key (item 8)', async () => {
    const file = sessionPath(tmpRoot());
    writeJsonFile(file, sessionDoc('s', [mission('a', 'running', { note: 'old', keep: 1 })]));
    const { outcome, session } = await applyStatusUpdate(file, { missionId: 'a', status: 'done', patch: { note: undefined, fn: () => 1, added: 2 } });
    assert.equal(outcome, 'updated');
    const onDisk = JSON.parse(fs.readFileSync(file, 'utf8')).missions[0];
    assert.ok(!('note' in onDisk) && !('fn' in onDisk));
    assert.equal(onDisk.keep, 1);
    assert.equal(onDisk.added, 2);
    assert.ok('note' in session.missions[0] && session.missions[0].note === undefined);
    assert.equal(typeof session.missions[0].fn, 'function');
    assert.equal(fs.readFileSync(file, 'utf8'), JSON.stringify(session, null, 2));
  });

  it('a NaN or object missionId matches nothing, not a mission whose id is null (item 10)', async () => {
    const file = sessionPath(tmpRoot());
    writeJsonFile(file, sessionDoc('s', [{ id: null, status: 'queued' }, { id: 1, status: 'queued' }]));
    for (const missionId of [NaN, {}, [], Infinity, Symbol('s'), 1n]) {
      assert.deepEqual(await applyStatusUpdate(file, { missionId, status: 'x' }), { outcome: 'missing-mission' }, String(missionId));
    }
    const byNull = await applyStatusUpdate(file, { missionId: null, status: 'x' });
    assert.equal(byNull.session.missions[0].status, 'x');
    const byNumber = await applyStatusUpdate(file, { missionId: 1, status: 'y' });
    assert.equal(byNumber.session.missions[1].status, 'y');
    assert.deepEqual(await applyStatusUpdate(file, { missionId: '1', status: 'z' }), { outcome: 'missing-mission' }, 'strict equality');
  });

  it('transitionFrom compares with ===; a falsy one is no condition', async () => {
    const file = sessionPath(tmpRoot());
    writeJsonFile(file, sessionDoc('s', [mission('a', 'queued')]));
    assert.equal((await applyStatusUpdate(file, { missionId: 'a', status: 'queued', transitionFrom: { q: 1 } })).outcome, 'stale');
    assert.equal((await applyStatusUpdate(file, { missionId: 'a', status: 'queued', transitionFrom: NaN })).outcome, 'updated');
    assert.equal((await applyStatusUpdate(file, { missionId: 'a', status: 'queued', transitionFrom: '' })).outcome, 'updated');
  });

  it('writeSessionAtomic stamps the caller object before writing, in place, arrays too (item 11)', async () => {
    const file = sessionPath(tmpRoot());
    const doc = { id: 's', updatedAt: 'old', missions: [] };
    const pending = writeSessionAtomic(file, doc);
    await pending;
    assert.deepEqual(Object.keys(doc), ['id', 'updatedAt', 'missions'], 'the key stays where it was');
    assert.match(doc.updatedAt, ISO);
    assert.equal(fs.readFileSync(file, 'utf8'), JSON.stringify(doc, null, 2));
    const list = [1, 2];
    await writeSessionAtomic(file, list);
    assert.match(list.updatedAt, ISO);
    assert.equal(fs.readFileSync(file, 'utf8'), JSON.stringify([1, 2], null, 2));
    const dated = { id: 'd', when: new Date(0), skip: undefined };
    await writeSessionAtomic(file, dated);
    assert.equal(fs.readFileSync(file, 'utf8'), JSON.stringify(dated, null, 2));
  });

  it('numbers that overflow and deep nesting read as JSON.parse reads them, through every call (item 12)', async () => {
    const file = sessionPath(tmpRoot());
    const deep = `${'{"n":['.repeat(150)}1${']}'.repeat(150)}`;
    const text = `{"id":"s","big":-1e400,"deep":${deep},"missions":[{"id":"a","status":"queued","score":1e400}]}`;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    const read = await readSession(file);
    assert.equal(read.big, -Infinity);
    const { outcome, session } = await applyStatusUpdate(file, { missionId: 'a', status: 'assigned', transitionFrom: 'queued' });
    assert.equal(outcome, 'updated');
    assert.equal(session.big, -Infinity, 'the session handed back is what JSON.parse made of the file');
    assert.equal(session.missions[0].score, Infinity);
    const expected = JSON.parse(text);
    expected.missions[0] = { ...expected.missions[0], status: 'assigned' };
    expected.updatedAt = session.updatedAt;
    assert.equal(fs.readFileSync(file, 'utf8'), JSON.stringify(expected, null, 2));
    const veryDeep = `{"id":"v","missions":[],"x":${'['.repeat(100000)}${']'.repeat(100000)}}`;
    fs.writeFileSync(file, veryDeep);
    assert.equal((await readSession(file)).id, 'v', 'readSession reads any depth, as JSON.parse does');
  });

  it('lone surrogates stay byte for byte through a status write (item 13)', async () => {
    const file = sessionPath(tmpRoot());
    const cut = `${'x'.repeat(199)}😀`.slice(0, 200);
    writeJsonFile(file, sessionDoc('s', [mission('a', 'queued', { summary: cut, lone: '\udc00' })]));
    const { session } = await applyStatusUpdate(file, { missionId: 'a', status: 'running', patch: { why: 'half \ud83d' } });
    const text = fs.readFileSync(file, 'utf8');
    assert.equal(text, JSON.stringify(session, null, 2));
    assert.equal(session.missions[0].summary, cut);
    assert.equal(JSON.parse(text).missions[0].why, 'half \ud83d');
    assert.ok(text.includes('\\udc00') && text.includes('\\ud83d'));
  });

  it('the session handed back holds the caller values: NaN, undefined, objects as given (item 15)', async () => {
    const file = sessionPath(tmpRoot());
    writeJsonFile(file, sessionDoc('s', [mission('a')]));
    const when = new Date(5);
    const { session } = await applyStatusUpdate(file, { missionId: 'a', status: 'assigned', patch: { n: NaN, u: undefined, when } });
    const m = session.missions[0];
    assert.ok(Number.isNaN(m.n));
    assert.ok('u' in m);
    assert.equal(m.when, when, 'the same object');
    const onDisk = JSON.parse(fs.readFileSync(file, 'utf8')).missions[0];
    assert.equal(onDisk.n, null);
    assert.equal(onDisk.when, when.toISOString());
  });

  it('file-system errors have the shape fs gives them: code, errno, syscall, path', async () => {
    const root = tmpRoot();
    fs.writeFileSync(path.join(root, 'sessions'), 'not a dir');
    await assert.rejects(discoverSessions(root), (err) => {
      assert.equal(err.code, 'ENOTDIR');
      assert.equal(err.errno, os.constants.errno.ENOTDIR * -1);
      assert.equal(err.syscall, 'scandir');
      assert.equal(err.path, path.join(root, 'sessions'));
      assert.equal(err.message, `ENOTDIR: not a directory, scandir '${path.join(root, 'sessions')}'`);
      return true;
    });
    const blocked = path.join(root, 'sessions', 'x', 'session.json');
    await assert.rejects(writeSessionAtomic(blocked, { id: 'x' }), (err) => {
      assert.ok(['ENOTDIR', 'EEXIST'].includes(err.code), err.code);
      assert.equal(err.syscall, 'mkdir');
      assert.equal(typeof err.errno, 'number');
      assert.equal(typeof err.path, 'string');
      return true;
    });
  });
});
