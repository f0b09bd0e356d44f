//! Deciding whether a finding is new.

// The `'static` view bound needs parentheses in `&(dyn KnownIssuesView + 'static)`; the automock
// copies them into code the lint then flags.
#![cfg_attr(any(test, feature = "mock"), allow(unused_parens))]

use std::any::Any;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::dedup::templates_match;
use crate::digest::{is_overflow_signature, Signature};
use crate::error::Result;
use crate::model::{ErrorCode, Finding, IssueState, KnownIssue};
use crate::template::{is_specific_template, is_stack_frame_line};

/// Which dedup tier matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupTier {
    /// Shared error code (same classification).
    ErrorCode,
    /// Equal fingerprint.
    Fingerprint,
    /// The same message under a template that has generalised since (or a quoted name that
    /// differs): see [`crate::dedup::templates_match`].
    Template,
    /// Similar enough on enough attributes.
    Similarity,
    /// Exact title (the trivial deduplicator).
    ExactTitle,
}

impl DedupTier {
    /// `"error_code"`, `"fingerprint"`, `"template"`, `"similarity"` or `"exact_title"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DedupTier::ErrorCode => "error_code",
            DedupTier::Fingerprint => "fingerprint",
            DedupTier::Template => "template",
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
    /// Issues that list a message template whose fingerprint
    /// ([`crate::template::template_fingerprint`]) equals `template_fingerprint`; only templates
    /// with at least two constant tokens are indexed.
    fn issues_with_template_fingerprint(
        &self,
        template_fingerprint: &str,
    ) -> Box<dyn Iterator<Item = &KnownIssue> + '_>;
    /// Issues that list a template which is one message with `template` by
    /// [`crate::dedup::templates_match`] (the same tokens but where one side generalised
    /// positions to `<*>`, or one quoted name differs), each once. The default scans
    /// [`issues`](Self::issues); an index can answer faster with the same answer.
    fn issues_with_matching_template<'a>(
        &'a self,
        template: &'a str,
    ) -> Box<dyn Iterator<Item = &'a KnownIssue> + 'a> {
        Box::new(
            self.issues()
                .filter(move |k| k.templates.iter().any(|t| templates_match(t, template))),
        )
    }
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

/// A known issue that already explains a digest signature (see
/// [`Deduplicator::explain_signature`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureMatch {
    /// The issue; one of the known issues.
    pub issue: u64,
    /// Which tier matched.
    pub tier: DedupTier,
}

/// Decides whether a finding duplicates a known issue.
///
/// Contract:
/// - Pure with respect to its inputs: the same finding, fingerprint and known issues give the
///   same decision, whichever [`KnownIssuesView`] holds those issues.
/// - A decision names one of the known issues, of the finding's classification: never
///   `Duplicate`/`Related`/`Regression` for an issue of a different classification.
/// - A match against a closed issue is `Regression`, never `Duplicate`/`Related`; `Regression`
///   names a closed issue. Scores lie in 0..=1.
/// - A finding identical to a known issue of its classification (the title, error codes,
///   fingerprint and signatures it was filed with) is not `New`: the engine files each problem once
///   because of this.
/// - Errors (`Error::Adapter { component: Deduplicator, .. }`) fail the scan; use them only for
///   backends that can fail (a remote index), not for "no match".
/// - `conformance::deduplicator` (feature `mock`) checks an implementation against this.
// Adding a method? List it in the `forward!` at the end of this file too.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
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

    /// Before analysis: the known issue that already explains a digest signature, if any. The
    /// engine leaves an explained signature out of the analysis and counts its records as
    /// occurrences of that issue (a regression, with a comment, when the issue is closed);
    /// `None` sends the signature to the analysis.
    ///
    /// Must return one of `known`'s issues (a number it does not hold counts as open). The
    /// default is [`explain_by_code_or_template`]: a host whose deduplicator decides differently
    /// (or wants every signature analysed) overrides this too.
    async fn explain_signature(
        &self,
        signature: &Signature,
        known: &(dyn KnownIssuesView + 'static),
    ) -> Result<Option<SignatureMatch>> {
        Ok(explain_by_code_or_template(signature, known))
    }
}

/// The default pre-analysis match of a digest signature against the known issues:
///
/// 1. [`DedupTier::ErrorCode`]: every code of the signature is one a known issue carries (a
///    signature with a code no issue has is not explained at all: a new cause beside a known one);
/// 2. [`DedupTier::Fingerprint`]: an issue covers the signature id, or lists a template equal to
///    the signature's (only templates with at least two constant tokens count). A signature that
///    carries error codes no known issue has is never explained by its template alone: the code
///    says it is another problem, even where the template masked it (a code inside a quoted JSON
///    value);
/// 3. [`DedupTier::Template`]: an issue lists a template that is one message with the signature's
///    ([`crate::dedup::templates_match`]): the template generalised since the issue was filed
///    (`queue <*> is backed up` and the issue's `queue orderService is backed up`), or one quoted
///    name differs. The same rule for codes as in 2 applies.
///
/// Among several matching issues an open one wins over a closed one, then the lowest number.
/// A signature whose template is only a stack frame or continuation line
/// ([`crate::template::is_stack_frame_line`]: a crash shipped one line per record) is explained
/// by error code only. An overflow signature ([`crate::digest::is_overflow_signature`]) never matches: it is a bucket
/// of unrelated records, whatever codes it lists.
pub fn explain_by_code_or_template(
    signature: &Signature,
    known: &(dyn KnownIssuesView + 'static),
) -> Option<SignatureMatch> {
    if is_overflow_signature(&signature.id) {
        return None;
    }
    let preferred = |candidates: &mut dyn Iterator<Item = &KnownIssue>| {
        candidates
            .min_by_key(|k| (k.issue.state == IssueState::Closed, k.issue.number))
            .map(|k| k.issue.number)
    };
    let found = |issue, tier| Some(SignatureMatch { issue, tier });
    // Every code must be one a known issue carries: a new code beside a known one is a new
    // cause (`[GIT-SYNC-001] … [DISK-FULL-009] no space left`), never explained by the old one.
    if !signature
        .error_codes
        .iter()
        .all(|c| known.issues_with_code(c).next().is_some())
    {
        return None;
    }
    let mut by_code = signature
        .error_codes
        .iter()
        .flat_map(|c| known.issues_with_code(c));
    if let Some(issue) = preferred(&mut by_code) {
        return found(issue, DedupTier::ErrorCode);
    }
    // A stack frame logged as a record of its own (`at <*>`) names no problem: the frames of
    // every crash share its template, so an issue that covers it must not make another crash's
    // frames known.
    if is_stack_frame_line(&signature.template) {
        return None;
    }
    if let Some(k) = known.issue_with_signature(&signature.id) {
        return found(k.issue.number, DedupTier::Fingerprint);
    }
    // Codes were checked above: none is known. A template masking a new code explains nothing.
    if signature.error_codes.is_empty() && is_specific_template(&signature.template) {
        let mut by_template =
            known.issues_with_template_fingerprint(&signature.template_fingerprint);
        if let Some(issue) = preferred(&mut by_template) {
            return found(issue, DedupTier::Fingerprint);
        }
        let mut by_instance = known.issues_with_matching_template(&signature.template);
        if let Some(issue) = preferred(&mut by_instance) {
            return found(issue, DedupTier::Template);
        }
    }
    None
}

crate::traits::forward::forward! {
    Deduplicator {
        async fn decide(&self, finding: &Finding, fingerprint: &str, known: &(dyn KnownIssuesView + 'static)) -> Result<DedupDecision>;
        async fn explain_signature(&self, signature: &Signature, known: &(dyn KnownIssuesView + 'static)) -> Result<Option<SignatureMatch>>;
    }
}
