//! Listing selfmon's issues: labels, pages, pull requests, recently closed issues.

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use selfmon_core::{CloseReason, IssueState, IssueTracker};
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn page(server: &MockServer, n: u32, items: serde_json::Value, last: bool) -> ResponseTemplate {
    let mut t = ResponseTemplate::new(200).set_body_json(items);
    if !last {
        // GitHub's links point at /repositories/ID/issues, absolute, on the API host.
        t = t.insert_header(
            "link",
            format!(
                "<{u}/repositories/42/issues?labels=selfmon&state=open&per_page=100&page={next}>; rel=\"next\", <{u}/repositories/42/issues?labels=selfmon&state=open&per_page=100&page=3>; rel=\"last\"",
                u = server.uri(),
                next = n + 1
            ),
        );
    }
    t
}

#[tokio::test]
async fn listing_follows_three_pages_and_leaves_out_pull_requests() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .and(query_param("labels", "selfmon"))
        .and(query_param("state", "open"))
        .and(query_param("per_page", "100"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
        .respond_with(page(
            &server,
            1,
            json!([
                issue_json(1, "open", "<!-- selfmon:fingerprint=aa -->"),
                pull_json(2),
                issue_json(3, "open", "")
            ]),
            false,
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repositories/42/issues"))
        .and(query_param("page", "2"))
        .respond_with(page(
            &server,
            2,
            json!([pull_json(4), issue_json(5, "open", "")]),
            false,
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repositories/42/issues"))
        .and(query_param("page", "3"))
        .respond_with(page(
            &server,
            3,
            json!([issue_json(6, "open", ""), pull_json(7)]),
            true,
        ))
        .expect(1)
        .mount(&server)
        .await;

    let issues = tracker(&server).list_issues(None).await.unwrap();
    let numbers: Vec<u64> = issues.iter().map(|i| i.issue.number).collect();
    assert_eq!(numbers, vec![1, 3, 5, 6]);
    assert_eq!(issues[0].marker, Some(marker("aa")));
    assert_eq!(issues[0].labels, vec!["selfmon", "bug"]);
    assert_eq!(issues[0].issue.state, IssueState::Open);
    assert_eq!(
        issues[0].issue.url,
        "https://github.com/acme/server/issues/1"
    );

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        let ua = r.headers.get("user-agent").unwrap().to_str().unwrap();
        assert!(ua.starts_with("selfmon/"), "{ua}");
        assert_eq!(
            r.headers.get("authorization").unwrap(),
            format!("Bearer {TOKEN}").as_str()
        );
    }
}

#[tokio::test]
async fn recently_closed_issues_are_listed_with_their_closing_time() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .and(query_param("state", "open"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([issue_json(1, "open", "")])))
        .mount(&server)
        .await;
    let mut closed_old = issue_json(8, "closed", "");
    // Closed before the window but updated inside it: `since` returns it, the tracker drops it.
    closed_old["closed_at"] = json!("2026-10-01T00:00:00Z");
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .and(query_param("state", "closed"))
        .and(query_param("labels", "selfmon"))
        .and(query_param("since", "2026-11-01T00:00:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            issue_json(7, "closed", ""),
            closed_old,
            pull_json(9)
        ])))
        .expect(1)
        .mount(&server)
        .await;

    let since = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let issues = tracker(&server).list_issues(Some(since)).await.unwrap();
    let numbers: Vec<u64> = issues.iter().map(|i| i.issue.number).collect();
    assert_eq!(numbers, vec![1, 7]);
    assert_eq!(issues[1].issue.state, IssueState::Closed);
    assert_eq!(
        issues[1].closed_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap())
    );
}

#[tokio::test]
async fn without_a_window_closed_issues_are_not_fetched() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("state", "closed"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("state", "open"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    assert!(tracker(&server).list_issues(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_pagination_link_to_another_host_is_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([issue_json(1, "open", "")]))
                .insert_header("link", "<https://evil.example/steal?page=2>; rel=\"next\""),
        )
        .mount(&server)
        .await;
    let e = tracker(&server).list_issues(None).await.unwrap_err();
    assert!(matches!(
        github_error(&e),
        selfmon_github::Error::ForeignLink { url, .. } if url.contains("evil.example")
    ));
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_listing_longer_than_the_page_cap_is_an_error_not_a_partial_list() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .respond_with(page(&server, 1, json!([issue_json(1, "open", "")]), false))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repositories/42/issues"))
        .respond_with(page(&server, 2, json!([issue_json(2, "open", "")]), false))
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.max_list_pages = 2;
    let e = tracker_with(cfg).list_issues(None).await.unwrap_err();
    assert!(matches!(
        github_error(&e),
        selfmon_github::Error::TooManyPages { max_pages: 2, .. }
    ));
}

#[tokio::test]
async fn malformed_json_is_an_invalid_response_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>not json"))
        .mount(&server)
        .await;
    let e = tracker(&server).list_issues(None).await.unwrap_err();
    assert!(matches!(
        github_error(&e),
        selfmon_github::Error::InvalidResponse { .. }
    ));
}

#[tokio::test]
async fn the_token_is_read_from_the_named_environment_variable_and_never_shown() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer from-the-env-1234"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.token_env = "SELFMON_GITHUB_LISTING_TEST_TOKEN".into();
    // A name no other test uses, so setting it cannot race with another test's read.
    std::env::set_var("SELFMON_GITHUB_LISTING_TEST_TOKEN", "from-the-env-1234");
    let t = selfmon_github::GitHubTracker::new(cfg).unwrap();
    t.list_issues(None).await.unwrap();
    let shown = format!("{t:?} {t}");
    assert!(!shown.contains("from-the-env-1234"), "{shown}");
    assert!(
        shown.contains("SELFMON_GITHUB_LISTING_TEST_TOKEN"),
        "{shown}"
    );
}

#[tokio::test]
async fn an_issue_is_looked_up_by_number_whatever_its_labels() {
    let server = MockServer::start().await;
    let mut unlabelled = issue_json(7, "closed", "<!-- selfmon:fingerprint=aa -->");
    unlabelled["labels"] = json!([]);
    Mock::given(method("GET"))
        .and(path(format!("{ISSUES_PATH}/7")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(unlabelled))
        .expect(1)
        .mount(&server)
        .await;
    let got = tracker(&server).get_issue(7).await.unwrap().unwrap();
    assert_eq!(got.issue.number, 7);
    assert_eq!(got.issue.state, IssueState::Closed);
    assert_eq!(got.marker, Some(marker("aa")));
    assert!(got.labels.is_empty());
}

#[tokio::test]
async fn a_deleted_or_missing_issue_looked_up_by_number_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{ISSUES_PATH}/7")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ISSUES_PATH}/8")))
        .respond_with(
            ResponseTemplate::new(410).set_body_json(json!({"message": "This issue was deleted"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ISSUES_PATH}/9")))
        .respond_with(ResponseTemplate::new(200).set_body_json(pull_json(9)))
        .mount(&server)
        .await;
    let t = tracker(&server);
    for n in [7, 8, 9] {
        let e = t.get_issue(n).await.unwrap_err();
        assert!(
            matches!(e, selfmon_core::Error::NotFound { .. }),
            "#{n}: {e:?}"
        );
        assert!(!e.is_retryable());
    }
}

/// Review5 G1: GitHub's `state_reason` tells a person's "not planned" or "duplicate" closure from
/// a fix; an open issue's `reopened` and an older server's missing reason are no closing reason.
#[tokio::test]
async fn a_closed_issue_is_listed_and_looked_up_with_its_closing_reason() {
    let server = MockServer::start().await;
    let mut reopened = issue_json(1, "open", "");
    reopened["state_reason"] = json!("reopened");
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .and(query_param("state", "open"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([reopened])))
        .mount(&server)
        .await;
    let closed = |n: u64, reason: Option<&str>| {
        let mut i = issue_json(n, "closed", "");
        if let Some(r) = reason {
            i["state_reason"] = json!(r);
        }
        i
    };
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .and(query_param("state", "closed"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            closed(2, Some("not_planned")),
            closed(3, Some("duplicate")),
            closed(4, Some("completed")),
            closed(5, None),
            closed(6, Some("something_new")),
        ])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{ISSUES_PATH}/2")))
        .respond_with(ResponseTemplate::new(200).set_body_json(closed(2, Some("not_planned"))))
        .mount(&server)
        .await;
    let t = tracker(&server);
    let since = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let reasons: Vec<(u64, Option<CloseReason>)> = t
        .list_issues(Some(since))
        .await
        .unwrap()
        .iter()
        .map(|i| (i.issue.number, i.close_reason))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (1, None),
            (2, Some(CloseReason::NotPlanned)),
            (3, Some(CloseReason::Duplicate)),
            (4, Some(CloseReason::Completed)),
            (5, None),
            (6, None),
        ]
    );
    let looked_up = t.get_issue(2).await.unwrap().unwrap();
    assert_eq!(looked_up.close_reason, Some(CloseReason::NotPlanned));
}
