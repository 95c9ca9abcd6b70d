'use strict';
// @aiwg/mc-native/executor-ws-client. buildWsUrl, reconnectDelay and
// eventToStatusUpdate are plain JS. By default the stream runs natively
// (tokio-tungstenite, src/mission_control/executor_ws). With an injected
// `WebSocketImpl` the socket is JS's, so this file drives it with the
// original's timings: the socket is constructed before startExecutorWS
// returns, a message reaches onEvent before the socket's dispatch returns,
// and no socket is constructed after stop().

const native = require('./native.js');
const check = require('./validate.js');
const { guardedLogger, errorMessage, onAbort } = require('./operation.js');

/** `ws(s)://<serve>/ws/executors/<id>[?token=…]`. */
function buildWsUrl(aiwgServeUrl, executorId, token) {
  check.string('aiwgServeUrl', aiwgServeUrl);
  const base = aiwgServeUrl.replace(/^https:\/\//, 'wss://').replace(/^http:\/\//, 'ws://').replace(/\/+$/, '');
  const query = token ? `?token=${encodeURIComponent(token)}` : '';
  return `${base}/ws/executors/${encodeURIComponent(executorId)}${query}`;
}

/** `min(maxMs, baseMs * 2^max(0, attempt-1))`. */
function reconnectDelay(attempt, baseMs, maxMs) {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

/** The status update an executor event stands for, or null (SPEC §5's table). */
function eventToStatusUpdate(event) {
  if (!event || !event.event) return null;
  const { mission_id: missionId, ts } = event;
  const data = event.data ?? {};
  const exitCode = typeof data.exit_code === 'number' ? data.exit_code : null;
  switch (event.event) {
    case 'mission.started':
      return {
        missionId,
        status: 'running',
        transitionFrom: 'assigned',
        patch: { startedAt: ts, agentRuntime: data.agent_runtime || null, ptySessionId: data.pty_session_id || null },
      };
    case 'mission.hitl_required':
      return {
        missionId,
        status: 'hitl_required',
        patch: { hitlId: data.hitl_id || null, hitlPrompt: data.prompt || null, hitlContext: data.context || null, hitlAt: ts },
      };
    case 'mission.hitl_responded':
      // The fixture and the original say `text`; the v1 schema says `response`.
      return {
        missionId,
        status: 'running',
        transitionFrom: 'hitl_required',
        patch: { hitlRespondedAt: ts, hitlResponse: data.text || data.response || null },
      };
    case 'mission.suspended':
      return {
        missionId,
        status: 'suspended',
        patch: { suspendedAt: ts, checkpointId: data.checkpoint_id || null, suspendReason: data.reason || null },
      };
    case 'mission.resumed':
      return { missionId, status: 'running', patch: { resumedAt: ts, resumedFrom: data.resumed_from || 'suspended' } };
    case 'mission.completed':
      return { missionId, status: 'done', patch: { completedAt: ts, exitCode, summary: data.summary || null } };
    case 'mission.failed':
      return {
        missionId,
        status: 'failed',
        patch: { failedAt: ts, failureReason: data.reason || 'unknown', failureMessage: data.error || null, exitCode },
      };
    case 'mission.aborted':
      return {
        missionId,
        status: 'aborted',
        patch: { abortedAt: ts, abortedBy: data.aborted_by || 'unknown', abortReason: data.reason || null },
      };
    default:
      return null;
  }
}

/** The URL as logs and onState show it: any token replaced by `***` (§9.8). */
function redactUrl(url) {
  return url.replace(/token=[^&\s]*/g, 'token=***');
}

/** Hand an event to onEvent; a throw or a rejection is logged, never fatal. */
function deliver(onEvent, event, log) {
  if (onEvent === undefined || onEvent === null) return;
  try {
    const result = onEvent(event);
    if (result && typeof result.then === 'function') {
      result.then(undefined, (err) => log('executor-ws:handler-error', { error: errorMessage(err) }));
    }
  } catch (err) {
    log('executor-ws:handler-error', { error: errorMessage(err) });
  }
}

/**
 * Follow one executor's event stream, reconnecting with capped backoff.
 * Returns `{stop, ready}` at once; `ready` resolves on the first open and
 * rejects (handled, never unhandled) if stopped before it.
 */
function startExecutorWS(opts) {
  check.present('opts', opts);
  const { aiwgServeUrl, executorId, token, onEvent, signal, WebSocketImpl } = opts;
  const reconnectBaseMs = opts.reconnectBaseMs ?? 1000;
  const reconnectMaxMs = opts.reconnectMaxMs ?? 30000;
  // The original calls these outside any try (in socket callbacks): a
  // non-function would crash the process there, so it is refused here.
  const onState = check.optionalFunction('opts.onState', opts.onState);
  const logger = check.optionalFunction('opts.logger', opts.logger);
  if (signal && typeof signal.addEventListener !== 'function') throw check.invalidArg('opts.signal', 'an AbortSignal', signal);
  const url = buildWsUrl(check.string('opts.aiwgServeUrl', aiwgServeUrl), executorId, token);
  const options = { url, shown: redactUrl(url), executorId, reconnectBaseMs, reconnectMaxMs };

  let resolveReady;
  let rejectReady;
  let opened = false;
  const ready = new Promise((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => {}); // stop before open must never surface as an unhandled rejection
  const userLog = guardedLogger(logger);
  const log = (msg, meta) => userLog(msg, { executorId, ...meta });
  log.active = userLog.active;
  const state = (name, meta) => {
    if (!onState) return;
    try {
      onState(name, meta);
    } catch (err) {
      log('executor-ws:handler-error', { error: errorMessage(err) });
    }
  };
  const markOpened = () => {
    if (!opened) {
      opened = true;
      resolveReady();
    }
  };

  const hooks = { onEvent, state, log, markOpened };
  const driver =
    signal && signal.aborted
      ? stoppedDriver(log) // aborted already: nothing is opened at all
      : WebSocketImpl === undefined || WebSocketImpl === null
        ? nativeDriver(options, hooks)
        : jsDriver(options, WebSocketImpl, hooks);

  let stopping = null;
  let detach = () => {};
  const stop = () => {
    if (!stopping) {
      detach();
      stopping = driver.stop().then(() => {
        if (!opened) rejectReady(new Error(`executor-ws stopped before it connected to ${executorId}`));
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

/**
 * The Rust client; frames, states and log lines come through one ordered
 * sink. Log metas are rebuilt with the caller's values (executorId as
 * given, the reconnect delay as JS computes it).
 */
function nativeDriver(options, { onEvent, state, log, markOpened }) {
  let markStopped;
  const stopped = new Promise((r) => {
    markStopped = r;
  });
  const { executorId, reconnectBaseMs, reconnectMaxMs } = options;
  const sink = (kind, a, b) => {
    switch (kind) {
      case 'event':
        return deliver(onEvent, JSON.parse(a), log);
      case 'state':
        return state(a, b === 'null' ? undefined : JSON.parse(b));
      case 'ready':
        return markOpened();
      case 'log': {
        const { executorId: _native, ...meta } = JSON.parse(b);
        if (a === 'executor-ws:reconnect') meta.delay = reconnectDelay(meta.attempt, reconnectBaseMs, reconnectMaxMs);
        return log(a, meta);
      }
      default:
        return markStopped();
    }
  };
  const operation = native.startExecutorWs(
    options.url,
    String(executorId),
    Number(reconnectBaseMs),
    Number(reconnectMaxMs),
    Boolean(log.active),
    sink,
  );
  return {
    stop() {
      operation.cancel();
      return stopped;
    },
  };
}

/** A caller's browser-style WebSocket class, driven here. */
function jsDriver(options, WebSocketImpl, { onEvent, state, log, markOpened }) {
  const { url, shown } = options;
  let stopped = false;
  let socket = null;
  let attempt = 0;
  let timer = null;

  const reconnect = () => {
    attempt += 1;
    const delay = reconnectDelay(attempt, options.reconnectBaseMs, options.reconnectMaxMs);
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
      log('executor-ws:construct-failed', { error: redactUrl(errorMessage(err)) });
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
