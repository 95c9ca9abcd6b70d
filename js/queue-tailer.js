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

// The flow-control hook of executor-ws-client.js (internal): an injected
// stream's events wait in the stream, its socket paused, while the tailer
// is full, as a native stream waits before reading.
const FLOW = Symbol.for('@aiwg/mc-native/executor-ws:flow');
const { discoverSessions, readSession, writeSessionAtomic } = require('./session-files.js');

// The defaults live in Rust (src/mission_control/tailer/config.rs); read once here.
const NATIVE_DEFAULTS = Object.freeze(native.queueTailerDefaults());

/** The original's DEFAULTS: the five options `startQueueTailer` merges into `options`. */
const DEFAULTS = Object.freeze({
  aiwgServeUrl: NATIVE_DEFAULTS.aiwgServeUrl,
  watchDir: NATIVE_DEFAULTS.watchDir,
  pollIntervalMs: NATIVE_DEFAULTS.pollIntervalMs,
  retryBaseMs: NATIVE_DEFAULTS.retryBaseMs,
  maxAttempts: NATIVE_DEFAULTS.maxAttempts,
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

/** The native tailer's options, read from the merged options as JS reads them. */
function tailerConfig(options) {
  const tokens = {};
  for (const [id, token] of Object.entries(options.executorTokens ?? {})) {
    if (token) tokens[id] = String(token);
  }
  return {
    aiwgServeUrl: check.string('options.aiwgServeUrl', options.aiwgServeUrl),
    watchDir: check.string('options.watchDir', options.watchDir),
    pollIntervalMs: Number(options.pollIntervalMs ?? NATIVE_DEFAULTS.pollIntervalMs),
    retryBaseMs: Number(options.retryBaseMs ?? NATIVE_DEFAULTS.retryBaseMs),
    maxAttempts: Number(options.maxAttempts ?? NATIVE_DEFAULTS.maxAttempts),
    dryRun: Boolean(options.dryRun),
    maxInflight: Number(options.maxInflight ?? NATIVE_DEFAULTS.maxInflight),
    requestTimeoutMs: Number(options.requestTimeoutMs ?? NATIVE_DEFAULTS.requestTimeoutMs),
    polling: Boolean(options.usePolling),
    disableWSSubscription: Boolean(options.disableWSSubscription),
    executorTokens: tokens,
    subscribeExecutors: [...(options.subscribeExecutors ?? [])].filter((id) => id).map(String),
    reconnectBaseMs: Number(options.reconnectBaseMs ?? NATIVE_DEFAULTS.reconnectBaseMs),
    reconnectMaxMs: Number(options.reconnectMaxMs ?? NATIVE_DEFAULTS.reconnectMaxMs),
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
  // The flow controls of those streams that the tailer said were full.
  const held = new Set();
  // Aborts the injected fetchImpl's requests when the tailer stops.
  const requests = new AbortController();

  return new Promise((resolve, reject) => {
    let operation = null;
    let ready = false;
    let stopping = null;
    let detach = () => {};
    let settleStopped;
    // Settles once the native side is done: fulfilled, or rejected with the
    // internal error that stopped it. Marked handled here, so a tailer that
    // failed while nobody awaits stop() is not an unhandled rejection;
    // stop() hands the same promise (and its rejection) to the caller.
    const stopped = new Promise((res, rej) => {
      settleStopped = (error) => (error ? rej(error) : res());
    });
    stopped.catch(() => {});
    // Whatever the way it ended: no more signal, streams or requests.
    const release = () => {
      detach();
      for (const stream of streams) stream.stop();
      requests.abort();
    };
    const stop = () => {
      if (!stopping) {
        stopping = stopped;
        detach();
        // Requests in flight get the native drain time to answer.
        setTimeout(() => requests.abort(), NATIVE_DEFAULTS.drainMs).unref();
        operation.cancel();
        for (const stream of streams) stream.stop();
      }
      return stopping;
    };
    // The tailer is over: resolve stop(), or reject it (and a start still
    // pending) with an Error naming what failed.
    const finish = (message) => {
      const error = message ? new Error(message) : null;
      stopping = stopping || stopped;
      release();
      if (!ready && error) reject(error);
      settleStopped(error);
    };
    const sink = (event) => {
      switch (event.kind) {
        case 'Log':
          if (event.msg === 'queue-tailer:start') {
            // The options as the caller gave them (dryRun need not be a
            // boolean); a URL string as the native line shows it, its
            // credentials hidden.
            const shown = JSON.parse(event.meta).aiwgServeUrl;
            const aiwgServeUrl = typeof merged.aiwgServeUrl === 'string' ? shown : merged.aiwgServeUrl;
            guarded(event.msg, { aiwgServeUrl, watchDir: merged.watchDir, dryRun: merged.dryRun });
          } else {
            callLogger(logger, event.msg, event.meta);
          }
          break;
        case 'Ready':
          ready = true;
          resolve({ stop, options: merged });
          break;
        case 'Stopped':
          finish(event.error);
          break;
        case 'Room': {
          // Each room() hands the stream's queued events on at once, and a
          // stream may be held again while it does.
          const waiting = [...held];
          held.clear();
          for (const control of waiting) control.room();
          break;
        }
        case 'Subscribe': {
          if (stopping) break; // asked for just before the stop: nothing to follow any more
          const { executorId } = event;
          let control = null;
          const stream = startExecutorWS({
            aiwgServeUrl: config.aiwgServeUrl,
            executorId,
            token: event.token || undefined,
            reconnectBaseMs: merged.reconnectBaseMs,
            reconnectMaxMs: merged.reconnectMaxMs,
            WebSocketImpl,
            logger,
            onEvent: (e) => {
              if (!operation.streamEvent(executorId, JSON.stringify(e)) && control) {
                control.full();
                held.add(control);
              }
            },
            onState: (state) => operation.streamState(executorId, state),
            [FLOW]: (c) => {
              control = c;
            },
          });
          streams.push(stream);
          break;
        }
        default: {
          // InternalError: the native side failed outside its tasks. Say so
          // through the logger, as a failure inside a task is said.
          const message = String(event.message);
          guarded('queue-tailer:internal-error', { error: message });
          if (operation) operation.cancel();
          finish(message);
        }
      }
    };
    operation = native.startQueueTailer(
      config,
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
