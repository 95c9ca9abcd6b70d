//! Executor leases: which of the bridges watching one queue follows an
//! executor's event stream. Two bridges that both followed it would apply
//! every event twice (the second `stale`) and journal it twice.
//!
//! A lease is an exclusive lock on `<watchDir>/.mc-native-leases/executor-
//! <id, percent-encoded>.lease`, held for as long as the bridge follows the
//! executor. The kernel lets go of it when the process dies (SIGKILL
//! included), so a bridge that waits for it takes over by trying again. A
//! file system where the lease cannot be made (read-only, no locks) leaves
//! every bridge following, as without leases.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The directory of the lease files, under `watchDir`.
pub(super) const LEASE_DIR: &str = ".mc-native-leases";

/// What trying for an executor's lease found.
#[derive(Debug)]
pub(super) enum Lease {
    /// This bridge holds it now: follow the executor.
    Held,
    /// Another bridge holds it: wait, and try again.
    Elsewhere,
    /// It cannot be had here (the error): follow the executor anyway.
    Unavailable(io::Error),
}

/// The leases of one bridge, held until it stops (dropped with it).
pub(super) struct Leases {
    dir: PathBuf,
    held: Mutex<HashMap<String, File>>,
}

impl Leases {
    /// Leases kept under `root` (the canonical `watchDir`).
    pub(super) fn new(root: &Path) -> Self {
        Leases {
            dir: root.join(LEASE_DIR),
            held: Mutex::default(),
        }
    }

    /// Try for `executor_id`'s lease without waiting. Blocking (it opens a file).
    pub(super) fn try_take(&self, executor_id: &str) -> Lease {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.contains_key(executor_id) {
            return Lease::Held;
        }
        let path = self.dir.join(file_name(executor_id));
        let mut file = match self.open(&path) {
            Ok(file) => file,
            Err(e) => return Lease::Unavailable(e),
        };
        match crate::mission_control::sidecar::try_lock_exclusive(&mut file, &path) {
            Ok(()) => {
                held.insert(executor_id.to_owned(), file);
                Lease::Held
            }
            Err(TryLockError::WouldBlock) => Lease::Elsewhere,
            Err(TryLockError::Error(e)) => Lease::Unavailable(e),
        }
    }

    /// Let go of every lease: the bridge has stopped (a bridge waiting
    /// takes over at its next try).
    pub(super) fn release_all(&self) {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The lease file at `path`, made if missing, opened read-only.
    fn open(&self, path: &Path) -> io::Result<File> {
        make_dir(&self.dir)?;
        match crate::mission_control::sidecar::open_to_read_no_follow(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                drop(crate::mission_control::sidecar::open_no_follow(path)?);
                crate::mission_control::sidecar::open_to_read_no_follow(path)
            }
            opened => opened,
        }
    }
}

/// Make the directory `path` unless it is there (its parent is not made).
pub(super) fn make_dir(path: &Path) -> io::Result<()> {
    match std::fs::create_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// The longest id kept whole in a file name; a longer one is cut, with a
/// digest of the whole id after it (names stay under every file system's
/// 255-byte limit).
const NAME_MAX_ID: usize = 150;

/// `executor-<id>.lease`, the id percent-encoded but for `[a-z0-9._-]`:
/// no separator, no name Windows reserves, and ids that differ only in case
/// stay two files where the file system folds case (macOS, Windows).
fn file_name(executor_id: &str) -> String {
    let mut encoded = String::with_capacity(executor_id.len());
    for byte in executor_id.bytes() {
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'.' | b'_' | b'-')
        {
            encoded.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    if encoded.len() > NAME_MAX_ID {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        executor_id.hash(&mut hasher);
        let mut cut = NAME_MAX_ID;
        while !encoded.is_char_boundary(cut) {
            cut -= 1;
        }
        encoded = format!("{}~{:016x}", &encoded[..cut], hasher.finish());
    }
    format!("executor-{encoded}.lease")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bridge_holds_a_lease_and_the_next_takes_it_once_let_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Leases::new(dir.path());
        let second = Leases::new(dir.path());
        assert!(matches!(first.try_take("ex-1"), Lease::Held));
        assert!(
            matches!(first.try_take("ex-1"), Lease::Held),
            "held already"
        );
        assert!(matches!(second.try_take("ex-1"), Lease::Elsewhere));
        assert!(
            matches!(second.try_take("ex-2"), Lease::Held),
            "one lease per executor"
        );
        first.release_all();
        assert!(matches!(second.try_take("ex-1"), Lease::Held));
        assert!(matches!(first.try_take("ex-1"), Lease::Elsewhere));
        drop(second);
        assert!(
            matches!(first.try_take("ex-1"), Lease::Held),
            "dropped, let go"
        );
    }

    #[test]
    fn names_are_one_safe_file_per_id() {
        assert_eq!(file_name("ex-1"), "executor-ex-1.lease");
        assert_eq!(file_name("a/b\\c:é"), "executor-a%2Fb%5Cc%3A%C3%A9.lease");
        assert_eq!(file_name("Ex"), "executor-%45x.lease");
        assert_ne!(
            file_name("A").to_lowercase(),
            file_name("a").to_lowercase(),
            "apart where case folds"
        );
        let long = "x".repeat(1000);
        let name = file_name(&long);
        assert!(name.len() < 200, "{}", name.len());
        assert_ne!(name, file_name(&format!("{long}y")));
    }

    #[cfg(unix)]
    #[test]
    fn a_lease_that_cannot_be_made_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A file where the lease directory goes.
        std::fs::write(dir.path().join(LEASE_DIR), "").expect("write");
        let leases = Leases::new(dir.path());
        assert!(matches!(leases.try_take("ex-1"), Lease::Unavailable(_)));
    }
}
