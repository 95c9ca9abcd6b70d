//! `@aiwg/mc-native/status-writer` as JS sees it (see js/status-writer.js).
//!
//! Not `async fn`s: the call takes its place in the per-path queue
//! synchronously, so calls on one path apply in the order JS made them.
//! JS describes each update with how its values compare under `===`, and
//! builds the `session` it returns from the file text handed back here.

use super::{js_error, parse_value};
use crate::error::Error;
use crate::mission_control::status::{self, Match, StatusUpdate, UpdateResult};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use serde_json::Value;
use std::path::PathBuf;

/// What a batch did, for js/status-writer.js to build its result from.
#[napi(object)]
pub struct StatusWrite {
    /// The file held a session (a truthy JSON value).
    pub session_found: bool,
    /// Per update: what became of it.
    pub each: Vec<EachResult>,
    /// Per update: the index of the mission it found, if any.
    pub index: Vec<Option<u32>>,
    /// The file's text the updates ran on (asked for with `wantSession`).
    pub source: Option<String>,
    /// When the updates ran on a merge with another writer's change
    /// instead: the session as it now is, as JSON text.
    pub merged: Option<String>,
    /// The `updatedAt` written, when something was.
    pub updated_at: Option<String>,
}

/// What became of one update, as JS reads it.
#[napi(string_enum)]
pub enum EachResult {
    #[napi(value = "applied")]
    Applied,
    #[napi(value = "missing")]
    Missing,
    #[napi(value = "stale")]
    Stale,
    #[napi(value = "missing-session")]
    MissingSession,
}

impl From<UpdateResult> for EachResult {
    fn from(result: UpdateResult) -> Self {
        match result {
            UpdateResult::Applied => EachResult::Applied,
            UpdateResult::MissingMission => EachResult::Missing,
            UpdateResult::Stale => EachResult::Stale,
            UpdateResult::MissingSession => EachResult::MissingSession,
        }
    }
}

fn matching(value: Option<&Value>) -> Match {
    match value.and_then(Value::as_str) {
        Some("absent") => Match::Absent,
        Some("never") => Match::Never,
        _ => Match::Equal,
    }
}

/// One update as js/status-writer.js describes it:
/// `{id, idMatch, status, patch, removed, from?, fromMatch}`.
fn update_from(mut d: Value) -> StatusUpdate {
    let mut take = |key: &str| d.get_mut(key).map(Value::take);
    let id_match = matching(take("idMatch").as_ref());
    let from_match = matching(take("fromMatch").as_ref());
    StatusUpdate {
        mission_id: take("id").unwrap_or(Value::Null),
        id_match,
        status: take("status").unwrap_or(Value::Null),
        patch: match take("patch") {
            Some(Value::Object(map)) => Some(map),
            _ => None,
        },
        removed: match take("removed") {
            Some(Value::Array(keys)) => keys
                .into_iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        },
        transition_from: take("from"),
        from_match,
        unless_terminal: false,
    }
}

/// Queue the described updates for `path`; resolves to a [`StatusWrite`].
#[napi(catch_unwind, ts_return_type = "Promise<StatusWrite>")]
pub fn apply_status_updates(
    env: &Env,
    path: String,
    updates_json: String,
    want_session: bool,
) -> napi::Result<PromiseRaw<'_, StatusWrite>> {
    let described = parse_value("updates", &updates_json)?;
    let updates: Vec<StatusUpdate> = match described {
        Value::Array(items) => items.into_iter().map(update_from).collect(),
        _ => Vec::new(),
    };
    let rx = napi::bindgen_prelude::within_runtime_if_available(move || {
        status::enqueue_batch(PathBuf::from(path), updates, want_session, None)
    });
    env.spawn_future(async move {
        let batch = rx
            .await
            .map_err(|_| js_error(Error::Message("status writer job was dropped".into())))?
            .map_err(js_error)?;
        let wrote = !batch.outcome.applied.is_empty();
        let updated_at = batch
            .session
            .as_ref()
            .filter(|_| wrote)
            .and_then(|s| s.get("updatedAt"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (source, merged) = match (&batch.source, &batch.session) {
            _ if !want_session => (None, None),
            (Some(bytes), _) => (Some(String::from_utf8_lossy(bytes).into_owned()), None),
            (None, Some(session)) => (None, Some(crate::js_json::to_compact_string(session))),
            (None, None) => (None, None),
        };
        Ok(StatusWrite {
            session_found: batch.outcome.session_found,
            each: batch.outcome.each.iter().map(|&e| e.into()).collect(),
            index: batch
                .outcome
                .index
                .iter()
                .map(|i| i.and_then(|i| u32::try_from(i).ok()))
                .collect(),
            source,
            merged,
            updated_at,
        })
    })
}
