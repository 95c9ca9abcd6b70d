// `mc-native` as a person runs it, for the CLI tests: a child process of
// bin/mc-native.js whose output the test reads as it comes.
//
//   import { runCli, startCli, cleanEnv } from './helpers/cli-process.mjs';
//
//   const { code, stdout, stderr } = await runCli(['status', '--watch', dir]);
//
//   const cli = startCli(s, ['bridge', '--watch', dir]);   // s = scope(t): killed in teardown
//   await cli.waitOutput(/queue-tailer:dispatched/, 5000);   // → the stdout text so far
//   cli.kill('SIGINT');
//   const { code, signal, ms } = await cli.exited;           // ms: from kill() to exit
//
// Children get the environment without FORCE_COLOR / NO_COLOR (add them
// through `env` to test colour).

import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor, within } from './waiting.mjs';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = path.join(ROOT, 'bin', 'mc-native.js');

/** process.env without what would change how a child colours or reports, plus `extra`. */
export function cleanEnv(extra = {}) {
  const env = { ...process.env };
  for (const key of ['FORCE_COLOR', 'NO_COLOR', 'NODE_TEST_CONTEXT']) delete env[key];
  return { ...env, ...extra };
}

/**
 * Start `command args` with piped output; the returned object is `startCli`'s.
 * `s` (a scope) kills it in teardown if it is still running; with `group`
 * it leads a process group of its own and the whole group is killed (for
 * `npm run`, whose script runs in grandchildren).
 */
export function startProcess(s, command, args, { env = {}, cwd = ROOT, group = false } = {}) {
  const child = spawn(command, args, { cwd, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'], detached: group });
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (d) => (out.stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (out.stderr += d));
  let killedAt = null;
  const exited = new Promise((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, ms: killedAt === null ? null : Date.now() - killedAt }));
  });
  s?.defer(async () => {
    if (group) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The group has ended already.
      }
    } else if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
    await exited;
  });
  return {
    child,
    exited,
    get stdout() {
      return out.stdout;
    },
    get stderr() {
      return out.stderr;
    },
    /** Lines of stdout so far. */
    lines() {
      return out.stdout.split('\n').filter(Boolean);
    },
    /** Wait until stdout matches `pattern` (a RegExp or `text => bool`); → stdout. */
    waitOutput(pattern, ms = 5000, what = String(pattern)) {
      const test = typeof pattern === 'function' ? pattern : (text) => pattern.test(text);
      return waitFor(() => test(out.stdout) && out.stdout, ms, `${what}; stdout so far:\n${out.stdout}\nstderr:\n${out.stderr}`);
    },
    kill(signal) {
      killedAt = Date.now();
      child.kill(signal);
    },
  };
}

/** Start `mc-native args`; see the header. */
export function startCli(s, args, options) {
  return startProcess(s, process.execPath, [CLI, ...args], options);
}

/** Run `mc-native args` to its end: → `{code, signal, stdout, stderr}`. */
export async function runCli(args, { env, cwd, timeoutMs = 10_000 } = {}) {
  const cli = startProcess(null, process.execPath, [CLI, ...args], { env, cwd });
  try {
    const { code, signal } = await within(cli.exited, timeoutMs, `mc-native ${args.join(' ')}`);
    return { code, signal, stdout: cli.stdout, stderr: cli.stderr };
  } finally {
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
  }
}
