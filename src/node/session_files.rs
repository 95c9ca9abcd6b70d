//! The file work behind `discoverSessions`, `readSession` and
//! `writeSessionAtomic` (see js/session-files.js, which builds the values
//! the caller sees: paths with `path.join`, objects with `JSON.parse`, the
//! text with `JSON.stringify`).

use super::blocking;
use crate::error::IoContext;
use crate::mission_control::session;
use napi_derive::napi;
use std::path::PathBuf;

/// The names of the directories in `dir`, sorted; none if it is missing.
#[napi]
pub async fn list_directories(dir: String) -> napi::Result<Vec<String>> {
    let dir = PathBuf::from(dir);
    let names = blocking(move || session::directory_names(&dir).at("scandir", &dir)).await?;
    Ok(names
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect())
}

/// A file's text, decoded as Node decodes UTF-8.
#[napi]
pub async fn read_text(path: String) -> napi::Result<String> {
    let path = PathBuf::from(path);
    let bytes = blocking(move || crate::whole_file::read_path(&path).at("open", &path)).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `mkdir -p` of the directory a file goes in.
#[napi]
pub async fn make_parent_dirs(path: String) -> napi::Result<()> {
    let path = PathBuf::from(path);
    blocking(move || session::ensure_parent(&path)).await
}

/// Replace a session file with `text`, atomically and durably, under the
/// lock the package's writers share.
#[napi]
pub async fn write_session_text(path: String, text: String) -> napi::Result<()> {
    let path = PathBuf::from(path);
    blocking(move || session::write_session_text(&path, &text)).await
}
