//! # selfmon
//!
//! Self-triage for servers: read the log records your server wrote, work out what is actually
//! wrong, and file actionable, non-duplicate issues, keeping a history of every scan and every
//! issue filed.
//!
//! This crate is a thin facade: it re-exports [`selfmon_core`] (model, configuration, traits, the
//! scan engine, deterministic triage, in-memory adapters) and, behind the features `sqlite`,
//! `claude` and `github` (all on by default), the adapter crates; `postgres` (off by default) adds
//! [`selfmon_postgres`] for clusters whose nodes share logs and state in PostgreSQL.
//!
//! ```
//! use std::sync::Arc;
//! use selfmon::engine::SelfMonitor;
//! use selfmon::offline::OfflineRunner;
//! use selfmon::testing::{MemoryIssueTracker, MemoryLogSource, MemoryStateStore};
//! use selfmon::{Level, ScanTrigger};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let logs = Arc::new(MemoryLogSource::new());
//! logs.log(Level::Critical, "app.db", "[DB-LOCK-003] database is locked");
//! let monitor = SelfMonitor::builder()
//!     .log_source(logs)
//!     .runner(Arc::new(OfflineRunner))
//!     .tracker(Arc::new(MemoryIssueTracker::new()))
//!     .store(Arc::new(MemoryStateStore::new()))
//!     .build()?;
//! let report = monitor.scan(ScanTrigger::Manual).await?;
//! assert_eq!(report.record.issues_created, 1);
//! # Ok::<(), selfmon::Error>(()) }).unwrap();
//! ```
#![warn(missing_docs)]

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use selfmon_core::*;

pub mod dry_run;

#[cfg(feature = "claude")]
pub use selfmon_claude as claude;
#[cfg(feature = "github")]
pub use selfmon_github as github;
#[cfg(feature = "postgres")]
pub use selfmon_postgres as postgres;
#[cfg(feature = "sqlite")]
pub use selfmon_sqlite as sqlite;
