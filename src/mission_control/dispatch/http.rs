//! The Rust HTTP transport: reqwest over rustls, one connection pool per
//! client, a per-request timeout and a cap on the answer's size (§9.7).

use super::{PostFuture, PostRequest, PostResponse, Transport};
use std::error::Error as _;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

/// Answers larger than this are a transport failure, not a body to parse.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// POSTs with a shared reqwest client. Its clones share the client, and a
/// client put in its place by [`Transport::lean`].
#[derive(Clone)]
pub(crate) struct HttpTransport {
    client: Arc<RwLock<reqwest::Client>>,
}

/// A client with its own (empty) connection pool; `lean`, one that keeps
/// no idle connection.
fn build_client(lean: bool) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        .user_agent(concat!("aiwg-mc-native/", env!("CARGO_PKG_VERSION")))
        .tls_backend_preconfigured((*crate::tls::client_config()).clone());
    let builder = if lean {
        builder.pool_max_idle_per_host(0)
    } else {
        builder
    };
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", describe(&e)))
}

impl HttpTransport {
    pub(crate) fn new() -> Result<Self, String> {
        Ok(HttpTransport {
            client: Arc::new(RwLock::new(build_client(false)?)),
        })
    }

    fn client(&self) -> reqwest::Client {
        self.client
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// One client for the whole process, so standalone `dispatchMission`
    /// calls share connections too.
    pub(crate) fn shared() -> Result<Self, String> {
        static SHARED: OnceLock<Result<HttpTransport, String>> = OnceLock::new();
        SHARED.get_or_init(HttpTransport::new).clone()
    }

    async fn send(&self, request: PostRequest) -> Result<PostResponse, String> {
        let timeout = request.timeout;
        let url = fetchable_url(&request.url)?;
        let mut builder = self.client().post(url).timeout(timeout).body(request.body);
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
        // As `response.text()` decodes: UTF-8, invalid bytes replaced, a BOM dropped.
        let text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&body);
        Ok(PostResponse {
            status,
            text: String::from_utf8_lossy(text).into_owned(),
        })
    }
}

impl Transport for HttpTransport {
    fn post(&self, request: PostRequest) -> PostFuture<'_> {
        Box::pin(self.send(request))
    }

    fn lean(&self, lean: bool) {
        // The old client's pool, and its idle connections, go with the
        // last request still using it.
        if let Ok(fresh) = build_client(lean) {
            *self.client.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        }
    }
}

/// The URL as `fetch` would take it: one that does not parse, or whose
/// scheme is not http(s), fails the request the way fetch rejects it (a
/// transport failure for the retry loop, like any other).
fn fetchable_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| format!("Failed to parse URL from {url}"))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        scheme => Err(format!("fetch failed: unknown scheme {scheme}:")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_fetch_cannot_take_fail_as_fetch_fails() {
        assert_eq!(
            fetchable_url("nope/api").err().as_deref(),
            Some("Failed to parse URL from nope/api")
        );
        assert_eq!(
            fetchable_url("localhost:7337/api").err().as_deref(),
            Some("fetch failed: unknown scheme localhost:")
        );
        assert_eq!(
            fetchable_url("ftp://h/x").err().as_deref(),
            Some("fetch failed: unknown scheme ftp:")
        );
        assert!(fetchable_url("HTTP://h:1/x").is_ok());
    }
}
