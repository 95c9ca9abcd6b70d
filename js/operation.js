'use strict';
// Glue shared by the native operations (a dispatch, a stream, a tailer):
// the user's logger guarded so a throwing logger cannot break the bridge,
// the AbortSignal wiring, and the fetchImpl adapter.

/**
 * The user's logger, called with the meta object as given; a logger that
 * throws is ignored. `log.active` says whether there is a logger at all.
 */
function guardedLogger(logger) {
  const log = (msg, meta) => {
    if (typeof logger !== 'function') return;
    try {
      logger(msg, meta);
    } catch {
      // The logger is the caller's; its failure must not stop the bridge.
    }
  };
  log.active = typeof logger === 'function';
  return log;
}

/** Call the user's logger with meta parsed from JSON text (native log lines). */
function callLogger(logger, msg, metaJson) {
  if (typeof logger !== 'function') return;
  guardedLogger(logger)(msg, JSON.parse(metaJson));
}

/** `String(err?.message ?? err)`: what a caught error says, whatever was thrown. */
function errorMessage(err) {
  try {
    return String(err?.message ?? err);
  } catch {
    return Object.prototype.toString.call(err);
  }
}

/**
 * `fetchImpl` as the native tailer calls it: `(url, initJson)` → `{status, text}`,
 * or `{error}` when the call throws, its promise rejects or reading the
 * answer fails (a transport failure). Never rejects.
 */
function fetchAdapter(fetchImpl, signal) {
  return (url, initJson) => {
    const init = JSON.parse(initJson);
    init.signal = signal;
    return Promise.resolve()
      .then(() => fetchImpl(url, init))
      .then(async (response) => ({ status: Number(response.status), text: String(await response.text()) }))
      .catch((err) => ({ status: -1, error: errorMessage(err) }));
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

module.exports = { guardedLogger, callLogger, errorMessage, fetchAdapter, onAbort };
