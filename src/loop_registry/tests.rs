use super::*;
use crate::error::Error;
use std::sync::Arc;

fn registry_in(dir: &Path) -> LoopRegistry {
    let base = dir.join(".aiwg").join("ralph-external");
    LoopRegistry::new(base.clone(), base.join("registry.json.lock"))
}

fn io_parts(err: &Error) -> (&'static str, &Path, &'static str) {
    match err {
        Error::Io {
            syscall,
            path,
            source,
            ..
        } => (syscall, path.as_path(), crate::error::code(source)),
        other => panic!("not an I/O error: {other}"),
    }
}

#[test]
fn threads_doing_read_modify_write_under_holds_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Arc::new(registry_in(dir.path()));
    fs::create_dir_all(&reg.base_dir).expect("base");
    let counter = reg.base_dir.join("registry.json");
    write_file(&counter, "0").expect("seed");
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (reg, counter) = (Arc::clone(&reg), counter.clone());
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let held = reg
                        .lock()
                        .hold("worker", 300, &format!("realm-{w}"))
                        .expect("hold");
                    let n: u64 = fs::read_to_string(&counter)
                        .expect("read")
                        .parse()
                        .expect("number");
                    write_file(&counter, &(n + 1).to_string()).expect("write");
                    assert!(reg.lock().unhold(held.fencing_token).expect("unhold"));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    assert_eq!(fs::read_to_string(&counter).expect("read"), "80");
    assert!(!reg.lock().path().exists());
}

#[test]
fn archiving_moves_the_loop_and_never_overwrites_an_archived_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = registry_in(dir.path());
    for round in 0..2 {
        let loop_dir = reg.loop_dir("ralph-a-00000000");
        fs::create_dir_all(loop_dir.join("outputs")).expect("loop dir");
        fs::write(loop_dir.join(STATE_FILE), format!("{round}")).expect("state");
        let target = reg.archive_loop_dir("ralph-a-00000000").expect("archive");
        assert_eq!(
            fs::read_to_string(target.join(STATE_FILE)).expect("moved"),
            round.to_string()
        );
        assert!(!loop_dir.exists());
    }
    assert_eq!(fs::read_dir(&reg.archive_dir).expect("archive").count(), 2);
    let err = reg
        .archive_loop_dir("ralph-gone-00000000")
        .expect_err("missing");
    let (syscall, path, code) = io_parts(&err);
    assert_eq!(syscall, "rename");
    assert_eq!(path, reg.loop_dir("ralph-gone-00000000"));
    assert_eq!(code, "ENOENT");
    assert!(matches!(
        reg.archive_loop_dir("../x"),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn legacy_dirs_are_moved_or_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = registry_in(dir.path());
    fs::create_dir_all(reg.base_dir.join("iterations").join("001")).expect("iterations");
    reg.adopt_legacy_dirs("ralph-old-00000000").expect("adopt");
    let loop_dir = reg.loop_dir("ralph-old-00000000");
    assert!(loop_dir.join("iterations").join("001").is_dir());
    assert!(
        !reg.base_dir.join("iterations").exists(),
        "moved, not copied"
    );
    for sub in LOOP_SUBDIRS {
        assert!(loop_dir.join(sub).is_dir(), "{sub}");
    }
    assert!(reg.adopt_legacy_dirs("a/b").is_err());
}

#[test]
fn writes_replace_atomically_and_name_the_target_when_they_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("registry.json");
    assert!(create_file(&path, "first").expect("create"));
    assert!(!create_file(&path, "second").expect("exists"));
    assert_eq!(fs::read_to_string(&path).expect("read"), "first");
    write_file(&path, "third").expect("replace");
    assert_eq!(fs::read_to_string(&path).expect("read"), "third");
    let names: Vec<_> = fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temp file left: {names:?}");

    let missing = dir.path().join("nope").join("registry.json");
    let err = write_file(&missing, "x").expect_err("no directory");
    assert_eq!(io_parts(&err), ("open", missing.as_path(), "ENOENT"));

    let is_dir = dir.path().join("a-dir");
    fs::create_dir(&is_dir).expect("dir");
    let err = write_file(&is_dir, "x").expect_err("a directory");
    let (syscall, path, code) = io_parts(&err);
    assert_eq!((syscall, path), ("rename", is_dir.as_path()));
    assert_eq!(code, "EISDIR");
}
