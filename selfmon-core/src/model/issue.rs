//! Issues: what gets filed, what the tracker knows, what dedup compares against.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Classification, ErrorCode, ScanId};
use crate::redact::{RedactedFinding, RedactedText};

/// Open or closed, as the tracker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IssueState {
    /// Open.
    #[default]
    Open,
    /// Closed (fixed, or dismissed).
    Closed,
}

impl IssueState {
    /// `"open"` or `"closed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueState::Open => "open",
            IssueState::Closed => "closed",
        }
    }
}

/// Why a closed issue was closed, as the tracker says (GitHub's `state_reason`).
///
/// A closure a person made as [`NotPlanned`](CloseReason::NotPlanned) or
/// [`Duplicate`](CloseReason::Duplicate) is a decision to stop: a recurrence of the problem is
/// counted against the issue and noted there at most once, never reopened (see
/// [`CloseReason::is_dismissal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Done or fixed (GitHub's `completed`).
    Completed,
    /// Won't fix (GitHub's "Close as not planned", `not_planned`).
    NotPlanned,
    /// A duplicate of another issue (GitHub's `duplicate`).
    Duplicate,
}

impl CloseReason {
    /// `"completed"`, `"not_planned"` or `"duplicate"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Completed => "completed",
            CloseReason::NotPlanned => "not_planned",
            CloseReason::Duplicate => "duplicate",
        }
    }

    /// Parses a tracker's reason (`"not_planned"`, `"not planned"`, case-insensitive); `None`
    /// for anything else (GitHub's `reopened`, an empty or unknown reason).
    pub fn parse(text: &str) -> Option<CloseReason> {
        match text
            .trim()
            .to_ascii_lowercase()
            .replace([' ', '-'], "_")
            .as_str()
        {
            "completed" => Some(CloseReason::Completed),
            "not_planned" => Some(CloseReason::NotPlanned),
            "duplicate" => Some(CloseReason::Duplicate),
            _ => None,
        }
    }

    /// Whether a person dismissed the issue (not planned, or a duplicate of another) rather than
    /// fixed it: selfmon then never reopens it.
    pub fn is_dismissal(self) -> bool {
        matches!(self, CloseReason::NotPlanned | CloseReason::Duplicate)
    }

    /// "closed as not planned", for messages.
    pub fn describe(self) -> &'static str {
        match self {
            CloseReason::Completed => "closed as completed",
            CloseReason::NotPlanned => "closed as not planned",
            CloseReason::Duplicate => "closed as a duplicate",
        }
    }
}

/// The hidden marker selfmon puts in every issue body so the issue can be found again:
/// `<!-- selfmon:fingerprint=HEX -->`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Marker(String);

impl Marker {
    const PREFIX: &'static str = "<!-- selfmon:fingerprint=";
    const SUFFIX: &'static str = " -->";

    /// The marker for a finding fingerprint.
    pub fn for_fingerprint(fingerprint: &str) -> Self {
        Marker(format!("{}{}{}", Self::PREFIX, fingerprint, Self::SUFFIX))
    }

    /// The marker text, as it appears in a body.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The fingerprint it carries.
    pub fn fingerprint(&self) -> &str {
        &self.0[Self::PREFIX.len()..self.0.len() - Self::SUFFIX.len()]
    }

    /// Finds selfmon's marker in an issue body: the last line that is nothing but a marker
    /// (selfmon writes it on a line of its own in the footer, after everything it quotes). Only
    /// hex fingerprints are accepted, so text an attacker wrote into a body cannot forge an
    /// arbitrary marker, and a marker quoted earlier in the body (log text, model text) cannot
    /// hide the real one (review4 F4: the first `<!-- selfmon:fingerprint=` was taken).
    pub fn find_in(body: &str) -> Option<Marker> {
        body.lines().rev().find_map(|line| {
            let fp = line
                .trim()
                .strip_prefix(Self::PREFIX)?
                .strip_suffix(Self::SUFFIX)?;
            if fp.is_empty() || fp.len() > 128 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            Some(Marker::for_fingerprint(fp))
        })
    }
}

/// What the engine asks the tracker to create. The body is complete (marker included); trackers
/// send it as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueDraft {
    /// Full title including the classification prefix (`[BUG] ...`), redacted.
    pub title: RedactedText,
    /// Markdown body, with the hidden marker, redacted.
    pub body: RedactedText,
    /// Labels to apply.
    pub labels: Vec<String>,
    /// The classification.
    pub classification: Classification,
    /// The finding fingerprint (also in the marker).
    pub fingerprint: String,
    /// The hidden marker.
    pub marker: Marker,
}

/// The hidden classification line selfmon writes under its marker:
/// `<!-- selfmon:classification=server_bug -->`.
const CLASSIFICATION_MARKER: &str = "<!-- selfmon:classification=";

/// The hidden line recording `classification` in an issue body, so the classification survives
/// a renamed title prefix.
pub fn classification_marker(classification: Classification) -> String {
    format!("{CLASSIFICATION_MARKER}{} -->", classification.as_str())
}

/// The classification selfmon recorded in an issue body: its hidden classification line, else the
/// visible `**Classification:** `server_bug`` line of bodies written before that line existed;
/// `None` when the body has neither (an issue a person filed). Titles are never consulted: their
/// prefixes are configurable.
pub fn classification_in(body: &str) -> Option<Classification> {
    let word = |rest: &str, end: &str| -> Option<Classification> {
        rest.split_once(end)
            .and_then(|(w, _)| w.trim().parse::<Classification>().ok())
    };
    if let Some((_, rest)) = body.rsplit_once(CLASSIFICATION_MARKER) {
        if let Some(c) = word(rest, "-->") {
            return Some(c);
        }
    }
    body.split_once("**Classification:** `")
        .and_then(|(_, rest)| word(rest, "`"))
}

/// A reference to an issue in the tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueRef {
    /// The issue number.
    pub number: u64,
    /// A link a person can open.
    pub url: String,
    /// Open or closed.
    pub state: IssueState,
}

/// An issue as listed by the tracker (open ones, plus recently closed ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedIssue {
    /// Number, link and state.
    pub issue: IssueRef,
    /// The title.
    pub title: String,
    /// The labels.
    pub labels: Vec<String>,
    /// selfmon's marker, when the body has one.
    pub marker: Option<Marker>,
    /// The classification selfmon recorded in the body ([`classification_in`]), when it did.
    #[serde(default)]
    pub classification: Option<Classification>,
    /// When it was closed, if it is.
    pub closed_at: Option<DateTime<Utc>>,
    /// Why it was closed, when it is closed and the tracker says (GitHub's `state_reason`);
    /// `None` when the tracker keeps no reason (then it counts as completed).
    #[serde(default)]
    pub close_reason: Option<CloseReason>,
    /// Whether its conversation is locked (GitHub's `locked`): the tracker refuses selfmon's
    /// comments on it, so the engine does not try.
    #[serde(default)]
    pub locked: bool,
}

/// An issue as dedup sees it: identity plus the attributes the tiers compare. Held in memory for
/// one scan, never stored; built from [`FiledIssue`] rows (redacted) and the tracker's listing
/// (text already public), so its texts are plain `String`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownIssue {
    /// Number, link and state.
    pub issue: IssueRef,
    /// Title as filed (with prefix).
    pub title: String,
    /// Classification.
    pub classification: Classification,
    /// Error codes it covers.
    pub error_codes: Vec<ErrorCode>,
    /// Finding fingerprint (tier 2).
    pub fingerprint: String,
    /// Source files.
    pub source_files: Vec<String>,
    /// Error type, if known.
    pub error_type: Option<String>,
    /// Message templates of the signatures it covers.
    pub templates: Vec<String>,
    /// Digest signature ids it covers (for pre-analysis matching).
    pub signature_ids: Vec<String>,
}

/// A row of selfmon's own record of an issue it filed.
///
/// Text that came from the model or the log is [`RedactedText`] (title, error type, source
/// files). The rest cannot hold such text: `error_codes` are [`ErrorCode`]s (a fixed
/// `AREA-KIND-NNN` shape), `fingerprint` and `signature_ids` are hex digests the engine computed,
/// `source_log_ids` are numbers, and `templates` are *sealed* (every token the redactor flags is
/// replaced by a hashed stand-in, see [`crate::template::seal_template`]) — they stay `String`
/// because dedup compares them with the sealed templates it learns, token for token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiledIssue {
    /// The scan that filed it.
    pub scan_id: ScanId,
    /// Number, link and last known state.
    pub issue: IssueRef,
    /// Title as filed.
    pub title: RedactedText,
    /// Classification.
    pub classification: Classification,
    /// Error codes.
    pub error_codes: Vec<ErrorCode>,
    /// Finding fingerprint.
    pub fingerprint: String,
    /// Evidence record ids at filing time.
    pub source_log_ids: Vec<i64>,
    /// Source files, as the model named them.
    pub source_files: Vec<RedactedText>,
    /// Error type, as the model named it.
    pub error_type: Option<RedactedText>,
    /// Templates of the signatures it covers, sealed.
    pub templates: Vec<String>,
    /// Digest signature ids it covers.
    pub signature_ids: Vec<String>,
    /// When it was filed.
    pub created_at: DateTime<Utc>,
    /// How many log records have been attributed to it so far.
    pub occurrences: u64,
    /// When it was last seen in the logs.
    pub last_seen_at: DateTime<Utc>,
    /// The closure of this issue on which selfmon already reported a recurrence (commented, or
    /// tried to): the tracker's `closed_at` of that closure, or the time of the report when the
    /// tracker keeps no closing time. `None` while no recurrence of the current closure was
    /// reported. A later recurrence of the same closure is counted without another comment;
    /// the store forgets it when the issue is recorded open again
    /// ([`IssueLedger::set_issue_state`](crate::IssueLedger::set_issue_state)).
    #[serde(default)]
    pub regression_noted_for: Option<DateTime<Utc>>,
}

impl FiledIssue {
    /// The row for the issue a filing intent produced. The title is the draft's; the finding's
    /// error type and source files (which the engine redacted with the configured rules) are
    /// redacted again with the default ones, so the row holds `RedactedText` whoever built the
    /// intent.
    pub fn from_intent(intent: &FilingIntent, issue: IssueRef, now: DateTime<Utc>) -> Self {
        let finding = &intent.finding;
        let redactor = crate::redact::Redactor::shared();
        FiledIssue {
            scan_id: intent.scan_id.clone(),
            issue,
            title: intent.draft.title.clone(),
            classification: finding.classification,
            error_codes: finding.error_codes.clone(),
            fingerprint: intent.draft.fingerprint.clone(),
            source_log_ids: finding.evidence_record_ids.clone(),
            source_files: finding
                .source_files
                .iter()
                .map(|f| redactor.redacted(f))
                .collect(),
            error_type: finding.error_type.as_deref().map(|t| redactor.redacted(t)),
            templates: intent.templates.clone(),
            signature_ids: finding.signature_ids.clone(),
            created_at: now,
            occurrences: intent.occurrences,
            last_seen_at: now,
            regression_noted_for: None,
        }
    }

    /// The dedup view of this row.
    pub fn to_known(&self) -> KnownIssue {
        KnownIssue {
            issue: self.issue.clone(),
            title: self.title.to_string(),
            classification: self.classification,
            error_codes: self.error_codes.clone(),
            fingerprint: self.fingerprint.clone(),
            source_files: self.source_files.iter().map(|f| f.to_string()).collect(),
            error_type: self.error_type.as_ref().map(|t| t.to_string()),
            templates: self.templates.clone(),
            signature_ids: self.signature_ids.clone(),
        }
    }
}

/// A filing the engine has committed to before calling the tracker (the outbox). Reconciled at the
/// start of the next scan if the process died before the issue row was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilingIntent {
    /// Unique id of the intent.
    pub intent_id: String,
    /// The scan that created it.
    pub scan_id: ScanId,
    /// What will be (or was) sent to the tracker.
    pub draft: IssueDraft,
    /// The finding behind it (for the issue row), redacted: the engine redacts every finding when
    /// it validates it, before dedup, filing or the backlog see it, and only the redactor makes a
    /// [`RedactedFinding`].
    pub finding: RedactedFinding,
    /// Templates of the signatures the finding covers.
    pub templates: Vec<String>,
    /// Occurrences attributed at filing time.
    pub occurrences: u64,
    /// When the intent was recorded.
    pub created_at: DateTime<Utc>,
    /// The backlog entry this filing comes from; completing the intent closes it in the same
    /// atomic step.
    #[serde(default)]
    pub backlog_entry_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_through_a_body() {
        let m = Marker::for_fingerprint("deadbeef");
        let body = format!("text\n{}\nmore", m.as_str());
        let found = Marker::find_in(&body).unwrap();
        assert_eq!(found, m);
        assert_eq!(found.fingerprint(), "deadbeef");
    }

    #[test]
    fn forged_non_hex_markers_are_ignored() {
        assert!(Marker::find_in("<!-- selfmon:fingerprint=<script> -->").is_none());
        assert!(Marker::find_in("<!-- selfmon:fingerprint= -->").is_none());
        assert!(Marker::find_in("no marker").is_none());
    }

    #[test]
    fn the_marker_is_read_from_its_own_last_line_not_from_quoted_text_before_it() {
        // Review4 F4: a log line quoting a marker came first in the body and hid the real one.
        let m = Marker::for_fingerprint("deadbeef");
        let body = format!(
            "login rejected for user '<!-- selfmon:fingerprint=0123abcd -->'\n\
             template: user '<!-- selfmon:fingerprint=<HEX> -->'\n\
             <!-- selfmon:fingerprint=<HEX> -->\n---\n{}\n",
            m.as_str()
        );
        assert_eq!(Marker::find_in(&body), Some(m));
        // Only a line of its own counts: a marker inside a quoted line is no marker.
        assert_eq!(
            Marker::find_in("user '<!-- selfmon:fingerprint=0123abcd -->'"),
            None
        );
    }
}
