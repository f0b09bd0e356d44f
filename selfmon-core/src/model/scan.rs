//! Scans: identity, trigger, status, the persisted record and the report returned to the host.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{
    IssueEvent, IssueEventKind, IssueRef, RejectedFindingReport, ReportOmissions, SignatureFate,
    SignatureReport, SkippedSignatureReport, MAX_REPORT_DIGEST_BYTES, MAX_REPORT_SIGNATURES,
    MAX_REPORT_TEXT_CHARS,
};
use crate::redact::RedactedText;
use crate::traits::DedupTier;

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
    /// Distinct signatures in the digest that no ignore rule dropped: `known_signatures` +
    /// `novel_signatures`. The ignored ones are counted apart, in `ignored_signatures` (all the
    /// scan saw is `signatures + ignored_signatures`).
    pub signatures: u64,
    /// Signatures no known issue accounted for (what analysis saw).
    pub novel_signatures: u64,
    /// Signatures matched to known issues before analysis.
    pub known_signatures: u64,
    /// Signatures dropped by ignore rules: the configured ones, and stack-frame lines of a crash
    /// read in the same scan ([`crate::digest::STACK_FRAME_RULE`]). Not part of `signatures`.
    pub ignored_signatures: u64,
    /// Findings analysis returned (valid ones).
    pub findings: u64,
    /// Findings rejected by validation.
    pub rejected_findings: u64,
    /// Issues created.
    pub issues_created: u64,
    /// Duplicates skipped, by tier.
    pub duplicates: DuplicateCounts,
    /// Comments added to existing issues (related findings, regressions); 0 in a dry run, which
    /// adds none (its outcomes say what it would comment).
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
    pub error_message: Option<RedactedText>,
    /// The last record this scan read (or the anchor it carried forward when it read nothing):
    /// how the next scan recognises that the log was recreated even when the new log has already
    /// grown past the cursor.
    #[serde(default)]
    pub log_anchor: Option<LogAnchor>,
    /// How many scans in a row, this one included, the analysis runner gave no answer for the
    /// records after the cursor ([`crate::Error::NoAnswer`]): 0 once a scan that is not a dry run
    /// succeeds or the runner answers. At [`crate::engine::ANALYSIS_ATTEMPTS`] the scan judges
    /// those records with the offline rules (warning `analysis_fallback`). Stores keep it, so the
    /// count survives restarts; a scan starts from the newest scan's count.
    #[serde(default)]
    pub analysis_failures: u32,
}

/// A record a scan read, by id and content digest. The next scan looks the record up again: a
/// different record under the same id, or older ids present while the anchor is gone, means the
/// log was recreated (its ids restarted) and reading restarts from 0 — without it, records of a
/// recreated log that has grown past the cursor would be skipped.
///
/// A record that is merely gone or edited is not a recreated log: retention that keeps INFO rows
/// shorter than errors, a purge of one row that leaked a secret, or a scrubber that rewrites
/// messages in place would otherwise make the next scan read the whole log again (every record
/// counted twice, closed issues reopened with no new evidence). So:
/// - the digest names a record by id, timestamp, level and source, not by its message (unless the
///   record has no timestamp, when the message is what tells two records apart);
/// - when the record at the cursor is not the last record the scan read (the cursor moved past
///   rows below the level filter), the anchor carries that record too as [`last_read`]
///   (`LogAnchor::last_read`): the log was recreated when a witness that is still there differs,
///   or when every witness is gone while older ids remain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogAnchor {
    /// The record's id.
    pub id: i64,
    /// [`LogAnchor::digest_of`] the record: 32 lower-case hex characters. (An anchor stored by a
    /// version before 0.2 digested the message too; [`LogAnchor::matches`] accepts both.)
    pub digest: String,
    /// The last record the scan read, when the anchor names a later record (the one at the
    /// cursor): a second witness (see the type's docs). Never itself has a `last_read`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read: Option<Box<LogAnchor>>,
}

impl LogAnchor {
    /// The anchor of `record`.
    pub fn of(record: &crate::LogRecord) -> Self {
        LogAnchor {
            id: record.id,
            digest: Self::digest_of(record),
            last_read: None,
        }
    }

    /// This anchor with `last_read` as its second witness (when it names another record).
    pub fn with_last_read(mut self, last_read: Option<LogAnchor>) -> Self {
        self.last_read = last_read.filter(|w| w.id != self.id).map(|mut w| {
            w.last_read = None;
            Box::new(w)
        });
        self
    }

    /// A stable digest of what identifies a record: id, timestamp, level and source (and the
    /// message when the timestamp is empty), SHA-256, first 128 bits, hex. Stable across
    /// versions: it is stored.
    pub fn digest_of(record: &crate::LogRecord) -> String {
        let message = if record.timestamp.is_empty() {
            record.message.as_str()
        } else {
            ""
        };
        Self::digest_parts(&[
            "anchor-v2",
            record.id.to_string().as_str(),
            record.timestamp.as_str(),
            record.level.as_str(),
            record.source.as_deref().unwrap_or(""),
            message,
        ])
    }

    /// The digest anchors were stored with before [`digest_of`](Self::digest_of) left the message
    /// out: id, timestamp, level, source and message.
    pub(crate) fn legacy_digest_of(record: &crate::LogRecord) -> String {
        Self::digest_parts(&[
            record.id.to_string().as_str(),
            record.timestamp.as_str(),
            record.level.as_str(),
            record.source.as_deref().unwrap_or(""),
            record.message.as_str(),
        ])
    }

    fn digest_parts(parts: &[&str]) -> String {
        let mut bytes = Vec::with_capacity(64 + parts.iter().map(|p| p.len()).sum::<usize>());
        for part in parts {
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part.as_bytes());
        }
        crate::hash::sha256_hex(&bytes)[..32].to_string()
    }

    /// Whether `record` is the record this anchor names (by either digest).
    pub fn matches(&self, record: &crate::LogRecord) -> bool {
        record.id == self.id
            && (Self::digest_of(record) == self.digest
                || Self::legacy_digest_of(record) == self.digest)
    }
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
            log_anchor: None,
            analysis_failures: 0,
        }
    }

    /// Duration in milliseconds, once finished.
    pub fn duration_ms(&self) -> Option<i64> {
        self.completed_at
            .map(|c| (c - self.started_at).num_milliseconds())
    }
}

/// What happened to one finding. Every text is [`RedactedText`]: titles and reasons quote the
/// model's findings and the attributes dedup compared, which may quote the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum FindingOutcome {
    /// A new issue was filed.
    Filed {
        /// Title as filed.
        title: RedactedText,
        /// The new issue.
        issue: IssueRef,
    },
    /// Would have been filed (dry run).
    WouldFile {
        /// Title.
        title: RedactedText,
        /// The body that would have been sent.
        body: RedactedText,
    },
    /// A known issue already covers it.
    Duplicate {
        /// Title of the finding.
        title: RedactedText,
        /// The issue it duplicates.
        issue: u64,
        /// Why (tier and the attributes that agreed).
        reason: RedactedText,
        /// The dedup tier that matched (absent in reports written before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tier: Option<DedupTier>,
        /// The match score in 0..=1 (1 for exact tiers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<f64>,
    },
    /// Related to a known issue: commented there instead.
    Commented {
        /// Title of the finding.
        title: RedactedText,
        /// The issue commented on.
        issue: u64,
        /// Why (the attributes that agreed).
        reason: RedactedText,
        /// The similarity score in 0..=1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<f64>,
    },
    /// A closed issue recurred: commented (and reopened, if configured).
    Regression {
        /// Title of the finding.
        title: RedactedText,
        /// The closed issue.
        issue: u64,
        /// Whether it was reopened.
        reopened: bool,
        /// The dedup tier that matched.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tier: Option<DedupTier>,
        /// Why (the attributes that agreed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<RedactedText>,
    },
    /// Not filed: the per-scan issue budget was spent.
    Deferred {
        /// Title.
        title: RedactedText,
        /// Why it was deferred.
        #[serde(default)]
        reason: RedactedText,
        /// Its position (1-based) among the deferred findings waiting to be filed, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backlog_position: Option<u64>,
    },
    /// A finding an earlier scan deferred, that an ignore rule configured since then matches:
    /// closed in the backlog with the rule, never filed.
    Ignored {
        /// Title.
        title: RedactedText,
        /// The rule, as configured (`ignore.codes: GIT-SYNC-001`).
        rule: RedactedText,
    },
}

impl FindingOutcome {
    /// The finding's title.
    pub fn title(&self) -> &str {
        match self {
            FindingOutcome::Filed { title, .. }
            | FindingOutcome::WouldFile { title, .. }
            | FindingOutcome::Duplicate { title, .. }
            | FindingOutcome::Commented { title, .. }
            | FindingOutcome::Regression { title, .. }
            | FindingOutcome::Deferred { title, .. }
            | FindingOutcome::Ignored { title, .. } => title,
        }
    }

    fn texts_mut(&mut self) -> Vec<&mut RedactedText> {
        match self {
            FindingOutcome::Filed { title, .. } => vec![title],
            FindingOutcome::WouldFile { title, body } => vec![title, body],
            FindingOutcome::Duplicate { title, reason, .. }
            | FindingOutcome::Commented { title, reason, .. }
            | FindingOutcome::Deferred { title, reason, .. } => vec![title, reason],
            FindingOutcome::Ignored { title, rule } => vec![title, rule],
            FindingOutcome::Regression { title, reason, .. } => {
                let mut v = vec![title];
                v.extend(reason.as_mut());
                v
            }
        }
    }
}

/// What one scan did, returned to the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    /// The persisted record.
    pub record: ScanRecord,
    /// What happened to each finding.
    pub outcomes: Vec<FindingOutcome>,
    /// Findings validation rejected, with reasons.
    pub rejected: Vec<RejectedFindingReport>,
    /// Filings from earlier scans that this scan completed (outbox reconciliation).
    pub reconciled: Vec<IssueRef>,
    /// The lease of a scan whose process was gone, which this scan took over at its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_over_lease: Option<crate::traits::Lease>,
    /// What happened to each signature of the digest (known, ignored, analysed), at most
    /// [`MAX_REPORT_SIGNATURES`].
    #[serde(default)]
    pub signatures: Vec<SignatureReport>,
    /// Signatures the runner looked at and made no finding for, with its reasons.
    #[serde(default)]
    pub skipped: Vec<SkippedSignatureReport>,
    /// The runner's name (`claude`, `offline`), when analysis ran.
    #[serde(default)]
    pub runner: Option<String>,
    /// The digest exactly as sent to the runner (redacted and fenced), at most
    /// [`MAX_REPORT_DIGEST_BYTES`]. Read back from storage, the inside of the fence is redacted
    /// again and the fence kept ([`RedactedText::from_stored_fenced`]).
    #[serde(default, deserialize_with = "RedactedText::deserialize_fenced")]
    pub digest_sent: Option<RedactedText>,
    /// The stale cursor, when the scan reset it because the log was recreated.
    #[serde(default)]
    pub previous_cursor: Option<i64>,
    /// What was left out to keep the report bounded.
    #[serde(default)]
    pub omitted: ReportOmissions,
    /// Conditions the log source reported while this scan read, one per kind (an open
    /// transaction holding PostgreSQL's commit horizon back, naming the session and what to do),
    /// at most [`MAX_REPORT_WARNINGS`](crate::model::MAX_REPORT_WARNINGS). Empty for a healthy
    /// read. `selfmon scan` and `selfmon history` print them. The tracker's issues that selfmon
    /// took for someone else's, or kept as its own though their marker is gone, are reported
    /// here too (`issue_not_selfmons`, `issue_marker_missing`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<crate::model::ScanWarning>,
    /// Positions in `outcomes` of the outcomes of backlog entries: findings an earlier scan
    /// deferred, that this scan filed, closed as covered, or kept waiting. The record's counters
    /// (`issues_created`, `duplicates`, …) include them, `findings` does not: this scan's findings
    /// are the other outcomes (plus the rejected ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_backlog: Vec<usize>,
    /// Whether the explanations (everything but `record`) were stored. False for a scan whose
    /// process stopped before it saved them, or one recorded before reports were kept.
    #[serde(default = "yes")]
    pub details_recorded: bool,
}

fn yes() -> bool {
    true
}

impl ScanReport {
    /// An empty report of `record`.
    pub fn new(record: ScanRecord) -> Self {
        ScanReport {
            record,
            outcomes: Vec::new(),
            rejected: Vec::new(),
            reconciled: Vec::new(),
            took_over_lease: None,
            signatures: Vec::new(),
            skipped: Vec::new(),
            runner: None,
            digest_sent: None,
            previous_cursor: None,
            omitted: ReportOmissions::default(),
            warnings: Vec::new(),
            from_backlog: Vec::new(),
            details_recorded: true,
        }
    }

    /// Caps the report for storage: at most [`MAX_REPORT_SIGNATURES`] signature and skip entries,
    /// [`MAX_REPORT_DIGEST_BYTES`] of digest and [`MAX_REPORT_TEXT_CHARS`] per title or reason;
    /// what is dropped is counted in `omitted`. Findings are bounded by the runner's
    /// `max_findings`, so every outcome is kept. Idempotent.
    pub fn bound(&mut self) {
        if self.signatures.len() > MAX_REPORT_SIGNATURES {
            self.omitted.signatures += (self.signatures.len() - MAX_REPORT_SIGNATURES) as u64;
            self.signatures.truncate(MAX_REPORT_SIGNATURES);
        }
        if self.skipped.len() > MAX_REPORT_SIGNATURES {
            self.omitted.skipped += (self.skipped.len() - MAX_REPORT_SIGNATURES) as u64;
            self.skipped.truncate(MAX_REPORT_SIGNATURES);
        }
        if let Some(d) = &mut self.digest_sent {
            self.omitted.digest_bytes += d.truncate_bytes(MAX_REPORT_DIGEST_BYTES) as u64;
        }
        let cap = |t: &mut RedactedText| *t = t.truncated_chars(MAX_REPORT_TEXT_CHARS);
        for o in &mut self.outcomes {
            for t in o.texts_mut() {
                cap(t);
            }
        }
        self.warnings.truncate(crate::model::MAX_REPORT_WARNINGS);
        for w in &mut self.warnings {
            cap(&mut w.message);
        }
        for r in &mut self.rejected {
            cap(&mut r.title);
            r.reasons.iter_mut().for_each(cap);
        }
        for s in &mut self.skipped {
            cap(&mut s.reason);
        }
    }

    /// What this scan did about each issue, for the issues' dedup histories (see
    /// [`IssueEvent`]). Dry runs did nothing to any issue and give none.
    pub fn issue_events(&self) -> Vec<IssueEvent> {
        if self.record.dry_run || !self.details_recorded {
            return Vec::new();
        }
        let at = self.record.completed_at.unwrap_or(self.record.started_at);
        // Made of the report's redacted texts and the engine's words; redacted again as a
        // whole, so that no detector match can form across the joins.
        let event = |issue_number, kind, records, detail: String| IssueEvent {
            issue_number,
            scan_id: self.record.scan_id.clone(),
            at,
            kind,
            records,
            detail: crate::redact::Redactor::shared().redacted(&detail),
        };
        let mut out = Vec::new();
        for s in &self.signatures {
            if let SignatureFate::Known {
                issue,
                closed: false,
                tier,
            } = &s.fate
            {
                out.push(event(
                    *issue,
                    IssueEventKind::KnownSignature,
                    s.count,
                    format!("{} (matched by {})", s.template, tier.as_str()),
                ));
            }
        }
        for o in &self.outcomes {
            let (issue, kind, detail) = match o {
                FindingOutcome::Filed { title, issue } => {
                    (issue.number, IssueEventKind::Filed, title.to_string())
                }
                FindingOutcome::Duplicate {
                    title,
                    issue,
                    reason,
                    ..
                } => (
                    *issue,
                    IssueEventKind::Duplicate,
                    format!("{title}: {reason}"),
                ),
                FindingOutcome::Commented {
                    title,
                    issue,
                    reason,
                    ..
                } => (
                    *issue,
                    IssueEventKind::Commented,
                    format!("{title}: {reason}"),
                ),
                FindingOutcome::Regression {
                    title,
                    issue,
                    reopened,
                    ..
                } => (
                    *issue,
                    IssueEventKind::Regression,
                    format!("{title}{}", if *reopened { " (reopened)" } else { "" }),
                ),
                FindingOutcome::WouldFile { .. }
                | FindingOutcome::Deferred { .. }
                | FindingOutcome::Ignored { .. } => continue,
            };
            out.push(event(issue, kind, 0, detail));
        }
        for r in &self.reconciled {
            out.push(event(
                r.number,
                IssueEventKind::Filed,
                0,
                "completed a filing an interrupted scan left in the outbox".to_string(),
            ));
        }
        out
    }

    /// Issues filed by this scan.
    pub fn filed(&self) -> impl Iterator<Item = &IssueRef> {
        self.outcomes.iter().filter_map(|o| match o {
            FindingOutcome::Filed { issue, .. } => Some(issue),
            _ => None,
        })
    }
}
