//! In-memory adapters for every trait: real implementations that keep everything in the process.
//!
//! [`MemoryJobQueue`] is a production queue for a host without one of its own; the others suit a
//! host's own tests and demos (they forget everything when dropped). Each passes its trait's
//! conformance suite. Test doubles that are not adapters (fault injection around any adapter, a
//! scripted runner, a fake clock) are in [`crate::testing`].

mod issue_tracker;
pub(crate) mod job_queue;
mod log_source;
mod state_store;

pub use issue_tracker::{MemoryIssue, MemoryIssueTracker};
pub use job_queue::{JobHandler, MemoryJobQueue};
pub use log_source::MemoryLogSource;
pub use state_store::MemoryStateStore;
