// EXAMPLE ONLY: a tiny stand-in for `aiwg serve` and one executor, for the
// demo (`npm run demo`) and for trying the bridge by hand. It is not a
// server to run anything real on: it pretends to run every mission it gets.
//
//   node examples/demo/emulator.mjs [--port 7337] [--step-ms 400]
//   node bin/mc-native.js bridge --aiwg-serve http://127.0.0.1:7337 --watch <queue dir>
//
// What it speaks is executor-v1 (the shapes of /work/shared/fixtures/executor-v1):
//
//   POST /api/v1/sessions/<id>/dispatch   → 202 {mission_id, executor_id, status:'assigned', estimated_start}
//                                           (400 {error:'Invalid dispatch payload: …'} for a bad body; a
//                                           repeated Idempotency-Key gets the first answer, idempotent_replayed)
//   GET  /ws/executors/<executor id>      → WebSocket: `executor.resync` first, then for every mission
//                                           mission.assigned → mission.started → mission.progress →
//                                           mission.completed, `stepMs` apart
//
// Events of a mission run whether or not a bridge is listening; those sent
// while no socket is open wait and go out after the next resync.
//
// It needs the `ws` package, a devDependency of this repository.

import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { WebSocketServer } from 'ws';

const TERMINAL = new Set(['done', 'failed', 'aborted']);

/**
 * Start the emulator; resolves once it listens to
 * `{url, port, executorId, dispatches, close()}`.
 */
export async function startEmulator({ port = 0, host = '127.0.0.1', executorId = 'demo-executor', stepMs = 400, log = () => {} } = {}) {
  const missions = new Map(); // mission id → {id, state (as last sent), timers}
  const answers = new Map(); // Idempotency-Key → the 202 body
  const outbox = []; // events sent while no socket was open
  const sockets = new Set();
  const dispatches = [];

  const send = (event) => {
    const envelope = { executor_id: executorId, ts: new Date().toISOString(), ...event };
    if (sockets.size === 0) {
      outbox.push(envelope);
      return;
    }
    deliver(envelope);
  };
  const deliver = (envelope) => {
    if (envelope.mission_id && envelope.data && envelope.data.state) missions.get(envelope.mission_id).state = envelope.data.state;
    for (const ws of sockets) ws.send(JSON.stringify(envelope));
    log(`event ${envelope.event}${envelope.mission_id ? ` ${envelope.mission_id}` : ''}`);
  };

  /** The executor "runs" the mission: a few events, `stepMs` apart. */
  const run = (missionId, index) => {
    const mission = { id: missionId, state: 'assigned', timers: [] };
    missions.set(missionId, mission);
    const at = (steps, event) => mission.timers.push(setTimeout(() => send({ mission_id: missionId, ...event }), steps * stepMs));
    at(0, { event: 'mission.assigned', data: { state: 'assigned', estimated_start: new Date(Date.now() + stepMs).toISOString() } });
    at(1, { event: 'mission.started', data: { state: 'running', agent_runtime: 'demo-agent', pty_session_id: `pty-${missionId}` } });
    at(2, { event: 'mission.progress', data: { phase: 'execution', summary: 'working on it', iteration: 1 } });
    at(3 + (index % 3) * 0.5, { event: 'mission.completed', data: { state: 'done', exit_code: 0, summary: 'finished (emulated)' } });
  };

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const reply = (status, body) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const match = /^\/api\/v1\/sessions\/([^/?]+)\/dispatch$/.exec(req.url);
      if (req.method !== 'POST' || !match) return reply(404, { error: 'not_found' });
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(400, { error: 'Invalid JSON body' });
      }
      if (!body || typeof body.mission_id !== 'string' || typeof body.objective !== 'string') {
        return reply(400, { error: 'Invalid dispatch payload: mission_id and objective are required' });
      }
      const key = req.headers['idempotency-key'];
      if (key && answers.has(key)) return reply(202, { ...answers.get(key), idempotent_replayed: true });
      const answer = {
        mission_id: body.mission_id,
        executor_id: executorId,
        status: 'assigned',
        estimated_start: new Date(Date.now() + stepMs).toISOString(),
      };
      if (key) answers.set(key, answer);
      dispatches.push({ sessionId: decodeURIComponent(match[1]), missionId: body.mission_id, objective: body.objective });
      log(`dispatch ${body.mission_id} → ${executorId}`);
      run(body.mission_id, dispatches.length - 1);
      return reply(202, answer);
    });
  });

  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => {});
    const match = /^\/ws\/executors\/([^/?]+)/.exec(req.url);
    if (!match || decodeURIComponent(match[1]) !== executorId) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => {});
      ws.on('close', () => sockets.delete(ws));
      sockets.add(ws);
      log('executor stream opened');
      // First frame on every connection: the missions this executor still holds.
      const owned = [...missions.values()].filter((m) => !TERMINAL.has(m.state)).map((m) => m.id);
      ws.send(JSON.stringify({ event: 'executor.resync', executor_id: executorId, ts: new Date().toISOString(), data: { owned_mission_ids: owned, protocol_version: '1.0.0' } }));
      for (const envelope of outbox.splice(0)) deliver(envelope);
    });
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = server.address().port;
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    executorId,
    dispatches,
    async close() {
      for (const mission of missions.values()) mission.timers.forEach(clearTimeout);
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

// Run on its own: `node examples/demo/emulator.mjs [--port N] [--step-ms N]`.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({ options: { port: { type: 'string', default: '7337' }, 'step-ms': { type: 'string', default: '400' } } });
  const emulator = await startEmulator({
    port: Number(values.port),
    stepMs: Number(values['step-ms']),
    log: (line) => console.log(`${new Date().toISOString().slice(11, 23)} ${line}`),
  });
  console.log(`emulating aiwg serve and executor "${emulator.executorId}" on ${emulator.url} (Ctrl-C to stop)`);
  const stop = () => emulator.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
