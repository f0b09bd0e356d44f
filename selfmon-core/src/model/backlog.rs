//! The backlog: findings a scan's budget deferred, kept until a later scan files them or finds an
//! issue that covers them; and the effects a successful scan commits together with its cursor.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Level, ScanId};
use crate::redact::{RedactedFinding, RedactedSignature, RedactedText};

/// A finding the per-scan budget deferred. The scan that deferred it consumed its records, so the
/// entry is the only place the problem lives until a later scan files it (or finds that an issue
/// now covers it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacklogEntry {
    /// Unique id of the entry.
    pub entry_id: String,
    /// The finding fingerprint (the marker of the issue it becomes).
    pub fingerprint: String,
    /// The most severe level among its evidence (the budget files the most severe first).
    pub severity: Level,
    /// The finding as analysis proposed it (classification included), redacted: the engine
    /// redacts every finding when it validates it, before dedup, filing or the backlog see it,
    /// and only the redactor makes a [`RedactedFinding`].
    pub finding: RedactedFinding,
    /// The evidence signatures as they may leave the process (capped, sanitised, redacted).
    pub evidence: Vec<RedactedSignature>,
    /// Message templates of the signatures it covers (for dedup, as filed issues keep them).
    pub templates: Vec<String>,
    /// Log records attributed to it so far.
    pub occurrences: u64,
    /// The scan that first deferred it.
    pub deferred_by: ScanId,
    /// When it was first deferred.
    pub deferred_at: DateTime<Utc>,
}

impl BacklogEntry {
    /// Filing priority: most severe first, then most occurrences, then oldest. Smaller sorts first.
    pub fn priority(
        &self,
    ) -> (
        std::cmp::Reverse<Level>,
        std::cmp::Reverse<u64>,
        DateTime<Utc>,
    ) {
        (
            std::cmp::Reverse(self.severity),
            std::cmp::Reverse(self.occurrences),
            self.deferred_at,
        )
    }
}

/// Why and how a backlog entry left the backlog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacklogClosure {
    /// The entry.
    pub entry_id: String,
    /// Why it was closed, for a person (`"filed as #12"`, `"covered by #7: same error code"`),
    /// redacted: the dedup reason names the attributes that agreed, which may quote the finding.
    pub reason: RedactedText,
    /// The issue that now covers it, which receives the entry's occurrences.
    pub issue: Option<u64>,
}

/// A closed backlog entry, as history shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedBacklogEntry {
    /// The entry as it was when closed.
    pub entry: BacklogEntry,
    /// Why, and which issue covers it.
    pub closure: BacklogClosure,
    /// When it was closed.
    pub closed_at: DateTime<Utc>,
}

/// Occurrences of a filed issue seen by one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueOccurrences {
    /// The issue number.
    pub issue: u64,
    /// How many log records.
    pub count: u64,
}

/// What a successful (non-dry-run) scan makes durable together with its cursor, in one atomic
/// step: if the scan fails instead, none of it happens and the next scan reads the same records
/// again, so every record is counted exactly once.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScanEffects {
    /// Occurrences attributed to filed issues.
    pub occurrences: Vec<IssueOccurrences>,
    /// Findings the budget deferred. An open entry with the same fingerprint absorbs the new one's
    /// occurrences instead of a second entry being added.
    pub deferred: Vec<BacklogEntry>,
    /// Backlog entries an issue now covers; each closure's issue receives the entry's occurrences.
    pub closed: Vec<BacklogClosure>,
    /// The templater's learned state after the scan, if it changed.
    pub template_state: Option<String>,
    /// Signature ids filed issues now cover, added to their `signature_ids` (the error-level
    /// signature of an issue filed for warnings, once the escalation was commented on).
    /// Issues the store does not hold are skipped; an id an issue already has is not added twice.
    #[serde(default)]
    pub issue_signatures: Vec<IssueSignature>,
}

/// A signature id a filed issue now covers (see [`ScanEffects::issue_signatures`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueSignature {
    /// The issue number.
    pub issue: u64,
    /// The digest signature id.
    pub signature_id: String,
}

impl ScanEffects {
    /// Adds `count` occurrences of `issue` (merged with earlier ones of the same issue).
    pub fn add_occurrences(&mut self, issue: u64, count: u64) {
        if count == 0 {
            return;
        }
        match self.occurrences.iter_mut().find(|o| o.issue == issue) {
            Some(o) => o.count += count,
            None => self.occurrences.push(IssueOccurrences { issue, count }),
        }
    }
}
