//! `@aiwg/mc-native/queue-tailer` as JS sees it (see js/queue-tailer.js).

use super::convert::{clamp_u32, millis, transport};
use super::fetch::FetchFn;
use super::sink::{Sink, SinkFn};
use super::{parse_json, run_in_background};
use crate::mission_control::log::Logger;
use crate::mission_control::tailer::{self, ExternalStreams, StreamInput, TailerConfig, WsConfig};
use napi_derive::napi;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The options the JS wrapper passes (merged with the defaults and read as
/// JS reads them: numbers are `Number(x)`, flags truthiness).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TailerOpts {
    aiwg_serve_url: String,
    watch_dir: String,
    #[serde(deserialize_with = "js_number")]
    poll_interval_ms: f64,
    #[serde(deserialize_with = "js_number")]
    retry_base_ms: f64,
    #[serde(deserialize_with = "js_number")]
    max_attempts: f64,
    dry_run: bool,
    #[serde(deserialize_with = "js_number")]
    max_inflight: f64,
    #[serde(deserialize_with = "js_number")]
    request_timeout_ms: f64,
    polling: bool,
    #[serde(rename = "disableWSSubscription")]
    disable_ws_subscription: bool,
    executor_tokens: HashMap<String, String>,
    subscribe_executors: Vec<String>,
    #[serde(deserialize_with = "js_number")]
    reconnect_base_ms: f64,
    #[serde(deserialize_with = "js_number")]
    reconnect_max_ms: f64,
}

/// A JS number as JSON carries it: a number, or `"NaN"`, `"Infinity"`,
/// `"-Infinity"` for the values JSON has no literal for.
fn js_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Finite(f64),
        Named(String),
    }
    match Number::deserialize(deserializer)? {
        Number::Finite(n) => Ok(n),
        Number::Named(name) => match name.as_str() {
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Ok(f64::NAN),
        },
    }
}

/// A running tailer as JS holds it.
#[napi]
pub struct TailerHandle {
    stop: CancellationToken,
    streams: Option<mpsc::UnboundedSender<StreamInput>>,
}

#[napi]
impl TailerHandle {
    /// Stop the tailer (idempotent); the sink hears `stopped` when it is done.
    #[napi(catch_unwind)]
    pub fn cancel(&self) {
        self.stop.cancel();
    }

    /// An event from a stream the caller runs (an injected WebSocketImpl).
    #[napi(catch_unwind)]
    pub fn stream_event(&self, executor_id: String, event_json: String) -> napi::Result<()> {
        let event: Value = parse_json("event", &event_json)?;
        if let Some(streams) = &self.streams {
            let _ = streams.send(StreamInput::Event { executor_id, event });
        }
        Ok(())
    }

    /// A state change of a stream the caller runs.
    #[napi(catch_unwind)]
    pub fn stream_state(&self, executor_id: String, state: String) {
        if let Some(streams) = &self.streams {
            let _ = streams.send(StreamInput::State { executor_id, state });
        }
    }
}

/// Start a tailer. The sink hears `log` lines, then `ready` once the
/// initial sweep is done, and `stopped` after `cancel()` has drained it
/// (or `error` if it could not start). With `externalStreams`, executor
/// subscriptions are asked of JS as `subscribe(executorId, token)` and fed
/// back through the handle.
#[napi(catch_unwind)]
pub fn start_queue_tailer(
    opts_json: String,
    has_logger: bool,
    external_streams: bool,
    #[napi(ts_arg_type = "(kind: string, a: string, b: string) => void")] sink: SinkFn,
    #[napi(
        ts_arg_type = "((url: string, init: string) => Promise<FetchAnswer>) | undefined | null"
    )]
    fetch: Option<FetchFn>,
) -> napi::Result<TailerHandle> {
    let opts: TailerOpts = parse_json("options", &opts_json)?;
    let config = TailerConfig {
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
    };
    let transport = transport(fetch)?;
    let sink = Arc::new(Sink::new(sink, has_logger));
    let (streams, external) = if external_streams {
        let (tx, rx) = mpsc::unbounded_channel();
        let asker = Arc::clone(&sink);
        let subscribe = Box::new(move |executor_id: &str, token: Option<String>| {
            asker.send(
                "subscribe",
                executor_id.to_owned(),
                token.unwrap_or_default(),
            );
        });
        (
            Some(tx),
            Some(ExternalStreams {
                subscribe,
                inputs: rx,
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
        let on_ready = move || ready.send("ready", String::new(), String::new());
        match tailer::run(config, transport, log, stop, external, on_ready).await {
            Ok(_) => sink.send("stopped", String::new(), String::new()),
            Err(e) => sink.send("error", e.to_string(), String::new()),
        }
    });
    Ok(TailerHandle {
        stop: token,
        streams,
    })
}
