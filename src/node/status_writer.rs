//! `@aiwg/mc-native/status-writer` as JS sees it (see js/status-writer.js).
//!
//! Not `async fn`s: the call takes its place in the per-path queue
//! synchronously, so calls on one path apply in the order JS made them.

use super::{js_error, parse_json, to_json};
use crate::error::Error;
use crate::mission_control::status::{self, StatusUpdate, UpdateOutcome};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use std::path::PathBuf;

fn enqueue(
    path: String,
    updates: Vec<StatusUpdate>,
) -> tokio::sync::oneshot::Receiver<crate::error::Result<status::Batched>> {
    napi::bindgen_prelude::within_runtime_if_available(move || {
        status::enqueue_batch(PathBuf::from(path), updates)
    })
}

async fn settle(
    rx: tokio::sync::oneshot::Receiver<crate::error::Result<status::Batched>>,
) -> napi::Result<status::Batched> {
    rx.await
        .map_err(|_| js_error(Error::Message("status writer job was dropped".into())))?
        .map_err(js_error)
}

/// Resolves to `{outcome, session?}` as JSON text.
#[napi(catch_unwind, ts_return_type = "Promise<string>")]
pub fn apply_status_update<'env>(
    env: &'env Env,
    path: String,
    update_json: String,
) -> napi::Result<PromiseRaw<'env, String>> {
    let update: StatusUpdate = parse_json("update", &update_json)?;
    let rx = enqueue(path, vec![update]);
    env.spawn_future(async move {
        let outcome: UpdateOutcome = settle(rx).await?.into();
        to_json(&outcome.to_json())
    })
}

/// Resolves to `{outcome, applied, missing}` as JSON text.
#[napi(catch_unwind, ts_return_type = "Promise<string>")]
pub fn apply_status_updates_batched<'env>(
    env: &'env Env,
    path: String,
    updates_json: String,
) -> napi::Result<PromiseRaw<'env, String>> {
    let updates: Vec<StatusUpdate> = parse_json("updates", &updates_json)?;
    let rx = enqueue(path, updates);
    env.spawn_future(async move { to_json(&settle(rx).await?.outcome.to_json()) })
}
