//! Whether the holder a lock file names is still there: the one judgement
//! that lets a waiter break somebody else's lock.
//!
//! Breaking a live holder's lock would let two processes into the registry
//! at once, so a lock is stale only when its holder is provably gone; any
//! doubt counts as live and the waiter keeps waiting.

use super::file::Observed;
use super::LEASE_MS;
use crate::clock::now_ms;
use crate::process_identity;
use std::time::{Duration, SystemTime};

/// What [`judge`] concluded about a lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Live,
    Stale,
}

/// A lock is stale only when its holder is provably gone: its lease ran
/// out, its pid is dead or now names another process, or the file is
/// unreadable and older than any lease could be.
pub(super) fn judge(observed: &Observed) -> Verdict {
    let holder = observed.holder.as_ref();
    let Some(pid) = holder.and_then(|h| h.pid) else {
        // No holder named: a writer between its create and its write, or
        // garbage. Only age can tell those apart.
        let age = observed
            .modified
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .unwrap_or(Duration::ZERO);
        return if age > Duration::from_millis(LEASE_MS) {
            Verdict::Stale
        } else {
            Verdict::Live
        };
    };
    if holder
        .and_then(|h| h.lease_expiry)
        .is_some_and(|exp| now_ms() as f64 > exp)
    {
        return Verdict::Stale;
    }
    if !process_identity::is_alive(pid) {
        return Verdict::Stale;
    }
    // A live pid may have been reused: when the file recorded its holder's
    // start identity, a different one now means the holder is gone. Files
    // without it (the original's) trust the pid.
    if let (Some(recorded), Ok(pid32)) = (
        holder.and_then(|h| h.process_start.as_deref()),
        u32::try_from(pid),
    ) {
        if process_identity::start_identity(pid32).is_some_and(|current| current != recorded) {
            return Verdict::Stale;
        }
    }
    Verdict::Live
}
