'use strict';
// @aiwg/mc-native/status-writer
const { applyStatusUpdate, applyStatusUpdatesBatched } = require('./js/status-writer.js');

module.exports = { applyStatusUpdate, applyStatusUpdatesBatched };
