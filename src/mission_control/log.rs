//! The `(msg, meta)` logger every component writes to.

use serde_json::Value;
use std::sync::Arc;

/// Where log lines go: the user's `logger(msg, meta)` in JS, a test
/// recorder in Rust, or nowhere.
pub trait Log: Send + Sync {
    fn log(&self, msg: &str, meta: Value);
}

/// A shareable logger.
pub type Logger = Arc<dyn Log>;

/// A logger that drops everything.
pub struct Silent;

impl Log for Silent {
    fn log(&self, _msg: &str, _meta: Value) {}
}

pub fn silent() -> Logger {
    Arc::new(Silent)
}

/// Records every line, for tests.
#[cfg(test)]
#[derive(Default)]
pub struct Recorder(pub std::sync::Mutex<Vec<(String, Value)>>);

#[cfg(test)]
impl Log for Recorder {
    fn log(&self, msg: &str, meta: Value) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((msg.to_owned(), meta));
    }
}

#[cfg(test)]
impl Recorder {
    pub fn messages(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(m, _)| m.clone())
            .collect()
    }

    pub fn lines(&self) -> Vec<(String, Value)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
