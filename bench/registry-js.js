'use strict';
// A plain-JS ExternalMultiLoopStateManager, written from SPEC §7 (and the
// §9.9 rule that every registry read-modify-write runs under the lock), to
// measure the package's synchronous calls against: same file layout, same
// JSON.parse / JSON.stringify(…, null, 2), same lock file. Only what the
// registry-calls scenario calls is here (no async member).
//
// Writes replace a file atomically as the package does for these files: a
// uniquely named temp file beside it, created exclusively with the target's
// mode, renamed over it, no fsync (the registry describes running
// processes, which a power failure ends anyway).

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const STATE_FILE = 'session-state.json';
const MAX_CONCURRENT_LOOPS = 4;
const LEASE_MS = 30000;
const LOCK_RETRY_MS = 100;

const pad3 = (n) => String(n).padStart(3, '0');
const now = () => new Date().toISOString();

/** `<what>: <message>`, as SPEC words the read failures. */
function readJson(file, what) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${what}: ${err.message}`);
  }
}

let temps = 0;
/** Replace `file` with `text`: exclusive temp file beside it, then rename. */
function replaceFile(file, text) {
  let mode = 0o666;
  try {
    mode = fs.statSync(file).mode & 0o777;
  } catch {
    // a new file: the default mode
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}${temps++}.tmp`);
  fs.writeFileSync(tmp, text, { flag: 'wx', mode });
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** Signal 0: is `pid` a live process? */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM'; // there, but not ours
  }
}

let fencing = 0;

class PlainRegistry {
  constructor(projectRoot) {
    const baseDir = path.join(projectRoot, '.aiwg', 'ralph-external');
    const registryPath = path.join(baseDir, 'registry.json');
    // Read-only properties, as SPEC lists them.
    for (const [name, value] of Object.entries({
      projectRoot,
      baseDir,
      registryPath,
      loopsDir: path.join(baseDir, 'loops'),
      archiveDir: path.join(baseDir, 'archive'),
      sharedDir: path.join(baseDir, 'shared'),
      lockPath: `${registryPath}.lock`,
    })) {
      Object.defineProperty(this, name, { value, enumerable: true });
    }
    this.maxLockAttempts = 300;
  }

  ensureBaseDir() {
    for (const dir of [this.baseDir, this.loopsDir, this.archiveDir, this.sharedDir]) {
      if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true });
    }
  }

  generateLoopId(task) {
    const slug = task
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 30);
    return `ralph-${slug}-${crypto.randomBytes(4).toString('hex')}`;
  }

  calculateCommunicationPaths(n) {
    return (n * (n - 1)) / 2;
  }

  loadRegistry() {
    this.ensureBaseDir();
    if (!fs.existsSync(this.registryPath)) {
      const fresh = {
        version: '2.0.0',
        max_concurrent_loops: MAX_CONCURRENT_LOOPS,
        updated_at: now(),
        active_loops: [],
        total_active: 0,
        total_completed: 0,
        total_aborted: 0,
      };
      this.saveRegistry(fresh);
      return fresh;
    }
    return readJson(this.registryPath, 'Failed to load registry');
  }

  saveRegistry(registry) {
    registry.updated_at = now();
    registry.total_active = registry.active_loops.length;
    this.ensureBaseDir();
    replaceFile(this.registryPath, JSON.stringify(registry, null, 2));
  }

  /**
   * The lock of SPEC §7 taken synchronously (what a sync call that must
   * hold it does): the lock file created exclusively; a lock whose lease
   * expired or whose pid is dead is broken; otherwise wait and retry.
   */
  lockSync(loopId) {
    const content = () =>
      JSON.stringify({ pid: process.pid, loopId, timestamp: Date.now(), leaseExpiry: Date.now() + LEASE_MS, fencingToken: ++fencing });
    for (let attempt = 0; ; attempt++) {
      try {
        fs.writeFileSync(this.lockPath, content(), { flag: 'wx' });
        return;
      } catch (err) {
        if (err.code !== 'EEXIST') throw err;
      }
      let held = null;
      try {
        held = JSON.parse(fs.readFileSync(this.lockPath, 'utf8'));
      } catch {
        held = null; // gone meanwhile, or torn: try again
      }
      if (held && (held.leaseExpiry < Date.now() || !alive(held.pid))) {
        fs.rmSync(this.lockPath, { force: true });
        continue;
      }
      if (attempt >= this.maxLockAttempts) throw new Error(`Failed to acquire lock after ${attempt} attempts`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, LOCK_RETRY_MS);
    }
  }

  releaseLock(loopId) {
    let lock;
    try {
      lock = JSON.parse(fs.readFileSync(this.lockPath, 'utf8'));
    } catch {
      return; // no lock (or not ours to judge)
    }
    if (lock && lock.loopId === loopId && lock.pid === process.pid) fs.unlinkSync(this.lockPath);
  }

  processExists(pid) {
    return alive(pid);
  }

  getLoop(loopId) {
    const statePath = path.join(this.loopsDir, loopId, STATE_FILE);
    if (!fs.existsSync(statePath)) throw new Error(`Loop not found: ${loopId}`);
    return readJson(statePath, 'Failed to load loop state');
  }

  updateLoop(loopId, changes) {
    const merge = () => {
      const updated = { ...this.getLoop(loopId), ...changes, lastUpdate: now() };
      replaceFile(path.join(this.loopsDir, loopId, STATE_FILE), JSON.stringify(updated, null, 2));
      if (changes.status) {
        const registry = this.loadRegistry();
        const entry = registry.active_loops.find((e) => e.loop_id === loopId);
        if (entry) {
          entry.status = changes.status;
          this.saveRegistry(registry);
        }
      }
      return updated;
    };
    if (!changes || !changes.status) return merge();
    // The status goes into the registry: a read-modify-write, so under the lock (§9.9).
    this.getLoop(loopId); // a missing loop is reported first
    this.lockSync(loopId);
    try {
      return merge();
    } finally {
      this.releaseLock(loopId);
    }
  }

  listActiveLoops() {
    return this.loadRegistry().active_loops;
  }

  isLoopAlive(loopId) {
    try {
      const state = this.getLoop(loopId);
      return Boolean(state.currentPid) && this.processExists(state.currentPid);
    } catch {
      return false;
    }
  }

  updateLegacySymlink() {
    const link = path.join(this.baseDir, STATE_FILE);
    let stat = null;
    try {
      stat = fs.lstatSync(link);
    } catch {
      stat = null;
    }
    if (stat && !stat.isSymbolicLink()) return; // another tool's file
    if (stat) fs.unlinkSync(link);
    const loops = this.loadRegistry().active_loops;
    if (loops.length === 1) fs.symlinkSync(path.join('loops', loops[0].loop_id, STATE_FILE), link);
  }

  detectCrashedLoops() {
    return this.loadRegistry().active_loops.filter((l) => l.status === 'running' && l.pid && !this.processExists(l.pid));
  }

  getLoopDir(loopId) {
    return path.join(this.loopsDir, loopId);
  }

  getIterationDir(loopId, n) {
    return path.join(this.getLoopDir(loopId), 'iterations', pad3(n));
  }

  getPromptPath(loopId, n) {
    return path.join(this.getLoopDir(loopId), 'prompts', `${pad3(n)}-prompt.md`);
  }

  getOutputPaths(loopId, n) {
    const outputs = path.join(this.getLoopDir(loopId), 'outputs');
    return { stdout: path.join(outputs, `${pad3(n)}-stdout.log`), stderr: path.join(outputs, `${pad3(n)}-stderr.log`) };
  }
}

module.exports = { PlainRegistry };
