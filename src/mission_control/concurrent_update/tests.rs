use super::*;
use serde_json::json;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn merge_keeps_ours_and_adds_what_only_they_changed() {
    let base = json!({"id": "s", "name": "a", "missions": [
        {"id": "m1", "status": "queued"},
        {"id": "m2", "status": "queued"},
        {"id": "m3", "status": "queued"},
    ]});
    let ours = json!({"id": "s", "name": "a", "missions": [
        {"id": "m1", "status": "assigned"},
        {"id": "m2", "status": "queued"},
        {"id": "m3", "status": "assigned"},
    ]});
    let theirs = json!({"id": "s", "name": "b", "missions": [
        {"id": "m1", "status": "queued"},
        {"id": "m2", "status": "aborted"},
        {"id": "m3", "status": "aborted"},
        {"id": "m4", "status": "queued"},
    ]});
    assert_eq!(
        merge3(&base, &ours, &theirs),
        json!({"id": "s", "name": "b", "missions": [
            {"id": "m1", "status": "assigned"},
            {"id": "m2", "status": "aborted"},
            {"id": "m3", "status": "assigned"},
            {"id": "m4", "status": "queued"},
        ]})
    );
    // Not sessions: ours stands.
    assert_eq!(merge3(&json!(1), &json!([2]), &json!({})), json!([2]));
}

fn session_with(n: usize) -> Value {
    let missions: Vec<_> = (0..n)
        .map(|i| json!({"id": format!("m{i}"), "status": "queued"}))
        .collect();
    json!({"id": "s", "missions": missions})
}

#[test]
fn a_change_is_written_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("session.json");
    fs::write(&path, session_with(2).to_string()).expect("write");
    let updated = update(&path, true, None, |s| {
        s["missions"][1]["status"] = json!("assigned");
        (true, 7)
    })
    .expect("update");
    let Updated::Done {
        session, result, ..
    } = updated
    else {
        panic!("not done")
    };
    assert_eq!(result, 7);
    let on_disk: Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    assert_eq!(on_disk, session);
    assert_eq!(on_disk["missions"][1]["status"], "assigned");
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .expect("ls")
        .filter_map(std::result::Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn unreadable_files_are_reported_not_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("session.json");
    assert!(matches!(
        update(&path, true, None, |_| (true, ())).expect("update"),
        Updated::Unreadable(Unreadable::Missing)
    ));
    fs::write(&path, "{not json").expect("write");
    assert!(matches!(
        update(&path, true, None, |_| (true, ())).expect("update"),
        Updated::Unreadable(Unreadable::NotJson(_))
    ));
    assert_eq!(fs::read(&path).expect("read"), b"{not json");
}

/// How a writer without our lock writes.
#[derive(Clone, Copy)]
enum Foreign {
    InPlace,
    Rename,
}

/// Another writer appends `count` missions, one read-modify-write each, while
/// we keep rewriting the file: none of its missions may go missing.
fn race(kind: Foreign, count: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("session.json");
    fs::write(&path, session_with(1).to_string()).expect("write");
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, done) = (path.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            for i in 0..count {
                // Read until it parses (we may be mid-write in place too).
                let mut session: Value = loop {
                    if let Ok(v) = serde_json::from_slice(&fs::read(&path).expect("read")) {
                        break v;
                    }
                };
                session["missions"]
                    .as_array_mut()
                    .expect("missions")
                    .push(json!({"id": format!("f{i}"), "status": "queued"}));
                let text = session.to_string();
                match kind {
                    Foreign::InPlace => fs::write(&path, text).expect("write in place"),
                    Foreign::Rename => {
                        let tmp: PathBuf = dir_of(&path).join(format!("cli-{i}.tmp"));
                        fs::write(&tmp, text).expect("write temp");
                        fs::rename(&tmp, &path).expect("rename");
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut rounds = 0u64;
    while !done.load(Ordering::SeqCst) {
        rounds += 1;
        let updated = update(&path, true, None, |s| {
            s["touches"] = json!(rounds);
            (true, ())
        })
        .expect("update");
        if let Updated::Done { aftercheck, .. } = updated {
            let mut next = aftercheck;
            while let Some(check) = next {
                std::thread::sleep(AFTERCHECK_DELAY);
                next = check.run(&path).expect("aftercheck");
            }
        }
    }
    writer.join().expect("join");
    let session: Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    let ids: std::collections::HashSet<_> = session["missions"]
        .as_array()
        .expect("missions")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    let lost: Vec<_> = (0..count)
        .map(|i| format!("f{i}"))
        .filter(|id| !ids.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} lost after {rounds} of our writes: {lost:?}",
        lost.len()
    );
}

fn dir_of(path: &Path) -> &Path {
    path.parent().expect("parent")
}

#[test]
fn a_renaming_writer_loses_nothing() {
    race(Foreign::Rename, 300);
}

#[test]
fn an_in_place_writer_loses_nothing() {
    race(Foreign::InPlace, 300);
}
