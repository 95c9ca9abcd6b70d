'use strict';
// @aiwg/mc-native/queue-tailer
const { discoverSessions, readSession, writeSessionAtomic, queuedMissions, buildDispatchPayload, backoffMs, startQueueTailer } = require('./js/queue-tailer.js');

module.exports = { discoverSessions, readSession, writeSessionAtomic, queuedMissions, buildDispatchPayload, backoffMs, startQueueTailer };
