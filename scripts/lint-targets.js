#!/usr/bin/env node
'use strict';
// `npm run lint:targets [-- <target>…]`: `cargo clippy --target <t>
// --all-targets -- -D warnings` for every target package.json names (or
// the ones given), so cfg(windows) and cfg(target_os = "macos") code is
// type-checked and linted on this Linux machine too.
//
// Linting compiles but links nothing; only ring's C needs a compiler for
// the target. On x64 Linux that compiler is zig (PyPI `ziglang`):
//   - Linux and macOS targets: `cargo-zigbuild clippy`, which sets zig up as
//     the C compiler (zig ships the macOS and glibc/musl headers);
//   - x86_64-pc-windows-msvc: plain `cargo clippy` with CC/AR for that
//     target set to `zig cc -target x86_64-windows-gnu` / `zig lib`. zig has
//     no MSVC headers; mingw's serve to compile ring's portable C for a lint.
//     The Windows binary itself is built by MSVC on a Windows runner.
// On any other host: the host target only, with plain `cargo clippy`.
// CARGO_TARGET_DIR is honoured. Missing rustup targets and PyPI packages are
// installed (--no-install: only say what is missing).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { run, fail, probe, ensureTools } = require('./tools.js');

const WHO = 'lint:targets';
const all = require('../package.json').napi.targets;
const args = process.argv.slice(2);
const wanted = args.filter((a) => !a.startsWith('--'));
const unknown = wanted.filter((t) => !all.includes(t));
if (unknown.length) fail(WHO, `unknown target ${unknown.join(', ')}; package.json names ${all.join(', ')}`);
let targets = wanted.length ? wanted : all;

const host = (probe('rustc', ['-vV']) || '').match(/^host: (.+)$/m)?.[1];
const crossHost = host === 'x86_64-unknown-linux-gnu';
if (!crossHost) {
  console.log(`${WHO}: this host (${host}) lints its own target only; the cross lints run on x64 Linux`);
  targets = targets.filter((t) => t === host);
}
const zig = ensureTools(WHO, { targets, zig: crossHost && targets.some((t) => t !== host), install: !args.includes('--no-install') });

const clippy = ['--all-targets', '--', '-D', 'warnings'];
const envKey = (t) => t.replace(/-/g, '_');
let wrappers;
const results = [];
for (const t of targets) {
  const started = Date.now();
  const env = { ...process.env };
  if (t.endsWith('-musl')) {
    // As `napi build` does: a musl cdylib links libc dynamically.
    env[`CARGO_TARGET_${envKey(t).toUpperCase()}_RUSTFLAGS`] = '-C target-feature=-crt-static';
  }
  if (t === host) {
    run(WHO, 'cargo', ['clippy', '--target', t, ...clippy], { env });
  } else if (t.endsWith('-windows-msvc')) {
    wrappers ??= writeWindowsWrappers(zig);
    env[`CC_${envKey(t)}`] = wrappers.cc;
    env[`AR_${envKey(t)}`] = wrappers.ar;
    run(WHO, 'cargo', ['clippy', '--target', t, ...clippy], { env });
  } else {
    run(WHO, 'cargo-zigbuild', ['clippy', '--target', t, ...clippy], { env });
  }
  results.push(`${t}: clean (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}
if (wrappers) fs.rmSync(wrappers.dir, { recursive: true, force: true });
console.log(`\n${WHO}: ${results.length} targets, no warnings\n  ${results.join('\n  ')}`);

/** zig as the C compiler and archiver for an MSVC target, in a scratch directory. */
function writeWindowsWrappers(zigCmd) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-zig-msvc-'));
  const zigLine = zigCmd.map((a) => `'${a}'`).join(' ');
  const cc = path.join(dir, 'cc');
  const ar = path.join(dir, 'ar');
  // cc-rs adds --target=x86_64-pc-windows-msvc for a clang; zig's own -target wins.
  fs.writeFileSync(cc, `#!/usr/bin/env bash\na=(); for x in "$@"; do [[ $x == --target=* ]] || a+=("$x"); done\nexec ${zigLine} cc -target x86_64-windows-gnu "\${a[@]}"\n`, { mode: 0o755 });
  // cc-rs drives an MSVC target's archiver as lib.exe; zig lib is llvm-lib.
  fs.writeFileSync(ar, `#!/usr/bin/env bash\nexec ${zigLine} lib "$@"\n`, { mode: 0o755 });
  return { dir, cc, ar };
}
