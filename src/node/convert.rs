//! Small conversions the bindings share: JS numbers as counts and
//! durations, and the transport a call uses.

use super::fetch::{FetchFn, JsFetch};
use crate::mission_control::dispatch::{http::HttpTransport, Transport};
use std::sync::Arc;
use std::time::Duration;

/// A JS number as a count: NaN and negatives are 0, the rest saturate.
pub(crate) fn clamp_u32(n: f64) -> u32 {
    if n.is_nan() || n <= 0.0 {
        0
    } else {
        n.min(f64::from(u32::MAX)) as u32
    }
}

/// A JS number of milliseconds as a duration (negatives and NaN are zero).
pub(crate) fn millis(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).unwrap_or(Duration::MAX)
}

/// The transport for a call: the caller's fetchImpl, or the Rust client.
pub(crate) fn transport(fetch: Option<FetchFn>) -> napi::Result<Arc<dyn Transport>> {
    Ok(match fetch {
        Some(f) => Arc::new(JsFetch::new(f)),
        None => Arc::new(HttpTransport::shared().map_err(napi::Error::from_reason)?),
    })
}
