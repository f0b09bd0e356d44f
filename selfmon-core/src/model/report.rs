//! The explanations a scan report carries beyond its counters: what happened to every signature of
//! the digest, and why the runner left some alone. Kept bounded so a stored report stays small.

use serde::{Deserialize, Serialize};

use crate::model::Level;
use crate::redact::RedactedText;
use crate::traits::DedupTier;

/// What happened to one signature of a scan's digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureReport {
    /// The signature id (stable across scans for the same message shape).
    pub id: String,
    /// The template as it may leave the process (rebuilt from a redacted sample when the raw one
    /// held a secret), capped at [`MAX_REPORT_TEMPLATE_CHARS`] characters.
    pub template: RedactedText,
    /// Highest level seen.
    pub level: Level,
    /// Records in this scan.
    pub count: u64,
    /// Its fate.
    pub fate: SignatureFate,
}

/// The fate of one signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fate", rename_all = "snake_case")]
pub enum SignatureFate {
    /// A known issue already explains it: counted as occurrences of that issue (or, when the issue
    /// is closed, handled as a regression) and not sent to analysis.
    Known {
        /// The issue.
        issue: u64,
        /// The tier that matched.
        tier: DedupTier,
        /// Whether the issue was closed (a regression).
        closed: bool,
    },
    /// An ignore rule dropped it.
    Ignored {
        /// The rule, as configured (`ignore.codes: GIT-SYNC-001`).
        rule: String,
    },
    /// Nothing known explained it: it went to analysis.
    Analysed,
}

/// A signature the runner looked at and decided not to report, with its reason, as the runner
/// gave it: untrusted and unredacted (a model may quote the log). The report keeps it as a
/// [`SkippedSignatureReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedSignature {
    /// The signature id.
    pub signature_id: String,
    /// Why no finding was made for it.
    pub reason: String,
}

/// A [`SkippedSignature`] as a report keeps it: the reason redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedSignatureReport {
    /// The signature id: one the engine computed (a hex digest) and showed the runner, never log
    /// text. An id the runner made up is kept as [`UNKNOWN_SIGNATURE_ID`].
    pub signature_id: String,
    /// Why no finding was made for it, redacted and capped at [`MAX_REPORT_TEXT_CHARS`].
    pub reason: RedactedText,
}

/// What a report keeps instead of a skipped signature's id that was not in the digest.
pub const UNKNOWN_SIGNATURE_ID: &str = "[not a signature of this scan]";

/// A finding that validation (the runner's or the engine's) rejected, as a report keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedFindingReport {
    /// The finding's title, redacted and capped.
    pub title: RedactedText,
    /// Every reason it was rejected, redacted (a reason may quote the rejected value).
    pub reasons: Vec<RedactedText>,
}

/// A condition the log source reported while the scan read (see
/// [`SourceWarning`](crate::traits::SourceWarning)), as a report keeps it: the scan succeeded, but
/// the operator has something to fix (a session holding PostgreSQL's commit horizon back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanWarning {
    /// The source's stable name of the condition (`commit_horizon_held`).
    pub kind: String,
    /// What is wrong and what to do, redacted and capped at [`MAX_REPORT_TEXT_CHARS`].
    pub message: RedactedText,
}

/// Most warnings a report keeps (one per kind; sources have few kinds).
pub const MAX_REPORT_WARNINGS: usize = 20;

/// Parts of a report dropped to keep it within its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReportOmissions {
    /// Signature entries left out (beyond [`MAX_REPORT_SIGNATURES`]).
    pub signatures: u64,
    /// Runner skip entries left out (beyond [`MAX_REPORT_SIGNATURES`]).
    pub skipped: u64,
    /// Bytes of the digest as sent left out (beyond [`MAX_REPORT_DIGEST_BYTES`]).
    pub digest_bytes: u64,
}

impl ReportOmissions {
    /// Whether anything was left out.
    pub fn any(&self) -> bool {
        self.signatures > 0 || self.skipped > 0 || self.digest_bytes > 0
    }
}

/// Most signature entries (and, separately, runner skip entries) a report keeps.
pub const MAX_REPORT_SIGNATURES: usize = 500;

/// Most bytes of the digest as sent that a report keeps.
pub const MAX_REPORT_DIGEST_BYTES: usize = 64 * 1024;

/// Longest template a signature entry keeps, in characters.
pub const MAX_REPORT_TEMPLATE_CHARS: usize = 300;

/// Longest title or reason a finding entry keeps, in characters.
pub const MAX_REPORT_TEXT_CHARS: usize = 1_000;

/// One thing a scan did about a known or filed issue: an issue's dedup history is the list of
/// these, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueEvent {
    /// The issue.
    pub issue_number: u64,
    /// The scan.
    pub scan_id: crate::model::ScanId,
    /// When (the scan's completion, or its start if it never completed).
    pub at: chrono::DateTime<chrono::Utc>,
    /// What happened.
    pub kind: IssueEventKind,
    /// Records attributed (for signature matches), else 0.
    pub records: u64,
    /// The finding's title or the signature's template, and the reason; made of the report's
    /// redacted texts.
    pub detail: RedactedText,
}

/// What a scan did about an issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueEventKind {
    /// The scan filed it.
    Filed,
    /// A signature matched it before analysis (an occurrence).
    KnownSignature,
    /// A finding duplicated it.
    Duplicate,
    /// A related finding was commented on it.
    Commented,
    /// It was closed and recurred.
    Regression,
}

impl IssueEventKind {
    /// `"filed"`, `"known_signature"`, `"duplicate"`, `"commented"` or `"regression"`.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueEventKind::Filed => "filed",
            IssueEventKind::KnownSignature => "known_signature",
            IssueEventKind::Duplicate => "duplicate",
            IssueEventKind::Commented => "commented",
            IssueEventKind::Regression => "regression",
        }
    }
}
