// `mc-native bridge` as a person runs it: spawned against a fake aiwg serve
// (helpers/lifecycle-serve.mjs: dispatches and executor WebSockets on one
// port, or helpers/scripted-serve.mjs for slow answers), its output read
// line by line, stopped with SIGINT or SIGTERM, and the files it leaves
// checked. Run: node --test __test__/cli-bridge.test.mjs

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { startCli } from './helpers/cli-process.mjs';
import { startFakeServe } from './helpers/lifecycle-serve.mjs';
import { startScriptedServe } from './helpers/scripted-serve.mjs';
import { scope, waitFor } from './helpers/waiting.mjs';

const ANSI = /\x1b\[/;
const CLOCK = /^\d\d:\d\d:\d\d\.\d{3} /;

/** A queue dir with one session of queued missions; → {watchDir, file, sessionDir}. */
function queue(s, missionIds) {
  const watchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-cli-bridge-'));
  s.defer(() => fs.rmSync(watchDir, { recursive: true, force: true }));
  const sessionDir = path.join(watchDir, 'sessions', 'mc-one');
  fs.mkdirSync(sessionDir, { recursive: true });
  const file = path.join(sessionDir, 'session.json');
  const doc = {
    id: 'mc-one',
    name: 'one',
    state: 'active',
    missions: missionIds.map((id) => ({ id, objective: `objective of ${id}`, status: 'queued', priority: 'normal', mode: 'direct' })),
    mutationKeys: ['kept'],
  };
  fs.writeFileSync(file, JSON.stringify(doc, null, 2));
  return { watchDir, file, sessionDir };
}

const statusOf = (file, id) => JSON.parse(fs.readFileSync(file, 'utf8')).missions.find((m) => m.id === id).status;

function event(name, missionId, data = {}) {
  return { event: name, executor_id: 'ex-1', mission_id: missionId, ts: new Date().toISOString(), data };
}

async function fakeServe(s, options) {
  const serve = await startFakeServe(options);
  s.defer(() => serve.close());
  return serve;
}

describe('mc-native bridge', () => {
  it('carries missions queued → done, then drains and exits 0 on SIGINT; tokens stay out of its output', async (t) => {
    const s = scope(t);
    const serve = await fakeServe(s);
    const { watchDir, file, sessionDir } = queue(s, ['m-1', 'm-2']);
    const cli = startCli(s, [
      'bridge', '--aiwg-serve', serve.url, '--watch', watchDir, '--retry-base-ms', '10', '--executor-token', 'ex-1=s3cret-token',
    ]);
    await cli.waitOutput(/queue-tailer:dispatched missionId=m-2/);
    await cli.waitOutput(/queue-tailer:dispatched missionId=m-1/);
    await waitFor(() => serve.open('ex-1').length === 1, 5000, 'the executor stream');
    assert.equal(serve.connections[0].token, 's3cret-token');
    for (const id of ['m-1', 'm-2']) serve.send('ex-1', event('mission.started', id, { agent_runtime: 'claude-code' }));
    for (const id of ['m-1', 'm-2']) serve.send('ex-1', event('mission.completed', id, { exit_code: 0, summary: 'ok' }));
    await waitFor(() => statusOf(file, 'm-1') === 'done' && statusOf(file, 'm-2') === 'done', 5000, 'both missions done');
    await cli.waitOutput(/event-applied missionId=m-2 event=mission.completed newStatus=done/);

    cli.kill('SIGINT');
    const { code, ms } = await cli.exited;
    assert.equal(code, 0, cli.stderr);
    assert.ok(ms < 5000, `exited ${ms} ms after SIGINT`);
    assert.equal(cli.stderr, '');

    // What a person reads: plain lines (piped), a clock, the message, key=value pairs; start first, stop last.
    const lines = cli.lines();
    assert.doesNotMatch(cli.stdout, ANSI);
    assert.ok(lines.every((l) => CLOCK.test(l)), cli.stdout);
    assert.match(lines[0], new RegExp(`queue-tailer:start aiwgServeUrl=${serve.url} watchDir=${watchDir} dryRun=false$`));
    assert.match(lines.at(-1), /queue-tailer:stop drainedInflight=0$/);
    assert.match(cli.stdout, /queue-tailer:event-applied missionId=m-1 event=mission.started newStatus=running outcome=updated/);
    assert.doesNotMatch(cli.stdout, /dispatch-client:|executor-ws:/, 'debug lines only with --verbose');
    assert.ok(!cli.stdout.includes('s3cret'), 'the token is never printed');

    // The files it leaves: the session (every mission done, unknown keys kept) and its event log;
    // no temp files (`.session.json.….tmp`). Hidden lock sidecars may stay, by design.
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.deepEqual(doc.mutationKeys, ['kept']);
    assert.deepEqual(doc.missions.map((m) => [m.id, m.status, m.executorId, m.exitCode]), [['m-1', 'done', 'ex-1', 0], ['m-2', 'done', 'ex-1', 0]]);
    const left = fs.readdirSync(sessionDir);
    assert.deepEqual(left.filter((f) => !f.startsWith('.')).sort(), ['log.jsonl', 'session.json']);
    assert.deepEqual(left.filter((f) => f.endsWith('.tmp')), [], 'no temp files');
    const journal = fs.readFileSync(path.join(sessionDir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(journal.length >= 6, `journal: ${journal.length} lines`);
  });

  it('executor tokens from a token file and MC_NATIVE_EXECUTOR_TOKENS reach the streams, a flag overriding both; none is printed', async (t) => {
    const s = scope(t);
    const serve = await fakeServe(s);
    const { watchDir } = queue(s, []);
    const file = path.join(watchDir, 'tokens');
    fs.writeFileSync(file, '# for the event streams\nex-1=s3cret-from-file\n\nex-2=s3cret-from-file-2\n', { mode: 0o600 });
    const cli = startCli(
      s,
      ['bridge', '--aiwg-serve', serve.url, '--watch', watchDir, '--subscribe-executors', 'ex-1,ex-2,ex-3',
        '--executor-token-file', file, '--executor-token', 'ex-2=s3cret-from-flag'],
      { env: { MC_NATIVE_EXECUTOR_TOKENS: 'ex-1=s3cret-from-env, ex-3=s3cret-from-env-3' } },
    );
    await waitFor(() => ['ex-1', 'ex-2', 'ex-3'].every((id) => serve.open(id).length === 1), 5000, 'three executor streams');
    const tokenOf = (id) => serve.connections.find((c) => c.executorId === id)?.token;
    assert.deepEqual(['ex-1', 'ex-2', 'ex-3'].map(tokenOf), ['s3cret-from-file', 's3cret-from-flag', 's3cret-from-env-3']);
    cli.kill('SIGINT');
    const { code } = await cli.exited;
    assert.equal(code, 0, cli.stderr);
    assert.ok(!cli.stdout.includes('s3cret') && !cli.stderr.includes('s3cret'), 'a token was printed');
  });

  it('--json --verbose: one JSON object per line, debug lines included; SIGTERM stops it with 0', async (t) => {
    const s = scope(t);
    const serve = await fakeServe(s);
    const { watchDir, file } = queue(s, ['m-1']);
    const cli = startCli(s, ['bridge', '--aiwg-serve', serve.url, '--watch', watchDir, '--json', '--verbose', '--subscribe-executors', 'ex-1,ex-2']);
    await cli.waitOutput(/"msg":"queue-tailer:dispatched"/);
    await waitFor(() => serve.open('ex-1').length === 1 && serve.open('ex-2').length === 1, 5000, 'both subscribed executors');
    assert.equal(statusOf(file, 'm-1'), 'assigned');
    cli.kill('SIGTERM');
    const { code } = await cli.exited;
    assert.equal(code, 0, cli.stderr);
    const entries = cli.lines().map((line) => JSON.parse(line));
    for (const entry of entries) {
      assert.deepEqual(Object.keys(entry), ['ts', 'level', 'msg', 'meta']);
      assert.ok(!Number.isNaN(Date.parse(entry.ts)));
    }
    const byMsg = (msg) => entries.find((e) => e.msg === msg);
    assert.deepEqual(byMsg('queue-tailer:start').meta, { aiwgServeUrl: serve.url, watchDir, dryRun: false });
    assert.equal(byMsg('queue-tailer:start').level, 'info');
    assert.equal(byMsg('dispatch-client:accepted').level, 'debug');
    assert.deepEqual(byMsg('queue-tailer:dispatched').meta, { missionId: 'm-1', sessionId: 'mc-one', executorId: 'ex-1', attempts: 1 });
    assert.ok(byMsg('executor-ws:opened'), 'stream lines with --verbose');
    assert.equal(entries.at(-1).msg, 'queue-tailer:stop');
  });

  it('--dry-run sends nothing and changes nothing; colours with FORCE_COLOR', async (t) => {
    const s = scope(t);
    const serve = await fakeServe(s);
    const { watchDir, file } = queue(s, ['m-1']);
    const before = fs.readFileSync(file);
    const cli = startCli(s, ['bridge', '--aiwg-serve', serve.url, '--watch', watchDir, '--dry-run'], { env: { FORCE_COLOR: '1' } });
    await cli.waitOutput(/would-dispatch/);
    cli.kill('SIGINT');
    assert.equal((await cli.exited).code, 0, cli.stderr);
    assert.match(cli.stdout, ANSI);
    const plain = cli.stdout.replace(/\x1b\[\d+m/g, '');
    assert.match(plain, new RegExp(`queue-tailer:would-dispatch missionId=m-1 sessionId=mc-one endpoint=${serve.url}/api/v1/sessions/mc-one/dispatch payloadDigest="m-1:objective of m-1"`));
    assert.deepEqual(serve.dispatches, []);
    assert.deepEqual(fs.readFileSync(file), before);
  });

  it('a stop waits for the dispatch in flight, then exits 0', async (t) => {
    const s = scope(t);
    const serve = await startScriptedServe([{ status: 202, body: { executor_id: 'ex-slow' }, delayMs: 800 }]);
    s.defer(() => serve.close());
    const { watchDir, file } = queue(s, ['m-1']);
    const cli = startCli(s, ['bridge', '--aiwg-serve', serve.url, '--watch', watchDir, '--max-inflight', '1']);
    await waitFor(() => serve.requests.length === 1, 5000, 'the dispatch request');
    cli.kill('SIGINT');
    const { code, ms } = await cli.exited;
    assert.equal(code, 0, cli.stderr);
    assert.ok(ms >= 500 && ms < 5000, `exited ${ms} ms after SIGINT`);
    assert.match(cli.stdout, /queue-tailer:dispatched missionId=m-1 sessionId=mc-one executorId=ex-slow/);
    assert.match(cli.lines().at(-1), /queue-tailer:stop drainedInflight=1$/);
    assert.equal(statusOf(file, 'm-1'), 'assigned');
  });

  it('a second SIGINT exits at once with 130', async (t) => {
    const s = scope(t);
    const serve = await startScriptedServe([{ hang: true }]);
    s.defer(() => serve.close());
    const { watchDir, file } = queue(s, ['m-1']);
    const cli = startCli(s, ['bridge', '--aiwg-serve', serve.url, '--watch', watchDir]);
    await waitFor(() => serve.requests.length === 1, 5000, 'the dispatch request');
    cli.kill('SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 200));
    cli.kill('SIGINT');
    const { code, ms } = await cli.exited;
    assert.equal(code, 130);
    assert.ok(ms < 2000, `exited ${ms} ms after the second SIGINT`);
    assert.match(cli.stderr, /^mc-native: SIGINT again, exiting without waiting\n$/);
    assert.equal(statusOf(file, 'm-1'), 'queued', 'the mission is left for the next bridge');
  });
});
