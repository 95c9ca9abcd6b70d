//! `log.jsonl` beside each session file (§9.10): one JSON object per line,
//! `ts` last, appended in order with the session's status writes.

use super::path_queue;
use crate::clock::now_iso;
use serde_json::Value;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The journal's file name, in the session's directory.
pub(crate) const JOURNAL_FILE: &str = "log.jsonl";

/// Append `entry` (an object; `ts` is added) to the journal of the session
/// file `session_path`. Best effort: a journal that cannot be written never
/// stops the bridge.
pub(crate) fn append(session_path: &Path, entry: Value) {
    append_holding(session_path, entry, ());
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

/// [`append`], keeping `hold` alive until the line is written (or dropped).
pub(crate) fn append_holding(session_path: &Path, entry: Value, hold: impl Send + 'static) {
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
    path_queue::enqueue_job(session_path.to_path_buf(), move || {
        let Some(queued) = waiting()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&journal)
        else {
            return;
        };
        // One write with O_APPEND: lines never interleave with another
        // writer's.
        if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(&journal) {
            let _ = file.write_all(queued.lines.as_bytes());
        }
        drop(queued.holds);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lines_appended_together_are_all_written_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = dir.path().join("session.json");
        for i in 0..200 {
            append(&session, serde_json::json!({"event": "x", "n": i}));
            if i % 50 == 0 {
                path_queue::flush(session.clone()).await.expect("flushed");
            }
        }
        path_queue::flush(session.clone()).await.expect("flushed");
        let text = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).expect("journal");
        let ns: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).expect("a JSON line")["n"]
                    .as_u64()
                    .expect("n")
            })
            .collect();
        assert_eq!(ns, (0..200).collect::<Vec<_>>());
    }
}
