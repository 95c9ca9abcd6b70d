'use strict';
// @aiwg/mc-native: every public name of the package.
module.exports = {
  ...require('./js/queue-tailer.js'),
  ...require('./js/dispatch-client.js'),
  ...require('./js/status-writer.js'),
  ...require('./js/executor-ws-client.js'),
  ExternalMultiLoopStateManager: require('./js/external-multi-loop-state-manager.js').ExternalMultiLoopStateManager,
};
