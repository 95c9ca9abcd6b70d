//! `log.jsonl` beside each session file (§9.10): one JSON object per line,
//! `ts` last, appended in order with the session's status writes.

use super::path_queue;
use crate::clock::now_iso;
use serde_json::Value;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// The journal's file name, in the session's directory.
pub(crate) const JOURNAL_FILE: &str = "log.jsonl";

/// Append `entry` (an object; `ts` is added) to the journal of the session
/// file `session_path`. Best effort: a journal that cannot be written never
/// stops the bridge.
pub(crate) fn append(session_path: &Path, entry: Value) {
    append_holding(session_path, entry, ());
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
    path_queue::enqueue_job(session_path.to_path_buf(), move || {
        let _hold = hold;
        // One write of one line with O_APPEND: lines never interleave.
        if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(&journal) {
            let _ = file.write_all(line.as_bytes());
        }
    });
}
