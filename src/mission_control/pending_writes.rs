//! Status writes a stopping bridge could not make, kept on disk beside the
//! session (`.session.json.pending`, one JSON object per line) so that the
//! next bridge to read the session makes them. Without it, an outcome serve
//! accepted, or an event an executor sent, would be gone with the process
//! whenever the disk refused the write until the stop (full, read-only,
//! immutable, a writer faster than our fsync).
//!
//! Each entry is a status update, and for a dispatch outcome the mission as
//! it was before its dispatch: the outcome is made only while the mission
//! is still exactly that (a mission changed since is a new request), as
//! with outcomes another writer reverted (see `tailer::remembered`).
//!
//! The file is only ever replaced whole, durably, under the session's lock,
//! so entries are never torn and a bridge taking entries out never drops
//! ones another bridge has just added.

use super::mission::StatusUpdate;
use super::session_lock::SessionLock;
use super::sidecar::{is_symlink_refusal, open_to_read_no_follow, sidecar};
use crate::atomic_write::{self, Durability};
use crate::clock::now_iso;
use crate::error::{IoContext, Result};
use crate::file_stamp::Stamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One write owed to a session file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PendingWrite {
    pub update: StatusUpdate,
    /// For a dispatch outcome: the mission as read just before its dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
}

/// `<dir>/.<name>.pending` for the session file `<dir>/<name>`.
pub(crate) fn pending_path(session: &Path) -> PathBuf {
    sidecar(session, "pending")
}

/// One entry of the file and when it was saved.
#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    write: PendingWrite,
    #[serde(rename = "savedAt", default)]
    saved_at: String,
}

/// One line of the file.
enum Line {
    Entry(Box<Entry>),
    /// A line this version cannot read (edited by hand, written by a newer
    /// version, not UTF-8): kept as it is, never owed by us, never dropped.
    Other(Vec<u8>),
}

impl Line {
    fn write(&self) -> Option<&PendingWrite> {
        match self {
            Line::Entry(entry) => Some(&entry.write),
            Line::Other(_) => None,
        }
    }
}

/// The entries owed to `session`, oldest first; none when there is no file.
/// A line that does not parse (written by hand, or by a newer version) is
/// skipped here, and kept in the file.
pub(crate) fn load(session: &Path) -> io::Result<Vec<PendingWrite>> {
    Ok(read_lines(session)?
        .into_iter()
        .filter_map(|line| match line {
            Line::Entry(entry) => Some(entry.write),
            Line::Other(_) => None,
        })
        .collect())
}

/// Add `writes` to what `session` is owed, durably (file and directory
/// fsynced) before it returns. A write owed already is not added twice.
pub(crate) fn save(session: &Path, writes: &[PendingWrite]) -> Result<()> {
    let _lock = SessionLock::acquire(session)?;
    let path = pending_path(session);
    let mut lines = read_lines(session).at("open", &path)?;
    let saved_at = now_iso();
    for write in writes {
        if !lines.iter().any(|line| line.write() == Some(write)) {
            lines.push(Line::Entry(Box::new(Entry {
                write: write.clone(),
                saved_at: saved_at.clone(),
            })));
        }
    }
    replace(session, &lines)
}

/// Take `made` (entries from [`load`] that are written now, or moot) out of
/// what `session` is owed; the file goes when nothing is left in it.
/// Entries another bridge added since the load stay.
pub(crate) fn forget(session: &Path, made: &[PendingWrite]) -> Result<()> {
    let _lock = SessionLock::acquire(session)?;
    let path = pending_path(session);
    let mut made: Vec<&PendingWrite> = made.iter().collect();
    let lines: Vec<Line> = read_lines(session)
        .at("open", &path)?
        .into_iter()
        .filter(
            |line| match made.iter().position(|m| Some(*m) == line.write()) {
                // Each made entry takes out one line: a second copy saved by
                // another bridge since is its own.
                Some(i) => {
                    made.swap_remove(i);
                    false
                }
                None => true,
            },
        )
        .collect();
    replace(session, &lines)
}

/// The file's lines. A link planted at its path is not followed: nothing
/// is owed then (and the next save replaces the link, never its target).
fn read_lines(session: &Path) -> io::Result<Vec<Line>> {
    let bytes = match open_to_read_no_follow(&pending_path(session)) {
        Ok(file) => crate::whole_file::read_all(&file)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound || is_symlink_refusal(&e) => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(e),
    };
    Ok(bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.trim_ascii().is_empty())
        .map(|line| match serde_json::from_slice(line) {
            Ok(entry) => Line::Entry(entry),
            Err(_) => Line::Other(line.to_vec()),
        })
        .collect())
}

/// Write `lines` as the whole file, or remove it when there are none.
fn replace(session: &Path, lines: &[Line]) -> Result<()> {
    let path = pending_path(session);
    if lines.is_empty() {
        return match std::fs::remove_file(&path) {
            Ok(()) => {
                atomic_write::sync_parent(&path, Durability::Full);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).at("unlink", &path),
        };
    }
    let mut text = Vec::new();
    for line in lines {
        match line {
            Line::Entry(entry) => {
                let json = serde_json::to_value(entry).map_err(|e| {
                    crate::error::Error::Message(format!("cannot encode a pending write: {e}"))
                })?;
                text.extend_from_slice(crate::js_json::to_compact_string(&json).as_bytes());
            }
            Line::Other(bytes) => text.extend_from_slice(bytes),
        }
        text.push(b'\n');
    }
    atomic_write::write_atomic(&path, &text, Durability::Full).at("open", &path)
}

/// Which version of each session's file a bridge has loaded, so that a
/// dispatch can tell one saved since by a bridge stopping beside it (whose
/// watch event may not have come yet): the file is always replaced whole,
/// so its [`Stamp`] moves with every save. Where the platform has no
/// stamps, no file is ever taken for unread.
#[derive(Default)]
pub(crate) struct Loaded(Mutex<HashMap<PathBuf, Stamp>>);

impl Loaded {
    /// `session`'s file as it is now; take it before [`load`], and give it
    /// to [`Loaded::loaded`] after (a save in between is then seen as unread).
    pub(crate) fn stamp(session: &Path) -> Option<Stamp> {
        // The link itself, not what it points at: a link planted there is
        // never loaded, so only replacing it is a new version.
        std::fs::symlink_metadata(pending_path(session))
            .ok()
            .as_ref()
            .and_then(Stamp::of)
    }

    /// `session`'s file was loaded as `stamp` showed it (`None`: no file).
    pub(crate) fn loaded(&self, session: &Path, stamp: Option<Stamp>) {
        let mut loaded = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match stamp {
            Some(stamp) => loaded.insert(session.to_path_buf(), stamp),
            None => loaded.remove(session),
        };
    }

    /// Whether `session` has a file saved since it was last loaded.
    pub(crate) fn unread(&self, session: &Path) -> bool {
        let Some(now) = Self::stamp(session) else {
            return false;
        };
        let loaded = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loaded.get(session) != Some(&now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outcome(mission: &str) -> PendingWrite {
        PendingWrite {
            update: StatusUpdate {
                mission_id: json!(mission),
                status: json!("assigned"),
                patch: Some(
                    json!({"executorId": "ex-1"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                ),
                ..StatusUpdate::default()
            },
            before: Some(json!({"id": mission, "status": "queued", "objective": "x"})),
        }
    }

    #[test]
    fn saved_writes_load_back_and_go_once_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = dir.path().join("session.json");
        std::fs::write(&session, "{}").expect("write");
        assert!(
            load(&session).expect("load").is_empty(),
            "no file: nothing owed"
        );

        let event = PendingWrite {
            update: StatusUpdate {
                mission_id: json!("m-2"),
                status: json!("running"),
                transition_from: Some(json!("assigned")),
                unless_terminal: true,
                ..StatusUpdate::default()
            },
            before: None,
        };
        save(&session, &[outcome("m-1")]).expect("save");
        save(&session, &[event.clone(), outcome("m-1")]).expect("save");
        let loaded = load(&session).expect("load");
        assert_eq!(loaded, vec![outcome("m-1"), event.clone()]);

        // Another bridge owes m-3 meanwhile: making what was loaded keeps it.
        save(&session, &[outcome("m-3")]).expect("save");
        forget(&session, &loaded).expect("forget");
        assert_eq!(load(&session).expect("load"), vec![outcome("m-3")]);
        forget(&session, &[outcome("m-3")]).expect("forget");
        assert!(!pending_path(&session).exists(), "the file goes when empty");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_at_its_path_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = dir.path().join("session.json");
        let elsewhere = dir.path().join("elsewhere");
        save(&elsewhere, &[outcome("m-1")]).expect("save");
        let target = pending_path(&elsewhere);
        std::os::unix::fs::symlink(&target, pending_path(&session)).expect("symlink");
        assert!(
            load(&session).expect("load").is_empty(),
            "the link was followed"
        );
        save(&session, &[outcome("m-2")]).expect("save");
        assert_eq!(
            load(&elsewhere).expect("load"),
            vec![outcome("m-1")],
            "the target changed"
        );
        assert_eq!(load(&session).expect("load"), vec![outcome("m-2")]);
    }

    /// §10: a FIFO planted where the file goes is not waited on (an open
    /// for reading would block until a writer came): nothing is owed.
    #[cfg(unix)]
    #[test]
    fn a_fifo_at_its_path_is_refused_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = dir.path().join("session.json");
        let fifo = std::ffi::CString::new(pending_path(&session).to_string_lossy().into_owned())
            .expect("path");
        // SAFETY: a valid NUL-terminated path; mkfifo only reads it.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(load(&session).map_err(|e| e.to_string()));
        });
        let loaded = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("load waited on the FIFO");
        assert_eq!(loaded, Ok(Vec::new()));
    }

    #[test]
    fn a_line_it_cannot_read_is_skipped_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = dir.path().join("session.json");
        save(&session, &[outcome("m-1")]).expect("save");
        let path = pending_path(&session);
        let mut bytes = std::fs::read(&path).expect("read");
        let foreign: &[&[u8]] = &[b"{\"update\": tor", b"\xff\xfe not UTF-8 \xc3"];
        for line in foreign {
            bytes.extend_from_slice(line);
            bytes.push(b'\n');
        }
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(load(&session).expect("load"), vec![outcome("m-1")]);
        save(&session, &[outcome("m-2")]).expect("save");
        forget(&session, &[outcome("m-1"), outcome("m-2")]).expect("forget");
        let left = std::fs::read(&path).expect("the foreign lines are still there");
        let lines: Vec<&[u8]> = left
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines, foreign);
    }

    #[cfg(unix)]
    #[test]
    fn a_file_saved_since_the_last_load_is_unread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = dir.path().join("session.json");
        let loaded = Loaded::default();
        assert!(!loaded.unread(&session), "no file");
        save(&session, &[outcome("m-1")]).expect("save");
        assert!(loaded.unread(&session), "saved, never loaded");
        let stamp = Loaded::stamp(&session);
        load(&session).expect("load");
        loaded.loaded(&session, stamp);
        assert!(!loaded.unread(&session), "loaded");
        save(&session, &[outcome("m-2")]).expect("save");
        assert!(loaded.unread(&session), "saved again since");
        forget(&session, &[outcome("m-1"), outcome("m-2")]).expect("forget");
        assert!(!loaded.unread(&session), "gone");
        // A link planted there is never loaded: what it points at changing
        // is no new version (else every dispatch would wait for it).
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "a").expect("write");
        std::os::unix::fs::symlink(&target, pending_path(&session)).expect("symlink");
        let stamp = Loaded::stamp(&session);
        assert!(load(&session).expect("load").is_empty());
        loaded.loaded(&session, stamp);
        std::fs::write(&target, "a longer text").expect("write");
        assert!(
            !loaded.unread(&session),
            "the link's target is not the file"
        );
    }
}
