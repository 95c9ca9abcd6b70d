'use strict';
// Argument checks that fail the way Node's own APIs fail: a TypeError with
// code ERR_INVALID_ARG_TYPE naming the argument and what it received. They
// are used only where the original would crash on the value itself (a
// property read of undefined, a call of a non-function logger, `.replace`
// on a URL that is not a string); everywhere else values are read as
// plain JS reads them.

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

/** A value a destructuring or a property read can take: not null or undefined. */
function present(name, value, expected = 'an object') {
  if (value === undefined || value === null) throw invalidArg(name, expected, value);
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

module.exports = {
  invalidArg,
  string,
  number,
  object,
  optionalObject,
  array,
  optionalFunction,
  optionalSignal,
  present,
};
