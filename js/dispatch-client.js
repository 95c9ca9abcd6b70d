'use strict';
// @aiwg/mc-native/dispatch-client: the retry loop and the HTTP client are
// native (src/mission_control/dispatch); this file checks arguments and
// wires the logger, the AbortSignal and an injected fetchImpl.

const native = require('./native.js');
const check = require('./validate.js');
const { callLogger, fetchAdapter, onAbort } = require('./operation.js');

/** `'accepted'` for 2xx, `'retryable'` for 5xx, `'terminal'` otherwise. */
function classifyStatus(status) {
  return native.classifyStatus(check.number('status', status));
}

/** The reason code of an HTTP status, or `fallback`. */
function reasonForStatus(status, fallback = 'client_error') {
  return native.reasonForStatus(check.number('status', status), check.string('fallback', fallback));
}

/** Wait `ms`; resolves early (never rejects) when `signal` aborts. */
function sleep(ms, signal) {
  check.number('ms', ms);
  check.optionalSignal('signal', signal);
  return new Promise((resolve) => {
    let detach = () => {};
    const timer = setTimeout(() => {
      detach();
      resolve();
    }, ms);
    detach = onAbort(signal, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Checked and defaulted dispatch options, as the native side reads them. */
function dispatchOptions(opts) {
  return {
    aiwgServeUrl: check.httpUrl('opts.aiwgServeUrl', opts.aiwgServeUrl),
    retryBaseMs: check.optionalNumber('opts.retryBaseMs', opts.retryBaseMs, 500),
    maxAttempts: check.optionalNumber('opts.maxAttempts', opts.maxAttempts, 5),
    requestTimeoutMs: check.optionalNumber('opts.requestTimeoutMs', opts.requestTimeoutMs, 30000),
  };
}

/** POST one mission to `aiwg serve`, with retries; resolves to its outcome. */
async function dispatchMission(opts, mcSessionId, payload, signal) {
  check.object('opts', opts);
  const options = dispatchOptions(opts);
  const fetchImpl = check.optionalFunction('opts.fetchImpl', opts.fetchImpl);
  const logger = check.optionalFunction('opts.logger', opts.logger);
  check.string('mcSessionId', mcSessionId);
  check.object('payload', payload);
  check.optionalSignal('signal', signal);
  return new Promise((resolve, reject) => {
    let detach = () => {};
    const sink = (kind, a, b) => {
      if (kind === 'log') return callLogger(logger, a, b);
      detach();
      if (kind === 'done') resolve(JSON.parse(a));
      else reject(new Error(a));
    };
    const operation = native.dispatchMission(
      JSON.stringify(options),
      mcSessionId,
      JSON.stringify(payload),
      Boolean(signal && signal.aborted),
      Boolean(logger),
      sink,
      fetchImpl ? fetchAdapter(fetchImpl, signal) : null,
    );
    detach = onAbort(signal, () => operation.cancel());
  });
}

module.exports = { classifyStatus, reasonForStatus, sleep, dispatchMission };
