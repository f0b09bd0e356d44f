//! # selfmon-postgres
//!
//! PostgreSQL adapters for selfmon in **cluster mode**: several server nodes write their logs into
//! one PostgreSQL table (a `SERIAL` id plus a `node_id` column) and keep shared state in PostgreSQL;
//! exactly one node scans at a time.
//!
//! - [`PgLogSource`]: reads the shared `logs` table up to the *commit horizon*, so a row whose id
//!   was handed out before a later id became visible is still read, exactly once (see
//!   [`horizon`] for why and how). A writer that keeps its transaction open holds reading back;
//!   past `horizon_stall_warn_secs` every page (and so the scan report) names its session and
//!   says how to end it.
//! - [`PgStateStore`]: scan history, filed issues, the outbox and learned templates in versioned,
//!   migrated tables ([`schema`]), with a single-flight lease row whose epoch fences every write,
//!   so a node that lost the lease cannot land a filing.
//!
//! Connection strings come from the environment ([`PgUrl::from_env`]) and are never logged:
//! `Debug` and every error show only `user@host:port/db` (`tests/secrets.rs` checks every error a
//! real server produces, with its source chain).
//!
//! **TLS** (feature `tls`; `postgres-tls` on the `selfmon` library and the `selfmon-cli`
//! binary): `sslmode=require` in the connection string connects with rustls and verifies the
//! server's certificate against the Mozilla roots plus `PGSSLROOTCERT`; see `tls` for why
//! `prefer` stays plain text. The feature adds no crate to the workspace's build (rustls is
//! already there for HTTPS).
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
//! and reads `pg_locks` (open to every role); it covers a partitioned table's partitions and
//! the tables under a view. Ids must come from the `id` column's sequence with the
//! default `CACHE 1`, as `SERIAL`/`IDENTITY` columns have.
//!
//! ## Figures
//!
//! `cargo bench -p selfmon-benches --bench postgres --features postgres` (1,000,000 rows,
//! PostgreSQL 15 on the same two-core machine, loopback, other builds running): a bare keyset `SELECT` loop reads
//! ~400,000 rows/s; [`PgLogSource`] ~234,000 rows/s converting every row (~59 % of the bare
//! loop) and ~306,000 rows/s examined with the default WARNING filter. Lease acquire + release
//! ~2.0 ms, renew ~1.9 ms, a fenced begin + commit of a scan ~1.6 ms.
//!
//! ## Tested through the binary
//!
//! `tests/cli_postgres_cluster.rs` runs separate `selfmon` processes against one server: three
//! `serve-scheduler` nodes triggered together (scans never overlap, cursor ranges contiguous,
//! every record read once, each problem filed once); `kill -9` of the scanner at ten points of a
//! scan followed by another node (takes over at once: the holder's process is provably gone),
//! and at the moment the outbox holds a filing (the next node reconciles it, files nothing twice);
//! `pg_terminate_backend` of a scanner's connections mid-scan (it reconnects and finishes);
//! and a scanner stopped with `SIGSTOP` past its 60 s TTL (taken over after one TTL; when it
//! wakes, none of its writes lands).
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
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod connect;
pub mod error;
pub mod horizon;
pub mod log_source;
pub mod schema;
pub mod state_store;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;

pub use connect::PgUrl;
pub use error::{Error, Result};
pub use log_source::{PgLogSource, PgLogSourceOptions, LOGS_TABLE_DDL};
pub use schema::SCHEMA_VERSION;
pub use state_store::{PgStateStore, PgStateStoreOptions, PruneReport};
/// The client crate, re-exported so hosts (creating the logs table, running their own queries)
/// and tests use the version this crate was built with.
pub use tokio_postgres;
