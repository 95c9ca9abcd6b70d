'use strict';
// Scenario: the queue tailer against a local serve answering 202 (SPEC §6).
//
// - sweep: S sessions × M queued missions; time from startQueueTailer() to
//   every mission `assigned` on disk (the initial sweep dispatches and
//   writes back before it resolves; the files are checked afterwards), the
//   tailer process's peak RSS and the inotify watches it holds. Again with
//   L sessions (--large-sessions, 100,000 missions by default), after a
//   floor of its own; run.js sets every sweep beside its floor. Before each
//   sweep, its POST floor: as many missions POSTed to the same serve with
//   the package's dispatchMission, 8 at a time (the tailer's maxInflight),
//   no files touched. A sweep cannot beat it, whatever the disk.
// - append: a session among S idle ones; a mission is appended (temp file
//   + rename) and the time until serve receives its POST is measured, K times.
// - idle: a tailer watching S (and L) sessions with nothing queued; CPU it
//   uses in a quiet period.
//
// The tailer runs in a forked child (tailer-child.js), so its RSS and CPU
// are its own; serve runs in the parent.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const lib = require('./lib.js');
const { until, withTailer, postFloor, mission, writeSession, maxUserWatches, MAX_INFLIGHT } = require('./tailer-child.js');
const { measureFloor } = require('./disk-floor.js');

const TARGETS = { sweepRssMb: 100, largeRssMb: 200, sweepFloorRatio: 2, appendP50: 1, appendP99: 3, idleCpuS: 0.1 };

const options = {
  sessions: { type: 'string', default: '1000', description: 'sessions for the sweep, append and idle runs' },
  'large-sessions': { type: 'string', default: '10000', description: 'sessions for the large sweep (with its own floor) and idle runs; 0 skips them' },
  missions: { type: 'string', default: '10', description: 'queued missions per session (sweep)' },
  appends: { type: 'string', default: '50', description: 'missions appended one by one (append)' },
  'idle-seconds': { type: 'string', default: '10', description: 'length of the idle measurement' },
};

// ---- parent side ---------------------------------------------------------------

/** A serve that answers every dispatch 202 and notes when each mission's POST arrived. */
async function startServe() {
  const received = new Map();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const at = process.hrtime.bigint();
      let missionId = null;
      try {
        missionId = JSON.parse(Buffer.concat(chunks).toString()).mission_id;
      } catch {}
      if (req.method === 'POST') received.set(missionId, at);
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ mission_id: missionId, executor_id: 'bench-executor', status: 'assigned' }));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    received,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

async function sweep(sessions, missionsPer, timeoutMs, sweeps, rssBoundMb = TARGETS.sweepRssMb) {
  return lib.withTempDir('sweep', async (root) => {
    const serve = await startServe();
    try {
      const files = [];
      for (let i = 0; i < sessions; i++) files.push(writeSession(root, i, Array.from({ length: missionsPer }, () => mission('queued'))).file);
      const total = sessions * missionsPer;
      const postsMs = await postFloor(serve.url, total, timeoutMs);
      serve.received.clear();
      const { result } = await withTailer(root, serve.url, timeoutMs, async () => {});
      let assigned = 0;
      for (const f of files) assigned += JSON.parse(fs.readFileSync(f, 'utf8')).missions.filter((m) => m.status === 'assigned').length;
      if (assigned !== total) throw new Error(`only ${assigned} of ${total} missions assigned on disk`);
      const ms = lib.nsToMs(result.ready - result.start);
      const rssMb = result.maxRssKb / 1024;
      sweeps.push({ case: `sweep of ${sessions} sessions × ${missionsPer} missions`, sessions, ms, postsMs, targetRatio: TARGETS.sweepFloorRatio });
      const limit = maxUserWatches();
      return [{
        case: `${sessions} sessions × ${missionsPer} missions`,
        'all assigned ms': ms,
        'missions/s': total / (ms / 1000),
        'POSTs': serve.received.size,
        [`POST floor ms (${MAX_INFLIGHT} in flight)`]: postsMs,
        '× POST floor': ms / postsMs,
        'peak RSS MB': rssMb,
        'inotify watches': result.watches === null ? 'n/a' : `${result.watches} of ${limit ?? '?'}`,
        target: lib.target(rssMb < rssBoundMb, `< ${rssBoundMb} MB; time: see the floor table`),
      }];
    } finally {
      await serve.close();
    }
  });
}

async function append(appends, idleSessions, timeoutMs) {
  return lib.withTempDir('append', async (root) => {
    const serve = await startServe();
    try {
      // The queue the append lands in, among idle sessions with nothing queued.
      for (let i = 1; i <= idleSessions; i++) writeSession(root, i, [mission('done'), mission('running')]);
      const { file, session } = writeSession(root, 0, []);
      const { value: latencies } = await withTailer(root, serve.url, timeoutMs, async () => {
        const out = [];
        for (let k = 0; k < appends; k++) {
          const m = mission('queued');
          session.missions.push(m);
          const tmp = `${file}.append.tmp`;
          fs.writeFileSync(tmp, JSON.stringify(session, null, 2));
          const t0 = process.hrtime.bigint();
          fs.renameSync(tmp, file);
          await until(() => serve.received.has(m.id), `the POST of append ${k}`, 10000);
          out.push(lib.nsToMs(serve.received.get(m.id) - t0));
          // Let the write-back land before the next append rewrites the file.
          await until(() => JSON.parse(fs.readFileSync(file, 'utf8')).missions.at(-1).status === 'assigned', 'the write-back', 10000);
          Object.assign(session, JSON.parse(fs.readFileSync(file, 'utf8')));
        }
        return out;
      });
      const s = lib.summarize(latencies);
      return [{
        case: `${appends} appends (temp + rename), ${idleSessions} idle sessions`,
        'p50 ms': s.p50,
        'p99 ms': s.p99,
        'max ms': s.max,
        target: lib.target(s.p50 < TARGETS.appendP50 && s.p99 < TARGETS.appendP99, `p50 < ${TARGETS.appendP50}, p99 < ${TARGETS.appendP99} ms`),
      }];
    } finally {
      await serve.close();
    }
  });
}

async function idle(sessions, seconds, timeoutMs) {
  return lib.withTempDir('idle', async (root) => {
    const serve = await startServe();
    try {
      for (let i = 0; i < sessions; i++) writeSession(root, i, [mission('done'), mission('running')]);
      const { result } = await withTailer(root, serve.url, timeoutMs + seconds * 1000, async () => {}, seconds);
      const cpuS = result.idleCpuUs / 1e6;
      const budget = (TARGETS.idleCpuS * seconds) / 10;
      return [{
        case: `${sessions} sessions, ${seconds} s idle`,
        'CPU s': cpuS,
        'peak RSS MB': result.maxRssKb / 1024,
        target: lib.target(cpuS < budget, `< ${lib.fmt(budget)} s`),
      }];
    } finally {
      await serve.close();
    }
  });
}

async function run(values, { timeoutMs, sweeps = [], floors = [] }) {
  const sessions = lib.positiveInt('sessions', values.sessions);
  const large = values['large-sessions'] === '0' ? 0 : lib.positiveInt('large-sessions', values['large-sessions']);
  const missionsPer = lib.positiveInt('missions', values.missions);
  const appends = lib.positiveInt('appends', values.appends);
  const idleSeconds = lib.positiveInt('idle-seconds', values['idle-seconds']);
  const sweepRows = await sweep(sessions, missionsPer, timeoutMs, sweeps);
  const tables = [];
  if (large) {
    // The large sweep's floor, right before it (the disk-floor scenario
    // measures the floor of the default sweep).
    const floor = await measureFloor(large, missionsPer, { timeoutMs });
    floors.push({ sessions: large, ...floor });
    tables.push({ title: `Bare durable replaces of ${large} session files (best: ${floor.bestInFlight} in flight)`, rows: floor.rows });
    sweepRows.push(...(await sweep(large, missionsPer, timeoutMs * 4, sweeps, TARGETS.largeRssMb)));
  }
  const idleRows = await idle(sessions, idleSeconds, timeoutMs);
  if (large) idleRows.push(...(await idle(large, idleSeconds, timeoutMs * 4)));
  return [
    { title: 'Initial sweep: every queued mission dispatched and assigned on disk', rows: sweepRows },
    ...tables,
    { title: 'A mission appended to an idle queue: POST received after the rename', rows: await append(appends, sessions, timeoutMs) },
    { title: 'An idle tailer: CPU used while nothing changes', rows: idleRows },
  ];
}

module.exports = { name: 'queue-tailer', description: 'queue tailer: sweep throughput, append latency, idle cost', options, run };
