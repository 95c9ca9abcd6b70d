// The platforms the package names, and what `require` says on one it has no
// binary for. Each case loads the package in a child process whose preload
// makes it look like another platform (process.arch / process.platform
// redefined before the loader runs), so the loader looks for a binary that
// is not there. Also: the six npm/<platform> packages agree with
// package.json, and the lock file lets `npm ci` install a fresh clone.
// Run: node --test __test__/platforms.test.mjs

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const PLATFORMS = {
  'x86_64-unknown-linux-gnu': { platform: 'linux-x64-gnu', os: 'linux', cpu: 'x64', libc: 'glibc' },
  'x86_64-unknown-linux-musl': { platform: 'linux-x64-musl', os: 'linux', cpu: 'x64', libc: 'musl' },
  'aarch64-unknown-linux-gnu': { platform: 'linux-arm64-gnu', os: 'linux', cpu: 'arm64', libc: 'glibc' },
  'x86_64-apple-darwin': { platform: 'darwin-x64', os: 'darwin', cpu: 'x64' },
  'aarch64-apple-darwin': { platform: 'darwin-arm64', os: 'darwin', cpu: 'arm64' },
  'x86_64-pc-windows-msvc': { platform: 'win32-x64-msvc', os: 'win32', cpu: 'x64' },
};
const PACKAGES = Object.values(PLATFORMS).map((p) => `@aiwg/mc-native-${p.platform}`);

const PRELOAD = `
  if (process.env.FAKE_ARCH) Object.defineProperty(process, 'arch', { value: process.env.FAKE_ARCH });
  if (process.env.FAKE_PLATFORM) Object.defineProperty(process, 'platform', { value: process.env.FAKE_PLATFORM });
`;

/** Runs `args` in a child node that looks like `fake` (its preload redefines process.arch/platform). */
async function nodeAs(fake, args, env = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-platforms-'));
  const preload = path.join(dir, 'fake-platform.cjs');
  fs.writeFileSync(preload, PRELOAD);
  const childEnv = { ...process.env, FAKE_ARCH: fake.arch ?? '', FAKE_PLATFORM: fake.platform ?? '', ...env };
  delete childEnv.NODE_OPTIONS;
  if (!('NAPI_RS_NATIVE_LIBRARY_PATH' in env)) delete childEnv.NAPI_RS_NATIVE_LIBRARY_PATH;
  try {
    return await promisify(execFile)(process.execPath, ['-r', preload, ...args], { env: childEnv, timeout: 120_000 });
  } catch (err) {
    return err; // carries stdout, stderr and the exit code
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `require('@aiwg/mc-native')` in a child that looks like `fake`: what it threw, or {} if it loaded. */
async function loadAs(fake, env = {}) {
  const script = `try { require(${JSON.stringify(ROOT)}); console.log('{}') } catch (err) {
    console.log(JSON.stringify({ message: err.message, code: err.code, platform: err.platform,
      prebuilt: err.prebuiltPlatforms, cause: err.cause && err.cause.message })) }`;
  const { stdout, stderr } = await nodeAs(fake, ['-e', script], env);
  assert.equal(stderr, '');
  return JSON.parse(stdout);
}

/** The parts every such message has. */
function assertClearMessage(thrown, platform) {
  assert.equal(thrown.code, 'ERR_MC_NATIVE_NO_BINARY');
  assert.equal(thrown.platform, platform);
  assert.deepEqual(thrown.prebuilt, Object.values(PLATFORMS).map((p) => p.platform));
  const lines = thrown.message.split('\n');
  assert.match(lines[0], new RegExp(`^@aiwg/mc-native: no native binary for this platform \\(${platform}, Node v\\d+`));
  for (const name of PACKAGES) assert.ok(thrown.message.includes(name), name);
  assert.match(thrown.message, /To build from source: install Rust \(https:\/\/rustup\.rs\)/);
  assert.ok(thrown.message.includes(`builds mc-native.${platform}.node`));
  assert.ok(thrown.message.includes(`NAPI_RS_NATIVE_LIBRARY_PATH=/path/to/checkout/mc-native.${platform}.node`));
  // Not the loader's list of every path it tried.
  assert.doesNotMatch(thrown.message, /Cannot find module|npm has a bug|wasm32-wasi/);
  assert.equal(lines.length, 3);
}

describe('require on a platform with no binary', () => {
  it('an unknown platform: says none exists, names the six that do and how to build', async () => {
    const thrown = await loadAs({ platform: 'linux', arch: 'riscv64' });
    assertClearMessage(thrown, process.platform === 'linux' && process.report.getReport().header.glibcVersionRuntime ? 'linux-riscv64-gnu' : 'linux-riscv64-musl');
    assert.match(thrown.message, /No prebuilt binary exists for linux-riscv64-/);
    assert.equal(thrown.cause, undefined);
  });

  it('another OS entirely, the same way', async () => {
    const thrown = await loadAs({ platform: 'freebsd', arch: 'x64' });
    assertClearMessage(thrown, 'freebsd-x64');
    assert.match(thrown.message, /No prebuilt binary exists for freebsd-x64\./);
  });

  it('an ES module importing the package stops with the same message', async () => {
    const { code, stderr } = await nodeAs({ platform: 'linux', arch: 'riscv64' }, ['--input-type=module', '-e', `import ${JSON.stringify(path.join(ROOT, 'index.mjs'))}`]);
    assert.equal(code, 1);
    assert.match(stderr, /^Error: @aiwg\/mc-native: no native binary for this platform \(linux-riscv64-(gnu|musl), Node v/m);
    assert.match(stderr, /^Prebuilt packages exist for: linux-x64-gnu \(@aiwg\/mc-native-linux-x64-gnu\), /m);
    assert.match(stderr, /^To build from source: /m);
    assert.match(stderr, /code: 'ERR_MC_NATIVE_NO_BINARY'/);
    assert.doesNotMatch(stderr, /Cannot find module|npm has a bug/);
  });

  it('a platform with a package that is not installed: says which package and why it may be missing', async () => {
    const fake = process.platform === 'darwin' && process.arch === 'arm64' ? { platform: 'win32', arch: 'x64' } : { platform: 'darwin', arch: 'arm64' };
    const platform = fake.platform === 'win32' ? 'win32-x64-msvc' : 'darwin-arm64';
    const thrown = await loadAs(fake);
    assertClearMessage(thrown, platform);
    assert.match(thrown.message, new RegExp(`@aiwg/mc-native-${platform}, which npm installs as an optional dependency of @aiwg/mc-native, is not installed`));
    assert.match(thrown.message, /--omit=optional/);
  });

  it('a binary that is there but does not load: its loader error, in the message and as the cause', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-platforms-'));
    const bad = path.join(dir, 'broken.node');
    fs.writeFileSync(bad, 'not a shared library');
    try {
      const thrown = await loadAs({}, { NAPI_RS_NATIVE_LIBRARY_PATH: bad });
      assert.equal(thrown.code, 'ERR_MC_NATIVE_NO_BINARY');
      assert.ok(thrown.message.split('\n')[0].includes(`NAPI_RS_NATIVE_LIBRARY_PATH is set to ${bad}, which did not load: `), thrown.message);
      assert.ok(thrown.cause && thrown.cause.includes(bad), thrown.cause);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on this platform it loads', async () => {
    assert.deepEqual(await loadAs({}), {});
  });
});

describe('the platform packages', () => {
  it('package.json names the six targets, and npm/<platform> has a package for each', () => {
    assert.deepEqual(pkg.napi.targets, Object.keys(PLATFORMS));
    assert.deepEqual(fs.readdirSync(path.join(ROOT, 'npm')).filter((d) => !d.startsWith('.')).sort(), Object.values(PLATFORMS).map((p) => p.platform).sort());
    for (const p of Object.values(PLATFORMS)) {
      const sub = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', p.platform, 'package.json'), 'utf8'));
      const file = `mc-native.${p.platform}.node`;
      assert.equal(sub.name, `@aiwg/mc-native-${p.platform}`);
      assert.equal(sub.version, pkg.version, `${sub.name} has the root's version`);
      assert.equal(sub.main, file);
      assert.deepEqual(sub.files, [file]);
      assert.deepEqual([sub.os, sub.cpu, sub.libc], [[p.os], [p.cpu], p.libc ? [p.libc] : undefined], sub.name);
      assert.equal(sub.license, pkg.license);
      assert.deepEqual(sub.engines, pkg.engines);
    }
  });

  it('the repository declares no optional dependencies: `napi prepublish` adds the six when it publishes', () => {
    assert.equal(pkg.optionalDependencies, undefined);
    assert.match(pkg.scripts.prepublishOnly, /^napi prepublish -t npm\b/);
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
    assert.equal(lock.packages[''].optionalDependencies, undefined);
    assert.deepEqual(Object.keys(lock.packages).filter((k) => k.includes('@aiwg/mc-native')), []);
  });

  it('`npm ci` accepts the lock file of a fresh clone', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-npm-ci-'));
    try {
      for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
      // --dry-run: the check that refused before (lock file in sync with package.json), without installing.
      const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
      const { stdout } = await promisify(execFile)(npm, ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, env, timeout: 120_000, shell: process.platform === 'win32' });
      assert.doesNotMatch(stdout, /EUSAGE|in sync/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
