'use strict';
// @aiwg/mc-native/executor-ws-client
const { buildWsUrl, reconnectDelay, eventToStatusUpdate, startExecutorWS } = require('./js/executor-ws-client.js');

module.exports = { buildWsUrl, reconnectDelay, eventToStatusUpdate, startExecutorWS };
