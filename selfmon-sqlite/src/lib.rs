//! # selfmon-sqlite
//!
//! SQLite adapters for selfmon:
//!
//! - [`SqliteLogSource`]: reads the CIDX server's `logs.db` (read-only, paged, while the server
//!   writes), a [`selfmon_core::LogSource`].
//! - [`SqliteStateStore`]: scan history, filed issues, the single-flight lease and the filing outbox
//!   in one SQLite file, a [`selfmon_core::StateStore`]; tables compatible with the CIDX dashboard.
//! - [`inventory`]: the error-code inventory of a `logs.db` (coded vs uncoded records, top uncoded
//!   templates, malformed and uncatalogued codes).
//! - `SqliteLogLayer` (feature `tracing-layer`): a `tracing-subscriber` layer that writes events
//!   into a `logs.db`, so any Rust service can be monitored.
//!
//! ```no_run
//! use selfmon_core::LogSource;
//! use selfmon_sqlite::{LogSourceOptions, SqliteLogSource, SqliteStateStore, StateStoreOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let logs = SqliteLogSource::open("/var/lib/cidx/logs.db", LogSourceOptions::default())?;
//! let page = logs.read_after(0, 10_000).await?;
//! println!("{} records, read through id {}", page.records.len(), page.scanned_through);
//! let state = SqliteStateStore::open("/var/lib/cidx/selfmon.db", StateStoreOptions::default())?;
//! # let _ = state;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod error;
pub mod inventory;
pub mod log_source;
pub mod logs_schema;
pub mod schema;
pub mod state_store;
#[cfg(feature = "tracing-layer")]
pub mod tracing_layer;

pub use error::{Error, Result};
pub use inventory::{inventory, render_text, Catalog, InventoryOptions, InventoryReport};
pub use log_source::{LogSourceOptions, SqliteLogSource};
pub use logs_schema::{create_logs_table, LOGS_TABLE_DDL};
pub use schema::SCHEMA_VERSION;
pub use state_store::{OccurrenceRow, PruneReport, SqliteStateStore, StateStoreOptions};
#[cfg(feature = "tracing-layer")]
pub use tracing_layer::{LayerHandle, LayerOptions, LayerStats, SqliteLogLayer};
