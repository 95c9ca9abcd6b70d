'use strict';
// Not an entry point: package.json's exports sends @aiwg/mc-native/queue-tailer
// to js/queue-tailer.js. Kept only because cli/bridge.js and cli/status.js
// require('../queue-tailer.js'); delete it once they require '../js/queue-tailer.js'.
module.exports = require('./js/queue-tailer.js');
