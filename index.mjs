// @aiwg/mc-native (ESM): every public name of the package.
import cjs from './index.js';

export const {
  discoverSessions,
  readSession,
  writeSessionAtomic,
  queuedMissions,
  buildDispatchPayload,
  backoffMs,
  startQueueTailer,
  classifyStatus,
  reasonForStatus,
  sleep,
  dispatchMission,
  applyStatusUpdate,
  applyStatusUpdatesBatched,
  buildWsUrl,
  reconnectDelay,
  eventToStatusUpdate,
  startExecutorWS,
  ExternalMultiLoopStateManager,

} = cjs;
export default cjs;
