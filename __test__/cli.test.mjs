// The `mc-native` command as a person meets it: help, one-line errors and
// exit codes (0 ok, 1 runtime failure, 2 usage), `status` (once, --json,
// --follow) on a real queue directory, and `loops` on a real registry.
// The bridge is in cli-bridge.test.mjs. Run: node --test __test__/cli.test.mjs

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

import { runCli, startCli } from './helpers/cli-process.mjs';
import { scope } from './helpers/waiting.mjs';

const require = createRequire(import.meta.url);
const pkg = require('../package.json');
const { ExternalMultiLoopStateManager } = require('../index.js');
const ANSI = /\x1b\[/;

function tmpDir(s, prefix = 'mc-cli-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  s.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** One line on stderr, nothing on stdout, no stack trace. */
function assertOneLineError(result, code, pattern) {
  assert.equal(result.code, code, `exit code; stderr: ${result.stderr}`);
  assert.equal(result.stdout, '');
  const lines = result.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
  assert.match(lines[0], /^mc-native( \w+)?: /);
  assert.match(lines[0], pattern);
}

function writeSession(watchDir, dirName, doc) {
  const file = path.join(watchDir, 'sessions', dirName, 'session.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2));
  return file;
}

const mission = (id, status, extra = {}) => ({ id, objective: `objective of ${id}`, status, ...extra });

/** A queue with one of everything: statuses out of order, a failure reason, a broken file, an empty dir. */
function sampleQueue(s) {
  const watchDir = tmpDir(s, 'mc-cli-queue-');
  writeSession(watchDir, 'mc-a', {
    id: 'mc-a',
    name: 'Release prep',
    state: 'active',
    missions: [
      mission('m-done', 'done', { executorId: 'ex-1' }),
      mission('m-queued', 'queued'),
      mission('m-failed', 'failed', { executorId: 'ex-2', failureReason: 'executor_lost' }),
      mission('m-running', 'running', { executorId: 'ex-1', objective: 'x'.repeat(80) }),
    ],
  });
  writeSession(watchDir, 'mc-b', { id: 'mc-b', name: 'Triage', state: 'paused', missions: [mission('m-hitl', 'hitl_required')] });
  writeSession(watchDir, 'mc-c', '{"id": "mc-c", "missions": [');
  fs.mkdirSync(path.join(watchDir, 'sessions', 'mc-empty-dir'), { recursive: true });
  return watchDir;
}

describe('mc-native: help and exit codes', () => {
  it('--help lists the commands and the exit codes; --version prints the version', async () => {
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.equal(help.stderr, '');
    for (const text of ['Usage: mc-native <command>', 'bridge', 'status', 'loops', 'Exit codes: 0 ok, 1 runtime failure, 2 usage error']) {
      assert.ok(help.stdout.includes(text), text);
    }
    const version = await runCli(['--version']);
    assert.deepEqual([version.code, version.stdout], [0, `${pkg.version}\n`]);
  });

  it('every command has --help with its options; `help <command>` is the same', async () => {
    const bridge = await runCli(['bridge', '--help']);
    assert.equal(bridge.code, 0);
    for (const flag of [
      '--aiwg-serve', '--watch', '--poll-interval-ms', '--retry-base-ms', '--max-attempts', '--subscribe-executors',
      '--verbose', '--dry-run', '--max-inflight', '--executor-token', '--json', '--request-timeout-ms', 'Exit codes',
    ]) {
      assert.ok(bridge.stdout.includes(flag), flag);
    }
    assert.equal((await runCli(['help', 'bridge'])).stdout, bridge.stdout);
    const status = await runCli(['status', '-h']);
    assert.deepEqual([status.code, /--follow/.test(status.stdout), /--json/.test(status.stdout)], [0, true, true]);
    const loops = await runCli(['loops', '--help']);
    assert.deepEqual([loops.code, /archive <loop-id>/.test(loops.stdout), /--project/.test(loops.stdout)], [0, true, true]);
  });

  it('no command: the help on stderr and exit 2', async () => {
    const r = await runCli([]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /Usage: mc-native <command>/);
  });

  it('usage errors are one line and exit 2, never a stack trace', async () => {
    const cases = [
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['bridge', '--nope'], /^mc-native bridge: unknown option '--nope' \(see mc-native bridge --help\)$/],
      [['bridge', '--aiwg-serve', 'ftp://example.com'], /--aiwg-serve must be an http:\/\/ or https:\/\/ URL \(got "ftp:\/\/example.com"\)/],
      [['bridge', '--aiwg-serve', 'not a url'], /--aiwg-serve must be an http/],
      [['bridge', '--max-attempts', '0'], /--max-attempts must be a whole number of at least 1 \(got "0"\)/],
      [['bridge', '--poll-interval-ms', 'soon'], /--poll-interval-ms must be a whole number/],
      [['bridge', '--max-inflight', '2.5'], /--max-inflight must be a whole number/],
      [['bridge', '--watch'], /option '--watch <value>' argument missing/],
      [['bridge', '--verbose=yes'], /--verbose' does not take an argument/],
      [['bridge', 'extra'], /unexpected argument 'extra'/],
      [['status', '--follow', 'x'], /unexpected argument 'x'/],
      [['loops'], /missing action: list, crashed or archive <loop-id>/],
      [['loops', 'frob'], /unknown action 'frob'/],
      [['loops', 'archive'], /archive needs a loop id/],
      [['loops', 'list', 'x'], /unexpected argument 'x'/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    results.forEach((r, i) => assertOneLineError(r, 2, cases[i][1]));
  });

  it('a malformed --executor-token is refused without echoing what may be a secret', async () => {
    for (const value of ['s3cret-no-id', '=s3cret', 'ex-1=']) {
      const r = await runCli(['bridge', '--executor-token', value]);
      assertOneLineError(r, 2, /--executor-token must look like ID=TOKEN/);
      if (value.includes('s3cret')) assert.ok(!r.stderr.includes('s3cret'));
    }
  });

  it('a token file others may read is refused (as ssh refuses a key); bad pairs in the file or MC_NATIVE_EXECUTOR_TOKENS too, none echoed', async (t) => {
    const s = scope(t);
    const dir = tmpDir(s);
    const file = path.join(dir, 'tokens');
    fs.writeFileSync(file, '# executor tokens\nex-1=s3cret-one\n');
    if (process.platform !== 'win32') {
      for (const mode of [0o644, 0o640, 0o604, 0o660]) {
        fs.chmodSync(file, mode);
        const r = await runCli(['bridge', '--executor-token-file', file]);
        const shown = mode.toString(8).padStart(4, '0');
        assertOneLineError(r, 1, new RegExp(`executor token file .* is open to others \\(mode ${shown}\\).*chmod 600`));
        assert.ok(!r.stderr.includes('s3cret'), 'a token was echoed');
      }
    }
    fs.chmodSync(file, 0o600);
    fs.writeFileSync(file, 'ex-1=s3cret-one\ns3cret-without-id\n');
    const bad = await runCli(['bridge', '--executor-token-file', file]);
    assertOneLineError(bad, 2, /--executor-token-file .* must look like ID=TOKEN/);
    assert.ok(!bad.stderr.includes('s3cret'), 'a token was echoed');
    const missing = await runCli(['bridge', '--executor-token-file', path.join(dir, 'none')]);
    assertOneLineError(missing, 1, /cannot read the executor token file .*none: ENOENT/);
    const env = await runCli(['bridge'], { env: { MC_NATIVE_EXECUTOR_TOKENS: 'ex-1=ok,s3cret-alone' } });
    assertOneLineError(env, 2, /MC_NATIVE_EXECUTOR_TOKENS must look like ID=TOKEN/);
    assert.ok(!env.stderr.includes('s3cret'), 'a token was echoed');
  });

  it('runtime errors (missing directories) are one line with a hint and exit 1', async (t) => {
    const s = scope(t);
    const dir = tmpDir(s);
    const missing = path.join(dir, 'no-such-dir');
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, '');
    assertOneLineError(await runCli(['bridge', '--watch', missing]), 1, new RegExp(`^mc-native bridge: watch directory not found: ${missing}; .*--watch DIR`));
    assertOneLineError(await runCli(['status', '--watch', missing]), 1, /watch directory not found/);
    assertOneLineError(await runCli(['status', '--watch', file]), 1, /watch directory is not a directory/);
    assertOneLineError(await runCli(['loops', 'list', '--project', missing]), 1, /project directory not found/);
    assert.equal(fs.existsSync(missing), false, 'nothing was created');
  });
});

describe('mc-native status', () => {
  it('shows sessions and their missions by status, plain when piped', async (t) => {
    const s = scope(t);
    const watchDir = sampleQueue(s);
    const r = await runCli(['status', '--watch', watchDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, ANSI);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], `${watchDir}: 3 sessions, 5 missions (1 queued, 1 running, 1 hitl_required, 1 done, 1 failed)`);
    assert.ok(lines.includes('mc-a  "Release prep"  active  4 missions: 1 queued, 1 running, 1 done, 1 failed'), r.stdout);
    assert.ok(lines.includes('mc-b  "Triage"  paused  1 mission: 1 hitl_required'), r.stdout);
    assert.match(r.stdout, /^mc-c {2}unreadable /m);
    assert.doesNotMatch(r.stdout, /mc-empty-dir/);
    // Missions of a session in lifecycle order, whatever their order in the file.
    const rows = lines.filter((l) => /^ {2}\S/.test(l) && !/STATUS/.test(l)).map((l) => l.trim().split(/\s+/).slice(0, 2).join(' '));
    assert.deepEqual(rows, ['queued m-queued', 'running m-running', 'done m-done', 'failed (executor_lost)', 'hitl_required m-hitl']);
    assert.match(r.stdout, /m-running +ex-1 +x{59}…$/m, 'long objectives are cut');
  });

  it('colours on a terminal or with FORCE_COLOR, never with FORCE_COLOR=0', async (t) => {
    const s = scope(t);
    const watchDir = sampleQueue(s);
    const forced = await runCli(['status', '--watch', watchDir], { env: { FORCE_COLOR: '1' } });
    assert.match(forced.stdout, /\x1b\[32m1 done\x1b\[39m/);
    const off = await runCli(['status', '--watch', watchDir], { env: { FORCE_COLOR: '0' } });
    assert.doesNotMatch(off.stdout, ANSI);
  });

  it('--json: totals, counts by status and every session with its missions as on disk', async (t) => {
    const s = scope(t);
    const watchDir = sampleQueue(s);
    const r = await runCli(['status', '--watch', watchDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.watchDir, watchDir);
    assert.deepEqual(report.totals, { sessions: 3, missions: 5, counts: { queued: 1, running: 1, hitl_required: 1, done: 1, failed: 1 } });
    assert.deepEqual(report.sessions.map((x) => [x.id, x.unreadable ?? false]), [['mc-a', false], ['mc-b', false], ['mc-c', true]]);
    const a = report.sessions[0];
    assert.deepEqual(a.missions.map((m) => m.id), ['m-done', 'm-queued', 'm-failed', 'm-running']);
    assert.equal(a.missions[2].failureReason, 'executor_lost');
    assert.equal(a.file, path.join(watchDir, 'sessions', 'mc-a', 'session.json'));
  });

  it('an empty queue says so and exits 0', async (t) => {
    const s = scope(t);
    const watchDir = tmpDir(s);
    const r = await runCli(['status', '--watch', watchDir]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /: 0 sessions, 0 missions\n\nNo sessions yet/);
  });

  it('--follow prints a new table when a session file changes and stops on SIGINT with 0', async (t) => {
    const s = scope(t);
    const watchDir = tmpDir(s);
    const file = writeSession(watchDir, 'mc-a', { id: 'mc-a', missions: [mission('m-1', 'queued')] });
    const cli = startCli(s, ['status', '--watch', watchDir, '--follow']);
    await cli.waitOutput(/1 mission \(1 queued\)/);
    writeSession(watchDir, 'mc-a', { id: 'mc-a', missions: [mission('m-1', 'running', { executorId: 'ex-1' })] });
    await cli.waitOutput(/1 mission \(1 running\)/);
    // A session that appears later, in a new directory, is seen too.
    writeSession(watchDir, 'mc-b', { id: 'mc-b', missions: [mission('m-2', 'queued')] });
    await cli.waitOutput(/2 sessions, 2 missions/);
    cli.kill('SIGINT');
    const { code, ms } = await cli.exited;
    assert.equal(code, 0, cli.stderr);
    assert.ok(ms < 2000, `exited ${ms} ms after SIGINT`);
    assert.equal(cli.stderr, '');
    const tables = cli.stdout.split(/^--- \d\d:\d\d:\d\d\.\d{3}$/m).filter(Boolean);
    assert.equal(tables.length, 3, cli.stdout);
    assert.ok(fs.existsSync(file));
  });

  it('--follow --json prints one JSON line per change; SIGTERM stops it with 0', async (t) => {
    const s = scope(t);
    const watchDir = tmpDir(s);
    writeSession(watchDir, 'mc-a', { id: 'mc-a', missions: [mission('m-1', 'queued')] });
    const cli = startCli(s, ['status', '--watch', watchDir, '--follow', '--json']);
    await cli.waitOutput(/\n/);
    writeSession(watchDir, 'mc-a', { id: 'mc-a', missions: [mission('m-1', 'done')] });
    await cli.waitOutput((text) => text.split('\n').filter(Boolean).length === 2);
    cli.kill('SIGTERM');
    assert.equal((await cli.exited).code, 0);
    const reports = cli.lines().map((l) => JSON.parse(l));
    assert.deepEqual(reports.map((r) => r.totals.counts), [{ queued: 1 }, { done: 1 }]);
  });
});

describe('mc-native loops', () => {
  /** A pid that belonged to a process that has ended. */
  function deadPid() {
    return spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout * 1;
  }

  it('reading a project without a registry creates nothing', async (t) => {
    const s = scope(t);
    const project = tmpDir(s);
    const list = await runCli(['loops', 'list', '--project', project]);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^No loop registry in .*: no loops have run here\.\n$/);
    const json = await runCli(['loops', 'crashed', '--project', project, '--json']);
    assert.deepEqual([json.code, JSON.parse(json.stdout)], [0, []]);
    assertOneLineError(await runCli(['loops', 'archive', 'ralph-x', '--project', project]), 1, /no loop registry in/);
    assert.deepEqual(fs.readdirSync(project), []);
  });

  it('list, crashed and archive on a real registry', async (t) => {
    const s = scope(t);
    const project = tmpDir(s);
    const manager = new ExternalMultiLoopStateManager(project);
    const alive = await manager.createLoop({ objective: 'Fix the login bug', maxIterations: 4 });
    const crashed = await manager.createLoop({ objective: 'Write the migration guide' });
    await manager.updateLoopPid(crashed.loopId, deadPid());

    const list = await runCli(['loops', 'list', '--project', project]);
    assert.equal(list.code, 0, list.stderr);
    assert.doesNotMatch(list.stdout, ANSI);
    assert.match(list.stdout, /^LOOP +STATUS +ITERATION +PID +STARTED +TASK$/m);
    assert.match(list.stdout, new RegExp(`^${alive.loopId} +running +0/4 +${process.pid} alive +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ +Fix the login bug$`, 'm'));
    assert.match(list.stdout, new RegExp(`^${crashed.loopId} +running +0/10 +\\d+ gone `, 'm'));

    const listJson = JSON.parse((await runCli(['loops', 'list', '--project', project, '--json'])).stdout);
    assert.deepEqual(listJson.map((l) => [l.loop_id, l.alive]), [[alive.loopId, true], [crashed.loopId, false]]);
    const crashedJson = JSON.parse((await runCli(['loops', 'crashed', '--project', project, '--json'])).stdout);
    assert.deepEqual(crashedJson.map((l) => l.loop_id), [crashed.loopId]);
    assert.match((await runCli(['loops', 'crashed', '--project', project])).stdout, new RegExp(crashed.loopId));

    // A loop whose process lives is not archived by accident.
    assertOneLineError(
      await runCli(['loops', 'archive', alive.loopId, '--project', project]),
      1,
      new RegExp(`loop ${alive.loopId} is still running \\(pid ${process.pid}\\); stop it first, or pass --force`),
    );
    const archived = await runCli(['loops', 'archive', crashed.loopId, '--project', project]);
    assert.equal(archived.code, 0, archived.stderr);
    assert.equal(archived.stdout, `Archived ${crashed.loopId} to ${path.join(manager.archiveDir, crashed.loopId)}\n`);
    assert.ok(fs.existsSync(path.join(manager.archiveDir, crashed.loopId, 'session-state.json')));
    assert.equal((await runCli(['loops', 'archive', alive.loopId, '--project', project, '--force'])).code, 0);
    assertOneLineError(await runCli(['loops', 'archive', alive.loopId, '--project', project]), 1, new RegExp(`Loop directory not found: ${alive.loopId}`));

    assert.equal((await runCli(['loops', 'list', '--project', project])).stdout, 'No active loops.\n');
    const registry = manager.loadRegistry();
    assert.deepEqual([registry.active_loops, registry.total_aborted], [[], 2]);
    assert.equal(fs.existsSync(manager.lockPath), false, 'no lock left behind');
  });
});
