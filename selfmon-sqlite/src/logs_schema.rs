//! The CIDX `logs.db` schema: what a current file looks like, and what an older one may lack.

use rusqlite::Connection;

/// The `logs` table as the CIDX server (and the `tracing-layer` feature's `SqliteLogLayer`) creates it.
pub const LOGS_TABLE_DDL: &str = "CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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
    created_at TEXT
)";

/// The statement that appends one record to the `logs` table, as the CIDX server writes it:
/// parameters `?1` timestamp (also stored as `created_at`), `?2` level, `?3` source, `?4` message,
/// `?5` correlation id, `?6` user id, `?7` request path, `?8` extra data (JSON text). Used by the
/// `tracing-layer` feature's `SqliteLogLayer`; hosts and tests that write records use it too, so
/// there is one copy of it.
pub const LOGS_INSERT_SQL: &str = "INSERT INTO logs (timestamp, level, source, message, \
     correlation_id, user_id, request_path, extra_data, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?1)";

/// Columns without which a `logs` table is unusable.
pub const REQUIRED_COLUMNS: [&str; 3] = ["id", "level", "message"];

/// Columns read into a [`selfmon_core::LogRecord`], in select order. Missing ones read as NULL.
pub(crate) const RECORD_COLUMNS: [&str; 9] = [
    "id",
    "timestamp",
    "level",
    "source",
    "message",
    "correlation_id",
    "user_id",
    "request_path",
    "extra_data",
];

/// Creates the `logs` table (and nothing else) if it does not exist.
pub fn create_logs_table(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(LOGS_TABLE_DDL)
}

/// The column names of `table`, in declaration order; empty when the table does not exist.
pub(crate) fn table_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt
        .query_map([table], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names)
}

/// Whether `table`'s `id` column holds no value twice: it is the table's primary key by itself
/// (`id INTEGER PRIMARY KEY`, the rowid, as CIDX declares it) or the only column of a UNIQUE
/// index that is not partial. Records are read in pages after a cursor (`id > cursor`): rows
/// sharing an id across a page boundary would be skipped.
pub(crate) fn id_is_unique(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    let only_id =
        |names: &[Option<String>]| matches!(names, [Some(name)] if name.eq_ignore_ascii_case("id"));
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0")?;
    let pk = stmt
        .query_map([table], |r| r.get::<_, Option<String>>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if only_id(&pk) {
        return Ok(true);
    }
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_index_list(?1) WHERE \"unique\" = 1 AND partial = 0")?;
    let indexes = stmt
        .query_map([table], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare("SELECT name FROM pragma_index_info(?1)")?;
    for index in indexes {
        let columns = stmt
            .query_map([&index], |r| r.get::<_, Option<String>>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if only_id(&columns) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The `CREATE TABLE` statement stored for `table`, if any.
pub(crate) fn table_sql(conn: &Connection, table: &str) -> rusqlite::Result<Option<String>> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get::<_, Option<String>>(0),
    )
    .optional()
    .map(Option::flatten)
}
