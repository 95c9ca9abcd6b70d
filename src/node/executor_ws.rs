//! `@aiwg/mc-native/executor-ws-client` as JS sees it (see
//! js/executor-ws-client.js, which drives an injected WebSocketImpl itself).

use super::cancel::Operation;
use super::sink::{Sink, SinkFn};
use super::{parse_json, run_in_background, to_json};
use crate::mission_control::events;
use crate::mission_control::executor_ws::{self, WsHandler, WsOptions, WsState};
use crate::mission_control::log::Logger;
use napi_derive::napi;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[napi(catch_unwind)]
pub fn build_ws_url(aiwg_serve_url: String, executor_id: String, token: Option<String>) -> String {
    executor_ws::build_ws_url(&aiwg_serve_url, &executor_id, token.as_deref())
}

/// The URL with any token shown as `***`.
#[napi(catch_unwind)]
pub fn redact_url(url: String) -> String {
    executor_ws::redact(&url)
}

#[napi(catch_unwind)]
pub fn reconnect_delay(attempt: f64, base_ms: f64, max_ms: f64) -> f64 {
    executor_ws::reconnect_delay(attempt, base_ms, max_ms)
}

/// The update as JSON text, or null.
#[napi(catch_unwind)]
pub fn event_to_status_update(event_json: String) -> napi::Result<Option<String>> {
    let event: Value = parse_json("event", &event_json)?;
    events::event_to_status_update(&event)
        .map(|u| to_json(&events::update_to_json(&u)))
        .transpose()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WsOpts {
    aiwg_serve_url: String,
    executor_id: String,
    token: Option<String>,
    reconnect_base_ms: f64,
    reconnect_max_ms: f64,
}

/// Sends a stream's events and states to JS.
struct ToJs(Arc<Sink>);

impl WsHandler for ToJs {
    fn on_event(&self, event: Value) {
        self.0.send("event", event.to_string(), String::new());
    }

    fn on_state(&self, state: WsState) {
        let (name, meta) = match state {
            WsState::Opened { url } => ("opened", json!({"url": url})),
            WsState::Closed { code } => ("closed", json!({"code": code})),
            WsState::Error => ("error", Value::Null),
        };
        self.0.send("state", name.to_owned(), meta.to_string());
    }

    fn on_ready(&self) {
        self.0.send("ready", String::new(), String::new());
    }
}

/// Start following an executor with the Rust client. The sink hears
/// `event`, `state`, `ready` (first open), `log`, and `stopped` at the end.
#[napi(catch_unwind)]
pub fn start_executor_ws(
    opts_json: String,
    has_logger: bool,
    #[napi(ts_arg_type = "(kind: string, a: string, b: string) => void")] sink: SinkFn,
) -> napi::Result<Operation> {
    let opts: WsOpts = parse_json("opts", &opts_json)?;
    let options = WsOptions {
        aiwg_serve_url: opts.aiwg_serve_url,
        executor_id: opts.executor_id,
        token: opts.token,
        reconnect_base_ms: opts.reconnect_base_ms,
        reconnect_max_ms: opts.reconnect_max_ms,
    };
    let sink = Arc::new(Sink::new(sink, has_logger));
    let stop = CancellationToken::new();
    let token = stop.clone();
    run_in_background(Arc::clone(&sink), async move {
        let log: Logger = sink.clone();
        executor_ws::run(options, Arc::new(ToJs(Arc::clone(&sink))), log, stop).await;
        sink.send("stopped", String::new(), String::new());
    });
    Ok(Operation::new(token))
}
