// @aiwg/mc-native/queue-tailer (ESM)
import cjs from './queue-tailer.js';

export const { discoverSessions, readSession, writeSessionAtomic, queuedMissions, buildDispatchPayload, backoffMs, startQueueTailer } = cjs;
