//! Executor stream URLs, and the same URL with its token hidden (§9.8).

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

/// The URL (or an error message that may hold one) as logs and `onState`
/// show it: every `token=` value replaced by `***`, as the JS
/// `s.replace(/token=[^&\s]*/g, 'token=***')` does.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("token=") {
        let start = at + "token=".len();
        out.push_str(&rest[..start]);
        out.push_str("***");
        let value = &rest[start..];
        let end = value
            .find(|c: char| c == '&' || is_js_space(c))
            .unwrap_or(value.len());
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// JS's `\s`: `WhiteSpace` and `LineTerminator` (not quite `char::is_whitespace`).
fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
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
    fn tokens_are_hidden() {
        assert_eq!(
            redact("ws://h/ws/executors/e?token=s3cr3t"),
            "ws://h/ws/executors/e?token=***"
        );
        assert_eq!(redact("ws://h/x?token=a&b=c"), "ws://h/x?token=***&b=c");
        assert_eq!(redact("ws://h/x"), "ws://h/x");
        assert_eq!(
            redact("open ws://h?token=a b token=c\td&token="),
            "open ws://h?token=*** b token=***\td&token=***"
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
