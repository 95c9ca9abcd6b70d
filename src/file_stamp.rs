//! What one `stat` says about a file, and when two equal stamps prove that
//! the file did not change between them: the registry's reads skip reading
//! and parsing a file that has not changed since they last read it.
//!
//! Filesystem times are coarse. A write in the same clock tick as the one
//! before can leave size, mtime and ctime as they were, so a stamp proves
//! nothing about a file changed just before it was taken. It does once the
//! file has *settled*: if its times were at least [`SETTLE`] old when the
//! stamp was taken, any later change moves them, because a change sets
//! ctime to the clock of that moment and no caller can set ctime back.
//! (This is git's rule for "racily clean" index entries.) An in-place
//! rewrite of the same size in the same tick, which fools a plain stat
//! check, is caught because such a file is never settled.
//!
//! Stamps are trusted only on filesystems whose times the local kernel
//! keeps: a network or FUSE filesystem may answer `stat` from a cache or
//! with another machine's clock, so files there are always read.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// How old a file's times must be before its stamp proves it unchanged.
/// Well above the coarsest timestamp granularity of the filesystems trusted
/// (one second on HFS+; a clock tick elsewhere).
pub(crate) const SETTLE: Duration = Duration::from_secs(2);

/// More remembered files than this and the cache starts again (a caller
/// cycling through many loops must not grow it without bound).
const MAX_REMEMBERED: usize = 1024;

/// Device, inode, size, mtime and ctime: what a change to a file moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of `meta`; `None` where the platform has no ctime.
    #[cfg(unix)]
    #[allow(clippy::unnecessary_wraps)] // `None` on the platforms without a ctime
    pub(crate) fn of(meta: &fs::Metadata) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        Some(Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    pub(crate) fn of(_meta: &fs::Metadata) -> Option<Stamp> {
        None
    }

    /// The stamp of `path` now, following symlinks as a read does.
    pub(crate) fn at(path: &Path) -> Option<Stamp> {
        fs::metadata(path).ok().as_ref().and_then(Stamp::of)
    }

    /// Whether this stamp, taken no earlier than `taken`, is of a file that
    /// had settled: both of its times at least [`SETTLE`] before `taken`.
    pub(crate) fn settled_at(&self, taken: SystemTime) -> bool {
        let Some(limit) = taken.checked_sub(SETTLE) else {
            return false;
        };
        let Ok(limit) = limit.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        let limit = (
            i64::try_from(limit.as_secs()).unwrap_or(i64::MAX),
            i64::from(limit.subsec_nanos()),
        );
        self.mtime <= limit && self.ctime <= limit
    }
}

/// `statfs(2)` of the filesystem `path` is on.
#[cfg(any(target_os = "linux", target_os = "macos"))]
fn statfs(path: &Path) -> Option<libc::statfs> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut out = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c_path` is a NUL-terminated path and `out` is writable
    // storage for one `statfs`, which the call fills when it returns 0.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), out.as_mut_ptr()) };
    // SAFETY: statfs returned 0, so it filled `out`.
    (rc == 0).then(|| unsafe { out.assume_init() })
}

/// Whether stamps of files under `path` can be trusted: a local filesystem
/// whose times this kernel keeps.
#[cfg(target_os = "linux")]
pub(crate) fn trusted_filesystem(path: &Path) -> bool {
    // statfs(2) f_type values (linux/magic.h).
    const TRUSTED: [u64; 9] = [
        0xEF53,      // ext2, ext3, ext4
        0x5846_5342, // xfs
        0x9123_683E, // btrfs
        0x0102_1994, // tmpfs
        0xF2F5_2010, // f2fs
        0x2FC1_2FC1, // zfs
        0xCA45_1A4E, // bcachefs
        0x794C_7630, // overlayfs (containers)
        0x8584_58F6, // ramfs
    ];
    let Some(kind) = statfs(path).map(|out| out.f_type) else {
        return false;
    };
    // f_type is signed or not, 32 or 64 bits wide, by libc and arch; the
    // magic numbers are 32-bit.
    #[allow(
        clippy::unnecessary_cast,
        clippy::cast_lossless,
        clippy::cast_possible_wrap
    )]
    let kind = (kind as u64) & 0xFFFF_FFFF;
    TRUSTED.contains(&kind)
}

/// Whether stamps of files under `path` can be trusted: APFS or HFS+.
#[cfg(target_os = "macos")]
pub(crate) fn trusted_filesystem(path: &Path) -> bool {
    let Some(out) = statfs(path) else {
        return false;
    };
    // SAFETY: f_fstypename is a NUL-terminated name the kernel wrote.
    let name = unsafe { std::ffi::CStr::from_ptr(out.f_fstypename.as_ptr()) };
    matches!(name.to_bytes(), b"apfs" | b"hfs")
}

/// Elsewhere nothing is trusted: every read reads.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub(crate) fn trusted_filesystem(_path: &Path) -> bool {
    false
}

/// Whether `path` names something there, as `fs.existsSync` asks it
/// (`access(F_OK)`, cheaper than a stat).
#[cfg(unix)]
pub(crate) fn exists(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c_path` is a NUL-terminated path.
    unsafe { libc::access(c_path.as_ptr(), libc::F_OK) == 0 }
}

#[cfg(not(unix))]
pub(crate) fn exists(path: &Path) -> bool {
    path.exists()
}

/// What [`ReadCache::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// The file is as it was when this cache last read it, settled.
    Unchanged,
    /// The file's text, read now.
    Text(String),
    /// The file could not be read as UTF-8 text here (missing, not a
    /// regular file, an I/O error, not UTF-8): the caller reads it its own
    /// way, to fail as it always has.
    Unreadable,
}

/// The stamps of files read before, kept while the files stay unchanged.
#[derive(Default)]
pub(crate) struct ReadCache {
    stamps: Mutex<HashMap<PathBuf, Stamp>>,
}

impl ReadCache {
    /// Read `path`, unless a stamp shows it unchanged since the last read
    /// that found it settled.
    pub(crate) fn read(&self, path: &Path) -> Read {
        if let Some(known) = self.remembered(path) {
            if Stamp::at(path) == Some(known) {
                return Read::Unchanged;
            }
            self.forget(path);
        }
        let taken = SystemTime::now();
        let Ok((text, stamp)) = read_text(path) else {
            return Read::Unreadable;
        };
        if let Some(stamp) = stamp {
            self.remember_if_settled(path, stamp, taken);
        }
        Read::Text(text)
    }

    /// Whether `path` still has the stamp remembered for it.
    pub(crate) fn unchanged(&self, path: &Path) -> bool {
        self.remembered(path)
            .is_some_and(|known| Stamp::at(path) == Some(known))
    }

    /// Remember `stamp` (taken no earlier than `taken`) for `path`, if the
    /// file had settled and is on a filesystem whose stamps can be trusted;
    /// otherwise forget what was remembered.
    pub(crate) fn remember_if_settled(&self, path: &Path, stamp: Stamp, taken: SystemTime) {
        if stamp.settled_at(taken) && trusted_filesystem(path) {
            let mut stamps = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
            if stamps.len() >= MAX_REMEMBERED {
                stamps.clear();
            }
            stamps.insert(path.to_path_buf(), stamp);
        } else {
            self.forget(path);
        }
    }

    fn remembered(&self, path: &Path) -> Option<Stamp> {
        let stamps = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
        stamps.get(path).copied()
    }

    fn forget(&self, path: &Path) {
        let mut stamps = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
        stamps.remove(path);
    }
}

/// A regular file's text and the stamp of what was opened (taken before
/// the read, so a change during the read moves the file off it).
fn read_text(path: &Path) -> std::io::Result<(String, Option<Stamp>)> {
    let file = crate::whole_file::open_to_read(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::ErrorKind::InvalidInput.into());
    }
    let bytes = crate::whole_file::read_sized(&file, meta.len())?;
    let text = String::from_utf8(bytes).map_err(|_| std::io::ErrorKind::InvalidData)?;
    Ok((text, Stamp::of(&meta)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        path
    }

    /// A clock `SETTLE` and a bit after now: every file written so far has settled by it.
    fn later() -> SystemTime {
        SystemTime::now() + SETTLE + Duration::from_millis(10)
    }

    #[test]
    fn a_fresh_file_is_not_settled_and_an_old_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path(), "a.json", "{}");
        let stamp = Stamp::at(&path).unwrap();
        assert!(!stamp.settled_at(SystemTime::now()));
        assert!(stamp.settled_at(later()));
    }

    #[test]
    fn a_file_read_while_fresh_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path(), "a.json", "{\"a\":1}");
        let cache = ReadCache::default();
        assert_eq!(cache.read(&path), Read::Text("{\"a\":1}".into()));
        assert_eq!(cache.read(&path), Read::Text("{\"a\":1}".into()));
    }

    #[test]
    fn a_settled_file_is_unchanged_until_written_even_in_place_and_the_same_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path(), "a.json", "{\"a\":1}");
        let cache = ReadCache::default();
        // Truly settled: its times are older than SETTLE when it is read.
        std::thread::sleep(SETTLE + Duration::from_millis(100));
        assert_eq!(cache.read(&path), Read::Text("{\"a\":1}".into()));
        if !trusted_filesystem(&path) {
            assert_eq!(cache.read(&path), Read::Text("{\"a\":1}".into()));
            return;
        }
        assert_eq!(cache.read(&path), Read::Unchanged);
        assert!(cache.unchanged(&path));
        // In place and the same size: ctime moves, whatever the tick.
        fs::write(&path, "{\"a\":2}").unwrap();
        assert!(!cache.unchanged(&path));
        assert_eq!(cache.read(&path), Read::Text("{\"a\":2}".into()));
        // Read while fresh: not remembered, so read again.
        assert_eq!(cache.read(&path), Read::Text("{\"a\":2}".into()));
        // Two in-place writes within one tick, the first read between them:
        // the read was of a fresh file, so the second write is seen too.
        fs::write(&path, "{\"a\":3}").unwrap();
        assert_eq!(cache.read(&path), Read::Text("{\"a\":3}".into()));
        fs::write(&path, "{\"a\":4}").unwrap();
        assert_eq!(cache.read(&path), Read::Text("{\"a\":4}".into()));
    }

    #[test]
    fn files_of_any_size_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ReadCache::default();
        for size in [0, 1, 4095, 4096, 70_000, 1 << 20] {
            let text: String = (0..size)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let path = write_file(dir.path(), &format!("f{size}"), &text);
            assert_eq!(cache.read(&path), Read::Text(text), "size {size}");
        }
    }

    #[test]
    fn a_file_replaced_by_rename_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path(), "a.json", "{\"a\":1}");
        let cache = ReadCache::default();
        cache.remember_if_settled(&path, Stamp::at(&path).unwrap(), later());
        let other = write_file(dir.path(), "b.json", "{\"a\":3}");
        fs::rename(&other, &path).unwrap();
        assert_eq!(cache.read(&path), Read::Text("{\"a\":3}".into()));
    }

    #[test]
    fn what_cannot_be_read_as_text_is_left_to_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ReadCache::default();
        assert_eq!(cache.read(&dir.path().join("missing")), Read::Unreadable);
        assert_eq!(cache.read(dir.path()), Read::Unreadable);
        let bad = dir.path().join("bad");
        fs::write(&bad, [0xff, 0xfe, b'{']).unwrap();
        assert_eq!(cache.read(&bad), Read::Unreadable);
        // A file remembered and then removed is not "unchanged".
        let path = write_file(dir.path(), "a.json", "{}");
        cache.remember_if_settled(&path, Stamp::at(&path).unwrap(), later());
        fs::remove_file(&path).unwrap();
        assert!(!cache.unchanged(&path));
        assert_eq!(cache.read(&path), Read::Unreadable);
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_left_to_the_caller_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert_eq!(ReadCache::default().read(&fifo), Read::Unreadable);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn local_filesystems_are_trusted_and_proc_is_not() {
        // /dev/shm is tmpfs.
        if Path::new("/dev/shm").is_dir() {
            assert!(trusted_filesystem(Path::new("/dev/shm")));
        }
        assert!(!trusted_filesystem(Path::new("/proc/self")));
    }
}
