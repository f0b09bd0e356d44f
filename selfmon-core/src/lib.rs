//! # selfmon-core
//!
//! The domain model, configuration, pluggable traits, scan engine, deterministic triage and test
//! doubles of selfmon: a library that lets a server triage its own logs and file actionable,
//! non-duplicate issues.
//!
//! ```
//! use std::sync::Arc;
//! use selfmon_core::engine::SelfMonitor;
//! use selfmon_core::offline::OfflineRunner;
//! use selfmon_core::testing::{MemoryIssueTracker, MemoryLogSource, MemoryStateStore};
//! use selfmon_core::{Level, ScanTrigger};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let logs = Arc::new(MemoryLogSource::new());
//! logs.log(Level::Error, "app.sync", "Traceback (most recent call last):\n  File \"sync.py\"\nValueError: bad ref");
//! let tracker = Arc::new(MemoryIssueTracker::new());
//! let store = Arc::new(MemoryStateStore::new());
//! let monitor = SelfMonitor::builder()
//!     .log_source(logs.clone())
//!     .runner(Arc::new(OfflineRunner))
//!     .tracker(tracker.clone())
//!     .store(store.clone())
//!     .template_memory(store)
//!     .build()?;
//! let report = monitor.scan(ScanTrigger::Manual).await?;
//! assert_eq!(report.record.issues_created, 1);
//! // Nothing new: the second scan files nothing.
//! assert_eq!(monitor.scan(ScanTrigger::Manual).await?.record.issues_created, 0);
//! # Ok::<(), selfmon_core::Error>(()) }).unwrap();
//! ```
#![warn(missing_docs)]

pub mod cancel;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod dedup;
pub mod digest;
pub mod engine;
pub mod error;
pub mod hash;
pub mod issue_body;
pub mod lease;
pub mod model;
pub mod offline;
pub mod prompt;
pub mod redact;
pub mod schedule;
pub mod template;
pub mod testing;
pub mod text;
pub mod traits;

#[cfg(any(test, feature = "mock"))]
pub mod conformance;
#[cfg(any(test, feature = "mock"))]
pub mod mock;

pub use cancel::CancelToken;
pub use config::SelfMonitoringConfig;
pub use engine::{ScanEvent, ScanOptions, SelfMonitor};
pub use error::{Component, Error, Result};
pub use model::*;
pub use schedule::{SchedulerState, SelfMonitoringService, TickOutcome};
pub use traits::*;
