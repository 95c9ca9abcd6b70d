//! `@aiwg/mc-native/queue-tailer` as JS sees it (see js/queue-tailer.js).

use super::cancel::Operation;
use super::dispatch_client::{clamp_u32, millis, transport};
use super::fetch::FetchFn;
use super::sink::{Sink, SinkFn};
use super::{blocking, parse_json, run_in_background, to_json};
use crate::error::IoContext;
use crate::mission_control::log::Logger;
use crate::mission_control::session;
use crate::mission_control::tailer::{self, TailerConfig};
use napi_derive::napi;
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[napi]
pub async fn discover_sessions(root: String) -> napi::Result<Vec<String>> {
    let root = PathBuf::from(root);
    let paths =
        blocking(move || session::discover_sessions(&root).at("list sessions in", &root)).await?;
    Ok(paths
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect())
}

/// The session as JSON text, or null.
#[napi]
pub async fn read_session(path: String) -> napi::Result<Option<String>> {
    let path = PathBuf::from(path);
    let session = blocking(move || session::read_session(&path)).await?;
    session.map(|s| to_json(&s)).transpose()
}

/// Writes the session; resolves to the `updatedAt` it stamped.
#[napi]
pub async fn write_session_atomic(
    path: String,
    session_json: String,
) -> napi::Result<Option<String>> {
    let mut session: Value = parse_json("session", &session_json)?;
    let path = PathBuf::from(path);
    blocking(move || {
        session::write_session(&path, &mut session)?;
        Ok(session
            .get("updatedAt")
            .and_then(Value::as_str)
            .map(str::to_owned))
    })
    .await
}

#[napi(catch_unwind)]
pub fn build_dispatch_payload(
    mission_json: String,
    session_id_json: String,
) -> napi::Result<String> {
    let mission: Value = parse_json("mission", &mission_json)?;
    let session_id: Value = parse_json("sessionId", &session_id_json)?;
    to_json(&session::build_dispatch_payload(&mission, &session_id))
}

#[napi(catch_unwind)]
pub fn backoff_ms(attempt: f64, base_ms: f64) -> f64 {
    session::backoff_ms(attempt, base_ms)
}

/// The options the JS wrapper passes (merged with the defaults, checked).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TailerOpts {
    aiwg_serve_url: String,
    watch_dir: String,
    poll_interval_ms: f64,
    retry_base_ms: f64,
    max_attempts: f64,
    dry_run: bool,
    max_inflight: f64,
    request_timeout_ms: f64,
    polling: bool,
}

/// Start a tailer. The sink hears `log` lines, then `ready` once the
/// initial sweep is done, and `stopped` after `cancel()` has drained it
/// (or `error` if it could not start).
#[napi(catch_unwind)]
pub fn start_queue_tailer(
    opts_json: String,
    has_logger: bool,
    #[napi(ts_arg_type = "(kind: string, a: string, b: string) => void")] sink: SinkFn,
    #[napi(
        ts_arg_type = "((url: string, init: string) => Promise<FetchAnswer>) | undefined | null"
    )]
    fetch: Option<FetchFn>,
) -> napi::Result<Operation> {
    let opts: TailerOpts = parse_json("options", &opts_json)?;
    let config = TailerConfig {
        aiwg_serve_url: opts.aiwg_serve_url,
        watch_dir: PathBuf::from(opts.watch_dir),
        poll_interval: millis(opts.poll_interval_ms.max(10.0)),
        retry_base_ms: opts.retry_base_ms,
        max_attempts: clamp_u32(opts.max_attempts),
        dry_run: opts.dry_run,
        max_inflight: clamp_u32(opts.max_inflight).max(1) as usize,
        request_timeout: millis(opts.request_timeout_ms),
        polling: opts.polling,
    };
    let transport = transport(fetch)?;
    let sink = Arc::new(Sink::new(sink, has_logger));
    let stop = CancellationToken::new();
    let token = stop.clone();
    run_in_background(Arc::clone(&sink), async move {
        let log: Logger = sink.clone();
        let ready = Arc::clone(&sink);
        match tailer::run(config, transport, log, stop, move || {
            ready.send("ready", String::new(), String::new())
        })
        .await
        {
            Ok(_) => sink.send("stopped", String::new(), String::new()),
            Err(e) => sink.send("error", e.to_string(), String::new()),
        }
    });
    Ok(Operation::new(token))
}
