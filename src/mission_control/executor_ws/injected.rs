//! The core of the driver for a caller's browser-style `WebSocketImpl`.
//!
//! The socket is JS's, and the original's timings must hold (the first
//! socket made before `startExecutorWS` returns, a message handed to
//! `onEvent` before the socket's dispatch returns, no socket after stop),
//! so the JS glue keeps the event listeners and calls these methods
//! synchronously from them. Every decision is made here, from the same
//! [`Reconnect`] machine and [`Flow`] policy the native driver uses; the
//! glue carries out the [`Output`]s in order.

use super::flow::{Flow, Route, Signal};
use super::reconnect::{Frame, Line, Reconnect, Step};
use crate::mission_control::log::{FloodGuard, Log, Logger};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

/// One thing the JS glue does, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Output {
    Step(Step),
    /// Hand the event just sorted (or, from [`Injected::take`], the head of
    /// the queue) to the consumer.
    Deliver,
    /// Put the event just sorted at the back of the queue.
    Queue,
    /// `socket.pause()` / `socket.resume()`.
    Pause,
    Resume,
}

/// One injected stream's state.
pub(crate) struct Injected {
    machine: Reconnect,
    flow: Flow,
    bad_messages: FloodGuard,
    /// Whether the current socket has `pause()` and `resume()`.
    can_pause: bool,
}

impl Injected {
    pub(crate) fn new(url: &str, base_ms: f64, max_ms: f64) -> Self {
        Injected {
            machine: Reconnect::new(url, base_ms, max_ms),
            flow: Flow::default(),
            bad_messages: FloodGuard::default(),
            can_pause: false,
        }
    }

    /// Whether a socket may be made now (false once stopped).
    pub(crate) fn may_connect(&self) -> bool {
        self.machine.may_connect()
    }

    /// The constructor threw `error` (its message).
    pub(crate) fn construct_failed(&mut self, error: &str) -> Vec<Output> {
        steps(self.machine.construct_failed(error))
    }

    /// The socket's `open`; `can_pause` says whether it has `pause()`/`resume()`.
    pub(crate) fn opened(&mut self, can_pause: bool) -> Vec<Output> {
        self.can_pause = can_pause;
        let mut out = steps(self.machine.opened());
        if let Some(Signal::Pause) = self.flow.reopened(can_pause) {
            out.push(Output::Pause);
        }
        out
    }

    /// The socket's `error` (browser-style: no reason given).
    pub(crate) fn error(&mut self) -> Vec<Output> {
        steps(self.machine.error(None))
    }

    /// The socket's `close`, with its code when it is a number.
    pub(crate) fn closed(&mut self, code: Option<f64>) -> Vec<Output> {
        steps(self.machine.closed(code))
    }

    /// The socket's `message`, as the glue found it: an event goes to the
    /// consumer or the queue, anything else is a (flood-guarded) log line.
    pub(crate) fn frame(&mut self, frame: Frame) -> Vec<Output> {
        if self.machine.is_stopped() {
            return Vec::new(); // a frame after stop() reaches no one
        }
        if let Err(error) = frame.sort() {
            self.bad_message(error).into_iter().collect()
        } else {
            let (route, signal) = self.flow.arrived(self.can_pause);
            let mut out = vec![match route {
                Route::Deliver => Output::Deliver,
                Route::Queue => Output::Queue,
            }];
            match signal {
                Some(Signal::Pause) => out.push(Output::Pause),
                Some(Signal::Unpausable) => {
                    out.push(Output::Step(Step::Log(Line::BackpressureUnavailable)));
                }
                Some(Signal::Resume) | None => {}
            }
            out
        }
    }

    /// The consumer can take no more for now.
    pub(crate) fn full(&mut self) {
        self.flow.full();
    }

    /// The consumer has room again (the glue then drains with [`Injected::take`]).
    pub(crate) fn room(&mut self) {
        self.flow.room();
    }

    /// `Some` when the head of the queue goes to the consumer now (the
    /// outputs say so, and may resume the socket); `None` to stop draining.
    pub(crate) fn take(&mut self) -> Option<Vec<Output>> {
        if self.machine.is_stopped() {
            return None;
        }
        self.flow.take().map(|signal| {
            let mut out = vec![Output::Deliver];
            if let Some(Signal::Resume) = signal {
                if self.can_pause {
                    out.push(Output::Resume);
                }
            }
            out
        })
    }

    /// `stop()`: close the socket, forget the queue, and the last line.
    pub(crate) fn stop(&mut self) -> Vec<Output> {
        let mut out = steps(self.machine.stop());
        if !out.is_empty() {
            self.flow.clear();
            out.push(Output::Step(self.machine.finished()));
        }
        out
    }

    fn bad_message(&self, error: String) -> Option<Output> {
        let line = Line::BadMessage {
            error,
            suppressed: 0,
        };
        let kept = Arc::new(Kept::default());
        let log: Logger = kept.clone();
        self.bad_messages
            .log(&log, line.msg(), Value::Object(line.meta()));
        let meta = kept
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()?;
        let suppressed = meta.get("suppressed").and_then(Value::as_u64).unwrap_or(0);
        let Line::BadMessage { error, .. } = line else {
            return None;
        };
        Some(Output::Step(Step::Log(Line::BadMessage {
            error,
            suppressed,
        })))
    }
}

fn steps(steps: Vec<Step>) -> Vec<Output> {
    steps.into_iter().map(Output::Step).collect()
}

/// The one line a [`FloodGuard`] let through, if it did.
#[derive(Default)]
struct Kept(Mutex<Option<Map<String, Value>>>);

impl Log for Kept {
    fn log(&self, _msg: &str, meta: Value) {
        if let Value::Object(meta) = meta {
            *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(meta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::flow::QUEUE_CAPACITY;
    use super::super::reconnect::Notice;
    use super::*;

    #[test]
    fn a_stream_delivers_at_once_until_the_consumer_is_full() {
        let mut s = Injected::new("ws://h/e", 10.0, 20.0);
        assert_eq!(s.opened(true).last(), Some(&Output::Step(Step::Ready)));
        assert_eq!(s.frame(Frame::Object), [Output::Deliver]);
        s.full();
        for _ in 1..QUEUE_CAPACITY {
            assert_eq!(s.frame(Frame::Object), [Output::Queue]);
        }
        assert_eq!(s.frame(Frame::Object), [Output::Queue, Output::Pause]);
        assert_eq!(s.take(), None, "still full");
        s.room();
        let mut outs = Vec::new();
        while let Some(out) = s.take() {
            outs.extend(out);
        }
        assert_eq!(
            outs.iter().filter(|o| **o == Output::Deliver).count(),
            QUEUE_CAPACITY
        );
        assert_eq!(outs.iter().filter(|o| **o == Output::Resume).count(), 1);
    }

    #[test]
    fn without_pause_it_says_so_once_and_keeps_everything() {
        let mut s = Injected::new("ws://h/e", 10.0, 20.0);
        s.opened(false);
        s.full();
        let logs: Vec<_> = (0..2 * QUEUE_CAPACITY)
            .flat_map(|_| s.frame(Frame::Object))
            .filter(|o| matches!(o, Output::Step(_)))
            .collect();
        assert_eq!(
            logs,
            [Output::Step(Step::Log(Line::BackpressureUnavailable))]
        );
    }

    #[test]
    fn bad_frames_are_lines_and_a_flood_of_them_is_cut() {
        let mut s = Injected::new("ws://h/e", 10.0, 20.0);
        assert_eq!(
            s.frame(Frame::Binary),
            [Output::Step(Step::Log(Line::BadMessage {
                error: "binary frame".into(),
                suppressed: 0
            }))]
        );
        let lines = (0..500)
            .filter(|_| !s.frame(Frame::NotObject).is_empty())
            .count();
        assert_eq!(lines, 99);
    }

    #[test]
    fn stop_closes_once_and_then_nothing_happens() {
        let mut s = Injected::new("ws://h/e?token=t", 10.0, 20.0);
        s.opened(true);
        s.full();
        s.frame(Frame::Object);
        assert_eq!(
            s.stop(),
            [
                Output::Step(Step::Close),
                Output::Step(Step::Log(Line::Stopped))
            ]
        );
        assert_eq!(s.stop(), []);
        assert!(!s.may_connect());
        s.room();
        assert_eq!(s.take(), None);
        assert_eq!(s.frame(Frame::Object), []);
        assert_eq!(
            s.closed(Some(1000.0)),
            [
                Output::Step(Step::State(Notice::Closed { code: Some(1000.0) })),
                Output::Step(Step::Log(Line::Closed { code: Some(1000.0) }))
            ]
        );
    }
}
