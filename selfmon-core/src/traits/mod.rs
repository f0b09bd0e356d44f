//! The pluggable traits: one file per trait.
//!
//! Durable state is split by what is needed together: [`ScanLedger`] and [`IssueLedger`] (what a
//! scan needs), [`ScanHistory`] (read-only, for UIs), their umbrella [`StateStore`], and the
//! optional [`TemplateMemory`]. Every trait is implemented for `Arc<T>` and `Box<T>` too.

mod forward;

pub(crate) mod analysis_runner;
pub(crate) mod deduplicator;
pub(crate) mod issue_ledger;
pub(crate) mod issue_tracker;
pub(crate) mod job_queue;
pub(crate) mod log_source;
pub(crate) mod scan_history;
pub(crate) mod scan_ledger;
mod state_store;
pub(crate) mod template_memory;

pub use analysis_runner::{Analysis, AnalysisRequest, AnalysisRunner, Usage};
pub use deduplicator::{
    explain_by_code_or_template, DedupDecision, DedupTier, Deduplicator, KnownIssuesView,
    SignatureMatch,
};
pub use issue_ledger::IssueLedger;
pub use issue_tracker::IssueTracker;
pub use job_queue::{JobId, JobKind, JobQueue, JobSpec, JobStatus, Submission};
pub use log_source::{LogPage, LogSource, LogSourceDescription, SourceWarning};
pub use scan_history::{IssueFilter, Page, PageRequest, ScanHistory};
pub use scan_ledger::{Lease, LeaseHolder, LeaseOutcome, LeaseRenewal, ScanLedger};
pub use state_store::StateStore;
pub use template_memory::TemplateMemory;
