//! [`SqliteLogSource`]: reads the CIDX server's `logs.db` while the server keeps writing to it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use selfmon_core::{
    Component, Level, LogPage, LogRecord, LogSource, LogSourceDescription, NumericLevels,
};
use serde::{Deserialize, Serialize};

use crate::error::{blocking, Error, Result};
use crate::logs_schema::{
    id_is_unique, table_columns, table_sql, RECORD_COLUMNS, REQUIRED_COLUMNS,
};

/// Key under which a record's unparseable level is kept in `extra_data` (the record itself is read
/// as [`Level::Error`] so that it is seen, never dropped).
pub const ORIGINAL_LEVEL_KEY: &str = "_original_level";

/// Key under which malformed `extra_data` text is kept verbatim: `{"_raw": "..."}`.
pub const RAW_EXTRA_KEY: &str = "_raw";

/// Key under which a well-formed but non-object `extra_data` is kept when another key (such as
/// [`ORIGINAL_LEVEL_KEY`]) has to be added: `{"_extra": [1, 2], "_original_level": "LOUD"}`.
pub const NON_OBJECT_EXTRA_KEY: &str = "_extra";

/// How [`SqliteLogSource`] reads. Plain data with working defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSourceOptions {
    /// Most rows returned per page, whatever limit a caller asks for (1..=1,000,000). Bounds memory.
    pub page_size: usize,
    /// Records below this level are skipped (their ids still count as examined).
    pub min_level: Level,
    /// How long a read waits for a lock held by the writer before failing as retryable.
    pub busy_timeout_ms: u64,
    /// The scale a level written as a number (`30`, as text or as an integer) is read on:
    /// Python's `levelno` (the default) or pino's/bunyan's. The level filter in the query uses
    /// the same scale.
    pub numeric_levels: NumericLevels,
}

impl Default for LogSourceOptions {
    fn default() -> Self {
        LogSourceOptions {
            page_size: 10_000,
            min_level: Level::Warning,
            busy_timeout_ms: 5_000,
            numeric_levels: NumericLevels::Python,
        }
    }
}

impl LogSourceOptions {
    /// Checks ranges; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if !(1..=1_000_000).contains(&self.page_size) {
            return Err(Error::InvalidOption {
                field: "page_size",
                reason: format!("{} is out of range; use 1 to 1000000", self.page_size),
            });
        }
        if self.busy_timeout_ms > 600_000 {
            return Err(Error::InvalidOption {
                field: "busy_timeout_ms",
                reason: format!("{} is more than 600000 (ten minutes)", self.busy_timeout_ms),
            });
        }
        Ok(())
    }
}

/// A [`LogSource`] over a CIDX `logs.db` file.
///
/// - Opens the file read-only (`SQLITE_OPEN_READONLY`, `query_only`, no checkpoint on close) for
///   each call and closes it afterwards, so it never writes to the host's file, never holds a lock
///   between calls, and picks up a file that was replaced (rotation, recreation).
/// - Reads `id > cursor` in id order, in pages of at most [`LogSourceOptions::page_size`] rows, each
///   page in one read transaction (a consistent snapshot while the server writes in WAL mode).
/// - Keeps records at or above [`LogSourceOptions::min_level`], numeric levels read on
///   [`LogSourceOptions::numeric_levels`]'s scale. A level that does not parse
///   (`"LOUD"`, NULL) is read as [`Level::Error`] so the record is seen, and the original text is kept
///   in `extra_data` under [`ORIGINAL_LEVEL_KEY`]. Malformed `extra_data` JSON becomes
///   `{"_raw": "<text>"}` ([`RAW_EXTRA_KEY`]). Neither aborts a scan.
/// - Optional columns (`source`, `correlation_id`, `user_id`, `request_path`, `extra_data`,
///   `timestamp`, and the ignored `alias`, `node_id`, `created_at`) may be missing or NULL; extra
///   columns are ignored. A missing `logs` table, or one without `id`, `level` or `message`, is an
///   error naming what is missing. So is an `id` that may repeat (neither `INTEGER PRIMARY KEY`
///   nor covered by a UNIQUE index: [`Error::NonUniqueLogId`]): rows sharing an id across a page
///   boundary would be skipped.
///
/// `read_after` on a cursor beyond the file's highest id returns an empty page (the engine detects
/// that case through [`LogSource::max_id`]); callers using the source directly can ask for the
/// typed condition with [`SqliteLogSource::check_cursor`] / [`SqliteLogSource::read_after_checked`].
#[derive(Debug, Clone)]
pub struct SqliteLogSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    options: LogSourceOptions,
    description: Mutex<LogSourceDescription>,
}

impl SqliteLogSource {
    /// Opens `path` and checks its schema now, so a wrong path fails at start-up rather than at the
    /// first scan.
    ///
    /// Errors: [`Error::Open`] (no such file, not a database), [`Error::MissingTable`],
    /// [`Error::MissingColumns`], [`Error::NonUniqueLogId`], [`Error::InvalidOption`].
    pub fn open(path: impl AsRef<Path>, options: LogSourceOptions) -> Result<Self> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        let reader = Reader::connect(&path, &options)?;
        let description = reader.describe();
        Ok(SqliteLogSource {
            inner: Arc::new(Inner {
                path,
                options,
                description: Mutex::new(description),
            }),
        })
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The options in force.
    pub fn options(&self) -> &LogSourceOptions {
        &self.inner.options
    }

    /// [`LogSource::read_after`], blocking the calling thread.
    pub fn read_after_blocking(&self, after: i64, limit: usize) -> Result<LogPage> {
        let reader = self.connect()?;
        reader.read_page(after, self.effective_limit(limit))
    }

    /// [`LogSource::max_id`], blocking the calling thread.
    pub fn max_id_blocking(&self) -> Result<Option<i64>> {
        self.connect()?.max_id()
    }

    /// [`LogSource::record_at`], blocking the calling thread: the record stored under `id`
    /// whatever its level (the level filter applies to pages, not to this lookup).
    pub fn record_at_blocking(&self, id: i64) -> Result<Option<LogRecord>> {
        self.connect()?.record_at(id)
    }

    /// [`Error::CursorAhead`] when `cursor` is beyond the highest id in the file (an empty file
    /// counts as highest id 0), `Ok` otherwise. Blocks the calling thread.
    pub fn check_cursor_blocking(&self, cursor: i64) -> Result<()> {
        self.connect()?.check_cursor(cursor)
    }

    /// Async form of [`check_cursor_blocking`](Self::check_cursor_blocking).
    pub async fn check_cursor(&self, cursor: i64) -> Result<()> {
        let this = self.clone();
        blocking(move || this.check_cursor_blocking(cursor)).await
    }

    /// Like [`LogSource::read_after`], but reports a cursor beyond the file as
    /// [`Error::CursorAhead`] instead of an empty page.
    pub async fn read_after_checked(&self, after: i64, limit: usize) -> Result<LogPage> {
        let this = self.clone();
        blocking(move || {
            let reader = this.connect()?;
            reader.check_cursor(after)?;
            reader.read_page(after, this.effective_limit(limit))
        })
        .await
    }

    /// Calls `visit` for every record after `after` (in id order, page by page, memory bounded by
    /// the page size) and returns the highest id examined. Blocks the calling thread; used by
    /// [`crate::inventory()`].
    pub fn for_each_blocking(&self, after: i64, mut visit: impl FnMut(&LogRecord)) -> Result<i64> {
        let reader = self.connect()?;
        let mut cursor = after;
        loop {
            let page = reader.read_page(cursor, self.inner.options.page_size)?;
            page.records.iter().for_each(&mut visit);
            if page.scanned_through <= cursor {
                return Ok(cursor);
            }
            cursor = page.scanned_through;
        }
    }

    fn effective_limit(&self, limit: usize) -> usize {
        limit.min(self.inner.options.page_size)
    }

    fn connect(&self) -> Result<Reader<'_>> {
        let reader = Reader::connect(&self.inner.path, &self.inner.options)?;
        if let Ok(mut d) = self.inner.description.lock() {
            *d = reader.describe();
        }
        Ok(reader)
    }
}

#[async_trait]
impl LogSource for SqliteLogSource {
    async fn read_after(&self, after: i64, limit: usize) -> selfmon_core::Result<LogPage> {
        let this = self.clone();
        blocking(move || this.read_after_blocking(after, limit))
            .await
            .map_err(|e| e.into_core(Component::LogSource))
    }

    async fn max_id(&self) -> selfmon_core::Result<Option<i64>> {
        let this = self.clone();
        blocking(move || this.max_id_blocking())
            .await
            .map_err(|e| e.into_core(Component::LogSource))
    }

    async fn record_at(&self, id: i64) -> selfmon_core::Result<Option<LogRecord>> {
        let this = self.clone();
        blocking(move || this.record_at_blocking(id))
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

/// One read-only connection with the schema it found.
struct Reader<'a> {
    conn: Connection,
    path: &'a Path,
    min_level: Level,
    numeric_levels: NumericLevels,
    select_sql: String,
    /// The same columns as `select_sql` for one id, whatever its level.
    record_sql: String,
    table_sql: String,
}

impl<'a> Reader<'a> {
    fn connect(path: &'a Path, options: &LogSourceOptions) -> Result<Self> {
        let open_err = |source| Error::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(Duration::from_millis(options.busy_timeout_ms))
            .map_err(open_err)?;
        // Never checkpoint (write) the host's WAL when this connection closes.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(open_err)?;
        conn.pragma_update(None, "query_only", true)
            .map_err(open_err)?;
        let columns = table_columns(&conn, "logs").map_err(open_err)?;
        if columns.is_empty() {
            return Err(Error::MissingTable {
                path: path.to_path_buf(),
                table: "logs".into(),
            });
        }
        let has = |c: &str| columns.iter().any(|x| x.eq_ignore_ascii_case(c));
        let missing: Vec<String> = REQUIRED_COLUMNS
            .iter()
            .filter(|c| !has(c))
            .map(|c| c.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingColumns {
                path: path.to_path_buf(),
                table: "logs".into(),
                missing,
            });
        }
        if !id_is_unique(&conn, "logs").map_err(open_err)? {
            return Err(Error::NonUniqueLogId {
                path: path.to_path_buf(),
                table: "logs".into(),
            });
        }
        let select_list: Vec<String> = RECORD_COLUMNS
            .iter()
            .map(|c| {
                if has(c) {
                    format!("\"{c}\"")
                } else {
                    format!("NULL AS \"{c}\"")
                }
            })
            .collect();
        let mut select_sql = format!("SELECT {} FROM logs WHERE id > ?1", select_list.join(", "));
        let record_sql = format!("SELECT {} FROM logs WHERE id = ?1", select_list.join(", "));
        let (below, at_or_above) = level_names_split(options.min_level, options.numeric_levels);
        if !below.is_empty() {
            let list = |names: &[&str]| {
                names
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            // A level written exactly as one of the names (nearly every row) is decided by a
            // plain comparison, without calling `upper` and `trim` (a `CASE` of equalities: an
            // `IN` list is looked up in a temporary index, which costs more per row); only other
            // spellings are normalised. The same rows pass as with the normalised test alone: a
            // name is its own normal form. The names are tried most common first: each miss is a
            // string comparison for every row of the table.
            let whens: String = by_frequency(&below, &at_or_above)
                .into_iter()
                .map(|(n, kept)| format!(" WHEN '{n}' THEN {}", u8::from(kept)))
                .collect();
            select_sql.push_str(&format!(
                " AND (level IS NULL OR CASE level{whens} \
                 ELSE upper(trim(level)) NOT IN ({below}) END)",
                below = list(&below),
            ));
        }
        select_sql.push_str(" ORDER BY id LIMIT ?2");
        let table_sql = table_sql(&conn, "logs")
            .map_err(open_err)?
            .unwrap_or_default();
        Ok(Reader {
            conn,
            path,
            min_level: options.min_level,
            numeric_levels: options.numeric_levels,
            select_sql,
            record_sql,
            table_sql,
        })
    }

    fn describe(&self) -> LogSourceDescription {
        LogSourceDescription {
            location: self.path.display().to_string(),
            schema: self.table_sql.clone(),
        }
    }

    fn max_id(&self) -> Result<Option<i64>> {
        self.conn
            .query_row("SELECT max(id) FROM logs", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map_err(Error::log_id("reading the highest log id"))
    }

    fn record_at(&self, id: i64) -> Result<Option<LogRecord>> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row(&self.record_sql, [id], |row| {
                convert_row(row, self.numeric_levels)
            })
            .optional()
            .map_err(Error::log_id("reading the record at the cursor"))
    }

    fn check_cursor(&self, cursor: i64) -> Result<()> {
        let max_id = self.max_id()?.unwrap_or(0);
        if cursor > max_id {
            return Err(Error::CursorAhead { cursor, max_id });
        }
        Ok(())
    }

    fn read_page(&self, after: i64, limit: usize) -> Result<LogPage> {
        let empty = LogPage {
            records: Vec::new(),
            scanned_through: after,
            missing_before_first: 0,
            warnings: Vec::new(),
        };
        if limit == 0 {
            return Ok(empty);
        }
        // One read transaction: every query below sees the same snapshot.
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(Error::sqlite("starting a read transaction"))?;
        let first: Option<i64> = tx
            .query_row("SELECT min(id) FROM logs WHERE id > ?1", [after], |r| {
                r.get(0)
            })
            .map_err(Error::log_id("reading the first log id"))?;
        let Some(first) = first else {
            return Ok(empty);
        };
        let missing_before_first = u64::try_from(first - after.max(0) - 1).unwrap_or(0);
        let mut stmt = tx
            .prepare(&self.select_sql)
            .map_err(Error::sqlite("preparing the log query"))?;
        let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt
            .query(rusqlite::params![after, sql_limit])
            .map_err(Error::sqlite("reading logs"))?;
        // Sized up front: growing a page-sized Vec costs more than filling it.
        let mut records = Vec::with_capacity(limit.min(16_384));
        let mut rows_seen = 0usize;
        let mut last_seen = after;
        while let Some(row) = rows.next().map_err(Error::sqlite("reading logs"))? {
            rows_seen += 1;
            let record = convert_row(row, self.numeric_levels)
                .map_err(Error::log_id("converting a log row"))?;
            last_seen = record.id;
            if record.level >= self.min_level {
                records.push(record);
            }
        }
        drop(rows);
        drop(stmt);
        let scanned_through = if rows_seen < limit {
            // Everything after `after` in this snapshot was examined.
            tx.query_row("SELECT max(id) FROM logs", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map_err(Error::log_id("reading the highest log id"))?
            .unwrap_or(after)
            .max(last_seen)
        } else {
            last_seen
        };
        tx.finish()
            .map_err(Error::sqlite("ending a read transaction"))?;
        Ok(LogPage {
            records,
            scanned_through,
            missing_before_first,
            warnings: Vec::new(),
        })
    }
}

/// The level spellings of `scale` (upper case, as the filter normalises them) whose level is
/// below `min`, and those at or above it.
fn level_names_split(min: Level, scale: NumericLevels) -> (Vec<&'static str>, Vec<&'static str>) {
    let (below, at_or_above): (Vec<_>, Vec<_>) =
        scale.spellings().into_iter().partition(|(_, l)| *l < min);
    let names = |v: Vec<(&'static str, Level)>| v.into_iter().map(|(n, _)| n).collect();
    (names(below), names(at_or_above))
}

/// The level names most common in logs first (as a server writes them): the order in which the
/// filter's `CASE` compares a row's level.
const NAMES_BY_FREQUENCY: [&str; 11] = [
    "INFO", "WARNING", "ERROR", "DEBUG", "CRITICAL", "WARN", "ERR", "CRIT", "FATAL", "TRACE",
    "NOTICE",
];

/// Every name of `below` and `at_or_above`, once each, most common first, with whether a row
/// at that level is kept.
fn by_frequency(below: &[&'static str], at_or_above: &[&'static str]) -> Vec<(&'static str, bool)> {
    let ranked = |n: &&str| {
        NAMES_BY_FREQUENCY
            .iter()
            .position(|f| f == n)
            .unwrap_or(NAMES_BY_FREQUENCY.len())
    };
    let mut all: Vec<(&'static str, bool)> = below
        .iter()
        .map(|&n| (n, false))
        .chain(at_or_above.iter().map(|&n| (n, true)))
        .collect();
    all.sort_by_key(|(n, _)| ranked(n));
    all
}

fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(match std::str::from_utf8(b) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        }),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
    }
}

fn parse_level(raw: ValueRef<'_>, scale: NumericLevels) -> Option<Level> {
    let bytes = match raw {
        ValueRef::Text(b) => b,
        // A level column of INTEGER affinity stores Python's `levelno` (or pino's) as a number.
        ValueRef::Integer(n) => return scale.level_of(n),
        _ => return None,
    };
    // Fast path for the canonical spellings; everything else goes through the core parser.
    match bytes {
        b"ERROR" => Some(Level::Error),
        b"WARNING" => Some(Level::Warning),
        b"INFO" => Some(Level::Info),
        b"CRITICAL" => Some(Level::Critical),
        b"DEBUG" => Some(Level::Debug),
        _ => scale.parse(std::str::from_utf8(bytes).ok()?).ok(),
    }
}

fn parse_extra(raw: Option<String>) -> serde_json::Value {
    match raw {
        None => serde_json::Value::Null,
        Some(s) if s.trim().is_empty() => serde_json::Value::Null,
        Some(s) => match serde_json::from_str(&s) {
            Ok(v) => v,
            Err(_) => serde_json::json!({ RAW_EXTRA_KEY: s }),
        },
    }
}

/// Converts one row selected in [`RECORD_COLUMNS`] order.
pub(crate) fn convert_row(
    row: &rusqlite::Row<'_>,
    scale: NumericLevels,
) -> rusqlite::Result<LogRecord> {
    let level_ref = row.get_ref(2)?;
    let level = parse_level(level_ref, scale);
    let mut extra_data = parse_extra(text(row.get_ref(8)?));
    let level = match level {
        Some(l) => l,
        None => {
            let original = text(level_ref).map_or(serde_json::Value::Null, Into::into);
            keep_original_level(&mut extra_data, original);
            Level::Error
        }
    };
    Ok(LogRecord {
        id: row.get(0)?,
        timestamp: text(row.get_ref(1)?).unwrap_or_default(),
        level,
        source: text(row.get_ref(3)?),
        message: text(row.get_ref(4)?).unwrap_or_default(),
        correlation_id: text(row.get_ref(5)?),
        user_id: text(row.get_ref(6)?),
        request_path: text(row.get_ref(7)?),
        extra_data,
        node_id: None,
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
        let (below, at_or_above) = level_names_split(Level::Warning, NumericLevels::Python);
        for name in ["TRACE", "DEBUG", "INFO", "NOTICE", "VERBOSE", "I", "20"] {
            assert!(
                below.contains(&name) && !at_or_above.contains(&name),
                "{name}"
            );
        }
        for name in [
            "WARN", "WARNING", "ERR", "ERROR", "CRIT", "CRITICAL", "FATAL", "W", "30",
        ] {
            assert!(
                at_or_above.contains(&name) && !below.contains(&name),
                "{name}"
            );
        }
        assert_eq!(below.len() + at_or_above.len(), Level::SPELLINGS.len());
        assert!(level_names_split(Level::Debug, NumericLevels::Python)
            .0
            .is_empty());
        assert!(level_names_split(Level::Critical, NumericLevels::Python)
            .0
            .contains(&"ERR"));
        assert!(!level_names_split(Level::Critical, NumericLevels::Python)
            .1
            .contains(&"ERR"));
    }

    #[test]
    fn the_filter_compares_every_level_name_once_most_common_first() {
        for (min, scale) in Level::ALL
            .into_iter()
            .flat_map(|min| NumericLevels::ALL.map(|scale| (min, scale)))
        {
            let (below, at_or_above) = level_names_split(min, scale);
            let order = by_frequency(&below, &at_or_above);
            let mut names: Vec<&str> = order.iter().map(|(n, _)| *n).collect();
            assert_eq!(names[0], "INFO", "INFO is compared first at {min:?}");
            names.sort_unstable();
            let mut expected: Vec<&str> = below.iter().chain(&at_or_above).copied().collect();
            expected.sort_unstable();
            assert_eq!(names, expected, "each name once at {min:?}");
            for (name, kept) in order {
                assert_eq!(kept, scale.parse(name).is_ok_and(|l| l >= min), "{name}");
            }
        }
    }

    #[test]
    fn malformed_extra_data_is_kept_raw() {
        assert_eq!(
            parse_extra(Some("{oops".into())),
            serde_json::json!({"_raw": "{oops"})
        );
        assert_eq!(parse_extra(Some("  ".into())), serde_json::Value::Null);
        assert_eq!(parse_extra(Some("[1]".into())), serde_json::json!([1]));
    }

    #[test]
    fn original_level_is_added_without_losing_non_object_extra_data() {
        let mut v = serde_json::json!([1, 2]);
        keep_original_level(&mut v, "LOUD".into());
        assert_eq!(
            v,
            serde_json::json!({"_extra": [1, 2], "_original_level": "LOUD"})
        );
    }
}
