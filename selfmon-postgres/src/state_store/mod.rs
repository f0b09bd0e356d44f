//! [`PgStateStore`]: scan history, filed issues, the outbox and the fenced single-flight lease,
//! shared by every node of a cluster.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use selfmon_core::{
    BacklogClosure, BacklogEntry, ClosedBacklogEntry, Component, FiledIssue, FilingIntent,
    IssueFilter, IssueState, Lease, LeaseHolder, LeaseOutcome, LeaseRenewal, Page, PageRequest,
    ScanEffects, ScanRecord, ScanStatus,
};
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, Transaction};

use crate::connect::{check_ident, quote_ident, PgUrl};
use crate::error::{Error, Result, RowExt};
use crate::schema;

/// Runs `$body` (a block returning `Result`) with the connection as `$c`; a connection that failed
/// is dropped so the next call reconnects.
macro_rules! with_conn {
    ($self:ident, |$c:ident| $body:block) => {{
        let mut guard = $self.conn().await?;
        let res: Result<_> = async {
            let $c = guard.as_mut().ok_or_else(|| $self.lost())?;
            $body
        }
        .await;
        settle(&mut guard, res)
    }};
}

/// Like `with_conn!`, inside a fenced transaction `$tx` that commits when `$body` succeeds.
macro_rules! fenced {
    ($self:ident, $action:expr, |$tx:ident| $body:block) => {{
        let mut guard = $self.conn().await?;
        let res: Result<_> = async {
            let c = guard.as_mut().ok_or_else(|| $self.lost())?;
            let transaction = $self.fenced(c, $action).await?;
            let $tx = &transaction;
            let out = async { $body }.await?;
            transaction.commit().await.map_err(Error::query($action))?;
            Ok(out)
        }
        .await;
        settle(&mut guard, res)
    }};
}

/// Largest page the history queries return, whatever the request asks for.
pub const MAX_PAGE_SIZE: u64 = 500;

const LEASE_NAME: &str = "scan";

/// How [`PgStateStore`] keeps its tables. Plain data with working defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PgStateStoreOptions {
    /// Schema holding selfmon's tables (`public`); created when missing.
    pub schema: String,
    /// Scans and occurrence history older than this many days are removed by
    /// [`PgStateStore::prune`]. Issue rows are never removed.
    pub retention_days: u32,
    /// Server-side `statement_timeout` (0 = none; at most 600,000 ms).
    pub statement_timeout_ms: u64,
}

impl Default for PgStateStoreOptions {
    fn default() -> Self {
        PgStateStoreOptions {
            schema: "public".into(),
            retention_days: 90,
            statement_timeout_ms: 30_000,
        }
    }
}

impl PgStateStoreOptions {
    /// Checks names and ranges; the error names the field.
    pub fn validate(&self) -> Result<()> {
        check_ident("schema", &self.schema)?;
        if self.retention_days == 0 {
            return Err(Error::InvalidOption {
                field: "retention_days",
                reason: "must be at least 1 day".into(),
            });
        }
        if self.statement_timeout_ms > 600_000 {
            return Err(Error::InvalidOption {
                field: "statement_timeout_ms",
                reason: format!(
                    "{} is more than 600000 (ten minutes)",
                    self.statement_timeout_ms
                ),
            });
        }
        Ok(())
    }
}

/// What [`PgStateStore::prune`] removed.
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

/// The lease as this store took it: the fencing token its writes carry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HeldLease {
    owner: String,
    epoch: i64,
}

/// A [`StateStore`](selfmon_core::StateStore) in PostgreSQL, shared by every node of a cluster.
///
/// - Tables `selfmon_scans`, `selfmon_issues`, `selfmon_intents` (the outbox), `selfmon_lease`,
///   `selfmon_occurrences`, `selfmon_template_state` and `selfmon_schema_version` in the configured
///   schema, created and migrated by [`connect`](Self::connect) (see [`crate::schema`]). Records are
///   kept whole as JSONB beside the columns the queries filter and sort on.
/// - **The lease** is one row taken with `SELECT … FOR UPDATE`: exclusive across every node; an
///   expired lease (its holder died or stalled past its TTL) is taken over, so a dead node's lease
///   frees within one TTL. Every takeover increments the row's **epoch**.
/// - **Fencing**: once this store holds the lease, every write (scans, outbox, issues,
///   occurrences, templates) runs in a transaction that first locks the lease row `FOR SHARE` and
///   checks that owner and epoch are still this store's. A node that lost the lease (it stalled,
///   or was partitioned and another node took over) gets [`Error::LeaseLost`] and lands nothing;
///   the new holder reconciles the outbox. A store whose renewal found the lease gone stays
///   fenced until its scan releases the lease, so the scan's closing writes do not land either.
///   A store that never took the lease (a dashboard) writes unfenced.
/// - Lease expiry compares the callers' clocks (the `now` passed in): keep the nodes' clocks in
///   sync (NTP) and the TTL well above the skew.
/// - Durability: every method commits before it returns. Transient failures (lost connection,
///   serialization failure) are retryable; the next call reconnects.
/// - `record_occurrences` and `set_issue_state` for an issue this store never recorded do
///   nothing.
#[derive(Debug, Clone)]
pub struct PgStateStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: PgUrl,
    options: PgStateStoreOptions,
    /// Quoted schema name, for building statements.
    s: String,
    conn: tokio::sync::Mutex<Option<Client>>,
    held: Mutex<Option<HeldLease>>,
}

impl PgStateStore {
    /// Connects, creates and migrates the tables.
    ///
    /// Errors: [`Error::Connect`], [`Error::SchemaTooNew`], [`Error::InvalidOption`],
    /// [`Error::Query`].
    pub async fn connect(url: PgUrl, options: PgStateStoreOptions) -> Result<Self> {
        options.validate()?;
        let mut client = open(&url, &options).await?;
        schema::migrate_to(&mut client, &options.schema, schema::SCHEMA_VERSION).await?;
        Ok(PgStateStore {
            inner: Arc::new(Inner {
                s: quote_ident(&options.schema),
                url,
                options,
                conn: tokio::sync::Mutex::new(Some(client)),
                held: Mutex::new(None),
            }),
        })
    }

    /// The options in force.
    pub fn options(&self) -> &PgStateStoreOptions {
        &self.inner.options
    }

    /// The schema version in the database (always [`crate::SCHEMA_VERSION`] after `connect`).
    pub async fn schema_version(&self) -> Result<i64> {
        let s = self.inner.options.schema.clone();
        with_conn!(self, |c| { schema::current_version(c, &s).await })
    }

    /// The lease row, if any (expired or not), with its fencing epoch, for diagnostics.
    pub async fn current_lease(&self) -> Result<Option<(Lease, i64)>> {
        let sql = format!(
            "SELECT {LEASE_COLUMNS}, epoch FROM {}.selfmon_lease WHERE name = $1 AND owner <> ''",
            self.inner.s
        );
        with_conn!(self, |c| {
            let row = c
                .query_opt(&sql, &[&LEASE_NAME])
                .await
                .map_err(Error::query("reading the lease"))?;
            row.map(|r| -> Result<_> { Ok((lease_of_row(&r)?, r.col(6)?)) })
                .transpose()
        })
    }

    /// Removes scans (with their reports) and occurrence history older than [`PgStateStoreOptions::retention_days`]
    /// before `now`; never issue rows, never a RUNNING scan, never the latest successful scan.
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<PruneReport> {
        let cutoff = now - chrono::Duration::days(i64::from(self.inner.options.retention_days));
        let s = self.inner.s.clone();
        fenced!(self, "pruning history", |tx| {
            let keep = latest_success(tx, &s).await?.map(|(id, _)| id);
            let scans_deleted = tx
                .execute(
                    &format!(
                        "DELETE FROM {s}.selfmon_scans WHERE status <> 'RUNNING'
                             AND started_at < $1 AND scan_id IS DISTINCT FROM $2"
                    ),
                    &[&cutoff, &keep],
                )
                .await
                .map_err(Error::query("pruning scans"))?;
            let occurrences_deleted = tx
                .execute(
                    &format!("DELETE FROM {s}.selfmon_occurrences WHERE seen_at < $1"),
                    &[&cutoff],
                )
                .await
                .map_err(Error::query("pruning occurrences"))?;
            let reports_deleted = tx
                .execute(
                    &format!(
                        "DELETE FROM {s}.selfmon_scan_reports r WHERE NOT EXISTS
                             (SELECT 1 FROM {s}.selfmon_scans c WHERE c.scan_id = r.scan_id)"
                    ),
                    &[],
                )
                .await
                .map_err(Error::query("pruning scan reports"))?;
            tx.execute(
                &format!(
                    "DELETE FROM {s}.selfmon_issue_events e WHERE NOT EXISTS
                         (SELECT 1 FROM {s}.selfmon_scans c WHERE c.scan_id = e.scan_id)"
                ),
                &[],
            )
            .await
            .map_err(Error::query("pruning issue events"))?;
            Ok(PruneReport {
                scans_deleted,
                occurrences_deleted,
                reports_deleted,
            })
        })
    }

    /// The connection, reopened first when it dropped.
    async fn conn(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>> {
        let mut guard = self.inner.conn.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = None;
            *guard = Some(open(&self.inner.url, &self.inner.options).await?);
        }
        Ok(guard)
    }

    fn lost(&self) -> Error {
        Error::ConnectionLost {
            target: self.inner.url.target().to_string(),
        }
    }

    /// Starts a transaction that first checks, under a share lock on the lease row, that this
    /// store still holds the lease it took (when it took one). The share lock keeps a takeover
    /// waiting until this transaction ends, so a write either lands before the takeover or not
    /// at all.
    async fn fenced<'c>(&self, c: &'c mut Client, action: &'static str) -> Result<Transaction<'c>> {
        let tx = c.transaction().await.map_err(Error::query(action))?;
        if let Some(held) = self.held() {
            let still = tx
                .query_opt(
                    &format!(
                        "SELECT 1 FROM {}.selfmon_lease
                         WHERE name = $1 AND owner = $2 AND epoch = $3 FOR SHARE",
                        self.inner.s
                    ),
                    &[&LEASE_NAME, &held.owner, &held.epoch],
                )
                .await
                .map_err(Error::query("checking the lease before a write"))?;
            if still.is_none() {
                tracing::warn!(
                    owner = %held.owner,
                    epoch = held.epoch,
                    action,
                    "write refused: the lease was taken over"
                );
                return Err(Error::LeaseLost {
                    owner: held.owner,
                    epoch: held.epoch,
                });
            }
        }
        Ok(tx)
    }

    fn held(&self) -> Option<HeldLease> {
        self.inner
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_held(&self, held: Option<HeldLease>) {
        *self.inner.held.lock().unwrap_or_else(|p| p.into_inner()) = held;
    }

    /// Takes the lease (see [`ScanLedger::try_acquire_lease`](selfmon_core::ScanLedger)) for a
    /// holder known only by name, and returns it with its epoch.
    pub async fn acquire_lease(
        &self,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<(LeaseOutcome, i64)> {
        self.change_lease(LeaseChange::Acquire, &LeaseHolder::named(owner), ttl, now)
            .await
    }

    /// Acquires, takes over or renews the lease row under `FOR UPDATE`, and returns the outcome
    /// with the epoch in force after it. Any change of hands bumps the epoch (fencing every write
    /// of the previous holder); a renewal by the holder keeps it.
    async fn change_lease(
        &self,
        change: LeaseChange<'_>,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<(LeaseOutcome, i64)> {
        let expires_at = chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|t| now.checked_add_signed(t))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let s = self.inner.s.clone();
        let (outcome, epoch) = with_conn!(self, |c| {
            let tx = c
                .transaction()
                .await
                .map_err(Error::query("taking the lease"))?;
            // The row exists from the first acquisition on; create it without a race.
            tx.execute(
                &format!(
                    "INSERT INTO {s}.selfmon_lease (name, owner, expires_at, acquired_at, epoch)
                             VALUES ($1, '', '1970-01-01T00:00:00Z', $2, 0) ON CONFLICT (name) DO NOTHING"
                ),
                &[&LEASE_NAME, &now],
            )
            .await
            .map_err(Error::query("taking the lease"))?;
            let row = tx
                .query_one(
                    &format!(
                        "SELECT {LEASE_COLUMNS}, epoch FROM {s}.selfmon_lease
                                 WHERE name = $1 FOR UPDATE"
                    ),
                    &[&LEASE_NAME],
                )
                .await
                .map_err(Error::query("taking the lease"))?;
            let current = lease_of_row(&row)?;
            let epoch: i64 = row.col(6)?;
            let live = !current.owner.is_empty() && current.expires_at > now;
            let ours = current.owner == holder.owner;
            let grant = match change {
                LeaseChange::Acquire => ours || !live,
                LeaseChange::TakeOver(stale) => ours || !live || current.owner == stale.owner,
                LeaseChange::Renew => ours,
            };
            if !grant {
                let shown = (!current.owner.is_empty()).then_some(current);
                return Ok((
                    LeaseOutcome::Held(shown.unwrap_or_else(|| unheld(now))),
                    epoch,
                ));
            }
            let epoch = if ours { epoch } else { epoch + 1 };
            let lease = if ours && matches!(change, LeaseChange::Renew) {
                Lease {
                    expires_at,
                    ..current
                }
            } else {
                Lease {
                    owner: holder.owner.clone(),
                    host: holder.host.clone(),
                    pid: holder.pid,
                    process_start: holder.process_start.clone(),
                    acquired_at: if ours { current.acquired_at } else { now },
                    expires_at,
                }
            };
            tx.execute(
                &format!(
                    "UPDATE {s}.selfmon_lease SET owner = $2, expires_at = $3, acquired_at = $4,
                             epoch = $5, host = $6, pid = $7, process_start = $8 WHERE name = $1"
                ),
                &[
                    &LEASE_NAME,
                    &lease.owner,
                    &lease.expires_at,
                    &lease.acquired_at,
                    &epoch,
                    &lease.host,
                    &lease.pid.map(i64::from),
                    &lease.process_start,
                ],
            )
            .await
            .map_err(Error::query("taking the lease"))?;
            tx.commit()
                .await
                .map_err(Error::query("committing the lease"))?;
            Ok((LeaseOutcome::Acquired(lease), epoch))
        })?;
        match &outcome {
            LeaseOutcome::Acquired(lease) => self.set_held(Some(HeldLease {
                owner: lease.owner.clone(),
                epoch,
            })),
            // A lease this store held and has now lost (a renewal found another holder, or
            // nobody) keeps fencing: every write fails with `LeaseLost` until the scan releases
            // it. Forgetting it here would let the scan's last writes land unfenced after the
            // takeover (the cluster test `a_stalled_scanner_...` caught exactly that).
            LeaseOutcome::Held(_) => {}
        }
        Ok((outcome, epoch))
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let owner = lease.owner.clone();
        let s = self.inner.s.clone();
        // Released by emptying it: the row (and its epoch) stays, so epochs only ever grow, and
        // the released owner can no longer renew it.
        with_conn!(self, |c| {
            c.execute(
                &format!(
                    "UPDATE {s}.selfmon_lease SET owner = '', expires_at = '1970-01-01T00:00:00Z'
                         WHERE name = $1 AND owner = $2"
                ),
                &[&LEASE_NAME, &owner],
            )
            .await
            .map_err(Error::query("releasing the lease"))?;
            Ok(())
        })?;
        if self.held().is_some_and(|h| h.owner == lease.owner) {
            self.set_held(None);
        }
        Ok(())
    }

    async fn write_scan(&self, record: &ScanRecord) -> Result<()> {
        let r = record.clone();
        let s = self.inner.s.clone();
        let doc = to_json("scan record", &r)?;
        fenced!(self, "writing a scan", |tx| {
            write_scan_in(tx, &s, &r, doc).await
        })
    }
}

async fn write_scan_in(
    tx: &Transaction<'_>,
    s: &str,
    r: &ScanRecord,
    doc: serde_json::Value,
) -> Result<()> {
    tx.execute(
        &format!(
            "INSERT INTO {s}.selfmon_scans
             (scan_id, status, started_at, completed_at, log_id_end, record)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (scan_id) DO UPDATE SET status = EXCLUDED.status,
             started_at = EXCLUDED.started_at, completed_at = EXCLUDED.completed_at,
             log_id_end = EXCLUDED.log_id_end, record = EXCLUDED.record"
        ),
        &[
            &r.scan_id.as_str(),
            &r.status.as_str(),
            &r.started_at,
            &r.completed_at,
            &r.log_id_end,
            &doc,
        ],
    )
    .await
    .map_err(Error::query("writing a scan"))?;
    Ok(())
}

/// Adds occurrences to a filed issue and its history; an issue this store never recorded is
/// ignored.
/// Adds a signature id to a filed issue's (once); an issue this store never filed is ignored.
async fn add_issue_signature(
    tx: &Transaction<'_>,
    s: &str,
    added: &selfmon_core::IssueSignature,
) -> Result<()> {
    let number = to_i64(added.issue);
    let Some(row) = tx
        .query_opt(
            &format!("SELECT issue FROM {s}.selfmon_issues WHERE number = $1 FOR UPDATE"),
            &[&number],
        )
        .await
        .map_err(Error::query("reading an issue's signatures"))?
    else {
        return Ok(());
    };
    let mut issue: FiledIssue = from_json("filed issue", row.col(0)?)?;
    if issue.signature_ids.contains(&added.signature_id) {
        return Ok(());
    }
    issue.signature_ids.push(added.signature_id.clone());
    let doc = to_json("filed issue", &issue)?;
    tx.execute(
        &format!("UPDATE {s}.selfmon_issues SET issue = $2 WHERE number = $1"),
        &[&number, &doc],
    )
    .await
    .map_err(Error::query("recording an issue's signatures"))?;
    Ok(())
}

async fn add_occurrences(
    tx: &Transaction<'_>,
    s: &str,
    issue_number: u64,
    count: u64,
    now: DateTime<Utc>,
) -> Result<()> {
    let number = to_i64(issue_number);
    let Some(row) = tx
        .query_opt(
            &format!("SELECT issue FROM {s}.selfmon_issues WHERE number = $1 FOR UPDATE"),
            &[&number],
        )
        .await
        .map_err(Error::query("recording occurrences"))?
    else {
        tracing::debug!(
            issue_number,
            "occurrences for an issue this store did not file"
        );
        return Ok(());
    };
    let mut issue: FiledIssue = from_json("filed issue", row.col(0)?)?;
    issue.occurrences = issue.occurrences.saturating_add(count);
    if now > issue.last_seen_at {
        issue.last_seen_at = now;
    }
    let doc = to_json("filed issue", &issue)?;
    tx.execute(
        &format!("UPDATE {s}.selfmon_issues SET issue = $2 WHERE number = $1"),
        &[&number, &doc],
    )
    .await
    .map_err(Error::query("recording occurrences"))?;
    tx.execute(
        &format!(
            "INSERT INTO {s}.selfmon_occurrences (issue_number, seen_at, count) VALUES ($1, $2, $3)"
        ),
        &[&number, &now, &to_i64(count)],
    )
    .await
    .map_err(Error::query("recording occurrences"))?;
    Ok(())
}

fn severity_rank(level: selfmon_core::Level) -> i32 {
    selfmon_core::Level::ALL
        .iter()
        .position(|l| *l == level)
        .map_or(0, |p| p as i32)
}

/// Adds a deferred finding to the backlog; an open entry with the same fingerprint absorbs its
/// occurrences instead.
async fn defer_backlog_entry(tx: &Transaction<'_>, s: &str, entry: &BacklogEntry) -> Result<()> {
    let open = tx
        .query_opt(
            &format!(
                "SELECT entry FROM {s}.selfmon_backlog
                 WHERE fingerprint = $1 AND closed_at IS NULL ORDER BY seq LIMIT 1 FOR UPDATE"
            ),
            &[&entry.fingerprint],
        )
        .await
        .map_err(Error::query("deferring a finding"))?;
    match open {
        Some(row) => {
            let mut old: BacklogEntry = from_json("backlog entry", row.col(0)?)?;
            old.occurrences = old.occurrences.saturating_add(entry.occurrences);
            let doc = to_json("backlog entry", &old)?;
            tx.execute(
                &format!(
                    "UPDATE {s}.selfmon_backlog SET occurrences = $2, entry = $3 WHERE entry_id = $1"
                ),
                &[&old.entry_id, &to_i64(old.occurrences), &doc],
            )
            .await
            .map_err(Error::query("deferring a finding"))?;
        }
        None => {
            let doc = to_json("backlog entry", entry)?;
            tx.execute(
                &format!(
                    "INSERT INTO {s}.selfmon_backlog
                     (entry_id, fingerprint, severity_rank, occurrences, deferred_at, entry)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (entry_id) DO NOTHING"
                ),
                &[
                    &entry.entry_id,
                    &entry.fingerprint,
                    &severity_rank(entry.severity),
                    &to_i64(entry.occurrences),
                    &entry.deferred_at,
                    &doc,
                ],
            )
            .await
            .map_err(Error::query("deferring a finding"))?;
        }
    }
    Ok(())
}

/// Closes an open backlog entry (giving its occurrences to the covering issue when
/// `give_occurrences`); nothing when it is not open.
async fn close_backlog_entry(
    tx: &Transaction<'_>,
    s: &str,
    closure: &BacklogClosure,
    give_occurrences: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(row) = tx
        .query_opt(
            &format!(
                "SELECT entry FROM {s}.selfmon_backlog
                 WHERE entry_id = $1 AND closed_at IS NULL FOR UPDATE"
            ),
            &[&closure.entry_id],
        )
        .await
        .map_err(Error::query("closing a backlog entry"))?
    else {
        return Ok(());
    };
    let entry: BacklogEntry = from_json("backlog entry", row.col(0)?)?;
    if let Some(issue) = closure.issue.filter(|_| give_occurrences) {
        add_occurrences(tx, s, issue, entry.occurrences, now).await?;
    }
    let doc = to_json("backlog closure", closure)?;
    tx.execute(
        &format!("UPDATE {s}.selfmon_backlog SET closed_at = $2, closure = $3 WHERE entry_id = $1"),
        &[&closure.entry_id, &now, &doc],
    )
    .await
    .map_err(Error::query("closing a backlog entry"))?;
    Ok(())
}

/// Drops a connection that failed on the connection itself, so the next call reconnects.
fn settle<T>(guard: &mut Option<Client>, res: Result<T>) -> Result<T> {
    if let Err(Error::Query { source, .. }) = &res {
        if crate::error::is_connection_failure(source) {
            *guard = None;
        }
    }
    res
}

fn core<T>(res: Result<T>) -> selfmon_core::Result<T> {
    res.map_err(|e| e.into_core(Component::StateStore))
}

async fn open(url: &PgUrl, options: &PgStateStoreOptions) -> Result<Client> {
    let client = url.connect("selfmon-state").await?;
    if options.statement_timeout_ms > 0 {
        client
            .batch_execute(&format!(
                "SET statement_timeout = {}",
                options.statement_timeout_ms
            ))
            .await
            .map_err(Error::query("setting the statement timeout"))?;
    }
    Ok(client)
}

async fn latest_success(
    c: &impl tokio_postgres::GenericClient,
    s: &str,
) -> Result<Option<(String, i64)>> {
    let row = c
        .query_opt(
            &format!(
                "SELECT scan_id, log_id_end FROM {s}.selfmon_scans WHERE status = 'SUCCESS'
                 AND NOT coalesce((record->>'dry_run')::boolean, false)
                 ORDER BY completed_at DESC NULLS LAST, seq DESC LIMIT 1"
            ),
            &[],
        )
        .await
        .map_err(Error::query("reading the cursor"))?;
    row.map(|r| Ok((r.col(0)?, r.col(1)?))).transpose()
}

/// The log anchor of the scan [`latest_success`] picks (kept in its JSON record).
async fn latest_success_anchor(
    c: &impl tokio_postgres::GenericClient,
    s: &str,
) -> Result<Option<selfmon_core::LogAnchor>> {
    let row = c
        .query_opt(
            &format!(
                "SELECT record->'log_anchor' FROM {s}.selfmon_scans WHERE status = 'SUCCESS'
                 AND NOT coalesce((record->>'dry_run')::boolean, false)
                 ORDER BY completed_at DESC NULLS LAST, seq DESC LIMIT 1"
            ),
            &[],
        )
        .await
        .map_err(Error::query("reading the log anchor"))?;
    match row {
        None => Ok(None),
        Some(r) => match r.col::<Option<serde_json::Value>>(0)? {
            None => Ok(None),
            Some(v) => from_json("log anchor", v),
        },
    }
}

/// The lease columns [`lease_of_row`] reads, in order.
const LEASE_COLUMNS: &str = "owner, expires_at, acquired_at, host, pid, process_start";

/// What [`PgStateStore::change_lease`] is asked to do.
#[derive(Clone, Copy)]
enum LeaseChange<'a> {
    /// Take it if free or expired (or renew it if ours).
    Acquire,
    /// Take it if free, expired, ours, or still held by this proven-dead acquisition.
    TakeOver(&'a Lease),
    /// Extend it only if still ours.
    Renew,
}

/// A lease read with [`LEASE_COLUMNS`] first.
fn lease_of_row(r: &tokio_postgres::Row) -> Result<Lease> {
    let pid: Option<i64> = r.col(4)?;
    Ok(Lease {
        owner: r.col(0)?,
        expires_at: r.col(1)?,
        acquired_at: r.col(2)?,
        host: r.col(3)?,
        pid: pid.and_then(|p| u32::try_from(p).ok()),
        process_start: r.col(5)?,
    })
}

/// The stand-in "holder" reported when a renewal finds nobody holding the lease.
fn unheld(now: DateTime<Utc>) -> Lease {
    Lease {
        owner: String::new(),
        host: String::new(),
        pid: None,
        process_start: None,
        acquired_at: now,
        expires_at: now,
    }
}

fn to_json<T: Serialize + ?Sized>(what: &'static str, v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|source| Error::Json {
        action: "encode",
        what,
        source,
    })
}

fn from_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    v: serde_json::Value,
) -> Result<T> {
    serde_json::from_value(v).map_err(|source| Error::Json {
        action: "decode",
        what,
        source,
    })
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn limits(page: PageRequest) -> (i64, i64) {
    (to_i64(page.limit.min(MAX_PAGE_SIZE)), to_i64(page.offset))
}

mod history;
mod issue_ledger;
mod scan_ledger;
mod template_memory;
