//! What the tailer knows about executors: which mission is held by which
//! executor and lives in which session file, and which executors it is
//! subscribed to. The streams themselves are [`executor_ws`](crate::mission_control::executor_ws).

use super::lock;
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Subscription settings (`disableWSSubscription`, `executorTokens`,
/// `subscribeExecutors`, reconnect backoff).
#[derive(Debug, Clone, Default)]
pub(crate) struct WsConfig {
    pub disabled: bool,
    pub tokens: HashMap<String, String>,
    pub subscribe: Vec<String>,
    pub reconnect_base_ms: f64,
    pub reconnect_max_ms: f64,
}

/// A mission the tailer follows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Followed {
    /// The session file it was found in.
    pub path: PathBuf,
    /// The executor holding it, whose stream its events come on.
    pub executor_id: String,
}

/// Asks for a stream: `(executor id, token)`.
pub(super) type Subscribe = Box<dyn Fn(&str, Option<String>) + Send + Sync>;

/// Streams run by the caller (an injected `WebSocketImpl`): the tailer asks
/// for a subscription through `subscribe(executor id, token)`, hears the
/// streams through `inputs`, and calls `room` when a caller told the inbox
/// was full may post again.
pub(crate) struct ExternalStreams {
    pub subscribe: Subscribe,
    pub inputs: super::inbox::Receiver,
    pub room: Box<dyn Fn() + Send + Sync>,
}

/// What an external stream reports.
#[derive(Debug)]
pub(crate) enum StreamInput {
    Event {
        executor_id: String,
        event: serde_json::Value,
    },
    State {
        executor_id: String,
        state: String,
    },
}

/// How long an event for a mission not followed yet is kept: an executor
/// may send `mission.started` before the bridge has read the 202.
pub(super) const EARLY_EVENT_TTL: Duration = Duration::from_secs(10);
/// At most this many such events are kept.
const EARLY_EVENTS_MAX: usize = 1024;

/// Followed missions, subscribed executors and early events, each under its own lock.
#[derive(Default)]
pub(super) struct Executors {
    missions: Mutex<HashMap<String, Followed>>,
    subscribed: Mutex<HashSet<String>>,
    /// Events for missions not followed (yet), oldest first.
    early: Mutex<VecDeque<(Instant, String, Value)>>,
}

impl Executors {
    /// Follow `mission_id`: its events go to `followed.path`.
    pub(super) fn remember(&self, mission_id: &str, followed: Followed) {
        lock(&self.missions).insert(mission_id.to_owned(), followed);
    }

    /// The followed mission `mission_id`, if it is followed.
    pub(super) fn get(&self, mission_id: &str) -> Option<Followed> {
        lock(&self.missions).get(mission_id).cloned()
    }

    /// Stop following `mission_id` (it has ended, or its file is gone).
    pub(super) fn forget(&self, mission_id: &str) {
        lock(&self.missions).remove(mission_id);
    }

    /// Missions held by `executor_id` that are not in `owned`.
    pub(super) fn lost_by(
        &self,
        executor_id: &str,
        owned: &HashSet<String>,
    ) -> Vec<(String, Followed)> {
        lock(&self.missions)
            .iter()
            .filter(|(id, k)| k.executor_id == executor_id && !owned.contains(*id))
            .map(|(id, k)| (id.clone(), k.clone()))
            .collect()
    }

    /// Keep an event for a mission not followed yet.
    pub(super) fn keep_early(&self, mission_id: &str, event: Value) {
        let mut early = lock(&self.early);
        let now = Instant::now();
        while early
            .front()
            .is_some_and(|(at, _, _)| now.duration_since(*at) > EARLY_EVENT_TTL)
            || early.len() >= EARLY_EVENTS_MAX
        {
            early.pop_front();
        }
        early.push_back((now, mission_id.to_owned(), event));
    }

    /// The kept events of `mission_id`, in arrival order (removed).
    pub(super) fn take_early(&self, mission_id: &str) -> Vec<Value> {
        let mut early = lock(&self.early);
        let now = Instant::now();
        let mut taken = Vec::new();
        early.retain(|(at, id, event)| {
            if id == mission_id && now.duration_since(*at) <= EARLY_EVENT_TTL {
                taken.push(event.clone());
                false
            } else {
                true
            }
        });
        taken
    }

    /// Whether this is the first subscription to `executor_id`.
    pub(super) fn first_subscription(&self, executor_id: &str) -> bool {
        lock(&self.subscribed).insert(executor_id.to_owned())
    }
}
