//! `ExternalMultiLoopStateManager`'s native half: the registry lock and the
//! file work under it. The JS class in `js/external-multi-loop-state-manager.js`
//! builds every document with `JSON.parse` / `JSON.stringify` and calls these.

use super::{blocking, js_error};
use crate::file_stamp::{self, ReadCache};
use crate::loop_registry::{self, LoopRegistry, LoopTag};
use napi::bindgen_prelude::{Either3, Null, Undefined};
use napi_derive::napi;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[napi(js_name = "LoopRegistry")]
pub struct JsLoopRegistry {
    inner: Arc<LoopRegistry>,
    /// The files the JS side read, by stamp (its parsed copies are kept there).
    reads: ReadCache,
}

/// The caller's `JSON.stringify(loopId)` (absent for `undefined`).
fn tag(loop_id_json: Option<String>) -> napi::Result<LoopTag> {
    LoopTag::from_json(loop_id_json)
        .ok_or_else(|| napi::Error::new(napi::Status::InvalidArg, "loopId: not JSON text"))
}

/// A fencing token back from JS (always one we handed out: an integer below 2^53).
fn token(t: f64) -> u64 {
    if t.is_finite() && t >= 0.0 {
        t as u64
    } else {
        0
    }
}

#[napi]
impl JsLoopRegistry {
    /// `base_dir` is `path.join(projectRoot, '.aiwg', 'ralph-external')`,
    /// `lock_path` `<base_dir>/registry.json.lock`.
    #[napi(constructor)]
    pub fn new(base_dir: String, lock_path: String) -> Self {
        JsLoopRegistry {
            inner: Arc::new(LoopRegistry::new(
                PathBuf::from(base_dir),
                PathBuf::from(lock_path),
            )),
            reads: ReadCache::default(),
        }
    }

    /// The text of `path`; `undefined` when it is unchanged since this
    /// registry last read it (settled, see `file_stamp`), so the caller's
    /// parse of that text still stands; `null` when it cannot be read here
    /// and the caller reads it the way `fs` does.
    #[napi(catch_unwind)]
    pub fn read_text(&self, path: String) -> Either3<String, Null, Undefined> {
        match self.reads.read(Path::new(&path)) {
            file_stamp::Read::Text(text) => Either3::A(text),
            file_stamp::Read::Unreadable => Either3::B(Null),
            file_stamp::Read::Unchanged => Either3::C(()),
        }
    }

    /// `ensureBaseDir`'s check: whether the base dir and its `loops`,
    /// `archive` and `shared` directories are all there. One stat when the
    /// base dir is unchanged since they were last found there (no entry in
    /// it added, removed or renamed); otherwise a stat and three existence
    /// checks, as many calls as the original's. `false` leaves the creating
    /// to the caller, which does it with `fs` to fail as the original does.
    #[napi(catch_unwind)]
    pub fn base_dir_present(&self) -> bool {
        self.inner.base_dir_present(&self.reads)
    }

    /// The public `acquireLock` from JS thread `realm`; resolves to the fencing token.
    #[napi]
    pub async fn acquire_lock(
        &self,
        loop_id_json: Option<String>,
        max_attempts: u32,
        realm: String,
    ) -> napi::Result<f64> {
        let tag = tag(loop_id_json)?;
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.lock().acquire_for_caller(tag, max_attempts, &realm))
            .await
            .map(|acquired| acquired.fencing_token as f64)
    }

    /// The public `releaseLock`, for a lock file the caller has seen naming
    /// its loop and this process, with `JSON.stringify(lock.fencingToken)`.
    #[napi(catch_unwind)]
    pub fn release_lock(&self, token_json: Option<String>) -> napi::Result<bool> {
        let token = match token_json.map(|t| serde_json::from_str::<serde_json::Value>(&t)) {
            Some(Ok(token)) => Some(token),
            None => None,
            Some(Err(_)) => return Ok(false),
        };
        self.inner
            .lock()
            .release_for_caller(token.as_ref())
            .map_err(js_error)
    }

    /// Take the lock for work the calling JS thread (`realm`) does before
    /// `unhold`; resolves to the fencing token.
    #[napi]
    pub async fn hold(
        &self,
        loop_id_json: Option<String>,
        max_attempts: u32,
        realm: String,
    ) -> napi::Result<f64> {
        let tag = tag(loop_id_json)?;
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.lock().hold(tag, max_attempts, &realm))
            .await
            .map(|acquired| acquired.fencing_token as f64)
    }

    /// Take the lock at once if it is free (or stale), remembered as
    /// `hold` remembers it: the fencing token, or `null` when it is held.
    #[napi(catch_unwind)]
    pub fn try_hold(
        &self,
        loop_id_json: Option<String>,
        realm: String,
    ) -> napi::Result<Option<f64>> {
        let acquired = self
            .inner
            .lock()
            .try_hold(tag(loop_id_json)?, &realm)
            .map_err(js_error)?;
        Ok(acquired.map(|a| a.fencing_token as f64))
    }

    /// Take the lock for a synchronous operation: the fencing token, or
    /// `null` when it runs under a hold this process already has.
    #[napi(catch_unwind)]
    pub fn hold_sync(
        &self,
        loop_id_json: Option<String>,
        max_attempts: u32,
        realm: String,
    ) -> napi::Result<Option<f64>> {
        let acquired = self
            .inner
            .lock()
            .hold_sync(tag(loop_id_json)?, max_attempts, &realm)
            .map_err(js_error)?;
        Ok(acquired.map(|a| a.fencing_token as f64))
    }

    #[napi(catch_unwind)]
    pub fn unhold(&self, token_held: f64) -> napi::Result<bool> {
        self.inner
            .lock()
            .unhold(token(token_held))
            .map_err(js_error)
    }

    /// Move `loops/<id>` into `archive/`; returns where it went.
    #[napi(catch_unwind)]
    pub fn archive_loop_dir(&self, loop_id: String) -> napi::Result<String> {
        let target = self.inner.archive_loop_dir(&loop_id).map_err(js_error)?;
        Ok(target.to_string_lossy().into_owned())
    }

    /// Point the legacy `session-state.json` at `only`, or at nothing.
    #[napi(catch_unwind)]
    pub fn update_legacy_symlink(&self, only: Option<String>) -> napi::Result<()> {
        self.inner
            .update_legacy_symlink(only.as_deref())
            .map_err(js_error)
    }

    /// Move the single-loop layout's sibling directories into `loops/<id>`.
    #[napi(catch_unwind)]
    pub fn adopt_legacy_dirs(&self, loop_id: String) -> napi::Result<()> {
        self.inner.adopt_legacy_dirs(&loop_id).map_err(js_error)
    }
}

/// Replace a registry or loop-state file with `text`, atomically.
#[napi(catch_unwind)]
pub fn write_registry_file(path: String, text: String) -> napi::Result<()> {
    loop_registry::write_file(Path::new(&path), &text).map_err(js_error)
}

/// Create a registry file with `text` unless one exists; whether it did.
#[napi(catch_unwind)]
pub fn create_registry_file(path: String, text: String) -> napi::Result<bool> {
    loop_registry::create_file(Path::new(&path), &text).map_err(js_error)
}

/// Signal-0 liveness of `pid` (a whole number; ≤ 0 is no process).
#[napi(catch_unwind)]
pub fn process_exists(pid: f64) -> bool {
    pid.fract() == 0.0 && crate::process_identity::is_alive(pid as i64)
}
