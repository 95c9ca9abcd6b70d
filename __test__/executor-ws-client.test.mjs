// @aiwg/mc-native/executor-ws-client (SPEC §1, §5, §9.7, §9.8, §10):
// buildWsUrl, reconnectDelay, eventToStatusUpdate (every executor-v1 event
// fixture), and startExecutorWS both with the Rust client against a real
// `ws` server (helpers/ws-serve.mjs) and with an injected browser-style
// WebSocketImpl (a fake class below, driven by hand).
// Run: node --test __test__/executor-ws-client.test.mjs

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

import * as main from '../index.mjs';
import { buildWsUrl, reconnectDelay, eventToStatusUpdate, startExecutorWS } from '../esm/executor-ws-client.mjs';
import { startWsServe, refusedServeUrl, waitFor } from './helpers/ws-serve.mjs';
import { within } from './helpers/waiting.mjs';
import { WebSocket as WsWebSocket } from 'ws';

const require = createRequire(import.meta.url);
const HERE = path.dirname(new URL(import.meta.url).pathname);
const EVENTS_DIR = path.join(HERE, 'fixtures', 'executor-v1', 'events');
const MiB = 1024 * 1024;

// A token with characters that need encoding; no log line or onState meta
// may ever contain SECRET_MARK (raw or encoded, the mark is plain ASCII).
const SECRET_MARK = 'S3cr3tT0k';
const TOKEN = `${SECRET_MARK}+a/b=c&d`;

// ---------------------------------------------------------------------------
// helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether a promise has settled, and how (checked after a macrotask). */
async function settled(promise) {
  let state = 'pending';
  promise.then(() => { state = 'resolved'; }, () => { state = 'rejected'; });
  await new Promise((resolve) => setImmediate(resolve));
  return state;
}

/** Records logs, states and events; `lines(msg)` filters log metas by message. */
function recorder() {
  const logs = [];
  const states = [];
  const events = [];
  return {
    logs,
    states,
    events,
    logger: (msg, meta) => logs.push([msg, meta]),
    onState: (state, meta) => states.push([state, meta]),
    onEvent: (event) => {
      events.push(event);
    },
    lines: (msg) => logs.filter(([m]) => m === msg).map(([, meta]) => meta),
    stateNames: () => states.map(([s]) => s),
  };
}

/** §5 / §9.8: every log meta carries executorId; no log or onState meta shows the token. */
function assertHygiene(rec, executorId) {
  assert.ok(rec.logs.length > 0, 'some log lines were written');
  for (const [msg, meta] of rec.logs) {
    assert.ok(meta && typeof meta === 'object', `${msg}: meta is an object`);
    assert.equal(meta.executorId, executorId, `${msg}: meta.executorId`);
  }
  const everything = JSON.stringify({ logs: rec.logs, states: rec.states });
  assert.ok(!everything.includes(SECRET_MARK), `the token leaked: ${everything.slice(0, 2000)}`);
  assert.ok(!everything.includes(encodeURIComponent(TOKEN)), 'the encoded token leaked');
}

/** Records process 'unhandledRejection' while a test runs. */
function watchUnhandled() {
  const seen = [];
  const handler = (reason) => seen.push(reason);
  process.on('unhandledRejection', handler);
  return {
    seen,
    stop: () => process.off('unhandledRejection', handler),
  };
}

// Streams and servers still running when the file ends are stopped here, so
// a failing test cannot keep the process alive.
const live = new Set();
const servers = new Set();
function track(stream) {
  live.add(stream);
  return stream;
}
async function serveWith(script) {
  const serve = await startWsServe(script);
  servers.add(serve);
  return serve;
}
async function stopAll(stream) {
  await within(stream.stop(), 3000, 'stop()');
  live.delete(stream);
}
async function closeServe(serve) {
  await serve.close();
  servers.delete(serve);
}
after(async () => {
  for (const s of live) await within(s.stop(), 3000, 'stop() in teardown').catch(() => {});
  for (const serve of servers) await serve.close();
  // The file must end by itself. If a stream that failed to stop keeps the
  // process alive, fail after 5 s instead of hanging (the timer is unref'd,
  // so it never holds the process up on its own).
  setTimeout(() => {
    process.stderr.write(`process still alive 5 s after the last test: ${process.getActiveResourcesInfo().join(', ')}\n`);
    process.exit(1);
  }, 5000).unref();
});

function fixture(name) {
  return JSON.parse(fs.readFileSync(path.join(EVENTS_DIR, name), 'utf8'));
}

/**
 * A browser-style WebSocket class for `WebSocketImpl`, driven by the test:
 * `sockets` lists the instances; each has `fireOpen()`, `fireMessage(data)`,
 * `fireClose(code)`, `fireError()` and records `close(code, reason)` calls.
 * `throwOn(n)` makes the n-th construction (1-based) throw.
 */
function fakeWebSocket({ throwOn = () => false } = {}) {
  const sockets = [];
  const made = { count: 0 };
  class FakeWebSocket {
    constructor(url) {
      made.count += 1;
      if (throwOn(made.count)) throw new Error(`cannot open ${url}`);
      this.url = url;
      this.listeners = new Map();
      this.closeCalls = [];
      sockets.push(this);
    }

    addEventListener(type, cb) {
      if (!this.listeners.has(type)) this.listeners.set(type, []);
      this.listeners.get(type).push(cb);
    }

    removeEventListener(type, cb) {
      const list = this.listeners.get(type) || [];
      const i = list.indexOf(cb);
      if (i >= 0) list.splice(i, 1);
    }

    close(code, reason) {
      this.closeCalls.push([code, reason]);
    }

    dispatch(type, event) {
      for (const cb of [...(this.listeners.get(type) || [])]) cb(event);
    }

    fireOpen() {
      this.dispatch('open', { type: 'open' });
    }

    fireMessage(data) {
      this.dispatch('message', { type: 'message', data });
    }

    fireClose(code = 1006, reason = '') {
      this.dispatch('close', { type: 'close', code, reason, wasClean: code === 1000 });
    }

    fireError() {
      this.dispatch('error', { type: 'error' });
    }
  }
  return { FakeWebSocket, sockets, made };
}

// ---------------------------------------------------------------------------

describe('package surface (§1)', () => {
  it('ESM subpath, CJS subpath and the main entry expose the same four functions', () => {
    const cjs = require('../js/executor-ws-client.js');
    const root = require('..');
    for (const name of ['buildWsUrl', 'reconnectDelay', 'eventToStatusUpdate', 'startExecutorWS']) {
      assert.equal(typeof cjs[name], 'function', `cjs ${name}`);
      assert.equal(cjs[name], root[name], `root ${name}`);
      assert.equal(main[name], cjs[name], `index.mjs ${name}`);
    }
    assert.equal(buildWsUrl, cjs.buildWsUrl);
    assert.equal(startExecutorWS, cjs.startExecutorWS);
  });
});

describe('buildWsUrl (§5)', () => {
  it('encodes the executor id and the token (the SPEC example)', () => {
    assert.equal(
      buildWsUrl('http://h', 'exec/with slash', 'a+b/c'),
      'ws://h/ws/executors/exec%2Fwith%20slash?token=a%2Bb%2Fc',
    );
  });

  it('maps http→ws and https→wss, keeps host, port and path', () => {
    assert.equal(buildWsUrl('http://127.0.0.1:7337', 'e'), 'ws://127.0.0.1:7337/ws/executors/e');
    assert.equal(buildWsUrl('https://serve.example:8443', 'e'), 'wss://serve.example:8443/ws/executors/e');
    assert.equal(buildWsUrl('https://h/base', 'e', 't'), 'wss://h/base/ws/executors/e?token=t');
  });

  it('drops trailing slashes', () => {
    assert.equal(buildWsUrl('http://h/', 'e'), 'ws://h/ws/executors/e');
    assert.equal(buildWsUrl('http://h///', 'e'), 'ws://h/ws/executors/e');
    assert.equal(buildWsUrl('https://h/base//', 'e', 'x'), 'wss://h/base/ws/executors/e?token=x');
  });

  it('has no query without a token (undefined or null)', () => {
    assert.equal(buildWsUrl('http://h', 'e'), 'ws://h/ws/executors/e');
    assert.equal(buildWsUrl('http://h', 'e', undefined), 'ws://h/ws/executors/e');
    assert.equal(buildWsUrl('http://h', 'e', null), 'ws://h/ws/executors/e');
  });

  it('encodes exactly like encodeURIComponent (reserved, unicode, astral)', () => {
    const odd = "a b!'()*~-_.é€😀/?#&=%+";
    assert.equal(
      buildWsUrl('http://h', odd, odd),
      `ws://h/ws/executors/${encodeURIComponent(odd)}?token=${encodeURIComponent(odd)}`,
    );
  });
});

describe('reconnectDelay (§5)', () => {
  it('is min(maxMs, baseMs * 2^max(0, attempt-1))', () => {
    const table = [
      [0, 1000, 30000, 1000],
      [-5, 1000, 30000, 1000],
      [1, 1000, 30000, 1000],
      [2, 1000, 30000, 2000],
      [3, 1000, 30000, 4000],
      [5, 1000, 30000, 16000],
      [6, 1000, 30000, 30000], // 32000 capped
      [7, 1000, 30000, 30000],
      [100, 1000, 30000, 30000],
      [5000, 1000, 30000, 30000], // 2^4999 overflows to Infinity, still capped
      [1, 20, 10, 10], // a cap below the base wins
      [3, 20, 1000, 80],
      [4, 250, 30000, 2000],
      [4, 0, 30000, 0],
    ];
    for (const [attempt, base, max, expected] of table) {
      assert.equal(reconnectDelay(attempt, base, max), expected, `reconnectDelay(${attempt}, ${base}, ${max})`);
      assert.equal(reconnectDelay(attempt, base, max), Math.min(max, base * 2 ** Math.max(0, attempt - 1)));
    }
  });
});

describe('eventToStatusUpdate (§5)', () => {
  const MID = '11111111-2222-3333-4444-555555555555';
  const expected = {
    'mission-started.json': {
      missionId: MID,
      status: 'running',
      transitionFrom: 'assigned',
      patch: { startedAt: '2026-05-09T07:13:23.456Z', agentRuntime: 'claude-code', ptySessionId: 'pty-session-uuid' },
    },
    'mission-hitl-required.json': {
      missionId: MID,
      status: 'hitl_required',
      patch: {
        hitlId: 'hitl-7a9c-uuid',
        hitlPrompt: 'Approve schema migration? (y/n)',
        hitlContext: 'Migration touches users.email — nullable=true → nullable=false. 47 rows affected.',
        hitlAt: '2026-05-09T07:13:35.000Z',
      },
    },
    'mission-hitl-responded.json': {
      missionId: MID,
      status: 'running',
      transitionFrom: 'hitl_required',
      patch: { hitlRespondedAt: '2026-05-09T07:13:42.111Z', hitlResponse: 'y' },
    },
    'mission-suspended.json': {
      missionId: MID,
      status: 'suspended',
      patch: { suspendedAt: '2026-05-09T07:14:00.500Z', checkpointId: 'ckpt-uuid', suspendReason: 'mgmt_server_shutdown' },
    },
    'mission-resumed.json': {
      missionId: MID,
      status: 'running',
      patch: { resumedAt: '2026-05-09T07:14:30.223Z', resumedFrom: 'suspended' },
    },
    'mission-completed.json': {
      missionId: MID,
      status: 'done',
      patch: { completedAt: '2026-05-09T07:15:00.000Z', exitCode: 0, summary: 'command completed successfully' },
    },
    'mission-failed.json': {
      missionId: MID,
      status: 'failed',
      patch: {
        failedAt: '2026-05-09T07:15:00.000Z',
        failureReason: 'non_zero_exit',
        failureMessage: 'agent process exited with code 1',
        exitCode: 1,
      },
    },
    'mission-aborted.json': {
      missionId: MID,
      status: 'aborted',
      patch: { abortedAt: '2026-05-09T07:15:00.000Z', abortedBy: 'operator', abortReason: 'kill_session via dashboard' },
    },
    'mission-assigned.json': null,
    'mission-progress.json': null,
    'mission-reconnected.json': null,
  };

  it('covers every fixture in executor-v1/events', () => {
    assert.deepEqual(fs.readdirSync(EVENTS_DIR).filter((f) => f.endsWith('.json')).sort(), Object.keys(expected).sort());
  });

  for (const [file, update] of Object.entries(expected)) {
    it(`${file} → ${update ? update.status : 'null'}`, () => {
      const event = fixture(file);
      const before = JSON.stringify(event);
      assert.deepEqual(eventToStatusUpdate(event), update);
      assert.equal(JSON.stringify(event), before, 'the event is not mutated');
    });
  }

  it('executor.resync (the resync fixture) → null', () => {
    const resync = JSON.parse(fs.readFileSync(path.join(HERE, 'fixtures', 'executor-v1', 'resync', 'executor-resync.json'), 'utf8'));
    assert.equal(eventToStatusUpdate(resync), null);
  });

  it('null for paused, executor.*, unknown types, falsy input and no event', () => {
    for (const event of [
      { event: 'mission.paused', mission_id: 'm', ts: 't', data: {} },
      { event: 'executor.resync', executor_id: 'x', ts: 't', data: { owned_mission_ids: [] } },
      { event: 'executor.heartbeat', executor_id: 'x', ts: 't' },
      { event: 'executor.registered', executor_id: 'x', ts: 't', mission_id: 'm' },
      { event: 'mission.exploded', mission_id: 'm', ts: 't' },
      { event: 'MISSION.STARTED', mission_id: 'm', ts: 't' },
      { event: '', mission_id: 'm', ts: 't' },
      { event: null, mission_id: 'm' },
      { mission_id: 'm', ts: 't', data: { state: 'running' } },
      {},
      null,
      undefined,
      0,
      false,
      '',
    ]) {
      assert.equal(eventToStatusUpdate(event), null, JSON.stringify(event));
    }
    assert.equal(eventToStatusUpdate(), null);
  });

  it('data defaults to {} (missing or null)', () => {
    for (const data of [undefined, null]) {
      const ev = (event) => ({ event, mission_id: 'm', ts: 't', ...(data === null ? { data } : {}) });
      assert.deepEqual(eventToStatusUpdate(ev('mission.started')), {
        missionId: 'm', status: 'running', transitionFrom: 'assigned', patch: { startedAt: 't', agentRuntime: null, ptySessionId: null },
      });
      assert.deepEqual(eventToStatusUpdate(ev('mission.hitl_required')), {
        missionId: 'm', status: 'hitl_required', patch: { hitlId: null, hitlPrompt: null, hitlContext: null, hitlAt: 't' },
      });
      assert.deepEqual(eventToStatusUpdate(ev('mission.hitl_responded')), {
        missionId: 'm', status: 'running', transitionFrom: 'hitl_required', patch: { hitlRespondedAt: 't', hitlResponse: null },
      });
      assert.deepEqual(eventToStatusUpdate(ev('mission.suspended')), {
        missionId: 'm', status: 'suspended', patch: { suspendedAt: 't', checkpointId: null, suspendReason: null },
      });
      assert.deepEqual(eventToStatusUpdate(ev('mission.resumed')), {
        missionId: 'm', status: 'running', patch: { resumedAt: 't', resumedFrom: 'suspended' },
      });
      assert.deepEqual(eventToStatusUpdate(ev('mission.completed')), {
        missionId: 'm', status: 'done', patch: { completedAt: 't', exitCode: null, summary: null },
      });
      assert.deepEqual(eventToStatusUpdate(ev('mission.failed')), {
        missionId: 'm', status: 'failed', patch: { failedAt: 't', failureReason: 'unknown', failureMessage: null, exitCode: null },
      });
      assert.deepEqual(eventToStatusUpdate(ev('mission.aborted')), {
        missionId: 'm', status: 'aborted', patch: { abortedAt: 't', abortedBy: 'unknown', abortReason: null },
      });
    }
  });

  it('hitl_responded: data.text, falling back to data.response', () => {
    const responded = (data) => eventToStatusUpdate({ event: 'mission.hitl_responded', mission_id: 'm', ts: 't', data }).patch.hitlResponse;
    assert.equal(responded({ text: 'y' }), 'y');
    assert.equal(responded({ response: 'yes' }), 'yes');
    assert.equal(responded({ text: 'y', response: 'yes' }), 'y');
    assert.equal(responded({ text: '', response: 'yes' }), 'yes'); // `||`: an empty text falls through
    assert.equal(responded({ text: '', response: '' }), null);
    assert.equal(responded({}), null);
  });

  it('"or" is JS `||`: falsy values fall back, truthy non-strings pass through', () => {
    const patch = (event, data) => eventToStatusUpdate({ event, mission_id: 'm', ts: 't', data }).patch;
    for (const falsy of ['', 0, false, null]) {
      assert.deepEqual(patch('mission.started', { agent_runtime: falsy, pty_session_id: falsy }), {
        startedAt: 't', agentRuntime: null, ptySessionId: null,
      }, `started with ${JSON.stringify(falsy)}`);
      assert.equal(patch('mission.resumed', { resumed_from: falsy }).resumedFrom, 'suspended');
      assert.equal(patch('mission.failed', { reason: falsy }).failureReason, 'unknown');
      assert.equal(patch('mission.aborted', { aborted_by: falsy }).abortedBy, 'unknown');
      assert.equal(patch('mission.completed', { summary: falsy }).summary, null);
      assert.equal(patch('mission.suspended', { checkpoint_id: falsy }).checkpointId, null);
    }
    assert.deepEqual(patch('mission.hitl_required', { hitl_id: 7, prompt: [], context: {}, extra: 1 }), {
      hitlId: 7, hitlPrompt: [], hitlContext: {}, hitlAt: 't',
    });
    assert.deepEqual(patch('mission.hitl_required', { context: { files: ['a'], n: 2 } }).hitlContext, { files: ['a'], n: 2 });
    assert.equal(patch('mission.resumed', { resumed_from: 'paused' }).resumedFrom, 'paused');
    assert.equal(patch('mission.aborted', { aborted_by: true }).abortedBy, true);
  });

  it('exitCode only when data.exit_code is a number (0 included)', () => {
    const code = (event, exit_code) => eventToStatusUpdate({ event, mission_id: 'm', ts: 't', data: { exit_code } }).patch.exitCode;
    for (const event of ['mission.completed', 'mission.failed']) {
      for (const n of [0, 1, -1, 137, 2.5]) assert.equal(code(event, n), n, `${event} ${n}`);
      for (const notNumber of ['1', '0', null, true, false, {}, [1], undefined]) {
        assert.equal(code(event, notNumber), null, `${event} ${JSON.stringify(notNumber)}`);
      }
    }
  });

  it('missionId and ts are taken from the envelope as they are', () => {
    const u = eventToStatusUpdate({ event: 'mission.resumed', executor_id: 'x', mission_id: 'm-42', ts: 1715238870223 });
    assert.deepEqual(u, { missionId: 'm-42', status: 'running', patch: { resumedAt: 1715238870223, resumedFrom: 'suspended' } });
    const noId = eventToStatusUpdate({ event: 'mission.resumed', ts: 't' });
    assert.equal(noId.status, 'running');
    assert.equal(noId.missionId ?? null, null);
  });

});

// ---------------------------------------------------------------------------

describe('argument types (§10)', () => {
  const base = { aiwgServeUrl: 'http://127.0.0.1:9', executorId: 'e' };
  const typeError = (fn, name) => assert.throws(fn, (err) => {
    assert.ok(err instanceof TypeError, `TypeError, got ${err && err.constructor && err.constructor.name}: ${err && err.message}`);
    assert.match(err.message, new RegExp(name));
    return true;
  });

  // Only where the original crashes on the value: destructuring nothing,
  // `.replace` on a URL that is not a string, a signal it cannot listen to,
  // and onState / logger, which it calls outside any try (in a socket
  // callback that would take the process down).
  it('startExecutorWS', () => {
    typeError(() => startExecutorWS(null), 'opts');
    typeError(() => startExecutorWS(), 'opts');
    typeError(() => startExecutorWS('http://h'), 'opts');
    typeError(() => startExecutorWS({ ...base, aiwgServeUrl: 42 }), 'aiwgServeUrl');
    typeError(() => startExecutorWS({ ...base, onState: 1 }), 'onState');
    typeError(() => startExecutorWS({ ...base, logger: {} }), 'logger');
    typeError(() => startExecutorWS({ ...base, signal: 'abort' }), 'signal');
  });

  it('buildWsUrl', () => {
    typeError(() => buildWsUrl(1, 'e'), 'aiwgServeUrl');
    typeError(() => buildWsUrl(undefined, 'e'), 'aiwgServeUrl');
  });

  // Issue 10: plain JS handles these, so they give the original's result.
  it('buildWsUrl and reconnectDelay coerce as JS does', () => {
    assert.equal(buildWsUrl('http://h', 5), 'ws://h/ws/executors/5');
    assert.equal(buildWsUrl('http://h', undefined), 'ws://h/ws/executors/undefined');
    assert.equal(buildWsUrl('http://h', 'e', 5), 'ws://h/ws/executors/e?token=5');
    assert.equal(reconnectDelay('1', 1, 1), 1);
    assert.equal(reconnectDelay(1, '1', 1), 1);
    assert.equal(reconnectDelay(1, 1, null), 0);
    assert.equal(reconnectDelay('3', '250', '30000'), 1000);
  });

  it('startExecutorWS takes a numeric executorId and token, string delays, an onEvent or WebSocketImpl that is not a function', async () => {
    const rec = recorder();
    const made = [];
    const stream = track(startExecutorWS({
      aiwgServeUrl: 'http://serve.test', executorId: 5, token: 7, logger: rec.logger, onState: rec.onState,
      reconnectBaseMs: '5', reconnectMaxMs: '8', onEvent: 'x',
      WebSocketImpl: class {
        constructor(url) {
          made.push(url);
          this.listeners = {};
        }

        addEventListener(type, cb) {
          this.listeners[type] = cb;
        }

        close() {}
      },
    }));
    assert.deepEqual(made, ['ws://serve.test/ws/executors/5?token=7']);
    await stopAll(stream);
    assert.deepEqual(rec.lines('executor-ws:stopped'), [{ executorId: 5 }]);

    const rec2 = recorder();
    const sockets = [];
    const stream2 = track(startExecutorWS({
      aiwgServeUrl: 'http://serve.test', executorId: 'e', logger: rec2.logger, reconnectBaseMs: '5', reconnectMaxMs: '8', onEvent: 'x',
      WebSocketImpl: fakeWebSocketClass(sockets),
    }));
    sockets[0].fire('open');
    sockets[0].fire('message', { data: '{"event":"mission.started"}' });
    assert.equal(rec2.lines('executor-ws:handler-error').length, 1, 'calling a non-function onEvent is a handler error');
    assert.match(rec2.lines('executor-ws:handler-error')[0].error, /not a function/);
    sockets[0].fire('close', { code: 1006 });
    await waitFor(() => sockets.length === 2, 1000, 'second socket');
    sockets[1].fire('close', { code: 1006 });
    await waitFor(() => sockets.length === 3, 1000, 'third socket');
    assert.deepEqual(rec2.lines('executor-ws:reconnect').map((m) => m.delay), [5, 8]);
    await stopAll(stream2);

    const rec3 = recorder();
    const stream3 = track(startExecutorWS({
      aiwgServeUrl: 'http://serve.test', executorId: 'e', logger: rec3.logger, reconnectBaseMs: 5, WebSocketImpl: 'x',
    }));
    const failed = rec3.lines('executor-ws:construct-failed');
    assert.equal(failed.length, 1, 'new "x"(url) throws: construct-failed, then a retry');
    assert.match(failed[0].error, /not a constructor/);
    await waitFor(() => rec3.lines('executor-ws:construct-failed').length >= 2, 1000, 'the retry');
    await stopAll(stream3);
  });
});

/** A minimal browser-style socket class; `sockets[i].fire(type, event)` drives instance i. */
function fakeWebSocketClass(sockets) {
  return class {
    constructor(url) {
      this.url = url;
      this.listeners = {};
      sockets.push(this);
    }

    addEventListener(type, cb) {
      (this.listeners[type] ||= []).push(cb);
    }

    close() {}

    fire(type, event = {}) {
      for (const cb of this.listeners[type] || []) cb(event);
    }
  };
}

describe('drop-in for every input (issue 10)', () => {
  it('item 7: a falsy token adds no ?token=', () => {
    for (const token of ['', 0, false, null, undefined, NaN]) {
      assert.equal(buildWsUrl('http://h', 'e', token), 'ws://h/ws/executors/e', String(token));
    }
    assert.equal(buildWsUrl('http://h', 'e', ' '), 'ws://h/ws/executors/e?token=%20');
  });

  it('item 7: only a leading http:// or https:// is mapped; nothing else is checked', () => {
    assert.equal(buildWsUrl('HTTP://h', 'e'), 'HTTP://h/ws/executors/e');
    assert.equal(buildWsUrl('ws://h/', 'e'), 'ws://h/ws/executors/e');
    assert.equal(buildWsUrl('localhost:7337', 'e'), 'localhost:7337/ws/executors/e');
    assert.equal(buildWsUrl('x http://h', 'e'), 'x http://h/ws/executors/e');
    assert.throws(() => buildWsUrl('http://h', 'half \ud83d'), URIError);
  });

  it('item 7: reconnectDelay(NaN, …) and other odd numbers give what JS arithmetic gives', () => {
    const js = (a, b, m) => Math.min(m, b * 2 ** Math.max(0, a - 1));
    for (const [a, b, m] of [
      [NaN, 1000, 30000], [1, NaN, 30000], [1, 1000, NaN], [Infinity, 1000, 30000], [-Infinity, 1000, 30000],
      [1.5, 1000, 30000], [2, -5, 30000], [3, 1000, -1], [1025, 1, Infinity], [-0, -0, -0], [2, 0.1, 30000],
    ]) {
      assert.ok(Object.is(reconnectDelay(a, b, m), js(a, b, m)), `reconnectDelay(${a}, ${b}, ${m}) = ${reconnectDelay(a, b, m)}`);
    }
    assert.ok(Number.isNaN(reconnectDelay(NaN, 1000, 30000)));
    assert.equal(reconnectDelay(1.5, 1000, 30000), 1000 * Math.SQRT2);
    assert.ok(Object.is(reconnectDelay(-0, -0, -0), -0));
  });

  it("item 15: eventToStatusUpdate returns the event's own values, including what JSON cannot carry", () => {
    const data = { exit_code: NaN, summary: undefined };
    const u = eventToStatusUpdate({ event: 'mission.completed', mission_id: NaN, ts: undefined, data });
    assert.ok(Number.isNaN(u.missionId));
    assert.ok(Number.isNaN(u.patch.exitCode), 'NaN is a number: kept');
    assert.deepEqual(Object.keys(u.patch), ['completedAt', 'exitCode', 'summary']);
    assert.ok('completedAt' in u.patch && u.patch.completedAt === undefined);
    const noId = eventToStatusUpdate({ event: 'mission.resumed', ts: 't' });
    assert.ok('missionId' in noId && noId.missionId === undefined, 'missionId is event.mission_id: undefined, not null');
    assert.deepEqual(Object.keys(noId), ['missionId', 'status', 'patch']);
    const ctx = { deep: { list: [1, { x: undefined }] } };
    const hitl = eventToStatusUpdate({ event: 'mission.hitl_required', mission_id: 'm', ts: Infinity, data: { context: ctx } });
    assert.equal(hitl.patch.hitlContext, ctx, 'the same object');
    assert.equal(hitl.patch.hitlAt, Infinity);
    const lone = eventToStatusUpdate({ event: 'mission.failed', mission_id: 'm\ud800', ts: 't', data: { error: 'half \udc00' } });
    assert.equal(lone.missionId, 'm\ud800');
    assert.equal(lone.patch.failureMessage, 'half \udc00');
    assert.deepEqual(Object.keys(eventToStatusUpdate({ event: 'mission.started', mission_id: 'm' })), ['missionId', 'status', 'transitionFrom', 'patch']);
  });

  it('eventToStatusUpdate reads data and event as JS does (a string data, a numeric event)', () => {
    assert.equal(eventToStatusUpdate({ event: 5, mission_id: 'm' }), null);
    assert.equal(eventToStatusUpdate({ event: ['mission.started'], mission_id: 'm' }), null, 'switch compares strictly');
    assert.deepEqual(eventToStatusUpdate({ event: 'mission.suspended', mission_id: 'm', ts: 't', data: 'text' }).patch, { suspendedAt: 't', checkpointId: null, suspendReason: null });
    assert.deepEqual(eventToStatusUpdate({ event: 'mission.resumed', mission_id: 'm', ts: 't', data: 0 }).patch, { resumedAt: 't', resumedFrom: 'suspended' });
  });

  it('the Rust client: a URL the WebSocket constructor refuses is construct-failed and retried, not a throw', async () => {
    for (const [url, error] of [['nope', 'Invalid URL'], ['ftp://127.0.0.1:9', 'Expected a ws: or wss: protocol, got ftp:'], ['http://127.0.0.1:9/#x', 'Got fragment']]) {
      const rec = recorder();
      let stream;
      assert.doesNotThrow(() => {
        stream = track(startExecutorWS({ aiwgServeUrl: url, executorId: 'ex-bad-url', token: TOKEN, logger: rec.logger, onState: rec.onState, reconnectBaseMs: 5, reconnectMaxMs: 10 }));
      });
      await waitFor(() => rec.lines('executor-ws:construct-failed').length >= 3, 3000, `retries for ${url}`);
      await stopAll(stream);
      assert.deepEqual(rec.lines('executor-ws:construct-failed')[0], { executorId: 'ex-bad-url', error }, url);
      assert.deepEqual(rec.lines('executor-ws:reconnect').slice(0, 3).map((m) => [m.attempt, m.delay]), [[1, 5], [2, 10], [3, 10]]);
      assert.deepEqual(rec.states, [], 'no socket, so no state change');
      assert.equal(rec.lines('executor-ws:opened').length, 0);
      await assert.rejects(within(stream.ready, 1000, 'ready'));
      assertHygiene(rec, 'ex-bad-url');
    }
  });

  it("the Rust client: the caller's executorId in every log line; an upper-case HTTP:// URL connects as WebSocket would", async () => {
    const serve = await serveWith([(conn) => conn.send({ event: 'mission.started', mission_id: 'm', ts: 't' })]);
    const rec = recorder();
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: serve.url.replace('http://', 'HTTP://'), executorId: 42, token: 0,
        onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: '20',
      }));
      await within(stream.ready, 3000, 'ready');
      await waitFor(() => rec.events.length === 1, 3000, 'the event');
      assert.equal(serve.attempts[0].path, '/ws/executors/42', 'no token for a falsy one');
      serve.connections[0].ws.close(4001, 'again');
      await waitFor(() => rec.lines('executor-ws:reconnect').length === 1, 3000, 'a reconnect');
      assert.deepEqual(rec.lines('executor-ws:reconnect'), [{ executorId: 42, attempt: 1, delay: 20 }]);
      await stopAll(stream);
      assertHygiene(rec, 42);
    } finally {
      await closeServe(serve);
    }
  });

  it('the Rust client: a frame is handed to onEvent as JSON.parse reads it (lone surrogates, 1e400, deep nesting)', async () => {
    const deep = `${'{"a":'.repeat(300)}1${'}'.repeat(300)}`;
    const frames = ['{"event":"x","s":"half \\ud83d"}', '{"event":"y","n":1e400}', `{"event":"z","d":${deep}}`];
    const serve = await serveWith([(conn) => frames.forEach((f) => conn.send(f))]);
    const rec = recorder();
    try {
      const stream = track(startExecutorWS({ aiwgServeUrl: serve.url, executorId: 'ex-v8', onEvent: rec.onEvent, logger: rec.logger }));
      await waitFor(() => rec.events.length === 3, 3000, 'three events');
      assert.deepEqual(rec.events, frames.map((f) => JSON.parse(f)));
      assert.equal(rec.events[0].s, 'half \ud83d');
      assert.equal(rec.events[1].n, Infinity);
      assert.equal(rec.lines('executor-ws:bad-message').length, 0);
      await stopAll(stream);
    } finally {
      await closeServe(serve);
    }
  });

  it('the Rust client: reconnectBaseMs NaN logs a NaN delay and still waits between attempts', async () => {
    const url = await refusedServeUrl();
    const rec = recorder();
    const stream = track(startExecutorWS({ aiwgServeUrl: url, executorId: 'ex-nan', logger: rec.logger, reconnectBaseMs: 'soon' }));
    try {
      await waitFor(() => rec.lines('executor-ws:reconnect').length >= 2, 3000, 'two reconnects');
      assert.ok(Number.isNaN(rec.lines('executor-ws:reconnect')[0].delay));
    } finally {
      await stopAll(stream);
    }
  });
});

// ---------------------------------------------------------------------------

describe('startExecutorWS with the Rust client (§5, §9.7, §9.8)', { timeout: 20000 }, () => {
  it('returns {stop, ready} synchronously; ready resolves on open; opened shows token=*** while the server gets the token', async () => {
    const serve = await serveWith([null]);
    const rec = recorder();
    const id = 'exec/with slash';
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: `${serve.url}/`, executorId: id, token: TOKEN,
        onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 20,
      }));
      assert.equal(typeof stream.then, 'undefined', 'not a promise');
      assert.equal(typeof stream.stop, 'function');
      assert.ok(stream.ready instanceof Promise);
      await within(stream.ready, 3000, 'ready');
      const shown = `ws://127.0.0.1:${serve.port}/ws/executors/${encodeURIComponent(id)}?token=***`;
      assert.deepEqual(rec.states, [['opened', { url: shown }]]);
      assert.deepEqual(rec.lines('executor-ws:opened'), [{ executorId: id, url: shown }]);
      assert.equal(serve.attempts.length, 1);
      assert.equal(serve.attempts[0].token, TOKEN, 'the server sees the real token');
      assert.equal(serve.attempts[0].executorId, id);
      assert.equal(serve.attempts[0].path, `/ws/executors/${encodeURIComponent(id)}?token=${encodeURIComponent(TOKEN)}`);
      const stop = stream.stop();
      assert.ok(stop instanceof Promise, 'stop() returns a promise');
      await stopAll(stream);
      assertHygiene(rec, id);
    } finally {
      await closeServe(serve);
    }
  });

  it('credentials in aiwgServeUrl show as *** in onState meta and every log line (issue 14, item 12)', async () => {
    const serve = await serveWith([null]);
    const rec = recorder();
    const id = 'ex-cred';
    try {
      const base = serve.url.replace('//', '//user:s3cr3t-pw@');
      const stream = track(startExecutorWS({
        aiwgServeUrl: base, executorId: id, token: TOKEN,
        onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 20,
      }));
      await within(stream.ready, 3000, 'ready');
      const shown = `ws://***@127.0.0.1:${serve.port}/ws/executors/${id}?token=***`;
      assert.deepEqual(rec.states, [['opened', { url: shown }]]);
      assert.deepEqual(rec.lines('executor-ws:opened'), [{ executorId: id, url: shown }]);
      await stopAll(stream);
      const everything = JSON.stringify({ logs: rec.logs, states: rec.states });
      assert.ok(!everything.includes('s3cr3t-pw'), `the password was shown: ${everything}`);
    } finally {
      await closeServe(serve);
    }
  });

  it('hands each JSON event to onEvent in order; non-JSON, binary and non-object frames are logged and dropped', async () => {
    const fixtures = ['mission-assigned.json', 'mission-started.json', 'mission-progress.json', 'mission-completed.json'].map(fixture);
    const many = Array.from({ length: 30 }, (_, i) => ({ event: 'mission.progress', mission_id: 'm', ts: 't', data: { i } }));
    const serve = await serveWith([(conn) => {
      conn.send(fixtures[0]);
      conn.send('not json');
      conn.send(fixtures[1]);
      conn.send(Buffer.from(JSON.stringify({ event: 'binary' })));
      conn.send('[1]');
      conn.send('5');
      conn.send('null');
      conn.send('"mission.started"');
      conn.send('{"event": "trunc');
      conn.send(fixtures[2]);
      conn.send(fixtures[3]);
      for (const e of many) conn.send(e);
    }]);
    const rec = recorder();
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: serve.url, executorId: 'ex-order', token: TOKEN,
        onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 20,
      }));
      await within(stream.ready, 3000, 'ready');
      await waitFor(() => rec.events.length >= 4 + many.length, 3000, 'all events');
      await sleep(30);
      assert.deepEqual(rec.events, [...fixtures, ...many]);
      assert.equal(rec.lines('executor-ws:bad-message').length, 7, JSON.stringify(rec.logs));
      assert.equal(serve.connections.length, 1, 'bad frames do not cost the connection');
      assert.deepEqual(rec.stateNames(), ['opened']);
      await stopAll(stream);
      assertHygiene(rec, 'ex-order');
    } finally {
      await closeServe(serve);
    }
  });

  it('an onEvent that throws or rejects is logged (handler-error) and the stream goes on', async () => {
    const serve = await serveWith([(conn) => {
      for (let n = 1; n <= 4; n += 1) conn.send({ event: 'mission.progress', mission_id: 'm', ts: 't', data: { n } });
    }]);
    const rec = recorder();
    const got = [];
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: serve.url, executorId: 'ex-handler', onState: rec.onState, logger: rec.logger, reconnectBaseMs: 20,
        onEvent: (e) => {
          got.push(e.data.n);
          if (e.data.n === 1) throw new Error('sync boom');
          if (e.data.n === 2) return Promise.reject(new Error('async boom'));
          if (e.data.n === 3) return new Promise((resolve) => setTimeout(resolve, 5));
          return undefined;
        },
      }));
      await within(stream.ready, 3000, 'ready');
      await waitFor(() => got.length === 4 && rec.lines('executor-ws:handler-error').length === 2, 3000, 'events and handler errors');
      assert.deepEqual(got, [1, 2, 3, 4]);
      assert.equal(serve.connections.length, 1);
      await stopAll(stream);
      assertHygiene(rec, 'ex-handler');
    } finally {
      await closeServe(serve);
    }
  });

  it('a throwing logger or onState never breaks the stream', async () => {
    const serve = await serveWith([(conn) => {
      conn.send('not json');
      conn.send({ event: 'mission.started', mission_id: 'm', ts: 't' });
    }]);
    const got = [];
    const unhandled = watchUnhandled();
    const exceptions = [];
    const onUncaught = (err) => exceptions.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: serve.url, executorId: 'ex-throwing-callbacks', reconnectBaseMs: 20,
        onEvent: (e) => got.push(e),
        onState: () => { throw new Error('onState boom'); },
        logger: () => { throw new Error('logger boom'); },
      }));
      await within(stream.ready, 3000, 'ready');
      await waitFor(() => got.length === 1, 3000, 'the event');
      await stopAll(stream);
      await sleep(20);
      assert.deepEqual(exceptions, []);
      assert.deepEqual(unhandled.seen, []);
    } finally {
      process.off('uncaughtException', onUncaught);
      unhandled.stop();
      await closeServe(serve);
    }
  });

  it('server close → closed {code}, reconnect after reconnectDelay; failed attempts back off; the counter resets after an open', async () => {
    const serve = await serveWith([
      { reject: 503 },
      { reject: 503 },
      (conn) => {
        conn.send({ event: 'mission.progress', mission_id: 'm', ts: 't', data: { n: 1 } });
        setTimeout(() => conn.ws.close(4001, 'bye'), 10);
      },
      (conn) => setTimeout(() => conn.ws.close(4002, 'again'), 10),
      (conn) => conn.send({ event: 'mission.progress', mission_id: 'm', ts: 't', data: { n: 2 } }),
    ]);
    const rec = recorder();
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: serve.url, executorId: 'ex-reconnect', token: TOKEN,
        onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 20, reconnectMaxMs: 1000,
      }));
      await within(stream.ready, 5000, 'ready after two refused upgrades');
      await waitFor(() => rec.events.length === 2, 5000, 'the event on the third connection');
      assert.deepEqual(rec.events.map((e) => e.data.n), [1, 2]);
      assert.equal(serve.attempts.length, 5);
      assert.deepEqual(rec.lines('executor-ws:reconnect'), [
        { executorId: 'ex-reconnect', attempt: 1, delay: 20 },
        { executorId: 'ex-reconnect', attempt: 2, delay: 40 },
        { executorId: 'ex-reconnect', attempt: 1, delay: 20 }, // reset by the open
        { executorId: 'ex-reconnect', attempt: 1, delay: 20 },
      ]);
      assert.deepEqual(rec.stateNames(), ['error', 'closed', 'error', 'closed', 'opened', 'closed', 'opened', 'closed', 'opened']);
      const closedCodes = rec.states.filter(([s]) => s === 'closed').map(([, meta]) => meta.code);
      assert.deepEqual(closedCodes.slice(2), [4001, 4002]);
      for (const code of closedCodes) assert.equal(typeof code, 'number');
      assert.deepEqual(rec.lines('executor-ws:closed').map((m) => m.code), closedCodes);
      await stopAll(stream);
      assertHygiene(rec, 'ex-reconnect');
    } finally {
      await closeServe(serve);
    }
  });

  it('a frame over 1 MiB drops the connection, which is re-opened; smaller ones pass', async () => {
    const medium = { event: 'mission.progress', mission_id: 'm', ts: 't', data: { pad: 'm'.repeat(MiB / 2) } };
    const serve = await serveWith([
      (conn) => {
        conn.send(medium);
        conn.send(JSON.stringify({ event: 'mission.progress', mission_id: 'm', ts: 't', data: { pad: 'x'.repeat(MiB) } }));
        conn.send({ event: 'never' });
      },
      (conn) => conn.send({ event: 'after', mission_id: 'm', ts: 't' }),
    ]);
    const rec = recorder();
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: serve.url, executorId: 'ex-big', token: TOKEN,
        onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 20,
      }));
      await within(stream.ready, 3000, 'ready');
      await waitFor(() => rec.events.length === 2, 5000, 'the event after the reconnect');
      assert.deepEqual(rec.events.map((e) => e.event), ['mission.progress', 'after']);
      assert.equal(rec.events[0].data.pad.length, MiB / 2);
      assert.equal(serve.connections.length, 2);
      const first = await within(serve.connections[0].closed, 2000, 'the first connection closed');
      assert.notEqual(first.code, 1000);
      assert.ok(rec.stateNames().includes('closed'));
      assert.equal(rec.lines('executor-ws:reconnect').length, 1);
      await stopAll(stream);
      assertHygiene(rec, 'ex-big');
    } finally {
      await closeServe(serve);
    }
  });

  it('stop(): close 1000 "shutdown" seen by the server, idempotent, logs stopped once, no reconnect afterwards', async () => {
    const serve = await serveWith([null]);
    const rec = recorder();
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: serve.url, executorId: 'ex-stop', token: TOKEN,
        onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 10,
      }));
      await within(stream.ready, 3000, 'ready');
      const a = stream.stop();
      const b = stream.stop();
      await within(Promise.all([a, b]), 3000, 'both stop() calls');
      live.delete(stream);
      assert.deepEqual(await within(serve.connections[0].closed, 2000, 'server-side close'), { code: 1000, reason: 'shutdown' });
      await within(stream.stop(), 1000, 'a third stop()');
      await sleep(120);
      assert.equal(serve.attempts.length, 1, 'no reconnect after stop');
      assert.deepEqual(rec.lines('executor-ws:reconnect'), []);
      assert.deepEqual(rec.lines('executor-ws:stopped'), [{ executorId: 'ex-stop' }]);
      assert.equal(rec.logs.at(-1)[0], 'executor-ws:stopped', 'nothing is logged after stopped');
      assert.equal(await settled(stream.ready), 'resolved');
      assertHygiene(rec, 'ex-stop');
    } finally {
      await closeServe(serve);
    }
  });

  it('an AbortSignal abort stops it', async () => {
    const serve = await serveWith([null]);
    const rec = recorder();
    const ac = new AbortController();
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: serve.url, executorId: 'ex-abort', token: TOKEN, signal: ac.signal,
        onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 10,
      }));
      await within(stream.ready, 3000, 'ready');
      ac.abort();
      assert.deepEqual(await within(serve.connections[0].closed, 2000, 'server-side close'), { code: 1000, reason: 'shutdown' });
      await waitFor(() => rec.lines('executor-ws:stopped').length === 1, 2000, 'stopped');
      await within(stream.stop(), 1000, 'stop() after abort');
      live.delete(stream);
      await sleep(80);
      assert.equal(serve.attempts.length, 1);
      assert.deepEqual(rec.lines('executor-ws:reconnect'), []);
      assert.deepEqual(rec.lines('executor-ws:stopped'), [{ executorId: 'ex-abort' }]);
      assertHygiene(rec, 'ex-abort');
    } finally {
      await closeServe(serve);
    }
  });

  it('an already-aborted signal: stopped at once, ready rejects (handled), nothing opens', async () => {
    const serve = await serveWith([null]);
    const rec = recorder();
    const unhandled = watchUnhandled();
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: serve.url, executorId: 'ex-pre-aborted', signal: AbortSignal.abort(),
        onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 10,
      }));
      await stopAll(stream);
      await sleep(80);
      assert.deepEqual(unhandled.seen, []);
      await assert.rejects(within(stream.ready, 1000, 'ready'));
      assert.ok(!rec.stateNames().includes('opened'));
      assert.deepEqual(rec.lines('executor-ws:reconnect'), []);
      assert.deepEqual(rec.lines('executor-ws:stopped'), [{ executorId: 'ex-pre-aborted' }]);
    } finally {
      unhandled.stop();
      await closeServe(serve);
    }
  });

  it('nothing listening: keeps retrying with capped backoff until stop; ready then rejects with no unhandledRejection', async () => {
    const url = await refusedServeUrl();
    const rec = recorder();
    const unhandled = watchUnhandled();
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: url, executorId: 'ex-unreachable', token: TOKEN,
        onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 20, reconnectMaxMs: 80,
      }));
      await waitFor(() => rec.lines('executor-ws:reconnect').length >= 5, 4000, 'five reconnects');
      assert.deepEqual(
        rec.lines('executor-ws:reconnect').slice(0, 5).map(({ attempt, delay }) => [attempt, delay]),
        [[1, 20], [2, 40], [3, 80], [4, 80], [5, 80]],
      );
      assert.equal(await settled(stream.ready), 'pending');
      assert.ok(!rec.stateNames().includes('opened'));
      assert.ok(rec.stateNames().includes('error'));
      assert.ok(rec.stateNames().includes('closed'));
      await stopAll(stream);
      const reconnects = rec.lines('executor-ws:reconnect').length;
      await sleep(200);
      assert.equal(rec.lines('executor-ws:reconnect').length, reconnects, 'no retry after stop');
      assert.deepEqual(unhandled.seen, [], 'no unhandledRejection');
      await assert.rejects(within(stream.ready, 1000, 'ready'));
      assert.deepEqual(rec.lines('executor-ws:stopped'), [{ executorId: 'ex-unreachable' }]);
      assertHygiene(rec, 'ex-unreachable');
    } finally {
      unhandled.stop();
    }
  });

  it('stop() during a handshake the server never answers: quick, ready rejects, no unhandledRejection', async () => {
    const serve = await serveWith([{ hang: true }]);
    const rec = recorder();
    const unhandled = watchUnhandled();
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: serve.url, executorId: 'ex-hang', token: TOKEN,
        onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 20,
      }));
      await waitFor(() => serve.attempts.length === 1, 3000, 'the upgrade request');
      const t0 = Date.now();
      await stopAll(stream);
      assert.ok(Date.now() - t0 < 1000, 'stop does not wait for the handshake');
      await sleep(50);
      assert.deepEqual(unhandled.seen, []);
      await assert.rejects(within(stream.ready, 1000, 'ready'));
      assert.equal(serve.attempts.length, 1);
      assert.deepEqual(rec.lines('executor-ws:stopped'), [{ executorId: 'ex-hang' }]);
      assertHygiene(rec, 'ex-hang');
    } finally {
      unhandled.stop();
      await closeServe(serve);
    }
  });

  it('no onEvent after stop() has resolved, even while the server floods events', async () => {
    const serve = await serveWith([(conn) => {
      let n = 0;
      const timer = setInterval(() => {
        for (let i = 0; i < 50; i += 1) conn.send({ event: 'mission.progress', mission_id: 'm', ts: 't', data: { n: n++ } });
      }, 1);
      conn.ws.on('close', () => clearInterval(timer));
    }]);
    const rec = recorder();
    let resolved = false;
    let late = 0;
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: serve.url, executorId: 'ex-flood', logger: rec.logger, onState: rec.onState,
        onEvent: (e) => {
          if (resolved) late += 1;
          rec.events.push(e);
        },
      }));
      await within(stream.ready, 3000, 'ready');
      await waitFor(() => rec.events.length > 200, 3000, 'a flood of events');
      await stopAll(stream);
      resolved = true;
      await sleep(50);
      assert.equal(late, 0);
      assert.deepEqual(rec.events.map((e) => e.data.n), rec.events.map((_, i) => i), 'in order, none lost');
      assert.equal(rec.logs.at(-1)[0], 'executor-ws:stopped');
    } finally {
      await closeServe(serve);
    }
  });

  it('reconnectMaxMs: Infinity (no cap, a number) is accepted', async () => {
    const url = await refusedServeUrl();
    const rec = recorder();
    const stream = track(startExecutorWS({
      aiwgServeUrl: url, executorId: 'ex-no-cap', logger: rec.logger, reconnectBaseMs: 20, reconnectMaxMs: Infinity,
    }));
    try {
      await waitFor(() => rec.lines('executor-ws:reconnect').length >= 2, 2000, 'two reconnects');
      assert.deepEqual(rec.lines('executor-ws:reconnect').slice(0, 2).map((m) => m.delay), [20, 40]);
    } finally {
      await stopAll(stream);
    }
  });

  it('without a logger or onState it still streams', async () => {
    const serve = await serveWith([(conn) => conn.send({ event: 'mission.started', mission_id: 'm', ts: 't' })]);
    const got = [];
    try {
      const stream = track(startExecutorWS({ aiwgServeUrl: serve.url, executorId: 'ex-bare', onEvent: (e) => got.push(e) }));
      await within(stream.ready, 3000, 'ready');
      await waitFor(() => got.length === 1, 3000, 'the event');
      await stopAll(stream);
    } finally {
      await closeServe(serve);
    }
  });
});

// ---------------------------------------------------------------------------

describe('startExecutorWS with an injected WebSocketImpl (§5)', { timeout: 10000 }, () => {
  const SERVE = 'http://serve.test:7337/';

  it('constructs the first socket before returning, with the real token; ready and opened follow the open event', async () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const rec = recorder();
    const stream = track(startExecutorWS({
      aiwgServeUrl: SERVE, executorId: 'ex/js', token: TOKEN, WebSocketImpl: FakeWebSocket,
      onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 20,
    }));
    assert.equal(sockets.length, 1, 'constructed before startExecutorWS returned');
    assert.equal(typeof stream.stop, 'function');
    assert.ok(stream.ready instanceof Promise);
    assert.equal(sockets[0].url, buildWsUrl(SERVE, 'ex/js', TOKEN));
    assert.equal(await settled(stream.ready), 'pending');
    sockets[0].fireOpen();
    await within(stream.ready, 1000, 'ready');
    const shown = 'ws://serve.test:7337/ws/executors/ex%2Fjs?token=***';
    assert.deepEqual(rec.states, [['opened', { url: shown }]]);
    assert.deepEqual(rec.lines('executor-ws:opened'), [{ executorId: 'ex/js', url: shown }]);
    await stopAll(stream);
    assertHygiene(rec, 'ex/js');
  });

  it('a message reaches onEvent before the dispatching call returns, in order', async () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const rec = recorder();
    const stream = track(startExecutorWS({
      aiwgServeUrl: SERVE, executorId: 'ex-sync', WebSocketImpl: FakeWebSocket,
      onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger,
    }));
    sockets[0].fireOpen();
    const started = fixture('mission-started.json');
    sockets[0].fireMessage(JSON.stringify(started));
    assert.deepEqual(rec.events, [started], 'delivered synchronously');
    for (let i = 0; i < 5; i += 1) {
      sockets[0].fireMessage(JSON.stringify({ event: 'mission.progress', data: { i } }));
      assert.equal(rec.events.length, 2 + i);
    }
    assert.deepEqual(rec.events.slice(1).map((e) => e.data.i), [0, 1, 2, 3, 4]);
    await stopAll(stream);
    assertHygiene(rec, 'ex-sync');
  });

  it('non-JSON, binary and non-object messages are logged (bad-message) and dropped; the stream goes on', async () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const rec = recorder();
    const stream = track(startExecutorWS({
      aiwgServeUrl: SERVE, executorId: 'ex-bad', WebSocketImpl: FakeWebSocket,
      onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger,
    }));
    sockets[0].fireOpen();
    const bad = ['not json', '', '[1]', '5', 'null', '"str"', 'true', new ArrayBuffer(4), new Uint8Array([123, 125]), undefined];
    for (const data of bad) {
      assert.doesNotThrow(() => sockets[0].fireMessage(data));
    }
    assert.equal(rec.lines('executor-ws:bad-message').length, bad.length, JSON.stringify(rec.logs));
    assert.deepEqual(rec.events, []);
    sockets[0].fireMessage('{"event":"mission.completed","mission_id":"m"}');
    assert.deepEqual(rec.events, [{ event: 'mission.completed', mission_id: 'm' }]);
    assert.equal(sockets.length, 1);
    await stopAll(stream);
    assertHygiene(rec, 'ex-bad');
  });

  it('an onEvent that throws or rejects is logged (handler-error) and the stream goes on', async () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const rec = recorder();
    const got = [];
    const stream = track(startExecutorWS({
      aiwgServeUrl: SERVE, executorId: 'ex-js-handler', WebSocketImpl: FakeWebSocket,
      onState: rec.onState, logger: rec.logger,
      onEvent: (e) => {
        got.push(e.n);
        if (e.n === 1) throw new Error('sync boom');
        if (e.n === 2) return Promise.reject(new Error('async boom'));
        return undefined;
      },
    }));
    sockets[0].fireOpen();
    assert.doesNotThrow(() => sockets[0].fireMessage('{"n":1}'));
    assert.equal(rec.lines('executor-ws:handler-error').length, 1);
    sockets[0].fireMessage('{"n":2}');
    sockets[0].fireMessage('{"n":3}');
    assert.deepEqual(got, [1, 2, 3]);
    await waitFor(() => rec.lines('executor-ws:handler-error').length === 2, 1000, 'the rejection logged');
    await stopAll(stream);
    assertHygiene(rec, 'ex-js-handler');
  });

  it('close → closed {code} and a new socket after reconnectDelay; the counter resets after an open', async () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const rec = recorder();
    const stream = track(startExecutorWS({
      aiwgServeUrl: SERVE, executorId: 'ex-js-reconnect', token: TOKEN, WebSocketImpl: FakeWebSocket,
      onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 30, reconnectMaxMs: 1000,
    }));
    sockets[0].fireOpen();
    let t0 = Date.now();
    sockets[0].fireClose(4001, 'bye');
    assert.deepEqual(rec.states.at(-1), ['closed', { code: 4001 }]);
    assert.deepEqual(rec.lines('executor-ws:reconnect'), [{ executorId: 'ex-js-reconnect', attempt: 1, delay: 30 }]);
    assert.equal(sockets.length, 1, 'not at once');
    await waitFor(() => sockets.length === 2, 1000, 'second socket');
    assert.ok(Date.now() - t0 >= 25, `waited ${Date.now() - t0} ms`);
    assert.equal(sockets[1].url, sockets[0].url);
    // A failed attempt (error then close, as browsers do) doubles the delay.
    t0 = Date.now();
    sockets[1].fireError();
    sockets[1].fireClose(1006);
    assert.deepEqual(rec.states.slice(-2), [['error', undefined], ['closed', { code: 1006 }]]);
    assert.deepEqual(rec.lines('executor-ws:reconnect').at(-1), { executorId: 'ex-js-reconnect', attempt: 2, delay: 60 });
    await waitFor(() => sockets.length === 3, 1000, 'third socket');
    assert.ok(Date.now() - t0 >= 50, `waited ${Date.now() - t0} ms`);
    sockets[2].fireOpen();
    sockets[2].fireClose(4002);
    assert.deepEqual(rec.lines('executor-ws:reconnect').at(-1), { executorId: 'ex-js-reconnect', attempt: 1, delay: 30 });
    await waitFor(() => sockets.length === 4, 1000, 'fourth socket');
    assert.equal(rec.lines('executor-ws:error').length, 1);
    assert.deepEqual(rec.stateNames(), ['opened', 'closed', 'error', 'closed', 'opened', 'closed']);
    await stopAll(stream);
    assertHygiene(rec, 'ex-js-reconnect');
  });

  it('stop(): close(1000, "shutdown"), idempotent, stopped logged once; no socket after stop even with a reconnect pending', async () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const rec = recorder();
    const stream = track(startExecutorWS({
      aiwgServeUrl: SERVE, executorId: 'ex-js-stop', WebSocketImpl: FakeWebSocket,
      onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 20,
    }));
    sockets[0].fireOpen();
    await within(stream.stop(), 1000, 'stop()');
    await within(stream.stop(), 1000, 'stop() again');
    live.delete(stream);
    assert.deepEqual(sockets[0].closeCalls, [[1000, 'shutdown']]);
    assert.deepEqual(rec.lines('executor-ws:stopped'), [{ executorId: 'ex-js-stop' }]);
    sockets[0].fireClose(1000); // what a real socket does next
    await sleep(80);
    assert.equal(sockets.length, 1, 'no socket after stop');
    assert.deepEqual(rec.lines('executor-ws:reconnect'), []);

    // A reconnect timer pending at stop() never fires.
    const second = fakeWebSocket();
    const rec2 = recorder();
    const stream2 = track(startExecutorWS({
      aiwgServeUrl: SERVE, executorId: 'ex-js-stop2', WebSocketImpl: second.FakeWebSocket,
      onEvent: rec2.onEvent, onState: rec2.onState, logger: rec2.logger, reconnectBaseMs: 20,
    }));
    second.sockets[0].fireOpen();
    second.sockets[0].fireClose(1006);
    assert.equal(rec2.lines('executor-ws:reconnect').length, 1, 'a reconnect is pending');
    await stopAll(stream2);
    await sleep(100);
    assert.equal(second.made.count, 1, 'no socket constructed after stop');
    assert.deepEqual(rec2.lines('executor-ws:stopped'), [{ executorId: 'ex-js-stop2' }]);
    assertHygiene(rec, 'ex-js-stop');
    assertHygiene(rec2, 'ex-js-stop2');
  });

  it('stop() before open: ready rejects, no unhandledRejection', async () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const rec = recorder();
    const unhandled = watchUnhandled();
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: SERVE, executorId: 'ex-js-never', token: TOKEN, WebSocketImpl: FakeWebSocket,
        onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger,
      }));
      await stopAll(stream);
      assert.deepEqual(sockets[0].closeCalls, [[1000, 'shutdown']]);
      await sleep(30);
      assert.deepEqual(unhandled.seen, []);
      await assert.rejects(within(stream.ready, 1000, 'ready'));
    } finally {
      unhandled.stop();
    }
  });

  it('a constructor that throws → construct-failed (token hidden) and a retry', async () => {
    const { FakeWebSocket, sockets, made } = fakeWebSocket({ throwOn: (n) => n <= 2 });
    const rec = recorder();
    let stream;
    assert.doesNotThrow(() => {
      stream = track(startExecutorWS({
        aiwgServeUrl: SERVE, executorId: 'ex-js-throw', token: TOKEN, WebSocketImpl: FakeWebSocket,
        onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 20, reconnectMaxMs: 1000,
      }));
    });
    assert.equal(made.count, 1);
    assert.equal(rec.lines('executor-ws:construct-failed').length, 1);
    assert.deepEqual(rec.lines('executor-ws:reconnect'), [{ executorId: 'ex-js-throw', attempt: 1, delay: 20 }]);
    await waitFor(() => sockets.length === 1, 1000, 'a socket after two failed constructions');
    assert.equal(made.count, 3);
    assert.equal(rec.lines('executor-ws:construct-failed').length, 2);
    assert.deepEqual(rec.lines('executor-ws:reconnect').map((m) => m.delay), [20, 40]);
    sockets[0].fireOpen();
    await within(stream.ready, 1000, 'ready');
    await stopAll(stream);
    assertHygiene(rec, 'ex-js-throw');

    // A constructor that always throws retries until stop, then never again
    // (after stop it would succeed, so a bug here cannot loop forever).
    let throwing = true;
    const always = fakeWebSocket({ throwOn: () => throwing });
    const rec2 = recorder();
    const stream2 = track(startExecutorWS({
      aiwgServeUrl: SERVE, executorId: 'ex-js-throw2', token: TOKEN, WebSocketImpl: always.FakeWebSocket,
      onEvent: rec2.onEvent, onState: rec2.onState, logger: rec2.logger, reconnectBaseMs: 10, reconnectMaxMs: 20,
    }));
    await waitFor(() => always.made.count >= 4, 1000, 'retries');
    await stopAll(stream2);
    throwing = false;
    const count = always.made.count;
    await sleep(60);
    assert.equal(always.made.count, count);
    await assert.rejects(within(stream2.ready, 1000, 'ready'));
    assertHygiene(rec2, 'ex-js-throw2');
  });

  it('an AbortSignal abort stops it (close 1000 shutdown, no new socket)', async () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const rec = recorder();
    const ac = new AbortController();
    const stream = track(startExecutorWS({
      aiwgServeUrl: SERVE, executorId: 'ex-js-abort', WebSocketImpl: FakeWebSocket, signal: ac.signal,
      onEvent: rec.onEvent, onState: rec.onState, logger: rec.logger, reconnectBaseMs: 10,
    }));
    sockets[0].fireOpen();
    ac.abort();
    await waitFor(() => rec.lines('executor-ws:stopped').length === 1, 1000, 'stopped');
    assert.deepEqual(sockets[0].closeCalls, [[1000, 'shutdown']]);
    sockets[0].fireClose(1000);
    await sleep(50);
    assert.equal(sockets.length, 1);
    await stopAll(stream);
    assert.deepEqual(rec.lines('executor-ws:stopped'), [{ executorId: 'ex-js-abort' }]);
    assertHygiene(rec, 'ex-js-abort');
  });

  it('a throwing onState or logger does not break the socket callbacks', async () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const got = [];
    const stream = track(startExecutorWS({
      aiwgServeUrl: SERVE, executorId: 'ex-js-throwing-callbacks', WebSocketImpl: FakeWebSocket, reconnectBaseMs: 10,
      onEvent: (e) => got.push(e),
      onState: () => { throw new Error('onState boom'); },
      logger: () => { throw new Error('logger boom'); },
    }));
    assert.doesNotThrow(() => sockets[0].fireOpen());
    assert.doesNotThrow(() => sockets[0].fireMessage('nope'));
    assert.doesNotThrow(() => sockets[0].fireMessage('{"event":"x"}'));
    assert.doesNotThrow(() => sockets[0].fireClose(4000));
    await within(stream.ready, 1000, 'ready');
    assert.deepEqual(got, [{ event: 'x' }]);
    await waitFor(() => sockets.length === 2, 1000, 'reconnect');
    await stopAll(stream);
  });
});

/** The most the kernel may buffer on a loopback connection (receive + send side), where it says. */
function socketBufferMax() {
  const max = (file) => {
    try {
      return Number(fs.readFileSync(file, 'utf8').trim().split(/\s+/)[2]) || 0;
    } catch {
      return 0;
    }
  };
  return max('/proc/sys/net/ipv4/tcp_rmem') + max('/proc/sys/net/ipv4/tcp_wmem');
}

// ---------------------------------------------------------------------------
// The bounded queue between socket and consumer (issue 12), through the
// internal flow hook (not public API; see js/executor-ws-client.js).

describe('backpressure: the flow hook and the one bounded queue (issue 12)', { timeout: 60_000 }, () => {
  const FLOW = Symbol.for('@aiwg/mc-native/executor-ws:flow');
  const PAD = 'x'.repeat(8 * 1024);
  // More than the loopback socket buffers can ever hold, so a reader that
  // stops leaves the rest in the server's buffer: on Linux the kernel may
  // grow a receive buffer to tcp_rmem's maximum (32 MiB by default), with
  // tcp_wmem's maximum on the sending side.
  const FRAMES = Math.max(1500, Math.ceil((socketBufferMax() + 8 * 1024 * 1024) / PAD.length));
  // Sent in slices, so the client in this same process gets its turns
  // (its 'open', its first events) while the server is still sending.
  const flood = async (conn) => {
    for (let n = 0; n < FRAMES; n += 1) {
      conn.ws.send(JSON.stringify({ event: 'mission.progress', n, pad: PAD }));
      if (n % 256 === 255) await new Promise((r) => setImmediate(r));
    }
  };

  /** A consumer that says full() after `fullAt` events, and records every n. */
  function consumer(fullAt) {
    const got = [];
    const c = { got, control: null };
    c.onEvent = (event) => {
      got.push(event.n);
      if (got.length === fullAt) c.control.full();
    };
    c.hook = (control) => {
      c.control = control;
    };
    return c;
  }

  const inOrder = (got) => got.every((n, i) => n === i);

  it('injected `ws` socket: paused while the consumer is full, resumed on room(), every event in order', async () => {
    const serve = await serveWith([flood]);
    const made = [];
    class Recorded extends WsWebSocket {
      constructor(url) {
        super(url);
        made.push(this);
      }
    }
    const rec = recorder();
    const c = consumer(10);
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: serve.url, executorId: 'ex-bp-ws', WebSocketImpl: Recorded,
        onEvent: c.onEvent, onState: rec.onState, logger: rec.logger, [FLOW]: c.hook,
      }));
      assert.ok(c.control, 'the hook is called before startExecutorWS returns');
      assert.equal(made.length, 1, 'and the socket is still made before it returns');
      await within(stream.ready, 10_000, 'ready');
      await waitFor(() => made[0].isPaused, 5000, 'the client socket paused');
      await sleep(200);
      assert.equal(c.got.length, 10, 'nothing reaches onEvent while full');
      assert.ok(made[0].isPaused);
      assert.ok(serve.connections[0].ws.bufferedAmount > 0, 'the server is held back');
      c.control.room();
      await waitFor(() => c.got.length === FRAMES, 20_000, 'every event');
      assert.ok(inOrder(c.got), 'in order');
      assert.equal(made[0].isPaused, false, 'resumed');
      assert.deepEqual(rec.lines('executor-ws:backpressure-unavailable'), []);
      assert.equal(made.length, 1, 'one connection throughout');
      await stopAll(stream);
    } finally {
      await closeServe(serve);
    }
  });

  it('injected socket without pause(): nothing dropped or reordered; backpressure-unavailable logged once', async () => {
    const serve = await serveWith([flood]);
    // A browser-style socket: the `ws` socket's events, but no pause()/resume().
    class NoPause {
      constructor(url) {
        this.inner = new WsWebSocket(url);
      }

      addEventListener(type, cb) {
        this.inner.addEventListener(type, cb);
      }

      close(code, reason) {
        this.inner.close(code, reason);
      }
    }
    const rec = recorder();
    const c = consumer(5);
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: serve.url, executorId: 'ex-bp-nopause', WebSocketImpl: NoPause,
        onEvent: c.onEvent, onState: rec.onState, logger: rec.logger, [FLOW]: c.hook,
      }));
      await waitFor(() => rec.lines('executor-ws:backpressure-unavailable').length === 1, 5000, 'the warning');
      await sleep(200);
      assert.equal(c.got.length, 5, 'queued, not delivered, while full');
      c.control.room();
      await waitFor(() => c.got.length === FRAMES, 20_000, 'every event');
      assert.ok(inOrder(c.got), 'in order');
      assert.deepEqual(rec.lines('executor-ws:backpressure-unavailable'), [{ executorId: 'ex-bp-nopause' }]);
      await stopAll(stream);
    } finally {
      await closeServe(serve);
    }
  });

  it('the Rust client: stops reading while the consumer is full (the server sees it), every event in order after room()', async () => {
    const serve = await serveWith([flood]);
    const rec = recorder();
    const c = consumer(10);
    try {
      const stream = track(startExecutorWS({
        aiwgServeUrl: serve.url, executorId: 'ex-bp-native',
        onEvent: c.onEvent, onState: rec.onState, logger: rec.logger, [FLOW]: c.hook,
      }));
      await within(stream.ready, 10_000, 'ready');
      await waitFor(() => c.got.length === 10, 5000, 'the first events');
      await sleep(300);
      assert.equal(c.got.length, 10, 'nothing reaches onEvent while full');
      assert.ok(serve.connections[0].ws.bufferedAmount > 0, 'the server is held back');
      // A full consumer twice over: room(), full() again from onEvent, room().
      c.control.room();
      await waitFor(() => c.got.length === FRAMES, 20_000, 'every event');
      assert.ok(inOrder(c.got), 'in order');
      await stopAll(stream);
    } finally {
      await closeServe(serve);
    }
  });

  it('full() then room() from inside onEvent keeps the order (a drain is never re-entered)', async () => {
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const got = [];
    let control;
    const stream = track(startExecutorWS({
      aiwgServeUrl: 'http://serve.test/', executorId: 'ex-bp-reenter', WebSocketImpl: FakeWebSocket,
      [FLOW]: (ctl) => { control = ctl; },
      onEvent: (e) => {
        got.push(e.n);
        if (e.n === 0) control.full();
        if (e.n === 1) control.room(); // from inside the drain
      },
    }));
    sockets[0].fireOpen();
    for (let n = 0; n < 5; n += 1) sockets[0].fireMessage(JSON.stringify({ n }));
    assert.deepEqual(got, [0]);
    control.room();
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
    sockets[0].fireMessage('{"n":5}');
    assert.deepEqual(got, [0, 1, 2, 3, 4, 5], 'straight through again');
    await stopAll(stream);
  });
});
