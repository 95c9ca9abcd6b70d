//! What the tailer reads, and when: the initial sweep, watch events, the
//! polling fallback, and examining one session file into queued jobs. All
//! file-system work here (discovery, fingerprints, reading and parsing up
//! to 32 MiB per session) runs on tokio's blocking pool, never on a
//! runtime worker; the runtime side only queues, follows and spawns.

use super::scan::{Examined, Restore};
use super::schedule::Job;
use super::watch::Change;
use super::writeback::Written;
use super::Bridge;
use crate::backoff::sleep_ms;
use crate::mission_control::pending_writes::{self, PendingWrite};
use crate::mission_control::session;
use crate::mission_control::status::UpdateResult;
use serde_json::json;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

impl Bridge {
    /// Run `work` on the blocking pool; `None` if it panicked (an internal
    /// error, reported as such).
    pub(super) async fn off_runtime<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Bridge) -> T + Send + 'static,
    ) -> Option<T> {
        let bridge = Arc::clone(self);
        match tokio::task::spawn_blocking(move || work(&bridge)).await {
            Ok(value) => Some(value),
            Err(e) => {
                self.fail(&format!("blocking file work failed: {e}"));
                None
            }
        }
    }

    /// Examine every session under the root, in discovery order; queue
    /// what is found. Returns the jobs queued.
    pub(super) async fn sweep(self: &Arc<Self>) -> Vec<Arc<Job>> {
        let root = self.root.clone();
        let found = self
            .off_runtime(move |_| session::discover_sessions(&root))
            .await;
        match found {
            Some(Ok(paths)) => self.examine_all(paths).await,
            Some(Err(e)) => {
                self.tick_error(&e);
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// Examine `paths` in one go on the blocking pool, then queue what they
    /// hold together: FIFO order (§9.3) holds across all of them, since the
    /// dispatcher sees none of their jobs before it sees them all.
    async fn examine_all(self: &Arc<Self>, paths: Vec<PathBuf>) -> Vec<Arc<Job>> {
        if paths.is_empty() {
            return Vec::new();
        }
        let Some(examined) = self
            .off_runtime(move |b| {
                paths
                    .into_iter()
                    .map(|p| {
                        let e = b.scanner.examine(&p, &b.log);
                        (p, e)
                    })
                    .collect::<Vec<_>>()
            })
            .await
        else {
            return Vec::new();
        };
        let mut jobs = Vec::new();
        for (path, found) in examined {
            jobs.extend(self.take_in(&path, found, false));
        }
        self.schedule.push(&jobs);
        jobs
    }

    /// Examine one session file (on the blocking pool) and queue its
    /// dispatchable missions.
    pub(super) async fn examine(self: &Arc<Self>, path: PathBuf) -> Vec<Arc<Job>> {
        let at = path.clone();
        // Short of descriptors, reads take turns with the writes owed.
        let turn = self.descriptors.turn().await;
        let examined = self
            .off_runtime(move |b| b.scanner.examine(&at, &b.log))
            .await;
        drop(turn);
        let Some(examined) = examined else {
            return Vec::new();
        };
        self.take_in(&path, examined, true)
    }

    /// Act on what examining `path` found: restore reverted outcomes,
    /// follow held missions, look again later; queue the jobs if `queue`
    /// (else the caller queues them with others).
    fn take_in(self: &Arc<Self>, path: &Path, examined: Examined, queue: bool) -> Vec<Arc<Job>> {
        let Examined {
            jobs,
            look_again,
            held,
            restore,
            owed,
        } = examined;
        let mut restoring = Vec::with_capacity(restore.len());
        for Restore {
            key,
            update,
            before,
            event,
            reverted,
        } in restore
        {
            if reverted {
                self.log.log(
                    if event {
                        "queue-tailer:event-restored"
                    } else {
                        "queue-tailer:outcome-restored"
                    },
                    json!({"missionId": update.mission_id, "path": path.to_string_lossy(), "status": update.status}),
                );
            }
            let written = if event {
                self.writeback.submit_event(&self.tasks, path, update)
            } else {
                self.writeback
                    .submit_watching(&self.tasks, path, update, before, None)
            };
            restoring.push((key, event, written));
        }
        if !restoring.is_empty() || owed.is_some() {
            let bridge = Arc::clone(self);
            let path = path.to_path_buf();
            self.spawn(async move { bridge.restored(path, restoring, owed).await });
        }
        // §9.1: missions an executor holds are followed again after a restart.
        for (mission_id, executor_id) in held {
            self.follow(&mission_id, path, &executor_id);
        }
        if let Some(delay) = look_again {
            self.examine_later(path.to_path_buf(), delay);
        }
        if queue {
            self.schedule.push(&jobs);
        }
        jobs
    }

    /// Wait for the restores of one examination of `path`: release each
    /// outcome's key, and once every one is written, forget the owed writes
    /// they came from (if any failed, the bridge is stopping and has saved
    /// them again).
    async fn restored(
        self: Arc<Self>,
        path: PathBuf,
        restoring: Vec<(Option<String>, bool, oneshot::Receiver<Written>)>,
        owed: Option<Vec<PendingWrite>>,
    ) {
        let mut all_written = true;
        let mut look_again = false;
        // Whether any of the mission's reverted events (up to its key) applied.
        let mut applied = false;
        for (key, event, written) in restoring {
            let written = written.await;
            all_written &= matches!(written, Ok(Ok(_)));
            applied |= matches!(written, Ok(Ok(UpdateResult::Applied)));
            if let Some(key) = key {
                if event && !applied && all_written {
                    // The status rules refuse them now: not offered again.
                    self.scanner.remembered.forget_events(&key);
                }
                look_again |= self.scanner.release(&key);
                applied = false;
            }
        }
        if let (Some(owed), true) = (owed, all_written) {
            let at = path.clone();
            let forgotten =
                tokio::task::spawn_blocking(move || pending_writes::forget(&at, &owed)).await;
            if let Ok(Err(e)) = forgotten {
                self.log.log(
                    "queue-tailer:write-failed",
                    json!({"path": pending_writes::pending_path(&path).to_string_lossy(), "code": e.kind_code(), "error": e.to_string()}),
                );
            }
        }
        if look_again {
            self.examine_later(path, 0.0);
        }
    }

    /// Examine `path` again after `delay` ms, unless stopped by then.
    pub(super) fn examine_later(self: &Arc<Self>, path: PathBuf, delay: f64) {
        let bridge = Arc::clone(self);
        self.spawn(async move {
            sleep_ms(delay, &bridge.stop).await;
            if !bridge.stop.is_cancelled() {
                bridge.examine(path).await;
            }
        });
    }

    /// Follow watch events until stopped: re-examine just the sessions touched.
    pub(super) async fn follow_changes(self: &Arc<Self>, mut rx: mpsc::UnboundedReceiver<Change>) {
        loop {
            let first = tokio::select! {
                change = rx.recv() => match change { Some(c) => c, None => return },
                () = self.stop.cancelled() => return,
            };
            let mut changes: HashSet<Change> = HashSet::from([first]);
            while let Ok(more) = rx.try_recv() {
                changes.insert(more);
            }
            let overflowed = changes.remove(&Change::Overflow);
            if changes.remove(&Change::Rescan) || overflowed {
                let changed = self
                    .off_runtime(|b| b.scanner.changed_sessions())
                    .await
                    .unwrap_or_default();
                if overflowed {
                    // One line for the overflows read in one go.
                    self.log.log(
                        "queue-tailer:watch-overflow",
                        json!({"watchDir": self.root.to_string_lossy(), "changed": changed.len()}),
                    );
                }
                changes.extend(changed.into_iter().map(Change::Session));
            }
            let mut paths = Vec::new();
            for change in changes {
                match change {
                    Change::Session(path) => paths.push(path),
                    Change::Owed(path) => {
                        // A bridge stopping beside us saved what it could
                        // not write: take it in before dispatching again.
                        self.scanner.owed_changed(&path);
                        paths.push(path);
                    }
                    Change::Degraded(reason) => {
                        // Poll beside the watch: what it could not add is seen that way.
                        if self.degraded(&reason, true).await {
                            self.spawn(Arc::clone(self).poll_loop());
                        }
                    }
                    Change::Rescan | Change::Overflow => {}
                }
            }
            self.examine_all(paths).await;
        }
    }

    /// The watch cannot see everything (or anything): say so once, with
    /// the reason, how many watches the process holds (`watched`, where the
    /// OS tells) and how many sessions polling now covers (`polled`).
    /// `true` the first time.
    pub(super) async fn degraded(self: &Arc<Self>, reason: &str, watching: bool) -> bool {
        if self
            .degraded
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return false;
        }
        let root = self.root.clone();
        let counts = self
            .off_runtime(move |_| {
                let polled = session::discover_sessions(&root).map_or(0, |p| p.len());
                (watching.then(super::watch::watches_held).flatten(), polled)
            })
            .await;
        let (watched, polled) = counts.unwrap_or((None, 0));
        self.log.log(
            "queue-tailer:watch-degraded",
            json!({"reason": reason, "watched": watched.unwrap_or(0), "polled": polled, "pollIntervalMs": self.config.poll_interval.as_secs_f64() * 1000.0}),
        );
        true
    }

    /// [`Bridge::poll`] as a task of its own.
    async fn poll_loop(self: Arc<Self>) {
        self.poll().await;
    }

    /// The fallback: every `pollIntervalMs`, examine the sessions whose files changed.
    pub(super) async fn poll(self: &Arc<Self>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.config.poll_interval) => {}
                () = self.stop.cancelled() => return,
            }
            let root = self.root.clone();
            let changed = self
                .off_runtime(move |b| {
                    session::discover_sessions(&root).map(|paths| {
                        paths
                            .into_iter()
                            .filter(|p| b.scanner.changed_since_seen(p))
                            .collect::<Vec<_>>()
                    })
                })
                .await;
            match changed {
                Some(Ok(paths)) => {
                    self.examine_all(paths).await;
                }
                Some(Err(e)) => self.tick_error(&e),
                None => {}
            }
        }
    }

    /// §6.7: a sweep that could not list the sessions is logged; the tailer goes on.
    fn tick_error(&self, e: &std::io::Error) {
        self.log.log(
            "queue-tailer:tick-error",
            json!({"error": format!("{}: {e}", self.root.display())}),
        );
    }
}
