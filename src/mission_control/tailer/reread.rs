//! The check before a dispatch (§9.5): claim the session against other
//! bridges, then re-read it: is the mission still `queued`?
//!
//! Jobs of one session that ask while its re-read has not started yet join
//! that re-read: the ten missions of a session dispatched together cost one
//! trip to the blocking pool and one read of the file, not ten. A re-read
//! that has started serves only the jobs that asked before it started, so
//! every job still sees the file as it was after it asked.

use super::claims::{Claim, Claims};
use super::descriptors::is_shortage;
use super::lock;
use crate::error::{Error, Result};
use crate::mission_control::pending_writes::Loaded;
use crate::mission_control::session::{self, Unreadable};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// What the re-read before a dispatch found.
#[derive(Clone)]
pub(super) enum Reread {
    /// Still `queued`: the mission as it is now.
    Queued(Value),
    /// Gone or moved on: its status (`null` when gone).
    Not(Value),
    /// The file is there but could not be read (no descriptors left, no
    /// permission, an I/O error): nothing is known, so nothing is decided.
    /// `first` when this error is new for the file (log it then); `short`
    /// when it is the process out of descriptors (logged as that instead).
    Unreadable {
        error: String,
        first: bool,
        short: bool,
    },
    /// A bridge stopping beside us saved writes owed to the session since
    /// they were last loaded (its claim is let go after the save, so this
    /// is seen under ours even before the watch reports the file): take
    /// them in first, as one may be this mission's outcome.
    Owed,
}

/// How many turns of the scheduler a re-read waits for jobs to join it.
const GATHER_TURNS: usize = 2;

/// A job's answer: its claim and what the re-read found; `None` when
/// another bridge holds the session.
type Answer = Option<(Claim, Reread)>;

/// The jobs waiting for one session's next re-read: each mission id with
/// where its answer goes.
struct Group {
    /// Tells this group from a later one for the same path.
    id: u64,
    jobs: Vec<(Value, oneshot::Sender<Answer>)>,
}

/// The re-reads of one tailer, and the claims they take.
#[derive(Default)]
pub(super) struct Rereads {
    claims: Arc<Claims>,
    /// Which version of each session's owed writes the scanner loaded.
    owed_loaded: Arc<Loaded>,
    /// Re-reads asked for and not started, by session file.
    waiting: Mutex<HashMap<PathBuf, Group>>,
    /// The read errors each file gave: each is logged once for the
    /// bridge's life (a file short of descriptors fails and reads by turns).
    logged: Mutex<HashSet<(PathBuf, String)>>,
    next_id: AtomicU64,
}

impl Rereads {
    /// Re-reads taking `claims`, checking for owed writes saved since
    /// `owed_loaded` was told of them.
    pub(super) fn new(claims: Claims, owed_loaded: Arc<Loaded>) -> Self {
        Rereads {
            claims: Arc::new(claims),
            owed_loaded,
            ..Rereads::default()
        }
    }

    /// Claim the session file `path` and re-read it for `mission_id`.
    pub(super) async fn claim_and_reread(
        self: &Arc<Self>,
        path: &Path,
        mission_id: &Value,
    ) -> Result<Answer> {
        let (tx, rx) = oneshot::channel();
        let started = {
            let mut waiting = lock(&self.waiting);
            if let Some(group) = waiting.get_mut(path) {
                group.jobs.push((mission_id.clone(), tx));
                None
            } else {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let jobs = vec![(mission_id.clone(), tx)];
                waiting.insert(path.to_path_buf(), Group { id, jobs });
                Some(id)
            }
        };
        if let Some(id) = started {
            // A few turns of the scheduler let the session's other jobs,
            // started in the same breath, join before the read begins.
            for _ in 0..GATHER_TURNS {
                tokio::task::yield_now().await;
            }
            let run = Run {
                rereads: Arc::clone(self),
                path: path.to_path_buf(),
                id,
            };
            // Detached: the answers come back through the channels.
            drop(tokio::task::spawn_blocking(move || run.run()));
        }
        rx.await
            .map_err(|_| Error::Message("re-reading the session failed".into()))
    }

    /// Take group `id` of `path` out of the waiting map (a later group of
    /// the same path stays).
    fn take(&self, path: &Path, id: u64) -> Option<Group> {
        let mut waiting = lock(&self.waiting);
        match waiting.get(path) {
            Some(group) if group.id == id => waiting.remove(path),
            _ => None,
        }
    }
}

impl Rereads {
    /// The session as `claim`'s re-read finds it: `None` when it is gone
    /// (or not a session a dispatch can use); the error, and whether it is
    /// new for the file, when it cannot be read.
    fn read(&self, claim: &Claim, path: &Path) -> std::result::Result<Option<Arc<Value>>, Reread> {
        match claim.reread(path) {
            Ok(session) => Ok(Some(session)),
            Err(Unreadable::Io(e)) => Err(self.unreadable(path, &e)),
            // Gone, too large or not JSON: the scan of the file says so.
            Err(_) => Ok(None),
        }
    }

    /// What a read error of `path` is to a job.
    fn unreadable(&self, path: &Path, e: &std::io::Error) -> Reread {
        let error = e.to_string();
        let short = is_shortage(e);
        let first = !short && lock(&self.logged).insert((path.to_path_buf(), error.clone()));
        Reread::Unreadable {
            error,
            first,
            short,
        }
    }
}

/// One group's re-read, run on the blocking pool. Dropped without running
/// (the runtime shutting down), it drops the group, so its jobs get an
/// error instead of waiting forever.
struct Run {
    rereads: Arc<Rereads>,
    path: PathBuf,
    id: u64,
}

impl Run {
    fn run(self) {
        let Some(group) = self.rereads.take(&self.path, self.id) else {
            return;
        };
        let claims = &self.rereads.claims;
        let claimed = match (0..group.jobs.len())
            .map(|_| claims.try_claim(&self.path))
            .collect::<std::io::Result<Vec<Option<Claim>>>>()
        {
            Ok(claimed) => claimed,
            Err(e) => {
                // Nothing claimed, nothing read: every job looks again.
                let unreadable = self.rereads.unreadable(&self.path, &e);
                for (_, reply) in group.jobs {
                    let _ = reply.send(Some((claims.unclaimed(), unreadable.clone())));
                }
                return;
            }
        };
        let claim = claimed.iter().flatten().next();
        if claim.is_some() && self.rereads.owed_loaded.unread(&self.path) {
            for ((_, reply), claim) in group.jobs.into_iter().zip(claimed) {
                let _ = reply.send(claim.map(|claim| (claim, Reread::Owed)));
            }
            return;
        }
        let read = claim.map(|claim| self.rereads.read(claim, &self.path));
        for ((mission_id, reply), claim) in group.jobs.into_iter().zip(claimed) {
            let answer = claim.map(|claim| {
                let found = match &read {
                    Some(Err(unreadable)) => unreadable.clone(),
                    Some(Ok(session)) => find(session.as_deref(), &mission_id),
                    None => find(None, &mission_id),
                };
                (claim, found)
            });
            let _ = reply.send(answer);
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // After `run` this finds nothing of its own to take.
        drop(self.rereads.take(&self.path, self.id));
    }
}

/// What `session` (`None`: gone or unreadable) says of the mission `mission_id`.
fn find(session: Option<&Value>, mission_id: &Value) -> Reread {
    let mission = session
        .map(session::missions)
        .and_then(|ms| ms.iter().find(|m| m.get("id") == Some(mission_id)));
    match mission {
        Some(m) if m.get("status").and_then(Value::as_str) == Some("queued") => {
            Reread::Queued(m.clone())
        }
        Some(m) => Reread::Not(m.get("status").cloned().unwrap_or(Value::Null)),
        None => Reread::Not(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, status: &str) {
        let text = format!(
            r#"{{"missions":[{{"id":"a","status":"{status}"}},{{"id":"b","status":"queued"}}]}}"#
        );
        std::fs::write(path, text).expect("write");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_asking_together_share_one_reread_and_each_gets_its_mission() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.json");
        write(&path, "queued");
        let rereads = Arc::new(Rereads::default());
        let ids = [Value::from("a"), Value::from("b"), Value::from("gone")];
        let answers = futures_join(&rereads, &path, &ids).await;
        let found: Vec<_> = answers
            .iter()
            .map(|a| match a {
                Some((_, Reread::Queued(m))) => format!("queued {}", m["id"]),
                Some((_, Reread::Not(s))) => format!("not {s}"),
                Some((_, Reread::Unreadable { error, .. })) => format!("unreadable {error}"),
                Some((_, Reread::Owed)) => "owed".into(),
                None => "unclaimed".into(),
            })
            .collect();
        assert_eq!(found, [r#"queued "a""#, r#"queued "b""#, "not null"]);
        assert!(lock(&rereads.waiting).is_empty(), "a group was left behind");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reread_asked_for_after_a_change_sees_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.json");
        write(&path, "queued");
        let rereads = Arc::new(Rereads::default());
        let first = rereads
            .claim_and_reread(&path, &Value::from("a"))
            .await
            .expect("reread");
        assert!(matches!(first, Some((_, Reread::Queued(_)))));
        // Same length, in place, while the claim is still held.
        write(&path, "paused");
        let second = rereads
            .claim_and_reread(&path, &Value::from("a"))
            .await
            .expect("reread");
        assert!(matches!(second, Some((_, Reread::Not(ref s))) if s == "paused"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_another_bridge_holds_is_not_reread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.json");
        write(&path, "queued");
        let other = Arc::new(Rereads::default());
        let held = other
            .claim_and_reread(&path, &Value::from("a"))
            .await
            .expect("reread");
        assert!(held.is_some());
        let ours = Arc::new(Rereads::default());
        let answer = ours
            .claim_and_reread(&path, &Value::from("b"))
            .await
            .expect("reread");
        assert!(answer.is_none(), "claimed a session another bridge holds");
        drop(held);
        let answer = ours
            .claim_and_reread(&path, &Value::from("b"))
            .await
            .expect("reread");
        assert!(answer.is_some(), "the claim was not released");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_that_cannot_be_read_is_not_a_mission_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        // There, but reading it fails (EISDIR).
        let path = dir.path().join("session.json");
        std::fs::create_dir(&path).expect("mkdir");
        let rereads = Arc::new(Rereads::default());
        let id = Value::from("a");
        let first = rereads.claim_and_reread(&path, &id).await.expect("reread");
        assert!(
            matches!(first, Some((_, Reread::Unreadable { first: true, .. }))),
            "a read error was taken for a decision"
        );
        let again = rereads.claim_and_reread(&path, &id).await.expect("reread");
        assert!(
            matches!(again, Some((_, Reread::Unreadable { first: false, .. }))),
            "the same error is new again"
        );
        std::fs::remove_dir(&path).expect("rmdir");
        write(&path, "queued");
        let read = rereads.claim_and_reread(&path, &id).await.expect("reread");
        assert!(matches!(read, Some((_, Reread::Queued(_)))));
        // Failing again after a good read: not logged again.
        std::fs::remove_file(&path).expect("rm");
        std::fs::create_dir(&path).expect("mkdir");
        let later = rereads.claim_and_reread(&path, &id).await.expect("reread");
        assert!(matches!(
            later,
            Some((_, Reread::Unreadable { first: false, .. }))
        ));
    }

    /// Ask for every id at once, as a sweep's jobs do.
    async fn futures_join(rereads: &Arc<Rereads>, path: &Path, ids: &[Value]) -> Vec<Answer> {
        let tasks: Vec<_> = ids
            .iter()
            .map(|id| {
                let (rereads, path, id) = (Arc::clone(rereads), path.to_path_buf(), id.clone());
                tokio::spawn(async move { rereads.claim_and_reread(&path, &id).await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("join").expect("reread"));
        }
        answers
    }
}
