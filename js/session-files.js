'use strict';
// Session files as the queue-tailer module exposes them: discoverSessions,
// readSession, writeSessionAtomic. The file work is native
// (src/mission_control/session.rs: the writers' lock, durable atomic
// replace); the values are made here with Node's own `path` and `JSON`, so
// they are the ones the JavaScript module gives.

const path = require('node:path');
const { fileURLToPath } = require('node:url');
const native = require('./native.js');
const { settle } = require('./errors.js');

/** A path argument as `fs` takes it: a string, a Buffer or a `file:` URL. */
function fsPath(p) {
  if (p instanceof URL) return fileURLToPath(p);
  if (Buffer.isBuffer(p)) return p.toString();
  return p;
}

/** `<root>/sessions/<d>/session.json` for every directory `d`. */
async function discoverSessions(root) {
  const dir = path.join(root, 'sessions');
  const names = await settle(native.listDirectories(dir));
  return names.map((name) => path.join(dir, name, 'session.json'));
}

/** The parsed session, or null when it cannot be read or is not JSON. */
async function readSession(sessionJsonPath) {
  try {
    return JSON.parse(await native.readText(fsPath(sessionJsonPath)));
  } catch {
    return null;
  }
}

/**
 * Create the parent directories, stamp `session.updatedAt` (on the
 * caller's object), and replace the file with `JSON.stringify(session,
 * null, 2)` atomically and durably.
 */
async function writeSessionAtomic(sessionJsonPath, session) {
  const target = fsPath(sessionJsonPath);
  path.dirname(target); // as the original's mkdir(dirname(path)): a TypeError for a non-path
  await settle(native.makeParentDirs(target));
  session.updatedAt = new Date().toISOString();
  const text = JSON.stringify(session, null, 2);
  if (typeof text !== 'string') {
    const err = new TypeError(
      `The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView. Received ${typeof text}`,
    );
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  await settle(native.writeSessionText(target, text));
}

module.exports = { discoverSessions, readSession, writeSessionAtomic, fsPath };
