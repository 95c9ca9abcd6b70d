//! Backpressure for executor streams: at most [`MAX_PENDING`] events are
//! between a socket and the session files at a time. A stream waits for
//! room before reading its next frame, so a flood of events stays in the
//! socket buffers (and then the server's) instead of this process's memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Events received and not yet written back or journaled.
pub(super) const MAX_PENDING: usize = 1024;

/// The count of events in flight and a wake-up for streams waiting for room.
#[derive(Default)]
pub(super) struct Backlog {
    pending: AtomicUsize,
    drained: Notify,
}

/// One event on its way: pending until dropped (after its journal line is
/// written, wherever that happens).
pub(super) struct BacklogSlot {
    backlog: Arc<Backlog>,
}

impl Drop for BacklogSlot {
    fn drop(&mut self) {
        self.backlog.pending.fetch_sub(1, Ordering::SeqCst);
        self.backlog.drained.notify_waiters();
    }
}

impl Backlog {
    /// Count one more event until the returned guard is dropped.
    pub(super) fn hold(self: &Arc<Self>) -> BacklogSlot {
        self.pending.fetch_add(1, Ordering::SeqCst);
        BacklogSlot {
            backlog: Arc::clone(self),
        }
    }

    /// Resolves once fewer than [`MAX_PENDING`] events are pending.
    pub(super) async fn room(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            // Registered before the check, so a `done` in between is not missed.
            drained.as_mut().enable();
            if self.pending.load(Ordering::SeqCst) < MAX_PENDING {
                return;
            }
            drained.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_backlog_waits_until_one_is_done() {
        let backlog = Arc::new(Backlog::default());
        let mut held: Vec<_> = (0..MAX_PENDING).map(|_| backlog.hold()).collect();
        let waiting = tokio::spawn({
            let backlog = Arc::clone(&backlog);
            async move { backlog.room().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "room while full");
        held.pop();
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("room after one was done")
            .expect("join");
    }
}
