//! The analysis step (a model, or rules).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::Result;
use crate::model::{ClaudeModel, Finding, RejectedFinding, ScanId};
use crate::redact::RedactedText;

/// Everything a runner needs for one analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRequest {
    /// The scan this belongs to.
    pub scan_id: ScanId,
    /// The rendered instructions, redacted: the prompt template with its variables filled in
    /// (the open issues' titles, the log's location), which may quote log or model text. They
    /// refer to the data but do not contain it.
    pub instructions: RedactedText,
    /// The fenced, bounded digest text: untrusted data, redacted. A model runner sends it
    /// separately from the instructions (e.g. on stdin).
    pub data: RedactedText,
    /// The random boundary that fences `data`.
    pub boundary: String,
    /// The structured digest (novel signatures only), for runners that work on structure.
    pub digest: Digest,
    /// Model to use.
    pub model: ClaudeModel,
    /// Most findings wanted.
    pub max_findings: usize,
    /// Lowest record id in the scan.
    pub first_record_id: i64,
    /// Highest record id in the scan.
    pub last_record_id: i64,
    /// Time limit for the whole analysis.
    pub timeout: Duration,
}

/// Tokens and money spent, when the runner knows.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens.
    pub input_tokens: Option<u64>,
    /// Output tokens.
    pub output_tokens: Option<u64>,
    /// Cost in USD.
    pub cost_usd: Option<f64>,
    /// Model turns.
    pub turns: Option<u32>,
    /// Wall time in milliseconds.
    pub duration_ms: Option<u64>,
}

/// What a runner returns.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Analysis {
    /// Findings the runner considers valid. The engine validates them again.
    pub findings: Vec<Finding>,
    /// Findings the runner rejected itself, with reasons.
    pub rejected: Vec<RejectedFinding>,
    /// Usage, if known.
    pub usage: Usage,
    /// Signatures the runner considered and made no finding for, with why. A rule-based runner
    /// should list every one; a model runner may leave it empty.
    #[serde(default)]
    pub skipped: Vec<crate::model::SkippedSignature>,
}

/// Turns a digest into findings.
///
/// Contract:
/// - The request's `data` is untrusted; an implementation must not let it grant itself capabilities
///   (tools, files, network) beyond the runner's configured policy.
/// - Returns `Ok` only with a complete, parsed answer; an empty `findings` list is a valid answer.
///   Partial or unparseable output is an error, so the engine records the scan as failed and leaves
///   the cursor where it was.
/// - An answer has at most `request.max_findings` findings, each citing only record ids in
///   `first_record_id..=last_record_id` (the engine checks again; a runner that validates keeps
///   its rejects in `rejected`). A full answer (`max_findings` findings) may leave signatures
///   unmentioned that it had no room for: the engine shows those again in another round (at most
///   a few per scan), so a runner should list in `skipped` only what it judged not worth a finding.
///   An answer with room to spare judges every signature it was shown.
/// - A finding should cite the signatures it is about (`signature_ids`); one that cites only
///   records is linked to the signatures holding them.
/// - Must respect `request.timeout` and leave no processes or tasks behind on error or timeout.
/// - `conformance::analysis_runner` (feature `mock`) checks an implementation against this.
/// - Errors: `Error::NoAnswer` when the runner gave no answer for *this request* and the same
///   request may fail the same way: the model or API refused it (a content filter, a prompt that is
///   too long, HTTP 400/413/422), its answer was unusable, or the run timed out or stopped early
///   (turns, budget) on it. The engine fails the scan (the cursor stays) and counts it; at the
///   [`ANALYSIS_ATTEMPTS`](crate::engine::ANALYSIS_ATTEMPTS)-th such failure in a row it judges the
///   records with the offline rules, so the records are triaged and the cursor moves on. Every
///   other failure is `Error::Adapter { component: AnalysisRunner, retryable }` (or another
///   adapter variant): retryable for rate limits, overload and transient failures of the runner
///   itself, not retryable for a missing binary or bad credentials; these say nothing about the
///   records, are never counted and never lead to the fallback. A failure after the model ran is
///   wrapped in `Error::AnalysisFailed` with what it cost.
// Adding a method? List it in the `forward!` at the end of this file too.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait AnalysisRunner: Send + Sync {
    /// Runs one analysis.
    async fn analyze(&self, request: &AnalysisRequest) -> Result<Analysis>;

    /// A short name for reports (`"claude"`, `"offline"`).
    fn name(&self) -> &str;

    /// Completes when everything started by analyses whose futures were dropped (cancelled or
    /// timed out) has ended and been cleaned up: subprocesses reaped, temporary files removed.
    ///
    /// A dropped `analyze` future cannot wait, so a runner that owns processes stops them in the
    /// background; the engine awaits this (with a bound) after cancelling a scan, so that a
    /// cancelled scan returns only once nothing of it remains. Runners that start nothing need not
    /// implement it (the default returns at once). Must not wait for analyses still running.
    async fn wait_for_cleanup(&self) {}
}

crate::traits::forward::forward! {
    AnalysisRunner {
        async fn analyze(&self, request: &AnalysisRequest) -> Result<Analysis>;
        async fn wait_for_cleanup(&self);
        fn name(&self) -> &str;
    }
}
