//! The token never appears in an error: not when GitHub (or a proxy) echoes the request in its
//! answer, not when a URL carries it, not in a decoding error, not in a scan's recorded failure.

mod common;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use common::*;
use selfmon_core::offline::OfflineRunner;
use selfmon_core::redact::Redactor;
use selfmon_core::testing::{MemoryLogSource, MemoryStateStore};
use selfmon_core::{IssueTracker, Level, ScanTrigger, SelfMonitor};
use selfmon_github::GitHubTracker;
use serde_json::json;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// A token of no GitHub shape, so only the configured value can be scrubbed.
const PLAIN_TOKEN: &str = "s3cr3t-Plain-Value-4711";
/// Someone else's token in GitHub's shape, echoed too.
const FOREIGN_TOKEN: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";

/// Every 8-character piece of `secret` that shows in `text`.
fn pieces_of(secret: &str, text: &str) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(8)
        .map(|w| w.iter().collect::<String>())
        .filter(|p| text.contains(p.as_str()))
        .collect()
}

fn assert_no_token(e: &selfmon_core::Error, token: &str) {
    let gh = github_error(e);
    let shown = format!("{e} | {e:?} | {gh} | {gh:?}");
    for secret in [token, FOREIGN_TOKEN] {
        let found = pieces_of(secret, &shown);
        assert!(found.is_empty(), "{found:?} shown in: {shown}");
    }
}

/// Answers with the request's Authorization header (and a foreign token) in the body: JSON
/// message, per-field error values, or, for `html`, a proxy's page.
fn echo(status: u16, html: bool) -> impl Fn(&Request) -> ResponseTemplate {
    move |req: &Request| {
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if html {
            // The token straddles the 300-character cut of non-JSON bodies: its first 8
            // characters fall before the cut.
            let padding = "x".repeat(292 - "<html>".len() - " Authorization: Bearer ".len());
            return ResponseTemplate::new(status).set_body_string(format!(
                "<html>{padding} Authorization: {auth}; X-Other: {FOREIGN_TOKEN}</html>"
            ));
        }
        ResponseTemplate::new(status).set_body_json(json!({
            "message": format!("bad request; you sent Authorization: {auth}"),
            "errors": [{"field": "auth", "code": "invalid", "value": auth, FOREIGN_TOKEN: FOREIGN_TOKEN}],
        }))
    }
}

fn tracker_with_token(server: &MockServer, token: &str) -> GitHubTracker {
    let mut c = config(server);
    c.max_get_attempts = 1;
    GitHubTracker::with_token(c, token).unwrap()
}

#[tokio::test]
async fn an_error_body_echoing_the_authorization_header_never_shows_the_token() {
    for token in [TOKEN, PLAIN_TOKEN] {
        for (status, html) in [
            (500, false),
            (422, false),
            (403, false),
            (418, false),
            (502, true),
            (418, true),
        ] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(echo(status, html))
                .mount(&server)
                .await;
            let t = tracker_with_token(&server, token);
            let e = t
                .comment(5, &Redactor::shared().redacted("hello"))
                .await
                .unwrap_err();
            assert_no_token(&e, token);
            assert!(
                html || e.to_string().contains("Authorization: Bearer [redacted]"),
                "{status}: the echo is still there, scrubbed: {e}"
            );
        }
    }
}

#[tokio::test]
async fn a_body_that_cannot_be_decoded_never_shows_the_token_it_quotes() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .respond_with(|req: &Request| {
            let auth = req.headers.get("authorization").unwrap().to_str().unwrap();
            // A number where a string sits: serde quotes the string in its message.
            ResponseTemplate::new(200)
                .set_body_json(json!([{"number": auth, "html_url": "u", "state": "open"}]))
        })
        .mount(&server)
        .await;
    let e = tracker_with_token(&server, PLAIN_TOKEN)
        .list_issues(None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            github_error(&e),
            selfmon_github::Error::InvalidResponse { .. }
        ),
        "{e:?}"
    );
    assert_no_token(&e, PLAIN_TOKEN);
}

#[tokio::test]
async fn urls_carrying_the_token_are_scrubbed_from_link_redirect_and_transport_errors() {
    let server = MockServer::start().await;
    let other = MockServer::start().await;
    // A pagination link to another host, with the token in its query.
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([]))
                .insert_header(
                    "link",
                    format!(
                        "<{}/page2?access_token={PLAIN_TOKEN}>; rel=\"next\"",
                        other.uri()
                    )
                    .as_str(),
                ),
        )
        .mount(&server)
        .await;
    // A redirect to another host, with the token in the location.
    Mock::given(method("GET"))
        .and(path(format!("{ISSUES_PATH}/5")))
        .respond_with(ResponseTemplate::new(301).insert_header(
            "location",
            format!("{}/x?token={PLAIN_TOKEN}&also={FOREIGN_TOKEN}", other.uri()).as_str(),
        ))
        .mount(&server)
        .await;
    // A redirect on the API to a page that never answers in time: the client's timeout error
    // names the URL, token and all.
    Mock::given(method("GET"))
        .and(path(format!("{ISSUES_PATH}/6")))
        .respond_with(ResponseTemplate::new(301).insert_header(
            "location",
            format!("{}/slow?access_token={PLAIN_TOKEN}", server.uri()).as_str(),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(5)))
        .mount(&server)
        .await;

    let mut c = config(&server);
    c.max_get_attempts = 1;
    c.request_timeout_secs = 1;
    let t = GitHubTracker::with_token(c, PLAIN_TOKEN).unwrap();
    let link = t.list_issues(None).await.unwrap_err();
    let redirect = t.get_issue(5).await.unwrap_err();
    let timeout = t.get_issue(6).await.unwrap_err();
    assert!(matches!(
        github_error(&timeout),
        selfmon_github::Error::Timeout { .. }
    ));
    for e in [&link, &redirect, &timeout] {
        assert_no_token(e, PLAIN_TOKEN);
    }
}

#[tokio::test]
async fn a_failed_scan_records_no_piece_of_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(echo(500, false))
        .mount(&server)
        .await;
    let logs = Arc::new(MemoryLogSource::new());
    let store = Arc::new(MemoryStateStore::new());
    logs.log(Level::Error, "app.db", "[DB-LOCK-003] database is locked");
    let engine = SelfMonitor::builder()
        .log_source(logs.clone())
        .runner(Arc::new(OfflineRunner))
        .tracker(Arc::new(tracker_with_token(&server, PLAIN_TOKEN)))
        .store(store.clone())
        .build()
        .unwrap();
    let e = engine.scan(ScanTrigger::Manual).await.unwrap_err();
    let recorded = store.scans()[0]
        .error_message
        .as_ref()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let shown = format!("{e} | {e:?} | {recorded}");
    for secret in [PLAIN_TOKEN, FOREIGN_TOKEN] {
        let found = pieces_of(secret, &shown);
        assert!(found.is_empty(), "{found:?} shown in: {shown}");
    }
}

/// Every event's fields, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl<S: tracing::Subscriber> Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut text = self.0.lock().unwrap();
        event.record(&mut Fields(&mut text));
        text.push('\n');
    }
}

#[tokio::test]
async fn the_tracker_logs_no_piece_of_the_token() {
    let server = MockServer::start().await;
    // Redirected (on the API) to a path that carries the token, which then fails with an echo:
    // the redirect and the retry are both logged.
    Mock::given(method("GET"))
        .and(path(ISSUES_PATH))
        .respond_with(ResponseTemplate::new(307).insert_header(
            "location",
            format!("{}/repositories/{PLAIN_TOKEN}/issues", server.uri()).as_str(),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/repositories/{PLAIN_TOKEN}/issues")))
        .respond_with(echo(502, false))
        .mount(&server)
        .await;
    let captured = Captured::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(captured.clone()));
    let mut c = config(&server);
    c.max_get_attempts = 2;
    let t = GitHubTracker::with_token(c, PLAIN_TOKEN).unwrap();
    let e = t.list_issues(None).await.unwrap_err();
    assert_no_token(&e, PLAIN_TOKEN);
    let logged = captured.0.lock().unwrap().clone();
    assert!(logged.contains("redirected"), "{logged}");
    assert!(logged.contains("retrying"), "{logged}");
    for secret in [PLAIN_TOKEN, FOREIGN_TOKEN] {
        let found = pieces_of(secret, &logged);
        assert!(found.is_empty(), "{found:?} logged: {logged}");
    }
}
