//! Conformance suites: one per trait, run by the in-memory adapters and every real adapter against
//! themselves, so "implements the contract" is checked the same way everywhere. A host's own
//! adapter can call them from its tests too. They panic (assert) on a violation, naming the rule.
//! Enabled by the `mock` feature.

mod analysis_runner;
mod deduplicator;
mod issue_tracker;
mod job_queue;
mod log_source;
mod state_store;

pub use analysis_runner::{analysis_request, analysis_runner, analysis_runner_times_out};
pub use deduplicator::deduplicator;
pub use issue_tracker::issue_tracker;
pub use job_queue::job_queue;
pub use log_source::{log_source, sample_records};
pub use state_store::{issue_ledger, scan_ledger, state_store, template_memory};
