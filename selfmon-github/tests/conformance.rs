//! The core conformance suite and find-by-marker, against a stateful fake GitHub.

mod common;

use common::fake_github::{FakeGitHub, FakeIssue};
use common::*;
use selfmon_core::redact::Redactor;
use selfmon_core::{IssueState, IssueTracker};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn github_tracker_passes_the_issue_tracker_conformance_suite() {
    let (server, fake) = FakeGitHub::start().await;
    let t = tracker(&server);
    selfmon_core::conformance::issue_tracker(&t).await;

    let issues = fake.issues();
    assert_eq!(issues.len(), 2);
    for i in &issues {
        assert_eq!(
            i.labels,
            vec!["selfmon", "bug"],
            "the selfmon label was created and applied"
        );
    }
    assert_eq!(issues[0].comments, vec!["a comment"]);
    // The fake pages 2 items at a time: the listing had to follow links, and the labelled pull
    // request #1 never appeared in it.
    assert!(
        fake.log().iter().any(|l| l.contains("page=2")),
        "{:#?}",
        fake.log()
    );
    let searches: Vec<String> = fake
        .log()
        .into_iter()
        .filter(|l| l.starts_with("GET /search"))
        .collect();
    assert!(
        searches.iter().all(|l| l.contains("cc03")),
        "issues created moments ago are found by listing; only the absent marker is searched: {searches:?}"
    );
}

#[tokio::test]
async fn an_issue_that_lost_its_label_is_found_through_search() {
    let (server, fake) = FakeGitHub::start().await;
    {
        let mut s = fake.state.lock().unwrap();
        s.issues.push(FakeIssue {
            number: 2,
            title: "[BUG] old".into(),
            body: format!("text\n{}", marker("cafe01").as_str()),
            labels: vec![],
            open: false,
            closed_at: Some(chrono::Utc::now()),
            state_reason: None,
            updated_at: chrono::Utc::now(),
            pull_request: false,
            comments: vec![],
            indexed: true,
            locked: false,
            lock_hidden: false,
        });
    }
    let found = tracker(&server)
        .find_by_marker(&marker("cafe01"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.number, 2);
    assert_eq!(found.state, IssueState::Closed);
    let search = fake
        .log()
        .into_iter()
        .find(|l| l.starts_with("GET /search/issues"))
        .unwrap();
    let decoded = search.replace('+', " ");
    assert!(decoded.contains("is%3Aissue"), "{search}");
    assert!(decoded.contains("repo%3Aacme%2Fserver"), "{search}");
}

#[tokio::test]
async fn an_unknown_marker_is_none_after_listing_and_search() {
    let (server, fake) = FakeGitHub::start().await;
    let now = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 2, 0, 0, 0).unwrap();
    let clock = std::sync::Arc::new(selfmon_core::clock::FakeClock::new(now));
    assert_eq!(
        tracker(&server)
            .with_clock(clock)
            .find_by_marker(&marker("0ff"))
            .await
            .unwrap(),
        None
    );
    let log = fake.log();
    assert!(log[0].starts_with("GET /repos/acme/server/issues?labels=selfmon&state=open"));
    // Closed issues updated in the last 24 hours by the tracker's clock.
    assert_eq!(
        log[1],
        "GET /repos/acme/server/issues?labels=selfmon&state=closed&per_page=100&since=2026-11-01T00%3A00%3A00Z"
    );
    assert!(log[2].starts_with("GET /search/issues"));
    assert_eq!(log.len(), 3);
}

#[tokio::test]
async fn an_issue_closed_right_after_filing_is_found_before_search_catches_up() {
    let (server, fake) = FakeGitHub::start().await;
    let t = tracker(&server);
    let r = t.create_issue(&draft("d00d")).await.unwrap();
    t.list_issues(None).await.unwrap();
    {
        let mut s = fake.state.lock().unwrap();
        let i = s.issues.iter_mut().find(|i| i.number == r.number).unwrap();
        i.open = false;
        i.closed_at = Some(chrono::Utc::now());
        i.updated_at = chrono::Utc::now();
        assert!(!i.indexed, "not searchable yet");
    }
    let found = t.find_by_marker(&marker("d00d")).await.unwrap().unwrap();
    assert_eq!(found.number, r.number);
    assert_eq!(found.state, IssueState::Closed);
    assert!(!fake.log().iter().any(|l| l.starts_with("GET /search")));
}

#[tokio::test]
async fn a_search_hit_without_the_exact_marker_is_not_taken_for_the_issue() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/search/issues"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 2,
            "items": [
                issue_json(3, "open", "mentions beef42 in passing"),
                pull_json(4),
            ]
        })))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        tracker(&server)
            .find_by_marker(&marker("beef42"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn reopen_and_comment_on_a_missing_issue_are_not_found_errors() {
    let (server, _fake) = FakeGitHub::start().await;
    let t = tracker(&server);
    for e in [
        t.reopen(77).await.unwrap_err(),
        t.comment(77, &Redactor::shared().redacted("x"))
            .await
            .unwrap_err(),
    ] {
        assert!(!e.is_retryable());
        assert!(matches!(
            github_error(&e),
            selfmon_github::Error::NotFound { what, .. } if what == "issue #77"
        ));
    }
}

#[tokio::test]
async fn reopen_opens_a_closed_issue() {
    let (server, fake) = FakeGitHub::start().await;
    let t = tracker(&server);
    let r = t.create_issue(&draft("0c")).await.unwrap();
    {
        let mut s = fake.state.lock().unwrap();
        let i = s.issues.iter_mut().find(|i| i.number == r.number).unwrap();
        i.open = false;
        i.closed_at = Some(chrono::Utc::now());
    }
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let listed = t.list_issues(Some(since)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].issue.state, IssueState::Closed);
    t.reopen(r.number).await.unwrap();
    assert!(
        fake.issues()
            .iter()
            .find(|i| i.number == r.number)
            .unwrap()
            .open
    );
}
