//! The queue tailer: watch `watchDir`, start every queued mission's
//! dispatch in FIFO order with at most `maxInflight` at a time, and write
//! each outcome back to the session file the mission was found in.
//!
//! - [`watch`] turns file-system events into the session paths they touch;
//!   only those sessions are read again.
//! - [`scan`] reads one session and finds what to dispatch.
//! - [`writeback`] batches status updates per session file.
//! - Missions whose dispatch found serve unreachable (or was cut short by
//!   stop) stay `queued` and are tried again with capped backoff (§9.2).

mod backlog;
mod claims;
mod executors;
mod outcomes;
mod scan;
pub mod watch;
mod writeback;

use super::dispatch::{dispatch_mission, Cancel, DispatchOptions, Outcome, Transport};
use super::events::event_to_status_update;
use super::executor_ws::{self, WsHandler, WsOptions, WsState};
use super::journal;
use super::log::{FloodGuard, Logger};
use super::mission::StatusUpdate;
use super::mission::TERMINAL;
use super::session;
use super::status::UpdateResult;
use crate::backoff::{backoff_ms, sleep_ms};
use crate::clock::now_iso;
use crate::error::{Error, Result};
use scan::{Job, Scanner};
use serde_json::{json, Map, Value};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use watch::Change;
use writeback::Writeback;

pub use executors::WsConfig;
use executors::{Executors, Known};
pub use executors::{ExternalStreams, StreamInput};

/// When to look again at a session directory whose file was missing: a file
/// written right after its directory was created can beat the directory's watch.
const LOOK_AGAIN_MS: f64 = 100.0;

/// When to look again at a mission whose session another bridge is
/// dispatching from (its claim is taken).
const CLAIM_RETRY_MS: f64 = 250.0;

/// How long `stop()` waits for in-flight work.
pub const DRAIN: Duration = Duration::from_secs(5);

/// `startQueueTailer`'s options, merged with the defaults.
#[derive(Debug, Clone)]
pub struct TailerConfig {
    pub aiwg_serve_url: String,
    pub watch_dir: PathBuf,
    pub poll_interval: Duration,
    pub retry_base_ms: f64,
    pub max_attempts: u32,
    pub dry_run: bool,
    pub max_inflight: usize,
    pub request_timeout: Duration,
    /// Poll instead of watching (the fallback, forced).
    pub polling: bool,
    /// Executor subscriptions.
    pub ws: WsConfig,
}

impl Default for TailerConfig {
    fn default() -> Self {
        TailerConfig {
            aiwg_serve_url: "http://127.0.0.1:7337".into(),
            watch_dir: PathBuf::from(".aiwg/ralph-external/mc"),
            poll_interval: Duration::from_millis(1000),
            retry_base_ms: 500.0,
            max_attempts: 5,
            dry_run: false,
            max_inflight: 8,
            request_timeout: Duration::from_millis(30_000),
            polling: false,
            ws: WsConfig {
                reconnect_base_ms: 1000.0,
                reconnect_max_ms: 30_000.0,
                ..WsConfig::default()
            },
        }
    }
}

/// A running tailer's shared state.
struct Core {
    config: TailerConfig,
    dispatch: DispatchOptions,
    transport: Arc<dyn Transport>,
    log: Logger,
    stop: CancellationToken,
    /// Cuts off requests still in flight when the drain time is up.
    abandon: CancellationToken,
    tasks: TaskTracker,
    scanner: Scanner,
    queue: Mutex<BinaryHeap<Reverse<Arc<Job>>>>,
    queued: Notify,
    slots: Arc<Semaphore>,
    in_flight: AtomicUsize,
    /// Deferred missions (§9.2) and how often each was deferred in a row.
    deferrals: Mutex<HashMap<String, u32>>,
    writeback: Arc<Writeback>,
    executors: Executors,
    /// Event outcomes to log and journal, in order.
    reports: mpsc::UnboundedSender<Report>,
    /// Set when the caller runs the executor streams.
    external_subscribe: Option<executors::Subscribe>,
    /// Sessions this tailer is dispatching from, locked against other bridges.
    claims: claims::Claims,
    /// Events between the streams and the files.
    backlog: Arc<backlog::Backlog>,
    /// Log lines about events the tailer cannot use, limited under a flood.
    event_logs: FloodGuard,
}

/// Run a tailer until `stop` is cancelled. `on_ready` is called once the
/// initial sweep (and every dispatch it started) is done. Returns how many
/// dispatches were in flight when the stop came.
pub async fn run(
    config: TailerConfig,
    transport: Arc<dyn Transport>,
    log: Logger,
    stop: CancellationToken,
    external: Option<ExternalStreams>,
    on_ready: impl FnOnce(),
) -> Result<usize> {
    let (external_subscribe, external_inputs) = match external {
        Some(e) => (Some(e.subscribe), Some(e.inputs)),
        None => (None, None),
    };
    log.log(
        "queue-tailer:start",
        json!({"aiwgServeUrl": config.aiwg_serve_url, "watchDir": config.watch_dir.to_string_lossy(), "dryRun": config.dry_run}),
    );
    let (reports_tx, reports_rx) = mpsc::unbounded_channel();
    let root =
        std::fs::canonicalize(&config.watch_dir).unwrap_or_else(|_| config.watch_dir.clone());
    let core = Arc::new(Core {
        dispatch: DispatchOptions {
            aiwg_serve_url: config.aiwg_serve_url.clone(),
            retry_base_ms: config.retry_base_ms,
            max_attempts: config.max_attempts,
            request_timeout: config.request_timeout,
        },
        scanner: Scanner::new(root.clone(), config.aiwg_serve_url.clone(), config.dry_run),
        slots: Arc::new(Semaphore::new(config.max_inflight.max(1))),
        config,
        transport,
        log,
        stop,
        abandon: CancellationToken::new(),
        tasks: TaskTracker::new(),
        queue: Mutex::new(BinaryHeap::new()),
        queued: Notify::new(),
        in_flight: AtomicUsize::new(0),
        deferrals: Mutex::new(HashMap::new()),
        writeback: Arc::new(Writeback::default()),
        executors: Executors::default(),
        reports: reports_tx,
        external_subscribe,
        claims: claims::Claims::default(),
        backlog: Arc::default(),
        event_logs: FloodGuard::default(),
    });

    // Watch before the sweep, so nothing written during it is missed.
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = if core.config.polling {
        None
    } else {
        watch::watch(&root, tx).ok()
    };
    core.tasks.spawn(Arc::clone(&core).dispatcher());
    core.tasks.spawn(Arc::clone(&core).report(reports_rx));
    if let Some(inputs) = external_inputs {
        core.tasks.spawn(Arc::clone(&core).follow_external(inputs));
    }
    for executor_id in core.config.ws.subscribe.clone() {
        core.subscribe(&executor_id);
    }

    let initial = core.sweep(&root);
    core.wait_for(initial).await;
    on_ready();

    match watcher {
        Some(_watching) => core.follow_events(rx).await,
        None => core.poll(&root).await,
    }
    // Stopping: the watch is gone, nothing new starts, backoff waits end;
    // requests in flight get the drain time to answer, then are cut off.
    let in_flight = core.in_flight.load(Ordering::SeqCst);
    core.tasks.close();
    let started = std::time::Instant::now();
    if tokio::time::timeout(DRAIN, core.tasks.wait())
        .await
        .is_err()
    {
        core.abandon.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), core.tasks.wait()).await;
    }
    // Journal lines queued behind the last writes land before we say we stopped.
    let flushes: Vec<_> = core
        .scanner
        .seen_paths()
        .into_iter()
        .map(super::path_queue::flush)
        .collect();
    let left = DRAIN
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(100));
    let _ = tokio::time::timeout(left, futures_util::future::join_all(flushes)).await;
    core.log
        .log("queue-tailer:stop", json!({"drainedInflight": in_flight}));
    Ok(in_flight)
}

impl Core {
    /// Examine every session under the root; queue what is found.
    fn sweep(self: &Arc<Self>, root: &Path) -> Vec<Arc<Job>> {
        match session::discover_sessions(root) {
            Ok(paths) => paths.iter().flat_map(|p| self.examine(p)).collect(),
            Err(e) => {
                self.log.log(
                    "queue-tailer:tick-error",
                    json!({"error": format!("{}: {e}", root.display())}),
                );
                Vec::new()
            }
        }
    }

    /// Examine one session file and queue its dispatchable missions.
    fn examine(self: &Arc<Self>, path: &Path) -> Vec<Arc<Job>> {
        let scan::Examined {
            jobs,
            look_again,
            held,
            restore,
        } = self.scanner.examine(path, &self.log);
        for (key, update) in restore {
            self.log.log(
                "queue-tailer:outcome-restored",
                json!({"missionId": update.mission_id, "path": path.to_string_lossy(), "status": update.status}),
            );
            let written = self.writeback.submit(&self.tasks, path, update);
            let core = Arc::clone(self);
            self.tasks.spawn(async move {
                let _ = written.await;
                core.scanner.release(&key);
            });
        }
        // §9.1: missions an executor holds are followed again after a restart.
        for (mission_id, executor_id) in held {
            self.follow(&mission_id, path, &executor_id);
        }
        if look_again {
            let core = Arc::clone(self);
            let path = path.to_path_buf();
            self.tasks.spawn(async move {
                sleep_ms(LOOK_AGAIN_MS, &core.stop).await;
                if !core.stop.is_cancelled() {
                    core.examine(&path);
                }
            });
        }
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        for job in &jobs {
            queue.push(Reverse(Arc::clone(job)));
        }
        drop(queue);
        if !jobs.is_empty() {
            self.queued.notify_one();
        }
        jobs
    }

    /// Wait until every job in `jobs` has finished (or the tailer stops).
    async fn wait_for(&self, jobs: Vec<Arc<Job>>) {
        for job in jobs {
            tokio::select! {
                () = job.done.cancelled() => {}
                () = self.stop.cancelled() => return,
            }
        }
    }

    /// Start queued jobs in FIFO order as slots free up.
    async fn dispatcher(self: Arc<Self>) {
        loop {
            let slot = tokio::select! {
                slot = Arc::clone(&self.slots).acquire_owned() => match slot { Ok(s) => s, Err(_) => return },
                () = self.stop.cancelled() => return,
            };
            let job = loop {
                if let Some(Reverse(job)) =
                    self.queue.lock().unwrap_or_else(|p| p.into_inner()).pop()
                {
                    break job;
                }
                tokio::select! {
                    () = self.queued.notified() => {}
                    () = self.stop.cancelled() => return,
                }
            };
            let core = Arc::clone(&self);
            self.tasks.spawn(async move {
                core.run_job(&job, slot).await;
                job.done.cancel();
            });
        }
    }

    /// Run one job; `slot` is its place among the `maxInflight` dispatches,
    /// given back as soon as serve has answered (the write-back does not
    /// hold it, so a slow disk does not slow dispatching).
    async fn run_job(self: &Arc<Self>, job: &Job, slot: OwnedSemaphorePermit) {
        let deferred = match self.dispatch_job(job, slot).await {
            Ok(deferred) => deferred,
            Err(e) => {
                self.log.log(
                    "queue-tailer:dispatch-error",
                    json!({"missionId": job.mission_id, "sessionId": job.session_id, "error": e.to_string()}),
                );
                false
            }
        };
        if !deferred {
            self.scanner.release(&job.key);
        }
    }

    /// Dispatch one mission and write its outcome back. `Ok(true)`: deferred (§9.2).
    async fn dispatch_job(self: &Arc<Self>, job: &Job, slot: OwnedSemaphorePermit) -> Result<bool> {
        let slot = InFlight::new(&self.in_flight, slot);
        if self.stop.is_cancelled() {
            return Ok(false);
        }
        // Held until the outcome is on disk, so another bridge re-reading
        // the session then sees it (§9.5).
        let Some(_claim) = self.claims.try_claim(&job.path) else {
            self.look_again_later(job, CLAIM_RETRY_MS);
            return Ok(true);
        };
        let Some(mission) = self.still_queued(job) else {
            return Ok(false);
        };
        let payload =
            session::build_dispatch_payload(&mission, &Value::from(job.session_id.clone()));
        let outcome = dispatch_mission(
            &self.dispatch,
            &job.session_id,
            &payload,
            self.transport.as_ref(),
            &self.log,
            Cancel {
                attempts: &self.stop,
                request: &self.abandon,
            },
        )
        .await;
        drop(slot);
        match &outcome {
            Outcome::Accepted {
                executor_id,
                estimated_start,
                attempts,
                ..
            } => {
                let patch = object(json!({
                    "executorId": executor_id,
                    "dispatchedAt": now_iso(),
                    "dispatchAttempts": attempts,
                    "estimatedStart": estimated_start.clone().unwrap_or(Value::Null),
                }));
                let pending = self.submit_outcome(job, &mission, "assigned", patch);
                // Follow the executor now: an event it sends right away queues
                // behind the `assigned` write, so its guard sees `assigned`.
                if let (Some(mission_id), Some(executor_id)) =
                    (job.mission_id.as_str(), executor_id.as_str())
                {
                    self.follow(mission_id, &job.path, executor_id);
                }
                Self::written(pending).await?;
                self.settled(&job.key);
                self.log.log(
                    "queue-tailer:dispatched",
                    json!({"missionId": job.mission_id, "sessionId": job.session_id, "executorId": executor_id, "attempts": attempts}),
                );
                journal::append(
                    &job.path,
                    json!({"type": "dispatch", "missionId": job.mission_id, "outcome": "accepted", "executorId": executor_id, "attempts": attempts}),
                );
                Ok(false)
            }
            Outcome::Failed { reason, .. } if reason == "unreachable" || reason == "aborted" => {
                self.log.log(
                    "queue-tailer:dispatch-deferred",
                    json!({"missionId": job.mission_id, "sessionId": job.session_id, "reason": reason}),
                );
                journal::append(
                    &job.path,
                    json!({"type": "dispatch", "missionId": job.mission_id, "outcome": "deferred", "reason": reason, "attempts": outcome.attempts()}),
                );
                if self.stop.is_cancelled() {
                    return Ok(false);
                }
                self.retry_later(job);
                Ok(true)
            }
            Outcome::Failed {
                reason,
                message,
                attempts,
                ..
            } => {
                let patch = object(json!({
                    "failedAt": now_iso(),
                    "failureReason": reason,
                    "failureMessage": message,
                    "dispatchAttempts": attempts,
                }));
                Self::written(self.submit_outcome(job, &mission, "failed", patch)).await?;
                self.settled(&job.key);
                self.log.log(
                    "queue-tailer:dispatch-failed",
                    json!({"missionId": job.mission_id, "sessionId": job.session_id, "reason": reason, "attempts": attempts}),
                );
                journal::append(
                    &job.path,
                    json!({"type": "dispatch", "missionId": job.mission_id, "outcome": "failed", "reason": reason, "message": message, "attempts": attempts}),
                );
                Ok(false)
            }
        }
    }

    /// Follow `mission_id` (in the session file `path`) on its executor's stream.
    fn follow(self: &Arc<Self>, mission_id: &str, path: &Path, executor_id: &str) {
        if executor_id.is_empty() || executor_id == "unknown" {
            return;
        }
        self.executors.remember(
            mission_id,
            Known {
                path: path.to_path_buf(),
                executor_id: executor_id.to_owned(),
            },
        );
        self.subscribe(executor_id);
        // Events that came before we knew the mission (right after the 202).
        for event in self.executors.take_early(mission_id) {
            self.on_event(executor_id, event);
        }
    }

    /// One stream per executor, for as long as the tailer runs.
    fn subscribe(self: &Arc<Self>, executor_id: &str) {
        let ws = &self.config.ws;
        if ws.disabled
            || executor_id.is_empty()
            || executor_id == "unknown"
            || self.stop.is_cancelled()
        {
            return;
        }
        if !self.executors.first_subscription(executor_id) {
            return;
        }
        let opts = WsOptions {
            aiwg_serve_url: self.config.aiwg_serve_url.clone(),
            executor_id: executor_id.to_owned(),
            token: ws.tokens.get(executor_id).cloned(),
            reconnect_base_ms: ws.reconnect_base_ms,
            reconnect_max_ms: ws.reconnect_max_ms,
        };
        if let Some(subscribe) = &self.external_subscribe {
            return subscribe(executor_id, opts.token);
        }
        let handler = Arc::new(ExecutorStream {
            core: Arc::clone(self),
            executor_id: executor_id.to_owned(),
        });
        self.tasks.spawn(executor_ws::run(
            opts,
            handler,
            Arc::clone(&self.log),
            self.stop.child_token(),
        ));
    }

    /// Streams the caller runs: their events and states, until stopped.
    async fn follow_external(self: Arc<Self>, mut inputs: mpsc::UnboundedReceiver<StreamInput>) {
        loop {
            let input = tokio::select! {
                input = inputs.recv() => match input { Some(i) => i, None => return },
                () = self.stop.cancelled() => return,
            };
            match input {
                StreamInput::Event { executor_id, event } => self.on_event(&executor_id, event),
                StreamInput::State { executor_id, state } => self.log.log(
                    "queue-tailer:ws-state",
                    json!({"executorId": executor_id, "state": state}),
                ),
            }
        }
    }

    /// An event from `executor_id`'s stream: apply it to its mission's file.
    fn on_event(self: &Arc<Self>, executor_id: &str, event: Value) {
        let kind = event.get("event").cloned().unwrap_or(Value::Null);
        if kind == "executor.resync" {
            return self.resync(executor_id, &event);
        }
        let mission_id = event.get("mission_id").cloned().unwrap_or(Value::Null);
        let known = mission_id.as_str().and_then(|id| self.executors.get(id));
        match (event_to_status_update(&event), known) {
            (Some(update), Some(known)) => self.apply_event(known, kind, update),
            (Some(_), None) => {
                self.event_logs.log(
                    &self.log,
                    "queue-tailer:event-unmapped-mission",
                    json!({"missionId": mission_id, "event": kind}),
                );
                // It may be a mission whose 202 we have not read yet: keep it a while.
                if let Some(id) = mission_id.as_str() {
                    self.executors.keep_early(id, event);
                }
            }
            // No status change, but a known mission's events all go to its journal (§9.10).
            (None, Some(known)) if is_known_event(&kind) => {
                let _ = self.reports.send(Report::Journal {
                    held: self.backlog.hold(),
                    known,
                    entry: json!({"type": "event", "event": kind, "missionId": mission_id}),
                });
            }
            (None, _) if is_known_event(&kind) => {}
            (None, _) => self.event_logs.log(
                &self.log,
                "queue-tailer:event-unknown",
                json!({"executorId": executor_id, "event": kind, "missionId": mission_id}),
            ),
        }
    }

    /// §9.1: what the executor no longer owns (and had not finished) is lost.
    fn resync(self: &Arc<Self>, executor_id: &str, event: &Value) {
        // A resync without its list says nothing about what was lost (§10).
        let Some(ids) = event
            .pointer("/data/owned_mission_ids")
            .and_then(Value::as_array)
        else {
            self.log.log(
                "queue-tailer:event-unknown",
                json!({"executorId": executor_id, "event": "executor.resync", "error": "data.owned_mission_ids is not an array"}),
            );
            return;
        };
        let owned: HashSet<String> = ids
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        for (mission_id, known) in self.executors.lost_by(executor_id, &owned) {
            let update = StatusUpdate {
                mission_id: Value::from(mission_id.clone()),
                status: Value::from("failed"),
                patch: Some(object(json!({
                    "failedAt": now_iso(),
                    "failureReason": "executor_lost",
                    "failureMessage": format!("executor {executor_id} no longer owns this mission"),
                }))),
                transition_from: None,
                unless_terminal: true,
                ..StatusUpdate::default()
            };
            self.apply_event(known, Value::from("executor.resync"), update);
        }
    }

    /// Queue the update now, so events apply in the order they came; its
    /// outcome is logged and journaled in that order too (see [`Core::report`]).
    fn apply_event(self: &Arc<Self>, known: Known, kind: Value, update: StatusUpdate) {
        let new_status = update.status.clone();
        let mission_id = update.mission_id.clone();
        let written = self.writeback.submit(&self.tasks, &known.path, update);
        let _ = self.reports.send(Report::Applied {
            held: self.backlog.hold(),
            written,
            known,
            kind,
            mission_id,
            new_status,
        });
    }

    /// Log and journal event outcomes one by one, in the order the events came.
    async fn report(self: Arc<Self>, mut reports: mpsc::UnboundedReceiver<Report>) {
        loop {
            // The channel never closes (the core holds its sender): after a
            // stop, what is already queued is reported and the task ends.
            let report = tokio::select! {
                biased;
                report = reports.recv() => report,
                () = self.stop.cancelled() => reports.try_recv().ok(),
            };
            let Some(report) = report else { return };
            self.report_one(report).await;
        }
    }

    /// Log and journal one event outcome, once its write is done.
    async fn report_one(&self, report: Report) {
        match report {
            Report::Journal {
                held,
                known,
                mut entry,
            } => {
                if let Some(map) = entry.as_object_mut() {
                    map.insert("executorId".into(), Value::from(known.executor_id.clone()));
                }
                journal::append_holding(&known.path, entry, held);
            }
            Report::Applied {
                held,
                written,
                known,
                kind,
                mission_id,
                new_status,
            } => {
                let outcome = match written.await {
                    Ok(Ok(UpdateResult::Applied)) => "updated",
                    Ok(Ok(UpdateResult::MissingMission)) => "missing-mission",
                    Ok(Ok(UpdateResult::Stale)) => "stale",
                    Ok(Ok(UpdateResult::MissingSession)) => "missing-session",
                    Ok(Err(_)) | Err(_) => "error",
                };
                self.log.log(
                        "queue-tailer:event-applied",
                        json!({"missionId": mission_id, "event": kind, "newStatus": new_status, "outcome": outcome}),
                    );
                journal::append_holding(
                    &known.path,
                    json!({"type": "event", "event": kind, "missionId": mission_id, "executorId": known.executor_id, "newStatus": new_status, "outcome": outcome}),
                    held,
                );
                let ended = new_status.as_str().is_some_and(|s| TERMINAL.contains(&s));
                if ended || outcome == "missing-mission" || outcome == "missing-session" {
                    if let Some(id) = mission_id.as_str() {
                        self.executors.forget(id);
                    }
                }
            }
        }
    }

    /// Re-read the session: the mission, if it is still `queued`.
    fn still_queued(&self, job: &Job) -> Option<Value> {
        let session = session::load_session(&job.path).ok();
        let mission = session
            .as_ref()
            .map(session::missions)
            .and_then(|ms| ms.iter().find(|m| m.get("id") == Some(&job.mission_id)));
        let status = mission.and_then(|m| m.get("status")).cloned();
        if status.as_ref().and_then(Value::as_str) == Some("queued") {
            return mission.cloned();
        }
        self.log.log(
            "queue-tailer:skip-no-longer-queued",
            json!({"missionId": job.mission_id, "sessionId": job.session_id, "observedStatus": status.unwrap_or(Value::Null)}),
        );
        None
    }

    /// Queue the outcome of `job`'s dispatch (of `mission`, as read before
    /// it) for its session file, and remember it.
    fn submit_outcome(
        &self,
        job: &Job,
        mission: &Value,
        status: &str,
        patch: Map<String, Value>,
    ) -> Pending {
        let update = StatusUpdate {
            mission_id: job.mission_id.clone(),
            status: Value::from(status),
            patch: Some(patch),
            transition_from: Some(Value::from("queued")),
            ..StatusUpdate::default()
        };
        self.scanner
            .outcomes
            .remember(&job.key, mission, update.clone());
        self.writeback.submit(&self.tasks, &job.path, update)
    }

    async fn written(pending: Pending) -> Result<UpdateResult> {
        match pending.await {
            Ok(written) => written.map_err(Error::Message),
            Err(_) => Err(Error::Message("status write-back was dropped".into())),
        }
    }

    /// The mission has an outcome: no more deferral rounds to count.
    fn settled(&self, key: &str) {
        self.deferrals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// §9.2: keep the mission `queued` and look again after a capped backoff.
    fn retry_later(self: &Arc<Self>, job: &Job) {
        let round = {
            let mut deferrals = self.deferrals.lock().unwrap_or_else(|p| p.into_inner());
            let n = deferrals.entry(job.key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let delay = backoff_ms(f64::from(round), self.config.retry_base_ms.max(1.0));
        self.look_again_later(job, delay);
    }

    /// Keep `job`'s key claimed and examine its session again after `delay` ms.
    fn look_again_later(self: &Arc<Self>, job: &Job, delay: f64) {
        let core = Arc::clone(self);
        let (key, path) = (job.key.clone(), job.path.clone());
        self.tasks.spawn(async move {
            sleep_ms(delay, &core.stop).await;
            core.scanner.release(&key);
            if !core.stop.is_cancelled() {
                core.examine(&path);
            }
        });
    }

    /// Follow watch events until stopped: re-examine just the sessions touched.
    async fn follow_events(self: &Arc<Self>, mut rx: mpsc::UnboundedReceiver<Change>) {
        loop {
            let first = tokio::select! {
                change = rx.recv() => match change { Some(c) => c, None => return },
                () = self.stop.cancelled() => return,
            };
            let mut changes: HashSet<Change> = HashSet::from([first]);
            while let Ok(more) = rx.try_recv() {
                changes.insert(more);
            }
            if changes.remove(&Change::Rescan) {
                for path in self.scanner.changed_sessions() {
                    changes.insert(Change::Session(path));
                }
            }
            for change in changes {
                if let Change::Session(path) = change {
                    self.examine(&path);
                }
            }
        }
    }

    /// The fallback: every `pollIntervalMs`, examine the sessions whose files changed.
    async fn poll(self: &Arc<Self>, root: &Path) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.config.poll_interval) => {}
                () = self.stop.cancelled() => return,
            }
            match session::discover_sessions(root) {
                Ok(paths) => {
                    for path in paths {
                        if self.scanner.changed_since_seen(&path) {
                            self.examine(&path);
                        }
                    }
                }
                Err(e) => self.log.log(
                    "queue-tailer:tick-error",
                    json!({"error": format!("{}: {e}", root.display())}),
                ),
            }
        }
    }
}

/// A dispatch slot in use, counted in `in_flight` until dropped.
struct InFlight<'a> {
    count: &'a AtomicUsize,
    _slot: OwnedSemaphorePermit,
}

impl<'a> InFlight<'a> {
    fn new(count: &'a AtomicUsize, slot: OwnedSemaphorePermit) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        InFlight { count, _slot: slot }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A queued status write's outcome.
type Pending = tokio::sync::oneshot::Receiver<writeback::Written>;

/// What the reporter logs and journals, in event order.
enum Report {
    Applied {
        held: backlog::Held,
        written: Pending,
        known: Known,
        kind: Value,
        mission_id: Value,
        new_status: Value,
    },
    Journal {
        held: backlog::Held,
        known: Known,
        entry: Value,
    },
}

/// Event types of the executor-v1 protocol (the ones that change no status included).
fn is_known_event(kind: &Value) -> bool {
    let Some(kind) = kind.as_str() else {
        return false;
    };
    kind.starts_with("executor.")
        || matches!(
            kind,
            "mission.assigned" | "mission.progress" | "mission.reconnected" | "mission.paused"
        )
}

/// One executor's stream, feeding the tailer.
struct ExecutorStream {
    core: Arc<Core>,
    executor_id: String,
}

impl WsHandler for ExecutorStream {
    fn on_event(&self, event: Value) {
        self.core.on_event(&self.executor_id, event);
    }

    fn room(&self) -> futures_util::future::BoxFuture<'static, ()> {
        let core = Arc::clone(&self.core);
        Box::pin(async move { core.backlog.room().await })
    }

    fn on_state(&self, state: WsState) {
        let name = match state {
            WsState::Opened { .. } => "opened",
            WsState::Closed { .. } => "closed",
            WsState::Error => "error",
        };
        self.core.log.log(
            "queue-tailer:ws-state",
            json!({"executorId": self.executor_id, "state": name}),
        );
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests;
