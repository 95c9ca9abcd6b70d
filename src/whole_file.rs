//! Reading a whole file in one system call.
//!
//! `read_to_end` without a size hint (behind `Read::take`, or into an empty
//! `Vec`) starts with a 32-byte probe and doubles from there: a 3 KB
//! session file took twelve reads. Sized from `fstat`, one read of one
//! byte more than the file holds returns the whole file, and coming back
//! short at exactly that size is its end, so no probe for the end is made
//! either. A file that changed size meanwhile is read on to its end.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// Open `path` for reading without blocking on a FIFO planted there (the
/// caller refuses what is not a regular file once it has `fstat`ed it; on
/// a regular file `O_NONBLOCK` changes nothing).
pub(crate) fn open_to_read(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// Refuse a FIFO, socket or device where a file is expected: reading one
/// would wait on a writer or never end. (A directory passes, and fails its
/// read as it would have.)
pub(crate) fn refuse_special(meta: &std::fs::Metadata) -> io::Result<()> {
    if meta.is_file() || meta.is_dir() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    }
}

/// The whole of the file at `path`, as `fs::read` gives it, except that a
/// FIFO, socket or device there is refused instead of waited on.
pub(crate) fn read_path(path: &Path) -> io::Result<Vec<u8>> {
    let file = open_to_read(path)?;
    let meta = file.metadata()?;
    refuse_special(&meta)?;
    read_sized(&file, meta.len())
}

/// Every byte of `file` from where it stands, but no more than `cap + 1`
/// (so the caller can tell a file over the cap). `size` is what `fstat`
/// said the file holds.
pub(crate) fn read_whole(mut file: &File, size: u64, cap: u64) -> io::Result<Vec<u8>> {
    let limit = cap.saturating_add(1);
    let first = usize::try_from(size.saturating_add(1).min(limit)).unwrap_or(usize::MAX);
    let mut bytes = vec![0; first];
    let got = read_some(file, &mut bytes)?;
    bytes.truncate(got);
    // Exactly the size fstat gave and not one byte more: that is the end.
    // Anything else (it grew, shrank, or the read came back early) reads on.
    if got as u64 != size || got == first {
        let left = limit.saturating_sub(got as u64);
        Read::take(&mut file, left).read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}

/// Every byte of `file` from where it stands, with no cap; `size` is what
/// `fstat` said the file holds (for callers that looked already).
pub(crate) fn read_sized(file: &File, size: u64) -> io::Result<Vec<u8>> {
    read_whole(file, size, u64::MAX - 1)
}

/// Every byte of `file` from where it stands, sized by its own `fstat`.
pub(crate) fn read_all(file: &File) -> io::Result<Vec<u8>> {
    read_sized(file, file.metadata()?.len())
}

/// One read into `buf`, tried again when a signal interrupts it.
fn read_some(mut file: &File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    fn file_with(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(bytes).expect("write");
        file.rewind().expect("rewind");
        file
    }

    #[test]
    fn reads_the_whole_file_at_its_size() {
        let text = b"{\"missions\":[]}".repeat(300);
        let file = file_with(&text);
        assert_eq!(
            read_whole(&file, text.len() as u64, 1 << 20).expect("read"),
            text
        );
        assert_eq!(read_all(&file_with(b"")).expect("empty"), b"");
    }

    #[test]
    fn a_stale_size_still_reads_to_the_end() {
        let text = b"0123456789".repeat(100);
        // Told less than it holds (it grew since fstat) and more (it shrank).
        assert_eq!(
            read_whole(&file_with(&text), 10, 1 << 20).expect("grew"),
            text
        );
        assert_eq!(
            read_whole(&file_with(&text), 5000, 1 << 20).expect("shrank"),
            text
        );
    }

    #[test]
    fn stops_one_byte_past_the_cap() {
        let text = vec![b'x'; 5000];
        let read = read_whole(&file_with(&text), 5000, 100).expect("read");
        assert_eq!(read.len(), 101);
        let read = read_whole(&file_with(&text), 10, 100).expect("stale size");
        assert_eq!(read.len(), 101);
    }

    #[test]
    fn reads_from_where_the_file_stands() {
        let mut file = file_with(b"skip:keep");
        file.seek(io::SeekFrom::Start(5)).expect("seek");
        assert_eq!(read_whole(&file, 9, 100).expect("read"), b"keep");
    }
}
