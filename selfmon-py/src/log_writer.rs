//! `_LogWriter`: the Rust side of `selfmon.LogHandler`, the SQLite log layer's queue and writer
//! thread fed with Python `logging` records.

use std::sync::Mutex;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use selfmon::Level;
use selfmon_sqlite::{LayerHandle, LayerOptions, LogEntry, SqliteLogLayer};

use crate::errors::{guard, Failure, Kind};

/// Writes `logs` rows into a logs.db on a background thread (see `selfmon.LogHandler`).
///
/// After `fork()` the child inherits this object but not its writer thread, nor the locks a
/// parent thread held at the fork (the queue's, the handle's): in any process but the one that
/// created it, every method returns at once without touching them (`write` and `flush` return
/// false, `stats_json` reports the counters at the fork, `close` returns `None`), and dropping it
/// leaks the parent's writer instead of joining it (`LayerHandle`). `LogHandler` gives the child
/// a new writer (`os.register_at_fork`).
#[pyclass(module = "selfmon._selfmon", frozen, name = "_LogWriter")]
pub struct LogWriter {
    layer: SqliteLogLayer,
    handle: Mutex<Option<LayerHandle>>,
    /// The process that created this writer.
    owner_pid: u32,
}

impl LogWriter {
    fn forked(&self) -> bool {
        self.owner_pid != std::process::id()
    }
}

/// Python's numeric level as a selfmon level (custom levels fall to the one below them).
fn level_of(levelno: i64) -> Level {
    match levelno {
        n if n >= 50 => Level::Critical,
        n if n >= 40 => Level::Error,
        n if n >= 30 => Level::Warning,
        n if n >= 20 => Level::Info,
        _ => Level::Debug,
    }
}

/// `text` as UTF-8, a lone surrogate (what Python gives for a non-UTF-8 file name, argument or
/// environment value: `os.fsdecode(b"\\xe9")`) replaced by U+FFFD: such a record is written,
/// never dropped for its text.
fn lossy(text: &Bound<'_, PyString>) -> String {
    if let Ok(s) = text.extract::<String>() {
        return s;
    }
    // Bytes that were not UTF-8, carried as surrogates (`surrogateescape`, as `os.fsdecode`
    // does): back to those bytes, each bad byte one U+FFFD.
    if let Ok(bytes) = text.call_method1("encode", ("utf-8", "surrogateescape")) {
        if let Ok(bytes) = bytes.cast::<PyBytes>() {
            return String::from_utf8_lossy(bytes.as_bytes()).into_owned();
        }
    }
    text.to_string_lossy().into_owned()
}

fn closed() -> Failure {
    Failure::new(
        Kind::LogSource,
        "closed",
        "the log writer is closed; create a new LogHandler",
    )
}

#[pymethods]
impl LogWriter {
    /// Opens (creating if needed) the logs.db at `path` and starts the writer thread.
    #[new]
    #[pyo3(signature = (path, queue_capacity, batch_size, flush_interval_ms, error_wait_ms))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        queue_capacity: usize,
        batch_size: usize,
        flush_interval_ms: u64,
        error_wait_ms: u64,
    ) -> PyResult<Self> {
        guard(py, || {
            let options = LayerOptions {
                queue_capacity,
                batch_size,
                flush_interval_ms,
                error_wait_ms,
                // The Python handler's own level decides what reaches the writer.
                min_level: Level::Debug,
                ..LayerOptions::default()
            };
            let (layer, handle) = SqliteLogLayer::open(&path, options).map_err(|e| {
                let mut f = Failure::new(Kind::LogSource, "open", String::new());
                f.chain = crate::errors::chain(&e);
                f
            })?;
            Ok(LogWriter {
                layer,
                handle: Mutex::new(Some(handle)),
                owner_pid: std::process::id(),
            })
        })
    }

    /// Queues one record. Never holds the GIL while waiting: a record that finds the queue full
    /// waits (ERROR and above only, up to `error_wait_ms`) with the GIL released. Returns whether
    /// it was queued; a record that was not is counted in `stats()`.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (levelno, source, message, created, correlation_id=None, user_id=None, request_path=None, extra_json=None))]
    fn write(
        &self,
        py: Python<'_>,
        levelno: i64,
        source: &Bound<'_, PyString>,
        message: &Bound<'_, PyString>,
        created: f64,
        correlation_id: Option<&Bound<'_, PyString>>,
        user_id: Option<&Bound<'_, PyString>>,
        request_path: Option<&Bound<'_, PyString>>,
        extra_json: Option<&Bound<'_, PyString>>,
    ) -> PyResult<bool> {
        if self.forked() {
            return Ok(false);
        }
        let extra_json = extra_json.map(lossy);
        let extra = match extra_json
            .as_deref()
            .map(serde_json::from_str::<serde_json::Value>)
        {
            Some(Ok(serde_json::Value::Object(map))) => map,
            _ => serde_json::Map::new(),
        };
        let entry = LogEntry {
            timestamp: timestamp_of(created),
            level: level_of(levelno),
            source: lossy(source),
            message: lossy(message),
            correlation_id: correlation_id.map(lossy),
            user_id: user_id.map(lossy),
            request_path: request_path.map(lossy),
            extra,
        };
        match self.layer.try_submit(entry) {
            Ok(()) => Ok(true),
            Err(entry) => Ok(py.detach(|| self.layer.submit(*entry))),
        }
    }

    /// Waits (GIL released) until every record queued before the call is written, or `timeout`
    /// seconds pass; returns whether it got there.
    fn flush(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        if self.forked() {
            return Ok(false);
        }
        let timeout = Duration::from_secs_f64(timeout.clamp(0.0, 86_400.0));
        py.detach(|| {
            let handle = self.handle.lock().unwrap_or_else(|p| p.into_inner());
            Ok(handle.as_ref().is_some_and(|h| h.flush(timeout)))
        })
    }

    /// The counters as a JSON object (see `selfmon.LogHandler.stats`).
    fn stats_json(&self, py: Python<'_>) -> PyResult<String> {
        guard(py, || {
            if self.forked() {
                return Err(Failure::new(
                    Kind::LogSource,
                    "forked",
                    format!(
                        "this log writer was created in process {} before a fork; this is \
                         process {}: create a new LogHandler here",
                        self.owner_pid,
                        std::process::id()
                    ),
                ));
            }
            let handle = self.handle.lock().unwrap_or_else(|p| p.into_inner());
            let stats = handle.as_ref().ok_or_else(closed)?.stats();
            serde_json::to_string(&stats)
                .map_err(|e| Failure::new(Kind::Internal, "serialise", e.to_string()))
        })
    }

    /// Before `fork()` (`LogHandler`'s `os.register_at_fork(before=...)`): stops the writer after
    /// its batch and closes its connection, so no connection of the parent's crosses the fork and
    /// no writer thread is inside SQLite (holding SQLite's own locks) at the fork. Records keep
    /// being queued meanwhile.
    fn suspend_for_fork(&self, py: Python<'_>) {
        if self.forked() {
            return;
        }
        py.detach(|| {
            let mut handle = self.handle.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(h) = handle.as_mut() {
                h.suspend();
            }
        });
    }

    /// After `fork()`, in the parent: reopens the database and starts a writer on what was
    /// queued meanwhile. Returns whether the writer runs (a failure is in `stats()`'s `last_error`).
    fn resume_after_fork(&self, py: Python<'_>) -> bool {
        if self.forked() {
            return false;
        }
        py.detach(|| {
            let mut handle = self.handle.lock().unwrap_or_else(|p| p.into_inner());
            handle.as_mut().is_some_and(|h| h.resume().is_ok())
        })
    }

    /// Writes what is queued, stops the writer thread and returns the final counters as JSON.
    /// Idempotent: later calls return `None`.
    fn close(&self, py: Python<'_>) -> PyResult<Option<String>> {
        if self.forked() {
            return Ok(None);
        }
        let handle = self.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(handle) = handle else {
            return Ok(None);
        };
        let stats = py.detach(|| handle.shutdown());
        Ok(serde_json::to_string(&stats).ok())
    }
}

/// `logging.LogRecord.created` (seconds since the epoch) as a UTC time; `None` (now) when absurd.
fn timestamp_of(created: f64) -> Option<chrono::DateTime<chrono::Utc>> {
    if !created.is_finite() || created < 0.0 {
        return None;
    }
    let secs = created.trunc() as i64;
    let nanos = ((created - created.trunc()) * 1e9) as u32;
    chrono::DateTime::from_timestamp(secs, nanos.min(999_999_999))
}
