//! Scan history, filed issues, the cursor and the outbox.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{
    BacklogEntry, ClosedBacklogEntry, FiledIssue, FilingIntent, IssueEvent, IssueState,
    ScanEffects, ScanId, ScanRecord, ScanReport,
};

/// A single-flight lease held by one scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Who holds it (a process and scan id).
    pub owner: String,
    /// When it lapses.
    pub expires_at: DateTime<Utc>,
}

/// The answer to [`StateStore::try_acquire_lease`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseOutcome {
    /// The caller holds the lease.
    Acquired(Lease),
    /// Someone else holds an unexpired lease.
    Held(Lease),
}

/// A page request for history queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// Zero-based offset.
    pub offset: u64,
    /// Page size (implementations cap it at 500).
    pub limit: u64,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            offset: 0,
            limit: 50,
        }
    }
}

/// A page of results with the total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// How many exist in all.
    pub total: u64,
}

/// A filter for filed-issue queries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueFilter {
    /// Only this classification.
    pub classification: Option<crate::model::Classification>,
    /// Only this state.
    pub state: Option<IssueState>,
}

/// Durable state of self-monitoring.
///
/// Contract:
/// - Every method is durable on return: after `Ok`, a crash does not lose the write.
/// - The lease is exclusive across every process sharing the store; an expired lease may be taken
///   over. `release_lease` of a lease the caller no longer holds is a no-op.
/// - `last_successful_cursor` is the `log_id_end` of the most recently completed successful scan
///   that was not a dry run, or 0 before any: a dry run never moves the cursor.
/// - `complete_intent` records the issue row and removes the intent atomically (closing the
///   intent's backlog entry, if it has one, in the same step); after a crash either all happened
///   or none did.
/// - `commit_scan` makes a successful scan's record and all its effects durable atomically.
/// - Errors are `Error::Adapter { component: StateStore, retryable }`; a busy database is retryable,
///   a corrupt one is not.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Takes the single-flight lease for `ttl` unless another owner holds an unexpired one.
    async fn try_acquire_lease(
        &self,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseOutcome>;

    /// Releases a lease the caller holds.
    async fn release_lease(&self, lease: &Lease) -> Result<()>;

    /// The cursor: `log_id_end` of the latest successful scan, 0 before the first.
    async fn last_successful_cursor(&self) -> Result<i64>;

    /// Closes scans left RUNNING (by a crashed process) as FAILURE with `reason`; returns how many.
    /// Only call while holding the lease.
    async fn close_abandoned_scans(&self, now: DateTime<Utc>, reason: &str) -> Result<u64>;

    /// Inserts a scan record (status RUNNING).
    async fn begin_scan(&self, record: &ScanRecord) -> Result<()>;

    /// Updates a scan record to its final state (SUCCESS or FAILURE) without other effects (a
    /// failed scan, a dry run).
    async fn finish_scan(&self, record: &ScanRecord) -> Result<()>;

    /// Finishes a successful scan in one atomic step: stores `record` (status SUCCESS, its
    /// `log_id_end` becoming the cursor unless it is a dry run), adds `effects.occurrences` to the
    /// filed issues (numbers this store never recorded are ignored), adds `effects.deferred` to
    /// the backlog (an open entry with the same fingerprint absorbs the new entry's occurrences
    /// instead), closes `effects.closed` (each closure's issue receives the entry's occurrences;
    /// closing an entry that is no longer open does nothing) and saves `effects.template_state`.
    /// After a crash either all of it happened or none did.
    async fn commit_scan(&self, record: &ScanRecord, effects: &ScanEffects) -> Result<()>;

    /// Backlog entries not yet closed, in filing priority ([`BacklogEntry::priority`]: most severe
    /// first, then most occurrences, then oldest).
    async fn open_backlog(&self) -> Result<Vec<BacklogEntry>>;

    /// Closed backlog entries with why they were closed, most recently closed first.
    async fn closed_backlog(&self, page: PageRequest) -> Result<Page<ClosedBacklogEntry>>;

    /// Every issue selfmon filed, for dedup.
    async fn filed_issues(&self) -> Result<Vec<FiledIssue>>;

    /// Records `count` new occurrences of a filed issue seen at `now`, and its latest known state.
    async fn record_occurrences(
        &self,
        issue_number: u64,
        count: u64,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Updates the state of a filed issue (closed, reopened) as the tracker reports it.
    async fn set_issue_state(&self, issue_number: u64, state: IssueState) -> Result<()>;

    /// Commits a filing intent before the tracker is called (the outbox).
    async fn record_intent(&self, intent: &FilingIntent) -> Result<()>;

    /// Intents not yet completed, oldest first.
    async fn open_intents(&self) -> Result<Vec<FilingIntent>>;

    /// Records the filed issue and removes the intent, atomically; an intent with a
    /// `backlog_entry_id` also closes that entry (reason `filed as #N`) in the same step.
    /// Completing an intent twice keeps one issue row.
    async fn complete_intent(&self, intent_id: &str, issue: &FiledIssue) -> Result<()>;

    /// Scans, newest first.
    async fn list_scans(&self, page: PageRequest) -> Result<Page<ScanRecord>>;

    /// Filed issues, newest first.
    async fn list_issues(
        &self,
        filter: &IssueFilter,
        page: PageRequest,
    ) -> Result<Page<FiledIssue>>;

    /// Stores the report of a scan, bounded by [`ScanReport::bound`] (implementations apply it,
    /// so every store cuts an oversized report the same way), replacing an earlier report of the
    /// same scan id, and indexes its
    /// [`ScanReport::issue_events`] for [`issue_history`](StateStore::issue_history). Called
    /// before [`finish_scan`](StateStore::finish_scan) of a successful scan and after that of a
    /// failed one; the report's `record` is informative only (the scan row stays authoritative).
    /// Retention removes a scan's report and its events together with the scan.
    async fn save_scan_report(&self, report: &ScanReport) -> Result<()>;

    /// The report of one scan; `None` when the store has no scan with this id. Its `record` is
    /// the scan's stored record (so a scan later closed as abandoned shows as failed); a scan with
    /// no saved report gives empty lists and `details_recorded: false`.
    async fn scan_report(&self, scan_id: &ScanId) -> Result<Option<ScanReport>>;

    /// What scans did about one issue (filed it, matched its signatures, duplicated, commented,
    /// regressed), newest first, from the stored reports of non-dry-run scans.
    async fn issue_history(&self, issue_number: u64, page: PageRequest)
        -> Result<Page<IssueEvent>>;

    /// The templater's learned state (an opaque JSON document written by
    /// [`save_template_state`](StateStore::save_template_state)), so the same message maps to the
    /// same template across scans. `None` before the first save. The default keeps nothing.
    async fn load_template_state(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// Replaces the templater's learned state. The default discards it.
    async fn save_template_state(&self, _state: &str) -> Result<()> {
        Ok(())
    }
}
