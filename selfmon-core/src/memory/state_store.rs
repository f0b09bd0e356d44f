//! An in-memory state store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::model::{
    BacklogClosure, BacklogEntry, ClosedBacklogEntry, FiledIssue, FilingIntent, IssueEvent,
    IssueState, LogAnchor, ScanEffects, ScanId, ScanRecord, ScanReport, ScanStatus,
};
use crate::redact::RedactedText;
use crate::traits::{
    IssueFilter, IssueLedger, Lease, LeaseHolder, LeaseOutcome, LeaseRenewal, Page, PageRequest,
    ScanHistory, ScanLedger, TemplateMemory,
};

#[derive(Debug, Default)]
struct Inner {
    lease: Option<Lease>,
    scans: Vec<ScanRecord>,
    issues: Vec<FiledIssue>,
    intents: Vec<FilingIntent>,
    templates: Option<String>,
    reports: HashMap<ScanId, ScanReport>,
    backlog: Vec<BacklogEntry>,
    closed_backlog: Vec<ClosedBacklogEntry>,
}

impl Inner {
    /// The filed issue numbered `issue_number`, if selfmon filed one.
    fn issue_mut(&mut self, issue_number: u64) -> Option<&mut FiledIssue> {
        self.issues
            .iter_mut()
            .find(|i| i.issue.number == issue_number)
    }

    fn add_occurrences(&mut self, issue_number: u64, count: u64, now: DateTime<Utc>) {
        if let Some(i) = self.issue_mut(issue_number) {
            i.occurrences += count;
            i.last_seen_at = i.last_seen_at.max(now);
        }
    }

    /// Closes an open entry (giving its occurrences to the covering issue when `give_occurrences`);
    /// no-op when the entry is not open.
    fn close_entry(
        &mut self,
        closure: &BacklogClosure,
        give_occurrences: bool,
        now: DateTime<Utc>,
    ) {
        let Some(pos) = self
            .backlog
            .iter()
            .position(|e| e.entry_id == closure.entry_id)
        else {
            return;
        };
        let entry = self.backlog.remove(pos);
        if let Some(issue) = closure.issue.filter(|_| give_occurrences) {
            self.add_occurrences(issue, entry.occurrences, now);
        }
        self.closed_backlog.push(ClosedBacklogEntry {
            entry,
            closure: closure.clone(),
            closed_at: now,
        });
    }
}

/// One page of `all` (already filtered and ordered), with the total; pages hold at most 500.
fn paginate<T: Clone>(all: Vec<&T>, page: PageRequest) -> Page<T> {
    Page {
        total: all.len() as u64,
        items: all
            .into_iter()
            .skip(page.offset as usize)
            .take(page.limit.min(500) as usize)
            .cloned()
            .collect(),
    }
}

fn expiry(ttl: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|t| now.checked_add_signed(t))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn grant(holder: &LeaseHolder, ttl: Duration, now: DateTime<Utc>) -> Lease {
    Lease {
        owner: holder.owner.clone(),
        host: holder.host.clone(),
        pid: holder.pid,
        process_start: holder.process_start.clone(),
        acquired_at: now,
        expires_at: expiry(ttl, now),
    }
}

/// State in memory: good for tests and for hosts that keep no history. A
/// [`StateStore`](crate::StateStore) and a [`TemplateMemory`].
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    inner: Mutex<Inner>,
}

impl MemoryStateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every scan record, oldest first.
    pub fn scans(&self) -> Vec<ScanRecord> {
        self.lock().scans.clone()
    }

    /// Every filed issue.
    pub fn issues(&self) -> Vec<FiledIssue> {
        self.lock().issues.clone()
    }

    /// Open intents.
    pub fn intents(&self) -> Vec<FilingIntent> {
        self.lock().intents.clone()
    }

    /// Open backlog entries, in insertion order.
    pub fn backlog(&self) -> Vec<BacklogEntry> {
        self.lock().backlog.clone()
    }

    /// The current lease holder, if any (expired or not).
    pub fn lease(&self) -> Option<Lease> {
        self.lock().lease.clone()
    }

    /// Everything the store holds (scan records, filed issues, intents, backlog, closed backlog,
    /// the learned template state), as text for tests that search all of it: each record's JSON,
    /// then its debug form, then the raw template state.
    pub fn dump(&self) -> String {
        let i = self.lock();
        let mut out = String::new();
        for s in &i.scans {
            out.push_str(&json(s));
        }
        for x in &i.issues {
            out.push_str(&json(x));
        }
        for x in &i.intents {
            out.push_str(&json(x));
        }
        for x in &i.backlog {
            out.push_str(&json(x));
        }
        for x in &i.closed_backlog {
            out.push_str(&json(x));
        }
        out.push_str(&format!("{:?}", *i));
        if let Some(t) = &i.templates {
            out.push_str(t);
        }
        out
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[async_trait]
impl ScanLedger for MemoryStateStore {
    async fn try_acquire_lease(
        &self,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseOutcome> {
        self.try_acquire_lease_for(&LeaseHolder::named(owner), ttl, now)
            .await
    }

    async fn try_acquire_lease_for(
        &self,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseOutcome> {
        let mut i = self.lock();
        if let Some(l) = &i.lease {
            if l.expires_at > now && l.owner != holder.owner {
                return Ok(LeaseOutcome::Held(l.clone()));
            }
        }
        let lease = grant(holder, ttl, now);
        i.lease = Some(lease.clone());
        Ok(LeaseOutcome::Acquired(lease))
    }

    async fn take_over_lease(
        &self,
        stale: &Lease,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseOutcome> {
        let mut i = self.lock();
        if let Some(l) = &i.lease {
            if l.owner != stale.owner && l.owner != holder.owner && l.expires_at > now {
                return Ok(LeaseOutcome::Held(l.clone()));
            }
        }
        let lease = grant(holder, ttl, now);
        i.lease = Some(lease.clone());
        Ok(LeaseOutcome::Acquired(lease))
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseRenewal> {
        let mut i = self.lock();
        match &mut i.lease {
            Some(l) if l.owner == lease.owner => {
                l.expires_at = expiry(ttl, now);
                Ok(LeaseRenewal::Renewed(l.clone()))
            }
            other => Ok(LeaseRenewal::Lost(other.clone())),
        }
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        let mut i = self.lock();
        if i.lease.as_ref().is_some_and(|l| l.owner == lease.owner) {
            i.lease = None;
        }
        Ok(())
    }

    async fn last_successful_cursor(&self) -> Result<i64> {
        Ok(self
            .lock()
            .scans
            .iter()
            .filter(|s| s.status == ScanStatus::Success && !s.dry_run)
            .max_by_key(|s| (s.completed_at, s.started_at))
            .map(|s| s.log_id_end)
            .unwrap_or(0))
    }

    async fn last_successful_anchor(&self) -> Result<Option<LogAnchor>> {
        Ok(self
            .lock()
            .scans
            .iter()
            .filter(|s| s.status == ScanStatus::Success && !s.dry_run)
            .max_by_key(|s| (s.completed_at, s.started_at))
            .and_then(|s| s.log_anchor.clone()))
    }

    async fn close_abandoned_scans(
        &self,
        now: DateTime<Utc>,
        reason: &crate::redact::RedactedText,
    ) -> Result<u64> {
        let mut n = 0;
        for s in self
            .lock()
            .scans
            .iter_mut()
            .filter(|s| s.status == ScanStatus::Running)
        {
            s.status = ScanStatus::Failure;
            s.completed_at = Some(now);
            s.error_message = Some(reason.clone());
            n += 1;
        }
        Ok(n)
    }

    async fn begin_scan(&self, record: &ScanRecord) -> Result<()> {
        self.lock().scans.push(record.clone());
        Ok(())
    }

    async fn finish_scan(&self, record: &ScanRecord) -> Result<()> {
        let mut i = self.lock();
        match i.scans.iter_mut().find(|s| s.scan_id == record.scan_id) {
            Some(s) => *s = record.clone(),
            None => i.scans.push(record.clone()),
        }
        Ok(())
    }

    async fn save_scan_report(&self, report: &ScanReport) -> Result<()> {
        let mut report = report.clone();
        report.bound();
        self.lock()
            .reports
            .insert(report.record.scan_id.clone(), report);
        Ok(())
    }

    async fn commit_scan(&self, record: &ScanRecord, effects: &ScanEffects) -> Result<()> {
        let now = record.completed_at.unwrap_or(record.started_at);
        let mut i = self.lock();
        for o in &effects.occurrences {
            i.add_occurrences(o.issue, o.count, now);
        }
        for entry in &effects.deferred {
            match i
                .backlog
                .iter_mut()
                .find(|e| e.fingerprint == entry.fingerprint)
            {
                Some(open) => open.occurrences += entry.occurrences,
                None => i.backlog.push(entry.clone()),
            }
        }
        for closure in &effects.closed {
            i.close_entry(closure, true, now);
        }
        for added in &effects.issue_signatures {
            if let Some(issue) = i.issue_mut(added.issue) {
                if !issue.signature_ids.contains(&added.signature_id) {
                    issue.signature_ids.push(added.signature_id.clone());
                }
            }
        }
        if let Some(state) = &effects.template_state {
            i.templates = Some(state.clone());
        }
        match i.scans.iter_mut().find(|s| s.scan_id == record.scan_id) {
            Some(s) => *s = record.clone(),
            None => i.scans.push(record.clone()),
        }
        Ok(())
    }
}

#[async_trait]
impl IssueLedger for MemoryStateStore {
    async fn open_backlog(&self) -> Result<Vec<BacklogEntry>> {
        let mut all = self.lock().backlog.clone();
        all.sort_by_key(BacklogEntry::priority);
        Ok(all)
    }

    async fn filed_issues(&self) -> Result<Vec<FiledIssue>> {
        Ok(self.lock().issues.clone())
    }

    async fn record_occurrences(
        &self,
        issue_number: u64,
        count: u64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.lock().add_occurrences(issue_number, count, now);
        Ok(())
    }

    async fn set_issue_state(&self, issue_number: u64, state: IssueState) -> Result<()> {
        if let Some(i) = self.lock().issue_mut(issue_number) {
            i.issue.state = state;
            if state == IssueState::Open {
                i.regression_noted_for = None;
            }
        }
        Ok(())
    }

    async fn set_regression_noted(
        &self,
        issue_number: u64,
        noted_for: Option<DateTime<Utc>>,
    ) -> Result<()> {
        if let Some(i) = self.lock().issue_mut(issue_number) {
            i.regression_noted_for = noted_for;
        }
        Ok(())
    }

    async fn add_issue_signatures(
        &self,
        issue_number: u64,
        signature_ids: &[String],
    ) -> Result<()> {
        if let Some(i) = self.lock().issue_mut(issue_number) {
            for id in signature_ids {
                if !i.signature_ids.contains(id) {
                    i.signature_ids.push(id.clone());
                }
            }
        }
        Ok(())
    }

    async fn forget_issue(&self, issue_number: u64) -> Result<bool> {
        let mut inner = self.lock();
        let before = inner.issues.len();
        inner.issues.retain(|i| i.issue.number != issue_number);
        Ok(inner.issues.len() != before)
    }

    async fn record_intent(&self, intent: &FilingIntent) -> Result<()> {
        self.lock().intents.push(intent.clone());
        Ok(())
    }

    async fn open_intents(&self) -> Result<Vec<FilingIntent>> {
        Ok(self.lock().intents.clone())
    }

    async fn complete_intent(&self, intent_id: &str, issue: &FiledIssue) -> Result<()> {
        let mut i = self.lock();
        let backlog_entry = i
            .intents
            .iter()
            .find(|x| x.intent_id == intent_id)
            .and_then(|x| x.backlog_entry_id.clone());
        i.intents.retain(|x| x.intent_id != intent_id);
        if let Some(entry_id) = backlog_entry {
            // The entry's occurrences are already in the issue row (the intent carried them).
            i.close_entry(
                &BacklogClosure {
                    entry_id,
                    reason: RedactedText::from_stored(&format!("filed as #{}", issue.issue.number)),
                    issue: Some(issue.issue.number),
                },
                false,
                issue.created_at,
            );
        }
        // One row per number, as the SQL stores keep: completing twice (a retry) rewrites the
        // same row, and a filing under a number the store holds from another tracker (the
        // configuration now names another repository or folder) replaces that stale row, whose
        // issue this tracker does not have.
        match i
            .issues
            .iter_mut()
            .find(|x| x.issue.number == issue.issue.number)
        {
            Some(x) => *x = issue.clone(),
            None => i.issues.push(issue.clone()),
        }
        Ok(())
    }
}

#[async_trait]
impl ScanHistory for MemoryStateStore {
    async fn list_scans(&self, page: PageRequest) -> Result<Page<ScanRecord>> {
        let i = self.lock();
        // Latest begun first among scans that started at the same time (a stable sort).
        let mut all: Vec<&ScanRecord> = i.scans.iter().rev().collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.started_at));
        Ok(paginate(all, page))
    }

    async fn scan_report(&self, scan_id: &ScanId) -> Result<Option<ScanReport>> {
        let i = self.lock();
        let Some(record) = i.scans.iter().find(|s| &s.scan_id == scan_id) else {
            return Ok(None);
        };
        Ok(Some(match i.reports.get(scan_id) {
            Some(r) => ScanReport {
                record: record.clone(),
                ..r.clone()
            },
            None => ScanReport {
                details_recorded: false,
                ..ScanReport::new(record.clone())
            },
        }))
    }

    async fn issue_history(
        &self,
        issue_number: u64,
        page: PageRequest,
    ) -> Result<Page<IssueEvent>> {
        let i = self.lock();
        let events: Vec<IssueEvent> = i
            .scans
            .iter()
            .filter_map(|s| i.reports.get(&s.scan_id))
            .flat_map(|r| r.issue_events())
            .filter(|e| e.issue_number == issue_number)
            .collect();
        let mut all: Vec<&IssueEvent> = events.iter().collect();
        // Newest first; within a scan, in the order the scan did them.
        all.reverse();
        all.sort_by_key(|e| std::cmp::Reverse(e.at));
        Ok(paginate(all, page))
    }

    async fn list_issues(
        &self,
        filter: &IssueFilter,
        page: PageRequest,
    ) -> Result<Page<FiledIssue>> {
        let i = self.lock();
        let mut all: Vec<&FiledIssue> = i
            .issues
            .iter()
            .filter(|x| filter.classification.is_none_or(|c| c == x.classification))
            .filter(|x| filter.state.is_none_or(|s| s == x.issue.state))
            .collect();
        all.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then(b.issue.number.cmp(&a.issue.number))
        });
        Ok(paginate(all, page))
    }

    async fn closed_backlog(&self, page: PageRequest) -> Result<Page<ClosedBacklogEntry>> {
        let i = self.lock();
        let all: Vec<&ClosedBacklogEntry> = i.closed_backlog.iter().rev().collect();
        Ok(paginate(all, page))
    }
}

#[async_trait]
impl TemplateMemory for MemoryStateStore {
    async fn load_template_state(&self) -> Result<Option<String>> {
        Ok(self.lock().templates.clone())
    }

    async fn save_template_state(&self, state: &str) -> Result<()> {
        self.lock().templates = Some(state.to_string());
        Ok(())
    }
}
