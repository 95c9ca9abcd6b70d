'use strict';
// @aiwg/mc-native: every public name of the package.
module.exports = {
  ...require('./queue-tailer.js'),
  ...require('./dispatch-client.js'),
  ...require('./status-writer.js'),
  ...require('./executor-ws-client.js'),
  ExternalMultiLoopStateManager: require('./external-multi-loop-state-manager.js').ExternalMultiLoopStateManager,
};
