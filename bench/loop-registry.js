'use strict';
// Scenario: the loop registry shared by several processes (SPEC §7, §9.9).
//
// - cycles: N processes each run C create → complete → set pid → archive
//   cycles on one project root; afterwards the registry must add up.
//   Beside each row, the floor: the same file operations done bare (no
//   lock, each process on its own project root so none is needed), so the
//   ratio shows what the locking and the package add over the file system.
// - lock: N processes take turns on the registry lock, holding it ~1 ms;
//   hand-off latency = when a waiter's acquireLock resolved − when the
//   previous holder called releaseLock (hrtime is CLOCK_MONOTONIC, so the
//   clocks of different processes compare on Linux).
//
// This file is also the child: forked, it serves one of the tasks below.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const lib = require('./lib.js');

const CYCLES_TARGET = { procs: 4, cycles: 25, ms: 1000, floorRatio: 1.5 };
const HANDOFF_P99_TARGET_MS = 5;
const HOLD_MS = 1;

const options = {
  procs: { type: 'string', default: '1,2,4', description: 'process counts to run, comma-separated' },
  cycles: { type: 'string', default: '25', description: 'registry cycles per process' },
  acquisitions: { type: 'string', default: '1000', description: 'lock acquisitions in total per process count' },
};

// ---- child side -----------------------------------------------------------

const tasks = {
  async cycles({ root, index, cycles }, { ExternalMultiLoopStateManager }) {
    const mgr = new ExternalMultiLoopStateManager(root);
    const start = process.hrtime.bigint();
    for (let c = 0; c < cycles; c++) {
      const { loopId } = await mgr.createLoop({ objective: `bench proc ${index} cycle ${c}` }, { force: true });
      mgr.updateLoop(loopId, { status: 'completed' });
      await mgr.updateLoopPid(loopId, process.pid);
      await mgr.archiveLoop(loopId);
    }
    const end = process.hrtime.bigint();
    return { start, end, maxRssKb: process.resourceUsage().maxRSS };
  },

  // One registry cycle's file operations (SPEC §7), bare: what createLoop,
  // updateLoop, updateLoopPid and archiveLoop create, write, rename and
  // unlink, minus the lock file and the existence checks. Writes replace the
  // file as the package does (an exclusively created temp file beside it,
  // renamed over it, no fsync), with the same 2-space JSON.
  async floor({ root, index, cycles }) {
    const start = process.hrtime.bigint();
    const base = path.join(root, `p${index}`, '.aiwg', 'ralph-external');
    const loops = path.join(base, 'loops');
    const archive = path.join(base, 'archive');
    for (const dir of [loops, archive, path.join(base, 'shared')]) fs.mkdirSync(dir, { recursive: true });
    const registryPath = path.join(base, 'registry.json');
    const legacy = path.join(base, 'session-state.json');
    let temps = 0;
    const read = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
    const replace = (file, value) => {
      const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${temps++}.tmp`);
      fs.writeFileSync(tmp, JSON.stringify(value, null, 2), { flag: 'wx' });
      fs.renameSync(tmp, file);
    };
    const now = () => new Date().toISOString();
    const saveRegistry = (reg) => {
      reg.updated_at = now();
      reg.total_active = reg.active_loops.length;
      replace(registryPath, reg);
    };
    saveRegistry({ version: '2.0.0', max_concurrent_loops: 4, updated_at: now(), active_loops: [], total_active: 0, total_completed: 0, total_aborted: 0 });
    for (let c = 0; c < cycles; c++) {
      const loopId = `ralph-bench-proc-${index}-cycle-${c}-${(0x10000000 + c).toString(16)}`;
      const loopDir = path.join(loops, loopId);
      const statePath = path.join(loopDir, 'session-state.json');
      // createLoop
      let reg = read(registryPath);
      fs.mkdirSync(loopDir);
      for (const sub of ['iterations', 'prompts', 'outputs', 'analysis', 'checkpoints']) fs.mkdirSync(path.join(loopDir, sub));
      const startTime = now();
      const objective = `bench proc ${index} cycle ${c}`;
      replace(statePath, {
        version: '1.0.0', loopId, objective, status: 'running', maxIterations: 10, currentIteration: 0,
        startTime, lastUpdate: startTime, sessionId: crypto.randomUUID(), currentPid: process.pid,
        iterations: [], accumulatedLearnings: '', filesModified: [], giteaIntegration: null,
        config: { model: 'opus', budgetPerIteration: 2, timeoutMinutes: 60, mcpConfig: null, workingDir: root },
      });
      reg.active_loops.push({
        loop_id: loopId, task_summary: objective, status: 'running', started_at: startTime, owner: 'user:bench',
        pid: process.pid, iteration: 0, max_iterations: 10, priority: 'medium', tags: [],
      });
      saveRegistry(reg);
      fs.symlinkSync(path.join('loops', loopId, 'session-state.json'), legacy); // one active loop: the legacy link
      // updateLoop(status) and updateLoopPid: state, then its registry entry
      const changes = [
        [{ status: 'completed' }, { status: 'completed' }],
        [{ currentPid: process.pid }, { pid: process.pid }],
      ];
      for (const [stateChange, entryChange] of changes) {
        replace(statePath, { ...read(statePath), ...stateChange, lastUpdate: now() });
        reg = read(registryPath);
        Object.assign(reg.active_loops.find((e) => e.loop_id === loopId), entryChange);
        saveRegistry(reg);
      }
      // archiveLoop
      reg = read(registryPath);
      fs.renameSync(loopDir, path.join(archive, loopId));
      reg.active_loops.splice(reg.active_loops.findIndex((e) => e.loop_id === loopId), 1);
      reg.total_completed += 1;
      saveRegistry(reg);
      fs.unlinkSync(legacy);
    }
    const end = process.hrtime.bigint();
    return { start, end };
  },

  async lock({ root, index, count }, { ExternalMultiLoopStateManager }) {
    const mgr = new ExternalMultiLoopStateManager(root);
    const loopId = `bench-lock-${index}`;
    const records = [];
    for (let k = 0; k < count; k++) {
      const requested = process.hrtime.bigint();
      await mgr.acquireLock(loopId);
      const acquired = process.hrtime.bigint();
      lib.blockFor(HOLD_MS);
      const released = process.hrtime.bigint();
      mgr.releaseLock(loopId);
      records.push({ index, requested, acquired, released });
    }
    return records;
  },
};

if (require.main === module) {
  lib.serveChild((args, pkg) => tasks[args.task](args, pkg), () => require(lib.PACKAGE));
}

// ---- parent side ----------------------------------------------------------

/** Throw unless the registry under `root` shows exactly `expected` completed loops and nothing left over. */
function checkRegistry(mgr, expected) {
  const reg = mgr.loadRegistry();
  const problems = [];
  const active = reg.active_loops.map((l) => l.loop_id);
  if (active.length) problems.push(`active_loops not empty: ${active.join(', ')}`);
  if (reg.total_completed !== expected) problems.push(`total_completed ${reg.total_completed}, expected ${expected}`);
  if (reg.total_aborted !== 0) problems.push(`total_aborted ${reg.total_aborted}, expected 0`);
  const archived = fs.readdirSync(mgr.archiveDir).length;
  if (archived !== expected) problems.push(`${archived} loops in archive/, expected ${expected}`);
  const left = fs.readdirSync(mgr.loopsDir);
  if (left.length) problems.push(`loops/ not empty: ${left.join(', ')}`);
  if (fs.existsSync(mgr.lockPath)) problems.push(`lock file left behind: ${fs.readFileSync(mgr.lockPath, 'utf8')}`);
  if (problems.length) throw new Error(`registry inconsistent after ${expected} cycles:\n  ${problems.join('\n  ')}`);
}

/** Wall time of a group of children: first start to last end. */
function wallMs(results) {
  const start = results.reduce((min, r) => (r.start < min ? r.start : min), results[0].start);
  const end = results.reduce((max, r) => (r.end > max ? r.end : max), results[0].end);
  return lib.nsToMs(end - start);
}

/** Throw unless every bare floor process archived `cycles` loops and left no temp file. */
function checkFloor(root, n, cycles) {
  for (let i = 0; i < n; i++) {
    const base = path.join(root, `p${i}`, '.aiwg', 'ralph-external');
    const reg = JSON.parse(fs.readFileSync(path.join(base, 'registry.json'), 'utf8'));
    const archived = fs.readdirSync(path.join(base, 'archive')).length;
    const stray = fs.readdirSync(base).filter((f) => f.endsWith('.tmp'));
    if (reg.total_completed !== cycles || reg.active_loops.length || archived !== cycles || stray.length) {
      throw new Error(`floor proc ${i}: ${reg.total_completed} completed, ${archived} archived, ${stray.length} temp files`);
    }
  }
}

async function registryCycles(procs, cycles, timeoutMs) {
  const { ExternalMultiLoopStateManager } = require(lib.PACKAGE);
  const rows = [];
  for (const base of lib.tempBases()) for (const n of procs) {
    const wall = await lib.withTempDir('registry', async (root) => {
      const results = await lib.forkAndCollect(
        __filename,
        n,
        (index) => ({ task: 'cycles', root, index, cycles }),
        { timeoutMs },
      );
      try {
        checkRegistry(new ExternalMultiLoopStateManager(root), n * cycles);
      } catch (err) {
        err.message = `${n} proc × ${cycles} cycles: ${err.message}`;
        throw err;
      }
      return { ms: wallMs(results), maxRssKb: Math.max(...results.map((r) => r.maxRssKb)) };
    }, base);
    // The floor right after, on the same file system, with fresh processes.
    const floorMs = await lib.withTempDir('registry-floor', async (root) => {
      const results = await lib.forkAndCollect(
        __filename,
        n,
        (index) => ({ task: 'floor', root, index, cycles }),
        { timeoutMs },
      );
      checkFloor(root, n, cycles);
      return wallMs(results);
    }, base);
    const isTarget = n === CYCLES_TARGET.procs && cycles === CYCLES_TARGET.cycles;
    const ratio = wall.ms / floorMs;
    rows.push({
      case: `${n} proc × ${cycles} cycles`,
      'file system': lib.dirLabel(base),
      'wall ms': wall.ms,
      'floor ms': floorMs,
      '× floor': ratio,
      'cycles/s': (n * cycles) / (wall.ms / 1000),
      'ms/cycle': wall.ms / (n * cycles),
      'peak child RSS MB': wall.maxRssKb / 1024,
      target: isTarget ? lib.target(wall.ms < CYCLES_TARGET.ms, `< ${CYCLES_TARGET.ms} ms`) : '-',
      'floor target': isTarget ? lib.target(ratio <= CYCLES_TARGET.floorRatio, `≤ ${CYCLES_TARGET.floorRatio}× floor`) : '-',
    });
  }
  return rows;
}

async function lockHandoff(procs, acquisitions, timeoutMs) {
  const { ExternalMultiLoopStateManager } = require(lib.PACKAGE);
  const rows = [];
  for (const n of procs) {
    await lib.withTempDir('lock', async (root) => {
      const mgr = new ExternalMultiLoopStateManager(root);
      mgr.ensureBaseDir();
      const count = Math.ceil(acquisitions / n);
      const results = await lib.forkAndCollect(
        __filename,
        n,
        (index) => ({ task: 'lock', root, index, count }),
        { timeoutMs },
      );
      if (fs.existsSync(mgr.lockPath)) throw new Error(`lock file left behind: ${fs.readFileSync(mgr.lockPath, 'utf8')}`);
      const all = results.flat().sort((a, b) => (a.acquired < b.acquired ? -1 : a.acquired > b.acquired ? 1 : 0));
      const latencies = [];
      const waits = all.map((r) => lib.nsToMs(r.acquired - r.requested));
      for (let i = 1; i < all.length; i++) {
        const prev = all[i - 1];
        const cur = all[i];
        if (cur.acquired <= prev.released) {
          throw new Error(
            `lock not exclusive: proc ${cur.index} acquired ${lib.nsToMs(prev.released - cur.acquired).toFixed(3)} ms ` +
              `before proc ${prev.index} released`,
          );
        }
        if (n > 1 && cur.requested < prev.released) latencies.push(lib.nsToMs(cur.acquired - prev.released));
      }
      const s = lib.summarize(n === 1 ? waits : latencies);
      rows.push({
        case: n === 1 ? '1 proc (uncontended acquire→resolve)' : `${n} procs (hand-off)`,
        acquisitions: all.length,
        measured: s.n,
        'p50 ms': s.p50,
        'p99 ms': s.p99,
        'max ms': s.max,
        'max wait ms': Math.max(...waits),
        target: n === 1 ? '-' : lib.target(s.p99 < HANDOFF_P99_TARGET_MS, `p99 < ${HANDOFF_P99_TARGET_MS} ms`),
      });
    });
  }
  return rows;
}

async function run(values, { timeoutMs }) {
  const procs = lib.intList('procs', values.procs);
  const cycles = lib.positiveInt('cycles', values.cycles);
  const acquisitions = lib.positiveInt('acquisitions', values.acquisitions);
  return [
    { title: 'Registry cycles (createLoop → updateLoop → updateLoopPid → archiveLoop; floor: the same file operations bare)', rows: await registryCycles(procs, cycles, timeoutMs) },
    { title: `Registry lock hand-off (hold ${HOLD_MS} ms)`, rows: await lockHandoff(procs, acquisitions, timeoutMs) },
  ];
}

module.exports = { name: 'loop-registry', description: 'multi-process loop registry: cycles and lock hand-off', options, run };
