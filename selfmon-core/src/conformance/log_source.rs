use std::collections::HashSet;

use crate::model::{Level, LogRecord};
use crate::traits::LogSource;

/// A realistic batch of records with ids 1..=12 (levels mixed, codes, a traceback, extra data),
/// for seeding a source under test.
pub fn sample_records() -> Vec<LogRecord> {
    let mut v = Vec::new();
    let msgs: [(Level, &str, &str); 12] = [
        (Level::Info, "app.http", "GET /health 200 in 3ms"),
        (
            Level::Error,
            "app.git",
            "[GIT-SYNC-001] clone of repo alpha failed: exit 128",
        ),
        (
            Level::Warning,
            "app.queue",
            "job queue is full (64 pending)",
        ),
        (Level::Debug, "app.index", "indexed 120 files"),
        (
            Level::Error,
            "app.api",
            "Traceback (most recent call last):\n  File \"api.py\", line 3\nValueError: bad ref",
        ),
        (Level::Warning, "app.api", "parameter 'limit' is deprecated"),
        (
            Level::Critical,
            "app.db",
            "[DB-LOCK-003] database is locked",
        ),
        (Level::Info, "app.http", "GET /repos 200 in 12ms"),
        (
            Level::Warning,
            "app.queue",
            "job queue is full (65 pending)",
        ),
        (
            Level::Error,
            "app.git",
            "[GIT-SYNC-001] clone of repo beta failed: exit 128",
        ),
        (
            Level::Warning,
            "app.auth",
            "authentication failed for user u1",
        ),
        (Level::Error, "app.api", "unicode ✓ message"),
    ];
    for (i, (level, source, msg)) in msgs.into_iter().enumerate() {
        let id = i as i64 + 1;
        let mut r = LogRecord::new(id, level, msg)
            .with_source(source)
            .with_timestamp(format!("2026-01-01T00:00:{:02}Z", id));
        if id == 2 {
            r = r.with_extra(serde_json::json!({"error_code": "GIT-SYNC-001", "repo": "alpha"}));
        }
        if id % 3 == 0 {
            r = r.with_correlation_id(format!("corr-{id}"));
        }
        v.push(r);
    }
    v
}

/// Checks a [`LogSource`] that holds exactly `written` (ids as stored) and returns records of
/// `min_level` and above.
pub async fn log_source(source: &dyn LogSource, written: &[LogRecord], min_level: Level) {
    let mut expected: Vec<&LogRecord> = written.iter().filter(|r| r.level >= min_level).collect();
    expected.sort_by_key(|r| r.id);
    let max = written.iter().map(|r| r.id).max();

    assert_eq!(
        source.max_id().await.expect("max_id"),
        max,
        "max_id must be the highest id present"
    );

    // One big page.
    let page = source
        .read_after(0, 1_000_000)
        .await
        .expect("read_after(0)");
    let ids: Vec<i64> = page.records.iter().map(|r| r.id).collect();
    let want: Vec<i64> = expected.iter().map(|r| r.id).collect();
    assert_eq!(
        ids, want,
        "read_after(0) must return every record at or above the level, ascending"
    );
    for (got, want) in page.records.iter().zip(&expected) {
        assert_eq!(got.level, want.level, "level of record {}", got.id);
        assert_eq!(got.message, want.message, "message of record {}", got.id);
        assert_eq!(got.source, want.source, "source of record {}", got.id);
    }
    if let Some(m) = max {
        assert!(
            page.scanned_through >= *ids.last().unwrap_or(&0),
            "scanned_through must cover the records returned"
        );
        assert!(
            page.scanned_through <= m,
            "scanned_through must not exceed max_id"
        );
    }

    // Small pages: same records, no duplicates, each strictly after the cursor, always progress.
    for limit in [1usize, 2, 3] {
        let mut after = 0;
        let mut seen = Vec::new();
        let mut guard = 0;
        loop {
            guard += 1;
            assert!(guard < 10_000, "paging with limit {limit} never finished");
            let p = source
                .read_after(after, limit)
                .await
                .expect("read_after page");
            assert!(
                p.records.len() <= limit,
                "a page must hold at most `limit` records"
            );
            for w in p.records.windows(2) {
                assert!(
                    w[0].id < w[1].id,
                    "records in a page must be ascending by id"
                );
            }
            for r in &p.records {
                assert!(r.id > after, "record {} returned for cursor {after}", r.id);
                seen.push(r.id);
            }
            let through = p
                .scanned_through
                .max(p.records.last().map(|r| r.id).unwrap_or(after));
            if through <= after {
                break;
            }
            after = through;
        }
        let unique: HashSet<i64> = seen.iter().copied().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "paging with limit {limit} returned a record twice"
        );
        assert_eq!(
            seen, want,
            "paging with limit {limit} must return every record exactly once"
        );
    }

    // Past the end: nothing, and reads are repeatable.
    if let Some(m) = max {
        let p = source.read_after(m, 10).await.expect("read past the end");
        assert!(p.records.is_empty(), "nothing after max_id");
        let again = source.read_after(0, 1_000_000).await.expect("repeat read");
        assert_eq!(
            again.records.len(),
            expected.len(),
            "reads must be repeatable"
        );
    }
    let d = source.describe();
    assert!(!d.location.is_empty(), "describe() must name a location");
}
