//! Scans: identity, trigger, status, the persisted record and the report returned to the host.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{IssueRef, RejectedFinding};

/// Unique id of a scan (a UUID v4 in text form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScanId(pub String);

impl ScanId {
    /// A fresh random id.
    pub fn new() -> Self {
        ScanId(uuid::Uuid::new_v4().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ScanId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ScanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a scan ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ScanTrigger {
    /// The cadence came due.
    #[default]
    Scheduled,
    /// Somebody pressed "Run now".
    Manual,
}

impl ScanTrigger {
    /// `"scheduled"` or `"manual"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanTrigger::Scheduled => "scheduled",
            ScanTrigger::Manual => "manual",
        }
    }
}

/// Where a scan is. Stored upper-case (`RUNNING`, `SUCCESS`, `FAILURE`) as CIDX's dashboard expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ScanStatus {
    /// Started, not finished.
    Running,
    /// Finished; the cursor advanced.
    Success,
    /// Failed; the cursor stayed where it was.
    Failure,
}

impl ScanStatus {
    /// `"RUNNING"`, `"SUCCESS"` or `"FAILURE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanStatus::Running => "RUNNING",
            ScanStatus::Success => "SUCCESS",
            ScanStatus::Failure => "FAILURE",
        }
    }
}

/// Duplicates skipped, by dedup tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DuplicateCounts {
    /// Tier 1: same error code.
    pub by_error_code: u32,
    /// Tier 2: same fingerprint.
    pub by_fingerprint: u32,
    /// Tier 3: similar enough to be the same (only when the policy skips rather than comments).
    pub by_similarity: u32,
}

impl DuplicateCounts {
    /// Total across tiers.
    pub fn total(&self) -> u32 {
        self.by_error_code + self.by_fingerprint + self.by_similarity
    }
}

/// The persisted history row of one scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanRecord {
    /// Id.
    pub scan_id: ScanId,
    /// Why it ran.
    pub trigger: ScanTrigger,
    /// Where it is.
    pub status: ScanStatus,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished (success or failure).
    pub completed_at: Option<DateTime<Utc>>,
    /// The cursor it started from (records with larger ids were read).
    pub log_id_start: i64,
    /// The cursor after the scan: the highest id the engine read (equals `log_id_start` until success).
    pub log_id_end: i64,
    /// Records read.
    pub records_read: u64,
    /// Distinct signatures in the digest.
    pub signatures: u64,
    /// Signatures no known issue accounted for (what analysis saw).
    pub novel_signatures: u64,
    /// Signatures matched to known issues before analysis.
    pub known_signatures: u64,
    /// Signatures dropped by ignore rules.
    pub ignored_signatures: u64,
    /// Findings analysis returned (valid ones).
    pub findings: u64,
    /// Findings rejected by validation.
    pub rejected_findings: u64,
    /// Issues created.
    pub issues_created: u64,
    /// Duplicates skipped, by tier.
    pub duplicates: DuplicateCounts,
    /// Comments added to existing issues (related findings, regressions).
    pub comments_added: u64,
    /// Closed issues that recurred.
    pub regressions: u64,
    /// Findings not filed because the per-scan budget was spent (kept in the backlog).
    pub deferred: u64,
    /// Findings waiting in the backlog when the scan finished.
    #[serde(default)]
    pub backlog: u64,
    /// Whether analysis ran (false when nothing novel remained).
    pub analysis_ran: bool,
    /// Model used.
    pub model: Option<String>,
    /// Version of the prompt used.
    pub prompt_version: Option<u32>,
    /// Cost in USD, if the runner reported it.
    pub cost_usd: Option<f64>,
    /// Input tokens, if reported.
    pub input_tokens: Option<u64>,
    /// Output tokens, if reported.
    pub output_tokens: Option<u64>,
    /// Record ids that were expected but missing (deleted by retention before this scan).
    pub gap_records: u64,
    /// Whether the cursor was reset because the log was recreated (its max id was below the cursor).
    pub cursor_reset: bool,
    /// Whether this was a dry run: a preview that filed nothing and changed no state (cursor,
    /// occurrences, learned templates, backlog).
    pub dry_run: bool,
    /// Why the scan failed.
    pub error_message: Option<String>,
}

impl ScanRecord {
    /// A fresh running record.
    pub fn started(scan_id: ScanId, trigger: ScanTrigger, cursor: i64, now: DateTime<Utc>) -> Self {
        ScanRecord {
            scan_id,
            trigger,
            status: ScanStatus::Running,
            started_at: now,
            completed_at: None,
            log_id_start: cursor,
            log_id_end: cursor,
            records_read: 0,
            signatures: 0,
            novel_signatures: 0,
            known_signatures: 0,
            ignored_signatures: 0,
            findings: 0,
            rejected_findings: 0,
            issues_created: 0,
            duplicates: DuplicateCounts::default(),
            comments_added: 0,
            regressions: 0,
            deferred: 0,
            backlog: 0,
            analysis_ran: false,
            model: None,
            prompt_version: None,
            cost_usd: None,
            input_tokens: None,
            output_tokens: None,
            gap_records: 0,
            cursor_reset: false,
            dry_run: false,
            error_message: None,
        }
    }

    /// Duration in milliseconds, once finished.
    pub fn duration_ms(&self) -> Option<i64> {
        self.completed_at
            .map(|c| (c - self.started_at).num_milliseconds())
    }
}

/// What happened to one finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum FindingOutcome {
    /// A new issue was filed.
    Filed {
        /// Title as filed.
        title: String,
        /// The new issue.
        issue: IssueRef,
    },
    /// Would have been filed (dry run).
    WouldFile {
        /// Title.
        title: String,
        /// The body that would have been sent.
        body: String,
    },
    /// A known issue already covers it.
    Duplicate {
        /// Title of the finding.
        title: String,
        /// The issue it duplicates.
        issue: u64,
        /// Why (tier and attributes).
        reason: String,
    },
    /// Related to a known issue: commented there instead.
    Commented {
        /// Title of the finding.
        title: String,
        /// The issue commented on.
        issue: u64,
        /// Why.
        reason: String,
    },
    /// A closed issue recurred: commented (and reopened, if configured).
    Regression {
        /// Title of the finding.
        title: String,
        /// The closed issue.
        issue: u64,
        /// Whether it was reopened.
        reopened: bool,
    },
    /// Not filed: the per-scan budget was spent. Kept in the outbox for the next scan.
    Deferred {
        /// Title.
        title: String,
    },
}

/// What one scan did, returned to the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    /// The persisted record.
    pub record: ScanRecord,
    /// What happened to each finding.
    pub outcomes: Vec<FindingOutcome>,
    /// Findings validation rejected, with reasons.
    pub rejected: Vec<RejectedFinding>,
    /// Filings from earlier scans that this scan completed (outbox reconciliation).
    pub reconciled: Vec<IssueRef>,
    /// The lease of a scan whose process was gone, which this scan took over at its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_over_lease: Option<crate::traits::Lease>,
}

impl ScanReport {
    /// Issues filed by this scan.
    pub fn filed(&self) -> impl Iterator<Item = &IssueRef> {
        self.outcomes.iter().filter_map(|o| match o {
            FindingOutcome::Filed { issue, .. } => Some(issue),
            _ => None,
        })
    }
}
