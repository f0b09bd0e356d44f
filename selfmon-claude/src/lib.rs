#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cli_result;
pub mod config;
pub mod error;
pub mod extract;
pub mod invocation;
pub mod process;
pub mod response;
pub mod runner;

pub use config::{ClaudeRunnerConfig, ToolPolicy};
pub use error::Error;
pub use response::{response_schema, RawFinding, RawResponse};
pub use runner::{ClaudeJob, ClaudeRunner, JobOutput};
