//! The scan lease: holder identity, takeover of a dead holder's lease, heartbeat renewal, and a
//! scan that loses its lease.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{rig, rig_with, three_bugs};
use selfmon_core::clock::Clock;
use selfmon_core::lease::{host_name, process_start};
use selfmon_core::{
    Analysis, AnalysisRequest, AnalysisRunner, Error, IssueLedger, IssueTracker, LeaseHolder,
    LeaseOutcome, ScanLedger, ScanStatus, ScanTrigger, SelfMonitoringConfig,
};

/// A holder identity for a process of this host that has exited (and been reaped).
fn dead_holder(owner: &str) -> Option<LeaseHolder> {
    let ours = process_start(std::process::id())?;
    let mut child = std::process::Command::new("true").spawn().ok()?;
    let pid = child.id();
    child.wait().ok()?;
    Some(LeaseHolder {
        owner: owner.to_string(),
        host: host_name(),
        pid: Some(pid),
        process_start: Some(ours),
    })
}

#[tokio::test]
async fn a_lease_held_by_a_dead_process_on_this_host_is_taken_over_at_once_and_reported() {
    let Some(dead) = dead_holder("selfmon-dead/scan-1") else {
        selfmon_core::testing::tool::skip_missing_tool("procfs", "holder liveness reads /proc");
        return;
    };
    let r = rig();
    three_bugs(&r.logs);
    let ttl = Duration::from_secs(600);
    let outcome = r
        .store
        .try_acquire_lease_for(&dead, ttl, r.clock.now())
        .await
        .unwrap();
    assert!(matches!(outcome, LeaseOutcome::Acquired(_)));
    let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(report.record.status, ScanStatus::Success);
    assert_eq!(report.record.issues_created, 3);
    let previous = report.took_over_lease.expect("the takeover is reported");
    assert_eq!(previous.owner, "selfmon-dead/scan-1");
    assert!(r.store.lease().is_none(), "released after the scan");
}

#[tokio::test]
async fn a_live_holder_blocks_and_the_error_says_who_since_and_until() {
    let r = rig();
    three_bugs(&r.logs);
    let live = LeaseHolder::current("selfmon-live/scan-2");
    r.store
        .try_acquire_lease_for(&live, Duration::from_secs(600), r.clock.now())
        .await
        .unwrap();
    let err = r.monitor.scan(ScanTrigger::Manual).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::LeaseHeld { .. }), "{text}");
    assert!(text.contains("selfmon-live/scan-2"), "{text}");
    assert!(
        text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    assert!(text.contains("since 2026-01-01"), "{text}");
    assert!(text.contains("until 2026-01-01 00:10:00"), "{text}");
    assert!(r.store.scans().is_empty());
}

/// A runner whose analysis never ends.
#[derive(Default)]
struct StuckRunner(tokio::sync::Notify);

#[async_trait::async_trait]
impl AnalysisRunner for StuckRunner {
    async fn analyze(&self, _r: &AnalysisRequest) -> selfmon_core::Result<Analysis> {
        self.0.notify_one();
        std::future::pending::<()>().await;
        Ok(Analysis::default())
    }
    fn name(&self) -> &str {
        "stuck"
    }
}

#[tokio::test(start_paused = true)]
async fn a_running_scan_renews_its_lease_and_stops_when_it_loses_it() {
    let runner = Arc::new(StuckRunner::default());
    let config = SelfMonitoringConfig {
        lease_ttl_secs: 60,
        ..Default::default()
    };
    let r = rig_with(runner.clone(), config);
    three_bugs(&r.logs);
    let monitor = Arc::new(r.monitor);
    let scan = tokio::spawn({
        let m = monitor.clone();
        async move { m.scan(ScanTrigger::Manual).await }
    });
    runner.0.notified().await;
    let first = r.store.lease().expect("held");
    // A heartbeat every third of the TTL moves the expiry along with the clock.
    r.clock.advance(chrono::Duration::seconds(50));
    tokio::time::sleep(Duration::from_secs(25)).await;
    let renewed = r.store.lease().expect("still held");
    assert_eq!(renewed.owner, first.owner);
    assert_eq!(
        renewed.expires_at,
        r.clock.now() + chrono::Duration::seconds(60)
    );
    // Another scan takes the lease over (as if this one had been paused past its TTL).
    let thief = LeaseHolder::named("thief");
    let outcome = r
        .store
        .take_over_lease(&renewed, &thief, Duration::from_secs(60), r.clock.now())
        .await
        .unwrap();
    assert!(matches!(outcome, LeaseOutcome::Acquired(_)));
    let err = scan.await.unwrap().unwrap_err();
    assert!(
        matches!(err, Error::LeaseLost { ref owner } if owner == "thief"),
        "{err}"
    );
    let scans = r.store.scans();
    assert_eq!(scans[0].status, ScanStatus::Failure);
    assert_eq!(r.store.last_successful_cursor().await.unwrap(), 0);
    assert_eq!(
        r.store.lease().map(|l| l.owner),
        Some("thief".to_string()),
        "the loser does not release the new holder's lease"
    );
}

/// A tracker whose create waits (as GitHub's adapter waits out a rate limit) until the test
/// opens the gate, or for `wait` when set, and only then creates the issue.
#[derive(Default)]
struct WaitingTracker {
    inner: selfmon_core::testing::MemoryIssueTracker,
    waiting: tokio::sync::Notify,
    gate: tokio::sync::Notify,
    wait: Option<Duration>,
}

#[async_trait::async_trait]
impl IssueTracker for WaitingTracker {
    async fn list_issues(
        &self,
        closed_since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> selfmon_core::Result<Vec<selfmon_core::TrackedIssue>> {
        self.inner.list_issues(closed_since).await
    }
    async fn create_issue(
        &self,
        draft: &selfmon_core::IssueDraft,
    ) -> selfmon_core::Result<selfmon_core::IssueRef> {
        self.waiting.notify_one();
        match self.wait {
            Some(wait) => tokio::time::sleep(wait).await,
            None => self.gate.notified().await,
        }
        self.inner.create_issue(draft).await
    }
    async fn comment(
        &self,
        number: u64,
        body: &selfmon_core::redact::RedactedText,
    ) -> selfmon_core::Result<()> {
        self.inner.comment(number, body).await
    }
    async fn reopen(&self, number: u64) -> selfmon_core::Result<()> {
        self.inner.reopen(number).await
    }
    async fn find_by_marker(
        &self,
        marker: &selfmon_core::Marker,
    ) -> selfmon_core::Result<Option<selfmon_core::IssueRef>> {
        self.inner.find_by_marker(marker).await
    }
}

/// review5 G5: node A waits inside the tracker's create (a rate limit) past its lease; node B
/// takes the lease over (and would reconcile A's intent and file it). When A's wait ends, its
/// create must not be sent: the scan stops with the lost lease, the intent stays for B.
#[tokio::test]
async fn a_create_still_waiting_when_the_lease_ends_is_never_sent_and_the_scan_stops() {
    let tracker = Arc::new(WaitingTracker::default());
    let store = Arc::new(selfmon_core::testing::MemoryStateStore::new());
    let clock = Arc::new(selfmon_core::testing::FakeClock::new(
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 1, 0, 0, 0).unwrap(),
    ));
    let logs = Arc::new(selfmon_core::testing::MemoryLogSource::new());
    logs.log(
        selfmon_core::Level::Critical,
        "app.db",
        "[DB-LOCK-003] database is locked",
    );
    let monitor = selfmon_core::SelfMonitor::builder()
        .config(SelfMonitoringConfig {
            lease_ttl_secs: 60,
            ..Default::default()
        })
        .log_source(logs)
        .runner(Arc::new(selfmon_core::offline::OfflineRunner))
        .tracker(tracker.clone())
        .store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let scan = tokio::spawn(async move { monitor.scan(ScanTrigger::Manual).await });
    tracker.waiting.notified().await;
    assert_eq!(
        store.open_intents().await.unwrap().len(),
        1,
        "the intent is recorded"
    );
    // A stalls (or is cut off from the store) past its TTL; B takes the lease.
    clock.advance(chrono::Duration::seconds(61));
    let b = LeaseHolder::named("node-b");
    let taken = store
        .try_acquire_lease_for(&b, Duration::from_secs(60), clock.now())
        .await
        .unwrap();
    assert!(matches!(taken, LeaseOutcome::Acquired(_)));
    // A's wait ends.
    tracker.gate.notify_one();
    let err = scan.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::LeaseLost { .. }), "{err}");
    assert!(
        tracker.inner.issues().is_empty(),
        "the create after the wait was not sent"
    );
    assert_eq!(
        store.open_intents().await.unwrap().len(),
        1,
        "the intent stays for the next holder to reconcile"
    );
    assert_eq!(store.lease().map(|l| l.owner), Some("node-b".to_string()));
}

/// The heartbeat stops the scan once its lease has expired by its own clock without a
/// successful renewal (the store unreachable), not only when a renewal sees another owner.
#[tokio::test(start_paused = true)]
async fn the_heartbeat_stops_the_scan_when_its_lease_expires_without_a_renewal() {
    let runner = Arc::new(StuckRunner::default());
    let config = SelfMonitoringConfig {
        lease_ttl_secs: 60,
        ..Default::default()
    };
    let r = rig_with(runner.clone(), config);
    three_bugs(&r.logs);
    let monitor = Arc::new(r.monitor);
    let scan = tokio::spawn({
        let m = monitor.clone();
        async move { m.scan(ScanTrigger::Manual).await }
    });
    runner.0.notified().await;
    // The store becomes unreachable: the next renewals fail, and the clock runs past the TTL.
    r.faulty_store
        .fail(selfmon_core::testing::StoreOp::RenewLease);
    r.clock.advance(chrono::Duration::seconds(25));
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert!(!scan.is_finished(), "one failed renewal is retried");
    r.clock.advance(chrono::Duration::seconds(36));
    let outcome = tokio::time::timeout(Duration::from_secs(600), scan)
        .await
        .expect("the scan stops once its lease expired unrenewed");
    let err = outcome.unwrap().unwrap_err();
    assert!(matches!(err, Error::LeaseLost { .. }), "{err}");
    assert_eq!(r.store.scans()[0].status, ScanStatus::Failure);
}

/// A wall clock that runs with tokio's (paused) time.
struct TokioClock {
    start: chrono::DateTime<chrono::Utc>,
    origin: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.start + chrono::Duration::from_std(self.origin.elapsed()).unwrap()
    }
}

/// review5 G5, repro 12 (no stall at all): the node is cut off from the state store while the
/// tracker makes its create wait out a rate limit longer than the lease. The wait is cut before
/// the lease ends: the create is never sent, the scan stops with the lost lease.
#[tokio::test(start_paused = true)]
async fn a_rate_limit_wait_that_would_outlast_the_lease_is_cut_before_the_create() {
    let tracker = Arc::new(WaitingTracker {
        wait: Some(Duration::from_secs(75)),
        ..Default::default()
    });
    let store = Arc::new(selfmon_core::testing::MemoryStateStore::new());
    let faulty_store = Arc::new(selfmon_core::testing::FaultyStateStore::new(store.clone()));
    let clock = Arc::new(TokioClock {
        start: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 1, 0, 0, 0).unwrap(),
        origin: tokio::time::Instant::now(),
    });
    let logs = Arc::new(selfmon_core::testing::MemoryLogSource::new());
    logs.log(
        selfmon_core::Level::Critical,
        "app.db",
        "[DB-LOCK-003] database is locked",
    );
    let monitor = selfmon_core::SelfMonitor::builder()
        .config(SelfMonitoringConfig {
            lease_ttl_secs: 60,
            ..Default::default()
        })
        .log_source(logs)
        .runner(Arc::new(selfmon_core::offline::OfflineRunner))
        .tracker(tracker.clone())
        .store(faulty_store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let scan = tokio::spawn(async move { monitor.scan(ScanTrigger::Manual).await });
    tracker.waiting.notified().await;
    faulty_store.fail(selfmon_core::testing::StoreOp::RenewLease);
    let err = scan.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::LeaseLost { .. }), "{err}");
    assert!(
        tracker.inner.issues().is_empty(),
        "the create after the wait was not sent"
    );
    let stopped = store.scans()[0].completed_at.expect("recorded as finished");
    assert!(
        stopped < clock.start + chrono::Duration::seconds(60),
        "stopped before the lease could be taken over: {stopped}"
    );
}
