//! Dispatch outcomes and event updates this tailer wrote, remembered for a
//! while. A writer without our lock (an older `aiwg mc` CLI) that read the
//! session before our write and wrote after it puts the mission back as it
//! was; seeing it again exactly so, the tailer writes the change again: an
//! outcome instead of starting the mission a second time, an event because
//! the executor will not send it again.

use crate::mission_control::mission::StatusUpdate;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an outcome is remembered: far longer than any read-modify-write.
const REMEMBER_FOR: Duration = Duration::from_secs(600);
/// At most this many outcomes are remembered (the oldest go first).
const REMEMBER_MAX: usize = 100_000;

/// One write, with what the mission looked like before it.
struct RememberedOutcome {
    /// A digest of the mission as it was read just before its dispatch
    /// (the mission itself could be large; thousands are remembered).
    before: u64,
    update: StatusUpdate,
}

/// A cheap fingerprint of a mission's JSON (its compact text, hashed as
/// it is written out: no copy of it is made).
fn digest(mission: &Value) -> u64 {
    use std::hash::Hasher;
    /// Feeds what is written to the hasher.
    struct Feed<'a>(&'a mut std::collections::hash_map::DefaultHasher);
    impl std::io::Write for Feed<'_> {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.write(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    // Writing into a hasher cannot fail.
    let _ = serde_json::to_writer(Feed(&mut hasher), mission);
    hasher.finish()
}

/// Writes remembered, by key, oldest first in `order`.
#[derive(Default)]
struct Recent {
    by_key: HashMap<String, RememberedOutcome>,
    order: VecDeque<(Instant, String)>,
}

impl Recent {
    fn remember(&mut self, key: &str, before: &Value, update: StatusUpdate) {
        let before = digest(before);
        let now = Instant::now();
        while self.order.front().is_some_and(|(at, _)| {
            now.duration_since(*at) > REMEMBER_FOR || self.by_key.len() >= REMEMBER_MAX
        }) {
            if let Some((_, old)) = self.order.pop_front() {
                self.by_key.remove(&old);
            }
        }
        if self
            .by_key
            .insert(key.to_owned(), RememberedOutcome { before, update })
            .is_none()
        {
            self.order.push_back((now, key.to_owned()));
        }
    }

    fn reverted(&self, key: &str, mission: &Value) -> Option<StatusUpdate> {
        self.by_key
            .get(key)
            .filter(|o| o.before == digest(mission))
            .map(|o| o.update.clone())
    }
}

/// The dispatch outcomes (by `<session.id>:<mission.id>`) and the last
/// event update of each mission (by [`event_key`]) this tailer wrote.
#[derive(Default)]
pub(super) struct Remembered {
    outcomes: Mutex<Recent>,
    events: Mutex<Recent>,
    /// Whether any event is remembered (the scan skips the lookups if not).
    any_event: std::sync::atomic::AtomicBool,
}

/// The key of a mission's events: its session file and its id.
pub(super) fn event_key(path: &std::path::Path, mission_id: &str) -> String {
    format!("{}\0{mission_id}", path.display())
}

fn lock(m: &Mutex<Recent>) -> std::sync::MutexGuard<'_, Recent> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Remembered {
    /// `key`'s dispatch ended in `update`; `before` is the mission it started from.
    pub(super) fn remember(&self, key: &str, before: &Value, update: StatusUpdate) {
        lock(&self.outcomes).remember(key, before, update);
    }

    /// The outcome to write again if `mission` (queued) is exactly as it was
    /// before `key`'s dispatch; a mission changed since is a new request.
    pub(super) fn reverted(&self, key: &str, mission: &Value) -> Option<StatusUpdate> {
        lock(&self.outcomes).reverted(key, mission)
    }

    /// An event's `update` was written over `before` (the mission as the
    /// file held it); `key` from [`event_key`].
    pub(super) fn remember_event(&self, key: &str, before: &Value, update: StatusUpdate) {
        lock(&self.events).remember(key, before, update);
        self.any_event
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The event update to write again if `mission` is exactly as it was
    /// before the last event written to it: another writer put it back.
    pub(super) fn event_reverted(&self, key: &str, mission: &Value) -> Option<StatusUpdate> {
        lock(&self.events).reverted(key, mission)
    }

    /// Whether any event is remembered (if not, the scan has none to look up).
    pub(super) fn any_events(&self) -> bool {
        self.any_event.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_an_unchanged_mission_gets_its_outcome_back() {
        let outcomes = Remembered::default();
        let before = json!({"id": "m1", "status": "queued", "objective": "x"});
        let update = StatusUpdate {
            mission_id: json!("m1"),
            status: json!("assigned"),
            ..StatusUpdate::default()
        };
        outcomes.remember("s:m1", &before, update.clone());
        assert_eq!(outcomes.reverted("s:m1", &before), Some(update));
        let requeued = json!({"id": "m1", "status": "queued", "objective": "x", "retry": 1});
        assert_eq!(outcomes.reverted("s:m1", &requeued), None);
        assert_eq!(outcomes.reverted("s:m2", &before), None);
    }
}
