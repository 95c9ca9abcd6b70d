// startQueueTailer (SPEC §1, §2, §6, §9.2, §9.3, §9.4, §10) against a real
// node:http server on 127.0.0.1 scripted per test, on real session files in
// temp directories. No mocks of our code.
// Run: node --test __test__/queue-tailer.test.mjs

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';

import { startQueueTailer, buildDispatchPayload } from '../esm/queue-tailer.mjs';
import { scope, waitFor, within } from './helpers/waiting.mjs';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const EXITS = path.join(HERE, 'helpers', 'tailer-exits.mjs');
const READER = path.join(HERE, 'helpers', 'tailer-session-reader.mjs');
const FAULT = path.join(HERE, 'helpers', 'tailer-fault.mjs');
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const DEFAULTS = {
  aiwgServeUrl: 'http://127.0.0.1:7337',
  watchDir: '.aiwg/ralph-external/mc',
  pollIntervalMs: 1000,
  retryBaseMs: 500,
  maxAttempts: 5,
};

// ---------------------------------------------------------------------------
// helpers

function deferred() {
  let resolve;
  const promise = new Promise((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function tmpRoot(s) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-queue-tailer-'));
  s.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * `script` in a child node process, its output collected in `io`;
 * `settle(ms, what)` waits for its exit ({code, signal}) and kills it,
 * failing with its output, if it has not exited by then.
 */
function runNode(script, args, env = process.env) {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const io = { out: '', err: '', closed: false };
  child.stdout.on('data', (d) => {
    io.out += d;
  });
  child.stderr.on('data', (d) => {
    io.err += d;
  });
  // 'close', not 'exit': the exit can be reported before the last of the
  // child's output is read (seen under emulation), and callers read `io`.
  const exited = new Promise((resolve) =>
    child.on('close', (code, signal) => {
      io.closed = true;
      resolve({ code, signal });
    }),
  );
  const settle = async (ms, what) => {
    try {
      return await within(exited, ms, what);
    } catch (e) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`${e.message}; stdout=${io.out} stderr=${io.err}`);
    }
  };
  return { child, io, settle };
}

/** Run the rest of the test in an empty temp cwd, so the relative default watchDir is ours. */
function inTempCwd(s) {
  const cwd = process.cwd();
  const root = tmpRoot(s);
  process.chdir(root);
  s.defer(() => process.chdir(cwd));
  return root;
}

/** `m-<base36 ms>-<6 hex>` as `aiwg mc dispatch` makes them (SPEC §8). */
function mid(ms, n = 0) {
  return `m-${ms.toString(36)}-${(0xa00000 + n).toString(16)}`;
}
function mission(id, status = 'queued', extra = {}) {
  return { id, objective: `objective of ${id}`, status, loop: 0, maxIterations: 5, priority: 'normal', mode: 'direct', ...extra };
}
function session(id, missions, extra = {}) {
  return { id, name: `name of ${id}`, state: 'active', maxMissions: 8, createdAt: '2025-01-01T00:00:00.000Z', updatedAt: '2025-01-01T00:00:00.000Z', missions, mutationKeys: ['k'], ...extra };
}

function sessionFile(root, dir) {
  return path.join(root, 'sessions', dir, 'session.json');
}
/** Write a session as the newer CLI does: temp file + rename. */
function writeRenamed(file, doc) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.test-${process.pid}-${Math.random().toString(16).slice(2)}`;
  fs.writeFileSync(tmp, JSON.stringify(doc, null, 2));
  fs.renameSync(tmp, file);
}
/** Write a session as the older CLI does: in place, no lock. */
function writeInPlace(file, doc) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(doc, null, 2));
}
function readDoc(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}
function missionIn(file, id) {
  try {
    return readDoc(file).missions.find((m) => m && m.id === id);
  } catch {
    return undefined; // a writer may be mid-write (in-place writes)
  }
}
function statusOf(file, id) {
  return missionIn(file, id)?.status;
}
/**
 * Files the bridge keeps: beside a session file its journal, the writers' lock
 * and, on Windows, the dispatch claim (§9.5, §9.10); under watchDir, the
 * leases that tell bridges on one queue apart (its own presence while it runs).
 */
const BESIDE_SESSION = /(^|\/)(log\.jsonl|\.session\.json\.(lock|claim))$|^\.mc-native-leases\/bridges\/bridge-\d+-[0-9a-f]+\.lease$/;
/** Every regular file under `dir`, relative, sorted. */
function listFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      if (st.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

function reply(res, status, body) {
  try {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  } catch {
    // the client went away
  }
}
function accepted(r, extra = {}) {
  return { mission_id: r.json?.mission_id, executor_id: `ex-${r.json?.mission_id}`, status: 'assigned', ...extra };
}

/**
 * A real node:http server on 127.0.0.1. `handler(r, res)` answers each
 * request; `r` is {method, url, headers, body, json, at}. Tracks how many
 * requests are open at once.
 */
async function serve(s, handler = (r, res) => reply(res, 202, accepted(r)), { port = 0 } = {}) {
  const requests = [];
  const state = { open: 0, maxOpen: 0, handler };
  const server = http.createServer((req, res) => {
    state.open++;
    state.maxOpen = Math.max(state.maxOpen, state.open);
    let counted = true;
    res.on('close', () => {
      if (counted) state.open--;
      counted = false;
    });
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', async () => {
      let json;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const r = { method: req.method, url: req.url, headers: req.headers, body, json, at: Date.now() };
      requests.push(r);
      try {
        await state.handler(r, res);
      } catch (err) {
        reply(res, 500, { error: String(err) });
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const close = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(() => resolve()));
  };
  s.defer(close);
  const actualPort = server.address().port;
  return {
    url: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    requests,
    state,
    close,
    ids: () => requests.map((r) => r.json?.mission_id),
  };
}

/** A port on 127.0.0.1 where nothing listens (a server was there a moment ago). */
async function closedPort() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Start a tailer with a recording logger. Returns {started, log, opts};
 * `started` is the startQueueTailer promise. Teardown stops it (through an
 * AbortSignal when none was given, so a start still in its sweep ends too).
 */
function tailer(s, opts) {
  const log = [];
  const ac = new AbortController();
  const full = {
    retryBaseMs: 5,
    maxAttempts: 3,
    disableWSSubscription: true,
    logger: (msg, meta) => log.push({ msg, meta, at: performance.now() }),
    signal: ac.signal,
    ...opts,
  };
  const started = startQueueTailer(full);
  s.defer(async () => {
    ac.abort();
    const t = await within(started, 10_000, 'tailer start (teardown)').catch(() => null);
    if (t) await within(t.stop(), 10_000, 'tailer stop (teardown)');
  });
  return { started, log, opts: full };
}
const msgs = (log, msg) => log.filter((l) => l.msg === msg);

// ---------------------------------------------------------------------------

describe('startQueueTailer: start', () => {
  it('returns {stop, options} with the options merged over the defaults; first log is queue-tailer:start', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const { started, log, opts } = tailer(s, { watchDir: root, dryRun: true, pollIntervalMs: 250 });
    const tl = await within(started, 10_000, 'start');
    assert.equal(typeof tl.stop, 'function');
    assert.deepEqual(tl.options, { ...DEFAULTS, ...opts });
    assert.equal(tl.options.aiwgServeUrl, 'http://127.0.0.1:7337');
    assert.equal(tl.options.maxAttempts, 3);
    assert.equal(tl.options.pollIntervalMs, 250);
    assert.deepEqual(log[0], { msg: 'queue-tailer:start', meta: { aiwgServeUrl: 'http://127.0.0.1:7337', watchDir: root, dryRun: true }, at: log[0].at });
    await within(tl.stop(), 10_000, 'stop');
  });

  it('the defaults apply when nothing is given (watchDir relative to the cwd)', async (t) => {
    const s = scope(t);
    inTempCwd(s);
    const logs = [];
    const ac = new AbortController();
    const started = startQueueTailer({ logger: (msg, meta) => logs.push({ msg, meta }), signal: ac.signal });
    s.defer(async () => {
      ac.abort();
      const tl = await within(started, 10_000, 'start').catch(() => null);
      if (tl) await within(tl.stop(), 10_000, 'stop');
    });
    const tl = await within(started, 10_000, 'start');
    for (const [k, v] of Object.entries(DEFAULTS)) assert.equal(tl.options[k], v, k);
    assert.equal(logs[0].msg, 'queue-tailer:start');
    assert.equal(logs[0].meta.aiwgServeUrl, DEFAULTS.aiwgServeUrl);
    assert.equal(logs[0].meta.watchDir, DEFAULTS.watchDir);
    assert.ok(!logs[0].meta.dryRun, 'dryRun is off unless asked for');
  });

  it('rejects wrong option types with a TypeError naming the option, and starts nothing', async () => {
    const logs = [];
    const logger = (msg) => logs.push(msg);
    // Only where the original crashes on the value itself: fs and path
    // refuse a watchDir that is not a string, `.replace` a URL that is not
    // one, and it calls the logger and listens to the signal outside any try.
    const cases = [
      [{ watchDir: 5, logger }, 'watchDir'],
      [{ watchDir: os.tmpdir(), aiwgServeUrl: 7337, logger }, 'aiwgServeUrl'],
      [{ watchDir: os.tmpdir(), logger: 'x' }, 'logger'],
      [{ watchDir: os.tmpdir(), signal: {}, logger }, 'signal'],
    ];
    for (const [opts, name] of cases) {
      const p = startQueueTailer(opts);
      assert.ok(p instanceof Promise, 'async: a promise even for bad options');
      await assert.rejects(within(p, 5000, name), (err) => {
        assert.ok(err instanceof TypeError, `${name}: got ${err && err.name}: ${err && err.message}`);
        assert.ok(err.message.includes(name), `the TypeError names ${name}: ${err.message}`);
        return true;
      });
    }
    await delay(50);
    assert.deepEqual(logs, [], 'no tailer started');
  });

  // Issue 10: plain JS handles these, so the tailer starts as the original did.
  it('options plain JS handles start the tailer: an unusable URL, a fetchImpl that is not a function, numeric strings, an object for a number', async (t) => {
    const s = scope(t);
    for (const extra of [
      { aiwgServeUrl: 'nope' },
      { fetchImpl: 'fetch' },
      { pollIntervalMs: '1000' },
      { retryBaseMs: {} },
      { maxAttempts: '5' },
      { reconnectBaseMs: null, maxInflight: '2', requestTimeoutMs: 'soon' },
    ]) {
      const root = tmpRoot(s);
      const { started, log, opts } = tailer(s, { watchDir: root, ...extra });
      const tl = await within(started, 10_000, JSON.stringify(extra));
      assert.deepEqual(tl.options, { ...DEFAULTS, ...opts }, JSON.stringify(extra));
      for (const [k, v] of Object.entries(extra)) assert.ok(Object.is(tl.options[k], v), k);
      assert.equal(log[0].msg, 'queue-tailer:start');
      await within(tl.stop(), 10_000, 'stop');
    }
  });

  it('a string (or null) for options spreads as JS spreads it: the defaults, plus its indices', async (t) => {
    const s = scope(t);
    inTempCwd(s);
    for (const options of ['ab', null]) {
      const tl = await within(startQueueTailer(options), 10_000, `start ${options}`);
      s.defer(() => tl.stop());
      assert.deepEqual(tl.options, options === null ? { ...DEFAULTS } : { ...DEFAULTS, 0: 'a', 1: 'b' });
      await within(tl.stop(), 10_000, 'stop');
    }
  });
});

describe('startQueueTailer: options read as plain JS reads them (issue 10)', () => {
  it("returns the caller's options merged over the defaults, values JSON cannot carry included", async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const odd = { nested: { fn: () => 1, n: NaN } };
    const { started, opts } = tailer(s, { watchDir: root, dryRun: 'yes', retryBaseMs: NaN, maxAttempts: Infinity, pollIntervalMs: undefined, extra: odd });
    const tl = await within(started, 10_000, 'start');
    assert.deepEqual(tl.options, { ...DEFAULTS, ...opts });
    assert.ok(Number.isNaN(tl.options.retryBaseMs));
    assert.equal(tl.options.maxAttempts, Infinity);
    assert.ok('pollIntervalMs' in tl.options && tl.options.pollIntervalMs === undefined, 'an explicit undefined overrides the default, as a spread does');
    assert.equal(tl.options.extra, odd, 'the same object');
    assert.equal(tl.options.dryRun, 'yes');
    await within(tl.stop(), 10_000, 'stop');
  });

  it('queue-tailer:start logs dryRun as given; a truthy dryRun is dry', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    writeRenamed(sessionFile(root, 'a'), session('mc-dry', [mission(mid(Date.now(), 1))]));
    const { started, log } = tailer(s, { watchDir: root, dryRun: 'yes' });
    await within(started, 10_000, 'start');
    assert.deepEqual(log[0].meta, { aiwgServeUrl: DEFAULTS.aiwgServeUrl, watchDir: root, dryRun: 'yes' });
    assert.equal(msgs(log, 'queue-tailer:would-dispatch').length, 1);
    const root2 = tmpRoot(s);
    const second = tailer(s, { watchDir: root2 });
    await within(second.started, 10_000, 'start');
    assert.ok('dryRun' in second.log[0].meta && second.log[0].meta.dryRun === undefined, 'unset: undefined, as the original logs it');
  });

  it("maxAttempts '2' and retryBaseMs '1' are 2 attempts 1 ms apart; null is the default", async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const id = mid(Date.now(), 1);
    const file = sessionFile(root, 'a');
    writeRenamed(file, session('mc-coerce', [mission(id)]));
    const srv = await serve(s, (r, res) => reply(res, 500, { error: 'boom' }));
    const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root, maxAttempts: '2', retryBaseMs: '1' });
    await within(started, 10_000, 'start');
    assert.equal(srv.requests.length, 2);
    assert.deepEqual(msgs(log, 'dispatch-client:retrying').map((l) => l.meta.delay), [1]);
    assert.equal(statusOf(file, id), 'failed');
    assert.equal(missionIn(file, id).dispatchAttempts, 2);

    const root2 = tmpRoot(s);
    const file2 = sessionFile(root2, 'a');
    writeRenamed(file2, session('mc-null', [mission(id)]));
    srv.requests.length = 0;
    const second = tailer(s, { aiwgServeUrl: srv.url, watchDir: root2, maxAttempts: null, retryBaseMs: 1 });
    await within(second.started, 10_000, 'start');
    assert.equal(srv.requests.length, 5, 'maxAttempts null → 5');
  });

  it('item 4: with fetchImpl, an aiwgServeUrl without a scheme reaches fetchImpl as is', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const id = mid(Date.now(), 1);
    const file = sessionFile(root, 'a');
    writeRenamed(file, session('mc-noscheme', [mission(id)]));
    const urls = [];
    const { started } = tailer(s, {
      aiwgServeUrl: 'localhost:7337',
      watchDir: root,
      fetchImpl: async (url) => {
        urls.push(url);
        return { status: 202, text: async () => JSON.stringify({ executor_id: 'ex-ns' }) };
      },
    });
    await within(started, 10_000, 'start');
    assert.deepEqual(urls, ['localhost:7337/api/v1/sessions/mc-noscheme/dispatch']);
    assert.equal(statusOf(file, id), 'assigned');
  });

  it('an unusable aiwgServeUrl without fetchImpl: every dispatch is a transport failure, the mission stays queued (§9.2)', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const id = mid(Date.now(), 1);
    const file = sessionFile(root, 'a');
    writeRenamed(file, session('mc-nope', [mission(id)]));
    const { started, log } = tailer(s, { aiwgServeUrl: 'nope', watchDir: root, maxAttempts: 1 });
    await within(started, 10_000, 'start');
    assert.deepEqual(msgs(log, 'dispatch-client:network-error').map((l) => l.meta.error).slice(0, 1), ['Failed to parse URL from nope/api/v1/sessions/mc-nope/dispatch']);
    assert.deepEqual(msgs(log, 'queue-tailer:dispatch-deferred').map((l) => l.meta.reason), ['unreachable']);
    assert.equal(statusOf(file, id), 'queued');
  });

  it('executorTokens and subscribeExecutors are read as JS reads them: a number token, falsy entries skipped', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const urls = [];
    class Socket {
      constructor(url) {
        urls.push(url);
      }

      addEventListener() {}

      close() {}
    }
    const { started } = tailer(s, {
      watchDir: root,
      disableWSSubscription: 0,
      WebSocketImpl: Socket,
      executorTokens: { 'ex-a': 7, 'ex-b': '' },
      subscribeExecutors: ['ex-a', '', null, 'ex-b'],
    });
    const tl = await within(started, 10_000, 'start');
    await waitFor(() => urls.length === 2, 3000, 'two subscriptions');
    assert.deepEqual(urls.sort(), [`${buildWsUrlFor('ex-a')}?token=7`, buildWsUrlFor('ex-b')]);
    await within(tl.stop(), 10_000, 'stop');
  });
});

function buildWsUrlFor(executorId) {
  return `ws://127.0.0.1:7337/ws/executors/${encodeURIComponent(executorId)}`;
}

describe('startQueueTailer: the initial sweep', () => {
  it('dispatches the queued missions of every session before it resolves; every log line delivered; files show assigned', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const base = Date.now() - 60_000;
    const docs = {
      alpha: session('mc-lzalpha-a1b2c3', [
        mission(mid(base, 1), 'queued', { completion: 'tests pass', targetAgent: 'coder', unknownField: { keep: ['me', 1.5] } }),
        mission(mid(base, 2), 'running', { executorId: 'ex-old' }),
        mission(mid(base + 1, 3), 'queued', { longRunning: true, requiredCapabilities: ['gpu'], metadata: { source: 'test' } }),
      ]),
      beta: session('mc-lzbeta-d4e5f6', [mission(mid(base + 2, 4), 'queued', { mode: 'pty-orchestrator', priority: 'high' }), mission(mid(base, 5), 'done')]),
      gamma: session('mc-lzgamma-0a0b0c', [null, mission(mid(base + 3, 6), 'queued', { objective: 'unicode ça 😀 "q"' })], { laterKey: { n: 1e21 } }),
      empty: session('mc-empty-000000', []),
    };
    const originals = {};
    for (const [dir, doc] of Object.entries(docs)) {
      writeRenamed(sessionFile(root, dir), doc);
      originals[dir] = fs.readFileSync(sessionFile(root, dir), 'utf8');
    }
    const retried = mid(base + 2, 4);
    let retriedOnce = false;
    const srv = await serve(s, (r, res) => {
      if (r.json?.mission_id === retried && !retriedOnce) {
        retriedOnce = true;
        return reply(res, 503, { error: 'no_executor_available' });
      }
      const extra = r.json?.mission_id === mid(base + 1, 3) ? { estimated_start: '2030-01-01T00:00:00Z' } : {};
      return reply(res, 202, accepted(r, extra));
    });

    const t0 = Date.now();
    const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root });
    await within(started, 15_000, 'initial sweep');
    const t1 = Date.now();

    // Synchronously after the promise resolved: every line of the sweep is there.
    const dispatched = msgs(log, 'queue-tailer:dispatched').map((l) => l.meta);
    const want = [
      { missionId: mid(base, 1), sessionId: docs.alpha.id, executorId: `ex-${mid(base, 1)}`, attempts: 1 },
      { missionId: mid(base + 1, 3), sessionId: docs.alpha.id, executorId: `ex-${mid(base + 1, 3)}`, attempts: 1 },
      { missionId: retried, sessionId: docs.beta.id, executorId: `ex-${retried}`, attempts: 2 },
      { missionId: mid(base + 3, 6), sessionId: docs.gamma.id, executorId: `ex-${mid(base + 3, 6)}`, attempts: 1 },
    ];
    const byId = (a, b) => (a.missionId < b.missionId ? -1 : 1);
    assert.deepEqual([...dispatched].sort(byId), [...want].sort(byId));
    assert.equal(log[0].msg, 'queue-tailer:start');
    assert.equal(msgs(log, 'queue-tailer:dispatch-failed').length, 0);
    assert.equal(msgs(log, 'queue-tailer:stop').length, 0);

    // The requests: URL, headers, body = buildDispatchPayload.
    assert.equal(srv.requests.length, 5);
    for (const r of srv.requests) {
      const [dir, doc] = Object.entries(docs).find(([, d]) => d.missions.some((m) => m && m.id === r.json.mission_id));
      const m = doc.missions.find((x) => x && x.id === r.json.mission_id);
      assert.equal(r.method, 'POST');
      assert.equal(r.url, `/api/v1/sessions/${encodeURIComponent(doc.id)}/dispatch`, dir);
      assert.match(r.headers['content-type'], /^application\/json\b/);
      assert.equal(r.headers['idempotency-key'], `${doc.id}:${m.id}`);
      assert.deepEqual(r.json, buildDispatchPayload(m, { sessionId: doc.id }));
    }

    // The files: each queued mission → {...m, executorId, dispatchedAt, dispatchAttempts, estimatedStart, status:'assigned'};
    // everything else byte-for-byte as JSON.stringify would write it.
    for (const [dir, doc] of Object.entries(docs)) {
      const file = sessionFile(root, dir);
      const text = fs.readFileSync(file, 'utf8');
      if (dir === 'empty') {
        assert.equal(text, originals.empty, 'a session with nothing queued is not rewritten');
        continue;
      }
      const onDisk = JSON.parse(text);
      const expected = JSON.parse(JSON.stringify(doc));
      expected.missions = expected.missions.map((m, i) => {
        if (!m || m.status !== 'queued') return m;
        const got = onDisk.missions[i];
        assert.match(got.dispatchedAt, ISO);
        const at = Date.parse(got.dispatchedAt);
        assert.ok(at >= t0 - 1 && at <= t1 + 1, `dispatchedAt ${got.dispatchedAt} is during the sweep`);
        return {
          ...m,
          executorId: `ex-${m.id}`,
          dispatchedAt: got.dispatchedAt,
          dispatchAttempts: m.id === retried ? 2 : 1,
          estimatedStart: m.id === mid(base + 1, 3) ? '2030-01-01T00:00:00Z' : null,
          status: 'assigned',
        };
      });
      expected.updatedAt = onDisk.updatedAt;
      assert.match(onDisk.updatedAt, ISO);
      assert.equal(text, JSON.stringify(expected, null, 2), `${dir}/session.json`);
    }
  });

  it('a logger that throws does not stop the bridge', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const id = mid(Date.now(), 1);
    writeRenamed(sessionFile(root, 'a'), session('mc-throw', [mission(id)]));
    const srv = await serve(s);
    const { started } = tailer(s, {
      aiwgServeUrl: srv.url,
      watchDir: root,
      logger: () => {
        throw new Error('logger failure');
      },
    });
    await within(started, 10_000, 'start');
    assert.equal(statusOf(sessionFile(root, 'a'), id), 'assigned');
  });
});

describe('startQueueTailer: changes while it runs', () => {
  it('picks up missions appended by rename and by in-place rewrite', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const file = sessionFile(root, 'live');
    const base = Date.now();
    const doc = session('mc-live-000001', [mission(mid(base, 0), 'done')]);
    writeRenamed(file, doc);
    const srv = await serve(s);
    const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root });
    await within(started, 10_000, 'start');
    assert.equal(srv.requests.length, 0);

    // 1. newer CLI: temp file + rename
    const a = mid(base + 1, 1);
    let cur = readDoc(file);
    cur.missions.push(mission(a));
    writeRenamed(file, cur);
    await waitFor(() => statusOf(file, a) === 'assigned', 5000, 'mission added by rename to be assigned');

    // 2. older CLI: rewrite in place (fs.writeFileSync on the same path)
    const b = mid(base + 2, 2);
    cur = readDoc(file);
    cur.missions.push(mission(b));
    writeInPlace(file, cur);
    await waitFor(() => statusOf(file, b) === 'assigned', 5000, 'mission added in place to be assigned');

    // nothing lost, nothing dispatched twice
    assert.deepEqual(readDoc(file).missions.map((m) => m.status), ['done', 'assigned', 'assigned']);
    assert.deepEqual(srv.ids().sort(), [a, b].sort());
    // the log line follows the write
    await waitFor(() => msgs(log, 'queue-tailer:dispatched').length === 2, 2000, 'two dispatched lines');
    await delay(100);
    assert.equal(msgs(log, 'queue-tailer:dispatched').length, 2);
  });

  it('picks up session directories created while it runs (100 of them, file written right after mkdir)', {
  }, async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    writeRenamed(sessionFile(root, 'first'), session('mc-first', []));
    const srv = await serve(s);
    const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root });
    await within(started, 10_000, 'start');
    // Busy watch: another process reads a session file in a tight loop (every
    // open is an event for the watcher), as a live bridge next to the CLI sees.
    const stopFile = path.join(root, 'stop-reader');
    const reader = spawn(process.execPath, [READER, sessionFile(root, 'first'), stopFile], { stdio: 'ignore' });
    const readerExit = new Promise((resolve) => reader.on('exit', resolve));
    s.defer(async () => {
      fs.writeFileSync(stopFile, '');
      await within(readerExit, 5000, 'reader exit').catch(() => reader.kill('SIGKILL'));
    });
    const base = Date.now();
    const made = [];
    const missed = [];
    for (let i = 0; i < 100; i++) {
      const file = sessionFile(root, `later-${i}`);
      const id = mid(base + i, i);
      // like `aiwg mc`: mkdir -p, then the file (older CLI in place, newer by rename)
      if (i % 2) writeRenamed(file, session(`mc-later-${i}`, [mission(id)]));
      else writeInPlace(file, session(`mc-later-${i}`, [mission(id)]));
      made.push({ file, id });
      // Each is given a moment before the next is made (so the dirs come
      // one by one, as from a CLI), and all of them a generous while at the end.
      const ok = await waitFor(() => statusOf(file, id) === 'assigned', 1500, `later-${i}`).then(() => true, () => false);
      if (!ok) missed.push({ file, id, name: `later-${i} (${i % 2 ? 'rename' : 'in place'})` });
    }
    const never = [];
    for (const m of missed) {
      const ok = await waitFor(() => statusOf(m.file, m.id) === 'assigned', 10_000, m.name).then(() => true, () => false);
      if (!ok) never.push(m.name);
    }
    assert.deepEqual(never, [], `new session dirs never dispatched: ${never.join(', ')}`);
    if (missed.length) t.diagnostic(`dispatched after more than 1.5 s (a busy machine): ${missed.map((m) => m.name).join(', ')}`);
    assert.deepEqual(srv.ids().sort(), made.map((m) => m.id).sort());
    assert.equal(msgs(log, 'queue-tailer:dispatch-failed').length, 0);
  });

  it('partial and garbage session files are skipped and logged once; other sessions go on; once fixed they are picked up', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const base = Date.now();
    const good = mid(base, 1);
    const p = mid(base, 2);
    const g = mid(base, 3);
    writeRenamed(sessionFile(root, 'good'), session('mc-good', [mission(good)]));
    const partialDoc = session('mc-partial', [mission(p)]);
    const full = JSON.stringify(partialDoc, null, 2);
    fs.mkdirSync(path.dirname(sessionFile(root, 'partial')), { recursive: true });
    fs.writeFileSync(sessionFile(root, 'partial'), full.slice(0, Math.floor(full.length * 0.6)));
    fs.mkdirSync(path.dirname(sessionFile(root, 'garbage')), { recursive: true });
    fs.writeFileSync(sessionFile(root, 'garbage'), 'this is not json {');
    fs.mkdirSync(path.dirname(sessionFile(root, 'notobject')), { recursive: true });
    fs.writeFileSync(sessionFile(root, 'notobject'), '[1, 2, 3]');

    const srv = await serve(s);
    const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root });
    await within(started, 10_000, 'start');
    assert.equal(statusOf(sessionFile(root, 'good'), good), 'assigned');
    const unreadable = () => msgs(log, 'queue-tailer:session-unreadable');
    const about = (dir) => unreadable().filter((l) => JSON.stringify(l.meta).includes(`${path.sep}${dir}${path.sep}`) || JSON.stringify(l.meta).includes(`"${dir}"`));
    assert.equal(unreadable().length, 3, `one line per bad file: ${JSON.stringify(unreadable())}`);
    for (const dir of ['partial', 'garbage', 'notobject']) assert.equal(about(dir).length, 1, `logged once for ${dir}`);
    assert.equal(msgs(log, 'queue-tailer:tick-error').length, 0);

    // more activity elsewhere does not repeat the lines
    const good2 = mid(base, 4);
    const cur = readDoc(sessionFile(root, 'good'));
    cur.missions.push(mission(good2));
    writeRenamed(sessionFile(root, 'good'), cur);
    await waitFor(() => statusOf(sessionFile(root, 'good'), good2) === 'assigned', 5000, 'second good mission');
    assert.equal(about('notobject').length, 1);

    // fixed: the rest of the partial file arrives (rename), the garbage is rewritten in place
    writeRenamed(sessionFile(root, 'partial'), partialDoc);
    writeInPlace(sessionFile(root, 'garbage'), session('mc-garbage', [mission(g)]));
    await waitFor(() => statusOf(sessionFile(root, 'partial'), p) === 'assigned', 5000, 'the fixed partial session');
    await waitFor(() => statusOf(sessionFile(root, 'garbage'), g) === 'assigned', 5000, 'the fixed garbage session');
    assert.equal(fs.readFileSync(sessionFile(root, 'notobject'), 'utf8'), '[1, 2, 3]', 'an unreadable file is never written');
    assert.deepEqual(srv.ids().sort(), [good, good2, p, g].sort());
  });

  it('a mission that is not an object, has no id or no string objective is skipped with one log line; the others go on (§10)', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const base = Date.now();
    const ok = mid(base, 1);
    const file = sessionFile(root, 'mixed');
    writeRenamed(file, session('mc-mixed', [
      'queued',
      { status: 'queued', objective: 'no id' },
      { id: mid(base, 2), status: 'queued', objective: 42 },
      null,
      mission(ok),
    ]));
    const srv = await serve(s);
    const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root });
    await within(started, 10_000, 'start');
    assert.deepEqual(srv.ids(), [ok]);
    assert.equal(statusOf(file, ok), 'assigned');
    const skipped = msgs(log, 'queue-tailer:skip-invalid-mission');
    assert.deepEqual(skipped.map((l) => [l.meta.index, l.meta.reason]), [
      [1, 'mission has no string id'],
      [2, 'objective is not a string'],
    ]);
    assert.ok(skipped.every((l) => l.meta.sessionId === 'mc-mixed'));
    // Our own write-back changes the file; the same problems are not logged again.
    const again = mid(base, 3);
    const doc = readDoc(file);
    doc.missions.push(mission(again));
    writeRenamed(file, doc);
    await waitFor(() => statusOf(file, again) === 'assigned', 5000, 'the next good mission');
    assert.equal(msgs(log, 'queue-tailer:skip-invalid-mission').length, 2);
  });

  it('a session file over the 32 MiB cap is skipped with a log line, not read (§9.7)', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const file = sessionFile(root, 'huge');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const doc = session('mc-huge', [mission(mid(Date.now(), 1))], { padding: 'x'.repeat(33 * 1024 * 1024) });
    fs.writeFileSync(file, JSON.stringify(doc));
    const srv = await serve(s);
    const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root });
    await within(started, 10_000, 'start');
    assert.deepEqual(srv.ids(), []);
    const lines = msgs(log, 'queue-tailer:session-unreadable');
    assert.equal(lines.length, 1);
    assert.match(lines[0].meta.error, /over the 33554432-byte cap/);
  });

  it("a mission leaving 'queued' between sweep and dispatch → skip-no-longer-queued, no request", async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const file = sessionFile(root, 'a');
    const base = Date.now() - 1000;
    const [first, second, third] = [mid(base, 1), mid(base + 1, 2), mid(base + 2, 3)];
    writeRenamed(file, session('mc-skip-1', [mission(first), mission(second), mission(third)]));
    const hold = deferred();
    const srv = await serve(s, async (r, res) => {
      if (r.json?.mission_id === first) await hold.promise;
      reply(res, 202, accepted(r));
    });
    const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root, maxInflight: 1 });
    await waitFor(() => srv.requests.length === 1, 5000, 'the first request');
    assert.equal(srv.requests[0].json.mission_id, first);

    // While the first is held: someone else starts the second and removes the third.
    const cur = readDoc(file);
    cur.missions[1].status = 'running';
    cur.missions[1].executorId = 'ex-other';
    cur.missions.splice(2, 1);
    writeRenamed(file, cur);
    await delay(100);
    hold.resolve();
    await within(started, 10_000, 'start');

    const skips = msgs(log, 'queue-tailer:skip-no-longer-queued').map((l) => l.meta);
    const s2 = skips.find((m) => m.missionId === second);
    assert.deepEqual(s2, { missionId: second, sessionId: 'mc-skip-1', observedStatus: 'running' });
    const s3 = skips.find((m) => m.missionId === third);
    assert.ok(s3, 'the removed mission is skipped too');
    assert.equal(s3.sessionId, 'mc-skip-1');
    assert.equal(s3.observedStatus ?? null, null, 'a vanished mission has no observed status');
    assert.deepEqual(srv.ids(), [first], 'no request for missions that left the queue');
    const after = readDoc(file);
    assert.deepEqual(after.missions.map((m) => [m.id, m.status]), [[first, 'assigned'], [second, 'running']]);
    assert.equal(after.missions[1].executorId, 'ex-other');
  });
});

describe('startQueueTailer: order and concurrency (§9.3)', () => {
  it('starts missions of several sessions in FIFO order of their id timestamps, then array order (maxInflight 1)', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const base = Date.now() - 3_600_000;
    // [session dir, [offset ms, tag]...] out of order within and across files
    // the earliest missions are in the sessions discovered last
    const layout = {
      c: [[50, 'c50'], [0, 'c00'], [30, 'c30a'], [30, 'c30b'], [70, 'c70']],
      a: [[40, 'a40'], [20, 'a20'], [65, 'a65'], [22, 'a22']],
      b: [[60, 'b60'], [5, 'b05'], [25, 'b25'], [45, 'b45']],
    };
    const all = [];
    let n = 0;
    for (const [dir, items] of Object.entries(layout)) {
      const ms = items.map(([off], i) => ({ ...mission(mid(base + off, n++)), objective: `${dir} ${i}` }));
      items.forEach(([off], i) => all.push({ id: ms[i].id, off, dir, index: i }));
      writeRenamed(sessionFile(root, dir), session(`mc-fifo-${dir}`, ms));
    }
    const expected = [...all].sort((x, y) => x.off - y.off || (x.dir === y.dir ? x.index - y.index : 0)).map((x) => x.id);
    const srv = await serve(s);
    const { started } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root, maxInflight: 1 });
    await within(started, 15_000, 'start');
    assert.equal(srv.state.maxOpen, 1);
    assert.deepEqual(srv.ids(), expected);
  });

  it('FIFO also holds for missions queued while a dispatch is held (maxInflight 1)', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const base = Date.now() - 3_600_000;
    const blocker = mid(base - 1000, 99);
    writeRenamed(sessionFile(root, 'z'), session('mc-fifo-z', [mission(blocker)]));
    const hold = deferred();
    const srv = await serve(s, async (r, res) => {
      if (r.json?.mission_id === blocker) await hold.promise;
      reply(res, 202, accepted(r));
    });
    const { started } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root, maxInflight: 1 });
    await waitFor(() => srv.requests.length === 1, 5000, 'the blocker request');
    const offsets = { x: [30, 5, 50], y: [40, 0, 20], w: [10, 60] };
    const all = [];
    let n = 0;
    for (const [dir, offs] of Object.entries(offsets)) {
      const ms = offs.map((off) => mission(mid(base + off, n++)));
      ms.forEach((m, i) => all.push({ id: m.id, off: offs[i] }));
      writeRenamed(sessionFile(root, dir), session(`mc-fifo-${dir}`, ms));
    }
    // let the watcher see every file before the slot frees up
    await delay(400);
    hold.resolve();
    await within(started, 10_000, 'start');
    await waitFor(() => srv.requests.length === 1 + all.length, 5000, 'every queued mission');
    assert.deepEqual(srv.ids(), [blocker, ...[...all].sort((p, q) => p.off - q.off).map((x) => x.id)]);
  });

  for (const [label, maxInflight, count] of [['default 8', undefined, 12], ['2', 2, 5]]) {
    it(`never more than maxInflight (${label}) requests open at once`, async (t) => {
      const s = scope(t);
      const root = tmpRoot(s);
      const base = Date.now() - 1000;
      const limit = maxInflight ?? 8;
      const ids = [];
      for (const dir of ['a', 'b', 'c']) {
        const ms = [];
        for (let i = 0; i < Math.ceil(count / 3) && ids.length < count; i++) {
          const m = mission(mid(base + ids.length, ids.length));
          ids.push(m.id);
          ms.push(m);
        }
        writeRenamed(sessionFile(root, dir), session(`mc-inflight-${dir}`, ms));
      }
      const release = deferred();
      const srv = await serve(s, async (r, res) => {
        await release.promise;
        reply(res, 202, accepted(r));
      });
      const opts = { aiwgServeUrl: srv.url, watchDir: root };
      if (maxInflight !== undefined) opts.maxInflight = maxInflight;
      const { started } = tailer(s, opts);
      await waitFor(() => srv.requests.length >= limit, 5000, `${limit} requests`);
      await delay(300);
      assert.equal(srv.requests.length, limit, 'no more requests while all slots are held');
      assert.equal(srv.state.open, limit);
      release.resolve();
      await within(started, 10_000, 'start');
      assert.equal(srv.requests.length, count);
      assert.equal(srv.state.maxOpen, limit, `at most ${limit} open at once`);
      for (const dir of ['a', 'b', 'c']) {
        for (const m of readDoc(sessionFile(root, dir)).missions) assert.equal(m.status, 'assigned');
      }
    });
  }
});

describe('startQueueTailer: failures', () => {
  it("terminal answers and exhausted retries → 'failed' with failedAt, failureReason, failureMessage, dispatchAttempts", async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const file = sessionFile(root, 'f');
    const base = Date.now() - 1000;
    const ids = { nf: mid(base, 1), bad: mid(base + 1, 2), busy: mid(base + 2, 3), boom: mid(base + 3, 4), auth: mid(base + 4, 5) };
    const doc = session('mc-fail-1', Object.values(ids).map((id) => mission(id)));
    writeRenamed(file, doc);
    const srv = await serve(s, (r, res) => {
      switch (r.json?.mission_id) {
        case ids.nf:
          return reply(res, 404, { type: 'about:blank', title: 'Not Found', status: 404, detail: 'executor ex-9 not found' });
        case ids.bad:
          return reply(res, 400, { error: 'Invalid dispatch payload: objective' });
        case ids.busy:
          return reply(res, 503, { error: 'no_executor_available' });
        case ids.boom:
          return reply(res, 500, { detail: 'boom' });
        default:
          return reply(res, 401, 'nope, not json');
      }
    });
    const t0 = Date.now();
    const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root, maxAttempts: 2 });
    await within(started, 10_000, 'start');
    const want = {
      [ids.nf]: ['executor_not_found', 'executor ex-9 not found', 1],
      [ids.bad]: ['invalid_request', 'Invalid dispatch payload: objective', 1],
      [ids.busy]: ['no_executor_available', 'dispatch exhausted 2 attempts: no_executor_available', 2],
      [ids.boom]: ['dispatch_error', 'dispatch exhausted 2 attempts: boom', 2],
      [ids.auth]: ['unauthorized', 'nope, not json', 1],
    };
    const text = fs.readFileSync(file, 'utf8');
    const onDisk = JSON.parse(text);
    const expected = JSON.parse(JSON.stringify(doc));
    expected.missions = expected.missions.map((m, i) => {
      const [reason, message, attempts] = want[m.id];
      const got = onDisk.missions[i];
      assert.match(got.failedAt, ISO);
      assert.ok(Date.parse(got.failedAt) >= t0 - 1);
      return { ...m, failedAt: got.failedAt, failureReason: reason, failureMessage: message, dispatchAttempts: attempts, status: 'failed' };
    });
    expected.updatedAt = onDisk.updatedAt;
    assert.equal(text, JSON.stringify(expected, null, 2));
    const failed = msgs(log, 'queue-tailer:dispatch-failed').map((l) => l.meta);
    for (const [id, [reason, , attempts]] of Object.entries(want)) {
      assert.deepEqual(failed.find((m) => m.missionId === id), { missionId: id, sessionId: 'mc-fail-1', reason, attempts });
    }
    assert.equal(failed.length, 5);
    assert.equal(msgs(log, 'queue-tailer:dispatch-deferred').length, 0);
    assert.equal(srv.requests.length, 7, 'terminal answers are not retried; 5xx are, up to maxAttempts');
  });

  it("serve down → mission stays 'queued', dispatch-deferred {reason:'unreachable'}; dispatched once serve listens (§9.2)", async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const file = sessionFile(root, 'd');
    const id = mid(Date.now(), 1);
    writeRenamed(file, session('mc-down-1', [mission(id)]));
    const before = fs.readFileSync(file, 'utf8');
    const port = await closedPort();
    const { started, log } = tailer(s, { aiwgServeUrl: `http://127.0.0.1:${port}`, watchDir: root, maxAttempts: 2 });
    await within(started, 10_000, 'start');
    const deferredLines = msgs(log, 'queue-tailer:dispatch-deferred');
    assert.ok(deferredLines.length >= 1);
    assert.deepEqual(deferredLines[0].meta, { missionId: id, sessionId: 'mc-down-1', reason: 'unreachable' });
    assert.equal(msgs(log, 'queue-tailer:dispatch-failed').length, 0);
    assert.equal(fs.readFileSync(file, 'utf8'), before, 'the session file is untouched: still queued');

    await delay(150); // it keeps trying meanwhile
    assert.equal(statusOf(file, id), 'queued');
    assert.equal(msgs(log, 'queue-tailer:dispatch-failed').length, 0);
    const srv = await serve(s, undefined, { port });
    await waitFor(() => statusOf(file, id) === 'assigned', 8000, 'dispatch once serve is up');
    assert.deepEqual(srv.ids(), [id]);
    assert.equal(missionIn(file, id).executorId, `ex-${id}`);
    await waitFor(() => msgs(log, 'queue-tailer:dispatched').some((l) => l.meta.missionId === id), 2000, 'the dispatched line');
    assert.equal(msgs(log, 'queue-tailer:dispatch-failed').length, 0);
  });
});

describe('startQueueTailer: dryRun', () => {
  it('sends nothing, writes nothing, logs would-dispatch with the exact endpoint and payload digest', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const base = Date.now();
    const objectives = {
      short: 'fix',
      exactly32: 'x'.repeat(32),
      over32: 'abcdefghijklmnopqrstuvwxyz0123456', // 33
      accents: 'é'.repeat(40),
      emoji: '😀'.repeat(20), // 40 UTF-16 units, cut between pairs
      empty: '',
    };
    const ms = Object.values(objectives).map((objective, i) => mission(mid(base, i), 'queued', { objective }));
    ms.push(mission(mid(base, 50), 'running'));
    const sid = 'mc-dry-run01';
    writeRenamed(sessionFile(root, 'a'), session(sid, ms));
    const odd = 'odd id/with space';
    writeRenamed(sessionFile(root, 'b'), session(odd, [mission(mid(base, 60), 'queued', { objective: 'odd' })]));
    const before = { a: fs.readFileSync(sessionFile(root, 'a'), 'utf8'), b: fs.readFileSync(sessionFile(root, 'b'), 'utf8') };

    const srv = await serve(s);
    const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root, dryRun: true });
    await within(started, 10_000, 'start');
    assert.deepEqual(log[0].meta, { aiwgServeUrl: srv.url, watchDir: root, dryRun: true });
    const digest = (m) => `${m.id}:${m.objective.length > 32 ? `${m.objective.slice(0, 32)}…` : m.objective}`;
    const want = [
      ...ms.filter((m) => m.status === 'queued').map((m) => ({ missionId: m.id, sessionId: sid, endpoint: `${srv.url}/api/v1/sessions/${sid}/dispatch`, payloadDigest: digest(m) })),
      { missionId: mid(base, 60), sessionId: odd, endpoint: `${srv.url}/api/v1/sessions/${odd}/dispatch`, payloadDigest: `${mid(base, 60)}:odd` },
    ];
    const got = msgs(log, 'queue-tailer:would-dispatch').map((l) => l.meta);
    assert.deepEqual(got, want);
    assert.equal(got[1].payloadDigest, `${mid(base, 1)}:${'x'.repeat(32)}`);
    assert.equal(got[2].payloadDigest, `${mid(base, 2)}:abcdefghijklmnopqrstuvwxyz012345…`);
    await delay(200);
    assert.equal(srv.requests.length, 0, 'no network in dryRun');
    assert.equal(fs.readFileSync(sessionFile(root, 'a'), 'utf8'), before.a);
    assert.equal(fs.readFileSync(sessionFile(root, 'b'), 'utf8'), before.b);
    assert.equal(msgs(log, 'queue-tailer:dispatched').length, 0);
  });
});

describe('startQueueTailer: stop', () => {
  it("stop() while a request hangs: resolves within a few seconds, the mission stays 'queued', stop line last; stop() again gives the same", async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const file = sessionFile(root, 'a');
    writeRenamed(file, session('mc-stop-1', [mission(mid(Date.now() - 5000, 0), 'done')]));
    const srv = await serve(s, () => {
      /* never answers */
    });
    const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root });
    const tl = await within(started, 10_000, 'start');
    const id = mid(Date.now(), 1);
    const cur = readDoc(file);
    cur.missions.push(mission(id));
    writeRenamed(file, cur);
    const queuedText = fs.readFileSync(file, 'utf8');
    await waitFor(() => srv.requests.length === 1, 5000, 'the hanging request');

    const t0 = Date.now();
    const first = tl.stop();
    const second = tl.stop();
    const [r1, r2] = await within(Promise.all([first, second]), 8000, 'stop()');
    const took = Date.now() - t0;
    assert.ok(took < 7000, `stop() took ${took} ms`);
    assert.equal(r1, r2);
    assert.equal(r1, undefined);
    assert.equal(await within(tl.stop(), 1000, 'third stop()'), undefined);
    assert.equal(statusOf(file, id), 'queued');
    assert.equal(fs.readFileSync(file, 'utf8'), queuedText, 'the session file was not written');
    const last = log.at(-1);
    assert.equal(last.msg, 'queue-tailer:stop');
    assert.deepEqual(Object.keys(last.meta), ['drainedInflight']);
    assert.equal(typeof last.meta.drainedInflight, 'number'); // exact count: see the drainedInflight test
    assert.equal(msgs(log, 'queue-tailer:stop').length, 1);
    assert.equal(msgs(log, 'queue-tailer:dispatch-failed').length, 0);
    const n = log.length;
    await delay(200);
    assert.equal(log.length, n, 'nothing is logged after the stop line');
    assert.equal(srv.requests.length, 1);
  });

  it('stop() with an injected fetchImpl that never settles (and ignores the signal) still resolves within the drain bound', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const file = sessionFile(root, 'a');
    writeRenamed(file, session('mc-stop-2', []));
    let calls = 0;
    let signalSeen;
    const { started, log } = tailer(s, {
      aiwgServeUrl: `http://127.0.0.1:${await closedPort()}`,
      watchDir: root,
      fetchImpl: (url, init) => {
        calls++;
        signalSeen = init.signal;
        return new Promise(() => {});
      },
    });
    const tl = await within(started, 10_000, 'start');
    const id = mid(Date.now(), 1);
    writeRenamed(file, session('mc-stop-2', [mission(id)]));
    await waitFor(() => calls === 1, 5000, 'the fetchImpl call');
    const t0 = Date.now();
    await within(tl.stop(), 8000, 'stop()');
    const took = Date.now() - t0;
    assert.ok(took < 7000, `stop() took ${took} ms (drain is 5 s)`);
    assert.ok(signalSeen && signalSeen.aborted, 'the request signal given to fetchImpl is aborted by stop');
    assert.equal(statusOf(file, id), 'queued');
    assert.equal(log.at(-1).msg, 'queue-tailer:stop');
    assert.equal(typeof log.at(-1).meta.drainedInflight, 'number');
  });

  it('drainedInflight counts the dispatch that was in flight when stop() came (6 tailers at once)', {
  }, async (t) => {
    const s = scope(t);
    const srv = await serve(s, () => {
      /* never answers */
    });
    const runs = [];
    for (let i = 0; i < 6; i++) {
      const root = tmpRoot(s);
      const file = sessionFile(root, 'a');
      writeRenamed(file, session(`mc-drain-${i}`, []));
      const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root });
      runs.push({ file, tl: await within(started, 10_000, 'start'), log, i });
    }
    for (const r of runs) writeRenamed(r.file, session(`mc-drain-${r.i}`, [mission(mid(Date.now(), r.i))]));
    await waitFor(() => srv.requests.length === 6, 5000, 'six hanging requests');
    await within(Promise.all(runs.map((r) => r.tl.stop())), 9000, 'six stops');
    const drained = runs.map((r) => r.log.at(-1)).map((l) => [l.msg, l.meta.drainedInflight]);
    assert.deepEqual(drained, runs.map(() => ['queue-tailer:stop', 1]));
  });

  it('an AbortSignal abort stops it; with nothing in flight the stop line follows within ~20 ms', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const file = sessionFile(root, 'a');
    writeRenamed(file, session('mc-abort-1', [mission(mid(Date.now() - 1000, 0), 'done')]));
    const srv = await serve(s);
    const ac = new AbortController();
    const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root, signal: ac.signal });
    const tl = await within(started, 10_000, 'start');
    await delay(50);
    const t0 = performance.now();
    ac.abort();
    let seen = null;
    // ~20 ms on real hardware; generous for emulated CPUs. A stop that
    // waited for a flush or the drain would take far longer.
    const BOUND_MS = 250;
    while (performance.now() - t0 < BOUND_MS) {
      seen = log.find((l) => l.msg === 'queue-tailer:stop');
      if (seen) break;
      await new Promise((r) => setImmediate(r));
    }
    seen ??= log.find((l) => l.msg === 'queue-tailer:stop');
    assert.ok(seen, `no queue-tailer:stop within ${BOUND_MS} ms of abort (log: ${log.map((l) => l.msg).join(', ')})`);
    assert.ok(seen.at - t0 <= BOUND_MS, `stop line ${Math.round(seen.at - t0)} ms after abort`);
    assert.deepEqual(seen.meta, { drainedInflight: 0 });
    assert.equal(log.at(-1).msg, 'queue-tailer:stop');
    await within(tl.stop(), 2000, 'stop() after abort');
    await within(tl.stop(), 2000, 'stop() again');
    assert.equal(msgs(log, 'queue-tailer:stop').length, 1);

    // stopped means stopped: a mission queued now is left alone
    const id = mid(Date.now(), 1);
    writeRenamed(file, session('mc-abort-1', [mission(id)]));
    await delay(300);
    assert.equal(srv.requests.length, 0);
    assert.equal(statusOf(file, id), 'queued');
  });

  it('an AbortSignal aborted during the initial sweep ends it; the promise still settles', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const file = sessionFile(root, 'a');
    const id = mid(Date.now(), 1);
    writeRenamed(file, session('mc-abort-2', [mission(id)]));
    const srv = await serve(s, () => {
      /* never answers */
    });
    const ac = new AbortController();
    const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root, signal: ac.signal });
    await waitFor(() => srv.requests.length === 1, 5000, 'the request');
    ac.abort();
    const tl = await within(started, 8000, 'start settles after abort');
    await within(tl.stop(), 8000, 'stop');
    await waitFor(() => msgs(log, 'queue-tailer:stop').length === 1, 2000, 'stop line');
    assert.equal(statusOf(file, id), 'queued');
  });

  it('the process exits on its own after stop() (child process)', async () => {
    for (const mode of [[], ['fetch']]) {
      const { child, io, settle } = runNode(EXITS, mode);
      let stoppedAt = null;
      const deadline = Date.now() + 15_000;
      while (!io.out.includes('\n') && Date.now() < deadline && !io.closed) await delay(10);
      if (io.out.includes('\n')) stoppedAt = Date.now();
      const result = await settle(5000, `the child (${mode.join(' ') || 'native http'}) to exit by itself after stop()`);
      const { out, err } = io;
      assert.ok(stoppedAt, `the child reported its stop: stdout=${out} stderr=${err}`);
      assert.deepEqual(result, { code: 0, signal: null }, `stderr=${err}`);
      const report = JSON.parse(out.trim().split('\n')[0]);
      assert.equal(report.type, 'stopped');
      assert.equal(report.status, 'assigned');
      assert.equal(report.requests, 1);
      assert.equal(report.logs[0], 'queue-tailer:start');
      assert.equal(report.logs.at(-1), 'queue-tailer:stop');
      assert.ok(report.logs.includes('queue-tailer:dispatched'));
      assert.ok(Date.now() - stoppedAt < 5000);
    }
  });

  it('a file-system watch that cannot start: polling takes over, logged once as queue-tailer:watch-degraded; appends are still seen (child process, MC_NATIVE_FAULT)', async (t) => {
    const script = path.join(HERE, 'helpers', 'tailer-no-watch.mjs');
    const { io, settle } = runNode(script, [], { ...process.env, MC_NATIVE_FAULT: 'tailer-no-watch' });
    const { code } = await settle(30_000, 'the no-watch child');
    assert.equal(code, 0, io.err);
    const { logs, metas, posted, appendMs, pollMs } = JSON.parse(io.out.trim().split('\n').at(-1));
    assert.equal(logs.filter((m) => m === 'queue-tailer:watch-degraded').length, 1, logs.join(' '));
    const [degraded] = metas['queue-tailer:watch-degraded'];
    assert.match(degraded.reason, /^no file-system watch: fault injected/);
    assert.equal(degraded.watched, 0);
    assert.equal(degraded.polled, 1);
    assert.equal(degraded.pollIntervalMs, pollMs);
    assert.deepEqual(posted, ['m-first', 'm-appended'], 'each mission POSTed once');
    assert.ok(appendMs < 5000, `the append was seen by polling (${appendMs} ms)`);
    t.diagnostic(`2 missions, each POSTed once; the append seen by polling after ${appendMs} ms at a ${pollMs} ms interval`);
  });

  it('a failure inside the native tailer after ready is logged once as queue-tailer:internal-error, the tailer stops, stop() rejects, and the process exits on its own (child process, MC_NATIVE_FAULT)', async () => {
    for (const mode of ['stop', 'nostop']) {
      const { io, settle } = runNode(FAULT, [mode], { ...process.env, MC_NATIVE_FAULT: 'tailer-after-ready' });
      const result = await settle(20_000, `the faulty tailer's process (${mode}) to exit by itself`);
      const { out, err } = io;
      assert.deepEqual(result, { code: 0, signal: null }, `stdout=${out} stderr=${err}`);
      const report = JSON.parse(out.trim().split('\n')[0]);
      assert.equal(report.started, true, 'the tailer started before the fault');
      assert.equal(msgs(report.logs.map((msg) => ({ msg })), 'queue-tailer:internal-error').length, 1, `logs=${report.logs}`);
      const [meta] = report.metas['queue-tailer:internal-error'];
      assert.deepEqual(Object.keys(meta), ['error']);
      assert.match(meta.error, /internal error/);
      assert.match(meta.error, /tailer-after-ready/);
      assert.equal(report.logs.at(-1), 'queue-tailer:stop', 'the tailer stopped itself');
      assert.ok(report.logs.indexOf('queue-tailer:internal-error') < report.logs.indexOf('queue-tailer:stop'));
      if (mode === 'stop') {
        assert.ok(report.rejected, 'stop() rejected');
        assert.equal(report.rejected.isError, true);
        assert.equal(report.rejected.message, meta.error);
      } else {
        assert.equal(report.rejected, null);
      }
    }
  });
});

describe('startQueueTailer: fetchImpl and where writes go', () => {
  it('fetchImpl carries every attempt (no server needed)', async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const file = sessionFile(root, 'a');
    const base = Date.now() - 1000;
    const [ok, retry, broken] = [mid(base, 1), mid(base + 1, 2), mid(base + 2, 3)];
    const doc = session('mc-fetch/1', [mission(ok, 'queued', { completion: 'c' }), mission(retry), mission(broken)]);
    writeRenamed(file, doc);
    const calls = [];
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/`; // trailing slash: dropped when building the URL (§3)
    const { started, log } = tailer(s, {
      aiwgServeUrl: url,
      watchDir: root,
      maxAttempts: 2,
      fetchImpl: async (u, init) => {
        calls.push({ url: u, init });
        const body = JSON.parse(init.body);
        if (body.mission_id === broken) throw new Error('socket hang up');
        if (body.mission_id === retry && calls.filter((c) => JSON.parse(c.init.body).mission_id === retry).length === 1) {
          return { status: 503, text: async () => '{"error":"no_executor_available"}' };
        }
        return { status: 202, text: async () => JSON.stringify({ mission_id: body.mission_id, executor_id: 'fx-1', estimated_start: 'soon' }) };
      },
    });
    await within(started, 10_000, 'start');
    for (const c of calls) {
      assert.equal(c.url, `http://127.0.0.1:${port}/api/v1/sessions/${encodeURIComponent('mc-fetch/1')}/dispatch`);
      assert.equal(c.init.method, 'POST');
      const headers = Object.fromEntries(Object.entries(c.init.headers).map(([k, v]) => [k.toLowerCase(), v]));
      assert.equal(headers['content-type'], 'application/json');
      const body = JSON.parse(c.init.body);
      assert.equal(headers['idempotency-key'], `mc-fetch/1:${body.mission_id}`);
      assert.deepEqual(body, buildDispatchPayload(doc.missions.find((m) => m.id === body.mission_id), { sessionId: 'mc-fetch/1' }));
      assert.ok(c.init.signal instanceof AbortSignal, 'init.signal is an AbortSignal');
    }
    const after = readDoc(file);
    assert.deepEqual(after.missions.map((m) => m.status), ['assigned', 'assigned', 'queued']);
    assert.equal(after.missions[0].executorId, 'fx-1');
    assert.equal(after.missions[0].estimatedStart, 'soon');
    assert.equal(after.missions[1].dispatchAttempts, 2);
    assert.deepEqual(msgs(log, 'queue-tailer:dispatch-deferred')[0].meta, { missionId: broken, sessionId: 'mc-fetch/1', reason: 'unreachable' });
  });

  it("writes only the session.json the mission was found in, even for session.id '../../x'; the URL encodes the id", async (t) => {
    const s = scope(t);
    const outer = tmpRoot(s);
    const root = path.join(outer, 'w');
    const base = Date.now() - 1000;
    const evil = mid(base, 1);
    const odd = mid(base, 2);
    const other = mid(base, 3);
    writeRenamed(sessionFile(root, 'evil'), session('../../x', [mission(evil)]));
    writeRenamed(sessionFile(root, 'odd'), session('a/b c?#%', [mission(odd)]));
    // a session whose id names another session's directory
    writeRenamed(sessionFile(root, 'third'), session('evil', [mission(other)]));
    const srv = await serve(s);
    const { started } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root });
    await within(started, 10_000, 'start');

    const byId = Object.fromEntries(srv.requests.map((r) => [r.json.mission_id, r]));
    assert.equal(byId[evil].url, '/api/v1/sessions/..%2F..%2Fx/dispatch');
    assert.equal(byId[evil].headers['idempotency-key'], `../../x:${evil}`);
    assert.equal(byId[odd].url, '/api/v1/sessions/a%2Fb%20c%3F%23%25/dispatch');
    assert.equal(byId[other].url, '/api/v1/sessions/evil/dispatch');

    assert.equal(statusOf(sessionFile(root, 'evil'), evil), 'assigned');
    assert.equal(statusOf(sessionFile(root, 'odd'), odd), 'assigned');
    assert.equal(statusOf(sessionFile(root, 'third'), other), 'assigned');
    assert.deepEqual(readDoc(sessionFile(root, 'evil')).missions.map((m) => m.id), [evil], 'nothing of another session written here');
    assert.deepEqual(fs.readdirSync(outer), ['w'], 'nothing created outside watchDir');
    assert.equal(fs.existsSync(path.join(outer, 'x')), false);
    const files = listFiles(root).filter((f) => !BESIDE_SESSION.test(f));
    assert.deepEqual(files, ['sessions/evil/session.json', 'sessions/odd/session.json', 'sessions/third/session.json']);
  });

  it('a session id with control and non-ASCII characters (dir name too) is dispatched, URL-encoded, and written in its own dir (§10)', {
  }, async (t) => {
    const s = scope(t);
    const root = tmpRoot(s);
    const dir = 'tab\there ç😀';
    const sid = 'ça/😀\u0001\u007fx';
    const id = mid(Date.now(), 1);
    writeRenamed(sessionFile(root, dir), session(sid, [mission(id)]));
    const srv = await serve(s);
    const { started, log } = tailer(s, { aiwgServeUrl: srv.url, watchDir: root, maxAttempts: 2 });
    await within(started, 10_000, 'start');
    assert.deepEqual(msgs(log, 'queue-tailer:dispatch-deferred').map((l) => l.meta), []);
    assert.deepEqual(srv.requests.map((r) => r.url), [`/api/v1/sessions/${encodeURIComponent(sid)}/dispatch`]);
    assert.equal(statusOf(sessionFile(root, dir), id), 'assigned');
    assert.deepEqual(listFiles(root).filter((f) => !BESIDE_SESSION.test(f)), [`sessions/${dir}/session.json`]);
  });
});

describe('secrets in the serve URL (issue 14.12)', () => {
  it('credentials in aiwgServeUrl are never in a log line: dispatches, failures and executor streams', async (t) => {
    const s = scope(t);
    const { startFakeServe } = await import('./helpers/lifecycle-serve.mjs');
    const serve = await startFakeServe();
    s.defer(() => serve.close());
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-secret-url-'));
    s.defer(() => fs.rmSync(root, { recursive: true, force: true }));
    const file = path.join(root, 'sessions', 'mc-secret', 'session.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ id: 'mc-secret', missions: [{ id: 'm-secret', objective: 'o', status: 'queued' }] }));
    const lines = [];
    const logger = (msg, meta) => lines.push(JSON.stringify([msg, meta]));
    const withCredentials = serve.url.replace('http://', 'http://bridge-user:s3cret-pass@');
    const tailer = await startQueueTailer({ aiwgServeUrl: withCredentials, watchDir: root, logger, executorTokens: { 'ex-1': 's3cret-token' } });
    s.defer(() => tailer.stop());
    await waitFor(() => JSON.parse(fs.readFileSync(file, 'utf8')).missions[0].status === 'assigned', 10_000, 'the dispatch');
    await waitFor(() => lines.some((l) => l.includes('ws-state') || l.includes('executor-ws:')), 10_000, 'a stream line');
    await tailer.stop();

    // And a serve that is not there, whose errors name the URL.
    const refused = await startQueueTailer({
      aiwgServeUrl: 'http://bridge-user:s3cret-pass@127.0.0.1:9/',
      watchDir: root,
      logger,
      maxAttempts: 1,
      disableWSSubscription: true,
    });
    fs.writeFileSync(file, JSON.stringify({ id: 'mc-secret', missions: [{ id: 'm-secret-2', objective: 'o', status: 'queued' }] }));
    await waitFor(() => lines.some((l) => l.includes('network-error') || l.includes('dispatch-deferred')), 10_000, 'the failure');
    await refused.stop();

    const leaked = lines.filter((l) => /s3cret|bridge-user/.test(l));
    assert.deepEqual(leaked, [], 'a secret reached the logger');
    assert.ok(lines.some((l) => l.includes('***@127.0.0.1')), `the URL is shown redacted: ${lines.slice(0, 3).join('\n')}`);
  });
});
