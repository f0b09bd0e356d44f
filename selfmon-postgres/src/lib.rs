//! # selfmon-postgres
//!
//! PostgreSQL adapters for selfmon in **cluster mode**: several server nodes write their logs into
//! one PostgreSQL table (a `SERIAL` id plus a `node_id` column) and keep shared state in PostgreSQL;
//! exactly one node scans at a time.
//!
//! - [`PgLogSource`]: reads the shared `logs` table up to the *commit horizon*, so a row whose id
//!   was handed out before a later id became visible is still read, exactly once (see
//!   [`horizon`] for why and how).
//! - [`PgStateStore`]: scan history, filed issues, the outbox and learned templates in versioned,
//!   migrated tables ([`schema`]), with a single-flight lease row whose epoch fences every write,
//!   so a node that lost the lease cannot land a filing.
//!
//! Connection strings come from the environment ([`PgUrl::from_env`]) and are never logged:
//! `Debug` and every error show only `user@host:port/db`.
//!
//! ## Choices
//!
//! **Client: `tokio-postgres`**, not `sqlx`. selfmon's engine is already tokio; tokio-postgres
//! is one async crate plus the protocol crates (no proc-macros, no compile-time query checking
//! against a live database, no drivers for other databases), which keeps a cold build on a
//! two-core machine short. selfmon needs a handful of connections per process (the log source's
//! and the state store's), so it keeps its own connections and reconnects them rather than
//! pulling in a pool crate.
//!
//! **Commit order: a commit horizon from the sequence and the table's write locks**, not a
//! filter on the rows' `xmin`. See [`horizon`]. The horizon needs `SELECT` on the id sequence
//! and reads `pg_locks` (open to every role). Ids must come from the `id` column's sequence with the
//! default `CACHE 1`, as `SERIAL`/`IDENTITY` columns have.
//!
//! ```no_run
//! use selfmon_core::LogSource;
//! use selfmon_postgres::{PgLogSource, PgLogSourceOptions, PgUrl};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let url = PgUrl::from_env("SELFMON_PG_URL")?;
//! let logs = PgLogSource::connect(url, PgLogSourceOptions::default()).await?;
//! let page = logs.read_after(0, 1_000).await?;
//! for record in &page.records {
//!     println!("{} {:?} {}", record.id, record.node_id, record.message);
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod connect;
pub mod error;
pub mod horizon;
pub mod log_source;
pub mod schema;
pub mod state_store;

pub use connect::PgUrl;
pub use error::{Error, Result};
pub use log_source::{PgLogSource, PgLogSourceOptions, LOGS_TABLE_DDL};
pub use schema::SCHEMA_VERSION;
pub use state_store::{PgStateStore, PgStateStoreOptions, PruneReport};
/// The client crate, re-exported so hosts (creating the logs table, running their own queries)
/// and tests use the version this crate was built with.
pub use tokio_postgres;
