'use strict';
// @aiwg/mc-native/dispatch-client. classifyStatus, reasonForStatus and
// sleep are plain JS. dispatchMission's retry loop, its timing and the HTTP
// client are native (src/mission_control/dispatch); this file reads the
// options as the original did, builds the URL and the body, and builds the
// outcome and every log line from the answers the native loop reports,
// with the caller's own values (a missionId that is NaN stays NaN).

const native = require('./native.js');
const check = require('./validate.js');
const { guardedLogger, onAbort, errorMessage } = require('./operation.js');

/** maxAttempts, retryBaseMs, requestTimeoutMs when left out: Rust's DispatchOptions::default(), read once. */
const DEFAULTS = native.defaults().dispatch;

/** `'accepted'` for 200–299, `'retryable'` for 500–599, `'terminal'` otherwise. */
function classifyStatus(status) {
  if (status >= 200 && status < 300) return 'accepted';
  if (status >= 500 && status < 600) return 'retryable';
  return 'terminal';
}

/** The reason code of an HTTP status, or `fallback`. */
function reasonForStatus(status, fallback = 'client_error') {
  switch (status) {
    case 400:
      return 'invalid_request';
    case 401:
    case 403:
      return 'unauthorized';
    case 404:
      return 'executor_not_found';
    case 409:
      return 'idempotency_conflict';
    case 422:
      return 'idempotency_key_reused';
    case 503:
      return 'no_executor_available';
    default:
      return fallback;
  }
}

/** Wait `ms`; resolves early (never rejects) when `signal` aborts. */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** min(30000, baseMs * 2^(attempt-1)) — the same as queue-tailer's backoffMs. */
function backoffMs(attempt, baseMs) {
  return Math.min(30000, baseMs * 2 ** (attempt - 1));
}

/** An answer body: empty text is `{}`, text that is not JSON is `{error: text}`. */
function parseBody(text) {
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { error: text };
  }
}

/** What one attempt ended with, as the original's loop holds it. */
function attemptResult(status, body) {
  // A body of JSON null reads as {} (§9.7: a malformed answer is never fatal).
  const b = body ?? {};
  return { status, body: b, message: b.detail || b.error || `HTTP ${status}` };
}

/** POST one mission to `aiwg serve`, with retries; resolves to its outcome. */
async function dispatchMission(opts, mcSessionId, payload, signal) {
  check.present('opts', opts);
  const { aiwgServeUrl, fetchImpl, logger } = opts;
  const retryBaseMs = opts.retryBaseMs ?? DEFAULTS.retryBaseMs;
  const maxAttempts = opts.maxAttempts ?? DEFAULTS.maxAttempts;
  const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
  check.string('opts.aiwgServeUrl', aiwgServeUrl);
  const url = `${aiwgServeUrl.replace(/\/+$/, '')}/api/v1/sessions/${encodeURIComponent(mcSessionId)}/dispatch`;
  if (payload === undefined || payload === null) throw check.invalidArg('payload', 'an object', payload);
  const missionId = payload.mission_id;
  const body = JSON.stringify(payload);
  const log = guardedLogger(check.optionalFunction('opts.logger', logger));
  check.optionalSignal('signal', signal);

  // What the loop has seen so far. Before any attempt: status -1.
  let last = { status: -1, body: {}, message: 'no attempt made' };
  let lastError;
  // The fetchImpl's raw answers, by call: the outcome carries its status and body as they were.
  const answers = new Map();
  let calls = 0;
  const adapter =
    fetchImpl === undefined || fetchImpl === null
      ? null
      : (callUrl, initJson) => {
          const seq = ++calls;
          answers.clear();
          const { headers } = JSON.parse(initJson);
          return Promise.resolve()
            .then(() => fetchImpl(callUrl, { method: 'POST', headers, body, signal }))
            .then(async (response) => {
              const status = response.status;
              const text = await response.text();
              answers.set(seq, { status, text });
              return { status: Number(status), text: String(text), seq };
            })
            .catch((err) => ({ status: -1, error: errorMessage(err), seq }));
        };

  const settle = ({ ok, status, text, seq }) => {
    const meta = { ok, status, seq };
    if (!meta.ok) {
      lastError = text;
      last = attemptResult(-1, { error: `network: ${text}` });
      return;
    }
    const raw = adapter ? answers.get(meta.seq) : undefined;
    last = raw ? attemptResult(raw.status, parseBody(raw.text)) : attemptResult(meta.status, parseBody(text));
  };
  const executorIdOf = (b) => b.executor_id || 'unknown';
  const lines = {
    'dispatch-client:network-error': (m) => ({ missionId, attempt: m.attempt, error: lastError }),
    'dispatch-client:accepted': (m) => ({ missionId, attempts: m.attempts, executorId: executorIdOf(last.body) }),
    'dispatch-client:terminal': () => ({ missionId, status: last.status, reason: reasonForStatus(last.status), message: last.message }),
    'dispatch-client:retrying': (m) => ({ missionId, attempt: m.attempt, status: last.status, delay: backoffMs(m.attempt, retryBaseMs) }),
    'dispatch-client:exhausted': () => ({ missionId, attempts: maxAttempts, lastStatus: last.status }),
  };
  const outcomeOf = ({ end, attempts }) => {
    switch (end) {
      case 'accepted':
        return {
          outcome: 'accepted',
          missionId,
          executorId: executorIdOf(last.body),
          estimatedStart: last.body.estimated_start ?? null,
          dispatchPath: last.body.dispatch_path ?? null,
          idempotentReplayed: Boolean(last.body.idempotent_replayed),
          attempts,
        };
      case 'terminal':
        return { outcome: 'failed', missionId, reason: reasonForStatus(last.status), message: last.message, status: last.status, attempts };
      case 'aborted':
        return { outcome: 'failed', missionId, reason: 'aborted', message: 'dispatch aborted before completion', status: last.status, attempts };
      default:
        return {
          outcome: 'failed',
          missionId,
          reason: last.status === -1 ? 'unreachable' : reasonForStatus(last.status, 'dispatch_error'),
          message: `dispatch exhausted ${maxAttempts} attempts: ${last.message}`,
          status: last.status,
          attempts: maxAttempts,
        };
    }
  };

  const request = {
    url,
    sessionKey: String(mcSessionId),
    missionKey: String(missionId),
    body: body ?? '',
    maxAttempts: Number(maxAttempts),
    retryBaseMs: Number(retryBaseMs),
    requestTimeoutMs: Number(requestTimeoutMs),
  };
  return new Promise((resolve, reject) => {
    let detach = () => {};
    const sink = (event) => {
      switch (event.kind) {
        case 'Answer':
          return settle(event);
        case 'Log': {
          const line = lines[event.msg];
          const meta = JSON.parse(event.meta);
          return log(event.msg, line ? line(meta) : meta);
        }
        case 'Done':
          detach();
          return resolve(outcomeOf(event));
        default:
          detach();
          return reject(new Error(event.message));
      }
    };
    const operation = native.dispatchMission(request, Boolean(signal?.aborted), Boolean(log.active), sink, adapter);
    detach = onAbort(signal, () => operation.cancel());
  });
}

module.exports = { classifyStatus, reasonForStatus, sleep, dispatchMission };
