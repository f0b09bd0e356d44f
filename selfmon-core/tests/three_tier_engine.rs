//! The engine with the three-tier deduplicator: known problems are recognised before analysis,
//! across scans, and only novel problems are filed.

use std::sync::Arc;

use selfmon_core::config::DedupConfig;
use selfmon_core::dedup::ThreeTierDeduplicator;
use selfmon_core::engine::SelfMonitor;
use selfmon_core::offline::OfflineRunner;
use selfmon_core::testing::{MemoryIssueTracker, MemoryLogSource, MemoryStateStore};
use selfmon_core::{Level, ScanStatus, ScanTrigger};

#[tokio::test]
async fn recurring_problems_with_new_values_are_not_refiled_and_new_ones_are() {
    let logs = Arc::new(MemoryLogSource::new());
    let tracker = Arc::new(MemoryIssueTracker::new());
    let store = Arc::new(MemoryStateStore::new());
    let monitor = SelfMonitor::builder()
        .log_source(logs.clone())
        .runner(Arc::new(OfflineRunner))
        .tracker(tracker.clone())
        .store(store.clone())
        .template_memory(store)
        .deduplicator(Arc::new(ThreeTierDeduplicator::new(DedupConfig::default())))
        .build()
        .unwrap();

    logs.log(
        Level::Error,
        "app.git",
        "[GIT-SYNC-001] clone of /repos/alpha failed after 3 attempts",
    );
    logs.log(
        Level::Error,
        "app.db",
        "[DB-LOCK-003] database is locked (waited 120ms)",
    );
    let first = monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(first.record.status, ScanStatus::Success);
    let filed = tracker.issues().len();
    assert_eq!(filed, 2, "the first scan files the problems it finds");

    // The same problems, different values: recognised before analysis (tiers 1 and 2).
    logs.log(
        Level::Error,
        "app.git",
        "[GIT-SYNC-001] clone of /repos/beta failed after 7 attempts",
    );
    logs.log(
        Level::Error,
        "app.db",
        "[DB-LOCK-003] database is locked (waited 3500ms)",
    );
    let second = monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(second.record.status, ScanStatus::Success);
    assert_eq!(second.record.novel_signatures, 0, "{:?}", second.record);
    assert!(
        !second.record.analysis_ran,
        "nothing novel: the runner is not called"
    );
    assert_eq!(tracker.issues().len(), filed);

    // A genuinely new problem is filed.
    logs.log(
        Level::Error,
        "app.index",
        "Traceback (most recent call last):\n  File \"indexer.py\", line 12, in write\nKeyError: 'segment'",
    );
    let third = monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(third.record.novel_signatures, 1);
    assert_eq!(tracker.issues().len(), filed + 1);
}
