//! `discoverSessions`, `readSession` and `writeSessionAtomic` as JS sees
//! them (see js/session-files.js).

use super::{blocking, parse_json, to_json};
use crate::error::IoContext;
use crate::mission_control::session;
use napi_derive::napi;
use serde_json::Value;
use std::path::PathBuf;

#[napi]
pub async fn discover_sessions(root: String) -> napi::Result<Vec<String>> {
    let root = PathBuf::from(root);
    let paths =
        blocking(move || session::discover_sessions(&root).at("scandir", &root.join("sessions")))
            .await?;
    Ok(paths
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect())
}

/// The session as JSON text, or null.
#[napi]
pub async fn read_session(path: String) -> napi::Result<Option<String>> {
    let path = PathBuf::from(path);
    let session = blocking(move || session::read_session(&path)).await?;
    session.map(|s| to_json(&s)).transpose()
}

/// Writes the session; resolves to the `updatedAt` it stamped.
#[napi]
pub async fn write_session_atomic(
    path: String,
    session_json: String,
) -> napi::Result<Option<String>> {
    let mut session: Value = parse_json("session", &session_json)?;
    let path = PathBuf::from(path);
    blocking(move || {
        session::write_session(&path, &mut session)?;
        Ok(session
            .get("updatedAt")
            .and_then(Value::as_str)
            .map(str::to_owned))
    })
    .await
}
