//! `_Monitor`: the engine behind `selfmon.SelfMonitor`. Results cross as JSON text, which the
//! Python layer turns into typed objects; every blocking call releases the GIL.

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
#[pyclass(module = "selfmon._selfmon", frozen, name = "_Monitor")]
pub struct Monitor {
    monitor: Arc<SelfMonitor>,
    store: Arc<dyn StateStore>,
    runtime: Arc<Runtime>,
    /// The scans started here that are running, by a per-object number, with their tokens.
    running: Mutex<Vec<(u64, CancelToken)>>,
    next_scan_number: std::sync::atomic::AtomicU64,
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
        Ok(Monitor {
            monitor: built.monitor,
            store: built.store,
            runtime: runtime::get()?,
            running: Mutex::new(Vec::new()),
            next_scan_number: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn block_on<T>(
        &self,
        py: Python<'_>,
        fut: impl std::future::Future<Output = Result<T, Failure>> + Send,
    ) -> PyResult<T>
    where
        T: Send,
    {
        let rt = Arc::clone(&self.runtime);
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
        let token = CancelToken::new();
        let number = self
            .next_scan_number
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((number, token.clone()));
        let monitor = Arc::clone(&self.monitor);
        let mut events = monitor.subscribe();
        let options = ScanOptions {
            trigger,
            dry_run,
            ..ScanOptions::default()
        };
        let rt = Arc::clone(&self.runtime);
        let outcome = py.detach(|| {
            rt.block_on(async move {
                let scan_token = token.clone();
                let mut task =
                    tokio::spawn(
                        async move { monitor.scan_with_cancel(options, &scan_token).await },
                    );
                let mut interruption: Option<Interruption> = None;
                let mut events_open = on_event.is_some();
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
                        _ = ticker.tick() => {
                            let signalled = Python::attach(|py| py.check_signals());
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
                (joined, interruption)
            })
        });
        self.running
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
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.iter().for_each(|(_, token)| token.cancel());
        !running.is_empty()
    }

    /// Whether a scan started by this object is running.
    fn is_scanning(&self) -> bool {
        !self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// When the next scheduled scan is due (RFC 3339), `None` when disabled, `now` when none ever
    /// ran; the same rule as the Rust scheduler's (`selfmon::schedule::next_scheduled_scan`):
    /// dry runs do not count, a failed scan is retried after a short delay.
    fn next_scan_at(&self, py: Python<'_>, now: &str) -> PyResult<Option<String>> {
        let now = guard(py, || parse_time(now))?;
        let store = Arc::clone(&self.store);
        let config = self.monitor.config();
        self.block_on(py, async move {
            let next = selfmon::schedule::next_scheduled_scan(store.as_ref(), &config, now).await?;
            Ok(next.map(|n| n.at.to_rfc3339()))
        })
    }

    /// `{"state": "idle"|"running", "running_here": bool, "last_scan": record|null,
    /// "enabled": bool, "cadence_minutes": int}` as JSON. Running means a scan of this object, or
    /// the latest recorded scan is still RUNNING (another process).
    fn state_json(&self, py: Python<'_>) -> PyResult<String> {
        let here = self.is_scanning();
        let store = Arc::clone(&self.store);
        let config = self.monitor.config();
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
        let store = Arc::clone(&self.store);
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
        let store = Arc::clone(&self.store);
        self.block_on(py, async move {
            match store.scan_report(&ScanId(scan_id)).await? {
                Some(report) => serialise(&report).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The configuration in effect, as JSON (`SelfMonitoringConfig`).
    fn config_json(&self) -> String {
        self.monitor.config().to_json()
    }
}

/// Hands one event (as JSON) to the Python callback.
fn deliver(cb: &Py<PyAny>, event: &ScanEvent) -> PyResult<()> {
    let json = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_string());
    Python::attach(|py| cb.call1(py, (json,)).map(|_| ()))
}
