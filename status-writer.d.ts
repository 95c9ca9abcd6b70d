export { applyStatusUpdate, applyStatusUpdatesBatched } from './index'
