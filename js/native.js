'use strict';
// The compiled addon, through the loader `napi build` generates: a binary
// built in this checkout first, then the prebuilt `@aiwg/mc-native-<platform>`
// package. NAPI_RS_NATIVE_LIBRARY_PATH points it at any other build.
module.exports = require('../binding.js');
