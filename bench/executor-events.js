'use strict';
// Scenario: executor events written back to session files (SPEC §5, §6.5).
//
// Missions already `assigned` to one executor sit in S sessions; the tailer
// (a forked child, see tailer-child.js) re-follows them at start (§9.1) and
// opens the executor's WebSocket on the parent's fake serve (node:http + ws
// on one port, as aiwg serve does).
//
// - latency: events at a steady rate (default 100/s), each moving one
//   mission assigned → running; the parent watches the session files and
//   notes when each change is on disk.
// - throughput: every mission of M goes started → progress → hitl_required
//   → hitl_responded → completed, sent as fast as the socket takes them;
//   events per second until every mission is `done` on disk.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { WebSocketServer } = require('ws');
const lib = require('./lib.js');
const { until, withTailer, mission, writeSession } = require('./tailer-child.js');
const { measureFloor } = require('./disk-floor.js');

const EXECUTOR = 'bench-executor';
// p50 against one bare durable replace of the same run (disk-floor.js).
const TARGETS = { p50: 2, p50FloorRatio: 1.5, p99: 10, eventsPerSecond: 40000 };

const options = {
  'event-rate': { type: 'string', default: '100', description: 'events per second for the latency run' },
  'latency-events': { type: 'string', default: '500', description: 'events in the latency run' },
  'throughput-missions': { type: 'string', default: '1000', description: 'running missions in the throughput run' },
  'event-sessions': { type: 'string', default: '10', description: 'sessions the missions are spread over' },
};

/** A serve whose executor stream the parent writes to. */
async function startServe() {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ server });
  let socket = null;
  const connected = new Promise((resolve) => {
    wss.on('connection', (ws) => {
      socket = ws;
      resolve();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    connected,
    send: (event) => socket.send(JSON.stringify(event)),
    close: () => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

/** `count` assigned missions spread over `sessions` session files. */
function seed(root, count, sessions) {
  const files = [];
  const ids = [];
  const per = Math.ceil(count / sessions);
  for (let s = 0; s < sessions; s++) {
    const missions = [];
    for (let k = 0; k < per && ids.length < count; k++) {
      const m = { ...mission('assigned'), executorId: EXECUTOR };
      missions.push(m);
      ids.push({ id: m.id, session: s });
    }
    files.push(writeSession(root, s, missions).file);
  }
  return { files, ids };
}

const event = (name, missionId, data = {}) => ({ event: name, executor_id: EXECUTOR, mission_id: missionId, ts: new Date().toISOString(), data });

async function latency(rate, count, sessions, timeoutMs, oneReplaceMs) {
  return lib.withTempDir('events-latency', async (root) => {
    const serve = await startServe();
    try {
      const { files, ids } = seed(root, count, sessions);
      const sentAt = new Map();
      const latencies = [];
      const seen = new Set();
      // `now` is taken before reading: the change was on disk by then (reading
      // and parsing the file is the bench's cost, not the tailer's).
      const look = (s) => {
        const now = process.hrtime.bigint();
        let doc;
        try {
          doc = JSON.parse(fs.readFileSync(files[s], 'utf8'));
        } catch {
          return; // mid-rename
        }
        for (const m of doc.missions) {
          if (m.status === 'running' && sentAt.has(m.id) && !seen.has(m.id)) {
            seen.add(m.id);
            latencies.push(lib.nsToMs(now - sentAt.get(m.id)));
          }
        }
      };
      const watchers = files.map((f, s) => fs.watch(path.dirname(f), () => look(s)));
      try {
        await withTailer(root, serve.url, timeoutMs, async () => {
          await serve.connected;
          await new Promise((r) => setTimeout(r, 200)); // let the stream settle
          const interval = 1000 / rate;
          const start = Date.now();
          for (let i = 0; i < ids.length; i++) {
            const wait = start + i * interval - Date.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            sentAt.set(ids[i].id, process.hrtime.bigint());
            serve.send(event('mission.started', ids[i].id, { agent_runtime: 'bench' }));
          }
          await until(() => {
            files.forEach((_, s) => look(s));
            return seen.size === ids.length;
          }, 'every mission running on disk', 30000);
        });
      } finally {
        watchers.forEach((w) => w.close());
      }
      const s = lib.summarize(latencies);
      return [{
        case: `${count} events at ${rate}/s, ${sessions} sessions`,
        'p50 ms': s.p50,
        'p99 ms': s.p99,
        'max ms': s.max,
        'one replace ms': oneReplaceMs,
        'p50 × one replace': oneReplaceMs ? s.p50 / oneReplaceMs : '',
        target: oneReplaceMs
          ? lib.target(s.p50 <= TARGETS.p50FloorRatio * oneReplaceMs && s.p99 < TARGETS.p99, `p50 ≤ ${TARGETS.p50FloorRatio}× one replace, p99 < ${TARGETS.p99} ms`)
          : lib.target(s.p50 < TARGETS.p50 && s.p99 < TARGETS.p99, `p50 < ${TARGETS.p50}, p99 < ${TARGETS.p99} ms`),
      }];
    } finally {
      await serve.close();
    }
  });
}

async function throughput(missions, sessions, timeoutMs) {
  return lib.withTempDir('events-throughput', async (root) => {
    const serve = await startServe();
    try {
      const { files, ids } = seed(root, missions, sessions);
      let ms = 0;
      let events = 0;
      await withTailer(root, serve.url, timeoutMs, async () => {
        await serve.connected;
        await new Promise((r) => setTimeout(r, 200));
        const start = process.hrtime.bigint();
        for (const { id } of ids) {
          serve.send(event('mission.started', id, { agent_runtime: 'bench' }));
          serve.send(event('mission.progress', id, { message: 'working' }));
          serve.send(event('mission.hitl_required', id, { hitl_id: `h-${id}`, prompt: 'ok?' }));
          serve.send(event('mission.hitl_responded', id, { text: 'yes' }));
          serve.send(event('mission.completed', id, { exit_code: 0, summary: 'done' }));
          events += 5;
        }
        const done = () => files.every((f) => {
          try {
            return JSON.parse(fs.readFileSync(f, 'utf8')).missions.every((m) => m.status === 'done');
          } catch {
            return false;
          }
        });
        await until(done, 'every mission done on disk', 60000);
        ms = lib.nsToMs(process.hrtime.bigint() - start);
      });
      for (const f of files) {
        for (const m of JSON.parse(fs.readFileSync(f, 'utf8')).missions) {
          if (m.status !== 'done' || m.hitlResponse !== 'yes' || m.exitCode !== 0) throw new Error(`mission ${m.id} ended wrong: ${JSON.stringify(m)}`);
        }
      }
      const rate = events / (ms / 1000);
      return [{
        case: `${missions} missions × 5 events, ${sessions} sessions`,
        events,
        'all done ms': ms,
        'events/s': rate,
        target: lib.target(rate >= TARGETS.eventsPerSecond, `>= ${TARGETS.eventsPerSecond}/s`),
      }];
    } finally {
      await serve.close();
    }
  });
}

async function run(values, { timeoutMs, floors = [] }) {
  // One bare durable replace: from the floor measured first in this run,
  // or, run alone, from a small floor of its own measured now.
  const oneReplaceMs = floors.length ? floors[0].oneMs : (await measureFloor(200, 10, { timeoutMs })).oneMs;
  const rate = lib.positiveInt('event-rate', values['event-rate']);
  const count = lib.positiveInt('latency-events', values['latency-events']);
  const missions = lib.positiveInt('throughput-missions', values['throughput-missions']);
  const sessions = lib.positiveInt('event-sessions', values['event-sessions']);
  return [
    { title: 'Executor event → session.json updated (steady rate)', rows: await latency(rate, count, sessions, timeoutMs, oneReplaceMs) },
    { title: 'Executor events sustained until every mission is done on disk', rows: await throughput(missions, sessions, timeoutMs) },
  ];
}

module.exports = { name: 'executor-events', description: 'executor events: write-back latency and sustained throughput', options, run };
