//! Where issues are filed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::model::{IssueDraft, IssueRef, Marker, TrackedIssue};
use crate::redact::RedactedText;

/// An issue tracker (GitHub, a dry-run folder, an in-memory list).
///
/// Contract:
/// - [`list_issues`](IssueTracker::list_issues) returns every open issue selfmon filed (all pages),
///   plus issues closed at or after `closed_since` when given; never pull requests.
/// - A closed issue's [`TrackedIssue::close_reason`] (from `list_issues` and `get_issue`) is the
///   tracker's reason when it keeps one (GitHub's `state_reason`), `None` otherwise: the engine
///   never reopens an issue a person closed as not planned or as a duplicate, and reports the
///   recurrence of each closure once (a tracker without reasons: every closure counts as
///   completed). `closed_at` tells one closure from the next; without it a closure lasts until
///   the engine sees the issue open again.
/// - [`create_issue`](IssueTracker::create_issue) sends the draft as is (title, body with marker,
///   labels) and must never retry on its own after the request may have reached the tracker: the
///   engine's outbox decides, using [`find_by_marker`](IssueTracker::find_by_marker).
/// - [`get_issue`](IssueTracker::get_issue) looks one issue up by number, whatever its labels, so
///   an issue selfmon filed that the listing misses (a person removed its label, or the label
///   could not be created) is not taken for closed.
/// - [`find_by_marker`](IssueTracker::find_by_marker) finds an issue (open or closed) whose body holds
///   the marker, or `None` when the tracker has none; it must see issues created moments ago.
/// - `comment` and `reopen` on a number that does not exist are errors, not silent successes:
///   [`Error::NotFound`](crate::Error::NotFound) when the tracker says the issue is not there
///   (deleted, transferred), so the engine can tell that apart from a failing tracker (it records
///   the occurrences and goes on; any other error fails the scan).
/// - Errors: a spent rate limit is `Error::RateLimited { component: IssueTracker, reset_at }`, and
///   then the call changed nothing (the engine stops calling the tracker for the rest of the scan
///   and keeps what it could not file in the backlog). Where the cause is clear, use the variant a
///   caller can match: `NotFound` (no such repository or issue), `PermissionDenied` (refused or
///   insufficient credentials), `InvalidInput` (the tracker rejected the draft), `Unavailable`
///   (5xx, timeouts, lost connections: retryable). Anything else is
///   `Error::Adapter { component: IssueTracker, retryable }`.
// Adding a method? List it in the `forward!` at the end of this file too.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait IssueTracker: Send + Sync {
    /// Open issues selfmon filed, plus those closed since `closed_since`.
    async fn list_issues(&self, closed_since: Option<DateTime<Utc>>) -> Result<Vec<TrackedIssue>>;

    /// Creates an issue. Its title and body are [`RedactedText`]: the engine redacted them; an
    /// adapter sends them as they are (`as_str()`).
    async fn create_issue(&self, draft: &IssueDraft) -> Result<IssueRef>;

    /// Adds a comment; the body was redacted by the engine.
    async fn comment(&self, number: u64, body: &RedactedText) -> Result<()>;

    /// Reopens a closed issue (a regression).
    async fn reopen(&self, number: u64) -> Result<()>;

    /// The issue carrying `marker`, if any.
    async fn find_by_marker(&self, marker: &Marker) -> Result<Option<IssueRef>>;

    /// The issue with this number as the tracker has it now, open or closed, whatever its labels.
    ///
    /// The engine asks only for issues its state store records as open that
    /// [`list_issues`](IssueTracker::list_issues) did not return (one call per such issue and
    /// scan): without the answer it would take such an issue for closed and comment on (and
    /// reopen) an open issue as a regression on every scan.
    ///
    /// - `Ok(Some(issue))`: the issue and its current state.
    /// - `Err(Error::NotFound)`: the tracker has no such issue (deleted, or transferred out of
    ///   reach); the engine then records it as closed.
    /// - `Ok(None)`: this tracker cannot look issues up by number (the default, right for a
    ///   tracker whose `list_issues` returns every issue selfmon filed whatever its labels); the
    ///   engine then takes an issue the listing missed for closed.
    /// - Other errors as for every method (a spent rate limit is `RateLimited`).
    async fn get_issue(&self, number: u64) -> Result<Option<TrackedIssue>> {
        let _ = number;
        Ok(None)
    }
}

crate::traits::forward::forward! {
    IssueTracker {
        async fn list_issues(&self, closed_since: Option<DateTime<Utc>>) -> Result<Vec<TrackedIssue>>;
        async fn create_issue(&self, draft: &IssueDraft) -> Result<IssueRef>;
        async fn comment(&self, number: u64, body: &RedactedText) -> Result<()>;
        async fn reopen(&self, number: u64) -> Result<()>;
        async fn find_by_marker(&self, marker: &Marker) -> Result<Option<IssueRef>>;
        async fn get_issue(&self, number: u64) -> Result<Option<TrackedIssue>>;
    }
}
