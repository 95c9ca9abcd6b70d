// A fake `aiwg serve` for __test__/lifecycle.test.mjs: one node:http server
// on 127.0.0.1 that answers executor-v1 dispatches and accepts executor
// WebSocket streams (`ws` WebSocketServer on the same port). The test pushes
// executor events down the sockets itself.
//
//   import { startFakeServe } from './helpers/lifecycle-serve.mjs';
//
//   const serve = await startFakeServe({
//     executorFor: ({ sessionId, missionId }) => 'ex-1',   // executor_id of the 202
//     dispatchAnswer: (d) => undefined | { status, body }   // override the 202,
//                  | { reset: true } | { status, raw: 'text' },  // or cut the connection, or send garbage
//                  (any of them with delayMs: answer that much later)
//     onConnection: (conn) => {},                          // e.g. send executor.resync
//     rejectUpgrade: ({ executorId, url }) => 0 | 401,     // refuse an upgrade
//   });
//   serve.url, serve.port
//   serve.dispatches   // [{sessionId, missionId, executorId, body, headers}]
//   serve.connections  // [{executorId, url, token, ws, open, closeCode, closeReason, closed}]
//   serve.open('ex-1') // open connections of one executor
//   serve.send('ex-1', objectOrStringOrBuffer)  // → number of sockets it went to
//   await serve.close()                        // kill: sockets terminated, port freed
//
// "Kill and restart on the same port": `await serve.close()` and then
// `startFakeServe({ port: serve.port, … })`.

import http from 'node:http';
import { WebSocketServer } from 'ws';

/** Start a fake serve; resolves once it listens. */
export async function startFakeServe(options = {}) {
  const {
    port = 0,
    executorFor = () => 'ex-1',
    dispatchAnswer = () => undefined,
    onConnection = () => {},
    rejectUpgrade = () => 0,
  } = options;
  const dispatches = [];
  const connections = [];
  const upgrades = [];

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const match = /^\/api\/v1\/sessions\/([^/?]+)\/dispatch$/.exec(req.url);
      if (req.method !== 'POST' || !match) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":"not_found"}');
        return;
      }
      let body = null;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = null;
      }
      const sessionId = decodeURIComponent(match[1]);
      const missionId = body && body.mission_id;
      const executorId = executorFor({ sessionId, missionId, body, headers: req.headers });
      const record = { sessionId, missionId, executorId, body, headers: req.headers };
      dispatches.push(record);
      const answer = dispatchAnswer(record);
      const send = () => {
        if (res.destroyed) return;
        if (answer && answer.reset) {
          req.socket.destroy();
        } else if (answer && answer.raw !== undefined) {
          res.writeHead(answer.status, { 'content-type': 'text/html' });
          res.end(answer.raw);
        } else if (answer && answer.status) {
          res.writeHead(answer.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(answer.body ?? {}));
        } else {
          res.writeHead(202, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ mission_id: missionId, executor_id: executorId, status: 'assigned' }));
        }
      };
      if (answer && answer.delayMs) {
        const timer = setTimeout(send, answer.delayMs);
        res.on('close', () => clearTimeout(timer));
      } else {
        send();
      }
    });
  });

  // No maxPayload limit needed: the server only receives close frames.
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => {});
    const url = new URL(req.url, 'http://serve.invalid');
    const match = /^\/ws\/executors\/([^/]+)$/.exec(url.pathname);
    if (!match) {
      socket.destroy();
      return;
    }
    const executorId = decodeURIComponent(match[1]);
    upgrades.push({ executorId, url: req.url });
    const refuse = rejectUpgrade({ executorId, url: req.url });
    if (refuse) {
      socket.end(`HTTP/1.1 ${refuse} Refused\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = {
        executorId,
        url: req.url,
        token: url.searchParams.get('token'),
        ws,
        open: true,
        closeCode: null,
        closeReason: null,
        closed: null,
      };
      conn.closed = new Promise((resolve) => {
        ws.on('close', (code, reason) => {
          conn.open = false;
          conn.closeCode = code;
          conn.closeReason = reason.toString();
          resolve(code);
        });
      });
      ws.on('error', () => {});
      connections.push(conn);
      onConnection(conn);
    });
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = server.address().port;
  let closing = null;

  return {
    url: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    dispatches,
    connections,
    upgrades,
    /** Open connections of `executorId`. */
    open(executorId) {
      return connections.filter((c) => c.open && c.executorId === executorId);
    },
    /** Send `data` (object → JSON text; string → text; Buffer → binary) to every open socket of `executorId`. */
    send(executorId, data) {
      const frame = typeof data === 'string' || Buffer.isBuffer(data) ? data : JSON.stringify(data);
      let n = 0;
      for (const conn of connections) {
        if (conn.open && conn.executorId === executorId && conn.ws.readyState === conn.ws.OPEN) {
          conn.ws.send(frame);
          n++;
        }
      }
      return n;
    },
    /** Kill the serve: every socket dropped, the port freed. Idempotent. */
    close() {
      if (!closing) {
        closing = (async () => {
          for (const conn of connections) conn.ws.terminate();
          wss.close();
          server.closeAllConnections();
          await new Promise((resolve) => server.close(() => resolve()));
        })();
      }
      return closing;
    },
  };
}
