'use strict';
// `mc-native bridge`: the queue tailer (`startQueueTailer`) run from the
// terminal, as `aiwg mc bridge` runs it, until SIGINT or SIGTERM.

const fs = require('node:fs');
const out = require('./output.js');

/** Executor tokens from the environment: `ID=TOKEN` pairs, separated by commas or whitespace. */
const TOKENS_ENV = 'MC_NATIVE_EXECUTOR_TOKENS';

const DEFAULT_SERVE = 'http://127.0.0.1:7337';
/** How long a stop may take: the tailer's 5 s drain, and a little for the streams. */
const STOP_LIMIT_MS = 6000;

const OPTIONS = {
  'aiwg-serve': { type: 'string', default: DEFAULT_SERVE },
  watch: { type: 'string', default: out.DEFAULT_WATCH_DIR },
  'poll-interval-ms': { type: 'string' },
  'retry-base-ms': { type: 'string' },
  'max-attempts': { type: 'string' },
  'max-inflight': { type: 'string' },
  'request-timeout-ms': { type: 'string' },
  'subscribe-executors': { type: 'string', multiple: true },
  'executor-token': { type: 'string', multiple: true },
  'executor-token-file': { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  verbose: { type: 'boolean', short: 'v', default: false },
  help: { type: 'boolean', short: 'h', default: false },
};

const HELP = `Usage: mc-native bridge [options]

Watch the mission queue and dispatch each queued mission to aiwg serve,
then follow its executor's events and record every status change in the
session file (queued → assigned → running → done), until stopped.

Options:
  --aiwg-serve URL            where aiwg serve listens (default ${DEFAULT_SERVE})
  --watch DIR                 the queue: DIR/sessions/<id>/session.json
                              (default ${out.DEFAULT_WATCH_DIR})
  --poll-interval-ms N        the polling fallback's interval (default 1000)
  --retry-base-ms N           first retry delay of a dispatch, doubled per attempt (default 500)
  --max-attempts N            attempts per dispatch (default 5)
  --max-inflight N            dispatches at a time (default 8)
  --request-timeout-ms N      per dispatch request (default 30000)
  --subscribe-executors A,B   follow these executors' events from the start
  --executor-token-file FILE  executor tokens, one ID=TOKEN a line (# comments);
                              refused unless only its owner may read it (chmod 600)
  --executor-token ID=TOKEN   the token for executor ID's event stream (repeatable;
                              shows in the process list: prefer the file or
                              ${TOKENS_ENV}="ID=TOKEN,...")
  --dry-run                   log what would be dispatched, send nothing
  --json                      one JSON object per log line: {ts, level, msg, meta}
  -v, --verbose               also the debug lines (retries, event streams)
  -h, --help                  show this help

Ctrl-C (SIGINT) or SIGTERM stops it: dispatches in flight get up to 5 s to
be answered, then it exits 0. A second Ctrl-C exits at once (130).

Exit codes: 0 stopped cleanly, 1 runtime failure (e.g. the watch directory
does not exist), 2 usage error (unknown flag, bad value, bad URL).
`;

/**
 * Every `ID=TOKEN` of `pairs` into `tokens`; `from` names where they came
 * from in an error, which never echoes a value (it may be a secret).
 */
function addTokens(tokens, pairs, from) {
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0 || at === pair.length - 1) throw new out.UsageError(`${from} must look like ID=TOKEN`);
    tokens[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return tokens;
}

/** The lines of the token file `file` (blank lines and `#` comments left out), checked as ssh checks a key. */
function tokenFileLines(file) {
  let stat;
  let text;
  try {
    stat = fs.statSync(file);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new out.CliError(`cannot read the executor token file ${file}: ${err.code || err.message}`);
  }
  // Mode bits mean nothing on Windows; elsewhere nobody but the owner may read or write it.
  if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
    throw new out.CliError(
      `the executor token file ${file} is open to others (mode ${mode}); tokens are secrets`,
      `chmod 600 ${file}`,
    );
  }
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/**
 * `executorTokens` from, lowest first: MC_NATIVE_EXECUTOR_TOKENS, the
 * token file, the --executor-token flags (a later one wins for an id).
 */
function executorTokens(values, env = process.env) {
  const tokens = {};
  const fromEnv = (env[TOKENS_ENV] || '').split(/[\s,]+/).filter(Boolean);
  addTokens(tokens, fromEnv, TOKENS_ENV);
  if (values['executor-token-file'] !== undefined) {
    addTokens(tokens, tokenFileLines(values['executor-token-file']), `--executor-token-file ${values['executor-token-file']}`);
  }
  return addTokens(tokens, values['executor-token'] || [], '--executor-token');
}

/** `startQueueTailer` options from the flags; numbers left out keep the library's defaults. */
function tailerOptions(values) {
  const n = (flag, min) => out.wholeNumber(flag, values[flag], min);
  const options = {
    aiwgServeUrl: out.httpUrl('aiwg-serve', values['aiwg-serve']),
    watchDir: values.watch,
    pollIntervalMs: n('poll-interval-ms', 1),
    retryBaseMs: n('retry-base-ms', 0),
    maxAttempts: n('max-attempts', 1),
    maxInflight: n('max-inflight', 1),
    requestTimeoutMs: n('request-timeout-ms', 1),
    dryRun: values['dry-run'],
    subscribeExecutors: (values['subscribe-executors'] || [])
      .flatMap((list) => list.split(','))
      .map((id) => id.trim())
      .filter(Boolean),
    executorTokens: executorTokens(values),
  };
  for (const key of Object.keys(options)) if (options[key] === undefined) delete options[key];
  return options;
}

/** The tailer's logger: a line per call on stdout, debug lines only with --verbose. */
function lineLogger({ json, verbose }) {
  const paint = out.painter(process.stdout);
  return (msg, meta) => {
    const level = out.levelOf(msg);
    if (level === 'debug' && !verbose) return;
    const line = json ? out.jsonLogLine(level, msg, meta) : out.humanLogLine(paint, level, msg, meta);
    process.stdout.write(`${line}\n`);
  };
}

/** `promise`, or a CliError once `ms` have gone by. */
function limited(promise, ms, message) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new out.CliError(message)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function run(args) {
  const { values } = out.parse(args, OPTIONS);
  if (values.help) {
    process.stdout.write(HELP);
    return out.EXIT.OK;
  }
  const options = tailerOptions(values);
  out.existingDirectory(options.watchDir, 'watch directory', 'create it, or pass --watch DIR pointing at the queue aiwg mc writes');

  const { startQueueTailer } = require('../js/queue-tailer.js');
  const stopRequested = new AbortController();
  const detachSignals = out.onStopSignals(() => stopRequested.abort());
  // The process lives while the bridge runs, whatever the tailer holds.
  const keepAlive = setInterval(() => {}, 1 << 30);
  try {
    const tailer = await startQueueTailer({ ...options, signal: stopRequested.signal, logger: lineLogger(values) });
    if (!stopRequested.signal.aborted) {
      await new Promise((resolve) => stopRequested.signal.addEventListener('abort', resolve, { once: true }));
    }
    await limited(tailer.stop(), STOP_LIMIT_MS, `the bridge did not stop within ${STOP_LIMIT_MS / 1000} s`);
    return out.EXIT.OK;
  } finally {
    clearInterval(keepAlive);
    detachSignals();
  }
}

module.exports = { summary: 'watch the queue, dispatch missions to aiwg serve, follow their executors', help: HELP, run };
