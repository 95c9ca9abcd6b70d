//! The caller's `fetchImpl` as a [`Transport`]. The JS adapter calls
//! `fetchImpl(url, {method, headers, body, signal})` and resolves to
//! `{status, text}`; a rejection or a throw is a transport failure.

use crate::mission_control::dispatch::http::MAX_RESPONSE_BYTES;
use crate::mission_control::dispatch::{PostFuture, PostRequest, PostResponse, Transport};
use napi::bindgen_prelude::{FnArgs, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use napi_derive::napi;
use serde_json::json;

/// What the JS adapter resolves to.
#[napi(object)]
pub struct FetchAnswer {
    pub status: f64,
    pub text: String,
}

/// `(url, initJson) => Promise<{status, text}>`.
pub type FetchFn = ThreadsafeFunction<
    FnArgs<(String, String)>,
    Promise<FetchAnswer>,
    FnArgs<(String, String)>,
    Status,
    false,
>;

pub struct JsFetch {
    tsfn: FetchFn,
}

impl JsFetch {
    pub fn new(tsfn: FetchFn) -> Self {
        JsFetch { tsfn }
    }

    async fn send(&self, request: PostRequest) -> Result<PostResponse, String> {
        let headers: serde_json::Map<_, _> = request
            .headers
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect();
        let init = json!({"method": "POST", "headers": headers, "body": request.body}).to_string();
        let call = async {
            let promise = self
                .tsfn
                .call_async_catch(FnArgs::from((request.url, init)))
                .await
                .map_err(|e| e.reason.clone())?;
            promise.await.map_err(|e| e.reason.clone())
        };
        match tokio::time::timeout(request.timeout, call).await {
            Ok(Ok(answer)) if answer.text.len() > MAX_RESPONSE_BYTES => {
                Err(format!("response body is over {MAX_RESPONSE_BYTES} bytes"))
            }
            Ok(Ok(answer)) => Ok(PostResponse {
                status: answer.status as i64,
                text: answer.text,
            }),
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err(format!(
                "request timed out after {} ms",
                request.timeout.as_millis()
            )),
        }
    }
}

impl Transport for JsFetch {
    fn post(&self, request: PostRequest) -> PostFuture<'_> {
        Box::pin(self.send(request))
    }
}
