// @aiwg/mc-native/dispatch-client (ESM)
import cjs from './dispatch-client.js';

export const { classifyStatus, reasonForStatus, sleep, dispatchMission } = cjs;
