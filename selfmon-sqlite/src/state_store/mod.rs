//! [`SqliteStateStore`]: scan history, filed issues, lease and outbox in one SQLite file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};
use selfmon_core::clock::{Clock, SystemClock};
use selfmon_core::{Component, Lease, Page, PageRequest};
use serde::{Deserialize, Serialize};

use crate::error::{blocking, Error, Result};
use crate::schema;

mod backlog;
mod history;
mod issue_ledger;
mod reports;
mod rows;
mod scan_ledger;
mod template_memory;
pub(crate) mod values;

use rows::{latest_success, read_lease};
use values::{limits, parse_time, time_text, to_i64, to_u64};

/// Largest page the dashboard queries return, whatever the request asks for.
pub const MAX_PAGE_SIZE: u64 = 500;

const LEASE_NAME: &str = "scan";

/// How [`SqliteStateStore`] opens its file. Plain data with working defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateStoreOptions {
    /// How long a write waits for another process's lock before failing as retryable.
    pub busy_timeout_ms: u64,
    /// `synchronous=FULL` (true, the default: a committed write survives power loss) or `NORMAL`
    /// (false: survives a process crash, may lose the last commits on power loss).
    pub synchronous_full: bool,
    /// Scans (and occurrence history) older than this many days are removed by
    /// [`SqliteStateStore::prune`]. Issue rows are never removed.
    pub retention_days: u32,
}

impl Default for StateStoreOptions {
    fn default() -> Self {
        StateStoreOptions {
            busy_timeout_ms: 10_000,
            synchronous_full: true,
            retention_days: 90,
        }
    }
}

impl StateStoreOptions {
    /// Checks ranges; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.busy_timeout_ms > 600_000 {
            return Err(Error::InvalidOption {
                field: "busy_timeout_ms",
                reason: format!("{} is more than 600000 (ten minutes)", self.busy_timeout_ms),
            });
        }
        if self.retention_days == 0 {
            return Err(Error::InvalidOption {
                field: "retention_days",
                reason: "must be at least 1 day".into(),
            });
        }
        Ok(())
    }
}

/// One entry of an issue's occurrence history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OccurrenceRow {
    /// The issue.
    pub issue_number: u64,
    /// When the occurrences were seen (the scan's time).
    pub seen_at: DateTime<Utc>,
    /// How many records were attributed.
    pub count: u64,
}

/// What [`SqliteStateStore::prune`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PruneReport {
    /// Scan rows removed.
    pub scans_deleted: u64,
    /// Occurrence-history rows removed.
    pub occurrences_deleted: u64,
    /// Scan reports removed (with their scans).
    #[serde(default)]
    pub reports_deleted: u64,
}

/// A [`StateStore`](selfmon_core::StateStore) and a [`TemplateMemory`](selfmon_core::TemplateMemory) in one
/// SQLite file (which may be the host's own database).
///
/// - Tables: the CIDX dashboard's `self_monitoring_scans` and `self_monitoring_issues` (extended with
///   selfmon's columns), `self_monitoring_occurrences`, `selfmon_lease`, `selfmon_intents` (the
///   outbox), `selfmon_template_state` and `selfmon_schema_version`; see [`crate::schema`].
///   Lists (error codes, source files, templates, signature ids, log ids) and the intent's draft
///   and finding are JSON text columns. Rows CIDX wrote with comma-separated lists are read too.
/// - Durability: WAL, `synchronous=FULL` by default, foreign keys on; every method commits before
///   it returns. Calls run on tokio's blocking pool over one connection behind a mutex.
/// - The lease is a row taken in a `BEGIN IMMEDIATE` transaction, so it is exclusive across every
///   process using the file; an expired lease is taken over.
/// - `record_occurrences` and `set_issue_state` for an issue number this store never recorded
///   (the tracker may hold issues filed elsewhere) do nothing.
/// - Retention ([`prune`](Self::prune)) removes old scans and occurrence history, never issue rows
///   (dedup needs them for as long as the tracker has the issue), never a RUNNING scan, and never
///   the latest successful scan (it holds the cursor).
/// - Timestamps are stored as RFC 3339 UTC text with microseconds (`2025-01-02T03:04:05.000000Z`),
///   which sorts in time order; timestamps CIDX wrote in other ISO 8601 forms are read leniently.
#[derive(Clone)]
pub struct SqliteStateStore {
    inner: Arc<Inner>,
    /// What "now" is for the times the store stamps itself (a report's `saved_at`, the learned
    /// template state's `updated_at`); every other time comes from the engine.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqliteStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStateStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    options: StateStoreOptions,
    conn: Mutex<Connection>,
}

impl SqliteStateStore {
    /// Opens (creating if needed) and migrates the store at `path`. Blocks the calling thread
    /// (call it at start-up, or inside `spawn_blocking`).
    ///
    /// Errors: [`Error::Open`], [`Error::SchemaTooNew`], [`Error::Sqlite`] (busy: retryable),
    /// [`Error::InvalidOption`].
    pub fn open(path: impl AsRef<Path>, options: StateStoreOptions) -> Result<Self> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        let open_err = |source| Error::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_millis(options.busy_timeout_ms))
            .map_err(open_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "state store could not switch to WAL");
        }
        let sync = if options.synchronous_full {
            "FULL"
        } else {
            "NORMAL"
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        schema::migrate(&mut conn, &path)?;
        Ok(SqliteStateStore {
            inner: Arc::new(Inner {
                path,
                options,
                conn: Mutex::new(conn),
            }),
            clock: Arc::new(SystemClock),
        })
    }

    /// Whether the existing file at `path` already holds self-monitoring state: selfmon's
    /// schema-version table or the CIDX dashboard's `self_monitoring_scans`. Opens the file
    /// read-only and changes nothing, so a read-only command (`selfmon history`) can refuse a
    /// mistyped path instead of [`open`](Self::open) creating selfmon's tables in someone else's
    /// database.
    ///
    /// Errors: [`Error::Open`] (not a SQLite file, unreadable, locked: see its message).
    pub fn holds_state(path: impl AsRef<Path>) -> Result<bool> {
        let path = path.as_ref();
        let open_err = |source| Error::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        let found: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (?1, ?2)",
                [crate::schema::VERSION_TABLE, "self_monitoring_scans"],
                |r| r.get(0),
            )
            .map_err(open_err)?;
        Ok(found > 0)
    }

    /// Uses `clock` instead of the system clock for the times the store stamps itself (when a
    /// scan report or the learned template state was saved). Tests pass a
    /// [`FakeClock`](selfmon_core::clock::FakeClock); the engine's own clock (given to
    /// `SelfMonitor::builder`) decides every other time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Now by the store's clock, in the stored form.
    fn now_text(&self) -> String {
        time_text(self.clock.now())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The options in force.
    pub fn options(&self) -> &StateStoreOptions {
        &self.inner.options
    }

    /// The schema version of the file (always [`crate::SCHEMA_VERSION`] after `open`).
    pub async fn schema_version(&self) -> Result<i64> {
        self.run(|conn| {
            schema::current_version(conn).map_err(Error::sqlite("reading the schema version"))
        })
        .await
    }

    /// The lease row, if any (expired or not), for diagnostics.
    pub async fn current_lease(&self) -> Result<Option<Lease>> {
        self.run(|conn| read_lease(conn)).await
    }

    /// The occurrence history of one issue, newest first, with the total.
    pub async fn issue_occurrences(
        &self,
        issue_number: u64,
        page: PageRequest,
    ) -> Result<Page<OccurrenceRow>> {
        self.run(move |conn| {
            let number = to_i64(issue_number);
            let total: i64 = conn
                .query_row(
                    "SELECT count(*) FROM self_monitoring_occurrences WHERE issue_number = ?1",
                    [number],
                    |r| r.get(0),
                )
                .map_err(Error::sqlite("counting occurrences"))?;
            let (limit, offset) = limits(page);
            let mut stmt = conn
                .prepare(
                    "SELECT seen_at, count FROM self_monitoring_occurrences WHERE issue_number = ?1
                     ORDER BY seen_at DESC, id DESC LIMIT ?2 OFFSET ?3",
                )
                .map_err(Error::sqlite("listing occurrences"))?;
            let items = stmt
                .query_map(rusqlite::params![number, limit, offset], |r| {
                    Ok(OccurrenceRow {
                        issue_number,
                        seen_at: parse_time(&r.get::<_, String>(0)?),
                        count: to_u64(r.get::<_, Option<i64>>(1)?),
                    })
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(Error::sqlite("listing occurrences"))?;
            Ok(Page {
                items,
                total: to_u64(Some(total)),
            })
        })
        .await
    }

    /// Removes scans and occurrence history older than
    /// [`StateStoreOptions::retention_days`] before `now` (see the type docs for what is kept).
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<PruneReport> {
        self.prune_older_than(self.inner.options.retention_days, now)
            .await
    }

    /// Like [`prune`](Self::prune) with an explicit number of days.
    pub async fn prune_older_than(&self, days: u32, now: DateTime<Utc>) -> Result<PruneReport> {
        self.run(move |conn| {
            let cutoff = time_text(now - chrono::Duration::days(i64::from(days)));
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::sqlite("starting retention"))?;
            let keep: Option<String> = latest_success(&tx)?.map(|(id, _)| id);
            let scans_deleted = tx
                .execute(
                    "DELETE FROM self_monitoring_scans
                     WHERE status <> 'RUNNING' AND started_at < ?1 AND scan_id IS NOT ?2",
                    rusqlite::params![cutoff, keep],
                )
                .map_err(Error::sqlite("pruning scans"))?;
            let occurrences_deleted = tx
                .execute(
                    "DELETE FROM self_monitoring_occurrences WHERE seen_at < ?1",
                    [&cutoff],
                )
                .map_err(Error::sqlite("pruning occurrences"))?;
            let reports_deleted = reports::prune_orphans(&tx)?;
            tx.commit().map_err(Error::sqlite("committing retention"))?;
            Ok(PruneReport {
                scans_deleted: scans_deleted as u64,
                occurrences_deleted: occurrences_deleted as u64,
                reports_deleted,
            })
        })
        .await
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut conn = lock(&inner.conn);
            f(&mut conn)
        })
        .await
    }

    async fn run_core<T, F>(&self, f: F) -> selfmon_core::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.run(f)
            .await
            .map_err(|e| e.into_core(Component::StateStore))
    }
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave a transaction open: rusqlite rolls back on drop.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
