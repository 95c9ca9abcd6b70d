// Issue 14: faults the disk throws. The watch dir sits on a small tmpfs of
// its own (Linux, as root: CI runs so; skipped with the reason elsewhere).
// Outcomes serve accepted while the disk was full are kept and written once
// space returns, with no second POST, and the failure is logged once per
// file, not per try. The same for a read-only remount, for a session
// directory a bridge run as `nobody` (setpriv) may not write, and for a
// session.json made immutable (`chattr +i`), whose `chattr -i` makes no
// file-system event: the bridge's own retries must find it writable.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startQueueTailer } from '../esm/queue-tailer.mjs';
import { startScriptedServe } from './helpers/scripted-serve.mjs';
import { scope, waitFor } from './helpers/waiting.mjs';
import { reportFault, sessionReads } from './helpers/fault-report.mjs';

/**
 * A fresh tmpfs of `size` on a temp dir, unmounted after the test (the
 * suite's SKIP has checked for Linux and root); → `{dir}`, or `{skip}`
 * with the reason the mount failed.
 */
function smallTmpfs(s, size) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-disk-faults-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (mounted.status !== 0) {
    fs.rmdirSync(dir);
    return { skip: `mount -t tmpfs failed: ${(mounted.stderr || mounted.error || '').toString().trim()}` };
  }
  s.defer(() => {
    spawnSync('umount', ['-l', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { dir };
}

/** A scripted serve (see scripted-serve.mjs) for this test, closed after it. */
async function serveFor(s, script) {
  const serve = await startScriptedServe(script);
  s.defer(() => serve.close());
  return serve;
}

/**
 * A bridge in this process on `root`, dispatching to `serve`, stopped after
 * the test; → `{starting, logs}`: its start (the initial sweep) and every
 * log line as `{msg, meta}`.
 */
function bridgeFor(s, root, serve) {
  const logs = [];
  const starting = startQueueTailer({
    aiwgServeUrl: serve.url,
    watchDir: root,
    disableWSSubscription: true,
    logger: (msg, meta) => logs.push({ msg, meta }),
  });
  s.defer(async () => (await starting).stop());
  return { starting, logs };
}

/** Fill the file system under `dir` with one file; → its path. */
function fill(dir) {
  const filler = path.join(dir, 'filler');
  const fd = fs.openSync(filler, 'w');
  try {
    // Big writes first, then what is left a page at a time.
    for (const size of [64 * 1024, 4096]) {
      const chunk = Buffer.alloc(size, 1);
      try {
        while (fs.writeSync(fd, chunk) > 0);
      } catch (err) {
        if (err.code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

/** `sessions` session files of `per` queued missions under `root`; → their paths. */
function writeSessions(root, tag, sessions, per) {
  const files = [];
  for (let i = 0; i < sessions; i++) {
    const file = path.join(root, 'sessions', `mc-${tag}-${i}`, 'session.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const missions = Array.from({ length: per }, (_, k) => ({ id: `m-${tag}-${i}-${k}`, objective: 'o', status: 'queued' }));
    fs.writeFileSync(file, JSON.stringify({ id: `mc-${tag}-${i}`, missions }, null, 2));
    files.push(file);
  }
  return files;
}

/** Every mission status in `files`, in order (each file must parse). */
const statuses = (files) => files.flatMap((f) => JSON.parse(fs.readFileSync(f, 'utf8')).missions.map((m) => m.status));

/**
 * What a recovered run must show: one POST a mission, no temp file left,
 * `write-recovered` for every file of `files`; then the fault's report line
 * over `reads` (every session of the test).
 */
async function assertRecovered(t, { serve, logs, files, total, reads, recoverMs }) {
  // A line reaches the logger a moment after its write is on disk.
  const recoveredPaths = () => new Set(logs.filter((l) => l.msg === 'queue-tailer:write-recovered').map((l) => l.meta.path));
  await waitFor(() => recoveredPaths().size >= files.length, 5000, 'a write-recovered line for each session');
  const posted = serve.requests.map((r) => JSON.parse(r.body).mission_id);
  assert.equal(posted.length, total, 'a mission was POSTed twice');
  assert.equal(new Set(posted).size, total);
  const recovered = new Set(logs.filter((l) => l.msg === 'queue-tailer:write-recovered').map((l) => l.meta.path));
  assert.equal(recovered.size, files.length, 'write-recovered for each session');
  for (const file of files) {
    const left = fs.readdirSync(path.dirname(file)).filter((n) => n.endsWith('.tmp'));
    assert.deepEqual(left, [], `temp files left beside ${file}`);
  }
  assert.ok(!logs.some((l) => l.msg === 'queue-tailer:dispatch-error'), 'a failed write was dropped as a dispatch error');
  reportFault(t, { reads, posted, recoverMs });
}

/** The `write-failed` lines of `logs`: all of `code`, one per file. */
function assertFailedOnce(logs, code, files) {
  const failed = logs.filter((l) => l.msg === 'queue-tailer:write-failed');
  const perFile = new Map();
  for (const l of failed) {
    assert.equal(l.meta.code, code, JSON.stringify(l.meta));
    perFile.set(l.meta.path, (perFile.get(l.meta.path) || 0) + 1);
  }
  assert.equal(perFile.size, files.length, `a write-failed line for each session: ${JSON.stringify([...perFile])}`);
  assert.ok([...perFile.values()].every((n) => n === 1), `logged once per file, not per try: ${JSON.stringify([...perFile])}`);
}

/**
 * A directory for this test whose files can be made immutable (`chattr +i`
 * needs CAP_LINUX_IMMUTABLE and a file system with the flag: tmpfs has it
 * since Linux 6.0, ext4 always), removed after it; → `{dir, where}`, or
 * `{skip}` with the reasons.
 */
function immutableCapable(s) {
  const reasons = [];
  const tmpfs = smallTmpfs(s, '16m');
  const candidates = tmpfs.skip ? [] : [[tmpfs.dir, 'a tmpfs']];
  if (tmpfs.skip) reasons.push(tmpfs.skip);
  candidates.push([null, os.tmpdir()]);
  for (const [given, where] of candidates) {
    const dir = given || fs.mkdtempSync(path.join(os.tmpdir(), 'mc-immutable-'));
    const probe = path.join(dir, 'probe');
    fs.writeFileSync(probe, '');
    const set = spawnSync('chattr', ['+i', probe], { encoding: 'utf8' });
    if (set.error) {
      fs.rmSync(given ? probe : dir, { recursive: true, force: true });
      return { skip: `chattr cannot run: ${set.error.code}` };
    }
    spawnSync('chattr', ['-i', probe]);
    fs.rmSync(probe, { force: true });
    if (set.status === 0) {
      if (!given) s.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
      return { dir, where };
    }
    if (!given) fs.rmSync(dir, { recursive: true, force: true });
    reasons.push(`chattr +i on ${where} failed: ${set.stderr.trim()}`);
  }
  return { skip: reasons.join('; ') };
}

/** `chattr <flag> file`; throws with chattr's message if it fails. */
function chattr(flag, file) {
  const done = spawnSync('chattr', [flag, file], { encoding: 'utf8' });
  if (done.status !== 0) throw new Error(`chattr ${flag} ${file}: ${(done.stderr || done.error || '').toString().trim()}`);
}

/** Why these tests cannot run here, or undefined (tmpfs mounts, setpriv and chattr +i need Linux and root). */
const SKIP = process.platform !== 'linux' ? 'tmpfs mounts are Linux only' : process.getuid?.() !== 0 ? 'mounting a tmpfs needs root' : undefined;
const BRIDGE = path.join(path.dirname(new URL(import.meta.url).pathname), 'helpers', 'lifecycle-bridge.mjs');

describe('faults of the disk (issue 14)', { skip: SKIP }, () => {
  it('disk full: accepted outcomes wait, logged once per file, and land when space returns, with no second POST', async (t) => {
    const s = scope(t);
    const tmpfs = smallTmpfs(s, '4m');
    if (tmpfs.skip) return t.skip(tmpfs.skip);
    const root = path.join(tmpfs.dir, 'watch');
    const SESSIONS = 20;
    const PER = 5;
    const files = writeSessions(root, 'full', SESSIONS, PER);
    const reads = sessionReads(files);
    const filler = fill(tmpfs.dir);

    const serve = await serveFor(s, () => ({ status: 202, body: { executor_id: 'ex-full' } }));
    const { starting, logs } = bridgeFor(s, root, serve);
    await starting;

    const total = SESSIONS * PER;
    await waitFor(() => serve.requests.length >= total, 20_000, 'every mission POSTed');
    // Nothing could be written: every file still parses, every mission is still queued.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(reads.statuses(), Array(total).fill('queued'));
    assertFailedOnce(logs, 'ENOSPC', files);

    const freedAt = Date.now();
    fs.unlinkSync(filler);
    await waitFor(() => reads.statuses().every((st) => st === 'assigned'), 15_000, 'every outcome written once space returned');
    const recoverMs = Date.now() - freedAt;
    await assertRecovered(t, { serve, logs, files, total, reads, recoverMs });
  });

  it('read-only remount while dispatches are in flight: allowed; outcomes land once it is writable again', async (t) => {
    const s = scope(t);
    const ro = smallTmpfs(s, '4m');
    if (ro.skip) return t.skip(ro.skip);
    const root = path.join(ro.dir, 'watch');
    const SESSIONS = 10;
    const PER = 5;
    const files = writeSessions(root, 'ro', SESSIONS, PER);
    const reads = sessionReads(files);
    const total = SESSIONS * PER;
    let open;
    const gate = new Promise((r) => (open = r));
    const serve = await serveFor(s, async () => {
      await gate;
      return { status: 202, body: { executor_id: 'ex-ro' } };
    });
    const { starting, logs } = bridgeFor(s, root, serve);
    await waitFor(() => serve.requests.length >= 1, 10_000, 'a dispatch in flight');
    const remount = (mode) => spawnSync('mount', ['-o', `remount,${mode}`, ro.dir], { encoding: 'utf8' });
    const toRo = remount('ro');
    assert.equal(toRo.status, 0, `remount,ro refused while dispatching: ${toRo.stderr}`);
    open();
    await starting;
    await waitFor(() => serve.requests.length >= total, 20_000, 'every mission POSTed');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(reads.statuses(), Array(total).fill('queued'));
    assertFailedOnce(logs, 'EROFS', files);

    const writableAt = Date.now();
    const toRw = remount('rw');
    assert.equal(toRw.status, 0, toRw.stderr);
    await waitFor(() => reads.statuses().every((st) => st === 'assigned'), 15_000, 'every outcome written once writable');
    const recoverMs = Date.now() - writableAt;
    await assertRecovered(t, { serve, logs, files, total, reads, recoverMs });
  });

  it('permission denied: a session the bridge may not write waits and is reported once; the others go on; it lands once writable', async (t) => {
    if (!fs.existsSync('/usr/bin/setpriv')) return t.skip('needs setpriv to drop privileges');
    const s = scope(t);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-eacces-'));
    s.defer(() => fs.rmSync(root, { recursive: true, force: true }));
    const NOBODY = 65534;
    const files = writeSessions(root, 'perm', 5, 2);
    // Everything the bridge's user owns, but one session directory (root's, 0755).
    const blocked = files[2];
    for (const p of [root, path.join(root, 'sessions'), ...files.flatMap((f) => [path.dirname(f), f])]) {
      if (path.dirname(blocked) !== p && blocked !== p) fs.chownSync(p, NOBODY, NOBODY);
    }
    fs.chmodSync(root, 0o755);
    const serve = await serveFor(s, () => ({ status: 202, body: { executor_id: 'ex-perm' } }));
    const child = spawn('/usr/bin/setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', process.execPath, BRIDGE], {
      env: { ...process.env, LIFECYCLE_BRIDGE_OPTIONS: JSON.stringify({ aiwgServeUrl: serve.url, watchDir: root, disableWSSubscription: true }) },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    const logs = [];
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('message', (m) => m && m.type === 'log' && logs.push({ msg: m.msg, meta: m.meta }));
    const exited = new Promise((r) => child.on('exit', r));
    s.defer(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    });
    const reads = sessionReads(files);
    const status = (f) => reads.statusesOf(f);
    const others = files.filter((f) => f !== blocked);
    await waitFor(() => others.every((f) => status(f).every((st) => st === 'assigned')), 20_000, `the writable sessions assigned (${stderr})`);
    await waitFor(() => serve.requests.length >= files.length * 2, 10_000, 'every mission POSTed');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(status(blocked), ['queued', 'queued'], 'the blocked session was written');
    const failed = logs.filter((l) => l.msg === 'queue-tailer:write-failed');
    assert.deepEqual(failed.map((l) => [l.meta.path, l.meta.code]), [[blocked, 'EACCES']], 'reported once, for that session only');

    const writableAt = Date.now();
    fs.chownSync(path.dirname(blocked), NOBODY, NOBODY);
    await waitFor(() => reads.statuses().every((st) => st === 'assigned'), 10_000, 'every session once the blocked one is writable');
    const recoverMs = Date.now() - writableAt;
    await assertRecovered(t, { serve, logs, files: [blocked], total: files.length * 2, reads, recoverMs });
  });

  it('immutable session.json (chattr +i): that session waits, reported once as EPERM, the others go on; after chattr -i (no file event) it lands by retrying, with no second POST', async (t) => {
    const s = scope(t);
    const place = immutableCapable(s);
    if (place.skip) return t.skip(place.skip);
    const root = path.join(place.dir, 'watch');
    const SESSIONS = 6;
    const PER = 5;
    const total = SESSIONS * PER;
    const files = writeSessions(root, 'immutable', SESSIONS, PER);
    const blocked = files[2];
    const others = files.filter((f) => f !== blocked);
    // The bridge replaces session.json by a temp file renamed over it (or
    // exchanged with it): neither may touch an immutable file.
    chattr('+i', blocked);
    let immutable = true;
    try {
      // Every session.json parses at every moment, read as often as we can.
      const reads = sessionReads(files);
      const reader = setInterval(() => reads.missions(), 5);
      s.defer(() => clearInterval(reader));

      const serve = await serveFor(s, () => ({ status: 202, body: { executor_id: 'ex-immutable' } }));
      const { starting, logs } = bridgeFor(s, root, serve);
      await starting;
      await waitFor(() => others.every((f) => statuses([f]).every((st) => st === 'assigned')), 20_000, 'the other sessions assigned');
      await waitFor(() => serve.requests.length >= total, 10_000, 'every mission POSTed');
      const failedLines = () => logs.filter((l) => l.msg === 'queue-tailer:write-failed');
      await waitFor(() => failedLines().length > 0, 5000, 'a write-failed line');
      const failedAt = Date.now();
      // Several tries fail meanwhile (50 ms doubling): still one line.
      await new Promise((r) => setTimeout(r, 1500));
      assert.deepEqual(statuses([blocked]), Array(PER).fill('queued'), 'the immutable session was written');
      assert.deepEqual(failedLines().map((l) => [l.meta.path, l.meta.code]), [[blocked, 'EPERM']], 'reported once, for that session only');
      // A failed try leaves no temp file behind (one may exist during a try).
      await waitFor(() => !fs.readdirSync(path.dirname(blocked)).some((n) => n.endsWith('.tmp')), 5000, 'no temp file beside the immutable session between tries');

      // chattr -i changes no data, name or mode: inotify says nothing.
      const freedAt = Date.now();
      chattr('-i', blocked);
      immutable = false;
      await waitFor(() => statuses([blocked]).every((st) => st === 'assigned'), 10_000, 'the immutable session written after chattr -i');
      const recoverMs = Date.now() - freedAt;
      clearInterval(reader);
      assert.deepEqual(statuses(files), Array(total).fill('assigned'));
      const recovered = logs.find((l) => l.msg === 'queue-tailer:write-recovered').meta;
      t.diagnostic(`on ${place.where}: immutable ${freedAt - failedAt} ms after the first failure; landed after chattr -i in ${recovered.failedAttempts} failed tries`);
      await assertRecovered(t, { serve, logs, files: [blocked], total, reads, recoverMs });
    } finally {
      if (immutable) spawnSync('chattr', ['-i', blocked]);
    }
  });
  it('stopped while a session is immutable: its accepted outcomes are saved beside it and the next bridge writes them, with no second POST', async (t) => {
    const s = scope(t);
    const place = immutableCapable(s);
    if (place.skip) return t.skip(place.skip);
    const root = path.join(place.dir, 'watch-stop');
    const PER = 4;
    const [blocked] = writeSessions(root, 'owed', 1, PER);
    const owedFile = path.join(path.dirname(blocked), '.session.json.pending');
    chattr('+i', blocked);
    let immutable = true;
    try {
      const serve = await serveFor(s, () => ({ status: 202, body: { executor_id: 'ex-owed' } }));
      const firstLogs = [];
      const first = await startQueueTailer({
        aiwgServeUrl: serve.url,
        watchDir: root,
        disableWSSubscription: true,
        logger: (msg, meta) => firstLogs.push({ msg, meta }),
      });
      await waitFor(() => serve.requests.length >= PER, 10_000, 'every mission POSTed');
      // The outcomes are accepted and cannot be written: the stop saves them.
      await new Promise((r) => setTimeout(r, 200));
      const stopped = Date.now();
      await first.stop();
      const stopMs = Date.now() - stopped;
      assert.deepEqual(statuses([blocked]), Array(PER).fill('queued'), 'the immutable file was written');
      const owed = fs.readFileSync(owedFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(owed.map((o) => [o.update.missionId, o.update.status, o.before.status]).sort(), Array.from({ length: PER }, (_, k) => [`m-owed-0-${k}`, 'assigned', 'queued']));
      const saved = firstLogs.filter((l) => l.msg === 'queue-tailer:pending-saved');
      assert.ok(saved.length > 0 && saved.every((l) => l.meta.path === blocked && l.meta.file === owedFile), JSON.stringify(saved));
      assert.equal(saved.reduce((n, l) => n + l.meta.updates, 0), PER);
      assert.ok(!firstLogs.some((l) => l.msg === 'queue-tailer:pending-lost' || l.msg === 'queue-tailer:dispatch-error'), 'a saved outcome reported as lost');
      assert.equal(firstLogs.filter((l) => l.msg === 'queue-tailer:dispatched').length, PER);

      chattr('-i', blocked);
      immutable = false;
      const logs = [];
      const restartedAt = Date.now();
      const second = await startQueueTailer({
        aiwgServeUrl: serve.url,
        watchDir: root,
        disableWSSubscription: true,
        logger: (msg, meta) => logs.push({ msg, meta }),
      });
      s.defer(() => second.stop());
      await waitFor(() => statuses([blocked]).every((st) => st === 'assigned'), 10_000, 'the saved outcomes written by the next bridge');
      await waitFor(() => !fs.existsSync(owedFile), 5000, 'the saved outcomes forgotten once written');
      assert.equal(serve.requests.length, PER, 'a saved outcome was dispatched again');
      const loaded = logs.filter((l) => l.msg === 'queue-tailer:pending-loaded');
      assert.deepEqual(loaded.map((l) => [l.meta.path, l.meta.updates]), [[blocked, PER]]);
      const session = JSON.parse(fs.readFileSync(blocked, 'utf8'));
      assert.ok(session.missions.every((m) => m.executorId === 'ex-owed'), JSON.stringify(session.missions));
      assert.deepEqual(fs.readdirSync(path.dirname(blocked)).filter((n) => n.endsWith('.tmp')), []);
      const posted = serve.requests.map((r) => JSON.parse(r.body).mission_id);
      reportFault(t, { reads: sessionReads([blocked]), posted, recoverMs: Date.now() - restartedAt, note: `${PER} saved at stop (the stop took ${stopMs} ms), all written by the next bridge` });
    } finally {
      if (immutable) spawnSync('chattr', ['-i', blocked]);
    }
  });
});
