//! Reporting executor-event outcomes in the order the events came: each
//! one's `queue-tailer:event-applied` line and `log.jsonl` entry (§9.10)
//! waits for its own write, and for the reports before it.

use super::backlog::BacklogSlot;
use super::dispatch_job::Pending;
use super::executors::Followed;
use super::writeback::{Unwritten, Written};
use super::Bridge;
use crate::mission_control::journal;
use crate::mission_control::mission::TERMINAL;
use crate::mission_control::status::UpdateResult;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::mpsc;

/// What the reporter logs and journals, in event order.
pub(super) enum Report {
    /// A status update was queued: log and journal what became of it.
    Applied {
        slot: BacklogSlot,
        written: Pending,
        followed: Followed,
        kind: Value,
        mission_id: Value,
        new_status: Value,
    },
    /// An event that changes no status: journal it only.
    Journal {
        slot: BacklogSlot,
        followed: Followed,
        entry: Value,
    },
}

/// The `outcome` of an `event-applied` line for what the write came to
/// (`None`: the write-back was dropped).
pub(super) fn outcome_name(written: Option<&Written>) -> &'static str {
    match written {
        Some(Ok(UpdateResult::Applied)) => "updated",
        Some(Ok(UpdateResult::MissingMission)) => "missing-mission",
        Some(Ok(UpdateResult::Stale)) => "stale",
        Some(Ok(UpdateResult::MissingSession)) => "missing-session",
        // The bridge stopped before it could be written: saved for the next.
        Some(Err(Unwritten::Saved)) => "saved",
        Some(Err(Unwritten::Lost(_))) | None => "error",
    }
}

/// Whether a mission is no longer followed after an event: it ended, or
/// it (or its whole session) is gone.
pub(super) fn stops_following(new_status: &Value, outcome: &str) -> bool {
    new_status.as_str().is_some_and(|s| TERMINAL.contains(&s))
        || outcome == "missing-mission"
        || outcome == "missing-session"
}

impl Bridge {
    /// Log and journal event outcomes one by one, in the order the events came.
    pub(super) async fn report(self: Arc<Self>, mut reports: mpsc::UnboundedReceiver<Report>) {
        loop {
            // The channel never closes (the bridge holds its sender): after a
            // stop, what is already queued is reported and the task ends.
            let report = tokio::select! {
                biased;
                report = reports.recv() => report,
                () = self.stop.cancelled() => reports.try_recv().ok(),
            };
            let Some(report) = report else { return };
            self.report_one(report).await;
        }
    }

    /// Log and journal one event outcome, once its write is done.
    async fn report_one(&self, report: Report) {
        match report {
            Report::Journal {
                slot,
                followed,
                mut entry,
            } => {
                if let Some(map) = entry.as_object_mut() {
                    map.insert(
                        "executorId".into(),
                        Value::from(followed.executor_id.clone()),
                    );
                }
                journal::append_holding(&followed.path, entry, slot, &self.log);
            }
            Report::Applied {
                slot,
                written,
                followed,
                kind,
                mission_id,
                new_status,
            } => {
                let written = written.await.ok();
                let outcome = outcome_name(written.as_ref());
                self.log.log(
                    "queue-tailer:event-applied",
                    json!({"missionId": mission_id, "event": kind, "newStatus": new_status, "outcome": outcome}),
                );
                journal::append_holding(
                    &followed.path,
                    json!({"type": "event", "event": kind, "missionId": mission_id, "executorId": followed.executor_id, "newStatus": new_status, "outcome": outcome}),
                    slot,
                    &self.log,
                );
                if stops_following(&new_status, outcome) {
                    if let Some(id) = mission_id.as_str() {
                        self.executors.forget(id);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_results_name_the_outcome() {
        assert_eq!(outcome_name(Some(&Ok(UpdateResult::Applied))), "updated");
        assert_eq!(outcome_name(Some(&Ok(UpdateResult::Stale))), "stale");
        assert_eq!(
            outcome_name(Some(&Ok(UpdateResult::MissingMission))),
            "missing-mission"
        );
        assert_eq!(
            outcome_name(Some(&Ok(UpdateResult::MissingSession))),
            "missing-session"
        );
        assert_eq!(
            outcome_name(Some(&Err(Unwritten::Lost("disk".into())))),
            "error"
        );
        assert_eq!(outcome_name(Some(&Err(Unwritten::Saved))), "saved");
        assert_eq!(outcome_name(None), "error");
    }

    #[test]
    fn ended_or_vanished_missions_are_no_longer_followed() {
        assert!(stops_following(&json!("done"), "updated"));
        assert!(stops_following(&json!("aborted"), "stale"));
        assert!(stops_following(&json!("running"), "missing-session"));
        assert!(!stops_following(&json!("running"), "updated"));
        assert!(stops_following(&json!("failed"), "x"));
    }
}
