//! The multi-loop registry behind `ExternalMultiLoopStateManager`: loops
//! under `<project>/.aiwg/ralph-external`, their registry, and the lock
//! that every registry read-modify-write takes.

mod lock;
mod lock_wake;
mod loops;
mod registry;

pub use lock::{Acquired, RegistryLock, ATTEMPT, LEASE_MS};
pub use loops::{check_loop_id, generate_loop_id, LOOP_SUBDIRS, STATE_FILE};

use crate::atomic_write::Durability;
use crate::clock::now_iso;
use crate::error::{Error, IoContext, Result};
use crate::js_json::{slice_utf16 as js_slice, truthy};
use crate::process_identity;
use serde_json::{json, Map, Value};
use std::fs;
use std::path::{Path, PathBuf};

/// Registry and loop-state files are replaced atomically (a reader or a
/// killed process never sees a torn file) but not fsynced, as the original
/// did: they describe running processes, which a power failure ends anyway,
/// and on the disks this runs on an fsync costs more than the whole
/// registry cycle. ext4 and btrfs flush a file renamed over another on
/// their own. Session files, which hold queued work, are fully durable.
pub const REGISTRY_DURABILITY: Durability = Durability::None;

/// The most loops that may run at once without `force`.
pub const MAX_CONCURRENT_LOOPS: usize = 4;

/// The paths of one project's loop state and the operations on them.
pub struct LoopRegistry {
    pub project_root: String,
    pub base_dir: PathBuf,
    pub registry_path: PathBuf,
    pub loops_dir: PathBuf,
    pub archive_dir: PathBuf,
    pub shared_dir: PathBuf,
    lock: RegistryLock,
}

/// What `createLoop` made.
pub struct CreatedLoop {
    pub loop_id: String,
    pub state: Value,
    /// Set when `force` took us past [`MAX_CONCURRENT_LOOPS`].
    pub warning: Option<String>,
}

/// The loop settings `createLoop` reads; everything else in the config is ignored.
pub struct LoopConfig<'a>(pub &'a Map<String, Value>);

impl LoopRegistry {
    /// `base_dir` is `<projectRoot>/.aiwg/ralph-external`, joined as the caller's platform joins paths.
    pub fn new(project_root: String, base_dir: PathBuf) -> Self {
        let registry_path = base_dir.join("registry.json");
        let mut lock_path = registry_path.clone().into_os_string();
        lock_path.push(".lock");
        LoopRegistry {
            loops_dir: base_dir.join("loops"),
            archive_dir: base_dir.join("archive"),
            shared_dir: base_dir.join("shared"),
            lock: RegistryLock::new(PathBuf::from(lock_path)),
            registry_path,
            base_dir,
            project_root,
        }
    }

    pub fn lock_path(&self) -> &Path {
        self.lock.path()
    }

    /// The public `acquireLock`: take the lock for the caller to hold.
    pub fn acquire_lock(&self, loop_id: &str, max_attempts: u32) -> Result<Acquired> {
        self.ensure_base_dir()?;
        self.lock.acquire_for_caller(loop_id, max_attempts)
    }

    /// The public `releaseLock`: whether the lock file was ours and is gone.
    pub fn release_lock(&self, loop_id: &str) -> Result<bool> {
        self.lock.release_for_caller(loop_id)
    }

    pub fn loop_dir(&self, loop_id: &str) -> PathBuf {
        self.loops_dir.join(loop_id)
    }

    pub fn ensure_base_dir(&self) -> Result<()> {
        for dir in [
            &self.base_dir,
            &self.loops_dir,
            &self.archive_dir,
            &self.shared_dir,
        ] {
            fs::create_dir_all(dir).at("mkdir", dir)?;
        }
        Ok(())
    }

    /// The registry, created fresh when missing.
    pub fn load_registry(&self) -> Result<Value> {
        self.ensure_base_dir()?;
        registry::load_or_create(&self.registry_path)
    }

    /// Stamp and write `registry`; it comes back as written.
    pub fn save_registry(&self, registry: &mut Value) -> Result<()> {
        self.ensure_base_dir()?;
        registry::save(&self.registry_path, registry)
    }

    pub fn list_active_loops(&self) -> Result<Value> {
        let registry = self.load_registry()?;
        Ok(registry.get("active_loops").cloned().unwrap_or(Value::Null))
    }

    pub fn update_legacy_symlink(&self) -> Result<()> {
        let registry = self.load_registry()?;
        loops::update_legacy_symlink(&self.base_dir, registry::active_loops(&registry))
    }

    /// Registry entries marked `running` whose pid is dead.
    pub fn detect_crashed_loops(&self) -> Result<Vec<Value>> {
        let registry = self.load_registry()?;
        Ok(registry::active_loops(&registry)
            .iter()
            .filter(|entry| {
                entry.get("status").and_then(Value::as_str) == Some("running")
                    && entry.get("pid").is_some_and(truthy)
                    && !entry
                        .get("pid")
                        .and_then(as_pid)
                        .is_some_and(process_identity::is_alive)
            })
            .cloned()
            .collect())
    }

    pub fn get_loop(&self, loop_id: &str) -> Result<Value> {
        check_loop_id(loop_id)?;
        loops::read_state(&self.loop_dir(loop_id), loop_id)
    }

    /// `createLoop`, under the lock.
    pub fn create_loop(
        &self,
        config: LoopConfig<'_>,
        force: bool,
        max_attempts: u32,
    ) -> Result<CreatedLoop> {
        let config = config.0;
        let objective = config
            .get("objective")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Invalid("config.objective must be a string".into()))?;
        let loop_id = match config.get("loopId").filter(|v| truthy(v)) {
            Some(Value::String(id)) => id.clone(),
            Some(_) => return Err(Error::Invalid("config.loopId must be a string".into())),
            None => generate_loop_id(objective),
        };
        check_loop_id(&loop_id)?;
        self.locked(&loop_id, max_attempts, || {
            let mut registry = registry::load_or_create(&self.registry_path)?;
            let active = registry::active_loops_mut(&self.registry_path, &mut registry)?.len();
            let mut warning = None;
            if active >= MAX_CONCURRENT_LOOPS {
                let paths = communication_paths(active as f64);
                let next = communication_paths(active as f64 + 1.0);
                if !force {
                    return Err(Error::Message(format!(
                        "Cannot create loop: {active} loops already active (max: {MAX_CONCURRENT_LOOPS}). \
                         {active} loops already have {paths} communication paths; another would make {next}. \
                         Use --force to create it anyway."
                    )));
                }
                warning = Some(format!(
                    "Warning: {active} loops already active (max: {MAX_CONCURRENT_LOOPS}); creating another because of --force \
                     ({next} communication paths)."
                ));
            }
            let now = now_iso();
            let state = new_state(config, &loop_id, objective, &now, self.project_root.clone());
            let loop_dir = self.loop_dir(&loop_id);
            loops::create_loop_dirs(&loop_dir)?;
            loops::write_state(&loop_dir, &state)?;
            let entry = registry_entry(config, &loop_id, objective, &now, &state);
            let active_loops = registry::active_loops_mut(&self.registry_path, &mut registry)?;
            match active_loops.iter_mut().find(|e| e.get("loop_id").and_then(Value::as_str) == Some(&loop_id)) {
                Some(existing) => *existing = entry,
                None => active_loops.push(entry),
            }
            registry::save(&self.registry_path, &mut registry)?;
            loops::update_legacy_symlink(&self.base_dir, registry::active_loops(&registry))?;
            Ok(CreatedLoop { loop_id: loop_id.clone(), state, warning })
        })
    }

    /// Shallow-merge `changes` into the loop's state and stamp `lastUpdate`.
    /// A `status` change is mirrored into the registry under the lock (or
    /// under the caller's own hold of it, when it has one).
    pub fn update_loop(
        &self,
        loop_id: &str,
        changes: &Map<String, Value>,
        max_attempts: u32,
    ) -> Result<Value> {
        check_loop_id(loop_id)?;
        let apply = || {
            let loop_dir = self.loop_dir(loop_id);
            let mut state = loops::read_state(&loop_dir, loop_id)?;
            let map = state_object(&mut state, loop_id)?;
            for (key, value) in changes {
                map.insert(key.clone(), value.clone());
            }
            map.insert("lastUpdate".into(), Value::from(now_iso()));
            loops::write_state(&loop_dir, &state)?;
            if let Some(status) = changes.get("status") {
                let mut registry = registry::load_or_create(&self.registry_path)?;
                if let Some(entry) =
                    registry::entry_mut(&self.registry_path, &mut registry, loop_id)?
                {
                    set_field(entry, "status", status.clone());
                    registry::save(&self.registry_path, &mut registry)?;
                }
            }
            Ok(state)
        };
        if !changes.contains_key("status") || self.lock.is_held_by_caller() {
            return apply();
        }
        // As the original: a missing loop is reported before anything else happens.
        loops::read_state(&self.loop_dir(loop_id), loop_id)?;
        self.locked(loop_id, max_attempts, apply)
    }

    /// Record a loop's new pid in its state and in the registry, under the lock.
    pub fn update_loop_pid(&self, loop_id: &str, pid: Value, max_attempts: u32) -> Result<Value> {
        check_loop_id(loop_id)?;
        loops::read_state(&self.loop_dir(loop_id), loop_id)?;
        self.locked(loop_id, max_attempts, || {
            let loop_dir = self.loop_dir(loop_id);
            let mut state = loops::read_state(&loop_dir, loop_id)?;
            let map = state_object(&mut state, loop_id)?;
            map.insert("currentPid".into(), pid.clone());
            map.insert("lastUpdate".into(), Value::from(now_iso()));
            loops::write_state(&loop_dir, &state)?;
            let mut registry = registry::load_or_create(&self.registry_path)?;
            if let Some(entry) = registry::entry_mut(&self.registry_path, &mut registry, loop_id)? {
                set_field(entry, "pid", pid.clone());
                registry::save(&self.registry_path, &mut registry)?;
            }
            Ok(state)
        })
    }

    /// The loop's state names a pid, and that process is alive.
    pub fn is_loop_alive(&self, loop_id: &str) -> bool {
        self.get_loop(loop_id)
            .ok()
            .and_then(|state| state.get("currentPid").and_then(as_pid))
            .is_some_and(process_identity::is_alive)
    }

    /// Move the loop to `archive/`, drop it from the registry and count it
    /// as completed or aborted, under the lock.
    pub fn archive_loop(&self, loop_id: &str, max_attempts: u32) -> Result<()> {
        check_loop_id(loop_id)?;
        let loop_dir_missing = || Error::Message(format!("Loop directory not found: {loop_id}"));
        if !self.loop_dir(loop_id).is_dir() {
            return Err(loop_dir_missing());
        }
        self.locked(loop_id, max_attempts, || {
            let loop_dir = self.loop_dir(loop_id);
            if !loop_dir.is_dir() {
                return Err(loop_dir_missing());
            }
            let mut registry = registry::load_or_create(&self.registry_path)?;
            let active_loops = registry::active_loops_mut(&self.registry_path, &mut registry)?;
            let position = active_loops
                .iter()
                .position(|e| e.get("loop_id").and_then(Value::as_str) == Some(loop_id));
            let entry = position.map(|i| active_loops.remove(i));
            let status = match entry
                .as_ref()
                .and_then(|e| e.get("status"))
                .and_then(Value::as_str)
            {
                Some(status) => status.to_owned(),
                None => loops::read_state(&loop_dir, loop_id)
                    .ok()
                    .and_then(|s| s.get("status").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default(),
            };
            loops::move_to_archive(&loop_dir, &self.archive_dir, loop_id)?;
            let counter = if matches!(status.as_str(), "completed" | "completing") {
                "total_completed"
            } else {
                "total_aborted"
            };
            registry::bump(&mut registry, counter);
            registry::save(&self.registry_path, &mut registry)?;
            loops::update_legacy_symlink(&self.base_dir, registry::active_loops(&registry))
        })
    }

    /// Move a single-loop layout (`<baseDir>/session-state.json` as a
    /// regular file, with its sibling directories) into `loops/<new id>/`.
    pub fn migrate_legacy_state(&self, owner: Option<&str>, max_attempts: u32) -> Result<bool> {
        self.ensure_base_dir()?;
        let legacy = self.base_dir.join(STATE_FILE);
        match fs::symlink_metadata(&legacy) {
            Ok(meta) if meta.file_type().is_file() => {}
            _ => return Ok(false),
        }
        let bytes = fs::read(&legacy).at("open", &legacy)?;
        let mut state: Value = crate::js_json::from_slice_lossy(&bytes).map_err(|e| {
            Error::Message(format!(
                "Failed to migrate legacy state: {}: {e}",
                legacy.display()
            ))
        })?;
        let objective = state
            .get("objective")
            .and_then(Value::as_str)
            .unwrap_or("migrated loop")
            .to_owned();
        let loop_id = generate_loop_id(&objective);
        self.locked(&loop_id, max_attempts, || {
            // Another migration may have run while we waited for the lock.
            if !fs::symlink_metadata(&legacy).is_ok_and(|m| m.file_type().is_file()) {
                return Ok(false);
            }
            let loop_dir = self.loop_dir(&loop_id);
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
            let map = state_object(&mut state, &loop_id)?;
            map.insert("loopId".into(), Value::from(loop_id.clone()));
            loops::write_state(&loop_dir, &state)?;
            fs::remove_file(&legacy).at("unlink", &legacy)?;
            let mut registry = registry::load_or_create(&self.registry_path)?;
            let now = now_iso();
            let entry = json!({
                "loop_id": loop_id,
                "task_summary": js_slice(&objective, 200),
                "status": state.get("status").filter(|v| truthy(v)).cloned().unwrap_or_else(|| "running".into()),
                "started_at": state.get("startTime").filter(|v| truthy(v)).cloned().unwrap_or_else(|| now.clone().into()),
                "owner": owner.map(str::to_owned).unwrap_or_else(default_owner),
                "pid": state.get("currentPid").cloned().unwrap_or(Value::Null),
                "iteration": state.get("currentIteration").filter(|v| truthy(v)).cloned().unwrap_or_else(|| 0.into()),
                "max_iterations": state.get("maxIterations").filter(|v| truthy(v)).cloned().unwrap_or_else(|| 10.into()),
                "completion_criteria": state.get("completionCriteria").cloned().unwrap_or(Value::Null),
                "priority": "medium",
                "tags": ["migrated"],
            });
            registry::active_loops_mut(&self.registry_path, &mut registry)?.push(entry);
            registry::save(&self.registry_path, &mut registry)?;
            loops::update_legacy_symlink(&self.base_dir, registry::active_loops(&registry))?;
            Ok(true)
        })
    }

    /// Run `f` under the registry lock (creating the base directory the lock file lives in).
    fn locked<T>(
        &self,
        loop_id: &str,
        max_attempts: u32,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        // A stat, not four mkdirs: on a busy disk each mkdir costs a journal round.
        if !self.loops_dir.is_dir() {
            self.ensure_base_dir()?;
        }
        self.lock.with_lock(loop_id, max_attempts, f)
    }
}

/// `n * (n - 1) / 2`: how many pairs of loops can talk to each other.
pub fn communication_paths(n: f64) -> f64 {
    n * (n - 1.0) / 2.0
}

fn new_state(
    config: &Map<String, Value>,
    loop_id: &str,
    objective: &str,
    now: &str,
    project_root: String,
) -> Value {
    let mut state = Map::new();
    state.insert("version".into(), "1.0.0".into());
    state.insert("loopId".into(), loop_id.into());
    state.insert("objective".into(), objective.into());
    if let Some(criteria) = config.get("completionCriteria") {
        state.insert("completionCriteria".into(), criteria.clone());
    }
    state.insert("status".into(), "running".into());
    state.insert(
        "maxIterations".into(),
        or(config, "maxIterations", json!(10)),
    );
    state.insert("currentIteration".into(), 0.into());
    state.insert("startTime".into(), now.into());
    state.insert("lastUpdate".into(), now.into());
    state.insert("sessionId".into(), uuid::Uuid::new_v4().to_string().into());
    state.insert("currentPid".into(), std::process::id().into());
    state.insert("iterations".into(), json!([]));
    state.insert("accumulatedLearnings".into(), "".into());
    state.insert("filesModified".into(), json!([]));
    state.insert(
        "giteaIntegration".into(),
        or(config, "giteaIntegration", Value::Null),
    );
    state.insert(
        "config".into(),
        json!({
            "model": or(config, "model", json!("opus")),
            "budgetPerIteration": or(config, "budgetPerIteration", json!(2.0)),
            "timeoutMinutes": or(config, "timeoutMinutes", json!(60)),
            "mcpConfig": or(config, "mcpConfig", Value::Null),
            "workingDir": or(config, "workingDir", project_root.into()),
        }),
    );
    Value::Object(state)
}

fn registry_entry(
    config: &Map<String, Value>,
    loop_id: &str,
    objective: &str,
    now: &str,
    state: &Value,
) -> Value {
    let mut entry = Map::new();
    entry.insert("loop_id".into(), loop_id.into());
    entry.insert("task_summary".into(), js_slice(objective, 200).into());
    entry.insert("status".into(), "running".into());
    entry.insert("started_at".into(), now.into());
    entry.insert(
        "owner".into(),
        config
            .get("owner")
            .filter(|v| truthy(v))
            .cloned()
            .unwrap_or_else(|| default_owner().into()),
    );
    entry.insert("pid".into(), std::process::id().into());
    entry.insert("iteration".into(), 0.into());
    entry.insert(
        "max_iterations".into(),
        state.get("maxIterations").cloned().unwrap_or(Value::Null),
    );
    if let Some(criteria) = config.get("completionCriteria") {
        entry.insert("completion_criteria".into(), criteria.clone());
    }
    entry.insert("priority".into(), or(config, "priority", json!("medium")));
    entry.insert("tags".into(), or(config, "tags", json!([])));
    Value::Object(entry)
}

/// `config[key] || default`.
fn or(config: &Map<String, Value>, key: &str, default: Value) -> Value {
    config
        .get(key)
        .filter(|v| truthy(v))
        .cloned()
        .unwrap_or(default)
}

fn default_owner() -> String {
    format!(
        "user:{}",
        std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "unknown".into())
    )
}

fn as_pid(value: &Value) -> Option<i64> {
    value
        .as_f64()
        .filter(|p| p.fract() == 0.0)
        .map(|p| p as i64)
}

fn set_field(entry: &mut Value, key: &str, value: Value) {
    if let Some(map) = entry.as_object_mut() {
        map.insert(key.into(), value);
    }
}

fn state_object<'a>(state: &'a mut Value, loop_id: &str) -> Result<&'a mut Map<String, Value>> {
    state.as_object_mut().ok_or_else(|| {
        Error::Message(format!(
            "Failed to load loop state: {loop_id}: not a JSON object"
        ))
    })
}

#[cfg(test)]
mod tests;
