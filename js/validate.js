'use strict';
// Argument checks that fail the way Node's own APIs fail: a TypeError with
// code ERR_INVALID_ARG_TYPE naming the argument and what it received.

const { inspect } = require('node:util');

function received(value) {
  if (value === null || value === undefined) return ` Received ${value}`;
  if (typeof value === 'function') return ` Received function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    const name = value.constructor && value.constructor.name;
    return name ? ` Received an instance of ${name}` : ` Received ${inspect(value, { depth: -1 })}`;
  }
  let shown = inspect(value, { colors: false });
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return ` Received type ${typeof value} (${shown})`;
}

function invalidArg(name, expected, value) {
  const err = new TypeError(`The "${name}" argument must be ${expected}.${received(value)}`);
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

function string(name, value) {
  if (typeof value !== 'string') throw invalidArg(name, 'of type string', value);
  return value;
}

function number(name, value) {
  if (typeof value !== 'number') throw invalidArg(name, 'of type number', value);
  return value;
}

function object(name, value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArg(name, 'an object', value);
  }
  return value;
}

function optionalObject(name, value) {
  return value === undefined || value === null ? {} : object(name, value);
}

function array(name, value) {
  if (!Array.isArray(value)) throw invalidArg(name, 'an array', value);
  return value;
}

function optionalFunction(name, value) {
  if (value !== undefined && value !== null && typeof value !== 'function') throw invalidArg(name, 'a function', value);
  return value ?? undefined;
}

function optionalSignal(name, value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || typeof value.aborted !== 'boolean' || typeof value.addEventListener !== 'function') {
    throw invalidArg(name, 'an AbortSignal', value);
  }
  return value;
}

/**
 * A number option (the fallback when undefined). Infinity ("no limit")
 * becomes the largest finite number, which JSON can carry to the native side.
 */
function optionalNumber(name, value, fallback) {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value)) throw invalidArg(name, 'of type number', value);
  if (!Number.isFinite(value)) return value > 0 ? Number.MAX_VALUE : -Number.MAX_VALUE;
  return value;
}

/** An http(s) URL string; anything else is a TypeError naming the argument. */
function httpUrl(name, value) {
  string(name, value);
  let url;
  try {
    url = new URL(value);
  } catch {
    url = null;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    const err = new TypeError(`The "${name}" argument must be an http:// or https:// URL. Received ${JSON.stringify(value)}`);
    err.code = 'ERR_INVALID_ARG_VALUE';
    throw err;
  }
  return value;
}

module.exports = {
  invalidArg,
  string,
  number,
  object,
  optionalObject,
  array,
  optionalFunction,
  optionalSignal,
  optionalNumber,
  httpUrl,
};
