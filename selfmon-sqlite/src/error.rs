//! The crate's error type.

use std::path::PathBuf;

use selfmon_core::Component;

/// Convenience alias used throughout selfmon-sqlite.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in selfmon-sqlite, with variants a caller can act on.
///
/// Convert into the core error with [`Error::into_core`] (the trait implementations do this), which
/// keeps this error as the source: a busy or locked database becomes
/// `selfmon_core::Error::Unavailable` (retryable), an issue the store does not know `NotFound`,
/// an invalid option `InvalidInput`, anything else (a corrupt file included: not retryable)
/// `Adapter` with `retryable` from [`Error::is_retryable`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SQLite file could not be opened.
    /// The message ends with what to do: for a lock, that it is temporary; otherwise what
    /// [`Error::Sqlite`] would say, or to check the path.
    #[error("cannot open SQLite file {path}: {source}{}", open_advice(.source))]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },

    /// The file has no table of the required name.
    #[error("{path} has no `{table}` table; point selfmon at the CIDX server's logs.db (schema: `{table}(id, timestamp, level, source, message, ...)`)")]
    MissingTable {
        /// The file.
        path: PathBuf,
        /// The missing table.
        table: String,
    },

    /// The table exists but lacks columns selfmon cannot do without.
    #[error("table `{table}` in {path} lacks required column(s) {}; selfmon needs at least id, level and message", .missing.join(", "))]
    MissingColumns {
        /// The file.
        path: PathBuf,
        /// The table.
        table: String,
        /// The missing columns.
        missing: Vec<String>,
    },

    /// The cursor is beyond the highest id in the log file: the file was recreated or rotated.
    /// Restart reading from 0 (the engine does so and records `cursor_reset` on the scan).
    #[error("cursor {cursor} is ahead of the log file (highest id {max_id}); the file was recreated or rotated: restart from 0")]
    CursorAhead {
        /// The cursor the caller asked to read after.
        cursor: i64,
        /// The highest id present (0 when the table is empty).
        max_id: i64,
    },

    /// A SQLite call failed. Busy/locked databases are retryable (see [`Error::is_retryable`]).
    /// The message ends with what to do for the common causes (a damaged file, a lock, a
    /// read-only file or folder, a full disk).
    #[error("SQLite error while {context}: {source}{}", advice(.source))]
    Sqlite {
        /// What was being done.
        context: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },

    /// The `logs` table holds an id that is not an integer (text or a real number: possible when
    /// `id` is not declared `INTEGER PRIMARY KEY`). selfmon reads records in id order after a
    /// cursor and cannot place such a row; every scan fails the same way until the row is fixed.
    /// Not retryable.
    #[error("the logs table holds an id that is {found}, not an integer (while {context}); selfmon reads records in id order after a cursor and needs integer ids: declare `id INTEGER PRIMARY KEY` as CIDX does, or fix or delete the rows `SELECT rowid, id FROM logs WHERE typeof(id) <> 'integer'` lists (nothing was read past the cursor)")]
    NonIntegerLogId {
        /// What was being done.
        context: &'static str,
        /// SQLite's storage class of the value (`text`, `real`, `blob`).
        found: String,
    },

    /// The `logs` table's `id` column may hold a value twice: it is neither the table's
    /// `INTEGER PRIMARY KEY` nor covered by a UNIQUE index. selfmon reads records in pages after
    /// a cursor (`id > cursor`), so rows sharing an id across a page boundary would be skipped
    /// without a trace; it refuses the table instead. Not retryable.
    #[error("the `{table}` table in {path} does not keep `id` unique (it is neither the INTEGER PRIMARY KEY nor covered by a UNIQUE index); selfmon reads records in pages after a cursor by id, and rows sharing an id would be skipped at a page boundary. Declare `id INTEGER PRIMARY KEY` as CIDX does; if the ids are unique already, `CREATE UNIQUE INDEX {table}_id_unique ON {table}(id)` (as the file's owner: selfmon only reads it); if they repeat (`SELECT id, count(*) FROM {table} GROUP BY id HAVING count(*) > 1` lists them), copy the rows into a table that numbers them with `id INTEGER PRIMARY KEY`")]
    NonUniqueLogId {
        /// The file.
        path: PathBuf,
        /// The table.
        table: String,
    },

    /// The state store was written by a newer selfmon; this version will not touch it.
    #[error("state store {path} has schema version {found}, newer than this library supports ({supported}); upgrade selfmon or point it at another file")]
    SchemaTooNew {
        /// The file.
        path: PathBuf,
        /// Version found in the file.
        found: i64,
        /// Newest version this library knows.
        supported: i64,
    },

    /// A value could not be encoded to, or decoded from, its JSON column.
    #[error("cannot {action} {what} as JSON: {source}")]
    Json {
        /// `"encode"` or `"decode"`.
        action: &'static str,
        /// What the value is (`"issue draft"`).
        what: &'static str,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },

    /// A stored value is not what this library wrote (a hand-edited or corrupt row).
    #[error("stored {column} value {} is invalid: {reason}", selfmon_core::text::quoted(.value))]
    InvalidStoredValue {
        /// The column.
        column: &'static str,
        /// The value, truncated.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// An option is out of range; fix the named field.
    #[error("invalid option `{field}`: {reason}")]
    InvalidOption {
        /// The field.
        field: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },

    /// The error-code catalog file could not be read or parsed. No longer returned: the catalog
    /// moved to `selfmon_core::inventory`, whose `Catalog::load` fails with
    /// `selfmon_core::Error::Catalog`; kept so code matching on it still compiles.
    #[error("cannot use error-code catalog {path}: {reason}; expected a JSON array of codes, a JSON object keyed by code, or one code per line")]
    Catalog {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A filed issue the caller referred to is not recorded.
    #[error("issue #{number} is not recorded in the state store")]
    IssueNotFound {
        /// The issue number.
        number: u64,
    },

    /// The background task running a SQLite call panicked, was cancelled (runtime shutting down)
    /// or could not be started. Retryable unless it panicked.
    #[error("background SQLite task failed: {reason}")]
    Task {
        /// What happened.
        reason: String,
        /// Whether the task panicked (a bug: retrying will not help).
        panicked: bool,
    },
}

impl Error {
    /// Wraps a SQLite error with what was being done.
    pub(crate) fn sqlite(context: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
        move |source| Error::Sqlite { context, source }
    }

    /// Like [`Error::sqlite`] for a query that reads `logs.id`: a value of the wrong type there is
    /// [`Error::NonIntegerLogId`], which says what to do about it.
    pub(crate) fn log_id(context: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
        move |source| match &source {
            rusqlite::Error::InvalidColumnType(_, name, ty)
                if (name == "id" || name.contains("(id)"))
                    && *ty != rusqlite::types::Type::Integer
                    && *ty != rusqlite::types::Type::Null =>
            {
                Error::NonIntegerLogId {
                    context,
                    found: match ty {
                        rusqlite::types::Type::Real => "a real number".into(),
                        rusqlite::types::Type::Text => "text".into(),
                        rusqlite::types::Type::Blob => "a blob".into(),
                        other => other.to_string(),
                    },
                }
            }
            _ => Error::Sqlite { context, source },
        }
    }

    /// Whether repeating the failed operation later may succeed: true for a busy or locked
    /// database and for a background task that was cancelled (not one that panicked).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Sqlite { source, .. } | Error::Open { source, .. } => is_busy(source),
            Error::Task { panicked, .. } => !panicked,
            _ => false,
        }
    }

    /// Converts into the core error for `component`, keeping `self` as the source.
    pub fn into_core(self, component: Component) -> selfmon_core::Error {
        match &self {
            Error::Sqlite { source, .. } | Error::Open { source, .. } if is_busy(source) => {
                selfmon_core::Error::unavailable(component, self)
            }
            Error::IssueNotFound { .. } => selfmon_core::Error::not_found(component, self),
            Error::InvalidOption { .. } => selfmon_core::Error::invalid_input(component, self),
            _ => {
                let retryable = self.is_retryable();
                selfmon_core::Error::adapter(component, retryable, self)
            }
        }
    }
}

/// What a person should do about a SQLite error, as a sentence appended to its message ("" when
/// there is nothing better to say than SQLite's own text).
fn advice(e: &rusqlite::Error) -> &'static str {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseCorrupt | C::NotADatabase) => {
            // Shared by every command, read-only ones included: nothing here about scans.
            "; the file is damaged: check it with `sqlite3 FILE 'PRAGMA integrity_check'` and \
             restore it from a backup (selfmon changed nothing in it)"
        }
        Some(C::DatabaseBusy | C::DatabaseLocked) => {
            "; another process holds a lock on the file: this is temporary, the next attempt \
             retries"
        }
        Some(C::ReadOnly | C::PermissionDenied | C::CannotOpen) => {
            "; check that this user may read and write the file and its folder (SQLite writes \
             journal files beside it)"
        }
        Some(C::DiskFull) => "; the disk is full: free space and scan again",
        _ => "",
    }
}

/// [`advice`], or a hint about the path when SQLite's own text is all there is.
fn open_advice(e: &rusqlite::Error) -> &'static str {
    match advice(e) {
        "" => "; check that the path exists and is readable",
        a => a,
    }
}

/// Whether a SQLite error means "try again later".
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Runs a blocking SQLite closure on tokio's blocking pool so async callers are never blocked.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task {
            reason: e.to_string(),
            panicked: e.is_panic(),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_sqlite_errors_are_retryable_and_keep_their_source() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        let e = Error::sqlite("reading logs")(busy);
        assert!(e.is_retryable());
        let core = e.into_core(Component::LogSource);
        assert!(core.is_retryable());
        assert!(
            matches!(core, selfmon_core::Error::Unavailable { .. }),
            "a locked database is unavailable for now: {core:?}"
        );
        assert!(std::error::Error::source(&core).is_some());
    }

    #[test]
    fn a_corrupt_file_is_not_retryable_and_an_unknown_issue_is_not_found() {
        let corrupt = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            None,
        );
        let core = Error::sqlite("reading logs")(corrupt).into_core(Component::LogSource);
        assert!(!core.is_retryable(), "retrying a corrupt file cannot help");
        assert!(
            matches!(core, selfmon_core::Error::Adapter { .. }),
            "{core:?}"
        );
        let core = Error::IssueNotFound { number: 7 }.into_core(Component::StateStore);
        assert!(
            matches!(core, selfmon_core::Error::NotFound { .. }),
            "{core:?}"
        );
        assert_eq!(core.component(), Some(Component::StateStore));
    }

    #[test]
    fn missing_columns_message_names_them() {
        let e = Error::MissingColumns {
            path: "/x/logs.db".into(),
            table: "logs".into(),
            missing: vec!["level".into(), "message".into()],
        };
        let msg = e.to_string();
        assert!(
            msg.contains("level, message") && msg.contains("/x/logs.db"),
            "{msg}"
        );
        assert!(!e.into_core(Component::LogSource).is_retryable());
    }
}
