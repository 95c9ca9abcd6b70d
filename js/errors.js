'use strict';
// Errors from the native side as Node's own APIs throw them. An I/O failure
// arrives tagged with its details (src/node/mod.rs `js_error`) and becomes
// an Error of `fs`'s shape: message `ENOENT: no such file or directory,
// open '<path>'` with `errno`, `code`, `syscall`, `path` (and `dest`).
// Any other native error becomes a plain Error with its message, as the
// JavaScript modules throw them (no napi status code on it).

const util = require('node:util');

const SYSTEM_ERROR_TAG = 'mc-native:system-error:';

/** `[errno, description]` for a code name, from libuv's own table. */
let byCode = null;
function lookup(code) {
  if (!byCode) {
    byCode = new Map();
    for (const [errno, [name, description]] of util.getSystemErrorMap()) {
      if (!byCode.has(name)) byCode.set(name, [errno, description]);
    }
  }
  return byCode.get(code);
}

function systemError(detail) {
  let { code } = detail;
  let entry;
  // On POSIX systems the OS number is libuv's (negated); elsewhere go by name.
  if (process.platform !== 'win32' && Number.isInteger(detail.errno)) {
    const known = util.getSystemErrorMap().get(-detail.errno);
    if (known) {
      code = known[0];
      entry = [-detail.errno, known[1]];
    }
  }
  entry = entry || lookup(code) || [undefined, detail.message];
  const [errno, description] = entry;
  let message = `${code}: ${description}, ${detail.syscall} '${detail.path}'`;
  if (detail.dest != null) message += ` -> '${detail.dest}'`;
  const err = new Error(message);
  err.errno = errno;
  err.code = code;
  err.syscall = detail.syscall;
  err.path = detail.path;
  if (detail.dest != null) err.dest = detail.dest;
  return err;
}

/** The error a caller of the JavaScript modules would have seen. */
function fromNative(err) {
  if (!(err instanceof Error)) return err;
  const { message } = err;
  if (typeof message === 'string' && message.startsWith(SYSTEM_ERROR_TAG)) {
    let detail;
    try {
      detail = JSON.parse(message.slice(SYSTEM_ERROR_TAG.length));
    } catch {
      return err;
    }
    return systemError(detail);
  }
  if (err.code === 'GenericFailure' || err.code === 'InvalidArg') return new Error(message);
  return err;
}

/** `fn()`, with a native error rethrown as the JavaScript modules throw it. */
function call(fn) {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err);
  }
}

/** `promise`, with a native rejection turned as {@link call} turns throws. */
function settle(promise) {
  return promise.catch((err) => {
    throw fromNative(err);
  });
}

module.exports = { call, settle, fromNative };
