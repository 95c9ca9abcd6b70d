'use strict';
// @aiwg/mc-native: every public name of the package.
const { ExternalMultiLoopStateManager } = require('./js/external-multi-loop-state-manager.js');

module.exports = { ExternalMultiLoopStateManager };
