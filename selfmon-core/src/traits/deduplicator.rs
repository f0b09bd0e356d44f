//! Deciding whether a finding is new.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::dedup::KnownIssues;
use crate::error::Result;
use crate::model::Finding;

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

/// Decides whether a finding duplicates a known issue.
///
/// Contract:
/// - Pure with respect to its inputs: the same finding and known issues give the same decision.
/// - Never reports `Duplicate`/`Related` for an issue of a different classification.
/// - A match against a closed issue is `Regression`, never `Duplicate`.
/// - Errors (`Error::Adapter { component: Deduplicator, .. }`) fail the scan; use them only for
///   backends that can fail (a remote index), not for "no match".
// Adding a method? List it in the `forward!` at the end of this file too.
#[async_trait]
pub trait Deduplicator: Send + Sync {
    /// Decides for one finding.
    async fn decide(&self, finding: &Finding, known: &KnownIssues) -> Result<DedupDecision>;
}

crate::traits::forward::forward! {
    Deduplicator {
        async fn decide(&self, finding: &Finding, known: &KnownIssues) -> Result<DedupDecision>;
    }
}
