//! The parts of GitHub's JSON that selfmon reads, and the `Link` header.

use chrono::{DateTime, Utc};
use selfmon_core::{classification_in, CloseReason, IssueRef, IssueState, Marker, TrackedIssue};
use serde::Deserialize;

use crate::scrub::Scrubber;

/// An issue (or pull request) as the REST API returns it.
#[derive(Debug, Deserialize)]
pub(crate) struct WireIssue {
    pub number: u64,
    pub html_url: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub labels: Vec<WireLabel>,
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
    /// Why it was closed: `completed`, `not_planned`, `duplicate` (or `reopened`, or absent on
    /// older GitHub Enterprise versions).
    #[serde(default)]
    pub state_reason: Option<String>,
    /// Whether the conversation is locked: GitHub then refuses comments from App and bot tokens.
    #[serde(default)]
    pub locked: bool,
    /// Present (an object) only on pull requests, which the issues endpoints also return.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

/// A label: GitHub sends objects, but accepts (and older endpoints echo) plain names.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum WireLabel {
    Object { name: String },
    Name(String),
}

impl WireLabel {
    pub fn name(&self) -> &str {
        match self {
            WireLabel::Object { name } | WireLabel::Name(name) => name,
        }
    }
}

/// `GET /search/issues`.
#[derive(Debug, Deserialize)]
pub(crate) struct SearchResult {
    #[serde(default)]
    pub items: Vec<WireIssue>,
}

/// GitHub's error body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
    /// Whether the body was JSON (GitHub's API answers every error in JSON).
    #[serde(skip)]
    pub json: bool,
}

impl ErrorBody {
    /// Parses an error body, scrubbed of the token (GitHub or a proxy may echo the request);
    /// anything that isn't GitHub's JSON becomes its text, truncated after scrubbing so no piece
    /// of a token survives the cut.
    pub fn parse(bytes: &[u8], scrubber: &Scrubber) -> ErrorBody {
        match serde_json::from_slice::<ErrorBody>(bytes) {
            Ok(mut body) => {
                body.json = true;
                body.message = scrubber.scrub(&body.message);
                for e in &mut body.errors {
                    scrub_json(e, scrubber);
                }
                body
            }
            Err(_) => ErrorBody {
                message: selfmon_core::error::truncate_chars(
                    &scrubber.scrub(&String::from_utf8_lossy(bytes)),
                    300,
                ),
                errors: Vec::new(),
                json: false,
            },
        }
    }

    /// The message with the per-field errors (`Validation Failed: labels: invalid`).
    pub fn describe(&self) -> String {
        let details: Vec<String> = self
            .errors
            .iter()
            .map(|e| match e {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(o) => {
                    let get = |k: &str| o.get(k).and_then(|v| v.as_str()).unwrap_or("");
                    let field = get("field");
                    let text = match (get("message"), get("code")) {
                        ("", code) => code.to_string(),
                        (msg, _) => msg.to_string(),
                    };
                    let value = o
                        .get("value")
                        .map(|v| format!(" ({v})"))
                        .unwrap_or_default();
                    if field.is_empty() {
                        format!("{text}{value}")
                    } else {
                        format!("{field}: {text}{value}")
                    }
                }
                other => other.to_string(),
            })
            .collect();
        let message = if self.message.is_empty() {
            "no message"
        } else {
            self.message.as_str()
        };
        if details.is_empty() {
            message.to_string()
        } else {
            format!("{message}: {}", details.join("; "))
        }
    }
}

impl WireIssue {
    pub fn is_pull_request(&self) -> bool {
        self.pull_request.is_some()
    }

    pub fn state(&self) -> IssueState {
        if self.state.eq_ignore_ascii_case("closed") {
            IssueState::Closed
        } else {
            IssueState::Open
        }
    }

    pub fn issue_ref(&self) -> IssueRef {
        IssueRef {
            number: self.number,
            url: self.html_url.clone(),
            state: self.state(),
        }
    }

    pub fn carries(&self, marker: &Marker) -> bool {
        self.body
            .as_deref()
            .is_some_and(|b| b.contains(marker.as_str()))
    }

    pub fn into_tracked(self) -> TrackedIssue {
        // Only a closed issue has a closing reason (an open one may say `reopened`).
        let close_reason = match self.state() {
            IssueState::Closed => self.state_reason.as_deref().and_then(CloseReason::parse),
            IssueState::Open => None,
        };
        TrackedIssue {
            issue: self.issue_ref(),
            marker: self.body.as_deref().and_then(Marker::find_in),
            classification: self.body.as_deref().and_then(classification_in),
            labels: self.labels.iter().map(|l| l.name().to_string()).collect(),
            title: self.title,
            closed_at: self.closed_at,
            close_reason,
            locked: self.locked,
        }
    }
}

/// Scrubs every string (keys too) in `value`.
fn scrub_json(value: &mut serde_json::Value, scrubber: &Scrubber) {
    match value {
        serde_json::Value::String(s) => *s = scrubber.scrub(s),
        serde_json::Value::Array(items) => {
            for v in items {
                scrub_json(v, scrubber);
            }
        }
        serde_json::Value::Object(map) => {
            let entries = std::mem::take(map);
            for (k, mut v) in entries {
                scrub_json(&mut v, scrubber);
                map.insert(scrubber.scrub(&k), v);
            }
        }
        _ => {}
    }
}

/// The `rel="next"` target of a `Link` header, if any.
pub(crate) fn next_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|part| {
        let mut pieces = part.split(';');
        let target = pieces.next()?.trim();
        let is_next = pieces.any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=")
                .map(|v| v.trim_matches('"').split_whitespace().any(|r| r == "next"))
                .unwrap_or(false)
        });
        if is_next {
            target.strip_prefix('<')?.strip_suffix('>')
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_found_among_other_relations() {
        let h = r#"<https://api.github.com/repositories/1/issues?page=1>; rel="prev", <https://api.github.com/repositories/1/issues?page=3>; rel="next", <https://api.github.com/repositories/1/issues?page=9>; rel="last""#;
        assert_eq!(
            next_link(h),
            Some("https://api.github.com/repositories/1/issues?page=3")
        );
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="first""#), None);
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link(""), None);
    }

    #[test]
    fn pull_requests_are_recognised_by_their_pull_request_key() {
        let pr: WireIssue = serde_json::from_str(
            r#"{"number":1,"html_url":"u","state":"open","title":"t","pull_request":{"url":"x"}}"#,
        )
        .unwrap();
        assert!(pr.is_pull_request());
        let issue: WireIssue =
            serde_json::from_str(r#"{"number":2,"html_url":"u","labels":["a",{"name":"b"}]}"#)
                .unwrap();
        assert!(!issue.is_pull_request());
        assert_eq!(issue.into_tracked().labels, vec!["a", "b"]);
    }

    #[test]
    fn validation_errors_are_described_with_their_fields() {
        let b = ErrorBody::parse(
            br#"{"message":"Validation Failed","errors":[{"resource":"Issue","field":"labels","code":"invalid","value":"nope"}]}"#,
            &Scrubber::shapes_only(),
        );
        assert_eq!(
            b.describe(),
            r#"Validation Failed: labels: invalid ("nope")"#
        );
        assert_eq!(
            ErrorBody::parse(b"<html>oops", &Scrubber::shapes_only()).describe(),
            "<html>oops"
        );
    }
}
