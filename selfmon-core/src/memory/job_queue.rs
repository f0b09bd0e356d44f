//! A real single-worker tokio job queue: FIFO, one job at a time, statuses.
//!
//! Good enough for production in a host without a queue of its own.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::engine::{ScanOptions, SelfMonitor};
use crate::error::Result;
use crate::traits::{JobId, JobKind, JobQueue, JobSpec, JobStatus, Submission};

/// Runs the jobs a [`MemoryJobQueue`] hands it.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// Runs one job; `Err` is shown as the job's failure text.
    async fn run(&self, job: &JobSpec) -> std::result::Result<(), String>;
}

#[async_trait]
impl JobHandler for SelfMonitor {
    /// Runs a scan for [`JobKind::SelfMonitoring`] jobs, on the job's model; other kinds fail.
    async fn run(&self, job: &JobSpec) -> std::result::Result<(), String> {
        match job.kind {
            JobKind::SelfMonitoring => self
                .scan_with(ScanOptions {
                    trigger: job.trigger,
                    model: Some(job.model.clone()),
                    dry_run: false,
                })
                .await
                .map(|_| ())
                .map_err(|e| crate::engine::error_chain(&e)),
            ref other => Err(format!("SelfMonitor cannot run {other} jobs")),
        }
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<(JobId, JobSpec)>,
    statuses: HashMap<JobId, (JobKind, JobStatus)>,
    next: u64,
}

/// A FIFO queue with one tokio worker.
pub struct MemoryJobQueue {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
    worker: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for MemoryJobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryJobQueue").finish_non_exhaustive()
    }
}

impl Drop for MemoryJobQueue {
    fn drop(&mut self) {
        self.worker.abort();
    }
}

impl MemoryJobQueue {
    /// Starts the worker on the current tokio runtime.
    pub fn start(handler: Arc<dyn JobHandler>) -> Arc<Self> {
        let state = Arc::new(Mutex::new(State::default()));
        let wake = Arc::new(Notify::new());
        let worker = tokio::spawn(worker(state.clone(), wake.clone(), handler));
        Arc::new(MemoryJobQueue {
            state,
            wake,
            worker,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(state: &mut State, job: JobSpec) -> JobId {
        state.next += 1;
        let id = JobId(format!("job-{}", state.next));
        state
            .statuses
            .insert(id.clone(), (job.kind.clone(), JobStatus::Queued));
        state.queue.push_back((id.clone(), job));
        id
    }

    fn active(state: &State, kind: &JobKind) -> Option<(JobId, JobStatus)> {
        // Prefer the running one, then the oldest queued.
        let running = state
            .statuses
            .iter()
            .find(|(_, (k, s))| k == kind && *s == JobStatus::Running)
            .map(|(id, (_, s))| (id.clone(), s.clone()));
        running.or_else(|| {
            state
                .queue
                .iter()
                .find(|(_, j)| &j.kind == kind)
                .map(|(id, _)| (id.clone(), JobStatus::Queued))
        })
    }

    /// Waits until the job has finished (succeeded or failed) and returns its status.
    pub async fn wait(&self, id: &JobId) -> Option<JobStatus> {
        loop {
            match self.lock().statuses.get(id) {
                None => return None,
                Some((_, s)) if !s.is_active() => return Some(s.clone()),
                _ => {}
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}

async fn worker(state: Arc<Mutex<State>>, wake: Arc<Notify>, handler: Arc<dyn JobHandler>) {
    loop {
        let next = {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            let job = s.queue.pop_front();
            if let Some((id, j)) = &job {
                s.statuses
                    .insert(id.clone(), (j.kind.clone(), JobStatus::Running));
            }
            job
        };
        let Some((id, job)) = next else {
            wake.notified().await;
            continue;
        };
        // On a task of its own: a job that panics fails (its status says so) instead of taking
        // the worker down with it, which left the job "running" and ran no job ever again.
        let mut run = {
            let handler = handler.clone();
            let job = job.clone();
            AbortOnDrop(tokio::spawn(async move { handler.run(&job).await }))
        };
        let status = match (&mut run.0).await {
            Ok(Ok(())) => JobStatus::Succeeded,
            Ok(Err(error)) => JobStatus::Failed { error },
            Err(e) => JobStatus::Failed {
                error: match e.try_into_panic() {
                    Ok(payload) => format!(
                        "the job panicked: {}",
                        crate::engine::panic_message(payload.as_ref())
                    ),
                    Err(e) => format!("the job was stopped: {e}"),
                },
            },
        };
        state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .statuses
            .insert(id, (job.kind, status));
    }
}

/// A job's task, stopped when the worker is (the queue dropped), as the job was when it ran on
/// the worker's own task.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[async_trait]
impl JobQueue for MemoryJobQueue {
    async fn submit(&self, job: JobSpec) -> Result<JobId> {
        let id = Self::push(&mut self.lock(), job);
        self.wake.notify_one();
        Ok(id)
    }

    async fn active_job(&self, kind: &JobKind) -> Result<Option<(JobId, JobStatus)>> {
        Ok(Self::active(&self.lock(), kind))
    }

    async fn status(&self, id: &JobId) -> Result<Option<JobStatus>> {
        Ok(self.lock().statuses.get(id).map(|(_, s)| s.clone()))
    }

    /// Atomic: the check and the submit happen under one lock.
    async fn submit_if_idle(&self, job: JobSpec) -> Result<Submission> {
        let sub = {
            let mut s = self.lock();
            match Self::active(&s, &job.kind) {
                Some((job_id, status)) => Submission::AlreadyActive { job_id, status },
                None => Submission::Submitted {
                    job_id: Self::push(&mut s, job),
                },
            }
        };
        self.wake.notify_one();
        Ok(sub)
    }
}
