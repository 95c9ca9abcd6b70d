'use strict';
// What the cross builds and lints need, for scripts/build-linux.js and
// scripts/lint-targets.js: rustup targets, and zig + cargo-zigbuild from
// PyPI. Missing pieces are installed unless `install` is false, in which
// case the caller is told the exact commands.

const { spawnSync } = require('node:child_process');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');

/** stdout of a command that succeeded, or null. */
function probe(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.error || r.status !== 0 ? null : r.stdout.trim();
}

function fail(who, message) {
  console.error(`${who}: ${message}`);
  process.exit(1);
}

/** Runs a command in the repository with inherited output; exits on failure. */
function run(who, cmd, args, options = {}) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', ...options });
  if (r.error) fail(who, `${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(who, `${cmd} ${args[0]} failed (${r.signal || `exit ${r.status}`})`);
}

const python = () => (probe('python3', ['--version']) !== null ? 'python3' : 'python');

/** The zig command as [file, ...args], or null. */
function zigCommand() {
  if (probe('zig', ['version']) !== null) return ['zig'];
  if (probe(python(), ['-m', 'ziglang', 'version']) !== null) return [python(), '-m', 'ziglang'];
  return null;
}

/**
 * Makes sure the rustup targets, and (with `zig`) zig and cargo-zigbuild,
 * are there. Returns the zig command.
 */
function ensureTools(who, { targets, zig = true, install = true }) {
  const missing = [];
  const installed = probe('rustup', ['target', 'list', '--installed']);
  if (installed === null) fail(who, 'rustup is needed (https://rustup.rs): it adds the cross targets');
  const missingTargets = targets.filter((t) => !installed.split('\n').includes(t));
  if (missingTargets.length) missing.push(['rustup', 'target', 'add', ...missingTargets]);
  const pypi = zig ? [zigCommand() === null && 'ziglang', probe('cargo-zigbuild', ['--version']) === null && 'cargo-zigbuild'].filter(Boolean) : [];
  if (pypi.length) missing.push([python(), '-m', 'pip', 'install', ...pypi]);

  if (missing.length && !install) {
    fail(who, `missing tools. Install them with:\n${missing.map((m) => `  ${m.join(' ')}`).join('\n')}`);
  }
  for (const [cmd, ...args] of missing) run(who, cmd, args);
  if (!zig) return null;
  const zigCmd = zigCommand();
  if (zigCmd === null) fail(who, `zig is not usable after installing it: \`${python()} -m ziglang version\` fails`);
  const zigbuild = probe('cargo-zigbuild', ['--version']);
  if (zigbuild === null) fail(who, `cargo-zigbuild is installed but not on PATH: add the scripts directory of ${python()} (\`${python()} -m pip show -f cargo-zigbuild\`) to PATH`);
  console.log(`zig ${probe(zigCmd[0], [...zigCmd.slice(1), 'version'])}, ${zigbuild}`);
  return zigCmd;
}

module.exports = { ROOT, probe, fail, run, ensureTools };
