//! The Rust HTTP transport: reqwest over rustls, one connection pool per
//! client, a per-request timeout and a cap on the answer's size (§9.7).

use super::{PostFuture, PostRequest, PostResponse, Transport};
use std::error::Error as _;
use std::sync::OnceLock;

/// Answers larger than this are a transport failure, not a body to parse.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// POSTs with a shared reqwest client.
#[derive(Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    pub fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("aiwg-mc-native/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", describe(&e)))?;
        Ok(HttpTransport { client })
    }

    /// One client for the whole process, so standalone `dispatchMission`
    /// calls share connections too.
    pub fn shared() -> Result<Self, String> {
        static SHARED: OnceLock<Result<HttpTransport, String>> = OnceLock::new();
        SHARED.get_or_init(HttpTransport::new).clone()
    }

    async fn send(&self, request: PostRequest) -> Result<PostResponse, String> {
        let timeout = request.timeout;
        let mut builder = self
            .client
            .post(&request.url)
            .timeout(timeout)
            .body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let mut response = builder.send().await.map_err(|e| failure(&e, timeout))?;
        let status = i64::from(response.status().as_u16());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failure(&e, timeout))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(format!("response body is over {MAX_RESPONSE_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(PostResponse {
            status,
            text: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

impl Transport for HttpTransport {
    fn post(&self, request: PostRequest) -> PostFuture<'_> {
        Box::pin(self.send(request))
    }
}

fn failure(e: &reqwest::Error, timeout: std::time::Duration) -> String {
    if e.is_timeout() {
        return format!("request timed out after {} ms", timeout.as_millis());
    }
    describe(e)
}

/// reqwest's own words plus the root cause ("connection refused", …), without the URL.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" ({url})"), "");
    }
    let mut source = e.source();
    let mut root = None;
    while let Some(s) = source {
        root = Some(s.to_string());
        source = s.source();
    }
    match root {
        Some(root) if !text.contains(&root) => format!("{text}: {root}"),
        _ => text,
    }
}
