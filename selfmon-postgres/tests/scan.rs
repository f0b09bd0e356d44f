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
