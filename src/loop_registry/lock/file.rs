//! The lock file's content: what a holder writes into `registry.json.lock`
//! and what a reader makes of it.
//!
//! The JS original writes `{pid, loopId, timestamp, leaseExpiry,
//! fencingToken}` with `JSON.stringify`; we write the same fields in the
//! same order (plus `processStart`, which it ignores), so either side
//! reads the other's file. Reading is lenient because a reader can come
//! in between a writer's exclusive create and its write: an empty or
//! partial file is still a lock, it just names no holder.

use crate::error::{IoContext, Result};
use crate::process_identity;
use serde_json::Value;
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::SystemTime;

/// The `loopId` a lock file records, as JSON text: the caller's value as
/// `JSON.stringify` wrote it, or none (JS `undefined`, which it leaves out).
///
/// Kept as text rather than a parsed value so that what JS handed us goes
/// into the file byte for byte (a number stays `7`, not `7.0`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LoopTag(Option<String>);

impl From<&str> for LoopTag {
    fn from(id: &str) -> Self {
        LoopTag(Some(Value::from(id).to_string()))
    }
}

impl LoopTag {
    /// JSON text from the JS side; `None` when it is not one JSON value.
    pub(crate) fn from_json(text: Option<String>) -> Option<Self> {
        match text {
            None => Some(LoopTag(None)),
            Some(text) => serde_json::from_str::<serde::de::IgnoredAny>(&text)
                .ok()
                .map(|_| LoopTag(Some(text))),
        }
    }
}

/// What a lock file said when we looked: its bytes (to tell later whether
/// it changed), its age (for a file that names no holder) and the holder
/// it names, if it parses.
pub(super) struct Observed {
    pub bytes: Vec<u8>,
    pub modified: Option<SystemTime>,
    pub holder: Option<Holder>,
}

/// The fields of a lock file we act on. Each is optional: files written by
/// older versions or caught mid-write may lack any of them.
#[derive(Debug, Default)]
pub(super) struct Holder {
    pub pid: Option<i64>,
    pub loop_id: Option<Value>,
    pub lease_expiry: Option<f64>,
    pub fencing_token: Option<Value>,
    pub process_start: Option<String>,
}

/// This process's pid as lock files record it.
pub(super) fn own_pid() -> i64 {
    i64::from(std::process::id())
}

/// Read and parse the lock file at `path`; `None` when there is none.
///
/// The one place the file is read: every decision (wait, break, release)
/// starts from what this returns. The age comes from the open file, so it
/// belongs to the bytes read even if the file is replaced meanwhile.
pub(super) fn read(path: &Path) -> Result<Option<Observed>> {
    // Not blocking on a FIFO planted at the path: it reads as empty, so as
    // a lock file that is unreadable.
    let file = match crate::whole_file::open_to_read(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at("open", path),
    };
    let meta = file.metadata().ok();
    let size = meta.as_ref().map_or(0, std::fs::Metadata::len);
    let bytes = match crate::whole_file::read_sized(&file, size) {
        Ok(bytes) => bytes,
        // A directory opens; reading it fails, as Node reports it.
        Err(e) if e.kind() == io::ErrorKind::IsADirectory => return Err(e).at("read", path),
        Err(e) => return Err(e).at("open", path),
    };
    let modified = meta.and_then(|m| m.modified().ok());
    let holder = parse_holder(&bytes);
    Ok(Some(Observed {
        bytes,
        modified,
        holder,
    }))
}

/// The holder a lock file names, or `None` when it is not a JSON object.
fn parse_holder(bytes: &[u8]) -> Option<Holder> {
    let value: Value = crate::js_json::from_slice_lossy(bytes).ok()?;
    let map = value.as_object()?;
    // JS compares `lock.pid === process.pid`: only a whole number is a pid.
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

/// The content this process writes when it takes the lock at `now` (ms)
/// with fencing token `token`, holding it for `lease_ms`.
///
/// Written by hand, not through serde, so the caller's `loopId` goes in as
/// the JSON text it came as and the field order is the original's.
pub(super) fn record(tag: &LoopTag, token: u64, now: u64, lease_ms: u64) -> Vec<u8> {
    let mut text = format!("{{\"pid\":{}", std::process::id());
    if let Some(id) = &tag.0 {
        text.push_str(",\"loopId\":");
        text.push_str(id);
    }
    let _ = write!(
        text,
        ",\"timestamp\":{now},\"leaseExpiry\":{},\"fencingToken\":{token}",
        now + lease_ms
    );
    if let Some(start) = process_identity::own_start_identity() {
        text.push_str(",\"processStart\":");
        text.push_str(&Value::from(start).to_string());
    }
    text.push('}');
    text.into_bytes()
}
