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
import { classifyStatus, reasonForStatus, sleep, dispatchMission } from '../esm/dispatch-client.mjs';
import { startScriptedServe, refusedUrl } from './helpers/scripted-serve.mjs';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const PKG = path.join(HERE, '..');
const MiB = 1024 * 1024;
/** A serve URL nothing may reach: these tests inject fetchImpl. */
const URL_BASE_INVALID = 'http://serve.invalid:1';

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
  it("other types go through JS comparison: classifyStatus('x') and classifyStatus() are 'terminal' (issue 10)", () => {
    assert.equal(classifyStatus('x'), 'terminal');
    assert.equal(classifyStatus(), 'terminal');
    assert.equal(classifyStatus(null), 'terminal');
    assert.equal(classifyStatus('202'), 'accepted');
    assert.equal(classifyStatus('503'), 'retryable');
    assert.equal(classifyStatus([204]), 'accepted');
    assert.equal(classifyStatus(true), 'terminal');
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
  it('a non-number status is no listed status: the fallback (issue 10)', () => {
    assert.equal(reasonForStatus('400'), 'client_error');
    assert.equal(reasonForStatus(undefined, 'dispatch_error'), 'dispatch_error');
    assert.equal(reasonForStatus(), 'client_error');
    assert.equal(reasonForStatus(418, null), null, 'only undefined takes the default fallback');
  });
});

describe('sleep', () => {
  it('resolves (to undefined) after ms', async () => {
    const p = sleep(40);
    assert.ok(p instanceof Promise);
    const { value, ms } = await timed(p);
    assert.equal(value, undefined);
    assert.ok(ms >= 25, `resolved after ${ms} ms`);
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
    assert.equal(out.estimatedStart, null);
    assert.equal(out.dispatchPath, null);
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

  // The body is JSON.stringify(payload) itself: a lone surrogate is sent as
  // the `\udXXX` escape JSON.stringify writes (issue 10, item 13).
  it('a payload string with a lone surrogate is sent as JSON.stringify writes it', async (t) => {
    const s = await serve(t, [{ status: 202, body: { executor_id: 'e' } }]);
    const payload = { mission_id: 'm-s', objective: 'half \ud83d of an emoji' };
    await dispatchMission({ aiwgServeUrl: s.url }, 's', payload);
    assert.equal(s.requests[0].body, JSON.stringify(payload));
    assert.ok(s.requests[0].body.includes('half \\ud83d of'), s.requests[0].body);
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
  // Only where the original crashes on the value itself: destructuring
  // null, `.replace` on a URL that is not a string, reading
  // `payload.mission_id` of null, calling a logger that is not a function,
  // a signal that cannot be listened to.
  const cases = [
    ['opts null', () => dispatchMission(null, 's', {}), 'opts'],
    ['opts a string (no aiwgServeUrl in it)', () => dispatchMission('http://x', 's', {}), 'opts.aiwgServeUrl'],
    ['aiwgServeUrl a number', () => dispatchMission({ aiwgServeUrl: 5 }, 's', {}), 'opts.aiwgServeUrl'],
    ['aiwgServeUrl missing', () => dispatchMission({}, 's', {}), 'opts.aiwgServeUrl'],
    ['payload null', () => dispatchMission(ok, 's', null), 'payload'],
    ['opts.logger a number', () => dispatchMission({ ...ok, logger: 3 }, 's', {}), 'opts.logger'],
    ['signal a plain object', () => dispatchMission(ok, 's', {}, {}), 'signal'],
  ];
  for (const [label, fn, name] of cases) {
    it(`${label} → ERR_INVALID_ARG_TYPE naming ${name}`, async () => {
      await assertRejectsAsync(fn, isArgTypeError(name));
    });
  }

  // Issue 10: plain JS handles these, so they get the original's result.
  const unusable = [
    ['ftp://x', /^network: fetch failed/],
    ['not a url', /^network: Failed to parse URL from not a url\/api\/v1\/sessions\/s\/dispatch$/],
    ['', /^network: Failed to parse URL from \/api\/v1\/sessions\/s\/dispatch$/],
    ['ws://127.0.0.1:1', /^network: fetch failed/],
    ['localhost:7337', /^network: fetch failed/],
  ];
  for (const [bad, message] of unusable) {
    it(`aiwgServeUrl ${JSON.stringify(bad)} without fetchImpl → every attempt a transport failure, as fetch rejects it (issue 10)`, async () => {
      const log = recorder();
      const out = await dispatchMission({ aiwgServeUrl: bad, retryBaseMs: 1, maxAttempts: 2, logger: log.logger }, 's', { mission_id: 'm-u' });
      assert.equal(out.outcome, 'failed');
      assert.equal(out.reason, 'unreachable');
      assert.equal(out.status, -1);
      assert.equal(out.attempts, 2);
      assert.match(out.message.replace('dispatch exhausted 2 attempts: ', ''), message);
      assert.deepEqual(log.lines('dispatch-client:network-error').map((m) => m.attempt), [1, 2]);
    });
  }

  it('a fetchImpl that is not a function: each attempt fails as calling it does, and nothing goes to the URL (issue 10)', async (t) => {
    const s = await serve(t, [{ status: 202, body: {} }]);
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: s.url, fetchImpl: 1, retryBaseMs: 1, maxAttempts: 2, logger: log.logger }, 's', { mission_id: 'm-f' });
    assert.deepEqual(out, {
      outcome: 'failed', missionId: 'm-f', reason: 'unreachable', message: 'dispatch exhausted 2 attempts: network: fetchImpl is not a function', status: -1, attempts: 2,
    });
    assert.deepEqual(log.lines('dispatch-client:network-error'), [
      { missionId: 'm-f', attempt: 1, error: 'fetchImpl is not a function' },
      { missionId: 'm-f', attempt: 2, error: 'fetchImpl is not a function' },
    ]);
    assert.equal(s.requests.length, 0);
  });

  it('mcSessionId a number goes through encodeURIComponent; payload a string is JSON.stringify-ed (issue 10)', async (t) => {
    const s = await serve(t, [{ status: 202, body: { executor_id: 'e' } }]);
    const out = await dispatchMission({ aiwgServeUrl: s.url }, 7, 'x');
    assert.equal(out.outcome, 'accepted');
    assert.equal(out.missionId, undefined);
    assert.ok('missionId' in out);
    assert.equal(s.requests[0].url, '/api/v1/sessions/7/dispatch');
    assert.equal(s.requests[0].body, '"x"');
    assert.equal(s.requests[0].headers['idempotency-key'], '7:undefined');
  });

  it('a session id with a lone surrogate rejects with encodeURIComponent\'s URIError, before any request', async (t) => {
    const s = await serve(t, [{ status: 202, body: {} }]);
    await assertRejectsAsync(() => dispatchMission({ aiwgServeUrl: s.url }, 'half \ud83d', {}), URIError);
    assert.equal(s.requests.length, 0);
  });

  it('numeric options are read as JS reads them: strings coerce, null is the default (issue 10)', async (t) => {
    const s = await serve(t, [{ status: 503 }]);
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: '5', maxAttempts: '3', logger: log.logger }, 's', payloadFor('m-c'));
    assert.deepEqual(out, {
      outcome: 'failed', missionId: 'm-c', reason: 'no_executor_available', message: 'dispatch exhausted 3 attempts: HTTP 503', status: 503, attempts: '3',
    });
    assert.equal(s.requests.length, 3);
    assert.deepEqual(log.lines('dispatch-client:retrying').map((m) => m.delay), [5, 10]);
    assert.deepEqual(log.lines('dispatch-client:exhausted'), [{ missionId: 'm-c', attempts: '3', lastStatus: 503 }]);

    const s2 = await serve(t, [{ status: 500 }]);
    const out2 = await dispatchMission({ aiwgServeUrl: s2.url, retryBaseMs: 1, maxAttempts: null }, 's', payloadFor());
    assert.equal(out2.attempts, 5, 'maxAttempts null → 5');
    assert.equal(s2.requests.length, 5);

    const s3 = await serve(t, [{ hang: true }]);
    const { value: out3, ms } = await timed(dispatchMission({ aiwgServeUrl: s3.url, requestTimeoutMs: '100', maxAttempts: 1 }, 's', payloadFor()));
    assert.equal(out3.reason, 'unreachable');
    assert.ok(ms < 2000, `requestTimeoutMs '100' is 100 ms (took ${ms})`);
  });
});

// ---------------------------------------------------------------------------

describe('dispatchMission: where the original returns, the same value (issue 10)', () => {
  it('item 4: with fetchImpl, an aiwgServeUrl without a scheme is handed to fetchImpl as is', async () => {
    const { fetchImpl, calls } = fakeFetch([{ status: 202, text: '{"executor_id":"e4"}' }]);
    const out = await dispatchMission({ aiwgServeUrl: 'localhost:7337//', fetchImpl }, 'mc/1', payloadFor('m-4'));
    assert.deepEqual(out, { outcome: 'accepted', missionId: 'm-4', executorId: 'e4', estimatedStart: null, dispatchPath: null, idempotentReplayed: false, attempts: 1 });
    assert.deepEqual(calls.map((c) => c.url), ['localhost:7337/api/v1/sessions/mc%2F1/dispatch']);
    const other = fakeFetch([{ status: 202, text: '{}' }]);
    await dispatchMission({ aiwgServeUrl: '', fetchImpl: other.fetchImpl }, 's', payloadFor());
    assert.equal(other.calls[0].url, '/api/v1/sessions/s/dispatch');
  });

  it('item 6: aborted before any attempt → status -1', async (t) => {
    const s = await serve(t, [{ status: 202, body: {} }]);
    const ac = new AbortController();
    ac.abort();
    const out = await dispatchMission({ aiwgServeUrl: s.url }, 's', payloadFor('m-0'), ac.signal);
    assert.deepEqual(out, { outcome: 'failed', missionId: 'm-0', reason: 'aborted', message: 'dispatch aborted before completion', status: -1, attempts: 0 });
  });

  it('item 6: maxAttempts 0 → no request; exhausted with the reason and message of no attempt made', async (t) => {
    const s = await serve(t, [{ status: 202, body: { executor_id: 'e' } }]);
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: s.url, maxAttempts: 0, logger: log.logger }, 'sess', payloadFor('m-z'));
    assert.deepEqual(out, {
      outcome: 'failed', missionId: 'm-z', reason: 'unreachable', message: 'dispatch exhausted 0 attempts: no attempt made', status: -1, attempts: 0,
    });
    assert.deepEqual(log.all, [['dispatch-client:exhausted', { missionId: 'm-z', attempts: 0, lastStatus: -1 }]]);
    assert.equal(s.requests.length, 0);
    for (const none of [-2, NaN, 'none', 0.5]) {
      const o = await dispatchMission({ aiwgServeUrl: s.url, maxAttempts: none }, 'sess', payloadFor('m-z'));
      assert.equal(o.message, `dispatch exhausted ${none} attempts: no attempt made`);
      assert.ok(Object.is(o.attempts, none), `attempts is maxAttempts as given (${none})`);
    }
    assert.equal(s.requests.length, 0);
  });

  it('item 6: an aborted fetch keeps its message (global fetch: "This operation was aborted")', async (t) => {
    const s = await serve(t, [{ hang: true }]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: s.url, fetchImpl: fetch, maxAttempts: 1, logger: log.logger }, 's', payloadFor('m-ab'), ac.signal);
    assert.deepEqual(out, {
      outcome: 'failed', missionId: 'm-ab', reason: 'unreachable', message: 'dispatch exhausted 1 attempts: network: This operation was aborted', status: -1, attempts: 1,
    });
    assert.deepEqual(log.lines('dispatch-client:network-error'), [{ missionId: 'm-ab', attempt: 1, error: 'This operation was aborted' }]);
  });

  it("item 6: a fetchImpl's own abort error is the message, not one of ours; the Rust client says fetch's words", async (t) => {
    // Aborted once the request is in flight (not after a fixed time: on a
    // slow CPU a timer can fire before the first attempt has started).
    const ac = new AbortController();
    const own = (url, init) => new Promise((_resolve, reject) => {
      init.signal.addEventListener('abort', () => reject(new Error('cancelled by the caller')));
      setImmediate(() => ac.abort());
    });
    const out = await dispatchMission({ aiwgServeUrl: URL_BASE_INVALID, fetchImpl: own, maxAttempts: 1 }, 's', payloadFor(), ac.signal);
    assert.equal(out.message, 'dispatch exhausted 1 attempts: network: cancelled by the caller');

    const ac2 = new AbortController();
    const s = await serve(t, () => {
      setImmediate(() => ac2.abort());
      return { hang: true };
    });
    const out2 = await dispatchMission({ aiwgServeUrl: s.url, maxAttempts: 1 }, 's', payloadFor(), ac2.signal);
    assert.equal(out2.message, 'dispatch exhausted 1 attempts: network: This operation was aborted');
  });

  it('item 6: a fetchImpl that rejects with undefined or null → String(err?.message ?? err)', async () => {
    for (const [thrown, text] of [[undefined, 'undefined'], [null, 'null'], [42, '42'], [{ message: 7 }, '7'], [{}, '[object Object]']]) {
      const log = recorder();
      const out = await dispatchMission({ aiwgServeUrl: URL_BASE_INVALID, fetchImpl: () => Promise.reject(thrown), maxAttempts: 1, logger: log.logger }, 's', payloadFor('m-u'));
      assert.deepEqual(out, {
        outcome: 'failed', missionId: 'm-u', reason: 'unreachable', message: `dispatch exhausted 1 attempts: network: ${text}`, status: -1, attempts: 1,
      }, String(text));
      assert.deepEqual(log.lines('dispatch-client:network-error'), [{ missionId: 'm-u', attempt: 1, error: text }]);
    }
    const sync = await dispatchMission({ aiwgServeUrl: URL_BASE_INVALID, fetchImpl: () => { throw undefined; }, maxAttempts: 1 }, 's', payloadFor()); // eslint-disable-line no-throw-literal
    assert.equal(sync.message, 'dispatch exhausted 1 attempts: network: undefined');
  });

  it('item 6: a 2xx with an empty body has estimatedStart and dispatchPath present and null', async (t) => {
    const s = await serve(t, [{ status: 202 }, { status: 200, body: { estimated_start: null, dispatch_path: 0 } }]);
    const out = await dispatchMission({ aiwgServeUrl: s.url }, 's', payloadFor('m-e'));
    assert.deepEqual(out, { outcome: 'accepted', missionId: 'm-e', executorId: 'unknown', estimatedStart: null, dispatchPath: null, idempotentReplayed: false, attempts: 1 });
    assert.deepEqual(Object.keys(out), ['outcome', 'missionId', 'executorId', 'estimatedStart', 'dispatchPath', 'idempotentReplayed', 'attempts']);
    const two = await dispatchMission({ aiwgServeUrl: s.url }, 's', payloadFor('m-e'));
    assert.equal(two.estimatedStart, null);
    assert.equal(two.dispatchPath, 0, 'a present value is kept as it is');
  });

  it("item 15: the outcome and the log lines carry the caller's missionId as it is (NaN, undefined, a number, an object)", async (t) => {
    const s = await serve(t, [{ status: 503 }, { status: 202, body: { executor_id: 'e' } }]);
    const id = { n: 1 };
    for (const missionId of [NaN, undefined, 7, id, Infinity, -0]) {
      s.requests.length = 0;
      const log = recorder();
      const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 1, logger: log.logger }, 's', { mission_id: missionId, objective: 'o' });
      assert.equal(out.outcome, 'accepted');
      assert.ok(Object.is(out.missionId, missionId), `outcome missionId ${String(missionId)}`);
      assert.ok('missionId' in out);
      for (const [msg, meta] of log.all) assert.ok(Object.is(meta.missionId, missionId), `${msg} missionId ${String(missionId)}`);
      assert.equal(s.requests.at(-1).body, JSON.stringify({ mission_id: missionId, objective: 'o' }));
    }
  });

  it("item 15: values of the answer come back as JSON.parse reads them (an object message, a lone surrogate, a huge number)", async (t) => {
    const s = await serve(t, [
      { status: 400, body: '{"detail":{"code":1,"at":[2]}}', headers: { 'content-type': 'application/json' } },
      { status: 404, body: '{"detail":"half \\ud83d here"}', headers: { 'content-type': 'application/json' } },
      { status: 202, body: '{"executor_id":"e","estimated_start":1e400,"dispatch_path":"\\udc00"}', headers: { 'content-type': 'application/json' } },
      { status: 502, body: '{"detail":{"x":1}}', headers: { 'content-type': 'application/json' } },
    ]);
    const a = await dispatchMission({ aiwgServeUrl: s.url }, 's', payloadFor());
    assert.deepEqual(a.message, { code: 1, at: [2] });
    const b = await dispatchMission({ aiwgServeUrl: s.url }, 's', payloadFor());
    assert.equal(b.message, 'half \ud83d here');
    const c = await dispatchMission({ aiwgServeUrl: s.url }, 's', payloadFor());
    assert.equal(c.estimatedStart, Infinity);
    assert.equal(c.dispatchPath, '\udc00');
    const d = await dispatchMission({ aiwgServeUrl: s.url, maxAttempts: 1 }, 's', payloadFor());
    assert.equal(d.message, 'dispatch exhausted 1 attempts: [object Object]', 'a template literal shows an object so');
  });

  it("item 15: a fetchImpl's status is kept as it answered it (a fraction, a numeric string)", async () => {
    const a = fakeFetch([{ status: 404.5, text: '{"error":"odd"}' }]);
    const out = await dispatchMission({ aiwgServeUrl: URL_BASE_INVALID, fetchImpl: a.fetchImpl }, 's', payloadFor('m-s'));
    assert.deepEqual(out, { outcome: 'failed', missionId: 'm-s', reason: 'client_error', message: 'odd', status: 404.5, attempts: 1 });
    const b = fakeFetch([{ status: '503', text: '' }]);
    const log = recorder();
    const out2 = await dispatchMission({ aiwgServeUrl: URL_BASE_INVALID, fetchImpl: b.fetchImpl, retryBaseMs: 1, maxAttempts: 2, logger: log.logger }, 's', payloadFor('m-s'));
    assert.deepEqual(out2, { outcome: 'failed', missionId: 'm-s', reason: 'dispatch_error', message: 'dispatch exhausted 2 attempts: HTTP 503', status: '503', attempts: 2 });
    assert.deepEqual(log.lines('dispatch-client:retrying'), [{ missionId: 'm-s', attempt: 1, status: '503', delay: 1 }]);
    const c = fakeFetch([{ status: '202', text: '{"executor_id":"e"}' }]);
    assert.equal((await dispatchMission({ aiwgServeUrl: URL_BASE_INVALID, fetchImpl: c.fetchImpl }, 's', payloadFor())).outcome, 'accepted');
  });

  it('item 15: a retryBaseMs JS makes NaN of gives a NaN delay in the log line', async (t) => {
    const s = await serve(t, [{ status: 500 }, { status: 202, body: {} }]);
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 'soon', logger: log.logger }, 's', payloadFor());
    assert.equal(out.outcome, 'accepted');
    const [retry] = log.lines('dispatch-client:retrying');
    assert.ok(Number.isNaN(retry.delay), `delay ${retry.delay}`);
  });

  it('a fractional maxAttempts counts as `attempt <= maxAttempts` compares, and waits after its last attempt', async (t) => {
    const s = await serve(t, [{ status: 500 }]);
    const log = recorder();
    const out = await dispatchMission({ aiwgServeUrl: s.url, retryBaseMs: 1, maxAttempts: 2.5, logger: log.logger }, 's', payloadFor());
    assert.equal(s.requests.length, 2);
    assert.equal(out.attempts, 2.5);
    assert.deepEqual(log.all.map(([m]) => m), ['dispatch-client:retrying', 'dispatch-client:retrying', 'dispatch-client:exhausted']);
  });

  it('sleep reads ms as setTimeout does', async () => {
    // '40' is 40 ms to setTimeout, not NaN (which would be 1 ms). The bound is
    // loose: libuv counts from its cached loop time, which under emulation can
    // lag the clock read here by several ms.
    const { ms } = await timed(sleep('40'));
    assert.ok(ms >= 25, `sleep('40') took ${ms} ms`);
  });
});

// ---------------------------------------------------------------------------

describe('process lifetime', () => {
  it('a process that dispatched (accepted, refused, aborted, timed out, fetchImpl) exits by itself', { timeout: 20_000 }, async () => {
    const script = `
      import { dispatchMission } from ${JSON.stringify(path.join(PKG, 'esm', 'dispatch-client.mjs'))};
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
      child.on('close', (c, sig) => {
        clearTimeout(killer);
        resolve(sig ?? c);
      });
    });
    assert.equal(code, 0, `exit ${code} after ${performance.now() - t0} ms; stderr: ${stderr}`);
    assert.deepEqual(JSON.parse(stdout.trim()), ['accepted', 'unreachable', 'unreachable', 'aborted', 'accepted']);
  });
});
