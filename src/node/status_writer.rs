//! `@aiwg/mc-native/status-writer` as JS sees it (see js/status-writer.js).

use super::{js_error, parse_json, to_json};
use crate::mission_control::status::{self, StatusUpdate};
use napi_derive::napi;
use std::path::PathBuf;

/// Resolves to `{outcome, session?}` as JSON text.
#[napi]
pub async fn apply_status_update(path: String, update_json: String) -> napi::Result<String> {
    let update: StatusUpdate = parse_json("update", &update_json)?;
    let outcome = status::apply_status_update(&PathBuf::from(path), update)
        .await
        .map_err(js_error)?;
    to_json(&outcome.to_json())
}

/// Resolves to `{outcome, applied, missing}` as JSON text.
#[napi]
pub async fn apply_status_updates_batched(
    path: String,
    updates_json: String,
) -> napi::Result<String> {
    let updates: Vec<StatusUpdate> = parse_json("updates", &updates_json)?;
    let batch = status::apply_status_updates_batched(&PathBuf::from(path), updates)
        .await
        .map_err(js_error)?;
    to_json(&batch.outcome.to_json())
}
