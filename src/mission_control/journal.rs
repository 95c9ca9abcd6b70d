//! `log.jsonl` beside each session file (§9.10): one JSON object per line,
//! `ts` last, appended in order with the session's status writes.
//!
//! A journal that cannot be written never stops the bridge, but its lines
//! are not dropped silently either: they wait and are tried again with a
//! capped backoff (at most [`MAX_UNWRITTEN`] bytes of them per journal),
//! the failure is logged once per journal and kind of error
//! (`queue-tailer:journal-failed`) and the write that lands once
//! (`queue-tailer:journal-recovered`). Our lines never run into others: a
//! write cut short (disk full) ends its torn line as soon as the disk
//! takes a byte, and a journal that ends inside a line (a crash, another
//! writer cut short) gets a line break before ours. The lines of a session
//! whose directory is gone are dropped (there is no journal to keep).

use super::log::Logger;
use super::path_queue;
use crate::backoff::backoff_ms;
use crate::clock::now_iso;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The journal's file name, in the session's directory.
pub(crate) const JOURNAL_FILE: &str = "log.jsonl";

/// At most this many bytes of lines wait for one journal that cannot be
/// written; beyond it the oldest go (and the recovered line says how many).
const MAX_UNWRITTEN: usize = 1 << 20;
/// The first wait before a failed journal write is tried again (it doubles).
const RETRY_BASE_MS: f64 = 100.0;
/// The longest wait between tries.
const RETRY_MAX_MS: f64 = 5000.0;

/// Append `entry` (an object; `ts` is added) to the journal of the session
/// file `session_path`.
pub(crate) fn append(session_path: &Path, entry: Value, log: &Logger) {
    append_holding(session_path, entry, (), log);
}

/// Lines waiting for one journal's next write, and what each keeps alive
/// until it is written.
struct Waiting {
    lines: String,
    holds: Vec<Box<dyn Send>>,
}

/// Journals with a write queued that has not started: a line appended
/// meanwhile joins it, so a burst of lines for one session (ten missions'
/// outcomes in a sweep) is one queued job and one write, not ten. Each line
/// is appended after the status write it reports is done, so joining an
/// earlier job never puts a line before its write.
fn waiting() -> &'static Mutex<HashMap<PathBuf, Waiting>> {
    static WAITING: OnceLock<Mutex<HashMap<PathBuf, Waiting>>> = OnceLock::new();
    WAITING.get_or_init(Default::default)
}

/// A journal whose writes fail: how often in a row, what was logged, and
/// how many lines had to go.
#[derive(Default)]
struct Failing {
    failures: u32,
    logged: HashSet<String>,
    dropped: usize,
}

fn failing() -> &'static Mutex<HashMap<PathBuf, Failing>> {
    static FAILING: OnceLock<Mutex<HashMap<PathBuf, Failing>>> = OnceLock::new();
    FAILING.get_or_init(Default::default)
}

/// [`append`], keeping `hold` alive until the line is written (or its
/// write has failed once: what waits for the disk holds nothing).
pub(crate) fn append_holding(
    session_path: &Path,
    entry: Value,
    hold: impl Send + 'static,
    log: &Logger,
) {
    let Value::Object(mut map) = entry else {
        return;
    };
    map.insert("ts".into(), Value::from(now_iso()));
    let Some(dir) = session_path.parent() else {
        return;
    };
    let journal = dir.join(JOURNAL_FILE);
    let mut line = crate::js_json::to_compact_string(&Value::Object(map));
    line.push('\n');
    {
        let mut waiting = waiting().lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(queued) = waiting.get_mut(&journal) {
            queued.lines.push_str(&line);
            queued.holds.push(Box::new(hold));
            return;
        }
        waiting.insert(
            journal.clone(),
            Waiting {
                lines: line,
                holds: vec![Box::new(hold)],
            },
        );
    }
    schedule(
        session_path.to_path_buf(),
        journal,
        std::sync::Arc::clone(log),
    );
}

/// Queue the write of `journal`'s waiting lines behind the session's writes.
fn schedule(session_path: PathBuf, journal: PathBuf, log: Logger) {
    // The runtime to wait on before a retry (none outside one: no retry).
    let runtime = tokio::runtime::Handle::try_current().ok();
    let session = session_path.clone();
    path_queue::enqueue_job(session_path, move || {
        let Some(queued) = waiting()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&journal)
        else {
            return;
        };
        match write_lines(&journal, &queued.lines) {
            Ok(()) => {
                drop(queued.holds);
                recovered(&journal, &log);
            }
            Err((_, error))
                if error.kind() == io::ErrorKind::NotFound
                    && !journal.parent().is_some_and(Path::exists) =>
            {
                // The session was removed: nothing left to journal to.
                drop(queued.holds);
                failing()
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&journal);
            }
            Err((unwritten, error)) => {
                drop(queued.holds);
                failed(session, journal, &unwritten, &error, log, runtime);
            }
        }
    });
}

/// The first write after failures: say so once.
fn recovered(journal: &Path, log: &Logger) {
    let Some(was) = failing()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(journal)
    else {
        return;
    };
    log.log(
        "queue-tailer:journal-recovered",
        json!({"path": journal.to_string_lossy(), "failedAttempts": was.failures, "droppedBytes": was.dropped}),
    );
}

/// A write of `journal` failed with `unwritten` still to write: put it back
/// before what was appended meanwhile, and try again later.
fn failed(
    session: PathBuf,
    journal: PathBuf,
    unwritten: &str,
    error: &io::Error,
    log: Logger,
    runtime: Option<tokio::runtime::Handle>,
) {
    let code = crate::error::code(error).to_owned();
    let retry_ms = {
        let mut failing = failing().lock().unwrap_or_else(PoisonError::into_inner);
        let state = failing.entry(journal.clone()).or_default();
        state.failures += 1;
        let retry_ms = backoff_ms(f64::from(state.failures), RETRY_BASE_MS).min(RETRY_MAX_MS);
        if state.logged.insert(code.clone()) {
            log.log(
                "queue-tailer:journal-failed",
                json!({"path": journal.to_string_lossy(), "code": code, "error": error.to_string(), "retryMs": retry_ms}),
            );
        }
        retry_ms
    };
    let Some(runtime) = runtime else { return };
    let mut waiting = waiting().lock().unwrap_or_else(PoisonError::into_inner);
    let queued_already = waiting.contains_key(&journal);
    let entry = waiting.entry(journal.clone()).or_insert_with(|| Waiting {
        lines: String::new(),
        holds: Vec::new(),
    });
    entry.lines.insert_str(0, unwritten);
    let over = entry.lines.len().saturating_sub(MAX_UNWRITTEN);
    if over > 0 {
        // Whole lines from the front, at least `over` bytes: the cut is
        // found in the bytes (`over` may fall inside a character, a line
        // break never does).
        let cut = entry.lines.as_bytes()[over..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(entry.lines.len(), |i| over + i + 1);
        entry.lines.drain(..cut);
        failing()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(journal.clone())
            .or_default()
            .dropped += cut;
    }
    drop(waiting);
    if queued_already {
        // A line appended meanwhile has queued a write already: it takes these too.
        return;
    }
    runtime.spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs_f64(retry_ms / 1000.0)).await;
        schedule(session, journal, log);
    });
}

/// Append `lines` to `journal` in one write with `O_APPEND` (lines never
/// interleave with another writer's). On failure, the lines not written
/// whole come back with the error.
fn write_lines(journal: &Path, lines: &str) -> Result<(), (String, io::Error)> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(journal)
        .map_err(|e| (lines.to_owned(), e))?;
    let start = file.metadata().map_or(0, |m| m.len());
    let broken = start > 0 && !ends_a_line(&file, start);
    let text = if broken {
        format!("\n{lines}")
    } else {
        lines.to_owned()
    };
    let (written, error) = match write_counting(&mut file, text.as_bytes()) {
        Ok(()) => return Ok(()),
        Err(cut) => cut,
    };
    // Cut short. What went out whole stays; the torn line is ended now if
    // the disk takes one byte more, else by the next write. It is never
    // cut off: another process may have appended after it (a second
    // bridge journals its outcomes here too), and a cut would drop that.
    if written > 0 && text.as_bytes()[written - 1] != b'\n' {
        let _ = file.write_all(b"\n");
    }
    let done = text.as_bytes()[..written]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let rest = text
        .get(done.max(usize::from(broken))..)
        .unwrap_or_default();
    Err((rest.to_owned(), error))
}

/// Whether the last byte of `file` (of length `len`) ends a line.
fn ends_a_line(file: &File, len: u64) -> bool {
    let mut last = [0u8; 1];
    #[cfg(unix)]
    let read = std::os::unix::fs::FileExt::read_at(file, &mut last, len - 1);
    #[cfg(windows)]
    let read = std::os::windows::fs::FileExt::seek_read(file, &mut last, len - 1);
    matches!(read, Ok(1)) && last[0] == b'\n' || read.is_err()
}

/// `write_all`, saying how much went out when it fails.
fn write_counting(file: &mut File, mut bytes: &[u8]) -> Result<(), (usize, io::Error)> {
    let mut written = 0;
    while !bytes.is_empty() {
        match file.write(bytes) {
            Ok(0) => return Err((written, io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                written += n;
                bytes = &bytes[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((written, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lines_appended_together_are_all_written_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = dir.path().join("session.json");
        let log = crate::mission_control::log::silent();
        for i in 0..200 {
            append(&session, serde_json::json!({"event": "x", "n": i}), &log);
            if i % 50 == 0 {
                path_queue::flush(session.clone()).await.expect("flushed");
            }
        }
        path_queue::flush(session.clone()).await.expect("flushed");
        let ns = ns_in(&dir.path().join(JOURNAL_FILE));
        assert_eq!(ns, (0..200).collect::<Vec<_>>());
    }

    /// A session whose journal cannot be written yet: a directory stands
    /// where it goes (EISDIR, as ENOSPC or EACCES would fail).
    struct Blocked {
        _dir: tempfile::TempDir,
        session: PathBuf,
        journal: PathBuf,
        recorder: std::sync::Arc<crate::mission_control::log::Recorder>,
        log: Logger,
    }

    fn blocked() -> Blocked {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = dir.path().join("session.json");
        let journal = dir.path().join(JOURNAL_FILE);
        std::fs::create_dir(&journal).expect("a directory where the journal goes");
        let recorder = std::sync::Arc::new(crate::mission_control::log::Recorder::default());
        let log: Logger = recorder.clone();
        Blocked {
            _dir: dir,
            session,
            journal,
            recorder,
            log,
        }
    }

    /// What `found` finds, waiting for it up to 15 s.
    async fn until<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            if let Some(it) = found() {
                return it;
            }
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The `n` of each line of `journal`; every line must parse.
    fn ns_in(journal: &Path) -> Vec<u64> {
        std::fs::read_to_string(journal)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).expect("a whole line")["n"]
                    .as_u64()
                    .expect("n")
            })
            .collect()
    }

    /// A journal that cannot be written keeps its lines, says so once, and
    /// writes them all, in order, once it can.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lines_that_cannot_be_written_wait_and_land_in_order() {
        let b = blocked();
        for i in 0..5 {
            append(&b.session, json!({"n": i}), &b.log);
            tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        }
        std::fs::remove_dir(&b.journal).expect("rmdir");
        append(&b.session, json!({"n": 5}), &b.log);
        let ns = until("six lines", || {
            let ns = ns_in(&b.journal);
            (ns.len() == 6).then_some(ns)
        })
        .await;
        assert_eq!(ns, (0..6).collect::<Vec<_>>());
        let failed: Vec<_> = b
            .recorder
            .metas("queue-tailer:journal-failed")
            .iter()
            .map(|meta| meta["code"].clone())
            .collect();
        assert_eq!(failed, [json!("EISDIR")], "logged once");
        assert!(!b
            .recorder
            .metas("queue-tailer:journal-recovered")
            .is_empty());
    }

    /// More than [`MAX_UNWRITTEN`] waiting (lines of multi-byte text): the
    /// oldest whole lines go, counted, and the rest land whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backlog_past_its_cap_drops_whole_lines_from_the_front() {
        let b = blocked();
        let text = "é".repeat(61);
        let lines = MAX_UNWRITTEN / 100 + 2000;
        append(&b.session, json!({"n": 0, "text": text}), &b.log);
        // The first write fails; the rest pile up behind its retry.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        for n in 1..lines {
            append(&b.session, json!({"n": n, "text": text}), &b.log);
        }
        // Another failed try applies the cap; then the journal can be written.
        let tries = || {
            failing()
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&b.journal)
                .map_or(0, |f| f.failures)
        };
        let before = tries();
        until("a second try", || (tries() > before).then_some(())).await;
        std::fs::remove_dir(&b.journal).expect("rmdir");
        let recovered = until("the journal written", || {
            b.recorder.metas("queue-tailer:journal-recovered").pop()
        })
        .await;
        assert!(
            recovered["droppedBytes"].as_u64().unwrap_or(0) > 0,
            "{recovered}"
        );
        let written = std::fs::read_to_string(&b.journal).expect("journal");
        assert!(written.len() <= MAX_UNWRITTEN, "{} bytes", written.len());
        let ns = ns_in(&b.journal);
        let first = ns.first().copied().unwrap_or_default();
        assert!(first > 0, "the oldest lines went");
        assert_eq!(
            ns,
            (first..lines as u64).collect::<Vec<_>>(),
            "the rest, in order"
        );
    }

    /// A session removed with lines still to journal: they are dropped, not
    /// tried again for the life of the process.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_lines_of_a_removed_session_are_dropped() {
        let b = blocked();
        let session = b.journal.join("gone").join("session.json");
        let journal = b.journal.join("gone").join(JOURNAL_FILE);
        append(&session, json!({"n": 1}), &b.log);
        path_queue::flush(session.clone()).await.expect("flushed");
        assert!(!waiting()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&journal));
        assert!(!failing()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&journal));
        assert!(b.recorder.metas("queue-tailer:journal-failed").is_empty());
    }

    /// A journal that ends inside a line (a crash, another writer's write
    /// cut short) gets a line break first: our line is whole.
    #[test]
    fn a_torn_last_line_is_ended_before_ours() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = dir.path().join(JOURNAL_FILE);
        std::fs::write(&journal, "{\"whole\":1}\n{\"torn").expect("write");
        write_lines(&journal, "{\"n\":1}\n").expect("append");
        let text = std::fs::read_to_string(&journal).expect("read");
        assert_eq!(text, "{\"whole\":1}\n{\"torn\n{\"n\":1}\n");
        write_lines(&journal, "{\"n\":2}\n").expect("append");
        assert!(std::fs::read_to_string(&journal)
            .expect("read")
            .ends_with("{\"n\":1}\n{\"n\":2}\n"));
    }
}
