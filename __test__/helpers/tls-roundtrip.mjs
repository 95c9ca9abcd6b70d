// A child process for tls.test.mjs: an HTTPS serve and a WSS executor
// stream on 127.0.0.1 with a certificate of the test CA, and the package's
// Rust clients (reqwest, tokio-tungstenite) talking to them. Whether the CA
// is trusted is up to NODE_EXTRA_CA_CERTS, as for Node's own clients.
// Prints one JSON line: {dispatch, ws}.

import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import { dispatchMission, startExecutorWS } from '../../index.mjs';

const dir = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'fixtures', 'tls');
const server = https.createServer(
  { cert: fs.readFileSync(path.join(dir, 'server.pem')), key: fs.readFileSync(path.join(dir, 'server.key')) },
  (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ mission_id: 'm-1', executor_id: 'exec-tls', status: 'assigned' }));
    });
  },
);
const wss = new WebSocketServer({ server });
wss.on('connection', (socket) => {
  socket.send(JSON.stringify({ event: 'mission.started', executor_id: 'exec-tls', mission_id: 'm-1', ts: 't' }));
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `https://127.0.0.1:${server.address().port}`;

const dispatch = await dispatchMission({ aiwgServeUrl: url, maxAttempts: 1 }, 'mc-1', { mission_id: 'm-1', objective: 'x' });

const ws = await new Promise((resolve) => {
  const states = [];
  const stream = startExecutorWS({
    aiwgServeUrl: url,
    executorId: 'exec-tls',
    reconnectBaseMs: 50,
    onState: (state) => states.push(state),
    onEvent: (event) => {
      stream.stop().then(() => resolve({ event: event.event, states }));
    },
  });
  setTimeout(() => stream.stop().then(() => resolve({ event: null, states })), 1500);
});

console.log(JSON.stringify({ dispatch, ws }));
server.closeAllConnections();
wss.close();
server.close();
