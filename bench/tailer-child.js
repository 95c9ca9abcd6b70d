'use strict';
// The tailer side of the queue benchmarks: forked by them, it runs a
// tailer over a temp dir until the parent says stop. Parent and child meet
// through files in that dir: the child writes `started` once the tailer is
// up and stops when `stop` appears. Also the session-file helpers the
// scenarios share.

const fs = require('node:fs');
const path = require('node:path');
const lib = require('./lib.js');

async function until(check, what, ms = 60000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Inotify watches this process holds (Linux: `inotify wd:` lines of /proc/self/fdinfo); null elsewhere. */
function inotifyWatches() {
  let fds;
  try {
    fds = fs.readdirSync('/proc/self/fdinfo');
  } catch {
    return null;
  }
  let watches = 0;
  for (const fd of fds) {
    try {
      watches += (fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').match(/^inotify wd:/gm) || []).length;
    } catch {
      // closed meanwhile
    }
  }
  return watches;
}

/** The kernel's limit on inotify watches per user; null where there is none to read. */
function maxUserWatches() {
  try {
    return Number(fs.readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8'));
  } catch {
    return null;
  }
}

/** The tailer's default `maxInflight` (SPEC §9.3): the POST floor uses as many. */
const MAX_INFLIGHT = 8;

const tasks = {
  // The POST floor: `count` missions POSTed with the package's own
  // dispatchMission, MAX_INFLIGHT at a time, with no files read or written.
  async posts({ url, count }, { dispatchMission }) {
    const options = { aiwgServeUrl: url, logger: () => {} };
    let next = 0;
    const start = process.hrtime.bigint();
    const worker = async () => {
      while (next < count) {
        const i = next++;
        const outcome = await dispatchMission(options, 'mc-bench-floor', { mission_id: `m-floor-${i}`, objective: 'benchmark mission' });
        if (outcome.outcome !== 'accepted') throw new Error(`the floor's POST ${i} was not accepted: ${JSON.stringify(outcome)}`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(MAX_INFLIGHT, count) }, worker));
    return { ns: process.hrtime.bigint() - start };
  },
  async tail({ root, url, idleSeconds }, { startQueueTailer }) {
    const start = process.hrtime.bigint();
    const tailer = await startQueueTailer({ aiwgServeUrl: url, watchDir: root });
    const ready = process.hrtime.bigint();
    const watches = inotifyWatches();
    fs.writeFileSync(path.join(root, 'started'), '');
    let idleCpuUs = null;
    if (idleSeconds) {
      const before = process.cpuUsage();
      await new Promise((r) => setTimeout(r, idleSeconds * 1000));
      const used = process.cpuUsage(before);
      idleCpuUs = used.user + used.system;
    }
    await until(() => fs.existsSync(path.join(root, 'stop')), 'the stop file');
    await tailer.stop();
    return { start, ready, idleCpuUs, watches, maxRssKb: process.resourceUsage().maxRSS };
  },
};

if (require.main === module) {
  lib.serveChild((args, pkg) => tasks[args.task](args, pkg), () => require(lib.PACKAGE));
}

// ---- parent side helpers -------------------------------------------------------

let idCounter = 0;
const missionId = () => `m-${Date.now().toString(36)}-${(idCounter++).toString(16).padStart(6, '0')}`;
const mission = (status) => ({ id: missionId(), objective: 'benchmark mission', status, loop: 0, maxIterations: 5, priority: 'normal', mode: 'direct' });

function writeSession(root, i, missions) {
  const dir = path.join(root, 'sessions', `mc-bench-${i}`);
  fs.mkdirSync(dir, { recursive: true });
  const session = { id: `mc-bench-${i}`, name: `bench ${i}`, state: 'active', maxMissions: 100, createdAt: new Date().toISOString(), missions };
  const file = path.join(dir, 'session.json');
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(session, null, 2));
  fs.renameSync(tmp, file);
  return { file, session };
}

/** Run the tailer child over `root` while `during()` runs in the parent. */
async function withTailer(root, url, timeoutMs, during, idleSeconds = 0) {
  const child = lib.forkAndCollect(__filename, 1, () => ({ task: 'tail', root, url, idleSeconds }), { timeoutMs });
  const parent = (async () => {
    await until(() => fs.existsSync(path.join(root, 'started')), 'the tailer to start', timeoutMs);
    try {
      return await during();
    } finally {
      fs.writeFileSync(path.join(root, 'stop'), '');
    }
  })();
  const [[result], value] = await Promise.all([child, parent]);
  return { result, value };
}

/** The time `count` bare POSTs to `url` take, MAX_INFLIGHT at a time (ms). */
async function postFloor(url, count, timeoutMs) {
  const [{ ns }] = await lib.forkAndCollect(__filename, 1, () => ({ task: 'posts', url, count }), { timeoutMs });
  return lib.nsToMs(ns);
}

module.exports = { until, withTailer, postFloor, mission, missionId, writeSession, maxUserWatches, MAX_INFLIGHT };
