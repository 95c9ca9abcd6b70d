// A stand-in for `aiwg serve`'s executor event stream in tests: ONE port on
// 127.0.0.1 that answers plain HTTP (like the real serve) and upgrades
// `/ws/executors/<id>` requests with the `ws` package's WebSocketServer.
// Each upgrade attempt is scripted.
//
//   import { startWsServe, waitFor } from './helpers/ws-serve.mjs';
//
//   const serve = await startWsServe([
//     { reject: 503 },                                  // 1st attempt: HTTP 503, no upgrade
//     (conn) => { conn.send({ event: 'x' }); conn.ws.close(4001, 'bye'); },  // 2nd
//     null,                                             // 3rd and later: accept, stay open
//   ]);
//   … startExecutorWS({ aiwgServeUrl: serve.url, … }) …
//   await waitFor(() => serve.connections.length === 2, 2000, 'second connection');
//   const { code, reason } = await serve.connections[0].closed;
//   await serve.close();  // always, in teardown (terminates every socket)
//
// The script is an array (attempt i gets entry i; the last one repeats) or a
// function `(attempt, index) => entry`. An entry is:
//
//   function(conn)   accept, then call it with the connection (may be async)
//   null/undefined   accept and do nothing
//   { reject: n }    answer the upgrade with HTTP status n and close
//   { hang: true }   never answer the upgrade (the socket stays open until close())
//
// `attempt` = {index, path, executorId, token, headers}: executorId and token
// are URL-decoded from the request. `serve.attempts` lists every attempt,
// `serve.connections` the accepted ones: an attempt plus
//
//   ws        the server-side `ws` WebSocket
//   received  messages the client sent (strings)
//   send(x)   a string/Buffer is sent as is (a Buffer as a binary frame); anything else as JSON
//   closed    a promise of {code, reason} (reason as a string) when the socket closes
//
// Plain HTTP requests go to `onRequest(req, res)` (option), by default a 404 JSON answer.

import http from 'node:http';
import { WebSocketServer } from 'ws';

/** Start a scripted serve; resolves to `{url, port, attempts, connections, close()}`. */
export async function startWsServe(script = [null], { onRequest } = {}) {
  const entryFor = typeof script === 'function'
    ? script
    : (_attempt, i) => script[Math.min(i, script.length - 1)];
  const attempts = [];
  const connections = [];
  const rawSockets = new Set();
  const wss = new WebSocketServer({ noServer: true });
  const server = http.createServer((req, res) => {
    if (onRequest) return onRequest(req, res);
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'not_found' }));
  });
  server.on('connection', (socket) => {
    rawSockets.add(socket);
    socket.on('close', () => rawSockets.delete(socket));
  });
  server.on('upgrade', async (req, socket, head) => {
    const url = new URL(req.url, 'http://x');
    const m = /^\/ws\/executors\/([^/]*)$/.exec(url.pathname);
    const attempt = {
      index: attempts.length,
      path: req.url,
      executorId: m ? decodeURIComponent(m[1]) : null,
      token: url.searchParams.get('token'),
      headers: req.headers,
    };
    attempts.push(attempt);
    const entry = await entryFor(attempt, attempt.index);
    if (entry && entry.hang) return;
    if (!m || (entry && entry.reject)) {
      const status = (entry && entry.reject) || 404;
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] || 'Error'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = Object.assign(attempt, { ws, received: [] });
      conn.closed = new Promise((resolve) => {
        ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
      });
      ws.on('message', (data) => conn.received.push(data.toString()));
      ws.on('error', () => {});
      conn.send = (x) => ws.send(typeof x === 'string' || Buffer.isBuffer(x) ? x : JSON.stringify(x));
      connections.push(conn);
      if (typeof entry === 'function') Promise.resolve().then(() => entry(conn)).catch(() => {});
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    attempts,
    connections,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      for (const s of rawSockets) s.destroy();
      wss.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** An http:// URL on 127.0.0.1 where nothing listens (connections are refused). */
export async function refusedServeUrl() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

/** Poll `predicate` every 5 ms; reject with `what` after `timeoutMs`. */
export async function waitFor(predicate, timeoutMs = 2000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
