//! [`ClaudeRunner`]: the [`AnalysisRunner`] that runs the Claude Code CLI headless, and the generic
//! structured job the host's other Claude jobs use.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use selfmon_core::error::truncate_chars;
use selfmon_core::{
    Analysis, AnalysisRequest, AnalysisRunner, ClaudeModel, EvidenceScope, FindingLimits, Usage,
};
use serde_json::Value;
use tracing::Instrument;

use crate::cli_result::interpret;
use crate::config::ClaudeRunnerConfig;
use crate::error::Error;
use crate::extract::extract_object;
use crate::invocation::{build_args, build_env, check_env_values};
use crate::process::{self, resolve_binary, Invocation, Limits, PrivateDir, Terminations};
use crate::response::{response_schema, validate_findings, RawResponse};

/// One structured Claude job: a model, instructions, untrusted data and the JSON schema the answer
/// must match. Self-monitoring scans and the host's other jobs (golden-repo analysis) both use it;
/// the model travels with the job, so a model changed in the host's configuration applies to the
/// next job.
#[derive(Debug, Clone, Copy)]
pub struct ClaudeJob<'a> {
    /// The model for this job.
    pub model: &'a ClaudeModel,
    /// What to do; becomes the system prompt (via a file, never an argument).
    pub instructions: &'a str,
    /// The untrusted input; sent on stdin.
    pub data: &'a str,
    /// JSON schema of the answer (`--json-schema`).
    pub schema: &'a Value,
    /// A time limit for this job; the configured timeout applies if it is shorter.
    pub timeout: Option<Duration>,
}

/// What a successful job returns.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutput {
    /// The schema-validated answer as the CLI reported it.
    pub structured_output: Value,
    /// Tokens, cost, turns and time.
    pub usage: Usage,
    /// The CLI's session id (not persisted to disk).
    pub session_id: Option<String>,
}

/// Runs the Claude Code CLI as a least-privilege, bounded subprocess.
///
/// Each run gets a fresh private temporary directory (working directory plus the instructions
/// file), an environment built from scratch, its own process group and a deadline. See the crate
/// documentation for the exact command line.
#[derive(Debug)]
pub struct ClaudeRunner {
    config: RwLock<ClaudeRunnerConfig>,
    limits: FindingLimits,
    tracker_tokens: Vec<String>,
    terminations: Arc<Terminations>,
    termination_grace: Duration,
}

impl ClaudeRunner {
    /// A runner with the given configuration, after [`ClaudeRunnerConfig::validate`].
    pub fn new(config: ClaudeRunnerConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(ClaudeRunner {
            config: RwLock::new(config),
            limits: FindingLimits::default(),
            tracker_tokens: Vec::new(),
            terminations: Terminations::new(),
            termination_grace: process::DEFAULT_TERMINATION_GRACE,
        })
    }

    /// The issue tracker's credentials: no run passes a variable holding one to the CLI (see
    /// [`check_env_values`]); such a run fails with
    /// [`Error::ForbiddenEnvValue`] before spawning.
    pub fn with_tracker_tokens(mut self, tokens: Vec<String>) -> Self {
        self.tracker_tokens = tokens;
        self
    }

    /// Uses `limits` when validating findings instead of the defaults.
    pub fn with_finding_limits(mut self, limits: FindingLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How long the CLI has to exit after `SIGTERM` (on timeout, cancellation, or leftover
    /// helpers after it exited) before its process group gets `SIGKILL` (default 2 s).
    pub fn with_termination_grace(mut self, grace: Duration) -> Self {
        self.termination_grace = grace;
        self
    }

    /// Completes when no process group of a finished or dropped run is still being stopped and
    /// cleaned up (see [`crate::process`]).
    pub async fn wait_for_cleanup(&self) {
        self.terminations.wait_idle().await;
    }

    /// A copy of the current configuration.
    pub fn config(&self) -> ClaudeRunnerConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the configuration after validating it. Runs already started keep the old one; the
    /// next run uses the new one, without a restart.
    pub fn set_config(&self, config: ClaudeRunnerConfig) -> Result<(), Error> {
        config.validate()?;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
        Ok(())
    }

    /// Runs one structured job and returns the CLI's validated structured output.
    ///
    /// Errors: [`Error::InputTooLarge`] before spawning when `data` exceeds `max_stdin_bytes`;
    /// [`Error::CliNotFound`]; [`Error::Timeout`] after killing the process group; and one variant
    /// per way the CLI can fail (see [`crate::cli_result::interpret`]).
    pub async fn run_job(&self, job: &ClaudeJob<'_>) -> Result<JobOutput, Error> {
        let config = self.config();
        let span =
            tracing::info_span!("claude_job", model = %job.model, data_bytes = job.data.len());
        async move {
            if job.data.len() > config.max_stdin_bytes {
                return Err(Error::InputTooLarge {
                    bytes: job.data.len(),
                    limit: config.max_stdin_bytes,
                });
            }
            let env = build_env(&config, std::env::vars_os());
            check_env_values(&env, &self.tracker_tokens)?;
            let program = resolve_binary(&config.binary, std::env::var_os("PATH").as_deref())?;
            // What runs of a killed process left (its CLI's group, its directory) goes first.
            process::sweep_temp_dir().await;
            let dir = PrivateDir::new()?;
            let cwd = dir.work_dir();
            let instructions = dir.write_file("instructions.md", job.instructions.as_bytes())?;
            let schema = job.schema.to_string();
            let invocation = Invocation {
                program,
                args: build_args(&config, job.model, &schema, &instructions)?,
                env,
                cwd,
            };
            let timeout = job
                .timeout
                .map_or(config.timeout(), |t| t.min(config.timeout()));
            let limits = Limits {
                timeout,
                max_stdout_bytes: config.max_stdout_bytes,
                max_stderr_bytes: config.max_stderr_bytes,
                termination_grace: self.termination_grace,
            };
            let output = process::run(
                &invocation,
                job.data.as_bytes(),
                limits,
                dir,
                &self.terminations,
            )
            .await?;
            let result = interpret(output.status, &output.stdout, &output.stderr)
                .map_err(|e| with_usage_of(&output.stdout, e))?;
            let usage = result.usage();
            tracing::info!(
                turns = usage.turns,
                cost_usd = usage.cost_usd,
                input_tokens = usage.input_tokens,
                output_tokens = usage.output_tokens,
                "claude job finished"
            );
            Ok(JobOutput {
                structured_output: result.structured_output.unwrap_or(Value::Null),
                usage,
                session_id: result.session_id,
            })
        }
        .instrument(span)
        .await
    }
}

/// `e` as [`Error::Costly`] when `stdout` holds a result object reporting that the run used tokens
/// or money (the model ran, so the failure cost something), else `e` unchanged.
fn with_usage_of(stdout: &[u8], e: Error) -> Error {
    let text = String::from_utf8_lossy(stdout);
    match extract_object::<crate::cli_result::CliResult>(&text, |r| r.kind == "result") {
        Ok(result) => {
            let usage = result.usage();
            // Only a run that read or wrote tokens or cost money is costly: a refused API key
            // reports a result with zero usage.
            let spent = usage.cost_usd.is_some_and(|c| c > 0.0)
                || usage.input_tokens.is_some_and(|t| t > 0)
                || usage.output_tokens.is_some_and(|t| t > 0);
            if !spent {
                e
            } else {
                Error::Costly {
                    usage,
                    source: Box::new(e),
                }
            }
        }
        Err(_) => e,
    }
}

/// Reads the findings response out of a structured output: an object, or a string holding one
/// (possibly wrapped in noise).
fn parse_response(output: &Value) -> Result<RawResponse, Error> {
    let invalid = |reason: String| Error::InvalidStructuredOutput {
        reason,
        output_head: truncate_chars(&output.to_string(), 500),
    };
    match output {
        Value::String(text) => extract_object::<RawResponse>(text, |_| true).map_err(invalid),
        other => serde_json::from_value::<RawResponse>(other.clone())
            .map_err(|e| invalid(format!("does not match the findings response: {e}"))),
    }
}

#[async_trait]
impl AnalysisRunner for ClaudeRunner {
    async fn analyze(&self, request: &AnalysisRequest) -> selfmon_core::Result<Analysis> {
        let schema = response_schema(Some(request.max_findings));
        let job = ClaudeJob {
            model: &request.model,
            instructions: &request.instructions,
            data: &request.data,
            schema: &schema,
            timeout: Some(request.timeout),
        };
        let output = self
            .run_job(&job)
            .instrument(tracing::info_span!("claude_analysis", scan_id = %request.scan_id))
            .await?;
        let raw = parse_response(&output.structured_output).map_err(|e| Error::Costly {
            usage: output.usage,
            source: Box::new(e),
        })?;
        let signature_ids = request.digest.signature_ids();
        let scope = EvidenceScope {
            first_id: request.first_record_id,
            last_id: request.last_record_id,
            signature_ids: &signature_ids,
        };
        let (findings, rejected) = validate_findings(
            &raw,
            &self.limits,
            &scope,
            &request.digest,
            request.max_findings,
        );
        if !rejected.is_empty() {
            tracing::warn!(
                rejected = rejected.len(),
                accepted = findings.len(),
                "claude findings rejected"
            );
        }
        Ok(Analysis {
            findings,
            rejected,
            usage: output.usage,
            skipped: Vec::new(),
        })
    }

    fn name(&self) -> &str {
        "claude"
    }

    async fn wait_for_cleanup(&self) {
        self.terminations.wait_idle().await;
    }
}
