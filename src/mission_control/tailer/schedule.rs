//! When missions start (§9.3): a FIFO queue ordered by the millisecond
//! timestamp in `m-<base36>-…` ids (then discovery order), at most
//! `maxInflight` dispatches at a time, and the backoff rounds of missions
//! whose dispatch was deferred (§9.2) or whose session another bridge holds.

use super::claims::RETRY_WHILE_SHARING_MS;
use super::lock;
use super::Bridge;
use crate::backoff::{backoff_ms, sleep_ms};
use serde_json::Value;
use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// When to look again at a mission whose session another bridge is
/// dispatching from (its claim is taken) while this bridge sees no other
/// on the queue (see [`claims`](super::claims)); also when a session file
/// could not be read.
pub(super) const CLAIM_RETRY_MS: f64 = 250.0;

/// How often a dispatcher short of descriptors looks whether it may go on.
pub(super) const SHORTAGE_POLL_MS: f64 = 20.0;

/// One mission to dispatch. Ordered FIFO: id timestamp, then discovery order.
#[derive(Debug)]
pub(super) struct Job {
    /// The id's millisecond timestamp (`u64::MAX` for ids of another shape).
    pub ts: u64,
    /// Discovery order, for missions of one millisecond.
    pub seq: u64,
    /// `<session.id>:<mission.id>`: never two dispatches of one key at a time.
    pub key: String,
    /// The session file the mission was found in; all writes go there.
    pub path: PathBuf,
    /// `session.id`, for the URL and the log lines only.
    pub session_id: String,
    pub mission_id: Value,
    /// Cancelled when the job has finished.
    pub done: CancellationToken,
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.seq) == (other.ts, other.seq)
    }
}
impl Eq for Job {}
impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Job {
    /// FIFO: the earlier id timestamp first, then the one found first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (self.ts, self.seq).cmp(&(other.ts, other.seq))
    }
}

/// The schedule's state: the queue, the slots and the deferral rounds.
pub(super) struct Schedule {
    /// Jobs waiting for a slot, earliest first.
    queue: Mutex<BinaryHeap<Reverse<Arc<Job>>>>,
    /// Wakes the dispatcher when jobs are queued.
    queued: Notify,
    /// `maxInflight` dispatch slots.
    slots: Arc<Semaphore>,
    /// Dispatches holding a slot now (what `stop` reports as drained).
    in_flight: AtomicUsize,
    /// Deferred missions (§9.2) and how often each was deferred in a row.
    deferrals: Mutex<HashMap<String, u32>>,
    /// Keys waiting to look again at their session (another bridge holds
    /// it, or owed writes came), by session: one timer and one examination
    /// per session, not one per key.
    claim_waits: Mutex<HashMap<PathBuf, Vec<String>>>,
}

impl Schedule {
    /// An empty schedule with `max_inflight` slots (at least one).
    pub(super) fn new(max_inflight: usize) -> Self {
        Schedule {
            queue: Mutex::new(BinaryHeap::new()),
            queued: Notify::new(),
            slots: Arc::new(Semaphore::new(max_inflight.max(1))),
            in_flight: AtomicUsize::new(0),
            deferrals: Mutex::new(HashMap::new()),
            claim_waits: Mutex::new(HashMap::new()),
        }
    }

    /// Queue `jobs` and wake the dispatcher.
    pub(super) fn push(&self, jobs: &[Arc<Job>]) {
        if jobs.is_empty() {
            return;
        }
        let mut queue = lock(&self.queue);
        for job in jobs {
            queue.push(Reverse(Arc::clone(job)));
        }
        drop(queue);
        self.queued.notify_one();
    }

    /// The earliest queued job, if any.
    fn pop(&self) -> Option<Arc<Job>> {
        lock(&self.queue).pop().map(|Reverse(job)| job)
    }

    /// How many dispatches hold a slot now.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The mission has an outcome: no more deferral rounds to count.
    pub(super) fn settled(&self, key: &str) {
        lock(&self.deferrals).remove(key);
    }

    /// Count one more deferral round of `key`; the delay before its next try.
    pub(super) fn deferred(&self, key: &str, retry_base_ms: f64) -> f64 {
        let round = {
            let mut deferrals = lock(&self.deferrals);
            let n = deferrals.entry(key.to_owned()).or_insert(0);
            *n += 1;
            *n
        };
        deferral_delay(round, retry_base_ms)
    }
}

/// §9.2: the wait before deferral round `round` (1-based) tries again:
/// the dispatch backoff, capped, with a base of at least 1 ms so a zero
/// `retryBaseMs` cannot spin.
pub(super) fn deferral_delay(round: u32, retry_base_ms: f64) -> f64 {
    backoff_ms(f64::from(round), retry_base_ms.max(1.0))
}

/// A dispatch slot in use, counted in `in_flight` until dropped.
pub(super) struct InFlight<'a> {
    count: &'a AtomicUsize,
    _slot: OwnedSemaphorePermit,
}

impl<'a> InFlight<'a> {
    /// Count `slot` as in flight on `schedule` until the guard is dropped.
    pub(super) fn new(schedule: &'a Schedule, slot: OwnedSemaphorePermit) -> Self {
        schedule.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight {
            count: &schedule.in_flight,
            _slot: slot,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Bridge {
    /// Start queued jobs in FIFO order as slots free up, until stopped.
    pub(super) async fn dispatcher(self: Arc<Self>) {
        let schedule = &self.schedule;
        loop {
            let slot = tokio::select! {
                slot = Arc::clone(&schedule.slots).acquire_owned() => match slot { Ok(s) => s, Err(_) => return },
                () = self.stop.cancelled() => return,
            };
            if !self.descriptors_to_spare().await {
                return;
            }
            let job = loop {
                if let Some(job) = schedule.pop() {
                    break job;
                }
                tokio::select! {
                    () = schedule.queued.notified() => {}
                    () = self.stop.cancelled() => return,
                }
            };
            let bridge = Arc::clone(&self);
            self.spawn(async move {
                bridge.run_job(&job, slot).await;
                job.done.cancel();
            });
        }
    }

    /// Out of file descriptors, a new dispatch (a claim, a connection, a
    /// write) would take what the writes already owed need: wait until
    /// none is owed, and until fewer dispatches (and, short, writes) are in flight than the
    /// process was found to hold (see [`descriptors`](super::descriptors)).
    /// `false` when the tailer stopped meanwhile.
    async fn descriptors_to_spare(&self) -> bool {
        loop {
            let short = self.descriptors.short();
            // Short, a write under way counts as a dispatch: it holds files.
            let busy = self.schedule.in_flight() + if short { self.writeback.writing() } else { 0 };
            if !self.descriptors.owed() && busy < self.descriptors.allowed() {
                break;
            }
            if short {
                // Idle keep-alive connections hold descriptors too.
                self.transport.lean(true);
            }
            sleep_ms(SHORTAGE_POLL_MS, &self.stop).await;
            if self.stop.is_cancelled() {
                return false;
            }
        }
        true
    }

    /// Wait until every job in `jobs` has finished (or the tailer stops).
    pub(super) async fn wait_for(&self, jobs: Vec<Arc<Job>>) {
        for job in jobs {
            tokio::select! {
                () = job.done.cancelled() => {}
                () = self.stop.cancelled() => return,
            }
        }
    }

    /// §9.2: keep the mission `queued` and look again after a capped backoff.
    pub(super) fn retry_later(self: &Arc<Self>, job: &Job) {
        let delay = self.schedule.deferred(&job.key, self.config.retry_base_ms);
        self.look_again_later(job, delay);
    }

    /// `job`'s session could not be claimed (another bridge holds it, or
    /// its turn here is over while bridges share the queue): keep its key
    /// claimed and look again shortly, soon when bridges share the queue
    /// (a holder hands the session over between batches then).
    pub(super) fn retry_claim_later(self: &Arc<Self>, job: &Job) {
        let delay = if self.presence.peers() > 0 {
            RETRY_WHILE_SHARING_MS
        } else {
            CLAIM_RETRY_MS
        };
        self.look_again_together(job, delay);
    }

    /// Keep `job`'s key claimed and examine its session again after `delay`
    /// ms. The keys of one session that wait so share one look (the first
    /// one's delay).
    pub(super) fn look_again_together(self: &Arc<Self>, job: &Job, delay: f64) {
        {
            let mut waits = lock(&self.schedule.claim_waits);
            if let Some(keys) = waits.get_mut(&job.path) {
                keys.push(job.key.clone());
                return;
            }
            waits.insert(job.path.clone(), vec![job.key.clone()]);
        }
        let bridge = Arc::clone(self);
        let path = job.path.clone();
        self.spawn(async move {
            sleep_ms(delay, &bridge.stop).await;
            let keys = lock(&bridge.schedule.claim_waits)
                .remove(&path)
                .unwrap_or_default();
            // Examined again below in any case.
            for key in keys {
                let _ = bridge.scanner.release(&key);
            }
            if !bridge.stop.is_cancelled() {
                bridge.examine(path).await;
            }
        });
    }

    /// Keep `job`'s key claimed and examine its session again after `delay` ms.
    pub(super) fn look_again_later(self: &Arc<Self>, job: &Job, delay: f64) {
        let bridge = Arc::clone(self);
        let (key, path) = (job.key.clone(), job.path.clone());
        self.spawn(async move {
            sleep_ms(delay, &bridge.stop).await;
            // Examined again below in any case.
            let _ = bridge.scanner.release(&key);
            if !bridge.stop.is_cancelled() {
                bridge.examine(path).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(ts: u64, seq: u64) -> Arc<Job> {
        Arc::new(Job {
            ts,
            seq,
            key: format!("s:{ts}-{seq}"),
            path: PathBuf::from("/s/session.json"),
            session_id: "s".into(),
            mission_id: Value::from(format!("{ts}-{seq}")),
            done: CancellationToken::new(),
        })
    }

    #[test]
    fn jobs_leave_the_queue_by_id_timestamp_then_discovery_order() {
        let schedule = Schedule::new(8);
        schedule.push(&[job(5, 0), job(u64::MAX, 1), job(3, 2)]);
        schedule.push(&[job(5, 3), job(1, 4)]);
        let order: Vec<_> = std::iter::from_fn(|| schedule.pop())
            .map(|j| (j.ts, j.seq))
            .collect();
        assert_eq!(order, [(1, 4), (3, 2), (5, 0), (5, 3), (u64::MAX, 1)]);
    }

    #[test]
    fn deferral_rounds_back_off_and_reset_once_settled() {
        let schedule = Schedule::new(1);
        assert_eq!(schedule.deferred("k", 100.0), 100.0);
        assert_eq!(schedule.deferred("k", 100.0), 200.0);
        assert_eq!(schedule.deferred("k", 100.0), 400.0);
        schedule.settled("k");
        assert_eq!(schedule.deferred("k", 100.0), 100.0);
        assert_eq!(deferral_delay(30, 100.0), 30_000.0);
        assert_eq!(deferral_delay(1, 0.0), 1.0, "a zero base cannot spin");
    }

    #[test]
    fn in_flight_counts_slots_until_dropped() {
        let schedule = Schedule::new(2);
        let slot = Arc::clone(&schedule.slots)
            .try_acquire_owned()
            .expect("slot");
        let guard = InFlight::new(&schedule, slot);
        assert_eq!(schedule.in_flight(), 1);
        drop(guard);
        assert_eq!(schedule.in_flight(), 0);
        assert_eq!(schedule.slots.available_permits(), 2);
    }
}
