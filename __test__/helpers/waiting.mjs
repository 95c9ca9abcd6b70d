// Bounded waiting and per-test teardown, shared by the node:test suites.

import { setTimeout as delay } from 'node:timers/promises';

/** `promise`, or a rejection after `ms` naming `what`. The timer does not outlive the race. */
export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

/** Poll `check` every 10 ms until it returns something truthy (returned); fail after `ms`. */
export async function waitFor(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(10);
  }
}

/** Teardown for one test: `defer(fn)` steps run last-in first-out after it, each bounded. */
export function scope(t) {
  const steps = [];
  t.after(async () => {
    for (const step of steps.reverse()) {
      try {
        await within(step(), 10_000, 'teardown step');
      } catch (err) {
        console.error('teardown:', err);
      }
    }
  });
  return { defer: (fn) => steps.push(fn) };
}
