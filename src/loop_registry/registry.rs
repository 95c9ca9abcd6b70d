//! `registry.json`: the list of active loops and the run counters.
//!
//! The document is kept as a `serde_json::Value` so fields written by other
//! versions survive a read-modify-write untouched.

use super::REGISTRY_DURABILITY;
use crate::atomic_write;
use crate::clock::now_iso;
use crate::error::{Error, IoContext, Result};
use crate::js_json;
use serde_json::{json, Value};
use std::fs;
use std::io;
use std::path::Path;

/// A registry as the original creates it when none exists.
pub fn fresh() -> Value {
    json!({
        "version": "2.0.0",
        "max_concurrent_loops": 4,
        "updated_at": now_iso(),
        "active_loops": [],
        "total_active": 0,
        "total_completed": 0,
        "total_aborted": 0,
    })
}

/// Read the registry, creating a fresh one if there is none. Creation is
/// exclusive, so a registry another process writes meanwhile is never
/// replaced by an empty one.
pub fn load_or_create(path: &Path) -> Result<Value> {
    loop {
        match fs::read(path) {
            Ok(bytes) => return parse(path, &bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut registry = fresh();
                let text = serialise(path, &mut registry)?;
                if atomic_write::create_exclusive(path, text.as_bytes(), REGISTRY_DURABILITY)
                    .at("open", path)?
                {
                    return Ok(registry);
                }
                // Somebody else created it first: read theirs.
            }
            Err(e) => {
                return Err(Error::Message(format!(
                    "Failed to load registry: {}: {e}",
                    path.display()
                )))
            }
        }
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Value> {
    js_json::from_slice_lossy(bytes)
        .map_err(|e| Error::Message(format!("Failed to load registry: {}: {e}", path.display())))
}

/// Stamp `updated_at`, recount `total_active` and write atomically.
pub fn save(path: &Path, registry: &mut Value) -> Result<()> {
    let text = serialise(path, registry)?;
    atomic_write::write_atomic(path, text.as_bytes(), REGISTRY_DURABILITY).at("open", path)
}

fn serialise(path: &Path, registry: &mut Value) -> Result<String> {
    let total = active_loops_mut(path, registry)?.len();
    let map = registry
        .as_object_mut()
        .ok_or_else(|| invalid(path, "the registry is not a JSON object"))?;
    map.insert("updated_at".into(), Value::from(now_iso()));
    map.insert("total_active".into(), Value::from(total));
    js_json::to_pretty_string(registry).map_err(|e| invalid(path, &e.to_string()))
}

/// The `active_loops` array, or an error naming the file when it is not one.
pub fn active_loops_mut<'a>(path: &Path, registry: &'a mut Value) -> Result<&'a mut Vec<Value>> {
    registry
        .get_mut("active_loops")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| invalid(path, "active_loops is not an array"))
}

/// The `active_loops` array; empty when missing or not an array.
pub fn active_loops(registry: &Value) -> &[Value] {
    registry
        .get("active_loops")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The entry for `loop_id` in `active_loops`.
pub fn entry_mut<'a>(
    path: &Path,
    registry: &'a mut Value,
    loop_id: &str,
) -> Result<Option<&'a mut Value>> {
    Ok(active_loops_mut(path, registry)?
        .iter_mut()
        .find(|e| e.get("loop_id").and_then(Value::as_str) == Some(loop_id)))
}

/// Add one to a counter such as `total_completed` (a missing or odd value counts as 0).
pub fn bump(registry: &mut Value, counter: &str) {
    if let Some(map) = registry.as_object_mut() {
        let current = map.get(counter).and_then(Value::as_f64).unwrap_or(0.0);
        map.insert(counter.into(), json!(current + 1.0));
    }
}

fn invalid(path: &Path, what: &str) -> Error {
    Error::Invalid(format!("Invalid registry {}: {what}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_fresh_registry_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry.json");
        let created = load_or_create(&path).expect("create");
        assert_eq!(created["version"], "2.0.0");
        assert_eq!(created["max_concurrent_loops"], 4);
        let text = fs::read_to_string(&path).expect("read");
        let keys: Vec<_> = serde_json::from_str::<Value>(&text)
            .expect("json")
            .as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            [
                "version",
                "max_concurrent_loops",
                "updated_at",
                "active_loops",
                "total_active",
                "total_completed",
                "total_aborted"
            ]
        );
        let again = load_or_create(&path).expect("load");
        assert_eq!(again, created);
    }

    #[test]
    fn corrupt_registry_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry.json");
        fs::write(&path, "{\"version\": ").expect("write");
        let err = load_or_create(&path).expect_err("corrupt").to_string();
        assert!(err.starts_with("Failed to load registry: "), "{err}");
        assert!(err.contains("registry.json"), "{err}");
        assert_eq!(fs::read_to_string(&path).expect("kept"), "{\"version\": ");
    }

    #[test]
    fn save_stamps_and_counts_and_keeps_unknown_fields() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry.json");
        let mut registry = json!({"version": "2.0.0", "custom": {"x": 1}, "active_loops": [{"loop_id": "a"}], "total_active": 9});
        save(&path, &mut registry).expect("save");
        let back: Value =
            serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("json");
        assert_eq!(back["total_active"], 1);
        assert_eq!(back["custom"]["x"], 1);
        assert!(back["updated_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')));
    }

    #[test]
    fn save_refuses_a_registry_without_active_loops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry.json");
        let err = save(&path, &mut json!({"active_loops": 3}))
            .expect_err("invalid")
            .to_string();
        assert!(err.contains("active_loops is not an array"), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn bump_counts_from_zero() {
        let mut registry = json!({"total_completed": 2});
        bump(&mut registry, "total_completed");
        bump(&mut registry, "total_aborted");
        assert_eq!(registry["total_completed"], 3.0);
        assert_eq!(
            js_json::to_pretty_string(&registry["total_aborted"]).expect("ser"),
            "1"
        );
    }
}
