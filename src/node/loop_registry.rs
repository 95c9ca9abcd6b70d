//! `ExternalMultiLoopStateManager`'s native half. The JS class in
//! `js/external-multi-loop-state-manager.js` validates arguments, owns
//! `maxLockAttempts` and `console.warn`, and calls these.

use super::{blocking, js_error, parse_json, to_json};
use crate::loop_registry::{self, LoopConfig, LoopRegistry};
use napi_derive::napi;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Arc;

#[napi(js_name = "LoopRegistry")]
pub struct JsLoopRegistry {
    inner: Arc<LoopRegistry>,
}

fn path_string(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

#[napi]
impl JsLoopRegistry {
    /// `base_dir` is `path.join(projectRoot, '.aiwg', 'ralph-external')`.
    #[napi(constructor)]
    pub fn new(project_root: String, base_dir: String) -> Self {
        JsLoopRegistry {
            inner: Arc::new(LoopRegistry::new(project_root, PathBuf::from(base_dir))),
        }
    }

    #[napi(getter)]
    pub fn registry_path(&self) -> String {
        path_string(&self.inner.registry_path)
    }

    #[napi(getter)]
    pub fn loops_dir(&self) -> String {
        path_string(&self.inner.loops_dir)
    }

    #[napi(getter)]
    pub fn archive_dir(&self) -> String {
        path_string(&self.inner.archive_dir)
    }

    #[napi(getter)]
    pub fn shared_dir(&self) -> String {
        path_string(&self.inner.shared_dir)
    }

    #[napi(getter)]
    pub fn lock_path(&self) -> String {
        path_string(self.inner.lock_path())
    }

    #[napi(catch_unwind)]
    pub fn ensure_base_dir(&self) -> napi::Result<()> {
        self.inner.ensure_base_dir().map_err(js_error)
    }

    /// The registry as JSON text.
    #[napi(catch_unwind)]
    pub fn load_registry(&self) -> napi::Result<String> {
        to_json(&self.inner.load_registry().map_err(js_error)?)
    }

    /// Writes the registry; returns the stamped fields as JSON text.
    #[napi(catch_unwind)]
    pub fn save_registry(&self, registry_json: String) -> napi::Result<String> {
        let mut registry: Value = parse_json("registry", &registry_json)?;
        self.inner.save_registry(&mut registry).map_err(js_error)?;
        to_json(&json!({
            "updated_at": registry["updated_at"],
            "total_active": registry["total_active"],
        }))
    }

    #[napi(catch_unwind)]
    pub fn update_legacy_symlink(&self) -> napi::Result<()> {
        self.inner.update_legacy_symlink().map_err(js_error)
    }

    #[napi(catch_unwind)]
    pub fn detect_crashed_loops(&self) -> napi::Result<String> {
        to_json(&Value::Array(
            self.inner.detect_crashed_loops().map_err(js_error)?,
        ))
    }

    #[napi(catch_unwind)]
    pub fn list_active_loops(&self) -> napi::Result<String> {
        to_json(&self.inner.list_active_loops().map_err(js_error)?)
    }

    #[napi(catch_unwind)]
    pub fn get_loop(&self, loop_id: String) -> napi::Result<String> {
        to_json(&self.inner.get_loop(&loop_id).map_err(js_error)?)
    }

    #[napi(catch_unwind)]
    pub fn update_loop(
        &self,
        loop_id: String,
        changes_json: String,
        max_attempts: u32,
    ) -> napi::Result<String> {
        let changes: Map<String, Value> = parse_json("changes", &changes_json)?;
        to_json(
            &self
                .inner
                .update_loop(&loop_id, &changes, max_attempts)
                .map_err(js_error)?,
        )
    }

    #[napi(catch_unwind)]
    pub fn is_loop_alive(&self, loop_id: String) -> bool {
        self.inner.is_loop_alive(&loop_id)
    }

    /// Resolves to the fencing token.
    #[napi]
    pub async fn acquire_lock(&self, loop_id: String, max_attempts: u32) -> napi::Result<f64> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.acquire_lock(&loop_id, max_attempts))
            .await
            .map(|acquired| acquired.fencing_token as f64)
    }

    #[napi(catch_unwind)]
    pub fn release_lock(&self, loop_id: String) -> napi::Result<bool> {
        self.inner.release_lock(&loop_id).map_err(js_error)
    }

    /// Resolves to `{loopId, state, warning?}` as JSON text.
    #[napi]
    pub async fn create_loop(
        &self,
        config_json: String,
        force: bool,
        max_attempts: u32,
    ) -> napi::Result<String> {
        let config: Map<String, Value> = parse_json("config", &config_json)?;
        let inner = Arc::clone(&self.inner);
        let created =
            blocking(move || inner.create_loop(LoopConfig(&config), force, max_attempts)).await?;
        to_json(&json!({
            "loopId": created.loop_id,
            "state": created.state,
            "warning": created.warning,
        }))
    }

    #[napi]
    pub async fn update_loop_pid(
        &self,
        loop_id: String,
        pid_json: String,
        max_attempts: u32,
    ) -> napi::Result<String> {
        let pid: Value = parse_json("pid", &pid_json)?;
        let inner = Arc::clone(&self.inner);
        to_json(&blocking(move || inner.update_loop_pid(&loop_id, pid, max_attempts)).await?)
    }

    #[napi]
    pub async fn archive_loop(&self, loop_id: String, max_attempts: u32) -> napi::Result<()> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.archive_loop(&loop_id, max_attempts)).await
    }

    #[napi]
    pub async fn migrate_legacy_state(&self, max_attempts: u32) -> napi::Result<bool> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.migrate_legacy_state(None, max_attempts)).await
    }
}

/// `generateLoopId(task)`.
#[napi(catch_unwind)]
pub fn generate_loop_id(task: String) -> String {
    loop_registry::generate_loop_id(&task)
}

/// Signal-0 liveness of `pid`.
#[napi(catch_unwind)]
pub fn process_exists(pid: f64) -> bool {
    pid.fract() == 0.0 && crate::process_identity::is_alive(pid as i64)
}
