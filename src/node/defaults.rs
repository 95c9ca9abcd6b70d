//! The defaults the JS files fill in for options a caller leaves out, read
//! once when they load. Each value is written once, on the Rust side (as
//! `Default` impls or constants beside the code that uses it); this file
//! only hands them over, so JS and Rust cannot drift apart.

use crate::loop_registry::{LOOP_SUBDIRS, STATE_FILE};
use crate::mission_control::dispatch::DispatchOptions;
use napi_derive::napi;

/// `dispatchMission`'s defaults (and the queue tailer's, which dispatches).
#[napi(object)]
pub struct DispatchDefaults {
    pub aiwg_serve_url: String,
    pub max_attempts: u32,
    pub retry_base_ms: f64,
    pub request_timeout_ms: f64,
}

/// The loop registry's layout, which the JS class and the native file work
/// must agree on.
#[napi(object)]
pub struct RegistryDefaults {
    /// The sub-directories every loop directory has.
    pub loop_subdirs: Vec<String>,
    /// A loop's state file name (and the legacy one in the base directory).
    pub state_file: String,
}

#[napi(object)]
pub struct Defaults {
    pub dispatch: DispatchDefaults,
    pub registry: RegistryDefaults,
}

/// Every default, as plain data.
#[napi(catch_unwind)]
pub fn defaults() -> Defaults {
    let dispatch = DispatchOptions::default();
    Defaults {
        dispatch: DispatchDefaults {
            aiwg_serve_url: dispatch.aiwg_serve_url,
            max_attempts: dispatch.max_attempts,
            retry_base_ms: dispatch.retry_base_ms,
            request_timeout_ms: dispatch.request_timeout.as_millis() as f64,
        },
        registry: RegistryDefaults {
            loop_subdirs: LOOP_SUBDIRS.iter().map(|s| (*s).to_owned()).collect(),
            state_file: STATE_FILE.to_owned(),
        },
    }
}
