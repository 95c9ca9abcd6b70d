#!/usr/bin/env node
'use strict';
// The `mc-native` command; everything it does lives in ../cli/.
require('../cli/main.js').main(process.argv.slice(2));
