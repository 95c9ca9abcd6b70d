//! The native driver: tokio-tungstenite over rustls, following the
//! [`Reconnect`] machine. Frames are size-capped, and the loop waits for
//! [`WsHandler::room`] before it reads the next frame, so a flood stays in
//! the socket (TCP backpressure) rather than in memory.

use super::reconnect::{Frame, Line, Notice, Reconnect, Step, SHUTDOWN_REASON};
use super::{socket_url, Stream, WsHandler, WsState, MAX_FRAME_BYTES};
use crate::backoff::sleep_ms;
use crate::mission_control::log::{FloodGuard, Logger};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Carries out the machine's steps: states to the handler, lines to the log.
struct Out<'a> {
    handler: &'a dyn WsHandler,
    log: &'a Logger,
    executor_id: &'a str,
    bad_messages: FloodGuard,
}

impl Out<'_> {
    /// Take `steps` in order; the reconnect delay, if they hold one.
    fn take(&self, steps: Vec<Step>) -> Option<f64> {
        let mut delay = None;
        for step in steps {
            match step {
                Step::State(notice) => self.handler.on_state(match notice {
                    Notice::Opened { url } => WsState::Opened { url },
                    // The code came from a u16 (see `closed` below).
                    Notice::Closed { code } => WsState::Closed {
                        code: code.map_or(1005, |c| c as u16),
                    },
                    Notice::Error => WsState::Error,
                }),
                Step::Log(line) => self.line(&line),
                Step::Ready => self.handler.on_ready(),
                Step::Reconnect { delay: d } => delay = Some(d),
                Step::Close => {} // the read loop closes the socket when it sees the stop
            }
        }
        delay
    }

    fn line(&self, line: &Line) {
        let mut meta = serde_json::Map::new();
        meta.insert("executorId".into(), self.executor_id.into());
        meta.extend(line.meta());
        if let Line::BadMessage { .. } = line {
            self.bad_messages
                .log(self.log, line.msg(), Value::Object(meta));
        } else {
            self.handler.log_line(self.log, line, Value::Object(meta));
        }
    }
}

#[allow(clippy::unnecessary_wraps)] // the shape every close code takes
fn closed(code: u16) -> Option<f64> {
    Some(f64::from(code))
}

/// Keep `stream` open until `stop` is cancelled.
pub(crate) async fn run_stream(
    stream: Stream,
    handler: Arc<dyn WsHandler>,
    log: Logger,
    stop: CancellationToken,
) {
    let Stream {
        url,
        executor_id,
        reconnect_base_ms,
        reconnect_max_ms,
    } = stream;
    let mut machine = Reconnect::new(&url, reconnect_base_ms, reconnect_max_ms);
    let out = Out {
        handler: handler.as_ref(),
        log: &log,
        executor_id: &executor_id,
        bad_messages: FloodGuard::default(),
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let target = socket_url(&url);
    while machine.may_connect() && !stop.is_cancelled() {
        let target = match &target {
            Ok(target) => target.as_str(),
            Err(error) => {
                // As `new WebSocket(url)` throwing: no socket, no state change, a retry.
                if let Some(delay) = out.take(machine.construct_failed(error)) {
                    sleep_ms(delay, &stop).await;
                }
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
                out.take(machine.error(Some(e.to_string())));
                1006
            }
            Ok((mut socket, _)) => {
                out.take(machine.opened());
                let code = loop {
                    // On stop, the read below closes the socket.
                    tokio::select! {
                        () = handler.room() => {}
                        () = stop.cancelled() => {}
                    }
                    let next = tokio::select! {
                        next = socket.next() => next,
                        () = stop.cancelled() => {
                            machine.stop();
                            let frame = CloseFrame { code: CloseCode::Normal, reason: SHUTDOWN_REASON.into() };
                            let _ = socket.close(Some(frame)).await;
                            break super::reconnect::SHUTDOWN_CODE;
                        }
                    };
                    let frame = match next {
                        Some(Ok(Message::Text(text))) => {
                            match crate::js_json::parse(text.as_bytes()) {
                                Ok(event) if event.is_object() => {
                                    handler.on_frame(text.as_str(), event);
                                    continue;
                                }
                                Ok(_) => Frame::NotObject,
                                Err(e) => Frame::Invalid(e.to_string()),
                            }
                        }
                        Some(Ok(Message::Binary(_))) => Frame::Binary,
                        Some(Ok(Message::Close(frame))) => {
                            break frame.map_or(1005, |f| u16::from(f.code))
                        }
                        Some(Ok(_)) => continue, // ping, pong: tungstenite answers pings itself
                        Some(Err(e)) => {
                            out.take(machine.error(Some(e.to_string())));
                            break 1006;
                        }
                        None => break 1006,
                    };
                    if let Err(error) = frame.sort() {
                        out.line(&Line::BadMessage {
                            error,
                            suppressed: 0,
                        });
                    }
                };
                let _ = socket.flush().await;
                code
            }
        };
        if stop.is_cancelled() {
            machine.stop();
        }
        if let Some(delay) = out.take(machine.closed(closed(code))) {
            sleep_ms(delay, &stop).await;
        }
    }
    out.take(vec![machine.finished()]);
}
