export { classifyStatus, reasonForStatus, sleep, dispatchMission } from './index'
