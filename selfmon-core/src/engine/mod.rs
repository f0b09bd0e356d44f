//! The scan engine: [`SelfMonitor`] wires the traits and runs one scan.
//!
//! A scan takes the single-flight lease, closes scans a crashed process left running, and then
//! runs four stages, each a function from a plain input to a plain output in its own file:
//!
//! 1. `read`: from the cursor, page by page, every new record into a digest, templated by what
//!    earlier scans learned and the templates of the known issues;
//! 2. `triage`: the known issues, and which signatures they explain (counted, not
//!    analysed again);
//! 3. `analyse`: the prompt for the rest, the runner, validation of its answer;
//! 4. `act`: deduplicate, spend the budgets (the rest waits in the backlog), file through
//!    the outbox, comment, reopen.
//!
//! Everything that leaves the process goes through one `egress` stage: redaction, and
//! the dry run (which writes nothing and commits nothing). The cursor advances only on success,
//! and only to the highest id the engine itself read. Any failure records the scan as failed
//! with the reason and returns a typed error; the next scan starts from the same cursor.

mod act;
mod analyse;
mod egress;
mod read;
mod triage;

pub use crate::prompt::fence;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::broadcast;
use tracing::Instrument;

use self::act::{Act, Budget};
use self::analyse::PromptInput;
use self::egress::{stored_error, stored_report, Egress};
use self::read::ReadInput;
use self::triage::TriageInput;
use crate::cancel::CancelToken;
use crate::clock::{Clock, SystemClock};
use crate::config::SelfMonitoringConfig;
use crate::dedup::ThreeTierDeduplicator;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::lease::{FencedTracker, HolderState, LeaseTerm};
use crate::model::{
    ClaudeModel, IssueRef, ScanEffects, ScanId, ScanRecord, ScanReport, ScanStatus, ScanTrigger,
    ScanWarning, SignatureFate,
};
use crate::prompt;
use crate::redact::{RedactedSignature, Redactor};
use crate::traits::{
    AnalysisRunner, Deduplicator, IssueTracker, Lease, LeaseHolder, LeaseOutcome, LeaseRenewal,
    LogSource, StateStore, TemplateMemory,
};

/// How many scans in a row the analysis runner may give no answer ([`Error::NoAnswer`]: a
/// refusal, an unusable answer, a timeout) for the same records before the scan judges them with
/// the offline rules ([`crate::offline::OfflineRunner`]) instead: the records are then triaged and
/// the cursor moves on, so one record the model refuses cannot stall selfmon for good, and its
/// analysis is not paid for again and again. The earlier failures are ordinary failed scans
/// (cursor kept), so a failure that passes by itself (one timeout) costs nothing but a retry.
/// Failures that are not about the records (the runner's binary is missing, bad credentials, a
/// rate limit) are not counted and never lead to the fallback.
pub const ANALYSIS_ATTEMPTS: u32 = 3;

/// Progress of a scan, broadcast to subscribers (see [`SelfMonitor::subscribe`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ScanEvent {
    /// The scan took the lease and recorded itself as running.
    Started {
        /// Scan id.
        scan_id: ScanId,
        /// The cursor it starts from.
        cursor: i64,
    },
    /// The log was recreated (its highest id is below the cursor): reading restarts from 0.
    CursorReset {
        /// Scan id.
        scan_id: ScanId,
        /// The stale cursor.
        previous_cursor: i64,
    },
    /// Records read so far.
    RecordsRead {
        /// Scan id.
        scan_id: ScanId,
        /// Total so far.
        records: u64,
    },
    /// The digest is built.
    Digested {
        /// Scan id.
        scan_id: ScanId,
        /// Signatures.
        signatures: u64,
        /// Signatures no known issue explains.
        novel: u64,
    },
    /// Analysis returned.
    Analysed {
        /// Scan id.
        scan_id: ScanId,
        /// Valid findings.
        findings: u64,
        /// Rejected findings.
        rejected: u64,
    },
    /// An issue was filed.
    IssueFiled {
        /// Scan id.
        scan_id: ScanId,
        /// The issue.
        issue: IssueRef,
    },
    /// The scan finished.
    Finished {
        /// The final record.
        record: Box<ScanRecord>,
    },
}

/// Options of one scan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanOptions {
    /// Why it runs.
    pub trigger: ScanTrigger,
    /// A model for this scan only (a job carries its model); `None` uses the configuration's.
    pub model: Option<ClaudeModel>,
    /// Force a dry run (nothing filed) regardless of the configuration.
    pub dry_run: bool,
}

/// Builds a [`SelfMonitor`].
#[derive(Default)]
pub struct SelfMonitorBuilder {
    config: Option<SelfMonitoringConfig>,
    log_source: Option<Arc<dyn LogSource>>,
    runner: Option<Arc<dyn AnalysisRunner>>,
    tracker: Option<Arc<dyn IssueTracker>>,
    dedup: Option<Arc<dyn Deduplicator>>,
    store: Option<Arc<dyn StateStore>>,
    template_memory: Option<Arc<dyn TemplateMemory>>,
    clock: Option<Arc<dyn Clock>>,
    owner: Option<String>,
    analysis_timeout: Option<Duration>,
}

impl SelfMonitorBuilder {
    /// The configuration (default: [`SelfMonitoringConfig::default`]).
    pub fn config(mut self, config: SelfMonitoringConfig) -> Self {
        self.config = Some(config);
        self
    }
    /// The log source (required).
    pub fn log_source(mut self, s: Arc<dyn LogSource>) -> Self {
        self.log_source = Some(s);
        self
    }
    /// The analysis runner (required).
    pub fn runner(mut self, r: Arc<dyn AnalysisRunner>) -> Self {
        self.runner = Some(r);
        self
    }
    /// The issue tracker (required).
    pub fn tracker(mut self, t: Arc<dyn IssueTracker>) -> Self {
        self.tracker = Some(t);
        self
    }
    /// The deduplicator (default: [`ThreeTierDeduplicator`] with the configuration's `dedup`
    /// settings, rebuilt each scan so configuration changes apply).
    pub fn deduplicator(mut self, d: Arc<dyn Deduplicator>) -> Self {
        self.dedup = Some(d);
        self
    }
    /// The state store (required).
    pub fn store(mut self, s: Arc<dyn StateStore>) -> Self {
        self.store = Some(s);
        self
    }
    /// Where learned templates are kept between scans (default: nowhere; every scan starts from a
    /// templater that knows only the known issues' templates). Persistent stores implement [`TemplateMemory`] too: pass the same store
    /// here so the same message keeps its template, and so its fingerprint, across restarts.
    pub fn template_memory(mut self, m: Arc<dyn TemplateMemory>) -> Self {
        self.template_memory = Some(m);
        self
    }
    /// The clock (default: the system clock).
    pub fn clock(mut self, c: Arc<dyn Clock>) -> Self {
        self.clock = Some(c);
        self
    }
    /// The lease owner name (default: `selfmon-<pid>`).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }
    /// Time limit of one analysis (default 30 minutes).
    pub fn analysis_timeout(mut self, t: Duration) -> Self {
        self.analysis_timeout = Some(t);
        self
    }

    /// Builds the monitor; fails with [`Error::Config`] naming a missing part or an invalid config.
    pub fn build(self) -> Result<SelfMonitor> {
        let config = self.config.unwrap_or_default();
        config.validate()?;
        let missing = |what: &str| {
            Error::config(
                what,
                "is required; call SelfMonitor::builder().".to_string() + what + "(...)",
            )
        };
        let (events, _) = broadcast::channel(256);
        Ok(SelfMonitor {
            config: Arc::new(RwLock::new(config)),
            log_source: self.log_source.ok_or_else(|| missing("log_source"))?,
            runner: self.runner.ok_or_else(|| missing("runner"))?,
            tracker: self.tracker.ok_or_else(|| missing("tracker"))?,
            dedup: self.dedup,
            store: self.store.ok_or_else(|| missing("store"))?,
            template_memory: self.template_memory,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            owner: self
                .owner
                .unwrap_or_else(|| format!("selfmon-{}", std::process::id())),
            analysis_timeout: self
                .analysis_timeout
                .unwrap_or(Duration::from_secs(30 * 60)),
            events,
            shutdown: CancelToken::new(),
        })
    }
}

/// The scan engine. Cheap to share (`Arc<SelfMonitor>`); scans are single-flight through the
/// state store's lease, across tasks and processes.
pub struct SelfMonitor {
    config: Arc<RwLock<SelfMonitoringConfig>>,
    log_source: Arc<dyn LogSource>,
    runner: Arc<dyn AnalysisRunner>,
    tracker: Arc<dyn IssueTracker>,
    /// `None`: a [`ThreeTierDeduplicator`] built from each scan's configuration.
    dedup: Option<Arc<dyn Deduplicator>>,
    store: Arc<dyn StateStore>,
    /// `None`: learned templates are not kept between scans.
    template_memory: Option<Arc<dyn TemplateMemory>>,
    clock: Arc<dyn Clock>,
    owner: String,
    analysis_timeout: Duration,
    events: broadcast::Sender<ScanEvent>,
    /// Cancels every scan of this monitor, present and future (see [`SelfMonitor::shutdown`]).
    shutdown: CancelToken,
}

impl std::fmt::Debug for SelfMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfMonitor")
            .field("owner", &self.owner)
            .field("runner", &self.runner.name())
            .finish_non_exhaustive()
    }
}

impl SelfMonitor {
    /// A builder.
    pub fn builder() -> SelfMonitorBuilder {
        SelfMonitorBuilder::default()
    }

    /// A copy of the current configuration.
    pub fn config(&self) -> SelfMonitoringConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the configuration; the next scan uses it. Rejects an invalid one.
    pub fn set_config(&self, config: SelfMonitoringConfig) -> Result<()> {
        config.validate()?;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
        Ok(())
    }

    /// The shared configuration handle (for a [`crate::schedule::SelfMonitoringService`]).
    pub fn config_handle(&self) -> Arc<RwLock<SelfMonitoringConfig>> {
        self.config.clone()
    }

    /// The state store (for history queries).
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// Subscribes to progress events of every later scan.
    pub fn subscribe(&self) -> broadcast::Receiver<ScanEvent> {
        self.events.subscribe()
    }

    fn emit(&self, e: ScanEvent) {
        let _ = self.events.send(e);
    }

    /// Runs one scan with the given trigger.
    pub async fn scan(&self, trigger: ScanTrigger) -> Result<ScanReport> {
        self.scan_with(ScanOptions {
            trigger,
            ..Default::default()
        })
        .await
    }

    /// Runs one scan. Returns [`Error::LeaseHeld`] without doing anything when another scan runs.
    pub async fn scan_with(&self, options: ScanOptions) -> Result<ScanReport> {
        self.scan_with_cancel(options, &CancelToken::new()).await
    }

    /// Runs one scan that `cancel` (or [`shutdown`](Self::shutdown)) can interrupt.
    ///
    /// On cancellation the scan's work in flight (the analysis, a tracker call) is dropped, which
    /// makes the runner stop its subprocess; the scan is recorded as FAILURE with the reason
    /// "interrupted", the cursor does not move, the lease is released, the engine waits (boundedly)
    /// for the runner to finish its cleanup ([`AnalysisRunner::wait_for_cleanup`]), and the call
    /// returns [`Error::Cancelled`]. A cancellation during filing is as safe as a crash there: the
    /// outbox completes an interrupted filing on the next scan. A token cancelled before the call
    /// returns [`Error::Cancelled`] without taking the lease or recording anything.
    ///
    /// Dropping the returned future instead also stops the runner's subprocess; the lease release
    /// and the FAILURE record then happen on a background task of the current tokio runtime.
    pub async fn scan_with_cancel(
        &self,
        options: ScanOptions,
        cancel: &CancelToken,
    ) -> Result<ScanReport> {
        if cancel.is_cancelled() || self.shutdown.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let config = self.config();
        config.validate()?;
        let scan_id = ScanId::new();
        let now = self.clock.now();
        let ttl = Duration::from_secs(config.lease_ttl_secs);
        let holder = LeaseHolder::current(format!("{}/{}", self.owner, scan_id));
        let mut took_over = None;
        let lease = match self.store.try_acquire_lease_for(&holder, ttl, now).await? {
            LeaseOutcome::Acquired(lease) => lease,
            LeaseOutcome::Held(other)
                if crate::lease::holder_state(&other) == HolderState::Gone =>
            {
                match self
                    .store
                    .take_over_lease(&other, &holder, ttl, now)
                    .await?
                {
                    LeaseOutcome::Acquired(lease) => {
                        tracing::warn!(
                            previous_owner = %other.owner,
                            previous_holder = %other.holder_description(),
                            since = %other.acquired_at,
                            "took over the lease of a scan whose process is gone"
                        );
                        took_over = Some(other);
                        lease
                    }
                    LeaseOutcome::Held(current) => return Err(lease_held(current)),
                }
            }
            LeaseOutcome::Held(other) => return Err(lease_held(other)),
        };
        // Released on every path below; if this future is dropped, by the guard.
        let mut guard = LeaseGuard {
            store: self.store.clone(),
            clock: self.clock.clone(),
            lease: Some(lease.clone()),
        };
        // Until when this scan surely holds the lease, by its own clock (asked for at `now`).
        let term = LeaseTerm::new(now, ttl);
        let span = tracing::info_span!("selfmon_scan", scan_id = %scan_id, trigger = options.trigger.as_str());
        let result = self
            .scan_locked(scan_id, options, config, cancel, (&lease, &term), took_over)
            .instrument(span)
            .await;
        guard.lease = None;
        if let Err(e) = self.store.release_lease(&lease).await {
            tracing::warn!(error = %e, "could not release the scan lease; it expires on its own");
        }
        result
    }

    /// Cancels the scan in flight and every later scan of this monitor (they return
    /// [`Error::Cancelled`] at once): for a host that is stopping.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Renews `lease` every third of `ttl` for as long as the scan runs; returns only when the
    /// lease is lost (then the scan must stop): a renewal finds another owner, or `term` ends
    /// (by this process's clock) without a successful renewal: the store was unreachable, or
    /// the process was frozen, for about a TTL, and another node may take the lease over. A
    /// failed renewal is retried at the next beat until then; a renewal that hangs is given up
    /// when the term ends.
    async fn heartbeat(&self, lease: &Lease, ttl: Duration, term: &LeaseTerm) -> Error {
        let beat = (ttl / 3).max(Duration::from_millis(10));
        let expired = || {
            tracing::error!(
                "the scan lease was not renewed within its TTL (state store unreachable, or the process was paused); stopping"
            );
            Error::LeaseLost {
                owner: String::new(),
            }
        };
        loop {
            let left = term.remaining(self.clock.now());
            if left.is_zero() {
                return expired();
            }
            tokio::time::sleep(beat.min(left)).await;
            let asked = self.clock.now();
            let left = term.remaining(asked);
            if left.is_zero() {
                return expired();
            }
            let renewal = tokio::time::timeout(left, self.store.renew_lease(lease, ttl, asked));
            let Ok(renewal) = renewal.await else {
                continue;
            };
            match renewal {
                Ok(LeaseRenewal::Renewed(_)) => {
                    term.renewed(asked);
                    tracing::debug!("scan lease renewed")
                }
                Ok(LeaseRenewal::Lost(current)) => {
                    let owner = current.map(|l| l.owner).unwrap_or_default();
                    tracing::error!(now_held_by = %owner, "the scan lost its lease; stopping");
                    return Error::LeaseLost { owner };
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not renew the scan lease; retrying at the next beat")
                }
            }
        }
    }

    /// The newest scan's [`ScanRecord::analysis_failures`], 0 before any scan. Called before this
    /// scan is recorded, under the lease (so no other scan runs). Scans recorded as started after
    /// `now` (by a clock since set back) are passed over while an earlier one is among the newest,
    /// as the schedule does: they are older than the scans recorded after the step.
    async fn prior_analysis_failures(&self, now: chrono::DateTime<chrono::Utc>) -> Result<u32> {
        let newest = self
            .store
            .list_scans(crate::traits::PageRequest {
                offset: 0,
                limit: 20,
            })
            .await?;
        Ok(newest
            .items
            .iter()
            .find(|scan| scan.started_at <= now)
            .or(newest.items.first())
            .map_or(0, |scan| scan.analysis_failures))
    }

    /// Completes when `cancel` or the monitor's shutdown token is cancelled.
    async fn interrupted(&self, cancel: &CancelToken) {
        tokio::select! {
            () = cancel.cancelled() => {}
            () = self.shutdown.cancelled() => {}
        }
    }

    async fn scan_locked(
        &self,
        scan_id: ScanId,
        options: ScanOptions,
        config: SelfMonitoringConfig,
        cancel: &CancelToken,
        (lease, term): (&Lease, &LeaseTerm),
        took_over: Option<Lease>,
    ) -> Result<ScanReport> {
        let now = self.clock.now();
        let closed = self
            .store
            .close_abandoned_scans(
                now,
                &egress::engine_text(
                    "scan interrupted: the process running it stopped before it finished",
                ),
            )
            .await?;
        if closed > 0 {
            tracing::warn!(closed, "closed scans left running by a stopped process");
        }
        let cursor = self.store.last_successful_cursor().await?;
        let mut record = ScanRecord::started(scan_id.clone(), options.trigger, cursor, now);
        // Consecutive scans the runner gave no answer for: the newest scan's count (0 after a
        // success). Recorded from the start, so a scan that crashes keeps the count.
        record.analysis_failures = self.prior_analysis_failures(now).await?;
        let prior_failures = record.analysis_failures;
        let model = options
            .model
            .clone()
            .unwrap_or_else(|| config.model.clone());
        let prompt_status = prompt::effective(&config);
        record.model = Some(model.to_string());
        record.prompt_version = prompt_status.version;
        record.dry_run = options.dry_run || config.dry_run;
        self.store.begin_scan(&record).await?;
        self.emit(ScanEvent::Started {
            scan_id: scan_id.clone(),
            cursor,
        });
        let mut report = ScanReport::new(record.clone());
        report.took_over_lease = took_over;
        // What the scan makes durable with its cursor; a dry run or a failure commits none of it.
        let mut effects = ScanEffects::default();
        let outcome = tokio::select! {
            biased;
            () = self.interrupted(cancel) => Err(Error::Cancelled),
            e = self.heartbeat(lease, Duration::from_secs(config.lease_ttl_secs), term) => Err(e),
            r = CatchPanic(Box::pin(self.execute(&mut report, &config, &model, &prompt_status.template, &mut effects, term))) => r,
        };
        let finished_at = self.clock.now();
        report.record.completed_at = Some(finished_at);
        // The report is stored before the scan is marked successful: a scan whose explanation
        // could not be kept fails (and its records are read again) rather than succeeding
        // unexplained.
        let outcome = match outcome {
            Ok(new_cursor) => {
                // A scan that moves the cursor, or a dry run whose every analysis was answered,
                // ends the run of failures; a dry run that fell back (its count went up) or
                // analysed nothing leaves the count to the real scan.
                let answered =
                    report.record.analysis_ran && report.record.analysis_failures == prior_failures;
                if !report.record.dry_run || answered {
                    report.record.analysis_failures = 0;
                }
                let mut done = stored_report(&report);
                done.record.status = ScanStatus::Success;
                done.record.log_id_end = new_cursor;
                self.store
                    .save_scan_report(&done)
                    .await
                    .map(|()| new_cursor)
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(new_cursor) => {
                report.record.status = ScanStatus::Success;
                report.record.log_id_end = new_cursor;
                egress::commit(self.store.as_ref(), &report.record, &effects).await?;
                tracing::info!(
                    records = report.record.records_read,
                    filed = report.record.issues_created,
                    "scan succeeded"
                );
                self.emit(ScanEvent::Finished {
                    record: Box::new(report.record.clone()),
                });
                Ok(report)
            }
            Err(e) => {
                report.record.status = ScanStatus::Failure;
                report.record.log_id_end = report.record.log_id_start;
                if e.is_no_answer() {
                    report.record.analysis_failures = prior_failures.saturating_add(1);
                }
                if let Some(usage) = e.analysis_usage() {
                    // A failed analysis still cost money: the history shows how much.
                    report.record.cost_usd = usage.cost_usd;
                    report.record.input_tokens = usage.input_tokens;
                    report.record.output_tokens = usage.output_tokens;
                }
                if report.record.cursor_reset {
                    // The reset is only kept when the scan succeeds.
                    report.record.log_id_end = cursor;
                }
                // Error text can quote log content; what is persisted is redacted like the rest.
                report.record.error_message = Some(stored_error(&error_chain(&e), &config));
                if let Err(store_err) = self.store.finish_scan(&report.record).await {
                    tracing::error!(error = %store_err, "could not record the failed scan; the next scan closes it");
                } else if let Err(store_err) =
                    self.store.save_scan_report(&stored_report(&report)).await
                {
                    tracing::warn!(error = %store_err, "could not store the failed scan's report");
                }
                tracing::warn!(error = %e, "scan failed");
                if matches!(e, Error::Cancelled) {
                    // The analysis future is gone; wait for its subprocess to be gone too.
                    if tokio::time::timeout(RUNNER_CLEANUP_WAIT, self.runner.wait_for_cleanup())
                        .await
                        .is_err()
                    {
                        tracing::warn!(
                            wait_secs = RUNNER_CLEANUP_WAIT.as_secs(),
                            "the runner did not finish cleaning up after cancellation"
                        );
                    }
                }
                self.emit(ScanEvent::Finished {
                    record: Box::new(report.record.clone()),
                });
                Err(e)
            }
        }
    }

    /// The body of a scan: the stages in order; returns the new cursor.
    async fn execute(
        &self,
        report: &mut ScanReport,
        config: &SelfMonitoringConfig,
        model: &ClaudeModel,
        template: &str,
        effects: &mut ScanEffects,
        term: &LeaseTerm,
    ) -> Result<i64> {
        let scan_id = report.record.scan_id.clone();
        let redactor = Redactor::with_config(&config.redaction)?;
        let server = config
            .include_server_identity
            .then(|| config.server_identity.clone())
            .flatten();
        // Every tracker mutation is fenced by the lease (see `LeaseTerm::fenced`).
        let fenced = FencedTracker {
            inner: self.tracker.as_ref(),
            term,
            clock: self.clock.as_ref(),
        };
        let egress = Egress {
            tracker: &fenced,
            store: self.store.as_ref(),
            redactor: &redactor,
            dry_run: report.record.dry_run,
            server: server.as_deref(),
        };
        let emit = |e: ScanEvent| self.emit(e);

        // Filings a crashed scan left in the outbox are completed first.
        let (reconciled, rate_limit) = egress.reconcile_outbox(self.clock.as_ref()).await?;
        report.reconciled = reconciled;

        // 1. Read everything new into the digest, starting from what earlier scans learned. A
        // recreated log restarts from 0.
        let anchor = match report.record.log_id_start {
            0 => None,
            _ => self.store.last_successful_anchor().await?,
        };
        let start =
            read::start(self.log_source.as_ref(), report.record.log_id_start, anchor).await?;
        if let Some(previous_cursor) = start.reset_from {
            report.record.cursor_reset = true;
            report.previous_cursor = Some(previous_cursor);
            report.record.log_id_start = start.after;
            emit(ScanEvent::CursorReset {
                scan_id: scan_id.clone(),
                previous_cursor,
            });
        }
        let learned_templates = match &self.template_memory {
            Some(memory) => memory.load_template_state().await?,
            None => None,
        };
        // The known issues, the filings the outbox still holds (a rate limit refused them) and
        // the findings the backlog defers: the templater learns their templates before it reads,
        // so a name something was filed or deferred under is known even when what the scan that
        // filed it learned was not kept (it failed afterwards, the cluster was evicted, or the
        // host keeps no learned templates).
        let closed_since = self
            .clock
            .now()
            .checked_sub_signed(chrono::Duration::days(i64::from(
                config.dedup.closed_window_days,
            )))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let (mut known, mut ownership) =
            triage::known_issues(self.store.as_ref(), self.tracker.as_ref(), closed_since).await?;
        // Whose issues the tracker's numbers are, when the operator should know (review4 F4).
        report.warnings.append(&mut ownership.notices);
        let open_intents = self.store.open_intents().await?;
        let mut backlog = self.store.open_backlog().await?;
        let known_templates = known
            .iter()
            .flat_map(|k| k.templates.iter())
            .chain(open_intents.iter().flat_map(|i| i.templates.iter()))
            .chain(backlog.iter().flat_map(|e| e.templates.iter()))
            .cloned()
            .collect();
        let read = read::read(
            ReadInput {
                log_source: self.log_source.as_ref(),
                config,
                after: start.after,
                learned_templates,
                known_templates,
                anchor: start.anchor.clone(),
                target: start.target,
            },
            &|records| {
                emit(ScanEvent::RecordsRead {
                    scan_id: scan_id.clone(),
                    records,
                })
            },
        )
        .await?;
        // A source that is held back says so with its pages; the scan still succeeds (it read
        // everything it could prove final), so the report is where the operator sees it.
        for w in &read.warnings {
            let message = redactor.redacted(&w.message);
            tracing::warn!(kind = %w.kind, message = %message, "the log source reports a problem");
            report.warnings.push(ScanWarning {
                kind: w.kind.clone(),
                message,
            });
        }
        report.record.gap_records = read.gap_records;
        report.record.records_read = read.records_read;
        report.record.log_anchor = read.anchor.clone();
        // Learned templates are kept only for a host that gave the engine a template memory; the
        // ledger saves them, sealed, in the same transaction as the cursor.
        if self.template_memory.is_some() {
            effects.template_state = Some(egress.sealed_template_state(&read.templater));
        }
        let digest = read.digest;
        report.record.signatures = digest.signatures.len() as u64;
        report.record.ignored_signatures = digest.ignored_signatures;
        report.signatures.extend(digest.ignored.iter().map(|i| {
            egress.report_signature(
                &i.signature,
                SignatureFate::Ignored {
                    rule: i.rule.clone(),
                },
            )
        }));

        // 2. Triage: what known issues explain is counted (or is a regression), not analysed.
        let dedup = self.deduplicator(config);
        let triaged = triage::triage(TriageInput {
            signatures: &digest.signatures,
            known: &known,
            dedup: dedup.as_ref(),
        })
        .await?;
        for (sig, fate) in digest.signatures.iter().zip(&triaged.fates) {
            report
                .signatures
                .push(egress.report_signature(sig, fate.clone()));
        }
        report.record.known_signatures = (digest.signatures.len() - triaged.novel.len()) as u64;
        report.record.novel_signatures = triaged.novel.len() as u64;
        emit(ScanEvent::Digested {
            scan_id: scan_id.clone(),
            signatures: report.record.signatures,
            novel: report.record.novel_signatures,
        });
        for (&number, &count) in &triaged.occurrences {
            effects.add_occurrences(number, count);
        }
        let mut act = Act {
            egress: &egress,
            dedup: dedup.as_ref(),
            clock: self.clock.as_ref(),
            config,
            emit: &emit,
            report,
            known: &mut known,
            effects,
            budget: Budget::new(config)
                .with_rate_limit(rate_limit)
                .with_ownership(ownership),
            backlog_filed: std::collections::HashMap::new(),
        };
        for recurred in triaged.recurred {
            act.recurred(recurred).await?;
        }
        for escalated in triaged.escalated {
            act.escalated(escalated).await?;
        }
        let Act {
            report,
            known,
            effects,
            budget,
            ..
        } = act;

        // 3. Analyse what is left, on copies fit to leave the process; the originals (and the
        // fingerprints computed from them) stay here.
        let shown_novel: Vec<RedactedSignature> =
            triaged.novel.iter().map(|s| egress.shown(s)).collect();
        let shown = Digest {
            signatures: shown_novel
                .iter()
                .map(|s| s.as_signature().clone())
                .collect(),
            records: digest.records,
            ignored_signatures: digest.ignored_signatures,
            ignored_records: digest.ignored_records,
            ignored: Vec::new(),
        };
        // Every signature shown is judged: what does not fit in one digest, or what a full answer
        // (the most findings asked for) left unmentioned, goes to another round; after
        // MAX_ANALYSIS_ROUNDS the offline rules judge the rest (see `analyse::MAX_ANALYSIS_ROUNDS`).
        let mut findings = Vec::new();
        let mut pending = shown;
        let mut rounds = 0;
        let mut sent: Vec<crate::redact::RedactedText> = Vec::new();
        // Set when the runner gave no answer once too often (see `ANALYSIS_ATTEMPTS`).
        let mut no_answer: Option<Error> = None;
        let prior_failures = report.record.analysis_failures;
        let log = self.log_source.describe();
        let log_id_start = report.record.log_id_start;
        let round_input = |shown: Digest| PromptInput {
            scan_id: &scan_id,
            template,
            model,
            max_digest_bytes: config.max_digest_bytes,
            shown,
            known,
            log: log.clone(),
            start: log_id_start,
            first_id: read.first_id,
            last_id: read.last_id,
            timeout: self.analysis_timeout,
        };
        while !pending.signatures.is_empty() && rounds < analyse::MAX_ANALYSIS_ROUNDS {
            let (fit, rest) = pending.split_to_fit(config.max_digest_bytes);
            pending = Digest {
                signatures: rest,
                records: fit.records,
                ignored_signatures: fit.ignored_signatures,
                ignored_records: fit.ignored_records,
                ignored: Vec::new(),
            };
            if fit.signatures.is_empty() {
                break;
            }
            let Some(request) = analyse::prompt(round_input(fit), &egress)? else {
                break;
            };
            rounds += 1;
            report.record.analysis_ran = true;
            report.runner = Some(self.runner.name().to_string());
            sent.push(request.data.clone());
            let answer = match analyse::run(self.runner.as_ref(), &request).await {
                Ok(answer) => answer,
                Err(e) if e.is_no_answer() && prior_failures + 1 >= ANALYSIS_ATTEMPTS => {
                    // The runner has now given no answer for these records ANALYSIS_ATTEMPTS
                    // times in a row: the offline rules judge what this round and the later
                    // ones would have shown, so the records are triaged and the cursor moves.
                    if let Some(usage) = e.analysis_usage() {
                        add_usage(&mut report.record, usage);
                    }
                    report.record.analysis_failures = prior_failures + 1;
                    pending.signatures.splice(0..0, request.digest.signatures);
                    no_answer = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            };
            add_usage(&mut report.record, &answer.usage);
            let full = answer.findings.len() >= request.max_findings;
            let round = analyse::judge(answer, &request, &egress);
            let unjudged = round.unjudged(full, request.digest);
            pending.signatures.splice(0..0, unjudged);
            report.rejected.extend(round.rejected);
            report.skipped.extend(round.skipped);
            findings.extend(round.findings);
        }
        if !pending.signatures.is_empty() {
            // What no round showed or judged: the offline rules decide, so nothing read is left
            // unjudged (and the report says so).
            let left = pending.signatures.len();
            let request = analyse::fallback_request(round_input(pending), &egress)?;
            let mut answer = analyse::run(&crate::offline::OfflineRunner, &request).await?;
            let why = match &no_answer {
                Some(_) => format!(
                    "the analysis runner gave no answer for these records in {ANALYSIS_ATTEMPTS} scans in a row"
                ),
                None => format!(
                    "not shown to the model within {} analysis round(s)",
                    analyse::MAX_ANALYSIS_ROUNDS
                ),
            };
            for s in &mut answer.skipped {
                s.reason = format!("judged by the offline rules ({why}): {}", s.reason);
            }
            let round = analyse::judge(answer, &request, &egress);
            report.rejected.extend(round.rejected);
            report.skipped.extend(round.skipped);
            findings.extend(round.findings);
            let message = match &no_answer {
                Some(e) => format!(
                    "{left} signature(s) were judged by the offline rules: the analysis runner gave no answer for these records in {ANALYSIS_ATTEMPTS} scans in a row (last: {})",
                    error_chain(e)
                ),
                None => format!(
                    "{left} signature(s) did not fit in {} analysis round(s) of max_digest_bytes = {}: the offline rules judged them (raise max_digest_bytes to show the model more at once)",
                    analyse::MAX_ANALYSIS_ROUNDS,
                    config.max_digest_bytes
                ),
            };
            if no_answer.is_some() {
                tracing::warn!(%message, "analysis fell back to the offline rules");
            }
            report.warnings.push(ScanWarning {
                kind: "analysis_fallback".into(),
                message: egress.redacted(&message),
            });
        }
        if rounds > 0 {
            report.digest_sent = Some(crate::redact::RedactedText::joined(&sent, "\n"));
        }
        if rounds > 0 || !findings.is_empty() {
            report.record.findings = findings.len() as u64;
            report.record.rejected_findings = report.rejected.len() as u64;
            emit(ScanEvent::Analysed {
                scan_id: scan_id.clone(),
                findings: report.record.findings,
                rejected: report.record.rejected_findings,
            });
        }

        // 4. Act: deduplicate, spend the budgets (the backlog first at equal severity), file.
        known.note_signatures(&triaged.novel);
        // An entry whose filing waits in the outbox (a rate limit refused it) is the outbox's to
        // complete, not a candidate again.
        let in_outbox: std::collections::HashSet<String> = open_intents
            .into_iter()
            .filter_map(|i| i.backlog_entry_id)
            .collect();
        backlog.retain(|e| !in_outbox.contains(&e.entry_id));
        // What an ignore rule configured since it was deferred matches is closed, never filed.
        act::close_ignored(
            &mut backlog,
            &crate::digest::CompiledIgnore::new(&config.ignore)?,
            &egress,
            report,
            effects,
        );
        let entries = backlog.clone();
        // What the runner saw but made no finding for: occurrences of a backlog entry's
        // problem, if one holds it (see `Act::backlog_recurrences`).
        let uncovered: Vec<&crate::digest::Signature> = {
            let covered: std::collections::HashSet<&str> = findings
                .iter()
                .flat_map(|f| f.signature_ids.iter().map(String::as_str))
                .collect();
            triaged
                .novel
                .iter()
                .filter(|s| !covered.contains(s.id.as_str()))
                .collect()
        };
        let secrets = read.templater.secret_tokens();
        let candidates = act::candidates(
            findings,
            backlog,
            &triaged.novel,
            &shown_novel,
            &egress,
            &secrets,
        );
        let mut act = Act {
            egress: &egress,
            dedup: dedup.as_ref(),
            clock: self.clock.as_ref(),
            config,
            emit: &emit,
            report,
            known,
            effects,
            budget,
            backlog_filed: std::collections::HashMap::new(),
        };
        act.report.record.backlog = act.decide_all(candidates).await?;
        act.backlog_recurrences(&entries, &uncovered, &secrets);
        Ok(read.new_cursor)
    }

    /// The deduplicator of a scan: the host's, else the three tiers with this configuration.
    fn deduplicator(&self, config: &SelfMonitoringConfig) -> Arc<dyn Deduplicator> {
        match &self.dedup {
            Some(d) => d.clone(),
            None => Arc::new(ThreeTierDeduplicator::new(config.dedup.clone())),
        }
    }
}

/// [`Error::LeaseHeld`] describing `lease`'s holder.
fn lease_held(lease: Lease) -> Error {
    Error::LeaseHeld {
        holder: lease.holder_description(),
        owner: lease.owner,
        since: lease.acquired_at,
        expires_at: lease.expires_at,
    }
}

/// Longest wait for the runner's cleanup after a cancelled analysis.
const RUNNER_CLEANUP_WAIT: Duration = Duration::from_secs(30);

/// Releases the lease (and closes the scan it ran as FAILURE) when a scan future is dropped
/// before it finished; disarmed (`lease = None`) on every normal path.
struct LeaseGuard {
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    lease: Option<Lease>,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(owner = %lease.owner, "scan dropped outside a runtime; its lease expires on its own");
            return;
        };
        let store = self.store.clone();
        let now = self.clock.now();
        runtime.spawn(async move {
            // Still the holder: the only RUNNING scan is the dropped one.
            if let Err(e) = store
                .close_abandoned_scans(
                    now,
                    &egress::engine_text("interrupted: the scan was dropped before it finished"),
                )
                .await
            {
                tracing::warn!(error = %e, "could not close the dropped scan; the next scan closes it");
            }
            if let Err(e) = store.release_lease(&lease).await {
                tracing::warn!(error = %e, "could not release a dropped scan's lease; it expires on its own");
            }
        });
    }
}

/// Adds one analysis round's usage to the scan's (a figure no round gave stays unknown).
fn add_usage(record: &mut ScanRecord, usage: &crate::traits::Usage) {
    fn add<T: std::ops::Add<Output = T>>(total: Option<T>, more: Option<T>) -> Option<T> {
        match (total, more) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        }
    }
    record.cost_usd = add(record.cost_usd, usage.cost_usd);
    record.input_tokens = add(record.input_tokens, usage.input_tokens);
    record.output_tokens = add(record.output_tokens, usage.output_tokens);
}

/// An error and its causes on one line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Completes as the future it wraps, or with [`Error::Panicked`] when polling it panics: a
/// defect in one scan's work (the engine's, or an adapter's on the engine's task) fails that
/// scan like any error — recorded, lease released, cursor kept — instead of unwinding through
/// the host (a scheduler's worker task, which then never runs another scan).
struct CatchPanic<F>(F);

impl<F: std::future::Future<Output = Result<T>>, T> std::future::Future
    for CatchPanic<std::pin::Pin<Box<F>>>
{
    type Output = Result<T>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                tracing::error!(%message, "the scan panicked; recording it as failed");
                std::task::Poll::Ready(Err(Error::Panicked { message }))
            }
        }
    }
}

/// The message a panic carried (`panic!("…")` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}
