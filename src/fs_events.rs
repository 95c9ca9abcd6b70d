//! Which file-system events can mean a file changed.
//!
//! inotify also reports opens, reads and closes; a watcher that reacts to
//! those by reading the file again wakes itself forever.

use notify::event::{AccessKind, AccessMode, EventKind};

/// Whether an event of `kind` may follow a change: anything but a plain
/// access, except the close of a file opened for writing (the end of an
/// in-place rewrite).
pub(crate) fn may_change(kind: EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RemoveKind};

    #[test]
    fn reads_are_not_changes() {
        assert!(!may_change(EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!may_change(EventKind::Access(AccessKind::Read)));
        assert!(!may_change(EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(may_change(EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(may_change(EventKind::Create(CreateKind::File)));
        assert!(may_change(EventKind::Modify(ModifyKind::Any)));
        assert!(may_change(EventKind::Remove(RemoveKind::File)));
        assert!(may_change(EventKind::Any));
    }
}
