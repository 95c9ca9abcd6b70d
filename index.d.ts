// Types for @aiwg/mc-native. Written by hand and checked against the
// runtime exports by __test__/types.test.mjs.

/** An entry of `registry.json`'s `active_loops`. */
export interface LoopRegistryEntry {
  loop_id: string
  task_summary: string
  status: string
  started_at: string
  owner: string
  pid: number | null
  iteration: number
  max_iterations: number
  completion_criteria?: unknown
  priority: string
  tags: string[]
  [key: string]: unknown
}

/** `registry.json`: the active loops of one project and the run counters. */
export interface LoopRegistryFile {
  version: string
  max_concurrent_loops: number
  updated_at: string
  active_loops: LoopRegistryEntry[]
  total_active: number
  total_completed: number
  total_aborted: number
  [key: string]: unknown
}

/** A loop's `session-state.json`. */
export interface LoopState {
  version: string
  loopId: string
  objective: string
  completionCriteria?: unknown
  status: string
  maxIterations: number
  currentIteration: number
  startTime: string
  lastUpdate: string
  sessionId: string
  currentPid: number
  iterations: unknown[]
  accumulatedLearnings: string
  filesModified: string[]
  giteaIntegration: unknown
  config: {
    model: string
    budgetPerIteration: number
    timeoutMinutes: number
    mcpConfig: unknown
    workingDir: string
  }
  [key: string]: unknown
}

/** What `createLoop` reads; other fields are ignored. */
export interface LoopConfig {
  objective: string
  loopId?: string
  completionCriteria?: unknown
  maxIterations?: number
  giteaIntegration?: unknown
  model?: string
  budgetPerIteration?: number
  timeoutMinutes?: number
  mcpConfig?: unknown
  workingDir?: string
  owner?: string
  priority?: string
  tags?: string[]
  [key: string]: unknown
}

/**
 * Tracks concurrent agent loops of one project in
 * `<projectRoot>/.aiwg/ralph-external/registry.json`, under a lock file that
 * JS and native processes share. Every registry read-modify-write takes the
 * lock; waiters wake as soon as it is released.
 */
export declare class ExternalMultiLoopStateManager {
  constructor(projectRoot: string)
  readonly projectRoot: string
  /** `<projectRoot>/.aiwg/ralph-external` */
  readonly baseDir: string
  /** `<baseDir>/registry.json` */
  readonly registryPath: string
  /** `<baseDir>/loops` */
  readonly loopsDir: string
  /** `<baseDir>/archive` */
  readonly archiveDir: string
  /** `<baseDir>/shared` */
  readonly sharedDir: string
  /** `<registryPath>.lock` */
  readonly lockPath: string
  /** How many 100 ms waits a lock acquisition allows before it rejects (default 300). */
  maxLockAttempts: number

  /** Create baseDir, loopsDir, archiveDir and sharedDir. */
  ensureBaseDir(): void
  /** `ralph-<slug>-<8 hex>`. */
  generateLoopId(task: string): string
  /** `n*(n-1)/2`. */
  calculateCommunicationPaths(n: number): number
  /** The registry, created fresh when missing; throws `Failed to load registry: …` when unreadable. */
  loadRegistry(): LoopRegistryFile
  /** Stamp `updated_at` and `total_active` (on `registry` too) and write it atomically. */
  saveRegistry(registry: LoopRegistryFile): void
  /** Take the registry lock; rejects `Failed to acquire lock after <n> attempts`. */
  acquireLock(loopId: string): Promise<{ acquired: true; fencingToken: number }>
  /** Remove the lock file if it holds `loopId` and this process. */
  releaseLock(loopId: string): void
  /** Signal-0 liveness check. */
  processExists(pid: number): boolean
  sleep(ms: number): Promise<void>
  /** Create a loop under the lock; rejects `Cannot create loop: …` past 4 active loops unless `force`. */
  createLoop(config: LoopConfig, options?: { force?: boolean }): Promise<{ loopId: string; state: LoopState }>
  /** Throws `Loop not found: <id>` or `Failed to load loop state: …`. */
  getLoop(loopId: string): LoopState
  /** Shallow-merge `changes`, stamp `lastUpdate`; a `status` is mirrored into the registry under the lock. */
  updateLoop(loopId: string, changes: Partial<LoopState> & Record<string, unknown>): LoopState
  listActiveLoops(): LoopRegistryEntry[]
  /** Record a new pid in the loop's state and registry entry, under the lock. */
  updateLoopPid(loopId: string, pid: number): Promise<void>
  isLoopAlive(loopId: string): boolean
  /** Move the loop to `archive/`, drop it from the registry, count it completed or aborted. */
  archiveLoop(loopId: string): Promise<void>
  /** Point `<baseDir>/session-state.json` at the one active loop (a regular file there is left alone). */
  updateLegacySymlink(): void
  /** Registry entries marked running whose pid is dead. */
  detectCrashedLoops(): LoopRegistryEntry[]
  /** Move a single-loop `<baseDir>/session-state.json` into `loops/<new id>/`; false when there is none. */
  migrateLegacyState(): Promise<boolean>
  getLoopDir(loopId: string): string
  getIterationDir(loopId: string, iteration: number): string
  getPromptPath(loopId: string, iteration: number): string
  getOutputPaths(loopId: string, iteration: number): { stdout: string; stderr: string }
}
