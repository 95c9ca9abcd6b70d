//! The queue tailer: watch `watchDir`, start every queued mission's
//! dispatch in FIFO order with at most `maxInflight` at a time, write each
//! outcome back to the session file the mission was found in, and follow
//! dispatched missions on their executors' streams. This file starts and
//! stops it and wires the parts together; each job has a file of its own:
//!
//! - [`config`]: the options and their defaults (the only copy).
//! - [`intake`]: the sweep, watch events and polling, into examined sessions
//!   ([`watch`] turns file-system events into session paths; [`scan`]
//!   reads one session and finds what to dispatch).
//! - [`schedule`]: the FIFO queue, the `maxInflight` slots, deferral rounds;
//!   [`descriptors`]: out of file descriptors, dispatching waits for the
//!   writes it owes.
//! - [`dispatch_job`]: claim, re-check, dispatch, outcome, write, follow,
//!   with [`reread`] the check before it ([`claims`] the lock against
//!   other bridges, handed over between batches to the ones [`presence`]
//!   sees) and [`outcome`] the pure outcome → status-update decision.
//! - [`follow`]: executor subscriptions and event routing ([`executors`]
//!   holds who follows what; [`executor_lease`] which bridge follows an
//!   executor; [`backlog`] bounds events in flight; [`inbox`] is the
//!   bounded way in for streams the caller runs).
//! - [`report`]: event outcomes logged and journaled in order.
//! - [`writeback`]: status updates batched per session file;
//!   [`remembered`]: outcomes and events kept to restore if another writer reverts them.
//!
//! A panic in any tailer task is an internal error: it is logged as
//! `queue-tailer:internal-error`, the tailer stops, and [`run`] returns it.

mod backlog;
mod claims;
pub(crate) mod config;
mod descriptors;
mod dispatch_job;
mod executor_lease;
mod executors;
mod follow;
mod inbox;
mod intake;
mod outcome;
mod presence;
mod remembered;
mod report;
mod reread;
mod scan;
mod schedule;
pub(crate) mod watch;
mod writeback;

use crate::error::{Error, Result};
use crate::mission_control::dispatch::{DispatchOptions, Transport};
use crate::mission_control::log::{FloodGuard, Logger};
use crate::mission_control::path_queue;
use descriptors::Descriptors;
use report::Report;
use scan::Scanner;
use schedule::Schedule;
use serde_json::json;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use writeback::Writeback;

pub(crate) use config::{defaults, Fault, TailerConfig, DRAIN};
pub(crate) use executors::WsConfig;
pub(crate) use executors::{ExternalStreams, StreamInput};
pub(crate) use inbox::{inbox, Inbox};

/// A running tailer's shared state: the settings, the I/O it drives, and
/// one part per job (see the module docs).
struct Bridge {
    config: TailerConfig,
    /// `watchDir`, resolved once at start.
    root: PathBuf,
    dispatch: DispatchOptions,
    transport: Arc<dyn Transport>,
    log: Logger,
    stop: CancellationToken,
    /// Cuts off requests still in flight when the drain time is up.
    abandon: CancellationToken,
    tasks: TaskTracker,
    scanner: Scanner,
    schedule: Schedule,
    writeback: Arc<Writeback>,
    /// The checks before dispatches, and the claims on sessions they take.
    rereads: Arc<reread::Rereads>,
    /// Whether the process is out of file descriptors (then dispatching waits).
    descriptors: Arc<Descriptors>,
    /// The watch could not cover everything: polling runs (logged once).
    degraded: std::sync::atomic::AtomicBool,
    executors: executors::Executors,
    /// The executor leases this bridge holds (released when it stops).
    leases: executor_lease::Leases,
    /// This bridge's presence on the queue, and the others it sees.
    presence: Arc<presence::Presence>,
    /// Set when the caller runs the executor streams.
    external_subscribe: Option<executors::Subscribe>,
    /// Events between the streams and the files.
    backlog: Arc<backlog::Backlog>,
    /// Log lines about events the tailer cannot use, limited under a flood.
    event_logs: FloodGuard,
    /// Event outcomes to log and journal, in order.
    reports: mpsc::UnboundedSender<Report>,
    /// The first internal error (a panic in a task), if any.
    failure: Mutex<Option<String>>,
}

/// Run a tailer until `stop` is cancelled. `on_ready` is called once the
/// initial sweep (and every dispatch it started) is done. Returns how many
/// dispatches were in flight when the stop came, or the internal error
/// that stopped the tailer.
pub(crate) async fn run(
    config: TailerConfig,
    transport: Arc<dyn Transport>,
    log: Logger,
    stop: CancellationToken,
    external: Option<ExternalStreams>,
    on_ready: impl FnOnce(),
) -> Result<usize> {
    let (external_subscribe, external_inputs) = match external {
        Some(e) => (Some(e.subscribe), Some((e.inputs, e.room))),
        None => (None, None),
    };
    log.log(
        "queue-tailer:start",
        json!({"aiwgServeUrl": config.aiwg_serve_url, "watchDir": config.watch_dir.to_string_lossy(), "dryRun": config.dry_run}),
    );
    // File-system work: on the blocking pool.
    let watch_dir = config.watch_dir.clone();
    let root =
        tokio::task::spawn_blocking(move || std::fs::canonicalize(&watch_dir).unwrap_or(watch_dir))
            .await
            .unwrap_or_else(|_| config.watch_dir.clone());
    let (reports_tx, reports_rx) = mpsc::unbounded_channel();
    let descriptors = Arc::new(Descriptors::new(Arc::clone(&log), config.max_inflight));
    let remembered = Arc::new(remembered::Remembered::default());
    let presence = Arc::new(presence::Presence::new(&root));
    let owed_loaded = Arc::new(crate::mission_control::pending_writes::Loaded::default());
    let writeback = Arc::new(Writeback::new(
        Arc::clone(&log),
        stop.clone(),
        Arc::clone(&descriptors),
        Arc::clone(&remembered),
    ));
    let bridge = Arc::new(Bridge {
        dispatch: DispatchOptions {
            aiwg_serve_url: config.aiwg_serve_url.clone(),
            retry_base_ms: config.retry_base_ms,
            max_attempts: config.max_attempts,
            request_timeout: config.request_timeout,
        },
        scanner: Scanner::new(
            root.clone(),
            config.aiwg_serve_url.clone(),
            config.dry_run,
            Arc::clone(&descriptors),
            remembered,
            Arc::clone(&owed_loaded),
        ),
        schedule: Schedule::new(config.max_inflight),
        root: root.clone(),
        config,
        transport: Arc::new(descriptors::Noting::new(
            transport,
            Arc::clone(&descriptors),
        )),
        log,
        stop,
        abandon: CancellationToken::new(),
        tasks: TaskTracker::new(),
        writeback,
        rereads: Arc::new(reread::Rereads::new(
            claims::Claims::sharing_with(Arc::clone(&presence)),
            owed_loaded,
        )),
        descriptors,
        degraded: std::sync::atomic::AtomicBool::new(false),
        executors: executors::Executors::default(),
        leases: executor_lease::Leases::new(&root),
        presence,
        external_subscribe,
        backlog: Arc::default(),
        event_logs: FloodGuard::default(),
        reports: reports_tx,
        failure: Mutex::new(None),
    });

    // Watch before the sweep, so nothing written during it is missed. A
    // recursive watch walks the tree: on the blocking pool too.
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = if bridge.config.polling {
        None
    } else {
        let watching = if bridge.config.fault == Some(Fault::NoWatch) {
            Err("fault injected (MC_NATIVE_FAULT=tailer-no-watch)".to_owned())
        } else {
            tokio::task::spawn_blocking(move || watch::watch(&root, tx).map_err(|e| e.to_string()))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
        };
        match watching {
            Ok(watcher) => Some(watcher),
            Err(reason) => {
                // No watch at all (a file system without inotify, no
                // watches left): everything is polled.
                bridge
                    .degraded(&format!("no file-system watch: {reason}"), false)
                    .await;
                None
            }
        }
    };
    if !bridge.config.dry_run {
        bridge.announce().await;
    }
    bridge.spawn(Arc::clone(&bridge).dispatcher());
    bridge.spawn(Arc::clone(&bridge).report(reports_rx));
    if let Some((inputs, room)) = external_inputs {
        bridge.spawn(Arc::clone(&bridge).follow_external(inputs, room));
    }
    for executor_id in bridge.config.ws.subscribe.clone() {
        bridge.subscribe(&executor_id);
    }

    let initial = bridge.sweep().await;
    bridge.wait_for(initial).await;
    on_ready();
    if bridge.config.fault == Some(Fault::AfterReady) {
        bridge.spawn(async { panic!("fault injected (MC_NATIVE_FAULT=tailer-after-ready)") });
    }

    match watcher {
        Some(_watching) => bridge.follow_changes(rx).await,
        None => bridge.poll().await,
    }
    let in_flight = bridge.drain().await;
    bridge.leases.release_all();
    bridge.presence.withdraw();
    bridge
        .log
        .log("queue-tailer:stop", json!({"drainedInflight": in_flight}));
    let failure = lock(&bridge.failure).take();
    match failure {
        Some(failure) => Err(Error::Message(failure)),
        None => Ok(in_flight),
    }
}

impl Bridge {
    /// Stopping: the watch is gone, nothing new starts, backoff waits end;
    /// requests in flight get the drain time to answer, then are cut off.
    /// Returns how many were in flight when the stop came.
    async fn drain(&self) -> usize {
        let in_flight = self.schedule.in_flight();
        self.tasks.close();
        let started = std::time::Instant::now();
        if tokio::time::timeout(DRAIN, self.tasks.wait())
            .await
            .is_err()
        {
            self.abandon.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), self.tasks.wait()).await;
        }
        // Journal lines queued behind the last writes land before we say
        // we stopped (with nothing queued anywhere, there is nothing to wait for).
        if path_queue::idle() {
            return in_flight;
        }
        let flushes: Vec<_> = self
            .scanner
            .seen_paths()
            .into_iter()
            .map(path_queue::flush)
            .collect();
        let left = DRAIN
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(100));
        let _ = tokio::time::timeout(left, futures_util::future::join_all(flushes)).await;
        in_flight
    }

    /// Spawn a tailer task. A panic in it is an internal error ([`Bridge::fail`]),
    /// never a crash of the process.
    fn spawn(self: &Arc<Self>, work: impl Future<Output = ()> + Send + 'static) {
        let bridge = Arc::clone(self);
        let work = CatchPanic(Box::pin(work));
        self.tasks.spawn(async move {
            if let Err(message) = work.await {
                bridge.fail(&message);
            }
        });
    }

    /// An internal error: logged once (the first), and the tailer stops;
    /// [`run`] returns it once drained.
    fn fail(&self, message: &str) {
        let error = format!("internal error in the queue tailer: {message}");
        let first = {
            let mut failure = lock(&self.failure);
            let first = failure.is_none();
            if first {
                *failure = Some(error.clone());
            }
            first
        };
        if first {
            self.log
                .log("queue-tailer:internal-error", json!({"error": error}));
        }
        self.stop.cancel();
    }
}

/// A future whose panic becomes `Err(message)` (futures-util's
/// `catch_unwind` needs its `std` feature; this is all we use of it).
struct CatchPanic(Pin<Box<dyn Future<Output = ()> + Send>>);

impl Future for CatchPanic {
    type Output = std::result::Result<(), String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Err(panic) => Poll::Ready(Err(panic_message(panic.as_ref()))),
        }
    }
}

/// What a panic said (its `&str` or `String` payload).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic".to_owned()
    }
}

/// A lock that a panicked holder does not poison for everyone else.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
