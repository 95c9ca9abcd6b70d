//! Wake-ups for lock waiters: a file-system watch on the lock's directory.
//!
//! Waiters sleep on a condition variable that the watch bumps whenever the
//! lock file changes, so a release is seen within the notify latency instead
//! of on the next poll. One watch serves every waiter of a lock path in this
//! process. Watches are kept for the few most recently used lock paths:
//! closing an inotify instance waits for an RCU grace period (milliseconds),
//! which a lock holder must not pay on every acquisition.

use notify::{RecursiveMode, Watcher};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// A change counter for one lock path, bumped by a directory watch.
pub(super) struct LockWake {
    generation: Mutex<u64>,
    changed: Condvar,
    watcher_slot: Mutex<Option<notify::RecommendedWatcher>>,
}

/// How many lock paths keep their watch between acquisitions.
const KEPT_WATCHES: usize = 8;

/// Lock paths and their wakes, most recently used first.
type KeptWakes = Mutex<Vec<(PathBuf, Arc<LockWake>)>>;

fn kept_wakes() -> &'static KeptWakes {
    static WAKES: OnceLock<KeptWakes> = OnceLock::new();
    WAKES.get_or_init(Default::default)
}

impl LockWake {
    /// The shared wake for `lock_path`, starting a watch on its directory if
    /// none runs. Fails when the OS will not give a watch (the caller polls).
    pub(super) fn for_path(lock_path: &Path) -> notify::Result<Arc<LockWake>> {
        let mut wakes = kept_wakes()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = wakes.iter().position(|(p, _)| p == lock_path) {
            let entry = wakes.remove(i);
            let wake = Arc::clone(&entry.1);
            wakes.insert(0, entry);
            return Ok(wake);
        }
        let wake = Arc::new(LockWake {
            generation: Mutex::new(0),
            changed: Condvar::new(),
            watcher_slot: Mutex::new(None),
        });
        let target: Option<OsString> = lock_path.file_name().map(std::ffi::OsStr::to_os_string);
        let weak = Arc::downgrade(&wake);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let relevant = match &event {
                    Ok(ev) if !crate::fs_events::may_change(ev.kind) => false,
                    Ok(ev) => {
                        ev.paths.is_empty()
                            || ev.paths.iter().any(|p| p.file_name() == target.as_deref())
                    }
                    // An error may hide a release: wake everyone to look.
                    Err(_) => true,
                };
                if let (true, Some(wake)) = (relevant, weak.upgrade()) {
                    wake.bump();
                }
            })?;
        let dir = lock_path.parent().unwrap_or(Path::new("."));
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
        *wake
            .watcher_slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(watcher);
        wakes.insert(0, (lock_path.to_path_buf(), Arc::clone(&wake)));
        if wakes.len() > KEPT_WATCHES {
            if let Some(evicted) = wakes.pop() {
                // Closing the watch is slow; nobody should wait for it.
                std::thread::spawn(move || drop(evicted));
            }
        }
        Ok(wake)
    }

    fn bump(&self) {
        let mut generation = self
            .generation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *generation += 1;
        self.changed.notify_all();
    }

    /// The current change count; pass it to [`LockWake::wait_past`].
    pub(super) fn generation(&self) -> u64 {
        *self
            .generation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sleep until the count moves past `seen` or `timeout` elapses.
    pub(super) fn wait_past(&self, seen: u64, timeout: Duration) {
        let generation = self
            .generation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = self
            .changed
            .wait_timeout_while(generation, timeout, |g| *g == seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_removal_wakes_the_waiter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = dir.path().join("registry.json.lock");
        std::fs::write(&lock, "x").expect("write lock");
        let wake = LockWake::for_path(&lock).expect("watch");
        let seen = wake.generation();
        let remover = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                std::fs::remove_file(lock).expect("remove");
            })
        };
        let start = Instant::now();
        wake.wait_past(seen, Duration::from_secs(5));
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "woke on the removal"
        );
        assert!(wake.generation() > seen);
        remover.join().expect("join");
    }

    #[test]
    fn waiters_of_one_path_share_a_watch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = dir.path().join("l");
        let a = LockWake::for_path(&lock).expect("watch");
        let b = LockWake::for_path(&lock).expect("watch");
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn other_files_do_not_wake() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wake = LockWake::for_path(&dir.path().join("l")).expect("watch");
        let seen = wake.generation();
        std::fs::write(dir.path().join("unrelated"), "x").expect("write");
        wake.wait_past(seen, Duration::from_millis(200));
        assert_eq!(wake.generation(), seen);
    }
}
