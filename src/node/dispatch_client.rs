//! `@aiwg/mc-native/dispatch-client` as JS sees it (see js/dispatch-client.js).
//!
//! The retry loop, its timing and the HTTP client are here; the JS side
//! reads the options, builds the URL and the body, and builds the outcome
//! and the log lines from the answers this side reports, with the caller's
//! own values (`classifyStatus` and friends are plain JS there).

use super::cancel::Operation;
use super::convert::millis;
use super::fetch::{FetchFn, JsFetch};
use super::run_in_background;
use super::sink::{Sink, SinkEvent, SinkFn};
use crate::mission_control::dispatch::{self, http::HttpTransport, policy, Transport};
use crate::mission_control::log::Logger;
use napi_derive::napi;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The request as the JS side made it.
#[napi(object)]
pub struct DispatchRequest {
    /// `<serve url>/api/v1/sessions/<encoded id>/dispatch`.
    pub url: String,
    /// `String(mcSessionId)` and `String(payload.mission_id)`, for the Idempotency-Key (§9.4).
    pub session_key: String,
    pub mission_key: String,
    /// `JSON.stringify(payload)`.
    pub body: String,
    /// The options as JS numbers (`Number(opts.maxAttempts ?? 5)`, …).
    pub max_attempts: f64,
    pub retry_base_ms: f64,
    pub request_timeout_ms: f64,
}

/// How a dispatch ended, as `done` reports it.
#[napi(string_enum = "lowercase")]
pub enum DispatchEnd {
    Accepted,
    Terminal,
    Exhausted,
    Aborted,
}

/// What a dispatch tells JS, in order: an `answer` per attempt, the log
/// lines (when there is a logger), and `done` (or `error`) last.
#[napi(discriminant = "kind")]
pub enum DispatchEvent {
    /// One attempt's answer: serve's status and body text (`ok`), or the
    /// transport's error message (`status` -1). `seq` is the injected
    /// fetchImpl's call number, when there is one.
    Answer {
        ok: bool,
        status: i64,
        text: String,
        seq: Option<u32>,
    },
    Log {
        msg: String,
        meta: String,
    },
    Done {
        end: DispatchEnd,
        attempts: u32,
    },
    Error {
        message: String,
    },
}

impl SinkEvent for DispatchEvent {
    fn log(msg: &str, meta: String) -> Self {
        DispatchEvent::Log {
            msg: msg.to_owned(),
            meta,
        }
    }

    fn internal_error(message: String) -> Self {
        DispatchEvent::Error { message }
    }
}

/// Start a dispatch; the sink hears its [`DispatchEvent`]s.
#[napi(catch_unwind)]
pub fn dispatch_mission(
    request: DispatchRequest,
    aborted: bool,
    has_logger: bool,
    #[napi(ts_arg_type = "(event: DispatchEvent) => void")] sink: SinkFn<DispatchEvent>,
    #[napi(
        ts_arg_type = "((url: string, init: string) => Promise<FetchAnswer>) | undefined | null"
    )]
    fetch: Option<FetchFn>,
) -> napi::Result<Operation> {
    let js_fetch = fetch.map(|f| Arc::new(JsFetch::new(f)));
    let transport: Arc<dyn Transport> = match &js_fetch {
        Some(f) => Arc::clone(f) as Arc<dyn Transport>,
        None => Arc::new(HttpTransport::shared().map_err(napi::Error::from_reason)?),
    };
    let sink = Arc::new(Sink::new(sink, has_logger));
    let token = CancellationToken::new();
    if aborted {
        token.cancel();
    }
    let cancel = token.clone();
    let post = dispatch::PostRequest {
        url: request.url,
        headers: policy::request_headers(&request.session_key, &request.mission_key),
        body: request.body,
        timeout: millis(request.request_timeout_ms),
    };
    let (max_attempts, retry_base_ms) = (request.max_attempts, request.retry_base_ms);
    run_in_background(Arc::clone(&sink), async move {
        let log: Logger = sink.clone();
        let reporter = Arc::clone(&sink);
        let on_answer = move |_attempt: u32, answer: &Result<dispatch::PostResponse, String>| {
            let seq = js_fetch.as_ref().and_then(|f| f.last_seq());
            reporter.emit(match answer {
                Ok(r) => DispatchEvent::Answer {
                    ok: true,
                    status: r.status,
                    text: r.text.clone(),
                    seq,
                },
                Err(e) => DispatchEvent::Answer {
                    ok: false,
                    status: -1,
                    text: e.clone(),
                    seq,
                },
            });
        };
        let outcome = dispatch::run(
            dispatch::Dispatch {
                request: post,
                mission_id: serde_json::Value::Null,
                max_attempts,
                retry_base_ms,
                on_answer: Some(&on_answer),
            },
            transport.as_ref(),
            &log,
            dispatch::Cancel::both(&cancel),
        )
        .await;
        let end = match &outcome {
            dispatch::Outcome::Accepted { .. } => DispatchEnd::Accepted,
            dispatch::Outcome::Failed { ending, .. } => match ending {
                dispatch::Ending::Terminal => DispatchEnd::Terminal,
                dispatch::Ending::Exhausted => DispatchEnd::Exhausted,
                dispatch::Ending::Aborted => DispatchEnd::Aborted,
            },
        };
        sink.emit(DispatchEvent::Done {
            end,
            attempts: outcome.attempts(),
        });
    });
    Ok(Operation::new(token))
}
