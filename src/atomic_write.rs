//! Atomic file replacement, as durable as the file needs to be.
//!
//! The new content goes to a uniquely named temp file in the target's
//! directory, created exclusively (a planted symlink there is never
//! followed), then renamed over the target. Readers see the old file or the
//! new one, never a mix, and a crash leaves at most a stray `.<name>.*.tmp`.
//! The target's permission bits are kept. How much is fsynced is the
//! caller's choice: see [`Durability`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// What survives a power failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The file is fsynced before the rename and its directory after it:
    /// once the call returns, the new content is on disk.
    Full,
    /// The file is fsynced before the rename, so after a power failure the
    /// target holds the old content or the new, never an empty or torn file;
    /// the last rename may be lost.
    Content,
    /// Nothing is fsynced (for files that mean nothing after a reboot, such
    /// as a lock whose holder is gone with the machine).
    None,
}

/// Replace `path` with `contents`, atomically.
pub fn write_atomic(path: &Path, contents: &[u8], durability: Durability) -> io::Result<()> {
    let tmp = write_temp_beside(path, contents, durability)?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_parent(path, durability);
    Ok(())
}

/// Create `path` with `contents` only if nothing is there yet; readers never
/// see it half-written. Returns `Ok(false)` when the path already exists
/// (its content is left alone).
pub fn create_exclusive(path: &Path, contents: &[u8], durability: Durability) -> io::Result<bool> {
    let tmp = write_temp_beside(path, contents, durability)?;
    match fs::hard_link(tmp.path(), path) {
        Ok(()) => {
            sync_parent(path, durability);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        // File systems without hard links: fall back to create_new + write.
        Err(_) => {
            drop(tmp);
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut file) => {
                    file.write_all(contents)?;
                    if durability != Durability::None {
                        file.sync_all()?;
                    }
                    sync_parent(path, durability);
                    Ok(true)
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

/// A fully written temp file next to `path`, deleted on drop.
fn write_temp_beside(
    path: &Path,
    contents: &[u8],
    durability: Durability,
) -> io::Result<tempfile::NamedTempFile> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    let existing_mode = existing_permissions(path);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // A new file gets 0o666 less the umask, as fs.writeFile gives it; a
        // replacement is created with the old file's mode (the umask may
        // take bits away, which a chmod then puts back).
        let mode = existing_mode.as_ref().map_or(0o666, |m| m.mode() & 0o7777);
        builder.permissions(fs::Permissions::from_mode(mode));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    if let Some(mode) = existing_mode {
        if tmp.as_file().metadata()?.permissions() != mode {
            tmp.as_file().set_permissions(mode)?;
        }
    }
    tmp.write_all(contents)?;
    if durability != Durability::None {
        tmp.as_file().sync_all()?;
    }
    Ok(tmp)
}

fn existing_permissions(path: &Path) -> Option<fs::Permissions> {
    fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.permissions())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Make a rename in `path`'s directory durable. Best effort: some file
/// systems refuse to fsync a directory, and the rename itself already happened.
fn sync_parent(path: &Path, durability: Durability) {
    if durability != Durability::Full {
        return;
    }
    #[cfg(unix)]
    if let Ok(dir) = File::open(parent_dir(path)) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = File::open;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .expect("read dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.json");
        write_atomic(&path, b"one", Durability::Full).expect("first write");
        write_atomic(&path, b"two", Durability::Content).expect("second write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        assert!(temp_leftovers(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn keeps_the_file_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.json");
        write_atomic(&path, b"one", Durability::Full).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        write_atomic(&path, b"two", Durability::Content).expect("rewrite");
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // Bits a usual umask (022) would strip come back too.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).expect("chmod");
        write_atomic(&path, b"three", Durability::None).expect("rewrite");
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);
    }

    #[cfg(unix)]
    #[test]
    fn never_follows_a_planted_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").expect("victim");
        // Plant symlinks at every plausible fixed temp name.
        for name in [".a.json.tmp", "a.json.tmp"] {
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).expect("plant");
        }
        let path = dir.path().join("a.json");
        write_atomic(&path, b"new", Durability::Full).expect("write");
        assert_eq!(fs::read(&victim).expect("victim"), b"keep");
        assert_eq!(fs::read(&path).expect("target"), b"new");
    }

    #[test]
    fn create_exclusive_refuses_to_clobber() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lock");
        assert!(create_exclusive(&path, b"first", Durability::None).expect("create"));
        assert!(!create_exclusive(&path, b"second", Durability::None).expect("second create"));
        assert_eq!(fs::read(&path).expect("read"), b"first");
        assert!(temp_leftovers(dir.path()).is_empty());
    }
}
