//! The host's own log: a CIDX-style `logs.db` that keeps receiving realistic records while the
//! host runs, and a test hook that breaks the file so a scan fails.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rusqlite::Connection;
use selfmon::sqlite::{create_logs_table, LogSourceOptions, SqliteLogSource};
use selfmon::{Level, LogRecord, LogSource};

/// The host's `logs.db`: written by the host (as the CIDX server writes it), read by selfmon.
pub struct LogFeed {
    path: PathBuf,
    source: Arc<SqliteLogSource>,
    round: AtomicU64,
}

fn writer(path: &Path) -> Result<Connection, String> {
    let conn =
        Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

impl LogFeed {
    /// Opens (or creates) `path` and seeds it with one batch so the first scan has something to
    /// triage. A file that is not a usable log (a test broke it) is moved aside and recreated.
    pub fn open(path: &Path) -> Result<Self, String> {
        if let Err(e) = init_log(path) {
            recreate(path, &e)?;
        }
        let source =
            SqliteLogSource::open(path, LogSourceOptions::default()).map_err(|e| e.to_string())?;
        let feed = LogFeed {
            path: path.to_path_buf(),
            source: Arc::new(source),
            round: AtomicU64::new(0),
        };
        feed.append_batch()?;
        Ok(feed)
    }

    /// The log source selfmon reads.
    pub fn source(&self) -> Arc<dyn LogSource> {
        self.source.clone()
    }

    /// Where the log lives, for the page.
    pub fn location(&self) -> String {
        format!("SQLite {}", self.path.display())
    }

    /// Appends records in one transaction, as the server's log handler would. A file that is no
    /// longer a usable log (broken, or replaced by something else) is moved aside and recreated
    /// first, as a server recreates its log: selfmon's next scan then finds ids below its cursor,
    /// resets it and reads the new file, with no restart.
    fn append(&self, records: &[LogRecord]) -> Result<usize, String> {
        match self.try_append(records) {
            Ok(n) => Ok(n),
            Err(first) if !usable(&self.path) => {
                recreate(&self.path, &first)?;
                self.try_append(records)
                    .map_err(|e| format!("{first}; after recreating the log: {e}"))
            }
            Err(e) => Err(e),
        }
    }

    fn try_append(&self, records: &[LogRecord]) -> Result<usize, String> {
        let mut conn = writer(&self.path)?;
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        {
            let mut stmt = tx
                .prepare_cached(selfmon::sqlite::LOGS_INSERT_SQL)
                .map_err(|e| e.to_string())?;
            for r in records {
                let extra = (!r.extra_data.is_null()).then(|| r.extra_data.to_string());
                stmt.execute(rusqlite::params![
                    r.timestamp,
                    r.level.as_str(),
                    r.source,
                    r.message,
                    r.correlation_id,
                    r.user_id,
                    r.request_path,
                    extra,
                ])
                .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())?;
        Ok(records.len())
    }

    /// Appends one batch of realistic records; returns how many.
    pub fn append_batch(&self) -> Result<usize, String> {
        let round = self.round.fetch_add(1, Ordering::Relaxed);
        self.append(&batch(round))
    }

    /// Appends one record now (tests use it for hostile text).
    #[cfg(test)]
    pub fn append_raw(&self, level: Level, source: &str, message: &str) {
        let record = LogRecord::new(0, level, message)
            .with_source(source)
            .with_timestamp(Utc::now().to_rfc3339());
        self.append(&[record]).expect("append a record");
    }

    /// Replaces `logs.db` with garbage, as a disk fault or a bad restore would; the next scan
    /// cannot read it. Returns what was done.
    pub fn break_log(&self) -> Result<String, String> {
        let tmp = self.path.with_extension("db.garbage");
        std::fs::write(&tmp, b"this is not an SQLite database\n".repeat(200))
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| format!("cannot replace {}: {e}", self.path.display()))?;
        remove_sidecars(&self.path);
        Ok(format!("{} replaced with garbage", self.path.display()))
    }

    /// Spawns a task appending a batch every `period` until aborted.
    pub fn spawn_appender(self: Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                interval.tick().await;
                let feed = self.clone();
                match tokio::task::spawn_blocking(move || feed.append_batch()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => tracing::warn!(%error, "could not append log records"),
                    Err(error) => tracing::warn!(%error, "log appender task failed"),
                }
            }
        })
    }
}

/// Creates the `logs` table (and WAL mode) in `path` if missing.
fn init_log(path: &Path) -> Result<(), String> {
    let conn = writer(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| format!("{}: {e}", path.display()))?;
    create_logs_table(&conn).map_err(|e| format!("{}: {e}", path.display()))
}

/// Whether `path` is an SQLite file with a `logs` table (a locked one counts as usable).
fn usable(path: &Path) -> bool {
    let Ok(conn) = writer(path) else {
        return false;
    };
    match conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'logs'",
        [],
        |r| r.get::<_, i64>(0),
    ) {
        Ok(n) => n == 1,
        Err(rusqlite::Error::SqliteFailure(e, _)) => {
            e.code == rusqlite::ErrorCode::DatabaseBusy
                || e.code == rusqlite::ErrorCode::DatabaseLocked
        }
        Err(_) => false,
    }
}

/// Moves an unusable log aside (`logs.db.broken`) and creates a fresh one.
fn recreate(path: &Path, why: &str) -> Result<(), String> {
    let aside = path.with_extension("db.broken");
    tracing::warn!(error = %why, aside = %aside.display(), "log file unusable; moving it aside");
    std::fs::rename(path, &aside)
        .map_err(|e| format!("cannot move {} aside: {e}", path.display()))?;
    remove_sidecars(path);
    init_log(path)
}

fn remove_sidecars(path: &Path) {
    for ext in ["db-wal", "db-shm"] {
        let _ = std::fs::remove_file(path.with_extension(ext));
    }
}

/// One batch of records a busy code-indexing server writes in a few seconds: ordinary traffic,
/// git failures with error codes, now and then a crash, a stuck queue, client mistakes.
pub fn batch(round: u64) -> Vec<LogRecord> {
    let now = Utc::now().to_rfc3339();
    let mut out = Vec::new();
    let mut push = |level: Level, source: &str, message: String, extra: serde_json::Value| {
        let n = out.len();
        out.push(
            LogRecord::new(0, level, message)
                .with_source(source)
                .with_timestamp(now.clone())
                .with_extra(extra)
                .with_correlation_id(format!("req-{round}-{n}")),
        );
    };
    for n in 0..5 {
        push(
            Level::Info,
            "cidx.http",
            format!("GET /api/repos/{} 200 in {}ms", n + round, 3 + n),
            serde_json::Value::Null,
        );
    }
    let repos = ["alpha", "beta", "gamma"];
    let repo = repos[(round % 3) as usize];
    push(
        Level::Error,
        "cidx.git",
        format!(
            "[GIT-SYNC-001] git fetch failed for golden repo /srv/golden/{repo}: exit status 128"
        ),
        serde_json::json!({"error_code": "GIT-SYNC-001", "repo": repo}),
    );
    if round % 2 == 0 {
        push(
            Level::Error,
            "cidx.indexer",
            format!("Unhandled exception in indexing job {}\nTraceback (most recent call last):\n  File \"code_indexer/services/indexer.py\", line 212, in run\n    chunk = self._chunk(path)\nValueError: cannot decode /srv/repos/{repo}/blob.bin", 4700 + round),
            serde_json::Value::Null,
        );
    }
    for n in 0..6 {
        push(
            Level::Warning,
            "cidx.jobs",
            format!(
                "job queue full: {} jobs pending, dropping refresh request",
                60 + n
            ),
            serde_json::Value::Null,
        );
    }
    for user in ["u1", "u2", "u3"] {
        push(
            Level::Warning,
            "cidx.api",
            format!(
                "request validation failed for user {user}: field 'limit' must be <= 100, got {}",
                500 + round
            ),
            serde_json::Value::Null,
        );
    }
    if round % 3 == 0 {
        push(
            Level::Warning,
            "cidx.api",
            "parameter 'repo_alias' is deprecated; use 'alias' instead".to_string(),
            serde_json::Value::Null,
        );
    }
    if round % 4 == 1 {
        push(
            Level::Critical,
            "cidx.db",
            "[DB-LOCK-003] database is locked after 5 retries".to_string(),
            serde_json::json!({"error_code": "DB-LOCK-003"}),
        );
    }
    out
}
