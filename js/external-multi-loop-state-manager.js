'use strict';
// ExternalMultiLoopStateManager with the original's shape: the same
// members, sync where it was sync and async where it was async. The work is
// native (src/loop_registry); this class checks arguments, converts values
// (as JSON text) and owns the two things that belong to JS: the writable
// `maxLockAttempts` and warnings through `console.warn`.

const path = require('node:path');
const native = require('./native.js');
const check = require('./validate.js');

const DEFAULT_MAX_LOCK_ATTEMPTS = 300;

/** `String(n).padStart(3, '0')`, as the original names iteration files. */
const pad3 = (n) => String(n).padStart(3, '0');

class ExternalMultiLoopStateManager {
  #projectRoot;
  #baseDir;
  #native;

  constructor(projectRoot) {
    check.string('projectRoot', projectRoot);
    this.#projectRoot = projectRoot;
    this.#baseDir = path.join(projectRoot, '.aiwg', 'ralph-external');
    this.#native = new native.LoopRegistry(projectRoot, this.#baseDir);
    /** How many 100 ms waits `acquireLock` allows before it rejects. */
    this.maxLockAttempts = DEFAULT_MAX_LOCK_ATTEMPTS;
  }

  get projectRoot() { return this.#projectRoot; }
  get baseDir() { return this.#baseDir; }
  get registryPath() { return this.#native.registryPath; }
  get loopsDir() { return this.#native.loopsDir; }
  get archiveDir() { return this.#native.archiveDir; }
  get sharedDir() { return this.#native.sharedDir; }
  get lockPath() { return this.#native.lockPath; }

  /** maxLockAttempts as a whole number; anything unusable means the default. */
  #attempts() {
    const n = this.maxLockAttempts;
    if (typeof n !== 'number' || !(n >= 0)) return DEFAULT_MAX_LOCK_ATTEMPTS;
    return Math.min(Math.ceil(n), 0xffffffff);
  }

  ensureBaseDir() {
    this.#native.ensureBaseDir();
  }

  generateLoopId(task) {
    return native.generateLoopId(check.string('task', task));
  }

  calculateCommunicationPaths(n) {
    check.number('n', n);
    return (n * (n - 1)) / 2;
  }

  loadRegistry() {
    return JSON.parse(this.#native.loadRegistry());
  }

  saveRegistry(registry) {
    check.object('registry', registry);
    check.array('registry.active_loops', registry.active_loops);
    Object.assign(registry, JSON.parse(this.#native.saveRegistry(JSON.stringify(registry))));
  }

  async acquireLock(loopId) {
    check.string('loopId', loopId);
    const fencingToken = await this.#native.acquireLock(loopId, this.#attempts());
    return { acquired: true, fencingToken };
  }

  releaseLock(loopId) {
    this.#native.releaseLock(check.string('loopId', loopId));
  }

  processExists(pid) {
    return typeof pid === 'number' && native.processExists(pid);
  }

  sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  async createLoop(config, options) {
    check.object('config', config);
    check.string('config.objective', config.objective);
    if (config.loopId !== undefined && config.loopId !== null && config.loopId !== '') {
      check.string('config.loopId', config.loopId);
    }
    const { force } = check.optionalObject('options', options);
    const created = JSON.parse(
      await this.#native.createLoop(JSON.stringify(config), Boolean(force), this.#attempts()),
    );
    if (created.warning) console.warn(created.warning);
    return { loopId: created.loopId, state: created.state };
  }

  getLoop(loopId) {
    return JSON.parse(this.#native.getLoop(check.string('loopId', loopId)));
  }

  updateLoop(loopId, changes) {
    check.string('loopId', loopId);
    check.object('changes', changes);
    return JSON.parse(this.#native.updateLoop(loopId, JSON.stringify(changes), this.#attempts()));
  }

  listActiveLoops() {
    return JSON.parse(this.#native.listActiveLoops());
  }

  async updateLoopPid(loopId, pid) {
    check.string('loopId', loopId);
    check.number('pid', pid);
    await this.#native.updateLoopPid(loopId, JSON.stringify(pid), this.#attempts());
  }

  isLoopAlive(loopId) {
    return typeof loopId === 'string' && this.#native.isLoopAlive(loopId);
  }

  async archiveLoop(loopId) {
    await this.#native.archiveLoop(check.string('loopId', loopId), this.#attempts());
  }

  updateLegacySymlink() {
    this.#native.updateLegacySymlink();
  }

  detectCrashedLoops() {
    return JSON.parse(this.#native.detectCrashedLoops());
  }

  async migrateLegacyState() {
    return this.#native.migrateLegacyState(this.#attempts());
  }

  getLoopDir(loopId) {
    return path.join(this.loopsDir, check.string('loopId', loopId));
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
