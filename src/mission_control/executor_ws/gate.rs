//! The bounded queue of a native stream whose consumer is in JS.
//!
//! Frames travel from the stream's task to JS through a threadsafe
//! function, and JS keeps the queued events; the [`Flow`] policy between
//! them is shared here. The task waits in [`Gate::room`] before reading a
//! frame while the flow has paused it, or while [`QUEUE_CAPACITY`] frames
//! are still on their way to JS, so at most twice the capacity is ever
//! held in memory (in flight plus queued), however fast the server sends.

use super::flow::{Flow, Route, Signal, QUEUE_CAPACITY};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

/// Shared by a native stream's task and its JS handle.
#[derive(Default)]
pub(crate) struct Gate {
    flow: Mutex<Flow>,
    in_flight: AtomicUsize,
    wake: Notify,
}

impl Gate {
    fn flow(&self) -> std::sync::MutexGuard<'_, Flow> {
        self.flow
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn open(&self) -> bool {
        self.flow().reading() && self.in_flight.load(Ordering::Acquire) < QUEUE_CAPACITY
    }

    /// Resolves when the task may read the next frame.
    pub(crate) async fn room(&self) {
        loop {
            let woken = self.wake.notified();
            if self.open() {
                return;
            }
            woken.await;
        }
    }

    /// The task sent one event on its way to JS.
    pub(crate) fn sent(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// JS received one event: to the consumer now, or to the queue.
    pub(crate) fn arrived(&self) -> Route {
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        // A pause needs no action: `room` sees it.
        let (route, _) = self.flow().arrived(true);
        self.wake.notify_waiters();
        route
    }

    /// The consumer can take no more for now.
    pub(crate) fn full(&self) {
        self.flow().full();
    }

    /// The consumer has room again.
    pub(crate) fn room_again(&self) {
        self.flow().room();
    }

    /// Whether the head of JS's queue goes to the consumer now.
    pub(crate) fn take(&self) -> bool {
        match self.flow().take() {
            None => false,
            Some(signal) => {
                if signal == Some(Signal::Resume) {
                    self.wake.notify_waiters();
                }
                true
            }
        }
    }

    /// The stream is stopping: nothing queued will be delivered, the task must not wait.
    pub(crate) fn clear(&self) {
        self.flow().clear();
        self.in_flight.store(0, Ordering::Release);
        self.wake.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn the_task_waits_while_too_much_is_in_flight() {
        let gate = Arc::new(Gate::default());
        for _ in 0..QUEUE_CAPACITY {
            gate.room().await;
            gate.sent();
        }
        let waiting = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.room().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        assert_eq!(gate.arrived(), Route::Deliver);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("woken")
            .expect("joined");
    }

    #[tokio::test]
    async fn a_full_consumer_pauses_the_task_until_the_queue_drains() {
        let gate = Arc::new(Gate::default());
        gate.full();
        for _ in 0..QUEUE_CAPACITY {
            gate.sent();
            assert_eq!(gate.arrived(), Route::Queue);
        }
        let waiting = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.room().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "paused");
        gate.room_again();
        let mut taken = 0;
        while gate.take() {
            taken += 1;
        }
        assert_eq!(taken, QUEUE_CAPACITY);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("resumed")
            .expect("joined");
    }
}
