//! Untrusted bytes in the host's `logs.db` (invalid UTF-8, control characters, planted secrets)
//! go through the whole engine: the scan succeeds and what reaches the tracker is clean.

use std::sync::Arc;

use selfmon::engine::SelfMonitor;
use selfmon::offline::OfflineRunner;
use selfmon::sqlite::{create_logs_table, LogSourceOptions, SqliteLogSource};
use selfmon::testing::{MemoryIssueTracker, MemoryStateStore};
use selfmon::{ScanStatus, ScanTrigger};

#[tokio::test]
async fn invalid_utf8_in_the_database_is_read_lossily_and_filed_clean() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    create_logs_table(&conn).unwrap();
    let secret = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bad: Vec<u8> = b"[DB-LOCK-003] database is locked \xff\xfe\x80 by ".to_vec();
    bad.extend_from_slice(secret.as_bytes());
    bad.extend_from_slice(b" \x1b[31m\xe2\x80\xae");
    for _ in 0..2 {
        conn.execute(
            "INSERT INTO logs (timestamp, level, source, message) VALUES ('2026-11-25T10:00:00Z', 'CRITICAL', 'db', CAST(?1 AS BLOB))",
            [&bad],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO logs (timestamp, level, source, message, extra_data) VALUES ('x', 'NOT-A-LEVEL', 'db', 'odd level', '{broken json')",
        [],
    )
    .unwrap();
    drop(conn);

    let tracker = Arc::new(MemoryIssueTracker::new());
    let monitor = SelfMonitor::builder()
        .log_source(Arc::new(
            SqliteLogSource::open(&path, LogSourceOptions::default()).unwrap(),
        ))
        .runner(Arc::new(OfflineRunner))
        .tracker(tracker.clone())
        .store(Arc::new(MemoryStateStore::new()))
        .build()
        .unwrap();
    let report = monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(report.record.status, ScanStatus::Success);
    assert_eq!(
        report.record.records_read, 3,
        "nothing is lost: the odd level is read as ERROR"
    );
    assert_eq!(report.record.log_id_end, 3);
    let issues = tracker.issues();
    assert!(!issues.is_empty());
    for i in &issues {
        assert!(
            !i.body.contains(secret) && !i.title.contains(secret),
            "secret leaked"
        );
        assert!(
            !i.body.contains('\u{1b}') && !i.body.contains('\u{202E}'),
            "control characters leaked"
        );
    }
    assert!(
        issues.iter().any(|i| i.body.contains('\u{FFFD}')),
        "invalid bytes show as replacement characters"
    );
}
