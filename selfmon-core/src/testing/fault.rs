//! Fault injection as wrappers: [`FaultyLogSource`], [`FaultyTracker`] and [`FaultyStateStore`]
//! wrap any implementation of their traits (the in-memory adapters, a real adapter, an `Arc` of
//! either) and make chosen calls fail, the way object_store's `ThrottledStore` adds behaviour
//! around any store. A failed call never reaches the wrapped value, except
//! [`TrackerFault::CreateLosesResponse`], which lets the issue be created and then loses the
//! answer. Every other call is passed through unchanged, default methods included.
//!
//! Keep a handle on the wrapped value to inspect it (wrap an `Arc`):
//!
//! ```
//! use std::sync::Arc;
//! use selfmon_core::memory::MemoryStateStore;
//! use selfmon_core::testing::{FaultyStateStore, StoreOp};
//!
//! let store = Arc::new(MemoryStateStore::new());
//! let faulty = Arc::new(FaultyStateStore::new(store.clone()));
//! faulty.fail(StoreOp::CommitScan);
//! // Build the engine with `faulty`; read what reached the store from `store`.
//! ```

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Component, Error, Result};
use crate::model::{
    BacklogEntry, ClosedBacklogEntry, FiledIssue, FilingIntent, IssueDraft, IssueEvent, IssueRef,
    IssueState, LogAnchor, LogRecord, Marker, ScanEffects, ScanId, ScanRecord, ScanReport,
    TrackedIssue,
};
use crate::redact::RedactedText;
use crate::traits::{
    IssueFilter, IssueLedger, IssueTracker, Lease, LeaseHolder, LeaseOutcome, LeaseRenewal,
    LogPage, LogSource, LogSourceDescription, Page, PageRequest, ScanHistory, ScanLedger,
    TemplateMemory,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A [`LogSource`] whose next read can be made to fail.
#[derive(Debug, Default)]
pub struct FaultyLogSource<T> {
    inner: T,
    fail_next: Mutex<Option<String>>,
}

impl<T> FaultyLogSource<T> {
    /// Wraps `inner`; no call fails until one is chosen.
    pub fn new(inner: T) -> Self {
        FaultyLogSource {
            inner,
            fail_next: Mutex::default(),
        }
    }

    /// The wrapped source.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Makes the next `read_after` fail with a non-retryable error carrying `message`.
    pub fn fail_next_read(&self, message: &str) {
        *lock(&self.fail_next) = Some(message.to_string());
    }
}

#[async_trait]
impl<T: LogSource> LogSource for FaultyLogSource<T> {
    async fn read_after(&self, after: i64, limit: usize) -> Result<LogPage> {
        let injected = lock(&self.fail_next).take();
        if let Some(message) = injected {
            return Err(Error::adapter(Component::LogSource, false, message));
        }
        self.inner.read_after(after, limit).await
    }

    async fn max_id(&self) -> Result<Option<i64>> {
        self.inner.max_id().await
    }

    async fn record_at(&self, id: i64) -> Result<Option<LogRecord>> {
        self.inner.record_at(id).await
    }

    fn describe(&self) -> LogSourceDescription {
        self.inner.describe()
    }
}

/// A failure for [`FaultyTracker`] to inject into a matching call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackerFault {
    /// `create_issue` fails before creating anything.
    CreateFails,
    /// `create_issue` creates the issue, then reports an error (the response was lost).
    CreateLosesResponse,
    /// `comment` fails.
    CommentFails,
    /// `comment` posts the comment, then reports an error (a 5xx or a timeout after the
    /// tracker stored it).
    CommentLosesResponse,
    /// `list_issues` fails.
    ListFails,
    /// `find_by_marker` fails.
    FindFails,
    /// `reopen` fails.
    ReopenFails,
    /// The rate limit is spent: the matching call (any call) and every later one fail with
    /// [`Error::RateLimited`] (resetting at `reset_at`) and change nothing, until
    /// [`FaultyTracker::lift_rate_limit`].
    RateLimited {
        /// The reset time the tracker reports.
        reset_at: DateTime<Utc>,
    },
}

#[derive(Debug, Default)]
struct TrackerFaults {
    pending: VecDeque<(usize, TrackerFault)>,
    /// Set while a fired rate limit lasts.
    rate_limited_until: Option<DateTime<Utc>>,
}

/// An [`IssueTracker`] whose calls fail as injected: a fault fires on a chosen matching call,
/// once; a rate limit, once fired, lasts until lifted.
#[derive(Debug, Default)]
pub struct FaultyTracker<T> {
    inner: T,
    faults: Mutex<TrackerFaults>,
}

impl<T> FaultyTracker<T> {
    /// Wraps `inner`; no call fails until a fault is injected.
    pub fn new(inner: T) -> Self {
        FaultyTracker {
            inner,
            faults: Mutex::default(),
        }
    }

    /// The wrapped tracker.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Injects `fault` into the matching call after `skip` matching calls have succeeded (for
    /// [`TrackerFault::RateLimited`] every call matches).
    pub fn inject(&self, skip: usize, fault: TrackerFault) {
        lock(&self.faults).pending.push_back((skip, fault));
    }

    /// Drops every injected fault that has not fired yet (a rate limit that fired lasts until
    /// [`lift_rate_limit`](Self::lift_rate_limit)).
    pub fn clear_faults(&self) {
        lock(&self.faults).pending.clear();
    }

    /// Ends a rate limit that fired (its reset time came); calls succeed again.
    pub fn lift_rate_limit(&self) {
        lock(&self.faults).rate_limited_until = None;
    }

    /// When the rate limit that fired resets, while it lasts.
    pub fn rate_limited_until(&self) -> Option<DateTime<Utc>> {
        lock(&self.faults).rate_limited_until
    }

    /// The fault this call meets: a rate limit that lasts, or the first injected fault of one of
    /// `kinds` (or a rate limit) whose skip count is used up.
    fn take_fault(&self, kinds: &[TrackerFault]) -> Result<Option<TrackerFault>> {
        let mut f = lock(&self.faults);
        if let Some(reset_at) = f.rate_limited_until {
            return Err(rate_limited(reset_at));
        }
        let Some(pos) = f
            .pending
            .iter()
            .position(|(_, f)| kinds.contains(f) || matches!(f, TrackerFault::RateLimited { .. }))
        else {
            return Ok(None);
        };
        if f.pending[pos].0 > 0 {
            f.pending[pos].0 -= 1;
            return Ok(None);
        }
        match f.pending.remove(pos).map(|(_, fault)| fault) {
            Some(TrackerFault::RateLimited { reset_at }) => {
                f.rate_limited_until = Some(reset_at);
                Err(rate_limited(reset_at))
            }
            other => Ok(other),
        }
    }

    /// Fails with an injected (retryable) error when `kind` fires.
    fn check(&self, kind: TrackerFault, what: &str) -> Result<()> {
        match self.take_fault(&[kind])? {
            Some(_) => Err(tracker_fault(what)),
            None => Ok(()),
        }
    }
}

fn rate_limited(reset_at: DateTime<Utc>) -> Error {
    Error::RateLimited {
        component: Component::IssueTracker,
        reset_at: Some(reset_at),
        source: "injected fault: rate limit spent".into(),
    }
}

fn tracker_fault(what: &str) -> Error {
    Error::adapter(
        Component::IssueTracker,
        true,
        format!("injected fault: {what}"),
    )
}

#[async_trait]
impl<T: IssueTracker> IssueTracker for FaultyTracker<T> {
    async fn list_issues(&self, closed_since: Option<DateTime<Utc>>) -> Result<Vec<TrackedIssue>> {
        self.check(TrackerFault::ListFails, "list")?;
        self.inner.list_issues(closed_since).await
    }

    async fn create_issue(&self, draft: &IssueDraft) -> Result<IssueRef> {
        let fault =
            self.take_fault(&[TrackerFault::CreateFails, TrackerFault::CreateLosesResponse])?;
        if fault == Some(TrackerFault::CreateFails) {
            return Err(tracker_fault("create"));
        }
        let created = self.inner.create_issue(draft).await?;
        if fault == Some(TrackerFault::CreateLosesResponse) {
            return Err(tracker_fault("create response lost"));
        }
        Ok(created)
    }

    async fn comment(&self, number: u64, body: &RedactedText) -> Result<()> {
        let fault = self.take_fault(&[
            TrackerFault::CommentFails,
            TrackerFault::CommentLosesResponse,
        ])?;
        if fault == Some(TrackerFault::CommentFails) {
            return Err(tracker_fault("comment"));
        }
        self.inner.comment(number, body).await?;
        if fault == Some(TrackerFault::CommentLosesResponse) {
            return Err(tracker_fault("comment response lost"));
        }
        Ok(())
    }

    async fn reopen(&self, number: u64) -> Result<()> {
        self.check(TrackerFault::ReopenFails, "reopen")?;
        self.inner.reopen(number).await
    }

    async fn find_by_marker(&self, marker: &Marker) -> Result<Option<IssueRef>> {
        self.check(TrackerFault::FindFails, "find")?;
        self.inner.find_by_marker(marker).await
    }

    async fn get_issue(&self, number: u64) -> Result<Option<TrackedIssue>> {
        self.inner.get_issue(number).await
    }
}

/// Operations of a state store that [`FaultyStateStore`] can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreOp {
    /// `begin_scan`.
    BeginScan,
    /// `finish_scan`.
    FinishScan,
    /// `filed_issues`.
    FiledIssues,
    /// `record_intent`.
    RecordIntent,
    /// `complete_intent`.
    CompleteIntent,
    /// `record_occurrences`.
    RecordOccurrences,
    /// `save_scan_report`.
    SaveScanReport,
    /// `commit_scan`.
    CommitScan,
    /// `open_backlog`.
    OpenBacklog,
    /// `open_intents`.
    OpenIntents,
    /// `save_template_state`.
    SaveTemplateState,
    /// `renew_lease` (the store is unreachable for the heartbeat).
    RenewLease,
}

/// A state store ([`ScanLedger`], [`IssueLedger`], [`ScanHistory`], [`TemplateMemory`]: whichever
/// the wrapped value implements) whose chosen operations fail, with a retryable error and without
/// reaching the wrapped store, until healed.
#[derive(Debug, Default)]
pub struct FaultyStateStore<T> {
    inner: T,
    failing: Mutex<HashSet<StoreOp>>,
}

impl<T> FaultyStateStore<T> {
    /// Wraps `inner`; nothing fails until an operation is chosen.
    pub fn new(inner: T) -> Self {
        FaultyStateStore {
            inner,
            failing: Mutex::default(),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Makes `op` fail until [`heal`](Self::heal) is called.
    pub fn fail(&self, op: StoreOp) {
        lock(&self.failing).insert(op);
    }

    /// Stops every injected failure.
    pub fn heal(&self) {
        lock(&self.failing).clear();
    }

    fn check(&self, op: StoreOp) -> Result<()> {
        if lock(&self.failing).contains(&op) {
            return Err(Error::adapter(
                Component::StateStore,
                true,
                format!("injected fault: {op:?}"),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl<T: ScanLedger> ScanLedger for FaultyStateStore<T> {
    async fn try_acquire_lease(
        &self,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseOutcome> {
        self.inner.try_acquire_lease(owner, ttl, now).await
    }

    async fn try_acquire_lease_for(
        &self,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseOutcome> {
        self.inner.try_acquire_lease_for(holder, ttl, now).await
    }

    async fn take_over_lease(
        &self,
        stale: &Lease,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseOutcome> {
        self.inner.take_over_lease(stale, holder, ttl, now).await
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseRenewal> {
        self.check(StoreOp::RenewLease)?;
        self.inner.renew_lease(lease, ttl, now).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        self.inner.release_lease(lease).await
    }

    async fn last_successful_cursor(&self) -> Result<i64> {
        self.inner.last_successful_cursor().await
    }

    async fn last_successful_anchor(&self) -> Result<Option<LogAnchor>> {
        self.inner.last_successful_anchor().await
    }

    async fn close_abandoned_scans(
        &self,
        now: DateTime<Utc>,
        reason: &RedactedText,
    ) -> Result<u64> {
        self.inner.close_abandoned_scans(now, reason).await
    }

    async fn begin_scan(&self, record: &ScanRecord) -> Result<()> {
        self.check(StoreOp::BeginScan)?;
        self.inner.begin_scan(record).await
    }

    async fn finish_scan(&self, record: &ScanRecord) -> Result<()> {
        self.check(StoreOp::FinishScan)?;
        self.inner.finish_scan(record).await
    }

    async fn save_scan_report(&self, report: &ScanReport) -> Result<()> {
        self.check(StoreOp::SaveScanReport)?;
        self.inner.save_scan_report(report).await
    }

    async fn commit_scan(&self, record: &ScanRecord, effects: &ScanEffects) -> Result<()> {
        self.check(StoreOp::CommitScan)?;
        self.inner.commit_scan(record, effects).await
    }
}

#[async_trait]
impl<T: IssueLedger> IssueLedger for FaultyStateStore<T> {
    async fn filed_issues(&self) -> Result<Vec<FiledIssue>> {
        self.check(StoreOp::FiledIssues)?;
        self.inner.filed_issues().await
    }

    async fn record_occurrences(
        &self,
        issue_number: u64,
        count: u64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.check(StoreOp::RecordOccurrences)?;
        self.inner
            .record_occurrences(issue_number, count, now)
            .await
    }

    async fn set_issue_state(&self, issue_number: u64, state: IssueState) -> Result<()> {
        self.inner.set_issue_state(issue_number, state).await
    }

    async fn set_regression_noted(
        &self,
        issue_number: u64,
        noted_for: Option<DateTime<Utc>>,
    ) -> Result<()> {
        self.inner
            .set_regression_noted(issue_number, noted_for)
            .await
    }

    async fn add_issue_signatures(
        &self,
        issue_number: u64,
        signature_ids: &[String],
    ) -> Result<()> {
        self.inner
            .add_issue_signatures(issue_number, signature_ids)
            .await
    }

    async fn forget_issue(&self, issue_number: u64) -> Result<bool> {
        self.inner.forget_issue(issue_number).await
    }

    async fn record_intent(&self, intent: &FilingIntent) -> Result<()> {
        self.check(StoreOp::RecordIntent)?;
        self.inner.record_intent(intent).await
    }

    async fn open_intents(&self) -> Result<Vec<FilingIntent>> {
        self.check(StoreOp::OpenIntents)?;
        self.inner.open_intents().await
    }

    async fn complete_intent(&self, intent_id: &str, issue: &FiledIssue) -> Result<()> {
        self.check(StoreOp::CompleteIntent)?;
        self.inner.complete_intent(intent_id, issue).await
    }

    async fn open_backlog(&self) -> Result<Vec<BacklogEntry>> {
        self.check(StoreOp::OpenBacklog)?;
        self.inner.open_backlog().await
    }
}

#[async_trait]
impl<T: ScanHistory> ScanHistory for FaultyStateStore<T> {
    async fn list_scans(&self, page: PageRequest) -> Result<Page<ScanRecord>> {
        self.inner.list_scans(page).await
    }

    async fn list_issues(
        &self,
        filter: &IssueFilter,
        page: PageRequest,
    ) -> Result<Page<FiledIssue>> {
        self.inner.list_issues(filter, page).await
    }

    async fn closed_backlog(&self, page: PageRequest) -> Result<Page<ClosedBacklogEntry>> {
        self.inner.closed_backlog(page).await
    }

    async fn scan_report(&self, scan_id: &ScanId) -> Result<Option<ScanReport>> {
        self.inner.scan_report(scan_id).await
    }

    async fn issue_history(
        &self,
        issue_number: u64,
        page: PageRequest,
    ) -> Result<Page<IssueEvent>> {
        self.inner.issue_history(issue_number, page).await
    }
}

#[async_trait]
impl<T: TemplateMemory> TemplateMemory for FaultyStateStore<T> {
    async fn load_template_state(&self) -> Result<Option<String>> {
        self.inner.load_template_state().await
    }

    async fn save_template_state(&self, state: &str) -> Result<()> {
        self.check(StoreOp::SaveTemplateState)?;
        self.inner.save_template_state(state).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::memory::{MemoryIssueTracker, MemoryLogSource, MemoryStateStore};
    use crate::model::{Classification, Level};
    use crate::redact::Redactor;

    fn draft(title: &str) -> IssueDraft {
        let marker = Marker::for_fingerprint(title);
        IssueDraft {
            title: Redactor::shared().redacted(title),
            body: Redactor::shared().redacted(marker.as_str()),
            labels: vec!["selfmon".into()],
            classification: Classification::ServerBug,
            fingerprint: title.to_string(),
            marker,
        }
    }

    #[tokio::test]
    async fn an_injected_create_failure_fires_once_on_the_chosen_call_and_creates_nothing() {
        let tracker = Arc::new(MemoryIssueTracker::new());
        let faulty = FaultyTracker::new(tracker.clone());
        faulty.inject(1, TrackerFault::CreateFails);
        faulty.create_issue(&draft("a")).await.unwrap();
        assert!(faulty.create_issue(&draft("b")).await.is_err());
        faulty.create_issue(&draft("c")).await.unwrap();
        let titles: Vec<String> = tracker.issues().into_iter().map(|i| i.title).collect();
        assert_eq!(titles, ["a", "c"]);
    }

    #[tokio::test]
    async fn a_lost_create_response_still_creates_the_issue() {
        let tracker = Arc::new(MemoryIssueTracker::new());
        let faulty = FaultyTracker::new(tracker.clone());
        faulty.inject(0, TrackerFault::CreateLosesResponse);
        assert!(faulty.create_issue(&draft("a")).await.is_err());
        assert_eq!(tracker.issues().len(), 1);
    }

    #[tokio::test]
    async fn a_rate_limit_fails_every_call_until_lifted() {
        let tracker = Arc::new(MemoryIssueTracker::new());
        let faulty = FaultyTracker::new(tracker.clone());
        let reset_at = Utc::now();
        faulty.inject(0, TrackerFault::RateLimited { reset_at });
        for _ in 0..2 {
            assert!(matches!(
                faulty.list_issues(None).await,
                Err(Error::RateLimited { reset_at: Some(r), .. }) if r == reset_at
            ));
            assert!(faulty.create_issue(&draft("a")).await.is_err());
        }
        assert_eq!(faulty.rate_limited_until(), Some(reset_at));
        assert!(
            tracker.issues().is_empty(),
            "a rate-limited call changes nothing"
        );
        faulty.lift_rate_limit();
        faulty.create_issue(&draft("a")).await.unwrap();
        assert_eq!(tracker.issues().len(), 1);
    }

    #[tokio::test]
    async fn a_failing_store_operation_fails_until_healed_and_leaves_the_store_untouched() {
        let store = Arc::new(MemoryStateStore::new());
        let faulty = FaultyStateStore::new(store.clone());
        faulty.fail(StoreOp::SaveTemplateState);
        assert!(faulty.save_template_state("x").await.is_err());
        assert!(faulty.save_template_state("x").await.is_err());
        assert_eq!(store.load_template_state().await.unwrap(), None);
        // Other operations pass through.
        assert_eq!(faulty.filed_issues().await.unwrap(), Vec::new());
        faulty.heal();
        faulty.save_template_state("x").await.unwrap();
        assert_eq!(
            store.load_template_state().await.unwrap().as_deref(),
            Some("x")
        );
    }

    #[tokio::test]
    async fn a_failed_read_fails_once_then_reads_through() {
        let logs = Arc::new(MemoryLogSource::new());
        logs.log(Level::Error, "app", "boom");
        let faulty = FaultyLogSource::new(logs);
        faulty.fail_next_read("disk image is malformed");
        let e = faulty.read_after(0, 10).await.unwrap_err();
        assert!(e.to_string().contains("disk image is malformed"), "{e}");
        assert_eq!(faulty.read_after(0, 10).await.unwrap().records.len(), 1);
    }

    #[tokio::test]
    async fn the_wrappers_pass_their_traits_conformance_suites() {
        crate::conformance::state_store(&FaultyStateStore::new(MemoryStateStore::new())).await;
        crate::conformance::template_memory(&FaultyStateStore::new(MemoryStateStore::new())).await;
        crate::conformance::issue_tracker(&FaultyTracker::new(MemoryIssueTracker::new())).await;
        let records = crate::conformance::sample_records();
        let logs = MemoryLogSource::new();
        for r in &records {
            logs.append(r.clone());
        }
        crate::conformance::log_source(&FaultyLogSource::new(logs), &records, Level::Warning).await;
    }
}
