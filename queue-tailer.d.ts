export { discoverSessions, readSession, writeSessionAtomic, queuedMissions, buildDispatchPayload, backoffMs, startQueueTailer } from './index'
