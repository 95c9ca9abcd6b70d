//! The one ordered channel from Rust to a JS operation: log lines and
//! lifecycle events (`ready`, `done`, `stopped`, `error`) travel through
//! the same threadsafe function, so JS sees every log line an operation
//! caused before it sees the operation finish.
//!
//! Each binding names its own events as a typed enum (a napi structured
//! enum: `{kind: 'log', msg, meta} | {kind: 'ready'} | …` in JS), so what
//! each field means is in the type, not in a convention.

use crate::mission_control::log::Log;
use napi::bindgen_prelude::JsValuesTupleIntoVec;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use serde_json::Value;

/// What an operation's events must be able to say, whatever else they say.
pub trait SinkEvent: JsValuesTupleIntoVec + Send + 'static {
    /// A log line: the message and its meta as JSON text (JS `JSON.parse`s it).
    fn log(msg: &str, meta: String) -> Self;
    /// The operation's Rust side failed (a panic): it is over.
    fn internal_error(message: String) -> Self;
}

/// `(event) => void` on the JS side.
pub type SinkFn<E> = ThreadsafeFunction<E, (), E, Status, false>;

/// A JS operation's sink. Holding it keeps Node alive; dropping it lets go.
pub struct Sink<E: SinkEvent> {
    tsfn: SinkFn<E>,
    /// Whether the caller gave a logger at all (if not, log lines are not sent).
    pub logs: bool,
}

impl<E: SinkEvent> Sink<E> {
    pub fn new(tsfn: SinkFn<E>, logs: bool) -> Self {
        Sink { tsfn, logs }
    }

    /// Send one event; events are delivered in the order they are sent.
    pub fn emit(&self, event: E) {
        let _ = self
            .tsfn
            .call(event, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

impl<E: SinkEvent> Log for Sink<E> {
    fn log(&self, msg: &str, mut meta: Value) {
        if self.logs {
            // No secret reaches a logger, whichever part wrote the line (§9.8).
            crate::redact::redact_json(&mut meta);
            self.emit(E::log(msg, crate::js_json::to_compact_string(&meta)));
        }
    }
}
