//! `_Monitor`: the engine behind `selfmon.SelfMonitor`. Results cross as JSON text, which the
//! Python layer turns into typed objects; every blocking call releases the GIL.

use std::mem::ManuallyDrop;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use selfmon::engine::SelfMonitor;
use selfmon::{
    CancelToken, IssueFilter, PageRequest, ScanEvent, ScanId, ScanOptions, ScanRecord, ScanReport,
    ScanStatus, ScanTrigger, StateStore,
};
use serde::Serialize;
use tokio::runtime::Runtime;
use tokio::sync::broadcast;

use crate::config::{self, Source};
use crate::errors::{guard, Failure, Kind};
use crate::runtime;

/// How often a waiting scan looks at Python's pending signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The engine, its store, and the scan this object is running, if any.
///
/// **Fork**: the object belongs to the process that created it. A forked child inherits it, but
/// not the runtime threads that ran its tasks, and it must not use the inherited SQLite connection
/// (sqlite.org/howtocorrupt.html, section 2.6) nor a PostgreSQL pool's sockets, which the parent
/// still uses; and a lock a parent thread held at the fork stays locked in the child. So in any
/// other process every method raises `selfmon.Error` (`.kind == "forked"`) at once, touching nothing
/// (`cancel` and `is_scanning` return false), and dropping the object there leaks the engine
/// instead of closing what the parent still uses. Create the monitor after forking.
#[pyclass(module = "selfmon._selfmon", frozen, name = "_Monitor")]
pub struct Monitor {
    inner: ManuallyDrop<Inner>,
    /// The process that created the monitor.
    owner_pid: u32,
}

struct Inner {
    monitor: Arc<SelfMonitor>,
    store: Arc<dyn StateStore>,
    /// The scans started here that are running, by a per-object number, with their tokens.
    running: Mutex<Vec<(u64, CancelToken)>>,
    next_scan_number: std::sync::atomic::AtomicU64,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if !self.forked() {
            // SAFETY: dropped once, here, and never used again.
            unsafe { ManuallyDrop::drop(&mut self.inner) }
        }
    }
}

fn serialise<T: Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(|e| {
        Failure::new(
            Kind::Internal,
            "serialise",
            format!("cannot serialise a result: {e}"),
        )
    })
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, Failure> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            Failure::new(
                Kind::Other,
                "argument",
                format!(
                    "invalid time {}: {e}; pass an aware datetime",
                    selfmon::text::quoted(text)
                ),
            )
        })
}

/// What ended the wait for a scan other than the scan itself.
enum Interruption {
    /// `cancel()` was called.
    Cancelled,
    /// Python raised (Ctrl-C's KeyboardInterrupt, or the progress callback).
    Raised(PyErr),
}

impl Monitor {
    fn new(built: config::Built) -> Result<Self, Failure> {
        // Starts the runtime now, so a host without threads to spare learns it at construction.
        runtime::get()?;
        Ok(Monitor {
            inner: ManuallyDrop::new(Inner {
                monitor: built.monitor,
                store: built.store,
                running: Mutex::new(Vec::new()),
                next_scan_number: std::sync::atomic::AtomicU64::new(0),
            }),
            owner_pid: std::process::id(),
        })
    }

    /// Whether this is a process forked from the one that created the monitor.
    fn forked(&self) -> bool {
        self.owner_pid != std::process::id()
    }

    /// Refuses use in a forked child (see the type's documentation).
    fn check_process(&self) -> Result<(), Failure> {
        if !self.forked() {
            return Ok(());
        }
        Err(Failure::new(
            Kind::Other,
            "forked",
            format!(
                "this SelfMonitor was created in process {} before a fork; this is process {}: \
                 create the SelfMonitor after forking (it holds database connections and threads \
                 that cannot be shared with a forked child)",
                self.owner_pid,
                std::process::id()
            ),
        ))
    }

    /// The module's runtime for this process (never the one of the process that forked it).
    fn runtime(&self) -> Result<Arc<Runtime>, Failure> {
        self.check_process()?;
        runtime::get()
    }

    fn block_on<T>(
        &self,
        py: Python<'_>,
        fut: impl std::future::Future<Output = Result<T, Failure>> + Send,
    ) -> PyResult<T>
    where
        T: Send,
    {
        let rt = guard(py, || self.runtime())?;
        guard(py, || py.detach(|| rt.block_on(fut)))
    }

    async fn latest_scan(store: &dyn StateStore) -> Result<Option<ScanRecord>, Failure> {
        let page = store
            .list_scans(PageRequest {
                offset: 0,
                limit: 1,
            })
            .await?;
        Ok(page.items.into_iter().next())
    }
}

#[pymethods]
impl Monitor {
    /// Builds a monitor from a configuration file.
    #[staticmethod]
    fn from_path(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        guard(py, || {
            py.detach(|| Monitor::new(config::build(Source::File(&path))?))
        })
    }

    /// Builds a monitor from a JSON document (a Python dict, serialised).
    #[staticmethod]
    fn from_json(py: Python<'_>, text: String) -> PyResult<Self> {
        guard(py, || {
            py.detach(|| Monitor::new(config::build(Source::Json(&text))?))
        })
    }

    /// Runs one scan, waiting with the GIL released. `on_event(json)` is called (with the GIL) for
    /// each progress event; if it raises, or Ctrl-C raises KeyboardInterrupt, or `cancel()` is
    /// called, the scan is cancelled and this raises once it has stopped. Returns the report JSON.
    #[pyo3(signature = (dry_run, trigger, on_event=None))]
    fn scan(
        &self,
        py: Python<'_>,
        dry_run: bool,
        trigger: &str,
        on_event: Option<Py<PyAny>>,
    ) -> PyResult<String> {
        let trigger = match trigger {
            "manual" => ScanTrigger::Manual,
            "scheduled" => ScanTrigger::Scheduled,
            other => {
                return Err(Failure::new(
                    Kind::Other,
                    "argument",
                    format!(
                        "trigger must be `manual` or `scheduled`, not {}",
                        selfmon::text::quoted(other)
                    ),
                )
                .into_pyerr(py))
            }
        };
        let rt = guard(py, || self.runtime())?;
        let token = CancelToken::new();
        let number = self
            .inner
            .next_scan_number
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((number, token.clone()));
        let monitor = Arc::clone(&self.inner.monitor);
        let mut events = monitor.subscribe();
        let options = ScanOptions {
            trigger,
            dry_run,
            ..ScanOptions::default()
        };
        let outcome = py.detach(|| {
            let outcome = rt.block_on(async move {
                let scan_token = token.clone();
                let mut task =
                    tokio::spawn(
                        async move { monitor.scan_with_cancel(options, &scan_token).await },
                    );
                let mut interruption: Option<Interruption> = None;
                let mut events_open = on_event.is_some();
                let mut python_alive = true;
                let mut ticker = tokio::time::interval(SIGNAL_POLL);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let joined = loop {
                    tokio::select! {
                        joined = &mut task => break joined,
                        () = token.cancelled(), if interruption.is_none() => {
                            // The engine records the scan as interrupted, stops the runner's
                            // process group and releases the lease; keep waiting for that.
                            interruption = Some(Interruption::Cancelled);
                        }
                        received = events.recv(), if events_open => match received {
                            Ok(event) => {
                                if let (Some(cb), None) = (&on_event, &interruption) {
                                    if let Err(e) = deliver(cb, &event) {
                                        interruption = Some(Interruption::Raised(e));
                                        token.cancel();
                                    }
                                }
                            }
                            Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => events_open = false,
                        },
                        _ = ticker.tick(), if python_alive => {
                            // Never `Python::attach` once the interpreter is finalizing (the host
                            // exited while a daemon thread, the built-in scheduler's, scans): PyO3
                            // panics there. The scan is cancelled instead: nobody waits for it.
                            let Some(signalled) = Python::try_attach(|py| py.check_signals()) else {
                                python_alive = false;
                                token.cancel();
                                continue;
                            };
                            if let Err(e) = signalled {
                                if interruption.is_none() {
                                    interruption = Some(Interruption::Raised(e));
                                    token.cancel();
                                } else {
                                    // A second Ctrl-C while the scan winds down: stop waiting.
                                    // Dropping the scan still stops the runner and releases the
                                    // lease, on a background task of the runtime.
                                    task.abort();
                                }
                            }
                        }
                    }
                };
                // Events sent before the scan returned are still delivered, in order.
                if let (Some(cb), None) = (&on_event, &interruption) {
                    while let Ok(event) = events.try_recv() {
                        if let Err(e) = deliver(cb, &event) {
                            interruption = Some(Interruption::Raised(e));
                            break;
                        }
                    }
                }
                (joined, interruption, python_alive)
            });
            let (joined, interruption, python_alive) = outcome;
            if !python_alive {
                // The interpreter finalized under this (daemon) thread: returning into Python
                // would end the thread inside Rust frames (CPython's `pthread_exit` on a GIL
                // request during finalization; an abort). The scan is over (cancelled): wait
                // here for the process to exit.
                loop {
                    std::thread::park();
                }
            }
            (joined, interruption)
        });
        self.inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(n, _)| *n != number);
        let (joined, interruption) = outcome;
        match (joined, interruption) {
            (_, Some(Interruption::Raised(e))) => Err(e),
            // A scan that finished before it saw the cancellation keeps its result.
            (Ok(Ok(report)), _) => guard(py, || serialise::<ScanReport>(&report)),
            (Ok(Err(e)), _) => Err(Failure::from(e).into_pyerr(py)),
            (Err(_), Some(Interruption::Cancelled)) => {
                Err(Failure::from(selfmon::Error::Cancelled).into_pyerr(py))
            }

            (Err(join), None) if join.is_panic() => {
                Err(Failure::panic(join.into_panic().as_ref()).into_pyerr(py))
            }
            (Err(_), None) => Err(Failure::from(selfmon::Error::Cancelled).into_pyerr(py)),
        }
    }

    /// Asks every scan this object is running to stop; returns whether one was running.
    fn cancel(&self) -> bool {
        if self.forked() {
            return false;
        }
        let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        running.iter().for_each(|(_, token)| token.cancel());
        !running.is_empty()
    }

    /// Whether a scan started by this object is running.
    fn is_scanning(&self) -> bool {
        if self.forked() {
            return false;
        }
        !self
            .inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// When the next scheduled scan is due (RFC 3339), `None` when disabled, `now` when none ever
    /// ran; the same rule as the Rust scheduler's (`selfmon::schedule::next_scheduled_scan`):
    /// dry runs do not count, a failed scan is retried after a short delay.
    fn next_scan_at(&self, py: Python<'_>, now: &str) -> PyResult<Option<String>> {
        guard(py, || self.check_process())?;
        let now = guard(py, || parse_time(now))?;
        let store = Arc::clone(&self.inner.store);
        let config = self.inner.monitor.config();
        self.block_on(py, async move {
            let next = selfmon::schedule::next_scheduled_scan(store.as_ref(), &config, now).await?;
            Ok(next.map(|n| n.at.to_rfc3339()))
        })
    }

    /// `{"state": "idle"|"running", "running_here": bool, "last_scan": record|null,
    /// "enabled": bool, "cadence_minutes": int}` as JSON. Running means a scan of this object, or
    /// the latest recorded scan is still RUNNING (another process).
    fn state_json(&self, py: Python<'_>) -> PyResult<String> {
        guard(py, || self.check_process())?;
        let here = self.is_scanning();
        let store = Arc::clone(&self.inner.store);
        let config = self.inner.monitor.config();
        self.block_on(py, async move {
            let last = Monitor::latest_scan(store.as_ref()).await?;
            let running = here
                || last
                    .as_ref()
                    .is_some_and(|s| s.status == ScanStatus::Running);
            serialise(&serde_json::json!({
                "state": if running { "running" } else { "idle" },
                "running_here": here,
                "last_scan": last,
                "enabled": config.enabled,
                "cadence_minutes": config.cadence_minutes,
            }))
        })
    }

    /// Scans and filed issues, newest first, `scans`/`issues` per page, page `page` (from 0):
    /// `{"scans": {"items", "total"}, "issues": {"items", "total"}, "backlog": [entry]}` as JSON,
    /// the shape of `selfmon history --json` (the backlog: deferred findings, unpaged).
    fn history_json(&self, py: Python<'_>, scans: u64, issues: u64, page: u64) -> PyResult<String> {
        let store = Arc::clone(&self.inner.store);
        self.block_on(py, async move {
            let scans = store
                .list_scans(PageRequest {
                    offset: page.saturating_mul(scans),
                    limit: scans,
                })
                .await?;
            let issues = store
                .list_issues(
                    &IssueFilter::default(),
                    PageRequest {
                        offset: page.saturating_mul(issues),
                        limit: issues,
                    },
                )
                .await?;
            let backlog = store.open_backlog().await?;
            serialise(&serde_json::json!({ "scans": scans, "issues": issues, "backlog": backlog }))
        })
    }

    /// The stored report of one scan (the CLI's `selfmon history show --json`), as JSON; `None`
    /// when the store has no scan with this id.
    fn scan_report_json(&self, py: Python<'_>, scan_id: String) -> PyResult<Option<String>> {
        let store = Arc::clone(&self.inner.store);
        self.block_on(py, async move {
            match store.scan_report(&ScanId(scan_id)).await? {
                Some(report) => serialise(&report).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The configuration in effect, as JSON (`SelfMonitoringConfig`).
    fn config_json(&self, py: Python<'_>) -> PyResult<String> {
        guard(py, || {
            self.check_process()?;
            Ok(self.inner.monitor.config().to_json())
        })
    }
}

/// Hands one event (as JSON) to the Python callback; `Ok` without calling it once the
/// interpreter is finalizing (the signal poll then cancels the scan).
fn deliver(cb: &Py<PyAny>, event: &ScanEvent) -> PyResult<()> {
    let json = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_string());
    Python::try_attach(|py| cb.call1(py, (json,)).map(|_| ())).unwrap_or(Ok(()))
}
