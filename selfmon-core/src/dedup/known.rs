//! [`KnownIssues`]: the known issues of one scan, indexed for the dedup tiers.

use std::any::Any;
use std::collections::HashMap;

use super::fingerprint::normalise_title;
use super::similarity::SimilarityIndex;
use super::template_match::templates_match;
use crate::digest::{is_overflow_signature, Signature};
use crate::model::{ErrorCode, Finding, IssueState, KnownIssue};
use crate::template::{is_specific_template, template_fingerprint, template_text};
use crate::traits::{explain_by_code_or_template, DedupTier, KnownIssuesView};

/// The known issues of one scan, indexed for the dedup tiers. Built once per scan from the state
/// store and the tracker; issues filed during the scan are added with [`insert`](Self::insert).
#[derive(Debug, Clone, Default)]
pub struct KnownIssues {
    pub(super) issues: Vec<KnownIssue>,
    pub(super) by_number: HashMap<u64, usize>,
    pub(super) by_code: HashMap<ErrorCode, Vec<usize>>,
    pub(super) by_fingerprint: HashMap<String, Vec<usize>>,
    pub(super) by_signature: HashMap<String, usize>,
    pub(super) by_title: HashMap<String, Vec<usize>>,
    pub(super) by_template_fingerprint: HashMap<String, Vec<usize>>,
    /// Specific templates by token count, for [`templates_match`]: (issue, template text).
    pub(super) by_template_length: HashMap<usize, Vec<(usize, Box<str>)>>,
    pub(super) similarity: SimilarityIndex,
    pub(super) signature_templates: HashMap<String, String>,
    /// Templates of deferred findings whose signatures this scan did not see, by the signature
    /// ids they cite (see [`note_deferred_templates`](Self::note_deferred_templates)).
    pub(super) deferred_templates: HashMap<Vec<String>, Vec<String>>,
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
            let deferred = std::mem::take(&mut self.deferred_templates);
            *self = KnownIssues::new(all);
            self.signature_templates = noted;
            self.deferred_templates = deferred;
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
        // An overflow bucket's id names no problem: citing it matches nothing.
        for s in issue
            .signature_ids
            .iter()
            .filter(|s| !is_overflow_signature(s))
        {
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
                let text = template_text(t);
                let same_length = self
                    .by_template_length
                    .entry(text.split(' ').count())
                    .or_default();
                if !same_length
                    .iter()
                    .any(|(i, known)| *i == idx && **known == *text)
                {
                    same_length.push((idx, text.into()));
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

    /// Remembers the templates a finding from the backlog was deferred with (as persisted,
    /// possibly sealed), so it is compared by its templates although the signatures it cites
    /// belong to an earlier scan: two deferred findings of one problem whose template generalised
    /// in between must not both be filed. Ignored when this scan noted any signature it cites.
    pub fn note_deferred_templates(&mut self, finding: &Finding, templates: &[String]) {
        if templates.is_empty()
            || finding
                .signature_ids
                .iter()
                .any(|id| self.signature_templates.contains_key(id))
        {
            return;
        }
        self.deferred_templates
            .insert(finding.signature_ids.clone(), templates.to_vec());
    }

    /// The templates of the signatures `finding` cites, as noted by
    /// [`note_signatures`](Self::note_signatures) (or, for a deferred finding whose signatures
    /// this scan did not see, by [`note_deferred_templates`](Self::note_deferred_templates)),
    /// sorted and deduplicated.
    pub fn templates_of(&self, finding: &Finding) -> Vec<String> {
        let mut t: Vec<String> = finding
            .signature_ids
            .iter()
            .filter_map(|id| self.signature_templates.get(id).cloned())
            .collect();
        if t.is_empty() {
            if let Some(deferred) = self.deferred_templates.get(&finding.signature_ids) {
                t.clone_from(deferred);
            }
        }
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

    /// Issues listing a template that is one message with `template` ([`templates_match`]), each
    /// once, in the order they were added; only templates with at least two constant tokens are
    /// indexed.
    pub fn with_matching_template<'a>(
        &'a self,
        template: &'a str,
    ) -> impl Iterator<Item = &'a KnownIssue> + 'a {
        let mut seen: Vec<usize> = Vec::new();
        self.by_template_length
            .get(&template_text(template).split(' ').count())
            .into_iter()
            .flatten()
            .filter(move |(i, known)| {
                !seen.contains(i) && templates_match(known, template) && {
                    seen.push(*i);
                    true
                }
            })
            .map(|(i, _)| &self.issues[*i])
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
    /// The known issue that already accounts for a digest signature, before any analysis, by
    /// [`explain_by_code_or_template`] (the default of
    /// [`Deduplicator::explain_signature`](crate::traits::Deduplicator::explain_signature)).
    pub fn match_signature(&self, signature: &Signature) -> Option<(&KnownIssue, DedupTier)> {
        let m = explain_by_code_or_template(signature, self)?;
        Some((self.get(m.issue)?, m.tier))
    }

    /// The preferred of several matching issues: open before closed, then the lowest number.
    pub(super) fn preferred(&self, candidates: impl Iterator<Item = usize>) -> Option<usize> {
        candidates.min_by_key(|&i| {
            let k = &self.issues[i];
            (k.issue.state == IssueState::Closed, k.issue.number)
        })
    }
}

impl KnownIssuesView for KnownIssues {
    fn issues(&self) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        Box::new(self.iter())
    }
    fn issue(&self, number: u64) -> Option<&KnownIssue> {
        self.get(number)
    }
    fn issues_with_code(&self, code: &ErrorCode) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        Box::new(self.with_code(code))
    }
    fn issues_with_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        Box::new(self.with_fingerprint(fingerprint))
    }
    fn issues_with_template_fingerprint(
        &self,
        template_fingerprint: &str,
    ) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        Box::new(
            self.by_template_fingerprint
                .get(template_fingerprint)
                .into_iter()
                .flatten()
                .map(|&i| &self.issues[i]),
        )
    }
    fn issue_with_signature(&self, signature_id: &str) -> Option<&KnownIssue> {
        self.with_signature(signature_id)
    }
    fn issues_with_matching_template<'a>(
        &'a self,
        template: &'a str,
    ) -> Box<dyn Iterator<Item = &'a KnownIssue> + 'a> {
        Box::new(self.with_matching_template(template))
    }
    fn issues_with_title(&self, title: &str) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        Box::new(self.with_title(title))
    }
    fn templates_of(&self, finding: &Finding) -> Vec<String> {
        KnownIssues::templates_of(self, finding)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
