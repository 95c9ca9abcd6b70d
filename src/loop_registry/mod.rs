//! The multi-loop registry behind `ExternalMultiLoopStateManager`: the lock
//! every registry read-modify-write takes, and the file work done under it.
//!
//! What goes into the files (the registry and each loop's state) is built
//! by the JS class with `JSON.parse` and `JSON.stringify`, so the values a
//! caller gets back and the bytes on disk are the original's by
//! construction (lone surrogates, `undefined` fields, `NaN`, key order).
//! This side owns what the original could not do safely: the lock protocol
//! of SPEC §9.9, atomic replacement of the files, exclusive creation of a
//! fresh registry, moving loop directories and the legacy symlink.

mod lock;
mod lock_wake;
mod loops;

pub(crate) use lock::{LoopTag, RegistryLock};
pub(crate) use loops::{check_loop_id, LOOP_SUBDIRS, STATE_FILE};

use crate::atomic_write::{self, Durability};
use crate::error::{IoContext, Result};
use crate::file_stamp::{self, ReadCache, Stamp};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Registry and loop-state files are replaced atomically (a reader or a
/// killed process never sees a torn file) but not fsynced, as the original
/// did: they describe running processes, which a power failure ends anyway,
/// and on the disks this runs on an fsync costs more than the whole
/// registry cycle. ext4 and btrfs flush a file renamed over another on
/// their own. Session files, which hold queued work, are fully durable.
pub(crate) const REGISTRY_DURABILITY: Durability = Durability::None;

/// One project's loop directories and its registry lock.
pub(crate) struct LoopRegistry {
    pub base_dir: PathBuf,
    pub loops_dir: PathBuf,
    pub archive_dir: PathBuf,
    shared_dir: PathBuf,
    lock: RegistryLock,
}

impl LoopRegistry {
    /// `base_dir` is `<projectRoot>/.aiwg/ralph-external` and `lock_path`
    /// `<base_dir>/registry.json.lock`, as the caller's platform joins paths.
    pub(crate) fn new(base_dir: PathBuf, lock_path: PathBuf) -> Self {
        LoopRegistry {
            loops_dir: base_dir.join("loops"),
            archive_dir: base_dir.join("archive"),
            shared_dir: base_dir.join("shared"),
            lock: RegistryLock::new(lock_path),
            base_dir,
        }
    }

    /// Whether the base dir and its `loops`, `archive` and `shared`
    /// directories are there. `reads` remembers the base dir's stamp once
    /// they have been found there, so while no entry of the base dir is
    /// added, removed or renamed one stat answers.
    pub(crate) fn base_dir_present(&self, reads: &ReadCache) -> bool {
        if reads.unchanged(&self.base_dir) {
            return true;
        }
        let taken = SystemTime::now();
        let Some(stamp) = Stamp::at(&self.base_dir) else {
            return false;
        };
        let subdirs = [&self.loops_dir, &self.archive_dir, &self.shared_dir];
        if !subdirs.iter().all(|dir| file_stamp::exists(dir)) {
            return false;
        }
        reads.remember_if_settled(&self.base_dir, stamp, taken);
        true
    }

    pub(crate) fn lock(&self) -> &RegistryLock {
        &self.lock
    }

    pub(crate) fn loop_dir(&self, loop_id: &str) -> PathBuf {
        self.loops_dir.join(loop_id)
    }

    /// Move `loops/<id>` into `archive/`; returns where it went.
    pub(crate) fn archive_loop_dir(&self, loop_id: &str) -> Result<PathBuf> {
        check_loop_id(loop_id)?;
        loops::move_to_archive(&self.loop_dir(loop_id), &self.archive_dir, loop_id)
    }

    /// Point `<base_dir>/session-state.json` at `only` (the one active
    /// loop), or at nothing.
    pub(crate) fn update_legacy_symlink(&self, only: Option<&str>) -> Result<()> {
        loops::update_legacy_symlink(&self.base_dir, only)
    }

    /// Give `loops/<id>` the single-loop layout's sibling directories
    /// (moved from the base dir; created where there is none).
    pub(crate) fn adopt_legacy_dirs(&self, loop_id: &str) -> Result<()> {
        check_loop_id(loop_id)?;
        let loop_dir = self.loop_dir(loop_id);
        fs::create_dir_all(&loop_dir).at("mkdir", &loop_dir)?;
        for sub in LOOP_SUBDIRS {
            let from = self.base_dir.join(sub);
            let to = loop_dir.join(sub);
            if from.is_dir() {
                fs::rename(&from, &to).between("rename", &from, &to)?;
            } else {
                fs::create_dir_all(&to).at("mkdir", &to)?;
            }
        }
        Ok(())
    }
}

/// Replace `path` with `text` atomically (temp file beside it, then rename).
/// A failure names the target, as `fs.writeFileSync` would: `open` when the
/// new content could not be written, `rename` when it could not be put in place.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<()> {
    atomic_write::stage(path, text.as_bytes(), REGISTRY_DURABILITY)
        .at("open", path)?
        .commit()
        .at("rename", path)
}

/// Create `path` with `text` only if nothing is there (readers never see it
/// half-written); `false` when something already is.
pub(crate) fn create_file(path: &Path, text: &str) -> Result<bool> {
    atomic_write::create_exclusive(path, text.as_bytes(), REGISTRY_DURABILITY).at("open", path)
}

#[cfg(test)]
mod tests;
