//! The executor event stream client: one WebSocket per executor, kept open
//! with capped-backoff reconnects until stopped. A frame that is not a JSON
//! object is logged and dropped (§9.7); tokens never reach a log line (§9.8).
//!
//! - [`reconnect`]: the one reconnect policy (attempts, delays, reset on
//!   open, bad-frame sorting, what is logged), pure.
//! - [`flow`]: the one bounded-queue policy between socket and consumer, pure.
//! - [`native`]: the tokio-tungstenite driver.
//! - [`injected`]: the core of the driver for a caller's `WebSocketImpl`,
//!   whose socket lives in JS (the node layer wraps it as a class).
//! - [`gate`]: the flow of a native stream whose consumer is in JS.

pub(crate) mod flow;
pub(crate) mod gate;
pub(crate) mod injected;
mod native;
pub(crate) mod reconnect;
mod url;

pub(crate) use native::run_stream;
pub(crate) use reconnect::{Line, DEFAULT_RECONNECT_BASE_MS, DEFAULT_RECONNECT_MAX_MS};
pub(crate) use url::build_ws_url;

use super::log::Logger;
use futures_util::future::BoxFuture;
use serde_json::Value;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Frames and messages larger than this end the connection (which is then re-opened).
pub(crate) const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// `startExecutorWS`'s options.
#[derive(Debug, Clone)]
pub(crate) struct WsOptions {
    pub aiwg_serve_url: String,
    pub executor_id: String,
    pub token: Option<String>,
    pub reconnect_base_ms: f64,
    pub reconnect_max_ms: f64,
}

/// A change of the connection, as `onState(state, meta)` reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WsState {
    Opened { url: String },
    Closed { code: u16 },
    Error,
}

/// Where a stream's events and state changes go.
pub(crate) trait WsHandler: Send + Sync {
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
    /// Log one of the stream's lines (`meta` is [`Line::meta`] after
    /// `executorId`). A handler that reports to JS overrides this to pass
    /// numbers JSON cannot carry (a NaN delay) as they are.
    fn log_line(&self, log: &Logger, line: &Line, meta: Value) {
        log.log(line.msg(), meta);
    }
}

/// Keep the stream of one executor open until `stop` is cancelled.
pub(crate) async fn run(
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
pub(crate) struct Stream {
    pub url: String,
    /// For log lines.
    pub executor_id: String,
    pub reconnect_base_ms: f64,
    pub reconnect_max_ms: f64,
}

/// The URL as the WHATWG `WebSocket` constructor takes it, or the reason it
/// throws: it must parse, `http(s)` becomes `ws(s)`, no other scheme and no
/// fragment. (The reasons name no part of the URL, so no token can leak.)
pub(crate) fn socket_url(url: &str) -> Result<String, String> {
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
