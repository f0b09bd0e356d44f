#![allow(dead_code)]
//! Shared helpers for the engine tests.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use selfmon_core::engine::SelfMonitor;
use selfmon_core::offline::OfflineRunner;
use selfmon_core::testing::{FakeClock, MemoryIssueTracker, MemoryLogSource, MemoryStateStore};
use selfmon_core::{AnalysisRunner, Level, SelfMonitoringConfig};

pub struct Rig {
    pub logs: Arc<MemoryLogSource>,
    pub tracker: Arc<MemoryIssueTracker>,
    pub store: Arc<MemoryStateStore>,
    pub clock: Arc<FakeClock>,
    pub monitor: SelfMonitor,
}

pub fn rig_with(runner: Arc<dyn AnalysisRunner>, config: SelfMonitoringConfig) -> Rig {
    let logs = Arc::new(MemoryLogSource::new());
    let tracker = Arc::new(MemoryIssueTracker::new());
    let store = Arc::new(MemoryStateStore::new());
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    ));
    let monitor = SelfMonitor::builder()
        .config(config)
        .log_source(logs.clone())
        .runner(runner)
        .tracker(tracker.clone())
        .store(store.clone())
        .template_memory(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    Rig {
        logs,
        tracker,
        store,
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
