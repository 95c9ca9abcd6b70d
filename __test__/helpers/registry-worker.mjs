// Child process for __test__/loop-registry-multiprocess.test.mjs.
//
// Forked with an IPC channel. It loads the native ExternalMultiLoopStateManager,
// announces itself with {type:'ready', pid}, then runs the commands the parent
// sends, answering each with a JSON-serialisable message. It exits when the
// parent disconnects, so a crashed test never leaves it behind.
//
// Commands:
//   {cmd:'cycles', root, n, startAt}
//       n × (createLoop(force) → updateLoop(status completed) → updateLoopPid → archiveLoop)
//       → {type:'cycles-done', ok, cycles, loopIds, error?}
//   {cmd:'acquire', root, loopId, maxLockAttempts?}
//       → {type:'acquiring', at} then {type:'acquired', at, fencingToken} | {type:'acquire-failed', at, message}
//   {cmd:'release', root, loopId}
//       → {type:'released', at}   (`at` is taken just before releaseLock)
//   {cmd:'exclusive', root, loopId, marker, holdMs, startAt}
//       acquireLock, create `marker` with flag 'wx', sleep holdMs, remove it, releaseLock
//       → {type:'exclusive-done', ok, acquiredAt, releasedAt, error?}
//   {cmd:'hold', root, loopId, holdMs}
//       acquireLock, report {type:'acquired', at}, sleep holdMs, then
//       report {type:'releasing', at} and releaseLock → {type:'released', at}
//   {cmd:'exit'}

import fs from 'node:fs';
import { ExternalMultiLoopStateManager } from '../../index.mjs';

const managers = new Map();
function manager(root, maxLockAttempts) {
  let m = managers.get(root);
  if (!m) {
    m = new ExternalMultiLoopStateManager(root);
    managers.set(root, m);
  }
  m.maxLockAttempts = maxLockAttempts ?? 300;
  return m;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const untilTime = (at) => sleep(Math.max(0, (at ?? 0) - Date.now()));
const send = (msg) => process.send({ pid: process.pid, ...msg });
const errText = (e) => (e && e.message) || String(e);

async function cycles({ root, n, startAt }) {
  const m = manager(root);
  await untilTime(startAt);
  const loopIds = [];
  let done = 0;
  try {
    for (let i = 0; i < n; i++) {
      const { loopId } = await m.createLoop(
        { objective: `worker ${process.pid} cycle ${i}` },
        { force: true },
      );
      loopIds.push(loopId);
      const state = m.updateLoop(loopId, { status: 'completed' });
      if (state.status !== 'completed') throw new Error(`updateLoop returned status ${state.status}`);
      await m.updateLoopPid(loopId, process.pid);
      await m.archiveLoop(loopId);
      done++;
    }
    send({ type: 'cycles-done', ok: true, cycles: done, loopIds });
  } catch (e) {
    send({ type: 'cycles-done', ok: false, cycles: done, loopIds, error: errText(e) });
  }
}

async function acquire({ root, loopId, maxLockAttempts }) {
  const m = manager(root, maxLockAttempts);
  send({ type: 'acquiring', at: Date.now() });
  try {
    const { fencingToken } = await m.acquireLock(loopId);
    send({ type: 'acquired', at: Date.now(), fencingToken });
  } catch (e) {
    send({ type: 'acquire-failed', at: Date.now(), message: errText(e) });
  }
}

function release({ root, loopId }) {
  const m = manager(root);
  const at = Date.now();
  m.releaseLock(loopId);
  send({ type: 'released', at });
}

async function exclusive({ root, loopId, marker, holdMs, startAt }) {
  const m = manager(root);
  await untilTime(startAt);
  let acquiredAt = null;
  let releasedAt = null;
  let fd = null;
  try {
    await m.acquireLock(loopId);
    acquiredAt = Date.now();
    try {
      fd = fs.openSync(marker, 'wx');
    } catch (e) {
      throw new Error(`marker ${e.code || errText(e)}: another holder was inside`);
    }
    fs.writeSync(fd, String(process.pid));
    await sleep(holdMs);
    fs.closeSync(fd);
    fd = null;
    fs.unlinkSync(marker);
    releasedAt = Date.now();
    m.releaseLock(loopId);
    send({ type: 'exclusive-done', ok: true, acquiredAt, releasedAt });
  } catch (e) {
    if (fd !== null) fs.closeSync(fd);
    try {
      m.releaseLock(loopId);
    } catch {}
    send({ type: 'exclusive-done', ok: false, acquiredAt, releasedAt, error: errText(e) });
  }
}

async function hold({ root, loopId, holdMs }) {
  const m = manager(root);
  try {
    const { fencingToken } = await m.acquireLock(loopId);
    send({ type: 'acquired', at: Date.now(), fencingToken });
  } catch (e) {
    send({ type: 'acquire-failed', at: Date.now(), message: errText(e) });
    return;
  }
  await sleep(holdMs);
  const at = Date.now();
  send({ type: 'releasing', at });
  m.releaseLock(loopId);
  send({ type: 'released', at });
}

const handlers = { cycles, acquire, release, exclusive, hold };

process.on('message', (msg) => {
  if (msg.cmd === 'exit') process.exit(0);
  const handler = handlers[msg.cmd];
  if (!handler) {
    send({ type: 'error', message: `unknown command ${msg.cmd}` });
    return;
  }
  Promise.resolve()
    .then(() => handler(msg))
    .catch((e) => send({ type: 'error', message: errText(e) }));
});
process.on('disconnect', () => process.exit(1));

send({ type: 'ready' });
