// Multi-process tests of the registry lock and the loop registry
// (SPEC §7, §9.9, §10): real child processes, real signals, real files.
//
// Children:
//   helpers/registry-worker.mjs     the native ExternalMultiLoopStateManager, driven over IPC
//   helpers/legacy-lock-holder.mjs  the original JS lock protocol, in plain Node
//
// Every child is SIGKILLed in teardown and every temp dir removed.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExternalMultiLoopStateManager } from '../index.mjs';
import { within } from './helpers/waiting.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORKER = path.join(here, 'helpers', 'registry-worker.mjs');
const LEGACY = path.join(here, 'helpers', 'legacy-lock-holder.mjs');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A child process whose messages (IPC) or JSON stdout lines are collected as events. */
class Proc {
  constructor(child, kind) {
    this.child = child;
    this.pid = child.pid;
    this.kind = kind;
    this.events = [];
    this.consumed = new Set();
    this.stderr = '';
    this.exit = null;
    this.listeners = new Set();
    child.stderr?.on('data', (d) => {
      if (this.stderr.length < 20000) this.stderr += d;
    });
    if (kind === 'ipc') {
      child.on('message', (m) => this.push(m));
      child.stdout?.resume();
    } else if (child.stdout) {
      let buf = '';
      child.stdout.on('data', (d) => {
        buf += d;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.trim()) continue;
          try {
            this.push(JSON.parse(line));
          } catch {
            this.push({ event: 'unparsed', line });
          }
        }
      });
    }
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        this.exit = { code, signal };
        this.notify();
        resolve(this.exit);
      });
    });
  }

  push(m) {
    this.events.push(m);
    this.notify();
  }

  notify() {
    for (const l of [...this.listeners]) l();
  }

  /** The next not-yet-taken event whose `type` (IPC) or `event` (stdout) is `name`. */
  take(name, timeoutMs = 10000) {
    const key = this.kind === 'ipc' ? 'type' : 'event';
    return new Promise((resolve, reject) => {
      let timer;
      const done = (fn, v) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        fn(v);
      };
      const check = () => {
        const i = this.events.findIndex((e, idx) => !this.consumed.has(idx) && e[key] === name);
        if (i >= 0) {
          this.consumed.add(i);
          done(resolve, this.events[i]);
        } else if (this.exit) {
          done(reject, new Error(`pid ${this.pid} exited (${JSON.stringify(this.exit)}) before '${name}'; ` +
            `events ${JSON.stringify(this.events)}; stderr: ${this.stderr}`));
        }
      };
      timer = setTimeout(() => done(reject, new Error(
        `timed out after ${timeoutMs} ms waiting for '${name}' from pid ${this.pid}; ` +
        `events ${JSON.stringify(this.events)}; stderr: ${this.stderr}`)), timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  /** Whether an event named `name` arrived (taken or not). */
  has(name) {
    const key = this.kind === 'ipc' ? 'type' : 'event';
    return this.events.some((e) => e[key] === name);
  }

  send(msg) {
    this.child.send(msg);
  }

  kill(signal = 'SIGKILL') {
    if (!this.exit) {
      try {
        this.child.kill(signal);
      } catch {}
    }
    return this.exited;
  }
}

/** Every child ever started, registered before anything else can throw. */
const everyChild = new Set();
function track(child) {
  everyChild.add(child);
  child.on('exit', () => everyChild.delete(child));
  return child;
}
// Last resort: nothing may outlive the suite (a live child would keep it running).
after(() => {
  for (const child of everyChild) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
});

/** Per-test resources, all released in one t.after. */
function scope(t) {
  const procs = [];
  const dirs = [];
  t.after(async () => {
    await Promise.all(procs.map((p) => within(p.kill('SIGKILL'), 5000, `kill ${p.pid}`).catch(() => {})));
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  return {
    tmp() {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-native-mp-'));
      dirs.push(d);
      return d;
    },
    async worker() {
      const child = track(fork(WORKER, [], { execArgv: [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] }));
      const p = new Proc(child, 'ipc');
      procs.push(p);
      await p.take('ready', 15000);
      return p;
    },
    legacy(lockPath, loopId, holdMs, maxAttempts = 300) {
      const child = track(spawn(process.execPath, [LEGACY, lockPath, loopId, String(holdMs), String(maxAttempts)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }));
      const p = new Proc(child, 'lines');
      procs.push(p);
      return p;
    },
    /** A plain long-lived node process (a live pid that is not a lock holder). */
    idle() {
      const child = track(spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }));
      const p = new Proc(child, 'lines');
      procs.push(p);
      return p;
    },
  };
}

/** A pid that belonged to a process that has exited and been reaped. */
async function deadPid() {
  const child = track(spawn(process.execPath, ['-e', ''], { stdio: 'ignore' }));
  const pid = child.pid;
  await within(new Promise((resolve) => child.on('exit', resolve)), 10000, 'short child exit');
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `pid ${pid} should be dead`);
  return pid;
}

function legacyRecord(pid, loopId, extra = {}) {
  const now = Date.now();
  return { pid, loopId, timestamp: now, leaseExpiry: now + 30000, fencingToken: now * 1000 + 7, ...extra };
}

function readLock(lockPath) {
  try {
    return JSON.parse(fs.readFileSync(lockPath, 'utf8'));
  } catch (e) {
    if (e.code === 'ENOENT') return null;
    throw e;
  }
}

/** Linux start identity of a pid, as the native side records it (boot id : start ticks). */
function linuxStartIdentity(pid) {
  try {
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ticks = stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/)[19];
    return `${boot}:${ticks}`;
  } catch {
    return null;
  }
}

function newRoot(s) {
  const root = s.tmp();
  const mgr = new ExternalMultiLoopStateManager(root);
  mgr.ensureBaseDir();
  return { root, mgr };
}

// ---------------------------------------------------------------------------

test('4 processes × 50 create/complete/pid/archive cycles on one registry lose nothing', { timeout: 55000 }, async (t) => {
  const s = scope(t);
  const root = s.tmp();
  const WORKERS = 4;
  const CYCLES = 50;
  const workers = await Promise.all(Array.from({ length: WORKERS }, () => s.worker()));
  const startAt = Date.now() + 300;
  for (const w of workers) w.send({ cmd: 'cycles', root, n: CYCLES, startAt });
  const results = await Promise.all(workers.map((w) => w.take('cycles-done', 50000)));

  for (const r of results) {
    assert.equal(r.ok, true, `worker ${r.pid} failed after ${r.cycles} cycles: ${r.error}`);
    assert.equal(r.cycles, CYCLES);
  }
  const allIds = results.flatMap((r) => r.loopIds);
  assert.equal(new Set(allIds).size, WORKERS * CYCLES, 'every loop id is distinct');

  const mgr = new ExternalMultiLoopStateManager(root);
  const registry = JSON.parse(fs.readFileSync(mgr.registryPath, 'utf8'));
  assert.deepEqual(registry.active_loops, []);
  assert.equal(registry.total_active, 0);
  assert.equal(registry.total_completed + registry.total_aborted, WORKERS * CYCLES,
    `completed ${registry.total_completed} + aborted ${registry.total_aborted}`);
  assert.equal(registry.total_completed, WORKERS * CYCLES,
    `every loop was completed before archiving (aborted: ${registry.total_aborted})`);

  const archived = fs.readdirSync(mgr.archiveDir);
  assert.equal(archived.length, WORKERS * CYCLES);
  assert.deepEqual(new Set(archived), new Set(allIds));
  const owner = new Map(results.flatMap((r) => r.loopIds.map((id) => [id, r.pid])));
  for (const id of archived) {
    const state = JSON.parse(fs.readFileSync(path.join(mgr.archiveDir, id, 'session-state.json'), 'utf8'));
    assert.equal(state.status, 'completed', `${id} archived as ${state.status}`);
    assert.equal(state.currentPid, owner.get(id), `${id} currentPid`);
  }
  assert.deepEqual(fs.readdirSync(mgr.loopsDir), []);

  const strays = fs.readdirSync(mgr.baseDir).filter((n) => n.endsWith('.tmp'));
  assert.deepEqual(strays, [], 'no stray temp files in baseDir');
  assert.equal(fs.existsSync(mgr.lockPath), false, 'lock released at the end');
  assert.equal(fs.existsSync(path.join(mgr.baseDir, 'session-state.json')), false,
    'no legacy symlink with zero active loops');
});

test('a waiter gets the lock promptly when the holder is SIGKILLed (death, not lease expiry)', { timeout: 30000 }, async (t) => {
  const s = scope(t);
  const { root, mgr } = newRoot(s);
  const [holder, waiter] = await Promise.all([s.worker(), s.worker()]);

  holder.send({ cmd: 'acquire', root, loopId: 'holder-loop' });
  await holder.take('acquired');
  assert.equal(readLock(mgr.lockPath)?.pid, holder.pid);

  waiter.send({ cmd: 'acquire', root, loopId: 'waiter-loop' }); // default maxLockAttempts (300)
  await waiter.take('acquiring');
  await sleep(400);
  assert.equal(waiter.has('acquired') || waiter.has('acquire-failed'), false,
    `waiter must still wait while the holder lives: ${JSON.stringify(waiter.events)}`);
  assert.equal(readLock(mgr.lockPath)?.pid, holder.pid, 'the live holder was not broken');

  const killedAt = Date.now();
  holder.child.kill('SIGKILL');
  const got = await waiter.take('acquired', 10000);
  const exit = await within(holder.exited, 5000, 'holder exit');
  assert.equal(exit.signal, 'SIGKILL');
  const latency = got.at - killedAt;
  t.diagnostic(`SIGKILL → waiter acquired: ${latency} ms`);
  assert.ok(latency < 2000, `kill → acquisition took ${latency} ms (lease is 30 s)`);
  const lock = readLock(mgr.lockPath);
  assert.equal(lock?.pid, waiter.pid, 'the lock file now names the waiter');
  assert.equal(lock?.loopId, 'waiter-loop');

  waiter.send({ cmd: 'release', root, loopId: 'waiter-loop' });
  await waiter.take('released');
  assert.equal(fs.existsSync(mgr.lockPath), false);
});

test('8 waiters racing on a stale (dead-pid) legacy lock: all succeed, never two inside', { timeout: 50000 }, async (t) => {
  const s = scope(t);
  const { root, mgr } = newRoot(s);
  const N = 8;
  const ROUNDS = 5;
  const workers = await Promise.all(Array.from({ length: N }, () => s.worker()));
  const marker = path.join(s.tmp(), 'inside');

  for (let round = 0; round < ROUNDS; round++) {
    const pid = await deadPid();
    fs.writeFileSync(mgr.lockPath, JSON.stringify(legacyRecord(pid, `dead-${round}`)));
    const startAt = Date.now() + 200;
    workers.forEach((w, i) =>
      w.send({ cmd: 'exclusive', root, loopId: `race-${round}-${i}`, marker, holdMs: 20, startAt }));
    const results = await Promise.all(workers.map((w) => w.take('exclusive-done', 20000)));

    const failures = results.filter((r) => !r.ok);
    assert.deepEqual(failures, [], `round ${round}: every waiter succeeds exclusively`);
    const spans = results.map((r) => [r.acquiredAt, r.releasedAt, r.pid]).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) {
      assert.ok(spans[i][0] >= spans[i - 1][1],
        `round ${round}: pid ${spans[i][2]} acquired at ${spans[i][0]} before pid ${spans[i - 1][2]} released at ${spans[i - 1][1]}`);
    }
    assert.equal(fs.existsSync(marker), false);
    assert.equal(fs.existsSync(mgr.lockPath), false, `round ${round}: lock released`);
  }
});

test('legacy JS holder holds → native waiter in another process acquires only after its release', { timeout: 30000 }, async (t) => {
  const s = scope(t);
  const { root, mgr } = newRoot(s);
  const native = await s.worker();
  const legacy = s.legacy(mgr.lockPath, 'legacy-loop', 1000);
  const legacyAcquired = await legacy.take('acquired');
  assert.equal(readLock(mgr.lockPath)?.pid, legacy.pid);

  native.send({ cmd: 'acquire', root, loopId: 'native-loop' });
  const waiting = await native.take('acquiring');
  const releasing = await legacy.take('releasing', 10000);
  const got = await native.take('acquired', 10000);

  assert.equal(releasing.stillOwned, true, `legacy lock was broken under it: ${releasing.content}`);
  assert.ok(waiting.at < releasing.at, 'the native waiter started while the legacy lock was held');
  assert.ok(got.at >= releasing.at,
    `native acquired at ${got.at}, before the legacy release at ${releasing.at}`);
  t.diagnostic(`legacy release → native acquired: ${got.at - releasing.at} ms`);
  assert.ok(got.at - releasing.at < 1000, `native woke ${got.at - releasing.at} ms after the release`);
  assert.ok(legacyAcquired.at <= waiting.at);
  assert.equal(readLock(mgr.lockPath)?.pid, native.pid);
  assert.equal((await within(legacy.exited, 5000, 'legacy exit')).code, 0);

  native.send({ cmd: 'release', root, loopId: 'native-loop' });
  await native.take('released');
  assert.equal(fs.existsSync(mgr.lockPath), false);
});

test('native holder holds → legacy JS waiter acquires only after the native release', { timeout: 30000 }, async (t) => {
  const s = scope(t);
  const { root, mgr } = newRoot(s);
  const native = await s.worker();
  native.send({ cmd: 'hold', root, loopId: 'native-loop', holdMs: 1000 });
  await native.take('acquired');
  const nativeLock = readLock(mgr.lockPath);
  assert.equal(nativeLock?.pid, native.pid);
  for (const k of ['pid', 'loopId', 'timestamp', 'leaseExpiry', 'fencingToken']) {
    assert.ok(k in nativeLock, `native lock file has ${k}: ${JSON.stringify(nativeLock)}`);
  }

  const legacy = s.legacy(mgr.lockPath, 'legacy-loop', 0);
  const waiting = await legacy.take('waiting', 10000);
  assert.equal(waiting.holderPid, native.pid, 'the legacy waiter sees the native holder');
  const releasing = await native.take('releasing', 10000);
  const got = await legacy.take('acquired', 10000);

  assert.ok(waiting.at < releasing.at, 'the legacy waiter started while the native lock was held');
  assert.ok(got.at >= releasing.at,
    `legacy acquired at ${got.at}, before the native release at ${releasing.at}`);
  t.diagnostic(`native release → legacy acquired: ${got.at - releasing.at} ms`);
  assert.equal(legacy.has('broke-stale'), false, `legacy judged the native lock stale: ${JSON.stringify(legacy.events)}`);
  const done = await legacy.take('releasing', 5000);
  assert.equal(done.stillOwned, true);
  assert.equal((await within(legacy.exited, 5000, 'legacy exit')).code, 0);
  assert.equal(fs.existsSync(mgr.lockPath), false);
});

test('a live legacy holder is never broken by native waiters (maxLockAttempts=5 rejects)', { timeout: 30000 }, async (t) => {
  const s = scope(t);
  const { root, mgr } = newRoot(s);
  const natives = await Promise.all([s.worker(), s.worker(), s.worker()]);
  const legacy = s.legacy(mgr.lockPath, 'legacy-loop', 2500);
  await legacy.take('acquired');
  const held = fs.readFileSync(mgr.lockPath, 'utf8');

  const started = Date.now();
  natives.forEach((w, i) => w.send({ cmd: 'acquire', root, loopId: `native-${i}`, maxLockAttempts: 5 }));
  mgr.maxLockAttempts = 5;
  await assert.rejects(within(mgr.acquireLock('native-in-process'), 5000, 'in-process acquireLock'),
    (e) => /^Failed to acquire lock after 5 attempts/.test(e.message));
  const outcomes = await Promise.all(natives.map((w) => w.take('acquire-failed', 5000)));
  for (const o of outcomes) {
    assert.match(o.message, /^Failed to acquire lock after 5 attempts/);
    assert.ok(o.at - started >= 300, `gave up after ${o.at - started} ms: too early for 5 × 100 ms`);
  }
  for (const w of natives) assert.equal(w.has('acquired'), false);
  assert.equal(fs.readFileSync(mgr.lockPath, 'utf8'), held, 'the legacy lock file is untouched');

  const releasing = await legacy.take('releasing', 5000);
  assert.equal(releasing.stillOwned, true);
  assert.equal((await within(legacy.exited, 5000, 'legacy exit')).code, 0);
});

test('pid reuse: a live pid with a mismatching processStart is stale; without processStart it is respected', { timeout: 30000 }, async (t) => {
  const s = scope(t);
  const { mgr } = newRoot(s);
  const live = s.idle();
  await sleep(100);
  assert.doesNotThrow(() => process.kill(live.pid, 0), 'the stand-in holder is alive');

  // A live pid whose recorded start identity is not that process's: a reused pid.
  fs.writeFileSync(mgr.lockPath, JSON.stringify(legacyRecord(live.pid, 'reused', { processStart: 'bogus:1' })));
  const t0 = Date.now();
  const got = await within(mgr.acquireLock('after-reuse'), 5000, 'acquireLock over a reused pid');
  assert.equal(got.acquired, true);
  assert.ok(Date.now() - t0 < 2000, `breaking took ${Date.now() - t0} ms`);
  const lock = readLock(mgr.lockPath);
  assert.equal(lock?.pid, process.pid);
  assert.equal(lock?.loopId, 'after-reuse');
  mgr.releaseLock('after-reuse');
  assert.equal(fs.existsSync(mgr.lockPath), false);

  // The same lock from an old writer (no processStart): the live pid is respected.
  const plain = JSON.stringify(legacyRecord(live.pid, 'plain'));
  fs.writeFileSync(mgr.lockPath, plain);
  mgr.maxLockAttempts = 3;
  await assert.rejects(within(mgr.acquireLock('blocked'), 5000, 'acquireLock vs live pid'),
    (e) => /^Failed to acquire lock after 3 attempts/.test(e.message));
  assert.equal(fs.readFileSync(mgr.lockPath, 'utf8'), plain, 'the lock file is untouched');

  // The matching identity (Linux): respected too, so processStart is really compared.
  const identity = process.platform === 'linux' ? linuxStartIdentity(live.pid) : null;
  if (identity) {
    const matching = JSON.stringify(legacyRecord(live.pid, 'matching', { processStart: identity }));
    fs.writeFileSync(mgr.lockPath, matching);
    await assert.rejects(within(mgr.acquireLock('blocked'), 5000, 'acquireLock vs matching identity'),
      (e) => /^Failed to acquire lock after 3 attempts/.test(e.message));
    assert.equal(fs.readFileSync(mgr.lockPath, 'utf8'), matching);
  }
  fs.unlinkSync(mgr.lockPath);
});
