//! What a dispatch's [`Outcome`] means for its mission (§6.4, §9.2), as a
//! pure function: the status update to write, the executor to follow, the
//! log line and the journal entry. The tailer only carries the decision out
//! (see [`dispatch_job`](super::dispatch_job)).

use crate::mission_control::dispatch::Outcome;
use crate::mission_control::mission::StatusUpdate;
use serde_json::{json, Map, Value};

/// Reasons of a failed dispatch that leave the mission `queued` (§9.2):
/// serve was unreachable on every attempt, or the tailer's stop cut it short.
pub(super) const DEFERRING: [&str; 2] = ["unreachable", "aborted"];

/// What to do with one dispatch's outcome.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Decision {
    /// The status write (`assigned` or `failed`, from `queued`); `None`
    /// when the mission stays `queued`.
    pub update: Option<StatusUpdate>,
    /// The executor whose stream to follow the mission on (accepted only).
    pub follow: Option<String>,
    /// The log line, logged once the write is on disk.
    pub log: (&'static str, Value),
    /// The session journal's entry (§9.10).
    pub journal: Value,
    /// Deferred (§9.2): try again later with capped backoff.
    pub deferred: bool,
}

/// The decision for `outcome`, the dispatch of `mission_id` from session
/// `session_id`; `now` is the ISO time to stamp (`dispatchedAt`/`failedAt`).
pub(super) fn decide(
    outcome: &Outcome,
    mission_id: &Value,
    session_id: &str,
    now: &str,
) -> Decision {
    match outcome {
        Outcome::Accepted {
            executor_id,
            estimated_start,
            attempts,
            ..
        } => Decision {
            update: Some(from_queued(
                mission_id,
                "assigned",
                json!({
                    "executorId": executor_id,
                    "dispatchedAt": now,
                    "dispatchAttempts": attempts,
                    "estimatedStart": estimated_start.clone().unwrap_or(Value::Null),
                }),
            )),
            follow: executor_id.as_str().map(str::to_owned),
            log: (
                "queue-tailer:dispatched",
                json!({"missionId": mission_id, "sessionId": session_id, "executorId": executor_id, "attempts": attempts}),
            ),
            journal: json!({"type": "dispatch", "missionId": mission_id, "outcome": "accepted", "executorId": executor_id, "attempts": attempts}),
            deferred: false,
        },
        Outcome::Failed {
            reason, attempts, ..
        } if DEFERRING.contains(&reason.as_str()) => Decision {
            update: None,
            follow: None,
            log: (
                "queue-tailer:dispatch-deferred",
                json!({"missionId": mission_id, "sessionId": session_id, "reason": reason}),
            ),
            journal: json!({"type": "dispatch", "missionId": mission_id, "outcome": "deferred", "reason": reason, "attempts": attempts}),
            deferred: true,
        },
        Outcome::Failed {
            reason,
            message,
            attempts,
            ..
        } => Decision {
            update: Some(from_queued(
                mission_id,
                "failed",
                json!({
                    "failedAt": now,
                    "failureReason": reason,
                    "failureMessage": message,
                    "dispatchAttempts": attempts,
                }),
            )),
            follow: None,
            log: (
                "queue-tailer:dispatch-failed",
                json!({"missionId": mission_id, "sessionId": session_id, "reason": reason, "attempts": attempts}),
            ),
            journal: json!({"type": "dispatch", "missionId": mission_id, "outcome": "failed", "reason": reason, "message": message, "attempts": attempts}),
            deferred: false,
        },
    }
}

/// `status` with `patch`, applied only while the mission is still `queued`.
fn from_queued(mission_id: &Value, status: &str, patch: Value) -> StatusUpdate {
    StatusUpdate {
        mission_id: mission_id.clone(),
        status: Value::from(status),
        patch: Some(object(patch)),
        transition_from: Some(Value::from("queued")),
        ..StatusUpdate::default()
    }
}

/// The map of a JSON object (an empty one for anything else).
pub(super) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mission_control::dispatch::Ending;

    const NOW: &str = "2026-01-01T00:00:00.000Z";

    fn failed(reason: &str, ending: Ending) -> Outcome {
        Outcome::Failed {
            mission_id: json!("m-1"),
            reason: reason.into(),
            message: json!("it broke"),
            status: 404,
            attempts: 3,
            ending,
        }
    }

    #[test]
    fn accepted_assigns_from_queued_and_follows_the_executor() {
        let outcome = Outcome::Accepted {
            mission_id: json!("m-1"),
            executor_id: json!("ex"),
            estimated_start: None,
            dispatch_path: None,
            idempotent_replayed: false,
            attempts: 2,
        };
        let d = decide(&outcome, &json!("m-1"), "s", NOW);
        let update = d.update.expect("an update");
        assert_eq!(update.status, json!("assigned"));
        assert_eq!(update.transition_from, Some(json!("queued")));
        assert_eq!(
            Value::Object(update.patch.expect("patch")),
            json!({"executorId": "ex", "dispatchedAt": NOW, "dispatchAttempts": 2, "estimatedStart": null})
        );
        assert_eq!(d.follow.as_deref(), Some("ex"));
        assert_eq!(
            d.log,
            (
                "queue-tailer:dispatched",
                json!({"missionId": "m-1", "sessionId": "s", "executorId": "ex", "attempts": 2})
            )
        );
        assert_eq!(d.journal["outcome"], "accepted");
        assert!(!d.deferred);
    }

    #[test]
    fn a_terminal_failure_fails_the_mission() {
        let d = decide(
            &failed("executor_not_found", Ending::Terminal),
            &json!("m-1"),
            "s",
            NOW,
        );
        let update = d.update.expect("an update");
        assert_eq!(update.status, json!("failed"));
        assert_eq!(
            Value::Object(update.patch.expect("patch")),
            json!({"failedAt": NOW, "failureReason": "executor_not_found", "failureMessage": "it broke", "dispatchAttempts": 3})
        );
        assert_eq!(d.log.0, "queue-tailer:dispatch-failed");
        assert_eq!(d.follow, None);
        assert!(!d.deferred);
    }

    #[test]
    fn unreachable_and_aborted_leave_the_mission_queued() {
        for (reason, ending) in [
            ("unreachable", Ending::Exhausted),
            ("aborted", Ending::Aborted),
        ] {
            let d = decide(&failed(reason, ending), &json!("m-1"), "s", NOW);
            assert_eq!(d.update, None, "{reason}");
            assert!(d.deferred, "{reason}");
            assert_eq!(
                d.log,
                (
                    "queue-tailer:dispatch-deferred",
                    json!({"missionId": "m-1", "sessionId": "s", "reason": reason})
                )
            );
            assert_eq!(
                d.journal,
                json!({"type": "dispatch", "missionId": "m-1", "outcome": "deferred", "reason": reason, "attempts": 3})
            );
        }
    }
}
