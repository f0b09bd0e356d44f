//! Whole scans (the core engine) over a real PostgreSQL `logs` table while nodes keep writing.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use selfmon_core::memory::{MemoryIssueTracker, MemoryStateStore};
use selfmon_core::offline::OfflineRunner;
use selfmon_core::{
    Level, LogPage, LogRecord, LogSource, LogSourceDescription, ScanTrigger, SelfMonitor,
    SelfMonitoringConfig,
};
use selfmon_postgres::PgLogSource;
use support::{insert, test_db};
use tokio_postgres::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_at_the_cursor_is_found_while_a_writer_holds_the_horizon_back() {
    let Some(db) = test_db().await else { return };
    db.create_logs().await;
    let records: Vec<LogRecord> = (0..3)
        .map(|i| LogRecord::new(0, Level::Error, format!("committed {i}")))
        .collect();
    insert(&db.client, &records, "a").await;
    let mut slow = db.connect().await;
    let tx = slow.transaction().await.expect("begin");
    insert(
        &tx,
        &[LogRecord::new(0, Level::Warning, "slow request")],
        "b",
    )
    .await;
    // A scan's fresh source: nothing is proven final while the writer is open.
    let source = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .expect("connect");
    let page = source.read_after(2, 1).await.expect("page");
    assert!(page.records.is_empty(), "the page waits for the horizon");
    let anchor = source
        .record_at(3)
        .await
        .expect("record at")
        .expect("a committed record below the cursor is there whatever the horizon");
    assert_eq!((anchor.id, anchor.message.as_str()), (3, "committed 2"));
    assert_eq!(source.record_at(4).await.expect("record at"), None);
    tx.commit().await.expect("commit");
}

/// A source that has another node commit a record before every page it reads.
struct NodesKeepLogging {
    source: PgLogSource,
    writer: Client,
}

#[async_trait]
impl LogSource for NodesKeepLogging {
    async fn read_after(&self, after: i64, limit: usize) -> selfmon_core::Result<LogPage> {
        insert(
            &self.writer,
            &[LogRecord::new(
                0,
                Level::Error,
                "[NODE-LOG-001] logged while scanning",
            )],
            "busy",
        )
        .await;
        self.source.read_after(after, limit).await
    }
    async fn max_id(&self) -> selfmon_core::Result<Option<i64>> {
        self.source.max_id().await
    }
    async fn record_at(&self, id: i64) -> selfmon_core::Result<Option<LogRecord>> {
        self.source.record_at(id).await
    }
    fn describe(&self) -> LogSourceDescription {
        self.source.describe()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_ends_at_the_log_it_found_while_nodes_keep_logging_and_the_next_reads_the_rest() {
    let Some(db) = test_db().await else { return };
    db.create_logs().await;
    let records: Vec<LogRecord> = (0..5)
        .map(|i| LogRecord::new(0, Level::Error, format!("[NODE-LOG-001] before {i}")))
        .collect();
    insert(&db.client, &records, "a").await;
    let logs = Arc::new(NodesKeepLogging {
        source: PgLogSource::connect(db.url.clone(), db.log_options())
            .await
            .expect("connect"),
        writer: db.connect().await,
    });
    let store = Arc::new(MemoryStateStore::new());
    let monitor = SelfMonitor::builder()
        .config(SelfMonitoringConfig {
            page_size: 2,
            max_records_per_scan: 200,
            ..Default::default()
        })
        .log_source(logs.clone())
        .runner(Arc::new(OfflineRunner))
        .tracker(Arc::new(MemoryIssueTracker::new()))
        .store(store.clone())
        .template_memory(store)
        .build()
        .expect("engine");
    let mut cursor = 0;
    let mut read = 0;
    for scan in 0..3 {
        let target = logs.max_id().await.expect("max id").unwrap_or(0);
        let report = monitor.scan(ScanTrigger::Manual).await.expect("scan");
        assert_eq!(report.record.log_id_start, cursor, "scan {scan}");
        assert!(
            report.record.log_id_end <= target,
            "scan {scan} chased the writers: cursor {} past the log it found ({target})",
            report.record.log_id_end
        );
        assert_eq!(
            report.record.log_id_end, target,
            "scan {scan} read what it found"
        );
        read += report.record.records_read;
        cursor = report.record.log_id_end;
    }
    assert_eq!(
        read,
        u64::try_from(cursor).unwrap(),
        "every record up to the cursor read once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_left_idle_in_transaction_is_named_in_the_scan_report_and_its_row_is_read_after_it_commits(
) {
    let Some(db) = test_db().await else { return };
    db.create_logs().await;
    let before: Vec<LogRecord> = (0..2)
        .map(|i| LogRecord::new(0, Level::Error, format!("[NODE-LOG-001] before {i}")))
        .collect();
    insert(&db.client, &before, "a").await;
    // The scheduler's source has looked at the table before the writer got stuck (a fresh
    // process proves nothing while it is open: its report then says no record is read).
    let source = PgLogSource::connect(
        db.url.clone(),
        selfmon_postgres::PgLogSourceOptions {
            horizon_stall_warn_secs: 0,
            ..db.log_options()
        },
    )
    .await
    .expect("connect");
    // Node b's connection inserts and then sits idle inside its transaction.
    let mut stuck = db
        .url
        .connect("node-b-writer")
        .await
        .expect("connect writer");
    stuck
        .batch_execute(&format!("SET search_path TO {}", db.schema))
        .await
        .expect("search path");
    let pid: i32 = stuck
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    let tx = stuck.transaction().await.expect("begin");
    let held = insert(
        &tx,
        &[LogRecord::new(0, Level::Error, "[NODE-LOG-002] held")],
        "b",
    )
    .await;
    let after = insert(
        &db.client,
        &[LogRecord::new(0, Level::Error, "[NODE-LOG-003] after")],
        "c",
    )
    .await;
    assert_eq!((held[0], after[0]), (3, 4));

    let store = Arc::new(MemoryStateStore::new());
    let monitor = SelfMonitor::builder()
        .log_source(Arc::new(source))
        .runner(Arc::new(OfflineRunner))
        .tracker(Arc::new(MemoryIssueTracker::new()))
        .store(store.clone())
        .template_memory(store)
        .build()
        .expect("engine");

    let first = monitor.scan(ScanTrigger::Manual).await.expect("scan");
    assert_eq!(
        (first.record.records_read, first.record.log_id_end),
        (2, 2),
        "the scan reads up to the horizon and no further"
    );
    let kinds: Vec<&str> = first.warnings.iter().map(|w| w.kind.as_str()).collect();
    assert_eq!(kinds, [selfmon_postgres::horizon::HORIZON_HELD_KIND]);
    let message = first.warnings[0].message.as_str();
    for part in [
        "above id 2".to_string(),
        format!("pid {pid}"),
        "`node-b-writer`".to_string(),
        "127.0.0.1".to_string(),
        "`idle in transaction`".to_string(),
        format!("SELECT pg_terminate_backend({pid});"),
    ] {
        assert!(message.contains(&part), "{part} missing from: {message}");
    }

    tx.commit().await.expect("the writer commits");
    let second = monitor.scan(ScanTrigger::Manual).await.expect("scan");
    assert_eq!(
        (
            second.record.log_id_start,
            second.record.records_read,
            second.record.log_id_end
        ),
        (2, 2, 4),
        "the held row and the one after it are read once it commits"
    );
    assert!(second.warnings.is_empty(), "{:?}", second.warnings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_mb_message_is_fetched_as_its_prefix_digested_as_the_whole_and_anchors_the_next_scan()
{
    use selfmon_core::digest::{DigestBuilder, MAX_MESSAGE_CHARS_READ};
    let Some(db) = test_db().await else { return };
    db.create_logs().await;
    let huge = format!("[BIG-ROW-001] {}", "x".repeat(20 * 1024 * 1024));
    let wide = "€".repeat(300_000); // 900 KB of three-byte characters
    insert(
        &db.client,
        &[
            LogRecord::new(0, Level::Error, huge.clone()),
            LogRecord::new(0, Level::Error, wide.clone()),
        ],
        "a",
    )
    .await;
    let source = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .expect("connect");

    let page = source.read_after(0, 10).await.expect("page");
    let lens: Vec<usize> = page
        .records
        .iter()
        .map(|r| r.message.chars().count())
        .collect();
    assert_eq!(
        lens,
        [MAX_MESSAGE_CHARS_READ, MAX_MESSAGE_CHARS_READ],
        "only the prefix the digest reads is fetched"
    );
    assert!(page.records[0].message.starts_with("[BIG-ROW-001] xxx"));
    let config = SelfMonitoringConfig::default();
    let digest = |records: &[LogRecord]| {
        let mut b = DigestBuilder::new(&config).expect("builder");
        records.iter().for_each(|r| b.push(r));
        b.finish()
    };
    let mut whole = page.records.clone();
    whole[0].message = huge;
    whole[1].message = wide;
    assert_eq!(
        digest(&page.records),
        digest(&whole),
        "the prefix digests exactly as the whole message"
    );
    for r in &page.records {
        let again = source
            .record_at(r.id)
            .await
            .expect("record at")
            .expect("there");
        assert!(
            selfmon_core::LogAnchor::of(r).matches(&again),
            "an anchor taken from a page matches the record looked up again"
        );
    }

    // Through the engine: the cut record is the anchor, and the next scan recognises the log.
    let store = Arc::new(MemoryStateStore::new());
    let monitor = SelfMonitor::builder()
        .log_source(Arc::new(source))
        .runner(Arc::new(OfflineRunner))
        .tracker(Arc::new(MemoryIssueTracker::new()))
        .store(store.clone())
        .template_memory(store)
        .build()
        .expect("engine");
    let first = monitor.scan(ScanTrigger::Manual).await.expect("scan");
    assert_eq!((first.record.records_read, first.record.log_id_end), (2, 2));
    insert(
        &db.client,
        &[LogRecord::new(0, Level::Error, "after the big rows")],
        "a",
    )
    .await;
    let second = monitor.scan(ScanTrigger::Manual).await.expect("scan");
    assert!(
        !second.record.cursor_reset,
        "the anchor on a cut message still identifies it"
    );
    assert_eq!(
        (
            second.record.log_id_start,
            second.record.records_read,
            second.record.log_id_end
        ),
        (2, 1, 3)
    );
}
