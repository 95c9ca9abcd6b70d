// A stand-in for `aiwg serve` in tests: a node:http server on 127.0.0.1
// whose answers are scripted per test, and which records every request.
//
//   import { startScriptedServe, refusedUrl } from './helpers/scripted-serve.mjs';
//
//   const serve = await startScriptedServe([
//     { status: 503, body: { error: 'no_executor_available' } },   // 1st request
//     { status: 202, body: { executor_id: 'ex-1' } },              // 2nd and later
//   ]);
//   … dispatch to serve.url …
//   serve.requests  // [{method, url, headers, body, at}], in arrival order
//   await serve.close();  // always, in teardown (drops keep-alive sockets too)
//
// The script is either an array of answers (request i gets answer i; the
// last one repeats) or a function `(request, index) => answer` (it may
// return a promise). An answer is an object:
//
//   status    HTTP status (default 200)
//   body      a string is sent as is; anything else as JSON (and, unless
//             `headers` says otherwise, with content-type application/json);
//             undefined → empty body
//   headers   extra response headers
//   delayMs   wait this long before answering (cancelled if the client goes away)
//   hang      true → never answer (the socket stays open until close())
//   stall     true → send the status line and headers and the first half of
//             the body, then never finish
//
// `request.body` is the full request body as a string; `request.at` is
// `performance.now()` when it finished arriving.

import http from 'node:http';
import { performance } from 'node:perf_hooks';

/** Start a scripted server; resolves to `{url, port, requests, close()}`. */
export async function startScriptedServe(script) {
  const requests = [];
  const timers = new Set();
  const answerFor = typeof script === 'function'
    ? script
    : (_req, i) => script[Math.min(i, script.length - 1)];

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const request = {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: performance.now(),
      };
      const index = requests.push(request) - 1;
      const answer = (await answerFor(request, index)) ?? {};
      if (answer.hang) return;
      const send = () => {
        if (res.destroyed) return;
        const headers = { ...answer.headers };
        let text = '';
        if (typeof answer.body === 'string') text = answer.body;
        else if (answer.body !== undefined) {
          text = JSON.stringify(answer.body);
          if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
            headers['content-type'] = 'application/json';
          }
        }
        if (answer.stall) {
          res.writeHead(answer.status ?? 200, headers);
          res.write(text.slice(0, Math.floor(text.length / 2)) || ' ');
          return;
        }
        res.writeHead(answer.status ?? 200, headers);
        res.end(text);
      };
      if (!answer.delayMs) return send();
      const timer = setTimeout(() => {
        timers.delete(timer);
        send();
      }, answer.delayMs);
      timers.add(timer);
      res.on('close', () => {
        clearTimeout(timer);
        timers.delete(timer);
      });
    });
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  let closed = null;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    server,
    /** Stop: clears pending answers, drops every connection, closes. Idempotent. */
    close() {
      if (!closed) {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        closed = new Promise((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
      }
      return closed;
    },
  };
}

/** An http URL on 127.0.0.1 where nothing listens (connections are refused). */
export async function refusedUrl() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}
