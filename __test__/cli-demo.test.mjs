// `npm run demo` as a newcomer runs it: it exits 0, every mission it
// queues is shown going queued → assigned → running → done, the status
// table closes it, and it leaves no queue directory behind.
// Run: node --test __test__/cli-demo.test.mjs

import { it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';

import { startProcess } from './helpers/cli-process.mjs';
import { scope } from './helpers/waiting.mjs';

const pkg = createRequire(import.meta.url)('../package.json');

it('npm run demo: every mission goes queued → assigned → running → done, then exit 0', async (t) => {
  const s = scope(t);
  assert.equal(pkg.scripts.demo, 'node examples/demo/run.mjs');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const demo = startProcess(s, npm, ['run', '--silent', 'demo', '--', '--step-ms', '150', '--timeout-s', '20'], {
    group: true,
  });
  const { code } = await demo.exited;
  const out = demo.stdout;
  assert.equal(code, 0, `stdout:\n${out}\nstderr:\n${demo.stderr}`);
  assert.doesNotMatch(out, /\x1b\[/, 'plain when piped');

  // Piped, the board is one line per transition: `+0.14s  <mission>  <objective>  <from> → <to>`.
  const transitions = new Map();
  for (const [, id, change] of out.matchAll(/^ {2}\+\d+\.\d\ds {2}(m-[a-z0-9]+-[0-9a-f]{6}) .*? {2}(\w+(?: → \w+)?)$/gm)) {
    transitions.set(id, [...(transitions.get(id) || []), change]);
  }
  assert.equal(transitions.size, 4, out);
  for (const [id, changes] of transitions) {
    assert.deepEqual(changes, ['queued', 'queued → assigned', 'assigned → running', 'running → done'], id);
  }
  assert.match(out, /\$ mc-native bridge --aiwg-serve http:\/\/127\.0\.0\.1:\d+ --watch \S+ /);
  assert.match(out, /\(bridge stopped on SIGINT, exit 0\)/);
  assert.match(out, /: 2 sessions, 4 missions \(4 done\)/);
  assert.match(out, /All 4 missions went queued → assigned → running → done in \d+\.\d\ds\./);

  const queueDir = /a mission queue in (\S+), and/.exec(out)[1];
  assert.equal(fs.existsSync(queueDir), false, `${queueDir} is removed`);
});
