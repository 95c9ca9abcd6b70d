//! Which bridge dispatches a session's missions (§9.5): a `flock` on the
//! session's directory (`sessions/<id>/`, on Windows the sidecar
//! `.<name>.claim` beside the file), held from the re-read that finds a
//! mission `queued` until its outcome is on disk. A second bridge on the
//! same queue finds the claim taken and looks again shortly; a bridge that
//! is killed loses the claim with its last file descriptor, and the
//! survivor takes the session over.
//!
//! The directory is there already: locking it costs no new inode, where a
//! sidecar per session was one more file created in a sweep of fresh
//! sessions (inode allocation was the sweep's largest kernel cost).
//!
//! Dispatches of one session from one tailer share its claim (a count), so
//! `maxInflight` works within a session as well as across sessions.
//!
//! With other bridges on the queue ([`Presence`]), a claim is handed over
//! between batches: it takes new dispatches for [`SLICE`] after it was
//! taken, and once released the session is left alone for [`REST`], longer
//! than the others wait between tries ([`RETRY_WHILE_SHARING_MS`]), so one
//! of them has it next. Alone, a bridge keeps a busy session's claim.

use super::descriptors::is_shortage;
use super::presence::Presence;
use crate::mission_control::session::{self, Unreadable};
use serde_json::Value;
use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// With other bridges on the queue: how long a claim takes new dispatches.
pub(super) const SLICE: Duration = Duration::from_millis(250);

/// With other bridges on the queue: how often a bridge tries for a session
/// another holds.
pub(super) const RETRY_WHILE_SHARING_MS: f64 = 50.0;

/// With other bridges on the queue: how long a session whose claim was let
/// go is left alone, longer than [`RETRY_WHILE_SHARING_MS`] so another
/// bridge's try comes first.
pub(super) const REST: Duration = Duration::from_millis(80);

/// More resting sessions than this and the ones done resting are dropped.
const MAX_RESTING: usize = 1024;

/// The session claims one tailer holds.
#[derive(Default)]
pub(super) struct Claims {
    state: Mutex<State>,
    /// The other bridges on the queue; `None`: alone.
    presence: Option<Arc<Presence>>,
}

#[derive(Default)]
struct State {
    /// The claims held, by session file.
    held: HashMap<PathBuf, Held>,
    /// Sessions handed over to the other bridges, until when.
    resting: HashMap<PathBuf, Instant>,
}

/// One claimed session.
struct Held {
    /// The locked directory or `.claim` file (closing it releases the lock).
    _file: File,
    /// How many dispatches use the claim.
    users: usize,
    /// When it was taken.
    taken: Instant,
    /// The bytes a dispatch re-read last, parsed: the next re-read that
    /// finds the same bytes need not parse them again (a sweep re-reads a
    /// session once per mission).
    last_read: Option<(Vec<u8>, Arc<Value>)>,
}

/// A session claimed for one dispatch; released with the last one.
pub(super) struct Claim {
    claims: Arc<Claims>,
    /// `None` when there was nothing to claim (see [`Claims::try_claim`]).
    path: Option<PathBuf>,
}

impl Claims {
    /// Claims that hand a busy session over to the bridges `presence` sees.
    pub(super) fn sharing_with(presence: Arc<Presence>) -> Self {
        Claims {
            state: Mutex::default(),
            presence: Some(presence),
        }
    }

    /// Whether other bridges run on the queue.
    fn sharing(&self) -> bool {
        self.presence.as_ref().is_some_and(|p| p.peers() > 0)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claim the session file `path` for a dispatch; `None` when another
    /// bridge holds it (or, with others on the queue, when its turn here is
    /// over or it rests after one). A session whose directory is gone, or whose claim cannot be
    /// opened (a symlink is never followed), gets an empty claim: the
    /// dispatch's re-read decides. Out of descriptors, nothing can be
    /// claimed: the error.
    pub(super) fn try_claim(self: &Arc<Self>, path: &Path) -> std::io::Result<Option<Claim>> {
        let sharing = self.sharing();
        let mut state = self.state();
        let now = Instant::now();
        if let Some(claimed) = state.held.get_mut(path) {
            if sharing && now.duration_since(claimed.taken) >= SLICE {
                // Its turn is over: no new dispatch until handed over.
                return Ok(None);
            }
            claimed.users += 1;
            return Ok(Some(self.claim(Some(path))));
        }
        if let Some(until) = state.resting.get(path).copied() {
            if sharing && now < until {
                return Ok(None);
            }
            state.resting.remove(path);
        }
        let file = match open_claim(path) {
            Ok(file) => file,
            Err(e) if is_shortage(&e) => return Err(e),
            Err(_) => return Ok(Some(self.claim(None))),
        };
        Ok(match file.try_lock() {
            Ok(()) => {
                state.held.insert(
                    path.to_path_buf(),
                    Held {
                        _file: file,
                        users: 1,
                        taken: now,
                        last_read: None,
                    },
                );
                Some(self.claim(Some(path)))
            }
            Err(TryLockError::WouldBlock) => None,
            // A file system without locks: nothing to coordinate with.
            Err(TryLockError::Error(_)) => Some(self.claim(None)),
        })
    }

    /// A claim on nothing.
    pub(super) fn unclaimed(self: &Arc<Self>) -> Claim {
        self.claim(None)
    }

    /// A claim on `path` (or on nothing) that gives its use back when dropped.
    fn claim(self: &Arc<Self>, path: Option<&Path>) -> Claim {
        Claim {
            claims: Arc::clone(self),
            path: path.map(Path::to_path_buf),
        }
    }
}

/// What a claim on the session file `path` locks: its directory, opened
/// read-only without following a symlink there.
#[cfg(unix)]
fn open_claim(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)
}

/// What a claim on the session file `path` locks: the sidecar
/// `.<name>.claim` beside it (a directory cannot be locked here).
#[cfg(not(unix))]
fn open_claim(path: &Path) -> std::io::Result<File> {
    use crate::mission_control::sidecar::{open_no_follow, sidecar};
    open_no_follow(&sidecar(path, "claim"))
}

impl Claim {
    /// The session file at `session_path` as it is now, parsed; its read
    /// error when it cannot be read. The bytes are always read; they are
    /// parsed only when they differ from what the last re-read under this
    /// claim found.
    pub(super) fn reread(&self, session_path: &Path) -> Result<Arc<Value>, Unreadable> {
        let bytes = session::read_capped(&session::open_session(session_path)?)?;
        let Some(path) = &self.path else {
            return session::parse_session(&bytes).map(Arc::new);
        };
        if let Some((_, parsed)) = self
            .claims
            .state()
            .held
            .get(path)
            .and_then(|claimed| claimed.last_read.as_ref())
            .filter(|(seen, _)| *seen == bytes)
        {
            return Ok(Arc::clone(parsed));
        }
        let parsed = Arc::new(session::parse_session(&bytes)?);
        if let Some(claimed) = self.claims.state().held.get_mut(path) {
            claimed.last_read = Some((bytes, Arc::clone(&parsed)));
        }
        Ok(parsed)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(path) = &self.path else { return };
        let sharing = self.claims.sharing();
        let mut state = self.claims.state();
        let Some(claimed) = state.held.get_mut(path) else {
            return;
        };
        claimed.users -= 1;
        if claimed.users > 0 {
            return;
        }
        // Closing the file releases the lock.
        state.held.remove(path);
        if sharing {
            let now = Instant::now();
            if state.resting.len() >= MAX_RESTING {
                state.resting.retain(|_, until| *until > now);
            }
            state.resting.insert(path.clone(), now + REST);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `claims`'s claim on `path`, `None` when it could not be had.
    fn claimed(claims: &Arc<Claims>, path: &Path) -> Option<Claim> {
        claims.try_claim(path).ok().flatten()
    }

    #[test]
    fn one_tailer_shares_a_claim_another_waits_for_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.json");
        let (ours, theirs) = (Arc::new(Claims::default()), Arc::new(Claims::default()));
        let first = claimed(&ours, &path).expect("claimed");
        let second = claimed(&ours, &path).expect("shared within one tailer");
        assert!(claimed(&theirs, &path).is_none(), "another tailer got in");
        drop(first);
        assert!(claimed(&theirs, &path).is_none(), "released too early");
        drop(second);
        assert!(claimed(&theirs, &path).is_some(), "not released");
    }

    #[test]
    fn with_another_bridge_on_the_queue_a_claim_is_handed_over_between_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.json");
        let (us, them) = (
            Arc::new(Presence::new(dir.path())),
            Presence::new(dir.path()),
        );
        us.announce().expect("announce");
        them.announce().expect("announce");
        assert_eq!(us.look(), 1);
        let ours = Arc::new(Claims::sharing_with(Arc::clone(&us)));
        let theirs = Arc::new(Claims::default());
        let first = claimed(&ours, &path).expect("claimed");
        let second = claimed(&ours, &path).expect("shared within its turn");
        std::thread::sleep(SLICE);
        assert!(claimed(&ours, &path).is_none(), "its turn is over");
        let released = Instant::now();
        drop((first, second));
        let resting = claimed(&ours, &path).is_none();
        // Under emulation a thread can sleep past the whole rest.
        assert!(resting || released.elapsed() >= REST, "resting");
        let handed = claimed(&theirs, &path).expect("the other bridge has it next");
        drop(handed);
        std::thread::sleep(REST);
        assert!(claimed(&ours, &path).is_some(), "rested");
        // Alone again: a claim is kept past its turn.
        them.withdraw();
        assert_eq!(us.look(), 0);
        let kept = claimed(&ours, &path).expect("claimed");
        std::thread::sleep(SLICE);
        assert!(claimed(&ours, &path).is_some(), "kept while alone");
        drop(kept);
        assert!(claimed(&ours, &path).is_some(), "no rest while alone");
    }

    #[test]
    fn a_reread_sees_every_change_to_the_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.json");
        std::fs::write(&path, r#"{"missions":[{"id":"a","status":"queued"}]}"#).expect("write");
        let claims = Arc::new(Claims::default());
        let first = claimed(&claims, &path).expect("claimed");
        let second = claimed(&claims, &path).expect("shared");
        let one = first.reread(&path).expect("read");
        let two = second.reread(&path).expect("read");
        assert!(
            Arc::ptr_eq(&one, &two),
            "the same bytes are not parsed again"
        );
        // The same length, in place: seen.
        std::fs::write(&path, r#"{"missions":[{"id":"a","status":"paused"}]}"#).expect("write");
        assert_eq!(
            first.reread(&path).expect("read")["missions"][0]["status"],
            "paused"
        );
        std::fs::remove_file(&path).expect("rm");
        assert!(matches!(second.reread(&path), Err(Unreadable::Missing)));
    }

    #[test]
    fn a_missing_directory_gives_an_empty_claim() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gone").join("session.json");
        let claims = Arc::new(Claims::default());
        assert!(claimed(&claims, &path).is_some());
        assert!(claimed(&claims, &path).is_some());
    }

    #[cfg(unix)]
    #[test]
    fn a_claim_creates_no_file_and_follows_no_symlinked_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.json");
        std::fs::write(&path, "{}").expect("write");
        let claims = Arc::new(Claims::default());
        let claim = claimed(&claims, &path).expect("claimed");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            ["session.json"],
            "nothing created beside the session"
        );
        drop(claim);
        // A directory reached through a symlink is not locked, so two
        // tailers would not exclude each other there: the claim is empty.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).expect("symlink");
        let through = link.join("session.json");
        let first = claimed(&claims, &through).expect("empty claim");
        assert!(first.path.is_none(), "a symlinked directory was locked");
    }
}
