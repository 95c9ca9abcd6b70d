//! The registry lock: a JSON lock file shared with the JS original.
//!
//! Protocol (compatible both ways with the original): the holder creates
//! `registry.json.lock` exclusively with `{pid, loopId, timestamp,
//! leaseExpiry, fencingToken}`; anyone may break a lock whose lease has
//! expired or whose holder is dead; the holder removes it when done.
//!
//! What we add on top, without changing the file's meaning:
//! - an empty or unreadable lock file (a writer between its create and its
//!   write) counts as held until it is older than a lease; the file is not
//!   fsynced, as a lock means nothing once its holder is gone;
//! - `processStart` records the holder's start identity, so a reused pid
//!   is not taken for the holder (old files without it still work);
//! - breaking and releasing happen under an OS lock on `<lock>.guard`
//!   after re-reading the file, so two breakers cannot both win and a
//!   release never removes somebody else's lock;
//! - waiters sleep on a directory watch ([`LockWake`](super::lock_wake::LockWake))
//!   and wake as soon as the lock file goes, re-checking the holder's
//!   liveness every few milliseconds so a killed holder is noticed at once;
//! - an operation whose work runs on a JS thread between taking the lock
//!   and giving it back ([`RegistryLock::hold`]) is remembered with that
//!   thread's realm, so a synchronous operation of the same thread, which
//!   cannot run while that work runs, goes ahead under the same hold
//!   ([`RegistryLock::hold_sync`]) instead of waiting for a release that
//!   cannot come until it returns.
//!
//! The pieces: [`file`] (what the lock file says), [`liveness`] (whether
//! its holder is still there), [`protocol`] (take, wait, break, give
//! back), [`realm`] (holds remembered per JS thread). This file is the
//! operations the registry and the binding call.

mod file;
mod liveness;
mod protocol;
mod realm;

pub(crate) use file::LoopTag;

use crate::error::{Error, Result};
use file::{own_pid, Observed};
use protocol::{timeout_error, Attempt};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// How long a lock is valid without its holder renewing it.
pub(crate) const LEASE_MS: u64 = 30_000;
/// What one "attempt" of the original's 100 ms poll is worth in waiting time.
pub(crate) const ATTEMPT: Duration = Duration::from_millis(100);

/// A lock acquired by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Acquired {
    pub fencing_token: u64,
}

/// The lock file at one path.
pub(crate) struct RegistryLock {
    path: PathBuf,
    guard_path: PathBuf,
}

impl RegistryLock {
    pub(crate) fn new(path: PathBuf) -> Self {
        let mut guard = path.clone().into_os_string();
        guard.push(".guard");
        RegistryLock {
            path,
            guard_path: PathBuf::from(guard),
        }
    }

    /// The lock file's path.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Take the lock for `loop_id`, waiting up to `max_attempts` × 100 ms.
    pub(crate) fn acquire(
        &self,
        loop_id: impl Into<LoopTag>,
        max_attempts: u32,
    ) -> Result<Acquired> {
        match self.acquire_unless(&loop_id.into(), max_attempts, &|_| false)? {
            Some(acquired) => Ok(acquired),
            None => Err(Error::Message("the registry lock was not taken".into())),
        }
    }

    /// As [`acquire`](Self::acquire), but `Ok(None)` as soon as the lock
    /// file is seen held in a way `shared` accepts as ours already.
    fn acquire_unless(
        &self,
        tag: &LoopTag,
        max_attempts: u32,
        shared: &dyn Fn(&Observed) -> bool,
    ) -> Result<Option<Acquired>> {
        match self.attempt(tag, max_attempts, shared)? {
            Attempt::Acquired(acquired) => Ok(Some(acquired)),
            Attempt::Shared => Ok(None),
            Attempt::Busy(observed) => Err(timeout_error(max_attempts, &observed)),
        }
    }

    /// Take the lock if it is free (or stale) now, without waiting; `None`
    /// when somebody holds it. Remembered for `realm` as [`hold`](Self::hold) is.
    pub(crate) fn try_hold(
        &self,
        loop_id: impl Into<LoopTag>,
        realm: &str,
    ) -> Result<Option<Acquired>> {
        match self.attempt(&loop_id.into(), 0, &|_| false)? {
            Attempt::Acquired(acquired) => {
                realm::remember(&self.path, acquired.fencing_token, realm);
                Ok(Some(acquired))
            }
            Attempt::Shared | Attempt::Busy(_) => Ok(None),
        }
    }

    /// Take the lock for work that a JS thread (`realm`) does before it
    /// calls [`unhold`](Self::unhold). Remembered, so that a synchronous
    /// operation of the same realm meanwhile runs under this hold.
    pub(crate) fn hold(
        &self,
        loop_id: impl Into<LoopTag>,
        max_attempts: u32,
        realm: &str,
    ) -> Result<Acquired> {
        let acquired = self.acquire(loop_id, max_attempts)?;
        realm::remember(&self.path, acquired.fencing_token, realm);
        Ok(acquired)
    }

    /// Give back a lock taken with [`hold`](Self::hold) or
    /// [`hold_sync`](Self::hold_sync): removed only if the file still holds
    /// this process and `token`. Returns whether it did.
    pub(crate) fn unhold(&self, token: u64) -> Result<bool> {
        realm::forget(&self.path, token);
        let token = json!(token);
        self.remove_if(|h| h.pid == Some(own_pid()) && h.fencing_token.as_ref() == Some(&token))
    }

    /// Take the lock for a synchronous operation of `realm`, or `Ok(None)`
    /// when it already runs under a hold of this process that cannot be
    /// given back before it returns: the caller's own `acquireLock`, or a
    /// [`hold`](Self::hold) of the same realm whose work has not started.
    pub(crate) fn hold_sync(
        &self,
        loop_id: impl Into<LoopTag>,
        max_attempts: u32,
        realm: &str,
    ) -> Result<Option<Acquired>> {
        let shared = |observed: &Observed| realm::held_for(&self.path, realm, observed);
        self.acquire_unless(&loop_id.into(), max_attempts, &shared)
    }

    /// The public `acquireLock`: as [`acquire`](Self::acquire), and remembered
    /// so that the synchronous registry writes of the caller's realm (its JS
    /// thread) can run under it.
    pub(crate) fn acquire_for_caller(
        &self,
        loop_id: impl Into<LoopTag>,
        max_attempts: u32,
        realm: &str,
    ) -> Result<Acquired> {
        self.hold(loop_id, max_attempts, realm)
    }

    /// The public `releaseLock`, once the caller has seen that the lock file
    /// names its loop and this process with fencing token `token` (`None`:
    /// a file without one): remove it if it still holds exactly that.
    /// Returns whether it did.
    pub(crate) fn release_for_caller(&self, token: Option<&Value>) -> Result<bool> {
        if let Some(token) = token.and_then(Value::as_u64) {
            realm::forget(&self.path, token);
        }
        self.remove_if(|h| h.pid == Some(own_pid()) && h.fencing_token.as_ref() == token)
    }

    /// Whether this process holds the lock for `realm`.
    #[cfg(test)]
    pub(crate) fn is_held_for(&self, realm: &str) -> bool {
        matches!(file::read(&self.path), Ok(Some(o)) if realm::held_for(&self.path, realm, &o))
    }

    /// Run `f` holding the lock; release it afterwards whatever `f` returned.
    #[cfg(test)]
    pub(crate) fn with_lock<T>(
        &self,
        loop_id: &str,
        max_attempts: u32,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let acquired = self.acquire(loop_id, max_attempts)?;
        let result = f();
        let released = self.unhold(acquired.fencing_token);
        match (result, released) {
            (Ok(v), Ok(_)) => Ok(v),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
