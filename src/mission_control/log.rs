//! The `(msg, meta)` logger every component writes to.

use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where log lines go: the user's `logger(msg, meta)` in JS, a test
/// recorder in Rust, or nowhere.
pub(crate) trait Log: Send + Sync {
    fn log(&self, msg: &str, meta: Value);
}

/// A shareable logger.
pub(crate) type Logger = Arc<dyn Log>;

#[cfg(test)]
/// A logger that drops everything.
pub(crate) struct Silent;

#[cfg(test)]
impl Log for Silent {
    fn log(&self, _msg: &str, _meta: Value) {}
}

#[cfg(test)]
pub(crate) fn silent() -> Logger {
    Arc::new(Silent)
}

/// For lines a stream causes one per frame (unknown missions, bad frames):
/// under a flood at most [`FloodGuard::PER_SECOND`] of them a second reach
/// the logger, so a flood cannot queue up unbounded log calls. The rest are
/// counted, and the next line logged carries `suppressed: <count>`.
#[derive(Default)]
pub(crate) struct FloodGuard {
    /// Start of the current second, lines logged in it, lines left out since the last one logged.
    window: Mutex<Option<(Instant, u32, u64)>>,
}

impl FloodGuard {
    pub(crate) const PER_SECOND: u32 = 100;

    pub(crate) fn log(&self, log: &Logger, msg: &str, mut meta: Value) {
        let suppressed = {
            let mut window = self
                .window
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let (start, logged, left_out) = window.get_or_insert((now, 0, 0));
            if now.duration_since(*start) >= Duration::from_secs(1) {
                (*start, *logged) = (now, 0);
            }
            if *logged >= Self::PER_SECOND {
                *left_out += 1;
                return;
            }
            *logged += 1;
            std::mem::take(left_out)
        };
        if suppressed > 0 {
            if let Some(map) = meta.as_object_mut() {
                map.insert("suppressed".into(), Value::from(suppressed));
            }
        }
        log.log(msg, meta);
    }
}

/// Records every line, for tests.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Recorder(pub std::sync::Mutex<Vec<(String, Value)>>);

#[cfg(test)]
impl Log for Recorder {
    fn log(&self, msg: &str, meta: Value) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((msg.to_owned(), meta));
    }
}

#[cfg(test)]
impl Recorder {
    pub(crate) fn messages(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// The `meta` of every line logged as `msg`, in order.
    pub(crate) fn metas(&self, msg: &str) -> Vec<Value> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(m, _)| m == msg)
            .map(|(_, meta)| meta.clone())
            .collect()
    }

    pub(crate) fn lines(&self) -> Vec<(String, Value)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_flood_is_cut_to_a_rate_and_the_rest_counted() {
        let recorder = Arc::new(Recorder::default());
        let log: Logger = recorder.clone();
        let guard = FloodGuard::default();
        for i in 0..250 {
            guard.log(&log, "x", json!({"i": i}));
        }
        assert_eq!(recorder.lines().len(), FloodGuard::PER_SECOND as usize);
        // A new second: the next line says how many were left out.
        if let Some(w) = guard.window.lock().expect("lock").as_mut() {
            w.0 -= Duration::from_secs(1);
        }
        guard.log(&log, "x", json!({"i": 250}));
        assert_eq!(
            recorder.lines().last().map(|l| l.1.clone()),
            Some(json!({"i": 250, "suppressed": 150}))
        );
    }
}
