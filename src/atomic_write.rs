//! Atomic file replacement, as durable as the file needs to be.
//!
//! The new content goes to a uniquely named temp file in the target's
//! directory, created exclusively (a planted symlink there is never
//! followed), then renamed over the target. Readers see the old file or the
//! new one, never a mix, and a crash leaves at most a stray
//! `.<name>.<pid>.<random>.tmp`, which [`remove_stale_temps`] clears once
//! that pid is gone. The target's permission bits are kept. How much is
//! fsynced is the caller's choice: see [`Durability`].

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// What survives a power failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// The file is fsynced before the rename and its directory after it:
    /// once the call returns, the new content is on disk.
    Full,
    #[cfg(test)]
    /// The file is fsynced before the rename, so after a power failure the
    /// target holds the old content or the new, never an empty or torn file;
    /// the last rename may be lost.
    Content,
    /// Nothing is fsynced (for files that mean nothing after a reboot, such
    /// as a lock whose holder is gone with the machine).
    None,
}

/// Replace `path` with `contents`, atomically.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], durability: Durability) -> io::Result<()> {
    stage(path, contents, durability)?.commit()
}

/// New content for `path`, written and synced beside it but not yet in place.
pub(crate) struct Staged<'a> {
    tmp: tempfile::NamedTempFile,
    target: &'a Path,
    durability: Durability,
}

/// Write `contents` to a temp file beside `path`, ready to replace it.
pub(crate) fn stage<'a>(
    path: &'a Path,
    contents: &[u8],
    durability: Durability,
) -> io::Result<Staged<'a>> {
    Ok(Staged {
        tmp: write_temp_beside(path, contents, durability)?,
        target: path,
        durability,
    })
}

impl Staged<'_> {
    /// Rename the new content over the target.
    pub(crate) fn commit(self) -> io::Result<()> {
        self.tmp.persist(self.target).map_err(|e| e.error)?;
        sync_parent(self.target, self.durability);
        Ok(())
    }

    /// Swap the new content with the target in one step, handing back the
    /// file it displaced (deleted when dropped), so the caller can see
    /// whether that was still the file it meant to replace. Where the OS
    /// cannot swap (or the target is gone), this is [`Staged::commit`] and
    /// gives `None`.
    pub(crate) fn exchange(self) -> io::Result<Option<Displaced>> {
        let target = self.target;
        let durability = self.durability;
        let tmp = self.tmp.into_temp_path();
        if !swap(&tmp, target)? {
            tmp.persist(target).map_err(|e| e.error)?;
            sync_parent(target, durability);
            return Ok(None);
        }
        // The directory is synced once the caller keeps the swap
        // ([`Displaced::keep`]): until then the displaced file may have to
        // go straight back, and every moment it is out of place counts.
        Ok(Some(Displaced {
            path: tmp,
            target: target.to_path_buf(),
            durability,
        }))
    }
}

/// The file an [`Staged::exchange`] took out of place; removed on drop.
pub(crate) struct Displaced {
    path: tempfile::TempPath,
    target: std::path::PathBuf,
    durability: Durability,
}

impl Displaced {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The swap stands: make it durable (the directory is synced, as a
    /// commit does) and delete the displaced file.
    pub(crate) fn keep(self) {
        sync_parent(&self.target, self.durability);
    }

    /// Swap it back into `target`'s place; this then holds what was there.
    pub(crate) fn swap_back(&self, target: &Path) -> io::Result<bool> {
        swap(&self.path, target)
    }
}

/// `renameat2(RENAME_EXCHANGE)`: `Ok(false)` when it cannot be done here.
#[cfg(target_os = "linux")]
fn swap(a: &Path, b: &Path) -> io::Result<bool> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
    };
    let (a, b) = (cstr(a)?, cstr(b)?);
    // The system call itself, not libc's wrapper: glibc has one only since
    // 2.28 and musl since 1.2.5, and the prebuilt binaries target glibc 2.17
    // and any Alpine; a binary that named the wrapper would not load there.
    // SAFETY: both are valid NUL-terminated paths, resolved from the cwd.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // No target to swap with, or a file system / kernel without the flag.
        Some(libc::ENOENT | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => Ok(false),
        _ => Err(err),
    }
}

#[cfg(not(target_os = "linux"))]
#[allow(clippy::unnecessary_wraps)] // the Linux version's shape
fn swap(_a: &Path, _b: &Path) -> io::Result<bool> {
    Ok(false)
}

/// Temp files older than this are stray whoever made them: no writer keeps one this long.
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Remove the temp files of `path` left by writers that died mid-write: those
/// whose pid is gone, and any over an hour old. Returns how many went.
pub(crate) fn remove_stale_temps(path: &Path) -> io::Result<usize> {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(0);
    };
    let prefix = format!(".{name}.");
    let own = std::process::id();
    let mut removed = 0;
    for entry in fs::read_dir(parent_dir(path))? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(middle) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let pid = middle
            .split_once('.')
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        let old = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        let writer_gone =
            pid.is_some_and(|pid| pid != own && !crate::process_identity::is_alive(i64::from(pid)));
        if (old || writer_gone) && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Create `path` with `contents` only if nothing is there yet; readers never
/// see it half-written. Returns `Ok(false)` when the path already exists
/// (its content is left alone).
pub(crate) fn create_exclusive(
    path: &Path,
    contents: &[u8],
    durability: Durability,
) -> io::Result<bool> {
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
    // The pid lets a later start tell a dead writer's leftovers from a live one's.
    let prefix = format!(".{name}.{}.", std::process::id());
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
        .filter(std::fs::Metadata::is_file)
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
pub(crate) fn sync_parent(path: &Path, durability: Durability) {
    if durability != Durability::Full {
        return;
    }
    #[cfg(unix)]
    if let Ok(dir) = fs::File::open(parent_dir(path)) {
        let _ = dir.sync_all();
    }
    // Windows cannot open a directory as a File to flush it.
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .expect("read dir")
            .filter_map(std::result::Result::ok)
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
    #[cfg(target_os = "linux")]
    #[test]
    fn exchange_hands_back_the_displaced_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.json");
        fs::write(&path, b"old").expect("write");
        let displaced = stage(&path, b"new", Durability::Content)
            .expect("stage")
            .exchange()
            .expect("exchange")
            .expect("linux swaps");
        assert_eq!(fs::read(&path).expect("read"), b"new");
        assert_eq!(fs::read(displaced.path()).expect("displaced"), b"old");
        assert!(displaced.swap_back(&path).expect("swap back"));
        assert_eq!(fs::read(&path).expect("read"), b"old");
        drop(displaced);
        assert!(temp_leftovers(dir.path()).is_empty());
        // No target yet: a plain rename.
        let fresh = dir.path().join("b.json");
        assert!(stage(&fresh, b"b", Durability::None)
            .expect("stage")
            .exchange()
            .expect("exchange")
            .is_none());
        assert_eq!(fs::read(&fresh).expect("read"), b"b");
    }

    #[cfg(unix)]
    #[test]
    fn stale_temps_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.json");
        fs::write(&path, b"{}").expect("write");
        // A pid that cannot be alive, our own (a write of ours under way),
        // and a live foreign process (pid 1).
        let dead = dir.path().join(".session.json.2147483646.ab12cd.tmp");
        let own = dir
            .path()
            .join(format!(".session.json.{}.ab12cd.tmp", std::process::id()));
        let live = dir.path().join(".session.json.1.ab12cd.tmp");
        let other = dir.path().join(".other.json.2147483646.ab12cd.tmp");
        for p in [&dead, &own, &live, &other] {
            fs::write(p, b"x").expect("plant");
        }
        assert_eq!(remove_stale_temps(&path).expect("clean"), 1);
        assert!(!dead.exists());
        assert!(own.exists() && live.exists() && other.exists());
    }
}
