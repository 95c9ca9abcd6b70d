//! Read-modify-write of a session file that other processes write too (§9.5).
//!
//! Three kinds of writer share `session.json`:
//! - ours, in any process: they hold the [`SessionLock`], so they take turns;
//! - `aiwg mc` CLIs that write a temp file and rename it over, with no lock;
//! - older CLIs that rewrite the file in place, with no lock.
//!
//! Against the last two an update is optimistic. The file is read (and its
//! inode kept open), the change applied, and the result staged in a temp
//! file. Just before it goes in, the file must still be the one read: same
//! inode, same bytes; if not, the change is redone on what is there now.
//! The staged file then goes in with `renameat2(RENAME_EXCHANGE)`, which
//! hands back the file it displaced, so a write that slipped in between the
//! check and the swap is seen: the change is redone on top of it.
//!
//! One window is left: an in-place writer that opened the old inode before
//! the swap and writes after it. The old inode stays open for an
//! [`Aftercheck`] a few milliseconds later, and whatever that write changed
//! is merged back mission by mission ([`merge3`]).
//!
//! What remains is what no file protocol can prevent: a lock-less writer
//! that read before our write and writes after it drops our change. The
//! tailer remembers its dispatch outcomes and puts them back (see
//! `tailer::scan`).

use super::session::{self, Unreadable};
use super::session_lock::SessionLock;
use crate::atomic_write::{self, Durability};
use crate::error::{Error, IoContext, Result};
use serde_json::{Map, Value};
use std::fs::File;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a change is redone because another writer keeps getting in
/// first (each round costs a temp file's fsync).
const GIVE_UP_AFTER: Duration = Duration::from_secs(10);
/// A file that is being rewritten in place does not parse until the writer
/// is done: look again this often, this many times.
const TORN_WAIT: Duration = Duration::from_millis(2);
const TORN_TRIES: usize = 10;
/// When to look at a replaced file again for an in-place write that landed
/// after the swap.
pub(crate) const AFTERCHECK_DELAY: Duration = Duration::from_millis(5);

/// What [`update`] did.
pub(crate) enum Updated<T> {
    /// The file could not be read (missing, not JSON, too large, I/O).
    Unreadable(Unreadable),
    /// `session` is what the file holds now (or held, when nothing was
    /// written); `result` is what the change said on its last run.
    Done {
        session: Value,
        /// The bytes the change ran on, when it ran on the file as read
        /// (nothing another writer changed was merged in on the way).
        source: Option<Vec<u8>>,
        result: T,
        aftercheck: Option<Aftercheck>,
    },
}

/// Change the session file at `path`. `change` gets the parsed file and
/// says whether to write it and what to report; it may run more than once
/// (each time on a fresh copy) when another writer got in first. With
/// `keep_source`, the bytes the change ran on come back too (a copy, made
/// only when asked for). Once `stop` is cancelled, a change another writer
/// keeps getting ahead of is not tried again (the caller saves it).
pub(crate) fn update<T>(
    path: &Path,
    keep_source: bool,
    stop: Option<&CancellationToken>,
    mut change: impl FnMut(&mut Value) -> (bool, T),
) -> Result<Updated<T>> {
    let _lock = SessionLock::acquire(path)?;
    // `read` is the file we mean to replace and `expected` its content;
    // `base` is what the change builds on: `expected`, plus what a write
    // that slipped in had changed (kept until it is in place).
    let (mut read, mut expected) = match Snapshot::take(path) {
        Ok(taken) => taken,
        Err(e) => return Ok(Updated::Unreadable(e)),
    };
    // `None` while it is `expected` itself (no copy of the whole session
    // until a merge makes one).
    let mut base: Option<Value> = None;
    // Whether `base` is the file as read, with nothing merged in.
    let mut base_is_read = true;
    let started = std::time::Instant::now();
    while started.elapsed() < GIVE_UP_AFTER {
        let mut session = base.as_ref().unwrap_or(&expected).clone();
        let (write, result) = change(&mut session);
        let source = (keep_source && base_is_read).then(|| read.bytes.clone());
        // Nothing to change, and nothing carried: done. What a round before
        // carried (another writer's change that lost its place, such as a
        // mission appended to a file our swap had just displaced) must be
        // written even when the change itself is a no-op by now, or it is lost.
        if !write && base_is_read {
            return Ok(Updated::Done {
                session,
                source,
                result,
                aftercheck: None,
            });
        }
        let text = session::session_text(&mut session)?;
        let staged =
            atomic_write::stage(path, text.as_bytes(), Durability::Full).at("open", path)?;
        if read.is_current(path) {
            let Some(displaced) = staged.exchange().at("open", path)? else {
                return Ok(Updated::Done {
                    session,
                    source,
                    result,
                    aftercheck: Some(Aftercheck::new(read, expected)),
                });
            };
            // Looked at without opening it: out of descriptors, an open that
            // fails must not pass for another writer's file (the swap back
            // would undo our write).
            let displaced_is_read = path_inode(displaced.path()) == Some(read.ino);
            if displaced_is_read && read.bytes_unchanged() {
                displaced.keep();
                return Ok(Updated::Done {
                    session,
                    source,
                    result,
                    aftercheck: Some(Aftercheck::new(read, expected)),
                });
            }
            // A write slipped in between the check and the swap: renamed in
            // (it is the displaced file) or written in place (into the
            // inode we read). Put it back at once, so nobody reads a file
            // without it, and redo the change on top of it. Held open (the
            // inode we read is open already): what it holds is carried.
            let opened;
            let displaced_file = if displaced_is_read {
                Some(&read.file)
            } else {
                opened = File::open(displaced.path()).ok();
                opened.as_ref()
            };
            if displaced.swap_back(path).at("open", path)? {
                // What the other writer wrote is carried from here on: a
                // lock-less writer that read our file in the instant it was
                // in place, and writes on top of it, drops it from the file.
                let theirs = displaced_file.and_then(|f| {
                    let bytes = session::read_capped(f).ok()?;
                    session::parse_session(&bytes).ok()
                });
                if let Some(theirs) = theirs {
                    base = Some(merge3(
                        &expected,
                        base.as_ref().unwrap_or(&expected),
                        &theirs,
                    ));
                    base_is_read = false;
                }
                let on_top = File::open(displaced.path()).ok().and_then(|f| {
                    let bytes = session::read_capped(&f).ok()?;
                    (bytes != text.as_bytes()).then(|| session::parse_session(&bytes).ok())?
                });
                // Rarer still: another write landed on ours in that instant.
                if let Some(on_top) = on_top {
                    base = Some(merge3(
                        &session,
                        base.as_ref().unwrap_or(&expected),
                        &on_top,
                    ));
                    base_is_read = false;
                }
            }
            drop(displaced);
        } else {
            drop(staged);
        }
        // The file is not (or no longer) what we expected: build on what is
        // there now, plus whatever we still carry.
        let (now, actual) = match Snapshot::take(path) {
            Ok(taken) => taken,
            Err(e) => return Ok(Updated::Unreadable(e)),
        };
        // With nothing carried, the change simply starts again on the new file.
        let carried = base.as_ref().unwrap_or(&expected);
        base_is_read = base_is_read && *carried == expected;
        base = Some(merge3(&expected, &actual, carried));
        (read, expected) = (now, actual);
        if stop.is_some_and(CancellationToken::is_cancelled) {
            return Err(Error::Message(format!(
                "session {} kept changing until the bridge stopped",
                path.display()
            )));
        }
    }
    Err(Error::Message(format!(
        "session {} kept changing: gave up updating it after {} s",
        path.display(),
        GIVE_UP_AFTER.as_secs()
    )))
}

/// A session file as read: its inode (kept open) and its bytes.
struct Snapshot {
    file: File,
    ino: u64,
    bytes: Vec<u8>,
}

impl Snapshot {
    /// The file at `path` and its parsed content, waiting out an in-place
    /// rewrite that is under way.
    fn take(path: &Path) -> std::result::Result<(Snapshot, Value), Unreadable> {
        let mut tries = 0;
        loop {
            let file = session::open_session(path)?;
            let bytes = session::read_capped(&file)?;
            match session::parse_session(&bytes) {
                Ok(value) => {
                    let ino = file_inode(&file).map_err(Unreadable::Io)?;
                    return Ok((Snapshot { file, ino, bytes }, value));
                }
                Err(e) if tries >= TORN_TRIES => return Err(e),
                Err(_) => {
                    tries += 1;
                    std::thread::sleep(TORN_WAIT);
                }
            }
        }
    }

    /// `path` is still this file, with the same bytes. (The inode is looked
    /// at last, just before the swap, since a rename is the quicker write.)
    fn is_current(&self, path: &Path) -> bool {
        self.bytes_unchanged() && inode(path) == Some(self.ino)
    }

    /// Nobody wrote into this inode since it was read.
    fn bytes_unchanged(&self) -> bool {
        session::read_capped(&self.file).is_ok_and(|now| now == self.bytes)
    }
}

/// The content of an open file once it parses (an in-place write may be
/// under way); `None` if it never does.
fn parse_settled(file: &File) -> Option<Value> {
    for _ in 0..=TORN_TRIES {
        if let Ok(value) = session::read_capped(file).and_then(|b| session::parse_session(&b)) {
            return Some(value);
        }
        std::thread::sleep(TORN_WAIT);
    }
    None
}

/// A replaced file, kept open to see whether an in-place writer still
/// wrote into it after it was swapped out.
pub(crate) struct Aftercheck {
    read: Snapshot,
    /// What the file held when read, parsed: the base of the merge.
    expected: Value,
}

impl Aftercheck {
    fn new(read: Snapshot, expected: Value) -> Self {
        Aftercheck { read, expected }
    }

    /// If the replaced file was written after the swap, merge what that
    /// write changed into `path`. The merge is itself a write, whose
    /// replaced file wants the same check: it is returned. An error (the
    /// merge could not be read or written) leaves this check to be run again.
    pub(crate) fn run(&self, path: &Path) -> Result<Option<Aftercheck>> {
        if self.read.bytes_unchanged() {
            return Ok(None);
        }
        let Some(theirs) = parse_settled(&self.read.file) else {
            return Ok(None);
        };
        let merged = update(path, false, None, |current| {
            let merged = merge3(&self.expected, current, &theirs);
            let changed = merged != *current;
            *current = merged;
            (changed, ())
        })?;
        match merged {
            Updated::Done { aftercheck, .. } => Ok(aftercheck),
            Updated::Unreadable(Unreadable::Io(e)) => Err(e).at("open", path),
            // Gone, or never parsing again: nothing to merge into.
            Updated::Unreadable(_) => Ok(None),
        }
    }
}

/// Three-way merge of session files at mission granularity: `ours`, plus
/// whatever `theirs` changed relative to `base` that `ours` left as it was.
/// Missions only `theirs` added are appended; a mission both changed keeps
/// ours. (`updatedAt` is ours: the next write stamps it anyway.)
pub(crate) fn merge3(base: &Value, ours: &Value, theirs: &Value) -> Value {
    let (Some(b), Some(o), Some(t)) = (base.as_object(), ours.as_object(), theirs.as_object())
    else {
        return ours.clone();
    };
    let mut out = o.clone();
    for (key, value) in t {
        if key == "missions" || key == "updatedAt" {
            continue;
        }
        if b.get(key) != Some(value) && o.get(key) == b.get(key) {
            out.insert(key.clone(), value.clone());
        }
    }
    if let (Some(bm), Some(om), Some(tm)) = (
        missions_of(b),
        out.get("missions").and_then(Value::as_array).cloned(),
        missions_of(t),
    ) {
        let mut merged = om;
        for theirs in tm {
            let id = theirs.get("id");
            let in_base = bm.iter().find(|m| same_mission(m, theirs, id));
            match merged.iter().position(|m| same_mission(m, theirs, id)) {
                // New in theirs: keep it.
                None if in_base.is_none() => merged.push(theirs.clone()),
                // Dropped by someone else since: leave it dropped.
                None => {}
                Some(i) => {
                    if let Some(before) = in_base {
                        if theirs != before && merged[i] == *before {
                            merged[i] = theirs.clone();
                        }
                    }
                }
            }
        }
        out.insert("missions".into(), Value::Array(merged));
    }
    Value::Object(out)
}

fn missions_of(session: &Map<String, Value>) -> Option<&Vec<Value>> {
    session.get("missions").and_then(Value::as_array)
}

/// Missions are the same by `id`; ones without an id only when equal.
fn same_mission(candidate: &Value, mission: &Value, id: Option<&Value>) -> bool {
    match id {
        Some(id) if !id.is_null() => candidate.get("id") == Some(id),
        _ => candidate == mission,
    }
}

fn inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| ino_of(&m))
}

/// The inode of `path` itself (a symlink is not followed).
fn path_inode(path: &Path) -> Option<u64> {
    std::fs::symlink_metadata(path).ok().map(|m| ino_of(&m))
}

fn file_inode(file: &File) -> std::io::Result<u64> {
    file.metadata().map(|m| ino_of(&m))
}

#[cfg(unix)]
fn ino_of(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

/// Without inode numbers the byte comparison does the work.
#[cfg(not(unix))]
fn ino_of(_meta: &std::fs::Metadata) -> u64 {
    0
}

impl Aftercheck {
    /// Run this check shortly ([`AFTERCHECK_DELAY`]), in the path's turn of
    /// the [`path_queue`](super::path_queue), and every check it asks for after it.
    pub(crate) fn schedule(self, path: &Path) {
        schedule_aftercheck(path, self, 0);
    }
}

/// How often a check whose merge failed (no descriptors, disk full) is run
/// again, the wait doubling from [`AFTERCHECK_DELAY`] up to a second.
const AFTERCHECK_TRIES: u32 = 60;

fn schedule_aftercheck(path: &Path, check: Aftercheck, failures: u32) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let path = path.to_path_buf();
    let delay = AFTERCHECK_DELAY
        .saturating_mul(1 << failures.min(8))
        .min(Duration::from_secs(1));
    runtime.spawn(async move {
        tokio::time::sleep(delay).await;
        super::path_queue::enqueue_job(path.clone(), move || match check.run(&path) {
            Ok(Some(next)) => schedule_aftercheck(&path, next, 0),
            Err(_) if failures + 1 < AFTERCHECK_TRIES => {
                schedule_aftercheck(&path, check, failures + 1);
            }
            // Done, or given up on.
            Ok(None) | Err(_) => {}
        });
    });
}

#[cfg(test)]
mod tests;
