// @aiwg/mc-native/executor-ws-client (ESM)
import cjs from './executor-ws-client.js';

export const { buildWsUrl, reconnectDelay, eventToStatusUpdate, startExecutorWS } = cjs;
