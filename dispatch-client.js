'use strict';
// @aiwg/mc-native/dispatch-client
const { classifyStatus, reasonForStatus, sleep, dispatchMission } = require('./js/dispatch-client.js');

module.exports = { classifyStatus, reasonForStatus, sleep, dispatchMission };
