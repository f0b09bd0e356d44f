//! The tracing layer writes a logs.db that SqliteLogSource reads back.
#![cfg(feature = "tracing-layer")]

use std::time::Duration;

use rusqlite::Connection;
use selfmon_core::{Level, LogSource};
use selfmon_sqlite::tracing_layer::LAYER_SOURCE;
use selfmon_sqlite::{LayerOptions, LogEntry, LogSourceOptions, SqliteLogLayer, SqliteLogSource};
use tracing_subscriber::layer::SubscriberExt;

fn read_all(path: &std::path::Path) -> Vec<selfmon_core::LogRecord> {
    let src = SqliteLogSource::open(
        path,
        LogSourceOptions {
            min_level: Level::Debug,
            ..LogSourceOptions::default()
        },
    )
    .unwrap();
    src.read_after_blocking(0, 10_000).unwrap().records
}

#[test]
fn events_written_by_the_layer_are_read_back_by_the_log_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let (layer, handle) = SqliteLogLayer::open(&path, LayerOptions::default()).unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::error!(
            error_code = "GIT-SYNC-001",
            user_id = "u1",
            repo = "alpha",
            attempt = 3,
            "clone failed: exit {}",
            128
        );
        tracing::warn!(target: "app::db", request_path = "/api/x", "[DB-LOCK-002] database is locked");
        tracing::info!(correlation_id = "c-1", "started");
        tracing::debug!("below the layer's minimum level");
    });
    assert!(handle.flush(Duration::from_secs(30)));
    let stats = handle.shutdown();
    assert_eq!((stats.enqueued, stats.written, stats.dropped), (3, 3, 0));

    let rows = read_all(&path);
    assert_eq!(rows.len(), 3);
    let e = &rows[0];
    assert_eq!(e.level, Level::Error);
    assert_eq!(e.message, "clone failed: exit 128");
    assert_eq!(e.source.as_deref(), Some(module_path!()));
    assert_eq!(e.user_id.as_deref(), Some("u1"));
    assert_eq!(
        e.extra_data,
        serde_json::json!({"error_code": "GIT-SYNC-001", "repo": "alpha", "attempt": 3})
    );
    let w = &rows[1];
    assert_eq!(
        (w.level, w.source.as_deref()),
        (Level::Warning, Some("app::db"))
    );
    assert_eq!(w.request_path.as_deref(), Some("/api/x"));
    assert_eq!(
        w.extra_data,
        serde_json::json!({"error_code": "DB-LOCK-002"})
    );
    let codes = selfmon_core::ErrorCode::from_record(w);
    assert_eq!(codes.len(), 1);
    assert_eq!(rows[2].correlation_id.as_deref(), Some("c-1"));
    assert!(!rows[2].timestamp.is_empty());

    // The default source (WARNING and above) sees the two problems.
    let src = SqliteLogSource::open(&path, LogSourceOptions::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(
        rt.block_on(src.read_after(0, 100)).unwrap().records.len(),
        2
    );
}

#[test]
fn a_full_queue_drops_and_counts_lesser_events_and_reports_lost_errors_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let options = LayerOptions {
        queue_capacity: 2,
        batch_size: 1,
        error_wait_ms: 50,
        busy_timeout_ms: 60_000,
        ..LayerOptions::default()
    };
    let (layer, handle) = SqliteLogLayer::open(&path, options).unwrap();
    // Another process holds the write lock, so the writer cannot drain the queue.
    let mut blocker = Connection::open(&path).unwrap();
    let tx = blocker
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("first"));
    // Wait until the writer has taken "first" and is stuck writing it.
    let started = std::time::Instant::now();
    while handle.stats().queued > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "writer never took the first event"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..10 {
            tracing::info!("info {i}");
        }
        tracing::error!("an error that cannot be queued");
    });
    let stats = handle.stats();
    assert_eq!(stats.dropped, 10 - 2, "{stats:?}");
    assert_eq!(stats.dropped_errors, 1, "{stats:?}");
    tx.rollback().unwrap();
    assert!(handle.flush(Duration::from_secs(60)));
    let stats = handle.shutdown();
    assert_eq!(stats.written, stats.enqueued);

    let rows = read_all(&path);
    let report = rows
        .iter()
        .find(|r| r.source.as_deref() == Some(LAYER_SOURCE))
        .expect("the loss is reported in the log itself");
    assert_eq!(
        report.level,
        Level::Error,
        "lost errors are reported at ERROR"
    );
    assert!(
        report.message.starts_with("[SELFMON-QUEUE-001]"),
        "{}",
        report.message
    );
    assert!(
        report
            .message
            .contains(&format!("dropped {}", stats.dropped + stats.dropped_errors)),
        "{}",
        report.message
    );
}

#[test]
fn write_failures_are_counted_and_reported_once_writing_works_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let options = LayerOptions {
        write_attempts: 2,
        ..LayerOptions::default()
    };
    let (layer, handle) = SqliteLogLayer::open(&path, options).unwrap();
    let admin = Connection::open(&path).unwrap();
    admin.execute_batch("DROP TABLE logs").unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || tracing::error!("lost to a missing table"));
    assert!(handle.flush(Duration::from_secs(30)));
    let stats = handle.stats();
    assert_eq!(
        (stats.write_failures, stats.lost_after_write_failure),
        (1, 1)
    );
    assert!(
        stats
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("no such table"),
        "{stats:?}"
    );

    selfmon_sqlite::create_logs_table(&admin).unwrap();
    tracing::dispatcher::with_default(&dispatch, || tracing::warn!("written again"));
    assert!(handle.flush(Duration::from_secs(30)));
    drop(handle);
    let rows = read_all(&path);
    let messages: Vec<&str> = rows.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.contains(&"written again"));
    let report = rows
        .iter()
        .find(|r| r.source.as_deref() == Some(LAYER_SOURCE))
        .unwrap();
    assert!(
        report
            .message
            .starts_with("[SELFMON-WRITE-001] tracing layer lost 1 event(s)"),
        "{}",
        report.message
    );
    assert_eq!(report.level, Level::Error);
}

#[test]
fn submitted_entries_are_written_like_events_with_their_own_time_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let (layer, handle) = SqliteLogLayer::open(&path, LayerOptions::default()).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-04T05:06:07.123456Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut entry = LogEntry::new(Level::Error, "cidx.git", "[GIT-SYNC-001] fetch failed");
    entry.timestamp = Some(at);
    entry.correlation_id = Some("c-9".into());
    entry.extra.insert("repo".into(), "alpha".into());
    assert!(layer.submit(entry));
    let mut coded = LogEntry::new(Level::Warning, "cidx.db", "no code in the text");
    coded
        .extra
        .insert("error_code".into(), "DB-LOCK-003".into());
    assert!(layer.try_submit(coded).is_ok());
    // Below the layer's minimum level (INFO): ignored, not counted as dropped.
    assert!(!layer.submit(LogEntry::new(Level::Debug, "x", "ignored")));
    assert!(handle.flush(Duration::from_secs(30)));
    let stats = handle.shutdown();
    assert_eq!((stats.enqueued, stats.written, stats.dropped), (2, 2, 0));

    let rows = read_all(&path);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].timestamp, "2026-03-04T05:06:07.123456Z");
    assert_eq!(rows[0].source.as_deref(), Some("cidx.git"));
    assert_eq!(rows[0].correlation_id.as_deref(), Some("c-9"));
    assert_eq!(
        rows[0].extra_data,
        serde_json::json!({"repo": "alpha", "error_code": "GIT-SYNC-001"})
    );
    assert_eq!(
        rows[1].extra_data,
        serde_json::json!({"error_code": "DB-LOCK-003"})
    );
}

#[test]
fn try_submit_gives_the_entry_back_when_the_queue_is_full_and_counts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let options = LayerOptions {
        queue_capacity: 1,
        batch_size: 1,
        ..LayerOptions::default()
    };
    let (layer, handle) = SqliteLogLayer::open(&path, options).unwrap();
    // The writer may take the first entry at once; keep offering until one is refused.
    let mut refused = None;
    for i in 0..1_000 {
        if let Err(back) = layer.try_submit(LogEntry::new(Level::Info, "x", format!("entry {i}"))) {
            refused = Some(back);
            break;
        }
    }
    let back = refused.expect("a queue of one refused nothing");
    assert!(back.message.starts_with("entry "));
    let stats = handle.stats();
    assert_eq!((stats.dropped, stats.dropped_errors), (0, 0));
}
