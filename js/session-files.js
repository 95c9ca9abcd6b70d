'use strict';
// Session files as the queue-tailer module exposes them: discoverSessions,
// readSession, writeSessionAtomic (src/mission_control/session.rs).

const native = require('./native.js');
const check = require('./validate.js');

/** `<root>/sessions/<d>/session.json` for every directory `d`. */
async function discoverSessions(root) {
  return native.discoverSessions(check.string('root', root));
}

/** The parsed session, or null when missing or not JSON. */
async function readSession(sessionJsonPath) {
  const text = await native.readSession(check.string('path', sessionJsonPath));
  return text === null ? null : JSON.parse(text);
}

/** Stamp `updatedAt` and write atomically and durably. */
async function writeSessionAtomic(sessionJsonPath, session) {
  check.string('path', sessionJsonPath);
  if (session === undefined || typeof session === 'function' || typeof session === 'symbol') {
    throw check.invalidArg('session', 'a JSON value', session);
  }
  const stamp = await native.writeSessionAtomic(sessionJsonPath, JSON.stringify(session));
  if (stamp && session !== null && typeof session === 'object' && !Array.isArray(session)) session.updatedAt = stamp;
}

module.exports = { discoverSessions, readSession, writeSessionAtomic };
