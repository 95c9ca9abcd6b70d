'use strict';
// @aiwg/mc-native/status-writer: native read-modify-write of session files,
// FIFO per path (src/mission_control/status.rs).

const native = require('./native.js');
const check = require('./validate.js');

function checkUpdate(name, update) {
  check.object(name, update);
  if (update.missionId === undefined) throw check.invalidArg(`${name}.missionId`, 'defined', update.missionId);
  if (update.status === undefined) throw check.invalidArg(`${name}.status`, 'defined', update.status);
  if (update.patch !== undefined && update.patch !== null) check.object(`${name}.patch`, update.patch);
  return update;
}

/** Apply one `{missionId, status, patch?, transitionFrom?}` update. */
async function applyStatusUpdate(sessionJsonPath, update) {
  check.string('sessionJsonPath', sessionJsonPath);
  checkUpdate('update', update);
  return JSON.parse(await native.applyStatusUpdate(sessionJsonPath, JSON.stringify(update)));
}

/** Apply updates in order with one read and at most one write. */
async function applyStatusUpdatesBatched(sessionJsonPath, updates) {
  check.string('sessionJsonPath', sessionJsonPath);
  check.array('updates', updates);
  updates.forEach((u, i) => checkUpdate(`updates[${i}]`, u));
  return JSON.parse(await native.applyStatusUpdatesBatched(sessionJsonPath, JSON.stringify(updates)));
}

module.exports = { applyStatusUpdate, applyStatusUpdatesBatched };
