//! The hidden files kept beside a session file (`.session.json.lock`,
//! `.session.json.claim`): how they are named, and how they are opened
//! without following a link planted at their path.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// `<dir>/.<name>.<kind>`: a file kept beside the session file `<dir>/<name>`.
pub(crate) fn sidecar(path: &Path, kind: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = format!(".{name}.{kind}");
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(file),
        _ => PathBuf::from(file),
    }
}

/// Open (creating) a sidecar file, refusing to follow a symlink at its path.
pub(crate) fn open_no_follow(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    open_with(options, path)
}

/// Open an existing sidecar file to read it, as [`open_no_follow`] does.
pub(crate) fn open_to_read_no_follow(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    open_with(options, path)
}

/// `options` plus `O_NOFOLLOW`; a file that is not a regular one is refused.
/// `O_NONBLOCK` too, so a FIFO planted there is refused rather than waited
/// on for a writer (on a regular file it changes nothing).
#[cfg_attr(not(unix), allow(unused_mut))]
fn open_with(mut options: OpenOptions, path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    // Not a regular file (a planted FIFO or device): refuse it too.
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}

/// An exclusive lock on `file`, opened read-only at `path` (one open for
/// writing keeps the file system from being remounted read-only), without
/// waiting. Where only a file open for writing may hold one (NFS, whose
/// locks are POSIX locks underneath: `EBADF`), `file` is opened again
/// read-write and locked so.
#[cfg_attr(not(unix), allow(unused_variables))]
pub(crate) fn try_lock_exclusive(file: &mut File, path: &Path) -> Result<(), TryLockError> {
    match file.try_lock() {
        #[cfg(unix)]
        Err(TryLockError::Error(e)) if e.raw_os_error() == Some(libc::EBADF) => {
            let writable = open_no_follow(path).map_err(TryLockError::Error)?;
            writable.try_lock()?;
            *file = writable;
            Ok(())
        }
        locked => locked,
    }
}

/// The error `O_NOFOLLOW` gives for a symlink, or the one above.
pub(crate) fn is_symlink_refusal(e: &io::Error) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return true;
    }
    e.kind() == io::ErrorKind::InvalidInput
}
