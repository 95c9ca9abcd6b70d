// A bridge (startQueueTailer) in a child process, for tests that SIGKILL it,
// run two at once, or watch it exit by itself. See lifecycle-bridge.mjs for
// the messages it sends.
//
//   const bridge = spawnBridge(s, options);   // s: scope(t) from waiting.mjs
//   await bridge.ready;                        // the initial sweep is done
//   bridge.logs                                // [{msg, meta}] as they came
//   bridge.child.kill('SIGKILL'); await bridge.exited;

import path from 'node:path';
import { fork } from 'node:child_process';

const BRIDGE = path.join(path.dirname(new URL(import.meta.url).pathname), 'lifecycle-bridge.mjs');

/** Fork a bridge with `options` (JSON-able); SIGKILLed in teardown if still alive. */
export function spawnBridge(s, options) {
  const child = fork(BRIDGE, [], {
    env: { ...process.env, LIFECYCLE_BRIDGE_OPTIONS: JSON.stringify(options) },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const bridge = { child, logs: [], messages: [], stderr: '', exit: null };
  child.stdout.resume();
  child.stderr.on('data', (d) => {
    bridge.stderr += d;
  });
  child.on('message', (m) => {
    bridge.messages.push(m);
    if (m && m.type === 'log') bridge.logs.push({ msg: m.msg, meta: m.meta });
  });
  bridge.exited = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      bridge.exit = { code, signal };
      resolve(bridge.exit);
    });
  });
  bridge.ready = new Promise((resolve, reject) => {
    child.on('message', (m) => {
      if (m && m.type === 'ready') resolve();
      if (m && m.type === 'error') reject(new Error(m.error));
    });
    child.on('exit', (code, signal) => reject(new Error(`bridge exited (${code}, ${signal}) before ready: ${bridge.stderr}`)));
  });
  bridge.ready.catch(() => {});
  s.defer(async () => {
    if (!bridge.exit) {
      child.kill('SIGKILL');
      await bridge.exited;
    }
  });
  return bridge;
}
