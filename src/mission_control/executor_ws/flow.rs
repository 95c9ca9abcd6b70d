//! The bounded queue between a socket and its consumer, as a pure policy.
//!
//! Both JS-facing drivers keep their queued events on the JS side (they
//! are JS values), but which way an event goes, and when the socket is
//! paused or resumed, is decided here, once:
//!
//! - while the consumer has room and nothing is queued, an event is handed
//!   over at once (so a standalone `onEvent` still sees a message before
//!   the socket's dispatch returns);
//! - otherwise it is queued, in order; it is never dropped;
//! - at [`QUEUE_CAPACITY`] queued events the socket is paused; a socket
//!   that cannot pause (a WHATWG WebSocket) keeps delivering into the
//!   queue, and the stream logs `executor-ws:backpressure-unavailable` once;
//! - once the queue has drained to half, a paused socket resumes.

/// The one capacity of the queue between socket and consumer, for both
/// drivers (for the native one it also bounds the frames in flight to JS).
pub(crate) const QUEUE_CAPACITY: usize = 256;

/// Where an accepted event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// To the consumer, now.
    Deliver,
    /// To the back of the queue.
    Queue,
}

/// What the driver must do to its socket besides routing the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Pause,
    Resume,
    /// The queue is full and the socket cannot pause: log it (once per stream).
    Unpausable,
}

/// One stream's queue state. It counts the queued events; the driver holds them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flow {
    queued: usize,
    consumer_full: bool,
    paused: bool,
    warned: bool,
}

impl Flow {
    /// An accepted event came from a socket that can (or cannot) pause.
    pub(crate) fn arrived(&mut self, can_pause: bool) -> (Route, Option<Signal>) {
        if !self.consumer_full && self.queued == 0 {
            return (Route::Deliver, None);
        }
        self.queued += 1;
        if self.queued < QUEUE_CAPACITY || self.paused {
            return (Route::Queue, None);
        }
        if can_pause {
            self.paused = true;
            (Route::Queue, Some(Signal::Pause))
        } else if !std::mem::replace(&mut self.warned, true) {
            (Route::Queue, Some(Signal::Unpausable))
        } else {
            (Route::Queue, None)
        }
    }

    /// The consumer says it can take no more for now.
    pub(crate) fn full(&mut self) {
        self.consumer_full = true;
    }

    /// The consumer says it has room again.
    pub(crate) fn room(&mut self) {
        self.consumer_full = false;
    }

    /// Whether the next queued event goes to the consumer now (`Some`,
    /// with a signal to resume the socket when the queue has drained to
    /// half) or stays queued (`None`: the consumer is full, or nothing is queued).
    #[allow(clippy::option_option)] // taken or not, and then: with a signal or not
    pub(crate) fn take(&mut self) -> Option<Option<Signal>> {
        if self.consumer_full || self.queued == 0 {
            return None;
        }
        self.queued -= 1;
        if self.paused && self.queued <= QUEUE_CAPACITY / 2 {
            self.paused = false;
            return Some(Some(Signal::Resume));
        }
        Some(None)
    }

    /// A new socket opened: pause it at once if the queue is still full.
    pub(crate) fn reopened(&self, can_pause: bool) -> Option<Signal> {
        (self.paused && can_pause).then_some(Signal::Pause)
    }

    /// Whether the socket should be reading (not paused by this policy).
    pub(crate) fn reading(&self) -> bool {
        !self.paused
    }

    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// The stream stopped: what is queued will never be delivered.
    pub(crate) fn clear(&mut self) {
        self.queued = 0;
        self.paused = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_room_events_go_straight_through() {
        let mut flow = Flow::default();
        for _ in 0..10 * QUEUE_CAPACITY {
            assert_eq!(flow.arrived(true), (Route::Deliver, None));
        }
        assert_eq!(flow.take(), None);
    }

    #[test]
    fn a_full_consumer_queues_then_pauses_and_resumes_at_half() {
        let mut flow = Flow::default();
        flow.full();
        for _ in 1..QUEUE_CAPACITY {
            assert_eq!(flow.arrived(true), (Route::Queue, None));
        }
        assert_eq!(flow.arrived(true), (Route::Queue, Some(Signal::Pause)));
        assert!(!flow.reading());
        // Frames already on their way still queue, in order, without a second pause.
        assert_eq!(flow.arrived(true), (Route::Queue, None));
        assert_eq!(flow.take(), None, "the consumer is still full");
        flow.room();
        let mut resumed_at = None;
        let mut taken = 0;
        while let Some(signal) = flow.take() {
            taken += 1;
            if signal == Some(Signal::Resume) {
                resumed_at = Some(flow.queued());
            }
        }
        assert_eq!(taken, QUEUE_CAPACITY + 1);
        assert_eq!(resumed_at, Some(QUEUE_CAPACITY / 2));
        assert!(flow.reading());
        // Drained: the next event goes straight through again.
        assert_eq!(flow.arrived(true), (Route::Deliver, None));
    }

    #[test]
    fn an_event_never_overtakes_the_queue() {
        let mut flow = Flow::default();
        flow.full();
        assert_eq!(flow.arrived(true), (Route::Queue, None));
        flow.room();
        // Room again, but one is queued: the newcomer queues behind it.
        assert_eq!(flow.arrived(true), (Route::Queue, None));
        assert_eq!(flow.take(), Some(None));
        assert_eq!(flow.take(), Some(None));
        assert_eq!(flow.take(), None);
    }

    #[test]
    fn an_unpausable_socket_is_reported_once_and_nothing_is_dropped() {
        let mut flow = Flow::default();
        flow.full();
        let signals: Vec<_> = (0..3 * QUEUE_CAPACITY)
            .filter_map(|_| flow.arrived(false).1)
            .collect();
        assert_eq!(signals, [Signal::Unpausable]);
        assert_eq!(flow.queued(), 3 * QUEUE_CAPACITY);
        assert_eq!(flow.reopened(false), None);
    }

    #[test]
    fn a_new_socket_is_paused_while_the_queue_is_full() {
        let mut flow = Flow::default();
        flow.full();
        for _ in 0..QUEUE_CAPACITY {
            flow.arrived(true);
        }
        assert_eq!(flow.reopened(true), Some(Signal::Pause));
        flow.clear();
        assert_eq!(flow.reopened(true), None);
    }
}
