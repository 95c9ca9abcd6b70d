export { buildWsUrl, reconnectDelay, eventToStatusUpdate, startExecutorWS } from './index'
