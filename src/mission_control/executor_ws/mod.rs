//! The executor event stream client: one WebSocket per executor, kept open
//! with capped-backoff reconnects until stopped. tokio-tungstenite over
//! rustls; frames are size-capped, and a frame that is not a JSON object is
//! logged and dropped (§9.7). Tokens never reach a log line (§9.8).

mod url;

pub use url::{build_ws_url, reconnect_delay, redact};

use super::dispatch::sleep_ms;
use super::log::{FloodGuard, Logger};
use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Frames and messages larger than this end the connection (which is then re-opened).
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// `startExecutorWS`'s options.
#[derive(Debug, Clone)]
pub struct WsOptions {
    pub aiwg_serve_url: String,
    pub executor_id: String,
    pub token: Option<String>,
    pub reconnect_base_ms: f64,
    pub reconnect_max_ms: f64,
}

/// A change of the connection, as `onState(state, meta)` reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum WsState {
    Opened { url: String },
    Closed { code: u16 },
    Error,
}

/// Where a stream's events and state changes go.
pub trait WsHandler: Send + Sync {
    fn on_event(&self, event: Value);
    fn on_state(&self, state: WsState);
    /// Called once, on the first open.
    fn on_ready(&self) {}
    /// Resolves when the handler can take another event. The stream waits
    /// here before reading the next frame, leaving a flood in the socket.
    fn room(&self) -> BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// Keep the stream of one executor open until `stop` is cancelled.
pub async fn run(
    opts: WsOptions,
    handler: Arc<dyn WsHandler>,
    log: Logger,
    stop: CancellationToken,
) {
    let url = build_ws_url(
        &opts.aiwg_serve_url,
        &opts.executor_id,
        opts.token.as_deref(),
    );
    let shown = redact(&url);
    let id = opts.executor_id.clone();
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let mut attempt: u32 = 0;
    let mut opened_once = false;
    let bad_messages = FloodGuard::default();
    while !stop.is_cancelled() {
        let connected = tokio::select! {
            c = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true) => c,
            () = stop.cancelled() => break,
        };
        let code = match connected {
            Err(e) => {
                handler.on_state(WsState::Error);
                log.log(
                    "executor-ws:error",
                    json!({"executorId": id, "error": redact(&e.to_string())}),
                );
                1006
            }
            Ok((mut socket, _)) => {
                attempt = 0;
                handler.on_state(WsState::Opened { url: shown.clone() });
                log.log(
                    "executor-ws:opened",
                    json!({"executorId": id, "url": shown}),
                );
                if !opened_once {
                    opened_once = true;
                    handler.on_ready();
                }
                let code = loop {
                    // On stop, the read below closes the socket.
                    tokio::select! {
                        () = handler.room() => {}
                        () = stop.cancelled() => {}
                    }
                    let next = tokio::select! {
                        next = socket.next() => next,
                        () = stop.cancelled() => {
                            let frame = CloseFrame { code: CloseCode::Normal, reason: "shutdown".into() };
                            let _ = socket.close(Some(frame)).await;
                            break 1000;
                        }
                    };
                    match next {
                        Some(Ok(Message::Text(text))) => {
                            match serde_json::from_str::<Value>(text.as_str()) {
                                Ok(event) if event.is_object() => handler.on_event(event),
                                Ok(_) => bad_messages.log(
                                    &log,
                                    "executor-ws:bad-message",
                                    json!({"executorId": id, "error": "not a JSON object"}),
                                ),
                                Err(e) => bad_messages.log(
                                    &log,
                                    "executor-ws:bad-message",
                                    json!({"executorId": id, "error": e.to_string()}),
                                ),
                            }
                        }
                        Some(Ok(Message::Binary(_))) => bad_messages.log(
                            &log,
                            "executor-ws:bad-message",
                            json!({"executorId": id, "error": "binary frame"}),
                        ),
                        Some(Ok(Message::Close(frame))) => {
                            break frame.map_or(1005, |f| u16::from(f.code))
                        }
                        Some(Ok(_)) => {} // ping, pong: tungstenite answers pings itself
                        Some(Err(e)) => {
                            handler.on_state(WsState::Error);
                            log.log(
                                "executor-ws:error",
                                json!({"executorId": id, "error": e.to_string()}),
                            );
                            break 1006;
                        }
                        None => break 1006,
                    }
                };
                let _ = socket.flush().await;
                code
            }
        };
        handler.on_state(WsState::Closed { code });
        log.log(
            "executor-ws:closed",
            json!({"executorId": id, "code": code}),
        );
        if stop.is_cancelled() {
            break;
        }
        attempt += 1;
        let delay = reconnect_delay(
            f64::from(attempt),
            opts.reconnect_base_ms,
            opts.reconnect_max_ms,
        );
        log.log(
            "executor-ws:reconnect",
            json!({"executorId": id, "attempt": attempt, "delay": delay}),
        );
        sleep_ms(delay, &stop).await;
    }
    log.log("executor-ws:stopped", json!({"executorId": id}));
}
