//! Test doubles: fault injection around any adapter, a scripted analysis runner, a fake clock, and
//! the skip-or-fail helper for tests that need an optional tool.
//!
//! The in-memory adapters are in [`crate::memory`]; they are re-exported here too, so
//! `selfmon_core::testing::MemoryStateStore` and the other old paths keep working.

mod fault;
mod runner;
pub mod tool;

pub use crate::clock::FakeClock;
pub use crate::memory::{
    JobHandler, MemoryIssue, MemoryIssueTracker, MemoryJobQueue, MemoryLogSource, MemoryStateStore,
};
pub use fault::{FaultyLogSource, FaultyStateStore, FaultyTracker, StoreOp, TrackerFault};
pub use runner::ScriptedRunner;
