//! # selfmon-core
//!
//! The domain model, configuration, pluggable traits, scan engine, deterministic triage and test
//! doubles of selfmon.
pub mod catalog;
pub mod config;
pub mod dedup;
pub mod digest;
pub mod error;
pub mod model;
pub mod prompt;
pub mod template;
pub mod traits;

pub use config::SelfMonitoringConfig;
pub use error::{Component, Error, Result};
pub use model::*;
pub use traits::*;
