//! Scheduling for hosts: when a scan is due, and submitting it to the host's job queue.

use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::config::SelfMonitoringConfig;
use crate::error::Result;
use crate::model::{ScanId, ScanRecord, ScanStatus, ScanTrigger};
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
    /// The future scan last warned about (once each, not at every tick).
    warned_future: Mutex<Option<ScanId>>,
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
            warned_future: Mutex::new(None),
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

    async fn latest_scan(&self) -> Result<Option<ScanRecord>> {
        let page = self
            .store
            .list_scans(PageRequest {
                offset: 0,
                limit: 1,
            })
            .await?;
        Ok(page.items.into_iter().next())
    }

    /// When the next scheduled scan is due (see [`next_scheduled_scan`] for which scans count),
    /// or the last submission plus the cadence while that submission has no scan record yet;
    /// `now` when nothing ever ran. `None` when disabled.
    pub async fn next_scan_at(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        Ok(self.next_scan(now).await?.map(|n| n.at))
    }

    /// [`next_scan_at`](Self::next_scan_at) with the reason (which scan it counts from).
    pub async fn next_scan(&self, now: DateTime<Utc>) -> Result<Option<NextScan>> {
        let config = self.config();
        let Some(mut next) = next_scheduled_scan(self.store.as_ref(), &config, now).await? else {
            return Ok(None);
        };
        if let Some(f) = &next.ignored_future_scan {
            let mut warned = self.warned_future.lock().unwrap_or_else(|p| p.into_inner());
            if warned.as_ref() != Some(&f.scan_id) {
                tracing::warn!(
                    scan_id = %f.scan_id.as_str(),
                    started_at = %f.started_at,
                    %now,
                    "the last scan started in the future (the clock was set back?); the schedule ignores it and counts from the scans before it"
                );
                *warned = Some(f.scan_id.clone());
            }
        }
        let last_submit = *self
            .last_submitted
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // A submission whose scan has not recorded itself yet (queued, or refused before it
        // began: another node held the lease) must not be submitted again at every tick. One
        // made after `now` was stamped by a clock since set back: like a scan started in the
        // future it does not count (the queue still refuses a second job while one is active).
        if let Some(t) =
            last_submit.filter(|t| *t <= now && next.basis.started_at().is_none_or(|s| *t > s))
        {
            let after_submit = t + cadence(&config);
            if after_submit > next.at {
                next.at = after_submit;
                next.basis = DueBasis::Submitted { at: t };
            }
        }
        Ok(Some(next))
    }

    /// Submits a scheduled scan when enabled, due, and none is queued or running.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickOutcome> {
        if let Some(sub) = self.follow_up_run_now(now).await? {
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
    ///
    /// A request made after `now` was stamped by a clock since set back: it counts as made `now`,
    /// or no scan would answer it until the clock caught up and one would be submitted at every
    /// tick meanwhile.
    async fn follow_up_run_now(&self, now: DateTime<Utc>) -> Result<Option<Submission>> {
        let Some(mut requested) = self.pending_run_now() else {
            return Ok(None);
        };
        if requested > now {
            let mut pending = self.requested.lock().unwrap_or_else(|p| p.into_inner());
            if *pending == Some(requested) {
                *pending = Some(now);
            }
            requested = now;
        }
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

/// After a failed scan the next one is due this many minutes after the failure, doubling with
/// each further failure in a row, and never later than the cadence: a failure (the model's API
/// down, a lock held) is retried soon without retrying a lasting one at every tick.
pub const FIRST_RETRY_AFTER_MINUTES: i64 = 1;

/// When the next scheduled scan is due, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextScan {
    /// When.
    pub at: DateTime<Utc>,
    /// What it counts from.
    pub basis: DueBasis,
    /// The latest scan that started after `now` (a clock that ran ahead wrote it, and was then
    /// set back), ignored: counting from its start would stop the schedule until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored_future_scan: Option<FutureScan>,
}

/// A scan whose recorded start is later than the time the schedule was asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FutureScan {
    /// The scan.
    pub scan_id: ScanId,
    /// Its recorded start.
    pub started_at: DateTime<Utc>,
}

/// What [`NextScan::at`] counts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum DueBasis {
    /// No scan that counts ever ran: due now.
    NeverRan,
    /// The last scan that counts (running or succeeded): its start plus the cadence.
    LastScan {
        /// The scan.
        scan_id: ScanId,
        /// Its start.
        started_at: DateTime<Utc>,
    },
    /// The last scan that counts failed: its end plus the retry delay
    /// ([`FIRST_RETRY_AFTER_MINUTES`], doubled per further failure in a row, at most the cadence).
    RetryAfterFailure {
        /// The failed scan.
        scan_id: ScanId,
        /// Its start.
        started_at: DateTime<Utc>,
        /// Failed scans in a row, this one included.
        failures_in_a_row: u32,
    },
    /// A scan submitted here that has not recorded itself yet: the submission plus the cadence.
    Submitted {
        /// When it was submitted.
        at: DateTime<Utc>,
    },
}

impl DueBasis {
    /// The start of the scan it counts from, if it counts from one.
    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        match self {
            DueBasis::LastScan { started_at, .. }
            | DueBasis::RetryAfterFailure { started_at, .. } => Some(*started_at),
            DueBasis::NeverRan | DueBasis::Submitted { .. } => None,
        }
    }
}

fn cadence(config: &SelfMonitoringConfig) -> chrono::Duration {
    chrono::Duration::minutes(i64::from(config.cadence_minutes))
}

/// When the next scheduled scan is due from the scans in `store`; `None` when disabled.
///
/// - Dry runs do not count (they change nothing, so they do not stand for a scan), unless the
///   configuration makes every scan a dry run.
/// - After a running or succeeded scan: its start plus the cadence.
/// - After a failed scan: its end plus [`FIRST_RETRY_AFTER_MINUTES`], doubled for each further
///   failed scan in a row, at most the cadence (a failure is retried soon; a lasting one backs off
///   to the cadence).
/// - A scan that started after `now` does not count (its clock ran ahead and was set back):
///   counting from it would stop the schedule until that time plus the cadence, and treating it
///   as started `now` would move with `now` and never come due. The schedule counts from the
///   scans before it (the scan that comes due records a true start), and
///   [`NextScan::ignored_future_scan`] names it so the host can warn.
/// - `now` when no scan counts.
pub async fn next_scheduled_scan(
    store: &dyn StateStore,
    config: &SelfMonitoringConfig,
    now: DateTime<Utc>,
) -> Result<Option<NextScan>> {
    if !config.enabled {
        return Ok(None);
    }
    const PAGE: u64 = 100;
    let counts = |s: &ScanRecord| config.dry_run || !s.dry_run;
    let mut last: Option<ScanRecord> = None;
    let mut ignored_future_scan: Option<FutureScan> = None;
    let mut failures_in_a_row = 0u32;
    let mut offset = 0;
    'pages: loop {
        let page = store
            .list_scans(PageRequest {
                offset,
                limit: PAGE,
            })
            .await?;
        let n = page.items.len() as u64;
        for s in page.items.into_iter().filter(|s| counts(s)) {
            if s.started_at > now {
                // Newest first: the first one met is the latest.
                ignored_future_scan.get_or_insert(FutureScan {
                    scan_id: s.scan_id,
                    started_at: s.started_at,
                });
                continue;
            }
            if s.status != ScanStatus::Failure {
                if last.is_none() {
                    last = Some(s);
                }
                break 'pages;
            }
            failures_in_a_row += 1;
            if last.is_none() {
                last = Some(s);
            }
            // The delay is at the cadence long before this (2^14 minutes > the longest cadence).
            if failures_in_a_row >= 16 {
                break 'pages;
            }
        }
        if n == 0 || offset + n >= page.total {
            break;
        }
        offset += n;
    }
    let cadence = cadence(config);
    Ok(Some(match last {
        None => NextScan {
            at: now,
            basis: DueBasis::NeverRan,
            ignored_future_scan,
        },
        Some(s) if s.status == ScanStatus::Failure => {
            let shift = failures_in_a_row.saturating_sub(1).min(20);
            let delay = chrono::Duration::minutes(FIRST_RETRY_AFTER_MINUTES << shift).min(cadence);
            NextScan {
                at: s.completed_at.unwrap_or(s.started_at).max(s.started_at) + delay,
                basis: DueBasis::RetryAfterFailure {
                    scan_id: s.scan_id,
                    started_at: s.started_at,
                    failures_in_a_row,
                },
                ignored_future_scan,
            }
        }
        Some(s) => NextScan {
            at: s.started_at + cadence,
            basis: DueBasis::LastScan {
                scan_id: s.scan_id,
                started_at: s.started_at,
            },
            ignored_future_scan,
        },
    }))
}
