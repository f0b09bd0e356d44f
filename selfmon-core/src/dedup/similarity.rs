//! Tier 3: normalisation, similarity and the inverted index.

use super::fingerprint::{normalise_file, normalise_title};
use crate::hash::FxMap;
use crate::model::{Classification, KnownIssue};
use crate::template::mask;

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

    pub(super) fn index(self) -> usize {
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

/// The four attribute token sets of an issue or finding, as strings.
#[derive(Debug, Clone, Default)]
pub(super) struct Features {
    pub(super) sets: [Vec<String>; 4],
}

impl Features {
    pub(super) fn new(
        title: &str,
        templates: &[String],
        error_type: Option<&str>,
        files: &[String],
    ) -> Self {
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
pub(super) struct SimilarityIndex {
    pub(super) vocabulary: FxMap<Box<str>, u32>,
    /// (classification, attribute, token) → issue indexes, ascending.
    pub(super) postings: FxMap<(u8, u8, u32), Vec<u32>>,
    /// Per issue: the token ids of each attribute, sorted.
    pub(super) issues: Vec<[Vec<u32>; 4]>,
    pub(super) by_class: [Vec<u32>; 3],
}

pub(super) fn class_index(c: Classification) -> u8 {
    match c {
        Classification::ServerBug => 0,
        Classification::ClientMisuse => 1,
        Classification::DocumentationGap => 2,
    }
}

impl SimilarityIndex {
    pub(super) fn insert(&mut self, idx: u32, issue: &KnownIssue) {
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
    pub(super) fn query_ids(&self, f: &Features) -> [Vec<u32>; 4] {
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
    pub(super) fn candidates(
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
