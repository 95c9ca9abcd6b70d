//! The holds this process took for a JS thread (a realm), remembered so a
//! synchronous operation of that thread can run under them.
//!
//! Why: an async operation takes the lock, then its work waits for its
//! turn on the JS thread. A synchronous operation that runs on that thread
//! meanwhile cannot wait for the release (the release comes from work that
//! cannot start until it returns), so it must see that the lock is its own
//! thread's and go ahead. Another realm (a worker thread) gets no such
//! pass: it can wait, and must.

use super::file::{own_pid, Observed};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Lock path → the fencing token of our hold and the realm it is for.
type RealmHolds = HashMap<PathBuf, (u64, String)>;

/// Every hold of this process, across all `RegistryLock`s of a path.
fn holds() -> MutexGuard<'static, RealmHolds> {
    static HELD: OnceLock<Mutex<RealmHolds>> = OnceLock::new();
    // A panic while the map was locked leaves it consistent (each use is
    // one insert, lookup or remove), so poisoning is ignored.
    HELD.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Remember that `token` on `path` is held for `realm`.
pub(super) fn remember(path: &Path, token: u64, realm: &str) {
    holds().insert(path.to_path_buf(), (token, realm.to_owned()));
}

/// Forget the hold on `path` if it is the one with `token`.
pub(super) fn forget(path: &Path, token: u64) {
    let mut held = holds();
    if held.get(path).is_some_and(|(t, _)| *t == token) {
        held.remove(path);
    }
}

/// Whether `observed` (the lock file at `path`) is a hold this process
/// took for `realm`: it names this pid and the token we remembered.
pub(super) fn held_for(path: &Path, realm: &str, observed: &Observed) -> bool {
    let Some(holder) = observed
        .holder
        .as_ref()
        .filter(|h| h.pid == Some(own_pid()))
    else {
        return false;
    };
    holds().get(path).is_some_and(|(token, r)| {
        r == realm && holder.fencing_token.as_ref() == Some(&json!(*token))
    })
}
