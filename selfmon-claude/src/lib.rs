//! # selfmon-claude
//!
//! A headless [Claude Code](https://docs.anthropic.com/en/docs/claude-code) runner for selfmon:
//! [`ClaudeRunner`] implements [`selfmon_core::AnalysisRunner`] by spawning the `claude` CLI in
//! print mode with structured output, and turns its answer into validated findings.
//!
//! What every run does:
//! - `claude -p --output-format json --json-schema <schema> --model <model> --no-session-persistence
//!   --setting-sources "" --strict-mcp-config --permission-mode dontAsk --tools "" --system-prompt-file
//!   <tmp>/instructions.md`, plus `--fallback-model`, `--max-turns` and `--max-budget-usd` from the
//!   configuration. [`ToolPolicy::ReadOnlyCode`] replaces `--tools ""` with read-only tools on one
//!   directory. Permissions are never skipped.
//! - The instructions go in a file, the data on stdin (bounded by `max_stdin_bytes`), so no
//!   argument grows with the input.
//! - The environment is built from scratch ([`invocation::build_env`]); no GitHub token reaches the
//!   model's process.
//! - The child leads its own process group in a fresh empty temporary directory; on timeout the
//!   group is killed and reaped. stdout and stderr are capped.
//! - The result counts only with exit status 0, `is_error: false`, subtype `success` and a
//!   structured output; each finding is then validated on its own and rejected with reasons.
//!
//! ```no_run
//! use selfmon_claude::{ClaudeRunner, ClaudeRunnerConfig, ClaudeJob};
//! use selfmon_core::ClaudeModel;
//!
//! # async fn demo() -> Result<(), selfmon_claude::Error> {
//! let runner = ClaudeRunner::new(ClaudeRunnerConfig::default())?;
//! // Any structured job (the engine calls `AnalysisRunner::analyze` for scans).
//! let schema = serde_json::json!({"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]});
//! let out = runner
//!     .run_job(&ClaudeJob {
//!         model: &ClaudeModel::Haiku,
//!         instructions: "Summarise the repository description on stdin in one sentence.",
//!         data: "selfmon: servers triage their own logs.",
//!         schema: &schema,
//!         timeout: None,
//!     })
//!     .await?;
//! println!("{} (cost {:?} USD)", out.structured_output["summary"], out.usage.cost_usd);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

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
