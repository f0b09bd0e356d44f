//! In-memory adapters for every trait: good enough for a host's own unit tests (and, for the job
//! queue, for production in a host without a queue of its own).

mod issue_tracker;
mod job_queue;
mod log_source;
mod runner;
mod state_store;
pub mod tool;

pub use crate::clock::FakeClock;
pub use issue_tracker::{MemoryIssue, MemoryIssueTracker, TrackerFault};
pub use job_queue::{JobHandler, MemoryJobQueue};
pub use log_source::MemoryLogSource;
pub use runner::ScriptedRunner;
pub use state_store::{MemoryStateStore, StoreOp};
