//! The host's job queue.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{ClaudeModel, ScanTrigger};

/// What kind of work a job is. Hosts with other Claude jobs use the same queue and model type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// A self-monitoring scan.
    SelfMonitoring,
    /// CIDX's golden-repository analysis.
    GoldenRepo,
    /// Anything else the host runs.
    Other(String),
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobKind::SelfMonitoring => f.write_str("self_monitoring"),
            JobKind::GoldenRepo => f.write_str("golden_repo"),
            JobKind::Other(s) => f.write_str(s),
        }
    }
}

/// A job to submit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Kind.
    pub kind: JobKind,
    /// Model the job runs on, read from the configuration at submit time.
    pub model: ClaudeModel,
    /// Why it was submitted.
    pub trigger: ScanTrigger,
    /// Kind-specific data.
    #[serde(default)]
    pub payload: serde_json::Value,
}

/// A job's id in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for the worker.
    Queued,
    /// Being worked on.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error.
    Failed {
        /// The error text.
        error: String,
    },
}

impl JobStatus {
    /// Queued or running.
    pub fn is_active(&self) -> bool {
        matches!(self, JobStatus::Queued | JobStatus::Running)
    }

    /// `"queued"`, `"running"`, `"succeeded"` or `"failed"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed { .. } => "failed",
        }
    }
}

/// The answer to [`JobQueue::submit_if_idle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Submission {
    /// A new job was queued.
    Submitted {
        /// Its id.
        job_id: JobId,
    },
    /// A job of the same kind was already queued or running; nothing was submitted.
    AlreadyActive {
        /// The existing job.
        job_id: JobId,
        /// Its status (queued or running).
        status: JobStatus,
    },
}

/// The host's job queue (CIDX runs one job at a time).
///
/// Contract:
/// - Jobs of the same queue run one at a time in submission order unless the host documents
///   otherwise.
/// - [`submit_if_idle`](JobQueue::submit_if_idle) must not create a second active job of a kind;
///   implementations should make the check and the submit atomic. The default implementation
///   checks then submits and is only race-free when callers are serialised.
/// - [`status`](JobQueue::status) returns `None` for an id the queue does not know (never seen, or
///   forgotten after retention).
/// - Errors are `Error::Adapter { component: JobQueue, .. }`; submit is not idempotent, so a failed
///   submit should be followed by [`active_job`](JobQueue::active_job) before retrying.
/// - `conformance::job_queue` (feature `mock`) checks an implementation against this.
// Adding a method? List it in the `forward!` at the end of this file too.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Queues a job and returns its id.
    async fn submit(&self, job: JobSpec) -> Result<JobId>;

    /// The queued or running job of `kind`, if any.
    async fn active_job(&self, kind: &JobKind) -> Result<Option<(JobId, JobStatus)>>;

    /// Status of a job.
    async fn status(&self, id: &JobId) -> Result<Option<JobStatus>>;

    /// Queues `job` unless a job of its kind is already queued or running.
    async fn submit_if_idle(&self, job: JobSpec) -> Result<Submission> {
        if let Some((job_id, status)) = self.active_job(&job.kind).await? {
            return Ok(Submission::AlreadyActive { job_id, status });
        }
        let job_id = self.submit(job).await?;
        Ok(Submission::Submitted { job_id })
    }
}

crate::traits::forward::forward! {
    JobQueue {
        async fn submit(&self, job: JobSpec) -> Result<JobId>;
        async fn active_job(&self, kind: &JobKind) -> Result<Option<(JobId, JobStatus)>>;
        async fn status(&self, id: &JobId) -> Result<Option<JobStatus>>;
        async fn submit_if_idle(&self, job: JobSpec) -> Result<Submission>;
    }
}
