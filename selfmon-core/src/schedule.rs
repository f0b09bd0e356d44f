//! Scheduling for hosts: when a scan is due, and submitting it to the host's job queue.

use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::config::SelfMonitoringConfig;
use crate::error::Result;
use crate::model::{ScanStatus, ScanTrigger};
use crate::traits::{JobKind, JobQueue, JobSpec, JobStatus, PageRequest, StateStore, Submission};

/// What [`SelfMonitoringService::tick`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tick", rename_all = "snake_case")]
pub enum TickOutcome {
    /// Self-monitoring is disabled.
    Disabled,
    /// Not due yet.
    NotDue {
        /// When it will be.
        next_at: DateTime<Utc>,
    },
    /// Due, and a job was submitted (or one was already active).
    Due(Submission),
    /// A [`run_now`](SelfMonitoringService::run_now) request that no scan has answered yet
    /// (the scan it asked for met another scan, here or on another node, that had started
    /// before the request) was submitted again.
    RunNow(Submission),
}

/// The scheduler state a UI shows, read from the job queue and the store, never guessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerState {
    /// No scan queued or running.
    Idle,
    /// A scan job is waiting.
    Queued,
    /// A scan is running.
    Running,
}

/// What a host needs to schedule scans: due-ness per cadence, and single submission to its queue.
/// Holds no thread of its own; the host calls [`tick`](Self::tick) from its timer (or uses
/// [`spawn_ticker`](Self::spawn_ticker)).
///
/// A [`run_now`](Self::run_now) request is kept until a scan that *started after it* has finished
/// (here or on another node sharing the store): a request that meets a scan already running —
/// which may have read the log before the records the caller wants scanned were written — is
/// answered by another scan after that one, submitted by a later [`tick`](Self::tick). Requests
/// made while one is pending coalesce into it. The comparison uses the scans' `started_at`, so
/// nodes sharing a store should keep their clocks in sync (NTP): a node whose clock runs ahead
/// could answer a request with a scan that started before it.
pub struct SelfMonitoringService {
    config: Arc<RwLock<SelfMonitoringConfig>>,
    queue: Arc<dyn JobQueue>,
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    last_submitted: Mutex<Option<DateTime<Utc>>>,
    /// The latest run-now request no finished scan has answered yet.
    requested: Mutex<Option<DateTime<Utc>>>,
}

impl std::fmt::Debug for SelfMonitoringService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfMonitoringService")
            .finish_non_exhaustive()
    }
}

impl SelfMonitoringService {
    /// A service reading the shared configuration (see [`crate::engine::SelfMonitor::config_handle`]).
    pub fn new(
        config: Arc<RwLock<SelfMonitoringConfig>>,
        queue: Arc<dyn JobQueue>,
        store: Arc<dyn StateStore>,
    ) -> Self {
        SelfMonitoringService {
            config,
            queue,
            store,
            clock: Arc::new(SystemClock),
            last_submitted: Mutex::new(None),
            requested: Mutex::new(None),
        }
    }

    /// The same service, reading time from `clock` when [`run_now`](Self::run_now) records a
    /// request (tests use a [`FakeClock`](crate::testing::FakeClock)).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// When the latest [`run_now`](Self::run_now) request that no finished scan has answered yet
    /// was made; `None` when there is none. A host that ticks rarely can tick sooner while this
    /// is `Some`.
    pub fn pending_run_now(&self) -> Option<DateTime<Utc>> {
        *self.requested.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn config(&self) -> SelfMonitoringConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn job(&self, trigger: ScanTrigger) -> JobSpec {
        JobSpec {
            kind: JobKind::SelfMonitoring,
            model: self.config().model,
            trigger,
            payload: serde_json::Value::Null,
        }
    }

    async fn latest_scan(&self) -> Result<Option<crate::model::ScanRecord>> {
        let page = self
            .store
            .list_scans(PageRequest {
                offset: 0,
                limit: 1,
            })
            .await?;
        Ok(page.items.into_iter().next())
    }

    /// When the next scheduled scan is due: the later of the last scan's start and the last
    /// submission, plus the cadence; `now` when nothing ever ran. `None` when disabled.
    pub async fn next_scan_at(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let config = self.config();
        if !config.enabled {
            return Ok(None);
        }
        let last_scan = self.latest_scan().await?.map(|s| s.started_at);
        let last_submit = *self
            .last_submitted
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let last = last_scan.max(last_submit);
        Ok(Some(match last {
            None => now,
            Some(t) => t + chrono::Duration::minutes(i64::from(config.cadence_minutes)),
        }))
    }

    /// Submits a scheduled scan when enabled, due, and none is queued or running.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickOutcome> {
        if let Some(sub) = self.follow_up_run_now().await? {
            return Ok(TickOutcome::RunNow(sub));
        }
        let Some(next_at) = self.next_scan_at(now).await? else {
            return Ok(TickOutcome::Disabled);
        };
        if now < next_at {
            return Ok(TickOutcome::NotDue { next_at });
        }
        let sub = self
            .queue
            .submit_if_idle(self.job(ScanTrigger::Scheduled))
            .await?;
        if matches!(sub, Submission::Submitted { .. }) {
            *self
                .last_submitted
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(now);
        }
        Ok(TickOutcome::Due(sub))
    }

    /// Submits a manual scan now (even when disabled), unless one is queued or running.
    ///
    /// The request is kept until a scan that started after it has finished: when the answer is
    /// [`Submission::AlreadyActive`] with a running scan (or the submitted scan finds another
    /// node's scan holding the lease), a later [`tick`](Self::tick) submits another scan once
    /// this queue is idle (see the type's documentation).
    pub async fn run_now(&self) -> Result<Submission> {
        let now = self.clock.now();
        {
            let mut requested = self.requested.lock().unwrap_or_else(|p| p.into_inner());
            // The latest request counts: a scan that starts after it answers every earlier one.
            *requested = Some(requested.map_or(now, |t| t.max(now)));
        }
        self.queue
            .submit_if_idle(self.job(ScanTrigger::Manual))
            .await
    }

    /// Answers a pending run-now request: forgets it when a scan that started after it has
    /// finished (any status; a dry run counts only when the configuration makes every scan one),
    /// else submits a manual scan when this queue is idle. Returns the submission, if one was made.
    async fn follow_up_run_now(&self) -> Result<Option<Submission>> {
        let Some(requested) = self.pending_run_now() else {
            return Ok(None);
        };
        let page = self
            .store
            .list_scans(PageRequest {
                offset: 0,
                limit: 20,
            })
            .await?;
        // A dry run answers only when this service's own scans are dry runs (configured so):
        // otherwise it read without consuming, and the request asked for a real scan.
        let dry_runs_answer = self.config().dry_run;
        let answered = page.items.iter().any(|s| {
            (dry_runs_answer || !s.dry_run)
                && s.started_at >= requested
                && s.status != ScanStatus::Running
        });
        if answered {
            let mut pending = self.requested.lock().unwrap_or_else(|p| p.into_inner());
            if *pending == Some(requested) {
                *pending = None;
            }
            return Ok(None);
        }
        if self
            .queue
            .active_job(&JobKind::SelfMonitoring)
            .await?
            .is_some()
        {
            // The scan queued or running here answers it, or the next tick submits another.
            return Ok(None);
        }
        let sub = self
            .queue
            .submit_if_idle(self.job(ScanTrigger::Manual))
            .await?;
        Ok(Some(sub))
    }

    /// Idle, queued or running, from the job queue (and the store for scans run outside it).
    pub async fn state(&self) -> Result<SchedulerState> {
        if let Some((_, status)) = self.queue.active_job(&JobKind::SelfMonitoring).await? {
            return Ok(match status {
                JobStatus::Queued => SchedulerState::Queued,
                _ => SchedulerState::Running,
            });
        }
        Ok(match self.latest_scan().await? {
            Some(s) if s.status == ScanStatus::Running => SchedulerState::Running,
            _ => SchedulerState::Idle,
        })
    }

    /// Spawns a tokio task that calls [`tick`](Self::tick) every `period` until the handle is
    /// aborted. Errors are logged and the loop goes on.
    pub fn spawn_ticker(
        self: Arc<Self>,
        period: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if let Err(e) = self.tick(Utc::now()).await {
                    tracing::warn!(error = %e, "self-monitoring tick failed");
                }
            }
        })
    }
}
