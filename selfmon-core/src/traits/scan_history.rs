//! Read-only history for dashboards and UIs: pages of scans and filed issues.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{
    ClosedBacklogEntry, FiledIssue, IssueEvent, IssueState, ScanId, ScanRecord, ScanReport,
};

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

/// What the [`ScanLedger`](crate::ScanLedger) and [`IssueLedger`](crate::IssueLedger) recorded, read
/// back page by page for people (the CLI's `history`, a host's dashboard). The engine itself reads
/// only the newest scans (`list_scans`, one page of 20, once per scan, for the newest one's
/// [`analysis_failures`](crate::ScanRecord::analysis_failures)), so it only has to be as fast as a
/// page view.
///
/// Contract:
/// - Read-only and side-effect free: may be called (and retried) at any time, also during a scan.
/// - Pages are newest first; `total` counts every matching row, not only the page; a page holds at
///   most 500 items whatever `limit` asks; an `offset` past the end gives an empty page.
/// - Errors are `Error::Adapter { component: StateStore, retryable }`.
// Adding a method? List it in the `forward!` at the end of this file too.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ScanHistory: Send + Sync {
    /// Scans, newest first (by start time; among scans that started at the same time, the one
    /// begun last first), each as stored: every field of the record the ledger
    /// was given, including [`analysis_failures`](crate::ScanRecord::analysis_failures).
    async fn list_scans(&self, page: PageRequest) -> Result<Page<ScanRecord>>;

    /// Filed issues matching `filter`, newest first (by filing time).
    async fn list_issues(
        &self,
        filter: &IssueFilter,
        page: PageRequest,
    ) -> Result<Page<FiledIssue>>;

    /// Closed backlog entries with why they were closed, most recently closed first.
    async fn closed_backlog(&self, page: PageRequest) -> Result<Page<ClosedBacklogEntry>>;

    /// The report of one scan; `None` when the store has no scan with this id. Its `record` is
    /// the scan's stored record (so a scan later closed as abandoned shows as failed); a scan with
    /// no saved report gives empty lists and `details_recorded: false`.
    async fn scan_report(&self, scan_id: &ScanId) -> Result<Option<ScanReport>>;

    /// What scans did about one issue (filed it, matched its signatures, duplicated, commented,
    /// regressed), newest first, from the stored reports of non-dry-run scans.
    async fn issue_history(&self, issue_number: u64, page: PageRequest)
        -> Result<Page<IssueEvent>>;
}

crate::traits::forward::forward! {
    ScanHistory {
        async fn list_scans(&self, page: PageRequest) -> Result<Page<ScanRecord>>;
        async fn list_issues(&self, filter: &IssueFilter, page: PageRequest) -> Result<Page<FiledIssue>>;
        async fn closed_backlog(&self, page: PageRequest) -> Result<Page<ClosedBacklogEntry>>;
        async fn scan_report(&self, scan_id: &ScanId) -> Result<Option<ScanReport>>;
        async fn issue_history(&self, issue_number: u64, page: PageRequest) -> Result<Page<IssueEvent>>;
    }
}
