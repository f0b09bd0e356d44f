//! Creating issues: payload, labels, the size limit, Enterprise URLs, and error statuses.

mod common;

use common::*;
use selfmon_core::redact::Redactor;
use selfmon_core::{Classification, IssueState, IssueTracker};
use selfmon_github::{Error, MAX_BODY_CHARS};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn labels_exist(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path_regex(r"^/repos/acme/server/labels/[^/]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "x"})))
        .mount(server)
        .await;
}

fn created(number: u64) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(issue_json(number, "open", "body"))
}

#[tokio::test]
async fn create_sends_title_body_and_labels_and_returns_number_and_url() {
    let server = MockServer::start().await;
    labels_exist(&server).await;
    let mut d = draft("abc123");
    d.labels = vec!["triage".into(), "bug".into()];
    Mock::given(method("POST"))
        .and(path(ISSUES_PATH))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(body_json(json!({
            "title": "[BUG] Crash in sync",
            "body": d.body,
            "labels": ["selfmon", "bug", "triage"],
        })))
        .respond_with(created(17))
        .expect(1)
        .mount(&server)
        .await;

    let r = tracker(&server).create_issue(&d).await.unwrap();
    assert_eq!(r.number, 17);
    assert_eq!(r.url, "https://github.com/acme/server/issues/17");
    assert_eq!(r.state, IssueState::Open);
}

#[tokio::test]
async fn a_missing_label_is_created_once_then_used() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/server/labels/selfmon"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "selfmon"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/server/labels/client-misuse"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/server/labels"))
        .and(body_json(
            json!({"name": "client-misuse", "color": "ededed", "description": "Filed by selfmon"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"name": "client-misuse"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(ISSUES_PATH))
        .respond_with(created(3))
        .expect(2)
        .mount(&server)
        .await;

    let t = tracker(&server);
    let mut d = draft("01");
    d.classification = Classification::ClientMisuse;
    d.title = Redactor::shared().redacted("[CLIENT] Bad requests");
    t.create_issue(&d).await.unwrap();
    t.create_issue(&d).await.unwrap();

    let posts: Vec<serde_json::Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == ISSUES_PATH)
        .map(|r| r.body_json().unwrap())
        .collect();
    for p in posts {
        assert_eq!(p["labels"], json!(["selfmon", "client-misuse"]));
    }
}

#[tokio::test]
async fn a_label_the_token_may_not_create_is_left_off_and_the_issue_is_still_filed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/server/labels/selfmon"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "selfmon"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/server/labels/bug"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/server/labels"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"message": "Resource not accessible by integration"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(ISSUES_PATH))
        .and(body_json(json!({"title": "[BUG] Crash in sync", "body": draft("02").body, "labels": ["selfmon"]})))
        .respond_with(created(4))
        .expect(2)
        .mount(&server)
        .await;
    let t = tracker(&server);
    assert_eq!(t.create_issue(&draft("02")).await.unwrap().number, 4);
    // Not tried again in the same process.
    assert_eq!(t.create_issue(&draft("02")).await.unwrap().number, 4);
}

#[tokio::test]
async fn a_create_rejected_for_its_labels_is_sent_again_without_them() {
    let server = MockServer::start().await;
    // The label check itself fails (5xx on every attempt), so the tracker lets the create decide.
    Mock::given(method("GET"))
        .and(path_regex(r"^/repos/acme/server/labels/"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(ISSUES_PATH))
        .and(body_json(json!({"title": "[BUG] Crash in sync", "body": draft("03").body, "labels": ["selfmon", "bug"]})))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Validation Failed",
            "errors": [{"resource": "Issue", "field": "labels", "code": "invalid"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(ISSUES_PATH))
        .and(body_json(
            json!({"title": "[BUG] Crash in sync", "body": draft("03").body, "labels": []}),
        ))
        .respond_with(created(5))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        tracker(&server)
            .create_issue(&draft("03"))
            .await
            .unwrap()
            .number,
        5
    );
}

#[tokio::test]
async fn a_body_at_the_size_limit_is_sent_intact_and_one_over_is_refused_unsent() {
    let server = MockServer::start().await;
    labels_exist(&server).await;
    let mut d = draft("04");
    let filler = MAX_BODY_CHARS - d.body.chars().count();
    // Multi-byte characters: the limit is in characters, not bytes.
    d.body = Redactor::shared().redacted(&format!("{}{}", "é".repeat(filler), d.body));
    assert_eq!(d.body.chars().count(), MAX_BODY_CHARS);
    Mock::given(method("POST"))
        .and(path(ISSUES_PATH))
        .respond_with(created(6))
        .expect(1)
        .mount(&server)
        .await;
    let t = tracker(&server);
    t.create_issue(&d).await.unwrap();
    let sent = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "POST")
        .unwrap();
    let sent: serde_json::Value = sent.body_json().unwrap();
    assert_eq!(sent["body"].as_str().unwrap(), d.body.as_str());

    d.body = Redactor::shared().redacted(&format!("{}x", d.body));
    let e = t.create_issue(&d).await.unwrap_err();
    assert!(matches!(
        github_error(&e),
        Error::BodyTooLong { chars, max, .. } if *chars == MAX_BODY_CHARS + 1 && *max == MAX_BODY_CHARS
    ));
}

#[tokio::test]
async fn enterprise_base_url_with_a_path_prefix_is_used_for_every_call() {
    let server = MockServer::start().await;
    let mut cfg = config(&server);
    cfg.base_url = format!("{}/api/v3", server.uri());
    Mock::given(method("GET"))
        .and(path_regex(r"^/api/v3/repos/acme/server/labels/[^/]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "x"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v3/repos/acme/server/issues"))
        .respond_with(created(8))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v3/repos/acme/server/issues"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v3/search/issues"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "items": []})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let t = tracker_with(cfg);
    assert_eq!(t.create_issue(&draft("05")).await.unwrap().number, 8);
    assert_eq!(t.find_by_marker(&marker("05")).await.unwrap(), None);
    for r in server.received_requests().await.unwrap() {
        assert!(r.url.path().starts_with("/api/v3/"), "{}", r.url);
    }
}

async fn create_error(status: u16, body: serde_json::Value) -> (selfmon_core::Error, MockServer) {
    let server = MockServer::start().await;
    labels_exist(&server).await;
    Mock::given(method("POST"))
        .and(path(ISSUES_PATH))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;
    let e = tracker(&server)
        .create_issue(&draft("06"))
        .await
        .unwrap_err();
    (e, server)
}

#[tokio::test]
async fn a_500_on_create_is_returned_retryable_and_never_resent() {
    let (e, _server) = create_error(500, json!({"message": "Internal error"})).await;
    assert!(e.is_retryable());
    assert!(matches!(
        github_error(&e),
        Error::Server { status: 500, .. }
    ));
}

#[tokio::test]
async fn a_401_names_the_token_variable() {
    let (e, _s) = create_error(401, json!({"message": "Bad credentials"})).await;
    assert!(!e.is_retryable());
    assert!(
        matches!(github_error(&e), Error::Unauthorized { env_var } if env_var == "SELFMON_TEST_GITHUB_TOKEN")
    );
    assert!(e.to_string().contains("SELFMON_TEST_GITHUB_TOKEN"));
    assert!(!e.to_string().contains(TOKEN));
}

#[tokio::test]
async fn a_403_without_rate_limit_headers_names_the_permission_needed() {
    let server = MockServer::start().await;
    labels_exist(&server).await;
    Mock::given(method("POST"))
        .and(path(ISSUES_PATH))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "4999")
                .insert_header("x-accepted-github-permissions", "issues=write")
                .set_body_json(
                    json!({"message": "Resource not accessible by personal access token"}),
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = tracker(&server)
        .create_issue(&draft("07"))
        .await
        .unwrap_err();
    assert!(!e.is_retryable());
    assert!(matches!(
        github_error(&e),
        Error::Forbidden {
            action: "creating an issue",
            ..
        }
    ));
    let text = e.to_string();
    assert!(text.contains("Issues: write"), "{text}");
    assert!(text.contains("issues=write"), "{text}");
}

#[tokio::test]
async fn a_404_says_repository_not_found_or_no_access() {
    let (e, _s) = create_error(404, json!({"message": "Not Found"})).await;
    assert!(!e.is_retryable());
    assert!(
        matches!(github_error(&e), Error::NotFound { repository, .. } if repository == "acme/server")
    );
    assert!(e
        .to_string()
        .contains("not found or the token has no access"));
}

#[tokio::test]
async fn a_404_page_that_is_not_the_api_asks_whether_base_url_is_the_api_root() {
    // A GitHub Enterprise host's web root (base_url without /api/v3) answers with HTML.
    let server = MockServer::start().await;
    labels_exist(&server).await;
    Mock::given(method("POST"))
        .and(path(ISSUES_PATH))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            "<html>\n  <body>GitHub Enterprise: sign in</body>\n</html>\n",
            "text/html",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let e = tracker(&server)
        .create_issue(&draft("06"))
        .await
        .unwrap_err();
    assert!(!e.is_retryable());
    assert!(matches!(github_error(&e), Error::NotTheApi { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("is `base_url` the API root") && text.contains("/api/v3"),
        "{text}"
    );
    assert!(!text.contains("check `repository`"), "{text}");
    assert!(
        !text.contains('\n') && text.contains("<html> <body>GitHub Enterprise"),
        "the page is quoted on one line: {text}"
    );
}

#[tokio::test]
async fn a_410_says_issues_are_disabled() {
    let (e, _s) = create_error(410, json!({"message": "Issues are disabled for this repo"})).await;
    assert!(!e.is_retryable());
    assert!(matches!(github_error(&e), Error::IssuesDisabled { .. }));
    assert!(e.to_string().contains("issues are disabled"));
}

#[tokio::test]
async fn a_422_carries_githubs_validation_message() {
    let (e, _s) = create_error(
        422,
        json!({"message": "Validation Failed", "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}]}),
    )
    .await;
    assert!(!e.is_retryable());
    assert!(
        matches!(github_error(&e), Error::Validation { message } if message == "Validation Failed: title: missing_field")
    );
}

#[tokio::test]
async fn a_connection_failure_on_create_is_retryable_so_the_outbox_reconciles() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = selfmon_github::GitHubConfig::for_repository(REPO);
    cfg.base_url = format!("http://127.0.0.1:{port}");
    cfg.retry_backoff_ms = 1;
    let t = tracker_with(cfg);
    let e = t.create_issue(&draft("08")).await.unwrap_err();
    assert!(e.is_retryable());
    assert!(matches!(github_error(&e), Error::Connection { .. }));
}
