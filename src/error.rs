//! The crate's error: a message callers may match on, or an I/O failure
//! named the way Node names its own (`syscall`, `path`, `dest`), so the
//! binding can hand JS an error of `fs`'s shape.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) enum Error {
    /// A message with a contract: callers match its leading words.
    Message(String),
    /// An argument or document of the wrong shape.
    Invalid(String),
    /// An I/O failure: the system call (as Node names it) and its paths.
    Io {
        syscall: &'static str,
        path: PathBuf,
        dest: Option<PathBuf>,
        source: io::Error,
    },
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// An I/O failure taken apart the way Node names the parts of its own
/// system errors (`err.code`, `err.errno`, `err.syscall`, `err.path`,
/// `err.dest`, the message). The one place that unpacks [`Error::Io`]:
/// the `Display` text and the binding's JS error are both built from it,
/// so the two cannot disagree. Serialises to JSON with Node's field names,
/// in this order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct IoParts {
    /// `ENOENT`…, see [`code`].
    pub code: &'static str,
    /// The OS error number, when there is one (see [`os_errno`]).
    pub errno: Option<i32>,
    pub syscall: &'static str,
    pub path: String,
    pub dest: Option<String>,
    /// The OS's description of the failure, without the call and paths.
    pub message: String,
}

impl IoParts {
    fn of(syscall: &'static str, path: &Path, dest: Option<&Path>, source: &io::Error) -> Self {
        IoParts {
            code: code(source),
            errno: os_errno(source),
            syscall,
            path: path.to_string_lossy().into_owned(),
            dest: dest.map(|d| d.to_string_lossy().into_owned()),
            message: source.to_string(),
        }
    }
}

/// As Node words a system error: `ENOENT: no such file or directory, open '/x'`
/// (and ` -> '<dest>'` for a call with two paths).
impl fmt::Display for IoParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}, {} '{}'",
            self.code, self.message, self.syscall, self.path
        )?;
        if let Some(dest) = &self.dest {
            write!(f, " -> '{dest}'")?;
        }
        Ok(())
    }
}

impl Error {
    /// The I/O error inside, if this is one.
    pub(crate) fn io(&self) -> Option<&io::Error> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Message(_) | Error::Invalid(_) => None,
        }
    }

    /// What kind of failure this is, for logging it once per kind: the I/O
    /// error's code (`ENOSPC`, `EROFS`, …), or `error`.
    pub(crate) fn kind_code(&self) -> &'static str {
        self.io().map_or("error", code)
    }

    /// The parts of an I/O failure; `None` for the other kinds.
    pub(crate) fn io_parts(&self) -> Option<IoParts> {
        match self {
            Error::Io {
                syscall,
                path,
                dest,
                source,
            } => Some(IoParts::of(syscall, path, dest.as_deref(), source)),
            Error::Message(_) | Error::Invalid(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Message(m) | Error::Invalid(m) => f.write_str(m),
            Error::Io {
                syscall,
                path,
                dest,
                source,
            } => IoParts::of(syscall, path, dest.as_deref(), source).fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Attach the system call and path to an I/O error.
pub(crate) trait IoContext<T> {
    /// `syscall` is Node's name for the call (`open`, `mkdir`, `rename`, `scandir`…).
    fn at(self, syscall: &'static str, path: &Path) -> Result<T>;
    /// A call with two paths (`rename`, `symlink`).
    fn between(self, syscall: &'static str, path: &Path, dest: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, syscall: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            syscall,
            path: path.to_path_buf(),
            dest: None,
            source,
        })
    }

    fn between(self, syscall: &'static str, path: &Path, dest: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            syscall,
            path: path.to_path_buf(),
            dest: Some(dest.to_path_buf()),
            source,
        })
    }
}

/// The OS error number behind `err`, looking through wrappers (tempfile
/// wraps its errors with the path they concern).
pub(crate) fn os_errno(err: &io::Error) -> Option<i32> {
    if let Some(n) = err.raw_os_error() {
        return Some(n);
    }
    let mut inner: Option<&(dyn std::error::Error + 'static)> = err.get_ref().map(|e| e as _);
    while let Some(e) = inner {
        if let Some(n) = e
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return Some(n);
        }
        inner = e.source();
    }
    // tempfile's wrapper hides the error it wraps from `source()`, but
    // prints it: "Too many open files (os error 24) at path …".
    let text = err.get_ref()?.to_string();
    let (_, rest) = text.split_once("(os error ")?;
    rest.split_once(')')?.0.parse().ok()
}

/// The POSIX code name (`ENOENT`…) for an error's kind: what Node calls it
/// when the OS number is not at hand or is not a POSIX one (Windows).
pub(crate) fn code(err: &io::Error) -> &'static str {
    use io::ErrorKind as K;
    #[cfg(unix)]
    if let Some(name) = os_errno(err).and_then(posix_name) {
        return name;
    }
    match err.kind() {
        K::NotFound => "ENOENT",
        K::PermissionDenied => "EACCES",
        K::AlreadyExists => "EEXIST",
        K::NotADirectory => "ENOTDIR",
        K::IsADirectory => "EISDIR",
        K::DirectoryNotEmpty => "ENOTEMPTY",
        K::ReadOnlyFilesystem => "EROFS",
        K::StorageFull => "ENOSPC",
        K::CrossesDevices => "EXDEV",
        K::TooManyLinks => "EMLINK",
        K::InvalidFilename => "ENAMETOOLONG",
        K::FileTooLarge => "EFBIG",
        K::ResourceBusy => "EBUSY",
        K::Interrupted => "EINTR",
        K::WouldBlock => "EAGAIN",
        K::InvalidInput => "EINVAL",
        K::Unsupported => "ENOTSUP",
        K::OutOfMemory => "ENOMEM",
        K::BrokenPipe => "EPIPE",
        K::TimedOut => "ETIMEDOUT",
        K::ConnectionRefused => "ECONNREFUSED",
        K::ConnectionReset => "ECONNRESET",
        K::Deadlock => "EDEADLK",
        _ => "EIO",
    }
}

/// The names of the errors file work meets, by number on this platform.
#[cfg(unix)]
fn posix_name(errno: i32) -> Option<&'static str> {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::EDQUOT => "EDQUOT",
        libc::ENOTSUP => "ENOTSUP",
        libc::EINTR => "EINTR",
        libc::ETXTBSY => "ETXTBSY",
        _ => return None,
    };
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_as_node_writes_them() {
        let err: Result<()> =
            Err(io::Error::from_raw_os_error(libc::ENOENT)).at("open", Path::new("/x"));
        let err = err.expect_err("an error");
        assert!(err.to_string().starts_with("ENOENT: "), "{err}");
        assert!(err.to_string().ends_with(", open '/x'"), "{err}");
        let err: Result<()> = Err(io::Error::from(io::ErrorKind::NotFound)).between(
            "rename",
            Path::new("/a"),
            Path::new("/b"),
        );
        assert!(err
            .expect_err("an error")
            .to_string()
            .ends_with("rename '/a' -> '/b'"));
    }

    #[test]
    fn the_os_error_inside_tempfiles_wrapper_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("gone");
        let err = tempfile::Builder::new()
            .tempfile_in(&missing)
            .expect_err("no such directory");
        assert_eq!(err.raw_os_error(), None, "wrapped");
        assert_eq!(os_errno(&err), Some(libc::ENOENT));
        assert_eq!(
            code(&io::Error::other(
                "Too many open files (os error 24) at path \"/x\""
            )),
            "EMFILE"
        );
    }

    #[test]
    fn io_parts_name_what_node_names() {
        let err = Err::<(), _>(io::Error::from_raw_os_error(libc::EXDEV))
            .between("rename", Path::new("/a"), Path::new("/b"))
            .expect_err("an error");
        let io = err.io_parts().expect("an I/O error");
        assert_eq!(
            (
                io.code,
                io.errno,
                io.syscall,
                io.path.as_str(),
                io.dest.as_deref()
            ),
            ("EXDEV", Some(libc::EXDEV), "rename", "/a", Some("/b"))
        );
        assert_eq!(
            serde_json::to_value(&io).expect("json"),
            serde_json::json!({"code": "EXDEV", "errno": libc::EXDEV, "syscall": "rename",
                "path": "/a", "dest": "/b", "message": io.message})
        );
        assert!(err
            .to_string()
            .starts_with(&format!("EXDEV: {}, rename", io.message)));
        assert_eq!(Error::Message("m".into()).io_parts(), None);
    }

    #[test]
    fn the_os_number_is_found_inside_wrappers() {
        #[derive(Debug)]
        struct Wrapped(io::Error);
        impl fmt::Display for Wrapped {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "wrapped: {}", self.0)
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let inner = io::Error::from_raw_os_error(libc::EACCES);
        let outer = io::Error::new(inner.kind(), Wrapped(inner));
        assert_eq!(os_errno(&outer), Some(libc::EACCES));
        assert_eq!(code(&outer), "EACCES");
    }
}
