'use strict';
// What every subcommand shares: argument parsing that fails in one line,
// the two kinds of failure and their exit codes, colour that is on only
// for a terminal, log lines and tables, and stopping on SIGINT/SIGTERM.

const fs = require('node:fs');
const util = require('node:util');

/** Exit codes of `mc-native` (README and --help list them). */
const EXIT = Object.freeze({ OK: 0, FAILURE: 1, USAGE: 2, INTERRUPTED: 130 });

/** Where `aiwg mc` keeps its queue, relative to the project. */
const DEFAULT_WATCH_DIR = '.aiwg/ralph-external/mc';

/** The command line was wrong: exit 2. */
class UsageError extends Error {}

/** Something the command needs is wrong or missing: exit 1, with an optional hint. */
class CliError extends Error {
  constructor(message, hint) {
    super(message);
    this.hint = hint;
  }
}

/**
 * `parseArgs` for a subcommand; its errors become one-line UsageErrors
 * (Node's own messages carry a paragraph of advice).
 */
function parse(args, options, { positionals = false } = {}) {
  try {
    return util.parseArgs({ args, options, allowPositionals: positionals, strict: true });
  } catch (err) {
    if (!String(err.code).startsWith('ERR_PARSE_ARGS')) throw err;
    const first = err.message.split('. ')[0].replace(/\.$/, '');
    throw new UsageError(first.charAt(0).toLowerCase() + first.slice(1));
  }
}

/** A whole-number flag value, at least `min`; anything else is a UsageError. */
function wholeNumber(flag, text, min) {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${flag} must be a whole number of at least ${min} (got ${JSON.stringify(text)})`);
  }
  return n;
}

/** An http:// or https:// URL; anything else is a UsageError. */
function httpUrl(flag, text) {
  const url = URL.canParse(text) ? new URL(text) : null;
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new UsageError(`--${flag} must be an http:// or https:// URL (got ${JSON.stringify(text)})`);
  }
  return text;
}

/** `dir` if it is a directory; else a CliError naming `what` it is, with `hint`. */
function existingDirectory(dir, what, hint) {
  let stat;
  try {
    stat = fs.statSync(dir);
  } catch (err) {
    if (err.code === 'ENOENT') throw new CliError(`${what} not found: ${dir}`, hint);
    throw new CliError(`cannot read ${what} ${dir}: ${err.code || err.message}`);
  }
  if (!stat.isDirectory()) throw new CliError(`${what} is not a directory: ${dir}`);
  return dir;
}

/**
 * Whether to colour what goes to `stream`: FORCE_COLOR decides when set
 * (`0` or `false` is off), else a terminal that has colours (which honours
 * NO_COLOR and TERM=dumb). Never when util.styleText is missing (Node < 20.12).
 */
function colorEnabled(stream, env = process.env) {
  if (typeof util.styleText !== 'function') return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  if (!stream || !stream.isTTY) return false;
  return typeof stream.hasColors === 'function' ? stream.hasColors() : true;
}

/** `paint(format, text)` for `stream`: util.styleText when colour is on, `text` as is when not. */
function painter(stream) {
  if (!colorEnabled(stream)) return (_format, text) => String(text);
  return (format, text) => util.styleText(format, String(text), { validateStream: false });
}

/** The colour a mission status is shown in. */
const STATUS_STYLE = {
  queued: 'gray',
  assigned: 'blue',
  running: 'cyan',
  hitl_required: 'magenta',
  suspended: 'yellow',
  paused: 'yellow',
  done: 'green',
  failed: 'red',
  aborted: 'red',
};

/** The order statuses are listed in: the lifecycle's. */
const STATUS_ORDER = Object.keys(STATUS_STYLE);

const LEVEL_STYLE = { error: 'red', warn: 'yellow', info: 'bold', debug: 'gray' };

/**
 * How much a log line of the library matters; debug lines show with
 * --verbose only. (The dispatch client's `terminal` and `exhausted` are
 * debug: the tailer's `dispatch-failed` or `dispatch-deferred` follows.)
 */
function levelOf(msg) {
  if (/:(dispatch-error|tick-error|write-failed|pending-lost|construct-failed|handler-error)$/.test(msg)) return 'error';
  if (/:(dispatch-failed|dispatch-deferred|session-unreadable|watch-degraded|watch-overflow|descriptors-exhausted|pending-saved|journal-failed|executor-lease-unavailable|presence-unavailable|skip-invalid-mission|event-unmapped-mission|bad-message)$/.test(msg)) {
    return 'warn';
  }
  if (/^queue-tailer:(start|stop|would-dispatch|dispatched|event-applied|write-recovered|descriptors-recovered|pending-loaded|journal-recovered|executor-lease-waiting|executor-lease-taken|peer-bridges)$/.test(msg)) return 'info';
  return 'debug';
}

/** `HH:MM:SS.mmm`, local time. */
function clock(date) {
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}.${p(date.getMilliseconds(), 3)}`;
}

/** A meta value as it reads on one line: strings bare unless they hold spaces. */
function showValue(value) {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * One log line for a person: time, level-coloured message, `key=value`
 * pairs; a status value takes its status colour.
 */
function humanLogLine(paint, level, msg, meta, date = new Date()) {
  const pairs = Object.entries(meta && typeof meta === 'object' ? meta : {}).map(([key, value]) => {
    const shown = showValue(value);
    const style = /status$/i.test(key) && STATUS_STYLE[value] ? STATUS_STYLE[value] : null;
    return `${paint('dim', `${key}=`)}${style ? paint(style, shown) : shown}`;
  });
  const tag = level === 'warn' || level === 'error' ? [paint(['bold', LEVEL_STYLE[level]], level)] : [];
  return [paint('dim', clock(date)), ...tag, paint(LEVEL_STYLE[level], msg), ...pairs].join(' ');
}

/** One log line for a program: `{ts, level, msg, meta}` as one JSON object. */
function jsonLogLine(level, msg, meta, date = new Date()) {
  return JSON.stringify({ ts: date.toISOString(), level, msg, meta: meta ?? {} });
}

/** Visible width of a string that may hold ANSI styles. */
const width = (text) => util.stripVTControlCharacters(text).length;

/**
 * Rows of cells as aligned columns (two spaces apart). Cells may be
 * painted already; their width is measured without the styles. The last
 * column is not padded.
 */
function columns(rows, indent = '') {
  const widths = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] || 0, width(cell))));
  return rows.map((row) =>
    indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat(widths[i] - width(cell)))).join('  '),
  );
}

/** `text` cut to `max` characters with `…` when longer. */
function truncate(text, max) {
  const s = String(text ?? '');
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/**
 * Stop on SIGINT or SIGTERM: the first calls `onStop(signal)`; a second one
 * exits at once with 130. Returns a function that removes the handlers.
 */
function onStopSignals(onStop, stderr = process.stderr) {
  let stopping = false;
  const handler = (signal) => {
    if (stopping) {
      stderr.write(`mc-native: ${signal} again, exiting without waiting\n`);
      process.exit(EXIT.INTERRUPTED);
    }
    stopping = true;
    onStop(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

module.exports = {
  EXIT,
  DEFAULT_WATCH_DIR,
  UsageError,
  CliError,
  parse,
  wholeNumber,
  httpUrl,
  existingDirectory,
  colorEnabled,
  painter,
  STATUS_STYLE,
  STATUS_ORDER,
  levelOf,
  clock,
  humanLogLine,
  jsonLogLine,
  columns,
  truncate,
  onStopSignals,
};
