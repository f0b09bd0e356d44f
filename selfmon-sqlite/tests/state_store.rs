//! SqliteStateStore against real files: the conformance suite, migrations, lease across
//! connections, the outbox across simulated crashes, retention and dashboard queries.

mod support;

use std::time::Duration;

use rusqlite::Connection;
use selfmon_core::redact::Redactor;
use selfmon_core::{
    Classification, FilingIntent, IssueFilter, IssueLedger, IssueRef, IssueState, LeaseOutcome,
    PageRequest, ScanHistory, ScanId, ScanLedger, ScanRecord, ScanStatus, ScanTrigger,
    TemplateMemory,
};
use selfmon_sqlite::{schema, SqliteStateStore, StateStoreOptions, SCHEMA_VERSION};
use support::{intent, open_store, t, FakeTracker};

#[tokio::test]
async fn passes_the_core_state_store_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("state.db"));
    selfmon_core::conformance::state_store(&store).await;
    selfmon_core::conformance::template_memory(&store).await;
}

#[tokio::test]
async fn everything_written_survives_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let store = open_store(&path);
        selfmon_core::conformance::state_store(&store).await;
        selfmon_core::conformance::template_memory(&store).await;
    }
    let store = open_store(&path);
    assert_eq!(
        store
            .list_scans(PageRequest::default())
            .await
            .unwrap()
            .total,
        10,
        "the conformance suite's scans, those of its scan reports included"
    );
    let report = store
        .scan_report(&ScanId("r1".into()))
        .await
        .unwrap()
        .expect("reports survive reopening");
    assert!(report.details_recorded && !report.outcomes.is_empty());
    assert_eq!(store.filed_issues().await.unwrap().len(), 3);
    assert_eq!(store.last_successful_cursor().await.unwrap(), 30);
    assert_eq!(
        store
            .open_backlog()
            .await
            .unwrap()
            .iter()
            .map(|e| (e.entry_id.as_str(), e.occurrences))
            .collect::<Vec<_>>(),
        [("warn", 55)],
        "the backlog survives reopening"
    );
    assert_eq!(
        store.load_template_state().await.unwrap().as_deref(),
        Some("{\"v\":2,\"t\":[\"é ✓\"]}")
    );
    let mode: String = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

/// The tables as the CIDX server created them, before selfmon had a version table.
const CIDX_V1: &str = "
CREATE TABLE self_monitoring_scans (
    scan_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, completed_at TEXT,
    status TEXT NOT NULL, log_id_start INTEGER, log_id_end INTEGER,
    issues_created INTEGER DEFAULT 0, error_message TEXT);
CREATE TABLE self_monitoring_issues (
    id INTEGER PRIMARY KEY AUTOINCREMENT, scan_id TEXT NOT NULL, github_issue_number INTEGER,
    github_issue_url TEXT, classification TEXT NOT NULL, title TEXT NOT NULL, error_codes TEXT,
    fingerprint TEXT, source_log_ids TEXT, source_files TEXT, created_at TEXT NOT NULL);
INSERT INTO self_monitoring_scans VALUES
    ('old-1', '2025-06-01 10:00:00', '2025-06-01 10:05:00', 'SUCCESS', 0, 1200, 1, NULL),
    ('old-2', '2025-06-02 10:00:00', '2025-06-02 10:01:00', 'FAILURE', 1200, 1200, 0, 'claude timed out');
INSERT INTO self_monitoring_issues (scan_id, github_issue_number, github_issue_url,
    classification, title, error_codes, fingerprint, source_log_ids, source_files, created_at)
    VALUES ('old-1', 17, 'https://github.com/o/r/issues/17', 'server_bug', '[BUG] clone fails',
    'GIT-SYNC-001,GIT-SYNC-002', 'abc123', '5,6', 'src/git.py', '2025-06-01T10:04:00');
";

#[tokio::test]
async fn a_file_created_by_the_oldest_cidx_schema_is_migrated_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cidx.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch(CIDX_V1)
        .unwrap();

    let store = open_store(&path);
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(store.last_successful_cursor().await.unwrap(), 1200);
    let scans = store.list_scans(PageRequest::default()).await.unwrap();
    assert_eq!(scans.total, 2);
    assert_eq!(scans.items[0].scan_id.as_str(), "old-2");
    assert_eq!(
        scans.items[0].error_message.as_deref(),
        Some("claude timed out")
    );
    assert_eq!(scans.items[1].duration_ms(), Some(5 * 60 * 1000));
    let issues = store.filed_issues().await.unwrap();
    assert_eq!(issues.len(), 1);
    let old = &issues[0];
    assert_eq!(old.issue.number, 17);
    assert_eq!(old.issue.state, IssueState::Open);
    let codes: Vec<&str> = old.error_codes.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, ["GIT-SYNC-001", "GIT-SYNC-002"]);
    assert_eq!(old.source_log_ids, [5, 6]);
    assert_eq!(old.source_files, ["src/git.py"]);

    // New features work on old rows.
    store.record_occurrences(17, 3, t(100)).await.unwrap();
    store.set_issue_state(17, IssueState::Closed).await.unwrap();
    let occ = store
        .issue_occurrences(17, PageRequest::default())
        .await
        .unwrap();
    assert_eq!((occ.total, occ.items[0].count), (1, 3));
    let closed = store
        .list_issues(
            &IssueFilter {
                classification: None,
                state: Some(IssueState::Closed),
            },
            PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(closed.total, 1);
    drop(store);
    // Reopening an up-to-date file changes nothing.
    let store = open_store(&path);
    assert_eq!(store.filed_issues().await.unwrap()[0].occurrences, 3);
}

#[tokio::test]
async fn a_file_at_every_older_selfmon_version_migrates_forward() {
    for from in 1..SCHEMA_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut conn = Connection::open(&path).unwrap();
        schema::migrate_to(&mut conn, &path, from).unwrap();
        assert_eq!(schema::current_version(&conn).unwrap(), from);
        conn.execute_batch(
            "INSERT INTO self_monitoring_scans (scan_id, started_at, completed_at, status, log_id_start, log_id_end)
             VALUES ('s', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:01.000000Z', 'SUCCESS', 0, 99)",
        )
        .unwrap();
        drop(conn);
        let store = open_store(&path);
        assert_eq!(
            store.schema_version().await.unwrap(),
            SCHEMA_VERSION,
            "from v{from}"
        );
        assert_eq!(
            store.last_successful_cursor().await.unwrap(),
            99,
            "from v{from}"
        );
        selfmon_core::conformance::state_store(
            &SqliteStateStore::open(dir.path().join("fresh.db"), StateStoreOptions::default())
                .unwrap(),
        )
        .await;
    }
}

#[tokio::test]
async fn the_lease_is_exclusive_across_connections_and_expires_for_a_crashed_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let a = open_store(&path);
    let b = open_store(&path);
    let ttl = Duration::from_secs(600);
    let lease = match a.try_acquire_lease("proc-a", ttl, t(0)).await.unwrap() {
        LeaseOutcome::Acquired(l) => l,
        other => panic!("{other:?}"),
    };
    match b.try_acquire_lease("proc-b", ttl, t(10)).await.unwrap() {
        LeaseOutcome::Held(l) => assert_eq!(l, lease),
        other => panic!("{other:?}"),
    }
    // Process A dies without releasing; B takes over once the lease has expired.
    drop(a);
    assert!(matches!(
        b.try_acquire_lease("proc-b", ttl, t(599)).await.unwrap(),
        LeaseOutcome::Held(_)
    ));
    assert!(matches!(
        b.try_acquire_lease("proc-b", ttl, t(601)).await.unwrap(),
        LeaseOutcome::Acquired(_)
    ));
    assert_eq!(b.current_lease().await.unwrap().unwrap().owner, "proc-b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_processes_get_exactly_one_lease() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(open_store(&path));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = open_store(&path);
        tasks.push(tokio::spawn(async move {
            store
                .try_acquire_lease(&format!("p{i}"), Duration::from_secs(60), t(0))
                .await
                .unwrap()
        }));
    }
    let mut acquired = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), LeaseOutcome::Acquired(_)) {
            acquired += 1;
        }
    }
    assert_eq!(acquired, 1);
}

#[tokio::test]
async fn scans_left_running_by_a_crash_are_closed_as_failure_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let store = open_store(&path);
        let s = ScanRecord::started(ScanId("crashed".into()), ScanTrigger::Manual, 10, t(0));
        store.begin_scan(&s).await.unwrap();
    }
    let store = open_store(&path);
    assert_eq!(
        store
            .close_abandoned_scans(
                t(99),
                &Redactor::shared().redacted("previous process exited mid-scan")
            )
            .await
            .unwrap(),
        1
    );
    let s = &store
        .list_scans(PageRequest::default())
        .await
        .unwrap()
        .items[0];
    assert_eq!(s.status, ScanStatus::Failure);
    assert_eq!(s.completed_at, Some(t(99)));
    assert_eq!(
        s.error_message.as_deref(),
        Some("previous process exited mid-scan")
    );
    assert_eq!(s.trigger, ScanTrigger::Manual);
    assert_eq!(store.last_successful_cursor().await.unwrap(), 0);
}

/// Where the filing of one finding stops when the process dies.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CrashPoint {
    AfterIntentBeforePost,
    AfterPostBeforeCommit,
    AfterCommit,
    Never,
}

/// The engine's filing protocol, stopped at `crash`.
async fn file_until(
    store: &SqliteStateStore,
    tracker: &FakeTracker,
    i: &FilingIntent,
    crash: CrashPoint,
) {
    store.record_intent(i).await.unwrap();
    if crash == CrashPoint::AfterIntentBeforePost {
        return;
    }
    let issue = tracker.create(&i.draft);
    if crash == CrashPoint::AfterPostBeforeCommit {
        return;
    }
    store
        .complete_intent(&i.intent_id, &support::row_for(i, issue))
        .await
        .unwrap();
}

/// What the next scan does first: finish every open intent, by marker.
async fn reconcile(store: &SqliteStateStore, tracker: &FakeTracker) {
    for i in store.open_intents().await.unwrap() {
        let issue = match tracker.find_by_marker(&i.draft.marker) {
            Some(found) => found,
            None => tracker.create(&i.draft),
        };
        store
            .complete_intent(&i.intent_id, &support::row_for(&i, issue))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_outbox_files_every_finding_exactly_once_whatever_point_the_process_dies_at() {
    for crash in [
        CrashPoint::AfterIntentBeforePost,
        CrashPoint::AfterPostBeforeCommit,
        CrashPoint::AfterCommit,
        CrashPoint::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let tracker = FakeTracker::default();
        {
            let store = open_store(&path);
            file_until(&store, &tracker, &intent("a", 1), CrashPoint::Never).await;
            file_until(&store, &tracker, &intent("b", 2), crash).await;
            // The process dies here: the store is dropped without any further call.
        }
        for restart in 0..2 {
            let store = open_store(&path);
            reconcile(&store, &tracker).await;
            let filed = store.filed_issues().await.unwrap();
            assert_eq!(filed.len(), 2, "{crash:?}, restart {restart}: nothing lost");
            assert!(store.open_intents().await.unwrap().is_empty(), "{crash:?}");
            assert_eq!(tracker.issue_count(), 2, "{crash:?}: nothing filed twice");
            let mut numbers: Vec<u64> = filed.iter().map(|f| f.issue.number).collect();
            numbers.sort();
            assert_eq!(numbers, [1, 2], "{crash:?}: rows match the tracker");
        }
    }
}

#[tokio::test]
async fn completing_an_intent_twice_keeps_one_issue_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("state.db"));
    let tracker = FakeTracker::default();
    let i = intent("a", 1);
    store.record_intent(&i).await.unwrap();
    let issue = tracker.create(&i.draft);
    let row = support::row_for(&i, issue);
    store.complete_intent(&i.intent_id, &row).await.unwrap();
    store.complete_intent(&i.intent_id, &row).await.unwrap();
    assert_eq!(store.filed_issues().await.unwrap().len(), 1);
}

#[tokio::test]
async fn retention_prunes_old_scans_but_never_issues_running_scans_or_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("state.db"));
    let day = 86_400;
    let finish = |id: &str, status: ScanStatus, start: i64, end: i64| {
        let mut s = ScanRecord::started(ScanId(id.into()), ScanTrigger::Scheduled, 0, t(start));
        s.status = status;
        s.log_id_end = end;
        if status != ScanStatus::Running {
            s.completed_at = Some(t(start + 10));
        }
        s
    };
    for s in [
        finish("old-success", ScanStatus::Success, 0, 10),
        finish("old-failure", ScanStatus::Failure, day, 10),
        finish("latest-success-but-old", ScanStatus::Success, 2 * day, 20),
        finish("old-running", ScanStatus::Running, 3 * day, 20),
        finish("recent-failure", ScanStatus::Failure, 99 * day, 20),
    ] {
        store.begin_scan(&s).await.unwrap();
        let mut report = selfmon_core::ScanReport::new(s.clone());
        report
            .outcomes
            .push(selfmon_core::FindingOutcome::Commented {
                title: Redactor::shared().redacted("related"),
                issue: 1,
                reason: Redactor::shared().redacted("similar"),
                score: Some(0.9),
            });
        store.save_scan_report(&report).await.unwrap();
        store.finish_scan(&s).await.unwrap();
    }
    let i = intent("a", 1);
    store.record_intent(&i).await.unwrap();
    let tracker = FakeTracker::default();
    let mut row = support::row_for(&i, tracker.create(&i.draft));
    row.scan_id = ScanId("old-success".into());
    row.created_at = t(0);
    store.complete_intent(&i.intent_id, &row).await.unwrap();
    store.record_occurrences(1, 2, t(5)).await.unwrap();
    store.record_occurrences(1, 3, t(99 * day)).await.unwrap();

    let report = store.prune_older_than(30, t(100 * day)).await.unwrap();
    assert_eq!(report.scans_deleted, 2);
    assert_eq!(report.occurrences_deleted, 1);
    assert_eq!(report.reports_deleted, 2, "reports go with their scans");
    assert!(store
        .scan_report(&ScanId("old-success".into()))
        .await
        .unwrap()
        .is_none());
    let history = store
        .issue_history(1, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        history.total, 3,
        "the issue events of pruned scans are pruned too"
    );
    let left: Vec<String> = store
        .list_scans(PageRequest::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.scan_id.0)
        .collect();
    assert_eq!(
        left,
        ["recent-failure", "old-running", "latest-success-but-old"]
    );
    assert_eq!(store.last_successful_cursor().await.unwrap(), 20);
    let issues = store.filed_issues().await.unwrap();
    assert_eq!(issues.len(), 1, "issue rows are never pruned");
    assert_eq!(
        issues[0].occurrences,
        1 + 2 + 3,
        "the running total is kept"
    );
    assert_eq!(
        store
            .issue_occurrences(1, PageRequest::default())
            .await
            .unwrap()
            .total,
        1
    );
}

#[tokio::test]
async fn dashboard_queries_are_paginated_with_totals_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("state.db"));
    for n in 0..620 {
        let mut s =
            ScanRecord::started(ScanId(format!("s{n:04}")), ScanTrigger::Scheduled, 0, t(n));
        s.status = ScanStatus::Failure;
        s.completed_at = Some(t(n + 3));
        s.error_message = Some(Redactor::shared().redacted(&format!("error {n}")));
        store.begin_scan(&s).await.unwrap();
    }
    let page = store
        .list_scans(PageRequest {
            offset: 0,
            limit: 10_000,
        })
        .await
        .unwrap();
    assert_eq!(page.total, 620);
    assert_eq!(page.items.len(), 500, "pages are capped at 500");
    assert_eq!(page.items[0].scan_id.as_str(), "s0619");
    assert_eq!(page.items[0].duration_ms(), Some(3000));
    let last = store
        .list_scans(PageRequest {
            offset: 615,
            limit: 50,
        })
        .await
        .unwrap();
    assert_eq!(last.items.len(), 5);
    assert_eq!(last.items[4].scan_id.as_str(), "s0000");

    for n in 1..=7u64 {
        let i = intent(&format!("i{n}"), n);
        store.record_intent(&i).await.unwrap();
        let mut row = support::row_for(
            &i,
            IssueRef {
                number: n,
                url: String::new(),
                state: IssueState::Open,
            },
        );
        row.classification = if n % 2 == 0 {
            Classification::ClientMisuse
        } else {
            Classification::ServerBug
        };
        row.created_at = t(n as i64);
        store.complete_intent(&i.intent_id, &row).await.unwrap();
        store
            .record_occurrences(n, n, t(1000 + n as i64))
            .await
            .unwrap();
    }
    let client = store
        .list_issues(
            &IssueFilter {
                classification: Some(Classification::ClientMisuse),
                state: None,
            },
            PageRequest {
                offset: 1,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(client.total, 3);
    let numbers: Vec<u64> = client.items.iter().map(|i| i.issue.number).collect();
    assert_eq!(numbers, [4, 2], "newest first, after the offset");
    let occ = store
        .issue_occurrences(6, PageRequest::default())
        .await
        .unwrap();
    assert_eq!((occ.total, occ.items[0].count), (1, 6));
}

#[tokio::test]
async fn occurrences_and_state_of_an_issue_filed_elsewhere_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("state.db"));
    store.record_occurrences(404, 1, t(0)).await.unwrap();
    store
        .set_issue_state(404, IssueState::Closed)
        .await
        .unwrap();
    assert!(store.filed_issues().await.unwrap().is_empty());
}

/// Rows written before these texts were typed `RedactedText` (or by another writer) may hold a
/// secret in clear: they still load, and what is read back is redacted.
#[tokio::test]
async fn texts_in_rows_written_before_they_were_typed_load_and_are_redacted_on_read() {
    const KEY: &str = "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = open_store(&path);
    selfmon_core::conformance::state_store(&store).await;
    let conn = Connection::open(&path).unwrap();
    let leak = format!("quotes {KEY}");
    conn.execute(
        "UPDATE self_monitoring_issues SET title = ?1, error_type = ?1, source_files = ?2",
        rusqlite::params![leak, serde_json::json!([leak]).to_string()],
    )
    .unwrap();
    conn.execute("UPDATE selfmon_issue_events SET detail = ?1", [&leak])
        .unwrap();
    conn.execute(
        "UPDATE selfmon_backlog SET close_reason = ?1 WHERE closed_at IS NOT NULL",
        [&leak],
    )
    .unwrap();
    let report_json: String = conn
        .query_row(
            "SELECT report FROM selfmon_scan_reports WHERE scan_id = 'r1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut report: serde_json::Value = serde_json::from_str(&report_json).unwrap();
    report["outcomes"][0]["title"] = leak.clone().into();
    report["rejected"][0]["reasons"][0] = leak.clone().into();
    report["skipped"][0]["reason"] = leak.clone().into();
    report["digest_sent"] = format!("<<<B\n{leak}\nB>>>\n").into();
    conn.execute(
        "UPDATE selfmon_scan_reports SET report = ?1 WHERE scan_id = 'r1'",
        [report.to_string()],
    )
    .unwrap();

    let issues = store.filed_issues().await.unwrap();
    assert!(!issues.is_empty());
    let report = store
        .scan_report(&ScanId("r1".into()))
        .await
        .unwrap()
        .expect("the tampered report still loads");
    assert_eq!(
        report.digest_sent.as_deref(),
        Some("<<<B\nquotes [REDACTED:github_token]\nB>>>\n")
    );
    let mut read = vec![serde_json::to_string(&issues).unwrap()];
    read.push(serde_json::to_string(&report).unwrap());
    for issue in &issues {
        let history = store
            .issue_history(issue.issue.number, PageRequest::default())
            .await
            .unwrap();
        read.push(serde_json::to_string(&history.items).unwrap());
    }
    let closed = store
        .closed_backlog(PageRequest::default())
        .await
        .unwrap()
        .items;
    assert!(!closed.is_empty());
    read.push(serde_json::to_string(&closed).unwrap());
    let read = read.join("\n");
    assert!(!read.contains(KEY), "{read}");
    assert!(
        read.matches("quotes [REDACTED:github_token]").count() >= 6,
        "{read}"
    );
}

/// Outbox and backlog rows written before their findings and evidence were typed
/// (`RedactedFinding`, `RedactedSignature`), or by another writer, may hold a secret in clear:
/// they still load, and the findings and evidence read back are redacted.
#[tokio::test]
async fn findings_in_outbox_and_backlog_rows_written_before_they_were_typed_load_redacted() {
    const KEY: &str = "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = open_store(&path);
    selfmon_core::conformance::state_store(&store).await;
    store.record_intent(&intent("leaky", 99)).await.unwrap();
    let leak = format!("quotes {KEY}");
    let finding = serde_json::json!({
        "classification": "server_bug", "title": leak, "summary": leak,
        "evidence_record_ids": [1], "error_codes": [], "source_files": [format!("app/{KEY}.py")],
        "error_type": leak, "signature_ids": [], "suspected_cause": leak, "suggested_fix": leak
    })
    .to_string();
    let evidence = serde_json::json!([{
        "id": "abc", "level": "ERROR", "source": leak, "template": leak,
        "template_fingerprint": "00ee", "error_codes": [], "count": 2, "first_id": 1,
        "last_id": 2, "first_timestamp": "t0", "last_timestamp": "t1", "sample_ids": [1],
        "sample_messages": [leak], "distinct_correlation_ids": 0, "repeated": false,
        "has_traceback": false, "nodes": [leak]
    }])
    .to_string();
    let conn = Connection::open(&path).unwrap();
    conn.execute("UPDATE selfmon_intents SET finding = ?1", [&finding])
        .unwrap();
    conn.execute(
        "UPDATE selfmon_backlog SET finding = ?1, evidence = ?2",
        [&finding, &evidence],
    )
    .unwrap();

    let intents = store.open_intents().await.unwrap();
    let open = store.open_backlog().await.unwrap();
    let closed = store
        .closed_backlog(PageRequest::default())
        .await
        .unwrap()
        .items;
    assert!(!intents.is_empty() && !closed.is_empty());
    let read = [
        serde_json::to_string(&intents).unwrap(),
        serde_json::to_string(&open).unwrap(),
        serde_json::to_string(&closed).unwrap(),
    ]
    .join("\n");
    assert!(!read.contains(KEY), "{read}");
    let rows = intents.len() + open.len() + closed.len();
    // Per finding 5 texts quote the leak (title, summary, error type, cause, fix); an entry
    // adds 4 in its evidence (logger, template, sample, node).
    assert!(
        read.matches("quotes [REDACTED:github_token]").count()
            >= 5 * intents.len() + 9 * (open.len() + closed.len()),
        "{rows} rows: {read}"
    );
}

#[tokio::test]
async fn a_corrupt_draft_in_the_outbox_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = open_store(&path);
    store.record_intent(&intent("a", 1)).await.unwrap();
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE selfmon_intents SET draft = '{broken'", [])
        .unwrap();
    let err = store.open_intents().await.unwrap_err();
    assert!(err.to_string().contains("issue draft"), "{err}");
    assert!(!err.is_retryable());
}

#[test]
fn invalid_options_are_rejected_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStateStore::open(
        dir.path().join("s.db"),
        StateStoreOptions {
            retention_days: 0,
            ..StateStoreOptions::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("retention_days"));
}

/// The tables and columns of a fresh store. The CIDX dashboard queries these names: change them
/// only with a new migration, never by editing an old one.
const GOLDEN_SCHEMA: &str = "\
self_monitoring_issues: id scan_id github_issue_number github_issue_url classification title error_codes fingerprint source_log_ids source_files created_at error_type templates signature_ids state occurrences last_seen_at regression_noted_for
self_monitoring_occurrences: id issue_id issue_number seen_at count
self_monitoring_scans: scan_id started_at completed_at status log_id_start log_id_end issues_created error_message trigger model prompt_version records_read signatures novel_signatures known_signatures ignored_signatures findings rejected_findings duplicates_by_error_code duplicates_by_fingerprint duplicates_by_similarity comments_added regressions deferred analysis_ran cost_usd input_tokens output_tokens gap_records cursor_reset dry_run backlog log_anchor_id log_anchor_digest log_anchor_read_id log_anchor_read_digest analysis_failures
selfmon_backlog: entry_id fingerprint severity severity_rank finding evidence templates occurrences deferred_by deferred_at closed_at close_reason closed_issue
selfmon_intents: intent_id scan_id fingerprint marker title draft finding templates occurrences created_at backlog_entry_id
selfmon_issue_events: id scan_id issue_number at kind records detail
selfmon_lease: name owner expires_at acquired_at host pid process_start
selfmon_scan_reports: scan_id report saved_at
selfmon_schema_version: version applied_at description
selfmon_template_state: id state updated_at
";

fn schema_of(path: &std::path::Path) -> String {
    let conn = Connection::open(path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = String::new();
    for t in tables {
        let cols: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")
            .unwrap()
            .query_map([&t], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.push_str(&format!("{t}: {}\n", cols.join(" ")));
    }
    out
}

#[test]
fn the_schema_of_a_fresh_store_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(open_store(&path));
    assert_eq!(schema_of(&path), GOLDEN_SCHEMA);
}

#[test]
fn a_migrated_cidx_file_has_the_same_schema_and_keeps_the_hosts_own_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cidx.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(CIDX_V1).unwrap();
    conn.execute_batch("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('alice');")
        .unwrap();
    drop(conn);
    drop(open_store(&path));
    let schema = schema_of(&path);
    assert_eq!(schema.replace("users: name\n", ""), GOLDEN_SCHEMA);
    let name: String = Connection::open(&path)
        .unwrap()
        .query_row("SELECT name FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "alice");
}

#[tokio::test]
async fn the_times_the_store_stamps_itself_come_from_the_injected_clock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let at = t(50_000_000);
    let store =
        open_store(&path).with_clock(std::sync::Arc::new(selfmon_core::clock::FakeClock::new(at)));
    let s = ScanRecord::started(ScanId("clocked".into()), ScanTrigger::Manual, 0, t(1));
    store.begin_scan(&s).await.unwrap();
    store
        .save_scan_report(&selfmon_core::ScanReport::new(s.clone()))
        .await
        .unwrap();
    store.save_template_state("{}").await.unwrap();
    let conn = Connection::open(&path).unwrap();
    let stamped = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, String>(0)).unwrap();
    let expected = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    assert_eq!(
        stamped("SELECT saved_at FROM selfmon_scan_reports WHERE scan_id = 'clocked'"),
        expected
    );
    assert_eq!(
        stamped("SELECT updated_at FROM selfmon_template_state WHERE id = 1"),
        expected
    );
}
