//! The crate's error type.

use selfmon_core::Component;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to PostgreSQL. Messages never contain the connection string.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The environment variable that should hold the connection string is unset or empty.
    #[error("environment variable {env} is unset or empty; set it to a PostgreSQL connection string (postgres://user:password@host:port/db)")]
    MissingUrl {
        /// The variable's name.
        env: String,
    },

    /// The connection string does not parse. The string itself is not repeated (it may hold a
    /// password).
    #[error("the PostgreSQL connection string from {origin} does not parse: {reason}; use postgres://user:password@host:port/db or key=value form")]
    InvalidUrl {
        /// Where it came from (an environment variable's name, or "the caller").
        origin: String,
        /// The parser's complaint.
        reason: String,
    },

    /// The server could not be reached or refused the login. Retryable.
    #[error("cannot connect to PostgreSQL at {target}: {source}; check that the server runs and the credentials are right")]
    Connect {
        /// Host, port and database (never the password).
        target: String,
        /// The client's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// TLS was asked for but cannot be set up (no TLS support built in, or an unusable
    /// `PGSSLROOTCERT` file). Not retryable: the configuration must change.
    #[error("cannot use TLS for PostgreSQL: {reason}")]
    Tls {
        /// What is wrong.
        reason: String,
    },

    /// The connection dropped between two calls and could not be replaced. Retryable.
    #[error("the PostgreSQL connection to {target} was lost; the next call reconnects")]
    ConnectionLost {
        /// Host, port and database.
        target: String,
    },

    /// A statement failed.
    #[error("PostgreSQL error while {action}: {}", describe_db_error(.source))]
    Query {
        /// What was being done.
        action: &'static str,
        /// The client's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// The log table does not exist.
    #[error("PostgreSQL has no table {table}; point selfmon at the cluster's logs table (columns id, level, message, ... and node_id) or set `schema`/`table`")]
    MissingTable {
        /// Schema-qualified name.
        table: String,
    },

    /// The log table lacks columns selfmon cannot do without.
    #[error("table {table} lacks required column(s) {}; selfmon needs at least id, level and message", .missing.join(", "))]
    MissingColumns {
        /// Schema-qualified name.
        table: String,
        /// What is missing.
        missing: Vec<String>,
    },

    /// A table the log is read from does not keep `id` unique: its `id` neither comes from a
    /// sequence (`SERIAL`, `GENERATED ... AS IDENTITY`) nor is covered by a unique index on `id`
    /// alone (a primary key included). selfmon reads records in pages after a cursor
    /// (`id > cursor`), so rows sharing an id across a page boundary would be skipped without a
    /// trace; it refuses the table instead. Not retryable.
    #[error("the log table {relation} does not keep `id` unique (it neither comes from a sequence nor is covered by a unique index on id alone); selfmon reads records in pages after a cursor by id, and rows sharing an id would be skipped at a page boundary. Declare `id BIGSERIAL PRIMARY KEY` as CIDX does (`id SERIAL PRIMARY KEY`); if the ids are unique already, `ALTER TABLE {relation} ADD CONSTRAINT {unique_name} UNIQUE (id)`; if they repeat (`SELECT id, count(*) FROM {relation} GROUP BY id HAVING count(*) > 1` lists them), renumber them from a sequence")]
    NonUniqueLogId {
        /// The table (the log table itself, or one a log view reads).
        relation: String,
        /// A constraint name to suggest.
        unique_name: String,
    },

    /// The log relation is a view whose rows selfmon cannot read in commit order (it reads no
    /// table, or tables whose ids come from several sequences). Not retryable.
    #[error("the log view {table} cannot be read without risking skipped records: {reason}; point `table` at the log table itself, or use a view over tables whose `id` comes from one sequence")]
    UnsupportedLogView {
        /// Schema-qualified name.
        table: String,
        /// What about the view prevents it.
        reason: String,
    },

    /// An option is out of range.
    #[error("invalid option `{field}`: {reason}")]
    InvalidOption {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },

    /// The state schema in the database is newer than this library.
    #[error("the selfmon state schema in PostgreSQL has version {found}, newer than this library supports ({supported}); upgrade selfmon on every node")]
    SchemaTooNew {
        /// Found in the database.
        found: i64,
        /// Known here.
        supported: i64,
    },

    /// A fenced write was refused: the lease this store took is no longer the current one (it
    /// expired and another node took it over). Not retryable: the scan must stop.
    #[error("the scan lease held by {owner} (epoch {epoch}) was lost to another node; this node stops writing (the new holder reconciles)")]
    LeaseLost {
        /// The owner this store held the lease as.
        owner: String,
        /// The fencing epoch it held.
        epoch: i64,
    },

    /// A value could not be encoded or decoded as JSON.
    #[error("cannot {action} {what} as JSON: {source}")]
    Json {
        /// "encode" or "decode".
        action: &'static str,
        /// What.
        what: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// A stored value is not what selfmon wrote.
    #[error("stored {column} value {} is invalid: {reason}", selfmon_core::text::quoted(.value))]
    InvalidStoredValue {
        /// The column.
        column: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
}

fn describe_db_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl Error {
    pub(crate) fn query(action: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
        move |source| Error::Query { action, source }
    }

    /// Whether repeating the operation later may succeed: a lost connection, a server shutting
    /// down, a serialization failure or deadlock, too many connections.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::ConnectionLost { .. } => true,
            Error::Query { source, .. } => is_transient(source),
            _ => false,
        }
    }

    /// Converts into the core error, keeping this one as the source.
    ///
    /// An unreachable or lost server (and a query that failed because of it) becomes
    /// `selfmon_core::Error::Unavailable`, a missing privilege `PermissionDenied`, a malformed
    /// URL or option `InvalidInput`; the rest `Adapter` with `retryable` from
    /// [`Error::is_retryable`] (a serialization failure or deadlock stays a retryable `Adapter`).
    pub fn into_core(self, component: Component) -> selfmon_core::Error {
        use tokio_postgres::error::SqlState;
        match &self {
            Error::Connect { .. } | Error::ConnectionLost { .. } => {
                selfmon_core::Error::unavailable(component, self)
            }
            Error::Query { source, .. } if is_unreachable(source) => {
                selfmon_core::Error::unavailable(component, self)
            }
            Error::Query { source, .. }
                if source.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) =>
            {
                selfmon_core::Error::permission_denied(component, self)
            }
            Error::InvalidUrl { .. } | Error::InvalidOption { .. } => {
                selfmon_core::Error::invalid_input(component, self)
            }
            _ => {
                let retryable = self.is_retryable();
                selfmon_core::Error::adapter(component, retryable, self)
            }
        }
    }
}

/// A closed connection, a connection-class (08) or operator-intervention (57P) error, or too
/// many connections: the server cannot serve the query right now.
fn is_unreachable(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.is_closed()
        || e.code().is_some_and(|code| {
            let c = code.code();
            *code == SqlState::TOO_MANY_CONNECTIONS || c.starts_with("08") || c.starts_with("57P")
        })
}

/// Connection-level or concurrency failures that a retry may get past.
pub(crate) fn is_transient(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let c = code.code();
            *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::LOCK_NOT_AVAILABLE
                || *code == SqlState::QUERY_CANCELED
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || c.starts_with("08")
                || c.starts_with("57P")
        }
        None => is_connection_failure(e),
    }
}

/// The connection itself failed (closed, or an I/O error on the socket), as opposed to a
/// statement error or a conversion error.
pub(crate) fn is_connection_failure(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    // The server ended the session (admin shutdown, pg_terminate_backend) or the link broke.
    if let Some(code) = e.code() {
        let c = code.code();
        if c.starts_with("57P") || c.starts_with("08") {
            return true;
        }
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Typed column access that fails with an error instead of panicking on an unexpected type.
pub(crate) trait RowExt {
    /// Column `i` as `T`.
    fn col<'a, T: tokio_postgres::types::FromSql<'a>>(&'a self, i: usize) -> Result<T>;
}

impl RowExt for tokio_postgres::Row {
    fn col<'a, T: tokio_postgres::types::FromSql<'a>>(&'a self, i: usize) -> Result<T> {
        self.try_get(i)
            .map_err(Error::query("reading a column of an unexpected type"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_lost_is_not_retryable_and_names_the_owner() {
        let e = Error::LeaseLost {
            owner: "node-a".into(),
            epoch: 7,
        };
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("node-a"));
        let core = e.into_core(Component::StateStore);
        assert!(!core.is_retryable());
    }

    #[test]
    fn a_lost_server_is_unavailable_and_a_bad_option_is_invalid_input() {
        let lost = Error::ConnectionLost {
            target: "db:5432/selfmon".into(),
        }
        .into_core(Component::LogSource);
        assert!(
            matches!(lost, selfmon_core::Error::Unavailable { .. }),
            "{lost:?}"
        );
        assert!(lost.is_retryable());
        let bad = Error::InvalidOption {
            field: "batch_size",
            reason: "must be at least 1".into(),
        }
        .into_core(Component::StateStore);
        assert!(
            matches!(bad, selfmon_core::Error::InvalidInput { .. }),
            "{bad:?}"
        );
        assert!(!bad.is_retryable());
        assert_eq!(bad.component(), Some(Component::StateStore));
    }
}
