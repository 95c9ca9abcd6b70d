'use strict';
// @aiwg/mc-native/external-multi-loop-state-manager
const { ExternalMultiLoopStateManager } = require('./js/external-multi-loop-state-manager.js');

module.exports = { ExternalMultiLoopStateManager, default: ExternalMultiLoopStateManager };
