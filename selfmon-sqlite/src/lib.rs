//! # selfmon-sqlite
//!
//! SQLite adapters for selfmon:
//!
//! - [`SqliteLogSource`]: reads the CIDX server's `logs.db` (read-only, paged, while the server
//!   writes), a [`selfmon_core::LogSource`].
//! - [`SqliteStateStore`]: scan history, filed issues, the single-flight lease and the filing outbox
//!   in one SQLite file, a [`selfmon_core::StateStore`] and [`selfmon_core::TemplateMemory`]; tables compatible with the CIDX dashboard.
//! - [`inventory()`]: the error-code inventory of a `logs.db` (coded vs uncoded records, top uncoded
//!   templates, malformed and uncatalogued codes).
//! - `SqliteLogLayer` (feature `tracing-layer`): a `tracing-subscriber` layer that writes events
//!   into a `logs.db`, so any Rust service can be monitored.
//!
//! ```
//! use selfmon_core::{Level, LogSource, ScanLedger};
//! use selfmon_sqlite::{LogSourceOptions, SqliteLogSource, SqliteStateStore, StateStoreOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let logs_path = dir.path().join("logs.db");
//! # let conn = rusqlite::Connection::open(&logs_path)?;
//! # selfmon_sqlite::create_logs_table(&conn)?;
//! # conn.execute("INSERT INTO logs (timestamp, level, source, message) VALUES
//! #     ('2026-01-01T00:00:00Z', 'ERROR', 'app.db', '[DB-LOCK-003] database is locked')", [])?;
//! let logs = SqliteLogSource::open(&logs_path, LogSourceOptions::default())?;
//! let state = SqliteStateStore::open(dir.path().join("selfmon.db"), StateStoreOptions::default())?;
//!
//! let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! rt.block_on(async {
//!     let cursor = state.last_successful_cursor().await?;
//!     let page = logs.read_after(cursor, 10_000).await?;
//!     assert_eq!(page.records[0].level, Level::Error);
//!     assert_eq!(page.scanned_through, 1);
//!     Ok::<_, selfmon_core::Error>(())
//! })?;
//!
//! let report = selfmon_sqlite::inventory(&logs_path, None, &Default::default())?;
//! assert_eq!(report.overall.coded, 1);
//! # Ok(()) }
//! ```
//!
//! In a real host the engine ([`selfmon_core::engine::SelfMonitor`]) drives both adapters; see the
//! crate README.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod error;
pub mod inventory;
pub mod log_source;
pub mod logs_schema;
pub mod schema;
pub mod state_store;
#[cfg(feature = "tracing-layer")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing-layer")))]
pub mod tracing_layer;

pub use error::{Error, Result};
pub use inventory::{inventory, render_text, Catalog, InventoryOptions, InventoryReport};
pub use log_source::{LogSourceOptions, SqliteLogSource};
pub use logs_schema::{create_logs_table, LOGS_INSERT_SQL, LOGS_TABLE_DDL};
pub use schema::SCHEMA_VERSION;
pub use state_store::{OccurrenceRow, PruneReport, SqliteStateStore, StateStoreOptions};
#[cfg(feature = "tracing-layer")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing-layer")))]
pub use tracing_layer::{LayerHandle, LayerOptions, LayerStats, LogEntry, SqliteLogLayer};
