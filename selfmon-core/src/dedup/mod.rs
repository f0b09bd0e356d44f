//! Known issues, their indexes, the finding fingerprint and the deduplicators.
//!
//! [`ThreeTierDeduplicator`] decides, in order:
//!
//! 1. **Error code**: the finding shares an error code with a known issue of the same
//!    classification → duplicate (or regression when that issue is closed).
//! 2. **Fingerprint**: the finding's [`finding_fingerprint`] equals a known issue's, or the finding
//!    cites a digest signature a known issue already covers (same classification) → duplicate. A
//!    finding carrying error codes that tier 1 found on no issue is not matched by fingerprint: the
//!    code names another problem even where a template masked it.
//!    Then by **template** ([`DedupTier::Template`](crate::traits::DedupTier::Template)): every
//!    template the finding cites is one message with a template of a known issue of its
//!    classification ([`templates_match`]: equal but where one side generalised positions to
//!    `<*>`, or one quoted name differs) → duplicate. Templates generalise as the templater
//!    learns, across scans too: an issue filed under `queue orderService is backed up` still
//!    covers `queue <*> is backed up`. Never for a finding with error codes.
//! 3. **Similarity**: title, message templates, error type and source files are normalised (NFKC,
//!    the template masks, case folded), compared as token sets (Jaccard), and the finding is
//!    *related* to the best issue of the same classification on which at least
//!    [`DedupConfig::min_related_attributes`](crate::config::DedupConfig::min_related_attributes) attributes agree (an attribute agrees at or above
//!    [`DedupConfig::related_threshold`](crate::config::DedupConfig::related_threshold); the shared classification counts as one), unless both
//!    sides have message templates and those disagree (the logs show different things). Related
//!    findings become comments, never silent skips.
//!
//! Only the exact tiers (1 and 2) skip silently. Any match against a closed issue is a regression.
//! Tier 3 is answered by an inverted index with prefix filtering (a candidate must share one of
//! the rarest tokens of an attribute to reach the threshold), so a decision touches only issues
//! sharing rare tokens, not all known issues.

mod exact_title;
mod fingerprint;
mod known;
mod similarity;
mod template_match;
mod three_tier;

pub use exact_title::ExactTitleDeduplicator;
pub use fingerprint::{finding_fingerprint, normalise_title};
pub use known::KnownIssues;
pub use similarity::{jaccard, token_set, Attribute};
pub use template_match::{templates_match, MIN_AGREEING_CONSTANTS};
pub use three_tier::{AttributeScore, DedupExplanation, ThreeTierDeduplicator};

#[cfg(test)]
mod tests;
