//! `GitHubTracker`: the [`IssueTracker`] over GitHub's REST API.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, Url};
use selfmon_core::clock::Clock;
use selfmon_core::redact::RedactedText;
use selfmon_core::{IssueDraft, IssueRef, IssueTracker, Marker, TrackedIssue};
use serde_json::json;
use tokio::sync::Mutex;

use crate::config::{GitHubConfig, MAX_BODY_CHARS};
use crate::error::Error;
use crate::http::{Call, Http, Kind};
use crate::wire::{SearchResult, WireIssue};

const READ: &str =
    "Issues: read (fine-grained token) or the repo / public_repo scope (classic token)";
const WRITE: &str =
    "Issues: write (fine-grained token) or the repo / public_repo scope (classic token)";

/// How far back `find_by_marker` lists closed issues before falling back to search, in hours.
const RECENTLY_CLOSED_HOURS: i64 = 24;

/// Colour given to labels selfmon creates.
const LABEL_COLOR: &str = "ededed";

/// Files and finds selfmon's issues in one GitHub (or GitHub Enterprise Server) repository.
///
/// - Listing is by [`GitHubConfig::selfmon_label`], every page, pull requests left out.
/// - A create is sent once: a timeout or 5xx on it is returned (retryable) and the engine's
///   outbox decides, with [`find_by_marker`](IssueTracker::find_by_marker), whether it landed.
///   Only a rate-limit rejection (which GitHub did not process) or a 422 about labels leads to
///   the same create being sent again.
/// - Mutating requests go one at a time, [`GitHubConfig::mutation_spacing_ms`] apart.
/// - Labels are created on first use; when the token may not create them the issue is filed
///   without them rather than not at all.
///
/// `Debug` and `Display` never show the token.
pub struct GitHubTracker {
    config: GitHubConfig,
    http: Http,
    labels: Mutex<LabelCache>,
}

#[derive(Default)]
struct LabelCache {
    /// Lower-cased names known to exist.
    existing: HashSet<String>,
    /// Lower-cased names the token could not create (not retried in this process).
    uncreatable: HashSet<String>,
}

impl fmt::Debug for GitHubTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubTracker")
            .field("config", &self.config)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for GitHubTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.config)
    }
}

impl GitHubTracker {
    /// Validates `config` and reads the token from the environment variable it names.
    pub fn new(config: GitHubConfig) -> Result<Self, Error> {
        config.validate()?;
        let token = std::env::var(&config.token_env)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| Error::TokenMissing {
                env_var: config.token_env.clone(),
            })?;
        Self::with_token(config, &token)
    }

    /// Validates `config` and uses `token` (for hosts that keep the token elsewhere than in the
    /// environment). Error messages still name [`GitHubConfig::token_env`].
    pub fn with_token(config: GitHubConfig, token: &str) -> Result<Self, Error> {
        config.validate()?;
        if token.trim().is_empty() {
            return Err(Error::TokenMissing {
                env_var: config.token_env.clone(),
            });
        }
        let http = Http::new(&config, token)?;
        Ok(GitHubTracker {
            config,
            http,
            labels: Mutex::new(LabelCache::default()),
        })
    }

    /// Uses `clock` instead of the system clock for every "now" the tracker needs: how long a
    /// rate limit's reset is away, and the window of recently closed issues it checks before
    /// filing. Tests pass a [`FakeClock`](selfmon_core::clock::FakeClock) so their expectations
    /// do not depend on the wall clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.http.set_clock(clock);
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &GitHubConfig {
        &self.config
    }

    /// Every issue with the selfmon label in `state`, all pages, pull requests left out.
    async fn list_labelled(
        &self,
        state: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<WireIssue>, Error> {
        let mut url = self.http.repo_endpoint(&["issues"])?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("labels", &self.config.selfmon_label)
                .append_pair("state", state)
                .append_pair("per_page", "100");
            if let Some(since) = since {
                q.append_pair("since", &since.to_rfc3339_opts(SecondsFormat::Secs, true));
            }
        }
        let mut out = Vec::new();
        let mut next: Option<Url> = Some(url);
        let mut pages = 0;
        while let Some(url) = next.take() {
            if pages == self.config.max_list_pages {
                return Err(Error::TooManyPages {
                    what: "selfmon's issues",
                    max_pages: self.config.max_list_pages,
                });
            }
            pages += 1;
            let reply = self
                .http
                .send(Call {
                    method: Method::GET,
                    url,
                    body: None,
                    kind: Kind::Read,
                    action: "listing issues",
                    needed: READ,
                    what: "the issue list".into(),
                })
                .await?;
            let items: Vec<WireIssue> = reply.json()?;
            out.extend(items.into_iter().filter(|i| !i.is_pull_request()));
            next = match reply.next_link() {
                Some(link) => Some(self.http.checked_link(&link)?),
                None => None,
            };
        }
        tracing::debug!(state, pages, issues = out.len(), "listed selfmon issues");
        Ok(out)
    }

    /// Makes sure every label in `wanted` exists, creating missing ones; returns the labels that
    /// can be applied (those that exist or whose existence could not be checked).
    async fn ensure_labels(&self, wanted: Vec<String>) -> Vec<String> {
        let mut cache = self.labels.lock().await;
        let mut usable = Vec::with_capacity(wanted.len());
        for label in wanted {
            let key = label.to_lowercase();
            if cache.existing.contains(&key) {
                usable.push(label);
                continue;
            }
            if cache.uncreatable.contains(&key) {
                continue;
            }
            match self.label_exists(&label).await {
                Ok(true) => {
                    cache.existing.insert(key);
                    usable.push(label);
                }
                Ok(false) => match self.create_label(&label).await {
                    Ok(()) => {
                        tracing::info!(label = %label, "created GitHub label");
                        cache.existing.insert(key);
                        usable.push(label);
                    }
                    Err(Error::Validation { .. }) => {
                        // Created meanwhile by someone else ("already_exists").
                        cache.existing.insert(key);
                        usable.push(label);
                    }
                    Err(e @ (Error::Forbidden { .. } | Error::NotFound { .. })) => {
                        tracing::warn!(label = %label, error = %e, "cannot create label; filing without it");
                        cache.uncreatable.insert(key);
                    }
                    Err(e) => {
                        tracing::warn!(label = %label, error = %e, "label creation failed; letting the issue create decide");
                        usable.push(label);
                    }
                },
                Err(e) => {
                    tracing::warn!(label = %label, error = %e, "label check failed; letting the issue create decide");
                    usable.push(label);
                }
            }
        }
        usable
    }

    async fn label_exists(&self, label: &str) -> Result<bool, Error> {
        let url = self.http.repo_endpoint(&["labels", label])?;
        match self
            .http
            .send(Call {
                method: Method::GET,
                url,
                body: None,
                kind: Kind::Read,
                action: "reading a label",
                needed: READ,
                what: format!("label {}", selfmon_core::text::quoted(label)),
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn create_label(&self, label: &str) -> Result<(), Error> {
        let url = self.http.repo_endpoint(&["labels"])?;
        let body = json!({
            "name": label,
            "color": LABEL_COLOR,
            "description": "Filed by selfmon",
        });
        self.http
            .send(Call {
                method: Method::POST,
                url,
                body: Some(&body),
                kind: Kind::Mutation { retry_safe: false },
                action: "creating a label",
                needed: WRITE,
                what: "the label list".into(),
            })
            .await
            .map(|_| ())
    }

    async fn post_issue(
        &self,
        title: &str,
        body: &str,
        labels: &[String],
    ) -> Result<IssueRef, Error> {
        let url = self.http.repo_endpoint(&["issues"])?;
        let payload = json!({ "title": title, "body": body, "labels": labels });
        let reply = self
            .http
            .send(Call {
                method: Method::POST,
                url,
                body: Some(&payload),
                kind: Kind::Mutation { retry_safe: false },
                action: "creating an issue",
                needed: WRITE,
                what: "the issue list".into(),
            })
            .await?;
        let issue: WireIssue = reply.json()?;
        Ok(issue.issue_ref())
    }

    async fn search_marker(&self, marker: &Marker) -> Result<Option<IssueRef>, Error> {
        let mut url = self.http.endpoint(&["search", "issues"])?;
        // The fingerprint is one hex token, which the search index keeps whole; the exact marker is
        // then checked in each body, so a partial match cannot be taken for the issue.
        let q = format!(
            "repo:{} is:issue in:body \"{}\"",
            self.http.repository(),
            marker.fingerprint()
        );
        url.query_pairs_mut()
            .append_pair("q", &q)
            .append_pair("per_page", "100");
        let reply = self
            .http
            .send(Call {
                method: Method::GET,
                url,
                body: None,
                kind: Kind::Search,
                action: "searching issues",
                needed: READ,
                what: "the issue search".into(),
            })
            .await?;
        let result: SearchResult = reply.json()?;
        Ok(result
            .items
            .into_iter()
            .filter(|i| !i.is_pull_request() && i.carries(marker))
            .min_by_key(|i| i.number)
            .map(|i| i.issue_ref()))
    }

    fn issue_url(&self, number: u64, tail: &[&str]) -> Result<Url, Error> {
        let n = number.to_string();
        let mut segments = vec!["issues", n.as_str()];
        segments.extend_from_slice(tail);
        self.http.repo_endpoint(&segments)
    }

    /// Whether `issue`, fetched as issue `number` of the configured repository, is that issue and
    /// not one GitHub redirected to (its address ends in `/OWNER/NAME/issues/NUMBER`).
    fn is_ours(&self, issue: &WireIssue, number: u64) -> bool {
        let tail = format!("/{}/issues/{number}", self.http.repository()).to_lowercase();
        issue.number == number
            && issue
                .html_url
                .trim_end_matches('/')
                .to_lowercase()
                .ends_with(&tail)
    }

    /// An issue-level request answered with a redirect: the issue moved (see
    /// [`Error::IssueMoved`]).
    fn issue_moved(&self, number: u64) -> impl FnOnce(Error) -> Error + '_ {
        move |e| match e {
            Error::Moved { location, .. } => Error::IssueMoved {
                repository: self.http.repository().to_string(),
                number,
                location,
            },
            other => other,
        }
    }

    /// `GET /repos/OWNER/NAME/issues/N`, whatever its labels. 404 (and 410 for a deleted issue)
    /// is [`Error::NotFound`] / [`Error::Gone`]; a pull request under that number is no issue
    /// selfmon filed, so it is `NotFound` too.
    async fn fetch_issue(&self, number: u64) -> Result<TrackedIssue, Error> {
        let what = format!("issue #{number}");
        let reply = self
            .http
            .send(Call {
                method: Method::GET,
                url: self.issue_url(number, &[])?,
                body: None,
                kind: Kind::Read,
                action: "reading an issue",
                needed: READ,
                what: what.clone(),
            })
            .await
            .map_err(self.issue_moved(number))?;
        let issue: WireIssue = reply.json()?;
        // A transferred issue: GitHub redirects the old address (on the API host, so the client
        // followed it) to the issue in its new repository.
        if !self.is_ours(&issue, number) {
            return Err(Error::IssueMoved {
                repository: self.http.repository().to_string(),
                number,
                location: issue.html_url,
            });
        }
        if issue.is_pull_request() {
            return Err(Error::NotFound {
                repository: self.http.repository().to_string(),
                what: format!("{what} (it is a pull request)"),
            });
        }
        tracing::debug!(
            issue = number,
            state = ?issue.state(),
            "looked up an issue the label listing did not return"
        );
        Ok(issue.into_tracked())
    }

    async fn create(&self, draft: &IssueDraft) -> Result<IssueRef, Error> {
        check_body("issue", &draft.body)?;
        let title = self.config.title_for(draft.classification, &draft.title);
        let wanted = self.config.labels_for(draft.classification, &draft.labels);
        let labels = self.ensure_labels(wanted).await;
        match self.post_issue(&title, &draft.body, &labels).await {
            Err(Error::Validation { message })
                if mentions_labels(&message) && !labels.is_empty() =>
            {
                // 422 means nothing was created, so sending the create again is safe.
                let known: Vec<String> = {
                    let cache = self.labels.lock().await;
                    labels
                        .iter()
                        .filter(|l| cache.existing.contains(&l.to_lowercase()))
                        .cloned()
                        .collect()
                };
                let fallback = if known.len() < labels.len() {
                    known
                } else {
                    Vec::new()
                };
                tracing::warn!(%message, ?fallback, "GitHub rejected the labels; filing with fewer");
                self.post_issue(&title, &draft.body, &fallback).await
            }
            other => other,
        }
    }

    async fn find(&self, marker: &Marker) -> Result<Option<IssueRef>, Error> {
        // The label listings see an issue the moment it exists; search results lag behind. An
        // issue closed right after it was filed is caught by the recently-updated closed listing;
        // older closed ones have long been indexed for search.
        let open = self.list_labelled("open", None).await?;
        if let Some(hit) = first_carrying(&open, marker) {
            return Ok(Some(hit));
        }
        let recent = self.http.now() - chrono::Duration::hours(RECENTLY_CLOSED_HOURS);
        let closed = self.list_labelled("closed", Some(recent)).await?;
        if let Some(hit) = first_carrying(&closed, marker) {
            return Ok(Some(hit));
        }
        self.search_marker(marker).await
    }
}

/// The lowest-numbered issue carrying `marker` (the first filing, should there be several).
fn first_carrying(issues: &[WireIssue], marker: &Marker) -> Option<IssueRef> {
    issues
        .iter()
        .filter(|i| i.carries(marker))
        .min_by_key(|i| i.number)
        .map(WireIssue::issue_ref)
}

fn check_body(what: &'static str, body: &str) -> Result<(), Error> {
    let chars = body.chars().count();
    if chars > MAX_BODY_CHARS {
        return Err(Error::BodyTooLong {
            what,
            chars,
            max: MAX_BODY_CHARS,
        });
    }
    Ok(())
}

fn mentions_labels(message: &str) -> bool {
    message.to_ascii_lowercase().contains("label")
}

#[async_trait]
impl IssueTracker for GitHubTracker {
    async fn list_issues(
        &self,
        closed_since: Option<DateTime<Utc>>,
    ) -> selfmon_core::Result<Vec<TrackedIssue>> {
        let mut issues = self.list_labelled("open", None).await?;
        if let Some(since) = closed_since {
            // `since` filters on the update time; an issue closed earlier and edited later is
            // returned too, hence the check on `closed_at`.
            let closed = self.list_labelled("closed", Some(since)).await?;
            issues.extend(
                closed
                    .into_iter()
                    .filter(|i| i.closed_at.is_some_and(|at| at >= since)),
            );
        }
        let mut seen = HashSet::new();
        Ok(issues
            .into_iter()
            .filter(|i| seen.insert(i.number))
            .map(WireIssue::into_tracked)
            .collect())
    }

    async fn create_issue(&self, draft: &IssueDraft) -> selfmon_core::Result<IssueRef> {
        Ok(self.create(draft).await?)
    }

    async fn comment(&self, number: u64, body: &RedactedText) -> selfmon_core::Result<()> {
        check_body("comment", body)?;
        let url = self.issue_url(number, &["comments"])?;
        let payload = json!({ "body": body.as_str() });
        self.http
            .send(Call {
                method: Method::POST,
                url,
                body: Some(&payload),
                kind: Kind::Mutation { retry_safe: false },
                action: "commenting on an issue",
                needed: WRITE,
                what: format!("issue #{number}"),
            })
            .await
            .map_err(self.issue_moved(number))?;
        Ok(())
    }

    async fn reopen(&self, number: u64) -> selfmon_core::Result<()> {
        let url = self.issue_url(number, &[])?;
        let payload = json!({ "state": "open", "state_reason": "reopened" });
        self.http
            .send(Call {
                method: Method::PATCH,
                url,
                body: Some(&payload),
                // Setting the state to "open" twice leaves the issue as once: safe to repeat.
                kind: Kind::Mutation { retry_safe: true },
                action: "reopening an issue",
                needed: WRITE,
                what: format!("issue #{number}"),
            })
            .await
            .map_err(self.issue_moved(number))?;
        Ok(())
    }

    async fn find_by_marker(&self, marker: &Marker) -> selfmon_core::Result<Option<IssueRef>> {
        Ok(self.find(marker).await?)
    }

    async fn get_issue(&self, number: u64) -> selfmon_core::Result<Option<TrackedIssue>> {
        Ok(Some(self.fetch_issue(number).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_debug_and_display_never_show_the_token() {
        let t = GitHubTracker::with_token(
            GitHubConfig::for_repository("acme/server"),
            "ghp_SECRET_TOKEN_VALUE",
        )
        .unwrap();
        let shown = format!("{t:?} {t} {:?} {}", t.config(), t.config());
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("GITHUB_TOKEN"));
    }

    #[test]
    fn a_missing_token_names_the_variable() {
        let mut cfg = GitHubConfig::for_repository("acme/server");
        cfg.token_env = "SELFMON_TEST_SURELY_UNSET_VAR".into();
        let e = GitHubTracker::new(cfg).unwrap_err();
        assert!(e.to_string().contains("SELFMON_TEST_SURELY_UNSET_VAR"));
    }

    #[test]
    fn bodies_up_to_the_limit_pass_and_longer_ones_are_refused() {
        assert!(check_body("issue", &"é".repeat(MAX_BODY_CHARS)).is_ok());
        assert!(matches!(
            check_body("issue", &"a".repeat(MAX_BODY_CHARS + 1)),
            Err(Error::BodyTooLong { chars, .. }) if chars == MAX_BODY_CHARS + 1
        ));
    }
}
