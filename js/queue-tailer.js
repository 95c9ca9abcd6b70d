'use strict';
// @aiwg/mc-native/queue-tailer: session-file helpers and startQueueTailer.
// queuedMissions, buildDispatchPayload and backoffMs are plain JS. The
// tailer runs natively (src/mission_control/tailer); this file merges and
// reads the options as the original did and wires the logger, the signal,
// fetchImpl and an injected WebSocketImpl.

const native = require('./native.js');
const check = require('./validate.js');
const { callLogger, guardedLogger, fetchAdapter, onAbort } = require('./operation.js');
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
    .filter((mission) => mission != null && mission.status === 'queued')
    .map((mission) => ({ sessionId: session.id, mission }));
}

/** The executor-v1 dispatch body for `mission`. */
function buildDispatchPayload(mission, { sessionId }) {
  check.present('mission', mission);
  return {
    mission_id: mission.id,
    objective: mission.objective,
    completion: mission.completion || null,
    long_running: Boolean(mission.longRunning),
    executor_filter: {
      executor_id: mission.targetExecutorId || null,
      capabilities: mission.requiredCapabilities || [],
      agent_id: mission.targetAgentId || null,
    },
    metadata: {
      mc_session_id: sessionId,
      mode: mission.mode || 'direct',
      priority: mission.priority || 'normal',
      ...mission.metadata,
    },
  };
}

/** `min(30000, baseMs * 2^(attempt-1))`. */
function backoffMs(attempt, baseMs) {
  return Math.min(30000, baseMs * 2 ** (attempt - 1));
}

/** A JS number as JSON can carry it to the native side (NaN and ±Infinity by name). */
function jsNumber(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n : String(n);
}

/** The native tailer's options, read from the merged options as JS reads them. */
function tailerConfig(options) {
  const tokens = {};
  for (const [id, token] of Object.entries(options.executorTokens ?? {})) {
    if (token) tokens[id] = String(token);
  }
  return {
    aiwgServeUrl: check.string('options.aiwgServeUrl', options.aiwgServeUrl),
    watchDir: check.string('options.watchDir', options.watchDir),
    pollIntervalMs: jsNumber(options.pollIntervalMs ?? DEFAULTS.pollIntervalMs),
    retryBaseMs: jsNumber(options.retryBaseMs ?? DEFAULTS.retryBaseMs),
    maxAttempts: jsNumber(options.maxAttempts ?? DEFAULTS.maxAttempts),
    dryRun: Boolean(options.dryRun),
    maxInflight: jsNumber(options.maxInflight ?? 8),
    requestTimeoutMs: jsNumber(options.requestTimeoutMs ?? 30000),
    polling: Boolean(options.usePolling),
    disableWSSubscription: Boolean(options.disableWSSubscription),
    executorTokens: tokens,
    subscribeExecutors: [...(options.subscribeExecutors ?? [])].filter((id) => id).map(String),
    reconnectBaseMs: jsNumber(options.reconnectBaseMs ?? 1000),
    reconnectMaxMs: jsNumber(options.reconnectMaxMs ?? 30000),
  };
}

/**
 * Watch the queue and dispatch queued missions until stopped. Resolves,
 * once the initial sweep (and the dispatches it started) is done, to
 * `{stop, options}`.
 */
async function startQueueTailer(options = {}) {
  const merged = { ...DEFAULTS, ...options };
  const config = tailerConfig(merged);
  const logger = check.optionalFunction('options.logger', merged.logger);
  const guarded = guardedLogger(logger);
  const { fetchImpl, WebSocketImpl } = merged;
  const signal = merged.signal || undefined;
  if (signal && typeof signal.addEventListener !== 'function') throw check.invalidArg('options.signal', 'an AbortSignal', signal);
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
          if (a === 'queue-tailer:start') {
            // The options as the caller gave them (dryRun need not be a boolean).
            guarded(a, { aiwgServeUrl: merged.aiwgServeUrl, watchDir: merged.watchDir, dryRun: merged.dryRun });
          } else {
            callLogger(logger, a, b);
          }
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
            reconnectBaseMs: merged.reconnectBaseMs,
            reconnectMaxMs: merged.reconnectMaxMs,
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
      WebSocketImpl !== undefined && WebSocketImpl !== null,
      sink,
      fetchImpl !== undefined && fetchImpl !== null ? fetchAdapter(fetchImpl, requests.signal) : null,
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
