'use strict';
// @aiwg/mc-native/queue-tailer: session-file helpers and startQueueTailer.
// The tailer runs natively (src/mission_control/tailer); this file merges
// and checks options and wires the logger, signal and fetchImpl.

const native = require('./native.js');
const check = require('./validate.js');
const { callLogger, fetchAdapter, onAbort } = require('./operation.js');
const { startExecutorWS } = require('./executor-ws-client.js');
const { discoverSessions, readSession, writeSessionAtomic } = require('./session-files.js');

const DEFAULTS = Object.freeze({
  aiwgServeUrl: 'http://127.0.0.1:7337',
  watchDir: '.aiwg/ralph-external/mc',
  pollIntervalMs: 1000,
  retryBaseMs: 500,
  maxAttempts: 5,
});

/** `[{sessionId, mission}]` for every queued mission, in array order. */
function queuedMissions(session) {
  if (!session || !Array.isArray(session.missions)) return [];
  return session.missions
    .filter((mission) => mission && mission.status === 'queued')
    .map((mission) => ({ sessionId: session.id, mission }));
}

/** The executor-v1 dispatch body for `mission`. */
function buildDispatchPayload(mission, { sessionId } = {}) {
  check.object('mission', mission);
  const payload = JSON.parse(native.buildDispatchPayload(JSON.stringify(mission), JSON.stringify(sessionId ?? null)));
  if (sessionId === undefined && payload.metadata.mc_session_id === null && !('mc_session_id' in (mission.metadata || {}))) {
    payload.metadata.mc_session_id = undefined;
  }
  return payload;
}

/** `min(30000, baseMs * 2^(attempt-1))`. */
function backoffMs(attempt, baseMs) {
  return native.backoffMs(check.number('attempt', attempt), check.number('baseMs', baseMs));
}

/** The native tailer's options, checked. */
function tailerConfig(options) {
  return {
    aiwgServeUrl: check.httpUrl('options.aiwgServeUrl', options.aiwgServeUrl),
    watchDir: check.string('options.watchDir', options.watchDir),
    pollIntervalMs: check.optionalNumber('options.pollIntervalMs', options.pollIntervalMs, DEFAULTS.pollIntervalMs),
    retryBaseMs: check.optionalNumber('options.retryBaseMs', options.retryBaseMs, DEFAULTS.retryBaseMs),
    maxAttempts: check.optionalNumber('options.maxAttempts', options.maxAttempts, DEFAULTS.maxAttempts),
    dryRun: Boolean(options.dryRun),
    maxInflight: check.optionalNumber('options.maxInflight', options.maxInflight, 8),
    requestTimeoutMs: check.optionalNumber('options.requestTimeoutMs', options.requestTimeoutMs, 30000),
    polling: Boolean(options.usePolling),
    disableWSSubscription: Boolean(options.disableWSSubscription),
    executorTokens: stringMap('options.executorTokens', options.executorTokens),
    subscribeExecutors: stringList('options.subscribeExecutors', options.subscribeExecutors),
    reconnectBaseMs: check.optionalNumber('options.reconnectBaseMs', options.reconnectBaseMs, 1000),
    reconnectMaxMs: check.optionalNumber('options.reconnectMaxMs', options.reconnectMaxMs, 30000),
  };
}

function stringMap(name, value) {
  if (value === undefined || value === null) return {};
  check.object(name, value);
  for (const [k, v] of Object.entries(value)) check.string(`${name}.${k}`, v);
  return value;
}

function stringList(name, value) {
  if (value === undefined || value === null) return [];
  check.array(name, value);
  value.forEach((v, i) => check.string(`${name}[${i}]`, v));
  return value;
}

/**
 * Watch the queue and dispatch queued missions until stopped. Resolves,
 * once the initial sweep (and the dispatches it started) is done, to
 * `{stop, options}`.
 */
async function startQueueTailer(options = {}) {
  check.optionalObject('options', options);
  const merged = { ...DEFAULTS, ...options };
  const config = tailerConfig(merged);
  const logger = check.optionalFunction('options.logger', merged.logger);
  const fetchImpl = check.optionalFunction('options.fetchImpl', merged.fetchImpl);
  const signal = check.optionalSignal('options.signal', merged.signal);
  const WebSocketImpl = check.optionalFunction('options.WebSocketImpl', merged.WebSocketImpl);
  // Streams this file runs for the tailer when the caller brings its own WebSocket class.
  const streams = [];
  // Aborts the injected fetchImpl's requests when the tailer stops.
  const requests = new AbortController();

  return new Promise((resolve, reject) => {
    let operation = null;
    let stopping = null;
    let detach = () => {};
    let markStopped;
    const stopped = new Promise((r) => {
      markStopped = r;
    });
    const stop = () => {
      if (!stopping) {
        stopping = stopped;
        detach();
        // Requests in flight get the native drain time (5 s) to answer.
        setTimeout(() => requests.abort(), 5000).unref();
        operation.cancel();
        for (const stream of streams) stream.stop();
      }
      return stopping;
    };
    const sink = (kind, a, b) => {
      switch (kind) {
        case 'log':
          callLogger(logger, a, b);
          break;
        case 'ready':
          resolve({ stop, options: merged });
          break;
        case 'stopped':
          requests.abort();
          markStopped();
          break;
        case 'subscribe': {
          if (stopping) break; // asked for just before the stop: nothing to follow any more
          const executorId = a;
          const stream = startExecutorWS({
            aiwgServeUrl: config.aiwgServeUrl,
            executorId,
            token: b || undefined,
            reconnectBaseMs: config.reconnectBaseMs,
            reconnectMaxMs: config.reconnectMaxMs,
            WebSocketImpl,
            logger,
            onEvent: (event) => operation.streamEvent(executorId, JSON.stringify(event)),
            onState: (state) => operation.streamState(executorId, state),
          });
          streams.push(stream);
          break;
        }
        default:
          detach();
          reject(new Error(a));
          markStopped();
      }
    };
    operation = native.startQueueTailer(
      JSON.stringify(config),
      Boolean(logger),
      Boolean(WebSocketImpl),
      sink,
      fetchImpl ? fetchAdapter(fetchImpl, requests.signal) : null,
    );
    detach = onAbort(signal, stop);
  });
}

module.exports = {
  discoverSessions,
  readSession,
  writeSessionAtomic,
  queuedMissions,
  buildDispatchPayload,
  backoffMs,
  startQueueTailer,
};
