//! Status write-back: updates for one session file are queued and applied
//! in batches, one read and one write per batch, so a burst of outcomes for
//! one session becomes a few writes instead of one each.
//!
//! A batch that cannot be written (disk full, a read-only mount, no
//! permission, out of file descriptors, another writer that never lets
//! go) is not dropped: it is tried again with a capped backoff for as long
//! as the bridge runs. The failure is logged once per file and kind of
//! error (`queue-tailer:write-failed`), and the write that finally lands
//! once (`queue-tailer:write-recovered`).

use super::descriptors::Descriptors;
use super::remembered::{event_key, Remembered};
use crate::backoff::{backoff_ms, sleep_ms};
use crate::error::Error;
use crate::mission_control::log::Logger;
use crate::mission_control::pending_writes::{self, PendingWrite};
use crate::mission_control::status::{apply_status_updates_until, StatusUpdate, UpdateResult};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What became of one update, or why it was not written.
pub(super) type Written = Result<UpdateResult, Unwritten>;

/// Why an update was not written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Unwritten {
    /// The bridge stopped first; the update is saved for the next bridge
    /// (see [`pending_writes`]).
    Saved,
    /// The bridge stopped first, and saving it failed too: the last error.
    Lost(String),
}

/// One update waiting to be written.
struct Queued {
    update: StatusUpdate,
    /// For a dispatch outcome, the mission as it was before the dispatch
    /// (saved with the update if the bridge stops before it is written).
    before: Option<Value>,
    reply: oneshot::Sender<Written>,
    /// Cancelled as soon as a try of the write fails.
    on_failure: Option<CancellationToken>,
    /// For an event's update: its key in [`Remembered`], to restore it if
    /// another writer reverts it.
    event_key: Option<String>,
}

impl Queued {
    /// An update to queue, and the receiver of what becomes of it.
    fn new(
        update: StatusUpdate,
        before: Option<Value>,
        on_failure: Option<CancellationToken>,
    ) -> (Self, oneshot::Receiver<Written>) {
        let (reply, rx) = oneshot::channel();
        let queued = Queued {
            update,
            before,
            reply,
            on_failure,
            event_key: None,
        };
        (queued, rx)
    }
}

/// Updates waiting for one file's next batch.
type Pending = Vec<Queued>;

/// A session file that does not parse is being rewritten in place by
/// another writer (older `aiwg mc` CLIs): try again this often, this many
/// times, before reporting it missing.
const UNREADABLE_RETRY: std::time::Duration = std::time::Duration::from_millis(20);
/// See [`UNREADABLE_RETRY`].
const UNREADABLE_TRIES: usize = 50;

/// Apply a batch; while the file is there but half-written, wait and retry.
/// A file that is there but cannot be read is an error (the write is tried
/// again), not a session gone.
async fn apply_retrying(
    path: &Path,
    updates: Vec<StatusUpdate>,
    stop: &CancellationToken,
) -> crate::error::Result<crate::mission_control::status::Batched> {
    let mut tries = 0;
    loop {
        let mut batch =
            apply_status_updates_until(path, updates.clone(), Some(stop.clone())).await?;
        if let Some(source) = batch.read_error.take() {
            return Err(Error::Io {
                syscall: "open",
                path: path.to_path_buf(),
                dest: None,
                source,
            });
        }
        if !batch.unreadable || tries >= UNREADABLE_TRIES {
            return Ok(batch);
        }
        tries += 1;
        tokio::time::sleep(UNREADABLE_RETRY).await;
    }
}

/// How many turns of the scheduler a batch waits to gather updates: enough
/// for outcomes that arrive together to share a write, without a timer's
/// millisecond on every single event.
const GATHER_TURNS: usize = 4;

/// How long a batch waits at most for outcomes still expected for its file
/// (see [`Writeback::expect`]) before it is written anyway.
const GATHER_MAX: std::time::Duration = std::time::Duration::from_millis(10);

/// The first wait before a failed write is tried again (it doubles).
const FAILED_RETRY_BASE_MS: f64 = 50.0;
/// The longest wait between tries of a failed write.
const FAILED_RETRY_MAX_MS: f64 = 2000.0;
/// The longest wait between tries of a write that failed for want of file
/// descriptors (they free up without an event).
const SHORT_RETRY_MAX_MS: f64 = 200.0;

/// The write-back queues, one per session file with updates waiting.
pub(super) struct Writeback {
    log: Logger,
    /// Out of descriptors, owed writes take turns; it is logged there.
    descriptors: Arc<Descriptors>,
    /// Where events written are remembered.
    remembered: Arc<Remembered>,
    /// Batches being written now (each holds a few files open).
    writing: AtomicUsize,
    /// The bridge's stop: a failed write is tried again until then.
    stop: CancellationToken,
    /// A path is in the map while its writer task runs.
    pending: Mutex<HashMap<PathBuf, Pending>>,
    /// Dispatches under way whose outcome will be written to the path: a
    /// batch waits for them (up to [`GATHER_MAX`]), so the ten missions of
    /// a session dispatched together are one durable write, not several.
    expected: Arc<Mutex<HashMap<PathBuf, usize>>>,
}

/// An outcome on its way to a session file; dropped once it is submitted
/// (or the dispatch ends without one).
pub(super) struct Expected {
    expected: Arc<Mutex<HashMap<PathBuf, usize>>>,
    path: PathBuf,
}

impl Drop for Expected {
    fn drop(&mut self) {
        let mut expected = self
            .expected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = expected.get_mut(&self.path) {
            *count -= 1;
            if *count == 0 {
                expected.remove(&self.path);
            }
        }
    }
}

impl Writeback {
    pub(super) fn new(
        log: Logger,
        stop: CancellationToken,
        descriptors: Arc<Descriptors>,
        remembered: Arc<Remembered>,
    ) -> Self {
        Writeback {
            log,
            descriptors,
            remembered,
            writing: AtomicUsize::new(0),
            stop,
            pending: Mutex::default(),
            expected: Arc::default(),
        }
    }

    /// Say that a dispatch whose outcome goes to `path` is under way.
    pub(super) fn expect(&self, path: &Path) -> Expected {
        *self
            .expected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(path.to_path_buf())
            .or_default() += 1;
        Expected {
            expected: Arc::clone(&self.expected),
            path: path.to_path_buf(),
        }
    }

    fn expecting(&self, path: &Path) -> bool {
        self.expected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(path)
    }

    /// Queue `update` for `path`; the receiver says what became of it.
    #[cfg(test)]
    pub(super) fn submit(
        self: &Arc<Self>,
        tasks: &TaskTracker,
        path: &Path,
        update: StatusUpdate,
    ) -> oneshot::Receiver<Written> {
        self.queue(path, tasks, Queued::new(update, None, None))
    }

    /// [`Writeback::submit`] for an event's update of `mission_id`: once
    /// written, it is remembered, to restore if another writer reverts it.
    pub(super) fn submit_event(
        self: &Arc<Self>,
        tasks: &TaskTracker,
        path: &Path,
        update: StatusUpdate,
    ) -> oneshot::Receiver<Written> {
        let key = update.mission_id.as_str().map(|id| event_key(path, id));
        let (mut queued, rx) = Queued::new(update, None, None);
        queued.event_key = key;
        self.queue(path, tasks, (queued, rx))
    }

    /// [`Writeback::submit`], cancelling `on_failure` as soon as a try of
    /// the write fails: the receiver then answers only once a later try
    /// lands (or the bridge stops), and whoever waits for the first try
    /// (the initial sweep) need not wait for the disk to come back.
    /// `before`: for a dispatch outcome, the mission before its dispatch.
    pub(super) fn submit_watching(
        self: &Arc<Self>,
        tasks: &TaskTracker,
        path: &Path,
        update: StatusUpdate,
        before: Option<Value>,
        on_failure: Option<CancellationToken>,
    ) -> oneshot::Receiver<Written> {
        self.queue(path, tasks, Queued::new(update, before, on_failure))
    }

    fn queue(
        self: &Arc<Self>,
        path: &Path,
        tasks: &TaskTracker,
        (queued, rx): (Queued, oneshot::Receiver<Written>),
    ) -> oneshot::Receiver<Written> {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(queue) = pending.get_mut(path) {
            queue.push(queued);
        } else {
            pending.insert(path.to_path_buf(), vec![queued]);
            let this = Arc::clone(self);
            let path = path.to_path_buf();
            tasks.spawn(async move { this.drain(path).await });
        }
        rx
    }

    /// Write `path`'s batches until none is waiting; the path leaves the map then.
    async fn drain(&self, path: PathBuf) {
        loop {
            // Outcomes of one session tend to arrive together: a moment's
            // wait lets them share one write (and while a write runs, the
            // next batch gathers anyway).
            for _ in 0..GATHER_TURNS {
                tokio::task::yield_now().await;
            }
            let gathering = std::time::Instant::now();
            while self.expecting(&path) && gathering.elapsed() < GATHER_MAX {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            let batch = {
                let mut pending = self
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match pending.get_mut(&path) {
                    Some(queue) if !queue.is_empty() => std::mem::take(queue),
                    _ => {
                        pending.remove(&path);
                        return;
                    }
                }
            };
            self.write_batch(&path, batch).await;
        }
    }

    /// Write `batch` to `path` and answer each of its updates. A write
    /// that fails is tried again until it lands or the bridge stops (then
    /// the updates are saved for the next bridge, see [`pending_writes`],
    /// and each gets the last error); updates queued for `path` meanwhile
    /// join the next try.
    async fn write_batch(&self, path: &Path, mut batch: Pending) {
        let mut reported: HashSet<&str> = HashSet::new();
        let mut failures = 0u32;
        let mut owed = self.descriptors.owing();
        loop {
            let updates = batch.iter().map(|q| q.update.clone()).collect();
            let turn = self.descriptors.turn().await;
            self.writing.fetch_add(1, Ordering::SeqCst);
            let applied = apply_retrying(path, updates, &self.stop).await;
            self.writing.fetch_sub(1, Ordering::SeqCst);
            drop(turn);
            let error = match applied {
                Ok(done) => {
                    if !reported.is_empty() {
                        self.log.log(
                            "queue-tailer:write-recovered",
                            json!({"path": path.to_string_lossy(), "failedAttempts": failures}),
                        );
                    }
                    // The events applied to each mission in this batch, in
                    // order, over the mission as it was before the batch.
                    let mut events: Vec<(String, Value, Vec<StatusUpdate>)> = Vec::new();
                    let mut at: HashMap<String, usize> = HashMap::new();
                    let mut replies = Vec::with_capacity(batch.len());
                    let before = done.outcome.before.into_iter();
                    for ((queued, what), before) in
                        batch.into_iter().zip(done.outcome.each).zip(before)
                    {
                        if let (Some(key), Some(before)) = (queued.event_key, before) {
                            let update = queued.update.clone();
                            if let Some(&i) = at.get(&key) {
                                events[i].2.push(update);
                            } else {
                                at.insert(key.clone(), events.len());
                                events.push((key, before, vec![update]));
                            }
                        }
                        replies.push((queued.reply, what));
                    }
                    // Remembered before anyone hears it is written.
                    for (key, before, updates) in events {
                        self.remembered.remember_events(&key, &before, updates);
                    }
                    for (reply, what) in replies {
                        let _ = reply.send(Ok(what));
                    }
                    return;
                }
                Err(e) => e,
            };
            if !self.stop.is_cancelled() {
                failures += 1;
                // Out of descriptors is the process's state: said once, there;
                // descriptors free up without an event, so look often.
                let short = error.io().is_some_and(|e| self.descriptors.noted(e));
                let cap = if short {
                    owed.count();
                    SHORT_RETRY_MAX_MS
                } else {
                    FAILED_RETRY_MAX_MS
                };
                let retry_ms = backoff_ms(f64::from(failures), FAILED_RETRY_BASE_MS).min(cap);
                let code = error.kind_code();
                if !short && reported.insert(code) {
                    self.log.log(
                        "queue-tailer:write-failed",
                        json!({"path": path.to_string_lossy(), "code": code, "error": error.to_string(), "retryMs": retry_ms}),
                    );
                }
                batch.extend(self.take_pending(path));
                for queued in &batch {
                    if let Some(token) = &queued.on_failure {
                        token.cancel();
                    }
                }
                sleep_ms(retry_ms, &self.stop).await;
            }
            if self.stop.is_cancelled() {
                let unwritten = if self.save(path, &batch, &error).await {
                    Unwritten::Saved
                } else {
                    Unwritten::Lost(error.to_string())
                };
                for queued in batch {
                    let _ = queued.reply.send(Err(unwritten.clone()));
                }
                return;
            }
        }
    }

    /// The bridge stops with `batch` unwritten (the last try failed with
    /// `error`): save it beside the session for the next bridge to write.
    /// `true` once it is saved.
    async fn save(&self, path: &Path, batch: &Pending, error: &Error) -> bool {
        let writes: Vec<PendingWrite> = batch
            .iter()
            .map(|q| PendingWrite {
                update: q.update.clone(),
                before: q.before.clone(),
            })
            .collect();
        let count = writes.len();
        let at = path.to_path_buf();
        let saved = tokio::task::spawn_blocking(move || pending_writes::save(&at, &writes))
            .await
            .unwrap_or_else(|e| Err(Error::Message(format!("saving pending writes failed: {e}"))));
        let meta = json!({
            "path": path.to_string_lossy(),
            "updates": count,
            "file": pending_writes::pending_path(path).to_string_lossy(),
            "error": error.to_string(),
        });
        match saved {
            Ok(()) => {
                self.log.log("queue-tailer:pending-saved", meta);
                true
            }
            Err(e) => {
                let mut meta = meta;
                meta["saveError"] = Value::from(e.to_string());
                self.log.log("queue-tailer:pending-lost", meta);
                false
            }
        }
    }

    /// How many batches are being written now.
    pub(super) fn writing(&self) -> usize {
        self.writing.load(Ordering::SeqCst)
    }

    /// The updates queued for `path` and not yet in a batch.
    fn take_pending(&self, path: &Path) -> Pending {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(path)
            .map(std::mem::take)
            .unwrap_or_default()
    }
}
