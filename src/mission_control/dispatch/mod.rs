//! The dispatch client: POST a mission to `aiwg serve`, retrying transport
//! failures and 5xx answers with capped exponential backoff.
//!
//! The retry loop here is the only one; what carries the request is a
//! [`Transport`]: the Rust HTTP client ([`http::HttpTransport`]) or the
//! caller's `fetchImpl` (wired in by the napi layer).

pub(crate) mod http;
pub(crate) mod policy;

use super::log::Logger;
use crate::backoff::{backoff_ms, sleep_ms};
use policy::{body_message, classify_status, message_text, parse_body, reason_for_status, Class};
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The message of a request cut short by cancellation, as fetch words it.
pub(crate) const ABORTED: &str = "This operation was aborted";

/// One POST as the transport sees it.
#[derive(Debug, Clone)]
pub(crate) struct PostRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub timeout: Duration,
}

/// An answer: status and body text.
#[derive(Debug, Clone)]
pub(crate) struct PostResponse {
    pub status: i64,
    pub text: String,
}

/// The answer a transport promises: `Err` is a transport failure, with its message.
pub(crate) type PostFuture<'a> =
    Pin<Box<dyn Future<Output = Result<PostResponse, String>> + Send + 'a>>;

/// What carries a POST.
pub(crate) trait Transport: Send + Sync {
    fn post(&self, request: PostRequest) -> PostFuture<'_>;

    /// How long a request may still settle by itself once it is cut off.
    fn abort_grace(&self) -> Duration {
        Duration::ZERO
    }

    /// Keep no idle connection (`true`: the process is out of file
    /// descriptors, and an idle one holds what a write needs), or keep them
    /// alive again. Requests under way finish on theirs.
    fn lean(&self, _lean: bool) {}
}

/// `dispatchMission`'s options.
#[derive(Debug, Clone)]
pub(crate) struct DispatchOptions {
    pub aiwg_serve_url: String,
    pub retry_base_ms: f64,
    pub max_attempts: u32,
    /// Per request (§9.7); running out counts as a transport failure.
    pub request_timeout: Duration,
}

/// The defaults of SPEC §3, written only here: the JS files read them
/// through the binding's `defaults()` when they load, so a caller that
/// leaves an option out gets the same value on either side.
impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            aiwg_serve_url: "http://127.0.0.1:7337".into(),
            retry_base_ms: 500.0,
            max_attempts: 5,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// How a failed dispatch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// A terminal answer (no retry).
    Terminal,
    /// Every attempt was made (or none could be: `maxAttempts` 0).
    Exhausted,
    /// The signal was aborted at the top of an attempt.
    Aborted,
}

impl Ending {
    #[cfg(test)]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Ending::Terminal => "terminal",
            Ending::Exhausted => "exhausted",
            Ending::Aborted => "aborted",
        }
    }
}

/// How a dispatch ended. Serialises to the original's outcome objects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
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
        ending: Ending,
    },
}

impl Outcome {
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Outcome::Accepted {
                mission_id,
                executor_id,
                estimated_start,
                dispatch_path,
                idempotent_replayed,
                attempts,
            } => json!({
                "outcome": "accepted",
                "missionId": mission_id,
                "executorId": executor_id,
                "estimatedStart": estimated_start.clone().unwrap_or(Value::Null),
                "dispatchPath": dispatch_path.clone().unwrap_or(Value::Null),
                "idempotentReplayed": idempotent_replayed,
                "attempts": attempts,
            }),
            Outcome::Failed {
                mission_id,
                reason,
                message,
                status,
                attempts,
                ..
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

    pub(crate) fn attempts(&self) -> u32 {
        match self {
            Outcome::Accepted { attempts, .. } | Outcome::Failed { attempts, .. } => *attempts,
        }
    }

    /// `accepted`, or how the failure ended.
    #[cfg(test)]
    pub(crate) fn ending(&self) -> &'static str {
        match self {
            Outcome::Accepted { .. } => "accepted",
            Outcome::Failed { ending, .. } => ending.as_str(),
        }
    }
}

/// When a dispatch gives up: `attempts` ends the backoff wait and stops
/// further attempts; `request` also cuts off a request in flight. A caller's
/// `AbortSignal` is both; a stopping tailer first lets requests finish.
pub(crate) struct Cancel<'a> {
    pub attempts: &'a CancellationToken,
    pub request: &'a CancellationToken,
}

impl<'a> Cancel<'a> {
    /// One token for both.
    pub(crate) fn both(token: &'a CancellationToken) -> Self {
        Cancel {
            attempts: token,
            request: token,
        }
    }
}

/// Called with each attempt's answer as the loop sees it (after a cut-off
/// request: the abort), before anything is logged about that attempt.
pub(crate) type OnAnswer<'a> = &'a (dyn Fn(u32, &Result<PostResponse, String>) + Send + Sync);

/// One dispatch as the loop runs it.
pub(crate) struct Dispatch<'a> {
    pub request: PostRequest,
    pub mission_id: Value,
    /// `attempt <= maxAttempts` decides each attempt, as JS compares: a
    /// fraction or an infinity counts as it is, NaN makes no attempt.
    pub max_attempts: f64,
    pub retry_base_ms: f64,
    pub on_answer: Option<OnAnswer<'a>>,
}

impl Dispatch<'_> {
    /// `payload` for session `session_id` as `opts` say: the URL, the
    /// headers (with the Idempotency-Key of §9.4) and the body.
    pub(crate) fn new(opts: &DispatchOptions, session_id: &str, payload: &Value) -> Self {
        let mission_id = payload.get("mission_id").cloned().unwrap_or(Value::Null);
        let request = PostRequest {
            url: policy::dispatch_url(&opts.aiwg_serve_url, session_id),
            headers: policy::request_headers(session_id, &message_text(&mission_id)),
            body: crate::js_json::to_compact_string(payload),
            timeout: opts.request_timeout,
        };
        Dispatch {
            request,
            mission_id,
            max_attempts: f64::from(opts.max_attempts),
            retry_base_ms: opts.retry_base_ms,
            on_answer: None,
        }
    }
}

/// `dispatchMission(opts, mcSessionId, payload, signal)`.
pub(crate) async fn dispatch_mission(
    opts: &DispatchOptions,
    session_id: &str,
    payload: &Value,
    transport: &dyn Transport,
    log: &Logger,
    cancel: Cancel<'_>,
) -> Outcome {
    run(
        Dispatch::new(opts, session_id, payload),
        transport,
        log,
        cancel,
    )
    .await
}

/// The message the exhausted outcome quotes when no attempt was made.
pub(crate) const NO_ATTEMPT: &str = "no attempt made";

/// The retry loop of SPEC §3.
pub(crate) async fn run(
    dispatch: Dispatch<'_>,
    transport: &dyn Transport,
    log: &Logger,
    cancel: Cancel<'_>,
) -> Outcome {
    let Dispatch {
        request,
        mission_id,
        max_attempts,
        retry_base_ms,
        on_answer,
    } = dispatch;
    // Before any attempt: status -1, and the message says so.
    let mut last_status: i64 = -1;
    let mut last_message = Value::from(NO_ATTEMPT);
    let mut attempt: u32 = 1;
    while f64::from(attempt) <= max_attempts {
        if cancel.attempts.is_cancelled() {
            return Outcome::Failed {
                mission_id,
                reason: "aborted".into(),
                message: "dispatch aborted before completion".into(),
                status: last_status,
                attempts: attempt - 1,
                ending: Ending::Aborted,
            };
        }
        let answer = post(transport, &request, cancel.request).await;
        if let Some(on_answer) = on_answer {
            on_answer(attempt, &answer);
        }
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
                    ending: Ending::Terminal,
                };
            }
            Class::Retryable if f64::from(attempt) < max_attempts => {
                let delay = backoff_ms(f64::from(attempt), retry_base_ms);
                log.log(
                    "dispatch-client:retrying",
                    json!({"missionId": mission_id, "attempt": attempt, "status": status, "delay": delay}),
                );
                sleep_ms(delay, cancel.attempts).await;
            }
            Class::Retryable => {}
        }
        if attempt == u32::MAX {
            break;
        }
        attempt += 1;
    }
    let attempts = attempt - 1;
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
        ending: Ending::Exhausted,
    }
}

/// One POST. When `cancel` fires first, the transport gets
/// [`Transport::abort_grace`] to settle on its own (a fetch that honours its
/// signal rejects with its own `AbortError`); after that it is cut off.
async fn post(
    transport: &dyn Transport,
    request: &PostRequest,
    cancel: &CancellationToken,
) -> Result<PostResponse, String> {
    let answer = transport.post(request.clone());
    tokio::pin!(answer);
    tokio::select! {
        answer = &mut answer => answer,
        () = cancel.cancelled() => {
            match tokio::time::timeout(transport.abort_grace(), &mut answer).await {
                Ok(answer) => answer,
                Err(_) => Err(ABORTED.to_owned()),
            }
        }
    }
}

#[cfg(test)]
mod tests;
