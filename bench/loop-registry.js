'use strict';
// Scenario: the loop registry shared by several processes (SPEC §7, §9.9).
//
// - cycles: N processes each run C create → complete → set pid → archive
//   cycles on one project root; afterwards the registry must add up.
// - lock: N processes take turns on the registry lock, holding it ~1 ms;
//   hand-off latency = when a waiter's acquireLock resolved − when the
//   previous holder called releaseLock (hrtime is CLOCK_MONOTONIC, so the
//   clocks of different processes compare on Linux).
//
// This file is also the child: forked, it serves one of the tasks below.

const fs = require('node:fs');
const lib = require('./lib.js');

const CYCLES_TARGET = { procs: 4, cycles: 25, ms: 1000 };
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

async function registryCycles(procs, cycles, timeoutMs) {
  const { ExternalMultiLoopStateManager } = require(lib.PACKAGE);
  const rows = [];
  for (const base of lib.tempBases()) for (const n of procs) {
    await lib.withTempDir('registry', async (root) => {
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
      const start = results.reduce((min, r) => (r.start < min ? r.start : min), results[0].start);
      const end = results.reduce((max, r) => (r.end > max ? r.end : max), results[0].end);
      const wallMs = lib.nsToMs(end - start);
      const isTarget = n === CYCLES_TARGET.procs && cycles === CYCLES_TARGET.cycles;
      rows.push({
        case: `${n} proc × ${cycles} cycles`,
        'file system': lib.dirLabel(base),
        'wall ms': wallMs,
        'cycles/s': (n * cycles) / (wallMs / 1000),
        'ms/cycle': wallMs / (n * cycles),
        'peak child RSS MB': Math.max(...results.map((r) => r.maxRssKb)) / 1024,
        target: isTarget ? lib.target(wallMs < CYCLES_TARGET.ms, `< ${CYCLES_TARGET.ms} ms`) : '-',
      });
    }, base);
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
    { title: 'Registry cycles (createLoop → updateLoop → updateLoopPid → archiveLoop)', rows: await registryCycles(procs, cycles, timeoutMs) },
    { title: `Registry lock hand-off (hold ${HOLD_MS} ms)`, rows: await lockHandoff(procs, acquisitions, timeoutMs) },
  ];
}

module.exports = { name: 'loop-registry', description: 'multi-process loop registry: cycles and lock hand-off', options, run };
