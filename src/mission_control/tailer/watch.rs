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
    /// Sessions may have appeared or vanished, or events were lost: look at the directory.
    Rescan,
}

/// Watch `root` (canonical) recursively, sending every [`Change`] to `tx`.
pub(crate) fn watch(
    root: &Path,
    tx: UnboundedSender<Change>,
) -> notify::Result<notify::RecommendedWatcher> {
    let sessions = root.join("sessions");
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let changes = match event {
            Ok(event) if event.need_rescan() => vec![Change::Rescan],
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
    watcher.watch(root, RecursiveMode::Recursive)?;
    Ok(watcher)
}

/// The change an event on `path` stands for, if any: `sessions/<d>` or
/// `sessions/<d>/session.json` is that session; `sessions` itself (or the
/// watch root) is a rescan; anything else (temp files, `log.jsonl`) is noise.
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
            classify(sessions, Path::new("/w/sessions")),
            Some(Change::Rescan)
        );
        assert_eq!(classify(sessions, Path::new("/w")), Some(Change::Rescan));
        assert_eq!(classify(sessions, Path::new("/w/other/x")), None);
    }
}
