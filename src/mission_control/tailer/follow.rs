//! Following missions on their executors' streams (§6.5, §9.1): one
//! subscription per executor, each event routed to the mission it is about,
//! and `executor.resync` failing what an executor no longer owns. Which way
//! an event goes is decided by the pure [`route`]; the tailer carries it out.
//! Of the bridges on one queue, only the holder of an executor's lease
//! follows it (see [`executor_lease`](super::executor_lease)); the others
//! wait to take over.

use super::executor_lease::Lease;
use super::executors::{Followed, StreamInput};
use super::inbox;
use super::outcome::object;
use super::report::Report;
use super::Bridge;
use crate::backoff::sleep_ms;
use crate::clock::now_iso;
use crate::mission_control::events::event_to_status_update;
use crate::mission_control::executor_ws::{self, WsHandler, WsOptions, WsState};
use crate::mission_control::mission::StatusUpdate;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

/// How often a bridge waiting for an executor's lease tries for it.
const LEASE_RETRY_MS: f64 = 500.0;

/// Where one executor event goes.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Route {
    /// `executor.resync`: compare what the executor owns with what we follow.
    Resync,
    /// A status change of a followed mission: write it (boxed: an update
    /// is far larger than the other routes).
    Apply {
        kind: Value,
        update: Box<StatusUpdate>,
        followed: Followed,
    },
    /// A status change of a mission we do not follow (yet): log it, and
    /// keep it a while, since its 202 may not have been read yet.
    Unmapped { kind: Value, mission_id: Value },
    /// A protocol event that changes no status, of a followed mission: journal only (§9.10).
    Journal {
        kind: Value,
        mission_id: Value,
        followed: Followed,
    },
    /// A protocol event that changes no status, of a mission not followed.
    Ignore,
    /// Not an executor-v1 event: log it (§10).
    Unknown { kind: Value, mission_id: Value },
}

/// Route `event`; `followed` looks up a followed mission by id.
pub(super) fn route(event: &Value, followed: impl FnOnce(&str) -> Option<Followed>) -> Route {
    let kind = event.get("event").cloned().unwrap_or(Value::Null);
    if kind == "executor.resync" {
        return Route::Resync;
    }
    let mission_id = event.get("mission_id").cloned().unwrap_or(Value::Null);
    let found = mission_id.as_str().and_then(followed);
    match (event_to_status_update(event), found) {
        (Some(update), Some(followed)) => Route::Apply {
            kind,
            update: Box::new(update),
            followed,
        },
        (Some(_), None) => Route::Unmapped { kind, mission_id },
        (None, Some(followed)) if is_protocol_event(&kind) => Route::Journal {
            kind,
            mission_id,
            followed,
        },
        (None, _) if is_protocol_event(&kind) => Route::Ignore,
        (None, _) => Route::Unknown { kind, mission_id },
    }
}

/// Event types of the executor-v1 protocol (the ones that change no status included).
pub(super) fn is_protocol_event(kind: &Value) -> bool {
    let Some(kind) = kind.as_str() else {
        return false;
    };
    kind.starts_with("executor.")
        || matches!(
            kind,
            "mission.assigned" | "mission.progress" | "mission.reconnected" | "mission.paused"
        )
}

/// A resync's `data.owned_mission_ids`; `None` when it is not an array
/// (such a resync says nothing about what was lost, §10).
pub(super) fn owned_ids(event: &Value) -> Option<HashSet<String>> {
    let ids = event
        .pointer("/data/owned_mission_ids")
        .and_then(Value::as_array)?;
    Some(
        ids.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    )
}

/// §9.1: the update for a mission `executor_id` no longer owns: `failed`
/// with `executor_lost`, unless it has ended meanwhile.
pub(super) fn lost_update(mission_id: &str, executor_id: &str, now: &str) -> StatusUpdate {
    StatusUpdate {
        mission_id: Value::from(mission_id),
        status: Value::from("failed"),
        patch: Some(object(json!({
            "failedAt": now,
            "failureReason": "executor_lost",
            "failureMessage": format!("executor {executor_id} no longer owns this mission"),
        }))),
        transition_from: None,
        unless_terminal: true,
        ..StatusUpdate::default()
    }
}

impl Bridge {
    /// Follow `mission_id` (in the session file `path`) on its executor's stream.
    pub(super) fn follow(self: &Arc<Self>, mission_id: &str, path: &Path, executor_id: &str) {
        if executor_id.is_empty() || executor_id == "unknown" {
            return;
        }
        self.executors.remember(
            mission_id,
            Followed {
                path: path.to_path_buf(),
                executor_id: executor_id.to_owned(),
            },
        );
        self.subscribe(executor_id);
        // Events that came before we knew the mission (right after the 202).
        for event in self.executors.take_early(mission_id) {
            self.on_event(executor_id, event);
        }
    }

    /// One stream per executor, for as long as the tailer runs.
    pub(super) fn subscribe(self: &Arc<Self>, executor_id: &str) {
        let ws = &self.config.ws;
        if ws.disabled
            || executor_id.is_empty()
            || executor_id == "unknown"
            || self.stop.is_cancelled()
        {
            return;
        }
        if !self.executors.first_subscription(executor_id) {
            return;
        }
        // The first try is made here, not on the blocking pool: a held
        // mission's stream must be opened before the sweep says `ready`, as
        // the original does (a directory made once, and two or three opens
        // of a small file, once per executor).
        match self.leases.try_take(executor_id) {
            Lease::Held => self.open_stream(executor_id),
            Lease::Unavailable(e) => {
                self.log.log(
                    "queue-tailer:executor-lease-unavailable",
                    json!({"executorId": executor_id, "error": e.to_string()}),
                );
                self.open_stream(executor_id);
            }
            Lease::Elsewhere => {
                self.log.log(
                    "queue-tailer:executor-lease-waiting",
                    json!({"executorId": executor_id}),
                );
                let bridge = Arc::clone(self);
                let executor_id = executor_id.to_owned();
                self.spawn(async move { bridge.take_over(executor_id).await });
            }
        }
    }

    /// Another bridge follows `executor_id`: try for its lease every
    /// [`LEASE_RETRY_MS`] until it is ours (that bridge stopped or died),
    /// then follow it, or until this bridge stops.
    async fn take_over(self: Arc<Self>, executor_id: String) {
        loop {
            sleep_ms(LEASE_RETRY_MS, &self.stop).await;
            if self.stop.is_cancelled() {
                return;
            }
            let bridge = Arc::clone(&self);
            let id = executor_id.clone();
            let lease = tokio::task::spawn_blocking(move || bridge.leases.try_take(&id)).await;
            match lease {
                Ok(Lease::Elsewhere) => continue,
                Ok(Lease::Held) => self.log.log(
                    "queue-tailer:executor-lease-taken",
                    json!({"executorId": executor_id}),
                ),
                Ok(Lease::Unavailable(e)) => self.log.log(
                    "queue-tailer:executor-lease-unavailable",
                    json!({"executorId": executor_id, "error": e.to_string()}),
                ),
                Err(_) => return,
            }
            if !self.stop.is_cancelled() {
                self.open_stream(&executor_id);
            }
            return;
        }
    }

    /// Open `executor_id`'s stream (its lease is ours, or cannot be had).
    fn open_stream(self: &Arc<Self>, executor_id: &str) {
        let ws = &self.config.ws;
        let opts = WsOptions {
            aiwg_serve_url: self.config.aiwg_serve_url.clone(),
            executor_id: executor_id.to_owned(),
            token: ws.tokens.get(executor_id).cloned(),
            reconnect_base_ms: ws.reconnect_base_ms,
            reconnect_max_ms: ws.reconnect_max_ms,
        };
        if let Some(subscribe) = &self.external_subscribe {
            return subscribe(executor_id, opts.token);
        }
        let handler = Arc::new(ExecutorStream {
            bridge: Arc::clone(self),
            executor_id: executor_id.to_owned(),
        });
        self.spawn(executor_ws::run(
            opts,
            handler,
            Arc::clone(&self.log),
            self.stop.child_token(),
        ));
    }

    /// Streams the caller runs: their events and states, until stopped.
    /// Like a native stream, the next input waits for room in the backlog;
    /// `room` tells the caller it may post again after the inbox was full.
    pub(super) async fn follow_external(
        self: Arc<Self>,
        mut inputs: inbox::Receiver,
        room: Box<dyn Fn() + Send + Sync>,
    ) {
        loop {
            let next = async {
                self.backlog.room().await;
                inputs.recv().await
            };
            let (input, has_room) = tokio::select! {
                input = next => match input { Some(i) => i, None => return },
                () = self.stop.cancelled() => return,
            };
            if has_room {
                room();
            }
            match input {
                StreamInput::Event { executor_id, event } => self.on_event(&executor_id, event),
                StreamInput::State { executor_id, state } => self.log.log(
                    "queue-tailer:ws-state",
                    json!({"executorId": executor_id, "state": state}),
                ),
            }
        }
    }

    /// An event from `executor_id`'s stream: carry out its [`route`].
    fn on_event(self: &Arc<Self>, executor_id: &str, event: Value) {
        match route(&event, |id| self.executors.get(id)) {
            Route::Resync => self.resync(executor_id, &event),
            Route::Apply {
                kind,
                update,
                followed,
            } => self.apply_event(followed, kind, *update),
            Route::Unmapped { kind, mission_id } => {
                self.event_logs.log(
                    &self.log,
                    "queue-tailer:event-unmapped-mission",
                    json!({"missionId": mission_id, "event": kind}),
                );
                if let Some(id) = mission_id.as_str() {
                    self.executors.keep_early(id, event);
                }
            }
            Route::Journal {
                kind,
                mission_id,
                followed,
            } => {
                let _ = self.reports.send(Report::Journal {
                    slot: self.backlog.hold(),
                    followed,
                    entry: json!({"type": "event", "event": kind, "missionId": mission_id}),
                });
            }
            Route::Ignore => {}
            Route::Unknown { kind, mission_id } => self.event_logs.log(
                &self.log,
                "queue-tailer:event-unknown",
                json!({"executorId": executor_id, "event": kind, "missionId": mission_id}),
            ),
        }
    }

    /// §9.1: what the executor no longer owns (and had not finished) is lost.
    fn resync(self: &Arc<Self>, executor_id: &str, event: &Value) {
        let Some(owned) = owned_ids(event) else {
            self.log.log(
                "queue-tailer:event-unknown",
                json!({"executorId": executor_id, "event": "executor.resync", "error": "data.owned_mission_ids is not an array"}),
            );
            return;
        };
        for (mission_id, followed) in self.executors.lost_by(executor_id, &owned) {
            let update = lost_update(&mission_id, executor_id, &now_iso());
            self.apply_event(followed, Value::from("executor.resync"), update);
        }
    }

    /// Queue the update now, so events apply in the order they came; its
    /// outcome is logged and journaled in that order too (see [`report`](super::report)).
    fn apply_event(self: &Arc<Self>, followed: Followed, kind: Value, update: StatusUpdate) {
        let new_status = update.status.clone();
        let mission_id = update.mission_id.clone();
        let written = self
            .writeback
            .submit_event(&self.tasks, &followed.path, update);
        let _ = self.reports.send(Report::Applied {
            slot: self.backlog.hold(),
            written,
            followed,
            kind,
            mission_id,
            new_status,
        });
    }
}

/// One executor's stream, feeding the tailer.
struct ExecutorStream {
    bridge: Arc<Bridge>,
    executor_id: String,
}

impl WsHandler for ExecutorStream {
    fn on_event(&self, event: Value) {
        self.bridge.on_event(&self.executor_id, event);
    }

    fn room(&self) -> futures_util::future::BoxFuture<'static, ()> {
        let bridge = Arc::clone(&self.bridge);
        Box::pin(async move { bridge.backlog.room().await })
    }

    fn on_state(&self, state: WsState) {
        let name = match state {
            WsState::Opened { .. } => "opened",
            WsState::Closed { .. } => "closed",
            WsState::Error => "error",
        };
        self.bridge.log.log(
            "queue-tailer:ws-state",
            json!({"executorId": self.executor_id, "state": name}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn followed() -> Followed {
        Followed {
            path: PathBuf::from("/s/session.json"),
            executor_id: "ex".into(),
        }
    }

    fn known(id: &str) -> Option<Followed> {
        (id == "m-known").then(followed)
    }

    #[test]
    fn status_events_of_followed_missions_are_applied_others_unmapped() {
        let started = json!({"event": "mission.started", "mission_id": "m-known"});
        match route(&started, known) {
            Route::Apply {
                kind,
                update,
                followed: f,
            } => {
                assert_eq!(kind, json!("mission.started"));
                assert_eq!(update.mission_id, json!("m-known"));
                assert_eq!(f, followed());
            }
            other => panic!("not applied: {other:?}"),
        }
        let stranger = json!({"event": "mission.started", "mission_id": "m-other"});
        assert_eq!(
            route(&stranger, known),
            Route::Unmapped {
                kind: json!("mission.started"),
                mission_id: json!("m-other")
            }
        );
    }

    #[test]
    fn protocol_events_without_a_status_are_journaled_or_ignored() {
        let progress = json!({"event": "mission.progress", "mission_id": "m-known"});
        assert!(matches!(route(&progress, known), Route::Journal { .. }));
        let elsewhere = json!({"event": "mission.progress", "mission_id": "m-other"});
        assert_eq!(route(&elsewhere, known), Route::Ignore);
        let heartbeat = json!({"event": "executor.heartbeat"});
        assert_eq!(route(&heartbeat, known), Route::Ignore);
    }

    #[test]
    fn unknown_events_and_resyncs_are_told_apart() {
        let odd = json!({"event": "nonsense", "mission_id": "m-known"});
        assert_eq!(
            route(&odd, known),
            Route::Unknown {
                kind: json!("nonsense"),
                mission_id: json!("m-known")
            }
        );
        assert_eq!(
            route(&json!({}), known).clone(),
            Route::Unknown {
                kind: Value::Null,
                mission_id: Value::Null
            }
        );
        assert_eq!(
            route(&json!({"event": "executor.resync"}), |_| None),
            Route::Resync
        );
    }

    #[test]
    fn a_resync_lists_what_is_owned_and_the_rest_is_lost() {
        let resync =
            json!({"event": "executor.resync", "data": {"owned_mission_ids": ["a", 3, "b"]}});
        let owned = owned_ids(&resync).expect("a list");
        assert_eq!(owned, HashSet::from(["a".to_owned(), "b".to_owned()]));
        assert_eq!(owned_ids(&json!({"data": {}})), None);
        let update = lost_update("m-1", "ex", "T");
        assert_eq!(update.status, json!("failed"));
        assert!(update.unless_terminal);
        assert_eq!(
            Value::Object(update.patch.expect("patch")),
            json!({"failedAt": "T", "failureReason": "executor_lost", "failureMessage": "executor ex no longer owns this mission"})
        );
    }
}
