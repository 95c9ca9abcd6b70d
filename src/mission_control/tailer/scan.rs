//! Reading one session file for the tailer: which queued missions can be
//! dispatched, which are claimed already, and what is wrong with the rest
//! (logged once, never fatal: §10).

use super::descriptors::Descriptors;
use super::lock;
use super::remembered::{event_key, Remembered};
use super::schedule::Job;
use crate::atomic_write;
use crate::backoff::backoff_ms;
use crate::js_json::slice_utf16;
use crate::mission_control::log::Logger;
use crate::mission_control::mission::StatusUpdate;
use crate::mission_control::mission::HELD;
use crate::mission_control::pending_writes::{self, PendingWrite};
use crate::mission_control::session::{self, Unreadable};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// When to look again at a session directory whose file was missing: a file
/// written right after its directory was created can beat the directory's
/// watch. Also the first wait before another look at a file that could not
/// be read (it doubles, up to [`READ_RETRY_MAX_MS`]).
pub(super) const LOOK_AGAIN_MS: f64 = 100.0;
/// The longest wait between looks at a file that cannot be read.
const READ_RETRY_MAX_MS: f64 = 2000.0;

/// What a file looked like: changes when it is rewritten.
type Fingerprint = Option<(u64, Option<SystemTime>, u64)>;

/// The file's size, mtime and inode now (`None` when it is missing). Blocking.
fn fingerprint(path: &Path) -> Fingerprint {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.len(), meta.modified().ok(), inode))
}

/// What the tailer remembers about the session files it has read: which
/// keys are claimed, how each file looked, and what was logged about it.
/// Every method that takes a path reads the file system: call them off the
/// runtime's workers (the tailer uses `spawn_blocking`).
pub(super) struct Scanner {
    root: PathBuf,
    serve_url: String,
    dry_run: bool,
    seq: AtomicU64,
    /// Keys queued, in flight or waiting for a retry.
    claimed: Mutex<HashSet<String>>,
    /// Claimed keys whose mission was seen reverted (back to `queued` as it
    /// was before its dispatch) while claimed: their session is examined
    /// again once the claim is released, or the revert would go unseen.
    reverted_while_claimed: Mutex<HashSet<String>>,
    /// Each session file as it was when last examined.
    seen: Mutex<HashMap<PathBuf, Fingerprint>>,
    /// Unreadable files, as they were when that was logged.
    unreadable: Mutex<HashMap<PathBuf, Fingerprint>>,
    /// Problems with single missions already logged.
    invalid_logged: Mutex<HashSet<String>>,
    /// Session files found missing once and due for another look.
    awaiting: Mutex<HashSet<PathBuf>>,
    /// Session files found unreadable and given one more look since: a file
    /// written in place right after its directory was made may be caught
    /// half-written before the directory's watch exists, and then no event
    /// would ever bring the tailer back to it.
    rechecked: Mutex<HashSet<PathBuf>>,
    /// Session files that exist but could not be read (no descriptors
    /// left, no permission, an I/O error), with how many times in a row:
    /// looked at again, less often each time, until they read (no event
    /// may ever come: `chmod` or freed descriptors make none).
    read_failures: Mutex<HashMap<PathBuf, u32>>,
    /// The read errors logged, by file: each once.
    io_logged: Mutex<HashSet<(PathBuf, String)>>,
    /// Out of descriptors is logged there, not once per file.
    descriptors: Arc<Descriptors>,
    /// Outcomes and events written, to restore if another writer reverts one.
    pub remembered: Arc<Remembered>,
    /// Writes a stopped bridge left owed to a session file, loaded when the
    /// file is first seen and taken in once it reads.
    owed: Mutex<HashMap<PathBuf, Vec<PendingWrite>>>,
    /// Session files whose owed writes could not be read yet (looked for
    /// again at the file's next examination).
    owed_unread: Mutex<HashSet<PathBuf>>,
    /// Which version of each file of owed writes was loaded (a dispatch
    /// checks it: see [`Reread::Owed`](super::reread::Reread::Owed)).
    owed_loaded: Arc<pending_writes::Loaded>,
}

/// A status write to make again: an outcome or event another writer
/// reverted, or a write a stopped bridge left owed.
pub(super) struct Restore {
    /// The claimed key to release once written: an outcome's, or on the
    /// last of a mission's reverted events, the mission's [`event_key`].
    pub key: Option<String>,
    pub update: StatusUpdate,
    /// For an outcome: the mission before its dispatch (as it is now).
    pub before: Option<Value>,
    /// An event's update (remembered again once written).
    pub event: bool,
    /// Another writer undid it (logged as restored); else it was owed.
    pub reverted: bool,
}

/// What examining a session file found.
pub(super) struct Examined {
    pub jobs: Vec<Arc<Job>>,
    /// Look again after this many ms: the file was missing from an
    /// existing directory, is unreadable for the first time in a row, or
    /// could not be read at all.
    pub look_again: Option<f64>,
    /// Missions an executor holds (§9.1): `(mission id, executor id)`.
    pub held: Vec<(String, String)>,
    /// Outcomes another writer reverted (see [`Remembered`]) and writes a
    /// stopped bridge left owed, to write now.
    pub restore: Vec<Restore>,
    /// The owed writes taken in: forgotten once `restore` is written.
    pub owed: Option<Vec<PendingWrite>>,
}

impl From<Vec<Arc<Job>>> for Examined {
    fn from(jobs: Vec<Arc<Job>>) -> Self {
        Examined {
            jobs,
            look_again: None,
            held: Vec::new(),
            restore: Vec::new(),
            owed: None,
        }
    }
}

impl Scanner {
    /// A scanner for the sessions under `root` (canonical).
    pub(super) fn new(
        root: PathBuf,
        serve_url: String,
        dry_run: bool,
        descriptors: Arc<Descriptors>,
        remembered: Arc<Remembered>,
        owed_loaded: Arc<pending_writes::Loaded>,
    ) -> Self {
        Scanner {
            root,
            serve_url,
            dry_run,
            seq: AtomicU64::new(0),
            claimed: Mutex::default(),
            reverted_while_claimed: Mutex::default(),
            seen: Mutex::default(),
            unreadable: Mutex::default(),
            invalid_logged: Mutex::default(),
            awaiting: Mutex::default(),
            rechecked: Mutex::default(),
            read_failures: Mutex::default(),
            io_logged: Mutex::default(),
            descriptors,
            remembered,
            owed: Mutex::default(),
            owed_unread: Mutex::default(),
            owed_loaded,
        }
    }

    /// The missions of `path` to dispatch now; claims them.
    pub(super) fn examine(&self, path: &Path, log: &Logger) -> Examined {
        let print = fingerprint(path);
        if lock(&self.seen).insert(path.to_path_buf(), print).is_none() {
            // First sight: temp files of writers that died mid-write go (§9.6),
            // and what a stopped bridge could not write is picked up.
            let _ = atomic_write::remove_stale_temps(path);
            self.pick_up_owed(path, log);
        } else if lock(&self.owed_unread).remove(path) {
            self.pick_up_owed(path, log);
        }
        if lock(&self.owed_unread).contains(path) {
            // What a stopped bridge owes this file comes first: nothing is
            // dispatched from it until that has been read.
            return self.look_again_later(path);
        }
        let session = match session::load_session(path) {
            Ok(session) if session.is_object() => session,
            Ok(_) => return self.unreadable(path, print, "not a JSON object", log),
            Err(Unreadable::Missing)
                if print.is_none() && !path.parent().is_some_and(Path::exists) =>
            {
                // The whole session directory is gone: nothing to say.
                lock(&self.unreadable).remove(path);
                return Vec::new().into();
            }
            // A new session directory whose file has not landed yet; its
            // event may come before the watch on the directory does. Look
            // again shortly (the caller schedules it), and only then complain.
            Err(Unreadable::Missing) if lock(&self.awaiting).insert(path.to_path_buf()) => {
                let mut examined: Examined = Vec::new().into();
                examined.look_again = Some(LOOK_AGAIN_MS);
                return examined;
            }
            Err(Unreadable::Io(e)) => {
                self.read_failed(path, &e, log);
                return self.look_again_later(path);
            }
            Err(e) => return self.unreadable(path, print, &e.to_string(), log),
        };
        lock(&self.read_failures).remove(path);
        lock(&self.awaiting).remove(path);
        // A file without an id stays unreadable: logged once per state of
        // it, looked at again once (not every time, as clearing the marks
        // first would).
        let Some(session_id) = session.get("id").and_then(Value::as_str).map(str::to_owned) else {
            return self.unreadable(path, print, "the session has no string id", log);
        };
        lock(&self.rechecked).remove(path);
        lock(&self.unreadable).remove(path);
        let mut jobs = Vec::new();
        let mut held = Vec::new();
        let missions = session::missions(&session);
        let mut restore = Vec::new();
        // Outcomes restored from what is owed: not dispatched below.
        let mut restoring = HashSet::new();
        let owed = lock(&self.owed).remove(path);
        // What a stopped bridge owes goes first, in the order it was saved
        // (an outcome, then the events that followed it).
        for write in owed.iter().flatten() {
            match (&write.before, write.update.mission_id.as_str()) {
                // An outcome: made only while its mission is as it was.
                (Some(before), Some(mission_id)) => {
                    let key = format!("{session_id}:{mission_id}");
                    self.remembered.remember(&key, before, &write.update);
                    let unchanged = missions
                        .iter()
                        .find(|m| m.get("id").and_then(Value::as_str) == Some(mission_id))
                        .filter(|m| self.remembered.reverted(&key, m).is_some());
                    if let Some(mission) = unchanged {
                        if lock(&self.claimed).insert(key.clone()) {
                            restoring.insert(key.clone());
                            restore.push(Restore {
                                key: Some(key),
                                update: write.update.clone(),
                                before: Some(mission.clone()),
                                event: false,
                                reverted: false,
                            });
                        }
                    }
                }
                (Some(_), None) => {}
                // An event: the status rules decide, as when it came.
                (None, _) => restore.push(Restore {
                    key: None,
                    update: write.update.clone(),
                    before: None,
                    event: true,
                    reverted: false,
                }),
            }
        }
        let any_events = self.remembered.any_events();
        for mission in missions {
            // Put back exactly as it was before events we wrote to it:
            // another writer undid them. Claimed until they are written
            // again, so they are restored once; a revert seen meanwhile
            // is looked at again once they are.
            if let Some(id) = mission
                .get("id")
                .and_then(Value::as_str)
                .filter(|_| any_events)
            {
                let key = event_key(path, id);
                let mut undone = self.remembered.reverted_events(&key, mission);
                if let Some(last) = undone.pop() {
                    if lock(&self.claimed).insert(key.clone()) {
                        let event = |update, key| Restore {
                            key,
                            update,
                            before: None,
                            event: true,
                            reverted: true,
                        };
                        restore.extend(undone.into_iter().map(|update| event(update, None)));
                        restore.push(event(last, Some(key)));
                    } else {
                        lock(&self.reverted_while_claimed).insert(key);
                    }
                }
            }
            let status = mission.get("status").and_then(Value::as_str);
            if status.is_some_and(|s| HELD.contains(&s)) {
                let id = mission.get("id").and_then(Value::as_str);
                let executor = mission.get("executorId").and_then(Value::as_str);
                if let (Some(id), Some(executor)) = (id, executor) {
                    held.push((id.to_owned(), executor.to_owned()));
                }
            }
        }
        // The same `queuedMissions` as the exported helper's Rust side.
        for mission in session::queued_missions(&session) {
            let index = index_in(missions, mission);
            let Some(mission_id) = mission
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
            else {
                self.invalid(
                    path,
                    &session_id,
                    index,
                    mission,
                    "mission has no string id",
                    log,
                );
                continue;
            };
            let Some(objective) = mission.get("objective").and_then(Value::as_str) else {
                self.invalid(
                    path,
                    &session_id,
                    index,
                    mission,
                    "objective is not a string",
                    log,
                );
                continue;
            };
            if self.dry_run {
                let digest = if objective.encode_utf16().count() > 32 {
                    format!("{mission_id}:{}…", slice_utf16(objective, 32))
                } else {
                    format!("{mission_id}:{objective}")
                };
                log.log(
                    "queue-tailer:would-dispatch",
                    json!({
                        "missionId": mission_id,
                        "sessionId": session_id,
                        "endpoint": format!("{}/api/v1/sessions/{session_id}/dispatch", self.serve_url),
                        "payloadDigest": digest,
                    }),
                );
                continue;
            }
            let key = format!("{session_id}:{mission_id}");
            if restoring.contains(&key) {
                continue;
            }
            if !lock(&self.claimed).insert(key.clone()) {
                // In flight, or its outcome being written. Another writer
                // may already have reverted that outcome: no event may
                // come again, so look once more when the claim is released.
                if self.remembered.reverted(&key, mission).is_some() {
                    lock(&self.reverted_while_claimed).insert(key);
                }
                continue;
            }
            if let Some(update) = self.remembered.reverted(&key, mission) {
                // Claimed until written, so it is restored once.
                restore.push(Restore {
                    key: Some(key),
                    update,
                    before: Some(mission.clone()),
                    event: false,
                    reverted: true,
                });
                continue;
            }
            jobs.push(Arc::new(Job {
                ts: session::fifo_timestamp(mission),
                seq: self.seq.fetch_add(1, Ordering::Relaxed),
                key,
                path: path.to_path_buf(),
                session_id: session_id.clone(),
                mission_id: Value::from(mission_id),
                done: CancellationToken::new(),
            }));
        }
        Examined {
            jobs,
            look_again: None,
            held,
            restore,
            owed,
        }
    }

    /// Nothing to do with `path` now: it could not be read. Look again
    /// later, less often each time in a row.
    fn look_again_later(&self, path: &Path) -> Examined {
        let mut failures = lock(&self.read_failures);
        let n = failures.entry(path.to_path_buf()).or_insert(0);
        *n += 1;
        let mut examined: Examined = Vec::new().into();
        examined.look_again = Some(backoff_ms(f64::from(*n), LOOK_AGAIN_MS).min(READ_RETRY_MAX_MS));
        examined
    }

    /// Load the writes a stopped bridge left owed to `path` (see
    /// [`pending_writes`]); they are taken in when the file next reads.
    fn pick_up_owed(&self, path: &Path, log: &Logger) {
        // A dry run writes nothing, and leaves what is owed for a real bridge.
        if self.dry_run {
            return;
        }
        let stamp = pending_writes::Loaded::stamp(path);
        match pending_writes::load(path) {
            Ok(owed) if owed.is_empty() => self.owed_loaded.loaded(path, stamp),
            Ok(owed) => {
                self.owed_loaded.loaded(path, stamp);
                log.log(
                    "queue-tailer:pending-loaded",
                    json!({"path": path.to_string_lossy(), "updates": owed.len()}),
                );
                lock(&self.owed).insert(path.to_path_buf(), owed);
            }
            Err(e) => {
                self.read_failed(&pending_writes::pending_path(path), &e, log);
                lock(&self.owed_unread).insert(path.to_path_buf());
            }
        }
    }

    /// `path`'s owed writes may have changed (another bridge saved some at
    /// its stop): read them again at its next examination.
    pub(super) fn owed_changed(&self, path: &Path) {
        if lock(&self.seen).contains_key(path) {
            lock(&self.owed_unread).insert(path.to_path_buf());
        }
    }

    /// A dispatch found its mission exactly as it was before a dispatch
    /// whose outcome is remembered (owed by a stopped bridge, or reverted):
    /// once its key is released, the session is examined and the outcome
    /// written instead of a second POST.
    pub(super) fn restore_after_release(&self, key: &str) {
        lock(&self.reverted_while_claimed).insert(key.to_owned());
    }

    /// A key may be dispatched again. `true` when its mission was seen
    /// reverted while it was claimed: examine its session again.
    pub(super) fn release(&self, key: &str) -> bool {
        lock(&self.claimed).remove(key);
        lock(&self.reverted_while_claimed).remove(key)
    }

    /// Whether `path` differs from when it was last examined (or is new).
    pub(super) fn changed_since_seen(&self, path: &Path) -> bool {
        let now = fingerprint(path);
        lock(&self.seen).get(path).is_none_or(|then| *then != now)
    }

    /// Session files not examined yet, or changed since (after lost events).
    pub(super) fn changed_sessions(&self) -> Vec<PathBuf> {
        let paths = session::discover_sessions(&self.root).unwrap_or_default();
        paths
            .into_iter()
            .filter(|p| self.changed_since_seen(p))
            .collect()
    }

    /// Every session file examined so far.
    pub(super) fn seen_paths(&self) -> Vec<PathBuf> {
        lock(&self.seen).keys().cloned().collect()
    }

    /// A file that is there could not be read: logged once per file and
    /// error for the bridge's life (a file short of descriptors fails and
    /// reads by turns; that shortage is said once, for the process).
    fn read_failed(&self, path: &Path, e: &std::io::Error, log: &Logger) {
        let error = e.to_string();
        if !self.descriptors.noted(e)
            && lock(&self.io_logged).insert((path.to_path_buf(), error.clone()))
        {
            log.log(
                "queue-tailer:session-unreadable",
                json!({"path": path.to_string_lossy(), "error": error}),
            );
        }
    }

    /// Log an unreadable file once per state of that file; the first time
    /// in a row it is unreadable, look again shortly (see `rechecked`).
    fn unreadable(&self, path: &Path, print: Fingerprint, error: &str, log: &Logger) -> Examined {
        let mut unreadable = lock(&self.unreadable);
        if unreadable.get(path) != Some(&print) {
            unreadable.insert(path.to_path_buf(), print);
            log.log(
                "queue-tailer:session-unreadable",
                json!({"path": path.to_string_lossy(), "error": error}),
            );
        }
        drop(unreadable);
        let mut examined: Examined = Vec::new().into();
        examined.look_again = (print.is_some() && lock(&self.rechecked).insert(path.to_path_buf()))
            .then_some(LOOK_AGAIN_MS);
        examined
    }

    /// Log a mission that cannot be dispatched, once.
    fn invalid(
        &self,
        path: &Path,
        session_id: &str,
        index: usize,
        mission: &Value,
        reason: &str,
        log: &Logger,
    ) {
        let key = format!(
            "{}|{index}|{}|{reason}",
            path.display(),
            mission.get("id").unwrap_or(&Value::Null)
        );
        if lock(&self.invalid_logged).insert(key) {
            log.log(
                "queue-tailer:skip-invalid-mission",
                json!({"sessionId": session_id, "index": index, "missionId": mission.get("id").cloned().unwrap_or(Value::Null), "reason": reason}),
            );
        }
    }
}

/// The position of `item` (a reference into `slice`) in `slice`, in O(1):
/// [`session::queued_missions`] hands out references, the log lines want indexes.
fn index_in(slice: &[Value], item: &Value) -> usize {
    let size = std::mem::size_of::<Value>().max(1);
    (std::ptr::from_ref::<Value>(item) as usize).saturating_sub(slice.as_ptr() as usize) / size
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mission_control::log::Recorder;

    fn scanner_of(root: &Path, log: &Logger) -> Scanner {
        let descriptors = Arc::new(Descriptors::new(Arc::clone(log), 8));
        Scanner::new(
            root.to_path_buf(),
            "http://serve".into(),
            false,
            descriptors,
            Arc::default(),
            Arc::default(),
        )
    }

    #[test]
    fn a_revert_seen_while_claimed_asks_for_another_look_on_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sessions").join("a").join("session.json");
        let queued = json!({"id": "m-1", "objective": "x", "status": "queued"});
        let mut doc = json!({"id": "s", "missions": [queued.clone(), {"id": "m-2", "objective": "y", "status": "queued"}]});
        session::write_session(&path, &mut doc).expect("write");
        let log: Logger = Arc::new(Recorder::default());
        let scanner = scanner_of(dir.path(), &log);

        let jobs = scanner.examine(&path, &log).jobs;
        assert_eq!(jobs.len(), 2, "both queued missions claimed");
        // m-1's outcome is on its way to the file; m-2 is still in flight.
        let assigned = StatusUpdate {
            mission_id: json!("m-1"),
            status: json!("assigned"),
            ..StatusUpdate::default()
        };
        scanner.remembered.remember("s:m-1", &queued, &assigned);
        // Another writer puts m-1 back as it was: seen while both are claimed.
        assert!(scanner.examine(&path, &log).jobs.is_empty());
        assert!(scanner.release("s:m-1"), "the revert is looked at again");
        assert!(!scanner.release("s:m-2"), "nothing was reverted for m-2");
        assert!(!scanner.release("s:m-1"), "asked for once");
    }

    #[test]
    fn a_dry_run_leaves_owed_writes_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sessions").join("a").join("session.json");
        let mut doc =
            json!({"id": "s", "missions": [{"id": "m-1", "objective": "x", "status": "assigned"}]});
        session::write_session(&path, &mut doc).expect("write");
        let owed = PendingWrite {
            update: StatusUpdate {
                mission_id: json!("m-1"),
                status: json!("running"),
                ..StatusUpdate::default()
            },
            before: None,
        };
        pending_writes::save(&path, std::slice::from_ref(&owed)).expect("save");
        let log: Logger = Arc::new(Recorder::default());
        let descriptors = Arc::new(Descriptors::new(Arc::clone(&log), 8));
        let dry = Scanner::new(
            dir.path().to_path_buf(),
            "http://serve".into(),
            true,
            descriptors,
            Arc::default(),
            Arc::default(),
        );
        let examined = dry.examine(&path, &log);
        assert!(examined.restore.is_empty() && examined.owed.is_none());
        assert_eq!(pending_writes::load(&path).expect("load"), [owed]);
        let real = scanner_of(dir.path(), &log).examine(&path, &log);
        assert_eq!(real.restore.len(), 1, "a real bridge takes it in");
    }

    #[test]
    fn a_session_without_an_id_is_logged_once_and_looked_at_again_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sessions").join("a").join("session.json");
        let mut doc = json!({"session_id": "s", "missions": [{"id": "m-1", "objective": "x", "status": "queued"}]});
        session::write_session(&path, &mut doc).expect("write");
        let recorder = Arc::new(Recorder::default());
        let log: Logger = recorder.clone();
        let scanner = scanner_of(dir.path(), &log);
        let looks: Vec<_> = (0..4)
            .map(|_| scanner.examine(&path, &log).look_again)
            .collect();
        assert_eq!(looks, [Some(LOOK_AGAIN_MS), None, None, None]);
        assert_eq!(recorder.0.lock().expect("log").len(), 1, "logged once");
        // Fixed by its writer: read, and complained about again if it breaks.
        let mut doc =
            json!({"id": "s", "missions": [{"id": "m-1", "objective": "x", "status": "queued"}]});
        session::write_session(&path, &mut doc).expect("write");
        assert_eq!(scanner.examine(&path, &log).jobs.len(), 1);
        let mut doc = json!({"missions": []});
        session::write_session(&path, &mut doc).expect("write");
        assert_eq!(scanner.examine(&path, &log).look_again, Some(LOOK_AGAIN_MS));
        assert_eq!(recorder.0.lock().expect("log").len(), 2);
    }

    #[test]
    fn a_file_that_cannot_be_read_is_looked_at_again_less_often_until_it_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sessions").join("a").join("session.json");
        // There, but reading it fails (EISDIR): as EMFILE or EACCES would.
        std::fs::create_dir_all(&path).expect("mkdir");
        let recorder = Arc::new(Recorder::default());
        let log: Logger = recorder.clone();
        let scanner = scanner_of(dir.path(), &log);
        let delays: Vec<_> = (0..7)
            .map(|_| scanner.examine(&path, &log).look_again)
            .collect();
        assert_eq!(
            delays,
            [100.0, 200.0, 400.0, 800.0, 1600.0, 2000.0, 2000.0].map(Some),
            "looked at again, backing off to a cap, every time"
        );
        let logged = recorder.0.lock().expect("log").len();
        assert_eq!(logged, 1, "logged once, not once per look");
        std::fs::remove_dir(&path).expect("rmdir");
        let mut doc =
            json!({"id": "s", "missions": [{"id": "m-1", "objective": "x", "status": "queued"}]});
        session::write_session(&path, &mut doc).expect("write");
        let examined = scanner.examine(&path, &log);
        assert_eq!(examined.jobs.len(), 1);
        assert_eq!(examined.look_again, None);
        assert!(
            lock(&scanner.read_failures).is_empty(),
            "the failures outlived the read"
        );
    }
}
