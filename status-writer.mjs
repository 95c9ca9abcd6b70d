// @aiwg/mc-native/status-writer (ESM)
import cjs from './status-writer.js';

export const { applyStatusUpdate, applyStatusUpdatesBatched } = cjs;
