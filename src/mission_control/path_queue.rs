//! The per-path job queue: work on one session file (status writes, its
//! `log.jsonl` lines, the other-writers aftercheck) runs one job at a time,
//! in the order it was queued, on tokio's blocking pool. Every writer in this
//! process goes through it, so their read-modify-writes never interleave.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tokio::sync::oneshot;

/// Jobs waiting for one session file, in the order they were submitted.
type Jobs = HashMap<PathBuf, VecDeque<Box<dyn FnOnce() + Send>>>;

fn jobs() -> &'static Mutex<Jobs> {
    static JOBS: OnceLock<Mutex<Jobs>> = OnceLock::new();
    JOBS.get_or_init(Default::default)
}

/// Queue any work on the session file `path` (such as appending to the
/// session's `log.jsonl`), in order with its status writes.
pub fn enqueue_job(path: PathBuf, job: impl FnOnce() + Send + 'static) {
    let job: Box<dyn FnOnce() + Send> = Box::new(job);
    let path = queue_key(path);
    let mut pending = jobs().lock().unwrap_or_else(|p| p.into_inner());
    match pending.get_mut(&path) {
        Some(queue) => queue.push_back(job),
        None => {
            pending.insert(path.clone(), VecDeque::from([job]));
            tokio::task::spawn_blocking(move || run_jobs(&path));
        }
    }
}

/// One queue per file, however the caller spelled its path: the directory
/// is resolved (`mc/sessions/a/session.json` and its absolute form share a
/// queue). A directory that does not exist yet keeps the path as given.
fn queue_key(path: PathBuf) -> PathBuf {
    match (
        path.parent().filter(|p| !p.as_os_str().is_empty()),
        path.file_name(),
    ) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or(path),
        _ => std::fs::canonicalize(".")
            .map(|d| d.join(&path))
            .unwrap_or(path),
    }
}

/// A job that runs after everything queued for `path` so far.
pub fn flush(path: PathBuf) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    enqueue_job(path, move || {
        let _ = tx.send(());
    });
    rx
}

/// Run the jobs of `path` until there are none; the path is in the map
/// exactly while this runs.
fn run_jobs(path: &Path) {
    loop {
        let job = {
            let mut pending = jobs().lock().unwrap_or_else(|p| p.into_inner());
            match pending.get_mut(path).and_then(VecDeque::pop_front) {
                Some(job) => job,
                None => {
                    pending.remove(path);
                    return;
                }
            }
        };
        // A panicking job drops its reply (the caller gets an error); the queue goes on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::Arc;

    #[test]
    fn one_queue_per_file_however_its_path_is_spelled() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("sub")).expect("mkdir");
        let plain = queue_key(dir.path().join("session.json"));
        assert_eq!(
            queue_key(dir.path().join("sub").join("..").join("session.json")),
            plain
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_on_one_path_run_in_the_order_queued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.json");
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..50 {
            let order = Arc::clone(&order);
            enqueue_job(path.clone(), move || {
                order.lock().expect("order").push(i);
            });
        }
        flush(path).await.expect("flushed");
        assert_eq!(*order.lock().expect("order"), (0..50).collect::<Vec<_>>());
    }
}
