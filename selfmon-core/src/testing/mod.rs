//! Test doubles: a scripted analysis runner, a fake clock, and the skip-or-fail helper for tests
//! that need an optional tool.
//!
//! The in-memory adapters moved to [`crate::memory`]; they are re-exported here too, so
//! `selfmon_core::testing::MemoryStateStore` and the other old paths keep working.

mod runner;
pub mod tool;

pub use crate::clock::FakeClock;
pub use crate::memory::{
    JobHandler, MemoryIssue, MemoryIssueTracker, MemoryJobQueue, MemoryLogSource, MemoryStateStore,
    StoreOp, TrackerFault,
};
pub use runner::ScriptedRunner;
