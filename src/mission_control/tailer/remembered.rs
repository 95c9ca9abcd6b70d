//! Dispatch outcomes and event updates this tailer wrote, remembered for a
//! while. A writer without our lock (an older `aiwg mc` CLI) that read the
//! session before our write and wrote after it puts the mission back as it
//! was; seeing it again exactly so, the tailer writes the change again: an
//! outcome instead of starting the mission a second time, the events since
//! because the executor will not send them again.

use super::lock;
use crate::mission_control::mission::StatusUpdate;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a write is remembered after the last one to its mission: far
/// longer than any read-modify-write.
const REMEMBER_FOR: Duration = Duration::from_secs(600);
/// At most this many missions are remembered (the least recently written go first).
const REMEMBER_MAX: usize = 100_000;
/// At most this many event batches are remembered per mission (the oldest go).
const STEPS_MAX: usize = 16;

/// A cheap fingerprint of a mission's JSON value (the mission itself could
/// be large; thousands are remembered). Numbers count by value, so `1.0`
/// read back as `1` (the JS number writer's form) is the same mission.
fn digest(mission: &Value) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    feed(mission, &mut hasher);
    hasher.finish()
}

fn feed(value: &Value, hasher: &mut impl Hasher) {
    match value {
        Value::Null => 0u8.hash(hasher),
        Value::Bool(b) => (1u8, b).hash(hasher),
        Value::Number(n) => {
            // `+ 0.0` makes -0 and 0 one value, as `===` has them.
            let n = n.as_f64().unwrap_or(f64::NAN) + 0.0;
            (2u8, n.to_bits()).hash(hasher);
        }
        Value::String(s) => (3u8, s).hash(hasher),
        Value::Array(items) => {
            (4u8, items.len()).hash(hasher);
            for item in items {
                feed(item, hasher);
            }
        }
        Value::Object(map) => {
            (5u8, map.len()).hash(hasher);
            for (key, item) in map {
                key.hash(hasher);
                feed(item, hasher);
            }
        }
    }
}

/// What is remembered for one mission, and when it was last written.
/// Boxed: the table grows by doubling, and up to [`REMEMBER_MAX`] entries
/// of it stay; its empty places then cost a pointer each, not a value.
struct Entry<T> {
    at: Instant,
    value: Box<T>,
}

/// Writes remembered, by key; `order` holds each key at the time of every
/// write to it, oldest first (stale places are skipped, and compacted away
/// when they outnumber the keys).
struct Recent<T> {
    by_key: HashMap<String, Entry<T>>,
    order: VecDeque<(Instant, String)>,
    /// [`REMEMBER_FOR`], but for tests.
    keep_for: Duration,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Recent {
            by_key: HashMap::new(),
            order: VecDeque::new(),
            keep_for: REMEMBER_FOR,
        }
    }
}

impl<T> Recent<T> {
    /// `key`'s value to change now (made by `new` if not remembered), its
    /// time refreshed; what has expired goes first.
    fn write(&mut self, key: &str, new: impl FnOnce() -> T) -> &mut T {
        let now = Instant::now();
        while let Some((at, old)) = self.order.front() {
            let expired = now.duration_since(*at) > self.keep_for;
            if !expired && self.by_key.len() < REMEMBER_MAX {
                break;
            }
            if self.by_key.get(old).is_some_and(|e| e.at == *at) {
                self.by_key.remove(old);
            }
            self.order.pop_front();
        }
        if self.order.len() > 2 * self.by_key.len() + 1024 {
            let by_key = &self.by_key;
            self.order
                .retain(|(at, key)| by_key.get(key).is_some_and(|e| e.at == *at));
        }
        self.order.push_back((now, key.to_owned()));
        let entry = self.by_key.entry(key.to_owned()).or_insert_with(|| Entry {
            at: now,
            value: Box::new(new()),
        });
        entry.at = now;
        &mut entry.value
    }

    fn get(&self, key: &str) -> Option<&T> {
        self.by_key.get(key).map(|e| &*e.value)
    }

    fn remove(&mut self, key: &str) {
        self.by_key.remove(key);
    }
}

/// A dispatch outcome, with the mission it started from. The update is
/// kept as its JSON (a few hundred bytes where the parsed form, with its
/// patch map, took twice that): up to [`REMEMBER_MAX`] are kept, and one is
/// read back only when another writer reverted its mission.
struct Outcome {
    before: u64,
    update: Box<[u8]>,
}

/// One batch of event updates written to a mission: the mission as the
/// file held it before, and the updates in order. Only the states between
/// batches were ever on disk for another writer to read.
struct Step {
    before: u64,
    updates: Vec<StatusUpdate>,
}

/// The dispatch outcomes (by `<session.id>:<mission.id>`) and the event
/// updates of each mission (by [`event_key`]) this tailer wrote.
#[derive(Default)]
pub(super) struct Remembered {
    outcomes: Mutex<Recent<Outcome>>,
    events: Mutex<Recent<Vec<Step>>>,
    /// Whether any event is remembered (the scan skips the lookups if not).
    any_event: std::sync::atomic::AtomicBool,
}

/// The key of a mission's events: its session file and its id.
pub(super) fn event_key(path: &std::path::Path, mission_id: &str) -> String {
    format!("{}\0{mission_id}", path.display())
}

impl Remembered {
    /// `key`'s dispatch ended in `update`; `before` is the mission it started from.
    pub(super) fn remember(&self, key: &str, before: &Value, update: &StatusUpdate) {
        let before = digest(before);
        // A plain struct of JSON values: it always serializes. Were it not
        // to, nothing is remembered, as for a mission never dispatched.
        let Ok(update) = serde_json::to_vec(update) else {
            lock(&self.outcomes).remove(key);
            return;
        };
        let update = update.into_boxed_slice();
        let mut outcomes = lock(&self.outcomes);
        // Moved in when new; else it replaces what was there.
        let mut fresh = Some(update);
        let slot = outcomes.write(key, || Outcome {
            before,
            update: fresh.take().unwrap_or_default(),
        });
        if let Some(update) = fresh {
            *slot = Outcome { before, update };
        }
    }

    /// The outcome to write again if `mission` (queued) is exactly as it was
    /// before `key`'s dispatch; a mission changed since is a new request.
    pub(super) fn reverted(&self, key: &str, mission: &Value) -> Option<StatusUpdate> {
        let outcomes = lock(&self.outcomes);
        let outcome = outcomes.get(key).filter(|o| o.before == digest(mission))?;
        serde_json::from_slice(&outcome.update).ok()
    }

    /// Event `updates` were written over `before` (the mission as the file
    /// held it) in one batch; `key` from [`event_key`]. A mission back in a
    /// state remembered earlier had the batches since undone: they go.
    pub(super) fn remember_events(&self, key: &str, before: &Value, updates: Vec<StatusUpdate>) {
        let before = digest(before);
        let mut events = lock(&self.events);
        let steps = events.write(key, Vec::new);
        if let Some(back) = steps.iter().position(|s| s.before == before) {
            steps.truncate(back);
        }
        if steps.len() >= STEPS_MAX {
            steps.remove(0);
        }
        steps.push(Step { before, updates });
        self.any_event
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The event updates to write again, in order, if `mission` is exactly
    /// as it was before one of the batches written to it: another writer
    /// put it back, undoing that batch and every one after it.
    pub(super) fn reverted_events(&self, key: &str, mission: &Value) -> Vec<StatusUpdate> {
        let events = lock(&self.events);
        let Some(steps) = events.get(key) else {
            return Vec::new();
        };
        let now = digest(mission);
        let Some(back) = steps.iter().position(|s| s.before == now) else {
            return Vec::new();
        };
        steps[back..]
            .iter()
            .flat_map(|step| step.updates.iter().cloned())
            .collect()
    }

    /// Forget `key`'s events: written again, none applied (the status
    /// rules refuse them now), so they are not offered again and again.
    pub(super) fn forget_events(&self, key: &str) {
        lock(&self.events).remove(key);
    }

    /// Whether any event is remembered (if not, the scan has none to look up).
    pub(super) fn any_events(&self) -> bool {
        self.any_event.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mission_control::mission::Match;
    use serde_json::json;

    fn to(mission_id: &str, status: &str) -> StatusUpdate {
        StatusUpdate {
            mission_id: json!(mission_id),
            status: json!(status),
            ..StatusUpdate::default()
        }
    }

    #[test]
    fn only_an_unchanged_mission_gets_its_outcome_back() {
        let outcomes = Remembered::default();
        let before = json!({"id": "m1", "status": "queued", "objective": "x"});
        outcomes.remember("s:m1", &before, &to("m1", "assigned"));
        assert_eq!(
            outcomes.reverted("s:m1", &before),
            Some(to("m1", "assigned"))
        );
        let requeued = json!({"id": "m1", "status": "queued", "objective": "x", "retry": 1});
        assert_eq!(outcomes.reverted("s:m1", &requeued), None);
        assert_eq!(outcomes.reverted("s:m2", &before), None);
    }

    #[test]
    fn an_outcome_comes_back_exactly_as_it_was_remembered() {
        let outcomes = Remembered::default();
        let before = json!({"id": "m1", "status": "queued"});
        let patch = json!({"executorId": "ex-1", "assignedAt": "2026-01-01T00:00:00.000Z",
            "meta": {"n": 1.5, "list": [null, true, "x"]}});
        let update = StatusUpdate {
            mission_id: json!("m1"),
            id_match: Match::Equal,
            status: json!("assigned"),
            patch: patch.as_object().cloned(),
            removed: vec!["undefinedKey".into()],
            transition_from: Some(Value::Null),
            from_match: Match::Never,
            unless_terminal: true,
        };
        outcomes.remember("s:m1", &before, &update);
        assert_eq!(outcomes.reverted("s:m1", &before), Some(update));
    }

    #[test]
    fn numbers_count_by_value_and_keys_by_order() {
        assert_eq!(
            digest(&json!({"n": 1.0, "z": -0.0})),
            digest(&json!({"n": 1, "z": 0}))
        );
        assert_ne!(digest(&json!({"n": 1})), digest(&json!({"n": "1"})));
        assert_ne!(digest(&json!([1, [2]])), digest(&json!([[1], 2])));
        let a: Value = serde_json::from_str(r#"{"a":1,"b":2}"#).expect("json");
        let b: Value = serde_json::from_str(r#"{"b":2,"a":1}"#).expect("json");
        assert_ne!(digest(&a), digest(&b), "a rewritten file is a change");
    }

    #[test]
    fn a_revert_gives_back_every_event_written_since_in_order() {
        let events = Remembered::default();
        let queued = json!({"id": "m1", "status": "queued"});
        let assigned = json!({"id": "m1", "status": "assigned"});
        let running = json!({"id": "m1", "status": "running"});
        // One batch of two, then one of one.
        events.remember_events(
            "k",
            &queued,
            vec![to("m1", "assigned"), to("m1", "running")],
        );
        events.remember_events("k", &running, vec![to("m1", "done")]);
        assert!(
            events.reverted_events("k", &assigned).is_empty(),
            "never on disk"
        );
        assert_eq!(
            events.reverted_events("k", &queued),
            [to("m1", "assigned"), to("m1", "running"), to("m1", "done")]
        );
        assert_eq!(events.reverted_events("k", &queued).len(), 3, "kept");
        events.forget_events("k");
        assert!(events.reverted_events("k", &queued).is_empty(), "forgotten");
    }

    #[test]
    fn a_revert_to_a_later_state_gives_back_only_what_came_after() {
        let events = Remembered::default();
        let queued = json!({"id": "m1", "status": "queued"});
        let assigned = json!({"id": "m1", "status": "assigned"});
        events.remember_events("k", &queued, vec![to("m1", "assigned")]);
        events.remember_events("k", &assigned, vec![to("m1", "running")]);
        assert_eq!(
            events.reverted_events("k", &assigned),
            [to("m1", "running")]
        );
        // Written again over `assigned`: it replaces its first writing, and
        // the earlier batch is still there.
        events.remember_events("k", &assigned, vec![to("m1", "running")]);
        assert_eq!(
            events.reverted_events("k", &queued),
            [to("m1", "assigned"), to("m1", "running")]
        );
    }

    #[test]
    fn a_mission_is_forgotten_by_the_time_of_its_last_write() {
        let mut recent = Recent::<u32> {
            keep_for: Duration::from_millis(60),
            ..Recent::default()
        };
        *recent.write("a", || 0) = 1;
        *recent.write("b", || 0) = 1;
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(25));
            *recent.write("a", || 0) += 1;
        }
        *recent.write("c", || 0) = 1;
        assert_eq!(recent.get("a"), Some(&5), "written 25 ms ago");
        assert_eq!(recent.get("b"), None, "written 100 ms ago");
    }

    #[test]
    fn rewrites_of_one_mission_do_not_grow_the_order_without_end() {
        let mut recent = Recent::<u32>::default();
        for i in 0..10_000 {
            *recent.write("a", || 0) = i;
        }
        assert!(recent.order.len() <= 1026, "{}", recent.order.len());
        assert_eq!(recent.get("a"), Some(&9_999));
    }
}
