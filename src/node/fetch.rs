//! The caller's `fetchImpl` as a [`Transport`]. The JS adapter calls
//! `fetchImpl(url, {method, headers, body, signal})` and never rejects: it
//! resolves to `{status, text}`, or to `{error}` when the call threw, its
//! promise rejected or reading the answer failed (a transport failure).

use crate::mission_control::dispatch::http::MAX_RESPONSE_BYTES;
use crate::mission_control::dispatch::{PostFuture, PostRequest, PostResponse, Transport};
use napi::bindgen_prelude::{FnArgs, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use napi_derive::napi;
use serde_json::json;
use std::sync::Mutex;
use std::time::Duration;

/// What the JS adapter resolves to.
#[napi(object)]
pub struct FetchAnswer {
    /// `Number(response.status)`.
    pub status: f64,
    /// `String(await response.text())`.
    pub text: Option<String>,
    /// Set when the request failed: the error's message.
    pub error: Option<String>,
    /// Which call of the adapter this answers (the JS side keeps the raw answer under it).
    pub seq: Option<u32>,
}

/// `(url, initJson) => Promise<{status, text} | {error}>`.
pub type FetchFn = ThreadsafeFunction<
    FnArgs<(String, String)>,
    Promise<FetchAnswer>,
    FnArgs<(String, String)>,
    Status,
    false,
>;

/// A fetch that honours its signal rejects within this time of the abort;
/// its own `AbortError` is then the attempt's answer.
const ABORT_GRACE: Duration = Duration::from_millis(100);

pub struct JsFetch {
    tsfn: FetchFn,
    last_seq: Mutex<Option<u32>>,
}

impl JsFetch {
    pub fn new(tsfn: FetchFn) -> Self {
        JsFetch {
            tsfn,
            last_seq: Mutex::new(None),
        }
    }

    /// The `seq` of the last answer the adapter gave.
    pub fn last_seq(&self) -> Option<u32> {
        *self
            .last_seq
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn send(&self, request: PostRequest) -> Result<PostResponse, String> {
        let headers: serde_json::Map<_, _> = request
            .headers
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect();
        let init = crate::js_json::to_compact_string(
            &json!({"method": "POST", "headers": headers, "body": request.body}),
        );
        let call = async {
            let promise = self
                .tsfn
                .call_async_catch(FnArgs::from((request.url, init)))
                .await
                .map_err(|e| e.reason.clone())?;
            promise.await.map_err(|e| e.reason.clone())
        };
        let answer = match tokio::time::timeout(request.timeout, call).await {
            Ok(answer) => answer?,
            Err(_) => {
                return Err(format!(
                    "request timed out after {} ms",
                    request.timeout.as_millis()
                ))
            }
        };
        *self
            .last_seq
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = answer.seq;
        if let Some(error) = answer.error {
            return Err(error);
        }
        let text = answer.text.unwrap_or_default();
        if text.len() > MAX_RESPONSE_BYTES {
            return Err(format!("response body is over {MAX_RESPONSE_BYTES} bytes"));
        }
        Ok(PostResponse {
            status: status_class(answer.status),
            text,
        })
    }
}

/// The status as the retry loop classifies it. An integer is kept; a
/// fraction is floored (the class ranges have integer bounds, so it keeps
/// its class), except that it never becomes -1, the transport-failure mark
/// that only the status -1 itself stands for. NaN counts as 0: terminal.
fn status_class(status: f64) -> i64 {
    if status.is_nan() {
        return 0;
    }
    let floored = status.floor();
    if floored != status && floored == -1.0 {
        return -2;
    }
    floored as i64
}

impl Transport for JsFetch {
    fn post(&self, request: PostRequest) -> PostFuture<'_> {
        Box::pin(self.send(request))
    }

    fn abort_grace(&self) -> Duration {
        ABORT_GRACE
    }
}

#[cfg(test)]
mod tests {
    use super::status_class;

    #[test]
    fn statuses_keep_their_class() {
        assert_eq!(status_class(202.0), 202);
        assert_eq!(status_class(299.5), 299);
        assert_eq!(status_class(199.5), 199);
        assert_eq!(status_class(-1.0), -1);
        assert_eq!(status_class(-0.5), -2);
        assert_eq!(status_class(f64::NAN), 0);
        assert_eq!(status_class(f64::INFINITY), i64::MAX);
    }
}
