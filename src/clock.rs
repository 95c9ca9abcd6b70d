//! Wall-clock time as JavaScript sees it: `Date.now()` and `toISOString()`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as `Date.now()`.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

/// The current time as `new Date().toISOString()` prints it.
pub(crate) fn now_iso() -> String {
    iso(SystemTime::now())
}

/// `time` as `Date#toISOString()` prints it: `2026-11-21T01:16:00.123Z`.
pub(crate) fn iso(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_has_millisecond_precision_and_z() {
        let t = UNIX_EPOCH + Duration::from_millis(1_763_687_760_123);
        assert_eq!(iso(t), "2025-11-21T01:16:00.123Z");
        assert_eq!(iso(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
