use super::*;
use std::sync::Arc;

fn registry_in(dir: &Path) -> LoopRegistry {
    let root = dir.to_string_lossy().into_owned();
    LoopRegistry::new(root, dir.join(".aiwg").join("ralph-external"))
}

fn config(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("config object")
}

#[test]
fn a_loop_lives_and_is_archived_as_completed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = registry_in(dir.path());
    let created = reg
        .create_loop(
            LoopConfig(&config(json!({"objective": "Ship it", "maxIterations": 3}))),
            false,
            10,
        )
        .expect("create");
    assert!(created.loop_id.starts_with("ralph-ship-it-"));
    assert!(created.warning.is_none());
    for sub in LOOP_SUBDIRS {
        assert!(reg.loop_dir(&created.loop_id).join(sub).is_dir(), "{sub}");
    }
    let on_disk = reg.get_loop(&created.loop_id).expect("get");
    let text = |v: &Value| crate::js_json::to_pretty_string(v).expect("serialise");
    assert_eq!(text(&on_disk), text(&created.state));
    assert_eq!(created.state["maxIterations"], 3);
    assert_eq!(
        created.state["config"]["workingDir"],
        dir.path().to_string_lossy().as_ref()
    );

    let changes = config(json!({"status": "completed", "note": 1}));
    let state = reg
        .update_loop(&created.loop_id, &changes, 10)
        .expect("update");
    assert_eq!(state["note"], 1);
    let registry = reg.load_registry().expect("registry");
    assert_eq!(registry["active_loops"][0]["status"], "completed");
    assert!(
        registry["active_loops"][0].get("note").is_none(),
        "only status is mirrored"
    );

    reg.update_loop_pid(&created.loop_id, json!(4242), 10)
        .expect("pid");
    assert_eq!(
        reg.get_loop(&created.loop_id).expect("get")["currentPid"],
        4242
    );
    assert_eq!(
        reg.load_registry().expect("registry")["active_loops"][0]["pid"],
        4242
    );

    reg.archive_loop(&created.loop_id, 10).expect("archive");
    assert!(reg
        .archive_dir
        .join(&created.loop_id)
        .join(STATE_FILE)
        .is_file());
    let registry = reg.load_registry().expect("registry");
    assert_eq!(registry["active_loops"], json!([]));
    assert_eq!(registry["total_completed"], 1.0);
    assert_eq!(registry["total_aborted"], 0);
    let err = reg
        .archive_loop(&created.loop_id, 10)
        .expect_err("gone")
        .to_string();
    assert_eq!(
        err,
        format!("Loop directory not found: {}", created.loop_id)
    );
}

#[test]
fn a_fifth_loop_needs_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = registry_in(dir.path());
    for i in 0..4 {
        reg.create_loop(
            LoopConfig(&config(json!({"objective": format!("task {i}")}))),
            false,
            10,
        )
        .expect("create");
    }
    let fifth = config(json!({"objective": "one more"}));
    let err = reg
        .create_loop(LoopConfig(&fifth), false, 10)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.starts_with("Cannot create loop: 4 loops already active (max: 4)."),
        "{err}"
    );
    assert!(
        err.contains("6 communication paths") && err.contains("--force"),
        "{err}"
    );
    let forced = reg
        .create_loop(LoopConfig(&fifth), true, 10)
        .expect("forced");
    assert!(forced.warning.is_some());
    assert_eq!(reg.load_registry().expect("registry")["total_active"], 5);
}

#[test]
fn threads_cycling_loops_keep_the_registry_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Arc::new(registry_in(dir.path()));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let reg = Arc::clone(&reg);
            std::thread::spawn(move || {
                for c in 0..10 {
                    let cfg = config(json!({"objective": format!("worker {w} cycle {c}")}));
                    let id = reg
                        .create_loop(LoopConfig(&cfg), true, 300)
                        .expect("create")
                        .loop_id;
                    reg.update_loop(&id, &config(json!({"status": "completed"})), 300)
                        .expect("update");
                    reg.update_loop_pid(&id, json!(1), 300).expect("pid");
                    reg.archive_loop(&id, 300).expect("archive");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let registry = reg.load_registry().expect("registry");
    assert_eq!(registry["active_loops"], json!([]));
    assert_eq!(registry["total_completed"], 40.0);
    assert_eq!(registry["total_aborted"], 0);
}

#[test]
fn crashed_loops_are_running_entries_with_dead_pids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = registry_in(dir.path());
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let dead = child.id();
    child.wait().expect("wait");
    let mut registry = reg.load_registry().expect("registry");
    registry["active_loops"] = json!([
        {"loop_id": "dead", "status": "running", "pid": dead},
        {"loop_id": "live", "status": "running", "pid": std::process::id()},
        {"loop_id": "paused", "status": "paused", "pid": dead},
        {"loop_id": "nopid", "status": "running", "pid": null},
    ]);
    reg.save_registry(&mut registry).expect("save");
    let crashed = reg.detect_crashed_loops().expect("detect");
    let ids: Vec<_> = crashed
        .iter()
        .map(|e| e["loop_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, ["dead"]);
}

#[cfg(unix)]
#[test]
fn legacy_state_is_migrated_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = registry_in(dir.path());
    reg.ensure_base_dir().expect("base");
    assert!(!reg
        .migrate_legacy_state(None, 10)
        .expect("nothing to migrate"));
    let legacy = reg.base_dir.join(STATE_FILE);
    fs::write(
        &legacy,
        r#"{"objective":"Old loop","status":"running","currentPid":1}"#,
    )
    .expect("legacy");
    fs::create_dir_all(reg.base_dir.join("iterations").join("001")).expect("iterations");
    assert!(reg.migrate_legacy_state(None, 10).expect("migrate"));
    let registry = reg.load_registry().expect("registry");
    let entry = &registry["active_loops"][0];
    assert_eq!(entry["tags"], json!(["migrated"]));
    let id = entry["loop_id"].as_str().expect("id");
    assert!(reg.loop_dir(id).join("iterations").join("001").is_dir());
    assert_eq!(reg.get_loop(id).expect("state")["loopId"], id);
    assert!(fs::symlink_metadata(&legacy)
        .expect("link")
        .file_type()
        .is_symlink());
    assert!(!reg
        .migrate_legacy_state(None, 10)
        .expect("already a symlink"));
}

#[test]
fn loop_ids_that_escape_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = registry_in(dir.path());
    assert!(reg.get_loop("../x").is_err());
    let cfg = config(json!({"objective": "x", "loopId": "../../escape"}));
    assert!(reg.create_loop(LoopConfig(&cfg), false, 10).is_err());
    assert!(!dir.path().join("escape").exists());
}

#[test]
fn task_summaries_count_utf16_units() {
    assert_eq!(js_slice("abc", 2), "ab");
    assert_eq!(js_slice("a😀b", 2), "a");
    assert_eq!(js_slice("a😀b", 3), "a😀");
}
