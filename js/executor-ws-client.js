'use strict';
// @aiwg/mc-native/executor-ws-client. By default the stream runs natively
// (tokio-tungstenite, src/mission_control/executor_ws). With an injected
// `WebSocketImpl` the socket is JS's, so this file drives it with the
// original's timings: the socket is constructed before startExecutorWS
// returns, a message reaches onEvent before the socket's dispatch returns,
// and no socket is constructed after stop().

const native = require('./native.js');
const check = require('./validate.js');
const { callLogger, onAbort } = require('./operation.js');

/** `ws(s)://<serve>/ws/executors/<id>[?token=…]`. */
function buildWsUrl(aiwgServeUrl, executorId, token) {
  check.string('aiwgServeUrl', aiwgServeUrl);
  check.string('executorId', executorId);
  if (token !== undefined && token !== null) check.string('token', token);
  return native.buildWsUrl(aiwgServeUrl, executorId, token ?? undefined);
}

/** `min(maxMs, baseMs * 2^max(0, attempt-1))`. */
function reconnectDelay(attempt, baseMs, maxMs) {
  return native.reconnectDelay(check.number('attempt', attempt), check.number('baseMs', baseMs), check.number('maxMs', maxMs));
}

/** The status update an executor event stands for, or null. */
function eventToStatusUpdate(event) {
  if (!event || typeof event !== 'object' || !event.event) return null;
  const update = native.eventToStatusUpdate(JSON.stringify(event));
  return update === null ? null : JSON.parse(update);
}

/** Options checked and defaulted. */
function wsOptions(opts) {
  check.object('opts', opts);
  return {
    aiwgServeUrl: check.httpUrl('opts.aiwgServeUrl', opts.aiwgServeUrl),
    executorId: check.string('opts.executorId', opts.executorId),
    token: opts.token === undefined || opts.token === null ? undefined : check.string('opts.token', opts.token),
    reconnectBaseMs: check.optionalNumber('opts.reconnectBaseMs', opts.reconnectBaseMs, 1000),
    reconnectMaxMs: check.optionalNumber('opts.reconnectMaxMs', opts.reconnectMaxMs, 30000),
  };
}

/** Hand an event to onEvent; a throw or a rejection is logged, never fatal. */
function deliver(onEvent, event, log) {
  if (typeof onEvent !== 'function') return;
  try {
    const result = onEvent(event);
    if (result && typeof result.then === 'function') {
      result.then(undefined, (err) => log('executor-ws:handler-error', { error: String((err && err.message) || err) }));
    }
  } catch (err) {
    log('executor-ws:handler-error', { error: String((err && err.message) || err) });
  }
}

/**
 * Follow one executor's event stream, reconnecting with capped backoff.
 * Returns `{stop, ready}` at once; `ready` resolves on the first open and
 * rejects (handled, never unhandled) if stopped before it.
 */
function startExecutorWS(opts) {
  const options = wsOptions(opts);
  const onEvent = check.optionalFunction('opts.onEvent', opts.onEvent);
  const onState = check.optionalFunction('opts.onState', opts.onState);
  const logger = check.optionalFunction('opts.logger', opts.logger);
  const signal = check.optionalSignal('opts.signal', opts.signal);
  const WebSocketImpl = check.optionalFunction('opts.WebSocketImpl', opts.WebSocketImpl);

  let resolveReady;
  let rejectReady;
  let opened = false;
  const ready = new Promise((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => {}); // stop before open must never surface as an unhandled rejection
  const log = (msg, meta) => {
    if (logger) callLogger(logger, msg, JSON.stringify({ executorId: options.executorId, ...meta }));
  };
  const state = (name, meta) => {
    if (!onState) return;
    try {
      onState(name, meta);
    } catch (err) {
      log('executor-ws:handler-error', { error: String((err && err.message) || err) });
    }
  };
  const markOpened = () => {
    if (!opened) {
      opened = true;
      resolveReady();
    }
  };

  const driver =
    signal && signal.aborted
      ? stoppedDriver(log) // aborted already: nothing is opened at all
      : WebSocketImpl
        ? jsDriver(options, WebSocketImpl, { onEvent, state, log, markOpened })
        : nativeDriver(options, { onEvent, state, log, logger, markOpened });

  let stopping = null;
  let detach = () => {};
  const stop = () => {
    if (!stopping) {
      detach();
      stopping = driver.stop().then(() => {
        if (!opened) rejectReady(new Error(`executor-ws stopped before it connected to ${options.executorId}`));
      });
    }
    return stopping;
  };
  detach = onAbort(signal, stop);
  return { stop, ready };
}

/** A stream stopped before it started. */
function stoppedDriver(log) {
  return {
    stop() {
      log('executor-ws:stopped', {});
      return Promise.resolve();
    },
  };
}

/** The Rust client; events, states and log lines come through one ordered sink. */
function nativeDriver(options, { onEvent, state, log, logger, markOpened }) {
  let markStopped;
  const stopped = new Promise((r) => {
    markStopped = r;
  });
  const sink = (kind, a, b) => {
    switch (kind) {
      case 'event':
        return deliver(onEvent, JSON.parse(a), log);
      case 'state':
        return state(a, b === 'null' ? undefined : JSON.parse(b));
      case 'ready':
        return markOpened();
      case 'log':
        return callLogger(logger, a, b);
      default:
        return markStopped();
    }
  };
  const operation = native.startExecutorWs(JSON.stringify(options), Boolean(logger), sink);
  return {
    stop() {
      operation.cancel();
      return stopped;
    },
  };
}

/** A caller's browser-style WebSocket class, driven here. */
function jsDriver(options, WebSocketImpl, { onEvent, state, log, markOpened }) {
  const url = native.buildWsUrl(options.aiwgServeUrl, options.executorId, options.token);
  const shown = native.redactUrl(url);
  let stopped = false;
  let socket = null;
  let attempt = 0;
  let timer = null;

  const reconnect = () => {
    attempt += 1;
    const delay = native.reconnectDelay(attempt, options.reconnectBaseMs, options.reconnectMaxMs);
    log('executor-ws:reconnect', { attempt, delay });
    timer = setTimeout(connect, delay);
  };
  function connect() {
    timer = null;
    if (stopped) return;
    let current;
    try {
      current = new WebSocketImpl(url);
    } catch (err) {
      log('executor-ws:construct-failed', { error: native.redactUrl(String((err && err.message) || err)) });
      reconnect();
      return;
    }
    socket = current;
    current.addEventListener('open', () => {
      attempt = 0;
      state('opened', { url: shown });
      log('executor-ws:opened', { url: shown });
      markOpened();
    });
    current.addEventListener('message', (message) => {
      const data = message && message.data;
      if (typeof data !== 'string') return log('executor-ws:bad-message', { error: 'binary frame' });
      let event;
      try {
        event = JSON.parse(data);
      } catch (err) {
        return log('executor-ws:bad-message', { error: err.message });
      }
      if (!event || typeof event !== 'object' || Array.isArray(event)) {
        return log('executor-ws:bad-message', { error: 'not a JSON object' });
      }
      deliver(onEvent, event, log);
    });
    current.addEventListener('close', (closeEvent) => {
      const code = closeEvent && closeEvent.code;
      state('closed', { code });
      log('executor-ws:closed', { code });
      if (socket === current) socket = null;
      if (!stopped) reconnect();
    });
    current.addEventListener('error', () => {
      state('error');
      log('executor-ws:error', {});
    });
  }
  connect();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (socket) {
        try {
          socket.close(1000, 'shutdown');
        } catch {
          // a socket that cannot close is gone already
        }
      }
      log('executor-ws:stopped', {});
      return Promise.resolve();
    },
  };
}

module.exports = { buildWsUrl, reconnectDelay, eventToStatusUpdate, startExecutorWS };
