//! Executor events → status updates (SPEC §5's table). Pure.

use super::mission::StatusUpdate;
use crate::js_json::truthy;
use serde_json::{json, Map, Value};

/// `eventToStatusUpdate(event)`: the update an event stands for, or `None`
/// for events that change no status (`mission.assigned`, `progress`,
/// `reconnected`, `paused`, every `executor.*`, unknown types).
pub(crate) fn event_to_status_update(event: &Value) -> Option<StatusUpdate> {
    let kind = event.get("event").filter(|e| truthy(e))?.as_str()?;
    let ts = event.get("ts").cloned().unwrap_or(Value::Null);
    let empty = Value::Object(Map::new());
    let data = event.get("data").filter(|d| !d.is_null()).unwrap_or(&empty);
    // `data.key || fallback`.
    let or = |key: &str, fallback: Value| {
        data.get(key)
            .filter(|v| truthy(v))
            .cloned()
            .unwrap_or(fallback)
    };
    let exit_code = || {
        data.get("exit_code")
            .filter(|v| v.is_number())
            .cloned()
            .unwrap_or(Value::Null)
    };
    let (status, from, patch) = match kind {
        "mission.started" => (
            "running",
            Some("assigned"),
            json!({"startedAt": ts, "agentRuntime": or("agent_runtime", Value::Null), "ptySessionId": or("pty_session_id", Value::Null)}),
        ),
        "mission.hitl_required" => (
            "hitl_required",
            None,
            json!({"hitlId": or("hitl_id", Value::Null), "hitlPrompt": or("prompt", Value::Null), "hitlContext": or("context", Value::Null), "hitlAt": ts}),
        ),
        "mission.hitl_responded" => (
            "running",
            Some("hitl_required"),
            // The fixture and the original say `text`; the v1 schema says `response`.
            json!({"hitlRespondedAt": ts, "hitlResponse": or("text", or("response", Value::Null))}),
        ),
        "mission.suspended" => (
            "suspended",
            None,
            json!({"suspendedAt": ts, "checkpointId": or("checkpoint_id", Value::Null), "suspendReason": or("reason", Value::Null)}),
        ),
        "mission.resumed" => (
            "running",
            None,
            json!({"resumedAt": ts, "resumedFrom": or("resumed_from", json!("suspended"))}),
        ),
        "mission.completed" => (
            "done",
            None,
            json!({"completedAt": ts, "exitCode": exit_code(), "summary": or("summary", Value::Null)}),
        ),
        "mission.failed" => (
            "failed",
            None,
            json!({"failedAt": ts, "failureReason": or("reason", json!("unknown")), "failureMessage": or("error", Value::Null), "exitCode": exit_code()}),
        ),
        "mission.aborted" => (
            "aborted",
            None,
            json!({"abortedAt": ts, "abortedBy": or("aborted_by", json!("unknown")), "abortReason": or("reason", Value::Null)}),
        ),
        _ => return None,
    };
    Some(StatusUpdate {
        mission_id: event.get("mission_id").cloned().unwrap_or(Value::Null),
        status: Value::from(status),
        patch: match patch {
            Value::Object(map) => Some(map),
            _ => None,
        },
        transition_from: from.map(Value::from),
        ..StatusUpdate::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("__test__/fixtures/executor-v1/events")
            .join(name);
        serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("json")
    }

    #[test]
    fn every_fixture_maps_as_the_table_says() {
        let started = event_to_status_update(&fixture("mission-started.json")).expect("update");
        assert_eq!(started.status, "running");
        assert_eq!(started.transition_from, Some(json!("assigned")));
        let patch = started.patch.expect("patch");
        assert_eq!(patch["agentRuntime"], "claude-code");
        assert_eq!(patch["ptySessionId"], "pty-session-uuid");
        for (file, status) in [
            ("mission-hitl-required.json", "hitl_required"),
            ("mission-hitl-responded.json", "running"),
            ("mission-suspended.json", "suspended"),
            ("mission-resumed.json", "running"),
            ("mission-completed.json", "done"),
            ("mission-failed.json", "failed"),
            ("mission-aborted.json", "aborted"),
        ] {
            assert_eq!(
                event_to_status_update(&fixture(file)).expect(file).status,
                status,
                "{file}"
            );
        }
        for file in [
            "mission-assigned.json",
            "mission-progress.json",
            "mission-reconnected.json",
        ] {
            assert!(event_to_status_update(&fixture(file)).is_none(), "{file}");
        }
    }

    #[test]
    fn defaults_follow_js_or() {
        let failed = event_to_status_update(&json!({"event": "mission.failed", "mission_id": "m", "ts": "t", "data": {"exit_code": "1", "reason": ""}})).expect("update");
        let patch = failed.patch.expect("patch");
        assert_eq!(patch["failureReason"], "unknown");
        assert_eq!(patch["exitCode"], Value::Null);
        let resumed = event_to_status_update(
            &json!({"event": "mission.resumed", "mission_id": "m", "ts": "t"}),
        )
        .expect("update");
        assert_eq!(resumed.patch.expect("patch")["resumedFrom"], "suspended");
        let responded = event_to_status_update(&json!({"event": "mission.hitl_responded", "mission_id": "m", "ts": "t", "data": {"response": "yes"}})).expect("update");
        assert_eq!(responded.patch.expect("patch")["hitlResponse"], "yes");
    }

    #[test]
    fn nothing_for_non_status_events() {
        for event in [
            json!(null),
            json!({}),
            json!({"event": ""}),
            json!({"event": "executor.resync"}),
            json!({"event": "mission.paused"}),
            json!({"event": "x.y"}),
            json!("str"),
        ] {
            assert!(event_to_status_update(&event).is_none(), "{event}");
        }
    }
}
