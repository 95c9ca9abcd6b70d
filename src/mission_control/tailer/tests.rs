use super::*;
use crate::mission_control::log::Recorder;
use crate::mission_control::mission::StatusUpdate;
use crate::mission_control::session;
use crate::mission_control::testing::Scripted;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::time::Instant;
use writeback::Writeback;

fn mission(id: &str, status: &str) -> Value {
    json!({"id": id, "objective": format!("do {id}"), "status": status, "priority": "normal", "mode": "direct"})
}

#[allow(clippy::needless_pass_by_value)] // a test helper, called with temporaries
fn write_session(root: &Path, dir: &str, id: &str, missions: Vec<Value>) -> PathBuf {
    let path = root.join("sessions").join(dir).join("session.json");
    let mut doc = json!({"id": id, "name": dir, "state": "active", "missions": missions});
    session::write_session(&path, &mut doc).expect("write session");
    path
}

fn statuses(path: &Path) -> Vec<String> {
    let doc = session::load_session(path).expect("session");
    session::missions(&doc)
        .iter()
        .map(|m| m["status"].as_str().unwrap_or("?").to_owned())
        .collect()
}

struct Running {
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<Result<usize>>,
    log: Arc<Recorder>,
}

async fn start(
    root: &Path,
    transport: Arc<dyn Transport>,
    tweak: impl FnOnce(&mut TailerConfig),
) -> Running {
    start_with(root, transport, None, tweak).await
}

/// As [`start`], with executor streams the test runs itself.
async fn start_with(
    root: &Path,
    transport: Arc<dyn Transport>,
    external: Option<ExternalStreams>,
    tweak: impl FnOnce(&mut TailerConfig),
) -> Running {
    let mut config = TailerConfig {
        watch_dir: root.to_path_buf(),
        retry_base_ms: 5.0,
        max_attempts: 2,
        ..TailerConfig::default()
    };
    tweak(&mut config);
    let log = Arc::new(Recorder::default());
    let stop = CancellationToken::new();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(run(
        config,
        transport,
        log.clone(),
        stop.clone(),
        external,
        move || {
            let _ = ready_tx.send(());
        },
    ));
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .expect("ready in time")
        .expect("ready");
    Running { stop, handle, log }
}

impl Running {
    async fn stop(self) -> Arc<Recorder> {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("stops")
            .expect("join")
            .expect("run");
        self.log
    }
}

/// A serve that accepts every mission for executor `ex`, at once.
fn accepting() -> Arc<Scripted> {
    Arc::new(Scripted::always(
        202,
        r#"{"executor_id":"ex"}"#,
        Duration::ZERO,
    ))
}

/// Executor streams the test feeds itself: the way in, and the streams for
/// [`start_with`], which note each executor asked for in `asked`.
fn streams(asked: Arc<std::sync::Mutex<Vec<String>>>) -> (Inbox, ExternalStreams) {
    let (tx, rx) = inbox();
    let external = ExternalStreams {
        subscribe: Box::new(move |id: &str, _token: Option<String>| {
            asked.lock().expect("asked").push(id.to_owned());
        }),
        inputs: rx,
        room: Box::new(|| {}),
    };
    (tx, external)
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_initial_sweep_dispatches_in_fifo_order_before_ready() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write_session(
        dir.path(),
        "a",
        "sa",
        vec![mission("m-b-1", "queued"), mission("m-1-1", "done")],
    );
    let b = write_session(
        dir.path(),
        "b",
        "sb",
        vec![mission("m-a-1", "queued"), mission("m-c-1", "queued")],
    );
    let transport = accepting();
    let running = start(dir.path(), transport.clone(), |c| c.max_inflight = 1).await;
    // Ready means done: no waiting needed.
    assert_eq!(statuses(&a), ["assigned", "done"]);
    assert_eq!(statuses(&b), ["assigned", "assigned"]);
    let order: Vec<_> = transport
        .seen()
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).expect("json")["mission_id"].clone())
        .collect();
    assert_eq!(order, [json!("m-a-1"), json!("m-b-1"), json!("m-c-1")]);
    let doc = session::load_session(&a).expect("a");
    assert_eq!(doc["missions"][0]["executorId"], "ex");
    assert_eq!(doc["missions"][0]["dispatchAttempts"], 1);
    let log = running.stop().await;
    let messages = log.messages();
    assert_eq!(
        messages.first().map(String::as_str),
        Some("queue-tailer:start")
    );
    assert_eq!(
        messages.last().map(String::as_str),
        Some("queue-tailer:stop")
    );
    assert_eq!(
        messages
            .iter()
            .filter(|m| *m == "queue-tailer:dispatched")
            .count(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_missions_are_dispatched_by_rename_and_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_session(dir.path(), "a", "sa", vec![]);
    let transport = accepting();
    let running = start(dir.path(), transport.clone(), |_| {}).await;
    write_session(dir.path(), "a", "sa", vec![mission("m-1-a", "queued")]);
    eventually("the renamed-in mission", || statuses(&path) == ["assigned"]).await;
    let mut doc = session::load_session(&path).expect("doc");
    doc["missions"]
        .as_array_mut()
        .expect("arr")
        .push(mission("m-2-a", "queued"));
    fs::write(&path, crate::js_json::to_pretty_string(&doc).expect("ser")).expect("in place");
    eventually("the in-place mission", || {
        statuses(&path) == ["assigned", "assigned"]
    })
    .await;
    // A new session directory is found too.
    let other = write_session(dir.path(), "b", "sb", vec![mission("m-3-a", "queued")]);
    eventually("the new session", || statuses(&other) == ["assigned"]).await;
    assert_eq!(transport.seen().len(), 3);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_only_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = "x".repeat(40);
    let path = write_session(
        dir.path(),
        "a",
        "sa",
        vec![json!({"id": "m-1", "objective": long, "status": "queued"})],
    );
    let transport = Arc::new(Scripted::new(vec![]));
    let running = start(dir.path(), transport.clone(), |c| {
        c.dry_run = true;
        c.aiwg_serve_url = "http://serve:1".into();
    })
    .await;
    let lines = running.log.lines();
    let would = lines
        .iter()
        .find(|(m, _)| m == "queue-tailer:would-dispatch")
        .expect("would-dispatch before ready");
    assert_eq!(
        would.1,
        json!({"missionId": "m-1", "sessionId": "sa", "endpoint": "http://serve:1/api/v1/sessions/sa/dispatch", "payloadDigest": format!("m-1:{}…", "x".repeat(32))})
    );
    running.stop().await;
    assert!(transport.seen().is_empty());
    assert_eq!(statuses(&path), ["queued"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_serve_leaves_missions_queued_and_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_session(dir.path(), "a", "sa", vec![mission("m-1", "queued")]);
    let transport = Arc::new(Scripted::new(vec![
        Err("refused"),
        Err("refused"),
        Ok((202, r#"{"executor_id":"ex"}"#)),
    ]));
    let running = start(dir.path(), transport.clone(), |_| {}).await;
    assert_eq!(statuses(&path), ["queued"], "deferred, not failed");
    assert!(running
        .log
        .messages()
        .contains(&"queue-tailer:dispatch-deferred".to_owned()));
    eventually("the retry", || statuses(&path) == ["assigned"]).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_answers_fail_the_mission() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_session(dir.path(), "a", "sa", vec![mission("m-1", "queued")]);
    let transport = Arc::new(Scripted::new(vec![Ok((
        404,
        r#"{"detail":"no such executor"}"#,
    ))]));
    let running = start(dir.path(), transport, |_| {}).await;
    let doc = session::load_session(&path).expect("doc");
    assert_eq!(doc["missions"][0]["status"], "failed");
    assert_eq!(doc["missions"][0]["failureReason"], "executor_not_found");
    assert_eq!(doc["missions"][0]["failureMessage"], "no such executor");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_drains_a_hung_dispatch_then_cuts_it_off_leaving_the_mission_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_session(dir.path(), "a", "sa", vec![]);
    let transport = Arc::new(Scripted::always(202, "{}", Duration::from_secs(60)));
    let running = start(dir.path(), transport.clone(), |_| {}).await;
    write_session(dir.path(), "a", "sa", vec![mission("m-1", "queued")]);
    eventually("the request", || !transport.seen().is_empty()).await;
    let started = Instant::now();
    let log = running.stop().await;
    assert!(
        started.elapsed() < DRAIN + Duration::from_secs(2),
        "stop took {:?}",
        started.elapsed()
    );
    assert_eq!(statuses(&path), ["queued"]);
    let stop_line = log
        .lines()
        .into_iter()
        .find(|(m, _)| m == "queue-tailer:stop")
        .expect("stop logged");
    assert_eq!(stop_line.1, json!({"drainedInflight": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_and_missions_are_logged_once_and_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write_session(
        dir.path(),
        "good",
        "sg",
        vec![
            json!({"id": "m-bad", "status": "queued"}),
            mission("m-ok", "queued"),
        ],
    );
    let bad = dir.path().join("sessions").join("bad").join("session.json");
    fs::create_dir_all(bad.parent().expect("dir")).expect("mkdir");
    fs::write(&bad, "{\"id\": \"half").expect("partial");
    let transport = accepting();
    let running = start(dir.path(), transport, |_| {}).await;
    assert_eq!(statuses(&good), ["queued", "assigned"]);
    let messages = running.log.messages();
    assert_eq!(
        messages
            .iter()
            .filter(|m| *m == "queue-tailer:session-unreadable")
            .count(),
        1
    );
    assert_eq!(
        messages
            .iter()
            .filter(|m| *m == "queue-tailer:skip-invalid-mission")
            .count(),
        1
    );
    // Once the writer finishes, the session is picked up.
    write_session(dir.path(), "bad", "sbad", vec![mission("m-late", "queued")]);
    eventually("the repaired session", || statuses(&bad) == ["assigned"]).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_finds_changes_without_a_watch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_session(dir.path(), "a", "sa", vec![]);
    let transport = accepting();
    let running = start(dir.path(), transport, |c| {
        c.polling = true;
        c.poll_interval = Duration::from_millis(20);
    })
    .await;
    write_session(dir.path(), "a", "sa", vec![mission("m-1", "queued")]);
    eventually("the polled mission", || statuses(&path) == ["assigned"]).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_back_waits_out_a_half_written_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_session(dir.path(), "a", "sa", vec![mission("m-1", "queued")]);
    let whole = fs::read_to_string(&path).expect("read");
    fs::write(&path, &whole[..whole.len() / 2]).expect("half");
    let tasks = TaskTracker::new();
    let log = crate::mission_control::log::silent();
    let descriptors = Arc::new(super::descriptors::Descriptors::new(Arc::clone(&log), 8));
    let writeback = Arc::new(Writeback::new(
        log,
        CancellationToken::new(),
        descriptors,
        Arc::default(),
    ));
    let update = StatusUpdate {
        mission_id: json!("m-1"),
        status: json!("assigned"),
        transition_from: Some(json!("queued")),
        ..StatusUpdate::default()
    };
    let reply = writeback.submit(&tasks, &path, update);
    tokio::time::sleep(Duration::from_millis(60)).await;
    fs::write(&path, &whole).expect("the in-place writer finishes");
    let written = tokio::time::timeout(Duration::from_secs(5), reply)
        .await
        .expect("in time")
        .expect("reply");
    assert_eq!(
        written,
        Ok(crate::mission_control::status::UpdateResult::Applied)
    );
    assert_eq!(statuses(&path), ["assigned"]);
}

/// A session file that is there but cannot be read (out of descriptors,
/// EIO; here a directory in its place, which reads as EISDIR) is not a
/// session gone: the outcome waits and lands once the file reads.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_back_that_cannot_read_the_file_tries_again_until_it_can() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_session(dir.path(), "a", "sa", vec![mission("m-1", "queued")]);
    let whole = fs::read_to_string(&path).expect("read");
    fs::remove_file(&path).expect("rm");
    fs::create_dir(&path).expect("a directory where the file was");
    let tasks = TaskTracker::new();
    let recorder = Arc::new(crate::mission_control::log::Recorder::default());
    let log: crate::mission_control::log::Logger = recorder.clone();
    let descriptors = Arc::new(super::descriptors::Descriptors::new(Arc::clone(&log), 8));
    let writeback = Arc::new(Writeback::new(
        log,
        CancellationToken::new(),
        descriptors,
        Arc::default(),
    ));
    let update = StatusUpdate {
        mission_id: json!("m-1"),
        status: json!("assigned"),
        transition_from: Some(json!("queued")),
        ..StatusUpdate::default()
    };
    let mut reply = writeback.submit(&tasks, &path, update);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut reply)
            .await
            .is_err(),
        "answered while the file could not be read"
    );
    fs::remove_dir(&path).expect("rmdir");
    fs::write(&path, &whole).expect("the file is back");
    let written = tokio::time::timeout(Duration::from_secs(5), reply)
        .await
        .expect("in time")
        .expect("reply");
    assert_eq!(
        written,
        Ok(crate::mission_control::status::UpdateResult::Applied)
    );
    assert_eq!(statuses(&path), ["assigned"]);
    let failed: Vec<_> = recorder
        .metas("queue-tailer:write-failed")
        .iter()
        .map(|meta| meta["code"].clone())
        .collect();
    assert_eq!(failed, [json!("EISDIR")], "logged once, by its code");
}

/// A write that has not landed when the bridge stops is saved beside the
/// session, and the next bridge makes it: the outcome with no second POST
/// (its mission is still as it was before the dispatch), the event under
/// the status rules; then the saved writes are forgotten.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_left_at_stop_are_saved_and_made_by_the_next_bridge() {
    use crate::mission_control::pending_writes;
    let dir = tempfile::tempdir().expect("tempdir");
    let queued = mission("m-1", "queued");
    let path = write_session(
        dir.path(),
        "a",
        "sa",
        vec![
            queued.clone(),
            json!({"id": "m-2", "objective": "x", "status": "assigned", "executorId": "ex"}),
            mission("m-3", "queued"),
        ],
    );
    let whole = fs::read_to_string(&path).expect("read");
    // The file cannot be read (EISDIR) until the bridge has stopped.
    fs::remove_file(&path).expect("rm");
    fs::create_dir(&path).expect("a directory where the file was");
    let tasks = TaskTracker::new();
    let recorder = Arc::new(Recorder::default());
    let log: crate::mission_control::log::Logger = recorder.clone();
    let stop = CancellationToken::new();
    let descriptors = Arc::new(super::descriptors::Descriptors::new(Arc::clone(&log), 8));
    let writeback = Arc::new(Writeback::new(
        log,
        stop.clone(),
        descriptors,
        Arc::default(),
    ));
    let outcome = StatusUpdate {
        mission_id: json!("m-1"),
        status: json!("assigned"),
        patch: json!({"executorId": "ex"}).as_object().cloned(),
        ..StatusUpdate::default()
    };
    let event = StatusUpdate {
        mission_id: json!("m-2"),
        status: json!("running"),
        unless_terminal: true,
        ..StatusUpdate::default()
    };
    let outcome_reply =
        writeback.submit_watching(&tasks, &path, outcome.clone(), Some(queued), None);
    let event_reply = writeback.submit(&tasks, &path, event);
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.cancel();
    for reply in [outcome_reply, event_reply] {
        let written = tokio::time::timeout(Duration::from_secs(5), reply)
            .await
            .expect("in time")
            .expect("reply");
        assert_eq!(written, Err(writeback::Unwritten::Saved));
    }
    assert_eq!(pending_writes::load(&path).expect("load").len(), 2);
    let saved = recorder.metas("queue-tailer:pending-saved");
    assert!(saved.iter().any(|meta| meta["updates"] == 2), "{saved:?}");

    fs::remove_dir(&path).expect("rmdir");
    fs::write(&path, &whole).expect("the file is back");
    let serve = accepting();
    let running = start(dir.path(), serve.clone(), |_| {}).await;
    eventually("the saved writes made", || {
        statuses(&path) == ["assigned", "running", "assigned"]
    })
    .await;
    eventually("the saved writes forgotten", || {
        !pending_writes::pending_path(&path).exists()
    })
    .await;
    let posted: Vec<_> = serve
        .seen()
        .iter()
        .map(|p| serde_json::from_str::<Value>(&p.body).expect("json")["mission_id"].clone())
        .collect();
    assert_eq!(posted, [json!("m-3")], "m-1 was not dispatched again");
    let log = running.stop().await;
    let loaded = log.metas("queue-tailer:pending-loaded");
    assert!(loaded.iter().any(|meta| meta["updates"] == 2), "{loaded:?}");
}

/// An outcome saved for a mission changed since its dispatch (queued again
/// with a new objective) is moot: the mission is a new request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_outcome_for_a_mission_changed_since_is_dropped() {
    use crate::mission_control::pending_writes::{self, PendingWrite};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_session(dir.path(), "a", "sa", vec![mission("m-1", "queued")]);
    let outcome = StatusUpdate {
        mission_id: json!("m-1"),
        status: json!("assigned"),
        ..StatusUpdate::default()
    };
    let before = json!({"id": "m-1", "objective": "the old objective", "status": "queued"});
    pending_writes::save(
        &path,
        &[PendingWrite {
            update: outcome,
            before: Some(before),
        }],
    )
    .expect("save");
    let serve = accepting();
    let running = start(dir.path(), serve.clone(), |_| {}).await;
    eventually("dispatched anew", || statuses(&path) == ["assigned"]).await;
    eventually("the saved outcome forgotten", || {
        !pending_writes::pending_path(&path).exists()
    })
    .await;
    assert_eq!(serve.seen().len(), 1, "the changed mission is dispatched");
    running.stop().await;
}

/// An outcome and the event that followed it, both owed by a stopped
/// bridge, are made in the order they were saved: the event's
/// `transitionFrom: 'assigned'` holds only after the outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owed_writes_are_made_in_the_order_they_were_saved() {
    use crate::mission_control::pending_writes::{self, PendingWrite};
    let dir = tempfile::tempdir().expect("tempdir");
    let queued = mission("m-1", "queued");
    let path = write_session(dir.path(), "a", "sa", vec![queued.clone()]);
    let outcome = StatusUpdate {
        mission_id: json!("m-1"),
        status: json!("assigned"),
        patch: json!({"executorId": "ex"}).as_object().cloned(),
        ..StatusUpdate::default()
    };
    let started = crate::mission_control::events::event_to_status_update(
        &json!({"event": "mission.started", "mission_id": "m-1", "ts": "2026-12-03T00:00:00Z"}),
    )
    .expect("an update");
    pending_writes::save(
        &path,
        &[
            PendingWrite {
                update: outcome,
                before: Some(queued),
            },
            PendingWrite {
                update: started,
                before: None,
            },
        ],
    )
    .expect("save");
    let serve = accepting();
    let running = start(dir.path(), serve.clone(), |_| {}).await;
    eventually("both made", || statuses(&path) == ["running"]).await;
    eventually("forgotten", || {
        !pending_writes::pending_path(&path).exists()
    })
    .await;
    assert!(serve.seen().is_empty(), "m-1 was dispatched again");
    running.stop().await;
}

/// What a bridge beside us saves at its stop for `m-1` (see `pending_writes`):
/// its outcome, `assigned` to `ex-other`, over `before`.
fn other_bridge_saves_outcome(path: &Path, before: Value) {
    use crate::mission_control::pending_writes::{self, PendingWrite};
    let update = StatusUpdate {
        mission_id: json!("m-1"),
        status: json!("assigned"),
        patch: json!({"executorId": "ex-other"}).as_object().cloned(),
        ..StatusUpdate::default()
    };
    let saved = PendingWrite {
        update,
        before: Some(before),
    };
    pending_writes::save(path, &[saved]).expect("save");
}

/// A bridge beside us holds `m-1`'s session and stops with its accepted
/// outcome unwritten: it saves it (`.session.json.pending`), then lets go
/// of its claim, while our dispatch of that mission waits for the claim.
/// Once the claim is free the saved outcome is written, and the mission is
/// not sent a second time. `tweak` sets our bridge up; `settle` is how
/// long our watch has to see the saved file before the claim is let go.
#[cfg(unix)]
async fn an_outcome_saved_under_another_claim(
    tweak: impl FnOnce(&mut TailerConfig),
    settle: Duration,
) {
    use crate::mission_control::pending_writes;
    let dir = tempfile::tempdir().expect("tempdir");
    let queued = mission("m-1", "queued");
    let path = write_session(dir.path(), "a", "sa", vec![queued.clone()]);
    // The other bridge's claim on the session (see `claims`).
    let claim = fs::File::open(path.parent().expect("dir")).expect("open dir");
    claim.try_lock().expect("claimed");
    let serve = accepting();
    let running = start(dir.path(), serve.clone(), tweak).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        serve.seen().is_empty(),
        "dispatched under another bridge's claim"
    );
    other_bridge_saves_outcome(&path, queued);
    tokio::time::sleep(settle).await;
    drop(claim);
    eventually("the saved outcome written", || {
        statuses(&path) == ["assigned"]
    })
    .await;
    eventually("forgotten", || {
        !pending_writes::pending_path(&path).exists()
    })
    .await;
    let doc = session::load_session(&path).expect("doc");
    assert_eq!(doc["missions"][0]["executorId"], "ex-other");
    assert!(serve.seen().is_empty(), "m-1 was POSTed again");
    running.stop().await;
}

/// Our watch sees the saved outcome before the claim is given back.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_another_bridge_saves_at_its_stop_is_written_not_posted_again() {
    an_outcome_saved_under_another_claim(|_| {}, Duration::from_millis(100)).await;
}

/// Nothing tells us of the saved outcome in time (no watch: polled once a
/// minute). The other bridge saves before it lets go of its claim, so our
/// dispatch finds the file under ours and takes it in instead of sending
/// it again.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_saved_beside_us_is_seen_under_the_claim_before_any_watch_event() {
    let no_watch = |c: &mut TailerConfig| {
        c.polling = true;
        c.poll_interval = Duration::from_secs(60);
    };
    an_outcome_saved_under_another_claim(no_watch, Duration::ZERO).await;
}

/// The same, with our dispatch of the mission queued behind another (one
/// slot) when the other bridge saves its outcome: that is written, and
/// the mission is not sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_dispatch_whose_outcome_another_bridge_saved_writes_it_instead() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_session(dir.path(), "a", "sa", vec![]);
    let serve = Arc::new(Scripted::always(
        202,
        r#"{"executor_id":"ex"}"#,
        Duration::from_millis(600),
    ));
    let running = start(dir.path(), serve.clone(), |c| c.max_inflight = 1).await;
    let owed = mission("m-1", "queued");
    write_session(
        dir.path(),
        "a",
        "sa",
        vec![mission("m-0", "queued"), owed.clone()],
    );
    // m-0 in flight, m-1 waiting for the slot.
    tokio::time::sleep(Duration::from_millis(200)).await;
    other_bridge_saves_outcome(&path, owed);
    eventually("both assigned", || {
        statuses(&path) == ["assigned", "assigned"]
    })
    .await;
    // A second POST of m-1 would have come by now (and be seen, not answered).
    tokio::time::sleep(Duration::from_millis(800)).await;
    running.stop().await;
    let posted: Vec<_> = serve
        .seen()
        .iter()
        .map(|p| serde_json::from_str::<Value>(&p.body).expect("json")["mission_id"].clone())
        .collect();
    assert_eq!(posted, [json!("m-0")], "m-1 was POSTed again");
    let doc = session::load_session(&path).expect("doc");
    assert_eq!(doc["missions"][1]["executorId"], "ex-other");
}

/// A lock-less writer that read the session before two events and wrote it
/// back after them undid both: both are written again, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_another_writer_undoes_is_written_again_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_session(
        dir.path(),
        "a",
        "sa",
        vec![json!({"id": "m-1", "objective": "x", "status": "assigned", "executorId": "ex"})],
    );
    let (tx, external) = streams(Arc::default());
    let transport: Arc<dyn Transport> = Arc::new(Scripted::new(vec![]));
    let running = start_with(dir.path(), transport, Some(external), |_| {}).await;
    let as_assigned = fs::read(&path).expect("read");
    for (event, status) in [
        ("mission.started", "running"),
        ("mission.completed", "done"),
    ] {
        assert!(tx.post(StreamInput::Event {
            executor_id: "ex".into(),
            event: json!({"event": event, "mission_id": "m-1", "ts": "2026-12-03T00:00:00Z"}),
        }));
        // Each its own write: the revert undoes two batches.
        eventually("the event written", || statuses(&path) == [status]).await;
    }
    fs::write(&path, &as_assigned).expect("revert");
    eventually("both written again", || statuses(&path) == ["done"]).await;
    let doc = session::load_session(&path).expect("doc");
    let m = &doc["missions"][0];
    assert_eq!(m["startedAt"], "2026-12-03T00:00:00Z", "{doc}");
    assert_eq!(m["completedAt"], "2026-12-03T00:00:00Z", "{doc}");
    let log = running.stop().await;
    let restored = log.metas("queue-tailer:event-restored");
    let order: Vec<_> = restored.iter().map(|meta| meta["status"].clone()).collect();
    assert_eq!(order, [json!("running"), json!("done")]);
}

/// A lock-less writer that puts a mission back exactly as it was before an
/// event we wrote (it read the file before our write) gets the event's
/// update written again: the executor will not send it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_another_writer_reverts_is_written_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_session(
        dir.path(),
        "a",
        "sa",
        vec![
            json!({"id": "m-1", "objective": "x", "status": "assigned", "executorId": "ex"}),
            json!({"id": "m-2", "objective": "y", "status": "assigned", "executorId": "ex"}),
        ],
    );
    let (tx, external) = streams(Arc::default());
    let transport: Arc<dyn Transport> = Arc::new(Scripted::new(vec![]));
    let running = start_with(dir.path(), transport, Some(external), |_| {}).await;
    let log = Arc::clone(&running.log);
    let as_assigned = fs::read(&path).expect("read");
    assert!(tx.post(StreamInput::Event {
        executor_id: "ex".into(),
        event: json!({"event": "mission.started", "mission_id": "m-1", "ts": "2026-12-03T00:00:00Z"}),
    }));
    eventually("the event written", || {
        statuses(&path) == ["running", "assigned"]
    })
    .await;
    let restored = || {
        log.messages()
            .iter()
            .filter(|m| *m == "queue-tailer:event-restored")
            .count()
    };
    for round in 1..=2 {
        // The other writer writes what it read before our write.
        fs::write(&path, &as_assigned).expect("revert");
        eventually("the reverted event written again", || {
            restored() == round && statuses(&path) == ["running", "assigned"]
        })
        .await;
    }
    let doc = session::load_session(&path).expect("doc");
    assert_eq!(
        doc["missions"][0]["startedAt"], "2026-12-03T00:00:00Z",
        "{doc}"
    );
    // A change of its own (m-2 edited by hand) is not a revert.
    let mut edited: Value = serde_json::from_slice(&as_assigned).expect("json");
    edited["missions"][1]["objective"] = json!("z");
    edited["missions"][0]["objective"] = json!("changed");
    fs::write(&path, serde_json::to_vec(&edited).expect("json")).expect("edit");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(statuses(&path), ["assigned", "assigned"]);
    assert_eq!(restored(), 2);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_fails_what_the_executor_lost_and_ignores_a_resync_without_its_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_session(
        dir.path(),
        "a",
        "sa",
        vec![
            json!({"id": "m-kept", "objective": "x", "status": "running", "executorId": "ex"}),
            json!({"id": "m-lost", "objective": "x", "status": "running", "executorId": "ex"}),
            json!({"id": "m-done", "objective": "x", "status": "done", "executorId": "ex"}),
        ],
    );
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, external) = streams(Arc::clone(&asked));
    let transport: Arc<dyn Transport> = Arc::new(Scripted::new(vec![]));
    let running = start_with(dir.path(), transport, Some(external), |_| {}).await;
    let log = Arc::clone(&running.log);
    assert_eq!(
        *asked.lock().expect("asked"),
        ["ex"],
        "held missions are followed again (§9.1)"
    );
    let send = |event: Value| {
        assert!(
            tx.post(StreamInput::Event {
                executor_id: "ex".into(),
                event,
            }),
            "room for a few events"
        );
    };
    send(json!({"event": "executor.resync", "executor_id": "ex", "data": {}}));
    eventually("the malformed resync logged", || {
        log.messages()
            .contains(&"queue-tailer:event-unknown".to_owned())
    })
    .await;
    assert_eq!(statuses(&path), ["running", "running", "done"]);
    send(
        json!({"event": "executor.resync", "executor_id": "ex", "data": {"owned_mission_ids": ["m-kept"]}}),
    );
    eventually("the lost mission failed", || {
        statuses(&path) == ["running", "failed", "done"]
    })
    .await;
    let doc = session::load_session(&path).expect("doc");
    assert_eq!(doc["missions"][1]["failureReason"], "executor_lost");
    running.stop().await;
}
