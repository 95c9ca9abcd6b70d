//! The status writer: apply `{missionId, status, patch?, transitionFrom?}`
//! updates to a session file, serialised FIFO per path in this process
//! (by [`path_queue`]).

use super::concurrent_update::{self, Updated};
use super::mission::TERMINAL;
pub(crate) use super::mission::{Match, StatusUpdate};
use super::path_queue;
use super::session::Unreadable;
use crate::error::{Error, Result};
use crate::js_json::truthy;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

#[cfg(test)]
/// What `applyStatusUpdate` did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum UpdateOutcome {
    MissingSession,
    MissingMission,
    /// `transitionFrom` did not match; nothing was written.
    Stale(Value),
    Updated(Value),
}

#[cfg(test)]
impl UpdateOutcome {
    pub(crate) fn to_json(&self) -> Value {
        match self {
            UpdateOutcome::MissingSession => serde_json::json!({"outcome": "missing-session"}),
            UpdateOutcome::MissingMission => serde_json::json!({"outcome": "missing-mission"}),
            UpdateOutcome::Stale(session) => {
                serde_json::json!({"outcome": "stale", "session": session})
            }
            UpdateOutcome::Updated(session) => {
                serde_json::json!({"outcome": "updated", "session": session})
            }
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            UpdateOutcome::MissingSession => "missing-session",
            UpdateOutcome::MissingMission => "missing-mission",
            UpdateOutcome::Stale(_) => "stale",
            UpdateOutcome::Updated(_) => "updated",
        }
    }
}

/// What became of one update of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateResult {
    /// Merged into its mission.
    Applied,
    /// No mission has its id.
    MissingMission,
    /// `transitionFrom` did not match (or the mission had ended, §9.1).
    Stale,
    /// The file held no session.
    MissingSession,
}

/// What `applyStatusUpdatesBatched` did, per update.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchOutcome {
    pub session_found: bool,
    pub applied: Vec<Value>,
    pub missing: Vec<Value>,
    /// Per update, in order: what happened to it.
    pub each: Vec<UpdateResult>,
    /// Per update, in order: the index of the mission it found, if any.
    pub index: Vec<Option<usize>>,
    /// Per update, in order: for one applied, its mission as the file held
    /// it before this batch (what another writer that reverts it puts back).
    pub before: Vec<Option<Value>>,
}

impl BatchOutcome {
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> Value {
        serde_json::json!({
            "outcome": if self.session_found { "updated" } else { "missing-session" },
            "applied": self.applied,
            "missing": self.missing,
        })
    }
}

/// Queue `updates` for `path`: jobs on one path run one at a time, in the
/// order of this call (which is why it is not async: the place in the queue
/// is taken when it is called). Needs a tokio runtime context.
pub(crate) fn enqueue_batch(
    path: PathBuf,
    updates: Vec<StatusUpdate>,
    keep_source: bool,
    stop: Option<CancellationToken>,
) -> oneshot::Receiver<Result<Batched>> {
    let (tx, rx) = oneshot::channel();
    let job_path = path.clone();
    path_queue::enqueue_job(path, move || {
        let _ = tx.send(apply_now(&job_path, &updates, keep_source, stop.as_ref()));
    });
    rx
}

#[cfg(test)]
/// `applyStatusUpdate(path, update)`.
pub(crate) async fn apply_status_update(
    path: &Path,
    update: StatusUpdate,
) -> Result<UpdateOutcome> {
    Ok(apply_status_updates_batched(path, vec![update])
        .await?
        .into())
}

#[cfg(test)]
impl From<Batched> for UpdateOutcome {
    /// The outcome of a batch of one.
    fn from(batch: Batched) -> Self {
        match (batch.session, batch.outcome.each.first().copied()) {
            (None, _) => UpdateOutcome::MissingSession,
            (Some(_), Some(UpdateResult::MissingMission)) => UpdateOutcome::MissingMission,
            (Some(session), Some(UpdateResult::Stale)) => UpdateOutcome::Stale(session),
            (Some(session), _) => UpdateOutcome::Updated(session),
        }
    }
}

/// The result of a batch together with the session as it now is.
pub(crate) struct Batched {
    pub outcome: BatchOutcome,
    pub session: Option<Value>,
    /// The file's text the updates were applied to, when they were applied
    /// to it alone (no other writer's change merged in on the way), and only
    /// when asked for (`keep_source`).
    pub source: Option<Vec<u8>>,
    /// The file was there but did not parse (a writer may be mid-write):
    /// reported as a missing session, as the original does, but worth a retry.
    pub unreadable: bool,
    /// The file is there but reading it failed (out of descriptors, EIO,
    /// EISDIR): a missing session to the original's API, but nothing was
    /// learnt about the session, so the tailer's write-back tries again.
    pub read_error: Option<std::io::Error>,
}

#[cfg(test)]
/// `applyStatusUpdatesBatched(path, updates)`: one read, every update in
/// order (a stale one skipped), one write if anything was applied.
pub(crate) async fn apply_status_updates_batched(
    path: &Path,
    updates: Vec<StatusUpdate>,
) -> Result<Batched> {
    apply_status_updates_until(path, updates, None).await
}

/// `applyStatusUpdatesBatched(path, updates)`: one read, every update in
/// order (a stale one skipped), one write if anything was applied. A file
/// another writer keeps changing is given up on once `stop` is cancelled.
pub(crate) async fn apply_status_updates_until(
    path: &Path,
    updates: Vec<StatusUpdate>,
    stop: Option<CancellationToken>,
) -> Result<Batched> {
    match enqueue_batch(path.to_path_buf(), updates, false, stop).await {
        Ok(result) => result,
        Err(_) => Err(Error::Message("status writer job was dropped".into())),
    }
}

/// The read-modify-write itself; the caller holds the path's turn. Other
/// processes' writes are kept (see [`concurrent_update`]).
fn apply_now(
    path: &Path,
    updates: &[StatusUpdate],
    keep_source: bool,
    stop: Option<&CancellationToken>,
) -> Result<Batched> {
    let missing_session = |unreadable: bool| Batched {
        outcome: BatchOutcome {
            session_found: false,
            applied: Vec::new(),
            missing: updates.iter().map(|u| u.mission_id.clone()).collect(),
            each: vec![UpdateResult::MissingSession; updates.len()],
            index: vec![None; updates.len()],
            before: vec![None; updates.len()],
        },
        session: None,
        source: None,
        unreadable,
        read_error: None,
    };
    let updated = concurrent_update::update(path, keep_source, stop, |session| {
        // As the original: a file that holds no session (missing, not JSON,
        // or a falsy value such as `null`) is a missing session.
        if !truthy(session) {
            return (false, None);
        }
        let outcome = apply_all(session, updates);
        (!outcome.applied.is_empty(), Some(outcome))
    })?;
    match updated {
        // As the original's readSession: a file that cannot be read (missing,
        // a directory, no permission) or parsed is a missing session.
        Updated::Unreadable(Unreadable::Io(e)) => Ok(Batched {
            read_error: Some(e),
            ..missing_session(false)
        }),
        Updated::Unreadable(e @ (Unreadable::Missing | Unreadable::NotJson(_))) => {
            Ok(missing_session(matches!(e, Unreadable::NotJson(_))))
        }
        Updated::Unreadable(e) => Err(Error::Message(format!(
            "cannot read session {}: {e}",
            path.display()
        ))),
        Updated::Done { result: None, .. } => Ok(missing_session(false)),
        Updated::Done {
            session,
            source,
            result: Some(outcome),
            aftercheck,
        } => {
            if let Some(check) = aftercheck {
                check.schedule(path);
            }
            Ok(Batched {
                outcome,
                session: Some(session),
                source,
                unreadable: false,
                read_error: None,
            })
        }
    }
}

/// Every update in order, on the in-memory session.
fn apply_all(session: &mut Value, updates: &[StatusUpdate]) -> BatchOutcome {
    let mut outcome = BatchOutcome {
        session_found: true,
        applied: Vec::new(),
        missing: Vec::new(),
        each: Vec::new(),
        index: Vec::new(),
        before: Vec::new(),
    };
    let mut undefined = Undefined::default();
    let mut ids = Ids::default();
    // Which update first replaced each mission: its `before` is the mission
    // as the file held it (moved, not copied); a later one copies that.
    let mut first_replaced: HashMap<usize, usize> = HashMap::new();
    for update in updates {
        let (what, index, replaced) = apply_with(session, update, &mut undefined, &mut ids);
        let before = match (index, replaced) {
            (Some(i), Some(old)) => {
                if let Some(&first) = first_replaced.get(&i) {
                    outcome.before[first].clone()
                } else {
                    first_replaced.insert(i, outcome.before.len());
                    Some(old)
                }
            }
            _ => None,
        };
        outcome.index.push(index);
        outcome.before.push(before);
        match what {
            UpdateResult::Applied => outcome.applied.push(update.mission_id.clone()),
            UpdateResult::MissingMission => outcome.missing.push(update.mission_id.clone()),
            UpdateResult::Stale | UpdateResult::MissingSession => {}
        }
        outcome.each.push(what);
    }
    undefined.drop_from(session);
    outcome
}

#[cfg(test)]
/// Apply one update to the in-memory session, as the original does with
/// `missions[i] = {...current, ...patch, status}`: what became of it, and
/// the index of the mission found.
pub(crate) fn apply_one(
    session: &mut Value,
    update: &StatusUpdate,
) -> (UpdateResult, Option<usize>) {
    let mut undefined = Undefined::default();
    let (result, index, _) = apply_with(session, update, &mut undefined, &mut Ids::default());
    undefined.drop_from(session);
    (result, index)
}

/// Sessions with fewer missions than this are searched in order: an index
/// costs more than it saves there.
const INDEX_FROM: usize = 16;

/// The missions of a session by string id (the first of each), built at the
/// first look-up of a batch: a batch of events for a large session finds
/// each mission at once instead of walking the list once per update. Let
/// go whenever an update touches an `id`.
#[derive(Default)]
struct Ids(Option<HashMap<String, usize>>);

impl Ids {
    /// The first mission of `missions` whose `id` is the string `id` (an
    /// object's `id`: no other mission has one to match).
    fn find(&mut self, missions: &[Value], id: &str) -> Option<usize> {
        let index = self.0.get_or_insert_with(|| {
            let mut index = HashMap::with_capacity(missions.len());
            for (i, mission) in missions.iter().enumerate() {
                if let Some(id) = mission.get("id").and_then(Value::as_str) {
                    index.entry(id.to_owned()).or_insert(i);
                }
            }
            index
        });
        index.get(id).copied()
    }

    /// `update` may change an `id`: look-ups start again.
    fn changed_by(&mut self, update: &StatusUpdate) {
        let touches = |key: &str| key == "id";
        if update
            .patch
            .as_ref()
            .is_some_and(|p| p.keys().any(|k| touches(k)))
            || update.removed.iter().any(|k| touches(k))
        {
            self.0 = None;
        }
    }
}

/// Fields of missions that hold `undefined` in the original's memory during
/// a batch: they keep their place (as `null` here) until the batch is
/// written, when `JSON.stringify` leaves them out; until then `m.id` and
/// `m.status` read them as `undefined`.
#[derive(Default)]
struct Undefined(HashMap<usize, Vec<String>>);

impl Undefined {
    fn holds(&self, index: usize, key: &str) -> bool {
        self.0
            .get(&index)
            .is_some_and(|keys| keys.iter().any(|k| k == key))
    }

    /// `mission[key]` as JS reads it.
    fn get<'a>(&self, index: usize, mission: &'a Value, key: &str) -> Option<&'a Value> {
        if self.holds(index, key) {
            None
        } else {
            mission.get(key)
        }
    }

    fn drop_from(self, session: &mut Value) {
        let Some(missions) = session.get_mut("missions").and_then(Value::as_array_mut) else {
            return;
        };
        for (index, keys) in self.0 {
            if let Some(Value::Object(mission)) = missions.get_mut(index) {
                for key in keys {
                    mission.shift_remove(&key);
                }
            }
        }
    }
}

fn apply_with(
    session: &mut Value,
    update: &StatusUpdate,
    undefined: &mut Undefined,
    ids: &mut Ids,
) -> (UpdateResult, Option<usize>, Option<Value>) {
    let Some(missions) = session.get_mut("missions").and_then(Value::as_array_mut) else {
        return (UpdateResult::MissingMission, None, None);
    };
    let indexed = match (&update.id_match, update.mission_id.as_str()) {
        // An `id` held `undefined` in this batch was touched: no index then.
        (Match::Equal, Some(id)) if missions.len() >= INDEX_FROM => Some(ids.find(missions, id)),
        _ => None,
    };
    let found = indexed.unwrap_or_else(|| {
        missions.iter().enumerate().position(|(i, m)| {
            truthy(m)
                && match update.id_match {
                    Match::Equal => undefined.get(i, m, "id") == Some(&update.mission_id),
                    Match::Absent => undefined.get(i, m, "id").is_none(),
                    Match::Never => false,
                }
        })
    });
    ids.changed_by(update);
    let Some(index) = found else {
        return (UpdateResult::MissingMission, None, None);
    };
    let current = &missions[index];
    let status = undefined.get(index, current, "status");
    if let Some(from) = update.transition_from.as_ref().filter(|f| truthy(f)) {
        let same = update.from_match == Match::Equal && status == Some(from);
        if !same {
            return (UpdateResult::Stale, Some(index), None);
        }
    }
    let status = status.and_then(Value::as_str).unwrap_or_default();
    if update.unless_terminal && TERMINAL.contains(&status) {
        return (UpdateResult::Stale, Some(index), None);
    }
    let mut mission = match &missions[index] {
        Value::Object(map) => map.clone(),
        other => spread(other),
    };
    let mut still_undefined = undefined.0.remove(&index).unwrap_or_default();
    if let Some(patch) = &update.patch {
        for (k, v) in patch {
            mission.insert(k.clone(), v.clone());
            still_undefined.retain(|u| u != k);
        }
    }
    mission.insert("status".into(), update.status.clone());
    still_undefined.retain(|u| u != "status");
    still_undefined.extend(update.removed.iter().cloned());
    if !still_undefined.is_empty() {
        undefined.0.insert(index, still_undefined);
    }
    let replaced = std::mem::replace(&mut missions[index], Value::Object(mission));
    (UpdateResult::Applied, Some(index), Some(replaced))
}

/// `{...value}` for a value that is not an object: an array's or a
/// string's indices (a string's by UTF-16 unit), nothing for the rest.
pub(crate) fn spread(value: &Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map.clone(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v.clone()))
            .collect(),
        Value::String(s) => crate::js_json::utf16_units(s)
            .into_iter()
            .enumerate()
            .map(|(i, unit)| (i.to_string(), Value::String(unit)))
            .collect(),
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs;

    /// A large session finds missions through an index: the first of
    /// duplicated ids, a mission under an id a patch gave it in the same
    /// batch, none under the id it had, and none under an id removed.
    #[test]
    fn a_large_batch_finds_missions_as_the_list_does() {
        let mut missions: Vec<Value> = (0..40)
            .map(|i| json!({"id": format!("m-{i}"), "status": "queued"}))
            .collect();
        missions[30] = json!({"id": "m-5", "status": "queued", "dup": true});
        missions[31] = json!("not an object");
        let mut session = json!({"missions": missions});
        let rename = StatusUpdate {
            patch: json!({"id": "m-new"}).as_object().cloned(),
            ..update("m-7", "running", None)
        };
        let removal = StatusUpdate {
            patch: json!({"id": null}).as_object().cloned(),
            removed: vec!["id".into()],
            ..update("m-9", "running", None)
        };
        let batch = [
            update("m-5", "running", None),
            rename,
            update("m-new", "done", Some("running")),
            update("m-7", "done", None),
            removal,
            update("m-9", "done", None),
            update("m-39", "running", None),
            update("gone", "running", None),
        ];
        let outcome = apply_all(&mut session, &batch);
        assert_eq!(
            outcome.index,
            [
                Some(5),
                Some(7),
                Some(7),
                None,
                Some(9),
                None,
                Some(39),
                None
            ]
        );
        let missions = session["missions"].as_array().cloned().unwrap_or_default();
        assert_eq!(missions[5]["status"], "running", "the first m-5");
        assert_eq!(missions[30]["status"], "queued", "not the duplicate");
        assert_eq!(missions[7]["id"], "m-new");
        assert_eq!(missions[7]["status"], "done");
        assert!(
            missions[9].get("id").is_none(),
            "the removed id is left out"
        );
    }

    fn update(id: &str, status: &str, from: Option<&str>) -> StatusUpdate {
        StatusUpdate {
            mission_id: json!(id),
            status: json!(status),
            patch: Some(
                json!({"note": status})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
            transition_from: from.map(|f| json!(f)),
            ..StatusUpdate::default()
        }
    }

    fn session_file(dir: &Path) -> PathBuf {
        let path = dir.join("session.json");
        fs::write(
            &path,
            r#"{"id":"s","missions":[{"id":"a","status":"queued","x":1},{"id":"b","status":"running"}],"extra":{"k":[]}}"#,
        )
        .expect("write");
        path
    }

    #[test]
    fn each_applied_update_says_what_the_file_held_before_the_batch() {
        let mut session = json!({"id": "s", "missions": [{"id": "a", "status": "queued"}, {"id": "b", "status": "running"}]});
        let outcome = apply_all(
            &mut session,
            &[
                update("a", "assigned", None),
                update("b", "done", Some("assigned")),
                update("a", "running", Some("assigned")),
            ],
        );
        let as_read = json!({"id": "a", "status": "queued"});
        assert_eq!(
            outcome.before,
            [Some(as_read.clone()), None, Some(as_read)],
            "a stale update has none; a second update of a mission has the file's"
        );
    }

    #[tokio::test]
    async fn updates_merge_patch_then_status() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = session_file(dir.path());
        let outcome = apply_status_update(&path, update("a", "assigned", Some("queued")))
            .await
            .expect("apply");
        let UpdateOutcome::Updated(session) = outcome else {
            panic!("not updated: {outcome:?}")
        };
        assert_eq!(
            session["missions"][0],
            json!({"id": "a", "status": "assigned", "x": 1, "note": "assigned"})
        );
        let on_disk = fs::read_to_string(&path).expect("read");
        assert_eq!(
            on_disk,
            crate::js_json::to_pretty_string(&session).expect("ser")
        );
        assert_eq!(session["extra"], json!({"k": []}));
    }

    #[tokio::test]
    async fn stale_missing_and_absent_sessions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = session_file(dir.path());
        let before = fs::read(&path).expect("read");
        let stale = apply_status_update(&path, update("b", "running", Some("assigned")))
            .await
            .expect("apply");
        assert_eq!(stale.name(), "stale");
        assert_eq!(fs::read(&path).expect("read"), before, "nothing written");
        let missing = apply_status_update(&path, update("zz", "done", None))
            .await
            .expect("apply");
        assert_eq!(missing, UpdateOutcome::MissingMission);
        let gone = apply_status_update(&dir.path().join("nope.json"), update("a", "done", None))
            .await
            .expect("apply");
        assert_eq!(gone, UpdateOutcome::MissingSession);
    }

    #[tokio::test]
    async fn batches_write_once_and_report_each() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = session_file(dir.path());
        let batch = apply_status_updates_batched(
            &path,
            vec![
                update("a", "assigned", Some("queued")),
                update("b", "done", Some("queued")),
                update("q", "done", None),
                update("a", "running", Some("assigned")),
            ],
        )
        .await
        .expect("batch");
        assert_eq!(
            batch.outcome.to_json(),
            json!({"outcome": "updated", "applied": ["a", "a"], "missing": ["q"]})
        );
        assert_eq!(
            batch.session.expect("session")["missions"][0]["status"],
            "running"
        );
        let absent = apply_status_updates_batched(
            &dir.path().join("x.json"),
            vec![update("a", "done", None)],
        )
        .await
        .expect("batch");
        assert_eq!(
            absent.outcome.to_json(),
            json!({"outcome": "missing-session", "applied": [], "missing": ["a"]})
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_updates_to_one_path_never_lose_each_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.json");
        let missions: Vec<_> = (0..40)
            .map(|i| json!({"id": format!("m{i}"), "status": "queued"}))
            .collect();
        fs::write(&path, json!({"id": "s", "missions": missions}).to_string()).expect("write");
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let path = path.clone();
                tokio::spawn(async move {
                    apply_status_update(&path, update(&format!("m{i}"), "assigned", Some("queued")))
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.expect("join").expect("apply").name(), "updated");
        }
        let session: Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
        assert!(session["missions"]
            .as_array()
            .expect("arr")
            .iter()
            .all(|m| m["status"] == "assigned"));
    }
}
