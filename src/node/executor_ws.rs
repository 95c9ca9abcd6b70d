//! `@aiwg/mc-native/executor-ws-client` as JS sees it (see
//! js/executor-ws-client.js, which builds the URL, drives an injected
//! WebSocketImpl itself, and has the pure helpers in plain JS).

use super::cancel::Operation;
use super::run_in_background;
use super::sink::{Sink, SinkFn};
use crate::mission_control::executor_ws::{self, Stream, WsHandler, WsState};
use crate::mission_control::log::Logger;
use napi_derive::napi;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Sends a stream's frames and states to JS.
struct ToJs(Arc<Sink>);

impl WsHandler for ToJs {
    fn on_event(&self, event: Value) {
        self.0.send(
            "event",
            crate::js_json::to_compact_string(&event),
            String::new(),
        );
    }

    /// The frame's own text: JS parses it with `JSON.parse`, as the original did.
    fn on_frame(&self, text: &str, _event: Value) {
        self.0.send("event", text.to_owned(), String::new());
    }

    fn on_state(&self, state: WsState) {
        let (name, meta) = match state {
            WsState::Opened { url } => ("opened", json!({"url": url})),
            WsState::Closed { code } => ("closed", json!({"code": code})),
            WsState::Error => ("error", Value::Null),
        };
        self.0.send(
            "state",
            name.to_owned(),
            crate::js_json::to_compact_string(&meta),
        );
    }

    fn on_ready(&self) {
        self.0.send("ready", String::new(), String::new());
    }
}

/// Start following an executor with the Rust client, at `url` as
/// `buildWsUrl` made it (a URL the WebSocket constructor would refuse is
/// logged `executor-ws:construct-failed` and retried, as the original did).
/// The reconnect options are JS numbers as they are. The sink hears
/// `event` (the frame text), `state`, `ready` (first open), `log`, and
/// `stopped` at the end.
#[napi(catch_unwind)]
pub fn start_executor_ws(
    url: String,
    executor_id: String,
    reconnect_base_ms: f64,
    reconnect_max_ms: f64,
    has_logger: bool,
    #[napi(ts_arg_type = "(kind: string, a: string, b: string) => void")] sink: SinkFn,
) -> Operation {
    let stream = Stream {
        url,
        executor_id,
        reconnect_base_ms,
        reconnect_max_ms,
    };
    let sink = Arc::new(Sink::new(sink, has_logger));
    let stop = CancellationToken::new();
    let token = stop.clone();
    run_in_background(Arc::clone(&sink), async move {
        let log: Logger = sink.clone();
        executor_ws::run_stream(stream, Arc::new(ToJs(Arc::clone(&sink))), log, stop).await;
        sink.send("stopped", String::new(), String::new());
    });
    Operation::new(token)
}
