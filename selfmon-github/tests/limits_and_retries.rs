//! Rate limits, GET retries and the spacing of mutating requests.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::*;
use selfmon_core::clock::FakeClock;
use selfmon_core::redact::Redactor;
use selfmon_core::IssueTracker;
use selfmon_github::Error;
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The tracker's "now" in these tests: a fake clock, so a reset "in two hours" is exactly that.
fn fixed_now() -> chrono::DateTime<Utc> {
    chrono::TimeZone::timestamp_opt(&Utc, 1_790_000_000, 0).unwrap()
}

fn clocked(server: &MockServer) -> selfmon_github::GitHubTracker {
    tracker(server).with_clock(Arc::new(FakeClock::new(fixed_now())))
}

fn primary_limited(reset_in_secs: i64) -> ResponseTemplate {
    let reset = fixed_now().timestamp() + reset_in_secs;
    ResponseTemplate::new(403)
        .insert_header("x-ratelimit-limit", "5000")
        .insert_header("x-ratelimit-remaining", "0")
        .insert_header("x-ratelimit-reset", reset.to_string().as_str())
        .set_body_json(json!({"message": "API rate limit exceeded for user ID 1."}))
}

fn ok_list() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!([issue_json(1, "open", "")]))
}

/// Records when each request arrived, then answers with `template`.
#[derive(Clone)]
struct Stamped {
    at: Arc<Mutex<Vec<Instant>>>,
    template: ResponseTemplate,
}

impl Respond for Stamped {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.at.lock().unwrap().push(Instant::now());
        self.template.clone()
    }
}

#[tokio::test]
async fn primary_limit_resetting_in_two_seconds_is_waited_out() {
    let server = MockServer::start().await;
    let at = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .respond_with(Stamped {
            at: at.clone(),
            template: primary_limited(2),
        })
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .respond_with(Stamped {
            at: at.clone(),
            template: ok_list(),
        })
        .expect(1)
        .mount(&server)
        .await;
    let issues = clocked(&server).list_issues(None).await.unwrap();
    assert_eq!(issues.len(), 1);
    let at = at.lock().unwrap();
    // By the tracker's clock the reset is exactly 2 s ahead: it waits that long before retrying.
    assert!(
        at[1] - at[0] >= Duration::from_secs(2),
        "{:?}",
        at[1] - at[0]
    );
}

#[tokio::test]
async fn primary_limit_resetting_in_two_hours_is_a_typed_error_without_waiting() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(primary_limited(2 * 60 * 60))
        .expect(1)
        .mount(&server)
        .await;
    let e = clocked(&server).list_issues(None).await.unwrap_err();
    assert!(e.is_retryable());
    match github_error(&e) {
        Error::RateLimited {
            reset_at,
            max_wait_secs,
        } => {
            assert_eq!(*max_wait_secs, 300);
            assert_eq!(*reset_at - fixed_now(), chrono::Duration::hours(2));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_429_primary_limit_is_treated_like_a_403_one() {
    let server = MockServer::start().await;
    let reset = (Utc::now().timestamp() + 7200).to_string();
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = tracker(&server).list_issues(None).await.unwrap_err();
    assert!(matches!(github_error(&e), Error::RateLimited { .. }));
}

#[tokio::test]
async fn secondary_limit_with_retry_after_is_waited_out_even_for_a_create() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/repos/acme/server/labels/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "x"})))
        .mount(&server)
        .await;
    let at = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path(ISSUES_PATH))
        .respond_with(Stamped {
            at: at.clone(),
            template: ResponseTemplate::new(403)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"message": "You have exceeded a secondary rate limit and have been temporarily blocked from content creation."})),
        })
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(ISSUES_PATH))
        .respond_with(Stamped {
            at: at.clone(),
            template: ResponseTemplate::new(201).set_body_json(issue_json(9, "open", "")),
        })
        .expect(1)
        .mount(&server)
        .await;
    // The rejected create was not processed by GitHub, so sending it again cannot file twice.
    assert_eq!(
        tracker(&server)
            .create_issue(&draft("0a"))
            .await
            .unwrap()
            .number,
        9
    );
    let at = at.lock().unwrap();
    assert!(
        at[1] - at[0] >= Duration::from_millis(950),
        "{:?}",
        at[1] - at[0]
    );
}

#[tokio::test]
async fn secondary_limit_without_retry_after_asks_for_a_minute_and_fails_past_the_maximum() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_json(
            json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.max_rate_limit_wait_secs = 10;
    let t0 = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 1, 12, 0, 0).unwrap();
    let clock = std::sync::Arc::new(selfmon_core::testing::FakeClock::new(t0));
    let e = tracker_with(cfg)
        .with_clock(clock)
        .list_issues(None)
        .await
        .unwrap_err();
    assert!(e.is_retryable());
    assert!(matches!(
        github_error(&e),
        Error::SecondaryRateLimited {
            retry_after_secs: 60,
            max_wait_secs: 10,
            ..
        }
    ));
    // The engine sees a rate limit that ends a minute after GitHub answered, by the tracker's
    // clock (not the system's).
    assert!(
        matches!(
            e,
            selfmon_core::Error::RateLimited { reset_at: Some(at), .. }
                if at == t0 + chrono::Duration::seconds(60)
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_500_on_list_is_retried_and_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"message": "boom"})))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .respond_with(ok_list())
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(tracker(&server).list_issues(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_list_that_keeps_failing_gives_up_after_the_configured_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    let e = tracker(&server).list_issues(None).await.unwrap_err();
    assert!(e.is_retryable());
    assert!(matches!(
        github_error(&e),
        Error::Server { status: 503, .. }
    ));
}

#[tokio::test]
async fn a_timed_out_list_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok_list().set_delay(Duration::from_secs(3)))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok_list())
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.request_timeout_secs = 1;
    assert_eq!(tracker_with(cfg).list_issues(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_timed_out_create_is_not_resent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "x"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(issue_json(1, "open", ""))
                .set_delay(Duration::from_secs(3)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.request_timeout_secs = 1;
    let e = tracker_with(cfg)
        .create_issue(&draft("0b"))
        .await
        .unwrap_err();
    assert!(e.is_retryable());
    assert!(matches!(github_error(&e), Error::Timeout { .. }));
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains(TOKEN),
        "the token never appears in an error: {shown}"
    );
}

#[tokio::test]
async fn reopen_is_idempotent_so_a_5xx_on_it_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/repos/acme/server/issues/12"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/acme/server/issues/12"))
        .and(wiremock::matchers::body_json(
            json!({"state": "open", "state_reason": "reopened"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(issue_json(12, "open", "")))
        .expect(1)
        .mount(&server)
        .await;
    tracker(&server).reopen(12).await.unwrap();
}

#[tokio::test]
async fn a_5xx_on_comment_is_not_resent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/server/issues/12/comments"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    let e = tracker(&server)
        .comment(12, &Redactor::shared().redacted("seen again"))
        .await
        .unwrap_err();
    assert!(e.is_retryable());
}

async fn comment_gaps(spacing_ms: Option<u64>, comments: usize) -> Vec<Duration> {
    let server = MockServer::start().await;
    let at = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .respond_with(Stamped {
            at: at.clone(),
            template: ResponseTemplate::new(201).set_body_json(json!({"id": 1})),
        })
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    match spacing_ms {
        Some(ms) => cfg.mutation_spacing_ms = ms,
        None => {
            cfg.mutation_spacing_ms = selfmon_github::GitHubConfig::default().mutation_spacing_ms
        }
    }
    let t = Arc::new(tracker_with(cfg));
    // Sent concurrently: the tracker must still put them one at a time, spaced.
    let tasks: Vec<_> = (0..comments)
        .map(|i| {
            let t = t.clone();
            tokio::spawn(async move {
                t.comment(12, &Redactor::shared().redacted(&format!("comment {i}")))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let mut at = at.lock().unwrap().clone();
    at.sort();
    at.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test]
async fn mutating_requests_are_spaced_by_the_configured_interval() {
    let gaps = comment_gaps(Some(200), 4).await;
    assert_eq!(gaps.len(), 3);
    for g in gaps {
        // The spacing runs from the end of one request to the start of the next, so arrivals
        // are at least that far apart whatever the load; no upper bound is asserted.
        assert!(g >= Duration::from_millis(200), "{g:?}");
    }
}

#[tokio::test]
async fn by_default_mutating_requests_are_at_least_a_second_apart() {
    let gaps = comment_gaps(None, 2).await;
    assert!(gaps[0] >= Duration::from_secs(1), "{:?}", gaps[0]);
}
