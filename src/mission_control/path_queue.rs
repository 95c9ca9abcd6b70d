//! The per-path job queue: work on one session file (status writes, its
//! `log.jsonl` lines, the other-writers aftercheck) runs one job at a time,
//! in the order it was queued, on tokio's blocking pool. Every writer in this
//! process goes through it, so their read-modify-writes never interleave.
//!
//! Which queue a job belongs to depends on which file the path names,
//! and finding that out is file-system work (a `stat` of its directory). It
//! must not run on the
//! caller's thread (for `applyStatusUpdate` that is the JS main thread), yet
//! the order of [`enqueue_job`] calls must hold however the path is spelled.
//! So [`enqueue_job`] only pushes `(path, job)` onto one channel, in call
//! order; a single router thread takes them off in that order, resolves the
//! path and appends the job to its file's queue, starting a runner for a
//! queue that was idle.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// One queued piece of work.
type Job = Box<dyn FnOnce() + Send>;

/// Jobs waiting for one session file, in the order they were submitted.
type Jobs = HashMap<QueueKey, VecDeque<Job>>;

/// Which file a queue is for, however the caller spelled its path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum QueueKey {
    /// The file `name` in the directory with this device and inode: one
    /// `stat` finds it, and every spelling of the directory (relative,
    /// through `..` or a symlink) is the same directory.
    #[cfg(unix)]
    InDir {
        dev: u64,
        ino: u64,
        name: std::ffi::OsString,
    },
    /// The canonical path, where there are no inode numbers to go by (or
    /// the path as given, when its directory does not exist yet).
    Path(PathBuf),
}

/// What [`enqueue_job`] hands the router: the path as the caller spelled
/// it, the job, and the caller's runtime (where its runner should run).
struct Routed {
    path: PathBuf,
    job: Job,
    runtime: Option<Handle>,
}

/// Jobs queued and not yet finished, in every queue of the process.
static OUTSTANDING: AtomicUsize = AtomicUsize::new(0);

/// Whether no job is queued or running anywhere: a stop with nothing
/// written lately need not wait for a flush of every queue it touched.
pub(crate) fn idle() -> bool {
    OUTSTANDING.load(Ordering::SeqCst) == 0
}

/// The queues, shared by the router (which appends) and the runners (which pop).
fn jobs() -> &'static Mutex<Jobs> {
    static JOBS: OnceLock<Mutex<Jobs>> = OnceLock::new();
    JOBS.get_or_init(Default::default)
}

/// The router's inbox; the router thread starts with the first job. `None`
/// when the thread could not be started (jobs then route on the caller's
/// thread, which keeps the order, only not the caller's thread free).
fn router() -> Option<&'static mpsc::Sender<Routed>> {
    static ROUTER: OnceLock<Option<mpsc::Sender<Routed>>> = OnceLock::new();
    ROUTER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Routed>();
            std::thread::Builder::new()
                .name("mc-path-queue".into())
                .spawn(move || {
                    // Ends only with the process: the sender lives in a static.
                    for routed in rx {
                        route(routed);
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Queue any work on the session file `path` (such as appending to the
/// session's `log.jsonl`), in order with its status writes. Never touches
/// the file system on the caller's thread.
pub(crate) fn enqueue_job(path: PathBuf, job: impl FnOnce() + Send + 'static) {
    OUTSTANDING.fetch_add(1, Ordering::SeqCst);
    let routed = Routed {
        path,
        job: Box::new(job),
        runtime: Handle::try_current().ok(),
    };
    let unsent = match router() {
        Some(tx) => tx.send(routed).err().map(|e| e.0),
        None => Some(routed),
    };
    if let Some(routed) = unsent {
        route(routed);
    }
}

/// On the router thread: put the job in its file's queue; start a runner
/// if that queue was idle.
fn route(Routed { path, job, runtime }: Routed) {
    let key = queue_key(path);
    let mut pending = jobs()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(queue) = pending.get_mut(&key) {
        queue.push_back(job);
    } else {
        pending.insert(key.clone(), VecDeque::from([job]));
        drop(pending);
        start_runner(key, runtime);
    }
}

/// Run `key`'s queue on the caller's runtime's blocking pool, or on a
/// thread of its own when the caller had no runtime.
fn start_runner(key: QueueKey, runtime: Option<Handle>) {
    let runner = Runner(Some(key));
    match runtime {
        // A runtime shutting down drops the closure unrun: `Runner`'s drop
        // then gives the queue a thread, so it is never stuck.
        Some(handle) => drop(handle.spawn_blocking(move || runner.run())),
        None => drop(runner),
    }
}

/// A queue's runner; one that is dropped without having run gets a thread.
struct Runner(Option<QueueKey>);

impl Runner {
    fn run(mut self) {
        if let Some(key) = self.0.take() {
            run_jobs(&key);
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let Some(key) = self.0.take() else { return };
        let spare = key.clone();
        if std::thread::Builder::new()
            .name("mc-path-job".into())
            .spawn(move || run_jobs(&key))
            .is_err()
        {
            // No thread to be had: run the queue here rather than lose it.
            run_jobs(&spare);
        }
    }
}

/// One queue per file, however the caller spelled its path
/// (`mc/sessions/a/session.json` and its absolute form share a queue). A
/// directory that does not exist yet keeps the path as given. File-system
/// work: runs on the router thread.
fn queue_key(path: PathBuf) -> QueueKey {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    #[cfg(unix)]
    if let Some(name) = path.file_name() {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::metadata(dir.unwrap_or(std::path::Path::new("."))) {
            return QueueKey::InDir {
                dev: meta.dev(),
                ino: meta.ino(),
                name: name.to_os_string(),
            };
        }
        return QueueKey::Path(path);
    }
    let resolved = match (dir, path.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir).map(|d| d.join(name)),
        _ => std::fs::canonicalize(".").map(|d| d.join(&path)),
    };
    QueueKey::Path(resolved.unwrap_or(path))
}

/// A job that runs after everything queued for `path` so far.
pub(crate) fn flush(path: PathBuf) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    enqueue_job(path, move || {
        let _ = tx.send(());
    });
    rx
}

/// Run the jobs of `key` until there are none; the key is in the map
/// exactly while this runs.
fn run_jobs(path: &QueueKey) {
    loop {
        let job = {
            let mut pending = jobs()
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(job) = pending.get_mut(path).and_then(VecDeque::pop_front) {
                job
            } else {
                pending.remove(path);
                return;
            }
        };
        // A panicking job drops its reply (the caller gets an error); the queue goes on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        OUTSTANDING.fetch_sub(1, Ordering::SeqCst);
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_keep_their_order_across_spellings_of_one_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("sub")).expect("mkdir");
        let plain = dir.path().join("session.json");
        let detour = dir.path().join("sub").join("..").join("session.json");
        let dotted = dir.path().join(".").join("session.json");
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..60 {
            let path = [&plain, &detour, &dotted][i % 3].clone();
            let order = Arc::clone(&order);
            enqueue_job(path, move || {
                // A slow first job: later ones must still wait their turn.
                if i == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                order.lock().expect("order").push(i);
            });
        }
        flush(detour).await.expect("flushed");
        assert_eq!(*order.lock().expect("order"), (0..60).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_does_not_stop_its_queue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.json");
        let ran = Arc::new(Mutex::new(Vec::new()));
        enqueue_job(path.clone(), || panic!("a job that fails"));
        let after = Arc::clone(&ran);
        enqueue_job(path.clone(), move || {
            after.lock().expect("ran").push("next");
        });
        flush(path).await.expect("flushed");
        assert_eq!(*ran.lock().expect("ran"), ["next"]);
    }

    #[test]
    fn a_runtime_gone_before_its_runner_started_still_gets_its_jobs_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let handle = runtime.handle().clone();
        drop(runtime);
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().join("session.json");
        jobs().lock().expect("jobs").insert(
            queue_key(path.clone()),
            VecDeque::from([Box::new(move || {
                let _ = tx.send(());
            }) as Job]),
        );
        OUTSTANDING.fetch_add(1, Ordering::SeqCst);
        start_runner(queue_key(path), Some(handle));
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("ran");
    }

    #[test]
    fn a_caller_without_a_runtime_still_gets_its_jobs_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, rx) = std::sync::mpsc::channel();
        enqueue_job(dir.path().join("session.json"), move || {
            let _ = tx.send(());
        });
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("ran");
    }
}
