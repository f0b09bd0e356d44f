//! Findings (what analysis proposes) and the rules every finding must satisfy.

use serde::{Deserialize, Serialize};

use crate::model::{Classification, ErrorCode};

/// One problem that analysis proposes to file. Produced by an [`crate::AnalysisRunner`], checked by
/// [`Finding::validate`] before the engine trusts any of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What kind of problem this is.
    pub classification: Classification,
    /// A one-line title, without the classification prefix (the engine adds `[BUG]` etc.).
    pub title: String,
    /// What is wrong and why it matters, in a few sentences.
    pub summary: String,
    /// Ids of log records that show the problem; must lie in the scanned range.
    #[serde(default)]
    pub evidence_record_ids: Vec<i64>,
    /// Error codes involved.
    #[serde(default)]
    pub error_codes: Vec<ErrorCode>,
    /// Source files suspected, relative to the repository root.
    #[serde(default)]
    pub source_files: Vec<String>,
    /// The error type (`ValueError`, `ConnectionRefused`, a Rust error kind), if known.
    #[serde(default)]
    pub error_type: Option<String>,
    /// Digest signature ids (see [`crate::digest::Signature::id`]) this finding explains.
    #[serde(default)]
    pub signature_ids: Vec<String>,
    /// The suspected cause, if analysis has one.
    #[serde(default)]
    pub suspected_cause: Option<String>,
    /// A suggested fix, if analysis has one.
    #[serde(default)]
    pub suggested_fix: Option<String>,
}

/// Bounds a finding must respect; see [`Finding::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindingLimits {
    /// Longest title, in characters.
    pub max_title_chars: usize,
    /// Longest summary / cause / fix, in characters.
    pub max_text_chars: usize,
    /// Most evidence ids, source files, codes or signatures.
    pub max_list_len: usize,
}

impl Default for FindingLimits {
    fn default() -> Self {
        FindingLimits {
            max_title_chars: 200,
            max_text_chars: 8_000,
            max_list_len: 100,
        }
    }
}

/// The scanned range a finding's evidence must lie in, and the signatures it may cite.
#[derive(Debug, Clone, Copy)]
pub struct EvidenceScope<'a> {
    /// Lowest record id read in this scan.
    pub first_id: i64,
    /// Highest record id read in this scan.
    pub last_id: i64,
    /// The signature ids present in the digest given to analysis; empty means "don't check".
    pub signature_ids: &'a [String],
}

impl Finding {
    /// A finding with the given classification, title and summary and nothing else.
    pub fn new(
        classification: Classification,
        title: impl Into<String>,
        summary: impl Into<String>,
    ) -> Self {
        Finding {
            classification,
            title: title.into(),
            summary: summary.into(),
            evidence_record_ids: Vec::new(),
            error_codes: Vec::new(),
            source_files: Vec::new(),
            error_type: None,
            signature_ids: Vec::new(),
            suspected_cause: None,
            suggested_fix: None,
        }
    }

    /// Checks the finding against `limits` and `scope`, returning every reason it is unacceptable.
    ///
    /// Rejects: empty or over-long title/summary, over-long lists, evidence ids outside
    /// `scope.first_id..=scope.last_id`, signature ids not in the digest, source paths that are
    /// absolute, contain `..`, a NUL or a backslash-drive (`C:\`), and control characters in the title.
    pub fn validate(
        &self,
        limits: &FindingLimits,
        scope: &EvidenceScope<'_>,
    ) -> Result<(), Vec<String>> {
        let mut why = Vec::new();
        let title = self.title.trim();
        if title.is_empty() {
            why.push("title is empty".to_string());
        }
        if title.chars().count() > limits.max_title_chars {
            why.push(format!(
                "title is longer than {} characters",
                limits.max_title_chars
            ));
        }
        if title.chars().any(char::is_control) {
            why.push("title contains control characters".to_string());
        }
        if self.summary.trim().is_empty() {
            why.push("summary is empty".to_string());
        }
        for (name, text) in [
            ("summary", Some(&self.summary)),
            ("suspected_cause", self.suspected_cause.as_ref()),
            ("suggested_fix", self.suggested_fix.as_ref()),
        ] {
            if text.is_some_and(|t| t.chars().count() > limits.max_text_chars) {
                why.push(format!(
                    "{name} is longer than {} characters",
                    limits.max_text_chars
                ));
            }
        }
        for (name, len) in [
            ("evidence_record_ids", self.evidence_record_ids.len()),
            ("source_files", self.source_files.len()),
            ("error_codes", self.error_codes.len()),
            ("signature_ids", self.signature_ids.len()),
        ] {
            if len > limits.max_list_len {
                why.push(format!(
                    "{name} has {len} entries, more than {}",
                    limits.max_list_len
                ));
            }
        }
        for id in &self.evidence_record_ids {
            if *id < scope.first_id || *id > scope.last_id {
                why.push(format!(
                    "evidence record id {id} is outside the scanned range {}..={}",
                    scope.first_id, scope.last_id
                ));
            }
        }
        if !scope.signature_ids.is_empty() {
            for s in &self.signature_ids {
                if !scope.signature_ids.contains(s) {
                    why.push(format!(
                        "signature id {} is not in the digest",
                        crate::text::quoted(s)
                    ));
                }
            }
        }
        for path in &self.source_files {
            if let Err(reason) = check_relative_path(path) {
                why.push(format!(
                    "source file {}: {reason}",
                    crate::text::quoted(path)
                ));
            }
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(why)
        }
    }
}

fn check_relative_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("is empty");
    }
    if path.len() > 512 {
        return Err("is longer than 512 bytes");
    }
    if path.starts_with('/') || path.starts_with('\\') || path.starts_with('~') {
        return Err("must be relative to the repository root");
    }
    let b = path.as_bytes();
    if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        return Err("must be relative to the repository root");
    }
    if path.split(['/', '\\']).any(|seg| seg == "..") {
        return Err("must not contain `..`");
    }
    if path.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(())
}

/// A finding that the runner's validation rejected, with the reasons, as the runner gave it:
/// untrusted and unredacted. The report keeps it redacted, as a
/// [`RejectedFindingReport`](crate::model::RejectedFindingReport).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedFinding {
    /// The title as analysis gave it (truncated).
    pub title: String,
    /// Why it was rejected.
    pub reasons: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> EvidenceScope<'static> {
        EvidenceScope {
            first_id: 10,
            last_id: 20,
            signature_ids: &[],
        }
    }

    #[test]
    fn a_reasonable_finding_is_valid() {
        let mut f = Finding::new(Classification::ServerBug, "Crash in sync", "It crashes.");
        f.evidence_record_ids = vec![10, 20];
        f.source_files = vec!["src/sync.py".into()];
        assert!(f.validate(&FindingLimits::default(), &scope()).is_ok());
    }

    #[test]
    fn evidence_outside_the_scanned_range_is_rejected() {
        let mut f = Finding::new(Classification::ServerBug, "t", "s");
        f.evidence_record_ids = vec![9, 21];
        let why = f.validate(&FindingLimits::default(), &scope()).unwrap_err();
        assert_eq!(why.len(), 2, "{why:?}");
    }

    #[test]
    fn escaping_source_paths_are_rejected() {
        for p in ["/etc/passwd", "../x.rs", "a/../../b", "C:\\win", "~/x", ""] {
            let mut f = Finding::new(Classification::ServerBug, "t", "s");
            f.source_files = vec![p.into()];
            assert!(
                f.validate(&FindingLimits::default(), &scope()).is_err(),
                "{p}"
            );
        }
    }

    #[test]
    fn empty_and_oversized_text_is_rejected() {
        let f = Finding::new(Classification::ServerBug, " ", "");
        assert_eq!(
            f.validate(&FindingLimits::default(), &scope())
                .unwrap_err()
                .len(),
            2
        );
        let f = Finding::new(Classification::ServerBug, "x".repeat(201), "s");
        assert!(f.validate(&FindingLimits::default(), &scope()).is_err());
    }

    #[test]
    fn unknown_signature_ids_are_rejected_when_the_digest_is_known() {
        let sigs = vec!["abc".to_string()];
        let scope = EvidenceScope {
            first_id: 0,
            last_id: 1,
            signature_ids: &sigs,
        };
        let mut f = Finding::new(Classification::ServerBug, "t", "s");
        f.signature_ids = vec!["abc".into()];
        assert!(f.validate(&FindingLimits::default(), &scope).is_ok());
        f.signature_ids = vec!["zzz".into()];
        assert!(f.validate(&FindingLimits::default(), &scope).is_err());
    }
}
