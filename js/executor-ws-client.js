'use strict';
// @aiwg/mc-native/executor-ws-client. buildWsUrl, reconnectDelay and
// eventToStatusUpdate are plain JS. By default the stream runs natively
// (tokio-tungstenite, src/mission_control/executor_ws/native.rs). With an
// injected `WebSocketImpl` the socket is JS's, so this file keeps its event
// listeners, with the original's timings: the socket is constructed before
// startExecutorWS returns, a message reaches onEvent before the socket's
// dispatch returns, and no socket is constructed after stop().
//
// No policy lives here. Reconnect attempts and delays, the reset on open,
// bad-frame sorting, the log lines, stop, and the bounded queue between
// socket and onEvent are decided in Rust (executor_ws/reconnect.rs and
// flow.rs), for both drivers; both report as ExecutorWsEvent objects that
// the functions below carry out. This file only finds the facts Rust
// cannot see: `typeof data`, JSON.parse's result and V8's message for it.

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

// The reconnect defaults and the queue capacity live in Rust
// (executor_ws/reconnect.rs, executor_ws/flow.rs).
const DEFAULTS = native.executorWsDefaults();

/**
 * Internal, not public API: the flow-control hook for a consumer that can
 * be full (the queue tailer, for its injected streams). Pass a function as
 * `opts[FLOW]`; startExecutorWS calls it synchronously, before the first
 * socket is made, with `{ full(), room() }`:
 *
 *   const FLOW = Symbol.for('@aiwg/mc-native/executor-ws:flow');
 *   let control;
 *   startExecutorWS({ ..., onEvent, [FLOW]: (c) => { control = c; } });
 *   // in onEvent, or whenever: the consumer can take no more
 *   control.full();
 *   // later, when it can: queued events go to onEvent at once, in order,
 *   // until it says full() again or the queue is empty
 *   control.room();
 *
 * While full, events queue (in order, never dropped). At the capacity of
 * the one bounded queue (executorWsDefaults().queueCapacity) the socket is
 * paused: the native client stops reading; an injected socket with
 * `pause()`/`resume()` (the `ws` package's) is paused and resumed once the
 * queue has drained to half; an injected socket without them (a WHATWG
 * WebSocket cannot pause) keeps delivering into the queue, and the stream
 * logs `executor-ws:backpressure-unavailable` once. Without the hook the
 * consumer always has room: each event reaches onEvent as it arrives.
 */
const FLOW = Symbol.for('@aiwg/mc-native/executor-ws:flow');

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

/** An ExecutorWsEvent `Log`: the meta with the caller's executorId (added by `log`) and the delay as a number. */
function logLine(log, event) {
  const { executorId: _native, ...meta } = JSON.parse(event.meta);
  if (event.delay !== undefined) meta.delay = event.delay;
  log(event.msg, meta);
}

/** An ExecutorWsEvent `State`: onState's name and meta. */
function stateLine(state, event) {
  if (event.name === 'opened') return state('opened', { url: event.url });
  if (event.name === 'closed') return state('closed', { code: event.code });
  return state(event.name);
}

/**
 * Follow one executor's event stream, reconnecting with capped backoff.
 * Returns `{stop, ready}` at once; `ready` resolves on the first open and
 * rejects (handled, never unhandled) if stopped before it.
 */
function startExecutorWS(opts) {
  check.present('opts', opts);
  const { aiwgServeUrl, executorId, token, onEvent, signal, WebSocketImpl } = opts;
  const reconnectBaseMs = opts.reconnectBaseMs ?? DEFAULTS.reconnectBaseMs;
  const reconnectMaxMs = opts.reconnectMaxMs ?? DEFAULTS.reconnectMaxMs;
  // The original calls these outside any try (in socket callbacks): a
  // non-function would crash the process there, so it is refused here.
  const onState = check.optionalFunction('opts.onState', opts.onState);
  const logger = check.optionalFunction('opts.logger', opts.logger);
  const flow = check.optionalFunction('opts[FLOW]', opts[FLOW]);
  if (signal && typeof signal.addEventListener !== 'function') throw check.invalidArg('opts.signal', 'an AbortSignal', signal);
  const url = buildWsUrl(check.string('opts.aiwgServeUrl', aiwgServeUrl), executorId, token);
  const options = { url, executorId, reconnectBaseMs, reconnectMaxMs };

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

  const hooks = { onEvent, state, log, markOpened, flow };
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
 * The consumer's `{full, room}` for the FLOW hook over a driver's queue:
 * `take()` says whether the head goes to onEvent now (and does what else
 * the Rust side says). A room() from inside onEvent during a drain just
 * lets the running drain go on, so events stay in order.
 */
function flowControl(core, take) {
  let draining = false;
  return {
    full: () => core.full(),
    room() {
      core.room();
      if (draining) return;
      draining = true;
      try {
        while (take());
      } finally {
        draining = false;
      }
    },
  };
}

/**
 * The Rust client; frames, states and log lines come through one ordered
 * sink (ExecutorWsEvent). Log metas are rebuilt with the caller's executorId.
 * Each frame is in flight until `arrived()`; the Rust side stops reading
 * while too many are in flight or the queue has paused it.
 */
function nativeDriver(options, { onEvent, state, log, markOpened, flow }) {
  let markStopped;
  const stopped = new Promise((r) => {
    markStopped = r;
  });
  const queue = [];
  let stream = null;
  const sink = (event) => {
    switch (event.kind) {
      case 'Event': {
        const parsed = JSON.parse(event.text);
        if (stream.arrived().kind === 'Deliver') return deliver(onEvent, parsed, log);
        queue.push(parsed);
        return undefined;
      }
      case 'State':
        return stateLine(state, event);
      case 'Ready':
        return markOpened();
      case 'Log':
        return logLine(log, event);
      default: // Stopped, or Error: the stream is over either way
        queue.length = 0;
        return markStopped();
    }
  };
  stream = native.startExecutorWs(
    options.url,
    String(options.executorId),
    Number(options.reconnectBaseMs),
    Number(options.reconnectMaxMs),
    Boolean(log.active),
    sink,
  );
  if (flow) {
    flow(
      flowControl(stream, () => {
        if (!stream.take()) return false;
        deliver(onEvent, queue.shift(), log);
        return true;
      }),
    );
  }
  return {
    stop() {
      stream.cancel();
      return stopped;
    },
  };
}

/**
 * A caller's browser-style WebSocket class. The listeners are here (the
 * socket is JS's, and its timings are the original's); every decision is
 * ExecutorWsInjected's (executor_ws/injected.rs), carried out by `run`.
 */
function jsDriver(options, WebSocketImpl, { onEvent, state, log, markOpened, flow }) {
  const { url } = options;
  const machine = new native.ExecutorWsInjected(url, Number(options.reconnectBaseMs), Number(options.reconnectMaxMs));
  const queue = [];
  let socket = null;
  let timer = null;

  /** Carry out `steps` in order; `event` is the frame's event, if any. */
  const run = (steps, event, current = socket) => {
    for (const step of steps) {
      switch (step.kind) {
        case 'State':
          stateLine(state, step);
          break;
        case 'Log':
          logLine(log, step);
          break;
        case 'Ready':
          markOpened();
          break;
        case 'Reconnect':
          timer = setTimeout(connect, step.delay);
          break;
        case 'Close':
          if (current) {
            try {
              current.close(step.code, step.reason);
            } catch {
              // a socket that cannot close is gone already
            }
          }
          break;
        case 'Deliver':
          deliver(onEvent, event, log);
          break;
        case 'Queue':
          queue.push(event);
          break;
        case 'Pause':
        case 'Resume':
          if (current) {
            try {
              if (step.kind === 'Pause') current.pause();
              else current.resume();
            } catch {
              // a closed socket reads nothing anyway
            }
          }
          break;
        default:
          break;
      }
    }
  };

  function connect() {
    timer = null;
    if (!machine.mayConnect) return;
    let current;
    try {
      current = new WebSocketImpl(url);
    } catch (err) {
      run(machine.constructFailed(errorMessage(err)));
      return;
    }
    socket = current;
    current.addEventListener('open', () => {
      const canPause = typeof current.pause === 'function' && typeof current.resume === 'function';
      run(machine.opened(canPause), undefined, current);
    });
    current.addEventListener('message', (message) => {
      const data = message && message.data;
      if (typeof data !== 'string') return run(machine.frame('binary'));
      let event;
      try {
        event = JSON.parse(data);
      } catch (err) {
        return run(machine.frame('invalid', String(err.message)));
      }
      const kind = event && typeof event === 'object' && !Array.isArray(event) ? 'object' : 'notobject';
      return run(machine.frame(kind), event, current);
    });
    current.addEventListener('close', (closeEvent) => {
      const code = closeEvent && closeEvent.code;
      if (socket === current) socket = null;
      run(machine.closed(typeof code === 'number' ? code : undefined), undefined, current);
    });
    current.addEventListener('error', () => run(machine.error(), undefined, current));
  }
  if (flow) {
    flow(
      flowControl(machine, () => {
        const steps = machine.take();
        if (!steps) return false;
        run(steps, queue.shift());
        return true;
      }),
    );
  }
  connect();
  return {
    stop() {
      if (timer) clearTimeout(timer);
      timer = null;
      run(machine.stop());
      queue.length = 0;
      return Promise.resolve();
    },
  };
}

module.exports = { buildWsUrl, reconnectDelay, eventToStatusUpdate, startExecutorWS };
