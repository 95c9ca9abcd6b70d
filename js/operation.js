'use strict';
// Glue shared by the native operations (a dispatch, a tailer): the sink
// that delivers their log lines and lifecycle events in order, the user's
// logger guarded so a throwing logger cannot break the bridge, the
// AbortSignal wiring, and the fetchImpl adapter.

/** Call the user's logger with parsed meta; a logger that throws is ignored. */
function callLogger(logger, msg, metaJson) {
  if (typeof logger !== 'function') return;
  try {
    logger(msg, JSON.parse(metaJson));
  } catch {
    // The logger is the caller's; its failure must not stop the bridge.
  }
}

/**
 * `fetchImpl` as the native side calls it: `(url, initJson)` → `{status, text}`.
 * Synchronous throws and rejections both become a rejected promise.
 */
function fetchAdapter(fetchImpl, signal) {
  return (url, initJson) => {
    const init = JSON.parse(initJson);
    if (signal) init.signal = signal;
    return Promise.resolve()
      .then(() => fetchImpl(url, init))
      .then(async (response) => ({ status: Number(response.status), text: String(await response.text()) }));
  };
}

/** Call `onAbort` once when `signal` aborts (now, if it already has); returns a detach function. */
function onAbort(signal, onAbortFn) {
  if (!signal) return () => {};
  if (signal.aborted) {
    onAbortFn();
    return () => {};
  }
  signal.addEventListener('abort', onAbortFn, { once: true });
  return () => signal.removeEventListener('abort', onAbortFn);
}

module.exports = { callLogger, fetchAdapter, onAbort };
