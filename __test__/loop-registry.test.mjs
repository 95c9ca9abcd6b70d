// ExternalMultiLoopStateManager (SPEC §1, §7, §9.9, §10): the JS class over
// the native LoopRegistry, exercised on real files in temp directories.
// Run: node --test __test__/loop-registry.test.mjs

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { spawn, spawnSync } from 'node:child_process';

import { ExternalMultiLoopStateManager } from '../index.mjs';
import * as subpathEsm from '../esm/external-multi-loop-state-manager.mjs';

const require = createRequire(import.meta.url);
const HERE = path.dirname(new URL(import.meta.url).pathname);
const PKG = path.join(HERE, '..');

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const LOOP_ID = /^ralph-[a-z0-9-]*-[0-9a-f]{8}$/;

// ---------------------------------------------------------------------------
// helpers

const roots = [];
function tmpRoot() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-loop-registry-'));
  roots.push(dir);
  return dir;
}
function manager(root = tmpRoot()) {
  return new ExternalMultiLoopStateManager(root);
}

/** A pid that certainly belonged to a process that has exited (and been reaped). */
function deadPid() {
  const r = spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' });
  assert.equal(r.status, 0);
  assert.equal(typeof r.pid, 'number');
  return r.pid;
}

/**
 * Every file and symlink under `dir` → its content / link target; dirs as 'dir'.
 * The native lock's OS-lock side file (`registry.json.lock.guard`, empty) is ignored.
 */
function snapshot(dir) {
  const out = {};
  const walk = (d) => {
    for (const name of fs.readdirSync(d).sort()) {
      if (name.endsWith('.lock.guard')) continue;
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      const rel = path.relative(dir, p);
      if (st.isSymbolicLink()) out[rel] = `-> ${fs.readlinkSync(p)}`;
      else if (st.isDirectory()) { out[rel] = 'dir'; walk(p); }
      else out[rel] = fs.readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  return out;
}

function lstatOrNull(p) {
  try { return fs.lstatSync(p); } catch (e) { if (e.code === 'ENOENT') return null; throw e; }
}

/** A lock file as the original JS writes it (no native extras). */
function writeLegacyLock(m, { pid, loopId = 'someone-else', timestamp = Date.now(), leaseExpiry = timestamp + 30000 }) {
  const lock = { pid, loopId, timestamp, leaseExpiry, fencingToken: timestamp };
  fs.mkdirSync(path.dirname(m.lockPath), { recursive: true });
  fs.writeFileSync(m.lockPath, JSON.stringify(lock, null, 2));
  return lock;
}

function readJson(p) {
  return JSON.parse(fs.readFileSync(p, 'utf8'));
}

/** Resolve with `promise`, or fail after `ms` (so a hang is a failure, not a stuck suite). */
function within(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The original's slug rule, as a reference for generateLoopId. */
function referenceSlug(task) {
  return task.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').substring(0, 30);
}

/** A validator for assert.throws/rejects: an Error whose message matches `re`. */
function msg(re) {
  return (err) => {
    assert.ok(err instanceof Error, `expected an Error, got ${err}`);
    assert.match(err.message, re);
    return true;
  };
}

function isThenable(v) {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function';
}

function assertArgTypeError(fn, argName) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof TypeError, `expected TypeError, got ${err && err.constructor && err.constructor.name}: ${err && err.message}`);
    assert.equal(err.code, 'ERR_INVALID_ARG_TYPE');
    assert.ok(err.message.includes(`"${argName}"`), `message should name "${argName}": ${err.message}`);
    return true;
  });
}

async function assertArgTypeRejection(call, argName) {
  let promise;
  assert.doesNotThrow(() => { promise = call(); }, 'must reject, not throw synchronously');
  assert.ok(promise instanceof Promise, 'must return a promise');
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof TypeError, `expected TypeError, got ${err && err.constructor && err.constructor.name}: ${err && err.message}`);
    assert.equal(err.code, 'ERR_INVALID_ARG_TYPE');
    assert.ok(err.message.includes(`"${argName}"`), `message should name "${argName}": ${err.message}`);
    return true;
  });
}

// A live process that is not us, for locks held by "someone else".
let other;
before(async () => {
  other = spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)'], { stdio: 'ignore' });
  await new Promise((resolve, reject) => { other.once('spawn', resolve); other.once('error', reject); });
  assert.ok(other.pid > 0);
});
after(() => {
  if (other && other.exitCode === null && other.signalCode === null) other.kill('SIGKILL');
  for (const dir of roots) fs.rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------

describe('entry points (SPEC §1)', () => {
  it('ESM index exports the class', () => {
    assert.equal(typeof ExternalMultiLoopStateManager, 'function');
    assert.equal(ExternalMultiLoopStateManager.name, 'ExternalMultiLoopStateManager');
  });

  it('CJS index.js exports the same class', () => {
    const cjs = require('../index.js');
    assert.equal(cjs.ExternalMultiLoopStateManager, ExternalMultiLoopStateManager);
  });

  it('subpath .mjs: named and default export are the same class', () => {
    assert.equal(subpathEsm.ExternalMultiLoopStateManager, ExternalMultiLoopStateManager);
    assert.equal(subpathEsm.default, ExternalMultiLoopStateManager);
  });

  it('subpath .js: named and .default are the same class', () => {
    const cjs = require('../cjs/external-multi-loop-state-manager.js');
    assert.equal(cjs.ExternalMultiLoopStateManager, ExternalMultiLoopStateManager);
    assert.equal(cjs.default, ExternalMultiLoopStateManager);
  });

  it('package self-reference @aiwg/mc-native[/external-multi-loop-state-manager] (import and require)', async () => {
    const esmMain = await import('@aiwg/mc-native');
    assert.equal(esmMain.ExternalMultiLoopStateManager, ExternalMultiLoopStateManager);
    const esmSub = await import('@aiwg/mc-native/external-multi-loop-state-manager');
    assert.equal(esmSub.ExternalMultiLoopStateManager, ExternalMultiLoopStateManager);
    assert.equal(esmSub.default, ExternalMultiLoopStateManager);
    const cjsMain = require('@aiwg/mc-native');
    assert.equal(cjsMain.ExternalMultiLoopStateManager, ExternalMultiLoopStateManager);
    const cjsSub = require('@aiwg/mc-native/external-multi-loop-state-manager');
    assert.equal(cjsSub.ExternalMultiLoopStateManager, ExternalMultiLoopStateManager);
    assert.equal(cjsSub.default, ExternalMultiLoopStateManager);
  });

  const pkg = JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8'));
  const typesFiles = [pkg.types, pkg.exports['./external-multi-loop-state-manager'].types];
  it(
    'the .d.ts files package.json points at exist and declare the class (SPEC §1: index.d.ts types all of it)',
    () => {
      for (const f of typesFiles) {
        const text = fs.readFileSync(path.join(PKG, f), 'utf8');
        assert.match(text, /ExternalMultiLoopStateManager/, f);
      }
    },
  );
});

describe('constructor and properties (SPEC §7)', () => {
  it('derives every path with path.join', () => {
    const root = tmpRoot();
    const m = new ExternalMultiLoopStateManager(root);
    const base = path.join(root, '.aiwg', 'ralph-external');
    assert.equal(m.projectRoot, root);
    assert.equal(m.baseDir, base);
    assert.equal(m.registryPath, path.join(base, 'registry.json'));
    assert.equal(m.loopsDir, path.join(base, 'loops'));
    assert.equal(m.archiveDir, path.join(base, 'archive'));
    assert.equal(m.sharedDir, path.join(base, 'shared'));
    assert.equal(m.lockPath, path.join(base, 'registry.json') + '.lock');
  });

  it('constructing touches nothing on disk', () => {
    const root = tmpRoot();
    manager(root);
    assert.deepEqual(fs.readdirSync(root), []);
  });

  it('the path properties are read-only', () => {
    const root = tmpRoot();
    const m = manager(root);
    for (const key of ['projectRoot', 'baseDir', 'registryPath', 'loopsDir', 'archiveDir', 'sharedDir', 'lockPath']) {
      const before = m[key];
      assert.equal(typeof before, 'string');
      Reflect.set(m, key, '/somewhere/else');
      assert.equal(m[key], before, `${key} changed on assignment`);
      assert.throws(() => { m[key] = '/x'; }, TypeError, `${key} assignment in strict mode`);
      assert.equal(m[key], before);
    }
  });

  it('maxLockAttempts is a writable instance property defaulting to 300', () => {
    const m = manager();
    assert.equal(m.maxLockAttempts, 300);
    assert.ok(Object.prototype.hasOwnProperty.call(m, 'maxLockAttempts'));
    m.maxLockAttempts = 3;
    assert.equal(m.maxLockAttempts, 3);
    assert.equal(manager().maxLockAttempts, 300, 'per instance, not shared');
  });

  it('every member exists with the right sync/async shape', async () => {
    const root = tmpRoot();
    const m = manager(root);
    const syncResults = {
      ensureBaseDir: m.ensureBaseDir(),
      generateLoopId: m.generateLoopId('x'),
      calculateCommunicationPaths: m.calculateCommunicationPaths(3),
      loadRegistry: m.loadRegistry(),
      saveRegistry: m.saveRegistry(m.loadRegistry()),
      releaseLock: m.releaseLock('nobody'),
      processExists: m.processExists(process.pid),
      listActiveLoops: m.listActiveLoops(),
      isLoopAlive: m.isLoopAlive('nope'),
      updateLegacySymlink: m.updateLegacySymlink(),
      detectCrashedLoops: m.detectCrashedLoops(),
      getLoopDir: m.getLoopDir('a'),
      getIterationDir: m.getIterationDir('a', 1),
      getPromptPath: m.getPromptPath('a', 1),
      getOutputPaths: m.getOutputPaths('a', 1),
    };
    for (const [name, value] of Object.entries(syncResults)) {
      assert.equal(typeof m[name], 'function', name);
      assert.ok(!isThenable(value), `${name} must be sync`);
    }
    const lock = m.acquireLock('shape');
    assert.ok(lock instanceof Promise, 'acquireLock is async');
    await lock;
    m.releaseLock('shape');
    const sleeping = m.sleep(1);
    assert.ok(sleeping instanceof Promise, 'sleep is async');
    await sleeping;
    const created = m.createLoop({ objective: 'shape' });
    assert.ok(created instanceof Promise, 'createLoop is async');
    const { loopId } = await created;
    const got = m.getLoop(loopId);
    assert.ok(!isThenable(got), 'getLoop must be sync');
    const updated = m.updateLoop(loopId, { note: 1 });
    assert.ok(!isThenable(updated), 'updateLoop must be sync');
    const pid = m.updateLoopPid(loopId, process.pid);
    assert.ok(pid instanceof Promise, 'updateLoopPid is async');
    await pid;
    const archived = m.archiveLoop(loopId);
    assert.ok(archived instanceof Promise, 'archiveLoop is async');
    await archived;
    const migrated = m.migrateLegacyState();
    assert.ok(migrated instanceof Promise, 'migrateLegacyState is async');
    assert.equal(await migrated, false);
  });
});

describe('ensureBaseDir / generateLoopId / calculateCommunicationPaths', () => {
  it('ensureBaseDir creates baseDir, loops, archive and shared (idempotent)', () => {
    const m = manager();
    assert.equal(fs.existsSync(m.baseDir), false);
    assert.equal(m.ensureBaseDir(), undefined);
    for (const d of [m.baseDir, m.loopsDir, m.archiveDir, m.sharedDir]) {
      assert.ok(fs.statSync(d).isDirectory(), d);
    }
    fs.writeFileSync(path.join(m.loopsDir, 'keep'), 'k');
    m.ensureBaseDir();
    assert.equal(fs.readFileSync(path.join(m.loopsDir, 'keep'), 'utf8'), 'k');
    assert.equal(fs.existsSync(m.registryPath), false, 'ensureBaseDir does not create the registry');
  });

  it('generateLoopId follows ralph-<slug>-<8 hex> with the original slug rule', () => {
    const m = manager();
    const cases = [
      ['Fix the  Auth/Login bug!!', 'fix-the-auth-login-bug'],
      ['  --Hello__World--  ', 'hello-world'],
      ['ABC123', 'abc123'],
      ['a'.repeat(50), 'a'.repeat(30)],
      ['abcdefghij abcdefghij abcdefghij abcdefghij', 'abcdefghij-abcdefghij-abcdefgh'],
      // cut after trimming, as the original: the 30th char may be '-'
      ['abcdefghij abcdefghij abcdefg jkl', 'abcdefghij-abcdefghij-abcdefg-'],
      ['Ünïcödé Straße ✓ 42', 'n-c-d-stra-e-42'],
      ['', ''],
      ['!!!', ''],
    ];
    for (const [task, slug] of cases) {
      assert.equal(referenceSlug(task), slug, `reference rule for ${JSON.stringify(task)}`);
      const id = m.generateLoopId(task);
      assert.equal(typeof id, 'string');
      const match = /^ralph-(.*)-([0-9a-f]{8})$/.exec(id);
      assert.ok(match, `format of ${id}`);
      assert.equal(match[1], slug, `slug of ${JSON.stringify(task)} → ${id}`);
    }
  });

  it('generateLoopId is unique', () => {
    const m = manager();
    const ids = new Set();
    for (let i = 0; i < 500; i++) ids.add(m.generateLoopId('same task'));
    assert.equal(ids.size, 500);
    for (const id of ids) assert.match(id, /^ralph-same-task-[0-9a-f]{8}$/);
  });

  it('calculateCommunicationPaths is n*(n-1)/2', () => {
    const m = manager();
    for (const [n, p] of [[0, 0], [1, 0], [2, 1], [4, 6], [5, 10], [10, 45]]) {
      const got = m.calculateCommunicationPaths(n);
      assert.ok(got === p, `n=${n}: ${got}`);
      assert.equal(got, (n * (n - 1)) / 2, 'same number as the formula (0 → -0 as in JS)');
    }
  });
});

describe('loadRegistry / saveRegistry / listActiveLoops', () => {
  it('loadRegistry creates and saves a fresh registry with exact fields and key order', () => {
    const m = manager();
    const t0 = Date.now();
    const reg = m.loadRegistry();
    assert.deepEqual(Object.keys(reg), [
      'version', 'max_concurrent_loops', 'updated_at', 'active_loops', 'total_active', 'total_completed', 'total_aborted',
    ]);
    assert.equal(reg.version, '2.0.0');
    assert.equal(reg.max_concurrent_loops, 4);
    assert.match(reg.updated_at, ISO);
    assert.ok(Math.abs(Date.parse(reg.updated_at) - t0) < 5000);
    assert.deepEqual(reg.active_loops, []);
    assert.equal(reg.total_active, 0);
    assert.equal(reg.total_completed, 0);
    assert.equal(reg.total_aborted, 0);
    // ensureBaseDir was run, and the file is JSON.stringify(reg, null, 2)
    for (const d of [m.loopsDir, m.archiveDir, m.sharedDir]) assert.ok(fs.statSync(d).isDirectory());
    assert.equal(fs.readFileSync(m.registryPath, 'utf8'), JSON.stringify(reg, null, 2));
  });

  it('loadRegistry reads an existing registry without rewriting it', () => {
    const m = manager();
    m.ensureBaseDir();
    const custom = { version: '2.0.0', zeta: 1, active_loops: [{ loop_id: 'a', extra: true }], total_active: 1, updated_at: '2000-01-01T00:00:00.000Z' };
    const text = JSON.stringify(custom, null, 2);
    fs.writeFileSync(m.registryPath, text);
    assert.deepEqual(m.loadRegistry(), custom);
    assert.deepEqual(Object.keys(m.loadRegistry()), Object.keys(custom));
    assert.equal(fs.readFileSync(m.registryPath, 'utf8'), text);
    assert.deepEqual(m.listActiveLoops(), custom.active_loops);
  });

  it('saveRegistry stamps updated_at and total_active, on the caller object too, and writes JSON.stringify(r, null, 2)', async () => {
    const m = manager();
    const registry = {
      total_active: 99,
      custom: { nested: [1, { deep: 'x' }], unicode: 'é😀\u2028\u0001"\\/\t', empty: {}, none: null },
      numbers: [1.5, 1e21, 0.1, -0, 2 ** 64, 123456789.123, 5e-7, 1e300, 9007199254740993],
      active_loops: [{ loop_id: 'a', status: 'running' }, { loop_id: 'b' }],
      version: '2.0.0',
      dropped: undefined,
      total_completed: 3,
    };
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 2));
    assert.equal(m.saveRegistry(registry), undefined);
    assert.equal(registry.total_active, 2);
    assert.match(registry.updated_at, ISO);
    assert.ok(Date.parse(registry.updated_at) >= t0 - 1);
    assert.deepEqual(Object.keys(registry).slice(-1), ['updated_at'], 'updated_at appended like a JS assignment');
    const text = fs.readFileSync(m.registryPath, 'utf8');
    assert.equal(text, JSON.stringify(registry, null, 2));

    // a second save restamps
    const first = registry.updated_at;
    await new Promise((r) => setTimeout(r, 5));
    registry.active_loops.pop();
    m.saveRegistry(registry);
    assert.notEqual(registry.updated_at, first);
    assert.equal(registry.total_active, 1);
    assert.equal(fs.readFileSync(m.registryPath, 'utf8'), JSON.stringify(registry, null, 2));
    assert.deepEqual(m.loadRegistry(), JSON.parse(JSON.stringify(registry)));
    // atomic write: no temp files left beside it
    assert.deepEqual(fs.readdirSync(m.baseDir).filter((n) => n.endsWith('.tmp')), []);
  });

  // A lone surrogate (half an emoji, as the original's 200-unit task_summary
  // cut can leave): JSON.stringify writes it as a \udXXX escape and the
  // original keeps it through every read and write (issue 10, item 13).
  it('saveRegistry keeps a lone surrogate, written as JSON.stringify writes it', () => {
    const m = manager();
    const registry = m.loadRegistry();
    registry.note = 'half an emoji: \ud83d';
    m.saveRegistry(registry);
    const text = fs.readFileSync(m.registryPath, 'utf8');
    assert.equal(text, JSON.stringify(registry, null, 2));
    assert.ok(text.includes('"note": "half an emoji: \\ud83d"'), text);
    assert.equal(m.loadRegistry().note, 'half an emoji: \ud83d');
  });

  it('loadRegistry reads a registry the original JS wrote with a task_summary cut inside an emoji', () => {
    const m = manager();
    const registry = m.loadRegistry();
    const objective = 'a'.repeat(199) + '😀 and more';
    registry.active_loops.push({ loop_id: 'ralph-old-0000abcd', task_summary: objective.substring(0, 200), status: 'running' });
    fs.writeFileSync(m.registryPath, JSON.stringify(registry, null, 2));
    const loaded = m.loadRegistry();
    assert.equal(loaded.active_loops[0].task_summary, 'a'.repeat(199) + '\ud83d');
    assert.deepEqual(loaded, registry);
  });

  it('updateLoop and createLoop accept strings with a lone surrogate (kept as it is)', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'surrogates' });
    const updated = m.updateLoop(loopId, { note: 'half: \udc00' });
    assert.equal(updated.note, 'half: \udc00');
    assert.equal(fs.readFileSync(path.join(m.loopsDir, loopId, 'session-state.json'), 'utf8'), JSON.stringify(updated, null, 2));
    assert.equal(m.getLoop(loopId).note, 'half: \udc00');
    const created = await m.createLoop({ objective: 'emoji cut: \ud83d' });
    assert.equal(created.state.objective, 'emoji cut: \ud83d');
  });

  it('listActiveLoops returns the registry active_loops', async () => {
    const m = manager();
    assert.deepEqual(m.listActiveLoops(), []);
    const a = await m.createLoop({ objective: 'one' });
    const b = await m.createLoop({ objective: 'two' });
    const list = m.listActiveLoops();
    assert.deepEqual(list.map((e) => e.loop_id), [a.loopId, b.loopId]);
    assert.deepEqual(list, m.loadRegistry().active_loops);
  });
});

describe('acquireLock / releaseLock', () => {
  it('acquireLock → {acquired:true, fencingToken}; lock file holds pid, loopId, timestamp, leaseExpiry, fencingToken', async () => {
    const m = manager();
    m.ensureBaseDir();
    const t0 = Date.now();
    const res = await m.acquireLock('loop-a');
    assert.deepEqual(Object.keys(res).sort(), ['acquired', 'fencingToken']);
    assert.equal(res.acquired, true);
    assert.equal(typeof res.fencingToken, 'number');
    const lock = readJson(m.lockPath);
    for (const key of ['pid', 'loopId', 'timestamp', 'leaseExpiry', 'fencingToken']) assert.ok(key in lock, key);
    assert.equal(lock.pid, process.pid);
    assert.equal(lock.loopId, 'loop-a');
    assert.ok(lock.timestamp >= t0 - 5 && lock.timestamp <= Date.now() + 5, 'timestamp is now (ms)');
    assert.ok(Math.abs(lock.leaseExpiry - (lock.timestamp + 30000)) <= 5, 'leaseExpiry ≈ timestamp + 30000');
    assert.equal(lock.fencingToken, res.fencingToken);
    m.releaseLock('loop-a');
    assert.equal(lstatOrNull(m.lockPath), null, 'released');

    const again = await m.acquireLock('loop-a');
    assert.ok(again.fencingToken > res.fencingToken, 'fencing tokens grow');
    m.releaseLock('loop-a');
  });

  it('acquireLock while this process already holds it waits, then rejects (exclusive)', async () => {
    const m = manager();
    m.ensureBaseDir();
    await m.acquireLock('first');
    const m2 = manager(m.projectRoot);
    m2.maxLockAttempts = 3;
    await assert.rejects(m2.acquireLock('second'), msg(/^Failed to acquire lock after 3 attempts/));
    assert.equal(readJson(m.lockPath).loopId, 'first');
    m.releaseLock('first');
  });

  it('releaseLock removes only a lock holding this loopId and this pid', async () => {
    const m = manager();
    m.ensureBaseDir();
    assert.doesNotThrow(() => m.releaseLock('none'), 'no lock file: no error');

    // another loopId, our pid
    writeLegacyLock(m, { pid: process.pid, loopId: 'other-loop' });
    let before = fs.readFileSync(m.lockPath, 'utf8');
    assert.equal(m.releaseLock('mine'), undefined);
    assert.equal(fs.readFileSync(m.lockPath, 'utf8'), before, 'lock of another loopId stays');

    // our loopId, another (live) pid
    writeLegacyLock(m, { pid: other.pid, loopId: 'mine' });
    before = fs.readFileSync(m.lockPath, 'utf8');
    m.releaseLock('mine');
    assert.equal(fs.readFileSync(m.lockPath, 'utf8'), before, 'lock of another pid stays');

    // ours
    fs.rmSync(m.lockPath);
    await m.acquireLock('mine');
    m.releaseLock('other-loop');
    assert.ok(lstatOrNull(m.lockPath), 'releasing another loopId does not remove ours');
    m.releaseLock('mine');
    assert.equal(lstatOrNull(m.lockPath), null);
  });

  it('a lock held by a live other process: rejects after maxLockAttempts (3) well under a second', async () => {
    const m = manager();
    m.ensureBaseDir();
    writeLegacyLock(m, { pid: other.pid });
    const before = fs.readFileSync(m.lockPath, 'utf8');
    m.maxLockAttempts = 3;
    const t0 = performance.now();
    await assert.rejects(m.acquireLock('waiter'), (err) => {
      assert.match(err.message, /^Failed to acquire lock after 3 attempts/);
      return true;
    });
    const elapsed = performance.now() - t0;
    assert.ok(elapsed < 2000, `took ${elapsed} ms`);
    assert.equal(fs.readFileSync(m.lockPath, 'utf8'), before, 'the live holder keeps its lock');
  });

  it('a lock whose pid is dead is broken and acquired at once', async () => {
    const m = manager();
    m.ensureBaseDir();
    writeLegacyLock(m, { pid: deadPid(), loopId: 'crashed' });
    m.maxLockAttempts = 3;
    const res = await within(m.acquireLock('breaker'), 5000, 'acquire over a dead holder');
    assert.equal(res.acquired, true);
    const lock = readJson(m.lockPath);
    assert.equal(lock.pid, process.pid);
    assert.equal(lock.loopId, 'breaker');
    m.releaseLock('breaker');
  });

  it('a lock whose lease expired is broken even though its pid is alive', async () => {
    const m = manager();
    m.ensureBaseDir();
    const ts = Date.now() - 60000;
    writeLegacyLock(m, { pid: other.pid, timestamp: ts, leaseExpiry: Date.now() - 1000 });
    m.maxLockAttempts = 3;
    const res = await within(m.acquireLock('breaker'), 5000, 'acquire over an expired lease');
    assert.equal(res.acquired, true);
    assert.equal(readJson(m.lockPath).loopId, 'breaker');
    m.releaseLock('breaker');
  });

  it('a fresh corrupted lock file is not broken; the same garbage older than 30 s is', async () => {
    const m = manager();
    m.ensureBaseDir();
    const garbage = 'this is {not json';
    fs.writeFileSync(m.lockPath, garbage);
    m.maxLockAttempts = 3;
    const t0 = performance.now();
    await assert.rejects(m.acquireLock('x'), (err) => {
      assert.match(err.message, /^Failed to acquire lock after 3 attempts/);
      return true;
    });
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(fs.readFileSync(m.lockPath, 'utf8'), garbage, 'fresh garbage left in place');

    const old = Date.now() / 1000 - 60;
    fs.utimesSync(m.lockPath, old, old);
    const res = await within(m.acquireLock('x'), 5000, 'acquire over old garbage');
    assert.equal(res.acquired, true);
    assert.equal(readJson(m.lockPath).loopId, 'x');
    m.releaseLock('x');
  });

  it('an empty lock file (a writer caught mid-write) that is fresh is not broken', async () => {
    const m = manager();
    m.ensureBaseDir();
    fs.writeFileSync(m.lockPath, '');
    m.maxLockAttempts = 3;
    await assert.rejects(m.acquireLock('x'), msg(/^Failed to acquire lock after 3 attempts/));
    assert.equal(fs.readFileSync(m.lockPath, 'utf8'), '');
  });

  it('concurrent breakers of one stale lock: exactly one wins (SPEC §9.9)', async () => {
    const root = tmpRoot();
    const m = manager(root);
    m.ensureBaseDir();
    writeLegacyLock(m, { pid: deadPid() });
    const contenders = Array.from({ length: 6 }, () => {
      const c = manager(root);
      c.maxLockAttempts = 3;
      return c;
    });
    const results = await Promise.allSettled(contenders.map((c, i) => c.acquireLock(`c${i}`)));
    const won = results.map((r, i) => [r, i]).filter(([r]) => r.status === 'fulfilled');
    assert.equal(won.length, 1, `winners: ${won.map(([, i]) => i)}`);
    for (const r of results.filter((x) => x.status === 'rejected')) {
      assert.match(r.reason.message, /^Failed to acquire lock after 3 attempts/);
    }
    const winner = won[0][1];
    assert.equal(readJson(m.lockPath).loopId, `c${winner}`);
    contenders[winner].releaseLock(`c${winner}`);
    assert.equal(lstatOrNull(m.lockPath), null);
  });

  it('a waiter wakes when the holder releases', async () => {
    const root = tmpRoot();
    const holder = manager(root);
    const waiter = manager(root);
    holder.ensureBaseDir();
    await holder.acquireLock('holder');
    let settled = false;
    const pending = waiter.acquireLock('waiter').finally(() => { settled = true; });
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(settled, false, 'waits while the lock is held');
    holder.releaseLock('holder');
    const res = await within(pending, 10000, 'waiter after release');
    assert.equal(res.acquired, true);
    assert.equal(readJson(holder.lockPath).loopId, 'waiter');
    waiter.releaseLock('waiter');
  });

  it(
    'acquireLock in a project where .aiwg/ralph-external does not exist yet acquires the lock',
    async () => {
      const m = manager();
      const res = await m.acquireLock('fresh');
      assert.equal(res.acquired, true);
      assert.equal(readJson(m.lockPath).loopId, 'fresh');
      m.releaseLock('fresh');
    },
  );
});

describe('processExists / sleep', () => {
  it('processExists: own pid true, dead pid false; values process.kill refuses false, values it coerces checked', () => {
    const m = manager();
    assert.equal(m.processExists(process.pid), true);
    assert.equal(m.processExists(other.pid), true);
    assert.equal(m.processExists(deadPid()), false);
    for (const v of [null, undefined, {}, 'abc', 1.5, 2 ** 40, Symbol('pid'), 5n]) {
      assert.equal(m.processExists(v), false, `processExists(${String(v)})`);
    }
    // process.kill(pid, 0) takes what loosely equals pid | 0, as the original's check does
    for (const v of [String(process.pid), [process.pid]]) {
      assert.equal(m.processExists(v), true, `processExists(${JSON.stringify(v)})`);
    }
  });

  it('sleep(ms) resolves after about ms', async () => {
    const m = manager();
    const t0 = performance.now();
    const v = await m.sleep(40);
    const elapsed = performance.now() - t0;
    assert.equal(v, undefined);
    assert.ok(elapsed >= 25, `slept ${elapsed} ms`);
  });
});

describe('createLoop', () => {
  const STATE_KEYS = [
    'version', 'loopId', 'objective', 'completionCriteria', 'status', 'maxIterations', 'currentIteration',
    'startTime', 'lastUpdate', 'sessionId', 'currentPid', 'iterations', 'accumulatedLearnings', 'filesModified',
    'giteaIntegration', 'config',
  ];
  const ENTRY_KEYS = [
    'loop_id', 'task_summary', 'status', 'started_at', 'owner', 'pid', 'iteration', 'max_iterations',
    'completion_criteria', 'priority', 'tags',
  ];

  it('creates the loop dirs, session-state.json with defaults, and the registry entry', async () => {
    const root = tmpRoot();
    const m = manager(root);
    const objective = 'Implement the thing. '.repeat(15); // > 200 chars
    assert.ok(objective.length > 200);
    const t0 = Date.now();
    const res = await m.createLoop({ objective, completionCriteria: 'all tests pass' });
    assert.deepEqual(Object.keys(res).sort(), ['loopId', 'state']);
    const { loopId, state } = res;
    assert.match(loopId, LOOP_ID);
    assert.ok(loopId.startsWith(`ralph-${referenceSlug(objective)}-`));

    const dir = path.join(m.loopsDir, loopId);
    for (const sub of ['iterations', 'prompts', 'outputs', 'analysis', 'checkpoints']) {
      assert.ok(fs.statSync(path.join(dir, sub)).isDirectory(), sub);
    }

    assert.deepEqual(Object.keys(state), STATE_KEYS);
    assert.equal(state.version, '1.0.0');
    assert.equal(state.loopId, loopId);
    assert.equal(state.objective, objective);
    assert.equal(state.completionCriteria, 'all tests pass');
    assert.equal(state.status, 'running');
    assert.equal(state.maxIterations, 10);
    assert.equal(state.currentIteration, 0);
    assert.match(state.startTime, ISO);
    assert.match(state.lastUpdate, ISO);
    assert.ok(Date.parse(state.startTime) >= t0 - 5 && Date.parse(state.startTime) <= Date.now() + 5);
    assert.match(state.sessionId, UUID);
    assert.equal(state.currentPid, process.pid);
    assert.deepEqual(state.iterations, []);
    assert.equal(state.accumulatedLearnings, '');
    assert.deepEqual(state.filesModified, []);
    assert.equal(state.giteaIntegration, null);
    assert.deepEqual(state.config, { model: 'opus', budgetPerIteration: 2.0, timeoutMinutes: 60, mcpConfig: null, workingDir: root });

    const statePath = path.join(dir, 'session-state.json');
    assert.equal(fs.readFileSync(statePath, 'utf8'), JSON.stringify(state, null, 2));
    assert.deepEqual(m.getLoop(loopId), state);

    const reg = m.loadRegistry();
    assert.equal(reg.active_loops.length, 1);
    assert.equal(reg.total_active, 1);
    const entry = reg.active_loops[0];
    assert.deepEqual(Object.keys(entry), ENTRY_KEYS);
    assert.equal(entry.loop_id, loopId);
    assert.equal(entry.task_summary, objective.substring(0, 200));
    assert.equal(entry.status, 'running');
    assert.match(entry.started_at, ISO);
    assert.equal(entry.owner, `user:${process.env.USER || 'unknown'}`);
    assert.equal(entry.pid, process.pid);
    assert.equal(entry.iteration, 0);
    assert.equal(entry.max_iterations, 10);
    assert.equal(entry.completion_criteria, 'all tests pass');
    assert.equal(entry.priority, 'medium');
    assert.deepEqual(entry.tags, []);
    assert.equal(fs.readFileSync(m.registryPath, 'utf8'), JSON.stringify(reg, null, 2));
    assert.equal(lstatOrNull(m.lockPath), null, 'the lock is released afterwards');

    // sessionId differs per loop
    const second = await m.createLoop({ objective: 'other' });
    assert.notEqual(second.state.sessionId, state.sessionId);

    // a 200-unit cut inside an emoji: still a prefix of the objective, at most 200 units
    const emoji = 'a'.repeat(199) + '😀 tail';
    const third = await m.createLoop({ objective: emoji }, { force: true });
    const summary = m.listActiveLoops().find((e) => e.loop_id === third.loopId).task_summary;
    assert.ok(emoji.startsWith(summary), 'task_summary is a prefix of the objective');
    assert.ok(summary.length >= 199 && summary.length <= 200, `length ${summary.length}`);
  });

  it('honours config.loopId and every config field', async () => {
    const root = tmpRoot();
    const m = manager(root);
    const config = {
      objective: 'Custom loop',
      loopId: 'my-own-loop',
      completionCriteria: { tests: 'green' },
      maxIterations: 3,
      model: 'sonnet',
      budgetPerIteration: 5.5,
      timeoutMinutes: 15,
      mcpConfig: '/etc/mcp.json',
      workingDir: '/work/dir',
      giteaIntegration: { repo: 'org/repo', issue: 7 },
      owner: 'team:ops',
      priority: 'high',
      tags: ['a', 'b'],
    };
    const { loopId, state } = await m.createLoop(config);
    assert.equal(loopId, 'my-own-loop');
    assert.equal(state.loopId, 'my-own-loop');
    assert.ok(fs.statSync(path.join(m.loopsDir, 'my-own-loop', 'checkpoints')).isDirectory());
    assert.equal(state.maxIterations, 3);
    assert.deepEqual(state.completionCriteria, { tests: 'green' });
    assert.deepEqual(state.giteaIntegration, { repo: 'org/repo', issue: 7 });
    assert.deepEqual(state.config, { model: 'sonnet', budgetPerIteration: 5.5, timeoutMinutes: 15, mcpConfig: '/etc/mcp.json', workingDir: '/work/dir' });
    const [entry] = m.listActiveLoops();
    assert.equal(entry.loop_id, 'my-own-loop');
    assert.equal(entry.owner, 'team:ops');
    assert.equal(entry.max_iterations, 3);
    assert.deepEqual(entry.completion_criteria, { tests: 'green' });
    assert.equal(entry.priority, 'high');
    assert.deepEqual(entry.tags, ['a', 'b']);
  });

  it('owner defaults to user:$USER', async () => {
    const saved = process.env.USER;
    try {
      process.env.USER = 'loop-tester';
      const m = manager();
      await m.createLoop({ objective: 'owner check' });
      assert.equal(m.listActiveLoops()[0].owner, 'user:loop-tester');
    } finally {
      if (saved === undefined) delete process.env.USER; else process.env.USER = saved;
    }
  });

  it('with 4 active loops: rejects without force; with force warns and goes on', async (t) => {
    const root = tmpRoot();
    const m = manager(root);
    for (let i = 1; i <= 4; i++) await m.createLoop({ objective: `loop ${i}` });
    assert.equal(m.listActiveLoops().length, 4);
    const before = snapshot(m.baseDir);

    await assert.rejects(m.createLoop({ objective: 'fifth' }), (err) => {
      assert.match(err.message, /^Cannot create loop: 4 loops already active \(max: 4\)\./);
      assert.match(err.message, /\b6 communication paths/);
      assert.match(err.message, /--force/);
      return true;
    });
    await assert.rejects(m.createLoop({ objective: 'fifth' }, { force: false }), msg(/^Cannot create loop: 4 loops already active \(max: 4\)\./));
    assert.deepEqual(snapshot(m.baseDir), before, 'a refused createLoop changes nothing');
    assert.equal(lstatOrNull(m.lockPath), null);

    const warn = t.mock.method(console, 'warn', () => {});
    const res = await m.createLoop({ objective: 'fifth' }, { force: true });
    assert.equal(warn.mock.callCount(), 1, 'console.warn called once');
    assert.equal(typeof warn.mock.calls[0].arguments[0], 'string');
    assert.match(warn.mock.calls[0].arguments[0], /\b4\b/);
    assert.match(res.loopId, /^ralph-fifth-[0-9a-f]{8}$/);
    const reg = m.loadRegistry();
    assert.equal(reg.active_loops.length, 5);
    assert.equal(reg.total_active, 5);
    assert.ok(fs.existsSync(path.join(m.loopsDir, res.loopId, 'session-state.json')));

    // now 5 active: the message counts them
    await assert.rejects(m.createLoop({ objective: 'sixth' }), (err) => {
      assert.match(err.message, /^Cannot create loop: 5 loops already active \(max: 4\)\./);
      assert.match(err.message, /\b10 communication paths/);
      return true;
    });
  });

  it('a registry that fills while createLoop waits for the lock: refused, and nothing of the loop is left', async () => {
    const root = tmpRoot();
    const m = manager(root);
    const other = manager(root);
    for (let i = 1; i <= 3; i++) await m.createLoop({ objective: `loop ${i}` });
    // Another process holds the lock while it registers a fourth loop.
    await other.acquireLock('filler');
    const refused = m.createLoop({ objective: 'late' });
    let settled = false;
    refused.then(() => (settled = true), () => (settled = true));
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(settled, false, 'createLoop did not wait for the lock');
    const registry = other.loadRegistry();
    registry.active_loops.push({ ...registry.active_loops[0], loop_id: 'ralph-filler-00000000' });
    other.saveRegistry(registry);
    other.releaseLock('filler');
    await assert.rejects(refused, msg(/^Cannot create loop: 4 loops already active \(max: 4\)\./));
    const late = fs.readdirSync(m.loopsDir).filter((d) => d.startsWith('ralph-late-'));
    assert.deepEqual(late, [], 'the refused loop left its directory behind');
    assert.deepEqual(m.listActiveLoops().map((e) => e.loop_id).filter((id) => id.startsWith('ralph-late-')), []);
  });

  it('a config.loopId that would escape loops/ is refused and nothing is written', async () => {
    const root = tmpRoot();
    const m = manager(root);
    m.loadRegistry();
    const before = snapshot(root);
    for (const loopId of ['../evil', 'a/b', '..']) {
      await assert.rejects(m.createLoop({ objective: 'x', loopId }));
    }
    assert.deepEqual(snapshot(root), before);
  });
});

describe('getLoop / updateLoop', () => {
  it('getLoop: missing → Loop not found; bad JSON → Failed to load loop state', async () => {
    const m = manager();
    assert.throws(() => m.getLoop('ralph-missing-00000000'), (err) => {
      assert.match(err.message, /^Loop not found: ralph-missing-00000000/);
      return true;
    });
    const { loopId } = await m.createLoop({ objective: 'corrupt me' });
    const p = path.join(m.loopsDir, loopId, 'session-state.json');
    fs.writeFileSync(p, '{"version": "1.0.0", trunc');
    assert.throws(() => m.getLoop(loopId), (err) => {
      assert.match(err.message, /^Failed to load loop state: /);
      return true;
    });
    assert.equal(fs.readFileSync(p, 'utf8'), '{"version": "1.0.0", trunc');
    assert.throws(() => m.updateLoop(loopId, { a: 1 }), msg(/^Failed to load loop state: /));
  });

  it('updateLoop: shallow merge, stamps lastUpdate, mirrors status only', async () => {
    const m = manager();
    const { loopId, state } = await m.createLoop({ objective: 'update me' });
    await new Promise((r) => setTimeout(r, 5));
    const t0 = Date.now();
    const updated = m.updateLoop(loopId, { status: 'paused', currentIteration: 2, custom: { a: 1 }, config: { model: 'haiku' } });
    assert.equal(updated.status, 'paused');
    assert.equal(updated.currentIteration, 2);
    assert.deepEqual(updated.custom, { a: 1 });
    assert.deepEqual(updated.config, { model: 'haiku' }, 'shallow: config replaced, not merged');
    assert.equal(updated.objective, 'update me');
    assert.equal(updated.sessionId, state.sessionId);
    assert.equal(updated.startTime, state.startTime);
    assert.match(updated.lastUpdate, ISO);
    assert.notEqual(updated.lastUpdate, state.lastUpdate);
    assert.ok(Date.parse(updated.lastUpdate) >= t0 - 1);
    const written = Object.keys(JSON.parse(JSON.stringify(state)));
    assert.deepEqual(Object.keys(updated).slice(0, written.length), written, 'existing key order kept');

    const file = fs.readFileSync(path.join(m.loopsDir, loopId, 'session-state.json'), 'utf8');
    assert.equal(file, JSON.stringify(updated, null, 2));
    assert.deepEqual(m.getLoop(loopId), updated);

    const [entry] = m.listActiveLoops();
    assert.equal(entry.status, 'paused', 'status mirrored');
    assert.equal(entry.iteration, 0, 'currentIteration not mirrored');
    assert.ok(!('custom' in entry));
    assert.ok(!('currentIteration' in entry));
    assert.equal(lstatOrNull(m.lockPath), null);

    // without a status change the registry is left as it was
    const regText = fs.readFileSync(m.registryPath, 'utf8');
    m.updateLoop(loopId, { accumulatedLearnings: 'learned' });
    assert.equal(fs.readFileSync(m.registryPath, 'utf8'), regText);
    assert.equal(m.getLoop(loopId).accumulatedLearnings, 'learned');
  });

  it('updateLoop on a missing loop throws Loop not found', () => {
    const m = manager();
    m.loadRegistry();
    for (const changes of [{ status: 'x' }, { note: 'x' }]) {
      assert.throws(() => m.updateLoop('ralph-nope-00000000', changes), (err) => {
        assert.match(err.message, /^Loop not found: ralph-nope-00000000/);
        return true;
      });
    }
    assert.equal(fs.existsSync(path.join(m.loopsDir, 'ralph-nope-00000000')), false);
    assert.equal(lstatOrNull(m.lockPath), null);
  });

  it(
    'updateLoop with a status on a missing loop in a project with no .aiwg/ralph-external yet throws Loop not found',
    () => {
      const m = manager();
      assert.throws(() => m.updateLoop('ralph-nope-00000000', { note: 'x' }), msg(/^Loop not found: ralph-nope-00000000/));
      assert.throws(() => m.updateLoop('ralph-nope-00000000', { status: 'x' }), (err) => {
        assert.match(err.message, /^Loop not found: ralph-nope-00000000/);
        return true;
      });
    },
  );

  it('updateLoop mirroring a status runs under the registry lock (SPEC §9.9)', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'locked update' });
    writeLegacyLock(m, { pid: other.pid });
    const regText = fs.readFileSync(m.registryPath, 'utf8');
    m.maxLockAttempts = 3;
    const t0 = performance.now();
    assert.throws(() => m.updateLoop(loopId, { status: 'completed' }), msg(/^Failed to acquire lock after 3 attempts/));
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(fs.readFileSync(m.registryPath, 'utf8'), regText, 'registry untouched while another holds the lock');
    fs.rmSync(m.lockPath);
  });

  it('updateLoop with a status works while this caller holds the lock (no self-deadlock)', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'held update' });
    await m.acquireLock(loopId);
    m.maxLockAttempts = 3;
    const updated = m.updateLoop(loopId, { status: 'completing' });
    assert.equal(updated.status, 'completing');
    assert.equal(m.listActiveLoops()[0].status, 'completing');
    assert.equal(readJson(m.lockPath).loopId, loopId, 'the caller still holds its lock');
    m.releaseLock(loopId);
    assert.equal(lstatOrNull(m.lockPath), null);
  });
});

describe('reads of files that have settled (README: reads served from memory)', () => {
  // Files unchanged for longer than the stamp rule's 2 s are not read again
  // while one stat shows them unchanged. Every way another process can
  // change them must still be seen at once.
  const SETTLE_MS = 2300;

  it('sees in-place rewrites of the same size, renames, removals and bad JSON; hands out fresh copies', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'settle me' });
    const statePath = path.join(m.loopsDir, loopId, 'session-state.json');
    const state = JSON.parse(fs.readFileSync(statePath, 'utf8'));
    state.note = 'A';
    const text = JSON.stringify(state, null, 2).replace('"note": "A"', '"note": "A", "__proto__": {"own": true}');
    fs.writeFileSync(statePath, text);
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

    // Settled: read once, then served by stat; each call gets its own copy.
    const first = m.getLoop(loopId);
    const second = m.getLoop(loopId);
    assert.equal(second.note, 'A');
    assert.notEqual(first, second);
    first.note = 'mutated';
    first.iterations.push('x');
    assert.deepEqual(m.getLoop(loopId), JSON.parse(text));
    assert.ok(Object.hasOwn(m.getLoop(loopId), '__proto__'), 'an own __proto__ key stays an own key');
    assert.equal(Object.getPrototypeOf(m.getLoop(loopId)), Object.prototype);
    assert.deepEqual(Object.keys(m.getLoop(loopId)), Object.keys(JSON.parse(text)));
    const reg = m.loadRegistry();
    reg.active_loops.length = 0;
    assert.equal(m.listActiveLoops().length, 1);

    // In place (same inode), the same size, right after a read.
    fs.writeFileSync(statePath, text.replace('"note": "A"', '"note": "B"'));
    assert.equal(m.getLoop(loopId).note, 'B');
    assert.equal(m.getLoop(loopId).note, 'B');
    // Replaced by rename.
    fs.writeFileSync(`${statePath}.tmp`, text.replace('"note": "A"', '"note": "C"'));
    fs.renameSync(`${statePath}.tmp`, statePath);
    assert.equal(m.getLoop(loopId).note, 'C');
    // Corrupted in place.
    fs.writeFileSync(statePath, '{"version": "1.0.0", trunc');
    assert.throws(() => m.getLoop(loopId), msg(/^Failed to load loop state: /));
    assert.equal(m.isLoopAlive(loopId), false);
    // Removed.
    fs.rmSync(statePath);
    assert.throws(() => m.getLoop(loopId), msg(/^Loop not found: /));

    // The registry, rewritten in place by another writer (as the original does).
    const registryText = fs.readFileSync(m.registryPath, 'utf8');
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    assert.equal(m.listActiveLoops()[0].status, 'running');
    assert.equal(m.listActiveLoops()[0].status, 'running');
    fs.writeFileSync(m.registryPath, registryText.replace('"status": "running"', '"status": "paused!"'));
    assert.equal(m.listActiveLoops()[0].status, 'paused!');
    assert.equal(m.loadRegistry().active_loops[0].status, 'paused!');
  });

  it('ensureBaseDir recreates a directory removed after the base dir settled', async () => {
    const m = manager();
    m.ensureBaseDir();
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    m.ensureBaseDir();
    m.loadRegistry();
    for (const dir of [m.sharedDir, m.archiveDir, m.loopsDir]) {
      fs.rmSync(dir, { recursive: true });
      m.ensureBaseDir();
      assert.ok(fs.statSync(dir).isDirectory(), `${dir} is back`);
    }
    // The whole base dir replaced by another one.
    fs.rmSync(m.baseDir, { recursive: true });
    fs.mkdirSync(m.baseDir);
    assert.equal(m.listActiveLoops().length, 0);
    for (const dir of [m.sharedDir, m.archiveDir, m.loopsDir]) assert.ok(fs.statSync(dir).isDirectory());
  });
});

describe('updateLoopPid / isLoopAlive / detectCrashedLoops', () => {
  it('updateLoopPid sets currentPid in the state and pid in the registry; isLoopAlive follows', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'pid' });
    assert.equal(m.isLoopAlive(loopId), true, 'own pid');
    const dead = deadPid();
    await m.updateLoopPid(loopId, dead);
    assert.equal(m.getLoop(loopId).currentPid, dead);
    assert.equal(m.listActiveLoops()[0].pid, dead);
    assert.equal(m.isLoopAlive(loopId), false, 'dead pid');
    await m.updateLoopPid(loopId, other.pid);
    assert.equal(m.getLoop(loopId).currentPid, other.pid);
    assert.equal(m.listActiveLoops()[0].pid, other.pid);
    assert.equal(m.isLoopAlive(loopId), true, 'live other pid');
    assert.equal(lstatOrNull(m.lockPath), null);
    m.updateLoop(loopId, { currentPid: null });
    assert.equal(m.isLoopAlive(loopId), false, 'no pid');
  });

  it('updateLoopPid on a missing loop rejects with Loop not found', async () => {
    const m = manager();
    m.loadRegistry();
    const before = snapshot(m.baseDir);
    await assert.rejects(m.updateLoopPid('ralph-nope-00000000', process.pid), (err) => {
      assert.match(err.message, /^Loop not found: ralph-nope-00000000/);
      return true;
    });
    assert.deepEqual(snapshot(m.baseDir), before);
  });

  it('isLoopAlive is false for an unknown loop and for unreadable state', async () => {
    const m = manager();
    assert.equal(m.isLoopAlive('ralph-unknown-00000000'), false);
    const { loopId } = await m.createLoop({ objective: 'alive' });
    assert.equal(m.isLoopAlive(loopId), true);
    fs.writeFileSync(path.join(m.loopsDir, loopId, 'session-state.json'), 'garbage');
    assert.equal(m.isLoopAlive(loopId), false);
  });

  it('detectCrashedLoops reports running entries whose pid is dead, only', () => {
    const m = manager();
    const dead = deadPid();
    const registry = m.loadRegistry();
    const crashed = { loop_id: 'crashed', status: 'running', pid: dead, extra: 'kept' };
    registry.active_loops = [
      { loop_id: 'alive', status: 'running', pid: process.pid },
      crashed,
      { loop_id: 'alive-other', status: 'running', pid: other.pid },
      { loop_id: 'paused-dead', status: 'paused', pid: dead },
      { loop_id: 'no-pid', status: 'running', pid: null },
    ];
    m.saveRegistry(registry);
    assert.deepEqual(m.detectCrashedLoops(), [crashed]);
    registry.active_loops = registry.active_loops.filter((e) => e !== crashed);
    m.saveRegistry(registry);
    assert.deepEqual(m.detectCrashedLoops(), []);
  });
});

describe('archiveLoop', () => {
  it('moves loops/<id> to archive/<id>, drops the entry and counts completed / aborted', async () => {
    const m = manager();
    const a = await m.createLoop({ objective: 'will complete' });
    const b = await m.createLoop({ objective: 'will be completing' });
    const c = await m.createLoop({ objective: 'will abort' });
    fs.writeFileSync(path.join(m.loopsDir, a.loopId, 'outputs', '001-stdout.log'), 'out');
    m.updateLoop(a.loopId, { status: 'completed' });
    m.updateLoop(b.loopId, { status: 'completing' });
    m.updateLoop(c.loopId, { status: 'failed' });

    const p = m.archiveLoop(a.loopId);
    assert.ok(p instanceof Promise);
    assert.equal(await p, undefined);
    assert.equal(fs.existsSync(path.join(m.loopsDir, a.loopId)), false);
    assert.equal(fs.readFileSync(path.join(m.archiveDir, a.loopId, 'outputs', '001-stdout.log'), 'utf8'), 'out');
    assert.equal(readJson(path.join(m.archiveDir, a.loopId, 'session-state.json')).status, 'completed');
    let reg = m.loadRegistry();
    assert.deepEqual(reg.active_loops.map((e) => e.loop_id), [b.loopId, c.loopId]);
    assert.equal(reg.total_active, 2);
    assert.equal(reg.total_completed, 1);
    assert.equal(reg.total_aborted, 0);

    await m.archiveLoop(b.loopId);
    reg = m.loadRegistry();
    assert.equal(reg.total_completed, 2, 'completing counts as completed');
    assert.equal(reg.total_aborted, 0);

    await m.archiveLoop(c.loopId);
    reg = m.loadRegistry();
    assert.deepEqual(reg.active_loops, []);
    assert.equal(reg.total_active, 0);
    assert.equal(reg.total_completed, 2);
    assert.equal(reg.total_aborted, 1, 'any other status counts as aborted');
    assert.deepEqual(fs.readdirSync(m.archiveDir).sort(), [a.loopId, b.loopId, c.loopId].sort());
    assert.deepEqual(fs.readdirSync(m.loopsDir), []);
    assert.equal(fs.readFileSync(m.registryPath, 'utf8'), JSON.stringify(reg, null, 2));
    assert.equal(lstatOrNull(m.lockPath), null);
  });

  it('a running loop archived counts as aborted', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'running' });
    await m.archiveLoop(loopId);
    const reg = m.loadRegistry();
    assert.equal(reg.total_aborted, 1);
    assert.equal(reg.total_completed, 0);
  });

  it('a missing loop directory rejects with Loop directory not found and changes nothing', async () => {
    const m = manager();
    await m.createLoop({ objective: 'stays' });
    const before = snapshot(m.baseDir);
    await assert.rejects(m.archiveLoop('ralph-gone-00000000'), (err) => {
      assert.match(err.message, /^Loop directory not found: ralph-gone-00000000/);
      return true;
    });
    assert.deepEqual(snapshot(m.baseDir), before);
    assert.equal(lstatOrNull(m.lockPath), null);
  });
});

describe('updateLegacySymlink', () => {
  it('links baseDir/session-state.json to the single active loop, relatively; none with 0 or 2+', async () => {
    const m = manager();
    const link = path.join(m.baseDir, 'session-state.json');
    const a = await m.createLoop({ objective: 'first' });
    let st = lstatOrNull(link);
    assert.ok(st && st.isSymbolicLink(), 'symlink after first loop');
    assert.equal(fs.readlinkSync(link), path.join('loops', a.loopId, 'session-state.json'));
    assert.ok(!path.isAbsolute(fs.readlinkSync(link)));
    assert.deepEqual(readJson(link), m.getLoop(a.loopId), 'link resolves to the state');

    const b = await m.createLoop({ objective: 'second' });
    assert.equal(lstatOrNull(link), null, 'no link with 2 active loops');
    assert.equal(m.updateLegacySymlink(), undefined);
    assert.equal(lstatOrNull(link), null);

    await m.archiveLoop(b.loopId);
    st = lstatOrNull(link);
    assert.ok(st && st.isSymbolicLink(), 'link back with one active loop');
    assert.equal(fs.readlinkSync(link), path.join('loops', a.loopId, 'session-state.json'));

    // the method itself re-creates a removed link and replaces a wrong one
    fs.rmSync(link);
    m.updateLegacySymlink();
    assert.equal(fs.readlinkSync(link), path.join('loops', a.loopId, 'session-state.json'));
    fs.rmSync(link);
    fs.symlinkSync('loops/elsewhere/session-state.json', link);
    m.updateLegacySymlink();
    assert.equal(fs.readlinkSync(link), path.join('loops', a.loopId, 'session-state.json'));

    await m.archiveLoop(a.loopId);
    assert.equal(lstatOrNull(link), null, 'no link with 0 active loops');
    // with 0 loops, a stray symlink is removed
    fs.symlinkSync('loops/elsewhere/session-state.json', link);
    m.updateLegacySymlink();
    assert.equal(lstatOrNull(link), null);
  });

  it('a regular file at baseDir/session-state.json is left untouched', async () => {
    const m = manager();
    m.ensureBaseDir();
    const file = path.join(m.baseDir, 'session-state.json');
    fs.writeFileSync(file, 'belongs to another tool');
    const { loopId } = await m.createLoop({ objective: 'only one' });
    assert.equal(m.listActiveLoops().length, 1);
    m.updateLegacySymlink();
    const st = fs.lstatSync(file);
    assert.ok(st.isFile() && !st.isSymbolicLink());
    assert.equal(fs.readFileSync(file, 'utf8'), 'belongs to another tool');
    await m.archiveLoop(loopId);
    assert.equal(fs.readFileSync(file, 'utf8'), 'belongs to another tool');
  });
});

describe('migrateLegacyState', () => {
  it('two migrations at once: one moves the legacy state, the other finds nothing left', async () => {
    const m = manager();
    m.ensureBaseDir();
    fs.writeFileSync(path.join(m.baseDir, 'session-state.json'), JSON.stringify({ objective: 'only once', status: 'running' }));
    const other = new ExternalMultiLoopStateManager(m.projectRoot);
    const results = await Promise.all([m.migrateLegacyState(), other.migrateLegacyState()]);
    assert.deepEqual(results.sort(), [false, true]);
    assert.equal(m.listActiveLoops().length, 1);
  });

  it('moves a regular legacy session-state.json and its sibling dirs into loops/<new id>', async () => {
    const m = manager();
    m.ensureBaseDir();
    const legacy = {
      version: '1.0.0',
      loopId: 'old-single-loop',
      objective: 'Legacy task',
      completionCriteria: 'done',
      status: 'running',
      maxIterations: 5,
      currentIteration: 3,
      startTime: '2024-01-02T03:04:05.678Z',
      currentPid: process.pid,
      custom: { kept: true },
    };
    fs.writeFileSync(path.join(m.baseDir, 'session-state.json'), JSON.stringify(legacy, null, 2));
    fs.mkdirSync(path.join(m.baseDir, 'iterations', '001'), { recursive: true });
    fs.writeFileSync(path.join(m.baseDir, 'iterations', '001', 'notes.txt'), 'iteration one');
    fs.mkdirSync(path.join(m.baseDir, 'prompts'));
    fs.writeFileSync(path.join(m.baseDir, 'prompts', '001-prompt.md'), '# prompt');

    const p = m.migrateLegacyState();
    assert.ok(p instanceof Promise);
    assert.equal(await p, true);

    const reg = m.loadRegistry();
    assert.equal(reg.active_loops.length, 1);
    const entry = reg.active_loops[0];
    const id = entry.loop_id;
    assert.match(id, /^ralph-legacy-task-[0-9a-f]{8}$/);
    assert.deepEqual(entry.tags, ['migrated']);
    assert.equal(entry.task_summary, 'Legacy task');
    assert.equal(reg.total_active, 1);

    const dir = path.join(m.loopsDir, id);
    assert.equal(fs.readFileSync(path.join(dir, 'iterations', '001', 'notes.txt'), 'utf8'), 'iteration one');
    assert.equal(fs.readFileSync(path.join(dir, 'prompts', '001-prompt.md'), 'utf8'), '# prompt');
    assert.equal(fs.existsSync(path.join(m.baseDir, 'iterations')), false, 'sibling dir moved, not copied');
    assert.equal(fs.existsSync(path.join(m.baseDir, 'prompts')), false);

    const state = m.getLoop(id);
    assert.equal(state.loopId, id);
    assert.equal(state.objective, 'Legacy task');
    assert.equal(state.currentIteration, 3);
    assert.deepEqual(state.custom, { kept: true });

    const link = path.join(m.baseDir, 'session-state.json');
    assert.ok(fs.lstatSync(link).isSymbolicLink(), 'legacy path is now the symlink');
    assert.equal(fs.readlinkSync(link), path.join('loops', id, 'session-state.json'));
    assert.deepEqual(readJson(link), state);
    assert.equal(lstatOrNull(m.lockPath), null);

    // already a symlink → false, nothing changes
    const before = snapshot(m.baseDir);
    assert.equal(await m.migrateLegacyState(), false);
    assert.deepEqual(snapshot(m.baseDir), before);
  });

  it('returns false when there is no legacy state', async () => {
    const m = manager();
    assert.equal(await m.migrateLegacyState(), false);
    assert.deepEqual(m.listActiveLoops(), []);
    assert.deepEqual(fs.readdirSync(m.loopsDir), []);
  });
});

describe('path helpers', () => {
  it('getLoopDir / getIterationDir / getPromptPath / getOutputPaths pad to 3', () => {
    const m = manager();
    const id = 'ralph-x-0123abcd';
    const dir = path.join(m.loopsDir, id);
    assert.equal(m.getLoopDir(id), dir);
    assert.equal(m.getIterationDir(id, 7), path.join(dir, 'iterations', '007'));
    assert.equal(m.getIterationDir(id, 42), path.join(dir, 'iterations', '042'));
    assert.equal(m.getIterationDir(id, 123), path.join(dir, 'iterations', '123'));
    assert.equal(m.getIterationDir(id, 1234), path.join(dir, 'iterations', '1234'));
    assert.equal(m.getPromptPath(id, 1), path.join(dir, 'prompts', '001-prompt.md'));
    assert.equal(m.getPromptPath(id, 10), path.join(dir, 'prompts', '010-prompt.md'));
    assert.deepEqual(m.getOutputPaths(id, 3), {
      stdout: path.join(dir, 'outputs', '003-stdout.log'),
      stderr: path.join(dir, 'outputs', '003-stderr.log'),
    });
    assert.deepEqual(fs.readdirSync(m.projectRoot), [], 'pure: nothing created');
  });
});

describe('corrupted registry.json (SPEC §10)', () => {
  for (const [label, content] of [['garbage', 'this is not json {{{'], ['truncated', '{\n  "version": "2.0.0",\n  "active_loops": [\n    {"loop_id": "a"']]) {
    it(`${label}: loadRegistry throws naming the file, createLoop rejects the same way, file unchanged`, async () => {
      const m = manager();
      m.ensureBaseDir();
      fs.writeFileSync(m.registryPath, content);
      const check = (err) => {
        assert.match(err.message, /^Failed to load registry: /);
        assert.ok(err.message.includes(m.registryPath), `names the file: ${err.message}`);
        return true;
      };
      assert.throws(() => m.loadRegistry(), check);
      assert.throws(() => m.listActiveLoops(), check);
      await assert.rejects(m.createLoop({ objective: 'blocked' }), check);
      assert.equal(fs.readFileSync(m.registryPath, 'utf8'), content, 'left byte-for-byte');
      assert.deepEqual(fs.readdirSync(m.loopsDir), [], 'no loop dir created');
      assert.equal(lstatOrNull(m.lockPath), null, 'lock released after the failure');
    });
  }
});

describe('wrong argument types (SPEC §10, issue 10: a TypeError only where the original crashes)', () => {
  it('sync members throw TypeError ERR_INVALID_ARG_TYPE naming the argument', () => {
    assertArgTypeError(() => new ExternalMultiLoopStateManager(123), 'projectRoot');
    assertArgTypeError(() => new ExternalMultiLoopStateManager(), 'projectRoot');
    const root = tmpRoot();
    const m = manager(root);
    assertArgTypeError(() => m.generateLoopId(5), 'task');
    assertArgTypeError(() => m.getLoop(null), 'loopId');
    assertArgTypeError(() => m.updateLoop(42, {}), 'loopId');
    assertArgTypeError(() => m.saveRegistry(null), 'registry');
    assertArgTypeError(() => m.saveRegistry({}), 'registry.active_loops');
    assertArgTypeError(() => m.getLoopDir(undefined), 'loopId');
    assert.deepEqual(fs.readdirSync(root), [], 'nothing written by refused calls');
  });

  it('async members reject (not throw) with TypeError naming the argument', async () => {
    const root = tmpRoot();
    const m = manager(root);
    await assertArgTypeRejection(() => m.createLoop(null), 'config');
    await assertArgTypeRejection(() => m.createLoop(), 'config');
    await assertArgTypeRejection(() => m.createLoop({}), 'config.objective');
    await assertArgTypeRejection(() => m.createLoop({ objective: 'x' }, null), 'options');
    assert.deepEqual(fs.readdirSync(root), [], 'nothing written by calls refused before the lock');
    // the original crashes on these once it holds the lock and has loaded the registry
    await assertArgTypeRejection(() => m.createLoop({ objective: 'x', loopId: 5 }), 'config.loopId');
    await assertArgTypeRejection(() => m.archiveLoop(undefined), 'loopId');
    assert.deepEqual(fs.readdirSync(m.loopsDir), [], 'no loop directory made');
    assert.equal(lstatOrNull(m.lockPath), null, 'the lock is released');
  });

  it('values plain JS handles get what the original gives them', async () => {
    const root = tmpRoot();
    const m = manager(root);
    assert.equal(m.calculateCommunicationPaths('4'), 6);
    assert.ok(Number.isNaN(m.calculateCommunicationPaths(undefined)));
    assert.match(m.generateLoopId(new String('Boxed Task')), /^ralph-boxed-task-[0-9a-f]{8}$/);
    assert.equal(m.releaseLock(1), undefined, 'no lock: nothing to do');
    assert.throws(() => m.updateLoop('x', 'notobject'), msg(/^Loop not found: x/));
    // options that are not an object destructure to no force
    const { loopId } = await m.createLoop({ objective: 'x' }, 'force');
    assert.match(loopId, /^ralph-x-[0-9a-f]{8}$/);
    // a loopId that is not a string is written into the lock file as it is
    const lock = await m.acquireLock(7);
    assert.equal(lock.acquired, true);
    assert.equal(readJson(m.lockPath).loopId, 7);
    m.releaseLock('7');
    assert.ok(lstatOrNull(m.lockPath), 'another loopId (the string) leaves it');
    m.releaseLock(7);
    assert.equal(lstatOrNull(m.lockPath), null);
    // updateLoopPid of a string that names no loop: Loop not found, not a type error
    await assert.rejects(m.updateLoopPid('x', 'y'), msg(/^Loop not found: x/));
    // saveRegistry with an active_loops that is not an array: counted as JS counts it
    m.saveRegistry({ active_loops: 'ab' });
    assert.equal(readJson(m.registryPath).total_active, 2);
    m.saveRegistry({ active_loops: 3 });
    assert.ok(!('total_active' in readJson(m.registryPath)), '(3).length is undefined: left out');
  });
});

describe('loop ids that would escape loops/ (SPEC §10)', () => {
  it('getLoop / updateLoop / archiveLoop refuse ../x, a/b and "" and touch nothing', async () => {
    const root = tmpRoot();
    const m = manager(root);
    m.loadRegistry();
    // plant readable state where each bad id would resolve if joined blindly
    const decoy = JSON.stringify({ loopId: 'decoy', status: 'running', currentPid: process.pid }, null, 2);
    fs.mkdirSync(path.join(m.baseDir, 'x'));
    fs.writeFileSync(path.join(m.baseDir, 'x', 'session-state.json'), decoy); // loops/../x
    fs.mkdirSync(path.join(m.loopsDir, 'a', 'b'), { recursive: true });
    fs.writeFileSync(path.join(m.loopsDir, 'a', 'b', 'session-state.json'), decoy); // loops/a/b
    fs.writeFileSync(path.join(m.loopsDir, 'session-state.json'), decoy); // loops/ + ''
    const before = snapshot(root);

    for (const bad of ['../x', 'a/b', '']) {
      assert.throws(() => m.getLoop(bad), Error, `getLoop(${JSON.stringify(bad)})`);
      assert.throws(() => m.updateLoop(bad, { status: 'hacked', x: 1 }), Error, `updateLoop(${JSON.stringify(bad)})`);
      assert.throws(() => m.updateLoop(bad, { x: 1 }), Error, `updateLoop(${JSON.stringify(bad)}) without status`);
      await assert.rejects(m.archiveLoop(bad), Error, `archiveLoop(${JSON.stringify(bad)})`);
      await assert.rejects(m.updateLoopPid(bad, 1), Error, `updateLoopPid(${JSON.stringify(bad)})`);
      assert.equal(m.isLoopAlive(bad), false, `isLoopAlive(${JSON.stringify(bad)})`);
    }
    assert.deepEqual(snapshot(root), before, 'nothing inside or outside loops/ changed');
    assert.deepEqual(fs.readdirSync(m.archiveDir), []);
  });
});

// ---------------------------------------------------------------------------
// Issue 10: where the original returns, return the same; throw only where it throws.

const statePathOf = (m, id) => path.join(m.loopsDir, id, 'session-state.json');
const stateText = (m, id) => fs.readFileSync(statePathOf(m, id), 'utf8');
const FRESH_REGISTRY_KEYS = ['version', 'max_concurrent_loops', 'updated_at', 'active_loops', 'total_active', 'total_completed', 'total_aborted'];

describe('updateLoopPid(loopId, null) clears the pid (issue 10, item 1)', () => {
  it('stores null as currentPid and as the registry pid; the loop is then not alive nor crashed', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'clear my pid' });
    assert.equal(await m.updateLoopPid(loopId, null), undefined);
    const state = m.getLoop(loopId);
    assert.ok('currentPid' in state);
    assert.equal(state.currentPid, null);
    assert.match(stateText(m, loopId), /"currentPid": null,/);
    const [entry] = m.listActiveLoops();
    assert.ok('pid' in entry);
    assert.equal(entry.pid, null);
    assert.equal(m.isLoopAlive(loopId), false);
    assert.deepEqual(m.detectCrashedLoops(), []);
    assert.equal(fs.readFileSync(m.registryPath, 'utf8'), JSON.stringify(m.loadRegistry(), null, 2));
    assert.equal(lstatOrNull(m.lockPath), null);
  });

  it('a pid of another type is stored as given; undefined removes the field', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'odd pids' });
    await m.updateLoopPid(loopId, String(process.pid));
    assert.equal(m.getLoop(loopId).currentPid, String(process.pid));
    assert.equal(m.listActiveLoops()[0].pid, String(process.pid));
    assert.equal(m.isLoopAlive(loopId), true, 'process.kill takes the string as that pid');
    await m.updateLoopPid(loopId, undefined);
    assert.ok(!('currentPid' in m.getLoop(loopId)), 'JSON.stringify drops an undefined currentPid');
    assert.ok(!('pid' in m.listActiveLoops()[0]));
    assert.equal(m.isLoopAlive(loopId), false);
  });
});

describe('updateLoop on a state that is not an object (issue 10, item 3)', () => {
  for (const [label, content, spread] of [
    ['an array', [1, 'two'], { 0: 1, 1: 'two' }],
    ['a string', 'ab', { 0: 'a', 1: 'b' }],
    ['null', null, {}],
    ['a number', 42, {}],
  ]) {
    it(`${label}: merged as {...state, ...changes, lastUpdate} and written`, async () => {
      const m = manager();
      const { loopId } = await m.createLoop({ objective: 'odd state' });
      fs.writeFileSync(statePathOf(m, loopId), JSON.stringify(content));
      const updated = m.updateLoop(loopId, { note: 'x' });
      assert.deepEqual(Object.keys(updated), [...Object.keys(spread), 'note', 'lastUpdate']);
      assert.deepEqual({ ...updated, lastUpdate: 'T' }, { ...spread, note: 'x', lastUpdate: 'T' });
      assert.match(updated.lastUpdate, ISO);
      assert.equal(stateText(m, loopId), JSON.stringify(updated, null, 2));
      // and with a status, mirrored as usual
      const again = m.updateLoop(loopId, { status: 'paused' });
      assert.equal(again.status, 'paused');
      assert.equal(m.listActiveLoops()[0].status, 'paused');
    });
  }
});

describe('updateLoop with undefined values (issue 10, items 8 and 15)', () => {
  it('an undefined change removes the field on disk; the result holds the key; NaN and Infinity come back as given', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'drop fields', completionCriteria: 'done' });
    const updated = m.updateLoop(loopId, { completionCriteria: undefined, extra: undefined, n: NaN, big: -Infinity, nested: { u: undefined, v: 1 } });
    assert.ok('completionCriteria' in updated && updated.completionCriteria === undefined);
    assert.ok('extra' in updated && updated.extra === undefined);
    assert.ok(Number.isNaN(updated.n));
    assert.equal(updated.big, -Infinity);
    assert.deepEqual(Object.keys(updated.nested), ['u', 'v']);
    const onDisk = m.getLoop(loopId);
    assert.ok(!('completionCriteria' in onDisk), 'removed from the file');
    assert.ok(!('extra' in onDisk));
    assert.equal(onDisk.n, null);
    assert.equal(onDisk.big, null);
    assert.deepEqual(onDisk.nested, { v: 1 });
    assert.equal(stateText(m, loopId), JSON.stringify(updated, null, 2));
  });

  it('the result is built from the caller\'s own values (same objects, not re-parsed copies)', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'own values' });
    const custom = { a: [1, 2] };
    const updated = m.updateLoop(loopId, { custom });
    assert.equal(updated.custom, custom);
  });
});

describe('updateLoop mirrors only a truthy status (issue 10, item 9)', () => {
  for (const status of [null, '', 0, false]) {
    it(`status ${JSON.stringify(status)}: written to the state, not to the registry, and needs no lock`, async () => {
      const m = manager();
      const { loopId } = await m.createLoop({ objective: 'falsy status' });
      const registryText = fs.readFileSync(m.registryPath, 'utf8');
      writeLegacyLock(m, { pid: other.pid });
      m.maxLockAttempts = 1;
      const updated = m.updateLoop(loopId, { status });
      assert.equal(updated.status, status);
      assert.equal(m.getLoop(loopId).status, status);
      assert.equal(fs.readFileSync(m.registryPath, 'utf8'), registryText, 'registry untouched');
      fs.rmSync(m.lockPath);
      assert.equal(m.listActiveLoops()[0].status, 'running');
    });
  }

  it('a truthy status of another type is mirrored as given', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'truthy status' });
    m.updateLoop(loopId, { status: 3 });
    assert.equal(m.listActiveLoops()[0].status, 3);
    m.updateLoop(loopId, { status: { phase: 'x' } });
    assert.deepEqual(m.listActiveLoops()[0].status, { phase: 'x' });
  });

  it('changes that are null: the state is merged and written, then reading changes.status fails as in the original', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'null changes' });
    const before = m.getLoop(loopId).lastUpdate;
    await new Promise((r) => setTimeout(r, 3));
    assert.throws(() => m.updateLoop(loopId, null), TypeError);
    assert.notEqual(m.getLoop(loopId).lastUpdate, before, 'lastUpdate stamped before the failure');
  });
});

describe('ops that load the registry create it, even when they then fail (issue 10, item 14)', () => {
  const assertFreshRegistry = (m) => {
    for (const d of [m.baseDir, m.loopsDir, m.archiveDir, m.sharedDir]) assert.ok(fs.statSync(d).isDirectory(), d);
    const registry = readJson(m.registryPath);
    assert.deepEqual(Object.keys(registry), FRESH_REGISTRY_KEYS);
    assert.deepEqual(registry.active_loops, []);
  };

  it('archiveLoop of a loop that does not exist, in a fresh project', async () => {
    const m = manager();
    await assert.rejects(m.archiveLoop('nope'), msg(/^Loop directory not found: nope/));
    assertFreshRegistry(m);
    assert.equal(lstatOrNull(m.lockPath), null);
  });

  it('listActiveLoops and detectCrashedLoops in a fresh project', () => {
    let m = manager();
    assert.deepEqual(m.listActiveLoops(), []);
    assertFreshRegistry(m);
    m = manager();
    assert.deepEqual(m.detectCrashedLoops(), []);
    assertFreshRegistry(m);
  });

  it('createLoop refused for its loop id, in a fresh project', async () => {
    const m = manager();
    await assert.rejects(m.createLoop({ objective: 'x', loopId: '../evil' }), Error);
    assertFreshRegistry(m);
    assert.deepEqual(fs.readdirSync(m.loopsDir), []);
  });

  it('updateLoop mirroring a status into a registry that has gone; updateLoopPid likewise', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'registry gone' });
    fs.rmSync(m.registryPath);
    m.updateLoop(loopId, { note: 'no status' });
    assert.equal(lstatOrNull(m.registryPath), null, 'no status: the registry is not loaded');
    m.updateLoop(loopId, { status: 'paused' });
    assertFreshRegistry(m);
    assert.equal(m.getLoop(loopId).status, 'paused');
    fs.rmSync(m.registryPath);
    await m.updateLoopPid(loopId, 1);
    assertFreshRegistry(m);
  });

  it('ops that fail before loading it leave no registry', async () => {
    const m = manager();
    assert.throws(() => m.getLoop('nope'), msg(/^Loop not found: nope/));
    assert.throws(() => m.updateLoop('nope', { status: 'x' }), msg(/^Loop not found: nope/));
    assert.equal(m.isLoopAlive('nope'), false);
    assert.deepEqual(fs.readdirSync(m.projectRoot), []);
    await assert.rejects(m.updateLoopPid('nope', 1), msg(/^Loop not found: nope/));
    assert.equal(lstatOrNull(m.registryPath), null);
    m.ensureBaseDir();
    fs.writeFileSync(path.join(m.baseDir, 'session-state.json'), 'another tool');
    m.updateLegacySymlink();
    assert.equal(lstatOrNull(m.registryPath), null, 'a regular legacy file: returns before loading');
  });
});

describe('lone surrogates are kept byte for byte (issue 10, item 13)', () => {
  it('an objective ending in half an emoji: session-state.json and registry.json hold the \\ud83d escape', async () => {
    const m = manager();
    const { loopId, state } = await m.createLoop({ objective: 'x\ud83d' });
    assert.equal(state.objective, 'x\ud83d');
    const text = stateText(m, loopId);
    assert.equal(text, JSON.stringify(state, null, 2));
    assert.ok(text.includes('"objective": "x\\ud83d"'), text);
    const registryText = fs.readFileSync(m.registryPath, 'utf8');
    assert.ok(registryText.includes('"task_summary": "x\\ud83d"'), registryText);
    assert.equal(m.getLoop(loopId).objective, 'x\ud83d');
    assert.equal(m.listActiveLoops()[0].task_summary, 'x\ud83d');
  });

  it('a 201-unit objective whose slice(0, 200) cuts an emoji: task_summary keeps the high half', async () => {
    const m = manager();
    const objective = `${'a'.repeat(199)}😀`;
    assert.equal(objective.length, 201);
    await m.createLoop({ objective });
    const [entry] = m.listActiveLoops();
    assert.equal(entry.task_summary, objective.slice(0, 200));
    assert.equal(entry.task_summary, `${'a'.repeat(199)}\ud83d`);
    assert.ok(fs.readFileSync(m.registryPath, 'utf8').includes(`"task_summary": "${'a'.repeat(199)}\\ud83d"`));
  });

  it('a registry and a state written by the original with lone surrogates survive a read-modify-write', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'rmw' });
    const registry = m.loadRegistry();
    registry.active_loops[0].note = '\udc00 low first';
    fs.writeFileSync(m.registryPath, JSON.stringify(registry, null, 2));
    const state = m.getLoop(loopId);
    state.learned = 'cut \ud83d';
    fs.writeFileSync(statePathOf(m, loopId), JSON.stringify(state, null, 2));
    const updated = m.updateLoop(loopId, { status: 'paused' });
    assert.equal(updated.learned, 'cut \ud83d');
    assert.ok(stateText(m, loopId).includes('"learned": "cut \\ud83d"'));
    assert.equal(m.listActiveLoops()[0].note, '\udc00 low first');
    assert.ok(fs.readFileSync(m.registryPath, 'utf8').includes('"note": "\\udc00 low first"'));
  });
});

describe('results are the values the original holds in memory (issue 10, item 15)', () => {
  it('createLoop: an undefined field stays a present key, NaN and Infinity stay; defaults follow ||', async () => {
    const m = manager();
    const { state } = await m.createLoop({
      objective: 'in memory',
      completionCriteria: undefined,
      maxIterations: NaN,
      budgetPerIteration: 0,
      timeoutMinutes: Infinity,
      model: '',
      giteaIntegration: undefined,
    });
    assert.ok('completionCriteria' in state && state.completionCriteria === undefined);
    assert.equal(state.maxIterations, 10, 'NaN || 10');
    assert.equal(state.config.budgetPerIteration, 2, '0 || 2.0');
    assert.equal(state.config.timeoutMinutes, Infinity);
    assert.equal(state.config.model, 'opus');
    assert.equal(state.giteaIntegration, null);
    const onDisk = m.getLoop(state.loopId);
    assert.ok(!('completionCriteria' in onDisk));
    assert.equal(onDisk.config.timeoutMinutes, null, 'JSON.stringify writes Infinity as null');
    const [entry] = m.listActiveLoops();
    assert.ok(!('completion_criteria' in entry));
    assert.equal(entry.max_iterations, 10);

    const second = await m.createLoop({ objective: 'nan criteria', completionCriteria: NaN, tags: ['t'] });
    assert.ok(Number.isNaN(second.state.completionCriteria));
    assert.equal(m.getLoop(second.loopId).completionCriteria, null);
  });

  it('createLoop: the state holds the caller\'s own objects', async () => {
    const m = manager();
    const giteaIntegration = { repo: 'org/repo' };
    const completionCriteria = ['tests pass'];
    const { state } = await m.createLoop({ objective: 'own objects', giteaIntegration, completionCriteria });
    assert.equal(state.giteaIntegration, giteaIntegration);
    assert.equal(state.completionCriteria, completionCriteria);
  });

  it('listActiveLoops on a registry without active_loops is undefined', () => {
    const m = manager();
    m.ensureBaseDir();
    fs.writeFileSync(m.registryPath, JSON.stringify({ version: '2.0.0' }, null, 2));
    assert.equal(m.listActiveLoops(), undefined);
  });

  it('documents are read as JSON.parse reads them: -1e400 is -Infinity, deep nesting works', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'parse like V8' });
    const deep = `${'['.repeat(300)}1${']'.repeat(300)}`;
    const text = stateText(m, loopId).replace(/\n}$/, `,\n  "low": -1e400,\n  "deep": ${deep}\n}`);
    fs.writeFileSync(statePathOf(m, loopId), text);
    const state = m.getLoop(loopId);
    assert.equal(state.low, -Infinity);
    let d = state.deep;
    for (let i = 0; i < 300; i++) d = d[0];
    assert.equal(d, 1);
    const registry = m.loadRegistry();
    fs.writeFileSync(m.registryPath, JSON.stringify(registry, null, 2).replace(/\n}$/, ',\n  "big": 1e400\n}'));
    assert.equal(m.loadRegistry().big, Infinity);
    const updated = m.updateLoop(loopId, { status: 'paused' });
    assert.equal(updated.low, -Infinity);
    assert.equal(readJson(m.registryPath).big, null, 'saved as JSON.stringify saves it');
  });

  it('detectCrashedLoops returns the registry entries as parsed', () => {
    const m = manager();
    const registry = m.loadRegistry();
    registry.active_loops = [{ loop_id: 'a', status: 'running', pid: deadPid(), big: 1e308, list: [null, { x: '\ud83d' }] }];
    m.saveRegistry(registry);
    assert.deepEqual(m.detectCrashedLoops(), registry.active_loops);
  });
});

describe('maxLockAttempts is read as JS compares it', () => {
  it('a numeric string counts; null means the default', async () => {
    const m = manager();
    m.ensureBaseDir();
    writeLegacyLock(m, { pid: other.pid });
    m.maxLockAttempts = '2';
    await assert.rejects(m.acquireLock('x'), msg(/^Failed to acquire lock after 2 attempts/));
    fs.rmSync(m.lockPath);
    m.maxLockAttempts = null;
    const { acquired } = await m.acquireLock('x');
    assert.equal(acquired, true);
    m.releaseLock('x');
  });
});

describe('a synchronous updateLoop while an async op of this thread holds the lock', () => {
  it('a hold taken by acquireLock on one thread is not shared with another thread of the process', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'threads' });
    await m.acquireLock('main thread');
    const { Worker } = await import('node:worker_threads');
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      const { ExternalMultiLoopStateManager } = require(workerData.pkg);
      const m = new ExternalMultiLoopStateManager(workerData.root);
      m.maxLockAttempts = 2;
      try { m.updateLoop(workerData.loopId, { status: 'from worker' }); parentPort.postMessage('updated'); }
      catch (e) { parentPort.postMessage(e.message); }
    `;
    const worker = new Worker(code, { eval: true, workerData: { pkg: path.join(PKG, 'index.js'), root: m.projectRoot, loopId } });
    const answer = await new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
    await worker.terminate();
    assert.match(answer, /^Failed to acquire lock after 2 attempts/);
    assert.equal(m.listActiveLoops()[0].status, 'running');
    // this thread's own updateLoop goes ahead under its hold
    m.updateLoop(loopId, { status: 'from main' });
    assert.equal(m.listActiveLoops()[0].status, 'from main');
    m.releaseLock('main thread');
    assert.equal(lstatOrNull(m.lockPath), null);
  });

  it('goes ahead under that hold instead of waiting for it (the hold cannot end before it returns)', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'interleaved' });
    m.maxLockAttempts = 20;
    for (let i = 0; i < 20; i++) {
      const pending = m.updateLoopPid(loopId, 1000 + i);
      const t0 = performance.now();
      m.updateLoop(loopId, { status: `s${i}` });
      assert.ok(performance.now() - t0 < 1000, 'did not wait the attempts out');
      await pending;
      const state = m.getLoop(loopId);
      assert.equal(state.status, `s${i}`);
      assert.equal(state.currentPid, 1000 + i);
    }
    const [entry] = m.listActiveLoops();
    assert.equal(entry.status, 's19');
    assert.equal(entry.pid, 1019);
    assert.equal(lstatOrNull(m.lockPath), null);
  });
});

describe('file-system errors keep Node\'s shape (issue 10)', () => {
  const ERRNO = os.constants.errno;
  /** A validator: an Error with fs's code, errno and syscall (and path when given), message matching `re`. */
  const fsError = (code, syscall, { path: where, message } = {}) => (err) => {
    assert.ok(err instanceof Error, `expected an Error, got ${err}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.errno, -ERRNO[code], err.message);
    assert.equal(err.syscall, syscall, err.message);
    if (where !== undefined) assert.equal(err.path, where, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };

  it('a registry path that is a directory: EISDIR on read (under "Failed to load registry") and on write', async () => {
    const m = manager();
    m.ensureBaseDir();
    fs.mkdirSync(m.registryPath);
    const onRead = fsError('EISDIR', 'read', { message: /^Failed to load registry: .*registry\.json: EISDIR: illegal operation on a directory, read/ });
    assert.throws(() => m.loadRegistry(), onRead);
    assert.throws(() => m.listActiveLoops(), onRead);
    await assert.rejects(m.createLoop({ objective: 'blocked' }), onRead);
    assert.equal(lstatOrNull(m.lockPath), null, 'lock released after the failure');
    assert.throws(
      () => m.saveRegistry({ active_loops: [] }),
      fsError('EISDIR', 'rename', { path: m.registryPath, message: /^EISDIR: illegal operation on a directory, rename '/ }),
    );
    assert.deepEqual(fs.readdirSync(m.baseDir).filter((n) => n.endsWith('.tmp')), [], 'no temp file left');
  });

  it('a state path that is a directory: EISDIR under "Failed to load loop state"', async () => {
    const m = manager();
    const { loopId } = await m.createLoop({ objective: 'state is a dir' });
    fs.rmSync(statePathOf(m, loopId));
    fs.mkdirSync(statePathOf(m, loopId));
    const onRead = fsError('EISDIR', 'read', { message: /^Failed to load loop state: .*session-state\.json: EISDIR: / });
    assert.throws(() => m.getLoop(loopId), onRead);
    assert.throws(() => m.updateLoop(loopId, { note: 1 }), onRead);
    await assert.rejects(m.updateLoopPid(loopId, 1), onRead);
    assert.equal(m.isLoopAlive(loopId), false);
  });

  it('a lock path that is a directory: acquireLock rejects EISDIR', async () => {
    const m = manager();
    m.ensureBaseDir();
    fs.mkdirSync(m.lockPath);
    await assert.rejects(m.acquireLock('x'), fsError('EISDIR', 'read', { path: m.lockPath }));
    await assert.rejects(m.archiveLoop('x'), fsError('EISDIR', 'read'));
  });

  it('a base dir under a regular file: ENOTDIR from mkdir, as fs.mkdirSync gives it', async () => {
    const file = path.join(tmpRoot(), 'a-file');
    fs.writeFileSync(file, 'not a directory');
    const m = manager(file);
    const enotdir = fsError('ENOTDIR', 'mkdir', { path: m.baseDir, message: /^ENOTDIR: not a directory, mkdir '/ });
    assert.throws(() => m.ensureBaseDir(), enotdir);
    assert.throws(() => m.loadRegistry(), enotdir);
    await assert.rejects(m.createLoop({ objective: 'x' }), enotdir);
    await assert.rejects(m.acquireLock('x'), enotdir);
    await assert.rejects(m.migrateLegacyState(), enotdir);
    assert.equal(fs.readFileSync(file, 'utf8'), 'not a directory');

    // the base dir itself a regular file: mkdir of loops/ below it fails the same way
    const root = tmpRoot();
    fs.mkdirSync(path.join(root, '.aiwg'));
    fs.writeFileSync(path.join(root, '.aiwg', 'ralph-external'), 'x');
    const n = manager(root);
    assert.throws(() => n.ensureBaseDir(), fsError('ENOTDIR', 'mkdir', { path: n.loopsDir }));
  });

  const asNobody = process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
  it('a directory the caller may not write: EACCES with open / mkdir and the path', { skip: !asNobody && 'needs root and setpriv' }, async () => {
    const root = tmpRoot();
    fs.chmodSync(root, 0o755);
    const m = manager(root);
    const { loopId } = await m.createLoop({ objective: 'owned by root' });
    const empty = tmpRoot();
    fs.chmodSync(empty, 0o755);
    const script = `
      const { ExternalMultiLoopStateManager } = require(${JSON.stringify(path.join(PKG, 'index.js'))});
      const shape = (e) => ({ message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path });
      const grab = async (f) => { try { await f(); return null; } catch (e) { return shape(e); } };
      (async () => {
        const m = new ExternalMultiLoopStateManager(${JSON.stringify(root)});
        m.maxLockAttempts = 3;
        const out = {
          read: await grab(() => m.listActiveLoops()),
          save: await grab(() => m.saveRegistry(m.loadRegistry())),
          update: await grab(() => m.updateLoop(${JSON.stringify(loopId)}, { note: 'x' })),
          lock: await grab(() => m.acquireLock('x')),
          create: await grab(() => m.createLoop({ objective: 'y' })),
          mkdir: await grab(() => new ExternalMultiLoopStateManager(${JSON.stringify(empty)}).ensureBaseDir()),
        };
        process.stdout.write(JSON.stringify(out));
      })();
    `;
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.read, null, 'reading is allowed');
    const check = (got, syscall, where) => {
      assert.ok(got, `expected an error for ${where}`);
      assert.equal(got.code, 'EACCES', got.message);
      assert.equal(got.errno, -ERRNO.EACCES);
      assert.equal(got.syscall, syscall, got.message);
      assert.equal(got.path, where);
      assert.equal(got.message, `EACCES: permission denied, ${syscall} '${where}'`);
    };
    check(out.save, 'open', m.registryPath);
    check(out.update, 'open', path.join(m.loopsDir, loopId, 'session-state.json'));
    check(out.lock, 'open', m.lockPath);
    check(out.create, 'open', m.lockPath);
    check(out.mkdir, 'mkdir', path.join(empty, '.aiwg', 'ralph-external'));
    assert.equal(m.getLoop(loopId).note, undefined, 'nothing changed');
  });
});

describe('createLoop with a loop id already registered', () => {
  it('adds a second entry, as the original pushes one', async () => {
    const m = manager();
    await m.createLoop({ objective: 'one', loopId: 'same' }, { force: true });
    await m.createLoop({ objective: 'two', loopId: 'same' }, { force: true });
    const entries = m.listActiveLoops();
    assert.deepEqual(entries.map((e) => [e.loop_id, e.task_summary]), [['same', 'one'], ['same', 'two']]);
  });
});
