// @aiwg/mc-native/external-multi-loop-state-manager (ESM)
import cjs from './external-multi-loop-state-manager.js';

export const { ExternalMultiLoopStateManager } = cjs;
export default ExternalMultiLoopStateManager;
