//! [`SqliteLogLayer`]: a `tracing-subscriber` layer writing events into a CIDX-schema `logs.db`.
//!
//! Events are converted on the emitting thread and handed to a background writer thread through a
//! bounded queue; the writer inserts them in batches, one transaction per batch.
//!
//! **When the queue is full**: events below ERROR are dropped at once and counted
//! ([`LayerStats::dropped`]); ERROR and above wait up to [`LayerOptions::error_wait_ms`] for room
//! and are only then dropped, counted separately ([`LayerStats::dropped_errors`]). Nothing is lost
//! silently: besides the counters, the writer adds a record `[SELFMON-QUEUE-001]` (at ERROR when
//! errors were lost, WARNING otherwise) to the log itself as soon as it can.
//!
//! **When a write fails** (locked past the busy timeout, disk full, table gone): the batch is
//! retried [`LayerOptions::write_attempts`] times, then counted as lost
//! ([`LayerStats::lost_after_write_failure`], [`LayerStats::write_failures`],
//! [`LayerStats::last_error`]), and a `[SELFMON-WRITE-001]` ERROR record is written once writing
//! works again.
//!
//! **Fields**: the message, the target (as `source`), `correlation_id`, `user_id` and
//! `request_path` go to their columns; every other field goes to `extra_data`. The error code comes
//! from an `error_code` field, or else from a well-formed `[CODE]` prefix of the message, and is
//! stored as `extra_data.error_code`. Events emitted on the writer thread itself are ignored.
//!
//! **Records from elsewhere**: [`SqliteLogLayer::submit`] queues a [`LogEntry`] built by the host
//! (the Python `selfmon.LogHandler` does, for `logging` records) through the same queue, policy,
//! counters and writer; [`SqliteLogLayer::try_submit`] is its never-waiting first attempt.

use std::cell::Cell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use selfmon_core::{ErrorCode, Level};
use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::error::{Error, Result};
use crate::logs_schema::create_logs_table;

/// `last_error` of a [`LayerHandle`] used in a forked child.
const FORKED: &str =
    "this log writer belongs to the process that forked this one; open a new one here";

/// Source (`logs.source`) of the records the layer writes about itself.
pub const LAYER_SOURCE: &str = "selfmon.tracing_layer";

/// How the layer queues and writes. Plain data with working defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayerOptions {
    /// Events waiting to be written, at most (bounds memory).
    pub queue_capacity: usize,
    /// Events per transaction, at most.
    pub batch_size: usize,
    /// How long the writer waits to fill a batch before writing what it has.
    pub flush_interval_ms: u64,
    /// Events below this level are ignored.
    pub min_level: Level,
    /// How long an ERROR or CRITICAL event waits for room in a full queue before it is dropped
    /// (and counted).
    pub error_wait_ms: u64,
    /// How often a batch is tried before it is counted as lost.
    pub write_attempts: u32,
    /// SQLite busy timeout of the writer's connection.
    pub busy_timeout_ms: u64,
}

impl Default for LayerOptions {
    fn default() -> Self {
        LayerOptions {
            queue_capacity: 10_000,
            batch_size: 500,
            flush_interval_ms: 200,
            min_level: Level::Info,
            error_wait_ms: 1_000,
            write_attempts: 3,
            busy_timeout_ms: 5_000,
        }
    }
}

impl LayerOptions {
    /// Checks ranges; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: &str| {
            Err(Error::InvalidOption {
                field,
                reason: reason.to_string(),
            })
        };
        if self.queue_capacity == 0 {
            return bad("queue_capacity", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.write_attempts == 0 {
            return bad("write_attempts", "must be at least 1");
        }
        Ok(())
    }
}

/// Counters of what the layer did, for a host's health endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LayerStats {
    /// Events accepted into the queue.
    pub enqueued: u64,
    /// Events written to the file.
    pub written: u64,
    /// Events below ERROR dropped because the queue was full.
    pub dropped: u64,
    /// ERROR and CRITICAL events dropped after waiting for room.
    pub dropped_errors: u64,
    /// Batches that could not be written after every attempt.
    pub write_failures: u64,
    /// Events in those batches.
    pub lost_after_write_failure: u64,
    /// The last write error, if any.
    pub last_error: Option<String>,
    /// Events waiting in the queue right now.
    pub queued: u64,
}

/// The `tracing-subscriber` layer. Cheap to clone; all clones feed the same writer.
#[derive(Debug, Clone)]
pub struct SqliteLogLayer {
    shared: Arc<Shared>,
    min_level: Level,
}

/// Owns the writer thread: [`flush`](LayerHandle::flush) it in tests and before exit, and
/// [`shutdown`](LayerHandle::shutdown) it (or drop it) to write what is queued and stop.
///
/// **After `fork()`**: the child inherits the handle but not the writer thread (nor the locks that
/// thread held at the fork). A handle dropped or shut down in a process other than the one that
/// opened it therefore touches nothing it shares with that thread: it neither joins the thread
/// (which would wait forever) nor locks the queue; the thread handle and the queued events are
/// leaked. Open a new layer in the child.
#[derive(Debug)]
pub struct LayerHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<WriterState>>,
    /// The process that opened the layer and runs its writer thread.
    owner_pid: u32,
    /// The database, for [`resume`](LayerHandle::resume).
    path: PathBuf,
    /// Nested [`suspend`](LayerHandle::suspend) calls not yet resumed.
    suspends: u32,
    /// What a suspended writer had not yet reported, handed to the next one.
    saved: WriterState,
}

/// What the writer thread carries from batch to batch: drops and losses not yet reported in the
/// log itself.
#[derive(Debug, Default)]
struct WriterState {
    reported_drops: (u64, u64),
    unreported_loss: Option<(u64, String)>,
}

/// A record handed to the writer directly rather than through `tracing`: one `logs` row.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// When it happened; `None` means now.
    pub timestamp: Option<chrono::DateTime<chrono::Utc>>,
    /// Its level (`logs.level`).
    pub level: Level,
    /// Who wrote it (`logs.source`: a logger name, a module path).
    pub source: String,
    /// The message (`logs.message`). A leading `[CODE]` becomes `extra_data.error_code`.
    pub message: String,
    /// `logs.correlation_id`.
    pub correlation_id: Option<String>,
    /// `logs.user_id`.
    pub user_id: Option<String>,
    /// `logs.request_path`.
    pub request_path: Option<String>,
    /// Everything else, stored as the JSON object `logs.extra_data` (omitted when empty).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl LogEntry {
    /// An entry at `level` from `source`, now, with no other fields.
    pub fn new(level: Level, source: impl Into<String>, message: impl Into<String>) -> Self {
        LogEntry {
            timestamp: None,
            level,
            source: source.into(),
            message: message.into(),
            correlation_id: None,
            user_id: None,
            request_path: None,
            extra: serde_json::Map::new(),
        }
    }

    fn into_row(mut self) -> Row {
        if !self.extra.contains_key("error_code") {
            if let Some(code) = leading_code(&self.message) {
                self.extra
                    .insert("error_code".into(), code.as_str().to_string().into());
            }
        }
        let extra_data =
            (!self.extra.is_empty()).then(|| serde_json::Value::Object(self.extra).to_string());
        Row {
            timestamp: self.timestamp.map_or_else(now_text, |t| {
                t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            }),
            level: self.level,
            source: self.source,
            message: self.message,
            correlation_id: self.correlation_id,
            user_id: self.user_id,
            request_path: self.request_path,
            extra_data,
        }
    }
}

#[derive(Debug)]
struct Row {
    timestamp: String,
    level: Level,
    source: String,
    message: String,
    correlation_id: Option<String>,
    user_id: Option<String>,
    request_path: Option<String>,
    extra_data: Option<String>,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Row>,
    closed: bool,
    /// The writer is to close its connection and exit after its batch (see `suspend`).
    suspended: bool,
}

#[derive(Debug, Default)]
struct Counters {
    enqueued: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    dropped_errors: AtomicU64,
    write_failures: AtomicU64,
    lost: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    options: LayerOptions,
    queue: Mutex<Queue>,
    not_empty: Condvar,
    not_full: Condvar,
    /// Events taken off the queue and written or given up on.
    processed: Mutex<u64>,
    progress: Condvar,
    counters: Counters,
    last_error: Mutex<Option<String>>,
}

thread_local! {
    static ON_WRITER_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SqliteLogLayer {
    /// Opens (creating if needed) the `logs.db` at `path`, creates the `logs` table if it is
    /// missing, and starts the writer thread.
    ///
    /// Errors: [`Error::Open`], [`Error::Sqlite`], [`Error::InvalidOption`].
    pub fn open(path: impl AsRef<Path>, options: LayerOptions) -> Result<(Self, LayerHandle)> {
        options.validate()?;
        let path = path.as_ref();
        let conn = open_connection(path, &options)?;
        let shared = Arc::new(Shared {
            options: options.clone(),
            queue: Mutex::new(Queue::default()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            processed: Mutex::new(0),
            progress: Condvar::new(),
            counters: Counters::default(),
            last_error: Mutex::new(None),
        });
        let thread = spawn_writer(&shared, conn, WriterState::default())?;
        Ok((
            SqliteLogLayer {
                shared: Arc::clone(&shared),
                min_level: options.min_level,
            },
            LayerHandle {
                shared,
                thread: Some(thread),
                owner_pid: std::process::id(),
                path: path.to_path_buf(),
                suspends: 0,
                saved: WriterState::default(),
            },
        ))
    }

    /// Queues `entry` under the layer's policy, exactly as an event: ignored below
    /// [`LayerOptions::min_level`]; when the queue is full, dropped at once below ERROR, after up
    /// to [`LayerOptions::error_wait_ms`] at ERROR and above, counted and reported either way.
    /// Returns whether it was queued. May block (ERROR and above on a full queue): call it off any
    /// thread that must not wait.
    pub fn submit(&self, entry: LogEntry) -> bool {
        if entry.level < self.min_level {
            return false;
        }
        self.shared.push(entry.into_row())
    }

    /// Queues `entry` only if there is room right now, never waiting: `Err` gives it back
    /// (counted nowhere) so the caller can [`submit`](Self::submit) it from where waiting is
    /// acceptable. Below [`LayerOptions::min_level`] it is ignored (`Ok`).
    pub fn try_submit(&self, entry: LogEntry) -> std::result::Result<(), Box<LogEntry>> {
        if entry.level < self.min_level {
            return Ok(());
        }
        let mut q = lock(&self.shared.queue);
        if q.closed || q.items.len() >= self.shared.options.queue_capacity {
            return Err(Box::new(entry));
        }
        q.items.push_back(entry.into_row());
        self.shared.counters.enqueued.fetch_add(1, Ordering::SeqCst);
        drop(q);
        self.shared.not_empty.notify_one();
        Ok(())
    }
}

impl LayerHandle {
    /// The counters so far. In a forked child (see the type's documentation): the counters as
    /// they were at the fork, read without locking, `queued` 0 and a `last_error` saying so.
    pub fn stats(&self) -> LayerStats {
        if self.is_owned_by_this_process() {
            return self.shared.stats();
        }
        self.shared.stats_with(Some(FORKED.to_string()), 0)
    }

    /// Waits until every event accepted before this call has been written or given up on, or
    /// until `timeout`; returns whether it got there. False at once in a forked child.
    pub fn flush(&self, timeout: Duration) -> bool {
        if !self.is_owned_by_this_process() {
            return false;
        }
        let target = self.shared.counters.enqueued.load(Ordering::SeqCst);
        self.shared.not_empty.notify_all();
        let deadline = Instant::now() + timeout;
        let mut processed = lock(&self.shared.processed);
        while *processed < target {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            processed = match self.shared.progress.wait_timeout(processed, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    /// Stops accepting events, writes what is queued and stops the writer; returns the final
    /// counters. In a forked child (see the type's documentation) it stops nothing and returns
    /// the counters as they were at the fork, read without locking.
    pub fn shutdown(mut self) -> LayerStats {
        self.stop();
        self.stats()
    }

    /// For `fork()`: stops the writer after the batch it is writing and closes its connection, so
    /// the process forks with no connection of the layer open (an open one, with the SQLite state
    /// shared with it, must not cross a fork: sqlite.org/howtocorrupt.html, 2.6) and no writer
    /// thread inside SQLite. Events keep being queued meanwhile; [`resume`](Self::resume) (in the
    /// parent, after the fork) starts a new writer on them. Nests; a no-op in a forked child.
    pub fn suspend(&mut self) {
        if !self.is_owned_by_this_process() {
            return;
        }
        self.suspends += 1;
        if self.suspends > 1 {
            return;
        }
        lock(&self.shared.queue).suspended = true;
        self.shared.not_empty.notify_all();
        if let Some(t) = self.thread.take() {
            // A panicked writer has nothing to hand over; its counters say what was lost.
            self.saved = t.join().unwrap_or_default();
        }
    }

    /// Undoes one [`suspend`](Self::suspend); the last one reopens the database and starts a
    /// new writer on what was queued meanwhile. Errors (the database cannot be opened) leave the
    /// writer stopped, recorded in [`LayerStats::last_error`]: events are then queued until the
    /// queue is full, and dropped and counted after that.
    pub fn resume(&mut self) -> Result<()> {
        if !self.is_owned_by_this_process() || self.suspends == 0 {
            return Ok(());
        }
        self.suspends -= 1;
        if self.suspends > 0 || self.thread.is_some() {
            return Ok(());
        }
        lock(&self.shared.queue).suspended = false;
        let started = open_connection(&self.path, &self.shared.options)
            .and_then(|conn| spawn_writer(&self.shared, conn, std::mem::take(&mut self.saved)));
        match started {
            Ok(thread) => {
                self.thread = Some(thread);
                Ok(())
            }
            Err(e) => {
                *lock(&self.shared.last_error) = Some(format!("cannot restart the writer: {e}"));
                Err(e)
            }
        }
    }

    /// Whether this process is the one that opened the layer (and runs its writer thread).
    pub fn is_owned_by_this_process(&self) -> bool {
        self.owner_pid == std::process::id()
    }

    /// Closes the queue and joins the writer; returns false (doing nothing but leaking the
    /// thread handle) in a process other than the owner: after a fork the writer thread does not
    /// exist here, and a lock it held at the fork stays locked forever.
    fn stop(&mut self) -> bool {
        if !self.is_owned_by_this_process() {
            if let Some(t) = self.thread.take() {
                std::mem::forget(t);
            }
            return false;
        }
        if self.suspends > 0 {
            // Stopped between a suspend and its resume: write what is queued all the same.
            self.suspends = 1;
            let _ = self.resume();
        }
        lock(&self.shared.queue).closed = true;
        self.shared.not_empty.notify_all();
        self.shared.not_full.notify_all();
        if let Some(t) = self.thread.take() {
            // A panicked writer has nothing left to flush; its counters already say what was lost.
            let _ = t.join();
        }
        true
    }
}

impl Drop for LayerHandle {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl Shared {
    fn stats(&self) -> LayerStats {
        self.stats_with(
            lock(&self.last_error).clone(),
            lock(&self.queue).items.len() as u64,
        )
    }

    /// The counters (read without locking) with `last_error` and `queued` as given.
    fn stats_with(&self, last_error: Option<String>, queued: u64) -> LayerStats {
        let c = &self.counters;
        LayerStats {
            enqueued: c.enqueued.load(Ordering::SeqCst),
            written: c.written.load(Ordering::SeqCst),
            dropped: c.dropped.load(Ordering::SeqCst),
            dropped_errors: c.dropped_errors.load(Ordering::SeqCst),
            write_failures: c.write_failures.load(Ordering::SeqCst),
            lost_after_write_failure: c.lost.load(Ordering::SeqCst),
            last_error,
            queued,
        }
    }

    fn push(&self, row: Row) -> bool {
        let important = row.level >= Level::Error;
        let capacity = self.options.queue_capacity;
        let mut q = lock(&self.queue);
        if important && q.items.len() >= capacity && !q.closed {
            let deadline = Instant::now() + Duration::from_millis(self.options.error_wait_ms);
            while q.items.len() >= capacity && !q.closed {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                q = match self.not_full.wait_timeout(q, deadline - now) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
        }
        if q.closed || q.items.len() >= capacity {
            let counter = if important {
                &self.counters.dropped_errors
            } else {
                &self.counters.dropped
            };
            counter.fetch_add(1, Ordering::SeqCst);
            return false;
        }
        q.items.push_back(row);
        self.counters.enqueued.fetch_add(1, Ordering::SeqCst);
        drop(q);
        self.not_empty.notify_one();
        true
    }

    fn mark_processed(&self, n: u64) {
        *lock(&self.processed) += n;
        self.progress.notify_all();
    }
}

/// Opens the logs.db for the writer: WAL, the busy timeout, the `logs` table.
fn open_connection(path: &Path, options: &LayerOptions) -> Result<Connection> {
    let open_err = |source| Error::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(Duration::from_millis(options.busy_timeout_ms))
        .map_err(open_err)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .map_err(open_err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_err)?;
    create_logs_table(&conn).map_err(Error::sqlite("creating the logs table"))?;
    Ok(conn)
}

fn spawn_writer(
    shared: &Arc<Shared>,
    conn: Connection,
    state: WriterState,
) -> Result<JoinHandle<WriterState>> {
    let writer_shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name("selfmon-log-writer".into())
        .spawn(move || writer_loop(&writer_shared, conn, state))
        .map_err(|e| Error::Task {
            reason: format!("cannot start the log writer thread: {e}"),
            panicked: false,
        })
}

/// Writes batches until the queue is closed and empty; returns early, closing the connection,
/// when suspended (what it had not yet reported goes to the next writer).
fn writer_loop(shared: &Shared, mut conn: Connection, state: WriterState) -> WriterState {
    ON_WRITER_THREAD.with(|f| f.set(true));
    let interval = Duration::from_millis(shared.options.flush_interval_ms.max(1));
    let WriterState {
        mut reported_drops,
        mut unreported_loss,
    } = state;
    loop {
        let (mut batch, closed) = {
            let mut q = lock(&shared.queue);
            if q.items.is_empty() && !q.closed && !q.suspended {
                q = match shared.not_empty.wait_timeout(q, interval) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
            if q.suspended && !q.closed {
                drop(q);
                drop(conn);
                return WriterState {
                    reported_drops,
                    unreported_loss,
                };
            }
            let n = q.items.len().min(shared.options.batch_size);
            let batch: Vec<Row> = q.items.drain(..n).collect();
            (batch, q.closed && q.items.is_empty())
        };
        shared.not_full.notify_all();
        let from_queue = batch.len() as u64;

        // Say in the log itself what was lost, as soon as there is a chance to write it.
        let drops = (
            shared.counters.dropped.load(Ordering::SeqCst),
            shared.counters.dropped_errors.load(Ordering::SeqCst),
        );
        if drops != reported_drops {
            let (d, e) = (drops.0 - reported_drops.0, drops.1 - reported_drops.1);
            batch.push(self_record(
                if e > 0 { Level::Error } else { Level::Warning },
                format!(
                    "[SELFMON-QUEUE-001] tracing layer queue full: dropped {} event(s), {e} of them ERROR or above",
                    d + e
                ),
            ));
        }
        if let Some((lost, err)) = &unreported_loss {
            batch.push(self_record(
                Level::Error,
                format!("[SELFMON-WRITE-001] tracing layer lost {lost} event(s) after write failures: {err}"),
            ));
        }

        if !batch.is_empty() {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match write_batch(&mut conn, &batch) {
                    Ok(()) => {
                        shared
                            .counters
                            .written
                            .fetch_add(from_queue, Ordering::SeqCst);
                        reported_drops = drops;
                        unreported_loss = None;
                        break;
                    }
                    Err(e) if attempt < shared.options.write_attempts => {
                        *lock(&shared.last_error) = Some(e.to_string());
                        std::thread::sleep(Duration::from_millis(20 * u64::from(attempt)));
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        shared
                            .counters
                            .write_failures
                            .fetch_add(1, Ordering::SeqCst);
                        shared.counters.lost.fetch_add(from_queue, Ordering::SeqCst);
                        let total = unreported_loss.as_ref().map_or(0, |(n, _)| *n) + from_queue;
                        unreported_loss = Some((total, msg.clone()));
                        *lock(&shared.last_error) = Some(msg);
                        break;
                    }
                }
            }
        }
        if from_queue > 0 {
            shared.mark_processed(from_queue);
        }
        if closed {
            return WriterState {
                reported_drops,
                unreported_loss,
            };
        }
    }
}

fn self_record(level: Level, message: String) -> Row {
    let code = ErrorCode::extract_all(&message).into_iter().next();
    Row {
        timestamp: now_text(),
        level,
        source: LAYER_SOURCE.to_string(),
        message,
        correlation_id: None,
        user_id: None,
        request_path: None,
        extra_data: code.map(|c| serde_json::json!({ "error_code": c.as_str() }).to_string()),
    }
}

fn write_batch(conn: &mut Connection, batch: &[Row]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(crate::logs_schema::LOGS_INSERT_SQL)?;
        for r in batch {
            stmt.execute(rusqlite::params![
                r.timestamp,
                r.level.as_str(),
                r.source,
                r.message,
                r.correlation_id,
                r.user_id,
                r.request_path,
                r.extra_data,
            ])?;
        }
    }
    tx.commit()
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn level_of(l: &tracing::Level) -> Level {
    match *l {
        tracing::Level::ERROR => Level::Error,
        tracing::Level::WARN => Level::Warning,
        tracing::Level::INFO => Level::Info,
        _ => Level::Debug,
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    correlation_id: Option<String>,
    user_id: Option<String>,
    request_path: Option<String>,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        let text = || match &value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match field.name() {
            "message" => self.message = Some(text()),
            "correlation_id" => self.correlation_id = Some(text()),
            "user_id" => self.user_id = Some(text()),
            "request_path" => self.request_path = Some(text()),
            name => {
                self.extra.insert(name.to_string(), value);
            }
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
}

impl<S: Subscriber> Layer<S> for SqliteLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = level_of(event.metadata().level());
        if level < self.min_level || ON_WRITER_THREAD.with(Cell::get) {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        self.shared.push(
            LogEntry {
                timestamp: None,
                level,
                source: event.metadata().target().to_string(),
                message: f.message.take().unwrap_or_default(),
                correlation_id: f.correlation_id,
                user_id: f.user_id,
                request_path: f.request_path,
                extra: f.extra,
            }
            .into_row(),
        );
    }
}

/// The code of a message that starts with `[CODE]`.
fn leading_code(message: &str) -> Option<ErrorCode> {
    let rest = message.trim_start().strip_prefix('[')?;
    let end = rest.find(']')?;
    ErrorCode::parse(&rest[..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a forked child does with the handle it inherited: the writer thread is the parent's.
    /// Simulated by giving the handle another owner pid (a real fork in a multi-threaded test
    /// binary is unsafe): dropping it must neither close the queue nor join the thread — the
    /// thread keeps writing, which is what the parent's thread does after its child drops its copy.
    #[test]
    fn a_handle_dropped_in_another_process_neither_stops_nor_joins_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        let (layer, mut handle) = SqliteLogLayer::open(&path, LayerOptions::default()).unwrap();
        assert!(handle.is_owned_by_this_process());
        let real_owner = handle.owner_pid;
        handle.owner_pid = real_owner.wrapping_add(1);
        assert!(!handle.is_owned_by_this_process());
        assert!(!handle.flush(Duration::from_secs(60)));
        assert_eq!(handle.stats().last_error.as_deref(), Some(FORKED));
        drop(handle);

        // The queue is still open and the writer thread still writes.
        assert!(layer.submit(LogEntry::new(Level::Error, "app", "after the drop")));
        let shared = Arc::clone(&layer.shared);
        let probe = LayerHandle {
            shared,
            thread: None,
            owner_pid: real_owner,
            path: path.clone(),
            suspends: 0,
            saved: WriterState::default(),
        };
        assert!(probe.flush(Duration::from_secs(60)), "the writer stopped");
        let n: i64 = Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM logs WHERE message = 'after the drop'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
        // Stop the writer (the probe owns no thread handle: close the queue, let it finish).
        std::mem::forget(probe);
        lock(&layer.shared.queue).closed = true;
        layer.shared.not_empty.notify_all();
    }

    /// Suspended (as before a fork), the layer has no connection open and no writer thread, yet
    /// keeps queueing; resumed, a new writer writes what was queued. Nested suspends need as many
    /// resumes.
    #[test]
    fn a_suspended_layer_closes_its_connection_queues_and_writes_after_resume() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        let (layer, mut handle) = SqliteLogLayer::open(&path, LayerOptions::default()).unwrap();
        assert!(layer.submit(LogEntry::new(Level::Error, "app", "before")));
        handle.suspend();
        handle.suspend();
        assert!(handle.thread.is_none(), "the writer still runs");
        assert!(layer.submit(LogEntry::new(Level::Error, "app", "while suspended")));
        handle.resume().unwrap();
        assert!(
            handle.thread.is_none(),
            "one resume of two restarted the writer"
        );
        handle.resume().unwrap();
        assert!(handle.flush(Duration::from_secs(60)));
        let stats = handle.shutdown();
        assert_eq!((stats.enqueued, stats.written), (2, 2), "{stats:?}");
        let n: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM logs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn only_a_well_formed_leading_code_is_taken() {
        assert_eq!(
            leading_code("[GIT-SYNC-001] x").unwrap().as_str(),
            "GIT-SYNC-001"
        );
        assert!(leading_code("x [GIT-SYNC-001]").is_none());
        assert!(leading_code("[GIT-SYNC-01] x").is_none());
        assert!(leading_code("[unclosed").is_none());
    }
}
