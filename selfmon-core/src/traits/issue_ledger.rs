//! The issue ledger: issues selfmon filed, their occurrences and states, and the filing outbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::model::{BacklogEntry, FiledIssue, FilingIntent, IssueState};

/// What selfmon filed and is about to file: the deduplicator's memory, the backlog of findings a
/// budget deferred, and the outbox that makes filing exactly-once across crashes. Kept in one trait
/// because one transaction spans them ([`complete_intent`](IssueLedger::complete_intent) writes an
/// issue row, removes an intent and closes its backlog entry).
///
/// Contract:
/// - Every method is durable on return: after `Ok`, a crash does not lose the write.
/// - `complete_intent` records the issue row and removes the intent atomically (closing the
///   intent's backlog entry, if it has one, in the same step); after a crash either all happened
///   or none did.
/// - `record_occurrences` and `set_issue_state` for an issue number the ledger never recorded (the
///   tracker may hold issues filed elsewhere) do nothing and succeed.
/// - Errors: a busy or unreachable database is `Error::Unavailable { component: StateStore }`
///   (retryable); otherwise `Error::Adapter { component: StateStore, retryable }` (a corrupt
///   database is not retryable).
// Adding a method? List it in the `forward!` at the end of this file too.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait IssueLedger: Send + Sync {
    /// Every issue selfmon filed, for dedup.
    async fn filed_issues(&self) -> Result<Vec<FiledIssue>>;

    /// Records `count` new occurrences of a filed issue seen at `now` (its `last_seen_at`).
    async fn record_occurrences(
        &self,
        issue_number: u64,
        count: u64,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Updates the state of a filed issue (closed, reopened) as the tracker reports it. Recording
    /// it [`Open`](IssueState::Open) also forgets its
    /// [`regression_noted_for`](FiledIssue::regression_noted_for): the closure it named is over.
    async fn set_issue_state(&self, issue_number: u64, state: IssueState) -> Result<()>;

    /// Records (`Some`) or forgets (`None`) that selfmon reported a recurrence of the closed
    /// issue's current closure ([`FiledIssue::regression_noted_for`]). The engine records it
    /// before it comments on (or reopens) the issue, so a comment the tracker stored but
    /// answered with an error, or a crash right after it, is never posted again for the same
    /// closure; it forgets it when the tracker refused the call outright (a spent rate limit).
    /// Durable on return; an issue number the ledger never recorded does nothing and succeeds.
    async fn set_regression_noted(
        &self,
        issue_number: u64,
        noted_for: Option<DateTime<Utc>>,
    ) -> Result<()>;

    /// Adds `signature_ids` to a filed issue's `signature_ids` at once, outside any scan
    /// commit (ids it already has are not added twice; an issue the ledger never recorded does
    /// nothing and succeeds). The engine calls it before it comments on an issue about a
    /// related or escalated signature, so the issue covers the signature from then on even if
    /// the scan fails or the process dies after the comment: the comment is never repeated
    /// (review5 G2, G6). Durable on return.
    async fn add_issue_signatures(&self, issue_number: u64, signature_ids: &[String])
        -> Result<()>;

    /// Forgets a filed issue: removes selfmon's record of it (its row and its occurrence
    /// history; scan reports and issue events stay), so dedup no longer knows its problem and
    /// the next recurrence is analysed and filed as a new issue. Meant for an issue deleted or
    /// transferred on the tracker, which would otherwise hold its problem for good (review5
    /// G10); an operator's decision (`selfmon history forget N`), never the engine's. Returns
    /// whether the ledger had the issue; durable on return.
    async fn forget_issue(&self, issue_number: u64) -> Result<bool>;

    /// Commits a filing intent before the tracker is called (the outbox).
    async fn record_intent(&self, intent: &FilingIntent) -> Result<()>;

    /// Intents not yet completed, oldest first.
    async fn open_intents(&self) -> Result<Vec<FilingIntent>>;

    /// Records the filed issue and removes the intent, atomically; an intent with a
    /// `backlog_entry_id` also closes that entry (reason `filed as #N`) in the same step.
    /// Completing an intent twice keeps one issue row.
    async fn complete_intent(&self, intent_id: &str, issue: &FiledIssue) -> Result<()>;

    /// Backlog entries not yet closed, in filing priority ([`BacklogEntry::priority`]: most severe
    /// first, then most occurrences, then oldest).
    async fn open_backlog(&self) -> Result<Vec<BacklogEntry>>;
}

crate::traits::forward::forward! {
    IssueLedger {
        async fn filed_issues(&self) -> Result<Vec<FiledIssue>>;
        async fn record_occurrences(&self, issue_number: u64, count: u64, now: DateTime<Utc>) -> Result<()>;
        async fn set_issue_state(&self, issue_number: u64, state: IssueState) -> Result<()>;
        async fn set_regression_noted(&self, issue_number: u64, noted_for: Option<DateTime<Utc>>) -> Result<()>;
        async fn add_issue_signatures(&self, issue_number: u64, signature_ids: &[String]) -> Result<()>;
        async fn forget_issue(&self, issue_number: u64) -> Result<bool>;
        async fn record_intent(&self, intent: &FilingIntent) -> Result<()>;
        async fn open_intents(&self) -> Result<Vec<FilingIntent>>;
        async fn complete_intent(&self, intent_id: &str, issue: &FiledIssue) -> Result<()>;
        async fn open_backlog(&self) -> Result<Vec<BacklogEntry>>;
    }
}
