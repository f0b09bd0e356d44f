//! The scan lease: holder identity, takeover of a dead holder's lease, heartbeat renewal, and a
//! scan that loses its lease.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{rig, rig_with, three_bugs};
use selfmon_core::clock::Clock;
use selfmon_core::lease::{host_name, process_start};
use selfmon_core::{
    Analysis, AnalysisRequest, AnalysisRunner, Error, LeaseHolder, LeaseOutcome, ScanLedger,
    ScanStatus, ScanTrigger, SelfMonitoringConfig,
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
