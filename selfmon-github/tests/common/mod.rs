//! Helpers shared by the integration tests: a tracker pointed at a loopback server, GitHub-shaped
//! JSON, drafts.
#![allow(dead_code)]

use selfmon_core::redact::Redactor;
use selfmon_core::{Classification, IssueDraft, Marker};
use selfmon_github::{GitHubConfig, GitHubTracker};
use serde_json::{json, Value};
use wiremock::MockServer;

pub mod fake_github;

pub const TOKEN: &str = "ghs_test_token_0123456789";
pub const REPO: &str = "acme/server";
pub const ISSUES_PATH: &str = "/repos/acme/server/issues";

/// A configuration for `server`, with spacing and backoff shrunk so tests stay fast.
pub fn config(server: &MockServer) -> GitHubConfig {
    let mut c = GitHubConfig::for_repository(REPO);
    c.base_url = server.uri();
    c.token_env = "SELFMON_TEST_GITHUB_TOKEN".into();
    c.mutation_spacing_ms = 10;
    c.search_spacing_ms = 10;
    c.retry_backoff_ms = 10;
    c.request_timeout_secs = 10;
    c
}

pub fn tracker(server: &MockServer) -> GitHubTracker {
    GitHubTracker::with_token(config(server), TOKEN).unwrap()
}

pub fn tracker_with(config: GitHubConfig) -> GitHubTracker {
    GitHubTracker::with_token(config, TOKEN).unwrap()
}

/// An issue as GitHub returns it.
pub fn issue_json(number: u64, state: &str, body: &str) -> Value {
    json!({
        "number": number,
        "html_url": format!("https://github.com/{REPO}/issues/{number}"),
        "state": state,
        "title": format!("[BUG] issue {number}"),
        "body": body,
        "labels": [{"name": "selfmon", "color": "ededed"}, {"name": "bug"}],
        "closed_at": if state == "closed" { json!("2026-11-20T10:00:00Z") } else { Value::Null },
        "user": {"login": "selfmon-bot"},
    })
}

/// A pull request as the issues endpoint returns it.
pub fn pull_json(number: u64) -> Value {
    let mut v = issue_json(number, "open", "a PR");
    v["pull_request"] =
        json!({"url": format!("https://api.github.com/repos/{REPO}/pulls/{number}")});
    v
}

pub fn marker(fp: &str) -> Marker {
    Marker::for_fingerprint(fp)
}

pub fn draft(fp: &str) -> IssueDraft {
    let m = marker(fp);
    IssueDraft {
        title: Redactor::shared().redacted("[BUG] Crash in sync"),
        body: Redactor::shared().redacted(&format!("Something broke.\n\n{}", m.as_str())),
        labels: vec![],
        classification: Classification::ServerBug,
        fingerprint: fp.into(),
        marker: m,
    }
}

/// The `selfmon_github::Error` inside a core adapter error.
pub fn github_error(e: &selfmon_core::Error) -> &selfmon_github::Error {
    match e {
        selfmon_core::Error::Adapter { source, .. }
        | selfmon_core::Error::RateLimited { source, .. }
        | selfmon_core::Error::NotFound { source, .. }
        | selfmon_core::Error::PermissionDenied { source, .. }
        | selfmon_core::Error::InvalidInput { source, .. }
        | selfmon_core::Error::Unavailable { source, .. } => source
            .downcast_ref::<selfmon_github::Error>()
            .expect("source is a selfmon_github::Error"),
        other => panic!("not an adapter error: {other:?}"),
    }
}
