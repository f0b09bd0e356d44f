//! The pre-analysis "a known issue explains this signature" decision belongs to the
//! deduplicator: a host's own deduplicator controls it, and the engine never decides it alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use selfmon_core::dedup::ThreeTierDeduplicator;
use selfmon_core::digest::Signature;
use selfmon_core::engine::SelfMonitor;
use selfmon_core::offline::OfflineRunner;
use selfmon_core::testing::{MemoryIssueTracker, MemoryLogSource, MemoryStateStore};
use selfmon_core::{
    DedupDecision, DedupTier, Deduplicator, Finding, KnownIssuesView, Level, Result, ScanTrigger,
    SignatureMatch,
};

/// Wraps the default deduplicator; explains signatures by its own rule and counts the calls.
struct HostDedup {
    inner: ThreeTierDeduplicator,
    explain: fn(&Signature, &dyn KnownIssuesView) -> Option<SignatureMatch>,
    explain_calls: AtomicU64,
}

impl HostDedup {
    fn new(explain: fn(&Signature, &dyn KnownIssuesView) -> Option<SignatureMatch>) -> Self {
        HostDedup {
            inner: ThreeTierDeduplicator::default(),
            explain,
            explain_calls: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl Deduplicator for HostDedup {
    async fn decide(
        &self,
        finding: &Finding,
        fingerprint: &str,
        known: &(dyn KnownIssuesView + 'static),
    ) -> Result<DedupDecision> {
        self.inner.decide(finding, fingerprint, known).await
    }

    async fn explain_signature(
        &self,
        signature: &Signature,
        known: &(dyn KnownIssuesView + 'static),
    ) -> Result<Option<SignatureMatch>> {
        self.explain_calls.fetch_add(1, Ordering::SeqCst);
        Ok((self.explain)(signature, known))
    }
}

struct Rig {
    logs: Arc<MemoryLogSource>,
    tracker: Arc<MemoryIssueTracker>,
    monitor: SelfMonitor,
}

fn rig(dedup: Arc<HostDedup>) -> Rig {
    let logs = Arc::new(MemoryLogSource::new());
    let tracker = Arc::new(MemoryIssueTracker::new());
    let store = Arc::new(MemoryStateStore::new());
    let monitor = SelfMonitor::builder()
        .log_source(logs.clone())
        .runner(Arc::new(OfflineRunner))
        .tracker(tracker.clone())
        .store(store.clone())
        .template_memory(store)
        .deduplicator(dedup)
        .build()
        .unwrap();
    Rig {
        logs,
        tracker,
        monitor,
    }
}

fn log_bug(logs: &MemoryLogSource) {
    logs.log(
        Level::Error,
        "app.git",
        "[GIT-SYNC-001] clone of repo alpha failed: exit 128",
    );
}

#[tokio::test]
async fn a_host_deduplicator_that_explains_nothing_sends_known_signatures_to_analysis() {
    let dedup = Arc::new(HostDedup::new(|_, _| None));
    let r = rig(dedup.clone());
    log_bug(&r.logs);
    let first = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(first.record.issues_created, 1);
    log_bug(&r.logs);
    let second = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    // The default would have dropped the recurring signature before analysis.
    assert_eq!(second.record.known_signatures, 0);
    assert_eq!(second.record.novel_signatures, 1);
    assert!(second.record.analysis_ran);
    // The finding is still deduplicated after analysis: nothing is filed twice.
    assert_eq!(second.record.issues_created, 0);
    assert_eq!(r.tracker.issues().len(), 1);
    assert_eq!(dedup.explain_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_host_deduplicator_decides_what_a_known_issue_explains() {
    // The host's rule: every signature is explained by the first open issue it knows.
    let dedup = Arc::new(HostDedup::new(|_, known| {
        known.issues().next().map(|k| SignatureMatch {
            issue: k.issue.number,
            tier: DedupTier::Fingerprint,
        })
    }));
    let r = rig(dedup.clone());
    log_bug(&r.logs);
    assert_eq!(
        r.monitor
            .scan(ScanTrigger::Manual)
            .await
            .unwrap()
            .record
            .issues_created,
        1
    );
    // A different problem, which the default would analyse and file.
    r.logs.log(
        Level::Critical,
        "app.db",
        "[DB-LOCK-003] database is locked",
    );
    let second = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(second.record.known_signatures, 1);
    assert_eq!(second.record.novel_signatures, 0);
    assert!(!second.record.analysis_ran);
    assert_eq!(second.record.issues_created, 0);
    assert_eq!(r.tracker.issues().len(), 1);
}

#[tokio::test]
async fn a_host_deduplicator_wrapping_the_default_conforms() {
    // One that leaves every signature to the analysis.
    selfmon_core::conformance::deduplicator(&HostDedup::new(|_, _| None)).await;
}

#[tokio::test]
async fn the_engine_asks_the_deduplicator_once_per_finding_and_files_what_it_calls_new() {
    let mut dedup = selfmon_core::mock::MockDeduplicator::new();
    dedup.expect_explain_signature().returning(|_, _| Ok(None));
    // One finding, decided once; the mock checks the count when the engine drops it.
    dedup
        .expect_decide()
        .times(1)
        .returning(|_, _, _| Ok(DedupDecision::New));
    let logs = Arc::new(MemoryLogSource::new());
    let tracker = Arc::new(MemoryIssueTracker::new());
    let store = Arc::new(MemoryStateStore::new());
    let monitor = SelfMonitor::builder()
        .log_source(logs.clone())
        .runner(Arc::new(OfflineRunner))
        .tracker(tracker.clone())
        .store(store.clone())
        .template_memory(store)
        .deduplicator(Arc::new(dedup))
        .build()
        .unwrap();
    log_bug(&logs);
    let report = monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(report.record.issues_created, 1);
    assert_eq!(tracker.issues().len(), 1);
}
