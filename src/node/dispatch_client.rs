//! `@aiwg/mc-native/dispatch-client` as JS sees it (see js/dispatch-client.js).

use super::cancel::Operation;
use super::fetch::{FetchFn, JsFetch};
use super::sink::{Sink, SinkFn};
use super::{parse_json, run_in_background};
use crate::mission_control::dispatch::{
    self, http::HttpTransport, policy, DispatchOptions, Transport,
};
use crate::mission_control::log::Logger;
use napi_derive::napi;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[napi(catch_unwind)]
pub fn classify_status(status: f64) -> &'static str {
    policy::classify_status(status).as_str()
}

#[napi(catch_unwind)]
pub fn reason_for_status(status: f64, fallback: String) -> String {
    policy::reason_for_status(status, &fallback)
}

/// The options the JS wrapper passes (already checked and defaulted).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DispatchOpts {
    pub aiwg_serve_url: String,
    pub retry_base_ms: f64,
    pub max_attempts: f64,
    pub request_timeout_ms: f64,
}

impl DispatchOpts {
    pub fn to_options(&self) -> DispatchOptions {
        DispatchOptions {
            aiwg_serve_url: self.aiwg_serve_url.clone(),
            retry_base_ms: self.retry_base_ms,
            max_attempts: clamp_u32(self.max_attempts),
            request_timeout: millis(self.request_timeout_ms),
        }
    }
}

pub(crate) fn clamp_u32(n: f64) -> u32 {
    if n.is_nan() || n <= 0.0 {
        0
    } else {
        n.min(f64::from(u32::MAX)) as u32
    }
}

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

/// Start a dispatch; the outcome arrives as `sink('done', outcomeJson)`
/// after every log line of the dispatch.
#[napi(catch_unwind)]
pub fn dispatch_mission(
    opts_json: String,
    session_id: String,
    payload_json: String,
    aborted: bool,
    has_logger: bool,
    #[napi(ts_arg_type = "(kind: string, a: string, b: string) => void")] sink: SinkFn,
    #[napi(
        ts_arg_type = "((url: string, init: string) => Promise<FetchAnswer>) | undefined | null"
    )]
    fetch: Option<FetchFn>,
) -> napi::Result<Operation> {
    let opts: DispatchOpts = parse_json("opts", &opts_json)?;
    let payload: Value = parse_json("payload", &payload_json)?;
    let transport = transport(fetch)?;
    let sink = Arc::new(Sink::new(sink, has_logger));
    let token = CancellationToken::new();
    if aborted {
        token.cancel();
    }
    let cancel = token.clone();
    run_in_background(Arc::clone(&sink), async move {
        let log: Logger = sink.clone();
        let outcome = dispatch::dispatch_mission(
            &opts.to_options(),
            &session_id,
            &payload,
            transport.as_ref(),
            &log,
            dispatch::Cancel::both(&cancel),
        )
        .await;
        sink.send("done", outcome.to_json().to_string(), String::new());
    });
    Ok(Operation::new(token))
}
