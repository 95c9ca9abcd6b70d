//! The advisory lock this package's writers take around every write of a
//! session file, in any process: `flock` on the sidecar `.<name>.lock`
//! beside it. Two bridges, or a bridge and a caller of `applyStatusUpdate`,
//! never interleave their read-modify-writes. Writers that do not know the
//! lock (the `aiwg mc` CLI) are handled by [`super::concurrent_update`].
//!
//! The lock is on a sidecar, not on `session.json` itself, because every
//! write replaces `session.json` with a new inode. The kernel releases it
//! when its holder dies, so a killed bridge never leaves it stuck. Lock
//! files are never removed: deleting one while another process waits on it
//! would let two holders in.

use super::sidecar::{is_symlink_refusal, open_no_follow, sidecar};
use crate::error::{IoContext, Result};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Held while alive.
#[derive(Debug)]
pub(crate) struct SessionLock {
    _file: File,
}

/// `<dir>/.<name>.lock` for the session file `<dir>/<name>`.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    sidecar(path, "lock")
}

impl SessionLock {
    /// Wait for the lock of the session file `path`. `None` when there is
    /// nothing to guard (the directory does not exist) or when the lock path
    /// is a planted symlink, which is never followed: the write then relies
    /// on the checks of [`super::concurrent_update`] alone.
    pub(crate) fn acquire(path: &Path) -> Result<Option<SessionLock>> {
        let lock_path = lock_path(path);
        let file = match open_no_follow(&lock_path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if is_symlink_refusal(&e) => return Ok(None),
            Err(e) => return Err(e).at("open", &lock_path),
        };
        file.lock().at("flock", &lock_path)?;
        Ok(Some(SessionLock { _file: file }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn excludes_a_second_holder_until_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.json");
        let first = SessionLock::acquire(&path).expect("lock").expect("held");
        let entered = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (path, entered) = (path.clone(), Arc::clone(&entered));
            std::thread::spawn(move || {
                let _second = SessionLock::acquire(&path).expect("lock");
                entered.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!entered.load(Ordering::SeqCst), "second holder got in");
        drop(first);
        waiter.join().expect("join");
        assert!(entered.load(Ordering::SeqCst));
        assert!(lock_path(&path).exists(), "the lock file stays");
    }

    #[test]
    fn nothing_to_guard_without_a_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gone").join("session.json");
        assert!(SessionLock::acquire(&path).expect("lock").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.json");
        let victim = dir.path().join("victim");
        std::os::unix::fs::symlink(&victim, lock_path(&path)).expect("plant");
        assert!(SessionLock::acquire(&path).expect("lock").is_none());
        assert!(!victim.exists(), "the symlink's target was created");
    }
}
