// The package as a consumer gets it: `npm pack` of the root and of
// npm/linux-x64-gnu (with the addon built in this checkout), both tarballs
// installed offline into an empty project, and there: `require` and
// `import` load the prebuilt binary from @aiwg/mc-native-linux-x64-gnu,
// the `mc-native` bin runs, and a TypeScript user compiles against the
// installed types. Nothing is written inside the repository.
// Run: node --test __test__/pack.test.mjs

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { typeCheck } from './helpers/typescript.mjs';

import { ROOT, cleanEnv } from './helpers/cli-process.mjs';

const require = createRequire(import.meta.url);
const pkg = require('../package.json');
const PLATFORM = 'linux-x64-gnu';
const NODE_FILE = `mc-native.${PLATFORM}.node`;

const glibc = process.platform === 'linux' && Boolean(process.report.getReport().header.glibcVersionRuntime);
const skip = process.platform !== 'linux' || process.arch !== 'x64' || !glibc
  ? `the prebuilt package tested here is ${PLATFORM}; this is ${process.platform}-${process.arch}${process.platform === 'linux' && !glibc ? ' (musl)' : ''}`
  : false;

/** Children see no npm_* settings of an enclosing `npm test`, nor a native-library override. */
function env() {
  return Object.fromEntries(Object.entries(cleanEnv()).filter(([key]) => !/^(npm_|NAPI_RS_NATIVE_LIBRARY_PATH$)/i.test(key)));
}

const run = async (file, args, cwd) => {
  try {
    return await promisify(execFile)(file, args, { cwd, env: env(), maxBuffer: 16 << 20, timeout: 60_000 });
  } catch (err) {
    err.message += `\nstdout: ${err.stdout}\nstderr: ${err.stderr}`;
    throw err;
  }
};
const npm = (args, cwd) => run(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['--no-update-notifier', '--loglevel=error', ...args], cwd);
const node = (args, cwd) => run(process.execPath, args, cwd);

describe('npm pack → install into an empty project', { skip }, () => {
  let tmp;
  let app;
  let packed;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-pack-'));
    app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));

    // The platform package, with the binary this checkout built, packed from a copy.
    const builtBinary = path.join(ROOT, NODE_FILE);
    assert.ok(fs.existsSync(builtBinary), `${NODE_FILE} is built (npm install builds it)`);
    const platformDir = path.join(tmp, PLATFORM);
    fs.cpSync(path.join(ROOT, 'npm', PLATFORM), platformDir, { recursive: true });
    fs.copyFileSync(builtBinary, path.join(platformDir, NODE_FILE));

    // --ignore-scripts: packing must not run `prepare` (a rebuild) in the checkout.
    const pack = async (dir) => JSON.parse((await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], dir)).stdout)[0];
    packed = { root: await pack(ROOT), platform: await pack(platformDir) };

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
