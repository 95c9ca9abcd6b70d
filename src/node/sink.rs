//! The one ordered channel from Rust to a JS operation: log lines and
//! lifecycle events (`ready`, `done`, `stopped`, `error`) travel through
//! the same threadsafe function, so JS sees every log line an operation
//! caused before it sees the operation finish.

use crate::mission_control::log::Log;
use napi::bindgen_prelude::FnArgs;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use serde_json::Value;

/// `(kind, a, b) => void` on the JS side.
pub type SinkFn = ThreadsafeFunction<
    FnArgs<(String, String, String)>,
    (),
    FnArgs<(String, String, String)>,
    Status,
    false,
>;

/// A JS operation's sink. Holding it keeps Node alive; dropping it lets go.
pub struct Sink {
    tsfn: SinkFn,
    /// Whether the caller gave a logger at all (if not, log lines are not sent).
    pub logs: bool,
}

impl Sink {
    pub fn new(tsfn: SinkFn, logs: bool) -> Self {
        Sink { tsfn, logs }
    }

    /// Send `(kind, a, b)`; calls are delivered in the order they are made.
    pub fn send(&self, kind: &str, a: String, b: String) {
        let _ = self.tsfn.call(
            FnArgs::from((kind.to_owned(), a, b)),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    }
}

impl Log for Sink {
    fn log(&self, msg: &str, meta: Value) {
        if self.logs {
            self.send(
                "log",
                msg.to_owned(),
                crate::js_json::to_compact_string(&meta),
            );
        }
    }
}
