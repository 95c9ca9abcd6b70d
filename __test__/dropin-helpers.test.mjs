// Issue 10: the pure helpers are the original's plain JS. A seeded property
// test: thousands of generated inputs of mixed types (numbers with NaN,
// ±Infinity, -0 and fractions, numeric strings, booleans, null, undefined,
// objects, arrays, lone surrogates) through each helper, compared with a
// reference written here from SPEC.md §2, §3 and §5 as the obvious JS
// expression of each formula ("or" is `||`, "if it is a number" is
// `typeof … === 'number'`). Results must be the same value (SameValue:
// NaN is NaN, -0 is not 0), and where the reference throws, the helper
// throws an error of the same class.
// Run: node --test __test__/dropin-helpers.test.mjs

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  backoffMs, queuedMissions, buildDispatchPayload,
  classifyStatus, reasonForStatus,
  buildWsUrl, reconnectDelay, eventToStatusUpdate,
} from '../index.mjs';
import { prng } from './helpers/prng.mjs';

const SEED = Number(process.env.DROPIN_SEED ?? 0x5eed10);
const CASES = 3000;


function generator(seed) {
  const rnd = prng(seed);
  const int = (n) => Math.floor(rnd() * n);
  const pick = (list) => list[int(list.length)];
  const numbers = [0, -0, 1, -1, 2, 3, 0.5, 1.5, 2.5, -2.5, 100, 199, 199.5, 200, 202, 250.5, 299, 299.5, 300, 400, 401, 403, 404,
    409, 422, 499, 500, 503, 599, 599.5, 600, 1000, 30000, 1e21, 2 ** 53, NaN, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE];
  const strings = ['', ' ', '0', '1', '2', '3', '-1', '1.5', '202', '404', '503', '1e3', 'x', 'NaN', 'Infinity', 'queued', 'done',
    'http://h', 'https://h:1/', 'http://h///', 'HTTP://h', 'ws://h', 'localhost:7337', 'a/b c?d#e&f=g', 'é€😀', 'half \ud83d', '\udc00x'];
  const number = () => (rnd() < 0.7 ? pick(numbers) : (rnd() - 0.5) * 10 ** int(6));
  function value(depth = 0) {
    const r = rnd();
    if (r < 0.3) return number();
    if (r < 0.55) return pick(strings);
    if (r < 0.62) return rnd() < 0.5;
    if (r < 0.7) return null;
    if (r < 0.78) return undefined;
    if (depth > 2) return {};
    if (r < 0.88) {
      const o = {};
      for (let i = int(4); i > 0; i--) o[pick(['a', 'b', 'detail', '0', 'mode', 'priority', 'mc_session_id'])] = value(depth + 1);
      return o;
    }
    return Array.from({ length: int(4) }, () => value(depth + 1));
  }
  return { rnd, int, pick, number, value };
}

/** `fn()` as a result: `{value}` or `{error: its class}`. */
function run(fn) {
  try {
    return { value: fn() };
  } catch (err) {
    return { error: err && err.constructor && err.constructor.name };
  }
}

const show = (args) => {
  try {
    return JSON.stringify(args, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v === undefined ? '<undefined>' : v));
  } catch {
    return String(args);
  }
};

/** Run `helper` and `reference` on `CASES` generated argument lists; they must agree. */
function agree(name, helper, reference, args, seedOffset) {
  const g = generator(SEED + seedOffset);
  const t0 = Date.now();
  let errors = 0;
  for (let i = 0; i < CASES; i++) {
    const list = args(g);
    const got = run(() => helper(...list));
    const want = run(() => reference(...list));
    if (want.error) errors++;
    assert.deepStrictEqual(got, want, `${name}${show(list)} (seed ${SEED + seedOffset}, case ${i})`);
  }
  assert.ok(Date.now() - t0 < 5000, `${name}: ${CASES} cases within seconds`);
  return errors;
}

// ---------------------------------------------------------------------------
// The references, from SPEC.md.

const ref = {
  // §2: min(30000, baseMs * 2^(attempt-1)).
  backoffMs: (attempt, baseMs) => Math.min(30000, baseMs * 2 ** (attempt - 1)),
  // §3: 'accepted' for 200–299, 'retryable' for any 500–599, 'terminal' otherwise.
  classifyStatus: (status) => (status >= 200 && status < 300 ? 'accepted' : status >= 500 && status < 600 ? 'retryable' : 'terminal'),
  // §3: 400 invalid_request, 401/403 unauthorized, 404, 409, 422, 503, else fallback.
  reasonForStatus(status, fallback = 'client_error') {
    if (status === 400) return 'invalid_request';
    if (status === 401 || status === 403) return 'unauthorized';
    if (status === 404) return 'executor_not_found';
    if (status === 409) return 'idempotency_conflict';
    if (status === 422) return 'idempotency_key_reused';
    if (status === 503) return 'no_executor_available';
    return fallback;
  },
  // §5: http→ws, https→wss, trailing slashes dropped, the encoded id, ?token= when a token is given.
  buildWsUrl(aiwgServeUrl, executorId, token) {
    let base = aiwgServeUrl;
    if (base.startsWith('https://')) base = `wss://${base.slice('https://'.length)}`;
    else if (base.startsWith('http://')) base = `ws://${base.slice('http://'.length)}`;
    while (base.endsWith('/')) base = base.slice(0, -1);
    return `${base}/ws/executors/${encodeURIComponent(executorId)}${token ? `?token=${encodeURIComponent(token)}` : ''}`;
  },
  // §5: min(maxMs, baseMs * 2^max(0, attempt-1)).
  reconnectDelay: (attempt, baseMs, maxMs) => Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1)),
  // §2: [{sessionId: session.id, mission}] for each non-null queued mission; null session or non-array missions → [].
  queuedMissions(session) {
    if (!session || !Array.isArray(session.missions)) return [];
    const out = [];
    for (const mission of session.missions) {
      if (mission !== null && mission !== undefined && mission.status === 'queued') out.push({ sessionId: session.id, mission });
    }
    return out;
  },
  // §2's table.
  buildDispatchPayload(mission, { sessionId }) {
    if (mission === null || mission === undefined) throw new TypeError('mission');
    const metadata = { mc_session_id: sessionId, mode: mission.mode || 'direct', priority: mission.priority || 'normal' };
    Object.assign(metadata, { ...mission.metadata });
    return {
      mission_id: mission.id,
      objective: mission.objective,
      completion: mission.completion ? mission.completion : null,
      long_running: !!mission.longRunning,
      executor_filter: {
        executor_id: mission.targetExecutorId || null,
        capabilities: mission.requiredCapabilities || [],
        agent_id: mission.targetAgentId || null,
      },
      metadata,
    };
  },
  // §5's table; data defaults to {}.
  eventToStatusUpdate(event) {
    if (!event || !event.event) return null;
    const data = event.data === undefined || event.data === null ? {} : event.data;
    const missionId = event.mission_id;
    const ts = event.ts;
    const or = (v, fallback) => v || fallback;
    const exitCode = typeof data.exit_code === 'number' ? data.exit_code : null;
    const rows = {
      'mission.started': ['running', 'assigned', { startedAt: ts, agentRuntime: or(data.agent_runtime, null), ptySessionId: or(data.pty_session_id, null) }],
      'mission.hitl_required': ['hitl_required', undefined, { hitlId: or(data.hitl_id, null), hitlPrompt: or(data.prompt, null), hitlContext: or(data.context, null), hitlAt: ts }],
      'mission.hitl_responded': ['running', 'hitl_required', { hitlRespondedAt: ts, hitlResponse: or(data.text, or(data.response, null)) }],
      'mission.suspended': ['suspended', undefined, { suspendedAt: ts, checkpointId: or(data.checkpoint_id, null), suspendReason: or(data.reason, null) }],
      'mission.resumed': ['running', undefined, { resumedAt: ts, resumedFrom: or(data.resumed_from, 'suspended') }],
      'mission.completed': ['done', undefined, { completedAt: ts, exitCode, summary: or(data.summary, null) }],
      'mission.failed': ['failed', undefined, { failedAt: ts, failureReason: or(data.reason, 'unknown'), failureMessage: or(data.error, null), exitCode }],
      'mission.aborted': ['aborted', undefined, { abortedAt: ts, abortedBy: or(data.aborted_by, 'unknown'), abortReason: or(data.reason, null) }],
    };
    const row = typeof event.event === 'string' && Object.hasOwn(rows, event.event) ? rows[event.event] : null;
    if (!row) return null;
    const [status, transitionFrom, patch] = row;
    return transitionFrom ? { missionId, status, transitionFrom, patch } : { missionId, status, patch };
  },
};

// ---------------------------------------------------------------------------

describe('the pure helpers agree with SPEC.md on generated input of every type (seeded)', () => {
  const anyNumberish = (g) => (g.rnd() < 0.75 ? g.number() : g.value());

  it('backoffMs', () => {
    agree('backoffMs', backoffMs, ref.backoffMs, (g) => [anyNumberish(g), anyNumberish(g)].slice(0, g.rnd() < 0.05 ? g.int(2) : 2), 1);
  });

  it('classifyStatus', () => {
    agree('classifyStatus', classifyStatus, ref.classifyStatus, (g) => (g.rnd() < 0.03 ? [] : [anyNumberish(g)]), 2);
  });

  it('reasonForStatus', () => {
    agree('reasonForStatus', reasonForStatus, ref.reasonForStatus, (g) => {
      const status = anyNumberish(g);
      const r = g.rnd();
      return r < 0.4 ? [status] : r < 0.6 ? [status, undefined] : [status, g.value()];
    }, 3);
  });

  it('reconnectDelay', () => {
    agree('reconnectDelay', reconnectDelay, ref.reconnectDelay, (g) => [anyNumberish(g), anyNumberish(g), anyNumberish(g)], 4);
  });

  it('buildWsUrl (TypeError for a URL that is not a string, URIError for a lone surrogate, as the formula gives)', () => {
    const errors = agree('buildWsUrl', buildWsUrl, ref.buildWsUrl, (g) => {
      const url = g.rnd() < 0.92 ? `${g.pick(['http://', 'https://', 'ws://', '', 'HTTP://', 'http:/'])}${g.pick(['h', 'h:1', 'h/p', '127.0.0.1:7337'])}${'/'.repeat(g.int(3))}` : g.value();
      const id = g.rnd() < 0.7 ? g.pick(['e', 'exec/with slash', 'ü 😀', 'a+b', '']) : g.value();
      const r = g.rnd();
      return r < 0.3 ? [url, id] : [url, id, g.rnd() < 0.5 ? g.pick(['t', 'a+b/c', '', 'tok en']) : g.value()];
    }, 5);
    assert.ok(errors > 0, 'some generated inputs throw in the reference too');
  });

  it('queuedMissions', () => {
    agree('queuedMissions', queuedMissions, ref.queuedMissions, (g) => {
      const r = g.rnd();
      if (r < 0.1) return [g.value()];
      const missions = g.rnd() < 0.85
        ? Array.from({ length: g.int(6) }, () => (g.rnd() < 0.7 ? { id: g.value(), status: g.pick(['queued', 'done', 'QUEUED', null, undefined, 'queued']) } : g.value()))
        : g.value();
      return [{ id: g.value(), missions }];
    }, 6);
  });

  it('buildDispatchPayload (a metadata string spreads its indices; a missing second argument throws as destructuring does)', () => {
    const errors = agree('buildDispatchPayload', buildDispatchPayload, ref.buildDispatchPayload, (g) => {
      const mission = g.rnd() < 0.9
        ? Object.fromEntries(['id', 'objective', 'completion', 'longRunning', 'targetExecutorId', 'requiredCapabilities', 'targetAgentId', 'mode', 'priority', 'metadata']
          .filter(() => g.rnd() < 0.6)
          .map((k) => [k, k === 'metadata' && g.rnd() < 0.3 ? g.pick(['ab', 5, true, ['p'], null]) : g.value()]))
        : g.value();
      const r = g.rnd();
      const options = r < 0.05 ? undefined : r < 0.08 ? null : r < 0.15 ? {} : { sessionId: g.value() };
      return r < 0.03 ? [mission] : [mission, options];
    }, 7);
    assert.ok(errors > 0, 'some generated inputs throw in the reference too');
  });

  it('eventToStatusUpdate', () => {
    const types = ['mission.started', 'mission.hitl_required', 'mission.hitl_responded', 'mission.suspended', 'mission.resumed', 'mission.completed',
      'mission.failed', 'mission.aborted', 'mission.assigned', 'mission.progress', 'mission.paused', 'mission.reconnected', 'executor.resync', 'x', ''];
    const keys = ['agent_runtime', 'pty_session_id', 'hitl_id', 'prompt', 'context', 'text', 'response', 'checkpoint_id', 'reason', 'resumed_from',
      'exit_code', 'summary', 'error', 'aborted_by'];
    agree('eventToStatusUpdate', eventToStatusUpdate, ref.eventToStatusUpdate, (g) => {
      if (g.rnd() < 0.08) return [g.value()];
      const event = { event: g.rnd() < 0.9 ? g.pick(types) : g.value(), mission_id: g.value(), ts: g.value() };
      const r = g.rnd();
      if (r < 0.7) event.data = Object.fromEntries(keys.filter(() => g.rnd() < 0.4).map((k) => [k, g.value()]));
      else if (r < 0.85) event.data = g.value();
      return [event];
    }, 8);
  });

  it('the reference itself is not trivially the helper: spot values from SPEC.md', () => {
    assert.equal(backoffMs('2', 100), 200);
    assert.ok(Object.is(backoffMs(0.5, 1), 2 ** -0.5));
    assert.equal(classifyStatus(), 'terminal');
    assert.equal(buildWsUrl('http://h', 'exec/with slash', 'a+b/c'), 'ws://h/ws/executors/exec%2Fwith%20slash?token=a%2Bb%2Fc');
    assert.equal(buildWsUrl('http://h', 'e', ''), 'ws://h/ws/executors/e');
    assert.ok(Number.isNaN(reconnectDelay(NaN, 1000, 30000)));
    assert.deepEqual(buildDispatchPayload({ metadata: 'ab' }, {}).metadata, { mc_session_id: undefined, mode: 'direct', priority: 'normal', 0: 'a', 1: 'b' });
    assert.throws(() => buildDispatchPayload({ id: 'm' }), TypeError);
  });
});
