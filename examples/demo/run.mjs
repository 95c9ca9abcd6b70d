// EXAMPLE: `npm run demo`. The whole product in one command, on this
// machine only: an emulated aiwg serve and executor (./emulator.mjs), a
// mission queue in a temp directory, and `mc-native bridge` between them.
// Missions are queued the way `aiwg mc dispatch` queues them, and each one
// is shown going queued → assigned → running → done as the bridge reports
// it; then `mc-native status` shows the queue, and everything is cleaned up.
//
//   npm run demo                  (or: node examples/demo/run.mjs)
//   npm run demo -- --keep        keep the queue directory to look at
//   npm run demo -- --step-ms 150 a faster emulated executor
//
// Exits 0 when every mission is done, 1 when one is not within --timeout-s.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startEmulator } from './emulator.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = path.join(ROOT, 'bin', 'mc-native.js');
const { painter, STATUS_STYLE, truncate } = createRequire(import.meta.url)('../../cli/output.js');

const { values: opts } = parseArgs({
  options: {
    keep: { type: 'boolean', default: false },
    'step-ms': { type: 'string', default: '400' },
    'timeout-s': { type: 'string', default: '30' },
  },
});

const paint = painter(process.stdout);
const live = Boolean(process.stdout.isTTY);
const say = (line = '') => process.stdout.write(`${line}\n`);
const started = Date.now();
const seconds = () => `${((Date.now() - started) / 1000).toFixed(2)}s`;

// ---- the queue, as `aiwg mc dispatch` writes it ---------------------------

const id = (prefix) => `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

function queueSession(watchDir, name, objectives) {
  const sessionId = id('mc');
  const now = new Date().toISOString();
  const session = {
    id: sessionId,
    name,
    state: 'active',
    maxMissions: 8,
    createdAt: now,
    updatedAt: now,
    missions: objectives.map((objective) => ({
      id: id('m'),
      objective,
      status: 'queued',
      loop: 0,
      maxIterations: 5,
      priority: 'normal',
      mode: 'direct',
    })),
  };
  const file = path.join(watchDir, 'sessions', sessionId, 'session.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(session, null, 2));
  fs.renameSync(`${file}.tmp`, file);
  return session;
}

// ---- the board: every mission and the statuses it went through -----------

const board = new Map(); // mission id → {objective, path: [statuses]}
let drawn = 0;

const pathText = (statuses) => statuses.map((s) => paint(STATUS_STYLE[s] || 'reset', s)).join(paint('dim', ' → '));

function addMissions(session) {
  for (const m of session.missions) board.set(m.id, { objective: m.objective, path: ['queued'] });
  if (live) redraw();
  else for (const m of session.missions) say(`  ${paint('dim', `+${seconds()}`)}  ${m.id}  ${truncate(m.objective, 36).padEnd(36)}  ${pathText(['queued'])}`);
}

function transition(missionId, status) {
  const row = board.get(missionId);
  if (!row || row.path.at(-1) === status) return;
  const from = row.path.at(-1);
  row.path.push(status);
  if (live) redraw();
  else say(`  ${paint('dim', `+${seconds()}`)}  ${missionId}  ${truncate(row.objective, 36).padEnd(36)}  ${pathText([from, status])}`);
}

/** On a terminal: the board in place, one line per mission. */
function redraw() {
  let text = drawn ? `\x1b[${drawn}A` : '';
  for (const [missionId, row] of board) {
    text += `\x1b[2K  ${missionId}  ${truncate(row.objective, 36).padEnd(36)}  ${pathText(row.path)}\n`;
  }
  drawn = board.size;
  process.stdout.write(text);
}

// One more mission is queued once the first one runs: the bridge picks it up as soon as its file lands.
let lateQueued = false;
function queueLate(status) {
  if (lateQueued || status !== 'running') return;
  lateQueued = true;
  addMissions(queueSession(watchDir, 'Triage', ['Triage the issues labelled bug']));
}

const ended = () => lateQueued && [...board.values()].every((row) => ['done', 'failed', 'aborted'].includes(row.path.at(-1)));

// ---- the run ---------------------------------------------------------------

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-demo-'));
const watchDir = path.join(tmp, 'mc');
fs.mkdirSync(path.join(watchDir, 'sessions'), { recursive: true });
const emulator = await startEmulator({ stepMs: Number(opts['step-ms']) || 400 });
let bridge = null;

async function cleanUp() {
  if (bridge && bridge.exitCode === null && bridge.signalCode === null) bridge.kill('SIGKILL');
  await emulator.close();
  if (!opts.keep) fs.rmSync(tmp, { recursive: true, force: true });
}
process.once('SIGINT', () => cleanUp().then(() => process.exit(130)));

say(paint('bold', 'mc-native demo'));
say(`An emulated aiwg serve and executor on ${emulator.url} (examples/demo/emulator.mjs),`);
say(`a mission queue in ${watchDir}, and the bridge between them:`);
say();
const args = ['bridge', '--aiwg-serve', emulator.url, '--watch', watchDir, '--retry-base-ms', '100', '--json'];
say(paint('dim', `$ mc-native ${args.join(' ')}`));
say();

const first = queueSession(watchDir, 'Release prep', [
  'Write the release notes for 0.2.0',
  'Add a test for serve restarts',
  "Update the README's benchmark table",
]);
addMissions(first);

bridge = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
const bridgeExit = new Promise((resolve) => bridge.once('exit', (code, signal) => resolve(signal || code)));
let allEnded;
const allEndedPromise = new Promise((resolve) => (allEnded = resolve));
readline.createInterface({ input: bridge.stdout }).on('line', (line) => {
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    return say(line);
  }
  const { msg, meta = {} } = entry;
  if (msg === 'queue-tailer:dispatched') transition(meta.missionId, 'assigned');
  else if (msg === 'queue-tailer:dispatch-failed') transition(meta.missionId, 'failed');
  else if (msg === 'queue-tailer:event-applied' && meta.outcome === 'updated') transition(meta.missionId, meta.newStatus);
  queueLate(meta.newStatus);
  if (ended()) allEnded();
});

const timeoutMs = (Number(opts['timeout-s']) || 30) * 1000;
let timer;
const outcome = await Promise.race([
  allEndedPromise.then(() => 'ended'),
  bridgeExit.then((code) => `the bridge exited early (${code})`),
  new Promise((resolve) => (timer = setTimeout(() => resolve(`not every mission ended within ${timeoutMs / 1000} s`), timeoutMs))),
]);
clearTimeout(timer);

say();
bridge.kill('SIGINT');
const bridgeCode = await bridgeExit;
say(paint('dim', `(bridge stopped on SIGINT, exit ${bridgeCode})`));
say();
say(paint('dim', `$ mc-native status --watch ${watchDir}`));
await new Promise((resolve) => spawn(process.execPath, [CLI, 'status', '--watch', watchDir], { stdio: 'inherit' }).once('exit', resolve));
say();

const rows = [...board.values()];
const done = rows.filter((row) => row.path.at(-1) === 'done').length;
const ok = outcome === 'ended' && done === board.size && bridgeCode === 0;
if (ok) {
  const everyStep = rows.every((row) => row.path.join() === 'queued,assigned,running,done');
  say(paint('green', `All ${board.size} missions ${everyStep ? 'went queued → assigned → running → done' : 'are done'} in ${seconds()}.`));
  say('Each session.json holds every status change; log.jsonl beside it, every event.');
} else {
  say(paint('red', `Demo failed: ${outcome === 'ended' ? `${done} of ${board.size} missions done, bridge exit ${bridgeCode}` : outcome}.`));
}
if (opts.keep) say(`The queue is kept in ${watchDir}.`);
await cleanUp();
process.exitCode = ok ? 0 : 1;
