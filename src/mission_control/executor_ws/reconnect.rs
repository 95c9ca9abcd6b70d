//! The one reconnect policy both stream drivers follow, sans-IO: the
//! driver tells [`Reconnect`] what its socket did (opened, closed, failed
//! to construct, sent a frame, was asked to stop) and gets back the
//! [`Step`]s to take, in order: state changes for `onState`, log lines,
//! `ready`, the delay before the next socket. Nothing here touches a
//! socket, a clock or a logger, so every rule is a `cargo test` away:
//!
//! - attempts count failed connections; an open resets them;
//! - the delay before attempt `n` is `min(max, base * 2^max(0, n-1))`;
//! - `ready` happens on the first open only;
//! - after `stop` no new socket is ever made;
//! - a frame is an event only if it is text holding a JSON object.
//!
//! The tokio-tungstenite loop ([`super::native`]) and the injected
//! `WebSocketImpl`'s JS glue (through [`super::injected`]) are its two drivers.

use super::url::reconnect_delay;
use crate::js_json::number_value;
use crate::redact::redact;
use serde_json::{Map, Value};

/// `reconnectBaseMs` when the caller gives none.
pub(crate) const DEFAULT_RECONNECT_BASE_MS: f64 = 1000.0;
/// `reconnectMaxMs` when the caller gives none.
pub(crate) const DEFAULT_RECONNECT_MAX_MS: f64 = 30_000.0;
/// How `stop()` closes the socket (1000, `'shutdown'`).
pub(crate) const SHUTDOWN_CODE: u16 = 1000;
pub(crate) const SHUTDOWN_REASON: &str = "shutdown";

/// A change of the connection as `onState(state, meta)` reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Notice {
    /// `('opened', {url})`, the URL with its token hidden.
    Opened { url: String },
    /// `('closed', {code})`: the socket's close code as it gave it.
    Closed { code: Option<f64> },
    /// `('error')`: a close follows.
    Error,
}

/// A log line. Its meta never names the executor: each driver adds
/// `executorId` as its caller gave it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Line {
    ConstructFailed {
        error: String,
    },
    Opened {
        url: String,
    },
    /// A frame that is not an event; `suppressed` counts the lines a flood
    /// guard left out since the last one (see [`crate::mission_control::log::FloodGuard`]).
    BadMessage {
        error: String,
        suppressed: u64,
    },
    Closed {
        code: Option<f64>,
    },
    /// The native client knows why; a browser-style `error` event does not say.
    Error {
        error: Option<String>,
    },
    Reconnect {
        attempt: u32,
        delay: f64,
    },
    /// The consumer is full but the injected socket has no `pause()`:
    /// events keep coming (queued, never dropped). Once per stream.
    BackpressureUnavailable,
    Stopped,
}

impl Line {
    /// The message, `executor-ws:…`.
    pub(crate) fn msg(&self) -> &'static str {
        match self {
            Line::ConstructFailed { .. } => "executor-ws:construct-failed",
            Line::Opened { .. } => "executor-ws:opened",
            Line::BadMessage { .. } => "executor-ws:bad-message",
            Line::Closed { .. } => "executor-ws:closed",
            Line::Error { .. } => "executor-ws:error",
            Line::Reconnect { .. } => "executor-ws:reconnect",
            Line::BackpressureUnavailable => "executor-ws:backpressure-unavailable",
            Line::Stopped => "executor-ws:stopped",
        }
    }

    /// The meta after `executorId`, in the original's key order. A NaN
    /// delay cannot be JSON: it shows as `null` here, and [`Line::delay`]
    /// carries the number itself.
    pub(crate) fn meta(&self) -> Map<String, Value> {
        let mut meta = Map::new();
        let mut put = |key: &str, value: Value| {
            meta.insert(key.to_owned(), value);
        };
        match self {
            Line::ConstructFailed { error } => put("error", error.as_str().into()),
            Line::Opened { url } => put("url", url.as_str().into()),
            Line::BadMessage { error, suppressed } => {
                put("error", error.as_str().into());
                if *suppressed > 0 {
                    put("suppressed", (*suppressed).into());
                }
            }
            Line::Closed { code } => put("code", code.map_or(Value::Null, number_value)),
            Line::Error { error } => {
                if let Some(error) = error {
                    put("error", error.as_str().into());
                }
            }
            Line::Reconnect { attempt, delay } => {
                put("attempt", (*attempt).into());
                put("delay", number_value(*delay));
            }
            Line::BackpressureUnavailable | Line::Stopped => {}
        }
        meta
    }

    /// The reconnect delay as a number (NaN included), for drivers whose
    /// log meta is a JS object.
    pub(crate) fn delay(&self) -> Option<f64> {
        match self {
            Line::Reconnect { delay, .. } => Some(*delay),
            _ => None,
        }
    }
}

/// One thing a driver does, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    State(Notice),
    Log(Line),
    /// Resolve `ready` (the first open).
    Ready,
    /// Make the next socket after `delay` ms (a stop in between cancels it).
    Reconnect {
        delay: f64,
    },
    /// Close the current socket with `SHUTDOWN_CODE`, `SHUTDOWN_REASON`.
    Close,
}

/// What a frame turned out to be, as far as the driver can tell. The JS
/// driver learns it with `JSON.parse` (whose error text comes from V8),
/// the native one with [`crate::js_json::parse`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    Binary,
    /// Text that parsed to a JSON object.
    Object,
    /// Text that parsed to something else (an array, a number, `null`…).
    NotObject,
    /// Text that did not parse: the parser's message.
    Invalid(String),
}

impl Frame {
    /// `Ok` for an event, else why it is dropped (the `bad-message` error text).
    pub(crate) fn sort(self) -> Result<(), String> {
        match self {
            Frame::Object => Ok(()),
            Frame::Binary => Err("binary frame".into()),
            Frame::NotObject => Err("not a JSON object".into()),
            Frame::Invalid(message) => Err(message),
        }
    }
}

/// One stream's reconnect state.
#[derive(Debug, Clone)]
pub(crate) struct Reconnect {
    shown: String,
    base_ms: f64,
    max_ms: f64,
    attempt: u32,
    opened_once: bool,
    stopped: bool,
}

impl Reconnect {
    /// A stream to `url` (which may hold a token: only its redacted form is
    /// ever reported) with the caller's reconnect options as JS numbers.
    pub(crate) fn new(url: &str, base_ms: f64, max_ms: f64) -> Self {
        Reconnect {
            shown: redact(url),
            base_ms,
            max_ms,
            attempt: 0,
            opened_once: false,
            stopped: false,
        }
    }

    /// False once stopped: no socket may be made any more.
    pub(crate) fn may_connect(&self) -> bool {
        !self.stopped
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Making the socket failed (the constructor threw, or the URL is one
    /// it would refuse): no socket, no state change, a retry.
    pub(crate) fn construct_failed(&mut self, error: &str) -> Vec<Step> {
        let mut steps = vec![Step::Log(Line::ConstructFailed {
            error: redact(error),
        })];
        self.retry(&mut steps);
        steps
    }

    /// The socket opened: the attempts start over.
    pub(crate) fn opened(&mut self) -> Vec<Step> {
        self.attempt = 0;
        let url = self.shown.clone();
        let mut steps = vec![
            Step::State(Notice::Opened { url: url.clone() }),
            Step::Log(Line::Opened { url }),
        ];
        if !self.opened_once {
            self.opened_once = true;
            steps.push(Step::Ready);
        }
        steps
    }

    /// The socket failed (a close follows).
    #[allow(clippy::unused_self)] // a transition like the others, whatever it reads today
    pub(crate) fn error(&mut self, error: Option<String>) -> Vec<Step> {
        vec![
            Step::State(Notice::Error),
            Step::Log(Line::Error {
                error: error.map(|e| redact(&e)),
            }),
        ]
    }

    /// The socket closed; unless stopped, the next one follows after a delay.
    pub(crate) fn closed(&mut self, code: Option<f64>) -> Vec<Step> {
        let mut steps = vec![
            Step::State(Notice::Closed { code }),
            Step::Log(Line::Closed { code }),
        ];
        if !self.stopped {
            self.retry(&mut steps);
        }
        steps
    }

    /// Stop: the socket is closed (first call only); no socket follows.
    pub(crate) fn stop(&mut self) -> Vec<Step> {
        if std::mem::replace(&mut self.stopped, true) {
            Vec::new()
        } else {
            vec![Step::Close]
        }
    }

    /// The stream is over (after [`Reconnect::stop`]): its last line.
    #[allow(clippy::unused_self)] // a transition like the others, whatever it reads today
    pub(crate) fn finished(&self) -> Step {
        Step::Log(Line::Stopped)
    }

    fn retry(&mut self, steps: &mut Vec<Step>) {
        self.attempt = self.attempt.saturating_add(1);
        let delay = reconnect_delay(f64::from(self.attempt), self.base_ms, self.max_ms);
        steps.push(Step::Log(Line::Reconnect {
            attempt: self.attempt,
            delay,
        }));
        steps.push(Step::Reconnect { delay });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(steps: &[Step]) -> Vec<f64> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Reconnect { delay } => Some(*delay),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn failures_back_off_and_an_open_starts_over() {
        let mut r = Reconnect::new("ws://h/ws/executors/e?token=s3cr3t", 30.0, 100.0);
        assert_eq!(delays(&r.closed(Some(1006.0))), [30.0]);
        assert_eq!(delays(&r.construct_failed("boom")), [60.0]);
        assert_eq!(delays(&r.closed(Some(1006.0))), [100.0]);
        let open = r.opened();
        assert_eq!(
            open,
            [
                Step::State(Notice::Opened {
                    url: "ws://h/ws/executors/e?token=***".into()
                }),
                Step::Log(Line::Opened {
                    url: "ws://h/ws/executors/e?token=***".into()
                }),
                Step::Ready,
            ]
        );
        assert_eq!(
            r.closed(Some(4001.0)),
            [
                Step::State(Notice::Closed { code: Some(4001.0) }),
                Step::Log(Line::Closed { code: Some(4001.0) }),
                Step::Log(Line::Reconnect {
                    attempt: 1,
                    delay: 30.0
                }),
                Step::Reconnect { delay: 30.0 },
            ]
        );
        // Ready is for the first open only.
        assert!(!r.opened().contains(&Step::Ready));
    }

    #[test]
    fn after_stop_nothing_reconnects() {
        let mut r = Reconnect::new("ws://h/x", 10.0, 20.0);
        assert!(r.may_connect());
        assert_eq!(r.stop(), [Step::Close]);
        assert_eq!(r.stop(), []);
        assert!(!r.may_connect());
        assert_eq!(delays(&r.closed(Some(1000.0))), Vec::<f64>::new());
        assert_eq!(r.finished(), Step::Log(Line::Stopped));
    }

    #[test]
    fn construct_failures_hide_tokens_and_log_before_the_retry() {
        let mut r = Reconnect::new("x", 5.0, 10.0);
        let steps = r.construct_failed("cannot open ws://h/e?token=a%2Bb more&c=d");
        assert_eq!(
            steps[0],
            Step::Log(Line::ConstructFailed {
                error: "cannot open ws://h/e?token=*** more&c=d".into()
            })
        );
        assert_eq!(
            steps[1],
            Step::Log(Line::Reconnect {
                attempt: 1,
                delay: 5.0
            })
        );
    }

    #[test]
    fn nan_delays_stay_numbers_and_metas_keep_their_order() {
        let mut r = Reconnect::new("x", f64::NAN, 10.0);
        let steps = r.closed(None);
        let Step::Log(line) = &steps[2] else {
            panic!("{steps:?}")
        };
        assert!(line.delay().is_some_and(f64::is_nan));
        assert_eq!(
            Value::Object(line.meta()).to_string(),
            r#"{"attempt":1,"delay":null}"#
        );
        assert_eq!(
            Value::Object(
                Line::BadMessage {
                    error: "e".into(),
                    suppressed: 3
                }
                .meta()
            )
            .to_string(),
            r#"{"error":"e","suppressed":3}"#
        );
        assert_eq!(
            Value::Object(Line::Error { error: None }.meta()).to_string(),
            "{}"
        );
    }

    #[test]
    fn frames_are_sorted_with_the_original_texts() {
        assert_eq!(Frame::Object.sort(), Ok(()));
        assert_eq!(Frame::Binary.sort(), Err("binary frame".into()));
        assert_eq!(Frame::NotObject.sort(), Err("not a JSON object".into()));
        assert_eq!(
            Frame::Invalid("Unexpected token".into()).sort(),
            Err("Unexpected token".into())
        );
    }
}
