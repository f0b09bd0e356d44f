//! The host's own log: a generator of realistic server records that keeps appending while the
//! host runs, and a test hook that breaks the log so a scan fails.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use selfmon::testing::MemoryLogSource;
use selfmon::{Level, LogRecord, LogSource};

/// Where the host's log records live.
pub struct LogFeed {
    source: Arc<MemoryLogSource>,
    round: AtomicU64,
}

impl LogFeed {
    /// A fresh log, seeded with one batch so the first scan has something to triage.
    pub fn new() -> Self {
        let feed = LogFeed {
            source: Arc::new(MemoryLogSource::new()),
            round: AtomicU64::new(0),
        };
        if let Err(error) = feed.append_batch() {
            tracing::warn!(%error, "could not seed the log");
        }
        feed
    }

    /// The log source selfmon reads.
    pub fn source(&self) -> Arc<dyn LogSource> {
        self.source.clone()
    }

    /// A short description for the page (where the log lives).
    pub fn location(&self) -> String {
        "in-memory log".to_string()
    }

    /// Appends one batch of records as the server would have written them; returns how many.
    pub fn append_batch(&self) -> Result<usize, String> {
        let round = self.round.fetch_add(1, Ordering::Relaxed);
        let records = batch(round);
        let n = records.len();
        for r in records {
            self.source.append(r);
        }
        Ok(n)
    }

    /// Appends one record now (tests use it for hostile text).
    #[cfg(test)]
    pub fn append_raw(&self, level: Level, source: &str, message: &str) {
        self.source.log(level, source, message);
    }

    /// Breaks the log so the next scan cannot read it; returns what was done.
    pub fn break_log(&self) -> Result<String, String> {
        self.source
            .fail_next_read("logs.db is not a database (file is corrupt)");
        Ok("the next read of the log fails".to_string())
    }

    /// Spawns a task appending a batch every `period` until aborted.
    pub fn spawn_appender(self: Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                interval.tick().await;
                if let Err(error) = self.append_batch() {
                    tracing::warn!(%error, "could not append log records");
                }
            }
        })
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
        format!("[GIT-SYNC-001] git fetch failed for golden repo /srv/golden/{repo}: exit status 128"),
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
            format!("job queue full: {} jobs pending, dropping refresh request", 60 + n),
            serde_json::Value::Null,
        );
    }
    for user in ["u1", "u2", "u3"] {
        push(
            Level::Warning,
            "cidx.api",
            format!("request validation failed for user {user}: field 'limit' must be <= 100, got {}", 500 + round),
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
