//! `@aiwg/mc-native/queue-tailer` as JS sees it (see js/queue-tailer.js):
//! the options as a typed object, the tailer's events as a typed enum, and
//! the defaults the JS side merges (they live in
//! [`tailer::config`](crate::mission_control::tailer::config) only).

use super::convert::{clamp_u32, millis, transport};
use super::fetch::FetchFn;
use super::parse_json;
use super::run_in_background;
use super::sink::{Sink, SinkEvent, SinkFn};
use crate::mission_control::log::Logger;
use crate::mission_control::tailer::{
    self, defaults, inbox, ExternalStreams, Fault, Inbox, StreamInput, TailerConfig, WsConfig,
};
use napi_derive::napi;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The environment variable of the test-only fault switch:
/// `MC_NATIVE_FAULT=tailer-after-ready` makes a tailer task panic right
/// after `ready` (read when a tailer starts), so tests can see an internal
/// error reported; `tailer-no-watch` makes its file-system watch fail to
/// start. Never set it outside tests.
const FAULT_ENV: &str = "MC_NATIVE_FAULT";

/// The options the JS wrapper passes, already read as JS reads them from
/// the merged options (numbers are `Number(x)`, so NaN and ±Infinity
/// arrive as such; flags are truthiness).
#[napi(object)]
pub struct TailerOptions {
    pub aiwg_serve_url: String,
    pub watch_dir: String,
    pub poll_interval_ms: f64,
    pub retry_base_ms: f64,
    pub max_attempts: f64,
    pub dry_run: bool,
    pub max_inflight: f64,
    pub request_timeout_ms: f64,
    /// Poll instead of watching (`usePolling`).
    pub polling: bool,
    #[napi(js_name = "disableWSSubscription")]
    pub disable_ws_subscription: bool,
    /// `executorTokens`, without the empty ones.
    pub executor_tokens: HashMap<String, String>,
    pub subscribe_executors: Vec<String>,
    pub reconnect_base_ms: f64,
    pub reconnect_max_ms: f64,
}

/// The defaults of `startQueueTailer`'s options and the drain time of
/// `stop()`, for the JS wrapper to read once when it loads.
#[napi(object)]
pub struct QueueTailerDefaults {
    pub aiwg_serve_url: String,
    pub watch_dir: String,
    pub poll_interval_ms: f64,
    pub retry_base_ms: f64,
    pub max_attempts: f64,
    pub max_inflight: f64,
    pub request_timeout_ms: f64,
    pub reconnect_base_ms: f64,
    pub reconnect_max_ms: f64,
    /// How long `stop()` waits for in-flight dispatches before cutting them off.
    pub drain_ms: f64,
}

/// The tailer's defaults (the one copy, in Rust).
#[napi(catch_unwind)]
pub fn queue_tailer_defaults() -> QueueTailerDefaults {
    QueueTailerDefaults {
        aiwg_serve_url: defaults::AIWG_SERVE_URL.into(),
        watch_dir: defaults::WATCH_DIR.into(),
        poll_interval_ms: defaults::POLL_INTERVAL_MS,
        retry_base_ms: defaults::RETRY_BASE_MS,
        max_attempts: defaults::MAX_ATTEMPTS,
        max_inflight: defaults::MAX_INFLIGHT,
        request_timeout_ms: defaults::REQUEST_TIMEOUT_MS,
        reconnect_base_ms: defaults::RECONNECT_BASE_MS,
        reconnect_max_ms: defaults::RECONNECT_MAX_MS,
        drain_ms: defaults::DRAIN_MS,
    }
}

/// What a tailer tells JS, in order: `Log` lines (when there is a logger),
/// `Subscribe` requests (with `externalStreams`), `Ready` once the initial
/// sweep is done, and `Stopped` last. `InternalError` comes instead of
/// `Stopped` when the tailer's own task failed.
#[napi(discriminant = "kind")]
pub enum TailerEvent {
    /// A log line; `meta` is JSON text.
    Log { msg: String, meta: String },
    /// The initial sweep and its dispatches are done.
    Ready {},
    /// The tailer has room again for the events of the streams that
    /// `streamEvent` said were full: let them go on.
    Room {},
    /// Run a stream for `executorId` (the caller's `WebSocketImpl`).
    Subscribe {
        executor_id: String,
        token: Option<String>,
    },
    /// Drained and stopped; `error` names the internal error that stopped
    /// it, if one did (it was logged as `queue-tailer:internal-error`).
    Stopped { error: Option<String> },
    /// The tailer's Rust side failed outside its tasks (a panic): it is over.
    InternalError { message: String },
}

impl SinkEvent for TailerEvent {
    fn log(msg: &str, meta: String) -> Self {
        TailerEvent::Log {
            msg: msg.to_owned(),
            meta,
        }
    }

    fn internal_error(message: String) -> Self {
        TailerEvent::InternalError { message }
    }
}

/// A running tailer as JS holds it.
#[napi]
pub struct TailerHandle {
    stop: CancellationToken,
    streams: Option<Inbox>,
}

#[napi]
impl TailerHandle {
    /// Stop the tailer (idempotent); the sink hears `Stopped` when it is done.
    #[napi(catch_unwind)]
    pub fn cancel(&self) {
        self.stop.cancel();
    }

    /// An event from a stream the caller runs (an injected `WebSocketImpl`),
    /// as JSON text: events are documents. `false` when the tailer is full:
    /// hold this stream's events back until the sink hears `Room`.
    #[napi(catch_unwind)]
    pub fn stream_event(&self, executor_id: String, event_json: String) -> napi::Result<bool> {
        let event: Value = parse_json("event", &event_json)?;
        Ok(self
            .streams
            .as_ref()
            .is_none_or(|streams| streams.post(StreamInput::Event { executor_id, event })))
    }

    /// A state change of a stream the caller runs.
    #[napi(catch_unwind)]
    pub fn stream_state(&self, executor_id: String, state: String) {
        if let Some(streams) = &self.streams {
            streams.post(StreamInput::State { executor_id, state });
        }
    }
}

/// The fault the environment asks for (test-only; see [`FAULT_ENV`]).
fn fault_from_env() -> Option<Fault> {
    match std::env::var(FAULT_ENV).ok()?.as_str() {
        "tailer-after-ready" => Some(Fault::AfterReady),
        "tailer-no-watch" => Some(Fault::NoWatch),
        _ => None,
    }
}

/// The tailer's settings from the options JS read.
fn config(opts: TailerOptions) -> TailerConfig {
    TailerConfig {
        aiwg_serve_url: opts.aiwg_serve_url,
        watch_dir: PathBuf::from(opts.watch_dir),
        poll_interval: millis(opts.poll_interval_ms.max(10.0)),
        retry_base_ms: opts.retry_base_ms,
        max_attempts: clamp_u32(opts.max_attempts),
        dry_run: opts.dry_run,
        max_inflight: clamp_u32(opts.max_inflight).max(1) as usize,
        request_timeout: millis(opts.request_timeout_ms),
        polling: opts.polling,
        ws: WsConfig {
            disabled: opts.disable_ws_subscription,
            tokens: opts.executor_tokens,
            subscribe: opts.subscribe_executors,
            reconnect_base_ms: opts.reconnect_base_ms,
            reconnect_max_ms: opts.reconnect_max_ms,
        },
        fault: fault_from_env(),
    }
}

/// Start a tailer; the sink hears its [`TailerEvent`]s. With
/// `externalStreams`, executor subscriptions are asked of JS as
/// `Subscribe` events and fed back through the handle.
#[napi(catch_unwind)]
pub fn start_queue_tailer(
    options: TailerOptions,
    has_logger: bool,
    external_streams: bool,
    #[napi(ts_arg_type = "(event: TailerEvent) => void")] sink: SinkFn<TailerEvent>,
    #[napi(
        ts_arg_type = "((url: string, init: string) => Promise<FetchAnswer>) | undefined | null"
    )]
    fetch: Option<FetchFn>,
) -> napi::Result<TailerHandle> {
    let config = config(options);
    let transport = transport(fetch)?;
    let sink = Arc::new(Sink::new(sink, has_logger));
    let (streams, external) = if external_streams {
        let (tx, rx) = inbox();
        let asker = Arc::clone(&sink);
        let waker = Arc::clone(&sink);
        let subscribe = Box::new(move |executor_id: &str, token: Option<String>| {
            asker.emit(TailerEvent::Subscribe {
                executor_id: executor_id.to_owned(),
                token,
            });
        });
        (
            Some(tx),
            Some(ExternalStreams {
                subscribe,
                inputs: rx,
                room: Box::new(move || waker.emit(TailerEvent::Room {})),
            }),
        )
    } else {
        (None, None)
    };
    let stop = CancellationToken::new();
    let token = stop.clone();
    run_in_background(Arc::clone(&sink), async move {
        let log: Logger = sink.clone();
        let ready = Arc::clone(&sink);
        let on_ready = move || ready.emit(TailerEvent::Ready {});
        let error = tailer::run(config, transport, log, stop, external, on_ready)
            .await
            .err()
            .map(|e| e.to_string());
        sink.emit(TailerEvent::Stopped { error });
    });
    Ok(TailerHandle {
        stop: token,
        streams,
    })
}
