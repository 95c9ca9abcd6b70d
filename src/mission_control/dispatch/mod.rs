//! The dispatch client: POST a mission to `aiwg serve`, retrying transport
//! failures and 5xx answers with capped exponential backoff.
//!
//! The retry loop here is the only one; what carries the request is a
//! [`Transport`]: the Rust HTTP client ([`http::HttpTransport`]) or the
//! caller's `fetchImpl` (wired in by the napi layer).

pub mod http;
pub mod policy;

use super::log::Logger;
use super::session::backoff_ms;
use policy::{body_message, classify_status, message_text, parse_body, reason_for_status, Class};
use serde_json::{json, Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The message of a request cut short by cancellation, as fetch words it.
pub const ABORTED: &str = "This operation was aborted";

/// One POST as the transport sees it.
#[derive(Debug, Clone)]
pub struct PostRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub timeout: Duration,
}

/// An answer: status and body text.
#[derive(Debug, Clone)]
pub struct PostResponse {
    pub status: i64,
    pub text: String,
}

/// The answer a transport promises: `Err` is a transport failure, with its message.
pub type PostFuture<'a> = Pin<Box<dyn Future<Output = Result<PostResponse, String>> + Send + 'a>>;

/// What carries a POST.
pub trait Transport: Send + Sync {
    fn post(&self, request: PostRequest) -> PostFuture<'_>;
}

/// `dispatchMission`'s options.
#[derive(Debug, Clone)]
pub struct DispatchOptions {
    pub aiwg_serve_url: String,
    pub retry_base_ms: f64,
    pub max_attempts: u32,
    /// Per request (§9.7); running out counts as a transport failure.
    pub request_timeout: Duration,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            aiwg_serve_url: "http://127.0.0.1:7337".into(),
            retry_base_ms: 500.0,
            max_attempts: 5,
            request_timeout: Duration::from_millis(30_000),
        }
    }
}

/// How a dispatch ended. Serialises to the original's outcome objects.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Accepted {
        mission_id: Value,
        executor_id: Value,
        estimated_start: Option<Value>,
        dispatch_path: Option<Value>,
        idempotent_replayed: bool,
        attempts: u32,
    },
    Failed {
        mission_id: Value,
        reason: String,
        message: Value,
        status: i64,
        attempts: u32,
    },
}

impl Outcome {
    pub fn to_json(&self) -> Value {
        match self {
            Outcome::Accepted {
                mission_id,
                executor_id,
                estimated_start,
                dispatch_path,
                idempotent_replayed,
                attempts,
            } => {
                let mut map = Map::new();
                map.insert("outcome".into(), "accepted".into());
                map.insert("missionId".into(), mission_id.clone());
                map.insert("executorId".into(), executor_id.clone());
                if let Some(v) = estimated_start {
                    map.insert("estimatedStart".into(), v.clone());
                }
                if let Some(v) = dispatch_path {
                    map.insert("dispatchPath".into(), v.clone());
                }
                map.insert(
                    "idempotentReplayed".into(),
                    Value::Bool(*idempotent_replayed),
                );
                map.insert("attempts".into(), (*attempts).into());
                Value::Object(map)
            }
            Outcome::Failed {
                mission_id,
                reason,
                message,
                status,
                attempts,
            } => json!({
                "outcome": "failed",
                "missionId": mission_id,
                "reason": reason,
                "message": message,
                "status": status,
                "attempts": attempts,
            }),
        }
    }

    pub fn attempts(&self) -> u32 {
        match self {
            Outcome::Accepted { attempts, .. } | Outcome::Failed { attempts, .. } => *attempts,
        }
    }
}

/// When a dispatch gives up: `attempts` ends the backoff wait and stops
/// further attempts; `request` also cuts off a request in flight. A caller's
/// AbortSignal is both; a stopping tailer first lets requests finish.
pub struct Cancel<'a> {
    pub attempts: &'a CancellationToken,
    pub request: &'a CancellationToken,
}

impl<'a> Cancel<'a> {
    /// One token for both.
    pub fn both(token: &'a CancellationToken) -> Self {
        Cancel {
            attempts: token,
            request: token,
        }
    }
}

/// `dispatchMission(opts, mcSessionId, payload, signal)`.
pub async fn dispatch_mission(
    opts: &DispatchOptions,
    session_id: &str,
    payload: &Value,
    transport: &dyn Transport,
    log: &Logger,
    cancel: Cancel<'_>,
) -> Outcome {
    let mission_id = payload.get("mission_id").cloned().unwrap_or(Value::Null);
    let request = PostRequest {
        url: policy::dispatch_url(&opts.aiwg_serve_url, session_id),
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            (
                "Idempotency-Key".into(),
                policy::idempotency_key(session_id, &message_text(&mission_id)),
            ),
        ],
        body: payload.to_string(),
        timeout: opts.request_timeout,
    };
    let mut last_status: i64 = 0;
    let mut last_message = Value::from("");
    for attempt in 1..=opts.max_attempts {
        if cancel.attempts.is_cancelled() {
            return Outcome::Failed {
                mission_id,
                reason: "aborted".into(),
                message: "dispatch aborted before completion".into(),
                status: last_status,
                attempts: attempt - 1,
            };
        }
        let answer = tokio::select! {
            answer = transport.post(request.clone()) => answer,
            () = cancel.request.cancelled() => Err(ABORTED.to_owned()),
        };
        let (status, body) = match answer {
            Ok(response) => (response.status, parse_body(&response.text)),
            Err(error) => {
                log.log(
                    "dispatch-client:network-error",
                    json!({"missionId": mission_id, "attempt": attempt, "error": error}),
                );
                (-1, json!({ "error": format!("network: {error}") }))
            }
        };
        last_status = status;
        last_message = body_message(&body, status);
        let class = if status == -1 {
            Class::Retryable
        } else {
            classify_status(status as f64)
        };
        match class {
            Class::Accepted => {
                let executor_id = body
                    .get("executor_id")
                    .filter(|v| crate::js_json::truthy(v))
                    .cloned()
                    .unwrap_or_else(|| "unknown".into());
                log.log(
                    "dispatch-client:accepted",
                    json!({"missionId": mission_id, "attempts": attempt, "executorId": executor_id}),
                );
                return Outcome::Accepted {
                    mission_id,
                    executor_id,
                    estimated_start: body.get("estimated_start").cloned(),
                    dispatch_path: body.get("dispatch_path").cloned(),
                    idempotent_replayed: body
                        .get("idempotent_replayed")
                        .is_some_and(crate::js_json::truthy),
                    attempts: attempt,
                };
            }
            Class::Terminal => {
                let reason = reason_for_status(status as f64, "client_error");
                log.log(
                    "dispatch-client:terminal",
                    json!({"missionId": mission_id, "status": status, "reason": reason, "message": last_message}),
                );
                return Outcome::Failed {
                    mission_id,
                    reason,
                    message: last_message,
                    status,
                    attempts: attempt,
                };
            }
            Class::Retryable if attempt < opts.max_attempts => {
                let delay = backoff_ms(f64::from(attempt), opts.retry_base_ms);
                log.log(
                    "dispatch-client:retrying",
                    json!({"missionId": mission_id, "attempt": attempt, "status": status, "delay": delay}),
                );
                sleep_ms(delay, cancel.attempts).await;
            }
            Class::Retryable => {}
        }
    }
    let attempts = opts.max_attempts;
    log.log(
        "dispatch-client:exhausted",
        json!({"missionId": mission_id, "attempts": attempts, "lastStatus": last_status}),
    );
    let reason = if last_status == -1 {
        "unreachable".to_owned()
    } else {
        reason_for_status(last_status as f64, "dispatch_error")
    };
    Outcome::Failed {
        mission_id,
        reason,
        message: Value::from(format!(
            "dispatch exhausted {attempts} attempts: {}",
            message_text(&last_message)
        )),
        status: last_status,
        attempts,
    }
}

/// Wait `ms` milliseconds, or less if `cancel` fires.
pub async fn sleep_ms(ms: f64, cancel: &CancellationToken) {
    let wait = Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).unwrap_or(Duration::MAX);
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = cancel.cancelled() => {}
    }
}

#[cfg(test)]
mod tests;
