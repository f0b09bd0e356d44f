#![allow(dead_code)]
//! Shared helpers for the engine tests.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use selfmon_core::engine::SelfMonitor;
use selfmon_core::offline::OfflineRunner;
use selfmon_core::testing::{
    FakeClock, FaultyLogSource, FaultyStateStore, FaultyTracker, MemoryIssueTracker,
    MemoryLogSource, MemoryStateStore,
};
use selfmon_core::{AnalysisRunner, Level, SelfMonitoringConfig};

pub struct Rig {
    pub logs: Arc<MemoryLogSource>,
    pub tracker: Arc<MemoryIssueTracker>,
    pub store: Arc<MemoryStateStore>,
    /// The same three as the engine calls them, behind fault injection.
    pub faulty_logs: Arc<FaultyLogSource<Arc<MemoryLogSource>>>,
    pub faulty_tracker: Arc<FaultyTracker<Arc<MemoryIssueTracker>>>,
    pub faulty_store: Arc<FaultyStateStore<Arc<MemoryStateStore>>>,
    pub clock: Arc<FakeClock>,
    pub monitor: SelfMonitor,
}

pub fn rig_with(runner: Arc<dyn AnalysisRunner>, config: SelfMonitoringConfig) -> Rig {
    let logs = Arc::new(MemoryLogSource::new());
    let tracker = Arc::new(MemoryIssueTracker::new());
    let store = Arc::new(MemoryStateStore::new());
    let faulty_logs = Arc::new(FaultyLogSource::new(logs.clone()));
    let faulty_tracker = Arc::new(FaultyTracker::new(tracker.clone()));
    let faulty_store = Arc::new(FaultyStateStore::new(store.clone()));
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    ));
    let monitor = SelfMonitor::builder()
        .config(config)
        .log_source(faulty_logs.clone())
        .runner(runner)
        .tracker(faulty_tracker.clone())
        .store(faulty_store.clone())
        .template_memory(faulty_store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    Rig {
        logs,
        tracker,
        store,
        faulty_logs,
        faulty_tracker,
        faulty_store,
        clock,
        monitor,
    }
}

pub fn rig() -> Rig {
    rig_with(Arc::new(OfflineRunner), SelfMonitoringConfig::default())
}

/// Three distinct server bugs (one with a traceback, two with error codes).
pub fn three_bugs(logs: &MemoryLogSource) {
    logs.log(
        Level::Error,
        "app.api",
        "Traceback (most recent call last):\n  File \"api.py\"\nValueError: bad ref",
    );
    logs.log(
        Level::Error,
        "app.git",
        "[GIT-SYNC-001] clone of repo alpha failed: exit 128",
    );
    logs.log(
        Level::Critical,
        "app.db",
        "[DB-LOCK-003] database is locked",
    );
}
