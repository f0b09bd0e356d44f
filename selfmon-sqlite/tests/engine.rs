//! The engine over the SQLite adapters: exactly-once filing when the process dies at any point of
//! a scan (every store and tracker call, before and after it takes effect).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection};
use selfmon_core::engine::SelfMonitor;
use selfmon_core::offline::OfflineRunner;
use selfmon_core::redact::RedactedText;
use selfmon_core::testing::{FakeClock, MemoryIssueTracker};
use selfmon_core::{
    BacklogEntry, ClosedBacklogEntry, Component, Error, FiledIssue, FilingIntent, IssueDraft,
    IssueEvent, IssueFilter, IssueLedger, IssueRef, IssueState, IssueTracker, Lease, LeaseOutcome,
    Marker, Page, PageRequest, ScanEffects, ScanHistory, ScanId, ScanLedger, ScanRecord,
    ScanReport, ScanStatus, ScanTrigger, StateStore, TemplateMemory, TrackedIssue,
};
use selfmon_sqlite::{
    create_logs_table, LogSourceOptions, SqliteLogSource, SqliteStateStore, StateStoreOptions,
};

/// Simulated process death: the `at`-th step fails and so does every step after it.
#[derive(Debug)]
struct Crash {
    at: usize,
    step: AtomicUsize,
    dead: AtomicBool,
}

impl Crash {
    fn new(at: usize) -> Arc<Self> {
        Arc::new(Crash {
            at,
            step: AtomicUsize::new(0),
            dead: AtomicBool::new(false),
        })
    }

    fn tick(&self) -> selfmon_core::Result<()> {
        if self.step.fetch_add(1, Ordering::SeqCst) + 1 == self.at {
            self.dead.store(true, Ordering::SeqCst);
        }
        if self.dead.load(Ordering::SeqCst) {
            return Err(Error::adapter(
                Component::StateStore,
                false,
                "process killed",
            ));
        }
        Ok(())
    }
}

/// Runs `$op` between two crash points: before it takes effect and after.
macro_rules! guarded {
    ($self:ident, $op:expr) => {{
        $self.crash.tick()?;
        let out = $op.await?;
        $self.crash.tick()?;
        Ok(out)
    }};
}

struct CrashingStore {
    inner: Arc<SqliteStateStore>,
    crash: Arc<Crash>,
}

#[async_trait]
impl ScanLedger for CrashingStore {
    async fn try_acquire_lease(
        &self,
        o: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> selfmon_core::Result<LeaseOutcome> {
        guarded!(self, self.inner.try_acquire_lease(o, ttl, now))
    }
    async fn release_lease(&self, l: &Lease) -> selfmon_core::Result<()> {
        guarded!(self, self.inner.release_lease(l))
    }
    async fn last_successful_cursor(&self) -> selfmon_core::Result<i64> {
        guarded!(self, self.inner.last_successful_cursor())
    }
    async fn close_abandoned_scans(
        &self,
        now: DateTime<Utc>,
        r: &RedactedText,
    ) -> selfmon_core::Result<u64> {
        guarded!(self, self.inner.close_abandoned_scans(now, r))
    }
    async fn begin_scan(&self, r: &ScanRecord) -> selfmon_core::Result<()> {
        guarded!(self, self.inner.begin_scan(r))
    }
    async fn finish_scan(&self, r: &ScanRecord) -> selfmon_core::Result<()> {
        guarded!(self, self.inner.finish_scan(r))
    }
    async fn save_scan_report(&self, r: &ScanReport) -> selfmon_core::Result<()> {
        guarded!(self, self.inner.save_scan_report(r))
    }
    async fn commit_scan(&self, r: &ScanRecord, e: &ScanEffects) -> selfmon_core::Result<()> {
        guarded!(self, self.inner.commit_scan(r, e))
    }
}

#[async_trait]
impl IssueLedger for CrashingStore {
    async fn open_backlog(&self) -> selfmon_core::Result<Vec<BacklogEntry>> {
        guarded!(self, self.inner.open_backlog())
    }
    async fn filed_issues(&self) -> selfmon_core::Result<Vec<FiledIssue>> {
        guarded!(self, self.inner.filed_issues())
    }
    async fn record_occurrences(
        &self,
        n: u64,
        c: u64,
        now: DateTime<Utc>,
    ) -> selfmon_core::Result<()> {
        guarded!(self, self.inner.record_occurrences(n, c, now))
    }
    async fn set_issue_state(&self, n: u64, s: IssueState) -> selfmon_core::Result<()> {
        guarded!(self, self.inner.set_issue_state(n, s))
    }
    async fn set_regression_noted(
        &self,
        n: u64,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> selfmon_core::Result<()> {
        guarded!(self, self.inner.set_regression_noted(n, at))
    }
    async fn add_issue_signatures(&self, n: u64, ids: &[String]) -> selfmon_core::Result<()> {
        guarded!(self, self.inner.add_issue_signatures(n, ids))
    }
    async fn forget_issue(&self, n: u64) -> selfmon_core::Result<bool> {
        guarded!(self, self.inner.forget_issue(n))
    }
    async fn record_intent(&self, i: &FilingIntent) -> selfmon_core::Result<()> {
        guarded!(self, self.inner.record_intent(i))
    }
    async fn open_intents(&self) -> selfmon_core::Result<Vec<FilingIntent>> {
        guarded!(self, self.inner.open_intents())
    }
    async fn complete_intent(&self, id: &str, i: &FiledIssue) -> selfmon_core::Result<()> {
        guarded!(self, self.inner.complete_intent(id, i))
    }
}

#[async_trait]
impl ScanHistory for CrashingStore {
    async fn list_scans(&self, p: PageRequest) -> selfmon_core::Result<Page<ScanRecord>> {
        guarded!(self, self.inner.list_scans(p))
    }
    async fn list_issues(
        &self,
        f: &IssueFilter,
        p: PageRequest,
    ) -> selfmon_core::Result<Page<FiledIssue>> {
        guarded!(self, self.inner.list_issues(f, p))
    }
    async fn closed_backlog(
        &self,
        p: PageRequest,
    ) -> selfmon_core::Result<Page<ClosedBacklogEntry>> {
        guarded!(self, self.inner.closed_backlog(p))
    }
    async fn scan_report(&self, id: &ScanId) -> selfmon_core::Result<Option<ScanReport>> {
        guarded!(self, self.inner.scan_report(id))
    }
    async fn issue_history(
        &self,
        n: u64,
        p: PageRequest,
    ) -> selfmon_core::Result<Page<IssueEvent>> {
        guarded!(self, self.inner.issue_history(n, p))
    }
}

#[async_trait]
impl TemplateMemory for CrashingStore {
    async fn load_template_state(&self) -> selfmon_core::Result<Option<String>> {
        guarded!(self, self.inner.load_template_state())
    }
    async fn save_template_state(&self, s: &str) -> selfmon_core::Result<()> {
        guarded!(self, self.inner.save_template_state(s))
    }
}

struct CrashingTracker {
    inner: Arc<MemoryIssueTracker>,
    crash: Arc<Crash>,
}

#[async_trait]
impl IssueTracker for CrashingTracker {
    async fn list_issues(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> selfmon_core::Result<Vec<TrackedIssue>> {
        guarded!(self, self.inner.list_issues(since))
    }
    async fn create_issue(&self, d: &IssueDraft) -> selfmon_core::Result<IssueRef> {
        guarded!(self, self.inner.create_issue(d))
    }
    async fn comment(&self, n: u64, b: &RedactedText) -> selfmon_core::Result<()> {
        guarded!(self, self.inner.comment(n, b))
    }
    async fn reopen(&self, n: u64) -> selfmon_core::Result<()> {
        guarded!(self, self.inner.reopen(n))
    }
    async fn find_by_marker(&self, m: &Marker) -> selfmon_core::Result<Option<IssueRef>> {
        guarded!(self, self.inner.find_by_marker(m))
    }
}

fn three_bugs(path: &Path) {
    let conn = Connection::open(path).unwrap();
    create_logs_table(&conn).unwrap();
    for (level, source, message) in [
        (
            "ERROR",
            "app.api",
            "Traceback (most recent call last):\n  File \"api.py\"\nValueError: bad ref",
        ),
        (
            "ERROR",
            "app.git",
            "[GIT-SYNC-001] clone of repo alpha failed: exit 128",
        ),
        ("CRITICAL", "app.db", "[DB-LOCK-003] database is locked"),
        ("INFO", "app.http", "GET /health 200"),
    ] {
        conn.execute(
            "INSERT INTO logs (timestamp, level, source, message) VALUES ('2026-01-01T00:00:00Z', ?1, ?2, ?3)",
            params![level, source, message],
        )
        .unwrap();
    }
}

fn monitor<S: StateStore + TemplateMemory + 'static>(
    logs: &Path,
    store: Arc<S>,
    tracker: Arc<dyn IssueTracker>,
    clock: Arc<FakeClock>,
) -> SelfMonitor {
    SelfMonitor::builder()
        .log_source(Arc::new(
            SqliteLogSource::open(logs, LogSourceOptions::default()).unwrap(),
        ))
        .runner(Arc::new(OfflineRunner))
        .tracker(tracker)
        .store(store.clone())
        .template_memory(store)
        .clock(clock)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_scan_killed_at_any_point_files_each_problem_exactly_once_after_restart() {
    let mut crash_points = 0;
    for at in 1.. {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs.db");
        let state = dir.path().join("state.db");
        three_bugs(&logs);
        let tracker = Arc::new(MemoryIssueTracker::new());
        let clock = Arc::new(FakeClock::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        ));
        let crash = Crash::new(at);
        {
            let store =
                Arc::new(SqliteStateStore::open(&state, StateStoreOptions::default()).unwrap());
            let m = monitor(
                &logs,
                Arc::new(CrashingStore {
                    inner: store,
                    crash: crash.clone(),
                }),
                Arc::new(CrashingTracker {
                    inner: tracker.clone(),
                    crash: crash.clone(),
                }),
                clock.clone(),
            );
            let outcome = m.scan(ScanTrigger::Scheduled).await;
            if !crash.dead.load(Ordering::SeqCst) {
                // Past the last step: every crash point has been tried.
                outcome.unwrap();
                assert_eq!(tracker.issues().len(), 3);
                break;
            }
            // A death after the scan was recorded (e.g. while releasing the lease) may still
            // report success; what matters is the state the next process finds.
            let _ = outcome;
            crash_points += 1;
        } // The process is gone: the store file is all that is left (plus the tracker).

        // Restart after the dead process's lease expired.
        clock.advance(chrono::Duration::hours(3));
        let store = Arc::new(SqliteStateStore::open(&state, StateStoreOptions::default()).unwrap());
        let m = monitor(&logs, store.clone(), tracker.clone(), clock.clone());
        let report = m
            .scan(ScanTrigger::Scheduled)
            .await
            .unwrap_or_else(|e| panic!("step {at}: {e}"));
        assert_eq!(report.record.status, ScanStatus::Success, "step {at}");
        let titles: std::collections::BTreeSet<String> =
            tracker.issues().into_iter().map(|i| i.title).collect();
        assert_eq!(
            tracker.issues().len(),
            3,
            "step {at}: nothing filed twice, nothing lost"
        );
        assert_eq!(titles.len(), 3, "step {at}");
        assert_eq!(
            store.filed_issues().await.unwrap().len(),
            3,
            "step {at}: every filing recorded"
        );
        assert!(store.open_intents().await.unwrap().is_empty(), "step {at}");
        let scans = store.list_scans(PageRequest::default()).await.unwrap();
        assert!(
            scans.items.iter().all(|s| s.status != ScanStatus::Running),
            "step {at}: the dead scan was closed"
        );

        let again = m.scan(ScanTrigger::Scheduled).await.unwrap();
        assert_eq!(again.record.issues_created, 0, "step {at}");
        assert_eq!(tracker.issues().len(), 3, "step {at}");
    }
    assert!(
        crash_points >= 10,
        "only {crash_points} crash points were exercised"
    );
}

#[tokio::test]
async fn a_recreated_logs_db_restarts_from_zero_and_a_retention_gap_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs.db");
    three_bugs(&logs);
    let store = Arc::new(
        SqliteStateStore::open(dir.path().join("state.db"), StateStoreOptions::default()).unwrap(),
    );
    let tracker = Arc::new(MemoryIssueTracker::new());
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    ));
    let m = monitor(&logs, store.clone(), tracker.clone(), clock.clone());
    let first = m.scan(ScanTrigger::Scheduled).await.unwrap();
    assert_eq!(first.record.log_id_end, 4);
    assert_eq!(store.last_successful_cursor().await.unwrap(), 4);

    // The server recreates its log file with fewer rows than the cursor.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", logs.display()));
    }
    let conn = Connection::open(&logs).unwrap();
    create_logs_table(&conn).unwrap();
    conn.execute(
        "INSERT INTO logs (timestamp, level, source, message) VALUES ('t', 'ERROR', 'app.new', 'a brand new failure')",
        [],
    )
    .unwrap();
    let second = m.scan(ScanTrigger::Scheduled).await.unwrap();
    assert!(
        second.record.cursor_reset,
        "the reset is recorded on the scan"
    );
    assert_eq!(second.record.records_read, 1);
    assert_eq!(store.last_successful_cursor().await.unwrap(), 1);
    let listed = store.list_scans(PageRequest::default()).await.unwrap();
    assert!(listed.items[0].cursor_reset, "and persisted");

    // Retention deletes rows the next scan had not reached yet.
    for _ in 0..5 {
        conn.execute(
            "INSERT INTO logs (timestamp, level, message) VALUES ('t', 'ERROR', 'x')",
            [],
        )
        .unwrap();
    }
    conn.execute("DELETE FROM logs WHERE id <= 4", []).unwrap();
    let third = m.scan(ScanTrigger::Scheduled).await.unwrap();
    assert_eq!(third.record.gap_records, 3, "ids 2..=4 were never read");
    assert_eq!(
        store
            .list_scans(PageRequest::default())
            .await
            .unwrap()
            .items[0]
            .gap_records,
        3
    );
}

#[tokio::test]
async fn a_recreated_logs_db_that_grew_past_the_cursor_is_read_from_its_first_row() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs.db");
    three_bugs(&logs);
    let store = Arc::new(
        SqliteStateStore::open(dir.path().join("state.db"), StateStoreOptions::default()).unwrap(),
    );
    let tracker = Arc::new(MemoryIssueTracker::new());
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    ));
    let m = monitor(&logs, store.clone(), tracker.clone(), clock.clone());
    let first = m.scan(ScanTrigger::Scheduled).await.unwrap();
    assert_eq!(first.record.log_id_end, 4);

    // The server replaces its log file, and writes six rows before the next scan: ids 1..=6,
    // past the old cursor (4).
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", logs.display()));
    }
    let conn = Connection::open(&logs).unwrap();
    create_logs_table(&conn).unwrap();
    for i in 0..6 {
        conn.execute(
            "INSERT INTO logs (timestamp, level, source, message) VALUES (?1, 'ERROR', 'app.new', ?2)",
            params![format!("2026-01-02T00:00:0{i}Z"), format!("[NEW-FAIL-00{i}] failure {i} after the restart")],
        )
        .unwrap();
    }
    let second = m.scan(ScanTrigger::Scheduled).await.unwrap();
    assert!(second.record.cursor_reset, "the recreation is recognised");
    assert_eq!(second.record.log_id_start, 0);
    assert_eq!(
        second.record.records_read, 6,
        "no row of the new file is skipped"
    );
    assert_eq!(store.last_successful_cursor().await.unwrap(), 6);

    // The next scan of the same file is an ordinary one.
    conn.execute(
        "INSERT INTO logs (timestamp, level, source, message) VALUES ('2026-01-02T00:01:00Z', 'ERROR', 'app.new', 'later')",
        [],
    )
    .unwrap();
    let third = m.scan(ScanTrigger::Scheduled).await.unwrap();
    assert!(!third.record.cursor_reset);
    assert_eq!(third.record.records_read, 1);
}

#[tokio::test]
async fn the_count_of_scans_the_runner_gave_no_answer_for_survives_restarts() {
    use selfmon_core::testing::ScriptedRunner;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs.db");
    let state = dir.path().join("state.db");
    three_bugs(&logs);
    let tracker = Arc::new(MemoryIssueTracker::new());
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    ));
    let runner = Arc::new(ScriptedRunner::default());
    runner.push_no_answer("Output blocked by content filtering policy");
    let attempts = selfmon_core::engine::ANALYSIS_ATTEMPTS;
    for attempt in 1..=attempts {
        // Each scan in a new process: a fresh store handle and engine on the same files.
        let store = Arc::new(SqliteStateStore::open(&state, StateStoreOptions::default()).unwrap());
        let m = SelfMonitor::builder()
            .log_source(Arc::new(
                SqliteLogSource::open(&logs, LogSourceOptions::default()).unwrap(),
            ))
            .runner(runner.clone())
            .tracker(tracker.clone())
            .store(store.clone())
            .clock(clock.clone())
            .build()
            .unwrap();
        let result = m.scan(ScanTrigger::Scheduled).await;
        clock.advance(chrono::Duration::minutes(1));
        let newest = store
            .list_scans(PageRequest {
                offset: 0,
                limit: 1,
            })
            .await
            .unwrap()
            .items
            .remove(0);
        if attempt < attempts {
            assert!(result.unwrap_err().is_no_answer());
            assert_eq!(newest.analysis_failures, attempt);
            assert!(tracker.issues().is_empty());
        } else {
            let report = result.unwrap();
            assert!(report
                .warnings
                .iter()
                .any(|w| w.kind == "analysis_fallback"));
            assert_eq!(newest.analysis_failures, 0);
            assert_eq!(store.last_successful_cursor().await.unwrap(), 4);
        }
    }
    assert_eq!(
        tracker.issues().len(),
        3,
        "the offline rules file the three problems"
    );
}
