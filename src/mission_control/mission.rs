//! The vocabulary of a mission's lifecycle that the event mapping, the
//! status writer and the tailer share: which statuses end a mission, which
//! mean an executor holds it, and one status change.

use serde_json::{Map, Value};

/// Statuses after which a mission needs no more events.
pub(crate) const TERMINAL: [&str; 3] = ["done", "failed", "aborted"];
/// Statuses of a mission an executor is working on (§9.1).
pub(crate) const HELD: [&str; 4] = ["assigned", "running", "hitl_required", "suspended"];

/// One status change for one mission. Serialized only for the writes a
/// stopping bridge leaves owed (`pending_writes`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct StatusUpdate {
    pub mission_id: Value,
    /// How `mission_id` finds its mission (JS's `m && m.id === missionId`).
    pub id_match: Match,
    pub status: Value,
    pub patch: Option<Map<String, Value>>,
    /// Keys the merge leaves out: patch keys whose value JSON cannot hold
    /// (`undefined`), and `status` when the status itself is `undefined`
    /// (`JSON.stringify` drops such keys when the session is written).
    pub removed: Vec<String>,
    /// Applied only while the mission's status is this (when set).
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub transition_from: Option<Value>,
    /// How `transition_from` compares with the mission's status.
    pub from_match: Match,
    /// Internal (§9.1): skip the update if the mission has reached a terminal status.
    pub unless_terminal: bool,
}

/// A field that is there is `Some`, `null` included (serde's `Option`
/// would read `null` as `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    serde::Deserialize::deserialize(d).map(Some)
}

/// How a value from JS compares with one in the file under `===`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Match {
    /// Equal JSON values (strings, finite numbers, booleans, `null`).
    #[default]
    Equal,
    /// `undefined`: equal to a field that is not there.
    Absent,
    /// Equal to nothing in a parsed file (`NaN`, an object, a symbol…).
    Never,
}
