//! The way in for streams the caller runs (an injected `WebSocketImpl`).
//!
//! JS posts each event of such a stream and hears at once whether the
//! tailer has room for more. Once [`CAPACITY`] inputs wait, it has none:
//! the caller marks that stream full (the executor-ws flow hook), so its
//! events queue in the stream and its socket is paused, as a native stream
//! waits before reading. Once the tailer has taken the inbox down to half,
//! it says so once ([`Receiver::recv`] answers `room`), and the caller
//! gives every stream it marked full room again.

use super::executors::StreamInput;
use crate::mission_control::executor_ws::flow::QUEUE_CAPACITY;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc;

/// Inputs that may wait for the tailer before posting says "no room".
pub(crate) const CAPACITY: usize = QUEUE_CAPACITY;

/// How many inputs wait, and whether a caller was told there is no room.
#[derive(Debug, Default)]
struct Gauge {
    waiting: usize,
    told_full: bool,
}

/// The caller's end.
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    tx: mpsc::UnboundedSender<StreamInput>,
    gauge: Arc<Mutex<Gauge>>,
}

/// The tailer's end.
#[derive(Debug)]
pub(crate) struct Receiver {
    rx: mpsc::UnboundedReceiver<StreamInput>,
    gauge: Arc<Mutex<Gauge>>,
}

/// A new inbox and its receiving end.
pub(crate) fn inbox() -> (Inbox, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let gauge = Arc::new(Mutex::new(Gauge::default()));
    (
        Inbox {
            tx,
            gauge: Arc::clone(&gauge),
        },
        Receiver { rx, gauge },
    )
}

fn lock(gauge: &Mutex<Gauge>) -> std::sync::MutexGuard<'_, Gauge> {
    gauge.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inbox {
    /// Post an input; `false` when the inbox is now full and the caller
    /// should hold that stream's events back until told there is room.
    /// A tailer that has stopped takes nothing, and holds nothing back.
    pub(crate) fn post(&self, input: StreamInput) -> bool {
        // Counted and sent under the lock, so the receiver never takes an
        // input it has not seen counted.
        let mut gauge = lock(&self.gauge);
        if self.tx.send(input).is_err() {
            return true;
        }
        gauge.waiting += 1;
        if gauge.waiting >= CAPACITY {
            gauge.told_full = true;
            return false;
        }
        true
    }
}

impl Receiver {
    /// The next input, and whether the caller, told "full" before, should
    /// now be told there is room (once the inbox is down to half). `None`
    /// once every [`Inbox`] is gone.
    pub(crate) async fn recv(&mut self) -> Option<(StreamInput, bool)> {
        let input = self.rx.recv().await?;
        let mut gauge = lock(&self.gauge);
        gauge.waiting = gauge.waiting.saturating_sub(1);
        let room = gauge.told_full && gauge.waiting <= CAPACITY / 2;
        if room {
            gauge.told_full = false;
        }
        Some((input, room))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: usize) -> StreamInput {
        StreamInput::State {
            executor_id: format!("ex-{n}"),
            state: "opened".into(),
        }
    }

    #[tokio::test]
    async fn full_at_capacity_and_room_once_at_half() {
        let (inbox, mut receiver) = inbox();
        for n in 1..CAPACITY {
            assert!(inbox.post(state(n)), "room for input {n}");
        }
        assert!(!inbox.post(state(CAPACITY)), "full at the capacity");
        assert!(!inbox.post(state(CAPACITY + 1)), "still full past it");
        let mut rooms = Vec::new();
        for n in 1..=CAPACITY + 1 {
            let (input, room) = receiver.recv().await.expect("an input");
            match input {
                StreamInput::State { executor_id, .. } => {
                    assert_eq!(executor_id, format!("ex-{n}"), "in order");
                }
                StreamInput::Event { .. } => panic!("only states were posted"),
            }
            if room {
                rooms.push(n);
            }
        }
        // CAPACITY + 1 posted; room once CAPACITY / 2 are left.
        assert_eq!(rooms, [CAPACITY + 1 - CAPACITY / 2], "told once, at half");
    }

    #[tokio::test]
    async fn never_full_while_the_tailer_keeps_up() {
        let (inbox, mut receiver) = inbox();
        for n in 0..CAPACITY * 3 {
            assert!(inbox.post(state(n)));
            let (_, room) = receiver.recv().await.expect("an input");
            assert!(!room, "no room to announce when none was lacking");
        }
    }

    #[tokio::test]
    async fn a_stopped_tailer_holds_nothing_back() {
        let (inbox, receiver) = inbox();
        drop(receiver);
        for n in 0..CAPACITY * 2 {
            assert!(inbox.post(state(n)));
        }
    }
}
