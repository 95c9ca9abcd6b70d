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

mod scan;
pub mod watch;
mod writeback;

use super::dispatch::{dispatch_mission, Cancel, DispatchOptions, Outcome, Transport};
use super::log::Logger;
use super::session::{self, backoff_ms};
use super::status::StatusUpdate;
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

/// When to look again at a session directory whose file was missing: a file
/// written right after its directory was created can beat the directory's watch.
const LOOK_AGAIN_MS: f64 = 100.0;

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
}

/// Run a tailer until `stop` is cancelled. `on_ready` is called once the
/// initial sweep (and every dispatch it started) is done. Returns how many
/// dispatches were in flight when the stop came.
pub async fn run(
    config: TailerConfig,
    transport: Arc<dyn Transport>,
    log: Logger,
    stop: CancellationToken,
    on_ready: impl FnOnce(),
) -> Result<usize> {
    log.log(
        "queue-tailer:start",
        json!({"aiwgServeUrl": config.aiwg_serve_url, "watchDir": config.watch_dir.to_string_lossy(), "dryRun": config.dry_run}),
    );
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
    });

    // Watch before the sweep, so nothing written during it is missed.
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = if core.config.polling {
        None
    } else {
        watch::watch(&root, tx).ok()
    };
    core.tasks.spawn(Arc::clone(&core).dispatcher());

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
    if tokio::time::timeout(DRAIN, core.tasks.wait())
        .await
        .is_err()
    {
        core.abandon.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), core.tasks.wait()).await;
    }
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
        let scan::Examined { jobs, look_again } = self.scanner.examine(path, &self.log);
        if look_again {
            let core = Arc::clone(self);
            let path = path.to_path_buf();
            self.tasks.spawn(async move {
                super::dispatch::sleep_ms(LOOK_AGAIN_MS, &core.stop).await;
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
                self.write(job, "assigned", patch).await?;
                self.deferrals
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&job.key);
                self.log.log(
                    "queue-tailer:dispatched",
                    json!({"missionId": job.mission_id, "sessionId": job.session_id, "executorId": executor_id, "attempts": attempts}),
                );
                Ok(false)
            }
            Outcome::Failed { reason, .. } if reason == "unreachable" || reason == "aborted" => {
                self.log.log(
                    "queue-tailer:dispatch-deferred",
                    json!({"missionId": job.mission_id, "sessionId": job.session_id, "reason": reason}),
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
                self.write(job, "failed", patch).await?;
                self.deferrals
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&job.key);
                self.log.log(
                    "queue-tailer:dispatch-failed",
                    json!({"missionId": job.mission_id, "sessionId": job.session_id, "reason": reason, "attempts": attempts}),
                );
                Ok(false)
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

    async fn write(
        &self,
        job: &Job,
        status: &str,
        patch: Map<String, Value>,
    ) -> Result<&'static str> {
        let update = StatusUpdate {
            mission_id: job.mission_id.clone(),
            status: Value::from(status),
            patch: Some(patch),
            transition_from: Some(Value::from("queued")),
        };
        let reply = self.writeback.submit(&self.tasks, &job.path, update);
        match reply.await {
            Ok(written) => written.map_err(Error::Message),
            Err(_) => Err(Error::Message("status write-back was dropped".into())),
        }
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
        let core = Arc::clone(self);
        let (key, path) = (job.key.clone(), job.path.clone());
        self.tasks.spawn(async move {
            super::dispatch::sleep_ms(delay, &core.stop).await;
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
                for path in self.scanner.new_sessions() {
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

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests;
