'use strict';
// ExternalMultiLoopStateManager with the original's shape: the same
// members, sync where it was sync and async where it was async.
//
// The split: this class reads arguments and files and builds every document
// the way the original does (fs for directories and reads, `JSON.parse` and
// `JSON.stringify` for the values), so what a caller gets back and the bytes
// written are the original's by construction: `undefined` fields, `NaN`,
// lone surrogates, key order, JS coercion. The native side
// (src/loop_registry) owns what the original could not do safely: the
// registry lock of SPEC §9.9 (every registry read-modify-write below runs
// under it), atomic replacement and exclusive creation of the files, and
// the directory moves and the legacy symlink.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const native = require('./native.js');
const check = require('./validate.js');
const { call, settle } = require('./errors.js');

const DEFAULT_MAX_LOCK_ATTEMPTS = 300;
const MAX_CONCURRENT_LOOPS = 4;
/** A loop directory's sub-directories and state file name, as the native file work knows them. */
const { loopSubdirs: LOOP_SUBDIRS, stateFile: STATE_FILE } = native.defaults().registry;

/**
 * This JS thread, as the native lock knows it: a synchronous operation of
 * this thread goes ahead under a hold its own async operation has taken
 * (whose work cannot run until the synchronous one returns).
 */
const REALM = crypto.randomUUID();

/** `String(n).padStart(3, '0')`, as the original names iteration files. */
const pad3 = (n) => String(n).padStart(3, '0');
const now = () => new Date().toISOString();
const pretty = (value) => JSON.stringify(value, null, 2);
const defaultOwner = () => `user:${process.env.USER || 'unknown'}`;

/** A read or parse failure as `<what>: <file>: <message>`, keeping fs's `code`, `errno`, `syscall`, `path`. */
function failure(what, file, err) {
  const message = err instanceof Error ? err.message : String(err);
  const out = new Error(`${what}: ${file}: ${message}`, { cause: err });
  if (err !== null && typeof err === 'object') {
    for (const key of ['errno', 'code', 'syscall', 'path', 'dest']) {
      if (err[key] !== undefined) out[key] = err[key];
    }
  }
  return out;
}

function readJson(file, what) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw failure(what, file, err);
  }
  return parseJson(text, file, what);
}

function parseJson(text, file, what) {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw failure(what, file, err);
  }
}

/**
 * A fresh copy of `value`, a `JSON.parse` result, built as `JSON.parse`
 * builds one: plain objects and arrays, keys in the same order, an own
 * `__proto__` key kept as a key. About three times faster than parsing the
 * text again.
 */
function copyJson(value) {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const out = [];
    for (let i = 0; i < value.length; i++) out.push(copyJson(value[i]));
    return out;
  }
  const out = {};
  for (const key of Object.keys(value)) {
    if (key === '__proto__') {
      Object.defineProperty(out, key, { value: copyJson(value[key]), writable: true, enumerable: true, configurable: true });
    } else {
      out[key] = copyJson(value[key]);
    }
  }
  return out;
}

function isRegularFile(file) {
  try {
    return fs.lstatSync(file).isFile();
  } catch {
    return false;
  }
}

/** Replace `file` with `text` atomically (native: temp file, then rename). */
function writeFile(file, text) {
  call(() => native.writeRegistryFile(file, text));
}

class ExternalMultiLoopStateManager {
  #projectRoot;
  #baseDir;
  #registryPath;
  #loopsDir;
  #archiveDir;
  #sharedDir;
  #lockPath;
  #native;
  /** What each file read last held: `{ text, value }`, `value` parsed from `text` once it is needed again. */
  #texts = new Map();

  constructor(projectRoot) {
    // The original joins its paths here; path.join refuses a non-string.
    check.string('projectRoot', projectRoot);
    this.#projectRoot = projectRoot;
    this.#baseDir = path.join(projectRoot, '.aiwg', 'ralph-external');
    this.#registryPath = path.join(this.#baseDir, 'registry.json');
    this.#loopsDir = path.join(this.#baseDir, 'loops');
    this.#archiveDir = path.join(this.#baseDir, 'archive');
    this.#sharedDir = path.join(this.#baseDir, 'shared');
    this.#lockPath = `${this.#registryPath}.lock`;
    this.#native = new native.LoopRegistry(this.#baseDir, this.#lockPath);
    /** How many 100 ms waits `acquireLock` allows before it rejects. */
    this.maxLockAttempts = DEFAULT_MAX_LOCK_ATTEMPTS;
  }

  get projectRoot() { return this.#projectRoot; }
  get baseDir() { return this.#baseDir; }
  get registryPath() { return this.#registryPath; }
  get loopsDir() { return this.#loopsDir; }
  get archiveDir() { return this.#archiveDir; }
  get sharedDir() { return this.#sharedDir; }
  get lockPath() { return this.#lockPath; }

  /** maxLockAttempts as a whole number, coerced as JS compares it; unset or NaN means the default. */
  #attempts() {
    const raw = this.maxLockAttempts;
    if (raw === undefined || raw === null) return DEFAULT_MAX_LOCK_ATTEMPTS;
    const n = Number(raw);
    if (Number.isNaN(n)) return DEFAULT_MAX_LOCK_ATTEMPTS;
    if (n <= 0) return 0;
    return Math.min(Math.ceil(n), 0xffffffff);
  }

  /** `loops/<id>`; `id` must be a string (path.join's rule) naming one directory there. */
  #loopDir(name, loopId) {
    check.string(name, loopId);
    if (loopId === '' || loopId === '.' || loopId === '..' || /[/\\\0]/.test(loopId)) {
      throw new Error(`Invalid loop id ${JSON.stringify(loopId)}: it must name a single directory`);
    }
    return path.join(this.#loopsDir, loopId);
  }

  /** Run `work` (synchronous) holding the registry lock, as the original ran it between acquireLock and releaseLock. */
  async #locked(loopId, work) {
    this.ensureBaseDir();
    const tag = JSON.stringify(loopId);
    // A free lock is taken here and now, so the hold does not wait for a
    // trip through the event loop; a held one is waited for off the JS thread.
    let token = call(() => this.#native.tryHold(tag, REALM));
    if (token === null) token = await settle(this.#native.hold(tag, this.#attempts(), REALM));
    else await undefined; // the work runs after acquireLock's await, as in the original
    let result;
    try {
      result = work();
    } catch (err) {
      try {
        call(() => this.#native.unhold(token));
      } catch {
        // The work's error is the one to report.
      }
      throw err;
    }
    call(() => this.#native.unhold(token));
    return result;
  }

  ensureBaseDir() {
    // Checked natively (one stat once the base dir has settled); what is
    // missing is created here, to fail as the original does.
    if (this.#native.baseDirPresent()) return;
    for (const dir of [this.#baseDir, this.#loopsDir, this.#archiveDir, this.#sharedDir]) {
      if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true });
    }
  }

  /**
   * `file`'s text read natively, remembered in `#texts`: the text read now;
   * `undefined` when it is unchanged since this manager last read it (as
   * its stamp shows once the file has settled, see src/file_stamp.rs), its
   * text then in `#texts`; `null` when it cannot be read here (missing, not
   * a regular file, not UTF-8, an I/O error), so the caller goes the
   * original's way, with `fs`, to fail as it does.
   */
  #nativeRead(file) {
    const text = this.#native.readText(file);
    if (typeof text === 'string') {
      if (this.#texts.size >= 1024) this.#texts.clear();
      this.#texts.set(file, { text, value: undefined });
      return text;
    }
    if (text === null || !this.#texts.has(file)) {
      this.#texts.delete(file);
      return null;
    }
    return undefined;
  }

  /**
   * `JSON.parse` of `file`'s text as `readJson` gives it, read natively; an
   * unchanged file is not read or parsed again: the caller gets a fresh
   * copy of the value. `undefined` when `#nativeRead` says `null`.
   */
  #readCached(file, what) {
    const text = this.#nativeRead(file);
    if (text === null) return undefined;
    if (text !== undefined) return parseJson(text, file, what);
    const known = this.#texts.get(file);
    if (known.value === undefined) known.value = parseJson(known.text, file, what);
    try {
      return copyJson(known.value);
    } catch {
      return parseJson(known.text, file, what); // nested too deep to copy by recursion
    }
  }

  generateLoopId(task) {
    if (typeof task !== 'string' && !(task instanceof String)) throw check.invalidArg('task', 'of type string', task);
    const slug = task
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .substring(0, 30);
    return `ralph-${slug}-${crypto.randomBytes(4).toString('hex')}`;
  }

  calculateCommunicationPaths(n) {
    return (n * (n - 1)) / 2;
  }

  loadRegistry() {
    this.ensureBaseDir();
    return this.#readRegistry();
  }

  /** loadRegistry once the base directories are known to be there (under the lock). */
  #readRegistry() {
    const cached = this.#readCached(this.#registryPath, 'Failed to load registry');
    if (cached !== undefined) return cached;
    if (!fs.existsSync(this.#registryPath)) {
      const registry = {
        version: '2.0.0',
        max_concurrent_loops: MAX_CONCURRENT_LOOPS,
        updated_at: now(),
        active_loops: [],
        total_active: 0,
        total_completed: 0,
        total_aborted: 0,
      };
      // Created exclusively: a registry another process wrote meanwhile is read, not replaced.
      if (call(() => native.createRegistryFile(this.#registryPath, pretty(registry)))) return registry;
    }
    return readJson(this.#registryPath, 'Failed to load registry');
  }

  saveRegistry(registry) {
    const text = this.#stamped(registry);
    this.ensureBaseDir();
    writeFile(this.#registryPath, text);
  }

  /** Stamp `updated_at` and `total_active` on `registry`; its text. */
  #stamped(registry) {
    if (registry === null || typeof registry !== 'object') throw check.invalidArg('registry', 'an object', registry);
    registry.updated_at = now();
    const loops = registry.active_loops;
    if (loops === undefined || loops === null) throw check.invalidArg('registry.active_loops', 'an array', loops);
    registry.total_active = loops.length;
    return pretty(registry);
  }

  /** saveRegistry once the base directories are known to be there (under the lock). */
  #writeRegistry(registry) {
    writeFile(this.#registryPath, this.#stamped(registry));
  }

  async acquireLock(loopId) {
    this.ensureBaseDir();
    const fencingToken = await settle(this.#native.acquireLock(JSON.stringify(loopId), this.#attempts(), REALM));
    return { acquired: true, fencingToken };
  }

  releaseLock(loopId) {
    let lock;
    try {
      lock = JSON.parse(this.#lockText());
    } catch (err) {
      if (err instanceof SyntaxError || err.code === 'ENOENT' || err.code === 'ENOTDIR') return;
      throw err;
    }
    if (lock === null || typeof lock !== 'object') return;
    if (lock.loopId === loopId && lock.pid === process.pid) {
      // Removed only if the file still holds what we just read (native, under its guard).
      call(() => this.#native.releaseLock(JSON.stringify(lock.fencingToken)));
    }
  }

  /** The lock file's text, read natively when it can be (as `readFileSync` would otherwise). */
  #lockText() {
    const text = this.#nativeRead(this.#lockPath);
    if (text === null) return fs.readFileSync(this.#lockPath, 'utf8');
    return text ?? this.#texts.get(this.#lockPath).text;
  }

  processExists(pid) {
    // As `process.kill(pid, 0)` in a try/catch: a pid it refuses is no process.
    try {
      // eslint-disable-next-line eqeqeq
      if (pid != (pid | 0)) return false;
      return native.processExists(pid | 0);
    } catch {
      return false;
    }
  }

  sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  async createLoop(config, options = {}) {
    if (config === undefined || config === null) throw check.invalidArg('config', 'an object', config);
    if (options === null) throw check.invalidArg('options', 'an object', options);
    const { force = false } = options;
    let loopId = config.loopId;
    if (!loopId) {
      if (typeof config.objective !== 'string' && !(config.objective instanceof String)) {
        throw check.invalidArg('config.objective', 'of type string', config.objective);
      }
      loopId = this.generateLoopId(config.objective);
    }
    return this.#locked(loopId, () => {
      const registry = this.#readRegistry();
      const active = registry.active_loops.length;
      if (active >= MAX_CONCURRENT_LOOPS) {
        const paths = this.calculateCommunicationPaths(active);
        const next = this.calculateCommunicationPaths(active + 1);
        if (!force) {
          throw new Error(
            `Cannot create loop: ${active} loops already active (max: ${MAX_CONCURRENT_LOOPS}). ` +
              `${active} loops already have ${paths} communication paths; another would make ${next}. ` +
              'Use --force to create it anyway.',
          );
        }
        console.warn(
          `Warning: ${active} loops already active (max: ${MAX_CONCURRENT_LOOPS}); ` +
            `creating another because of --force (${next} communication paths).`,
        );
      }
      const loopDir = this.#loopDir('config.loopId', loopId);
      fs.mkdirSync(loopDir, { recursive: true });
      for (const sub of LOOP_SUBDIRS) fs.mkdirSync(path.join(loopDir, sub), { recursive: true });

      const startTime = now();
      const state = {
        version: '1.0.0',
        loopId,
        objective: config.objective,
        completionCriteria: config.completionCriteria,
        status: 'running',
        maxIterations: config.maxIterations || 10,
        currentIteration: 0,
        startTime,
        lastUpdate: startTime,
        sessionId: crypto.randomUUID(),
        currentPid: process.pid,
        iterations: [],
        accumulatedLearnings: '',
        filesModified: [],
        giteaIntegration: config.giteaIntegration || null,
        config: {
          model: config.model || 'opus',
          budgetPerIteration: config.budgetPerIteration || 2.0,
          timeoutMinutes: config.timeoutMinutes || 60,
          mcpConfig: config.mcpConfig || null,
          workingDir: config.workingDir || this.#projectRoot,
        },
      };
      writeFile(path.join(loopDir, STATE_FILE), pretty(state));

      const entry = {
        loop_id: loopId,
        task_summary: config.objective.slice(0, 200),
        status: 'running',
        started_at: startTime,
        owner: config.owner || defaultOwner(),
        pid: process.pid,
        iteration: 0,
        max_iterations: state.maxIterations,
        completion_criteria: config.completionCriteria,
        priority: config.priority || 'medium',
        tags: config.tags || [],
      };
      registry.active_loops.push(entry);
      this.#writeRegistry(registry);
      this.#linkLegacyState(registry);
      return { loopId, state };
    });
  }

  getLoop(loopId) {
    const statePath = path.join(this.#loopDir('loopId', loopId), STATE_FILE);
    const cached = this.#readCached(statePath, 'Failed to load loop state');
    if (cached !== undefined) return cached;
    if (!fs.existsSync(statePath)) throw new Error(`Loop not found: ${loopId}`);
    return readJson(statePath, 'Failed to load loop state');
  }

  updateLoop(loopId, changes) {
    const statePath = path.join(this.#loopDir('loopId', loopId), STATE_FILE);
    // Only a truthy status is mirrored into the registry, under the lock.
    const mirrored = changes !== undefined && changes !== null && Boolean(changes.status);
    if (!mirrored) return this.#mergeState(loopId, statePath, changes);
    // A missing loop is reported before anything else happens, as in the original.
    if (!fs.existsSync(statePath)) throw new Error(`Loop not found: ${loopId}`);
    const token = call(() => this.#native.holdSync(JSON.stringify(loopId), this.#attempts(), REALM));
    try {
      return this.#mergeState(loopId, statePath, changes);
    } finally {
      if (token !== null) call(() => this.#native.unhold(token));
    }
  }

  /** `{...state, ...changes, lastUpdate}` written and returned; a truthy `changes.status` goes to the registry entry. */
  #mergeState(loopId, statePath, changes) {
    const state = this.getLoop(loopId);
    const updated = { ...state, ...changes, lastUpdate: now() };
    writeFile(statePath, pretty(updated));
    if (changes.status) {
      const registry = this.loadRegistry();
      const entry = registry.active_loops.find((e) => e.loop_id === loopId);
      if (entry) {
        entry.status = changes.status;
        this.saveRegistry(registry);
      }
    }
    return updated;
  }

  listActiveLoops() {
    return this.loadRegistry().active_loops;
  }

  async updateLoopPid(loopId, pid) {
    await this.#locked(loopId, () => {
      const state = this.getLoop(loopId);
      const statePath = path.join(this.#loopDir('loopId', loopId), STATE_FILE);
      writeFile(statePath, pretty({ ...state, currentPid: pid, lastUpdate: now() }));
      const registry = this.#readRegistry();
      const entry = registry.active_loops.find((e) => e.loop_id === loopId);
      if (entry) {
        entry.pid = pid;
        this.#writeRegistry(registry);
      }
    });
  }

  isLoopAlive(loopId) {
    try {
      const state = this.getLoop(loopId);
      return Boolean(state.currentPid) && this.processExists(state.currentPid);
    } catch {
      return false;
    }
  }

  async archiveLoop(loopId) {
    await this.#locked(loopId, () => {
      const registry = this.#readRegistry();
      const loopDir = this.#loopDir('loopId', loopId);
      if (!fs.existsSync(loopDir)) throw new Error(`Loop directory not found: ${loopId}`);
      const loops = registry.active_loops;
      const index = loops.findIndex((e) => e.loop_id === loopId);
      let status;
      if (index !== -1) {
        status = loops[index].status;
      } else {
        try {
          status = this.getLoop(loopId).status;
        } catch {
          status = undefined;
        }
      }
      call(() => this.#native.archiveLoopDir(loopId));
      if (index !== -1) loops.splice(index, 1);
      const counter = status === 'completed' || status === 'completing' ? 'total_completed' : 'total_aborted';
      const count = registry[counter];
      registry[counter] = (typeof count === 'number' ? count : 0) + 1;
      this.#writeRegistry(registry);
      this.#linkLegacyState(registry);
    });
  }

  updateLegacySymlink() {
    // A regular file there belongs to another tool: leave it.
    let stat = null;
    try {
      stat = fs.lstatSync(path.join(this.#baseDir, STATE_FILE));
    } catch {
      stat = null;
    }
    if (stat && !stat.isSymbolicLink()) return;
    this.#linkLegacyState(this.loadRegistry());
  }

  /** The legacy link follows `registry`'s one active loop, or goes. */
  #linkLegacyState(registry) {
    const loops = registry.active_loops;
    let only = null;
    if (loops.length === 1 && loops[0] !== null && typeof loops[0] === 'object' && typeof loops[0].loop_id === 'string') {
      only = loops[0].loop_id;
    }
    call(() => this.#native.updateLegacySymlink(only));
  }

  detectCrashedLoops() {
    const registry = this.loadRegistry();
    return registry.active_loops.filter((loop) => loop.status === 'running' && loop.pid && !this.processExists(loop.pid));
  }

  async migrateLegacyState() {
    this.ensureBaseDir();
    const legacy = path.join(this.#baseDir, STATE_FILE);
    if (!isRegularFile(legacy)) return false;
    const state = readJson(legacy, 'Failed to migrate legacy state');
    if (state === null || typeof state !== 'object') {
      throw new Error(`Failed to migrate legacy state: ${legacy}: not a JSON object`);
    }
    const objective = typeof state.objective === 'string' ? state.objective : 'migrated loop';
    const loopId = this.generateLoopId(objective);
    return this.#locked(loopId, () => {
      // Another migration may have run while we waited for the lock.
      if (!isRegularFile(legacy)) return false;
      call(() => this.#native.adoptLegacyDirs(loopId));
      state.loopId = loopId;
      writeFile(path.join(this.#loopsDir, loopId, STATE_FILE), pretty(state));
      fs.unlinkSync(legacy);
      const registry = this.#readRegistry();
      registry.active_loops.push({
        loop_id: loopId,
        task_summary: objective.slice(0, 200),
        status: state.status || 'running',
        started_at: state.startTime || now(),
        owner: defaultOwner(),
        pid: state.currentPid ?? null,
        iteration: state.currentIteration || 0,
        max_iterations: state.maxIterations || 10,
        completion_criteria: state.completionCriteria ?? null,
        priority: 'medium',
        tags: ['migrated'],
      });
      this.#writeRegistry(registry);
      this.#linkLegacyState(registry);
      return true;
    });
  }

  getLoopDir(loopId) {
    return path.join(this.#loopsDir, check.string('loopId', loopId));
  }

  getIterationDir(loopId, iteration) {
    return path.join(this.getLoopDir(loopId), 'iterations', pad3(iteration));
  }

  getPromptPath(loopId, iteration) {
    return path.join(this.getLoopDir(loopId), 'prompts', `${pad3(iteration)}-prompt.md`);
  }

  getOutputPaths(loopId, iteration) {
    const outputs = path.join(this.getLoopDir(loopId), 'outputs');
    return {
      stdout: path.join(outputs, `${pad3(iteration)}-stdout.log`),
      stderr: path.join(outputs, `${pad3(iteration)}-stderr.log`),
    };
  }
}

module.exports = { ExternalMultiLoopStateManager };
