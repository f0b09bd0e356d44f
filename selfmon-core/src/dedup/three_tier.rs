//! [`ThreeTierDeduplicator`]: error code, fingerprint, similarity; see the [module docs](super).

use std::fmt::Write as _;

use async_trait::async_trait;

use super::fingerprint::finding_fingerprint;
use super::known::KnownIssues;
use super::similarity::{class_index, jaccard, Attribute, Features};
use crate::config::DedupConfig;
use crate::error::Result;
use crate::model::{ErrorCode, Finding, IssueState, KnownIssue};
use crate::traits::{DedupDecision, DedupTier, Deduplicator, KnownIssuesView};

/// How one attribute compared.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttributeScore {
    /// Which attribute.
    pub attribute: Attribute,
    /// Jaccard similarity of the normalised token sets, 0..=1.
    pub score: f64,
    /// Whether it reached the threshold.
    pub agreed: bool,
}

/// Why [`ThreeTierDeduplicator`] decided what it did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DedupExplanation {
    /// The tier that matched; `None` for a new finding.
    pub tier: Option<DedupTier>,
    /// The issue matched (or, for a new finding, the closest candidate of tier 3, if any).
    pub issue: Option<u64>,
    /// 1.0 for the exact tiers; for tier 3 the mean similarity of the agreeing attributes.
    pub score: f64,
    /// Tier 3 scores per attribute against `issue` (empty for the exact tiers).
    pub attributes: Vec<AttributeScore>,
    /// Attributes that agreed, counting the shared classification.
    pub agreeing: u32,
    /// Tier 3 candidates scored (the work the index left to do).
    pub candidates: usize,
    /// One line for people.
    pub reason: String,
}

/// The three-tier deduplicator; see the [module docs](crate::dedup).
#[derive(Debug, Clone, Default)]
pub struct ThreeTierDeduplicator {
    config: DedupConfig,
}

impl ThreeTierDeduplicator {
    /// A deduplicator with `config`'s threshold and attribute count.
    pub fn new(config: DedupConfig) -> Self {
        ThreeTierDeduplicator { config }
    }

    /// Decides for one finding and explains the decision; the fingerprint is computed from the
    /// templates `known` noted for the signatures the finding cites.
    pub fn decide_explained(
        &self,
        finding: &Finding,
        known: &KnownIssues,
    ) -> (DedupDecision, DedupExplanation) {
        let templates = known.templates_of(finding);
        let fingerprint = finding_fingerprint(finding, &templates);
        self.decide_with(finding, &fingerprint, &templates, known)
    }

    /// Decides for one finding whose fingerprint is known, and explains the decision.
    pub fn decide_fingerprinted(
        &self,
        finding: &Finding,
        fingerprint: &str,
        known: &KnownIssues,
    ) -> (DedupDecision, DedupExplanation) {
        let templates = known.templates_of(finding);
        self.decide_with(finding, fingerprint, &templates, known)
    }

    fn decide_with(
        &self,
        finding: &Finding,
        fp: &str,
        templates: &[String],
        known: &KnownIssues,
    ) -> (DedupDecision, DedupExplanation) {
        let class = finding.classification;
        // Tier 1: error codes, when every code of the finding is one a known issue (of its
        // class) carries: a code no issue has is a new cause, even beside a known one
        // (`[GIT-SYNC-001] … [DISK-FULL-009] no space left`).
        let all_known = finding.error_codes.iter().all(|c| {
            known
                .by_code
                .get(c)
                .is_some_and(|v| v.iter().any(|&i| known.issues[i].classification == class))
        });
        let by_code = finding
            .error_codes
            .iter()
            .filter(|_| all_known)
            .flat_map(|c| known.by_code.get(c).into_iter().flatten().copied())
            .filter(|&i| known.issues[i].classification == class);
        if let Some(i) = known.preferred(by_code) {
            let k = &known.issues[i];
            let shared: Vec<&str> = finding
                .error_codes
                .iter()
                .filter(|c| k.error_codes.contains(c))
                .map(ErrorCode::as_str)
                .collect();
            let reason = format!(
                "error code {} shared with #{} ({class})",
                shared.join(", "),
                k.issue.number
            );
            return exact(k, DedupTier::ErrorCode, reason);
        }
        // Tier 2: fingerprint, or a cited signature the issue covers. A finding with error codes
        // that no issue shares (tier 1 found none) is another problem even where its templates
        // equal an issue's (a template can mask a code, e.g. inside a quoted JSON value).
        let by_fp = known
            .by_fingerprint
            .get(fp)
            .into_iter()
            .flatten()
            .copied()
            .filter(|_| finding.error_codes.is_empty())
            .filter(|&i| known.issues[i].classification == class);
        if let Some(i) = known.preferred(by_fp) {
            let k = &known.issues[i];
            let reason = format!(
                "fingerprint {} equals #{}'s ({class})",
                &fp[..16],
                k.issue.number
            );
            return exact(k, DedupTier::Fingerprint, reason);
        }
        let by_sig = finding
            .signature_ids
            .iter()
            .filter_map(|s| known.by_signature.get(s).copied())
            .filter(|&i| known.issues[i].classification == class);
        if let Some(i) = known.preferred(by_sig) {
            let k = &known.issues[i];
            let reason = format!(
                "cites a signature #{} already covers ({class})",
                k.issue.number
            );
            return exact(k, DedupTier::Fingerprint, reason);
        }
        // Tier 2b: the same messages under templates learned further (or a quoted name that
        // differs); never for a coded finding, as above.
        if finding.error_codes.is_empty() && !templates.is_empty() {
            let covers = |k: &KnownIssue, t: &str| {
                k.templates
                    .iter()
                    .any(|own| super::template_match::templates_match(own, t))
            };
            let by_template = known
                .with_matching_template(&templates[0])
                .filter(|k| k.classification == class)
                .filter(|k| templates[1..].iter().all(|t| covers(k, t)))
                .filter_map(|k| known.by_number.get(&k.issue.number).copied())
                .collect::<Vec<_>>();
            if let Some(i) = known.preferred(by_template.into_iter()) {
                let k = &known.issues[i];
                let reason = format!(
                    "its templates are the messages of #{} as learned further ({class})",
                    k.issue.number
                );
                return exact(k, DedupTier::Template, reason);
            }
        }
        // Tier 3: similarity.
        self.similar(finding, templates, known)
    }

    fn similar(
        &self,
        finding: &Finding,
        templates: &[String],
        known: &KnownIssues,
    ) -> (DedupDecision, DedupExplanation) {
        let t = self.config.related_threshold;
        let need = self.config.min_related_attributes.saturating_sub(1) as usize;
        let class = class_index(finding.classification);
        let features = Features::new(
            &finding.title,
            templates,
            finding.error_type.as_deref(),
            &finding.source_files,
        );
        let index = &known.similarity;
        let query = index.query_ids(&features);
        // With two or more attributes needed, every qualifying pair includes title, template or
        // files, so their postings find every candidate; with one, error types are searched too.
        let generators: &[Attribute] = if need >= 2 {
            &[
                Attribute::Title,
                Attribute::Template,
                Attribute::SourceFiles,
            ]
        } else {
            &Attribute::ALL
        };
        let candidates = if need == 0 {
            index.by_class[class as usize].clone()
        } else {
            index.candidates(class, &query, generators, t)
        };
        let mut best: Option<(u32, usize, f64, Vec<AttributeScore>)> = None;
        for &c in &candidates {
            let i = c as usize;
            let Some(sets) = index.issues.get(i) else {
                continue;
            };
            let mut scores = Vec::with_capacity(4);
            let mut agreeing = 0usize;
            let mut sum = 0.0;
            for attr in Attribute::ALL {
                let (q, k) = (&query[attr.index()], &sets[attr.index()]);
                if q.is_empty() && k.is_empty() {
                    continue; // Unknown on both sides: neither agrees nor disagrees.
                }
                let score = jaccard(q, k);
                let agreed = score >= t - 1e-12;
                if agreed {
                    agreeing += 1;
                    sum += score;
                }
                scores.push(AttributeScore {
                    attribute: attr,
                    score,
                    agreed,
                });
            }
            // The message templates say what the logs actually show: when both sides have them and
            // they disagree, similar titles or files do not make the problems the same.
            let template_veto = scores
                .iter()
                .any(|s| s.attribute == Attribute::Template && !s.agreed)
                && !query[Attribute::Template.index()].is_empty()
                && !sets[Attribute::Template.index()].is_empty();
            // Error codes name problems: a finding with codes the issue does not carry is another
            // problem however alike their text (`[DB-LOCK-001]` vs `[DB-LOCK-002]`, or a code an
            // uncoded issue's template masked, as inside a quoted JSON value).
            let codes = &known.issues[i].error_codes;
            let code_veto = !finding.error_codes.is_empty()
                && !finding.error_codes.iter().any(|c| codes.contains(c));
            if agreeing < need || template_veto || code_veto {
                continue;
            }
            let mean = if agreeing == 0 {
                1.0
            } else {
                sum / agreeing as f64
            };
            let k = &known.issues[i];
            // More agreeing attributes, then higher mean, then open over closed, then lowest number.
            let better = match &best {
                None => true,
                Some((b, ba, bm, _)) => {
                    let bk = &known.issues[*b as usize];
                    let new_key = (
                        agreeing,
                        mean,
                        k.issue.state == IssueState::Open,
                        std::cmp::Reverse(k.issue.number),
                    );
                    let old_key = (
                        *ba,
                        *bm,
                        bk.issue.state == IssueState::Open,
                        std::cmp::Reverse(bk.issue.number),
                    );
                    new_key > old_key
                }
            };
            if better {
                best = Some((c, agreeing, mean, scores));
            }
        }
        let Some((c, agreeing, mean, attributes)) = best else {
            let explanation = DedupExplanation {
                tier: None,
                issue: None,
                score: 0.0,
                attributes: Vec::new(),
                agreeing: 0,
                candidates: candidates.len(),
                reason: format!(
                    "no known issue of class {} matches by code, fingerprint or similarity",
                    finding.classification
                ),
            };
            return (DedupDecision::New, explanation);
        };
        let k = &known.issues[c as usize];
        let mut reason = format!("similar to #{} on", k.issue.number);
        for a in attributes.iter().filter(|a| a.agreed) {
            let _ = write!(reason, " {} {:.2},", a.attribute.as_str(), a.score);
        }
        let _ = write!(
            reason,
            " classification ({} of {} attributes needed)",
            agreeing + 1,
            self.config.min_related_attributes
        );
        let explanation = DedupExplanation {
            tier: Some(DedupTier::Similarity),
            issue: Some(k.issue.number),
            score: mean,
            attributes,
            agreeing: agreeing as u32 + 1,
            candidates: candidates.len(),
            reason: reason.clone(),
        };
        let decision = if k.issue.state == IssueState::Closed {
            DedupDecision::Regression {
                issue: k.issue.number,
                tier: DedupTier::Similarity,
                reason,
            }
        } else {
            DedupDecision::Related {
                issue: k.issue.number,
                score: mean,
                reason,
            }
        };
        (decision, explanation)
    }
}

fn exact(k: &KnownIssue, tier: DedupTier, reason: String) -> (DedupDecision, DedupExplanation) {
    let explanation = DedupExplanation {
        tier: Some(tier),
        issue: Some(k.issue.number),
        score: 1.0,
        attributes: Vec::new(),
        agreeing: 0,
        candidates: 0,
        reason: reason.clone(),
    };
    let decision = if k.issue.state == IssueState::Closed {
        DedupDecision::Regression {
            issue: k.issue.number,
            tier,
            reason: format!("{reason}; the issue is closed"),
        }
    } else {
        DedupDecision::Duplicate {
            issue: k.issue.number,
            tier,
            score: 1.0,
            reason,
        }
    };
    (decision, explanation)
}

#[async_trait]
impl Deduplicator for ThreeTierDeduplicator {
    async fn decide(
        &self,
        finding: &Finding,
        fingerprint: &str,
        known: &(dyn KnownIssuesView + 'static),
    ) -> Result<DedupDecision> {
        if let Some(known) = known.as_any().downcast_ref::<KnownIssues>() {
            return Ok(self.decide_fingerprinted(finding, fingerprint, known).0);
        }
        // Another view: index it for this decision.
        let templates = known.templates_of(finding);
        let indexed = KnownIssues::new(known.issues().cloned());
        Ok(self
            .decide_with(finding, fingerprint, &templates, &indexed)
            .0)
    }
}
