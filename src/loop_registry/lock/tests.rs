use super::protocol::next_fencing_token;
use super::*;
use crate::clock::now_ms;
use std::fs::{self, File};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

fn lock_in(dir: &Path) -> RegistryLock {
    RegistryLock::new(dir.join("registry.json.lock"))
}

#[allow(clippy::needless_pass_by_value)] // a test helper, called with temporaries
fn plant(lock: &RegistryLock, record: Value) {
    fs::write(lock.path(), serde_json::to_vec(&record).expect("json")).expect("plant lock");
}

/// A lock file left by a process that is gone, its lease still running.
fn plant_dead_holder(lock: &RegistryLock) {
    let now = now_ms();
    plant(
        lock,
        json!({"pid": dead_pid(), "loopId": "x", "timestamp": now, "leaseExpiry": now + LEASE_MS, "fencingToken": 1}),
    );
}

/// The lock file as JSON, as a test reads it back.
fn on_disk(lock: &RegistryLock) -> Value {
    serde_json::from_slice(&fs::read(lock.path()).expect("read")).expect("json")
}

fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let pid = child.id();
    child.wait().expect("wait");
    pid
}

#[test]
fn acquire_writes_the_legacy_fields_and_release_removes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = lock_in(dir.path());
    let acquired = lock
        .acquire_for_caller("loop-a", 1, "realm-a")
        .expect("acquire");
    let record = on_disk(&lock);
    assert_eq!(record["pid"], std::process::id());
    assert_eq!(record["loopId"], "loop-a");
    assert_eq!(record["fencingToken"], acquired.fencing_token);
    let lease =
        record["leaseExpiry"].as_u64().expect("lease") - record["timestamp"].as_u64().expect("ts");
    assert_eq!(lease, LEASE_MS);
    assert!(lock.is_held_for("realm-a"));
    assert!(!lock.is_held_for("realm-b"), "another thread's");
    assert!(!lock
        .release_for_caller(Some(&json!(acquired.fencing_token + 1)))
        .expect("release other"));
    assert!(lock.path().exists());
    assert!(
        lock.is_held_for("realm-a"),
        "another token's release does not end our hold"
    );
    assert!(lock
        .release_for_caller(Some(&json!(acquired.fencing_token)))
        .expect("release"));
    assert!(!lock.path().exists());
    assert!(!lock.is_held_for("realm-a"));
}

#[test]
fn a_live_holder_makes_others_wait_and_time_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = lock_in(dir.path());
    lock.acquire("holder", 1).expect("acquire");
    let start = Instant::now();
    let err = lock
        .acquire("waiter", 2)
        .expect_err("must time out")
        .to_string();
    assert!(
        err.starts_with("Failed to acquire lock after 2 attempts"),
        "{err}"
    );
    assert!(err.contains("holder"), "{err}");
    assert!(
        start.elapsed() >= Duration::from_millis(190),
        "waited its attempts out"
    );
}

#[test]
fn dead_holders_and_expired_leases_are_broken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = lock_in(dir.path());
    plant_dead_holder(&lock);
    lock.acquire("a", 0).expect("dead holder broken");
    fs::remove_file(lock.path()).expect("clear");
    let now = now_ms();
    plant(
        &lock,
        json!({"pid": std::process::id(), "loopId": "x", "timestamp": now - 40_000, "leaseExpiry": now - 10_000, "fencingToken": 1}),
    );
    lock.acquire("b", 0).expect("expired lease broken");
}

#[cfg(target_os = "linux")]
#[test]
fn a_reused_pid_is_not_the_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = lock_in(dir.path());
    let now = now_ms();
    let mut record = json!({"pid": std::process::id(), "loopId": "x", "timestamp": now, "leaseExpiry": now + LEASE_MS, "fencingToken": 1});
    plant(&lock, record.clone());
    assert!(
        lock.acquire("a", 0).is_err(),
        "old format: a live pid holds"
    );
    record["processStart"] = json!("another-boot:1");
    plant(&lock, record);
    lock.acquire("a", 0)
        .expect("identity mismatch means the holder is gone");
}

#[test]
fn unreadable_locks_are_stale_only_after_a_lease() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = lock_in(dir.path());
    fs::write(lock.path(), "{\"pid\": 12").expect("partial lock");
    assert!(
        lock.acquire("a", 0).is_err(),
        "a fresh partial lock may be mid-write"
    );
    let old = SystemTime::now() - Duration::from_millis(LEASE_MS + 5_000);
    File::options()
        .write(true)
        .open(lock.path())
        .expect("open")
        .set_modified(old)
        .expect("age it");
    lock.acquire("a", 0)
        .expect("an old unreadable lock is stale");
}

/// §10: a FIFO at the lock path is an unreadable lock, not a read that
/// waits for a writer.
#[cfg(unix)]
#[test]
fn a_fifo_at_the_lock_path_is_not_waited_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = lock_in(dir.path());
    let c_path =
        std::ffi::CString::new(lock.path().to_string_lossy().into_owned()).expect("NUL-free path");
    // SAFETY: a valid NUL-terminated path; mkfifo only reads it.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(lock.acquire("a", 0).is_err());
    });
    let refused = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the lock read waited on the FIFO");
    assert!(refused, "a fresh unreadable lock is held by someone");
}

#[test]
fn with_lock_excludes_threads_and_releases_on_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = Arc::new(lock_in(dir.path()));
    let inside = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (lock, inside) = (Arc::clone(&lock), Arc::clone(&inside));
            std::thread::spawn(move || {
                for _ in 0..20 {
                    lock.with_lock(&format!("t{i}"), 100, || {
                        assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                        std::thread::sleep(Duration::from_micros(200));
                        inside.store(false, Ordering::SeqCst);
                        Ok(())
                    })
                    .expect("with_lock");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let failed: Result<()> = lock.with_lock("e", 1, || Err(Error::Message("boom".into())));
    assert_eq!(failed.expect_err("propagates").to_string(), "boom");
    assert!(!lock.path().exists(), "released after the error");
}

#[test]
fn a_loop_id_goes_in_as_the_json_text_it_came_as() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = lock_in(dir.path());
    let tag = LoopTag::from_json(Some("7".into())).expect("json");
    let acquired = lock.acquire(tag, 1).expect("acquire");
    let record = on_disk(&lock);
    assert_eq!(record["loopId"], 7);
    assert!(lock.unhold(acquired.fencing_token).expect("unhold"));
    let acquired = lock
        .acquire(LoopTag::from_json(None).expect("undefined"), 1)
        .expect("acquire");
    let record = on_disk(&lock);
    assert!(record.get("loopId").is_none(), "undefined is left out");
    assert!(lock.unhold(acquired.fencing_token).expect("unhold"));
    assert!(LoopTag::from_json(Some("{oops".into())).is_none());
}

#[test]
fn a_sync_hold_of_the_same_realm_runs_under_a_pending_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = lock_in(dir.path());
    let held = lock.hold("async", 1, "realm-a").expect("hold");
    assert_eq!(
        lock.hold_sync("sync", 1, "realm-a").expect("shared"),
        None,
        "the same realm goes ahead"
    );
    let start = Instant::now();
    assert!(
        lock.hold_sync("sync", 1, "realm-b").is_err(),
        "another realm waits"
    );
    assert!(start.elapsed() >= Duration::from_millis(90));
    assert!(lock.unhold(held.fencing_token).expect("unhold"));
    assert!(!lock.unhold(held.fencing_token).expect("twice"));
    let own = lock
        .hold_sync("sync", 1, "realm-a")
        .expect("free")
        .expect("taken");
    assert!(lock.unhold(own.fencing_token).expect("unhold"));
    assert!(!lock.path().exists());
}

#[test]
fn try_hold_takes_a_free_or_stale_lock_and_never_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = lock_in(dir.path());
    plant_dead_holder(&lock);
    let first = lock
        .try_hold("a", "realm-a")
        .expect("try")
        .expect("a dead holder's lock is taken");
    let start = Instant::now();
    assert_eq!(lock.try_hold("b", "realm-a").expect("try"), None);
    assert!(start.elapsed() < Duration::from_millis(50), "no waiting");
    assert_eq!(
        lock.hold_sync("c", 1, "realm-a").expect("shared"),
        None,
        "remembered like a hold"
    );
    assert!(lock.unhold(first.fencing_token).expect("unhold"));
}

#[test]
fn unhold_leaves_a_lock_it_does_not_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lock = lock_in(dir.path());
    assert!(!lock.unhold(1).expect("nothing there"));
    let a = lock.acquire("a", 1).expect("acquire");
    assert!(!lock.unhold(a.fencing_token + 1).expect("another token"));
    assert!(lock.path().exists());
    assert!(lock.unhold(a.fencing_token).expect("ours"));
}

#[test]
fn fencing_tokens_increase() {
    let a = next_fencing_token(5);
    let b = next_fencing_token(5);
    assert!(b > a);
    assert!(next_fencing_token(now_ms()) > b);
}
