'use strict';
// Scenario: the time of each synchronous ExternalMultiLoopStateManager call
// (SPEC §7) with 4 loops registered, against a plain-JS implementation of
// the same contract (registry-js.js) on the same files, and, for the calls
// that read one JSON file, against the floor: one fs.readFileSync of that
// file plus one JSON.parse.
//
// Both run in this process on one project root, taking turns (native, JS,
// native, JS …) so drift in the machine's load hits both; the better mean
// of each is kept.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { isDeepStrictEqual } = require('node:util');
const lib = require('./lib.js');
const { PlainRegistry } = require('./registry-js.js');

const LOOPS = 4;
const READ_TARGET = 0.7; // the reads a caller polls: well under plain JS
const CALL_TARGET = 1.0;
const FAST_READS = new Set(['listActiveLoops', 'getLoop', 'loadRegistry']);
/** Longer than src/file_stamp.rs's SETTLE: the wait before the settled rows. */
const SETTLED_MS = 2500;

const options = {
  calls: { type: 'string', default: '20000', description: 'timed calls per sync registry call (registry-calls)' },
  'write-calls': { type: 'string', default: '500', description: 'timed calls per writing registry call (registry-calls)' },
  'call-rounds': { type: 'string', default: '2', description: 'turns each implementation gets per call; the best is kept (registry-calls)' },
};

/**
 * The calls, each as `run(mgr, k)` for either implementation. `writes`
 * ones get the smaller count; `floor` names the file a read-only call reads.
 */
function callList(ids) {
  const id = ids[0];
  return [
    { call: 'ensureBaseDir', run: (m) => m.ensureBaseDir() },
    { call: 'generateLoopId', run: (m) => m.generateLoopId('Fix the flaky login test (#123)') },
    { call: 'calculateCommunicationPaths', run: (m, k) => m.calculateCommunicationPaths(k & 7) },
    { call: 'loadRegistry', floor: 'registry', run: (m) => m.loadRegistry() },
    { call: 'listActiveLoops', floor: 'registry', run: (m) => m.listActiveLoops() },
    { call: 'detectCrashedLoops', floor: 'registry', run: (m) => m.detectCrashedLoops() },
    { call: 'updateLegacySymlink', floor: 'registry', run: (m) => m.updateLegacySymlink() },
    { call: 'getLoop', floor: 'state', run: (m, k) => m.getLoop(ids[k & 3]) },
    { call: 'isLoopAlive', floor: 'state', run: (m, k) => m.isLoopAlive(ids[k & 3]) },
    { call: 'processExists', run: (m) => m.processExists(process.pid) },
    { call: 'releaseLock (another loop holds it)', floor: 'lock', run: (m) => m.releaseLock(id) },
    { call: 'getLoopDir', run: (m) => m.getLoopDir(id) },
    { call: 'getIterationDir', run: (m, k) => m.getIterationDir(id, k & 127) },
    { call: 'getPromptPath', run: (m, k) => m.getPromptPath(id, k & 127) },
    { call: 'getOutputPaths', run: (m, k) => m.getOutputPaths(id, k & 127) },
    {
      call: 'properties (projectRoot … lockPath, all 7)',
      run: (m) => m.projectRoot + m.baseDir + m.registryPath + m.loopsDir + m.archiveDir + m.sharedDir + m.lockPath,
    },
    { call: 'updateLoop (no status)', writes: true, run: (m, k) => m.updateLoop(ids[k & 3], { currentIteration: k & 7 }) },
    { call: 'updateLoop (status → registry, locked)', writes: true, run: (m, k) => m.updateLoop(ids[k & 3], { status: 'running' }) },
    { call: 'saveRegistry', writes: true, prepare: (m) => m.loadRegistry(), run: (m, k, reg) => m.saveRegistry(reg) },
  ];
}

/** Mean µs of at least `n` calls of `fn(k)` (more, until they take 50 ms: a nanosecond call needs them), after a warm-up. */
function meanMicros(fn, n) {
  const warm = Math.min(1000, Math.ceil(n / 10));
  let last;
  for (let k = 0; k < warm; k++) last = fn(k);
  let done = 0;
  const start = process.hrtime.bigint();
  let ns = 0n;
  while (done < n || ns < 50_000_000n) {
    for (let k = 0; k < n; k++) last = fn(k);
    done += n;
    ns = process.hrtime.bigint() - start;
  }
  if (last === null) throw new Error('unreachable'); // keeps `last` (and the calls) live
  return Number(ns) / 1000 / done;
}

/** Throw unless both implementations see the same registry and loops (so the race is fair). */
function checkSame(native, plain, ids) {
  const same = (what, a, b) => {
    if (!isDeepStrictEqual(a, b)) throw new Error(`registry-calls: ${what} differs: native ${JSON.stringify(a)}, plain JS ${JSON.stringify(b)}`);
  };
  same('loadRegistry', native.loadRegistry(), plain.loadRegistry());
  same('listActiveLoops().length', native.listActiveLoops().length, LOOPS);
  for (const id of ids) same(`getLoop(${id})`, native.getLoop(id), plain.getLoop(id));
  same('isLoopAlive', native.isLoopAlive(ids[0]), plain.isLoopAlive(ids[0]));
  same('getOutputPaths', native.getOutputPaths(ids[0], 7), plain.getOutputPaths(ids[0], 7));
  for (const p of ['projectRoot', 'baseDir', 'registryPath', 'loopsDir', 'archiveDir', 'sharedDir', 'lockPath']) same(p, native[p], plain[p]);
}

/**
 * The rows for every call, the files in `state`:
 * - 'written': the registry and every loop's state rewritten just before
 *   each call is timed (as while loops are being created and updated), so
 *   every read reads;
 * - 'settled': nothing written for longer than the stamp rule's 2 s (as a
 *   status poller mostly sees them), so a read of an unchanged file is one
 *   stat. Only the calls that write nothing.
 */
async function perCall(calls, writeCalls, rounds, state) {
  const { ExternalMultiLoopStateManager } = require(lib.PACKAGE);
  return lib.withTempDir('registry-calls', async (root) => {
    const native = new ExternalMultiLoopStateManager(root);
    const ids = [];
    for (let i = 0; i < LOOPS; i++) ids.push((await native.createLoop({ objective: `bench loop ${i}` })).loopId);
    const plain = new PlainRegistry(root);
    checkSame(native, plain, ids);

    const files = {
      registry: native.registryPath,
      state: path.join(native.loopsDir, ids[0], 'session-state.json'),
      lock: native.lockPath,
    };
    // releaseLock's case: a lock file naming another loop, which it reads and leaves.
    const lockFile = () =>
      fs.writeFileSync(files.lock, JSON.stringify({ pid: process.pid, loopId: 'bench-other-loop', timestamp: Date.now(), leaseExpiry: Date.now() + 30000, fencingToken: 1 }));
    const rewrite = () => {
      plain.saveRegistry(plain.loadRegistry());
      for (const id of ids) plain.updateLoop(id, {});
    };
    const list = callList(ids).filter((c) => state === 'written' || !c.writes);
    if (state === 'settled') {
      lockFile();
      await new Promise((resolve) => setTimeout(resolve, SETTLED_MS));
    }
    const rows = [];
    try {
      for (const c of list) {
        const n = c.writes ? writeCalls : calls;
        let best = { native: Infinity, plain: Infinity, floor: Infinity };
        for (let r = 0; r < rounds; r++) {
          for (const [key, mgr] of [['native', native], ['plain', plain]]) {
            if (state === 'written') {
              rewrite();
              if (c.floor === 'lock') lockFile();
            }
            const extra = c.prepare ? c.prepare(mgr) : undefined;
            try {
              best[key] = Math.min(best[key], meanMicros((k) => c.run(mgr, k, extra), n));
            } finally {
              if (state === 'written' && c.floor === 'lock') fs.rmSync(files.lock, { force: true });
            }
          }
          if (c.floor) {
            const file = files[c.floor];
            if (state === 'written' && c.floor === 'lock') lockFile();
            best.floor = Math.min(best.floor, meanMicros(() => JSON.parse(fs.readFileSync(file, 'utf8')), n));
            if (state === 'written' && c.floor === 'lock') fs.rmSync(files.lock, { force: true });
          }
        }
        const ratio = best.native / best.plain;
        const limit = FAST_READS.has(c.call) ? READ_TARGET : CALL_TARGET;
        rows.push({
          call: c.call,
          'native µs': best.native,
          'plain JS µs': best.plain,
          'floor µs': c.floor ? best.floor : '-',
          'native × JS': ratio,
          target: lib.target(ratio <= limit, `≤ ${limit.toFixed(1)}×`),
        });
      }
    } finally {
      fs.rmSync(files.lock, { force: true });
    }
    // Both left the registry as they found it: 4 loops, all running.
    if (native.listActiveLoops().filter((l) => l.status === 'running').length !== LOOPS) {
      throw new Error('registry-calls: the registry lost its loops during the run');
    }
    return rows;
  });
}

async function run(values) {
  const calls = lib.positiveInt('calls', values.calls);
  const writeCalls = lib.positiveInt('write-calls', values['write-calls']);
  const rounds = lib.positiveInt('call-rounds', values['call-rounds']);
  const what = `${LOOPS} loops registered, ${lib.dirLabel(os.tmpdir())}: mean of ≥ ${calls} calls (writes ${writeCalls}), best of ${rounds} turns; floor = readFileSync + JSON.parse of the file read`;
  return [
    { title: `Registry sync calls, files just written (every read reads), ${what}`, rows: await perCall(calls, writeCalls, rounds, 'written') },
    { title: `Registry sync calls, files settled (unchanged > 2 s: a read is one stat), ${what}`, rows: await perCall(calls, writeCalls, rounds, 'settled') },
  ];
}

module.exports = { name: 'registry-calls', description: 'per-call time of the sync registry API: native vs plain JS', options, run };
