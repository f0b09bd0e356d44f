//! `mockall` mocks of every trait, for interaction tests ("was comment called once").
//! Enabled by the `mock` feature.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mockall::mock;

use crate::error::Result;
use crate::model::{
    BacklogEntry, ClosedBacklogEntry, FiledIssue, FilingIntent, Finding, IssueDraft, IssueEvent,
    IssueRef, IssueState, Marker, ScanEffects, ScanId, ScanRecord, ScanReport, TrackedIssue,
};
use crate::redact::RedactedText;
use crate::traits::{
    Analysis, AnalysisRequest, AnalysisRunner, DedupDecision, Deduplicator, IssueFilter,
    IssueLedger, IssueTracker, JobId, JobKind, JobQueue, JobSpec, JobStatus, KnownIssuesView,
    Lease, LeaseOutcome, LogPage, LogSource, LogSourceDescription, Page, PageRequest, ScanHistory,
    ScanLedger, Submission, TemplateMemory,
};

mock! {
    /// Mock [`LogSource`].
    pub LogSource {}
    #[async_trait]
    impl LogSource for LogSource {
        async fn read_after(&self, after: i64, limit: usize) -> Result<LogPage>;
        async fn max_id(&self) -> Result<Option<i64>>;
        fn describe(&self) -> LogSourceDescription;
    }
}

mock! {
    /// Mock [`JobQueue`].
    pub JobQueue {}
    #[async_trait]
    impl JobQueue for JobQueue {
        async fn submit(&self, job: JobSpec) -> Result<JobId>;
        async fn active_job(&self, kind: &JobKind) -> Result<Option<(JobId, JobStatus)>>;
        async fn status(&self, id: &JobId) -> Result<Option<JobStatus>>;
        async fn submit_if_idle(&self, job: JobSpec) -> Result<Submission>;
    }
}

mock! {
    /// Mock [`AnalysisRunner`].
    pub AnalysisRunner {}
    #[async_trait]
    impl AnalysisRunner for AnalysisRunner {
        async fn analyze(&self, request: &AnalysisRequest) -> Result<Analysis>;
        fn name(&self) -> &str;
    }
}

mock! {
    /// Mock [`IssueTracker`].
    pub IssueTracker {}
    #[async_trait]
    impl IssueTracker for IssueTracker {
        async fn list_issues(&self, closed_since: Option<DateTime<Utc>>) -> Result<Vec<TrackedIssue>>;
        async fn create_issue(&self, draft: &IssueDraft) -> Result<IssueRef>;
        async fn comment(&self, number: u64, body: &RedactedText) -> Result<()>;
        async fn reopen(&self, number: u64) -> Result<()>;
        async fn find_by_marker(&self, marker: &Marker) -> Result<Option<IssueRef>>;
    }
}

mock! {
    /// Mock [`Deduplicator`]; `explain_signature` keeps its default.
    pub Deduplicator {}
    #[async_trait]
    #[allow(unused_parens)] // the `'static` view bound needs them; mockall copies them.
    impl Deduplicator for Deduplicator {
        async fn decide(&self, finding: &Finding, fingerprint: &str, known: &(dyn KnownIssuesView + 'static)) -> Result<DedupDecision>;
    }
}

mock! {
    /// Mock [`StateStore`]: every part ([`ScanLedger`], [`IssueLedger`], [`ScanHistory`]) on one
    /// object.
    pub StateStore {}
    #[async_trait]
    impl ScanLedger for StateStore {
        async fn try_acquire_lease(&self, owner: &str, ttl: std::time::Duration, now: DateTime<Utc>) -> Result<LeaseOutcome>;
        async fn release_lease(&self, lease: &Lease) -> Result<()>;
        async fn last_successful_cursor(&self) -> Result<i64>;
        async fn close_abandoned_scans(&self, now: DateTime<Utc>, reason: &str) -> Result<u64>;
        async fn begin_scan(&self, record: &ScanRecord) -> Result<()>;
        async fn finish_scan(&self, record: &ScanRecord) -> Result<()>;
        async fn save_scan_report(&self, report: &ScanReport) -> Result<()>;
        async fn commit_scan(&self, record: &ScanRecord, effects: &ScanEffects) -> Result<()>;
    }
    #[async_trait]
    impl IssueLedger for StateStore {
        async fn open_backlog(&self) -> Result<Vec<BacklogEntry>>;
        async fn filed_issues(&self) -> Result<Vec<FiledIssue>>;
        async fn record_occurrences(&self, issue_number: u64, count: u64, now: DateTime<Utc>) -> Result<()>;
        async fn set_issue_state(&self, issue_number: u64, state: IssueState) -> Result<()>;
        async fn record_intent(&self, intent: &FilingIntent) -> Result<()>;
        async fn open_intents(&self) -> Result<Vec<FilingIntent>>;
        async fn complete_intent(&self, intent_id: &str, issue: &FiledIssue) -> Result<()>;
    }
    #[async_trait]
    impl ScanHistory for StateStore {
        async fn list_scans(&self, page: PageRequest) -> Result<Page<ScanRecord>>;
        async fn list_issues(&self, filter: &IssueFilter, page: PageRequest) -> Result<Page<FiledIssue>>;
        async fn closed_backlog(&self, page: PageRequest) -> Result<Page<ClosedBacklogEntry>>;
        async fn scan_report(&self, scan_id: &ScanId) -> Result<Option<ScanReport>>;
        async fn issue_history(&self, issue_number: u64, page: PageRequest) -> Result<Page<IssueEvent>>;
    }
}

mock! {
    /// Mock [`TemplateMemory`].
    pub TemplateMemory {}
    #[async_trait]
    impl TemplateMemory for TemplateMemory {
        async fn load_template_state(&self) -> Result<Option<String>>;
        async fn save_template_state(&self, state: &str) -> Result<()>;
    }
}
