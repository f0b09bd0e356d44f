//! Deciding whether a finding is new.

use std::any::Any;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{ErrorCode, Finding, KnownIssue};

/// Which dedup tier matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupTier {
    /// Shared error code (same classification).
    ErrorCode,
    /// Equal fingerprint.
    Fingerprint,
    /// Similar enough on enough attributes.
    Similarity,
    /// Exact title (the trivial deduplicator).
    ExactTitle,
}

impl DedupTier {
    /// `"error_code"`, `"fingerprint"`, `"similarity"` or `"exact_title"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DedupTier::ErrorCode => "error_code",
            DedupTier::Fingerprint => "fingerprint",
            DedupTier::Similarity => "similarity",
            DedupTier::ExactTitle => "exact_title",
        }
    }
}

/// A dedup decision, with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum DedupDecision {
    /// Nothing known matches: file it.
    New,
    /// A known open issue already covers it: skip silently.
    Duplicate {
        /// The issue.
        issue: u64,
        /// Which tier.
        tier: DedupTier,
        /// Score in 0..=1 (1 for exact tiers).
        score: f64,
        /// What agreed.
        reason: String,
    },
    /// Related to a known open issue: comment there instead of filing.
    Related {
        /// The issue.
        issue: u64,
        /// Score in 0..=1.
        score: f64,
        /// What agreed.
        reason: String,
    },
    /// Matches a closed issue: a regression (comment, maybe reopen), never a silent skip.
    Regression {
        /// The closed issue.
        issue: u64,
        /// Which tier.
        tier: DedupTier,
        /// What agreed.
        reason: String,
    },
}

/// The known issues of one scan, as a [`Deduplicator`] sees them: read-only lookups.
///
/// The engine builds one per scan from the state store and the tracker (`crate::dedup::KnownIssues`
/// is its implementation) and adds the issues it files during the scan, so a later finding of the
/// same scan is decided against them too. Lookups are by exact key; "not found" is an empty
/// answer, never an error.
pub trait KnownIssuesView: Send + Sync {
    /// Every known issue, open and closed (closed ones within the configured window).
    fn issues(&self) -> Box<dyn Iterator<Item = &KnownIssue> + '_>;
    /// The issue with this number.
    fn issue(&self, number: u64) -> Option<&KnownIssue>;
    /// Issues that list `code`.
    fn issues_with_code(&self, code: &ErrorCode) -> Box<dyn Iterator<Item = &KnownIssue> + '_>;
    /// Issues whose finding fingerprint equals `fingerprint`.
    fn issues_with_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Box<dyn Iterator<Item = &KnownIssue> + '_>;
    /// The issue that already covers the digest signature `signature_id`.
    fn issue_with_signature(&self, signature_id: &str) -> Option<&KnownIssue>;
    /// Issues whose normalised title (prefix removed, case and whitespace folded) equals
    /// `title`'s.
    fn issues_with_title(&self, title: &str) -> Box<dyn Iterator<Item = &KnownIssue> + '_>;
    /// The (unredacted) message templates of this scan's digest signatures that `finding` cites,
    /// sorted and deduplicated; empty when it cites none the scan saw.
    fn templates_of(&self, finding: &Finding) -> Vec<String>;
    /// The concrete view, so a deduplicator that knows a richer index can use it (the three-tier
    /// deduplicator uses `KnownIssues`'s similarity index). Implementations return `self`.
    fn as_any(&self) -> &dyn Any;
}

/// Decides whether a finding duplicates a known issue.
///
/// Contract:
/// - Pure with respect to its inputs: the same finding, fingerprint and known issues give the
///   same decision.
/// - Never reports `Duplicate`/`Related` for an issue of a different classification.
/// - A match against a closed issue is `Regression`, never `Duplicate`.
/// - Errors (`Error::Adapter { component: Deduplicator, .. }`) fail the scan; use them only for
///   backends that can fail (a remote index), not for "no match".
// Adding a method? List it in the `forward!` at the end of this file too.
#[async_trait]
pub trait Deduplicator: Send + Sync {
    /// Decides for one finding. `fingerprint` is the finding's fingerprint
    /// (`crate::dedup::finding_fingerprint`), computed once by the engine from the unredacted
    /// templates of the signatures it cites.
    async fn decide(
        &self,
        finding: &Finding,
        fingerprint: &str,
        known: &(dyn KnownIssuesView + 'static),
    ) -> Result<DedupDecision>;
}

crate::traits::forward::forward! {
    Deduplicator {
        async fn decide(&self, finding: &Finding, fingerprint: &str, known: &(dyn KnownIssuesView + 'static)) -> Result<DedupDecision>;
    }
}
