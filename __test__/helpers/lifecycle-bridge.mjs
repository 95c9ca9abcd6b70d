// A bridge process for __test__/lifecycle.test.mjs: startQueueTailer in a
// child so the test can SIGKILL it and start another on the same watchDir
// (SPEC §9.1), or stop it and watch the process exit by itself (§6.6).
//
//   fork('lifecycle-bridge.mjs', { env: { LIFECYCLE_BRIDGE_OPTIONS: JSON.stringify(options) } })
//
// IPC to the parent:
//   {type:'log', msg, meta}   every logger call
//   {type:'ready'}            startQueueTailer resolved
//   {type:'error', error}     startQueueTailer rejected
//   {type:'stopped'}          after stop() resolved
// IPC from the parent:
//   {type:'stop'}             stop(); then drop the keep-alive timer and the
//                             IPC channel: nothing of ours is left, so the
//                             process must exit on its own.

import { startQueueTailer } from '../../esm/queue-tailer.mjs';

const options = JSON.parse(process.env.LIFECYCLE_BRIDGE_OPTIONS || '{}');
const send = (message) => {
  if (process.connected) process.send(message);
};

// Holds the process while the tailer runs, whatever the tailer itself holds.
const keepAlive = setInterval(() => {}, 60_000);

let tailer;
// The channel closing on its own means the test is gone (killed at its
// timeout): nobody will say stop, and a bridge left running would hold the
// test runner's stderr open, so the whole run would wait for it.
let leaving = false;
process.on('disconnect', () => {
  if (!leaving) process.exit(1);
});
process.on('message', async (message) => {
  if (!message || message.type !== 'stop' || !tailer) return;
  leaving = true;
  await tailer.stop();
  clearInterval(keepAlive);
  if (process.connected) process.send({ type: 'stopped' }, () => process.disconnect());
});

try {
  tailer = await startQueueTailer({
    ...options,
    logger: (msg, meta) => send({ type: 'log', msg, meta: meta === undefined ? null : meta }),
  });
  send({ type: 'ready' });
} catch (err) {
  send({ type: 'error', error: String(err && err.stack) });
  clearInterval(keepAlive);
  process.exitCode = 1;
  leaving = true;
  if (process.connected) process.disconnect();
}
