//! Loop directories: ids, `session-state.json`, archiving and the legacy
//! `<baseDir>/session-state.json` symlink older tools still read.

use crate::atomic_write;
use crate::error::{Error, IoContext, Result};
use crate::js_json;
use serde_json::Value;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The sub-directories every loop directory has.
pub const LOOP_SUBDIRS: [&str; 5] = [
    "iterations",
    "prompts",
    "outputs",
    "analysis",
    "checkpoints",
];
/// The state file's name, in a loop directory and (legacy) in the base dir.
pub const STATE_FILE: &str = "session-state.json";

/// `ralph-<slug>-<8 hex>`: slug = lower-case task, runs of other than
/// `[a-z0-9]` turned into `-`, trimmed of `-`, cut to 30 characters.
pub fn generate_loop_id(task: &str) -> String {
    let lowered = task.to_lowercase();
    let mut slug = String::with_capacity(lowered.len());
    for c in lowered.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(30).collect();
    let random = uuid::Uuid::new_v4();
    let hex: String = random.as_bytes()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("ralph-{slug}-{hex}")
}

/// A loop id must name one directory inside `loops/`: not empty, not `.`
/// or `..`, and without separators or NUL.
pub fn check_loop_id(id: &str) -> Result<()> {
    let bad = id.is_empty() || id == "." || id == ".." || id.contains(['/', '\\', '\0']);
    if bad {
        return Err(Error::Invalid(format!(
            "Invalid loop id {id:?}: it must name a single directory"
        )));
    }
    Ok(())
}

/// Read a loop's state: `Loop not found: <id>` when absent,
/// `Failed to load loop state: …` when unreadable.
pub fn read_state(loop_dir: &Path, loop_id: &str) -> Result<Value> {
    let path = loop_dir.join(STATE_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::Message(format!("Loop not found: {loop_id}")))
        }
        Err(e) => {
            return Err(Error::Message(format!(
                "Failed to load loop state: {}: {e}",
                path.display()
            )))
        }
    };
    js_json::from_slice_lossy(&bytes).map_err(|e| {
        Error::Message(format!(
            "Failed to load loop state: {}: {e}",
            path.display()
        ))
    })
}

/// Write a loop's state atomically as `JSON.stringify(state, null, 2)`.
pub fn write_state(loop_dir: &Path, state: &Value) -> Result<()> {
    let path = loop_dir.join(STATE_FILE);
    let text =
        js_json::to_pretty_string(state).map_err(|e| Error::Invalid(format!("loop state: {e}")))?;
    atomic_write::write_atomic(
        &path,
        text.as_bytes(),
        crate::loop_registry::REGISTRY_DURABILITY,
    )
    .at("open", &path)
}

/// Create `loop_dir` and its sub-directories.
pub fn create_loop_dirs(loop_dir: &Path) -> Result<()> {
    for sub in LOOP_SUBDIRS {
        let dir = loop_dir.join(sub);
        fs::create_dir_all(&dir).at("mkdir", &dir)?;
    }
    Ok(())
}

/// Move `loop_dir` into `archive_dir`, under its own name, or with a
/// millisecond suffix when that name is taken. Returns where it went.
pub fn move_to_archive(loop_dir: &Path, archive_dir: &Path, loop_id: &str) -> Result<PathBuf> {
    fs::create_dir_all(archive_dir).at("mkdir", archive_dir)?;
    let mut target = archive_dir.join(loop_id);
    if fs::symlink_metadata(&target).is_ok() {
        target = archive_dir.join(format!("{loop_id}-{}", crate::clock::now_ms()));
    }
    fs::rename(loop_dir, &target).between("rename", loop_dir, &target)?;
    Ok(target)
}

/// Point `<base_dir>/session-state.json` at the one active loop, or at
/// nothing. A regular file there belongs to another tool and is left alone.
pub fn update_legacy_symlink(base_dir: &Path, active_loops: &[Value]) -> Result<()> {
    let link = base_dir.join(STATE_FILE);
    match fs::symlink_metadata(&link) {
        Ok(meta) if meta.file_type().is_symlink() => match fs::remove_file(&link) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e).at("unlink", &link),
            _ => {}
        },
        Ok(_) => return Ok(()),
        Err(_) => {}
    }
    let [only] = active_loops else { return Ok(()) };
    let Some(id) = only.get("loop_id").and_then(Value::as_str) else {
        return Ok(());
    };
    if check_loop_id(id).is_err() {
        return Ok(());
    }
    let target = Path::new("loops").join(id).join(STATE_FILE);
    match symlink(&target, &link) {
        // Another process made the same link a moment ago.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other.at("symlink", &link),
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    // Needs developer mode or privileges; without them there is simply no legacy link.
    std::os::windows::fs::symlink_file(target, link).or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loop_ids_follow_the_original_shape() {
        let id = generate_loop_id("Fix the  Auth/Login bug!!");
        let (slug, hex) = id.rsplit_once('-').expect("dash");
        assert_eq!(slug, "ralph-fix-the-auth-login-bug");
        assert_eq!(hex.len(), 8);
        assert!(hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let long = generate_loop_id(&"abc ".repeat(20));
        assert_eq!(long.len(), "ralph-".len() + 30 + 9);
        assert!(generate_loop_id("").starts_with("ralph--"));
        assert_ne!(generate_loop_id("x"), generate_loop_id("x"));
    }

    #[test]
    fn loop_ids_cannot_escape_loops_dir() {
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b", "../x"] {
            assert!(check_loop_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_loop_id("ralph-x-1234abcd").is_ok());
        assert!(check_loop_id("..x").is_ok());
    }

    #[test]
    fn state_errors_are_distinct() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = read_state(dir.path(), "x")
            .expect_err("missing")
            .to_string();
        assert_eq!(err, "Loop not found: x");
        fs::write(dir.path().join(STATE_FILE), "{oops").expect("write");
        let err = read_state(dir.path(), "x")
            .expect_err("corrupt")
            .to_string();
        assert!(err.starts_with("Failed to load loop state: "), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn legacy_symlink_follows_the_single_active_loop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path();
        let link = base.join(STATE_FILE);
        update_legacy_symlink(base, &[json!({"loop_id": "a"})]).expect("link");
        assert_eq!(
            fs::read_link(&link).expect("is link"),
            Path::new("loops/a/session-state.json")
        );
        update_legacy_symlink(base, &[json!({"loop_id": "a"}), json!({"loop_id": "b"})])
            .expect("unlink");
        assert!(fs::symlink_metadata(&link).is_err());
        fs::write(&link, "mine").expect("regular file");
        update_legacy_symlink(base, &[json!({"loop_id": "a"})]).expect("leave");
        assert_eq!(fs::read_to_string(&link).expect("kept"), "mine");
    }
}
