//! The executor event stream client: one WebSocket per executor, kept open
//! with capped-backoff reconnects until stopped. tokio-tungstenite over
//! rustls; frames are size-capped, and a frame that is not a JSON object is
//! logged and dropped (§9.7). Tokens never reach a log line (§9.8).

mod url;

pub use url::{build_ws_url, reconnect_delay, redact};

use super::log::{FloodGuard, Logger};
use crate::backoff::sleep_ms;
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
    /// A text frame that holds a JSON object: its text and the object as
    /// [`crate::js_json::parse`] reads it. By default the object goes to
    /// [`WsHandler::on_event`]; JS callers take the text and `JSON.parse` it.
    fn on_frame(&self, _text: &str, event: Value) {
        self.on_event(event);
    }
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
    let stream = Stream {
        url,
        executor_id: opts.executor_id,
        reconnect_base_ms: opts.reconnect_base_ms,
        reconnect_max_ms: opts.reconnect_max_ms,
    };
    run_stream(stream, handler, log, stop).await;
}

/// One stream as [`run_stream`] follows it: the URL is used as given.
#[derive(Debug, Clone)]
pub struct Stream {
    pub url: String,
    /// For log lines.
    pub executor_id: String,
    pub reconnect_base_ms: f64,
    pub reconnect_max_ms: f64,
}

/// The URL as the WHATWG `WebSocket` constructor takes it, or the reason it
/// throws: it must parse, `http(s)` becomes `ws(s)`, no other scheme and no
/// fragment. (The reasons name no part of the URL, so no token can leak.)
pub fn socket_url(url: &str) -> Result<String, String> {
    let mut parsed = reqwest::Url::parse(url).map_err(|_| "Invalid URL".to_owned())?;
    let scheme = match parsed.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => return Err(format!("Expected a ws: or wss: protocol, got {other}:")),
    };
    if parsed.fragment().is_some() {
        return Err("Got fragment".into());
    }
    if parsed.scheme() != scheme && parsed.set_scheme(scheme).is_err() {
        return Err("Invalid URL".into());
    }
    Ok(parsed.into())
}

/// Keep `stream` open until `stop` is cancelled.
pub async fn run_stream(
    stream: Stream,
    handler: Arc<dyn WsHandler>,
    log: Logger,
    stop: CancellationToken,
) {
    let Stream {
        url,
        executor_id: id,
        reconnect_base_ms,
        reconnect_max_ms,
    } = stream;
    let shown = redact(&url);
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let mut attempt: u32 = 0;
    let mut opened_once = false;
    let bad_messages = FloodGuard::default();
    let target = socket_url(&url);
    while !stop.is_cancelled() {
        let target = match &target {
            Ok(target) => target.as_str(),
            Err(error) => {
                // As `new WebSocket(url)` throwing: no socket, no state change, a retry.
                log.log(
                    "executor-ws:construct-failed",
                    json!({"executorId": id, "error": error}),
                );
                attempt = attempt.saturating_add(1);
                let delay =
                    reconnect_delay(f64::from(attempt), reconnect_base_ms, reconnect_max_ms);
                log.log(
                    "executor-ws:reconnect",
                    json!({"executorId": id, "attempt": attempt, "delay": delay}),
                );
                sleep_ms(delay, &stop).await;
                continue;
            }
        };
        let connected = tokio::select! {
            c = tokio_tungstenite::connect_async_tls_with_config(
                target,
                Some(config),
                true,
                Some(tokio_tungstenite::Connector::Rustls(crate::tls::client_config())),
            ) => c,
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
                            match crate::js_json::parse(text.as_bytes()) {
                                Ok(event) if event.is_object() => {
                                    handler.on_frame(text.as_str(), event)
                                }
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
        attempt = attempt.saturating_add(1);
        let delay = reconnect_delay(f64::from(attempt), reconnect_base_ms, reconnect_max_ms);
        log.log(
            "executor-ws:reconnect",
            json!({"executorId": id, "attempt": attempt, "delay": delay}),
        );
        sleep_ms(delay, &stop).await;
    }
    log.log("executor-ws:stopped", json!({"executorId": id}));
}

#[cfg(test)]
mod tests {
    use super::socket_url;

    #[test]
    fn socket_urls_are_what_the_websocket_constructor_takes() {
        assert_eq!(
            socket_url("ws://h:1/ws/executors/e?token=a%2Bb").as_deref(),
            Ok("ws://h:1/ws/executors/e?token=a%2Bb")
        );
        assert_eq!(
            socket_url("HTTP://h/ws/executors/e").as_deref(),
            Ok("ws://h/ws/executors/e")
        );
        assert_eq!(socket_url("https://h/x").as_deref(), Ok("wss://h/x"));
        assert_eq!(
            socket_url("nope/ws/executors/e?token=secret"),
            Err("Invalid URL".to_owned())
        );
        assert_eq!(
            socket_url("ftp://h/x"),
            Err("Expected a ws: or wss: protocol, got ftp:".to_owned())
        );
        assert_eq!(socket_url("ws://h/x#f"), Err("Got fragment".to_owned()));
        assert_eq!(socket_url("ws://"), Err("Invalid URL".to_owned()));
    }
}
