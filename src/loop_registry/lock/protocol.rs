//! The lock-file protocol: take (exclusive create), wait, break a stale
//! lock, give back.
//!
//! Every step starts from a fresh [`file::read`], and the two that remove
//! a file (breaking and releasing) re-read under an OS lock on
//! `<lock>.guard` first: among native processes "look, then remove" is one
//! step, so two breakers cannot both win and a release never removes a
//! lock somebody else took a moment ago. (The JS original has no guard;
//! against it we are exactly as safe as it is against itself.)

use super::file::{self, Holder, LoopTag, Observed};
use super::liveness::{judge, Verdict};
use super::{Acquired, RegistryLock, ATTEMPT, LEASE_MS};
use crate::clock::now_ms;
use crate::error::{Error, IoContext, Result};
use crate::loop_registry::lock_wake::LockWake;
use serde_json::Value;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a watched waiter re-checks a holder that may have died
/// (a killed holder leaves its file behind: no watch event comes).
const RECHECK: Duration = Duration::from_millis(20);
/// How often a waiter without a directory watch looks again.
const POLL: Duration = Duration::from_millis(5);

/// How one [`RegistryLock::attempt`] ended.
pub(super) enum Attempt {
    Acquired(Acquired),
    /// Held already in a way the caller shares.
    Shared,
    /// Held by a live holder until the deadline.
    Busy(Box<Observed>),
}

impl RegistryLock {
    /// Try to take the lock, waiting up to `max_attempts` × 100 ms for a
    /// live holder (0: not at all). `shared` says whether a lock file seen
    /// held is one the caller may work under as it is.
    pub(super) fn attempt(
        &self,
        tag: &LoopTag,
        max_attempts: u32,
        shared: &dyn Fn(&Observed) -> bool,
    ) -> Result<Attempt> {
        let deadline = Instant::now() + ATTEMPT * max_attempts;
        let mut wake: Option<Arc<LockWake>> = None;
        let mut watch_failed = false;
        loop {
            let seen = wake.as_ref().map(|w| w.generation());
            // Look before trying: a waiter that only reads while the lock is
            // held leaves the directory (and the file system journal) alone.
            let observed = match file::read(&self.path)? {
                Some(observed) => observed,
                None => match self.try_create(tag)? {
                    Ok(acquired) => return Ok(Attempt::Acquired(acquired)),
                    Err(None) => continue, // released between our attempt and our look
                    Err(Some(observed)) => observed,
                },
            };
            if shared(&observed) {
                return Ok(Attempt::Shared);
            }
            if judge(&observed) == Verdict::Stale {
                self.break_if_unchanged(&observed)?;
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Attempt::Busy(Box::new(observed)));
            }
            if wake.is_none() && !watch_failed {
                // Watch first, then look again, so no release goes unseen.
                match LockWake::for_path(&self.path) {
                    Ok(w) => wake = Some(w),
                    Err(_) => watch_failed = true,
                }
                continue;
            }
            let left = deadline - now;
            match (&wake, seen) {
                (Some(w), Some(seen)) => w.wait_past(seen, RECHECK.min(left)),
                _ => std::thread::sleep(POLL.min(left)),
            }
        }
    }

    /// One exclusive-create attempt. `Ok(Err(Some(observed)))`: somebody
    /// holds it; `Ok(Err(None))`: it vanished before we could read it.
    fn try_create(&self, tag: &LoopTag) -> Result<std::result::Result<Acquired, Option<Observed>>> {
        let now = now_ms();
        let token = next_fencing_token(now);
        let bytes = file::record(tag, token, now, LEASE_MS);
        // As the original: O_EXCL create, then write. A reader that comes in
        // between sees an empty, fresh file, which counts as held. Not
        // fsynced: a lock means nothing once its holder is gone.
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)
        {
            Ok(mut created) => {
                if let Err(e) = created.write_all(&bytes) {
                    let _ = fs::remove_file(&self.path);
                    return Err(e).at("write", &self.path);
                }
                return Ok(Ok(Acquired {
                    fencing_token: token,
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).at("open", &self.path),
        }
        Ok(Err(file::read(&self.path)?))
    }

    /// Remove the lock file if it still holds exactly what we judged stale:
    /// a holder that took the lock since then keeps it.
    fn break_if_unchanged(&self, observed: &Observed) -> Result<()> {
        let _guard = self.guard()?;
        match file::read(&self.path)? {
            Some(now) if now.bytes == observed.bytes => remove_existing(&self.path),
            _ => Ok(()),
        }
    }

    /// Remove the lock file if the holder it names is `owned`; whether it did.
    pub(super) fn remove_if(&self, owned: impl Fn(&Holder) -> bool) -> Result<bool> {
        let _guard = self.guard()?;
        match file::read(&self.path)? {
            Some(Observed {
                holder: Some(h), ..
            }) if owned(&h) => {
                remove_existing(&self.path)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The OS lock that makes "re-read, then remove" one step among native
    /// processes. Released when the returned file is dropped.
    fn guard(&self) -> Result<File> {
        let guard = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.guard_path)
            .at("open", &self.guard_path)?;
        guard.lock().at("flock", &self.guard_path)?;
        Ok(guard)
    }
}

/// Remove `path`; somebody else removing it first is as good.
fn remove_existing(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).at("unlink", path),
        _ => Ok(()),
    }
}

/// The original's rejection after a wait ran out, naming the holder when
/// the file names one (the words before the parenthesis are its own).
pub(super) fn timeout_error(max_attempts: u32, observed: &Observed) -> Error {
    let holder = match &observed.holder {
        Some(Holder {
            pid: Some(pid),
            loop_id,
            ..
        }) => {
            let name = match loop_id {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "an unnamed loop".into(),
            };
            format!(" (held by pid {pid} for {name})")
        }
        _ => String::new(),
    };
    Error::Message(format!(
        "Failed to acquire lock after {max_attempts} attempts{holder}"
    ))
}

/// Fencing tokens grow within a process and roughly across processes:
/// milliseconds × 1000 plus a counter, so a later holder's token is larger
/// even when two acquisitions fall in the same millisecond.
pub(super) fn next_fencing_token(now: u64) -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let floor = now.saturating_mul(1000);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = floor.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(actual) => last = actual,
        }
    }
}
