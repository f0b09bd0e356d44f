//! [`ExactTitleDeduplicator`]: the trivial deduplicator.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Finding, IssueState};
use crate::traits::{DedupDecision, DedupTier, Deduplicator, KnownIssuesView};

/// The trivial deduplicator: a finding whose normalised title equals a known issue's (same
/// classification) is a duplicate (or a regression when that issue is closed).
#[derive(Debug, Clone, Copy, Default)]
pub struct ExactTitleDeduplicator;

#[async_trait]
impl Deduplicator for ExactTitleDeduplicator {
    async fn decide(
        &self,
        finding: &Finding,
        _fingerprint: &str,
        known: &(dyn KnownIssuesView + 'static),
    ) -> Result<DedupDecision> {
        let hit = known
            .issues_with_title(&finding.title)
            .find(|k| k.classification == finding.classification);
        Ok(match hit {
            None => DedupDecision::New,
            Some(k) if k.issue.state == IssueState::Closed => DedupDecision::Regression {
                issue: k.issue.number,
                tier: DedupTier::ExactTitle,
                reason: "same title as a closed issue".into(),
            },
            Some(k) => DedupDecision::Duplicate {
                issue: k.issue.number,
                tier: DedupTier::ExactTitle,
                score: 1.0,
                reason: "same title".into(),
            },
        })
    }
}
