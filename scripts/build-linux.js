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
// `npm run build:linux -- linux-arm64-gnu`; --loader also writes the
// generated loader binding.js and binding.d.ts into the root package (the
// release workflow's publish job takes them from the linux-x64-gnu build).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT, run: runIn, fail: failIn, ensureTools } = require('./tools.js');

const BINARY = require('../package.json').napi.binaryName;
const GLIBC = '2.17';

const TARGETS = [
  { triple: 'x86_64-unknown-linux-gnu', platform: 'linux-x64-gnu', zig: `x86_64-unknown-linux-gnu.${GLIBC}` },
  { triple: 'x86_64-unknown-linux-musl', platform: 'linux-x64-musl', zig: 'x86_64-unknown-linux-musl' },
  { triple: 'aarch64-unknown-linux-gnu', platform: 'linux-arm64-gnu', zig: `aarch64-unknown-linux-gnu.${GLIBC}` },
];

const fail = (message) => failIn('build:linux', message);
const run = (cmd, args) => runIn('build:linux', cmd, args);

const args = process.argv.slice(2);
const loader = args.includes('--loader');
const wanted = args.filter((a) => !a.startsWith('--'));
const unknown = wanted.filter((w) => !TARGETS.some((t) => t.triple === w || t.platform === w));
if (unknown.length) fail(`unknown target ${unknown.join(', ')}; known: ${TARGETS.map((t) => `${t.triple} (${t.platform})`).join(', ')}`);
const targets = wanted.length ? TARGETS.filter((t) => wanted.includes(t.triple) || wanted.includes(t.platform)) : TARGETS;

if (process.platform !== 'linux' || process.arch !== 'x64') {
  fail(`this script cross-builds from x64 Linux; this is ${process.platform}-${process.arch}. ` +
    'Elsewhere build the host binary with `npm run build`.');
}
ensureTools('build:linux', { targets: targets.map((t) => t.triple), install: !args.includes('--no-install') });

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
    const js = loader ? ['--js', 'binding.js', '--dts', 'binding.d.ts'] : ['--no-js'];
    run(process.execPath, [napi, 'build', '--platform', '--release', '--target', t.zig, '--cross-compile', ...js, '--output-dir', scratch]);
    if (loader) {
      // The generated loader and types, the same for every target: the root package's.
      for (const f of ['binding.js', 'binding.d.ts']) fs.copyFileSync(path.join(scratch, f), path.join(ROOT, f));
    }
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
