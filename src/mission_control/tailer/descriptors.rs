//! Running out of file descriptors (`EMFILE`, `ENFILE`) is the process's
//! state, not one file's. Each dispatch holds a claim, a connection and,
//! for its write, a few files at once; the outcomes already accepted come
//! first. So, once short:
//! - no dispatch starts while a write is owed for want of descriptors;
//!   writes and reads of session files take turns (idle connections are
//!   closed too);
//! - dispatches in flight are limited, halved at each shortage and raised
//!   by one with each dispatch that lands without one (as TCP's window),
//!   so the bridge settles at what the process can hold.
//!
//! It is logged once when it starts (`queue-tailer:descriptors-exhausted`)
//! and once when it has been over for a while
//! (`queue-tailer:descriptors-recovered`), not once per file.

use crate::error::os_errno;
use crate::mission_control::dispatch::{PostFuture, PostRequest, Transport};
use crate::mission_control::log::Logger;
use serde_json::json;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Short of descriptors until this long has passed without a failure.
const QUIET: Duration = Duration::from_millis(500);
/// A shortage is reported over once this long has passed without one.
const OVER: Duration = Duration::from_secs(5);
/// The limit on dispatches in flight is halved at most this often.
const CUT_EVERY: Duration = Duration::from_millis(100);

/// The first and the longest wait before a connection that found no
/// descriptor is tried again.
const CONNECT_RETRY_FIRST: Duration = Duration::from_millis(5);
const CONNECT_RETRY_MAX: Duration = Duration::from_millis(100);

/// The OS error numbers of a descriptor shortage.
#[cfg(unix)]
const SHORTAGE_ERRNOS: [i32; 2] = [libc::EMFILE, libc::ENFILE];
/// `ERROR_TOO_MANY_OPEN_FILES`.
#[cfg(not(unix))]
const SHORTAGE_ERRNOS: [i32; 1] = [4];

/// A run of descriptor shortages, from the first to the last.
struct Shortage {
    started: Instant,
    last: Instant,
    last_cut: Instant,
    failures: u64,
}

/// Whether the process is short of descriptors, and what it may hold.
pub(super) struct Descriptors {
    log: Logger,
    shortage: Mutex<Option<Shortage>>,
    /// Writes owed while short of descriptors take turns on this.
    turn: Semaphore,
    /// Writes that failed for want of descriptors and are not written yet:
    /// short while there are any.
    owed: AtomicUsize,
    /// Dispatches allowed in flight (`maxInflight` until a shortage).
    allowed: AtomicUsize,
    /// Dispatches landed since `allowed` was last raised.
    landed: AtomicUsize,
    max_inflight: usize,
}

/// A write that may come to be owed for want of descriptors (see
/// [`Owing::count`]); no longer owed once dropped.
pub(super) struct Owing<'a> {
    owed: &'a AtomicUsize,
    counted: bool,
}

impl Owing<'_> {
    /// The write failed for want of descriptors: owed until dropped.
    pub(super) fn count(&mut self) {
        if !self.counted {
            self.counted = true;
            self.owed.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Owing<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.owed.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Descriptors {
    pub(super) fn new(log: Logger, max_inflight: usize) -> Self {
        let max_inflight = max_inflight.max(1);
        Descriptors {
            log,
            shortage: Mutex::new(None),
            turn: Semaphore::new(1),
            owed: AtomicUsize::new(0),
            allowed: AtomicUsize::new(max_inflight),
            landed: AtomicUsize::new(0),
            max_inflight,
        }
    }

    /// Track one write (see [`Owing`]).
    pub(super) fn owing(&self) -> Owing<'_> {
        Owing {
            owed: &self.owed,
            counted: false,
        }
    }

    /// Whether writes are owed for want of descriptors.
    pub(super) fn owed(&self) -> bool {
        self.owed.load(Ordering::SeqCst) > 0
    }

    /// How many dispatches may be in flight now.
    pub(super) fn allowed(&self) -> usize {
        self.allowed.load(Ordering::SeqCst)
    }

    /// A dispatch's outcome landed: one more may be in flight, unless
    /// descriptors ran short just now.
    pub(super) fn landed(&self) {
        if self.short() {
            return;
        }
        let allowed = self.allowed();
        if allowed >= self.max_inflight {
            return;
        }
        // One more per round of `allowed` dispatches landed.
        if self.landed.fetch_add(1, Ordering::SeqCst) + 1 >= allowed {
            self.landed.store(0, Ordering::SeqCst);
            let _ = self.allowed.compare_exchange(
                allowed,
                allowed + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
    }

    /// Note `error` if it is a shortage of descriptors; `true` then (the
    /// caller logs nothing of its own about it).
    pub(super) fn noted(&self, error: &io::Error) -> bool {
        let short = is_shortage(error);
        if short {
            let _ = self.note(&error.to_string());
        }
        short
    }

    /// Note a shortage of descriptors met with `error`; `true` when it
    /// cut the dispatches allowed in flight (at most every [`CUT_EVERY`]).
    pub(super) fn note(&self, error: &str) -> bool {
        let now = Instant::now();
        let mut shortage = self.shortage.lock().unwrap_or_else(PoisonError::into_inner);
        let cut = if let Some(on) = shortage.as_mut() {
            on.last = now;
            on.failures += 1;
            let cut = on.last_cut.elapsed() >= CUT_EVERY;
            if cut {
                on.last_cut = now;
            }
            cut
        } else {
            *shortage = Some(Shortage {
                started: now,
                last: now,
                last_cut: now,
                failures: 1,
            });
            drop(shortage);
            self.log.log(
                "queue-tailer:descriptors-exhausted",
                json!({"error": error, "limit": open_file_limit()}),
            );
            true
        };
        if cut {
            let _ = self
                .allowed
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| Some((n / 2).max(1)));
            self.landed.store(0, Ordering::SeqCst);
        }
        cut
    }

    /// Whether descriptors are short: one ran out within [`QUIET`], or a
    /// write is owed for it. Reports the shortage over after [`OVER`].
    pub(super) fn short(&self) -> bool {
        let owed = self.owed();
        let mut shortage = self.shortage.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(on) = shortage.as_ref() else {
            return false;
        };
        let quiet = on.last.elapsed();
        if owed || quiet < OVER {
            return owed || quiet < QUIET;
        }
        let (duration, failures) = (on.started.elapsed(), on.failures);
        *shortage = None;
        drop(shortage);
        self.log.log(
            "queue-tailer:descriptors-recovered",
            json!({"failures": failures, "durationMs": duration.as_millis() as u64}),
        );
        false
    }

    /// A turn for one write or read of a session file while short of
    /// descriptors (`None` when there is no shortage: they go together).
    pub(super) async fn turn(&self) -> Option<SemaphorePermit<'_>> {
        if !self.short() {
            return None;
        }
        self.turn.acquire().await.ok()
    }
}

/// The tailer's transport, noting the connections that could not be made
/// for want of descriptors (the HTTP client names the OS error only in its
/// text, as `(os error N)`).
/// Short of descriptors, it keeps no idle connection.
pub(super) struct Noting {
    transport: Arc<dyn Transport>,
    descriptors: Arc<Descriptors>,
    lean: AtomicBool,
}

impl Noting {
    pub(super) fn new(transport: Arc<dyn Transport>, descriptors: Arc<Descriptors>) -> Self {
        Noting {
            transport,
            descriptors,
            lean: AtomicBool::new(false),
        }
    }
}

impl Transport for Noting {
    /// A connection that cannot be made for want of a descriptor sent
    /// nothing: it is tried again (for up to the request's timeout) as
    /// descriptors free up, rather than counted as a failed attempt and
    /// backed off for half a second.
    fn post(&self, request: PostRequest) -> PostFuture<'_> {
        Box::pin(async move {
            let started = Instant::now();
            let mut wait = CONNECT_RETRY_FIRST;
            loop {
                self.lean(self.descriptors.short());
                let answer = self.transport.post(request.clone()).await;
                let Err(error) = &answer else {
                    return answer;
                };
                let named = |n: &i32| error.contains(&format!("(os error {n})"));
                if !SHORTAGE_ERRNOS.iter().any(named) {
                    return answer;
                }
                let _ = self.descriptors.note(error);
                if started.elapsed() + wait >= request.timeout {
                    return answer;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(CONNECT_RETRY_MAX);
            }
        })
    }

    fn abort_grace(&self) -> Duration {
        self.transport.abort_grace()
    }

    fn lean(&self, lean: bool) {
        if self.lean.swap(lean, Ordering::SeqCst) != lean {
            self.transport.lean(lean);
        }
    }
}

/// Whether `error` is the process or the system out of file descriptors.
pub(super) fn is_shortage(error: &io::Error) -> bool {
    os_errno(error).is_some_and(|n| SHORTAGE_ERRNOS.contains(&n))
}

/// The soft limit on open files, where there is one.
#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } == 0;
    // `rlim_t` is not `u64` everywhere.
    #[allow(clippy::unnecessary_cast)]
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as u64)
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::mission_control::log::Recorder;

    #[test]
    fn a_shortage_is_logged_once_when_it_starts_and_once_when_it_ends() {
        let recorder = Arc::new(Recorder::default());
        let descriptors = Descriptors::new(recorder.clone(), 8);
        assert!(!descriptors.noted(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(!descriptors.short());
        for _ in 0..50 {
            assert!(descriptors.noted(&io::Error::from_raw_os_error(libc::EMFILE)));
        }
        assert!(
            !descriptors.note("Too many open files (os error 24)"),
            "cut once per 100 ms"
        );
        assert!(descriptors.short());
        assert_eq!(
            descriptors.allowed(),
            4,
            "halved once: the failures came together"
        );
        std::thread::sleep(QUIET + Duration::from_millis(50));
        assert!(!descriptors.short(), "not short once quiet");
        for _ in 0..3 {
            descriptors.landed();
        }
        assert_eq!(descriptors.allowed(), 4, "a round is 4 landed");
        descriptors.landed();
        assert_eq!(descriptors.allowed(), 5, "raised by one per round landed");
        {
            let mut owing = descriptors.owing();
            owing.count();
            assert!(descriptors.short(), "short while a write is owed");
            descriptors.landed();
            assert_eq!(descriptors.allowed(), 5);
        }
        assert!(!descriptors.short());
        std::thread::sleep(OVER);
        assert!(!descriptors.short(), "reported over");
        let lines = recorder.0.lock().expect("log").clone();
        let names: Vec<_> = lines.iter().map(|(msg, _)| msg.as_str()).collect();
        assert_eq!(
            names,
            [
                "queue-tailer:descriptors-exhausted",
                "queue-tailer:descriptors-recovered"
            ]
        );
        assert_eq!(lines[1].1["failures"], 51);
    }
}
