//! Executor stream URLs (their tokens are hidden in logs by [`crate::redact`], §9.8).

use crate::uri::encode_uri_component;

/// `buildWsUrl`: `http`→`ws`, `https`→`wss`, trailing slashes dropped,
/// `/ws/executors/<id>`, and `?token=<token>` when there is one.
pub(crate) fn build_ws_url(serve_url: &str, executor_id: &str, token: Option<&str>) -> String {
    let base = if let Some(rest) = serve_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = serve_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        serve_url.to_owned()
    };
    let mut url = format!(
        "{}/ws/executors/{}",
        base.trim_end_matches('/'),
        encode_uri_component(executor_id)
    );
    if let Some(token) = token {
        url.push_str("?token=");
        url.push_str(&encode_uri_component(token));
    }
    url
}

/// `reconnectDelay(attempt, baseMs, maxMs)` = `min(maxMs, baseMs * 2^max(0, attempt-1))`.
pub(crate) fn reconnect_delay(attempt: f64, base_ms: f64, max_ms: f64) -> f64 {
    let delay = base_ms * 2f64.powf((attempt - 1.0).max(0.0));
    if delay.is_nan() || max_ms.is_nan() {
        f64::NAN
    } else {
        delay.min(max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_spec_example() {
        assert_eq!(
            build_ws_url("http://h", "exec/with slash", Some("a+b/c")),
            "ws://h/ws/executors/exec%2Fwith%20slash?token=a%2Bb%2Fc"
        );
        assert_eq!(
            build_ws_url("https://h:1//", "e", None),
            "wss://h:1/ws/executors/e"
        );
    }

    #[test]
    fn reconnect_delays_double_and_cap() {
        assert_eq!(reconnect_delay(0.0, 1000.0, 30000.0), 1000.0);
        assert_eq!(reconnect_delay(1.0, 1000.0, 30000.0), 1000.0);
        assert_eq!(reconnect_delay(3.0, 1000.0, 30000.0), 4000.0);
        assert_eq!(reconnect_delay(10.0, 1000.0, 30000.0), 30000.0);
    }
}
