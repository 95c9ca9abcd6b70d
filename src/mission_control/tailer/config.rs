//! `startQueueTailer`'s settings and their defaults. The defaults live here
//! only: the JS wrapper reads them from the addon (`queueTailerDefaults()`)
//! when it loads, so the two languages cannot drift apart.

use super::executors::WsConfig;
use std::path::PathBuf;
use std::time::Duration;

/// The defaults of `startQueueTailer`'s options (§6, §9.3, §9.7) and the
/// drain time of `stop()` (§6.6), as numbers JS can read.
pub(crate) mod defaults {
    /// `aiwgServeUrl`.
    pub(crate) const AIWG_SERVE_URL: &str = "http://127.0.0.1:7337";
    /// `watchDir`.
    pub(crate) const WATCH_DIR: &str = ".aiwg/ralph-external/mc";
    /// `pollIntervalMs`: the polling fallback's period.
    pub(crate) const POLL_INTERVAL_MS: f64 = 1000.0;
    /// `retryBaseMs`: the first backoff of dispatch retries and deferrals.
    pub(crate) const RETRY_BASE_MS: f64 = 500.0;
    /// `maxAttempts` per dispatch.
    pub(crate) const MAX_ATTEMPTS: f64 = 5.0;
    /// `maxInflight` (§9.3): dispatches at a time.
    pub(crate) const MAX_INFLIGHT: f64 = 8.0;
    /// `requestTimeoutMs` (§9.7) per dispatch request.
    pub(crate) const REQUEST_TIMEOUT_MS: f64 = 30_000.0;
    /// `reconnectBaseMs`: the first reconnect delay of executor streams.
    pub(crate) const RECONNECT_BASE_MS: f64 = 1000.0;
    /// `reconnectMaxMs`: the reconnect delay's cap.
    pub(crate) const RECONNECT_MAX_MS: f64 = 30_000.0;
    /// How long `stop()` waits for in-flight dispatches (§6.6).
    pub(crate) const DRAIN_MS: f64 = 5000.0;
}

/// How long `stop()` waits for in-flight work.
pub(crate) const DRAIN: Duration = Duration::from_millis(defaults::DRAIN_MS as u64);

/// A fault a test can ask for (test-only: see `MC_NATIVE_FAULT` in the
/// binding), to prove that a failure inside the tailer is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Panic inside a tailer task right after `ready`.
    AfterReady,
    /// The file-system watch cannot be set up (as on a file system without
    /// inotify): the tailer must fall back to polling and say so.
    NoWatch,
}

/// `startQueueTailer`'s options, merged with the defaults.
#[derive(Debug, Clone)]
pub(crate) struct TailerConfig {
    pub aiwg_serve_url: String,
    pub watch_dir: PathBuf,
    pub poll_interval: Duration,
    pub retry_base_ms: f64,
    pub max_attempts: u32,
    pub dry_run: bool,
    pub max_inflight: usize,
    pub request_timeout: Duration,
    /// Poll instead of watching (the fallback, forced).
    pub polling: bool,
    /// Executor subscriptions.
    pub ws: WsConfig,
    /// Test-only fault injection; `None` in every real run.
    pub fault: Option<Fault>,
}

impl Default for TailerConfig {
    fn default() -> Self {
        TailerConfig {
            aiwg_serve_url: defaults::AIWG_SERVE_URL.into(),
            watch_dir: PathBuf::from(defaults::WATCH_DIR),
            poll_interval: Duration::from_millis(defaults::POLL_INTERVAL_MS as u64),
            retry_base_ms: defaults::RETRY_BASE_MS,
            max_attempts: defaults::MAX_ATTEMPTS as u32,
            dry_run: false,
            max_inflight: defaults::MAX_INFLIGHT as usize,
            request_timeout: Duration::from_millis(defaults::REQUEST_TIMEOUT_MS as u64),
            polling: false,
            ws: WsConfig {
                reconnect_base_ms: defaults::RECONNECT_BASE_MS,
                reconnect_max_ms: defaults::RECONNECT_MAX_MS,
                ..WsConfig::default()
            },
            fault: None,
        }
    }
}
