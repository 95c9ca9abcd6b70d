//! The napi binding: JS ⇄ Rust conversion and wiring, nothing else.
//!
//! Options, outcomes and events cross as typed napi objects and enums.
//! Documents (session files, events, patches) cross as JSON text:
//! `JSON.parse` and `JSON.stringify` on the JS side keep the original's
//! exact semantics (undefined fields dropped, lone surrogates kept), which
//! napi's own serde conversion does not.

// napi exports only `pub` items (its enums must be `pub`), and takes its
// arguments by value.
#![allow(unreachable_pub, clippy::needless_pass_by_value)]

mod cancel;
mod convert;
mod defaults;
mod dispatch_client;
mod executor_ws;
mod fetch;
mod loop_registry;
mod queue_tailer;
mod session_files;
mod sink;
mod status_writer;

use crate::error::Error;

/// The prefix of an error message that carries an I/O failure's details
/// as JSON; js/errors.js turns it into an error of `fs`'s shape.
const SYSTEM_ERROR_TAG: &str = "mc-native:system-error:";

/// Our error as a JS `Error`. An I/O failure travels as the tagged JSON
/// that js/errors.js rebuilds into `{code, errno, syscall, path, dest}`.
pub(crate) fn js_error(err: Error) -> napi::Error {
    match &err {
        Error::Io { .. } => {
            let detail = serde_json::json!(err.io_parts());
            napi::Error::new(
                napi::Status::GenericFailure,
                format!("{SYSTEM_ERROR_TAG}{detail}"),
            )
        }
        Error::Invalid(_) => napi::Error::new(napi::Status::InvalidArg, err.to_string()),
        Error::Message(_) => napi::Error::new(napi::Status::GenericFailure, err.to_string()),
    }
}

/// Run blocking file work off the JS thread; a panic becomes an error.
pub(crate) async fn blocking<T, F>(work: F) -> napi::Result<T>
where
    F: FnOnce() -> crate::error::Result<T> + Send + 'static,
    T: Send + 'static,
{
    match napi::bindgen_prelude::spawn_blocking(work).await {
        Ok(result) => result.map_err(js_error),
        Err(join) => Err(napi::Error::from_reason(format!(
            "internal error in mc-native: {join}"
        ))),
    }
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    what: &str,
    text: &str,
) -> napi::Result<T> {
    crate::js_json::from_slice_lossy(text.as_bytes())
        .map_err(|e| napi::Error::new(napi::Status::InvalidArg, format!("{what}: {e}")))
}

/// A JSON document from JS (text that `JSON.stringify` wrote), read as
/// `JSON.parse` reads it, nested up to `js_json::MAX_DEPTH` levels.
pub(crate) fn parse_value(what: &str, text: &str) -> napi::Result<serde_json::Value> {
    crate::js_json::parse(text.as_bytes())
        .map_err(|e| napi::Error::new(napi::Status::InvalidArg, format!("{what}: {e}")))
}

/// Run `work` on napi's tokio runtime, detached. If it panics, the
/// operation's sink hears `error` instead of nothing at all.
pub(crate) fn run_in_background<E, F>(sink: std::sync::Arc<sink::Sink<E>>, work: F)
where
    E: sink::SinkEvent,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let task = napi::bindgen_prelude::spawn(work);
    napi::bindgen_prelude::spawn(async move {
        if let Err(e) = task.await {
            sink.emit(E::internal_error(format!(
                "internal error in mc-native: {e}"
            )));
        }
    });
}
