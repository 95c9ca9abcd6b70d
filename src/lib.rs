//! `@aiwg/mc-native`: aiwg's Mission Control in Rust.
//!
//! The engines below know nothing of Node; [`node`] is the napi binding
//! that converts and wires them for JavaScript.

pub mod atomic_write;
mod backoff;
pub mod clock;
pub mod error;
pub mod fs_events;
pub mod js_json;
pub mod loop_registry;
pub mod mission_control;
pub mod process_identity;
pub mod tls;
mod uri;

// Under `cargo test` napi registers nothing, so the exports look unused.
#[cfg_attr(test, allow(dead_code))]
mod node;

/// When the addon loads (and when a test binary starts): the TLS crypto
/// provider, before any client exists.
#[napi_derive::module_init]
fn init() {
    tls::install_provider();
}
