//! Which session files changed: a recursive notify watch on `watchDir`
//! (directories, not files, since an atomic rename replaces the inode),
//! turned into the session paths it concerns.

use crate::mission_control::session::SESSION_FILE;
use notify::{RecursiveMode, Watcher};
use std::path::{Component, Path, PathBuf};
use tokio::sync::mpsc::UnboundedSender;

/// What a file-system event means to the tailer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Change {
    /// This session file may have changed.
    Session(PathBuf),
    /// What a stopped bridge owes this session file may have changed (its
    /// `.session.json.pending`, see `pending_writes`).
    Owed(PathBuf),
    /// Sessions may have appeared or vanished, or events were lost: look at the directory.
    Rescan,
    /// The watch's queue overflowed (inotify's `IN_Q_OVERFLOW`): events
    /// were lost. A [`Change::Rescan`] that is logged.
    Overflow,
    /// Not every directory could be watched (the OS's watch limit): what
    /// is not watched must be polled. The text says why.
    Degraded(String),
}

/// Watch `root` (canonical) recursively, sending every [`Change`] to `tx`.
/// A watch limit reached on the way is not an error: the watcher keeps
/// what it could add, and a [`Change::Degraded`] is sent (again whenever
/// a new directory cannot be watched).
pub(crate) fn watch(
    root: &Path,
    tx: UnboundedSender<Change>,
) -> notify::Result<notify::RecommendedWatcher> {
    let sessions = root.join("sessions");
    let limited = tx.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let changes = match event {
            Err(e) if is_watch_limit(&e) => vec![Change::Degraded(e.to_string()), Change::Rescan],
            Ok(event) if event.need_rescan() => vec![Change::Overflow],
            Ok(event) if !crate::fs_events::may_change(event.kind) => Vec::new(),
            Ok(event) => event
                .paths
                .iter()
                .filter_map(|p| classify(&sessions, p))
                .collect(),
            Err(_) => vec![Change::Rescan],
        };
        for change in changes {
            // The receiver is gone only when the tailer stopped.
            let _ = tx.send(change);
        }
    })?;
    match watcher.watch(root, RecursiveMode::Recursive) {
        Err(e) if is_watch_limit(&e) => {
            let _ = limited.send(Change::Degraded(e.to_string()));
        }
        other => other?,
    }
    Ok(watcher)
}

/// How many inotify watches this process holds (every `inotify wd:` line
/// of `/proc/self/fdinfo`); `None` where there is no such count.
pub(crate) fn watches_held() -> Option<usize> {
    let fds = std::fs::read_dir("/proc/self/fdinfo").ok()?;
    let mut held = 0;
    for fd in fds.flatten() {
        if let Ok(info) = std::fs::read_to_string(fd.path()) {
            held += info
                .lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count();
        }
    }
    Some(held)
}

/// The OS will not give more watches (inotify's `max_user_watches`).
fn is_watch_limit(e: &notify::Error) -> bool {
    matches!(e.kind, notify::ErrorKind::MaxFilesWatch)
}

/// The change an event on `path` stands for, if any: `sessions/<d>` or
/// `sessions/<d>/session.json` is that session, and its `.session.json.pending`
/// what it is owed; `sessions` itself (or the watch root) is a rescan;
/// anything else (temp files, `log.jsonl`) is noise.
pub(crate) fn classify(sessions: &Path, path: &Path) -> Option<Change> {
    let Ok(rest) = path.strip_prefix(sessions) else {
        return sessions.starts_with(path).then_some(Change::Rescan);
    };
    let parts: Vec<_> = rest.components().collect();
    match parts.as_slice() {
        [] => Some(Change::Rescan),
        [Component::Normal(dir)] => Some(Change::Session(sessions.join(dir).join(SESSION_FILE))),
        [Component::Normal(dir), Component::Normal(file)] if *file == SESSION_FILE => {
            Some(Change::Session(sessions.join(dir).join(SESSION_FILE)))
        }
        [Component::Normal(dir), Component::Normal(file)]
            if file.to_str() == Some(&format!(".{SESSION_FILE}.pending")) =>
        {
            Some(Change::Owed(sessions.join(dir).join(SESSION_FILE)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_map_to_sessions() {
        let sessions = Path::new("/w/sessions");
        let file = |d: &str| Some(Change::Session(sessions.join(d).join(SESSION_FILE)));
        assert_eq!(
            classify(sessions, Path::new("/w/sessions/a/session.json")),
            file("a")
        );
        assert_eq!(classify(sessions, Path::new("/w/sessions/a")), file("a"));
        assert_eq!(
            classify(sessions, Path::new("/w/sessions/a/.session.json.x1.tmp")),
            None
        );
        assert_eq!(
            classify(sessions, Path::new("/w/sessions/a/log.jsonl")),
            None
        );
        assert_eq!(
            classify(sessions, Path::new("/w/sessions/a/.session.json.pending")),
            Some(Change::Owed(sessions.join("a").join(SESSION_FILE)))
        );
        assert_eq!(
            classify(sessions, Path::new("/w/sessions")),
            Some(Change::Rescan)
        );
        assert_eq!(classify(sessions, Path::new("/w")), Some(Change::Rescan));
        assert_eq!(classify(sessions, Path::new("/w/other/x")), None);
    }
}
