//! `@aiwg/mc-native`: aiwg's Mission Control in Rust.
//!
//! The engines below know nothing of Node; [`node`] is the napi binding
//! that converts and wires them for JavaScript. Nothing here is a Rust
//! API: every item is crate-private unless napi exports it.

// Under `cargo test` napi registers nothing, so what only the binding
// uses looks unused there; the library build still reports dead code.
#![cfg_attr(test, allow(dead_code))]

mod atomic_write;
mod backoff;
mod clock;
mod error;
mod file_stamp;
mod fs_events;
mod js_json;
mod loop_registry;
mod mission_control;
mod process_identity;
mod redact;
mod tls;
mod uri;
mod whole_file;

mod node;

#[cfg(test)]
mod tests;

/// When the addon loads (and when a test binary starts): the TLS crypto
/// provider, before any client exists.
#[napi_derive::module_init]
fn init() {
    tls::install_provider();
}
