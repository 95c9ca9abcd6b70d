// @aiwg/mc-native (ESM): every public name of the package.
import cjs from './index.js';

export const { ExternalMultiLoopStateManager } = cjs;
export default cjs;
