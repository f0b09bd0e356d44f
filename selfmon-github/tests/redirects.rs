//! Redirects (a renamed or transferred repository): followed on the configured API only, never
//! with the token to another host, never turning a POST into a GET, never read as "not found".

mod common;

use common::*;
use selfmon_core::redact::Redactor;
use selfmon_core::IssueTracker;
use selfmon_github::Error;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn redirect(status: u16, to: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).insert_header("location", to)
}

#[tokio::test]
async fn a_renamed_repository_is_followed_on_the_api_host_with_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .respond_with(redirect(
            301,
            &format!(
                "{}/repositories/42/issues?labels=selfmon&state=open&per_page=100",
                server.uri()
            ),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repositories/42/issues"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([issue_json(3, "open", "")])))
        .expect(1)
        .mount(&server)
        .await;
    let issues = tracker(&server).list_issues(None).await.unwrap();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].issue.number, 3);
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed_and_says_where_the_repository_went() {
    let server = MockServer::start().await;
    let other = MockServer::start().await;
    // The other host knows nothing: had the tracker followed, this 404 would read as "deleted".
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&other)
        .await;
    let moved_to = format!("{}/repos/acme/renamed/issues/5", other.uri());
    Mock::given(method("GET"))
        .and(path(format!("{ISSUES_PATH}/5")))
        .respond_with(redirect(301, &moved_to))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{ISSUES_PATH}/5/comments")))
        .respond_with(redirect(307, &format!("{moved_to}/comments")))
        .mount(&server)
        .await;

    let t = tracker(&server);
    let looked_up = t.get_issue(5).await.unwrap_err();
    let commented = t
        .comment(5, &Redactor::shared().redacted("again"))
        .await
        .unwrap_err();
    // One issue redirected away is no longer in the configured repository: gone from it (the
    // engine records its occurrences without a comment), saying where GitHub pointed.
    for e in [&looked_up, &commented] {
        assert!(!e.is_retryable(), "{e:?}");
        assert!(
            matches!(github_error(e), Error::IssueMoved { number: 5, location, .. } if location.starts_with(&other.uri())),
            "{e:?}"
        );
        assert!(matches!(e, selfmon_core::Error::NotFound { .. }), "{e:?}");
        let shown = e.to_string();
        assert!(shown.contains(&moved_to), "{shown}");
        assert!(shown.contains("transferred"), "{shown}");
    }
    // The repository itself redirected away is a configuration error, never "not found".
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .respond_with(redirect(
            301,
            &format!("{}/repos/acme/renamed/issues", other.uri()),
        ))
        .mount(&server)
        .await;
    let listed = t.list_issues(None).await.unwrap_err();
    assert!(
        matches!(github_error(&listed), Error::Moved { .. }),
        "{listed:?}"
    );
    assert!(
        !matches!(listed, selfmon_core::Error::NotFound { .. }),
        "{listed:?}"
    );
    assert!(listed.to_string().contains("`repository`"), "{listed}");
    let seen = other.received_requests().await.unwrap();
    assert!(
        seen.iter()
            .all(|r| r.headers.get("authorization").is_none()),
        "the other host was sent the token"
    );
    assert!(seen.is_empty(), "the other host was contacted: {seen:?}");
}

#[tokio::test]
async fn a_comment_answered_301_is_never_turned_into_a_get_but_a_307_is_repeated_as_sent() {
    let server = MockServer::start().await;
    // Both the old and the new address: a GET of the comments answers 200, so a POST turned
    // into a GET would look like a comment posted.
    Mock::given(method("POST"))
        .and(path(format!("{ISSUES_PATH}/5/comments")))
        .respond_with(redirect(
            301,
            &format!("{}/repositories/42/issues/5/comments", server.uri()),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{ISSUES_PATH}/6/comments")))
        .respond_with(redirect(
            307,
            &format!("{}/repositories/42/issues/6/comments", server.uri()),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repositories/42/issues/5/comments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repositories/42/issues/6/comments"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(json!({"body": "six"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .expect(1)
        .mount(&server)
        .await;

    let t = tracker(&server);
    let e = t
        .comment(5, &Redactor::shared().redacted("five"))
        .await
        .unwrap_err();
    // Not sent again as a GET: the issue is taken for transferred away (see IssueMoved).
    assert!(
        matches!(github_error(&e), Error::IssueMoved { number: 5, location, .. } if location.ends_with("/repositories/42/issues/5/comments")),
        "{e:?}"
    );
    t.comment(6, &Redactor::shared().redacted("six"))
        .await
        .unwrap();
    let gets = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .count();
    assert_eq!(gets, 0, "no POST became a GET");
}

#[tokio::test]
async fn a_redirect_loop_ends_after_a_few_hops_with_a_moved_error_not_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .respond_with(redirect(302, "/repositories/42/issues"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repositories/42/issues"))
        .respond_with(redirect(302, ISSUES_PATH))
        .mount(&server)
        .await;
    let e = tracker(&server).list_issues(None).await.unwrap_err();
    assert!(matches!(github_error(&e), Error::Moved { .. }), "{e:?}");
    assert!(!e.is_retryable());
    let sent = server.received_requests().await.unwrap().len();
    assert_eq!(
        sent, 4,
        "the first request and three redirects, nothing retried"
    );
}
