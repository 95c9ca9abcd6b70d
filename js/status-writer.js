'use strict';
// @aiwg/mc-native/status-writer: native read-modify-write of session files,
// FIFO per path (src/mission_control/status.rs).
//
// Each update is described to the native side with how its values compare
// under `===` (a NaN or an object id finds no mission; `undefined` finds
// one without an id) and which keys `JSON.stringify` would drop. The
// `session` handed back is built here, from the file's text and the
// caller's own values, as the original holds it in memory.

const native = require('./native.js');
const { settle } = require('./errors.js');
const { fsPath } = require('./session-files.js');

/** How `value` compares under `===` with values parsed from a file. */
function matchOf(value) {
  if (value === undefined) return 'absent';
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return 'equal';
  if (typeof value === 'number') return Number.isFinite(value) ? 'equal' : 'never';
  return 'never';
}

/**
 * The patch as JSON text, each top-level key in its place: a value that
 * `JSON.stringify` would drop (undefined, a function, a symbol, after
 * toJSON) is sent as null and its key listed in `dropped`.
 */
function patchText(patch, dropped) {
  return JSON.stringify(patch, function keepPlace(key, value) {
    if (this === patch && (value === undefined || typeof value === 'function' || typeof value === 'symbol')) {
      dropped.push(key);
      return null;
    }
    return value;
  });
}

/**
 * An update as the native side reads it, and the spread patch the result
 * is built from. Reads the update as the original does (`update.missionId`
 * on a non-object throws its TypeError).
 */
function describe(update) {
  const { missionId, status, transitionFrom } = update;
  const patch = { ...update.patch };
  const dropped = [];
  const sent = JSON.parse(patchText(patch, dropped));
  const statusText = JSON.stringify({ status });
  const statusDropped = statusText === '{}';
  // `{...current, ...patch, status}`: what is dropped at the end is what holds undefined then.
  const removed = dropped.filter((key) => key !== 'status');
  if (statusDropped) removed.push('status');
  const described = {
    id: matchOf(missionId) === 'equal' ? missionId : null,
    idMatch: matchOf(missionId),
    status: statusDropped ? null : JSON.parse(statusText).status,
    patch: sent,
    removed,
  };
  if (transitionFrom) {
    described.from = matchOf(transitionFrom) === 'equal' ? transitionFrom : true;
    described.fromMatch = matchOf(transitionFrom) === 'equal' ? 'equal' : 'never';
  }
  return { described, patch };
}

/**
 * Queue `updates` on the path. An update the original would fail to read
 * (`null.missionId`, a BigInt in a patch) fails only where the original
 * reads it: after the session was found; with no session the result stands.
 */
async function run(sessionJsonPath, updates, wantSession) {
  const file = String(fsPath(sessionJsonPath));
  let described;
  try {
    described = updates.map(describe);
  } catch (err) {
    const probe = await settle(native.applyStatusUpdates(file, '[]', false));
    if (probe.sessionFound) throw err;
    return { described: null, result: probe };
  }
  const text = JSON.stringify(described.map((d) => d.described));
  const result = await settle(native.applyStatusUpdates(file, text, wantSession));
  return { described, result };
}

/** The session as the original returns it: parsed from the file, with the update applied. */
function sessionOf(result, update, patch) {
  if (result.merged != null) return JSON.parse(result.merged);
  const session = JSON.parse(result.source);
  if (result.each[0] === 'applied') {
    const { missions } = session;
    const index = result.index[0];
    missions[index] = { ...missions[index], ...patch, status: update.status };
    session.updatedAt = result.updatedAt;
  }
  return session;
}

/** Apply one `{missionId, status, patch?, transitionFrom?}` update. */
async function applyStatusUpdate(sessionJsonPath, update) {
  const { described, result } = await run(sessionJsonPath, [update], true);
  if (!result.sessionFound) return { outcome: 'missing-session' };
  switch (result.each[0]) {
    case 'missing':
      return { outcome: 'missing-mission' };
    case 'stale':
      return { outcome: 'stale', session: sessionOf(result, update, described[0].patch) };
    default:
      return { outcome: 'updated', session: sessionOf(result, update, described[0].patch) };
  }
}

/** Apply updates in order with one read and at most one write. */
async function applyStatusUpdatesBatched(sessionJsonPath, updates) {
  // The original walks the updates with for...of, and lists them with .map when there is no session.
  const list = updates === null || updates === undefined || typeof updates[Symbol.iterator] !== 'function' ? null : [...updates];
  const { result } = list ? await run(sessionJsonPath, list, false) : await probe(sessionJsonPath, updates);
  if (!result.sessionFound) {
    return { outcome: 'missing-session', applied: [], missing: updates.map((u) => u.missionId) };
  }
  const pick = (what) => list.filter((_, i) => result.each[i] === what).map((u) => u.missionId);
  return { outcome: 'updated', applied: pick('applied'), missing: pick('missing') };
}

/** Look for the session only; with one there, `updates` fails as for...of fails on it. */
async function probe(sessionJsonPath, updates) {
  const result = await settle(native.applyStatusUpdates(String(fsPath(sessionJsonPath)), '[]', false));
  if (result.sessionFound) {
    for (const _ of updates); // throws the TypeError for...of throws
  }
  return { result };
}

module.exports = { applyStatusUpdate, applyStatusUpdatesBatched };
