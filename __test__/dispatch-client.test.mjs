// @aiwg/mc-native/dispatch-client (SPEC §3, §9.4, §9.7, §10): classifyStatus,
// reasonForStatus, sleep and dispatchMission, the latter against a real
// node:http server on 127.0.0.1 (the Rust HTTP client) and through an
// injected fetchImpl.
// Run: node --test __test__/dispatch-client.test.mjs

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import path from 'node:path';

import * as main from '../index.mjs';
import { classifyStatus, reasonForStatus, sleep, dispatchMission } from '../dispatch-client.mjs';
import { startScriptedServe, refusedUrl } from './helpers/scripted-serve.mjs';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const PKG = path.join(HERE, '..');
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------
// helpers

/** A logger that records `[msg, meta]`; `lines(msg)` filters by message. */
function recorder() {
  const all = [];
  const logger = (msg, meta) => all.push([msg, meta]);
  return { logger, all, lines: (msg) => all.filter(([m]) => m === msg).map(([, meta]) => meta) };
}

/** A scripted server torn down with the test. */
async function serve(t, script) {
  const s = await startScriptedServe(script);
  t.after(() => s.close());
  return s;
}

/** A payload shaped like buildDispatchPayload's, with a given mission id. */
function payloadFor(missionId = 'm-1') {
  return {
    mission_id: missionId,
    objective: 'echo hello',
    completion: null,
    long_running: false,
    executor_filter: { executor_id: null, capabilities: ['pty', 'git'], agent_id: 'agent-01' },
    metadata: { mc_session_id: 'sess-1', mode: 'direct', priority: 'normal', issue: 1180, ratio: 1.5, note: 'héllo ✓' },
  };
}

/** Elapsed ms of `await promise`, with its value. */
async function timed(promise) {
  const t0 = performance.now();
  const value = await promise;
  return { value, ms: performance.now() - t0 };
}

/**
 * A fetchImpl whose answers are scripted like the server's (index i gets
 * answer i, the last repeats). Answer: `{status, text}` | `{throwSync}` |
 * `{reject}` | `{textRejects}` | `{hang: true}` | `{hangUntilAbort: true}`.
 */
function fakeFetch(answers) {
  const calls = [];
  function fetchImpl(url, init) {
    calls.push({ url, init });
    const a = answers[Math.min(calls.length - 1, answers.length - 1)];
    if (a.throwSync) throw a.throwSync;
    if (a.reject) return Promise.reject(a.reject);
    if (a.hang) return new Promise(() => {});
    if (a.hangUntilAbort) {
      return new Promise((_resolve, reject) => {
        init.signal.addEventListener('abort', () => {
          const e = new Error('This operation was aborted');
          e.name = 'AbortError';
          reject(e);
        });
      });
    }
    return Promise.resolve({
      status: a.status,
      text: a.textRejects ? () => Promise.reject(a.textRejects) : async () => a.text ?? '',
    });
  }
  return { fetchImpl, calls };
}

function isArgTypeError(name) {
  return (e) => {
    assert.ok(e instanceof TypeError, `expected a TypeError, got ${e}`);
    assert.equal(e.code, 'ERR_INVALID_ARG_TYPE');
    assert.match(e.message, new RegExp(`"${name.replace('.', '\\.')}"`));
    return true;
  };
}

/** Call `fn` expecting a returned promise that rejects (never a synchronous throw). */
async function assertRejectsAsync(fn, check) {
  let p;
  assert.doesNotThrow(() => {
    p = fn();
  }, 'must reject, not throw synchronously');
  assert.ok(p instanceof Promise);
  await assert.rejects(p, check);
}

// ---------------------------------------------------------------------------

describe('package surface', () => {
  it('the subpath and the main entry export the same functions', () => {
    for (const name of ['classifyStatus', 'reasonForStatus', 'sleep', 'dispatchMission']) {
      assert.equal(typeof main[name], 'function', name);
      assert.equal(main[name], { classifyStatus, reasonForStatus, sleep, dispatchMission }[name], name);
    }
  });
});

describe('classifyStatus', () => {
  it('2xx accepted, 5xx retryable, anything else terminal', () => {
    for (const s of [200, 201, 202, 204, 250.5, 299, 299.5]) assert.equal(classifyStatus(s), 'accepted', String(s));
    for (const s of [500, 501, 502, 503, 504, 599]) assert.equal(classifyStatus(s), 'retryable', String(s));
    for (const s of [-1, 0, 100, 199, 199.5, 300, 304, 400, 404, 422, 499, 600, 999, NaN, Infinity]) {
      assert.equal(classifyStatus(s), 'terminal', String(s));
    }
  });
  it('is synchronous', () => {
    assert.equal(typeof classifyStatus(202), 'string');
  });
  it("classifyStatus('x') throws a TypeError", () => {
    assert.throws(() => classifyStatus('x'), isArgTypeError('status'));
    assert.throws(() => classifyStatus(), TypeError);
  });
});

describe('reasonForStatus', () => {
  it('maps every listed status', () => {
    const table = {
      400: 'invalid_request',
      401: 'unauthorized',
      403: 'unauthorized',
      404: 'executor_not_found',
      409: 'idempotency_conflict',
      422: 'idempotency_key_reused',
      503: 'no_executor_available',
    };
    for (const [s, reason] of Object.entries(table)) {
      assert.equal(reasonForStatus(Number(s)), reason, s);
      assert.equal(reasonForStatus(Number(s), 'dispatch_error'), reason, `${s} with a fallback`);
    }
  });
  it("anything else gives the fallback, 'client_error' by default", () => {
    for (const s of [-1, 0, 200, 402, 405, 410, 418, 429, 500, 502, 504, 400.5]) {
      assert.equal(reasonForStatus(s), 'client_error', String(s));
      assert.equal(reasonForStatus(s, 'dispatch_error'), 'dispatch_error', String(s));
    }
    assert.equal(reasonForStatus(418, undefined), 'client_error');
  });
  it('a non-number status throws a TypeError', () => {
    assert.throws(() => reasonForStatus('400'), isArgTypeError('status'));
  });
});

describe('sleep', () => {
  it('resolves (to undefined) after ms', async () => {
    const p = sleep(40);
    assert.ok(p instanceof Promise);
    const { value, ms } = await timed(p);
    assert.equal(value, undefined);
    assert.ok(ms >= 38, `resolved after ${ms} ms`);
  });
  it('sleep(0) resolves', async () => {
    assert.equal(await sleep(0), undefined);
  });
  it('resolves at once with an already-aborted signal', async () => {
    const ac = new AbortController();
    ac.abort();
    const { ms } = await timed(sleep(10_000, ac.signal));
    assert.ok(ms < 200, `took ${ms} ms`);
  });
  it('resolves early when the signal aborts, and never rejects', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('shutdown')), 30);
    const { value, ms } = await timed(sleep(10_000, ac.signal));
    assert.equal(value, undefined);
    assert.ok(ms < 1000, `took ${ms} ms`);
  });
  it('leaves no abort listener behind', async () => {
    const ac = new AbortController();
    await sleep(5, ac.signal);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  });
});

// ---------------------------------------------------------------------------
// dispatchMission, Rust HTTP client

describe('dispatchMission: 2xx', () => {
  it('202 with executor_id → accepted with every field', async (t) => {
    const s = await serve(t, [{
      status: 202,
      body: {
        mission_id: 'm-1',
        executor_id: 'sandbox-01-uuid',
        status: 'assigned',
        estimated_start: '2026-05-09T07:13:22.123Z',
        dispatch_path: 'direct',
        idempotent_replayed: true,
      },
    }]);
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: s.url, logger: log.logger }, 'sess-1', payloadFor('m-1'));
    assert.deepEqual(out, {
      outcome: 'accepted',
      missionId: 'm-1',
      executorId: 'sandbox-01-uuid',
      estimatedStart: '2026-05-09T07:13:22.123Z',
      dispatchPath: 'direct',
      idempotentReplayed: true,
      attempts: 1,
    });
    assert.equal(s.requests.length, 1);
    assert.deepEqual(log.all, [['dispatch-client:accepted', { missionId: 'm-1', attempts: 1, executorId: 'sandbox-01-uuid' }]]);
  });

  it("202 without executor_id → executorId 'unknown', idempotentReplayed false", async (t) => {
    const s = await serve(t, [{ status: 202, body: { mission_id: 'm-2', status: 'assigned' } }]);
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: s.url, logger: log.logger }, 'sess-1', payloadFor('m-2'));
    assert.equal(out.outcome, 'accepted');
    assert.equal(out.missionId, 'm-2');
    assert.equal(out.executorId, 'unknown');
    assert.equal(out.idempotentReplayed, false);
    assert.equal(out.estimatedStart, undefined);
    assert.equal(out.dispatchPath, undefined);
    assert.equal(out.attempts, 1);
    assert.deepEqual(log.lines('dispatch-client:accepted'), [{ missionId: 'm-2', attempts: 1, executorId: 'unknown' }]);
  });

  it('idempotentReplayed is Boolean(body.idempotent_replayed); an empty executor_id is unknown', async (t) => {
    const bodies = [
      [{ executor_id: '', idempotent_replayed: 1 }, 'unknown', true],
      [{ executor_id: 'e', idempotent_replayed: 'yes' }, 'e', true],
      [{ executor_id: 'e', idempotent_replayed: 0 }, 'e', false],
      [{ executor_id: 'e', idempotent_replayed: null }, 'e', false],
    ];
    const s = await serve(t, (_req, i) => ({ status: 202, body: bodies[i][0] }));
    for (const [, executorId, replayed] of bodies) {
      const out = await dispatchMission({ aiwgServeUrl: s.url }, 's', payloadFor());
      assert.equal(out.executorId, executorId);
      assert.equal(out.idempotentReplayed, replayed);
    }
  });

  it('200, 201 and 299 are accepted too; a 2xx with a non-JSON or empty body is accepted as unknown', async (t) => {
    const answers = [
      { status: 200, body: { executor_id: 'a' } },
      { status: 201, body: { executor_id: 'b' } },
      { status: 299, body: { executor_id: 'c' } },
      { status: 202, body: 'Accepted!', headers: { 'content-type': 'text/plain' } },
      { status: 204 },
    ];
    const s = await serve(t, (_req, i) => answers[i]);
    const got = [];
    for (let i = 0; i < answers.length; i++) {
      const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 1 }, 's', payloadFor());
      assert.equal(out.outcome, 'accepted');
      assert.equal(out.attempts, 1);
      got.push(out.executorId);
    }
    assert.deepEqual(got, ['a', 'b', 'c', 'unknown', 'unknown']);
  });
});

describe('dispatchMission: terminal answers', () => {
  const cases = [
    [400, { error: 'Invalid JSON body' }, 'invalid_request', 'Invalid JSON body'],
    [400, { error: 'Invalid dispatch payload: objective missing' }, 'invalid_request', 'Invalid dispatch payload: objective missing'],
    [400, { detail: 'd wins', error: 'e' }, 'invalid_request', 'd wins'],
    [400, { detail: '', error: 'e falls through' }, 'invalid_request', 'e falls through'],
    [400, { title: 'no message here' }, 'invalid_request', 'HTTP 400'],
    [401, { type: 'https://aiwg.io/problems/unauthorized', title: 'Unauthorized', status: 401, detail: 'Missing or invalid bearer token' }, 'unauthorized', 'Missing or invalid bearer token'],
    [403, { error: 'forbidden' }, 'unauthorized', 'forbidden'],
    [404, { detail: "executor_filter.agent_id 'agent-99' is not currently connected to this executor", agent_id: 'agent-99' }, 'executor_not_found', "executor_filter.agent_id 'agent-99' is not currently connected to this executor"],
    [409, { error: 'idempotency conflict' }, 'idempotency_conflict', 'idempotency conflict'],
    [422, { detail: 'key reused with another body' }, 'idempotency_key_reused', 'key reused with another body'],
    [418, { error: 'teapot' }, 'client_error', 'teapot'],
    [429, { error: 'slow down' }, 'client_error', 'slow down'],
  ];
  for (const [status, body, reason, message] of cases) {
    it(`${status} ${JSON.stringify(body).slice(0, 40)} → ${reason}, one request`, async (t) => {
      const s = await serve(t, [{ status, body }, { status: 202, body: { executor_id: 'must-not-be-reached' } }]);
      const log = recorder();
      const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 1, logger: log.logger }, 'sess', payloadFor('m-t'));
      assert.deepEqual(out, { outcome: 'failed', missionId: 'm-t', reason, message, status, attempts: 1 });
      assert.equal(s.requests.length, 1);
      assert.deepEqual(log.all, [['dispatch-client:terminal', { missionId: 'm-t', status, reason, message }]]);
    });
  }

  it('a non-string detail is the message as is (body.detail)', async (t) => {
    const s = await serve(t, [{ status: 400, body: { detail: 42 } }]);
    const out = await dispatchMission({ aiwgServeUrl: s.url }, 'sess', payloadFor());
    assert.equal(out.message, 42);
  });
});

describe('dispatchMission: answer bodies', () => {
  it('a non-JSON body becomes {error: text}: the message is the text', async (t) => {
    const s = await serve(t, [{ status: 400, body: 'Bad things happened', headers: { 'content-type': 'text/plain' } }]);
    const out = await dispatchMission({ aiwgServeUrl: s.url }, 'sess', payloadFor());
    assert.equal(out.reason, 'invalid_request');
    assert.equal(out.message, 'Bad things happened');
  });
  it('truncated JSON is not JSON either', async (t) => {
    const s = await serve(t, [{ status: 404, body: '{"detail":"cut', headers: { 'content-type': 'application/json' } }]);
    const out = await dispatchMission({ aiwgServeUrl: s.url }, 'sess', payloadFor());
    assert.equal(out.message, '{"detail":"cut');
  });
  it("an empty body gives 'HTTP <status>'", async (t) => {
    const s = await serve(t, [{ status: 404 }]);
    const out = await dispatchMission({ aiwgServeUrl: s.url }, 'sess', payloadFor());
    assert.deepEqual(out, { outcome: 'failed', missionId: 'm-1', reason: 'executor_not_found', message: 'HTTP 404', status: 404, attempts: 1 });
  });
  it('an HTML 502 page, exhausted, is quoted in the message', async (t) => {
    const html = '<html><body>502 Bad Gateway</body></html>';
    const s = await serve(t, [{ status: 502, body: html, headers: { 'content-type': 'text/html' } }]);
    const out = await dispatchMission({ aiwgServeUrl: s.url, maxAttempts: 1 }, 'sess', payloadFor());
    assert.equal(out.reason, 'dispatch_error');
    assert.equal(out.message, `dispatch exhausted 1 attempts: ${html}`);
  });
});

describe('dispatchMission: retries', () => {
  it('500, 502, 503, 504 then 202 → accepted after 5 attempts, with retrying lines', async (t) => {
    const s = await serve(t, [
      { status: 500, body: { detail: "dispatcher couldn't start the session" } },
      { status: 502, body: { error: 'executor_unreachable', detail: 'connect ECONNREFUSED' } },
      { status: 503, body: { error: 'no_executor_available' } },
      { status: 504 },
      { status: 202, body: { executor_id: 'ex-5' } },
    ]);
    const log = recorder();
    const payload = payloadFor('m-r');
    const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 3, maxAttempts: 5, logger: log.logger }, 'sess-r', payload);
    // Every log line arrived before the promise resolved, in order.
    assert.deepEqual(log.all, [
      ['dispatch-client:retrying', { missionId: 'm-r', attempt: 1, status: 500, delay: 3 }],
      ['dispatch-client:retrying', { missionId: 'm-r', attempt: 2, status: 502, delay: 6 }],
      ['dispatch-client:retrying', { missionId: 'm-r', attempt: 3, status: 503, delay: 12 }],
      ['dispatch-client:retrying', { missionId: 'm-r', attempt: 4, status: 504, delay: 24 }],
      ['dispatch-client:accepted', { missionId: 'm-r', attempts: 5, executorId: 'ex-5' }],
    ]);
    assert.equal(out.outcome, 'accepted');
    assert.equal(out.executorId, 'ex-5');
    assert.equal(out.attempts, 5);
    assert.equal(s.requests.length, 5);
    // Each retry waited its backoff, and repeats the same request.
    for (let i = 1; i < 5; i++) {
      const gap = s.requests[i].at - s.requests[i - 1].at;
      assert.ok(gap >= 3 * 2 ** (i - 1) - 1, `gap ${i}: ${gap} ms`);
      assert.equal(s.requests[i].body, s.requests[0].body);
      assert.equal(s.requests[i].headers['idempotency-key'], 'sess-r:m-r');
      assert.equal(s.requests[i].url, s.requests[0].url);
    }
  });

  it('exhausted with 503 last → no_executor_available', async (t) => {
    const s = await serve(t, [{ status: 500 }, { status: 502 }, { status: 503, body: { error: 'no_executor_available' } }]);
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 1, maxAttempts: 3, logger: log.logger }, 'sess', payloadFor('m-x'));
    assert.deepEqual(out, {
      outcome: 'failed',
      missionId: 'm-x',
      reason: 'no_executor_available',
      message: 'dispatch exhausted 3 attempts: no_executor_available',
      status: 503,
      attempts: 3,
    });
    assert.equal(s.requests.length, 3);
    assert.deepEqual(log.lines('dispatch-client:retrying').map((m) => [m.attempt, m.status, m.delay]), [[1, 500, 1], [2, 502, 2]]);
    assert.deepEqual(log.all.at(-1), ['dispatch-client:exhausted', { missionId: 'm-x', attempts: 3, lastStatus: 503 }]);
  });

  it('exhausted with another 5xx last → dispatch_error, message from the last answer', async (t) => {
    const s = await serve(t, [{ status: 503, body: { error: 'no_executor_available' } }, { status: 502, body: { error: 'executor_forward_failed', detail: 'socket hang up' } }]);
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 1, maxAttempts: 2, logger: log.logger }, 'sess', payloadFor('m-y'));
    assert.deepEqual(out, {
      outcome: 'failed',
      missionId: 'm-y',
      reason: 'dispatch_error',
      message: 'dispatch exhausted 2 attempts: socket hang up',
      status: 502,
      attempts: 2,
    });
    assert.deepEqual(log.lines('dispatch-client:exhausted'), [{ missionId: 'm-y', attempts: 2, lastStatus: 502 }]);
  });

  it("exhausted with an empty 500 → 'HTTP 500'; maxAttempts defaults to 5", async (t) => {
    const s = await serve(t, [{ status: 500 }]);
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 1, logger: log.logger }, 'sess', payloadFor());
    assert.equal(out.attempts, 5);
    assert.equal(out.reason, 'dispatch_error');
    assert.equal(out.message, 'dispatch exhausted 5 attempts: HTTP 500');
    assert.equal(s.requests.length, 5);
    assert.deepEqual(log.lines('dispatch-client:retrying').map((m) => m.delay), [1, 2, 4, 8]);
  });

  it('retryBaseMs defaults to 500 (first retry delay)', async (t) => {
    const s = await serve(t, [{ status: 503 }]);
    const ac = new AbortController();
    const log = recorder();
    const logger = (msg, meta) => {
      log.logger(msg, meta);
      if (msg === 'dispatch-client:retrying') ac.abort();
    };
    const { value: out, ms } = await timed(dispatchMission({ aiwgServeUrl: s.url, logger }, 'sess', payloadFor(), ac.signal));
    assert.deepEqual(log.lines('dispatch-client:retrying'), [{ missionId: 'm-1', attempt: 1, status: 503, delay: 500 }]);
    assert.equal(out.reason, 'aborted');
    assert.ok(ms < 450, `the abort cut the 500 ms wait short (${ms} ms)`);
  });

  it('backoff is capped at 30000 ms', async (t) => {
    const s = await serve(t, [{ status: 500 }]);
    const ac = new AbortController();
    const delays = [];
    const logger = (msg, meta) => {
      if (msg !== 'dispatch-client:retrying') return;
      delays.push(meta.delay);
      ac.abort();
    };
    await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 40_000, logger }, 'sess', payloadFor(), ac.signal);
    assert.deepEqual(delays, [30_000]);
  });

  it('maxAttempts 0 makes no request and is exhausted at once', async (t) => {
    const s = await serve(t, [{ status: 202, body: { executor_id: 'e' } }]);
    const out = await dispatchMission({ aiwgServeUrl: s.url, maxAttempts: 0 }, 'sess', payloadFor());
    assert.equal(out.outcome, 'failed');
    assert.equal(out.attempts, 0);
    assert.match(out.message, /^dispatch exhausted 0 attempts: /);
    assert.equal(s.requests.length, 0);
  });
});

describe('dispatchMission: transport failures', () => {
  it('a server that never answers: requestTimeoutMs makes it a transport failure (no hang)', async (t) => {
    const s = await serve(t, [{ hang: true }]);
    const log = recorder();
    const { value: out, ms } = await timed(dispatchMission(
      { aiwgServeUrl: s.url, requestTimeoutMs: 200, retryBaseMs: 1, maxAttempts: 2, logger: log.logger },
      'sess', payloadFor('m-h'),
    ));
    assert.equal(out.outcome, 'failed');
    assert.equal(out.reason, 'unreachable');
    assert.equal(out.status, -1);
    assert.equal(out.attempts, 2);
    assert.match(out.message, /^dispatch exhausted 2 attempts: network: \S/);
    assert.ok(ms >= 380 && ms < 2000, `took ${ms} ms`);
    assert.equal(s.requests.length, 2);
    assert.deepEqual(log.lines('dispatch-client:network-error').map((m) => [m.missionId, m.attempt, typeof m.error]), [['m-h', 1, 'string'], ['m-h', 2, 'string']]);
    assert.deepEqual(log.lines('dispatch-client:retrying'), [{ missionId: 'm-h', attempt: 1, status: -1, delay: 1 }]);
    assert.deepEqual(log.lines('dispatch-client:exhausted'), [{ missionId: 'm-h', attempts: 2, lastStatus: -1 }]);
  });

  it('a body that stalls after the headers also times out', async (t) => {
    const s = await serve(t, [{ status: 202, body: { executor_id: 'never-finished', pad: 'x'.repeat(100) }, stall: true }]);
    const { value: out, ms } = await timed(dispatchMission(
      { aiwgServeUrl: s.url, requestTimeoutMs: 200, retryBaseMs: 1, maxAttempts: 1 },
      'sess', payloadFor(),
    ));
    assert.equal(out.reason, 'unreachable');
    assert.equal(out.status, -1);
    assert.ok(ms < 2000, `took ${ms} ms`);
  });

  it('a timeout then a 202 → accepted on attempt 2 (a transport failure is retryable)', async (t) => {
    const s = await serve(t, [{ hang: true }, { status: 202, body: { executor_id: 'ex-2' } }]);
    const log = recorder();
    const out = await dispatchMission(
      { aiwgServeUrl: s.url, requestTimeoutMs: 150, retryBaseMs: 1, logger: log.logger },
      'sess', payloadFor('m-2'),
    );
    assert.equal(out.outcome, 'accepted');
    assert.equal(out.attempts, 2);
    assert.deepEqual(log.all.map(([m]) => m), ['dispatch-client:network-error', 'dispatch-client:retrying', 'dispatch-client:accepted']);
  });

  it('connection refused → unreachable, status -1, network-error lines', async () => {
    const url = await refusedUrl();
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: url, retryBaseMs: 1, maxAttempts: 3, logger: log.logger }, 'sess', payloadFor('m-c'));
    assert.equal(out.outcome, 'failed');
    assert.equal(out.missionId, 'm-c');
    assert.equal(out.reason, 'unreachable');
    assert.equal(out.status, -1);
    assert.equal(out.attempts, 3);
    assert.match(out.message, /^dispatch exhausted 3 attempts: network: \S/);
    const errors = log.lines('dispatch-client:network-error');
    assert.deepEqual(errors.map((m) => [m.missionId, m.attempt]), [['m-c', 1], ['m-c', 2], ['m-c', 3]]);
    for (const m of errors) {
      assert.deepEqual(Object.keys(m).sort(), ['attempt', 'error', 'missionId']);
      assert.equal(typeof m.error, 'string');
      assert.ok(m.error.length > 0);
    }
    assert.ok(out.message.endsWith(errors[2].error), `${out.message} ends with the last error`);
    assert.deepEqual(log.lines('dispatch-client:retrying').map((m) => [m.attempt, m.status, m.delay]), [[1, -1, 1], [2, -1, 2]]);
    assert.deepEqual(log.lines('dispatch-client:exhausted'), [{ missionId: 'm-c', attempts: 3, lastStatus: -1 }]);
  });

  it('an answer over 1 MiB is a transport failure, not a crash (with content-length)', async (t) => {
    const s = await serve(t, [
      { status: 202, body: { executor_id: 'too-big', pad: 'x'.repeat(2 * MiB) } },
      { status: 202, body: { executor_id: 'small' } },
    ]);
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 1, logger: log.logger }, 'sess', payloadFor());
    assert.equal(out.outcome, 'accepted');
    assert.equal(out.executorId, 'small');
    assert.equal(out.attempts, 2);
    assert.equal(log.lines('dispatch-client:network-error').length, 1);
  });

  it('an answer over 1 MiB is a transport failure, not a crash (chunked)', async (t) => {
    const s = await serve(t, [{ status: 502, body: 'y'.repeat(Math.floor(1.5 * MiB)), headers: { 'transfer-encoding': 'chunked', 'content-type': 'text/plain' } }]);
    const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 1, maxAttempts: 2 }, 'sess', payloadFor());
    assert.equal(out.reason, 'unreachable');
    assert.equal(out.status, -1);
    assert.ok(out.message.length < 10_000, 'the huge body is not quoted in the message');
  });
});

describe('dispatchMission: abort', () => {
  it('an already-aborted signal → aborted, attempts 0, no request, no log line', async (t) => {
    const s = await serve(t, [{ status: 202, body: { executor_id: 'e' } }]);
    const ac = new AbortController();
    ac.abort();
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: s.url, logger: log.logger }, 'sess', payloadFor('m-a'), ac.signal);
    assert.equal(out.outcome, 'failed');
    assert.equal(out.missionId, 'm-a');
    assert.equal(out.reason, 'aborted');
    assert.equal(out.message, 'dispatch aborted before completion');
    assert.equal(out.attempts, 0);
    assert.equal(s.requests.length, 0);
    assert.deepEqual(log.all, []);
  });

  it('abort during the request (maxAttempts 3) → resolves promptly, aborted after 1 attempt', async (t) => {
    const ac = new AbortController();
    let abortedAt = 0;
    const s = await serve(t, () => {
      setTimeout(() => {
        abortedAt = performance.now();
        ac.abort();
      }, 50);
      return { status: 202, body: { executor_id: 'too-late' }, delayMs: 10_000 };
    });
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 1, maxAttempts: 3, logger: log.logger }, 'sess', payloadFor('m-a'), ac.signal);
    const ms = performance.now() - abortedAt;
    assert.ok(abortedAt > 0 && ms < 2000, `resolved ${ms} ms after the abort`);
    // SPEC §3 loop: abort → transport failure → (backoff cut short) → the top of attempt 2 sees the signal.
    assert.deepEqual(out, { outcome: 'failed', missionId: 'm-a', reason: 'aborted', message: 'dispatch aborted before completion', status: -1, attempts: 1 });
    assert.equal(s.requests.length, 1);
    assert.deepEqual(log.lines('dispatch-client:network-error').map((m) => m.attempt), [1]);
  });

  it('abort during the last request (maxAttempts 1) → resolves promptly, unreachable', async (t) => {
    const ac = new AbortController();
    const s = await serve(t, () => {
      setTimeout(() => ac.abort(), 50);
      return { hang: true };
    });
    const { value: out, ms } = await timed(dispatchMission({ aiwgServeUrl: s.url, maxAttempts: 1 }, 'sess', payloadFor(), ac.signal));
    assert.ok(ms < 2000, `took ${ms} ms`);
    assert.equal(out.reason, 'unreachable');
    assert.equal(out.status, -1);
    assert.equal(out.attempts, 1);
    assert.match(out.message, /^dispatch exhausted 1 attempts: network: /);
  });

  it('abort during the backoff wait → resolves promptly, aborted', async (t) => {
    const s = await serve(t, [{ status: 503, body: { error: 'no_executor_available' } }]);
    const ac = new AbortController();
    const logger = (msg) => {
      if (msg === 'dispatch-client:retrying') setTimeout(() => ac.abort(), 30);
    };
    const { value: out, ms } = await timed(dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 60_000, logger }, 'sess', payloadFor('m-b'), ac.signal));
    assert.ok(ms < 2000, `took ${ms} ms`);
    assert.deepEqual(out, { outcome: 'failed', missionId: 'm-b', reason: 'aborted', message: 'dispatch aborted before completion', status: 503, attempts: 1 });
    assert.equal(s.requests.length, 1);
  });

  it('the abort listener is removed once the dispatch is over; a later abort is harmless', async (t) => {
    const s = await serve(t, [{ status: 202, body: { executor_id: 'e' } }]);
    const ac = new AbortController();
    for (let i = 0; i < 3; i++) {
      const out = await dispatchMission({ aiwgServeUrl: s.url }, 'sess', payloadFor(), ac.signal);
      assert.equal(out.outcome, 'accepted');
    }
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
    ac.abort();
  });
});

describe('dispatchMission: the request', () => {
  it('POST <url without trailing slashes>/api/v1/sessions/<encoded id>/dispatch, headers, body', async (t) => {
    const s = await serve(t, [{ status: 202, body: { executor_id: 'e' } }]);
    const sessionId = 'team/a b?c=1#d';
    const payload = payloadFor('m-req');
    await dispatchMission({ aiwgServeUrl: `${s.url}///` }, sessionId, payload);
    const [req] = s.requests;
    assert.equal(req.method, 'POST');
    assert.equal(req.url, `/api/v1/sessions/${encodeURIComponent(sessionId)}/dispatch`);
    assert.equal(req.url, '/api/v1/sessions/team%2Fa%20b%3Fc%3D1%23d/dispatch');
    assert.match(req.headers['content-type'], /^application\/json\b/);
    assert.equal(req.headers['idempotency-key'], `${sessionId}:m-req`);
    assert.deepEqual(JSON.parse(req.body), JSON.parse(JSON.stringify(payload)));
    assert.equal(req.body, JSON.stringify(payload), 'same text as JSON.stringify (key order kept)');
  });

  it('a unicode session id is percent-encoded as UTF-8 and still dispatched', async (t) => {
    const s = await serve(t, [{ status: 202, body: { executor_id: 'e' } }]);
    const sessionId = 'équipe/ü ?ß😀';
    const out = await dispatchMission({ aiwgServeUrl: `${s.url}/` }, sessionId, payloadFor('m-ü'));
    assert.equal(out.outcome, 'accepted');
    const [req] = s.requests;
    assert.equal(req.url, `/api/v1/sessions/${encodeURIComponent(sessionId)}/dispatch`);
    // Bytes a header value cannot carry are percent-encoded (UTF-8), so every transport sends the same key.
    assert.equal(req.headers['idempotency-key'], '%C3%A9quipe/%C3%BC ?%C3%9F%F0%9F%98%80:m-%C3%BC');
    assert.equal(decodeURIComponent(req.headers['idempotency-key']), `${sessionId}:m-ü`);
    assert.equal(JSON.parse(req.body).mission_id, 'm-ü');
  });

  it('a base path on aiwgServeUrl is kept', async (t) => {
    const s = await serve(t, [{ status: 202, body: { executor_id: 'e' } }]);
    await dispatchMission({ aiwgServeUrl: `${s.url}/prefix//` }, 's1', payloadFor());
    assert.equal(s.requests[0].url, '/prefix/api/v1/sessions/s1/dispatch');
  });

  // A lone surrogate cannot live in a Rust string: it travels as U+FFFD
  // (as Node decodes invalid UTF-8). Documented in README.
  it('a payload string with a lone surrogate is sent with U+FFFD in its place', async (t) => {
    const s = await serve(t, [{ status: 202, body: { executor_id: 'e' } }]);
    const payload = { mission_id: 'm-s', objective: 'half \ud83d of an emoji' };
    await dispatchMission({ aiwgServeUrl: s.url }, 's', payload);
    assert.equal(s.requests[0].body, JSON.stringify({ ...payload, objective: 'half \ufffd of an emoji' }));
  });
});

describe('dispatchMission: logger', () => {
  it('a logger that throws does not break the dispatch', async (t) => {
    const s = await serve(t, [{ status: 503 }, { status: 202, body: { executor_id: 'e' } }]);
    let calls = 0;
    const logger = () => {
      calls++;
      throw new Error('logger is broken');
    };
    const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 1, logger }, 'sess', payloadFor());
    assert.equal(out.outcome, 'accepted');
    assert.equal(out.attempts, 2);
    assert.equal(calls, 2);
  });

  it('no logger at all is fine', async (t) => {
    const s = await serve(t, [{ status: 500 }, { status: 404 }]);
    const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 1 }, 'sess', payloadFor());
    assert.equal(out.reason, 'executor_not_found');
    assert.equal(out.attempts, 2);
  });

  it('every line is delivered before the promise resolves (even when the logger is slow)', async (t) => {
    const s = await serve(t, [{ status: 500 }, { status: 502 }, { status: 500 }]);
    const seen = [];
    let resolved = false;
    const logger = (msg) => {
      assert.equal(resolved, false, `${msg} arrived after the promise resolved`);
      const until = performance.now() + 5;
      while (performance.now() < until);
      seen.push(msg);
    };
    const p = dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 1, maxAttempts: 3, logger }, 'sess', payloadFor());
    p.then(() => {
      resolved = true;
    });
    await p;
    assert.deepEqual(seen, ['dispatch-client:retrying', 'dispatch-client:retrying', 'dispatch-client:exhausted']);
  });
});

// ---------------------------------------------------------------------------
// dispatchMission through an injected fetchImpl

describe('dispatchMission: fetchImpl', () => {
  const URL_BASE = 'http://serve.invalid:1';

  it('is called with (url, {method, headers, body, signal}); nothing goes to the network', async () => {
    const { fetchImpl, calls } = fakeFetch([{ status: 202, text: JSON.stringify({ executor_id: 'fx', estimated_start: 'soon', dispatch_path: 'p', idempotent_replayed: true }) }]);
    const ac = new AbortController();
    const payload = payloadFor('m-f');
    const sessionId = 'a/b c?é';
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: `${URL_BASE}//`, fetchImpl, logger: log.logger }, sessionId, payload, ac.signal);
    assert.deepEqual(out, { outcome: 'accepted', missionId: 'm-f', executorId: 'fx', estimatedStart: 'soon', dispatchPath: 'p', idempotentReplayed: true, attempts: 1 });
    assert.equal(calls.length, 1);
    const [{ url, init }] = calls;
    assert.equal(url, `${URL_BASE}/api/v1/sessions/${encodeURIComponent(sessionId)}/dispatch`);
    assert.equal(init.method, 'POST');
    assert.equal(init.headers['Content-Type'], 'application/json');
    assert.equal(decodeURIComponent(init.headers['Idempotency-Key']), `${sessionId}:m-f`);
    assert.match(init.headers['Idempotency-Key'], /^[\x20-\x7e]+$/);
    assert.equal(typeof init.body, 'string');
    assert.deepEqual(JSON.parse(init.body), payload);
    assert.equal(init.body, JSON.stringify(payload));
    assert.equal(init.signal, ac.signal, "init.signal is the dispatch's signal");
    assert.deepEqual(log.lines('dispatch-client:accepted'), [{ missionId: 'm-f', attempts: 1, executorId: 'fx' }]);
  });

  it('without a signal, init.signal is undefined', async () => {
    const { fetchImpl, calls } = fakeFetch([{ status: 202, text: '{}' }]);
    const out = await dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl }, 's', payloadFor());
    assert.equal(out.executorId, 'unknown');
    assert.equal(calls[0].init.signal, undefined);
  });

  it('terminal 404 → executor_not_found, one call', async () => {
    const { fetchImpl, calls } = fakeFetch([{ status: 404, text: JSON.stringify({ detail: 'agent not connected' }) }, { status: 202, text: '{}' }]);
    const out = await dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl, retryBaseMs: 1 }, 's', payloadFor('m-4'));
    assert.deepEqual(out, { outcome: 'failed', missionId: 'm-4', reason: 'executor_not_found', message: 'agent not connected', status: 404, attempts: 1 });
    assert.equal(calls.length, 1);
  });

  it('401 and 400 {error} map like the HTTP client', async () => {
    const a = fakeFetch([{ status: 401, text: JSON.stringify({ detail: 'Missing or invalid bearer token' }) }]);
    const b = fakeFetch([{ status: 400, text: JSON.stringify({ error: 'Invalid JSON body' }) }]);
    assert.equal((await dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl: a.fetchImpl }, 's', payloadFor())).reason, 'unauthorized');
    const out = await dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl: b.fetchImpl }, 's', payloadFor());
    assert.equal(out.reason, 'invalid_request');
    assert.equal(out.message, 'Invalid JSON body');
  });

  it('5xx then 202 → retries with the same request', async () => {
    const { fetchImpl, calls } = fakeFetch([{ status: 503, text: '{"error":"no_executor_available"}' }, { status: 500, text: '' }, { status: 202, text: '{"executor_id":"e3"}' }]);
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl, retryBaseMs: 2, logger: log.logger }, 's', payloadFor('m-3'));
    assert.equal(out.outcome, 'accepted');
    assert.equal(out.attempts, 3);
    assert.equal(calls.length, 3);
    assert.deepEqual(log.lines('dispatch-client:retrying'), [
      { missionId: 'm-3', attempt: 1, status: 503, delay: 2 },
      { missionId: 'm-3', attempt: 2, status: 500, delay: 4 },
    ]);
    assert.equal(calls[2].init.body, calls[0].init.body);
    assert.equal(calls[2].init.headers['Idempotency-Key'], 's:m-3');
  });

  it('exhausted 5xx → dispatch_error / no_executor_available', async () => {
    const a = fakeFetch([{ status: 502, text: JSON.stringify({ error: 'executor_unreachable', detail: 'gone' }) }]);
    const out = await dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl: a.fetchImpl, retryBaseMs: 1, maxAttempts: 2 }, 's', payloadFor());
    assert.deepEqual([out.reason, out.message, out.status, out.attempts], ['dispatch_error', 'dispatch exhausted 2 attempts: gone', 502, 2]);
    const b = fakeFetch([{ status: 503, text: '' }]);
    const out2 = await dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl: b.fetchImpl, retryBaseMs: 1, maxAttempts: 2 }, 's', payloadFor());
    assert.deepEqual([out2.reason, out2.message], ['no_executor_available', 'dispatch exhausted 2 attempts: HTTP 503']);
  });

  it("non-JSON text → {error: text}; empty text → 'HTTP <status>'", async () => {
    const a = fakeFetch([{ status: 409, text: 'conflict, plain' }]);
    assert.equal((await dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl: a.fetchImpl }, 's', payloadFor())).message, 'conflict, plain');
    const b = fakeFetch([{ status: 422, text: '' }]);
    const out = await dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl: b.fetchImpl }, 's', payloadFor());
    assert.deepEqual([out.reason, out.message], ['idempotency_key_reused', 'HTTP 422']);
  });

  const failures = [
    ['throws synchronously', { throwSync: new Error('boom-sync') }, 'boom-sync'],
    ['rejects', { reject: new Error('boom-reject') }, 'boom-reject'],
    ["response.text() rejects", { status: 202, textRejects: new Error('text-failed') }, 'text-failed'],
  ];
  for (const [label, answer, text] of failures) {
    it(`a fetchImpl that ${label} → transport failure (unreachable)`, async () => {
      const { fetchImpl, calls } = fakeFetch([answer]);
      const log = recorder();
      const out = await dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl, retryBaseMs: 1, maxAttempts: 2, logger: log.logger }, 's', payloadFor('m-n'));
      assert.deepEqual(out, { outcome: 'failed', missionId: 'm-n', reason: 'unreachable', message: `dispatch exhausted 2 attempts: network: ${text}`, status: -1, attempts: 2 });
      assert.equal(calls.length, 2);
      assert.deepEqual(log.lines('dispatch-client:network-error'), [
        { missionId: 'm-n', attempt: 1, error: text },
        { missionId: 'm-n', attempt: 2, error: text },
      ]);
    });
  }

  it('a malformed response (null, no text()) or a non-Error rejection is a transport failure', async () => {
    for (const [impl, text] of [
      [async () => null, null],
      [async () => ({ status: 202 }), null],
      [async () => { throw 'plain string'; }, 'plain string'], // eslint-disable-line no-throw-literal
    ]) {
      const out = await dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl: impl, maxAttempts: 1 }, 's', payloadFor());
      assert.equal(out.reason, 'unreachable');
      assert.equal(out.status, -1);
      assert.match(out.message, /^dispatch exhausted 1 attempts: network: /);
      if (text) assert.equal(out.message, `dispatch exhausted 1 attempts: network: ${text}`);
    }
  });

  it('a transport failure then a 202 → accepted on attempt 2', async () => {
    const { fetchImpl } = fakeFetch([{ reject: new Error('ECONNRESET') }, { status: 202, text: '{"executor_id":"e"}' }]);
    const out = await dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl, retryBaseMs: 1 }, 's', payloadFor());
    assert.equal(out.outcome, 'accepted');
    assert.equal(out.attempts, 2);
  });

  it('a fetchImpl that never settles times out after requestTimeoutMs', async () => {
    const { fetchImpl, calls } = fakeFetch([{ hang: true }]);
    const { value: out, ms } = await timed(dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl, requestTimeoutMs: 150, retryBaseMs: 1, maxAttempts: 2 }, 's', payloadFor()));
    assert.equal(out.reason, 'unreachable');
    assert.equal(out.status, -1);
    assert.equal(calls.length, 2);
    assert.ok(ms < 2000, `took ${ms} ms`);
  });

  it('an already-aborted signal → no call at all', async () => {
    const { fetchImpl, calls } = fakeFetch([{ status: 202, text: '{}' }]);
    const ac = new AbortController();
    ac.abort();
    const out = await dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl }, 's', payloadFor('m-0'), ac.signal);
    assert.equal(out.reason, 'aborted');
    assert.equal(out.message, 'dispatch aborted before completion');
    assert.equal(out.attempts, 0);
    assert.equal(calls.length, 0);
  });

  it('abort during a fetchImpl call that honours the signal → aborted promptly', async () => {
    const { fetchImpl, calls } = fakeFetch([{ hangUntilAbort: true }]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const { value: out, ms } = await timed(dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl, retryBaseMs: 1, maxAttempts: 3 }, 's', payloadFor('m-ab'), ac.signal));
    assert.ok(ms < 2000, `took ${ms} ms`);
    assert.deepEqual(out, { outcome: 'failed', missionId: 'm-ab', reason: 'aborted', message: 'dispatch aborted before completion', status: -1, attempts: 1 });
    assert.equal(calls.length, 1);
  });

  it('abort during a fetchImpl call that ignores the signal → still resolves promptly', async () => {
    const { fetchImpl } = fakeFetch([{ hang: true }]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const { value: out, ms } = await timed(dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl, retryBaseMs: 1, maxAttempts: 3 }, 's', payloadFor(), ac.signal));
    assert.ok(ms < 2000, `took ${ms} ms`);
    assert.equal(out.reason, 'aborted');
    assert.equal(out.attempts, 1);
  });

  it('with fetchImpl = globalThis.fetch, a session id with a character above U+00FF is still dispatched (§9 must not break §3)',
    async (t) => {
      const s = await serve(t, [{ status: 202, body: { executor_id: 'e' } }]);
      const out = await dispatchMission({ aiwgServeUrl: s.url, fetchImpl: fetch, retryBaseMs: 1, maxAttempts: 2 }, 'team😀', payloadFor());
      assert.equal(out.outcome, 'accepted', JSON.stringify(out));
      assert.equal(s.requests[0].url, `/api/v1/sessions/${encodeURIComponent('team😀')}/dispatch`);
      assert.equal(s.requests[0].headers['idempotency-key'], 'team%F0%9F%98%80:m-1');
    });

  it('a huge text from fetchImpl does not crash', async () => {
    const { fetchImpl } = fakeFetch([{ status: 502, text: 'z'.repeat(2 * MiB) }]);
    const out = await dispatchMission({ aiwgServeUrl: URL_BASE, fetchImpl, maxAttempts: 1 }, 's', payloadFor());
    assert.equal(out.outcome, 'failed');
    assert.equal(out.attempts, 1);
  });
});

// ---------------------------------------------------------------------------

describe('dispatchMission: wrong arguments reject with a TypeError', () => {
  const ok = { aiwgServeUrl: 'http://127.0.0.1:1' };
  const cases = [
    ['opts null', () => dispatchMission(null, 's', {}), 'opts'],
    ['opts a string', () => dispatchMission('http://x', 's', {}), 'opts'],
    ['aiwgServeUrl a number', () => dispatchMission({ aiwgServeUrl: 5 }, 's', {}), 'opts.aiwgServeUrl'],
    ['aiwgServeUrl missing', () => dispatchMission({}, 's', {}), 'opts.aiwgServeUrl'],
    ['mcSessionId a number', () => dispatchMission(ok, 7, {}), 'mcSessionId'],
    ['payload a string', () => dispatchMission(ok, 's', 'x'), 'payload'],
    ['payload null', () => dispatchMission(ok, 's', null), 'payload'],
    ['opts.fetchImpl a string', () => dispatchMission({ ...ok, fetchImpl: 'x' }, 's', {}), 'opts.fetchImpl'],
    ['opts.logger a number', () => dispatchMission({ ...ok, logger: 3 }, 's', {}), 'opts.logger'],
    ['signal a plain object', () => dispatchMission(ok, 's', {}, {}), 'signal'],
    ['opts.retryBaseMs a string', () => dispatchMission({ ...ok, retryBaseMs: '5' }, 's', {}), 'opts.retryBaseMs'],
    ['opts.maxAttempts a string', () => dispatchMission({ ...ok, maxAttempts: '5' }, 's', {}), 'opts.maxAttempts'],
    ['opts.requestTimeoutMs a string', () => dispatchMission({ ...ok, requestTimeoutMs: '5' }, 's', {}), 'opts.requestTimeoutMs'],
  ];
  for (const [label, fn, name] of cases) {
    it(`${label} → ERR_INVALID_ARG_TYPE naming ${name}`, async () => {
      await assertRejectsAsync(fn, isArgTypeError(name));
    });
  }

  for (const bad of ['ftp://x', 'not a url', '', 'ws://127.0.0.1:1']) {
    it(`aiwgServeUrl ${JSON.stringify(bad)} → TypeError`, async () => {
      await assertRejectsAsync(() => dispatchMission({ aiwgServeUrl: bad }, 's', {}), (e) => {
        assert.ok(e instanceof TypeError);
        assert.match(e.message, /opts\.aiwgServeUrl/);
        return true;
      });
    });
  }

  it('a bad fetchImpl makes no request to the URL', async (t) => {
    const s = await serve(t, [{ status: 202, body: {} }]);
    await assert.rejects(dispatchMission({ aiwgServeUrl: s.url, fetchImpl: 1 }, 's', {}), TypeError);
    assert.equal(s.requests.length, 0);
  });
});

// ---------------------------------------------------------------------------

describe('process lifetime', () => {
  it('a process that dispatched (accepted, refused, aborted, timed out, fetchImpl) exits by itself', { timeout: 20_000 }, async () => {
    const script = `
      import { dispatchMission } from ${JSON.stringify(path.join(PKG, 'dispatch-client.mjs'))};
      import { startScriptedServe, refusedUrl } from ${JSON.stringify(path.join(HERE, 'helpers', 'scripted-serve.mjs'))};
      const s = await startScriptedServe((req, i) => i === 0 ? { status: 202, body: { executor_id: 'e' } } : { hang: true });
      const results = [];
      results.push((await dispatchMission({ aiwgServeUrl: s.url }, 's', { mission_id: 'a' })).outcome);
      results.push((await dispatchMission({ aiwgServeUrl: s.url, requestTimeoutMs: 100, maxAttempts: 1 }, 's', { mission_id: 'b' })).reason);
      results.push((await dispatchMission({ aiwgServeUrl: await refusedUrl(), retryBaseMs: 1, maxAttempts: 2 }, 's', { mission_id: 'c' })).reason);
      const ac = new AbortController(); setTimeout(() => ac.abort(), 30);
      results.push((await dispatchMission({ aiwgServeUrl: s.url, maxAttempts: 2 }, 's', { mission_id: 'd' }, ac.signal)).reason);
      results.push((await dispatchMission({ aiwgServeUrl: s.url, fetchImpl: async () => ({ status: 202, text: async () => '{}' }) }, 's', { mission_id: 'e' })).outcome);
      await s.close();
      console.log(JSON.stringify(results));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const t0 = performance.now();
    const code = await new Promise((resolve) => {
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.on('exit', (c, sig) => {
        clearTimeout(killer);
        resolve(sig ?? c);
      });
    });
    assert.equal(code, 0, `exit ${code} after ${performance.now() - t0} ms; stderr: ${stderr}`);
    assert.deepEqual(JSON.parse(stdout.trim()), ['accepted', 'unreachable', 'unreachable', 'aborted', 'accepted']);
  });
});
