//! # selfmon
//!
//! Self-triage for servers: read the log records your server wrote, work out what is actually
//! wrong, and file actionable, non-duplicate issues, keeping a history of every scan and every
//! issue filed.
//!
//! This crate is a thin facade: it re-exports [`selfmon_core`] (model, configuration, traits, the
//! scan engine, deterministic triage, in-memory adapters) and, behind the features `sqlite`,
//! `claude` and `github` (all on by default), the adapter crates; `postgres` (off by default) adds
//! [`selfmon_postgres`] for clusters whose nodes share logs and state in PostgreSQL. The
//! `selfmon` binary is the separate package `selfmon-cli`, so a host that turns default features
//! off compiles only what the library uses.
//!
//! ## The traits
//!
//! A host plugs its own systems in by implementing these (each trait's docs are its contract);
//! the adapter crates implement them for real systems:
//!
//! | trait | what it is | adapters |
//! |---|---|---|
//! | [`LogSource`] | records with increasing ids, read after a cursor | [`memory::MemoryLogSource`], `sqlite::SqliteLogSource`, `postgres::PgLogSource` |
//! | [`AnalysisRunner`] | asks a model (or rules) about a bounded digest | [`offline::OfflineRunner`], `claude::ClaudeRunner` |
//! | [`IssueTracker`] | files, finds, comments on and reopens issues | [`memory::MemoryIssueTracker`], [`dry_run::DryRunTracker`], `github::GitHubTracker` |
//! | [`Deduplicator`] | decides new / duplicate / related / regression | the three-tier default in [`dedup`] |
//! | [`ScanLedger`], [`IssueLedger`], [`ScanHistory`] (together [`StateStore`]) | the lease, scans, cursor; filed issues, outbox, backlog; read-only history | [`memory::MemoryStateStore`], `sqlite::SqliteStateStore`, `postgres::PgStateStore` |
//! | [`TemplateMemory`] | learned templates kept between scans (optional) | the same stores |
//! | [`JobQueue`] | runs scans as background jobs, one at a time | [`memory::MemoryJobQueue`], or the host's queue |
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use selfmon::engine::SelfMonitor;
//! use selfmon::offline::OfflineRunner;
//! use selfmon::memory::{MemoryIssueTracker, MemoryLogSource, MemoryStateStore};
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
// The README's snippets are pasted into hosts: an unused import there is a bug.
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use selfmon_core::*;

pub mod dry_run;

#[cfg(feature = "claude")]
#[cfg_attr(docsrs, doc(cfg(feature = "claude")))]
pub use selfmon_claude as claude;
#[cfg(feature = "github")]
#[cfg_attr(docsrs, doc(cfg(feature = "github")))]
pub use selfmon_github as github;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use selfmon_postgres as postgres;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use selfmon_sqlite as sqlite;
