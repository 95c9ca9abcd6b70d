'use strict';
// The compiled addon, through the loader `napi build` generates (binding.js):
// NAPI_RS_NATIVE_LIBRARY_PATH if set, else a binary built in this checkout
// (mc-native.<platform>.node), else the prebuilt `@aiwg/mc-native-<platform>`
// package that npm installs as an optional dependency.
//
// When none loads, `require('@aiwg/mc-native')` throws one Error (code
// ERR_MC_NATIVE_NO_BINARY) that names this platform, the platforms with a
// prebuilt package, and how to build from source, instead of the loader's
// chain of "Cannot find module" errors. `cause` keeps the one failure worth
// seeing (a binary that exists but would not load), if there was one.

const { napi } = require('../package.json');

/** The napi platform name of a Rust target triple, as `napi build --platform` names files. */
function platformOfTriple(triple) {
  const [arch, , os, abi] = triple.split('-');
  const cpu = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' }[arch] || arch;
  if (os === 'darwin') return `darwin-${cpu}`;
  if (os === 'windows') return `win32-${cpu}-${abi}`;
  return `${os}-${cpu}${abi ? `-${abi}` : ''}`;
}

/** The platform name this process needs, e.g. linux-arm64-gnu. */
function currentPlatform() {
  const { platform, arch } = process;
  if (platform === 'darwin') return `darwin-${arch}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  if (platform === 'linux') {
    let glibc = true;
    try {
      glibc = Boolean(process.report.getReport().header.glibcVersionRuntime);
    } catch {}
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  return `${platform}-${arch}`;
}

/** The loader's errors, from its `cause` chain. */
function loaderErrors(err) {
  const errors = [];
  for (let e = err; e && errors.length < 50; e = e.cause) errors.push(e);
  return errors;
}

function noBinaryError(loadError) {
  const here = currentPlatform();
  const prebuilt = napi.targets.map(platformOfTriple);
  const pkg = (p) => `${napi.packageName}-${p}`;
  const file = `${napi.binaryName}.${here}.node`;
  // A binary that is there but would not load says more than "not found".
  const broken = loaderErrors(loadError).find((e) => !/Cannot find module|Cannot find native binding|Failed to load native binding/.test(String(e.message)));
  const override = process.env.NAPI_RS_NATIVE_LIBRARY_PATH;

  let why;
  if (override) {
    // The loader tried the override first: the deepest error of its chain.
    const first = loaderErrors(loadError).filter((e) => !/Cannot find native binding|Failed to load native binding/.test(String(e.message))).pop();
    why = `NAPI_RS_NATIVE_LIBRARY_PATH is set to ${override}, which did not load${first ? `: ${first.message.split('\n')[0]}` : ''}.`;
  } else if (prebuilt.includes(here)) {
    why = broken
      ? `The prebuilt binary for ${here} did not load: ${broken.message}`
      : `${pkg(here)}, which npm installs as an optional dependency of ${napi.packageName}, is not installed ` +
        '(installed with --omit=optional or --no-optional, or from a lock file made on another platform?). ' +
        `Reinstall ${napi.packageName} with optional dependencies.`;
  } else {
    why = `No prebuilt binary exists for ${here}.`;
  }
  const message =
    `@aiwg/mc-native: no native binary for this platform (${here}, Node ${process.version}). ${why}\n` +
    `Prebuilt packages exist for: ${prebuilt.map((p) => `${p} (${pkg(p)})`).join(', ')}.\n` +
    'To build from source: install Rust (https://rustup.rs) and, in a checkout of the package source, ' +
    `run \`npm install\` (it builds ${file} there, in a few minutes); then set ` +
    `NAPI_RS_NATIVE_LIBRARY_PATH=/path/to/checkout/${file}, or install the checkout itself.`;
  const error = new Error(message);
  error.code = 'ERR_MC_NATIVE_NO_BINARY';
  error.platform = here;
  error.prebuiltPlatforms = prebuilt;
  if (broken) error.cause = broken;
  return error;
}

let binding;
try {
  binding = require('../binding.js');
} catch (err) {
  const message = String(err && err.message);
  if (!/Cannot find native binding|Failed to load native binding/.test(message) && !(err && err.code === 'MODULE_NOT_FOUND' && /binding\.js/.test(message))) {
    throw err;
  }
  throw noBinaryError(err);
}
module.exports = binding;
