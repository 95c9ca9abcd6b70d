//! The dispatch client's rules, without I/O: how a status is classified,
//! which reason it gets, how long to wait, and what an answer body says.

use crate::js_json::truthy;
use crate::uri::encode_uri_component;
use serde_json::{Map, Value};

/// How one HTTP status is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Accepted,
    Retryable,
    Terminal,
}

impl Class {
    #[cfg(test)]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Class::Accepted => "accepted",
            Class::Retryable => "retryable",
            Class::Terminal => "terminal",
        }
    }
}

/// `classifyStatus`: 2xx accepted, 5xx retryable, anything else terminal.
pub(crate) fn classify_status(status: f64) -> Class {
    if (200.0..300.0).contains(&status) {
        Class::Accepted
    } else if (500.0..600.0).contains(&status) {
        Class::Retryable
    } else {
        Class::Terminal
    }
}

/// `reasonForStatus(status, fallback)`.
pub(crate) fn reason_for_status(status: f64, fallback: &str) -> String {
    let code = if status.fract() == 0.0 {
        status as i64
    } else {
        0
    };
    let reason = match code {
        400 => "invalid_request",
        401 | 403 => "unauthorized",
        404 => "executor_not_found",
        409 => "idempotency_conflict",
        422 => "idempotency_key_reused",
        503 => "no_executor_available",
        _ => fallback,
    };
    reason.to_owned()
}

/// An answer body: empty text is `{}`, text that is not JSON is `{error: text}`.
pub(crate) fn parse_body(text: &str) -> Value {
    if text.is_empty() {
        return Value::Object(Map::new());
    }
    crate::js_json::from_slice_lossy(text.as_bytes()).unwrap_or_else(|_| {
        let mut map = Map::new();
        map.insert("error".into(), Value::from(text));
        Value::Object(map)
    })
}

/// `body.detail || body.error || "HTTP <status>"`.
pub(crate) fn body_message(body: &Value, status: i64) -> Value {
    ["detail", "error"]
        .iter()
        .find_map(|k| body.get(k).filter(|v| truthy(v)).cloned())
        .unwrap_or_else(|| Value::from(format!("HTTP {status}")))
}

/// A message as a template literal shows it.
pub(crate) fn message_text(message: &Value) -> String {
    match message {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `Idempotency-Key: <session id>:<mission id>` (§9.4), with every byte a
/// header value cannot carry (and `%` and `:`) percent-encoded, so both transports
/// send the same key and fetch accepts it.
pub(crate) fn idempotency_key(session_id: &str, mission_id: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
    // `:` too, so that the two halves cannot run into each other.
    const UNSAFE: &AsciiSet = &CONTROLS.add(b'%').add(b':');
    format!(
        "{}:{}",
        utf8_percent_encode(session_id, UNSAFE),
        utf8_percent_encode(mission_id, UNSAFE)
    )
}

/// The headers of every dispatch POST: the JSON content type and the
/// idempotency key (§9.4).
pub(crate) fn request_headers(session_id: &str, mission_id: &str) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/json".into()),
        (
            "Idempotency-Key".into(),
            idempotency_key(session_id, mission_id),
        ),
    ]
}

/// `POST <serve url without trailing slashes>/api/v1/sessions/<id>/dispatch`.
pub(crate) fn dispatch_url(serve_url: &str, session_id: &str) -> String {
    format!(
        "{}/api/v1/sessions/{}/dispatch",
        serve_url.trim_end_matches('/'),
        encode_uri_component(session_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classes_and_reasons() {
        assert_eq!(classify_status(202.0), Class::Accepted);
        assert_eq!(classify_status(299.0), Class::Accepted);
        assert_eq!(classify_status(503.0), Class::Retryable);
        assert_eq!(classify_status(404.0), Class::Terminal);
        assert_eq!(classify_status(-1.0), Class::Terminal);
        for (status, reason) in [
            (400.0, "invalid_request"),
            (401.0, "unauthorized"),
            (403.0, "unauthorized"),
            (404.0, "executor_not_found"),
            (409.0, "idempotency_conflict"),
            (422.0, "idempotency_key_reused"),
            (503.0, "no_executor_available"),
            (418.0, "client_error"),
        ] {
            assert_eq!(
                reason_for_status(status, "client_error"),
                reason,
                "{status}"
            );
        }
        assert_eq!(reason_for_status(500.0, "dispatch_error"), "dispatch_error");
    }

    #[test]
    fn bodies_and_messages() {
        assert_eq!(parse_body(""), json!({}));
        assert_eq!(parse_body("<html>oops"), json!({"error": "<html>oops"}));
        assert_eq!(
            body_message(&parse_body(r#"{"detail":"d","error":"e"}"#), 400),
            "d"
        );
        assert_eq!(
            body_message(&parse_body(r#"{"detail":"","error":"e"}"#), 400),
            "e"
        );
        assert_eq!(body_message(&parse_body("[]"), 502), "HTTP 502");
        assert_eq!(body_message(&parse_body("null"), 500), "HTTP 500");
    }

    #[test]
    fn urls_encode_the_session_id() {
        assert_eq!(
            dispatch_url("http://h:1//", "a b/../c?d#é"),
            "http://h:1/api/v1/sessions/a%20b%2F..%2Fc%3Fd%23%C3%A9/dispatch"
        );
        assert_eq!(encode_uri_component("A-z_0.!~*'()"), "A-z_0.!~*'()");
    }

    #[test]
    fn idempotency_keys_are_header_safe() {
        assert_eq!(idempotency_key("mc-1/a b", "m-1"), "mc-1/a b:m-1");
        assert_eq!(
            idempotency_key("team😀", "m\n%"),
            "team%F0%9F%98%80:m%0A%25"
        );
        assert_ne!(idempotency_key("a:b", "c"), idempotency_key("a", "b:c"));
    }
}
