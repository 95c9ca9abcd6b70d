//! `session.json`: where sessions are, how they are read, which missions are
//! queued, and the v1 dispatch payload built from a mission.

use crate::atomic_write::{self, Durability};
use crate::clock::now_iso;
use crate::error::{Error, IoContext, Result};
use crate::js_json::{self, truthy};
use crate::whole_file;
use serde_json::{json, Map, Value};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The file name of a session inside `<root>/sessions/<id>/`.
pub(crate) const SESSION_FILE: &str = "session.json";
/// Session files larger than this are not read (§9.7).
pub(crate) const MAX_SESSION_BYTES: u64 = 32 * 1024 * 1024;

/// `<root>/sessions/<d>/session.json` for every directory `d` of
/// `<root>/sessions`, sorted by name as Node's `readdir` sorts. The file
/// itself is not checked; a missing `sessions/` gives an empty list.
pub(crate) fn discover_sessions(root: &Path) -> io::Result<Vec<PathBuf>> {
    let sessions = root.join("sessions");
    Ok(directory_names(&sessions)?
        .into_iter()
        .map(|d| sessions.join(d).join(SESSION_FILE))
        .collect())
}

/// The names of the directories in `dir` (not following links), sorted
/// by their bytes as libuv's `scandir` sorts them; none if `dir` is missing.
pub(crate) fn directory_names(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            names.push(entry.file_name());
        }
    }
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    Ok(names)
}

/// Why a session file could not be used this round.
#[derive(Debug)]
pub(crate) enum Unreadable {
    Missing,
    TooLarge(u64),
    Io(io::Error),
    NotJson(String),
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::Missing => f.write_str("no such file"),
            Unreadable::TooLarge(n) => {
                write!(f, "{n} bytes is over the {MAX_SESSION_BYTES}-byte cap")
            }
            Unreadable::Io(e) => write!(f, "{e}"),
            Unreadable::NotJson(e) => write!(f, "not valid JSON: {e}"),
        }
    }
}

/// Read and parse a session file (any JSON value), with the size cap.
pub(crate) fn load_session(path: &Path) -> std::result::Result<Value, Unreadable> {
    let file = open_session(path)?;
    parse_session(&read_capped(&file)?)
}

/// Open a session file for reading.
pub(crate) fn open_session(path: &Path) -> std::result::Result<fs::File, Unreadable> {
    match whole_file::open_to_read(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Unreadable::Missing),
        Err(e) => Err(Unreadable::Io(e)),
    }
}

/// All of an open session file's bytes, from the start, within the size cap.
pub(crate) fn read_capped(mut file: &fs::File) -> std::result::Result<Vec<u8>, Unreadable> {
    use std::io::Seek;
    let meta = file.metadata().map_err(Unreadable::Io)?;
    whole_file::refuse_special(&meta).map_err(Unreadable::Io)?;
    file.seek(io::SeekFrom::Start(0)).map_err(Unreadable::Io)?;
    let size = meta.len();
    let bytes = whole_file::read_whole(file, size, MAX_SESSION_BYTES).map_err(Unreadable::Io)?;
    if bytes.len() as u64 > MAX_SESSION_BYTES {
        return Err(Unreadable::TooLarge(size.max(bytes.len() as u64)));
    }
    Ok(bytes)
}

/// Parse session bytes (any JSON value).
pub(crate) fn parse_session(bytes: &[u8]) -> std::result::Result<Value, Unreadable> {
    js_json::parse(bytes).map_err(|e| Unreadable::NotJson(e.to_string()))
}

#[cfg(test)]
/// Write a session object (tests and tools): `updatedAt` stamped, then as
/// [`write_session_text`].
pub(crate) fn write_session(path: &Path, session: &mut Value) -> Result<()> {
    let text = session_text(session)?;
    ensure_parent(path)?;
    write_session_text(path, &text)
}

/// Create the directories `path` goes in, as `mkdir -p` of its parent.
pub(crate) fn ensure_parent(path: &Path) -> Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => fs::create_dir_all(dir).at("mkdir", dir),
        _ => Ok(()),
    }
}

/// `writeSessionAtomic`'s write: replace the file with `text` atomically
/// and durably, under the lock this package's writers share.
pub(crate) fn write_session_text(path: &Path, text: &str) -> Result<()> {
    let _lock = super::session_lock::SessionLock::acquire(path)?;
    atomic_write::write_atomic(path, text.as_bytes(), Durability::Full).at("open", path)
}

/// The text a session is written as: `updatedAt` (an object's) stamped now,
/// then `JSON.stringify(session, null, 2)`.
pub(crate) fn session_text(session: &mut Value) -> Result<String> {
    if let Some(map) = session.as_object_mut() {
        map.insert("updatedAt".into(), Value::from(now_iso()));
    }
    js_json::to_pretty_string(session).map_err(|e| Error::Invalid(format!("session: {e}")))
}

/// The missions of `session` (an empty slice when `missions` is not an array).
pub(crate) fn missions(session: &Value) -> &[Value] {
    session
        .get("missions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// `queuedMissions`: every non-null mission whose `status` is `'queued'`, in array order.
pub(crate) fn queued_missions(session: &Value) -> Vec<&Value> {
    missions(session)
        .iter()
        .filter(|m| m.get("status").and_then(Value::as_str) == Some("queued"))
        .collect()
}

/// `buildDispatchPayload(mission, {sessionId})`: the executor-v1 wire body.
pub(crate) fn build_dispatch_payload(mission: &Value, session_id: &Value) -> Value {
    let field = |key: &str| mission.get(key).cloned();
    let or = |key: &str, default: Value| {
        mission
            .get(key)
            .filter(|v| truthy(v))
            .cloned()
            .unwrap_or(default)
    };
    let mut metadata = Map::new();
    metadata.insert("mc_session_id".into(), session_id.clone());
    metadata.insert("mode".into(), or("mode", json!("direct")));
    metadata.insert("priority".into(), or("priority", json!("normal")));
    spread_into(&mut metadata, mission.get("metadata"));

    let mut payload = Map::new();
    if let Some(id) = field("id") {
        payload.insert("mission_id".into(), id);
    }
    if let Some(objective) = field("objective") {
        payload.insert("objective".into(), objective);
    }
    payload.insert("completion".into(), or("completion", Value::Null));
    payload.insert(
        "long_running".into(),
        Value::Bool(mission.get("longRunning").is_some_and(truthy)),
    );
    payload.insert(
        "executor_filter".into(),
        json!({
            "executor_id": or("targetExecutorId", Value::Null),
            "capabilities": or("requiredCapabilities", json!([])),
            "agent_id": or("targetAgentId", Value::Null),
        }),
    );
    payload.insert("metadata".into(), Value::Object(metadata));
    Value::Object(payload)
}

/// `{...value}` over `target`, as object spread treats each kind of value.
fn spread_into(target: &mut Map<String, Value>, value: Option<&Value>) {
    match value {
        Some(Value::Object(map)) => {
            for (k, v) in map {
                target.insert(k.clone(), v.clone());
            }
        }
        Some(Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                target.insert(i.to_string(), v.clone());
            }
        }
        Some(Value::String(s)) => {
            for (i, c) in s.chars().enumerate() {
                target.insert(i.to_string(), Value::from(c.to_string()));
            }
        }
        _ => {}
    }
}

/// The FIFO position of a mission (§9.3): the millisecond timestamp of an
/// `m-<base36 ms>-<hex>` id; ids of another shape sort after all of those.
pub(crate) fn fifo_timestamp(mission: &Value) -> u64 {
    mission
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| id.strip_prefix("m-"))
        .and_then(|rest| rest.split('-').next())
        .and_then(|ts| u64::from_str_radix(ts, 36).ok())
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §10: a FIFO planted at `session.json` is refused at once: an open
    /// for reading would wait for a writer that never comes.
    #[cfg(unix)]
    #[test]
    fn a_fifo_at_the_session_path_is_refused_without_waiting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.json");
        let c_path =
            std::ffi::CString::new(path.to_string_lossy().into_owned()).expect("NUL-free path");
        // SAFETY: a valid NUL-terminated path; mkfifo only reads it.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(load_session(&path).map_err(|e| e.to_string()));
        });
        let loaded = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the read waited on the FIFO");
        assert_eq!(loaded, Err("not a regular file".to_owned()));
    }

    #[test]
    fn a_directory_at_the_session_path_fails_its_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        match load_session(dir.path()) {
            Err(Unreadable::Io(e)) => assert_ne!(e.kind(), io::ErrorKind::InvalidInput),
            other => panic!("a directory read as {other:?}"),
        }
    }

    #[test]
    fn discovers_directories_only_sorted() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(discover_sessions(dir.path())
            .expect("no sessions dir")
            .is_empty());
        let sessions = dir.path().join("sessions");
        for d in ["b", "a", "C"] {
            fs::create_dir_all(sessions.join(d)).expect("mkdir");
        }
        fs::write(sessions.join("stray.json"), "{}").expect("file");
        let found = discover_sessions(dir.path()).expect("discover");
        let names: Vec<_> = found
            .iter()
            .map(|p| {
                p.parent()
                    .and_then(Path::file_name)
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(names, ["C", "a", "b"]);
        assert!(found.iter().all(|p| p.ends_with(SESSION_FILE)));
    }

    #[test]
    fn load_session_sorts_missing_from_bad_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(SESSION_FILE);
        assert!(matches!(load_session(&path), Err(Unreadable::Missing)));
        fs::write(&path, "{\"id\": ").expect("partial");
        assert!(matches!(load_session(&path), Err(Unreadable::NotJson(_))));
        fs::write(&path, "[1]").expect("array");
        assert_eq!(load_session(&path).expect("array"), json!([1]));
    }

    #[test]
    fn write_session_stamps_and_matches_json_stringify() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("deep").join(SESSION_FILE);
        let mut session = json!({"id": "s", "missions": [], "x": 1.5});
        write_session(&path, &mut session).expect("write");
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(text, js_json::to_pretty_string(&session).expect("ser"));
        assert!(session["updatedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
    }

    #[test]
    fn queued_missions_keep_order_and_skip_others() {
        let session = json!({"id": "s", "missions": [
            {"id": "a", "status": "queued"}, null, "queued", {"id": "b", "status": "done"}, {"id": "c", "status": "queued"}
        ]});
        let ids: Vec<_> = queued_missions(&session)
            .iter()
            .map(|m| m["id"].clone())
            .collect();
        assert_eq!(ids, [json!("a"), json!("c")]);
        assert!(queued_missions(&json!({"missions": {"a": 1}})).is_empty());
        assert!(queued_missions(&Value::Null).is_empty());
    }

    #[test]
    fn payload_follows_the_v1_table() {
        let mission = json!({
            "id": "m-1", "objective": "do", "completion": "", "longRunning": 1,
            "targetExecutorId": "ex", "requiredCapabilities": ["gpu"], "mode": "pty-orchestrator",
            "metadata": {"priority": "high", "extra": true, "mc_session_id": "over"}
        });
        let payload = build_dispatch_payload(&mission, &json!("sess"));
        assert_eq!(
            payload,
            json!({
                "mission_id": "m-1", "objective": "do", "completion": null, "long_running": true,
                "executor_filter": {"executor_id": "ex", "capabilities": ["gpu"], "agent_id": null},
                "metadata": {"mc_session_id": "over", "mode": "pty-orchestrator", "priority": "high", "extra": true}
            })
        );
        let keys: Vec<_> = payload["metadata"]
            .as_object()
            .expect("obj")
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["mc_session_id", "mode", "priority", "extra"]);
        let bare = build_dispatch_payload(&json!({"id": "m", "objective": "o"}), &json!("s"));
        assert_eq!(
            bare["metadata"],
            json!({"mc_session_id": "s", "mode": "direct", "priority": "normal"})
        );
        assert_eq!(bare["long_running"], false);
    }

    #[test]
    fn fifo_timestamps_come_from_base36_ids() {
        assert_eq!(
            fifo_timestamp(&json!({"id": "m-lz0-abcdef"})),
            36 * 36 * 21 + 35 * 36
        );
        assert_eq!(fifo_timestamp(&json!({"id": "other"})), u64::MAX);
        assert_eq!(fifo_timestamp(&json!({})), u64::MAX);
    }
}
