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
  currentPid: number | null
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
  /** The registry's `active_loops` as it is (undefined when the registry has none). */
  listActiveLoops(): LoopRegistryEntry[] | undefined
  /** Record a new pid in the loop's state and registry entry, under the lock. */
  updateLoopPid(loopId: string, pid: number | null): Promise<void>
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

// ---- queue-tailer ---------------------------------------------------------

/** A mission as `aiwg mc dispatch` queues it; unknown fields are kept. */
export interface Mission {
  id: string
  objective: string
  status: MissionStatus | (string & {})
  completion?: string
  longRunning?: boolean
  targetExecutorId?: string
  requiredCapabilities?: string[]
  targetAgentId?: string
  mode?: 'direct' | 'pty-orchestrator' | (string & {})
  priority?: string
  metadata?: Record<string, unknown>
  [key: string]: unknown
}

export type MissionStatus =
  | 'queued' | 'assigned' | 'running' | 'hitl_required' | 'suspended' | 'paused' | 'done' | 'failed' | 'aborted'

/** `session.json`; unknown fields are kept. */
export interface Session {
  id: string
  name?: string
  state?: 'active' | 'paused' | 'stopped' | (string & {})
  maxMissions?: number
  createdAt?: string
  updatedAt?: string
  missions: Mission[]
  [key: string]: unknown
}

/** The executor-v1 dispatch body. */
export interface DispatchPayload {
  mission_id: string
  objective: string
  completion: string | null
  long_running: boolean
  executor_filter: { executor_id: string | null; capabilities: string[]; agent_id: string | null }
  metadata: { mc_session_id: string; mode: string; priority: string; [key: string]: unknown }
}

/** `(msg, meta)`: every log line of the package. A logger that throws is ignored. */
export type Logger = (msg: string, meta: Record<string, unknown>) => void

/** A fetch-compatible function: `fetchImpl(url, {method, headers, body, signal})`. */
export type FetchImpl = (
  url: string,
  init: { method: 'POST'; headers: Record<string, string>; body: string; signal: AbortSignal | undefined },
) => Promise<{ status: number; text(): Promise<string> }>

/** `<root>/sessions/<d>/session.json` for every directory `d` (sorted); `[]` without `sessions/`. */
export declare function discoverSessions(root: string): Promise<string[]>
/** The parsed session, or `null` when the file is missing or not valid JSON. */
export declare function readSession(path: string): Promise<Session | null>
/** Stamp `session.updatedAt` and write `JSON.stringify(session, null, 2)` atomically and durably. */
export declare function writeSessionAtomic(path: string, session: Session | Record<string, unknown>): Promise<void>
/** Every queued mission, in array order. */
export declare function queuedMissions(session: Session | null | undefined): Array<{ sessionId: string; mission: Mission }>
export declare function buildDispatchPayload(mission: Mission, options: { sessionId: string }): DispatchPayload
/** `min(30000, baseMs * 2^(attempt-1))`. */
export declare function backoffMs(attempt: number, baseMs: number): number

export interface QueueTailerOptions {
  /** Default `http://127.0.0.1:7337`. */
  aiwgServeUrl?: string
  /** Default `.aiwg/ralph-external/mc`. */
  watchDir?: string
  /** The polling fallback's interval (default 1000). */
  pollIntervalMs?: number
  /** Default 500. */
  retryBaseMs?: number
  /** Default 5. */
  maxAttempts?: number
  /** Log what would be dispatched; send nothing. */
  dryRun?: boolean
  /** Dispatches at a time (default 8). */
  maxInflight?: number
  /** Per request (default 30000); running out counts as a transport failure. */
  requestTimeoutMs?: number
  /** Poll every `pollIntervalMs` instead of watching. */
  usePolling?: boolean
  signal?: AbortSignal
  logger?: Logger
  fetchImpl?: FetchImpl
  /** Executor streams use this class instead of the Rust client. */
  WebSocketImpl?: WebSocketImplClass
  /** Default 1000 and 30000: the executor streams' reconnect backoff. */
  reconnectBaseMs?: number
  reconnectMaxMs?: number
  disableWSSubscription?: boolean
  executorTokens?: Record<string, string>
  subscribeExecutors?: string[]
}

export interface QueueTailer {
  /** Stop watching, drain in-flight work (up to 5 s). Idempotent. */
  stop(): Promise<void>
  /** The options merged over the defaults. */
  options: QueueTailerOptions & Required<Pick<QueueTailerOptions, 'aiwgServeUrl' | 'watchDir' | 'pollIntervalMs' | 'retryBaseMs' | 'maxAttempts'>>
}

/** Watch the queue and dispatch queued missions; resolves once the initial sweep is done. */
export declare function startQueueTailer(options?: QueueTailerOptions): Promise<QueueTailer>

// ---- dispatch-client ------------------------------------------------------

export type DispatchOutcome =
  | {
      outcome: 'accepted'
      missionId: string
      executorId: string
      estimatedStart: unknown
      dispatchPath: unknown
      idempotentReplayed: boolean
      attempts: number
    }
  | {
      outcome: 'failed'
      missionId: string
      reason:
        | 'aborted' | 'unreachable' | 'invalid_request' | 'unauthorized' | 'executor_not_found' | 'idempotency_conflict'
        | 'idempotency_key_reused' | 'no_executor_available' | 'client_error' | 'dispatch_error' | (string & {})
      message: string
      status: number
      attempts: number
    }

export interface DispatchOptions {
  aiwgServeUrl: string
  /** Default 500. */
  retryBaseMs?: number
  /** Default 5. */
  maxAttempts?: number
  /** Per request (default 30000). */
  requestTimeoutMs?: number
  fetchImpl?: FetchImpl
  logger?: Logger
}

export declare function classifyStatus(status: number): 'accepted' | 'retryable' | 'terminal'
export declare function reasonForStatus(status: number, fallback?: string): string
/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export declare function sleep(ms: number, signal?: AbortSignal): Promise<void>
/** POST a mission to `aiwg serve` with retries; never rejects for HTTP or network failures. */
export declare function dispatchMission(
  opts: DispatchOptions,
  mcSessionId: string,
  payload: DispatchPayload | Record<string, unknown>,
  signal?: AbortSignal,
): Promise<DispatchOutcome>

// ---- status-writer --------------------------------------------------------

export interface StatusUpdate {
  missionId: string
  status: MissionStatus | (string & {})
  patch?: Record<string, unknown>
  transitionFrom?: string
}

export declare function applyStatusUpdate(
  sessionJsonPath: string,
  update: StatusUpdate,
): Promise<{ outcome: 'updated' | 'stale'; session: Session } | { outcome: 'missing-session' | 'missing-mission' }>

export declare function applyStatusUpdatesBatched(
  sessionJsonPath: string,
  updates: StatusUpdate[],
): Promise<{ outcome: 'updated' | 'missing-session'; applied: string[]; missing: string[] }>

// ---- executor-ws-client ---------------------------------------------------

/** An executor event envelope (executor-v1). */
export interface ExecutorEvent {
  event: string
  executor_id: string
  mission_id?: string
  ts: string
  data?: Record<string, unknown>
  [key: string]: unknown
}

/** A browser-style WebSocket class. */
export interface WebSocketLike {
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void): void
  close(code?: number, reason?: string): void
}
export type WebSocketImplClass = new (url: string) => WebSocketLike

export interface ExecutorWSOptions {
  aiwgServeUrl: string
  executorId: string
  token?: string
  /** Called for every event (a returned promise is awaited for errors only). */
  onEvent?: (event: ExecutorEvent) => unknown
  /** `opened` (meta `{url}` with the token shown as `***`), `closed` (meta `{code}`), `error`. */
  onState?: (state: 'opened' | 'closed' | 'error', meta?: { url?: string; code?: number }) => void
  logger?: Logger
  /** Default 1000. */
  reconnectBaseMs?: number
  /** Default 30000. */
  reconnectMaxMs?: number
  signal?: AbortSignal
  /** Use this class instead of the Rust client. */
  WebSocketImpl?: WebSocketImplClass
}

/** `ws(s)://<serve>/ws/executors/<encoded id>[?token=<encoded token>]`. */
export declare function buildWsUrl(aiwgServeUrl: string, executorId: string, token?: string): string
/** `min(maxMs, baseMs * 2^max(0, attempt-1))`. */
export declare function reconnectDelay(attempt: number, baseMs: number, maxMs: number): number
/** The status update an event stands for, or `null`. */
export declare function eventToStatusUpdate(event: ExecutorEvent | null | undefined): StatusUpdate | null
/** Follow one executor's stream; returned synchronously. */
export declare function startExecutorWS(opts: ExecutorWSOptions): { stop(): Promise<void>; ready: Promise<void> }
