//! The pluggable traits: one file per trait.
//!
//! Durable state is split by what is needed together: [`ScanLedger`] and [`IssueLedger`] (what a
//! scan needs), [`ScanHistory`] (read-only, for UIs), their umbrella [`StateStore`], and the
//! optional [`TemplateMemory`]. Every trait is implemented for `Arc<T>` and `Box<T>` too.

mod forward;

mod analysis_runner;
mod deduplicator;
mod issue_ledger;
mod issue_tracker;
mod job_queue;
mod log_source;
mod scan_history;
mod scan_ledger;
mod state_store;
mod template_memory;

pub use analysis_runner::{Analysis, AnalysisRequest, AnalysisRunner, Usage};
pub use deduplicator::{
    explain_by_code_or_template, DedupDecision, DedupTier, Deduplicator, KnownIssuesView,
    SignatureMatch,
};
pub use issue_ledger::IssueLedger;
pub use issue_tracker::IssueTracker;
pub use job_queue::{JobId, JobKind, JobQueue, JobSpec, JobStatus, Submission};
pub use log_source::{LogPage, LogSource, LogSourceDescription};
pub use scan_history::{IssueFilter, Page, PageRequest, ScanHistory};
pub use scan_ledger::{Lease, LeaseHolder, LeaseOutcome, LeaseRenewal, ScanLedger};
pub use state_store::StateStore;
pub use template_memory::TemplateMemory;
