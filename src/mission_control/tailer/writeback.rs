//! Status write-back: updates for one session file are queued and applied
//! in batches, one read and one write per batch, so a burst of outcomes for
//! one session becomes a few writes instead of one each.

use crate::mission_control::status::{apply_status_updates_batched, StatusUpdate, UpdateResult};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

/// What became of one update, or why it could not be written.
pub(super) type Written = Result<UpdateResult, String>;

/// Updates waiting for one file's next batch, each with its reply.
type Pending = Vec<(StatusUpdate, oneshot::Sender<Written>)>;

/// A session file that does not parse is being rewritten in place by
/// another writer (older `aiwg mc` CLIs): try again this often, this many
/// times, before reporting it missing.
const UNREADABLE_RETRY: std::time::Duration = std::time::Duration::from_millis(20);
/// See [`UNREADABLE_RETRY`].
const UNREADABLE_TRIES: usize = 50;

/// Apply a batch; while the file is there but half-written, wait and retry.
async fn apply_retrying(
    path: &Path,
    updates: Vec<StatusUpdate>,
) -> crate::error::Result<crate::mission_control::status::Batched> {
    let mut tries = 0;
    loop {
        let batch = apply_status_updates_batched(path, updates.clone()).await?;
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

/// The write-back queues, one per session file with updates waiting.
#[derive(Default)]
pub(super) struct Writeback {
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
    pub(super) fn submit(
        self: &Arc<Self>,
        tasks: &TaskTracker,
        path: &Path,
        update: StatusUpdate,
    ) -> oneshot::Receiver<Written> {
        let (tx, rx) = oneshot::channel();
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(queue) = pending.get_mut(path) {
            queue.push((update, tx));
        } else {
            pending.insert(path.to_path_buf(), vec![(update, tx)]);
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
            let (updates, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            match apply_retrying(&path, updates).await {
                Ok(done) => {
                    for (reply, what) in replies.into_iter().zip(done.outcome.each) {
                        let _ = reply.send(Ok(what));
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    for reply in replies {
                        let _ = reply.send(Err(message.clone()));
                    }
                }
            }
        }
    }
}
