//! Known issues, their indexes, the finding fingerprint and the trivial exact-title deduplicator.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{ErrorCode, Finding, IssueState, KnownIssue};
use crate::template::sha256_hex;
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
            *self = KnownIssues::new(all);
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
        self.issues.push(issue);
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
    /// Returns the issue and the tier that matched.
    pub fn match_signature(
        &self,
        signature: &crate::digest::Signature,
    ) -> Option<(&KnownIssue, DedupTier)> {
        self.with_signature(&signature.id)
            .map(|k| (k, DedupTier::Fingerprint))
    }
}

/// Title without a `[BUG]`-style prefix, lower-cased, whitespace folded.
pub fn normalise_title(title: &str) -> String {
    let t = title.trim();
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
