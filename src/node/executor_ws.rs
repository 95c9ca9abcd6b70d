//! `@aiwg/mc-native/executor-ws-client` as JS sees it (see
//! js/executor-ws-client.js, which builds the URL, keeps the injected
//! `WebSocketImpl`'s event listeners and the queued events, and has the
//! pure helpers in plain JS).
//!
//! Both drivers speak [`ExecutorWsEvent`]: the native one through its
//! sink, the injected one as the return values of
//! [`ExecutorWsInjected`]'s methods, so one JS function carries out both.

use super::cancel::Operation;
use super::run_in_background;
use super::sink::{Sink, SinkEvent, SinkFn};
use crate::mission_control::executor_ws::flow::{Route, QUEUE_CAPACITY};
use crate::mission_control::executor_ws::gate::Gate;
use crate::mission_control::executor_ws::injected::{Injected, Output};
use crate::mission_control::executor_ws::reconnect::{
    Frame, Notice, Step, SHUTDOWN_CODE, SHUTDOWN_REASON,
};
use crate::mission_control::executor_ws::{
    self, Line, Stream, WsHandler, WsState, DEFAULT_RECONNECT_BASE_MS, DEFAULT_RECONNECT_MAX_MS,
};
use crate::mission_control::log::Logger;
use futures_util::future::BoxFuture;
use napi_derive::napi;
use serde_json::Value;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// `onState`'s state names.
#[napi(string_enum = "lowercase")]
pub enum ExecutorWsState {
    Opened,
    Closed,
    Error,
}

/// What a stream tells JS, in order.
#[napi(discriminant = "kind")]
pub enum ExecutorWsEvent {
    /// A text frame holding a JSON object (native driver): JS `JSON.parse`s it.
    Event {
        text: String,
    },
    /// `onState(name, {url} | {code} | undefined)`.
    State {
        name: ExecutorWsState,
        url: Option<String>,
        code: Option<f64>,
    },
    /// The first open: `ready` resolves.
    Ready,
    /// A log line; `meta` is JSON text, `delay` the reconnect delay as a
    /// number (JSON has no NaN).
    Log {
        msg: String,
        meta: String,
        delay: Option<f64>,
    },
    /// The native stream is over.
    Stopped,
    /// The native stream's Rust side failed.
    Error {
        message: String,
    },
    /// Injected: make the next socket after `delay` ms.
    Reconnect {
        delay: f64,
    },
    /// Injected: `socket.close(code, reason)`.
    Close {
        code: u32,
        reason: String,
    },
    /// Hand the event (the one just sorted, or the head of the queue) to `onEvent`.
    Deliver,
    /// Put the event just sorted at the back of the queue.
    Queue,
    /// Injected: `socket.pause()` / `socket.resume()`.
    Pause,
    Resume,
}

impl SinkEvent for ExecutorWsEvent {
    fn log(msg: &str, meta: String) -> Self {
        ExecutorWsEvent::Log {
            msg: msg.to_owned(),
            meta,
            delay: None,
        }
    }

    fn internal_error(message: String) -> Self {
        ExecutorWsEvent::Error { message }
    }
}

fn log_event(line: &Line, meta: &serde_json::Map<String, Value>) -> ExecutorWsEvent {
    ExecutorWsEvent::Log {
        msg: line.msg().to_owned(),
        meta: crate::js_json::to_compact_string(&Value::Object(meta.clone())),
        delay: line.delay(),
    }
}

fn step_event(step: Step) -> ExecutorWsEvent {
    match step {
        Step::State(Notice::Opened { url }) => ExecutorWsEvent::State {
            name: ExecutorWsState::Opened,
            url: Some(url),
            code: None,
        },
        Step::State(Notice::Closed { code }) => ExecutorWsEvent::State {
            name: ExecutorWsState::Closed,
            url: None,
            code,
        },
        Step::State(Notice::Error) => ExecutorWsEvent::State {
            name: ExecutorWsState::Error,
            url: None,
            code: None,
        },
        Step::Log(line) => log_event(&line, &line.meta()),
        Step::Ready => ExecutorWsEvent::Ready,
        Step::Reconnect { delay } => ExecutorWsEvent::Reconnect { delay },
        Step::Close => ExecutorWsEvent::Close {
            code: u32::from(SHUTDOWN_CODE),
            reason: SHUTDOWN_REASON.to_owned(),
        },
    }
}

fn events(outputs: Vec<Output>) -> Vec<ExecutorWsEvent> {
    outputs
        .into_iter()
        .map(|output| match output {
            Output::Step(step) => step_event(step),
            Output::Deliver => ExecutorWsEvent::Deliver,
            Output::Queue => ExecutorWsEvent::Queue,
            Output::Pause => ExecutorWsEvent::Pause,
            Output::Resume => ExecutorWsEvent::Resume,
        })
        .collect()
}

/// The defaults and limits JS must not repeat.
#[napi(object)]
pub struct ExecutorWsDefaults {
    pub reconnect_base_ms: f64,
    pub reconnect_max_ms: f64,
    /// The bounded queue between socket and `onEvent`, for both drivers.
    pub queue_capacity: u32,
}

/// `reconnectBaseMs` and `reconnectMaxMs` when the caller gives none.
#[napi]
pub fn executor_ws_defaults() -> ExecutorWsDefaults {
    ExecutorWsDefaults {
        reconnect_base_ms: DEFAULT_RECONNECT_BASE_MS,
        reconnect_max_ms: DEFAULT_RECONNECT_MAX_MS,
        queue_capacity: u32::try_from(QUEUE_CAPACITY).unwrap_or(u32::MAX),
    }
}

/// What a frame of an injected socket is, as the JS glue found it
/// (`typeof data`, then `JSON.parse`, then "is it a non-array object").
#[napi(string_enum = "lowercase")]
pub enum FrameKind {
    Binary,
    Object,
    NotObject,
    Invalid,
}

/// The decisions of one injected stream (see `executor_ws/injected.rs`).
/// Every method is synchronous and returns what to do, in order.
#[napi]
pub struct ExecutorWsInjected(Injected);

#[napi]
impl ExecutorWsInjected {
    /// `url` as buildWsUrl made it (with the real token); the reconnect
    /// options as JS numbers.
    #[napi(constructor)]
    pub fn new(url: String, reconnect_base_ms: f64, reconnect_max_ms: f64) -> Self {
        ExecutorWsInjected(Injected::new(&url, reconnect_base_ms, reconnect_max_ms))
    }

    /// Whether a socket may be constructed now (false once stopped).
    #[napi(getter)]
    pub fn may_connect(&self) -> bool {
        self.0.may_connect()
    }

    #[napi]
    pub fn construct_failed(&mut self, error: String) -> Vec<ExecutorWsEvent> {
        events(self.0.construct_failed(&error))
    }

    #[napi]
    pub fn opened(&mut self, can_pause: bool) -> Vec<ExecutorWsEvent> {
        events(self.0.opened(can_pause))
    }

    #[napi]
    pub fn error(&mut self) -> Vec<ExecutorWsEvent> {
        events(self.0.error())
    }

    #[napi]
    pub fn closed(&mut self, code: Option<f64>) -> Vec<ExecutorWsEvent> {
        events(self.0.closed(code))
    }

    /// A message; `error` is JSON.parse's message for `invalid`.
    #[napi]
    pub fn frame(&mut self, kind: FrameKind, error: Option<String>) -> Vec<ExecutorWsEvent> {
        let frame = match kind {
            FrameKind::Binary => Frame::Binary,
            FrameKind::Object => Frame::Object,
            FrameKind::NotObject => Frame::NotObject,
            FrameKind::Invalid => Frame::Invalid(error.unwrap_or_default()),
        };
        events(self.0.frame(frame))
    }

    #[napi]
    pub fn full(&mut self) {
        self.0.full();
    }

    #[napi]
    pub fn room(&mut self) {
        self.0.room();
    }

    /// `null` to stop draining the queue; else deliver its head (and maybe resume).
    #[napi]
    pub fn take(&mut self) -> Option<Vec<ExecutorWsEvent>> {
        self.0.take().map(events)
    }

    #[napi]
    pub fn stop(&mut self) -> Vec<ExecutorWsEvent> {
        events(self.0.stop())
    }
}

/// Sends a native stream's frames, states and lines to JS.
struct ToJs {
    sink: Arc<Sink<ExecutorWsEvent>>,
    gate: Arc<Gate>,
}

impl WsHandler for ToJs {
    fn on_event(&self, event: Value) {
        self.gate.sent();
        self.sink.emit(ExecutorWsEvent::Event {
            text: crate::js_json::to_compact_string(&event),
        });
    }

    /// The frame's own text: JS parses it with `JSON.parse`, as the original did.
    fn on_frame(&self, text: &str, _event: Value) {
        self.gate.sent();
        self.sink.emit(ExecutorWsEvent::Event {
            text: text.to_owned(),
        });
    }

    fn on_state(&self, state: WsState) {
        self.sink.emit(match state {
            WsState::Opened { url } => step_event(Step::State(Notice::Opened { url })),
            WsState::Closed { code } => step_event(Step::State(Notice::Closed {
                code: Some(f64::from(code)),
            })),
            WsState::Error => step_event(Step::State(Notice::Error)),
        });
    }

    fn on_ready(&self) {
        self.sink.emit(ExecutorWsEvent::Ready);
    }

    fn room(&self) -> BoxFuture<'static, ()> {
        let gate = Arc::clone(&self.gate);
        Box::pin(async move { gate.room().await })
    }

    fn log_line(&self, _log: &Logger, line: &Line, meta: Value) {
        if self.sink.logs {
            if let Value::Object(meta) = meta {
                self.sink.emit(log_event(line, &meta));
            }
        }
    }
}

/// A native stream as JS holds it: stop it, and its side of the bounded queue.
#[napi]
pub struct ExecutorWsNative {
    operation: Operation,
    gate: Arc<Gate>,
}

#[napi]
impl ExecutorWsNative {
    /// Stop (idempotent); the sink hears `Stopped` last.
    #[napi]
    pub fn cancel(&self) {
        self.gate.clear();
        self.operation.cancel();
    }

    /// An `Event` arrived: `Deliver` it now, or `Queue` it.
    #[napi]
    pub fn arrived(&self) -> ExecutorWsEvent {
        match self.gate.arrived() {
            Route::Deliver => ExecutorWsEvent::Deliver,
            Route::Queue => ExecutorWsEvent::Queue,
        }
    }

    #[napi]
    pub fn full(&self) {
        self.gate.full();
    }

    #[napi]
    pub fn room(&self) {
        self.gate.room_again();
    }

    /// Whether the head of the queue goes to `onEvent` now.
    #[napi]
    pub fn take(&self) -> bool {
        self.gate.take()
    }
}

/// Start following an executor with the Rust client, at `url` as
/// `buildWsUrl` made it (a URL the WebSocket constructor would refuse is
/// logged `executor-ws:construct-failed` and retried, as the original did).
/// The reconnect options are JS numbers as they are. The sink hears the
/// stream's [`ExecutorWsEvent`]s, `Stopped` last.
#[napi(catch_unwind)]
pub fn start_executor_ws(
    url: String,
    executor_id: String,
    reconnect_base_ms: f64,
    reconnect_max_ms: f64,
    has_logger: bool,
    #[napi(ts_arg_type = "(event: ExecutorWsEvent) => void")] sink: SinkFn<ExecutorWsEvent>,
) -> ExecutorWsNative {
    let stream = Stream {
        url,
        executor_id,
        reconnect_base_ms,
        reconnect_max_ms,
    };
    let sink = Arc::new(Sink::new(sink, has_logger));
    let gate = Arc::new(Gate::default());
    let stop = CancellationToken::new();
    let token = stop.clone();
    let handler = Arc::new(ToJs {
        sink: Arc::clone(&sink),
        gate: Arc::clone(&gate),
    });
    run_in_background(Arc::clone(&sink), async move {
        let log: Logger = sink.clone();
        executor_ws::run_stream(stream, handler, log, stop).await;
        sink.emit(ExecutorWsEvent::Stopped);
    });
    ExecutorWsNative {
        operation: Operation::new(token),
        gate,
    }
}
