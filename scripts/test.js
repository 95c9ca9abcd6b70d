#!/usr/bin/env node
'use strict';
// `npm test`: the Rust unit tests, then every node:test suite in __test__/.
// Extra arguments go to `node --test` (e.g. a single file).

const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const run = (cmd, args) => {
  console.log(`\n$ ${cmd} ${args.join(' ')}`);
  const { status, signal } = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (status !== 0) {
    console.error(`${cmd} failed (${signal || `exit ${status}`})`);
    process.exit(status || 1);
  }
};

const only = process.argv.slice(2);
if (only.length === 0) run('cargo', ['test', '--quiet']);
// 60 s a test. On Node 20 the limit also bounds each test file as a whole
// (the runner's test for the file gets it too), so a test's own `{ timeout }`
// cannot take its file past 60 s there; the slowest file takes ~26 s on two
// cores.
run(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=60000', ...(only.length ? only : ['__test__/'])]);
