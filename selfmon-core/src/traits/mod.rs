//! The pluggable traits: one file per trait.

mod analysis_runner;
mod deduplicator;
mod issue_tracker;
mod job_queue;
mod log_source;
mod state_store;

pub use analysis_runner::{Analysis, AnalysisRequest, AnalysisRunner, Usage};
pub use deduplicator::{DedupDecision, DedupTier, Deduplicator};
pub use issue_tracker::IssueTracker;
pub use job_queue::{JobId, JobKind, JobQueue, JobSpec, JobStatus, Submission};
pub use log_source::{LogPage, LogSource, LogSourceDescription};
pub use state_store::{
    IssueFilter, Lease, LeaseHolder, LeaseOutcome, LeaseRenewal, Page, PageRequest, StateStore,
};
