//! Known issues, their indexes, the finding fingerprint and the deduplicators.
//!
//! [`ThreeTierDeduplicator`] decides, in order:
//!
//! 1. **Error code**: the finding shares an error code with a known issue of the same
//!    classification → duplicate (or regression when that issue is closed).
//! 2. **Fingerprint**: the finding's [`finding_fingerprint`] equals a known issue's, or the finding
//!    cites a digest signature a known issue already covers (same classification) → duplicate.
//! 3. **Similarity**: title, message templates, error type and source files are normalised (NFKC,
//!    the template masks, case folded), compared as token sets (Jaccard), and the finding is
//!    *related* to the best issue of the same classification on which at least
//!    [`DedupConfig::min_related_attributes`] attributes agree (an attribute agrees at or above
//!    [`DedupConfig::related_threshold`]; the shared classification counts as one), unless both
//!    sides have message templates and those disagree (the logs show different things). Related
//!    findings become comments, never silent skips.
//!
//! Only the exact tiers (1 and 2) skip silently. Any match against a closed issue is a regression.
//! Tier 3 is answered by an inverted index with prefix filtering (a candidate must share one of
//! the rarest tokens of an attribute to reach the threshold), so a decision touches only issues
//! sharing rare tokens, not all known issues.

use std::collections::HashMap;
use std::fmt::Write as _;

use async_trait::async_trait;

use crate::config::DedupConfig;
use crate::digest::{Signature, OVERFLOW_SIGNATURE_ID};
use crate::error::Result;
use crate::hash::{sha256_hex, FxMap};
use crate::model::{Classification, ErrorCode, Finding, IssueState, KnownIssue};
use crate::template::{is_specific_template, mask, template_fingerprint, template_text};
use crate::traits::{DedupDecision, DedupTier, Deduplicator};

/// The known issues of one scan, indexed for the dedup tiers. Built once per scan from the state
/// store and the tracker; issues filed during the scan are added with [`insert`](Self::insert).
#[derive(Debug, Clone, Default)]
pub struct KnownIssues {
    issues: Vec<KnownIssue>,
    by_number: HashMap<u64, usize>,
    by_code: HashMap<ErrorCode, Vec<usize>>,
    by_fingerprint: HashMap<String, Vec<usize>>,
    by_signature: HashMap<String, usize>,
    by_title: HashMap<String, Vec<usize>>,
    by_template_fingerprint: HashMap<String, Vec<usize>>,
    similarity: SimilarityIndex,
    signature_templates: HashMap<String, String>,
}

impl KnownIssues {
    /// Indexes `issues`. A later entry with the same number replaces an earlier one.
    pub fn new(issues: impl IntoIterator<Item = KnownIssue>) -> Self {
        let mut k = KnownIssues::default();
        for i in issues {
            k.insert(i);
        }
        k
    }

    /// Adds (or replaces, by number) an issue.
    pub fn insert(&mut self, issue: KnownIssue) {
        if let Some(&idx) = self.by_number.get(&issue.issue.number) {
            // Replace: rebuild is simplest and rare.
            let mut all = std::mem::take(&mut self.issues);
            all[idx] = issue;
            let noted = std::mem::take(&mut self.signature_templates);
            *self = KnownIssues::new(all);
            self.signature_templates = noted;
            return;
        }
        let idx = self.issues.len();
        self.by_number.insert(issue.issue.number, idx);
        for c in &issue.error_codes {
            self.by_code.entry(c.clone()).or_default().push(idx);
        }
        self.by_fingerprint
            .entry(issue.fingerprint.clone())
            .or_default()
            .push(idx);
        for s in &issue.signature_ids {
            self.by_signature.entry(s.clone()).or_insert(idx);
        }
        self.by_title
            .entry(normalise_title(&issue.title))
            .or_default()
            .push(idx);
        for t in &issue.templates {
            // Persisted templates may be sealed: their fingerprint is the clear template's.
            if is_specific_template(template_text(t)) {
                let list = self
                    .by_template_fingerprint
                    .entry(template_fingerprint(t))
                    .or_default();
                if !list.contains(&idx) {
                    list.push(idx);
                }
            }
        }
        self.similarity.insert(idx as u32, &issue);
        self.issues.push(issue);
    }

    /// Remembers the templates of this scan's digest signatures, so findings citing them (by
    /// signature id) are fingerprinted and compared with their templates. Call before deciding.
    pub fn note_signatures<'a>(&mut self, signatures: impl IntoIterator<Item = &'a Signature>) {
        for s in signatures {
            self.signature_templates
                .insert(s.id.clone(), s.template.clone());
        }
    }

    /// The templates of the signatures `finding` cites, as noted by
    /// [`note_signatures`](Self::note_signatures), sorted and deduplicated.
    pub fn templates_of(&self, finding: &Finding) -> Vec<String> {
        let mut t: Vec<String> = finding
            .signature_ids
            .iter()
            .filter_map(|id| self.signature_templates.get(id).cloned())
            .collect();
        t.sort();
        t.dedup();
        t
    }

    /// Sets the state of an issue, if known.
    pub fn set_state(&mut self, number: u64, state: IssueState) {
        if let Some(&i) = self.by_number.get(&number) {
            self.issues[i].issue.state = state;
        }
    }

    /// All issues.
    pub fn iter(&self) -> impl Iterator<Item = &KnownIssue> {
        self.issues.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.issues.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    /// The issue with this number.
    pub fn get(&self, number: u64) -> Option<&KnownIssue> {
        self.by_number.get(&number).map(|&i| &self.issues[i])
    }

    /// Issues covering `code`.
    pub fn with_code<'a>(&'a self, code: &ErrorCode) -> impl Iterator<Item = &'a KnownIssue> + 'a {
        self.by_code
            .get(code)
            .into_iter()
            .flatten()
            .map(|&i| &self.issues[i])
    }

    /// Issues with this fingerprint.
    pub fn with_fingerprint<'a>(&'a self, fp: &str) -> impl Iterator<Item = &'a KnownIssue> + 'a {
        self.by_fingerprint
            .get(fp)
            .into_iter()
            .flatten()
            .map(|&i| &self.issues[i])
    }

    /// The issue that already covers a digest signature id.
    pub fn with_signature(&self, signature_id: &str) -> Option<&KnownIssue> {
        self.by_signature
            .get(signature_id)
            .map(|&i| &self.issues[i])
    }

    /// Issues whose normalised title (prefix removed, case and whitespace folded) equals `title`'s.
    pub fn with_title<'a>(&'a self, title: &str) -> impl Iterator<Item = &'a KnownIssue> + 'a {
        self.by_title
            .get(&normalise_title(title))
            .into_iter()
            .flatten()
            .map(|&i| &self.issues[i])
    }
}

impl KnownIssues {
    /// The known issue that already accounts for a digest signature, before any analysis: used by
    /// the engine to drop known problems from the prompt and count them as new occurrences.
    /// Returns the issue and the tier that matched:
    ///
    /// 1. [`DedupTier::ErrorCode`]: the signature's codes intersect an issue's codes;
    /// 2. [`DedupTier::Fingerprint`]: an issue covers the signature id, or lists a template equal to
    ///    the signature's (only templates with at least two constant tokens count).
    ///
    /// Among several matching issues an open one wins over a closed one, then the lowest number.
    /// The overflow signature never matches.
    pub fn match_signature(&self, signature: &Signature) -> Option<(&KnownIssue, DedupTier)> {
        if signature.id == OVERFLOW_SIGNATURE_ID {
            return None;
        }
        let by_code = signature
            .error_codes
            .iter()
            .flat_map(|c| self.by_code.get(c).into_iter().flatten().copied());
        if let Some(i) = self.preferred(by_code) {
            return Some((&self.issues[i], DedupTier::ErrorCode));
        }
        if let Some(&i) = self.by_signature.get(&signature.id) {
            return Some((&self.issues[i], DedupTier::Fingerprint));
        }
        if is_specific_template(&signature.template) {
            let by_template = self
                .by_template_fingerprint
                .get(&signature.template_fingerprint)
                .into_iter()
                .flatten()
                .copied();
            if let Some(i) = self.preferred(by_template) {
                return Some((&self.issues[i], DedupTier::Fingerprint));
            }
        }
        None
    }

    /// The preferred of several matching issues: open before closed, then the lowest number.
    fn preferred(&self, candidates: impl Iterator<Item = usize>) -> Option<usize> {
        candidates.min_by_key(|&i| {
            let k = &self.issues[i];
            (k.issue.state == IssueState::Closed, k.issue.number)
        })
    }
}

/// Title without a `[BUG]`-style prefix, lower-cased, whitespace folded.
pub fn normalise_title(title: &str) -> String {
    // Undo the defusing applied to filed titles (word joiners, angle quotes for `<` `>`).
    let undone: String = title
        .chars()
        .filter(|&c| c != '\u{2060}')
        .map(|c| match c {
            '\u{2039}' => '<',
            '\u{203A}' => '>',
            c => c,
        })
        .collect();
    let t = undone.trim();
    let t = match t.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((_, rest)) => rest,
        None => t,
    };
    t.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The finding fingerprint (dedup tier 2), stable across releases:
///
/// `sha256_hex("selfmon-fp-v1\n" + classification + "\n" + error_type + "\n" + files + "\n" + templates)`
/// where `error_type` is trimmed and lower-cased (empty if none), `files` are the source files
/// trimmed, with `\` turned into `/` and a leading `./` removed, sorted, deduplicated and joined with
/// `,`, and `templates` are the message templates of the signatures the finding covers, sorted,
/// deduplicated and joined with `\n` (the normalised title when it covers none).
pub fn finding_fingerprint(finding: &Finding, templates: &[String]) -> String {
    let error_type = finding
        .error_type
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_lowercase();
    let mut files: Vec<String> = finding
        .source_files
        .iter()
        .map(|f| {
            let f = f.trim().replace('\\', "/");
            f.strip_prefix("./").unwrap_or(&f).to_string()
        })
        .collect();
    files.sort();
    files.dedup();
    let mut tpls: Vec<&str> = templates.iter().map(String::as_str).collect();
    tpls.sort_unstable();
    tpls.dedup();
    let title;
    let tpl_text = if tpls.is_empty() {
        title = normalise_title(&finding.title);
        title.clone()
    } else {
        tpls.join("\n")
    };
    let input = format!(
        "selfmon-fp-v1\n{}\n{}\n{}\n{}",
        finding.classification.as_str(),
        error_type,
        files.join(","),
        tpl_text
    );
    sha256_hex(input.as_bytes())
}

/// The trivial deduplicator: a finding whose normalised title equals a known issue's (same
/// classification) is a duplicate (or a regression when that issue is closed).
#[derive(Debug, Clone, Copy, Default)]
pub struct ExactTitleDeduplicator;

#[async_trait]
impl Deduplicator for ExactTitleDeduplicator {
    async fn decide(&self, finding: &Finding, known: &KnownIssues) -> Result<DedupDecision> {
        let hit = known
            .with_title(&finding.title)
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

// ---------------------------------------------------------------------------------------------
// Tier 3: normalisation, similarity and the inverted index
// ---------------------------------------------------------------------------------------------

/// The attributes tier 3 compares (besides the classification, which must be equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribute {
    /// The title, without its `[BUG]`-style prefix.
    Title,
    /// The message templates of the cited signatures.
    Template,
    /// The error type (`ValueError`, `psycopg2.errors.UniqueViolation`).
    ErrorType,
    /// The source files.
    SourceFiles,
}

impl Attribute {
    /// All attributes, in the order they are reported.
    pub const ALL: [Attribute; 4] = [
        Attribute::Title,
        Attribute::Template,
        Attribute::ErrorType,
        Attribute::SourceFiles,
    ];

    /// The name used in explanations (`"title"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Attribute::Title => "title",
            Attribute::Template => "template",
            Attribute::ErrorType => "error_type",
            Attribute::SourceFiles => "source_files",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The normalised token set of a text: NFKC, the template masks, case folded, split on anything but
/// letters, digits, `_` and placeholders; sorted and deduplicated.
pub fn token_set(text: &str) -> Vec<String> {
    let masked = mask(text).to_lowercase();
    let mut out: Vec<String> = masked
        .split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '<' | '>' | '*')))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Jaccard similarity of two sorted, deduplicated sets: |A∩B| / |A∪B|, in 0..=1; 1 when both are
/// empty. Symmetric.
pub fn jaccard<T: Ord>(a: &[T], b: &[T]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut both) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    both as f64 / (a.len() + b.len() - both) as f64
}

/// Normalised source file: trimmed, `\` as `/`, without a leading `./`, case kept.
fn normalise_file(f: &str) -> String {
    let f = f.trim().replace('\\', "/");
    f.strip_prefix("./").unwrap_or(&f).to_string()
}

/// The four attribute token sets of an issue or finding, as strings.
#[derive(Debug, Clone, Default)]
struct Features {
    sets: [Vec<String>; 4],
}

impl Features {
    fn new(title: &str, templates: &[String], error_type: Option<&str>, files: &[String]) -> Self {
        let mut tpl: Vec<String> = templates.iter().flat_map(|t| token_set(t)).collect();
        tpl.sort_unstable();
        tpl.dedup();
        let et = error_type.map(token_set).unwrap_or_default();
        let mut fs: Vec<String> = files
            .iter()
            .map(|f| normalise_file(f))
            .filter(|f| !f.is_empty())
            .collect();
        fs.sort_unstable();
        fs.dedup();
        Features {
            sets: [token_set(&normalise_title(title)), tpl, et, fs],
        }
    }
}

/// Inverted index over the attribute tokens of known issues, per classification.
#[derive(Debug, Clone, Default)]
struct SimilarityIndex {
    vocabulary: FxMap<Box<str>, u32>,
    /// (classification, attribute, token) → issue indexes, ascending.
    postings: FxMap<(u8, u8, u32), Vec<u32>>,
    /// Per issue: the token ids of each attribute, sorted.
    issues: Vec<[Vec<u32>; 4]>,
    by_class: [Vec<u32>; 3],
}

fn class_index(c: Classification) -> u8 {
    match c {
        Classification::ServerBug => 0,
        Classification::ClientMisuse => 1,
        Classification::DocumentationGap => 2,
    }
}

impl SimilarityIndex {
    fn insert(&mut self, idx: u32, issue: &KnownIssue) {
        let f = Features::new(
            &issue.title,
            &issue.templates,
            issue.error_type.as_deref(),
            &issue.source_files,
        );
        let class = class_index(issue.classification);
        let mut ids: [Vec<u32>; 4] = Default::default();
        for (a, set) in f.sets.iter().enumerate() {
            for tok in set {
                let next = self.vocabulary.len() as u32;
                let id = *self.vocabulary.entry(tok.as_str().into()).or_insert(next);
                ids[a].push(id);
                self.postings
                    .entry((class, a as u8, id))
                    .or_default()
                    .push(idx);
            }
            ids[a].sort_unstable();
            ids[a].dedup();
        }
        while self.issues.len() < idx as usize {
            self.issues.push(Default::default());
        }
        self.issues.push(ids);
        self.by_class[class as usize].push(idx);
    }

    /// Token ids of a query's attribute sets; unknown tokens get ids no issue has (beyond the
    /// vocabulary), so set sizes stay right.
    fn query_ids(&self, f: &Features) -> [Vec<u32>; 4] {
        let mut unknown = self.vocabulary.len() as u32;
        let mut out: [Vec<u32>; 4] = Default::default();
        for (a, set) in f.sets.iter().enumerate() {
            for tok in set {
                let id = match self.vocabulary.get(tok.as_str()) {
                    Some(&id) => id,
                    None => {
                        unknown = unknown.saturating_add(1);
                        unknown
                    }
                };
                out[a].push(id);
            }
            out[a].sort_unstable();
            out[a].dedup();
        }
        out
    }

    fn df(&self, class: u8, attr: usize, id: u32) -> usize {
        self.postings
            .get(&(class, attr as u8, id))
            .map_or(0, Vec::len)
    }

    /// Issues of `class` that can reach `threshold` on at least one of `attrs`: by prefix filtering,
    /// such an issue shares one of the `|A| - ceil(t·|A|) + 1` rarest tokens of the attribute.
    fn candidates(
        &self,
        class: u8,
        query: &[Vec<u32>; 4],
        attrs: &[Attribute],
        threshold: f64,
    ) -> Vec<u32> {
        if threshold <= 0.0 {
            return self.by_class[class as usize].clone();
        }
        let mut out: Vec<u32> = Vec::new();
        for attr in attrs {
            let a = attr.index();
            let set = &query[a];
            if set.is_empty() {
                continue;
            }
            let min_overlap = ((threshold * set.len() as f64) - 1e-9).ceil().max(1.0) as usize;
            let prefix_len = set.len().saturating_sub(min_overlap) + 1;
            let mut by_rarity: Vec<(usize, u32)> =
                set.iter().map(|&id| (self.df(class, a, id), id)).collect();
            by_rarity.sort_unstable();
            for &(_, id) in by_rarity.iter().take(prefix_len) {
                if let Some(p) = self.postings.get(&(class, a as u8, id)) {
                    out.extend_from_slice(p);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

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

/// The three-tier deduplicator; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct ThreeTierDeduplicator {
    config: DedupConfig,
}

impl ThreeTierDeduplicator {
    /// A deduplicator with `config`'s threshold and attribute count.
    pub fn new(config: DedupConfig) -> Self {
        ThreeTierDeduplicator { config }
    }

    /// Decides for one finding and explains the decision.
    pub fn decide_explained(
        &self,
        finding: &Finding,
        known: &KnownIssues,
    ) -> (DedupDecision, DedupExplanation) {
        let class = finding.classification;
        // Tier 1: error codes.
        let by_code = finding
            .error_codes
            .iter()
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
        // Tier 2: fingerprint, or a cited signature the issue covers.
        let templates = known.templates_of(finding);
        let fp = finding_fingerprint(finding, &templates);
        let by_fp = known
            .by_fingerprint
            .get(&fp)
            .into_iter()
            .flatten()
            .copied()
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
        // Tier 3: similarity.
        self.similar(finding, &templates, known)
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
            if agreeing < need || template_veto {
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
    async fn decide(&self, finding: &Finding, known: &KnownIssues) -> Result<DedupDecision> {
        Ok(self.decide_explained(finding, known).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Classification, IssueRef};

    fn known(number: u64, title: &str, class: Classification, state: IssueState) -> KnownIssue {
        KnownIssue {
            issue: IssueRef {
                number,
                url: format!("u/{number}"),
                state,
            },
            title: title.into(),
            classification: class,
            error_codes: vec![],
            fingerprint: format!("fp{number}"),
            source_files: vec![],
            error_type: None,
            templates: vec![],
            signature_ids: vec![format!("sig{number}")],
        }
    }

    #[tokio::test]
    async fn exact_title_dedup_ignores_prefix_case_and_classification_mismatch() {
        let k = KnownIssues::new([known(
            1,
            "[BUG] Sync  crashes",
            Classification::ServerBug,
            IssueState::Open,
        )]);
        let d = ExactTitleDeduplicator;
        let f = Finding::new(Classification::ServerBug, "sync crashes", "s");
        assert!(matches!(
            d.decide(&f, &k).await.unwrap(),
            DedupDecision::Duplicate { issue: 1, .. }
        ));
        let f = Finding::new(Classification::ClientMisuse, "sync crashes", "s");
        assert_eq!(d.decide(&f, &k).await.unwrap(), DedupDecision::New);
    }

    #[tokio::test]
    async fn a_closed_match_is_a_regression() {
        let k = KnownIssues::new([known(
            2,
            "[BUG] x",
            Classification::ServerBug,
            IssueState::Closed,
        )]);
        let f = Finding::new(Classification::ServerBug, "x", "s");
        assert!(matches!(
            ExactTitleDeduplicator.decide(&f, &k).await.unwrap(),
            DedupDecision::Regression { issue: 2, .. }
        ));
    }

    #[test]
    fn fingerprint_is_pinned() {
        let mut f = Finding::new(Classification::ServerBug, "Crash", "s");
        f.error_type = Some(" ValueError ".into());
        f.source_files = vec!["./b.py".into(), "a.py".into(), "a.py".into()];
        let fp = finding_fingerprint(&f, &["t2".into(), "t1".into()]);
        let expected = sha256_hex(b"selfmon-fp-v1\nserver_bug\nvalueerror\na.py,b.py\nt1\nt2");
        assert_eq!(fp, expected);
    }

    fn sig(id: &str, template: &str, codes: &[&str]) -> Signature {
        Signature {
            id: id.into(),
            level: crate::model::Level::Error,
            source: Some("svc".into()),
            template: template.into(),
            template_fingerprint: sha256_hex(template.as_bytes()),
            error_codes: codes.iter().map(|c| ErrorCode::parse(c).unwrap()).collect(),
            count: 3,
            first_id: 1,
            last_id: 3,
            first_timestamp: String::new(),
            last_timestamp: String::new(),
            sample_ids: vec![1],
            sample_messages: vec![],
            distinct_correlation_ids: 0,
            repeated: false,
            has_traceback: false,
            nodes: vec![],
        }
    }

    fn dedup() -> ThreeTierDeduplicator {
        ThreeTierDeduplicator::new(DedupConfig::default())
    }

    fn decide(f: &Finding, k: &KnownIssues) -> DedupDecision {
        dedup().decide_explained(f, k).0
    }

    #[test]
    fn tier1_shared_error_code_of_the_same_classification_is_a_duplicate() {
        let mut i = known(
            5,
            "[BUG] anything",
            Classification::ServerBug,
            IssueState::Open,
        );
        i.error_codes = vec![ErrorCode::parse("GIT-SYNC-001").unwrap()];
        let k = KnownIssues::new([i]);
        let mut f = Finding::new(Classification::ServerBug, "Clone keeps failing", "s");
        f.error_codes = vec![
            ErrorCode::parse("GIT-SYNC-001").unwrap(),
            ErrorCode::parse("GIT-SYNC-002").unwrap(),
        ];
        let (d, why) = dedup().decide_explained(&f, &k);
        assert!(
            matches!(
                d,
                DedupDecision::Duplicate {
                    issue: 5,
                    tier: DedupTier::ErrorCode,
                    ..
                }
            ),
            "{d:?}"
        );
        assert!(why.reason.contains("GIT-SYNC-001"), "{}", why.reason);
        f.classification = Classification::ClientMisuse;
        assert_eq!(decide(&f, &k), DedupDecision::New);
    }

    #[test]
    fn tier2_equal_fingerprint_or_covered_signature_is_a_duplicate() {
        let mut f = Finding::new(Classification::ServerBug, "Sync crashes", "s");
        f.error_type = Some("ValueError".into());
        f.signature_ids = vec!["s1".into()];
        let mut k = KnownIssues::default();
        k.note_signatures([&sig("s1", "sync of <PATH> failed", &[])]);
        let fp = finding_fingerprint(&f, &["sync of <PATH> failed".to_string()]);
        let mut i = known(
            7,
            "[BUG] something else entirely",
            Classification::ServerBug,
            IssueState::Open,
        );
        i.fingerprint = fp;
        i.signature_ids = vec![];
        k.insert(i);
        assert!(matches!(
            decide(&f, &k),
            DedupDecision::Duplicate {
                issue: 7,
                tier: DedupTier::Fingerprint,
                ..
            }
        ));
        // Covered signature id.
        let k2 = KnownIssues::new([known(
            8,
            "[BUG] other",
            Classification::ServerBug,
            IssueState::Open,
        )]);
        let mut g = Finding::new(Classification::ServerBug, "Different title", "s");
        g.signature_ids = vec!["sig8".into()];
        assert!(matches!(
            decide(&g, &k2),
            DedupDecision::Duplicate {
                issue: 8,
                tier: DedupTier::Fingerprint,
                ..
            }
        ));
    }

    fn rich(number: u64, title: &str, template: &str, state: IssueState) -> KnownIssue {
        let mut i = known(number, title, Classification::ServerBug, state);
        i.templates = vec![template.into()];
        i.error_type = Some("sqlite3.OperationalError".into());
        i.source_files = vec!["src/db/pool.py".into()];
        i.signature_ids = vec![];
        i
    }

    #[test]
    fn tier3_similar_findings_are_related_and_explained() {
        let k = KnownIssues::new([
            rich(
                1,
                "[BUG] Database is locked during repository sync",
                "sqlite3.OperationalError: database is locked",
                IssueState::Open,
            ),
            rich(
                2,
                "[BUG] Token refresh fails for expired sessions",
                "token refresh failed for <*>",
                IssueState::Open,
            ),
        ]);
        let mut f = Finding::new(
            Classification::ServerBug,
            "database is locked during repository sync",
            "s",
        );
        f.error_type = Some("sqlite3.OperationalError".into());
        f.source_files = vec!["./src/db/pool.py".into()];
        let (d, why) = dedup().decide_explained(&f, &k);
        assert!(
            matches!(d, DedupDecision::Related { issue: 1, .. }),
            "{d:?} {why:?}"
        );
        assert!(why.agreeing >= 3);
        assert!(
            why.reason.contains("title") && why.reason.contains("error_type"),
            "{}",
            why.reason
        );
        // Only the title agreeing (plus the classification) is not enough.
        let g = Finding::new(
            Classification::ServerBug,
            "database is locked during repository sync",
            "s",
        );
        assert_eq!(decide(&g, &k), DedupDecision::New);
    }

    #[test]
    fn tier3_does_not_link_different_messages_with_similar_characters() {
        let k = KnownIssues::new([rich(
            1,
            "[BUG] Failed to push repository",
            "failed to push <*>",
            IssueState::Open,
        )]);
        let mut f = Finding::new(
            Classification::ServerBug,
            "Failed to pull repository mirror",
            "s",
        );
        f.error_type = Some("sqlite3.OperationalError".into());
        f.source_files = vec!["src/db/pool.py".into()];
        let (_, why) = dedup().decide_explained(&f, &k);
        let title = why
            .attributes
            .iter()
            .find(|a| a.attribute == Attribute::Title);
        assert!(title.is_none_or(|t| !t.agreed), "{why:?}");
    }

    #[test]
    fn matches_against_closed_issues_are_regressions() {
        let mut closed = rich(
            3,
            "[BUG] Database is locked during repository sync",
            "x y z",
            IssueState::Closed,
        );
        closed.error_codes = vec![ErrorCode::parse("DB-LOCK-001").unwrap()];
        let k = KnownIssues::new([closed]);
        let mut f = Finding::new(
            Classification::ServerBug,
            "database is locked during repository sync",
            "s",
        );
        f.error_type = Some("sqlite3.OperationalError".into());
        f.source_files = vec!["src/db/pool.py".into()];
        assert!(matches!(
            decide(&f, &k),
            DedupDecision::Regression {
                issue: 3,
                tier: DedupTier::Similarity,
                ..
            }
        ));
        f.error_codes = vec![ErrorCode::parse("DB-LOCK-001").unwrap()];
        assert!(matches!(
            decide(&f, &k),
            DedupDecision::Regression {
                issue: 3,
                tier: DedupTier::ErrorCode,
                ..
            }
        ));
    }

    #[test]
    fn open_issues_win_over_closed_ones() {
        let mut a = known(1, "[BUG] a", Classification::ServerBug, IssueState::Closed);
        let mut b = known(2, "[BUG] b", Classification::ServerBug, IssueState::Open);
        a.error_codes = vec![ErrorCode::parse("GIT-SYNC-001").unwrap()];
        b.error_codes = a.error_codes.clone();
        let k = KnownIssues::new([a, b]);
        let mut f = Finding::new(Classification::ServerBug, "x", "s");
        f.error_codes = vec![ErrorCode::parse("GIT-SYNC-001").unwrap()];
        assert!(matches!(
            decide(&f, &k),
            DedupDecision::Duplicate { issue: 2, .. }
        ));
    }

    #[test]
    fn a_sealed_template_still_matches_the_clear_one_it_stands_for() {
        let clear = "push rejected for ghp_abcdefghijklmnopqrstuvwxyz0123456789 on origin";
        let sealed = crate::template::seal_template(clear, &crate::redact::Redactor::new());
        assert!(!sealed.contains("ghp_"), "{sealed}");
        let mut i = known(5, "[BUG] t", Classification::ServerBug, IssueState::Open);
        i.templates = vec![sealed];
        let k = KnownIssues::new([i]);
        assert_eq!(
            k.match_signature(&sig("y", clear, &[]))
                .map(|(k, t)| (k.issue.number, t)),
            Some((5, DedupTier::Fingerprint))
        );
    }

    #[test]
    fn signatures_match_known_issues_by_code_signature_id_and_template() {
        let mut i = known(4, "[BUG] t", Classification::ServerBug, IssueState::Open);
        i.error_codes = vec![ErrorCode::parse("GIT-SYNC-001").unwrap()];
        i.templates = vec![
            "clone of <PATH> failed after <NUM> attempts".into(),
            "<*> <*>".into(),
        ];
        let k = KnownIssues::new([i]);
        let by_code = sig("x", "whatever", &["GIT-SYNC-001"]);
        assert_eq!(
            k.match_signature(&by_code)
                .map(|(k, t)| (k.issue.number, t)),
            Some((4, DedupTier::ErrorCode))
        );
        let by_id = sig("sig4", "whatever", &[]);
        assert_eq!(
            k.match_signature(&by_id).map(|(_, t)| t),
            Some(DedupTier::Fingerprint)
        );
        let by_template = sig("y", "clone of <PATH> failed after <NUM> attempts", &[]);
        assert_eq!(
            k.match_signature(&by_template).map(|(_, t)| t),
            Some(DedupTier::Fingerprint)
        );
        assert!(
            k.match_signature(&sig("z", "<*> <*>", &[])).is_none(),
            "generic templates never match"
        );
        assert!(k
            .match_signature(&sig(
                OVERFLOW_SIGNATURE_ID,
                "clone of <PATH> failed after <NUM> attempts",
                &[]
            ))
            .is_none());
    }

    #[test]
    fn the_index_scores_only_issues_sharing_rare_tokens() {
        fn word(mut n: u64) -> String {
            (0..5)
                .map(|_| {
                    let c = char::from(b'a' + (n % 26) as u8);
                    n /= 26;
                    c
                })
                .collect()
        }
        let issues = (0..5_000u64).map(|n| {
            let title = format!(
                "[BUG] Worker {} fails with {} in module {}",
                word(n),
                word(n * 7 + 1),
                word(n * 13 + 2)
            );
            let mut i = rich(
                n + 1,
                &title,
                &format!("worker <*> failed: {}", word(n + 3)),
                IssueState::Open,
            );
            i.error_type = Some(format!("Err{}", n % 11));
            i.source_files = vec![format!("src/{}.py", word(n))];
            i
        });
        let k = KnownIssues::new(issues);
        let n = 4242;
        let mut f = Finding::new(
            Classification::ServerBug,
            format!(
                "worker {} fails with {} in module {}",
                word(n),
                word(n * 7 + 1),
                word(n * 13 + 2)
            ),
            "s",
        );
        f.source_files = vec![format!("src/{}.py", word(n))];
        f.error_type = Some("sqlite3.OperationalError".into());
        let (d, why) = dedup().decide_explained(&f, &k);
        assert!(
            matches!(d, DedupDecision::Related { issue: 4243, .. }),
            "{d:?} {why:?}"
        );
        assert!(why.candidates < 50, "scored {} candidates", why.candidates);
    }

    #[test]
    fn replacing_an_issue_keeps_the_noted_signature_templates() {
        let mut k = KnownIssues::new([known(
            1,
            "[BUG] a",
            Classification::ServerBug,
            IssueState::Open,
        )]);
        k.note_signatures([&sig("s1", "sync of <PATH> failed", &[])]);
        k.insert(known(
            1,
            "[BUG] a, retitled",
            Classification::ServerBug,
            IssueState::Closed,
        ));
        let mut f = Finding::new(Classification::ServerBug, "t", "s");
        f.signature_ids = vec!["s1".into()];
        assert_eq!(k.templates_of(&f), ["sync of <PATH> failed"]);
        assert_eq!(k.get(1).unwrap().issue.state, IssueState::Closed);
    }

    #[test]
    fn token_sets_mask_and_casefold() {
        assert_eq!(
            token_set("Clone of /a/b FAILED after 3 tries"),
            ["<num>", "<path>", "after", "clone", "failed", "of", "tries"]
        );
    }

    proptest::proptest! {
        #[test]
        fn similarity_is_symmetric_and_within_unit_interval(a in "[a-e ]{0,20}", b in "[a-e ]{0,20}") {
            let (x, y) = (token_set(&a), token_set(&b));
            let s = jaccard(&x, &y);
            proptest::prop_assert!((0.0..=1.0).contains(&s));
            proptest::prop_assert_eq!(s, jaccard(&y, &x));
        }

        #[test]
        fn dedup_never_reports_a_duplicate_of_an_issue_with_a_different_classification(
            class_k in 0usize..3, class_f in 0usize..3, title in "[a-c ]{1,12}", code in proptest::bool::ANY,
        ) {
            let mut i = rich(1, &format!("[BUG] {title}"), &title, IssueState::Open);
            i.classification = Classification::ALL[class_k];
            i.error_codes = vec![ErrorCode::parse("GIT-SYNC-001").unwrap()];
            i.signature_ids = vec!["s".into()];
            let k = KnownIssues::new([i]);
            let mut f = Finding::new(Classification::ALL[class_f], title.clone(), "s");
            f.error_type = Some("sqlite3.OperationalError".into());
            f.source_files = vec!["src/db/pool.py".into()];
            f.signature_ids = vec!["s".into()];
            if code { f.error_codes = vec![ErrorCode::parse("GIT-SYNC-001").unwrap()]; }
            let d = decide(&f, &k);
            if class_k != class_f {
                proptest::prop_assert_eq!(d, DedupDecision::New);
            }
        }
    }

    #[test]
    fn indexes_answer_by_code_fingerprint_signature_and_number() {
        let mut i = known(3, "t", Classification::ServerBug, IssueState::Open);
        i.error_codes = vec![ErrorCode::parse("GIT-SYNC-001").unwrap()];
        let mut k = KnownIssues::new([i]);
        assert_eq!(
            k.with_code(&ErrorCode::parse("GIT-SYNC-001").unwrap())
                .count(),
            1
        );
        assert_eq!(k.with_fingerprint("fp3").count(), 1);
        assert_eq!(k.with_signature("sig3").unwrap().issue.number, 3);
        k.set_state(3, IssueState::Closed);
        assert_eq!(k.get(3).unwrap().issue.state, IssueState::Closed);
    }
}
