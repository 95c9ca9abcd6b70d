#!/usr/bin/env node
'use strict';
// `npm run build:linux [-- <target>…]`: on an x64 Linux machine, release
// binaries for the three Linux targets, each written where `napi artifacts`
// and `napi prepublish` expect it: npm/<platform>/mc-native.<platform>.node.
//
//   x86_64-unknown-linux-gnu   → npm/linux-x64-gnu    (glibc ≥ 2.17)
//   x86_64-unknown-linux-musl  → npm/linux-x64-musl   (Alpine)
//   aarch64-unknown-linux-gnu  → npm/linux-arm64-gnu  (glibc ≥ 2.17)
//
// Each is `napi build --platform --release --target <t> --cross-compile`:
// cargo-zigbuild with zig as the C compiler and linker, against glibc 2.17
// for the gnu targets (what napi's own cross toolchain targets), so the
// binaries load on any distribution of the last ten years, not only on one
// as new as this machine. Needs: rustup, Python 3 with pip (zig comes from
// the PyPI package `ziglang`, cargo-zigbuild from PyPI too); missing rustup
// targets and PyPI packages are installed by this script (--no-install:
// only say what is missing). CARGO_TARGET_DIR is honoured.
//
// Arguments: targets or platform names to build a subset, e.g.
// `npm run build:linux -- linux-arm64-gnu`.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const BINARY = require('../package.json').napi.binaryName;
const GLIBC = '2.17';

const TARGETS = [
  { triple: 'x86_64-unknown-linux-gnu', platform: 'linux-x64-gnu', zig: `x86_64-unknown-linux-gnu.${GLIBC}` },
  { triple: 'x86_64-unknown-linux-musl', platform: 'linux-x64-musl', zig: 'x86_64-unknown-linux-musl' },
  { triple: 'aarch64-unknown-linux-gnu', platform: 'linux-arm64-gnu', zig: `aarch64-unknown-linux-gnu.${GLIBC}` },
];

const args = process.argv.slice(2);
const noInstall = args.includes('--no-install');
const wanted = args.filter((a) => !a.startsWith('--'));
const unknown = wanted.filter((w) => !TARGETS.some((t) => t.triple === w || t.platform === w));
if (unknown.length) fail(`unknown target ${unknown.join(', ')}; known: ${TARGETS.map((t) => `${t.triple} (${t.platform})`).join(', ')}`);
const targets = wanted.length ? TARGETS.filter((t) => wanted.includes(t.triple) || wanted.includes(t.platform)) : TARGETS;

function fail(message) {
  console.error(`build:linux: ${message}`);
  process.exit(1);
}

/** Runs a command quietly; its result, or null if it could not start. */
function probe(cmd, cmdArgs) {
  const r = spawnSync(cmd, cmdArgs, { encoding: 'utf8' });
  return r.error || r.status !== 0 ? null : r.stdout.trim();
}

function run(cmd, cmdArgs, options = {}) {
  console.log(`$ ${cmd} ${cmdArgs.join(' ')}`);
  const r = spawnSync(cmd, cmdArgs, { cwd: ROOT, stdio: 'inherit', ...options });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${cmdArgs[0]} failed (${r.signal || `exit ${r.status}`})`);
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  fail(`this script cross-builds from x64 Linux; this is ${process.platform}-${process.arch}. ` +
    'Elsewhere build the host binary with `npm run build`.');
}

// --- What the build needs -------------------------------------------------
const missing = [];
const installed = probe('rustup', ['target', 'list', '--installed']);
if (installed === null) fail('rustup is needed (https://rustup.rs): the Rust toolchain manager adds the cross targets');
const missingTargets = targets.map((t) => t.triple).filter((t) => !installed.split('\n').includes(t));
if (missingTargets.length) missing.push({ what: `rustup targets ${missingTargets.join(' ')}`, cmd: 'rustup', args: ['target', 'add', ...missingTargets] });

const python = probe('python3', ['--version']) !== null ? 'python3' : 'python';
const zig = probe('zig', ['version']) ?? probe(python, ['-m', 'ziglang', 'version']);
const zigbuild = probe('cargo-zigbuild', ['--version']);
const pypi = [zig === null && 'ziglang', zigbuild === null && 'cargo-zigbuild'].filter(Boolean);
if (pypi.length) missing.push({ what: `PyPI ${pypi.join(' ')}`, cmd: python, args: ['-m', 'pip', 'install', ...pypi] });

if (missing.length && noInstall) {
  fail(`missing: ${missing.map((m) => m.what).join('; ')}. Install with:\n${missing.map((m) => `  ${m.cmd} ${m.args.join(' ')}`).join('\n')}`);
}
for (const m of missing) run(m.cmd, m.args);
if (pypi.length && probe('cargo-zigbuild', ['--version']) === null) {
  fail(`cargo-zigbuild is installed but not on PATH; add the directory of \`${python} -m pip show -f cargo-zigbuild\`'s script to PATH`);
}
console.log(`zig ${probe('zig', ['version']) ?? probe(python, ['-m', 'ziglang', 'version'])}, ${probe('cargo-zigbuild', ['--version'])}`);

// --- The builds -----------------------------------------------------------
const napi = path.join(ROOT, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js');
if (!fs.existsSync(napi)) fail('@napi-rs/cli is not installed: run `npm install` first');

const results = [];
for (const t of targets) {
  // napi writes the binary (and type definitions) to a scratch directory;
  // only the binary goes into the platform package.
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `mc-build-${t.platform}-`));
  const started = process.hrtime.bigint();
  try {
    run(process.execPath, [napi, 'build', '--platform', '--release', '--target', t.zig, '--cross-compile', '--no-js', '--output-dir', scratch]);
    const file = `${BINARY}.${t.platform}.node`;
    const built = path.join(scratch, file);
    if (!fs.existsSync(built)) fail(`napi build wrote no ${file}`);
    const dest = path.join(ROOT, 'npm', t.platform, file);
    fs.copyFileSync(built, dest);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    results.push({ target: t.triple, platform: t.platform, seconds, bytes: fs.statSync(dest).size, file: path.relative(ROOT, dest) });
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

console.log('\ntarget                      time     size      file');
for (const r of results) {
  console.log(`${r.target.padEnd(27)} ${`${r.seconds.toFixed(0)} s`.padStart(6)}  ${`${(r.bytes / 1e6).toFixed(2)} MB`.padStart(8)}  ${r.file}`);
}
