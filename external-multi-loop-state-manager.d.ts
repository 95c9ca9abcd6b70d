import { ExternalMultiLoopStateManager } from './index'

export { ExternalMultiLoopStateManager }
export type { LoopConfig, LoopRegistryEntry, LoopRegistryFile, LoopState } from './index'
export default ExternalMultiLoopStateManager
