//! [`SqliteStateStore`]: scan history, filed issues, lease and outbox in one SQLite file.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use rusqlite::{named_params, Connection, OptionalExtension, Row, TransactionBehavior};
use selfmon_core::{
    BacklogClosure, BacklogEntry, Classification, ClosedBacklogEntry, Component, DuplicateCounts,
    ErrorCode, FiledIssue, FilingIntent, IssueEvent, IssueEventKind, IssueFilter, IssueRef,
    IssueState, Lease, LeaseOutcome, Level, Page, PageRequest, ScanEffects, ScanId, ScanRecord,
    ScanReport, ScanStatus, ScanTrigger, StateStore,
};
use serde::{Deserialize, Serialize};

use crate::error::{blocking, Error, Result};
use crate::schema;

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

/// A [`StateStore`] in one SQLite file (which may be the host's own database).
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
#[derive(Debug, Clone)]
pub struct SqliteStateStore {
    inner: Arc<Inner>,
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
        })
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
            let reports_deleted = tx
                .execute(
                    "DELETE FROM selfmon_scan_reports
                     WHERE scan_id NOT IN (SELECT scan_id FROM self_monitoring_scans)",
                    [],
                )
                .map_err(Error::sqlite("pruning scan reports"))?;
            tx.execute(
                "DELETE FROM selfmon_issue_events
                 WHERE scan_id NOT IN (SELECT scan_id FROM self_monitoring_scans)",
                [],
            )
            .map_err(Error::sqlite("pruning issue events"))?;
            tx.commit().map_err(Error::sqlite("committing retention"))?;
            Ok(PruneReport {
                scans_deleted: scans_deleted as u64,
                occurrences_deleted: occurrences_deleted as u64,
                reports_deleted: reports_deleted as u64,
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

#[async_trait]
impl StateStore for SqliteStateStore {
    async fn try_acquire_lease(
        &self,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> selfmon_core::Result<LeaseOutcome> {
        let owner = owner.to_string();
        self.run_core(move |conn| {
            let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(365));
            let expires_at = now
                .checked_add_signed(ttl)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::sqlite("taking the lease"))?;
            if let Some(held) = read_lease(&tx)? {
                if held.owner != owner && held.expires_at > now {
                    return Ok(LeaseOutcome::Held(held));
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO selfmon_lease (name, owner, expires_at, acquired_at)
                 VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![LEASE_NAME, owner, time_text(expires_at), time_text(now)],
            )
            .map_err(Error::sqlite("taking the lease"))?;
            tx.commit().map_err(Error::sqlite("committing the lease"))?;
            Ok(LeaseOutcome::Acquired(Lease { owner, expires_at }))
        })
        .await
    }

    async fn release_lease(&self, lease: &Lease) -> selfmon_core::Result<()> {
        let owner = lease.owner.clone();
        self.run_core(move |conn| {
            conn.execute(
                "DELETE FROM selfmon_lease WHERE name = ?1 AND owner = ?2",
                rusqlite::params![LEASE_NAME, owner],
            )
            .map_err(Error::sqlite("releasing the lease"))?;
            Ok(())
        })
        .await
    }

    async fn last_successful_cursor(&self) -> selfmon_core::Result<i64> {
        self.run_core(|conn| Ok(latest_success(conn)?.map_or(0, |(_, end)| end)))
            .await
    }

    async fn close_abandoned_scans(
        &self,
        now: DateTime<Utc>,
        reason: &str,
    ) -> selfmon_core::Result<u64> {
        let reason = reason.to_string();
        self.run_core(move |conn| {
            let n = conn
                .execute(
                    "UPDATE self_monitoring_scans SET status = 'FAILURE', completed_at = ?1,
                     error_message = ?2 WHERE status = 'RUNNING'",
                    rusqlite::params![time_text(now), reason],
                )
                .map_err(Error::sqlite("closing abandoned scans"))?;
            Ok(n as u64)
        })
        .await
    }

    async fn begin_scan(&self, record: &ScanRecord) -> selfmon_core::Result<()> {
        let record = record.clone();
        self.run_core(move |conn| write_scan(conn, &record)).await
    }

    async fn finish_scan(&self, record: &ScanRecord) -> selfmon_core::Result<()> {
        let record = record.clone();
        self.run_core(move |conn| write_scan(conn, &record)).await
    }

    async fn commit_scan(
        &self,
        record: &ScanRecord,
        effects: &ScanEffects,
    ) -> selfmon_core::Result<()> {
        let record = record.clone();
        let effects = effects.clone();
        self.run_core(move |conn| {
            let now = record.completed_at.unwrap_or(record.started_at);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::sqlite("committing a scan"))?;
            for o in &effects.occurrences {
                add_occurrences(&tx, o.issue, o.count, now)?;
            }
            for entry in &effects.deferred {
                defer_backlog_entry(&tx, entry)?;
            }
            for closure in &effects.closed {
                close_backlog_entry(&tx, closure, true, now)?;
            }
            if let Some(state) = &effects.template_state {
                tx.execute(
                    "INSERT OR REPLACE INTO selfmon_template_state (id, state, updated_at)
                     VALUES (1, ?1, ?2)",
                    rusqlite::params![state, now_text()],
                )
                .map_err(Error::sqlite("saving the template state"))?;
            }
            write_scan_in(&tx, &record)?;
            tx.commit().map_err(Error::sqlite("committing a scan"))?;
            Ok(())
        })
        .await
    }

    async fn open_backlog(&self) -> selfmon_core::Result<Vec<BacklogEntry>> {
        self.run_core(|conn| {
            let sql = format!(
                "SELECT {BACKLOG_COLUMNS} FROM selfmon_backlog WHERE closed_at IS NULL
                 ORDER BY severity_rank DESC, occurrences DESC, deferred_at, rowid"
            );
            let mut stmt = conn
                .prepare(&sql)
                .map_err(Error::sqlite("reading the backlog"))?;
            let mut rows = stmt
                .query([])
                .map_err(Error::sqlite("reading the backlog"))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(Error::sqlite("reading the backlog"))? {
                out.push(backlog_from_row(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn closed_backlog(
        &self,
        page: PageRequest,
    ) -> selfmon_core::Result<Page<ClosedBacklogEntry>> {
        self.run_core(move |conn| {
            let total: i64 = conn
                .query_row(
                    "SELECT count(*) FROM selfmon_backlog WHERE closed_at IS NOT NULL",
                    [],
                    |r| r.get(0),
                )
                .map_err(Error::sqlite("counting the closed backlog"))?;
            let (limit, offset) = limits(page);
            let sql = format!(
                "SELECT {BACKLOG_COLUMNS}, close_reason, closed_issue, closed_at
                 FROM selfmon_backlog WHERE closed_at IS NOT NULL
                 ORDER BY closed_at DESC, rowid DESC LIMIT ?1 OFFSET ?2"
            );
            let mut stmt = conn
                .prepare(&sql)
                .map_err(Error::sqlite("reading the closed backlog"))?;
            let mut rows = stmt
                .query([limit, offset])
                .map_err(Error::sqlite("reading the closed backlog"))?;
            let mut items = Vec::new();
            while let Some(row) = rows
                .next()
                .map_err(Error::sqlite("reading the closed backlog"))?
            {
                let entry = backlog_from_row(row)?;
                let e = || Error::sqlite("reading the closed backlog");
                let reason: Option<String> = row.get(BACKLOG_COLUMN_COUNT).map_err(e())?;
                let issue: Option<i64> = row.get(BACKLOG_COLUMN_COUNT + 1).map_err(e())?;
                let closed_at: Option<String> = row.get(BACKLOG_COLUMN_COUNT + 2).map_err(e())?;
                items.push(ClosedBacklogEntry {
                    closure: BacklogClosure {
                        entry_id: entry.entry_id.clone(),
                        reason: reason.unwrap_or_default(),
                        issue: issue.map(|n| to_u64(Some(n))),
                    },
                    entry,
                    closed_at: parse_time(&closed_at.unwrap_or_default()),
                });
            }
            Ok(Page {
                items,
                total: to_u64(Some(total)),
            })
        })
        .await
    }

    async fn filed_issues(&self) -> selfmon_core::Result<Vec<FiledIssue>> {
        self.run_core(|conn| {
            let sql = format!(
                "SELECT {ISSUE_COLUMNS} FROM self_monitoring_issues
                 WHERE github_issue_number IS NOT NULL ORDER BY id"
            );
            let mut stmt = conn
                .prepare(&sql)
                .map_err(Error::sqlite("reading filed issues"))?;
            let mut rows = stmt
                .query([])
                .map_err(Error::sqlite("reading filed issues"))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(Error::sqlite("reading filed issues"))? {
                out.push(issue_from_row(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn record_occurrences(
        &self,
        issue_number: u64,
        count: u64,
        now: DateTime<Utc>,
    ) -> selfmon_core::Result<()> {
        self.run_core(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::sqlite("recording occurrences"))?;
            add_occurrences(&tx, issue_number, count, now)?;
            tx.commit()
                .map_err(Error::sqlite("committing occurrences"))?;
            Ok(())
        })
        .await
    }

    async fn set_issue_state(
        &self,
        issue_number: u64,
        state: IssueState,
    ) -> selfmon_core::Result<()> {
        self.run_core(move |conn| {
            conn.execute(
                "UPDATE self_monitoring_issues SET state = ?1 WHERE github_issue_number = ?2",
                rusqlite::params![state.as_str(), to_i64(issue_number)],
            )
            .map_err(Error::sqlite("updating an issue state"))?;
            Ok(())
        })
        .await
    }

    async fn record_intent(&self, intent: &FilingIntent) -> selfmon_core::Result<()> {
        let intent = intent.clone();
        self.run_core(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO selfmon_intents (intent_id, scan_id, fingerprint, marker,
                 title, draft, finding, templates, occurrences, created_at, backlog_entry_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                rusqlite::params![
                    intent.intent_id,
                    intent.scan_id.as_str(),
                    intent.draft.fingerprint,
                    intent.draft.marker.as_str(),
                    intent.draft.title,
                    to_json("issue draft", &intent.draft)?,
                    to_json("finding", &intent.finding)?,
                    to_json("templates", &intent.templates)?,
                    to_i64(intent.occurrences),
                    time_text(intent.created_at),
                    intent.backlog_entry_id,
                ],
            )
            .map_err(Error::sqlite("recording a filing intent"))?;
            Ok(())
        })
        .await
    }

    async fn open_intents(&self) -> selfmon_core::Result<Vec<FilingIntent>> {
        self.run_core(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT intent_id, scan_id, draft, finding, templates, occurrences, created_at,
                     backlog_entry_id FROM selfmon_intents ORDER BY created_at, rowid",
                )
                .map_err(Error::sqlite("reading filing intents"))?;
            let mut rows = stmt
                .query([])
                .map_err(Error::sqlite("reading filing intents"))?;
            let mut out = Vec::new();
            while let Some(r) = rows
                .next()
                .map_err(Error::sqlite("reading filing intents"))?
            {
                let get = |i| {
                    r.get::<_, String>(i)
                        .map_err(Error::sqlite("reading filing intents"))
                };
                out.push(FilingIntent {
                    intent_id: get(0)?,
                    scan_id: ScanId(get(1)?),
                    draft: from_json("issue draft", &get(2)?)?,
                    finding: from_json("finding", &get(3)?)?,
                    templates: from_json("templates", &get(4)?)?,
                    occurrences: to_u64(
                        r.get::<_, Option<i64>>(5)
                            .map_err(Error::sqlite("reading filing intents"))?,
                    ),
                    created_at: parse_time(&get(6)?),
                    backlog_entry_id: r
                        .get::<_, Option<String>>(7)
                        .map_err(Error::sqlite("reading filing intents"))?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn complete_intent(
        &self,
        intent_id: &str,
        issue: &FiledIssue,
    ) -> selfmon_core::Result<()> {
        let intent_id = intent_id.to_string();
        let issue = issue.clone();
        self.run_core(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::sqlite("completing a filing intent"))?;
            // Idempotent: completing twice (a retry after an unknown outcome) keeps one row.
            match issue_row_id(&tx, issue.issue.number)? {
                Some(id) => update_issue(&tx, id, &issue)?,
                None => insert_issue(&tx, &issue)?,
            }
            let backlog_entry: Option<String> = tx
                .query_row(
                    "SELECT backlog_entry_id FROM selfmon_intents WHERE intent_id = ?1",
                    [&intent_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(Error::sqlite("reading a filing intent"))?
                .flatten();
            if let Some(entry_id) = backlog_entry {
                // The intent carried the entry's occurrences into the issue row already.
                let closure = BacklogClosure {
                    entry_id,
                    reason: format!("filed as #{}", issue.issue.number),
                    issue: Some(issue.issue.number),
                };
                close_backlog_entry(&tx, &closure, false, issue.created_at)?;
            }
            tx.execute(
                "DELETE FROM selfmon_intents WHERE intent_id = ?1",
                [&intent_id],
            )
            .map_err(Error::sqlite("closing a filing intent"))?;
            tx.commit()
                .map_err(Error::sqlite("committing a filed issue"))?;
            Ok(())
        })
        .await
    }

    async fn list_scans(&self, page: PageRequest) -> selfmon_core::Result<Page<ScanRecord>> {
        self.run_core(move |conn| {
            let total: i64 = conn
                .query_row("SELECT count(*) FROM self_monitoring_scans", [], |r| {
                    r.get(0)
                })
                .map_err(Error::sqlite("counting scans"))?;
            let (limit, offset) = limits(page);
            let sql = format!(
                "SELECT {SCAN_COLUMNS} FROM self_monitoring_scans
                 ORDER BY started_at DESC, rowid DESC LIMIT ?1 OFFSET ?2"
            );
            let mut stmt = conn.prepare(&sql).map_err(Error::sqlite("listing scans"))?;
            let mut rows = stmt
                .query([limit, offset])
                .map_err(Error::sqlite("listing scans"))?;
            let mut items = Vec::new();
            while let Some(row) = rows.next().map_err(Error::sqlite("listing scans"))? {
                items.push(scan_from_row(row)?);
            }
            Ok(Page {
                items,
                total: to_u64(Some(total)),
            })
        })
        .await
    }

    async fn list_issues(
        &self,
        filter: &IssueFilter,
        page: PageRequest,
    ) -> selfmon_core::Result<Page<FiledIssue>> {
        let filter = filter.clone();
        self.run_core(move |conn| {
            let mut clause = String::from("github_issue_number IS NOT NULL");
            let mut params: Vec<String> = Vec::new();
            if let Some(c) = filter.classification {
                params.push(c.as_str().to_string());
                clause.push_str(&format!(" AND classification = ?{}", params.len()));
            }
            if let Some(s) = filter.state {
                params.push(s.as_str().to_string());
                clause.push_str(&format!(" AND COALESCE(state, 'open') = ?{}", params.len()));
            }
            let total: i64 = conn
                .query_row(
                    &format!("SELECT count(*) FROM self_monitoring_issues WHERE {clause}"),
                    rusqlite::params_from_iter(params.iter()),
                    |r| r.get(0),
                )
                .map_err(Error::sqlite("counting issues"))?;
            let (limit, offset) = limits(page);
            let sql = format!(
                "SELECT {ISSUE_COLUMNS} FROM self_monitoring_issues WHERE {clause}
                 ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET {offset}"
            );
            let mut stmt = conn
                .prepare(&sql)
                .map_err(Error::sqlite("listing issues"))?;
            let mut rows = stmt
                .query(rusqlite::params_from_iter(params.iter()))
                .map_err(Error::sqlite("listing issues"))?;
            let mut items = Vec::new();
            while let Some(row) = rows.next().map_err(Error::sqlite("listing issues"))? {
                items.push(issue_from_row(row)?);
            }
            Ok(Page {
                items,
                total: to_u64(Some(total)),
            })
        })
        .await
    }

    async fn save_scan_report(&self, report: &ScanReport) -> selfmon_core::Result<()> {
        let mut report = report.clone();
        report.bound();
        self.run_core(move |conn| {
            let json = to_json("scan report", &report)?;
            let events = report.issue_events();
            let scan_id = report.record.scan_id.as_str();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::sqlite("saving a scan report"))?;
            tx.execute(
                "INSERT OR REPLACE INTO selfmon_scan_reports (scan_id, report, saved_at)
                 VALUES (?1, ?2, ?3)",
                rusqlite::params![scan_id, json, now_text()],
            )
            .map_err(Error::sqlite("saving a scan report"))?;
            tx.execute(
                "DELETE FROM selfmon_issue_events WHERE scan_id = ?1",
                [scan_id],
            )
            .map_err(Error::sqlite("saving a scan report"))?;
            for e in &events {
                tx.execute(
                    "INSERT INTO selfmon_issue_events (scan_id, issue_number, at, kind, records,
                     detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![
                        scan_id,
                        to_i64(e.issue_number),
                        time_text(e.at),
                        e.kind.as_str(),
                        to_i64(e.records),
                        e.detail
                    ],
                )
                .map_err(Error::sqlite("saving a scan report's issue events"))?;
            }
            tx.commit()
                .map_err(Error::sqlite("committing a scan report"))?;
            Ok(())
        })
        .await
    }

    async fn scan_report(&self, scan_id: &ScanId) -> selfmon_core::Result<Option<ScanReport>> {
        let scan_id = scan_id.clone();
        self.run_core(move |conn| {
            let record = conn
                .query_row(
                    &format!("SELECT {SCAN_COLUMNS} FROM self_monitoring_scans WHERE scan_id = ?1"),
                    [scan_id.as_str()],
                    |r| Ok(scan_from_row(r)),
                )
                .optional()
                .map_err(Error::sqlite("reading a scan"))?
                .transpose()?;
            let Some(record) = record else {
                return Ok(None);
            };
            let text: Option<String> = conn
                .query_row(
                    "SELECT report FROM selfmon_scan_reports WHERE scan_id = ?1",
                    [scan_id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(Error::sqlite("reading a scan report"))?;
            Ok(Some(match text {
                Some(t) => ScanReport {
                    record,
                    ..from_json::<ScanReport>("scan report", &t)?
                },
                None => ScanReport {
                    details_recorded: false,
                    ..ScanReport::new(record)
                },
            }))
        })
        .await
    }

    async fn issue_history(
        &self,
        issue_number: u64,
        page: PageRequest,
    ) -> selfmon_core::Result<Page<IssueEvent>> {
        self.run_core(move |conn| {
            let number = to_i64(issue_number);
            let total: i64 = conn
                .query_row(
                    "SELECT count(*) FROM selfmon_issue_events WHERE issue_number = ?1",
                    [number],
                    |r| r.get(0),
                )
                .map_err(Error::sqlite("counting issue events"))?;
            let (limit, offset) = limits(page);
            let mut stmt = conn
                .prepare(
                    "SELECT scan_id, at, kind, records, detail FROM selfmon_issue_events
                     WHERE issue_number = ?1 ORDER BY at DESC, id ASC LIMIT ?2 OFFSET ?3",
                )
                .map_err(Error::sqlite("listing issue events"))?;
            let items = stmt
                .query_map(rusqlite::params![number, limit, offset], |r| {
                    let kind: String = r.get(2)?;
                    Ok(IssueEvent {
                        issue_number,
                        scan_id: ScanId(r.get(0)?),
                        at: parse_time(&r.get::<_, String>(1)?),
                        kind: parse_event_kind(&kind),
                        records: to_u64(r.get::<_, Option<i64>>(3)?),
                        detail: r.get(4)?,
                    })
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(Error::sqlite("listing issue events"))?;
            Ok(Page {
                items,
                total: to_u64(Some(total)),
            })
        })
        .await
    }

    async fn load_template_state(&self) -> selfmon_core::Result<Option<String>> {
        self.run_core(|conn| {
            conn.query_row(
                "SELECT state FROM selfmon_template_state WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::sqlite("reading the template state"))
        })
        .await
    }

    async fn save_template_state(&self, state: &str) -> selfmon_core::Result<()> {
        let state = state.to_string();
        self.run_core(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO selfmon_template_state (id, state, updated_at)
                 VALUES (1, ?1, ?2)",
                rusqlite::params![state, now_text()],
            )
            .map_err(Error::sqlite("saving the template state"))?;
            Ok(())
        })
        .await
    }
}

/// Adds occurrences to a filed issue and its history; an issue this store never filed is ignored.
fn add_occurrences(
    tx: &Connection,
    issue_number: u64,
    count: u64,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(issue_id) = issue_row_id(tx, issue_number)? else {
        tracing::debug!(
            issue_number,
            "occurrences for an issue this store did not file"
        );
        return Ok(());
    };
    let now_text = time_text(now);
    tx.execute(
        "UPDATE self_monitoring_issues SET occurrences = COALESCE(occurrences, 0) + ?1,
                 last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < ?2 THEN ?2
                 ELSE last_seen_at END WHERE id = ?3",
        rusqlite::params![to_i64(count), now_text, issue_id],
    )
    .map_err(Error::sqlite("recording occurrences"))?;
    tx.execute(
        "INSERT INTO self_monitoring_occurrences (issue_id, issue_number, seen_at, count)
                 VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![issue_id, to_i64(issue_number), now_text, to_i64(count)],
    )
    .map_err(Error::sqlite("recording occurrences"))?;
    Ok(())
}

const BACKLOG_COLUMNS: &str = "entry_id, fingerprint, severity, finding, evidence, templates,
    occurrences, deferred_by, deferred_at";
const BACKLOG_COLUMN_COUNT: usize = 9;

/// Adds a deferred finding to the backlog; an open entry with the same fingerprint absorbs it.
fn defer_backlog_entry(tx: &Connection, e: &BacklogEntry) -> Result<()> {
    let merged = tx
        .execute(
            "UPDATE selfmon_backlog SET occurrences = occurrences + ?1
             WHERE fingerprint = ?2 AND closed_at IS NULL",
            rusqlite::params![to_i64(e.occurrences), e.fingerprint],
        )
        .map_err(Error::sqlite("deferring a finding"))?;
    if merged > 0 {
        return Ok(());
    }
    tx.execute(
        "INSERT OR IGNORE INTO selfmon_backlog (entry_id, fingerprint, severity, severity_rank,
         finding, evidence, templates, occurrences, deferred_by, deferred_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        rusqlite::params![
            e.entry_id,
            e.fingerprint,
            e.severity.as_str(),
            severity_rank(e.severity),
            to_json("finding", &e.finding)?,
            to_json("evidence", &e.evidence)?,
            to_json("templates", &e.templates)?,
            to_i64(e.occurrences),
            e.deferred_by.as_str(),
            time_text(e.deferred_at),
        ],
    )
    .map_err(Error::sqlite("deferring a finding"))?;
    Ok(())
}

/// Closes an open backlog entry, giving its occurrences to the covering issue when asked; an
/// entry that is not open is left alone.
fn close_backlog_entry(
    tx: &Connection,
    c: &BacklogClosure,
    give_occurrences: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    let occurrences: Option<i64> = tx
        .query_row(
            "SELECT occurrences FROM selfmon_backlog WHERE entry_id = ?1 AND closed_at IS NULL",
            [&c.entry_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(Error::sqlite("closing a backlog entry"))?;
    let Some(occurrences) = occurrences else {
        return Ok(());
    };
    tx.execute(
        "UPDATE selfmon_backlog SET closed_at = ?1, close_reason = ?2, closed_issue = ?3
         WHERE entry_id = ?4",
        rusqlite::params![time_text(now), c.reason, c.issue.map(to_i64), c.entry_id],
    )
    .map_err(Error::sqlite("closing a backlog entry"))?;
    if let Some(issue) = c.issue.filter(|_| give_occurrences) {
        add_occurrences(tx, issue, to_u64(Some(occurrences)), now)?;
    }
    Ok(())
}

fn severity_rank(l: Level) -> i64 {
    Level::ALL.iter().position(|x| *x == l).unwrap_or(0) as i64
}

fn backlog_from_row(r: &Row<'_>) -> Result<BacklogEntry> {
    let e = || Error::sqlite("reading the backlog");
    let s = |i: usize| r.get::<_, String>(i).map_err(e());
    let severity_text = s(2)?;
    let severity = Level::from_str(&severity_text).map_err(|err| Error::InvalidStoredValue {
        column: "selfmon_backlog.severity",
        value: severity_text.clone(),
        reason: err.to_string(),
    })?;
    Ok(BacklogEntry {
        entry_id: s(0)?,
        fingerprint: s(1)?,
        severity,
        finding: from_json("finding", &s(3)?)?,
        evidence: from_json("evidence", &s(4)?)?,
        templates: from_json("templates", &s(5)?)?,
        occurrences: to_u64(r.get::<_, Option<i64>>(6).map_err(e())?),
        deferred_by: ScanId(s(7)?),
        deferred_at: parse_time(&s(8)?),
    })
}

// ---- rows ----------------------------------------------------------------------------------

const SCAN_COLUMNS: &str = "scan_id, trigger, status, started_at, completed_at, log_id_start,
    log_id_end, records_read, signatures, novel_signatures, known_signatures, ignored_signatures,
    findings, rejected_findings, issues_created, duplicates_by_error_code,
    duplicates_by_fingerprint, duplicates_by_similarity, comments_added, regressions, deferred,
    analysis_ran, model, prompt_version, cost_usd, input_tokens, output_tokens, gap_records,
    cursor_reset, dry_run, error_message, backlog";

const ISSUE_COLUMNS: &str = "id, scan_id, github_issue_number, github_issue_url, classification,
    title, error_codes, fingerprint, source_log_ids, source_files, created_at, error_type,
    templates, signature_ids, state, occurrences, last_seen_at";

fn write_scan(conn: &mut Connection, r: &ScanRecord) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Error::sqlite("writing a scan"))?;
    write_scan_in(&tx, r)?;
    tx.commit().map_err(Error::sqlite("committing a scan"))?;
    Ok(())
}

/// Inserts or updates a scan row inside the caller's transaction.
fn write_scan_in(tx: &Connection, r: &ScanRecord) -> Result<()> {
    let params = named_params! {
        ":scan_id": r.scan_id.as_str(),
        ":trigger": r.trigger.as_str(),
        ":status": r.status.as_str(),
        ":started_at": time_text(r.started_at),
        ":completed_at": r.completed_at.map(time_text),
        ":log_id_start": r.log_id_start,
        ":log_id_end": r.log_id_end,
        ":records_read": to_i64(r.records_read),
        ":signatures": to_i64(r.signatures),
        ":novel_signatures": to_i64(r.novel_signatures),
        ":known_signatures": to_i64(r.known_signatures),
        ":ignored_signatures": to_i64(r.ignored_signatures),
        ":findings": to_i64(r.findings),
        ":rejected_findings": to_i64(r.rejected_findings),
        ":issues_created": to_i64(r.issues_created),
        ":dup_code": r.duplicates.by_error_code,
        ":dup_fp": r.duplicates.by_fingerprint,
        ":dup_sim": r.duplicates.by_similarity,
        ":comments_added": to_i64(r.comments_added),
        ":regressions": to_i64(r.regressions),
        ":deferred": to_i64(r.deferred),
        ":analysis_ran": r.analysis_ran,
        ":model": r.model,
        ":prompt_version": r.prompt_version,
        ":cost_usd": r.cost_usd,
        ":input_tokens": r.input_tokens.map(to_i64),
        ":output_tokens": r.output_tokens.map(to_i64),
        ":gap_records": to_i64(r.gap_records),
        ":cursor_reset": r.cursor_reset,
        ":dry_run": r.dry_run,
        ":error_message": r.error_message,
        ":backlog": to_i64(r.backlog),
    };
    let updated = tx
        .execute(
            "UPDATE self_monitoring_scans SET trigger = :trigger, status = :status,
             started_at = :started_at, completed_at = :completed_at, log_id_start = :log_id_start,
             log_id_end = :log_id_end, records_read = :records_read, signatures = :signatures,
             novel_signatures = :novel_signatures, known_signatures = :known_signatures,
             ignored_signatures = :ignored_signatures, findings = :findings,
             rejected_findings = :rejected_findings, issues_created = :issues_created,
             duplicates_by_error_code = :dup_code, duplicates_by_fingerprint = :dup_fp,
             duplicates_by_similarity = :dup_sim, comments_added = :comments_added,
             regressions = :regressions, deferred = :deferred, analysis_ran = :analysis_ran,
             model = :model, prompt_version = :prompt_version, cost_usd = :cost_usd,
             input_tokens = :input_tokens, output_tokens = :output_tokens,
             gap_records = :gap_records, cursor_reset = :cursor_reset, dry_run = :dry_run,
             error_message = :error_message, backlog = :backlog WHERE scan_id = :scan_id",
            params,
        )
        .map_err(Error::sqlite("writing a scan"))?;
    if updated == 0 {
        tx.execute(
            "INSERT INTO self_monitoring_scans (scan_id, trigger, status, started_at, completed_at,
             log_id_start, log_id_end, records_read, signatures, novel_signatures,
             known_signatures, ignored_signatures, findings, rejected_findings, issues_created,
             duplicates_by_error_code, duplicates_by_fingerprint, duplicates_by_similarity,
             comments_added, regressions, deferred, analysis_ran, model, prompt_version, cost_usd,
             input_tokens, output_tokens, gap_records, cursor_reset, dry_run, error_message,
             backlog)
             VALUES (:scan_id, :trigger, :status, :started_at, :completed_at, :log_id_start,
             :log_id_end, :records_read, :signatures, :novel_signatures, :known_signatures,
             :ignored_signatures, :findings, :rejected_findings, :issues_created, :dup_code,
             :dup_fp, :dup_sim, :comments_added, :regressions, :deferred, :analysis_ran, :model,
             :prompt_version, :cost_usd, :input_tokens, :output_tokens, :gap_records,
             :cursor_reset, :dry_run, :error_message, :backlog)",
            params,
        )
        .map_err(Error::sqlite("writing a scan"))?;
    }
    Ok(())
}

fn scan_from_row(r: &Row<'_>) -> Result<ScanRecord> {
    let e = Error::sqlite("reading a scan");
    let res: rusqlite::Result<ScanRecord> = (|| {
        let status_text: String = r.get(2)?;
        let trigger_text: Option<String> = r.get(1)?;
        let u = |i: usize| r.get::<_, Option<i64>>(i).map(to_u64);
        let b = |i: usize| r.get::<_, Option<i64>>(i).map(|v| v.unwrap_or(0) != 0);
        let status = parse_status(&status_text).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!(
                    "unknown scan status {status_text:?}; expected RUNNING, SUCCESS or FAILURE"
                )
                .into(),
            )
        })?;
        let log_id_start = r.get::<_, Option<i64>>(5)?.unwrap_or(0);
        Ok(ScanRecord {
            scan_id: ScanId(r.get(0)?),
            trigger: match trigger_text.as_deref() {
                Some("manual") => ScanTrigger::Manual,
                _ => ScanTrigger::Scheduled,
            },
            status,
            started_at: parse_time(&r.get::<_, Option<String>>(3)?.unwrap_or_default()),
            completed_at: r.get::<_, Option<String>>(4)?.map(|s| parse_time(&s)),
            log_id_start,
            log_id_end: r.get::<_, Option<i64>>(6)?.unwrap_or(log_id_start),
            records_read: u(7)?,
            signatures: u(8)?,
            novel_signatures: u(9)?,
            known_signatures: u(10)?,
            ignored_signatures: u(11)?,
            findings: u(12)?,
            rejected_findings: u(13)?,
            issues_created: u(14)?,
            duplicates: DuplicateCounts {
                by_error_code: to_u32(u(15)?),
                by_fingerprint: to_u32(u(16)?),
                by_similarity: to_u32(u(17)?),
            },
            comments_added: u(18)?,
            regressions: u(19)?,
            deferred: u(20)?,
            analysis_ran: b(21)?,
            model: r.get(22)?,
            prompt_version: r
                .get::<_, Option<i64>>(23)?
                .and_then(|v| u32::try_from(v).ok()),
            cost_usd: r.get(24)?,
            input_tokens: r.get::<_, Option<i64>>(25)?.map(|v| to_u64(Some(v))),
            output_tokens: r.get::<_, Option<i64>>(26)?.map(|v| to_u64(Some(v))),
            gap_records: u(27)?,
            cursor_reset: b(28)?,
            dry_run: b(29)?,
            error_message: r.get(30)?,
            backlog: u(31)?,
        })
    })();
    res.map_err(e)
}

fn parse_event_kind(s: &str) -> IssueEventKind {
    [
        IssueEventKind::Filed,
        IssueEventKind::KnownSignature,
        IssueEventKind::Duplicate,
        IssueEventKind::Commented,
        IssueEventKind::Regression,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
    .unwrap_or(IssueEventKind::Duplicate)
}

fn parse_status(s: &str) -> Option<ScanStatus> {
    match s.trim().to_ascii_uppercase().as_str() {
        "RUNNING" => Some(ScanStatus::Running),
        "SUCCESS" => Some(ScanStatus::Success),
        "FAILURE" | "FAILED" => Some(ScanStatus::Failure),
        _ => None,
    }
}

fn insert_issue(conn: &Connection, i: &FiledIssue) -> Result<()> {
    conn.execute(
        "INSERT INTO self_monitoring_issues (scan_id, github_issue_number, github_issue_url,
         classification, title, error_codes, fingerprint, source_log_ids, source_files, created_at,
         error_type, templates, signature_ids, state, occurrences, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        rusqlite::params![
            i.scan_id.as_str(),
            to_i64(i.issue.number),
            i.issue.url,
            i.classification.as_str(),
            i.title,
            to_json("error codes", &i.error_codes)?,
            i.fingerprint,
            to_json("source log ids", &i.source_log_ids)?,
            to_json("source files", &i.source_files)?,
            time_text(i.created_at),
            i.error_type,
            to_json("templates", &i.templates)?,
            to_json("signature ids", &i.signature_ids)?,
            i.issue.state.as_str(),
            to_i64(i.occurrences),
            time_text(i.last_seen_at),
        ],
    )
    .map_err(Error::sqlite("recording a filed issue"))?;
    Ok(())
}

fn update_issue(conn: &Connection, id: i64, i: &FiledIssue) -> Result<()> {
    conn.execute(
        "UPDATE self_monitoring_issues SET scan_id = ?1, github_issue_url = ?2,
         classification = ?3, title = ?4, error_codes = ?5, fingerprint = ?6,
         source_log_ids = ?7, source_files = ?8, error_type = ?9, templates = ?10,
         signature_ids = ?11, state = ?12 WHERE id = ?13",
        rusqlite::params![
            i.scan_id.as_str(),
            i.issue.url,
            i.classification.as_str(),
            i.title,
            to_json("error codes", &i.error_codes)?,
            i.fingerprint,
            to_json("source log ids", &i.source_log_ids)?,
            to_json("source files", &i.source_files)?,
            i.error_type,
            to_json("templates", &i.templates)?,
            to_json("signature ids", &i.signature_ids)?,
            i.issue.state.as_str(),
            id,
        ],
    )
    .map_err(Error::sqlite("updating a filed issue"))?;
    Ok(())
}

fn issue_from_row(r: &Row<'_>) -> Result<FiledIssue> {
    let e = || Error::sqlite("reading a filed issue");
    let s = |i: usize| r.get::<_, Option<String>>(i).map_err(e());
    let classification_text = s(4)?.unwrap_or_default();
    let classification = Classification::from_str(&classification_text).map_err(|err| {
        Error::InvalidStoredValue {
            column: "self_monitoring_issues.classification",
            value: classification_text.clone(),
            reason: err.to_string(),
        }
    })?;
    let number = r.get::<_, Option<i64>>(2).map_err(e())?;
    let created_at = parse_time(&s(10)?.unwrap_or_default());
    let state = match s(14)?.as_deref().map(str::trim) {
        Some(st) if st.eq_ignore_ascii_case("closed") => IssueState::Closed,
        _ => IssueState::Open,
    };
    Ok(FiledIssue {
        scan_id: ScanId(s(1)?.unwrap_or_default()),
        issue: IssueRef {
            number: to_u64(number),
            url: s(3)?.unwrap_or_default(),
            state,
        },
        title: s(5)?.unwrap_or_default(),
        classification,
        error_codes: decode_list(s(6)?)
            .into_iter()
            .filter_map(|c| ErrorCode::parse(c.trim()).ok())
            .collect(),
        fingerprint: s(7)?.unwrap_or_default(),
        source_log_ids: decode_list(s(8)?)
            .into_iter()
            .filter_map(|v| v.trim().parse().ok())
            .collect(),
        source_files: decode_list(s(9)?),
        created_at,
        error_type: s(11)?,
        templates: decode_list(s(12)?),
        signature_ids: decode_list(s(13)?),
        occurrences: to_u64(r.get::<_, Option<i64>>(15).map_err(e())?),
        last_seen_at: s(16)?.map_or(created_at, |t| parse_time(&t)),
    })
}

/// A list column: a JSON array (what selfmon writes) or comma-separated text (older CIDX rows).
fn decode_list(text: Option<String>) -> Vec<String> {
    let Some(text) = text else {
        return Vec::new();
    };
    let t = text.trim();
    if t.is_empty() {
        return Vec::new();
    }
    if let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(t) {
        return items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect();
    }
    t.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn issue_row_id(conn: &Connection, number: u64) -> Result<Option<i64>> {
    conn.query_row(
        "SELECT id FROM self_monitoring_issues WHERE github_issue_number = ?1 ORDER BY id DESC LIMIT 1",
        [to_i64(number)],
        |r| r.get(0),
    )
    .optional()
    .map_err(Error::sqlite("looking up a filed issue"))
}

fn read_lease(conn: &Connection) -> Result<Option<Lease>> {
    conn.query_row(
        "SELECT owner, expires_at FROM selfmon_lease WHERE name = ?1",
        [LEASE_NAME],
        |r| {
            Ok(Lease {
                owner: r.get(0)?,
                expires_at: parse_time(&r.get::<_, String>(1)?),
            })
        },
    )
    .optional()
    .map_err(Error::sqlite("reading the lease"))
}

/// The latest successful scan (by completion time, then insertion order) and its `log_id_end`.
fn latest_success(conn: &Connection) -> Result<Option<(String, i64)>> {
    conn.query_row(
        "SELECT scan_id, log_id_end FROM self_monitoring_scans
         WHERE status = 'SUCCESS' AND log_id_end IS NOT NULL AND COALESCE(dry_run, 0) = 0
         ORDER BY completed_at DESC, rowid DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(Error::sqlite("reading the cursor"))
}

// ---- values --------------------------------------------------------------------------------

/// The stored form of a time: RFC 3339 UTC with microseconds, which sorts in time order.
pub(crate) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Now, in the stored form.
pub(crate) fn now_text() -> String {
    time_text(Utc::now())
}

/// Reads a stored time leniently (RFC 3339, or ISO 8601 without offset taken as UTC). An
/// unreadable value reads as the Unix epoch (logged), so one bad row never hides the others.
fn parse_time(s: &str) -> DateTime<Utc> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return d.with_timezone(&Utc);
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return n.and_utc();
        }
    }
    tracing::warn!(
        value = t,
        "unreadable stored timestamp; using the Unix epoch"
    );
    DateTime::<Utc>::UNIX_EPOCH
}

fn to_json<T: Serialize>(what: &'static str, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|source| Error::Json {
        action: "encode",
        what,
        source,
    })
}

fn from_json<T: serde::de::DeserializeOwned>(what: &'static str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|source| Error::Json {
        action: "decode",
        what,
        source,
    })
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: Option<i64>) -> u64 {
    v.map_or(0, |v| u64::try_from(v).unwrap_or(0))
}

fn to_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn limits(page: PageRequest) -> (i64, i64) {
    (to_i64(page.limit.min(MAX_PAGE_SIZE)), to_i64(page.offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_read_from_json_or_comma_separated_text() {
        assert_eq!(decode_list(Some(r#"["a","b"]"#.into())), ["a", "b"]);
        assert_eq!(
            decode_list(Some("GIT-SYNC-001, DB-LOCK-002".into())),
            ["GIT-SYNC-001", "DB-LOCK-002"]
        );
        assert_eq!(decode_list(Some("[1,2]".into())), ["1", "2"]);
        assert!(decode_list(None).is_empty());
    }

    #[test]
    fn stored_times_sort_in_time_order_and_read_leniently() {
        let a = time_text(DateTime::from_timestamp(1_000, 5_000).unwrap());
        let b = time_text(DateTime::from_timestamp(1_000_000, 0).unwrap());
        assert!(a < b);
        assert_eq!(
            parse_time(&a),
            DateTime::from_timestamp(1_000, 5_000).unwrap()
        );
        assert_eq!(
            parse_time("2025-01-02 03:04:05.5"),
            DateTime::parse_from_rfc3339("2025-01-02T03:04:05.5Z").unwrap()
        );
        assert_eq!(parse_time("garbage"), DateTime::<Utc>::UNIX_EPOCH);
    }
}
