'use strict';
// Not an entry point: package.json's exports sends
// @aiwg/mc-native/external-multi-loop-state-manager to
// cjs/external-multi-loop-state-manager.js. Kept only because cli/loops.js
// require('../external-multi-loop-state-manager.js'); delete it once that
// requires '../js/external-multi-loop-state-manager.js'.
module.exports = require('./cjs/external-multi-loop-state-manager.js');
