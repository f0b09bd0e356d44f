//! # selfmon-core
//!
//! The domain model, configuration, pluggable traits, scan engine, deterministic triage and test
//! doubles of selfmon: a library that lets a server triage its own logs and file actionable,
//! non-duplicate issues.
//!
//! ## The traits
//!
//! A host plugs its own systems in by implementing these (each trait's docs are its contract;
//! `conformance` checks an implementation against it, feature `mock`):
//!
//! | trait | what it is | adapters |
//! |---|---|---|
//! | [`LogSource`] | records with increasing ids, read after a cursor | `MemoryLogSource`, SQLite `logs.db`, PostgreSQL |
//! | [`AnalysisRunner`] | asks a model (or rules) about a bounded digest | [`offline::OfflineRunner`], `ScriptedRunner`, Claude Code CLI |
//! | [`IssueTracker`] | files, finds, comments on and reopens issues | `MemoryIssueTracker`, folder, GitHub |
//! | [`Deduplicator`] | decides new / duplicate / related / regression | the three-tier default in [`dedup`] |
//! | [`ScanLedger`] | the single-flight lease, scans and the cursor | `MemoryStateStore`, SQLite, PostgreSQL |
//! | [`IssueLedger`] | filed issues, the filing outbox and the backlog | the same stores |
//! | [`ScanHistory`] | read-only history for UIs | the same stores |
//! | [`StateStore`] | all three ledgers on one object | the same stores |
//! | [`TemplateMemory`] | learned templates kept between scans (optional) | the same stores |
//! | [`JobQueue`] | runs scans as background jobs, one at a time | `MemoryJobQueue`, or the host's queue |
//!
//! The in-memory adapters are in [`memory`], test doubles in [`testing`]; every trait is
//! implemented for `Arc<T>` and `Box<T>` too, so a host can pass either.
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use selfmon_core::engine::SelfMonitor;
//! use selfmon_core::offline::OfflineRunner;
//! use selfmon_core::memory::{MemoryIssueTracker, MemoryLogSource, MemoryStateStore};
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
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cancel;
pub mod clock;
pub mod config;
pub mod dedup;
pub mod digest;
pub mod engine;
pub mod error;
pub mod hash;
pub mod inventory;
pub mod issue_body;
pub mod lease;
pub mod memory;
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
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub mod conformance;
#[cfg(any(test, feature = "mock"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub mod mock;

pub use cancel::CancelToken;
pub use config::SelfMonitoringConfig;
pub use engine::{ScanEvent, ScanOptions, SelfMonitor};
pub use error::{Component, Error, Result};
pub use model::*;
pub use schedule::{
    DueBasis, FutureScan, NextScan, SchedulerState, SelfMonitoringService, TickOutcome,
};
pub use traits::*;
