//! Dispatch outcomes this tailer wrote, remembered for a while. A writer
//! without our lock (an older `aiwg mc` CLI) that read the session before
//! our write and wrote after it puts the mission back to `queued`; seeing
//! it again exactly as it was before its dispatch, the tailer writes the
//! outcome again instead of starting the mission a second time.

use crate::mission_control::mission::StatusUpdate;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an outcome is remembered: far longer than any read-modify-write.
const REMEMBER_FOR: Duration = Duration::from_secs(600);
/// At most this many outcomes are remembered (the oldest go first).
const REMEMBER_MAX: usize = 100_000;

/// One outcome written, with what the mission looked like before it.
struct RememberedOutcome {
    /// A digest of the mission as it was read just before its dispatch
    /// (the mission itself could be large; thousands are remembered).
    before: u64,
    update: StatusUpdate,
}

/// A cheap fingerprint of a mission's JSON.
fn digest(mission: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    mission.to_string().hash(&mut hasher);
    hasher.finish()
}

/// The outcomes remembered, by `<session.id>:<mission.id>` key, oldest first in `order`.
#[derive(Default)]
pub(super) struct Remembered {
    inner: Mutex<Inner>,
}

/// The map and its age order, under one lock.
#[derive(Default)]
struct Inner {
    by_key: HashMap<String, RememberedOutcome>,
    order: VecDeque<(Instant, String)>,
}

impl Remembered {
    /// `key`'s dispatch ended in `update`; `before` is the mission it started from.
    pub(super) fn remember(&self, key: &str, before: &Value, update: StatusUpdate) {
        let before = digest(before);
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        while inner.order.front().is_some_and(|(at, _)| {
            now.duration_since(*at) > REMEMBER_FOR || inner.by_key.len() >= REMEMBER_MAX
        }) {
            if let Some((_, old)) = inner.order.pop_front() {
                inner.by_key.remove(&old);
            }
        }
        if inner
            .by_key
            .insert(key.to_owned(), RememberedOutcome { before, update })
            .is_none()
        {
            inner.order.push_back((now, key.to_owned()));
        }
    }

    /// The outcome to write again if `mission` (queued) is exactly as it was
    /// before `key`'s dispatch; a mission changed since is a new request.
    pub(super) fn reverted(&self, key: &str, mission: &Value) -> Option<StatusUpdate> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner
            .by_key
            .get(key)
            .filter(|o| o.before == digest(mission))
            .map(|o| o.update.clone())
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
