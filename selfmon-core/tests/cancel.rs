//! Cancellation of a scan: a token, the monitor's shutdown, and a dropped scan future.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{rig_with, three_bugs};
use selfmon_core::cancel::CancelToken;
use selfmon_core::{
    Analysis, AnalysisRequest, AnalysisRunner, Error, ScanOptions, ScanStatus, ScanTrigger,
    SelfMonitoringConfig, StateStore,
};

/// A runner whose analysis never ends; it notes when it starts, when its future is dropped, and
/// when the engine waits for its cleanup.
#[derive(Default)]
struct StuckRunner {
    started: tokio::sync::Notify,
    dropped: Arc<AtomicBool>,
    cleanup_waits: AtomicUsize,
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl AnalysisRunner for StuckRunner {
    async fn analyze(&self, _r: &AnalysisRequest) -> selfmon_core::Result<Analysis> {
        let _flag = SetOnDrop(self.dropped.clone());
        self.started.notify_one();
        std::future::pending::<()>().await;
        Ok(Analysis::default())
    }
    fn name(&self) -> &str {
        "stuck"
    }
    async fn wait_for_cleanup(&self) {
        self.cleanup_waits.fetch_add(1, Ordering::SeqCst);
    }
}

fn manual() -> ScanOptions {
    ScanOptions {
        trigger: ScanTrigger::Manual,
        ..Default::default()
    }
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("finished in time")
}

#[tokio::test]
async fn a_cancelled_scan_is_recorded_interrupted_keeps_the_cursor_and_frees_the_lease() {
    let runner = Arc::new(StuckRunner::default());
    let r = rig_with(runner.clone(), SelfMonitoringConfig::default());
    three_bugs(&r.logs);
    let monitor = Arc::new(r.monitor);
    let token = CancelToken::new();
    let scan = tokio::spawn({
        let (m, t) = (monitor.clone(), token.clone());
        async move { m.scan_with_cancel(manual(), &t).await }
    });
    within(runner.started.notified()).await;
    token.cancel();
    let err = within(scan).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(
        runner.dropped.load(Ordering::SeqCst),
        "the analysis future was dropped"
    );
    assert_eq!(
        runner.cleanup_waits.load(Ordering::SeqCst),
        1,
        "the engine waited for the runner's cleanup"
    );
    let scans = r.store.scans();
    assert_eq!(scans.len(), 1);
    assert_eq!(scans[0].status, ScanStatus::Failure);
    let message = scans[0].error_message.clone().unwrap_or_default();
    assert!(message.starts_with("interrupted"), "{message}");
    assert_eq!(scans[0].log_id_end, scans[0].log_id_start);
    assert_eq!(r.store.last_successful_cursor().await.unwrap(), 0);
    assert!(r.store.lease().is_none(), "the lease is released");
    assert!(r.tracker.issues().is_empty());
}

#[tokio::test]
async fn after_a_cancelled_scan_the_next_scan_reads_the_same_records() {
    let runner = Arc::new(StuckRunner::default());
    let r = rig_with(runner.clone(), SelfMonitoringConfig::default());
    three_bugs(&r.logs);
    let token = CancelToken::new();
    let scan = r.monitor.scan_with_cancel(manual(), &token);
    let cancel = async {
        runner.started.notified().await;
        token.cancel();
    };
    let (result, ()) = within(async { tokio::join!(scan, cancel) }).await;
    assert!(matches!(result, Err(Error::Cancelled)));
    // The same monitor, store and logs with a runner that answers.
    let next = selfmon_core::SelfMonitor::builder()
        .log_source(r.logs.clone())
        .runner(Arc::new(selfmon_core::offline::OfflineRunner))
        .tracker(r.tracker.clone())
        .store(r.store.clone())
        .clock(r.clock.clone())
        .build()
        .unwrap();
    let report = next.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(report.record.records_read, 3);
    assert_eq!(report.record.issues_created, 3);
}

#[tokio::test]
async fn a_token_cancelled_before_the_scan_records_nothing_and_takes_no_lease() {
    let runner = Arc::new(StuckRunner::default());
    let r = rig_with(runner.clone(), SelfMonitoringConfig::default());
    three_bugs(&r.logs);
    let token = CancelToken::new();
    token.cancel();
    let err = r.monitor.scan_with_cancel(manual(), &token).await;
    assert!(matches!(err, Err(Error::Cancelled)));
    assert!(r.store.scans().is_empty());
    assert!(r.store.lease().is_none());
}

#[tokio::test]
async fn shutdown_cancels_the_scan_in_flight_and_every_later_scan() {
    let runner = Arc::new(StuckRunner::default());
    let r = rig_with(runner.clone(), SelfMonitoringConfig::default());
    three_bugs(&r.logs);
    let monitor = Arc::new(r.monitor);
    let scan = tokio::spawn({
        let m = monitor.clone();
        async move { m.scan(ScanTrigger::Scheduled).await }
    });
    within(runner.started.notified()).await;
    monitor.shutdown();
    let err = within(scan).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(matches!(
        monitor.scan(ScanTrigger::Manual).await,
        Err(Error::Cancelled)
    ));
    assert_eq!(r.store.scans().len(), 1, "the later scan recorded nothing");
    assert!(r.store.lease().is_none());
}

#[tokio::test]
async fn dropping_a_scan_future_releases_the_lease_and_closes_the_scan_in_the_background() {
    let runner = Arc::new(StuckRunner::default());
    let r = rig_with(runner.clone(), SelfMonitoringConfig::default());
    three_bugs(&r.logs);
    let monitor = Arc::new(r.monitor);
    let scan = tokio::spawn({
        let m = monitor.clone();
        async move { m.scan(ScanTrigger::Manual).await }
    });
    within(runner.started.notified()).await;
    assert!(r.store.lease().is_some());
    scan.abort();
    let _ = scan.await;
    assert!(runner.dropped.load(Ordering::SeqCst));
    within(async {
        while r.store.lease().is_some() || r.store.scans()[0].status == ScanStatus::Running {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let scans = r.store.scans();
    assert_eq!(scans[0].status, ScanStatus::Failure);
    assert!(scans[0]
        .error_message
        .as_deref()
        .is_some_and(|m| m.starts_with("interrupted")));
    assert_eq!(r.store.last_successful_cursor().await.unwrap(), 0);
}
