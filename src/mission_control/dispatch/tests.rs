use super::*;
use crate::mission_control::log::Recorder;
use crate::mission_control::testing::Scripted;
use std::sync::Arc;

fn opts(max_attempts: u32) -> DispatchOptions {
    DispatchOptions {
        aiwg_serve_url: "http://serve/".into(),
        retry_base_ms: 1.0,
        max_attempts,
        ..DispatchOptions::default()
    }
}

/// What one dispatch of [`run`] did.
struct Ran {
    outcome: Outcome,
    log: Arc<Recorder>,
    /// The requests the transport was handed.
    seen: Vec<PostRequest>,
    /// Each attempt's number and status (-1: a transport failure), as the loop reported them.
    answered: Vec<(u32, i64)>,
}

/// The fixture: mission `m-1` for session `s/1` over a scripted transport,
/// built as `dispatch_mission` builds it and run through the retry loop
/// itself, so that `max_attempts` counts as JS compares it (a fraction,
/// NaN or an infinity as it is).
async fn run(script: Vec<Result<(i64, &str), &str>>, max_attempts: impl Into<f64>) -> Ran {
    let transport = Scripted::new(script);
    let recorder = Arc::new(Recorder::default());
    let log: Logger = recorder.clone();
    let answered = std::sync::Mutex::new(Vec::new());
    let on_answer = |attempt: u32, answer: &Result<PostResponse, String>| {
        let status = answer.as_ref().map_or(-1, |r| r.status);
        answered.lock().expect("answered").push((attempt, status));
    };
    let payload = json!({"mission_id": "m-1", "objective": "x"});
    let dispatch = Dispatch {
        max_attempts: max_attempts.into(),
        on_answer: Some(&on_answer),
        ..Dispatch::new(&opts(0), "s/1", &payload)
    };
    let outcome = super::run(
        dispatch,
        &transport,
        &log,
        Cancel::both(&CancellationToken::new()),
    )
    .await;
    let seen = transport.seen.lock().expect("seen").clone();
    let answered = answered.into_inner().expect("answered");
    Ran {
        outcome,
        log: recorder,
        seen,
        answered,
    }
}

#[tokio::test]
async fn accepted_on_the_first_answer() {
    let Ran {
        outcome, log, seen, ..
    } = run(
        vec![Ok((
            202,
            r#"{"executor_id":"ex-1","estimated_start":"soon"}"#,
        ))],
        5,
    )
    .await;
    assert_eq!(
        outcome.to_json(),
        json!({"outcome": "accepted", "missionId": "m-1", "executorId": "ex-1", "estimatedStart": "soon", "dispatchPath": null, "idempotentReplayed": false, "attempts": 1})
    );
    assert_eq!(log.messages(), ["dispatch-client:accepted"]);
    assert_eq!(seen[0].url, "http://serve/api/v1/sessions/s%2F1/dispatch");
    assert!(seen[0]
        .headers
        .contains(&("Idempotency-Key".into(), "s/1:m-1".into())));
    assert_eq!(seen[0].body, r#"{"mission_id":"m-1","objective":"x"}"#);
}

#[tokio::test]
async fn accepted_without_executor_is_unknown() {
    let Ran { outcome, .. } = run(vec![Ok((202, ""))], 5).await;
    assert_eq!(outcome.to_json()["executorId"], "unknown");
}

#[tokio::test]
async fn terminal_answers_do_not_retry() {
    let Ran {
        outcome, log, seen, ..
    } = run(vec![Ok((400, r#"{"error":"Invalid JSON body"}"#))], 5).await;
    assert_eq!(
        outcome.to_json(),
        json!({"outcome": "failed", "missionId": "m-1", "reason": "invalid_request", "message": "Invalid JSON body", "status": 400, "attempts": 1})
    );
    assert_eq!(seen.len(), 1);
    assert_eq!(log.messages(), ["dispatch-client:terminal"]);
}

#[tokio::test]
async fn server_errors_retry_then_succeed() {
    let Ran { outcome, log, .. } = run(
        vec![
            Ok((500, "")),
            Ok((502, "bad gateway")),
            Ok((202, r#"{"executor_id":"e"}"#)),
        ],
        5,
    )
    .await;
    assert_eq!(outcome.attempts(), 3);
    assert_eq!(
        log.messages(),
        [
            "dispatch-client:retrying",
            "dispatch-client:retrying",
            "dispatch-client:accepted"
        ]
    );
    let lines = log.lines();
    assert_eq!(
        lines[1].1,
        json!({"missionId": "m-1", "attempt": 2, "status": 502, "delay": 2.0})
    );
}

#[tokio::test]
async fn exhausted_transport_failures_are_unreachable() {
    let Ran { outcome, log, .. } = run(
        vec![Err("connection refused"), Err("connection refused")],
        2,
    )
    .await;
    assert_eq!(
        outcome.to_json(),
        json!({"outcome": "failed", "missionId": "m-1", "reason": "unreachable",
               "message": "dispatch exhausted 2 attempts: network: connection refused", "status": -1, "attempts": 2})
    );
    assert_eq!(
        log.messages(),
        [
            "dispatch-client:network-error",
            "dispatch-client:retrying",
            "dispatch-client:network-error",
            "dispatch-client:exhausted"
        ]
    );
}

#[tokio::test]
async fn exhausted_server_errors_keep_their_reason() {
    let Ran { outcome, .. } = run(
        vec![
            Ok((503, r#"{"error":"no_executor_available"}"#)),
            Ok((500, "{}")),
        ],
        2,
    )
    .await;
    let json = outcome.to_json();
    assert_eq!(json["reason"], "dispatch_error");
    assert_eq!(json["message"], "dispatch exhausted 2 attempts: HTTP 500");
    let Ran { outcome, .. } = run(
        vec![Ok((500, "")), Ok((503, r#"{"detail":"none free"}"#))],
        2,
    )
    .await;
    assert_eq!(outcome.to_json()["reason"], "no_executor_available");
}

#[tokio::test]
async fn an_aborted_dispatch_stops_at_the_next_attempt() {
    let transport = Scripted::new(vec![]);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let log = crate::mission_control::log::silent();
    let payload = json!({"mission_id": "m-1"});
    let outcome = dispatch_mission(
        &opts(5),
        "s",
        &payload,
        &transport,
        &log,
        Cancel::both(&cancel),
    )
    .await;
    assert_eq!(
        outcome.to_json(),
        json!({"outcome": "failed", "missionId": "m-1", "reason": "aborted", "message": "dispatch aborted before completion", "status": -1, "attempts": 0})
    );
    assert!(transport.seen.lock().expect("seen").is_empty());
}

#[tokio::test]
async fn real_http_connection_refused_is_a_transport_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let transport = http::HttpTransport::new().expect("client");
    let log = crate::mission_control::log::silent();
    let opts = DispatchOptions {
        aiwg_serve_url: format!("http://127.0.0.1:{port}"),
        retry_base_ms: 1.0,
        max_attempts: 2,
        ..Default::default()
    };
    let outcome = dispatch_mission(
        &opts,
        "s",
        &json!({"mission_id": "m"}),
        &transport,
        &log,
        Cancel::both(&CancellationToken::new()),
    )
    .await;
    let json = outcome.to_json();
    assert_eq!(json["reason"], "unreachable");
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.contains("network: ")),
        "{json}"
    );
}

#[tokio::test]
async fn no_attempt_at_all_is_exhausted_with_status_minus_one() {
    let Ran {
        outcome, log, seen, ..
    } = run(vec![Ok((202, "{}"))], 0).await;
    assert_eq!(
        outcome.to_json(),
        json!({"outcome": "failed", "missionId": "m-1", "reason": "unreachable",
               "message": "dispatch exhausted 0 attempts: no attempt made", "status": -1, "attempts": 0})
    );
    assert_eq!(outcome.ending(), "exhausted");
    assert!(seen.is_empty());
    assert_eq!(log.messages(), ["dispatch-client:exhausted"]);
}

/// The loop as JS compares: `attempt <= maxAttempts`, and a wait after
/// every retryable attempt with `attempt < maxAttempts`.
async fn run_limit(max_attempts: f64, answers: usize) -> (Outcome, Vec<String>, usize) {
    let ran = run(vec![Ok((503, "")); answers], max_attempts).await;
    assert!(ran
        .answered
        .iter()
        .enumerate()
        .all(|(i, &(attempt, status))| attempt as usize == i + 1 && status == 503));
    (ran.outcome, ran.log.messages(), ran.answered.len())
}

#[tokio::test]
async fn fractions_nan_and_infinity_count_as_js_compares() {
    let (outcome, messages, posts) = run_limit(2.5, 5).await;
    assert_eq!(posts, 2);
    assert_eq!(outcome.ending(), "exhausted");
    // 2 < 2.5: the second attempt waits too, then the loop ends.
    assert_eq!(
        messages,
        [
            "dispatch-client:retrying",
            "dispatch-client:retrying",
            "dispatch-client:exhausted"
        ]
    );
    let (outcome, _, posts) = run_limit(f64::NAN, 5).await;
    assert_eq!((posts, outcome.attempts()), (0, 0));
    let (outcome, _, posts) = run_limit(-3.0, 5).await;
    assert_eq!((posts, outcome.ending()), (0, "exhausted"));
    // Infinity keeps trying: here until the script runs out (a transport
    // failure) and then a terminal answer arrives.
    let Ran { outcome, .. } = run(
        vec![Ok((503, "")), Ok((503, "")), Ok((404, ""))],
        f64::INFINITY,
    )
    .await;
    assert_eq!((outcome.ending(), outcome.attempts()), ("terminal", 3));
}

/// A transport that answers only after a cut-off, within its grace.
struct LateAnswer {
    grace: Duration,
}

impl Transport for LateAnswer {
    fn post(&self, _request: PostRequest) -> PostFuture<'_> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Err("its own abort error".to_owned())
        })
    }

    fn abort_grace(&self) -> Duration {
        self.grace
    }
}

#[tokio::test]
async fn a_cut_off_request_may_settle_within_its_grace() {
    for (grace, expected) in [
        (Duration::from_secs(2), "network: its own abort error"),
        (Duration::ZERO, "network: This operation was aborted"),
    ] {
        let cancel = CancellationToken::new();
        let canceller = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            canceller.cancel();
        });
        let recorder = Arc::new(Recorder::default());
        let log: Logger = recorder.clone();
        let outcome = dispatch_mission(
            &opts(1),
            "s",
            &json!({"mission_id": "m"}),
            &LateAnswer { grace },
            &log,
            Cancel::both(&cancel),
        )
        .await;
        assert_eq!(
            outcome.to_json()["message"],
            format!("dispatch exhausted 1 attempts: {expected}")
        );
    }
}
