// Child process for __test__/queue-tailer.test.mjs: after stop() the
// process must be able to exit on its own (SPEC §6.6: nothing native keeps
// the event loop alive).
//
//   node tailer-exits.mjs [fetch]
//
// Starts a real node:http server on 127.0.0.1 that accepts every dispatch,
// a session with one queued mission in a temp dir, and a tailer (executor WS
// subscription left at its default) on both. Once the mission is
// dispatched it stops the tailer, closes the server, removes the temp dir,
// prints one JSON line {type:'stopped', logs, status, requests} and then
// does nothing: no timers, no handles. The parent expects the process to
// exit by itself shortly after that line. With the `fetch` argument the
// dispatch goes through an injected fetchImpl (global fetch) instead of the
// native HTTP client.

import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startQueueTailer } from '../../esm/queue-tailer.mjs';

const useFetch = process.argv[2] === 'fetch';
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-tailer-exits-'));
const file = path.join(root, 'sessions', 'one', 'session.json');
fs.mkdirSync(path.dirname(file), { recursive: true });
fs.writeFileSync(
  file,
  JSON.stringify({ id: 'mc-exit-000001', missions: [{ id: 'm-lz0-000001', objective: 'exit cleanly', status: 'queued' }] }, null, 2),
);

let requests = 0;
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    // Only dispatches count; the executor stream's upgrade request does not.
    if (req.method === 'POST') requests++;
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ mission_id: 'm-lz0-000001', executor_id: 'ex-exit', status: 'assigned' }));
  });
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}`;

const logs = [];
const tailer = await startQueueTailer({
  aiwgServeUrl: url,
  watchDir: root,
  retryBaseMs: 5,
  logger: (msg) => logs.push(msg),
  ...(useFetch ? { fetchImpl: (u, init) => fetch(u, init) } : {}),
});
await tailer.stop();
const status = JSON.parse(fs.readFileSync(file, 'utf8')).missions[0].status;
server.closeAllConnections();
await new Promise((resolve) => server.close(resolve));
fs.rmSync(root, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify({ type: 'stopped', logs, status, requests })}\n`);
