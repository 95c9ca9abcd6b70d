//! The registry lock: a JSON lock file shared with the JS original.
//!
//! Protocol (compatible both ways with the original): the holder creates
//! `registry.json.lock` exclusively with `{pid, loopId, timestamp,
//! leaseExpiry, fencingToken}`; anyone may break a lock whose lease has
//! expired or whose holder is dead; the holder removes it when done.
//!
//! What we add on top, without changing the file's meaning:
//! - an empty or unreadable lock file (a writer between its create and its
//!   write) counts as held until it is older than a lease; the file is not
//!   fsynced, as a lock means nothing once its holder is gone;
//! - `processStart` records the holder's start identity, so a reused pid
//!   is not taken for the holder (old files without it still work);
//! - breaking and releasing happen under an OS lock on `<lock>.guard`
//!   after re-reading the file, so two breakers cannot both win and a
//!   release never removes somebody else's lock;
//! - waiters sleep on a directory watch ([`LockWake`]) and wake as soon as
//!   the lock file goes, re-checking the holder's liveness every few
//!   milliseconds so a killed holder is noticed at once;
//! - an operation whose work runs on a JS thread between taking the lock
//!   and giving it back ([`RegistryLock::hold`]) is remembered with that
//!   thread's realm, so a synchronous operation of the same thread, which
//!   cannot run while that work runs, goes ahead under the same hold
//!   ([`RegistryLock::hold_sync`]) instead of waiting for a release that
//!   cannot come until it returns.

use super::lock_wake::LockWake;
use crate::clock::now_ms;
use crate::error::{Error, IoContext, Result};
use crate::process_identity;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// How long a lock is valid without its holder renewing it.
pub const LEASE_MS: u64 = 30_000;
/// What one "attempt" of the original's 100 ms poll is worth in waiting time.
pub const ATTEMPT: Duration = Duration::from_millis(100);
/// How often a watched waiter re-checks a holder that may have died.
const RECHECK: Duration = Duration::from_millis(20);
/// How often a waiter without a directory watch looks again.
const POLL: Duration = Duration::from_millis(5);

/// The `loopId` a lock file records, as JSON text: the caller's value as
/// `JSON.stringify` wrote it, or none (JS `undefined`, which it leaves out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoopTag(Option<String>);

impl From<&str> for LoopTag {
    fn from(id: &str) -> Self {
        LoopTag(Some(Value::from(id).to_string()))
    }
}

impl LoopTag {
    /// JSON text from the JS side; `None` when it is not one JSON value.
    pub fn from_json(text: Option<String>) -> Option<Self> {
        match text {
            None => Some(LoopTag(None)),
            Some(text) => serde_json::from_str::<serde::de::IgnoredAny>(&text)
                .ok()
                .map(|_| LoopTag(Some(text))),
        }
    }
}

/// A lock acquired by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquired {
    pub fencing_token: u64,
}

/// The lock file at one path.
pub struct RegistryLock {
    path: PathBuf,
    guard_path: PathBuf,
}

/// What a lock file said when we looked.
struct Observed {
    bytes: Vec<u8>,
    modified: Option<SystemTime>,
    holder: Option<Holder>,
}

/// The fields of a lock file we act on.
#[derive(Debug, Default)]
struct Holder {
    pid: Option<i64>,
    loop_id: Option<Value>,
    lease_expiry: Option<f64>,
    fencing_token: Option<Value>,
    process_start: Option<String>,
}

/// How one [`RegistryLock::attempt`] ended.
enum Attempt {
    Acquired(Acquired),
    /// Held already in a way the caller shares.
    Shared,
    /// Held by a live holder until the deadline.
    Busy(Box<Observed>),
}

enum Verdict {
    Live,
    Stale,
}

/// Lock paths this process holds through [`RegistryLock::hold`],
/// [`RegistryLock::try_hold`] or the public `acquireLock`: the fencing token
/// and the realm (one JS thread) whose work runs under it.
fn held_for_realm() -> &'static Mutex<HashMap<PathBuf, (u64, String)>> {
    static HELD: OnceLock<Mutex<HashMap<PathBuf, (u64, String)>>> = OnceLock::new();
    HELD.get_or_init(Default::default)
}

fn own_pid() -> i64 {
    i64::from(std::process::id())
}

impl RegistryLock {
    pub fn new(path: PathBuf) -> Self {
        let mut guard = path.clone().into_os_string();
        guard.push(".guard");
        RegistryLock {
            path,
            guard_path: PathBuf::from(guard),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Take the lock for `loop_id`, waiting up to `max_attempts` × 100 ms.
    pub fn acquire(&self, loop_id: impl Into<LoopTag>, max_attempts: u32) -> Result<Acquired> {
        match self.acquire_unless(&loop_id.into(), max_attempts, &|_| false)? {
            Some(acquired) => Ok(acquired),
            None => Err(Error::Message("the registry lock was not taken".into())),
        }
    }

    /// As [`acquire`](Self::acquire), but `Ok(None)` as soon as the lock
    /// file is seen held in a way `shared` accepts as ours already.
    fn acquire_unless(
        &self,
        tag: &LoopTag,
        max_attempts: u32,
        shared: &dyn Fn(&Observed) -> bool,
    ) -> Result<Option<Acquired>> {
        match self.attempt(tag, max_attempts, shared)? {
            Attempt::Acquired(acquired) => Ok(Some(acquired)),
            Attempt::Shared => Ok(None),
            Attempt::Busy(observed) => Err(timeout_error(max_attempts, &observed)),
        }
    }

    /// Take the lock if it is free (or stale) now, without waiting; `None`
    /// when somebody holds it. Remembered for `realm` as [`hold`](Self::hold) is.
    pub fn try_hold(&self, loop_id: impl Into<LoopTag>, realm: &str) -> Result<Option<Acquired>> {
        match self.attempt(&loop_id.into(), 0, &|_| false)? {
            Attempt::Acquired(acquired) => {
                self.remember_hold(acquired, realm);
                Ok(Some(acquired))
            }
            Attempt::Shared | Attempt::Busy(_) => Ok(None),
        }
    }

    /// Try to take the lock, waiting up to `max_attempts` × 100 ms for a
    /// live holder (0: not at all).
    fn attempt(
        &self,
        tag: &LoopTag,
        max_attempts: u32,
        shared: &dyn Fn(&Observed) -> bool,
    ) -> Result<Attempt> {
        let deadline = Instant::now() + ATTEMPT * max_attempts;
        let mut wake: Option<Arc<LockWake>> = None;
        let mut watch_failed = false;
        loop {
            let seen = wake.as_ref().map(|w| w.generation());
            // Look before trying: a waiter that only reads while the lock is
            // held leaves the directory (and the file system journal) alone.
            let observed = match self.read()? {
                Some(observed) => observed,
                None => match self.try_create(tag)? {
                    Ok(acquired) => return Ok(Attempt::Acquired(acquired)),
                    Err(None) => continue, // released between our attempt and our look
                    Err(Some(observed)) => observed,
                },
            };
            if shared(&observed) {
                return Ok(Attempt::Shared);
            }
            if let Verdict::Stale = judge(&observed) {
                self.break_if_unchanged(&observed)?;
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Attempt::Busy(Box::new(observed)));
            }
            if wake.is_none() && !watch_failed {
                // Watch first, then look again, so no release goes unseen.
                match LockWake::for_path(&self.path) {
                    Ok(w) => wake = Some(w),
                    Err(_) => watch_failed = true,
                }
                continue;
            }
            let left = deadline - now;
            match (&wake, seen) {
                (Some(w), Some(seen)) => w.wait_past(seen, RECHECK.min(left)),
                _ => std::thread::sleep(POLL.min(left)),
            }
        }
    }

    /// Take the lock for work that a JS thread (`realm`) does before it
    /// calls [`unhold`](Self::unhold). Remembered, so that a synchronous
    /// operation of the same realm meanwhile runs under this hold.
    pub fn hold(
        &self,
        loop_id: impl Into<LoopTag>,
        max_attempts: u32,
        realm: &str,
    ) -> Result<Acquired> {
        let acquired = self.acquire(loop_id, max_attempts)?;
        self.remember_hold(acquired, realm);
        Ok(acquired)
    }

    fn forget_hold(&self, token: u64) {
        let mut held = lock_map(held_for_realm());
        if held.get(&self.path).is_some_and(|(t, _)| *t == token) {
            held.remove(&self.path);
        }
    }

    fn remember_hold(&self, acquired: Acquired, realm: &str) {
        lock_map(held_for_realm()).insert(
            self.path.clone(),
            (acquired.fencing_token, realm.to_owned()),
        );
    }

    /// Give back a lock taken with [`hold`](Self::hold) or
    /// [`hold_sync`](Self::hold_sync): removed only if the file still holds
    /// this process and `token`. Returns whether it did.
    pub fn unhold(&self, token: u64) -> Result<bool> {
        self.forget_hold(token);
        let token = json!(token);
        self.remove_if(|h| h.pid == Some(own_pid()) && h.fencing_token.as_ref() == Some(&token))
    }

    /// Take the lock for a synchronous operation of `realm`, or `Ok(None)`
    /// when it already runs under a hold of this process that cannot be
    /// given back before it returns: the caller's own `acquireLock`, or a
    /// [`hold`](Self::hold) of the same realm whose work has not started.
    pub fn hold_sync(
        &self,
        loop_id: impl Into<LoopTag>,
        max_attempts: u32,
        realm: &str,
    ) -> Result<Option<Acquired>> {
        let shared = |observed: &Observed| self.held_for(realm, observed);
        self.acquire_unless(&loop_id.into(), max_attempts, &shared)
    }

    /// Whether `observed` is a hold this process took for `realm`.
    fn held_for(&self, realm: &str, observed: &Observed) -> bool {
        let Some(holder) = observed
            .holder
            .as_ref()
            .filter(|h| h.pid == Some(own_pid()))
        else {
            return false;
        };
        lock_map(held_for_realm())
            .get(&self.path)
            .is_some_and(|(token, r)| {
                r == realm && holder.fencing_token.as_ref() == Some(&json!(*token))
            })
    }

    /// The public `acquireLock`: as [`acquire`](Self::acquire), and remembered
    /// so that the synchronous registry writes of the caller's realm (its JS
    /// thread) can run under it.
    pub fn acquire_for_caller(
        &self,
        loop_id: impl Into<LoopTag>,
        max_attempts: u32,
        realm: &str,
    ) -> Result<Acquired> {
        self.hold(loop_id, max_attempts, realm)
    }

    /// The public `releaseLock`, once the caller has seen that the lock file
    /// names its loop and this process with fencing token `token` (`None`:
    /// a file without one): remove it if it still holds exactly that.
    /// Returns whether it did.
    pub fn release_for_caller(&self, token: Option<&Value>) -> Result<bool> {
        if let Some(token) = token.and_then(Value::as_u64) {
            self.forget_hold(token);
        }
        self.remove_if(|h| h.pid == Some(own_pid()) && h.fencing_token.as_ref() == token)
    }

    /// Whether this process holds the lock for `realm`.
    #[cfg(test)]
    pub fn is_held_for(&self, realm: &str) -> bool {
        matches!(self.read(), Ok(Some(o)) if self.held_for(realm, &o))
    }

    /// Run `f` holding the lock; release it afterwards whatever `f` returned.
    #[cfg(test)]
    pub fn with_lock<T>(
        &self,
        loop_id: &str,
        max_attempts: u32,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let acquired = self.acquire(loop_id, max_attempts)?;
        let result = f();
        let released = self.unhold(acquired.fencing_token);
        match (result, released) {
            (Ok(v), Ok(_)) => Ok(v),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
        }
    }

    /// One exclusive-create attempt. `Ok(Err(Some(observed)))`: somebody
    /// holds it; `Ok(Err(None))`: it vanished before we could read it.
    fn try_create(&self, tag: &LoopTag) -> Result<std::result::Result<Acquired, Option<Observed>>> {
        let now = now_ms();
        let token = next_fencing_token(now);
        // The caller's loopId goes in as the JSON text it came as.
        let mut text = format!("{{\"pid\":{}", std::process::id());
        if let Some(id) = &tag.0 {
            text.push_str(",\"loopId\":");
            text.push_str(id);
        }
        text.push_str(&format!(
            ",\"timestamp\":{now},\"leaseExpiry\":{},\"fencingToken\":{token}",
            now + LEASE_MS
        ));
        if let Some(start) = process_identity::own_start_identity() {
            text.push_str(",\"processStart\":");
            text.push_str(&Value::from(start).to_string());
        }
        text.push('}');
        let bytes = text.into_bytes();
        // As the original: O_EXCL create, then write. A reader that comes in
        // between sees an empty, fresh file, which counts as held.
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)
        {
            Ok(mut file) => {
                if let Err(e) = file.write_all(&bytes) {
                    let _ = fs::remove_file(&self.path);
                    return Err(e).at("write", &self.path);
                }
                return Ok(Ok(Acquired {
                    fencing_token: token,
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).at("open", &self.path),
        }
        Ok(Err(self.read()?))
    }

    fn read(&self) -> Result<Option<Observed>> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // A directory opens; reading it fails, as Node reports it.
            Err(e) if e.kind() == io::ErrorKind::IsADirectory => {
                return Err(e).at("read", &self.path)
            }
            Err(e) => return Err(e).at("open", &self.path),
        };
        let modified = fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        let holder = parse_holder(&bytes);
        Ok(Some(Observed {
            bytes,
            modified,
            holder,
        }))
    }

    /// Remove the lock file if it still holds exactly what we judged stale.
    fn break_if_unchanged(&self, observed: &Observed) -> Result<()> {
        let _guard = self.guard()?;
        match fs::read(&self.path) {
            Ok(now) if now == observed.bytes => remove_existing(&self.path),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).at("open", &self.path),
        }
    }

    fn remove_if(&self, owned: impl Fn(&Holder) -> bool) -> Result<bool> {
        let _guard = self.guard()?;
        match self.read()? {
            Some(Observed {
                holder: Some(h), ..
            }) if owned(&h) => {
                remove_existing(&self.path)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The OS lock that makes "re-read, then remove" one step among native processes.
    fn guard(&self) -> Result<File> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.guard_path)
            .at("open", &self.guard_path)?;
        file.lock().at("flock", &self.guard_path)?;
        Ok(file)
    }
}

type RealmHolds = HashMap<PathBuf, (u64, String)>;

fn lock_map(m: &Mutex<RealmHolds>) -> std::sync::MutexGuard<'_, RealmHolds> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn remove_existing(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).at("unlink", path),
        _ => Ok(()),
    }
}

fn parse_holder(bytes: &[u8]) -> Option<Holder> {
    let value: Value = crate::js_json::from_slice_lossy(bytes).ok()?;
    let map = value.as_object()?;
    let pid = map
        .get("pid")
        .and_then(Value::as_f64)
        .filter(|p| p.fract() == 0.0)
        .map(|p| p as i64);
    Some(Holder {
        pid,
        loop_id: map.get("loopId").cloned(),
        lease_expiry: map.get("leaseExpiry").and_then(Value::as_f64),
        fencing_token: map.get("fencingToken").cloned(),
        process_start: map
            .get("processStart")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// A lock is stale only when its holder is provably gone: its lease ran
/// out, its pid is dead or now names another process, or the file is
/// unreadable and older than any lease could be.
fn judge(observed: &Observed) -> Verdict {
    let Some(pid) = observed.holder.as_ref().and_then(|h| h.pid) else {
        let age = observed
            .modified
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .unwrap_or(Duration::ZERO);
        return if age > Duration::from_millis(LEASE_MS) {
            Verdict::Stale
        } else {
            Verdict::Live
        };
    };
    let holder = observed.holder.as_ref();
    if holder
        .and_then(|h| h.lease_expiry)
        .is_some_and(|exp| now_ms() as f64 > exp)
    {
        return Verdict::Stale;
    }
    if !process_identity::is_alive(pid) {
        return Verdict::Stale;
    }
    if let (Some(recorded), Ok(pid32)) = (
        holder.and_then(|h| h.process_start.as_deref()),
        u32::try_from(pid),
    ) {
        if process_identity::start_identity(pid32).is_some_and(|current| current != recorded) {
            return Verdict::Stale;
        }
    }
    Verdict::Live
}

fn timeout_error(max_attempts: u32, observed: &Observed) -> Error {
    let holder = match &observed.holder {
        Some(Holder {
            pid: Some(pid),
            loop_id,
            ..
        }) => {
            let name = match loop_id {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "an unnamed loop".into(),
            };
            format!(" (held by pid {pid} for {name})")
        }
        _ => String::new(),
    };
    Error::Message(format!(
        "Failed to acquire lock after {max_attempts} attempts{holder}"
    ))
}

/// Fencing tokens grow within a process and roughly across processes:
/// milliseconds × 1000 plus a counter.
fn next_fencing_token(now: u64) -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let floor = now.saturating_mul(1000);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = floor.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(actual) => last = actual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn lock_in(dir: &Path) -> RegistryLock {
        RegistryLock::new(dir.join("registry.json.lock"))
    }

    fn plant(lock: &RegistryLock, record: Value) {
        fs::write(lock.path(), serde_json::to_vec(&record).expect("json")).expect("plant lock");
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
        let record: Value =
            serde_json::from_slice(&fs::read(lock.path()).expect("read")).expect("json");
        assert_eq!(record["pid"], std::process::id());
        assert_eq!(record["loopId"], "loop-a");
        assert_eq!(record["fencingToken"], acquired.fencing_token);
        let lease = record["leaseExpiry"].as_u64().expect("lease")
            - record["timestamp"].as_u64().expect("ts");
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
        let now = now_ms();
        plant(
            &lock,
            json!({"pid": dead_pid(), "loopId": "x", "timestamp": now, "leaseExpiry": now + LEASE_MS, "fencingToken": 1}),
        );
        lock.acquire("a", 0).expect("dead holder broken");
        fs::remove_file(lock.path()).expect("clear");
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
        let record: Value =
            serde_json::from_slice(&fs::read(lock.path()).expect("read")).expect("json");
        assert_eq!(record["loopId"], 7);
        assert!(lock.unhold(acquired.fencing_token).expect("unhold"));
        let acquired = lock
            .acquire(LoopTag::from_json(None).expect("undefined"), 1)
            .expect("acquire");
        let record: Value =
            serde_json::from_slice(&fs::read(lock.path()).expect("read")).expect("json");
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
        let now = now_ms();
        plant(
            &lock,
            json!({"pid": dead_pid(), "loopId": "x", "timestamp": now, "leaseExpiry": now + LEASE_MS, "fencingToken": 1}),
        );
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
}
