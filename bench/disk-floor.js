'use strict';
// Scenario: the disk's floor, the fastest the file system lets a bridge go.
//
// For S session files of M missions (as the sweep writes them), each is
// replaced once durably with its missions `assigned`: an exclusive temp
// file, write, fsync, close, rename over the session file, then fsync of
// the directory. Nothing else: no reading, no locks, no network. Done with
// 1, 8, 32 and 64 replaces in flight (a child with as many libuv threads);
// the best is the floor the sweep is measured against, and one at a time
// gives the time of one bare durable replace, the floor of an event.
//
// run.js runs this first and last (when selected), so every ratio of the
// run can be read against a floor taken in the same minutes.

const fs = require('node:fs');
const path = require('node:path');
const lib = require('./lib.js');
const { mission, writeSession } = require('./tailer-child.js');

const IN_FLIGHT = [1, 8, 32, 64];

// ---- child side ----------------------------------------------------------------

/** Replace every file of `files` durably, `inFlight` at a time; → ns taken. */
async function replaceAll(files, texts, inFlight) {
  const fsp = fs.promises;
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      const file = files[i];
      const tmp = `${file}.floor-${i}.tmp`;
      const fh = await fsp.open(tmp, 'wx');
      try {
        await fh.writeFile(texts[i]);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, file);
      const dir = await fsp.open(path.dirname(file), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    }
  };
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(inFlight, files.length) }, worker));
  return process.hrtime.bigint() - start;
}

const tasks = {
  async floor({ files, texts, inFlight }) {
    return { ns: await replaceAll(files, texts, inFlight) };
  },
};

if (require.main === module) {
  lib.serveChild((args) => tasks[args.task](args));
}

// ---- parent side ---------------------------------------------------------------

/**
 * The floor for `sessions` session files of `missionsPer` missions:
 * `{bestMs, bestInFlight, oneMs, rows}`; `oneMs` is one bare durable
 * replace (the mean, one at a time).
 */
async function measureFloor(sessions, missionsPer, { timeoutMs }) {
  return lib.withTempDir('floor', async (root) => {
    const files = [];
    const texts = [];
    for (let i = 0; i < sessions; i++) {
      const { file, session } = writeSession(root, i, Array.from({ length: missionsPer }, () => mission('queued')));
      files.push(file);
      for (const m of session.missions) m.status = 'assigned';
      texts.push(JSON.stringify(session, null, 2));
    }
    const rows = [];
    let best = null;
    let oneMs = NaN;
    for (const inFlight of IN_FLIGHT) {
      const [{ ns }] = await lib.forkAndCollect(__filename, 1, () => ({ task: 'floor', files, texts, inFlight }), {
        timeoutMs,
        env: { ...process.env, UV_THREADPOOL_SIZE: String(Math.max(4, inFlight)) },
      });
      const ms = lib.nsToMs(ns);
      if (inFlight === 1) oneMs = ms / sessions;
      if (!best || ms < best.ms) best = { ms, inFlight };
      rows.push({ case: `${sessions} durable replaces`, 'in flight': inFlight, 'all done ms': ms, 'replaces/s': sessions / (ms / 1000), 'ms each (1 in flight)': inFlight === 1 ? oneMs : '' });
    }
    return { bestMs: best.ms, bestInFlight: best.inFlight, oneMs, rows };
  });
}

/** `ms` as a multiple of `floorMs` (NaN without a floor). */
const ratio = (ms, floorMs) => (Number.isFinite(floorMs) && floorMs > 0 ? ms / floorMs : NaN);

async function run(values, { timeoutMs, floors }) {
  // As many sessions of as many missions as the sweep (queue-tailer's options).
  const sessions = lib.positiveInt('sessions', values.sessions ?? '1000');
  const missionsPer = lib.positiveInt('missions', values.missions ?? '10');
  const floor = await measureFloor(sessions, missionsPer, { timeoutMs });
  if (floors) floors.push({ sessions, ...floor });
  return [{ title: `Bare durable replaces of ${sessions} session files × ${missionsPer} missions (best: ${floor.bestInFlight} in flight)`, rows: floor.rows }];
}

module.exports = { name: 'disk-floor', description: 'the disk floor: bare durable replaces, 1–64 in flight', run, measureFloor, ratio };
