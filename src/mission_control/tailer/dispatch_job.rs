//! One mission's dispatch, start to end: claim its session against other
//! bridges (§9.5) and re-read it to check the mission is still `queued`
//! (see [`reread`](super::reread)), dispatch it, carry out the [`outcome`](super::outcome) decision (write,
//! follow, log, journal) and release or defer its key.

use super::claims::Claim;
use super::outcome::decide;
use super::reread::Reread;
use super::schedule::{InFlight, Job, CLAIM_RETRY_MS, SHORTAGE_POLL_MS};
use super::writeback::{Unwritten, Written};
use super::Bridge;
use crate::backoff::sleep_ms;
use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::mission_control::dispatch::{dispatch_mission, Cancel};
use crate::mission_control::journal;
use crate::mission_control::mission::StatusUpdate;
use crate::mission_control::session;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

/// A queued status write's outcome.
pub(super) type Pending = tokio::sync::oneshot::Receiver<Written>;

impl Bridge {
    /// Run one job; `slot` is its place among the `maxInflight` dispatches,
    /// given back as soon as serve has answered (the write-back does not
    /// hold it, so a slow disk does not slow dispatching).
    pub(super) async fn run_job(self: &Arc<Self>, job: &Job, slot: OwnedSemaphorePermit) {
        let deferred = match self.dispatch_job(job, slot).await {
            Ok(deferred) => deferred,
            Err(e) => {
                self.log.log(
                    "queue-tailer:dispatch-error",
                    json!({"missionId": job.mission_id, "sessionId": job.session_id, "error": e.to_string()}),
                );
                false
            }
        };
        if !deferred && self.scanner.release(&job.key) {
            self.examine_later(job.path.clone(), 0.0);
        }
    }

    /// Dispatch one mission and write its outcome back. `Ok(true)`: deferred (§9.2).
    async fn dispatch_job(self: &Arc<Self>, job: &Job, slot: OwnedSemaphorePermit) -> Result<bool> {
        let slot = InFlight::new(&self.schedule, slot);
        if self.stop.is_cancelled() {
            return Ok(false);
        }
        // Its outcome may be on the way: the session's next write waits for
        // it. Said before the re-read, so the outcomes of a session whose
        // missions fill the slots twice over still share one write.
        let mut expected = Some(self.writeback.expect(&job.path));
        // The claim is held until the outcome is on disk, so another bridge
        // re-reading the session then sees it (§9.5).
        let answer = self
            .rereads
            .claim_and_reread(&job.path, &job.mission_id)
            .await?;
        let Some((claim, reread)) = answer else {
            self.retry_claim_later(job);
            return Ok(true);
        };
        let mission = match reread {
            Reread::Queued(mission) => mission,
            Reread::Unreadable {
                error,
                first,
                short,
            } => {
                // Not a mission gone: look again until the file reads.
                if short {
                    let _ = self.descriptors.note(&error);
                } else if first {
                    self.log.log(
                        "queue-tailer:session-unreadable",
                        json!({"path": job.path.to_string_lossy(), "sessionId": job.session_id, "error": error}),
                    );
                }
                self.look_again_later(job, CLAIM_RETRY_MS);
                return Ok(true);
            }
            Reread::Owed => {
                // Not POSTed: what is owed may be its outcome. The session's
                // jobs all got this answer: one look for them all.
                self.scanner.owed_changed(&job.path);
                self.look_again_together(job, 1.0);
                return Ok(true);
            }
            Reread::Not(observed) => {
                self.log.log(
                    "queue-tailer:skip-no-longer-queued",
                    json!({"missionId": job.mission_id, "sessionId": job.session_id, "observedStatus": observed}),
                );
                return Ok(false);
            }
        };
        if self
            .scanner
            .remembered
            .reverted(&job.key, &mission)
            .is_some()
        {
            // Dispatched before (by a bridge that stopped and saved the
            // outcome, or by us with the outcome reverted since): the
            // outcome is written, not a second POST.
            self.scanner.restore_after_release(&job.key);
            return Ok(false);
        }
        let payload =
            session::build_dispatch_payload(&mission, &Value::from(job.session_id.clone()));
        let outcome = dispatch_mission(
            &self.dispatch,
            &job.session_id,
            &payload,
            self.transport.as_ref(),
            &self.log,
            Cancel {
                attempts: &self.stop,
                request: &self.abandon,
            },
        )
        .await;
        drop(slot);
        let decision = decide(&outcome, &job.mission_id, &job.session_id, &now_iso());
        if let Some(update) = decision.update {
            let pending = self.submit_outcome(job, &mission, update);
            expected.take();
            // Follow the executor now: an event it sends right away queues
            // behind the `assigned` write, so its guard sees `assigned`.
            if let (Some(mission_id), Some(executor_id)) =
                (job.mission_id.as_str(), decision.follow.as_deref())
            {
                self.follow(mission_id, &job.path, executor_id);
            }
            // Saved for the next bridge (this one is stopping): not landed.
            if self.written_keeping(pending, claim, job).await? {
                self.descriptors.landed();
                self.schedule.settled(&job.key);
            }
        }
        drop(expected);
        let (msg, meta) = decision.log;
        self.log.log(msg, meta);
        journal::append(&job.path, decision.journal, &self.log);
        if !decision.deferred || self.stop.is_cancelled() {
            return Ok(false);
        }
        self.retry_later(job);
        Ok(true)
    }

    /// Wait for `job`'s outcome to be written, holding its session's
    /// `claim` meanwhile, except when the write has failed for want of
    /// file descriptors: the claim's descriptor is given to the write then.
    /// (Until the write lands, another bridge could dispatch the mission
    /// again; serve knows it by its `Idempotency-Key`.) `true` once written,
    /// `false` when saved for the next bridge.
    async fn written_keeping(&self, pending: Pending, claim: Claim, job: &Job) -> Result<bool> {
        let mut claim = Some(claim);
        let mut pending = std::pin::pin!(written(pending));
        loop {
            // A branch whose future is ready at once must be off, or this
            // loop spins and starves the write it waits for: the sleep
            // once stopping, `done` once cancelled.
            let holding = claim.is_some() && job.done.is_cancelled() && !self.stop.is_cancelled();
            let until_done = claim.is_some() && !job.done.is_cancelled();
            tokio::select! {
                written = &mut pending => return written,
                () = sleep_ms(SHORTAGE_POLL_MS, &self.stop), if holding => {
                    if self.descriptors.short() {
                        claim = None;
                    }
                }
                () = job.done.cancelled(), if until_done => {}
            }
        }
    }

    /// Queue the outcome of `job`'s dispatch (of `mission`, as read before
    /// it) for its session file, and remember it (§9.5 restore).
    fn submit_outcome(&self, job: &Job, mission: &Value, update: StatusUpdate) -> Pending {
        self.scanner.remembered.remember(&job.key, mission, &update);
        // The initial sweep waits for this job; if the write must wait for
        // the disk, the sweep need not (the job goes on trying).
        self.writeback.submit_watching(
            &self.tasks,
            &job.path,
            update,
            Some(mission.clone()),
            Some(job.done.clone()),
        )
    }
}

/// Wait for a queued write: made (`true`), or saved for the next bridge
/// when this one stopped first (`false`). A write neither made nor saved
/// is an error.
async fn written(pending: Pending) -> Result<bool> {
    match pending.await {
        Ok(Ok(_)) => Ok(true),
        Ok(Err(Unwritten::Saved)) => Ok(false),
        Ok(Err(Unwritten::Lost(error))) => Err(Error::Message(error)),
        Err(_) => Err(Error::Message("status write-back was dropped".into())),
    }
}
