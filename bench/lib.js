'use strict';
// Helpers shared by the bench scenarios: child processes that start
// together and report back, percentiles, temp dirs and a plain text table.

const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** The package under test, as its users load it. */
const PACKAGE = path.join(__dirname, '..');

/** Nanoseconds (bigint, as from process.hrtime.bigint()) → milliseconds. */
const nsToMs = (ns) => Number(ns) / 1e6;

/** The p-th percentile (0–100, nearest rank) of an ascending array. */
function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** {n, p50, p99, max} of a list of numbers. */
function summarize(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
  };
}

/** A positive whole number from a command-line string, or a thrown error. */
function positiveInt(name, text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${text}`);
  return n;
}

/** "1,2,4" → [1, 2, 4]. */
function intList(name, text) {
  return String(text).split(',').map((part) => positiveInt(name, part.trim()));
}

const FS_TYPES = { 0xef53: 'ext4', 0x01021994: 'tmpfs', 0x9123683e: 'btrfs', 0x58465342: 'xfs', 0x794c7630: 'overlayfs' };

/** `dir (ext4)`: where temp files go decides the file-system-bound figures. */
function dirLabel(dir) {
  try {
    const { type } = fs.statfsSync(dir);
    return `${dir} (${FS_TYPES[type] || `fs 0x${type.toString(16)}`})`;
  } catch {
    return dir;
  }
}

/**
 * Where to run file-system-bound scenarios: os.tmpdir() and, on Linux, also
 * /dev/shm (tmpfs) when it is another file system, so the figures separate
 * the disk's latency from the code's.
 */
function tempBases() {
  const bases = [os.tmpdir()];
  try {
    if (fs.statfsSync('/dev/shm').type !== fs.statfsSync(os.tmpdir()).type) bases.push('/dev/shm');
  } catch {
    // no /dev/shm here
  }
  return bases;
}

/** Run `fn(dir)` with a fresh directory under `base` (os.tmpdir()), removed afterwards. */
async function withTempDir(prefix, fn, base = os.tmpdir()) {
  const dir = fs.mkdtempSync(path.join(base, `mc-bench-${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Fork `n` copies of `script` (a module that calls `serveChild`), wait until
 * all are loaded and ready, send them 'go' together with `argsFor(i)`, and
 * resolve with their results in index order once every child has exited.
 * Rejects (and kills every child still running) if one fails, exits early or
 * the whole run exceeds `timeoutMs`. Messages use the 'advanced'
 * serialization, so bigints pass. Children exit only when told (by
 * disconnecting), so no exit can overtake its last message. `env` is the
 * children's environment (this process's by default).
 */
function forkAndCollect(script, n, argsFor, { timeoutMs, env = process.env }) {
  return new Promise((resolve, reject) => {
    const children = [];
    const results = new Array(n);
    let ready = 0;
    let done = 0;
    let exited = 0;
    let settled = false;
    const finish = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!err) return resolve(results);
      // Kill what still runs and reject once it is gone, so no child writes
      // into a temp dir the caller is about to remove.
      const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
      let left = running.length;
      if (left === 0) return reject(err);
      for (const child of running) {
        child.once('exit', () => --left === 0 && reject(err));
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(
      () => finish(new Error(`timed out after ${timeoutMs} ms (${ready}/${n} ready, ${done}/${n} done)`)),
      timeoutMs,
    );
    for (let i = 0; i < n; i++) {
      const child = fork(script, [], { env, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      const who = `child ${i} (pid ${child.pid})`;
      child.on('message', (msg) => {
        if (msg.type === 'ready' && ++ready === n) {
          children.forEach((c, j) => c.send({ type: 'go', args: argsFor(j) }));
        } else if (msg.type === 'done') {
          results[i] = msg.result;
          if (++done === n) for (const c of children) c.disconnect();
        } else if (msg.type === 'error') {
          finish(new Error(`${who} failed: ${msg.stack}`));
        }
      });
      child.on('error', (err) => finish(new Error(`${who}: ${err.message}`)));
      child.on('exit', (code, signal) => {
        if (code !== 0 || results[i] === undefined) {
          finish(new Error(`${who} exited (${signal || `code ${code}`}) without a result`));
        } else if (++exited === n) {
          finish(null);
        }
      });
    }
  });
}

/**
 * The child side of forkAndCollect: run `setup()` (not timed), say 'ready',
 * wait for 'go', run `work(args, setupValue)`, send back its result (or the
 * error) and exit when the parent disconnects.
 */
function serveChild(work, setup = () => undefined) {
  process.on('disconnect', () => process.exit(0));
  const fail = (err) => process.send({ type: 'error', stack: String((err && err.stack) || err) });
  let context;
  process.on('message', (msg) => {
    if (msg.type !== 'go') return;
    Promise.resolve()
      .then(() => work(msg.args, context))
      .then((result) => process.send({ type: 'done', result }), fail);
  });
  try {
    context = setup();
    process.send({ type: 'ready' });
  } catch (err) {
    fail(err);
  }
}

/** Sleep `ms` without spinning and without yielding to the event loop. */
function blockFor(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Format a number for the table: 3 significant-ish digits. */
function fmt(value) {
  if (typeof value !== 'number') return String(value ?? '');
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  return value.toFixed(abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3);
}

/** Print `rows` (objects with the same keys) as an aligned text table. */
function printTable(title, rows, out = process.stdout) {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cells = rows.map((row) => columns.map((c) => fmt(row[c])));
  const widths = columns.map((c, j) => Math.max(c.length, ...cells.map((r) => r[j].length)));
  const line = (values) => values.map((v, j) => (j === 0 ? v.padEnd(widths[j]) : v.padStart(widths[j]))).join('  ');
  out.write(`\n${title}\n${line(columns)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const r of cells) out.write(`${line(r)}\n`);
}

/** A target column cell: "ok (< 5 ms)" or "MISS (< 5 ms)". */
const target = (ok, text) => `${ok ? 'ok' : 'MISS'} (${text})`;

module.exports = {
  PACKAGE,
  nsToMs,
  percentile,
  summarize,
  positiveInt,
  intList,
  withTempDir,
  dirLabel,
  tempBases,
  forkAndCollect,
  serveChild,
  blockFor,
  printTable,
  fmt,
  target,
};
