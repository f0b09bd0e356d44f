//! `SelfMonitoringService`: tick and run-now semantics with a fake clock.

use std::sync::{Arc, RwLock};

use chrono::{Duration, TimeZone, Utc};
use selfmon_core::clock::Clock;
use selfmon_core::mock::MockJobQueue;
use selfmon_core::testing::{JobHandler, MemoryJobQueue, MemoryStateStore};
use selfmon_core::{
    JobId, JobKind, JobSpec, JobStatus, ScanId, ScanLedger, ScanRecord, ScanTrigger,
    SchedulerState, SelfMonitoringConfig, SelfMonitoringService, Submission, TickOutcome,
};

struct Gate(tokio::sync::Semaphore);

#[async_trait::async_trait]
impl JobHandler for Gate {
    async fn run(&self, _job: &JobSpec) -> Result<(), String> {
        let _p = self.0.acquire().await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

fn enabled(cadence: u32) -> Arc<RwLock<SelfMonitoringConfig>> {
    Arc::new(RwLock::new(SelfMonitoringConfig {
        enabled: true,
        cadence_minutes: cadence,
        ..Default::default()
    }))
}

#[tokio::test]
async fn tick_does_nothing_while_disabled() {
    let mut q = MockJobQueue::new();
    q.expect_submit_if_idle().never();
    let svc = SelfMonitoringService::new(
        Arc::new(RwLock::new(SelfMonitoringConfig::default())),
        Arc::new(q),
        Arc::new(MemoryStateStore::new()),
    );
    assert_eq!(svc.tick(Utc::now()).await.unwrap(), TickOutcome::Disabled);
}

#[tokio::test]
async fn tick_submits_when_due_and_not_again_until_the_cadence_passes() {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut q = MockJobQueue::new();
    q.expect_submit_if_idle().times(2).returning(|job| {
        assert_eq!(job.kind, JobKind::SelfMonitoring);
        assert_eq!(job.trigger, ScanTrigger::Scheduled);
        Ok(Submission::Submitted {
            job_id: JobId("j".into()),
        })
    });
    let svc =
        SelfMonitoringService::new(enabled(30), Arc::new(q), Arc::new(MemoryStateStore::new()));
    assert!(
        matches!(
            svc.tick(t0).await.unwrap(),
            TickOutcome::Due(Submission::Submitted { .. })
        ),
        "never ran: due at once"
    );
    assert_eq!(
        svc.tick(t0 + Duration::minutes(29)).await.unwrap(),
        TickOutcome::NotDue {
            next_at: t0 + Duration::minutes(30)
        }
    );
    assert!(matches!(
        svc.tick(t0 + Duration::minutes(30)).await.unwrap(),
        TickOutcome::Due(_)
    ));
}

#[tokio::test]
async fn due_time_follows_the_last_scan_in_the_store() {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let store = Arc::new(MemoryStateStore::new());
    store
        .begin_scan(&ScanRecord::started(
            ScanId::new(),
            ScanTrigger::Manual,
            0,
            t0,
        ))
        .await
        .unwrap();
    let svc = SelfMonitoringService::new(enabled(60), Arc::new(MockJobQueue::new()), store);
    assert_eq!(
        svc.next_scan_at(t0).await.unwrap(),
        Some(t0 + Duration::minutes(60))
    );
    assert!(matches!(
        svc.tick(t0 + Duration::minutes(10)).await.unwrap(),
        TickOutcome::NotDue { .. }
    ));
}

/// Records a finished scan: `dry_run`, and failed or succeeded, started at `at`, ended a minute
/// later.
async fn record_scan(
    store: &MemoryStateStore,
    at: chrono::DateTime<Utc>,
    dry_run: bool,
    failed: bool,
) {
    let mut r = ScanRecord::started(ScanId::new(), ScanTrigger::Manual, 0, at);
    r.dry_run = dry_run;
    store.begin_scan(&r).await.unwrap();
    r.status = if failed {
        selfmon_core::ScanStatus::Failure
    } else {
        selfmon_core::ScanStatus::Success
    };
    r.completed_at = Some(at + Duration::minutes(1));
    store.finish_scan(&r).await.unwrap();
}

#[tokio::test]
async fn a_dry_run_does_not_postpone_the_next_scheduled_scan() {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let store = Arc::new(MemoryStateStore::new());
    record_scan(&store, t0, false, false).await;
    record_scan(&store, t0 + Duration::minutes(40), true, false).await;
    let config = enabled(60);
    let svc = SelfMonitoringService::new(config.clone(), Arc::new(MockJobQueue::new()), store);
    assert_eq!(
        svc.next_scan_at(t0 + Duration::minutes(45)).await.unwrap(),
        Some(t0 + Duration::minutes(60)),
        "the preview at +40 min changed nothing, the real scan at +0 counts"
    );
    // When every scan is a dry run (configured so), dry runs are the scans.
    config.write().unwrap().dry_run = true;
    assert_eq!(
        svc.next_scan_at(t0 + Duration::minutes(45)).await.unwrap(),
        Some(t0 + Duration::minutes(100))
    );
}

#[tokio::test]
async fn a_failed_scan_is_retried_after_a_delay_that_doubles_up_to_the_cadence() {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let store = Arc::new(MemoryStateStore::new());
    record_scan(&store, t0, false, false).await;
    let svc = SelfMonitoringService::new(enabled(60), Arc::new(MockJobQueue::new()), store.clone());
    // One failure at +10 (ended +11): retried a minute after it ended, not at +70.
    record_scan(&store, t0 + Duration::minutes(10), false, true).await;
    assert_eq!(
        svc.next_scan_at(t0 + Duration::minutes(11)).await.unwrap(),
        Some(t0 + Duration::minutes(12))
    );
    // Two in a row: two minutes; then four.
    record_scan(&store, t0 + Duration::minutes(12), false, true).await;
    assert_eq!(
        svc.next_scan_at(t0 + Duration::minutes(13)).await.unwrap(),
        Some(t0 + Duration::minutes(15))
    );
    record_scan(&store, t0 + Duration::minutes(15), false, true).await;
    assert_eq!(
        svc.next_scan_at(t0 + Duration::minutes(16)).await.unwrap(),
        Some(t0 + Duration::minutes(20))
    );
    // A failed dry run is no failure of the schedule.
    record_scan(&store, t0 + Duration::minutes(17), true, true).await;
    assert_eq!(
        svc.next_scan_at(t0 + Duration::minutes(18)).await.unwrap(),
        Some(t0 + Duration::minutes(20))
    );
    // A lasting failure backs off to the cadence, never beyond.
    let mut at = t0 + Duration::minutes(20);
    for _ in 0..8 {
        record_scan(&store, at, false, true).await;
        at += Duration::minutes(120);
    }
    let last_end = at - Duration::minutes(120) + Duration::minutes(1);
    assert_eq!(
        svc.next_scan_at(last_end).await.unwrap(),
        Some(last_end + Duration::minutes(60))
    );
}

#[tokio::test]
async fn a_scan_recorded_in_the_future_does_not_stop_the_schedule() {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let store = Arc::new(MemoryStateStore::new());
    record_scan(&store, t0, false, false).await;
    // Written by a clock three hours ahead, which was then set back.
    record_scan(&store, t0 + Duration::hours(3), false, false).await;
    let mut q = MockJobQueue::new();
    q.expect_submit_if_idle().times(1).returning(|_| {
        Ok(Submission::Submitted {
            job_id: JobId("j".into()),
        })
    });
    let svc = SelfMonitoringService::new(enabled(60), Arc::new(q), store.clone());
    let now = t0 + Duration::minutes(10);
    let next = svc.next_scan(now).await.unwrap().unwrap();
    assert_eq!(
        next.at,
        t0 + Duration::minutes(60),
        "counted from the scan before it"
    );
    assert_eq!(
        next.ignored_future_scan.map(|f| f.started_at),
        Some(t0 + Duration::hours(3)),
        "named, so the host can warn"
    );
    assert!(
        matches!(
            svc.tick(t0 + Duration::minutes(60)).await.unwrap(),
            TickOutcome::Due(_)
        ),
        "due after the cadence, not at the future time plus the cadence"
    );
    // The scan that came due records a true start; the schedule counts from it.
    record_scan(&store, t0 + Duration::minutes(60), false, false).await;
    assert_eq!(
        svc.next_scan_at(t0 + Duration::minutes(70)).await.unwrap(),
        Some(t0 + Duration::minutes(120))
    );
}

#[tokio::test]
async fn run_now_is_refused_while_a_scan_is_queued_or_running() {
    let gate = Arc::new(Gate(tokio::sync::Semaphore::new(0)));
    let queue = MemoryJobQueue::start(gate.clone());
    let store = Arc::new(MemoryStateStore::new());
    let svc = SelfMonitoringService::new(enabled(60), queue.clone(), store);
    assert_eq!(svc.state().await.unwrap(), SchedulerState::Idle);
    let first = svc.run_now().await.unwrap();
    let Submission::Submitted { job_id } = first else {
        panic!("{first:?}")
    };
    let second = svc.run_now().await.unwrap();
    assert!(
        matches!(second, Submission::AlreadyActive { job_id: ref j, .. } if *j == job_id),
        "{second:?}"
    );
    assert_ne!(svc.state().await.unwrap(), SchedulerState::Idle);
    gate.0.add_permits(1);
    assert_eq!(queue.wait(&job_id).await, Some(JobStatus::Succeeded));
    assert_eq!(svc.state().await.unwrap(), SchedulerState::Idle);
    assert!(matches!(
        svc.run_now().await.unwrap(),
        Submission::Submitted { .. }
    ));
}

#[tokio::test]
async fn the_job_carries_the_model_configured_at_submit_time() {
    let config = enabled(60);
    let mut q = MockJobQueue::new();
    q.expect_submit_if_idle().times(1).returning(|job| {
        assert_eq!(job.model, selfmon_core::ClaudeModel::Opus);
        Ok(Submission::Submitted {
            job_id: JobId("j".into()),
        })
    });
    let svc = SelfMonitoringService::new(
        config.clone(),
        Arc::new(q),
        Arc::new(MemoryStateStore::new()),
    );
    config.write().unwrap().model = selfmon_core::ClaudeModel::Opus;
    svc.run_now().await.unwrap();
}

#[tokio::test]
async fn the_memory_queue_runs_jobs_one_at_a_time_in_order() {
    struct Recorder(
        std::sync::Mutex<Vec<String>>,
        std::sync::atomic::AtomicUsize,
    );
    #[async_trait::async_trait]
    impl JobHandler for Recorder {
        async fn run(&self, job: &JobSpec) -> Result<(), String> {
            let running = self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            assert_eq!(running, 0, "two jobs ran at once");
            tokio::task::yield_now().await;
            self.0.lock().unwrap().push(job.payload.to_string());
            self.1.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            if job.payload == 2 {
                Err("boom".into())
            } else {
                Ok(())
            }
        }
    }
    let rec = Arc::new(Recorder(Default::default(), Default::default()));
    let q = MemoryJobQueue::start(rec.clone());
    let mut ids = Vec::new();
    for i in 0..4 {
        let job = JobSpec {
            kind: JobKind::GoldenRepo,
            model: Default::default(),
            trigger: ScanTrigger::Manual,
            payload: i.into(),
        };
        ids.push(
            selfmon_core::JobQueue::submit(q.as_ref(), job)
                .await
                .unwrap(),
        );
    }
    for id in &ids {
        q.wait(id).await;
    }
    assert_eq!(*rec.0.lock().unwrap(), ["0", "1", "2", "3"]);
    assert_eq!(
        q.wait(&ids[2]).await,
        Some(JobStatus::Failed {
            error: "boom".into()
        })
    );
    assert_eq!(
        selfmon_core::JobQueue::status(q.as_ref(), &JobId("nope".into()))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_self_monitor_runs_as_a_queued_job_end_to_end() {
    let r = {
        let logs = Arc::new(selfmon_core::testing::MemoryLogSource::new());
        logs.log(
            selfmon_core::Level::Critical,
            "db",
            "[DB-LOCK-003] database is locked",
        );
        logs
    };
    let store = Arc::new(MemoryStateStore::new());
    let monitor = Arc::new(
        selfmon_core::SelfMonitor::builder()
            .log_source(r)
            .runner(Arc::new(selfmon_core::offline::OfflineRunner))
            .tracker(Arc::new(selfmon_core::testing::MemoryIssueTracker::new()))
            .store(store.clone())
            .template_memory(store.clone())
            .build()
            .unwrap(),
    );
    let queue = MemoryJobQueue::start(monitor.clone());
    let svc = SelfMonitoringService::new(monitor.config_handle(), queue.clone(), store.clone());
    let Submission::Submitted { job_id } = svc.run_now().await.unwrap() else {
        panic!()
    };
    assert_eq!(queue.wait(&job_id).await, Some(JobStatus::Succeeded));
    assert_eq!(store.scans()[0].issues_created, 1);
    assert_eq!(store.scans()[0].trigger, ScanTrigger::Manual);
}

/// A job handler that records a scan row the way the engine does (RUNNING when it starts, at
/// the clock's time, SUCCESS when the gate lets it finish), without a lease: the service's
/// follow-up reads only these rows.
struct RecordingScan {
    gate: tokio::sync::Semaphore,
    store: Arc<MemoryStateStore>,
    clock: Arc<selfmon_core::testing::FakeClock>,
}

#[async_trait::async_trait]
impl JobHandler for RecordingScan {
    async fn run(&self, job: &JobSpec) -> Result<(), String> {
        let mut record = ScanRecord::started(ScanId::new(), job.trigger, 0, self.clock.now());
        self.store
            .begin_scan(&record)
            .await
            .map_err(|e| e.to_string())?;
        let _p = self.gate.acquire().await.map_err(|e| e.to_string())?;
        record.status = selfmon_core::ScanStatus::Success;
        record.completed_at = Some(self.clock.now());
        self.store
            .finish_scan(&record)
            .await
            .map_err(|e| e.to_string())
    }
}

async fn settle(queue: &MemoryJobQueue) {
    while let Some((id, _)) = selfmon_core::JobQueue::active_job(queue, &JobKind::SelfMonitoring)
        .await
        .unwrap()
    {
        queue.wait(&id).await;
    }
}

#[tokio::test]
async fn run_now_during_a_running_scan_is_answered_by_another_scan_after_it_and_only_one() {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let clock = Arc::new(selfmon_core::testing::FakeClock::new(t0));
    let store = Arc::new(MemoryStateStore::new());
    let handler = Arc::new(RecordingScan {
        gate: tokio::sync::Semaphore::new(0),
        store: store.clone(),
        clock: clock.clone(),
    });
    let queue = MemoryJobQueue::start(handler.clone());
    let svc = SelfMonitoringService::new(enabled(60), queue.clone(), store.clone())
        .with_clock(clock.clone());

    let Submission::Submitted { job_id: first } = svc.run_now().await.unwrap() else {
        panic!("the first request is submitted")
    };
    while store.scans().is_empty() {
        tokio::task::yield_now().await;
    }
    // The first scan is running (it may have read the log already); new records arrive and a
    // second request comes in.
    clock.advance(Duration::seconds(5));
    let second = svc.run_now().await.unwrap();
    assert!(
        matches!(
            second,
            Submission::AlreadyActive {
                status: JobStatus::Running,
                ..
            }
        ),
        "{second:?}"
    );
    assert_eq!(svc.pending_run_now(), Some(t0 + Duration::seconds(5)));
    // While it runs, ticks do not queue a second job beside it.
    assert!(!matches!(
        svc.tick(clock.now()).await.unwrap(),
        TickOutcome::RunNow(_)
    ));
    handler.gate.add_permits(1);
    assert_eq!(queue.wait(&first).await, Some(JobStatus::Succeeded));

    // The scan that answered the first request started before the second: the next tick
    // submits another, which starts after it.
    clock.advance(Duration::seconds(1));
    let outcome = svc.tick(clock.now()).await.unwrap();
    let TickOutcome::RunNow(Submission::Submitted { job_id: follow_up }) = outcome else {
        panic!("the second request needs a scan of its own: {outcome:?}")
    };
    handler.gate.add_permits(1);
    assert_eq!(queue.wait(&follow_up).await, Some(JobStatus::Succeeded));
    let scans = store.scans();
    assert_eq!(scans.len(), 2);
    assert!(scans
        .iter()
        .any(|s| s.started_at >= t0 + Duration::seconds(5)));

    // Answered: no more follow-ups, and the pending request is gone.
    handler.gate.add_permits(10);
    for _ in 0..3 {
        clock.advance(Duration::seconds(1));
        assert!(!matches!(
            svc.tick(clock.now()).await.unwrap(),
            TickOutcome::RunNow(_)
        ));
        settle(&queue).await;
    }
    assert_eq!(svc.pending_run_now(), None);
    assert_eq!(store.scans().len(), 2, "exactly one follow-up scan");
}

#[tokio::test]
async fn a_run_now_whose_scan_left_no_row_is_submitted_again_until_one_finishes() {
    // As when the scan found another node's scan holding the lease: the job fails before it
    // records anything.
    struct LeaseHeldThenScan {
        refusals: std::sync::atomic::AtomicUsize,
        inner: RecordingScan,
    }
    #[async_trait::async_trait]
    impl JobHandler for LeaseHeldThenScan {
        async fn run(&self, job: &JobSpec) -> Result<(), String> {
            if self
                .refusals
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok()
            {
                return Err("another scan is running: the lease is held by node-b".into());
            }
            self.inner.run(job).await
        }
    }
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let clock = Arc::new(selfmon_core::testing::FakeClock::new(t0));
    let store = Arc::new(MemoryStateStore::new());
    let handler = Arc::new(LeaseHeldThenScan {
        refusals: 2.into(),
        inner: RecordingScan {
            gate: tokio::sync::Semaphore::new(100),
            store: store.clone(),
            clock: clock.clone(),
        },
    });
    let queue = MemoryJobQueue::start(handler);
    // Disabled: a run-now request is honoured regardless, and so is its follow-up.
    let svc = SelfMonitoringService::new(
        Arc::new(RwLock::new(SelfMonitoringConfig::default())),
        queue.clone(),
        store.clone(),
    )
    .with_clock(clock.clone());
    svc.run_now().await.unwrap();
    settle(&queue).await;
    let mut follow_ups = 0;
    for _ in 0..5 {
        clock.advance(Duration::seconds(1));
        if matches!(
            svc.tick(clock.now()).await.unwrap(),
            TickOutcome::RunNow(Submission::Submitted { .. })
        ) {
            follow_ups += 1;
        }
        settle(&queue).await;
    }
    assert_eq!(
        follow_ups, 2,
        "one per refused attempt, none after the scan finished"
    );
    assert_eq!(store.scans().len(), 1);
    assert_eq!(svc.pending_run_now(), None);
}

#[tokio::test]
async fn dry_runs_answer_a_run_now_request_only_when_every_scan_is_a_dry_run() {
    // The handler records each scan as the engine would with `dry_run` configured.
    struct DryScan(RecordingScan);
    #[async_trait::async_trait]
    impl JobHandler for DryScan {
        async fn run(&self, job: &JobSpec) -> Result<(), String> {
            let mut record = ScanRecord::started(ScanId::new(), job.trigger, 0, self.0.clock.now());
            record.dry_run = true;
            record.status = selfmon_core::ScanStatus::Success;
            record.completed_at = Some(self.0.clock.now());
            self.0
                .store
                .begin_scan(&record)
                .await
                .map_err(|e| e.to_string())
        }
    }
    for configured_dry_run in [true, false] {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = Arc::new(selfmon_core::testing::FakeClock::new(t0));
        let store = Arc::new(MemoryStateStore::new());
        let queue = MemoryJobQueue::start(Arc::new(DryScan(RecordingScan {
            gate: tokio::sync::Semaphore::new(0),
            store: store.clone(),
            clock: clock.clone(),
        })));
        let config = Arc::new(RwLock::new(SelfMonitoringConfig {
            dry_run: configured_dry_run,
            ..Default::default()
        }));
        let svc = SelfMonitoringService::new(config, queue.clone(), store.clone())
            .with_clock(clock.clone());
        svc.run_now().await.unwrap();
        settle(&queue).await;
        clock.advance(Duration::seconds(1));
        let outcome = svc.tick(clock.now()).await.unwrap();
        settle(&queue).await;
        if configured_dry_run {
            // Every scan of this service is a preview: the one it ran answers the request.
            assert!(!matches!(outcome, TickOutcome::RunNow(_)), "{outcome:?}");
            assert_eq!(svc.pending_run_now(), None);
        } else {
            // A dry run (here, someone else's preview) consumed nothing: a real scan is still owed.
            assert!(matches!(outcome, TickOutcome::RunNow(_)), "{outcome:?}");
            assert!(svc.pending_run_now().is_some());
        }
    }
}

/// Panics on its first job, then succeeds.
struct PanicsOnce(std::sync::atomic::AtomicBool);

#[async_trait::async_trait]
impl JobHandler for PanicsOnce {
    async fn run(&self, _job: &JobSpec) -> std::result::Result<(), String> {
        if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
            panic!("a defect in the job");
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_job_that_panics_fails_and_the_queue_runs_the_next_one() {
    // The worker ran jobs on its own task: a panicking scan took it down, the job stayed
    // "running" for good and no scan ever ran again (the scheduler reported every tick as
    // "already running").
    use selfmon_core::JobQueue as _;
    let queue = MemoryJobQueue::start(Arc::new(PanicsOnce(Default::default())));
    let job = || JobSpec {
        kind: JobKind::SelfMonitoring,
        model: Default::default(),
        trigger: ScanTrigger::Manual,
        payload: serde_json::Value::Null,
    };
    let first = queue.submit(job()).await.unwrap();
    match queue.wait(&first).await {
        Some(JobStatus::Failed { error }) => {
            assert!(error.contains("panicked: a defect in the job"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        queue.active_job(&JobKind::SelfMonitoring).await.unwrap(),
        None,
        "nothing is left running"
    );
    let second = queue.submit(job()).await.unwrap();
    assert_eq!(queue.wait(&second).await, Some(JobStatus::Succeeded));
}

#[tokio::test]
async fn after_the_clock_is_set_back_scans_go_on_at_the_cadence_not_after_the_clock_caught_up() {
    // Cadence 1 minute; scans at 02:00 and 02:01 by a clock then stepped back two hours.
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 2, 0, 0).unwrap();
    let clock = Arc::new(selfmon_core::testing::FakeClock::new(t0));
    let store = Arc::new(MemoryStateStore::new());
    let queue = MemoryJobQueue::start(Arc::new(RecordingScan {
        gate: tokio::sync::Semaphore::new(100),
        store: store.clone(),
        clock: clock.clone(),
    }));
    let svc = SelfMonitoringService::new(enabled(1), queue.clone(), store.clone())
        .with_clock(clock.clone());
    for _ in 0..2 {
        assert!(matches!(
            svc.tick(clock.now()).await.unwrap(),
            TickOutcome::Due(Submission::Submitted { .. })
        ));
        settle(&queue).await;
        clock.advance(Duration::minutes(1));
    }
    assert_eq!(store.scans().len(), 2);
    clock.set(t0 - Duration::hours(2) + Duration::seconds(30));
    assert!(
        matches!(
            svc.tick(clock.now()).await.unwrap(),
            TickOutcome::Due(Submission::Submitted { .. })
        ),
        "the submission stamped before the step does not hold the schedule back: {:?}",
        svc.next_scan(clock.now()).await.unwrap()
    );
    settle(&queue).await;
    clock.advance(Duration::minutes(1));
    assert!(
        matches!(svc.tick(clock.now()).await.unwrap(), TickOutcome::Due(_)),
        "and the next one a cadence later"
    );
    settle(&queue).await;
    assert_eq!(store.scans().len(), 4);
}

#[tokio::test]
async fn a_run_now_request_stamped_before_the_clock_was_set_back_is_answered_by_the_next_scan() {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 2, 0, 0).unwrap();
    let clock = Arc::new(selfmon_core::testing::FakeClock::new(t0));
    let store = Arc::new(MemoryStateStore::new());
    // The request's own scan leaves no row (as when another node held the lease) ...
    struct RefuseFirst {
        refused: std::sync::atomic::AtomicBool,
        inner: RecordingScan,
    }
    #[async_trait::async_trait]
    impl JobHandler for RefuseFirst {
        async fn run(&self, job: &JobSpec) -> Result<(), String> {
            if !self.refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Err("another scan is running: the lease is held by node-b".into());
            }
            self.inner.run(job).await
        }
    }
    let queue = MemoryJobQueue::start(Arc::new(RefuseFirst {
        refused: false.into(),
        inner: RecordingScan {
            gate: tokio::sync::Semaphore::new(100),
            store: store.clone(),
            clock: clock.clone(),
        },
    }));
    let svc = SelfMonitoringService::new(
        Arc::new(RwLock::new(SelfMonitoringConfig::default())),
        queue.clone(),
        store.clone(),
    )
    .with_clock(clock.clone());
    svc.run_now().await.unwrap();
    settle(&queue).await;
    // ... and the clock is set back two hours before the follow-up.
    clock.set(t0 - Duration::hours(2));
    let mut follow_ups = 0;
    for _ in 0..5 {
        clock.advance(Duration::seconds(1));
        if matches!(
            svc.tick(clock.now()).await.unwrap(),
            TickOutcome::RunNow(Submission::Submitted { .. })
        ) {
            follow_ups += 1;
        }
        settle(&queue).await;
    }
    assert_eq!(
        follow_ups, 1,
        "one follow-up scan answers the request, not one per tick until the clock caught up"
    );
    assert_eq!(svc.pending_run_now(), None);
}
