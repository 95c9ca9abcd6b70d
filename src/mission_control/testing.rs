//! Test support: a transport that answers from a script.

use super::dispatch::{PostFuture, PostRequest, PostResponse, Transport};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// Answers from a script (then a default answer), and remembers what it was asked.
pub(crate) struct Scripted {
    pub answers: Mutex<VecDeque<Result<PostResponse, String>>>,
    pub otherwise: Option<PostResponse>,
    pub delay: Duration,
    pub seen: Mutex<Vec<PostRequest>>,
}

impl Scripted {
    pub(crate) fn new(answers: Vec<Result<(i64, &str), &str>>) -> Self {
        Scripted {
            answers: Mutex::new(
                answers
                    .into_iter()
                    .map(|a| {
                        a.map(|(status, text)| PostResponse {
                            status,
                            text: text.into(),
                        })
                        .map_err(str::to_owned)
                    })
                    .collect(),
            ),
            otherwise: None,
            delay: Duration::ZERO,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Always answer `status` with `text`, after `delay`.
    pub(crate) fn always(status: i64, text: &str, delay: Duration) -> Self {
        Scripted {
            otherwise: Some(PostResponse {
                status,
                text: text.into(),
            }),
            delay,
            ..Scripted::new(vec![])
        }
    }

    pub(crate) fn seen(&self) -> Vec<PostRequest> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Transport for Scripted {
    fn post(&self, request: PostRequest) -> PostFuture<'_> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(request);
        let answer = self
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front();
        let answer = answer.or_else(|| self.otherwise.clone().map(Ok));
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            answer.unwrap_or_else(|| Err("script ran out".into()))
        })
    }
}
