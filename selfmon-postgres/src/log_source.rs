//! [`PgLogSource`]: reads a CIDX cluster's shared `logs` table while every node keeps writing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use selfmon_core::{
    Component, Level, LogPage, LogRecord, LogSource, LogSourceDescription, NumericLevels,
};
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, IsolationLevel, Row};

use crate::connect::{check_ident, quote_ident, PgUrl};
use crate::error::{Error, Result, RowExt};
use crate::horizon::{held_back_warning, Horizon, HorizonQueries, Reading};

/// Key under which a record's unparseable level is kept in `extra_data` (the record itself is read
/// as [`Level::Error`] so that it is seen, never dropped).
pub const ORIGINAL_LEVEL_KEY: &str = "_original_level";

/// Key under which malformed `extra_data` text is kept verbatim: `{"_raw": "..."}`.
pub const RAW_EXTRA_KEY: &str = "_raw";

/// Key under which a well-formed but non-object `extra_data` is kept when another key has to be
/// added: `{"_extra": [1, 2], "_original_level": "LOUD"}`.
pub const NON_OBJECT_EXTRA_KEY: &str = "_extra";

/// Columns without which a log table is unusable.
pub const REQUIRED_COLUMNS: [&str; 3] = ["id", "level", "message"];

/// Columns read into a [`LogRecord`], in select order. Missing optional ones read as NULL.
const RECORD_COLUMNS: [&str; 10] = [
    "id",
    "timestamp",
    "level",
    "source",
    "message",
    "correlation_id",
    "user_id",
    "request_path",
    "extra_data",
    "node_id",
];

/// The cluster `logs` table as CIDX creates it in PostgreSQL (the logs.db columns plus `node_id`).
/// Tests and the benches create it with this; selfmon itself never creates or writes the table.
pub const LOGS_TABLE_DDL: &str = "CREATE TABLE IF NOT EXISTS logs (
    id SERIAL PRIMARY KEY,
    timestamp TEXT NOT NULL,
    level TEXT NOT NULL,
    source TEXT,
    message TEXT,
    correlation_id TEXT,
    user_id TEXT,
    request_path TEXT,
    extra_data TEXT,
    alias TEXT,
    node_id TEXT,
    created_at TIMESTAMPTZ DEFAULT now()
)";

/// How [`PgLogSource`] reads. Plain data with working defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PgLogSourceOptions {
    /// Schema of the log table (`public`).
    pub schema: String,
    /// The log table (`logs`).
    pub table: String,
    /// Most rows returned per page, whatever limit a caller asks for (1..=1,000,000). Bounds memory.
    pub page_size: usize,
    /// Records below this level are skipped (their ids still count as examined).
    pub min_level: Level,
    /// How long a read waits for transactions still writing the table before it settles for the
    /// last proven horizon (0..=60,000 ms). See [`crate::horizon`].
    pub horizon_wait_ms: u64,
    /// How long a transaction may hold the commit horizon back before each page says so (a
    /// [`SourceWarning`](selfmon_core::SourceWarning) of kind
    /// [`HORIZON_HELD_KIND`](crate::horizon::HORIZON_HELD_KIND) naming the session, which the scan
    /// report and `selfmon scan` show, and a `tracing` warning), in seconds (0..=86,400; 60).
    /// Log inserts take milliseconds: a writer open this long is a node's connection left
    /// `idle in transaction`, and nothing above its id is read until it ends. Measured from the
    /// transaction's start (`xact_start`), which PostgreSQL shows for sessions of selfmon's own
    /// role, or for every session to a role granted `pg_read_all_stats`; otherwise from when this
    /// source first saw it holding the horizon.
    pub horizon_stall_warn_secs: u64,
    /// Server-side `statement_timeout` for the source's queries (0 = none; at most 600,000 ms).
    pub statement_timeout_ms: u64,
    /// The scale a level written as a number (`30`) is read on: Python's `levelno` (the
    /// default) or pino's/bunyan's. The level filter in the query uses the same scale.
    pub numeric_levels: NumericLevels,
}

impl Default for PgLogSourceOptions {
    fn default() -> Self {
        PgLogSourceOptions {
            schema: "public".into(),
            table: "logs".into(),
            page_size: 10_000,
            min_level: Level::Warning,
            horizon_wait_ms: 2_000,
            horizon_stall_warn_secs: 60,
            statement_timeout_ms: 60_000,
            numeric_levels: NumericLevels::Python,
        }
    }
}

impl PgLogSourceOptions {
    /// Checks names and ranges; the error names the field.
    pub fn validate(&self) -> Result<()> {
        check_ident("schema", &self.schema)?;
        check_ident("table", &self.table)?;
        if !(1..=1_000_000).contains(&self.page_size) {
            return Err(Error::InvalidOption {
                field: "page_size",
                reason: format!("{} is out of range; use 1 to 1000000", self.page_size),
            });
        }
        if self.horizon_wait_ms > 60_000 {
            return Err(Error::InvalidOption {
                field: "horizon_wait_ms",
                reason: format!("{} is more than 60000 (one minute)", self.horizon_wait_ms),
            });
        }
        if self.horizon_stall_warn_secs > 86_400 {
            return Err(Error::InvalidOption {
                field: "horizon_stall_warn_secs",
                reason: format!(
                    "{} is more than 86400 (one day)",
                    self.horizon_stall_warn_secs
                ),
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

    fn qualified_table(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }
}

/// A [`LogSource`] over a PostgreSQL log table shared by every node of a cluster.
///
/// - Reads `id > cursor` up to the **commit horizon** (see [`crate::horizon`]): ids are handed out
///   at insert but become visible at commit, so a page never goes past an id some transaction may
///   still commit. A record committed late is read by the next page or scan, exactly once.
/// - A transaction that holds the horizon back longer than
///   [`PgLogSourceOptions::horizon_stall_warn_secs`] (a node's connection left `idle in
///   transaction`) is named in every page's [`LogPage::warnings`]: pid, application, client
///   address, state, how long it has been open and how to end it. The scan report and `selfmon
///   scan` show it; reading still stops below it.
/// - Keyset pagination (`WHERE id > $after AND id <= $horizon ORDER BY id LIMIT $n`) on the
///   primary key, pages of at most [`PgLogSourceOptions::page_size`] rows, each page in one
///   read-only `REPEATABLE READ` transaction.
/// - Keeps records at or above [`PgLogSourceOptions::min_level`] (filtered in SQL), numeric
///   levels read on [`PgLogSourceOptions::numeric_levels`]'s scale. A level that
///   does not parse is read as [`Level::Error`] with the original under [`ORIGINAL_LEVEL_KEY`];
///   malformed `extra_data` becomes `{"_raw": ...}`. Neither aborts a scan.
/// - Optional columns (`timestamp`, `source`, `correlation_id`, `user_id`, `request_path`,
///   `extra_data`, `node_id`) may be missing or NULL and may have any type (read as text); a
///   missing table or one without `id`, `level` or `message` is an error naming what is missing.
/// - `id` must not repeat: it comes from a sequence (`SERIAL`, identity) or a unique index on
///   `id` alone covers it (a primary key included), in the table or in every table a view reads;
///   otherwise [`connect`](Self::connect) refuses it with [`Error::NonUniqueLogId`] (rows sharing an
///   id across a page boundary would be skipped).
/// - The log may be a table, a partitioned table (partitions by date, say; nodes may insert into
///   a partition directly) or a view. A view is read as it is, with the horizon taken on the
///   tables under it, whose `id` must come from one sequence and be the view's `id`; a view over
///   tables with different id sequences (a `UNION` of two logs) is refused at
///   [`connect`](Self::connect) with [`Error::UnsupportedLogView`], since its ids do not rise in
///   commit order.
/// - Fetches at most the first [`MAX_MESSAGE_CHARS_READ`](selfmon_core::digest::MAX_MESSAGE_CHARS_READ)
///   characters of a message (64 KiB + 1, cut by the server): the digest reads no more, and digests
///   the prefix exactly as the whole message (cut at 64 KiB and marked). A page's memory is bounded
///   by `page_size` × that prefix however large a stored message is. [`LogRecord::message`] holds
///   the prefix, in pages and in [`LogSource::record_at`] alike.
/// - `node_id` becomes [`LogRecord::node_id`], so the digest and the issue evidence say which nodes
///   wrote a problem's records.
/// - `missing_before_first` counts ids deleted from the *bottom* of the table (retention) before
///   the scan reached them; the gaps rolled-back inserts leave in a sequence are not counted.
/// - One connection, opened at [`connect`](Self::connect) and reopened when it drops.
#[derive(Debug, Clone)]
pub struct PgLogSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: PgUrl,
    options: PgLogSourceOptions,
    conn: tokio::sync::Mutex<Option<Reader>>,
    horizon: Mutex<Horizon>,
    description: Mutex<LogSourceDescription>,
}

/// A connection with the statements built for the table's actual columns.
struct Reader {
    client: Client,
    select_sql: String,
    /// The row with one id, any level (`$1`).
    row_at_sql: String,
    /// The scale numeric levels are read on (the filter in `select_sql` uses it too).
    numeric_levels: NumericLevels,
    queries: HorizonQueries,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("table", &self.queries.table)
            .finish_non_exhaustive()
    }
}

impl PgLogSource {
    /// Connects and checks the table now, so a wrong URL or table fails at start-up.
    ///
    /// Errors: [`Error::Connect`], [`Error::MissingTable`], [`Error::MissingColumns`],
    /// [`Error::UnsupportedLogView`], [`Error::NonUniqueLogId`], [`Error::InvalidOption`],
    /// [`Error::Query`].
    pub async fn connect(url: PgUrl, options: PgLogSourceOptions) -> Result<Self> {
        options.validate()?;
        let reader = Reader::open(&url, &options).await?;
        let description = LogSourceDescription {
            location: format!("{} table {}", url.target(), options.qualified_table()),
            schema: reader_schema(&reader, &options).await?,
        };
        let source = PgLogSource {
            inner: Arc::new(Inner {
                url,
                options,
                conn: tokio::sync::Mutex::new(Some(reader)),
                horizon: Mutex::new(Horizon::default()),
                description: Mutex::new(description),
            }),
        };
        // A first observation now: a transaction opened later and held across a scan then cannot
        // hold back what was already final.
        source.commit_horizon().await?;
        Ok(source)
    }

    /// The options in force.
    pub fn options(&self) -> &PgLogSourceOptions {
        &self.inner.options
    }

    /// The highest id proven final now (see [`crate::horizon`]); `None` while nothing is.
    pub async fn commit_horizon(&self) -> Result<Option<i64>> {
        let mut guard = self.reader().await?;
        let reader = guard.as_mut().ok_or_else(|| self.closed())?;
        let res = self.horizon_with(reader).await.map(|r| r.safe);
        drop_if_broken(&mut guard, &res);
        res
    }

    async fn horizon_with(&self, reader: &Reader) -> Result<Reading> {
        let wait = Duration::from_millis(self.inner.options.horizon_wait_ms);
        reader
            .queries
            .advance(&reader.client, &self.inner.horizon, wait)
            .await
    }

    /// [`LogSource::read_after`] with this crate's error.
    pub async fn read_page(&self, after: i64, limit: usize) -> Result<LogPage> {
        let limit = limit.min(self.inner.options.page_size);
        let mut guard = self.reader().await?;
        let reader = guard.as_mut().ok_or_else(|| self.closed())?;
        let res = async {
            let horizon = self.horizon_with(reader).await?;
            let mut page = reader
                .read(after, limit, horizon.safe, self.inner.options.min_level)
                .await?;
            page.warnings
                .extend(self.held_back(reader, &horizon).await?);
            Ok(page)
        }
        .await;
        drop_if_broken(&mut guard, &res);
        res
    }

    /// The warning for a horizon held back longer than
    /// [`PgLogSourceOptions::horizon_stall_warn_secs`] (see [`crate::horizon`]), also logged.
    async fn held_back(
        &self,
        reader: &Reader,
        horizon: &Reading,
    ) -> Result<Option<selfmon_core::SourceWarning>> {
        let Some((obs, seen_since)) = &horizon.held_by else {
            return Ok(None);
        };
        let holders = reader.queries.holders(&reader.client, &obs.writers).await?;
        let bound = Duration::from_secs(self.inner.options.horizon_stall_warn_secs);
        let warning = held_back_warning(horizon.safe, &holders, seen_since.elapsed(), bound);
        if warning.is_some() {
            for h in &holders {
                tracing::warn!(
                    held_at = ?horizon.safe,
                    pid = ?h.pid,
                    application = ?h.application_name,
                    client_addr = ?h.client_addr,
                    state = ?h.state,
                    open_secs = ?h.open_secs,
                    "an open transaction holds the log's commit horizon back: records above it are not read until it ends (commit it, or SELECT pg_terminate_backend(pid))"
                );
            }
        }
        Ok(warning)
    }

    /// [`LogSource::record_at`] with this crate's error: the committed row with this id, whatever
    /// its level. It does not wait for the commit horizon: the row asked for (the previous scan's
    /// anchor) is at or below the cursor, so it was committed before; an empty page while writers
    /// hold the horizon back must not read as "the anchor is gone".
    pub async fn row_at(&self, id: i64) -> Result<Option<LogRecord>> {
        let mut guard = self.reader().await?;
        let reader = guard.as_mut().ok_or_else(|| self.closed())?;
        let res = async {
            let row = reader
                .client
                .query_opt(&reader.row_at_sql, &[&id])
                .await
                .map_err(Error::query("reading the record at the cursor"))?;
            let scale = reader.numeric_levels;
            row.as_ref().map(|r| convert_row(r, scale)).transpose()
        }
        .await;
        drop_if_broken(&mut guard, &res);
        res
    }

    /// [`LogSource::max_id`] with this crate's error: the highest id visible now.
    pub async fn highest_id(&self) -> Result<Option<i64>> {
        let mut guard = self.reader().await?;
        let reader = guard.as_mut().ok_or_else(|| self.closed())?;
        let sql = format!("SELECT max(id)::bigint FROM {}", reader.queries.table);
        let res = reader
            .client
            .query_one(&sql, &[])
            .await
            .map(|r| r.get::<_, Option<i64>>(0))
            .map_err(Error::query("reading the highest log id"));
        drop_if_broken(&mut guard, &res);
        res
    }

    /// The connection, reopened when the previous one dropped.
    async fn reader(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Reader>>> {
        let mut guard = self.inner.conn.lock().await;
        if guard.as_ref().is_none_or(|r| r.client.is_closed()) {
            *guard = None;
            *guard = Some(Reader::open(&self.inner.url, &self.inner.options).await?);
        }
        Ok(guard)
    }
}

impl PgLogSource {
    fn closed(&self) -> Error {
        Error::ConnectionLost {
            target: self.inner.url.target().to_string(),
        }
    }
}

/// A failed connection is dropped so the next call reconnects.
fn drop_if_broken<T>(guard: &mut Option<Reader>, res: &Result<T>) {
    if let Err(Error::Query { source, .. }) = res {
        if crate::error::is_connection_failure(source) {
            *guard = None;
        }
    }
}

#[async_trait]
impl LogSource for PgLogSource {
    async fn read_after(&self, after: i64, limit: usize) -> selfmon_core::Result<LogPage> {
        self.read_page(after, limit)
            .await
            .map_err(|e| e.into_core(Component::LogSource))
    }

    async fn max_id(&self) -> selfmon_core::Result<Option<i64>> {
        self.highest_id()
            .await
            .map_err(|e| e.into_core(Component::LogSource))
    }

    async fn record_at(&self, id: i64) -> selfmon_core::Result<Option<LogRecord>> {
        self.row_at(id)
            .await
            .map_err(|e| e.into_core(Component::LogSource))
    }

    fn describe(&self) -> LogSourceDescription {
        match self.inner.description.lock() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

async fn reader_schema(reader: &Reader, options: &PgLogSourceOptions) -> Result<String> {
    let rows = reader
        .client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            &[&options.schema, &options.table],
        )
        .await
        .map_err(Error::query("describing the log table"))?;
    let cols: Vec<String> = rows
        .iter()
        .map(|r| Ok(format!("{} {}", r.col::<String>(0)?, r.col::<String>(1)?)))
        .collect::<Result<_>>()?;
    let kind: Option<String> = reader
        .client
        .query_one(
            "SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)",
            &[&reader.queries.table],
        )
        .await
        .map_err(Error::query("describing the log table"))?
        .col(0)?;
    let what = match kind.as_deref() {
        Some("v") => format!("VIEW (over {})", reader.queries.written.join(", ")),
        Some("p") => "PARTITIONED TABLE".to_string(),
        _ => "TABLE".to_string(),
    };
    Ok(format!(
        "{what} {} ({}) -- PostgreSQL, shared by every node; node_id names the writer",
        options.qualified_table(),
        cols.join(", ")
    ))
}

impl Reader {
    async fn open(url: &PgUrl, options: &PgLogSourceOptions) -> Result<Reader> {
        let client = url.connect("selfmon-log-source").await?;
        if options.statement_timeout_ms > 0 {
            client
                .batch_execute(&format!(
                    "SET statement_timeout = {}",
                    options.statement_timeout_ms
                ))
                .await
                .map_err(Error::query("setting the statement timeout"))?;
        }
        let table = options.qualified_table();
        let rows = client
            .query(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name = $2",
                &[&options.schema, &options.table],
            )
            .await
            .map_err(Error::query("reading the log table's columns"))?;
        let columns: Vec<String> = rows.iter().map(|r| r.col(0)).collect::<Result<_>>()?;
        if columns.is_empty() {
            return Err(Error::MissingTable { table });
        }
        let has = |c: &str| columns.iter().any(|x| x == c);
        let missing: Vec<String> = REQUIRED_COLUMNS
            .iter()
            .filter(|c| !has(c))
            .map(|c| c.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingColumns { table, missing });
        }
        let select_list: Vec<String> = RECORD_COLUMNS
            .iter()
            .map(|c| match (*c, has(c)) {
                ("id", _) => "id::bigint".to_string(),
                // Only what the digest reads (see `MAX_MESSAGE_CHARS_READ`): a row of tens of MB
                // costs this much, not its size (several times over in buffers and conversion).
                // `substr` lets the server detoast only the slice. The same list serves
                // `record_at`, so an anchor taken from a page matches the record looked up again.
                ("message", true) => format!(
                    "substr(message::text, 1, {})",
                    selfmon_core::digest::MAX_MESSAGE_CHARS_READ
                ),
                (c, true) => format!("{}::text", quote_ident(c)),
                (_, false) => "NULL::text".to_string(),
            })
            .collect();
        let mut select_sql = format!(
            "SELECT {} FROM {table} AS t WHERE t.id > $1::bigint AND t.id <= $2::bigint",
            select_list.join(", ")
        );
        let row_at_sql = format!(
            "SELECT {} FROM {table} AS t WHERE t.id = $1::bigint LIMIT 1",
            select_list.join(", ")
        );
        let below = level_names_below(options.min_level, options.numeric_levels);
        if !below.is_empty() {
            let quoted: Vec<String> = below.iter().map(|n| format!("'{n}'")).collect();
            select_sql.push_str(&format!(
                " AND (level IS NULL OR upper(trim(level::text)) NOT IN ({}))",
                quoted.join(", ")
            ));
        }
        // `t.id`, not `id`: an unqualified name would sort by the output column `id::bigint`,
        // which no index provides, so every page would sort the whole rest of the table.
        select_sql.push_str(" ORDER BY t.id LIMIT $3::bigint");
        let (written, sequence) = written_relations(&client, &table).await?;
        if sequence.is_none() {
            tracing::warn!(
                table = %table,
                "the log table's id has no sequence; the commit horizon falls back to the highest visible id"
            );
        }
        Ok(Reader {
            client,
            select_sql,
            row_at_sql,
            numeric_levels: options.numeric_levels,
            queries: HorizonQueries {
                table,
                written,
                sequence,
            },
        })
    }

    async fn read(
        &mut self,
        after: i64,
        limit: usize,
        horizon: Option<i64>,
        min_level: Level,
    ) -> Result<LogPage> {
        let empty = LogPage {
            records: Vec::new(),
            scanned_through: after,
            missing_before_first: 0,
            warnings: Vec::new(),
        };
        let Some(horizon) = horizon else {
            return Ok(empty);
        };
        if limit == 0 || horizon <= after {
            return Ok(empty);
        }
        let table = self.queries.table.clone();
        let tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(Error::query("starting a read transaction"))?;
        let lowest: Option<i64> = tx
            .query_one(&format!("SELECT min(id)::bigint FROM {table}"), &[])
            .await
            .map_err(Error::query("reading the lowest log id"))?
            .col(0)?;
        let missing_before_first = match lowest {
            Some(low) if low > after.saturating_add(1) => {
                u64::try_from(low.min(horizon.saturating_add(1)) - after.max(0) - 1).unwrap_or(0)
            }
            _ => 0,
        };
        let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = tx
            .query(&self.select_sql, &[&after, &horizon, &sql_limit])
            .await
            .map_err(Error::query("reading logs"))?;
        let mut records = Vec::with_capacity(rows.len());
        let mut last_seen = after;
        for row in &rows {
            let record = convert_row(row, self.numeric_levels)?;
            last_seen = record.id;
            if record.level >= min_level {
                records.push(record);
            }
        }
        let scanned_through = if rows.len() < limit {
            // Everything up to the horizon was examined; stop at the highest id present so the
            // cursor never passes `max_id` (trailing ids may have been rolled back).
            tx.query_one(
                &format!("SELECT max(id)::bigint FROM {table} WHERE id <= $1::bigint"),
                &[&horizon],
            )
            .await
            .map_err(Error::query("reading the highest log id"))?
            .get::<_, Option<i64>>(0)
            .unwrap_or(after)
            .max(last_seen)
            .max(after)
        } else {
            last_seen
        };
        tx.commit()
            .await
            .map_err(Error::query("ending a read transaction"))?;
        Ok(LogPage {
            records,
            scanned_through,
            missing_before_first,
            warnings: Vec::new(),
        })
    }
}

/// Where the rows of `table` are written, and the sequence their ids come from: the table itself
/// (plain or partitioned), or, for a view, the tables it reads (through nested views). A view
/// whose tables draw `id` from more than one sequence is refused: its ids do not rise in one
/// order, so no horizon can say which may still commit.
async fn written_relations(client: &Client, table: &str) -> Result<(Vec<String>, Option<String>)> {
    let kind: Option<String> = client
        .query_one(
            "SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)",
            &[&table],
        )
        .await
        .map_err(Error::query(
            "finding what kind of relation the log table is",
        ))?
        .col(0)?;
    let written: Vec<String> = if kind.as_deref() == Some("v") {
        client
            .query(
                "WITH RECURSIVE used(oid, kind, depth) AS (
                     SELECT c.oid, c.relkind, 0 FROM pg_class AS c WHERE c.oid = $1::text::regclass
                     UNION
                     SELECT c.oid, c.relkind, used.depth + 1
                     FROM used
                     JOIN pg_rewrite AS r ON r.ev_class = used.oid
                     JOIN pg_depend AS d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                          AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> used.oid
                     JOIN pg_class AS c ON c.oid = d.refobjid
                     WHERE used.kind = 'v' AND used.depth < 32
                 )
                 SELECT DISTINCT oid::regclass::text FROM used WHERE kind IN ('r', 'p', 'f')
                 ORDER BY 1",
                &[&table],
            )
            .await
            .map_err(Error::query("finding the tables under the log view"))?
            .iter()
            .map(|r| r.col(0))
            .collect::<Result<_>>()?
    } else {
        vec![table.to_string()]
    };
    if written.is_empty() {
        return Err(Error::UnsupportedLogView {
            table: table.to_string(),
            reason: "it reads no table".into(),
        });
    }
    let sequences: Vec<String> = client
        .query(
            "SELECT DISTINCT pg_get_serial_sequence(w, 'id') FROM unnest($1::text[]) AS w
             WHERE EXISTS (SELECT 1 FROM pg_attribute
                           WHERE attrelid = w::regclass AND attname = 'id' AND NOT attisdropped)
               AND pg_get_serial_sequence(w, 'id') IS NOT NULL",
            &[&written],
        )
        .await
        .map_err(Error::query("finding the log id sequence"))?
        .iter()
        .map(|r| r.col(0))
        .collect::<Result<_>>()?;
    // Ids are read in pages after a cursor: one that may repeat loses rows at a page boundary.
    // An id drawn from a sequence, or under a unique index on `id` alone, does not repeat.
    let repeating: Vec<String> = client
        .query(
            "SELECT w FROM unnest($1::text[]) AS w
             WHERE pg_get_serial_sequence(w, 'id') IS NULL
               AND NOT EXISTS (
                   SELECT 1 FROM pg_index AS i
                   JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = w::regclass AND i.indisunique AND i.indpred IS NULL
                     AND i.indnkeyatts = 1 AND a.attname = 'id')",
            &[&written],
        )
        .await
        .map_err(Error::query("checking that the log ids are unique"))?
        .iter()
        .map(|r| r.col(0))
        .collect::<Result<_>>()?;
    if let Some(relation) = repeating.into_iter().next() {
        let bare = relation
            .rsplit('.')
            .next()
            .unwrap_or(&relation)
            .trim_matches('"');
        return Err(Error::NonUniqueLogId {
            unique_name: quote_ident(&format!("{bare}_id_unique")),
            relation,
        });
    }
    if sequences.len() > 1 {
        return Err(Error::UnsupportedLogView {
            table: table.to_string(),
            reason: format!(
                "its tables ({}) take ids from {} different sequences ({})",
                written.join(", "),
                sequences.len(),
                sequences.join(", ")
            ),
        });
    }
    Ok((written, sequences.into_iter().next()))
}

/// Every level spelling of `scale` whose level is below `min`.
fn level_names_below(min: Level, scale: NumericLevels) -> Vec<&'static str> {
    scale
        .spellings()
        .into_iter()
        .filter(|(_, l)| *l < min)
        .map(|(n, _)| n)
        .collect()
}

fn parse_level(raw: Option<&str>, scale: NumericLevels) -> Option<Level> {
    match raw? {
        "ERROR" => Some(Level::Error),
        "WARNING" => Some(Level::Warning),
        "INFO" => Some(Level::Info),
        "CRITICAL" => Some(Level::Critical),
        "DEBUG" => Some(Level::Debug),
        other => scale.parse(other).ok(),
    }
}

fn parse_extra(raw: Option<&str>) -> serde_json::Value {
    match raw {
        None => serde_json::Value::Null,
        Some(s) if s.trim().is_empty() => serde_json::Value::Null,
        Some(s) => match serde_json::from_str(s) {
            Ok(v) => v,
            Err(_) => serde_json::json!({ RAW_EXTRA_KEY: s }),
        },
    }
}

fn convert_row(row: &Row, scale: NumericLevels) -> Result<LogRecord> {
    let text = |i: usize| -> Result<Option<&str>> {
        row.try_get::<_, Option<&str>>(i)
            .map_err(Error::query("converting a log row"))
    };
    let id: i64 = row
        .try_get(0)
        .map_err(Error::query("converting a log row"))?;
    let level_text = text(2)?;
    let mut extra_data = parse_extra(text(8)?);
    let level = match parse_level(level_text, scale) {
        Some(l) => l,
        None => {
            let original = level_text.map_or(serde_json::Value::Null, Into::into);
            keep_original_level(&mut extra_data, original);
            Level::Error
        }
    };
    Ok(LogRecord {
        id,
        timestamp: text(1)?.unwrap_or_default().to_string(),
        level,
        source: text(3)?.map(str::to_string),
        message: text(4)?.unwrap_or_default().to_string(),
        correlation_id: text(5)?.map(str::to_string),
        user_id: text(6)?.map(str::to_string),
        request_path: text(7)?.map(str::to_string),
        extra_data,
        node_id: text(9)?.map(str::to_string),
    })
}

fn keep_original_level(extra: &mut serde_json::Value, original: serde_json::Value) {
    match extra {
        serde_json::Value::Object(map) => {
            map.insert(ORIGINAL_LEVEL_KEY.into(), original);
        }
        serde_json::Value::Null => {
            *extra = serde_json::json!({ ORIGINAL_LEVEL_KEY: original });
        }
        other => {
            let inner = other.take();
            *other =
                serde_json::json!({ NON_OBJECT_EXTRA_KEY: inner, ORIGINAL_LEVEL_KEY: original });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_spellings_below_the_minimum_are_filtered_in_sql() {
        assert_eq!(
            level_names_below(Level::Warning, NumericLevels::Python),
            Level::SPELLINGS
                .iter()
                .filter(|(_, l)| *l < Level::Warning)
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
        );
        let below = level_names_below(Level::Warning, NumericLevels::Python);
        for name in ["TRACE", "DEBUG", "INFO", "NOTICE", "20", "I", "VERBOSE"] {
            assert!(below.contains(&name), "{name}");
        }
        for name in ["WARN", "30", "W", "E", "SEVERE", "50"] {
            assert!(!below.contains(&name), "{name}");
        }
        // Review4 F14: on pino's scale 30 is info, below WARNING; 40 (warn) is not.
        let below = level_names_below(Level::Warning, NumericLevels::Pino);
        for name in ["10", "20", "30", "INFO", "DEBUG"] {
            assert!(below.contains(&name), "{name}");
        }
        for name in ["40", "50", "60", "WARN", "W"] {
            assert!(!below.contains(&name), "{name}");
        }
        for scale in NumericLevels::ALL {
            assert!(level_names_below(Level::Debug, scale).is_empty());
        }
    }

    #[test]
    fn malformed_extra_data_is_kept_raw_and_odd_levels_are_kept() {
        assert_eq!(
            parse_extra(Some("{oops")),
            serde_json::json!({"_raw": "{oops"})
        );
        let mut v = serde_json::json!([1]);
        keep_original_level(&mut v, "LOUD".into());
        assert_eq!(
            v,
            serde_json::json!({"_extra": [1], "_original_level": "LOUD"})
        );
        assert_eq!(
            parse_level(Some("warn"), NumericLevels::Python),
            Some(Level::Warning)
        );
        assert_eq!(parse_level(None, NumericLevels::Python), None);
        assert_eq!(
            parse_level(Some("30"), NumericLevels::Python),
            Some(Level::Warning)
        );
        assert_eq!(
            parse_level(Some("30"), NumericLevels::Pino),
            Some(Level::Info)
        );
    }

    #[test]
    fn options_are_checked() {
        assert!(PgLogSourceOptions::default().validate().is_ok());
        let bad = PgLogSourceOptions {
            table: String::new(),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = PgLogSourceOptions {
            page_size: 0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
