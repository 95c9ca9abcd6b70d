//! Loop directories: ids, archiving and the legacy
//! `<baseDir>/session-state.json` symlink older tools still read.

use crate::error::{Error, IoContext, Result};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The sub-directories every loop directory has.
pub(crate) const LOOP_SUBDIRS: [&str; 5] = [
    "iterations",
    "prompts",
    "outputs",
    "analysis",
    "checkpoints",
];
/// The state file's name, in a loop directory and (legacy) in the base dir.
pub(crate) const STATE_FILE: &str = "session-state.json";

/// A loop id must name one directory inside `loops/`: not empty, not `.`
/// or `..`, and without separators or NUL.
pub(crate) fn check_loop_id(id: &str) -> Result<()> {
    let bad = id.is_empty() || id == "." || id == ".." || id.contains(['/', '\\', '\0']);
    if bad {
        return Err(Error::Invalid(format!(
            "Invalid loop id {id:?}: it must name a single directory"
        )));
    }
    Ok(())
}

/// Move `loop_dir` into `archive_dir`, under its own name, or with a
/// millisecond suffix when that name is taken. Returns where it went.
pub(super) fn move_to_archive(
    loop_dir: &Path,
    archive_dir: &Path,
    loop_id: &str,
) -> Result<PathBuf> {
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
pub(super) fn update_legacy_symlink(base_dir: &Path, only: Option<&str>) -> Result<()> {
    let link = base_dir.join(STATE_FILE);
    match fs::symlink_metadata(&link) {
        Ok(meta) if meta.file_type().is_symlink() => match fs::remove_file(&link) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e).at("unlink", &link),
            _ => {}
        },
        Ok(_) => return Ok(()),
        Err(_) => {}
    }
    let Some(id) = only else { return Ok(()) };
    if check_loop_id(id).is_err() {
        return Ok(());
    }
    let target = Path::new("loops").join(id).join(STATE_FILE);
    match symlink(&target, &link) {
        // Another process made the same link a moment ago.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other.between("symlink", &target, &link),
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

    #[test]
    fn loop_ids_cannot_escape_loops_dir() {
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b", "../x"] {
            assert!(check_loop_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_loop_id("ralph-x-1234abcd").is_ok());
        assert!(check_loop_id("..x").is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn legacy_symlink_follows_the_single_active_loop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path();
        let link = base.join(STATE_FILE);
        update_legacy_symlink(base, Some("a")).expect("link");
        assert_eq!(
            fs::read_link(&link).expect("is link"),
            Path::new("loops/a/session-state.json")
        );
        update_legacy_symlink(base, None).expect("unlink");
        assert!(fs::symlink_metadata(&link).is_err());
        fs::write(&link, "mine").expect("regular file");
        update_legacy_symlink(base, Some("a")).expect("leave");
        assert_eq!(fs::read_to_string(&link).expect("kept"), "mine");
    }
}
