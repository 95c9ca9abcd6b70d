//! Which other bridges run on this queue. A bridge alone keeps a busy
//! session's claim for as long as it has missions there; with others
//! beside it, it hands the claim over between batches (see
//! [`claims`](super::claims)), so the bridges share a large queue.
//!
//! Each bridge holds an exclusive lock on its own file,
//! `<watchDir>/.mc-native-leases/bridges/bridge-<pid>-<nonce>.lease`, for as
//! long as it runs. The others are the files whose lock is held: the kernel
//! lets go of a lock when its process dies (SIGKILL included), so a killed
//! bridge stops counting at once, and its file is removed by the next
//! bridge that looks once it is old. A file system where nothing can be
//! made or locked leaves every bridge alone, as before.

use super::executor_lease::{make_dir, LEASE_DIR};
use super::{lock, Bridge};
use crate::backoff::sleep_ms;
use crate::mission_control::sidecar::{open_to_read_no_follow, try_lock_exclusive};
use serde_json::json;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The subdirectory of [`LEASE_DIR`] for the bridges' own files.
const BRIDGES_DIR: &str = "bridges";

/// A lease file no one holds, older than this, is a killed bridge's: removed.
/// (A bridge holds its file the moment after creating it; the age keeps a
/// look from removing one in that moment.)
const STALE_AFTER: Duration = Duration::from_secs(10);

/// This bridge's file and the count of the others.
pub(super) struct Presence {
    dir: PathBuf,
    /// This bridge's file: its name, and the open file holding the lock.
    own: Mutex<Option<(String, File)>>,
    /// The other bridges found by the last [`Presence::look`].
    peers: AtomicUsize,
}

impl Presence {
    /// The presence of a bridge on the queue at `root` (the canonical
    /// `watchDir`); not announced yet.
    pub(super) fn new(root: &Path) -> Self {
        Presence {
            dir: root.join(LEASE_DIR).join(BRIDGES_DIR),
            own: Mutex::new(None),
            peers: AtomicUsize::new(0),
        }
    }

    /// Make and lock this bridge's file. Blocking. The error when it cannot
    /// be made: the others cannot see this bridge then.
    pub(super) fn announce(&self) -> io::Result<()> {
        // Level by level: a `watchDir` that is not there is not made.
        if let Some(leases) = self.dir.parent() {
            make_dir(leases)?;
        }
        make_dir(&self.dir)?;
        let nonce = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let name = format!("bridge-{}-{nonce:x}.lease", std::process::id());
        let path = self.dir.join(&name);
        // Made, then held open read-only: a file open for writing keeps the
        // file system from being remounted read-only (EBUSY).
        drop(
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?,
        );
        let mut file = match open_to_read_no_follow(&path) {
            Ok(file) => file,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        // A look holds the lock for a moment to see whether anyone does.
        let mut tries = 0;
        loop {
            match try_lock_exclusive(&mut file, &path) {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TryLockError::WouldBlock) => {
                    let _ = std::fs::remove_file(&path);
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Err(TryLockError::Error(e)) => {
                    let _ = std::fs::remove_file(&path);
                    return Err(e);
                }
            }
        }
        *lock(&self.own) = Some((name, file));
        Ok(())
    }

    /// Count the other bridges now (and remove the files killed ones left).
    /// Blocking. Nothing to read counts none.
    pub(super) fn look(&self) -> usize {
        let own = lock(&self.own).as_ref().map(|(name, _)| name.clone());
        let count = std::fs::read_dir(&self.dir).map_or(0, |entries| {
            entries
                .filter_map(std::result::Result::ok)
                .filter(|entry| {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    name.starts_with("bridge-")
                        && name.ends_with(".lease")
                        && own.as_deref() != Some(&*name)
                })
                .filter(|entry| held(&entry.path()))
                .count()
        });
        self.peers.store(count, Ordering::Relaxed);
        count
    }

    /// Whether this bridge's file is made, held, and still where the others
    /// look (someone may have removed the directory).
    pub(super) fn announced(&self) -> bool {
        lock(&self.own)
            .as_ref()
            .is_some_and(|(name, _)| self.dir.join(name).exists())
    }

    /// The other bridges the last look found.
    pub(super) fn peers(&self) -> usize {
        self.peers.load(Ordering::Relaxed)
    }

    /// Let go of this bridge's file: it has stopped.
    pub(super) fn withdraw(&self) {
        if let Some((name, file)) = lock(&self.own).take() {
            let _ = std::fs::remove_file(self.dir.join(name));
            drop(file);
        }
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.withdraw();
    }
}

/// How often a bridge looks for the others.
const LOOK_EVERY_MS: f64 = 250.0;

impl Bridge {
    /// Announce this bridge on the queue and look for the others; keep
    /// looking until it stops. Without a file of its own (read-only, no
    /// locks), the others do not see it; it still sees them.
    pub(super) async fn announce(self: &Arc<Self>) {
        let announced = self
            .off_runtime(|b| {
                let announced = b.presence.announce();
                b.presence.look();
                announced
            })
            .await;
        match announced {
            // No `watchDir` at all: nothing to share, nothing to say.
            Some(Err(e)) if e.kind() != io::ErrorKind::NotFound => self.log.log(
                "queue-tailer:presence-unavailable",
                json!({"error": e.to_string()}),
            ),
            _ => {}
        }
        self.peers_changed(0);
        let bridge = Arc::clone(self);
        self.spawn(async move {
            let mut last = bridge.presence.peers();
            loop {
                sleep_ms(LOOK_EVERY_MS, &bridge.stop).await;
                if bridge.stop.is_cancelled() {
                    return;
                }
                // Not seen by the others yet (no watchDir at start, a full
                // or read-only disk, the directory removed): try again.
                let look = |b: &Bridge| {
                    if !b.presence.announced() {
                        let _ = b.presence.announce();
                    }
                    b.presence.look()
                };
                let Some(now) = bridge.off_runtime(look).await else {
                    return;
                };
                if now != last {
                    bridge.peers_changed(last);
                    if now < last {
                        bridge.clear_temps_of_gone_bridges().await;
                    }
                    last = now;
                }
            }
        });
    }

    /// A bridge beside this one is gone (stopped, or killed mid-write): the
    /// temp files a killed one left beside the sessions go now (§9.6), not
    /// only when a bridge next starts.
    async fn clear_temps_of_gone_bridges(self: &Arc<Self>) {
        self.off_runtime(|b| {
            for path in b.scanner.seen_paths() {
                let _ = crate::atomic_write::remove_stale_temps(&path);
            }
        })
        .await;
    }

    /// Log how many other bridges share the queue, if it is not `before`.
    fn peers_changed(&self, before: usize) {
        let peers = self.presence.peers();
        if peers != before {
            self.log
                .log("queue-tailer:peer-bridges", json!({"peers": peers}));
        }
    }
}

/// Whether a running bridge holds the lease file at `path`. One no one
/// holds is removed once it is old.
fn held(path: &Path) -> bool {
    let Ok(file) = open_to_read_no_follow(path) else {
        return false;
    };
    match file.try_lock_shared() {
        Err(TryLockError::WouldBlock) => return true,
        // No locks here (as with an open that fails): no bridge can be
        // seen this way, and none is counted for ever.
        Err(TryLockError::Error(_)) => return false,
        Ok(()) => {}
    }
    let old = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE_AFTER);
    drop(file);
    if old {
        let _ = std::fs::remove_file(path);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridges_see_each_other_while_they_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (Presence::new(dir.path()), Presence::new(dir.path()));
        assert_eq!(a.look(), 0, "nothing announced");
        a.announce().expect("announce a");
        assert_eq!(a.look(), 0, "a does not count itself");
        assert_eq!(b.look(), 1);
        b.announce().expect("announce b");
        assert_eq!((a.look(), b.look()), (1, 1));
        assert_eq!(a.peers(), 1, "the last look is kept");
        b.withdraw();
        assert_eq!(a.look(), 0, "withdrawn");
        let names = std::fs::read_dir(dir.path().join(LEASE_DIR).join(BRIDGES_DIR))
            .expect("ls")
            .count();
        assert_eq!(names, 1, "b's file is gone");
    }

    #[test]
    fn a_file_no_one_holds_is_no_bridge_and_goes_once_old() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Presence::new(dir.path());
        a.announce().expect("announce");
        let bridges = dir.path().join(LEASE_DIR).join(BRIDGES_DIR);
        // What a killed bridge leaves: a file with no lock on it.
        let fresh = bridges.join("bridge-1-1.lease");
        let old = bridges.join("bridge-2-2.lease");
        std::fs::write(&fresh, "").expect("write");
        std::fs::write(&old, "").expect("write");
        let long_ago = SystemTime::now() - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&old)
            .and_then(|f| f.set_modified(long_ago))
            .expect("age it");
        assert_eq!(a.look(), 0);
        assert!(
            fresh.exists(),
            "a fresh file stays (its bridge may be locking it)"
        );
        assert!(!old.exists(), "an old one goes");
    }

    #[cfg(unix)]
    #[test]
    fn where_nothing_can_be_made_a_bridge_is_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(LEASE_DIR), "").expect("a file where the directory goes");
        let a = Presence::new(dir.path());
        assert!(a.announce().is_err());
        assert_eq!(a.look(), 0);
    }
}
