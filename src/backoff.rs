//! Waiting between attempts: the capped exponential backoff that dispatch
//! retries and deferred missions share, and a sleep that a stop cuts short.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `min(30000, baseMs * 2^(attempt-1))`.
pub(crate) fn backoff_ms(attempt: f64, base_ms: f64) -> f64 {
    let delay = base_ms * 2f64.powf(attempt - 1.0);
    // Math.min propagates NaN; f64::min would hide it.
    if delay.is_nan() {
        delay
    } else {
        delay.min(30_000.0)
    }
}

/// Wait `ms` milliseconds, or less if `cancel` fires. As with `setTimeout`,
/// NaN and anything under 1 ms wait 1 ms (so a zero backoff cannot spin);
/// unlike it, more than 2^31-1 ms waits that long, not 1 ms.
pub(crate) async fn sleep_ms(ms: f64, cancel: &CancellationToken) {
    let ms = if ms >= 1.0 { ms } else { 1.0 };
    let wait = Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX);
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = cancel.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(1.0, 500.0), 500.0);
        assert_eq!(backoff_ms(3.0, 500.0), 2000.0);
        assert_eq!(backoff_ms(20.0, 500.0), 30_000.0);
        assert!(backoff_ms(1.0, f64::NAN).is_nan());
    }
}
