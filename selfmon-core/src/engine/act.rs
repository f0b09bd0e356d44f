//! Stage 4, act: deduplicate each finding, spend the per-scan budgets (most severe first; what
//! they cannot cover waits in the backlog), and file, comment or reopen through the egress.

use std::collections::{HashMap, HashSet};

use super::egress::{Egress, Filing};
use super::triage::{Closure, Escalated, Lookup, Recurred};
use super::ScanEvent;
use crate::clock::Clock;
use crate::config::SelfMonitoringConfig;
use crate::dedup::{finding_fingerprint, KnownIssues};
use crate::digest::{CompiledIgnore, Signature};
use crate::error::{Error, Result};
use crate::model::{
    BacklogClosure, BacklogEntry, FilingIntent, Finding, FindingOutcome, IssueRef, IssueState,
    KnownIssue, Level, ScanEffects, ScanReport, ScanWarning,
};
use crate::redact::{RedactedFinding, RedactedSignature};
use crate::template::SecretTokens;
use crate::traits::{DedupDecision, DedupTier, Deduplicator};

/// A finding competing for the per-scan budget: fresh from this scan's analysis, or waiting in
/// the backlog.
pub(crate) struct Candidate {
    pub finding: RedactedFinding,
    pub severity: Level,
    pub count: u64,
    /// The finding's fingerprint, computed once, from the original templates (never from
    /// redacted text).
    pub fingerprint: String,
    /// The templates as they may be persisted (sealed).
    pub templates: Vec<String>,
    /// The evidence as it may leave the process.
    pub shown: Vec<RedactedSignature>,
    pub backlog: Option<BacklogEntry>,
}

/// The candidates of a scan, in the order the budget goes to them: most severe first, then the
/// backlog (older, already consumed records) before this scan's findings, then the most frequent.
///
/// `original` are the novel signatures (fingerprints come from their templates), `shown` the
/// same signatures as they may leave the process, `known_secrets` the template tokens the
/// templater saw holding part of a secret before masking (sealed with the templates).
pub(crate) fn candidates(
    findings: Vec<RedactedFinding>,
    backlog: Vec<BacklogEntry>,
    original: &[Signature],
    shown: &[RedactedSignature],
    egress: &Egress<'_>,
    known_secrets: &SecretTokens,
) -> Vec<Candidate> {
    let original_by_id: HashMap<&str, &Signature> =
        original.iter().map(|s| (s.id.as_str(), s)).collect();
    let shown_by_id: HashMap<&str, &RedactedSignature> =
        shown.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut out: Vec<Candidate> = Vec::with_capacity(findings.len() + backlog.len());
    for entry in backlog {
        out.push(Candidate {
            severity: entry.severity,
            count: entry.occurrences,
            fingerprint: entry.fingerprint.clone(),
            templates: egress.sealed(&entry.templates, known_secrets),
            shown: entry.evidence.clone(),
            finding: entry.finding.clone(),
            backlog: Some(entry),
        });
    }
    for finding in findings {
        let original = pick(&original_by_id, &finding.signature_ids);
        let templates: Vec<String> = original.iter().map(|s| s.template.clone()).collect();
        out.push(Candidate {
            severity: original
                .iter()
                .map(|s| s.level)
                .max()
                .unwrap_or(Level::Warning),
            count: original.iter().map(|s| s.count).sum(),
            fingerprint: finding_fingerprint(&finding, &templates),
            templates: egress.sealed(&templates, known_secrets),
            shown: pick(&shown_by_id, &finding.signature_ids)
                .into_iter()
                .cloned()
                .collect(),
            finding,
            backlog: None,
        });
    }
    out.sort_by_key(|c| {
        (
            std::cmp::Reverse(c.severity),
            c.backlog.is_none(),
            std::cmp::Reverse(c.count),
        )
    });
    out
}

fn pick<'a, S>(by_id: &HashMap<&str, &'a S>, ids: &[String]) -> Vec<&'a S> {
    ids.iter()
        .filter_map(|id| by_id.get(id.as_str()).copied())
        .collect()
}

/// The signatures a finding covers as they may leave the process (redacted, capped) and how many
/// records they hold.
struct Evidence<'a> {
    shown: Vec<&'a Signature>,
    count: u64,
}

/// The issue tracker refused a call: its rate limit is spent until `reset_at` (when it said).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateLimit {
    reset_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl RateLimit {
    /// The tracker's rate limit, if that is what `e` is.
    pub fn of(e: &Error) -> Option<RateLimit> {
        match e {
            Error::RateLimited {
                component: crate::Component::IssueTracker,
                reset_at,
                ..
            } => Some(RateLimit {
                reset_at: *reset_at,
            }),
            _ => None,
        }
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reset_at {
            Some(t) => write!(f, "the issue tracker's rate limit is spent until {t}"),
            None => f.write_str("the issue tracker's rate limit is spent"),
        }
    }
}

/// Counts a duplicate under the tier that matched it (the template tiers count as fingerprint).
fn count_duplicate(duplicates: &mut crate::model::DuplicateCounts, tier: DedupTier) {
    match tier {
        DedupTier::ErrorCode => duplicates.by_error_code += 1,
        DedupTier::Similarity => duplicates.by_similarity += 1,
        DedupTier::Fingerprint | DedupTier::Template | DedupTier::ExactTitle => {
            duplicates.by_fingerprint += 1
        }
    }
}

/// Per-scan filing and comment budgets.
pub(crate) struct Budget {
    issues_left: u32,
    comments_left: u32,
    /// `max_comments_per_scan`: 0 means the operator wants no comments at all.
    comments_allowed: u32,
    commented: HashSet<u64>,
    /// Issues the tracker said are not there (deleted, transferred): not called again this scan.
    gone: HashSet<u64>,
    /// Issues selfmon filed whose number the tracker holds as someone else's issue, and those
    /// not yet checked (see [`super::triage::Ownership`]): never commented on or reopened.
    foreign: HashSet<u64>,
    unverified: HashMap<u64, KnownIssue>,
    /// Issues whose conversation is locked (the listing said so, or a comment was refused):
    /// never commented on; a regression reopens one without a comment (review4 F12).
    locked: HashSet<u64>,
    /// Set once the tracker's rate limit is spent: the scan makes no more tracker calls, and what
    /// it would have filed waits in the backlog.
    rate_limit: Option<RateLimit>,
    /// The closures of the filed issues (see [`Closure`]).
    closures: HashMap<u64, Closure>,
}

/// The kind of report warning for a comment or reopen the tracker failed (review5 G2).
pub(crate) const TRACKER_CALL_FAILED: &str = "tracker_call_failed";

/// Why a comment or reopen did not happen.
enum Refusal {
    /// The tracker refused it and changed nothing (a spent rate limit, an issue that is gone or
    /// locked); the budget noted it.
    Refused,
    /// It failed in a way that may have changed the tracker all the same (a 5xx or a timeout
    /// after the request went out) or that a retry within the scan will not mend (permission
    /// denied, rejected): the error, for the scan report. The scan goes on.
    Failed(Error),
}

/// Whether `e` is a tracker call failing on its own (not the scan being cancelled, its lease
/// lost or the state store failing): one failed comment or reopen must not fail the scan, or
/// every comment the scan already made would be made again by the next one (review5 G2).
fn is_tracker_failure(e: &Error) -> bool {
    use crate::Component::IssueTracker;
    matches!(
        e,
        Error::Unavailable {
            component: IssueTracker,
            ..
        } | Error::PermissionDenied {
            component: IssueTracker,
            ..
        } | Error::InvalidInput {
            component: IssueTracker,
            ..
        } | Error::Adapter {
            component: IssueTracker,
            ..
        }
    )
}

impl Budget {
    pub fn new(c: &SelfMonitoringConfig) -> Self {
        Budget {
            issues_left: c.max_new_issues_per_scan,
            comments_left: c.max_comments_per_scan,
            comments_allowed: c.max_comments_per_scan,
            commented: HashSet::new(),
            gone: HashSet::new(),
            foreign: HashSet::new(),
            unverified: HashMap::new(),
            locked: HashSet::new(),
            rate_limit: None,
            closures: HashMap::new(),
        }
    }
    /// The budget of a scan that knows whose issues the tracker's numbers are.
    pub fn with_ownership(mut self, ownership: super::triage::Ownership) -> Self {
        self.foreign = ownership.foreign;
        self.unverified = ownership.unverified;
        self.gone = ownership.gone;
        self.locked = ownership.locked;
        self.closures = ownership.closures;
        self
    }
    /// What the scan knows of `issue`'s current closure.
    fn closure(&self, issue: u64) -> Closure {
        self.closures.get(&issue).copied().unwrap_or_default()
    }
    /// Whether the tracker may still be called about `issue` this scan (a reopen, a lookup).
    fn may_call(&self, issue: u64) -> bool {
        !self.gone.contains(&issue) && !self.foreign.contains(&issue) && self.rate_limit.is_none()
    }
    /// Why a comment on or reopen of `issue` did not happen, from the tracker's error `e`: see
    /// [`Refusal`]; errors that are not the tracker's own failure are returned.
    fn refusal(&mut self, issue: u64, e: Error) -> Result<Refusal> {
        match self.unless_gone_or_rate_limited(issue, Err::<(), _>(e)) {
            Ok(_) => Ok(Refusal::Refused),
            Err(e) if is_tracker_failure(&e) => Ok(Refusal::Failed(e)),
            Err(e) => Err(e),
        }
    }
    /// The budget of a scan that already met the tracker's rate limit (completing the outbox).
    pub fn with_rate_limit(mut self, rate_limit: Option<RateLimit>) -> Self {
        self.rate_limit = rate_limit;
        self
    }
    fn may_file(&self) -> bool {
        self.issues_left > 0 && self.rate_limit.is_none()
    }
    fn filed(&mut self) {
        self.issues_left = self.issues_left.saturating_sub(1);
    }
    fn may_comment(&self, issue: u64) -> bool {
        self.comments_left > 0
            && !self.commented.contains(&issue)
            && !self.gone.contains(&issue)
            && !self.foreign.contains(&issue)
            && !self.locked.contains(&issue)
            && self.rate_limit.is_none()
    }
    /// As [`unless_rate_limited`](Self::unless_rate_limited) for a call on `issue`, and the
    /// tracker saying the issue is not there (someone deleted or transferred it) is no error
    /// either: `Ok(false)`, the issue noted, the scan goes on (its occurrences are recorded by the
    /// caller; one missing issue must not stop every later scan).
    fn unless_gone_or_rate_limited<T>(&mut self, issue: u64, call: Result<T>) -> Result<bool> {
        match call {
            Err(
                e @ Error::NotFound {
                    component: crate::Component::IssueTracker,
                    ..
                },
            ) => {
                tracing::warn!(issue, error = %e, "the issue tracker no longer has this issue (deleted or transferred?); occurrences recorded, no comment; `selfmon history forget {issue}` has its problem filed anew");
                self.gone.insert(issue);
                Ok(false)
            }
            // A locked conversation refuses selfmon's comment: a fact about this one issue, not
            // a missing permission, so the scan goes on (review4 F12).
            Err(
                e @ Error::Locked {
                    component: crate::Component::IssueTracker,
                    ..
                },
            ) => {
                tracing::warn!(issue, error = %e, "the issue is locked; occurrences recorded, no comment");
                self.locked.insert(issue);
                Ok(false)
            }
            other => self.unless_rate_limited(other),
        }
    }
    /// `Ok(true)` when a tracker call succeeded, `Ok(false)` when the rate limit refused it (then
    /// noted: no more tracker calls this scan), the error otherwise.
    fn unless_rate_limited<T>(&mut self, call: Result<T>) -> Result<bool> {
        match call {
            Ok(_) => Ok(true),
            Err(e) => match RateLimit::of(&e) {
                Some(limit) => {
                    tracing::warn!(error = %e, "rate limited: no more tracker calls this scan");
                    self.rate_limit = Some(limit);
                    Ok(false)
                }
                None => Err(e),
            },
        }
    }
    fn why_deferred(&self, c: &SelfMonitoringConfig) -> String {
        match self.rate_limit {
            Some(limit) => format!("new, but {limit}; kept in the backlog for the next scan"),
            None => format!(
                "new, but this scan already filed the most issues allowed (max_new_issues_per_scan = {})",
                c.max_new_issues_per_scan
            ),
        }
    }
    fn why_no_comment(&self, issue: u64) -> String {
        if self.foreign.contains(&issue) {
            return format!(
                "the tracker's #{issue} is not the issue selfmon filed under that number (it \
                 lacks selfmon's marker: was the tracker configuration changed?); selfmon leaves \
                 it alone and counts the occurrences against its own record of #{issue}"
            );
        }
        if self.locked.contains(&issue) {
            return format!(
                "#{issue} is locked: the issue tracker refuses selfmon's comments on it; its \
                 occurrences are counted against #{issue} (unlock it, or let selfmon's account \
                 comment on locked issues, to get comments again)"
            );
        }
        if self.gone.contains(&issue) {
            return format!(
                "the issue tracker no longer has #{issue} (deleted or transferred?); its \
                 occurrences are still counted against #{issue} in selfmon's state, so this \
                 problem is not filed again while #{issue} is recorded there: run `selfmon \
                 history forget {issue}` (IssueLedger::forget_issue) to have its next \
                 recurrence filed as a new issue"
            );
        }
        match self.rate_limit {
            Some(limit) => limit.to_string(),
            None => "comment budget spent or already commented this scan".to_string(),
        }
    }
    /// Whether a comment on `issue` was held back for want of budget (the comment budget spent
    /// this scan, or the tracker's rate limit), so a later scan may still make it. Not when the
    /// issue was already commented on this scan, nor when no comment can ever be made (gone,
    /// someone else's, locked, or no comments configured).
    fn comment_waits(&self, issue: u64) -> bool {
        !self.may_comment(issue)
            && !self.commented.contains(&issue)
            && !self.gone.contains(&issue)
            && !self.foreign.contains(&issue)
            && !self.locked.contains(&issue)
            && (self.comments_allowed > 0 || self.rate_limit.is_some())
    }
    /// Whether a regression of `issue` gets no comment for want of budget (the comment budget
    /// spent, or the tracker's rate limit): it must wait for a later scan rather than be dropped.
    /// Not when the issue was already handled this scan, nor when the tracker no longer has it,
    /// nor when the configuration allows no comments at all (nothing would ever take it).
    fn regression_waits(&self, issue: u64) -> bool {
        !self.closure(issue).noted() && self.comment_waits(issue)
    }
    /// Whether a regression of `issue`, which got no comment because its conversation is locked,
    /// reopens it anyway: once per scan, when the configuration reopens regressions, no person
    /// dismissed the issue, and the tracker still takes calls.
    fn reopens_locked(&self, issue: u64, c: &SelfMonitoringConfig) -> bool {
        self.locked.contains(&issue)
            && c.dedup.reopen_on_regression
            && !self.closure(issue).dismissed()
            && !self.commented.contains(&issue)
            && !self.gone.contains(&issue)
            && !self.foreign.contains(&issue)
            && self.rate_limit.is_none()
    }
    fn commented(&mut self, issue: u64) {
        self.comments_left = self.comments_left.saturating_sub(1);
        self.commented.insert(issue);
    }
}

/// Acting on a scan's findings: the adapters it goes through, and what it changes.
pub(crate) struct Act<'a> {
    pub egress: &'a Egress<'a>,
    pub dedup: &'a dyn Deduplicator,
    pub clock: &'a dyn Clock,
    pub config: &'a SelfMonitoringConfig,
    pub emit: &'a (dyn Fn(ScanEvent) + Send + Sync),
    /// Outcomes and counters go here.
    pub report: &'a mut ScanReport,
    /// Issues filed (or reopened) are added, so later findings dedup against them.
    pub known: &'a mut KnownIssues,
    /// What the scan commits with its cursor: occurrences, deferrals, backlog closures.
    pub effects: &'a mut ScanEffects,
    pub budget: Budget,
    /// Backlog entries this scan filed, with the issue each became.
    pub backlog_filed: HashMap<String, u64>,
}

impl Act<'_> {
    /// The finding a comment on `issue` about its known signature `sig` carries: the issue's
    /// classification, titled by the signature's template as it may leave the process (`shown`).
    fn known_signature_finding(
        &self,
        issue: u64,
        sig: &Signature,
        shown: &RedactedSignature,
        description: String,
    ) -> Finding {
        Finding {
            signature_ids: vec![sig.id.clone()],
            error_codes: sig.error_codes.clone(),
            ..Finding::new(
                self.known
                    .get(issue)
                    .map(|k| k.classification)
                    .unwrap_or(crate::Classification::ServerBug),
                shown.template.clone(),
                description,
            )
        }
    }

    /// A known signature of a closed issue recurred: a regression, commented within the budget.
    pub async fn recurred(&mut self, r: Recurred) -> Result<()> {
        let Recurred {
            issue,
            tier,
            signature: sig,
        } = r;
        let shown = self.egress.shown(&sig);
        let finding = self.known_signature_finding(
            issue,
            &sig,
            &shown,
            format!("A problem this closed issue describes appeared again: {} record(s) of a known signature.", sig.count),
        );
        if self.budget.regression_waits(issue) {
            let redacted = self.egress.finding(finding);
            self.defer_regression(issue, &redacted, vec![shown], sig.level, sig.count, None);
            return Ok(());
        }
        let evidence = Evidence {
            shown: vec![shown.as_signature()],
            count: sig.count,
        };
        self.regression(
            (
                issue,
                tier,
                "a known signature of this closed issue recurred".to_string(),
            ),
            &finding,
            &evidence,
        )
        .await
    }

    /// A known signature of an open issue filed for warnings came back at error level or
    /// above (review M10: it was a silent occurrence): a comment says so, within the comment
    /// budget, and the issue then covers the signature, so the next scan does not say it again.
    /// Without a comment (budget spent, issue gone or not selfmon's) nothing is recorded, and a
    /// later scan that sees it comments then. Its records are counted by triage either way.
    pub async fn escalated(&mut self, e: Escalated) -> Result<()> {
        let Escalated {
            issue,
            signature: sig,
        } = e;
        if !self.budget.may_comment(issue) {
            return Ok(());
        }
        let shown = self.egress.shown(&sig);
        let why = format!(
            "escalated: this issue was filed for records logged at WARNING; the same problem is now logged at {} ({} record(s))",
            sig.level, sig.count
        );
        let finding = self.known_signature_finding(
            issue,
            &sig,
            &shown,
            format!(
                "The problem this issue describes is now logged at {}: {} record(s).",
                sig.level, sig.count
            ),
        );
        let scan_id = self.report.record.scan_id.clone();
        let heading = format!("Escalation: now logged at {}", sig.level);
        // The issue covers the escalated signature before the comment is made: whatever happens
        // after it (a failed scan, a crash), it is not made twice (review5 G2).
        self.egress
            .attach_signatures(issue, std::slice::from_ref(&sig.id))
            .await?;
        let commented = match self
            .egress
            .comment(issue, &heading, &finding, &[shown.as_signature()], &scan_id)
            .await
        {
            Ok(()) => true,
            Err(e) => match self.budget.refusal(issue, e)? {
                Refusal::Refused => return Ok(()),
                // It may have been posted: the issue covers the signature from now on, so it
                // is not posted twice (review5 G2).
                Refusal::Failed(e) => {
                    self.call_failed(issue, "commenting on", &e);
                    false
                }
            },
        };
        self.budget.commented(issue);
        if commented && !self.egress.dry_run {
            self.report.record.comments_added += 1;
        }
        if !commented {
            return Ok(());
        }
        self.report.outcomes.push(FindingOutcome::Commented {
            title: self.egress.redacted(&finding.title),
            issue,
            reason: self.egress.redacted(&why),
            score: None,
        });
        Ok(())
    }

    /// Decides each candidate, in order, and acts on the decision. Returns how many distinct
    /// problems still wait in the backlog.
    pub async fn decide_all(&mut self, candidates: Vec<Candidate>) -> Result<u64> {
        let mut still_deferred: HashSet<String> = HashSet::new();
        for candidate in candidates {
            let from_backlog = candidate.backlog.is_some();
            let before = self.report.outcomes.len();
            self.decide(candidate, &mut still_deferred).await?;
            if from_backlog {
                self.report
                    .from_backlog
                    .extend(before..self.report.outcomes.len());
            }
        }
        // Regressions of known signatures deferred before the candidates were decided.
        still_deferred.extend(self.effects.deferred.iter().map(|e| e.fingerprint.clone()));
        Ok(still_deferred.len() as u64)
    }

    /// Records this scan read of a problem the backlog holds, that no finding of this scan
    /// covered (the runner made no finding for them: too few records to call a problem on their
    /// own, say): occurrences of that entry's problem, never counted nowhere. A signature is the
    /// entry's when one of its evidence signatures has the same id, or the same template. The
    /// records go to the issue the entry became this scan (filed, or closed as a duplicate,
    /// related occurrence or regression of one); an entry still open absorbs them and hands
    /// them on when it closes. Call after [`Act::decide_all`]; `entries` are the open entries
    /// the scan decided (dry runs commit none of it).
    pub fn backlog_recurrences(
        &mut self,
        entries: &[BacklogEntry],
        uncovered: &[&Signature],
        known_secrets: &SecretTokens,
    ) {
        if entries.is_empty() || uncovered.is_empty() {
            return;
        }
        let closed_to: HashMap<String, Option<u64>> = self
            .effects
            .closed
            .iter()
            .map(|c| (c.entry_id.clone(), c.issue))
            .collect();
        let mut extra: HashMap<usize, u64> = HashMap::new();
        for sig in uncovered {
            let sealed = self
                .egress
                .sealed(std::slice::from_ref(&sig.template), known_secrets);
            let owner = entries.iter().position(|e| {
                e.evidence.iter().any(|ev| ev.as_signature().id == sig.id)
                    || sealed.iter().any(|t| e.templates.contains(t))
            });
            if let Some(i) = owner {
                *extra.entry(i).or_default() += sig.count;
            }
        }
        let mut owners: Vec<(usize, u64)> = extra.into_iter().collect();
        owners.sort_unstable();
        for (i, count) in owners {
            let entry = &entries[i];
            let issue = self
                .backlog_filed
                .get(&entry.entry_id)
                .copied()
                .or_else(|| closed_to.get(&entry.entry_id).copied().flatten());
            match issue {
                Some(issue) => self.effects.add_occurrences(issue, count),
                // Closed with no issue to hand them to: nothing holds the problem any more.
                None if closed_to.contains_key(&entry.entry_id) => {}
                // Still open: the store adds them to the open entry with this fingerprint.
                None => self.effects.deferred.push(BacklogEntry {
                    occurrences: count,
                    ..entry.clone()
                }),
            }
        }
    }

    async fn decide(
        &mut self,
        candidate: Candidate,
        still_deferred: &mut HashSet<String>,
    ) -> Result<()> {
        let finding = &candidate.finding;
        let evidence = Evidence {
            shown: candidate
                .shown
                .iter()
                .map(RedactedSignature::as_signature)
                .collect(),
            count: candidate.count,
        };
        // A backlog entry's occurrences were counted when it was deferred: closing it hands
        // them to the covering issue, so they are never added twice.
        let fresh_count = if candidate.backlog.is_some() {
            0
        } else {
            candidate.count.max(1)
        };
        let egress = self.egress;
        let close = |effects: &mut ScanEffects, issue: u64, reason: String| {
            if let Some(entry) = &candidate.backlog {
                effects.closed.push(BacklogClosure {
                    entry_id: entry.entry_id.clone(),
                    reason: egress.redacted(&reason),
                    issue: Some(issue),
                });
            }
        };
        if let Some(entry) = &candidate.backlog {
            self.known
                .note_deferred_templates(finding, &entry.templates);
        }
        let decision = self
            .dedup
            .decide(finding, &candidate.fingerprint, &*self.known)
            .await?;
        match decision {
            DedupDecision::Duplicate {
                issue,
                tier,
                score,
                reason,
            } => {
                count_duplicate(&mut self.report.record.duplicates, tier);
                self.effects.add_occurrences(issue, fresh_count);
                close(
                    self.effects,
                    issue,
                    format!("covered by #{issue}: {reason}"),
                );
                self.report.outcomes.push(FindingOutcome::Duplicate {
                    title: egress.redacted(&finding.title),
                    issue,
                    reason: egress.redacted(&reason),
                    tier: Some(tier),
                    score: Some(score),
                });
            }
            DedupDecision::Related {
                issue,
                score,
                reason,
            } => {
                // Over the comment budget the occurrences still count: nothing is dropped.
                self.effects.add_occurrences(issue, fresh_count);
                close(
                    self.effects,
                    issue,
                    format!("related to #{issue}: {reason}"),
                );
                let scan_id = self.report.record.scan_id.clone();
                let mut failed = None;
                let will_comment = self.budget.may_comment(issue);
                // The issue covers the finding's signatures from now on: their next records are
                // counted against it before analysis (known), not analysed and commented on
                // again every scan (review5 G6). Recorded before the comment, so a scan that
                // fails later, or a crash after the comment, does not repeat it (G2). Not when
                // the comment only waits for budget: a later scan comments then.
                if will_comment || !self.budget.comment_waits(issue) {
                    self.egress
                        .attach_signatures(issue, &finding.signature_ids)
                        .await?;
                }
                let commented = will_comment
                    && match self
                        .egress
                        .comment(
                            issue,
                            "Related occurrence",
                            finding,
                            &evidence.shown,
                            &scan_id,
                        )
                        .await
                    {
                        Ok(()) => true,
                        Err(e) => {
                            if let Refusal::Failed(e) = self.budget.refusal(issue, e)? {
                                self.call_failed(issue, "commenting on", &e);
                                self.budget.commented(issue);
                                failed = Some(e);
                            }
                            false
                        }
                    };
                if commented {
                    self.budget.commented(issue);
                    // A dry run adds no comment: its outcome says what it would comment.
                    if !self.egress.dry_run {
                        self.report.record.comments_added += 1;
                    }
                    self.report.outcomes.push(FindingOutcome::Commented {
                        title: egress.redacted(&finding.title),
                        issue,
                        reason: egress.redacted(&reason),
                        score: Some(score),
                    });
                } else {
                    self.report.record.duplicates.by_similarity += 1;
                    self.report.outcomes.push(FindingOutcome::Duplicate {
                        title: egress.redacted(&finding.title),
                        issue,
                        reason: egress.redacted(&format!(
                            "{reason} ({}; no comment: {})",
                            if self.egress.dry_run {
                                "a real scan would record the occurrences"
                            } else {
                                "occurrences recorded"
                            },
                            match &failed {
                                Some(e) => format!(
                                    "the comment failed ({e}); the tracker may have stored it all the same, so selfmon does not post it again"
                                ),
                                None => self.budget.why_no_comment(issue),
                            }
                        )),
                        tier: Some(DedupTier::Similarity),
                        score: Some(score),
                    });
                }
            }
            DedupDecision::Regression {
                issue,
                tier,
                reason,
            } if self.budget.regression_waits(issue) => {
                // No comment this scan: the regression waits in the backlog (a backlog entry
                // stays open), so the closed issue is reopened by a later scan, not forgotten.
                let _ = (tier, reason);
                let deferred = self.defer_regression(
                    issue,
                    finding,
                    candidate.shown.clone(),
                    candidate.severity,
                    candidate.count,
                    candidate.backlog.as_ref(),
                );
                if let Some(fingerprint) = deferred {
                    still_deferred.insert(fingerprint);
                }
            }
            DedupDecision::Regression {
                issue,
                tier,
                reason,
            } => {
                close(self.effects, issue, format!("regression of #{issue}"));
                let evidence = Evidence {
                    count: fresh_count,
                    ..evidence
                };
                self.regression((issue, tier, reason), finding, &evidence)
                    .await?;
            }
            DedupDecision::New => {
                let mut filed = false;
                if self.budget.may_file() {
                    let filing = self.file(&candidate, &evidence).await;
                    filed = self.budget.unless_rate_limited(filing)?;
                }
                if filed {
                    self.budget.filed();
                    return Ok(());
                }
                // A create the rate limit refused stays in the outbox too: the next scan files
                // it first, and this entry then closes as its duplicate.
                match &candidate.backlog {
                    Some(entry) => {
                        still_deferred.insert(entry.fingerprint.clone());
                    }
                    None => {
                        let fingerprint = candidate.fingerprint.clone();
                        still_deferred.insert(fingerprint.clone());
                        self.effects.deferred.push(BacklogEntry {
                            entry_id: uuid::Uuid::new_v4().to_string(),
                            fingerprint,
                            severity: candidate.severity,
                            finding: finding.clone(),
                            evidence: candidate.shown.clone(),
                            templates: candidate.templates.clone(),
                            occurrences: candidate.count,
                            deferred_by: self.report.record.scan_id.clone(),
                            deferred_at: self.clock.now(),
                        });
                        self.report.record.deferred += 1;
                    }
                }
                self.report.outcomes.push(FindingOutcome::Deferred {
                    title: egress.redacted(&finding.title),
                    reason: egress.redacted(&self.budget.why_deferred(self.config)),
                    backlog_position: Some(self.report.record.deferred),
                });
            }
        }
        Ok(())
    }

    /// Keeps a regression of closed `issue` that gets no comment this scan (see
    /// [`Budget::regression_waits`]) in the backlog, under the issue's own fingerprint so a later
    /// scan's dedup finds that issue again (a regression of it, or a duplicate once reopened) and
    /// the store merges repeated deferrals into one entry. Its occurrences go with the entry and
    /// reach the issue when the entry closes, as for any deferred finding. An entry already in
    /// the backlog (`backlog`) just stays open. Returns the fingerprint it waits under, `None`
    /// when selfmon no longer knows the issue (then its occurrences are recorded at once).
    fn defer_regression(
        &mut self,
        issue: u64,
        finding: &RedactedFinding,
        evidence: Vec<RedactedSignature>,
        severity: Level,
        count: u64,
        backlog: Option<&BacklogEntry>,
    ) -> Option<String> {
        let refused = match self.budget.rate_limit {
            Some(limit) => limit.to_string(),
            None => format!(
                "this scan's comment budget is spent (max_comments_per_scan = {})",
                self.config.max_comments_per_scan
            ),
        };
        let why = format!(
            "regression of closed #{issue}, but {refused}; kept in the backlog: a later scan comments{}",
            if self.config.dedup.reopen_on_regression {
                " and reopens it"
            } else {
                ""
            }
        );
        let fingerprint = match backlog {
            Some(entry) => entry.fingerprint.clone(),
            None => {
                let Some(known) = self.known.get(issue) else {
                    self.effects.add_occurrences(issue, count);
                    return None;
                };
                let entry = BacklogEntry {
                    entry_id: uuid::Uuid::new_v4().to_string(),
                    fingerprint: known.fingerprint.clone(),
                    severity,
                    finding: finding.clone(),
                    evidence,
                    templates: known.templates.clone(),
                    occurrences: count.max(1),
                    deferred_by: self.report.record.scan_id.clone(),
                    deferred_at: self.clock.now(),
                };
                let fingerprint = entry.fingerprint.clone();
                self.effects.deferred.push(entry);
                self.report.record.deferred += 1;
                fingerprint
            }
        };
        self.report.outcomes.push(FindingOutcome::Deferred {
            title: self.egress.redacted(&finding.title),
            reason: self.egress.redacted(&why),
            backlog_position: Some(self.report.record.deferred),
        });
        Some(fingerprint)
    }

    /// Notes a tracker call on `issue` that failed on its own (see [`Refusal::Failed`]) in the
    /// scan report: the scan goes on.
    fn call_failed(&mut self, issue: u64, what: &str, e: &Error) {
        tracing::warn!(issue, error = %e, "{what} failed; the scan goes on");
        let message = format!("{what} #{issue} failed: {e}");
        self.report.warnings.push(ScanWarning {
            kind: TRACKER_CALL_FAILED.to_string(),
            message: self.egress.redacted(&message),
        });
    }

    /// A closed issue's problem recurred. Each closure of an issue gets one report: the store
    /// notes it before the tracker is called (so a comment the tracker stored but answered with
    /// an error, or a crash after it, is never repeated), the issue is reopened first (when the
    /// configuration says so and no person closed it as not planned or as a duplicate), then
    /// commented on. Later recurrences of the same closure are counted without a comment (a
    /// reopen that failed is retried). A tracker call that fails on its own is a warning in the
    /// scan report, not a failed scan (review5 G1, G2).
    async fn regression(
        &mut self,
        (issue, tier, why): (u64, DedupTier, String),
        finding: &Finding,
        evidence: &Evidence<'_>,
    ) -> Result<()> {
        self.effects.add_occurrences(issue, evidence.count);
        let scan_id = self.report.record.scan_id.clone();
        // An issue recorded closed that the listing did not return: make sure the tracker's
        // issue under that number is still selfmon's before commenting on or reopening it, and
        // learn its closure.
        if self.budget.may_call(issue) {
            if let Some(filed) = self.budget.unverified.remove(&issue) {
                match super::triage::still_selfmons(
                    self.egress.tracker,
                    &filed,
                    &mut self.report.warnings,
                )
                .await
                {
                    Ok(Lookup::Selfmons(t)) => {
                        let noted_for = self.budget.closure(issue).noted_for;
                        self.budget
                            .closures
                            .insert(issue, Closure::of(&t, noted_for));
                        if t.locked {
                            self.budget.locked.insert(issue);
                        }
                    }
                    Ok(Lookup::Unknown) => {}
                    Ok(Lookup::Foreign) => {
                        self.budget.foreign.insert(issue);
                    }
                    // Gone (deleted, transferred) or rate limited: noted as for a comment.
                    Err(e) => {
                        if let Refusal::Failed(e) = self.budget.refusal(issue, e)? {
                            self.call_failed(issue, "looking up", &e);
                            self.budget.foreign.insert(issue);
                        }
                    }
                }
            }
        }
        let closure = self.budget.closure(issue);
        let reopen_wanted = self.config.dedup.reopen_on_regression && !closure.dismissed();
        let closed_how = match closure.reason {
            Some(reason) if reason.is_dismissal() => reason.describe(),
            _ => "closed",
        };
        if closure.noted() {
            return self
                .regression_already_reported(issue, tier, &why, finding, reopen_wanted, closed_how)
                .await;
        }
        if !self.budget.may_comment(issue) {
            if self.budget.reopens_locked(issue, self.config) {
                // A locked issue takes no comment, but may still be reopened: the regression is
                // not lost, and the scan goes on (review4 F12).
                let reopened = match self.egress.reopen(issue).await {
                    Ok(()) => true,
                    Err(e) => {
                        if let Refusal::Failed(e) = self.budget.refusal(issue, e)? {
                            self.call_failed(issue, "reopening", &e);
                        }
                        false
                    }
                };
                if reopened {
                    let reason = format!(
                        "{why}; reopened without a comment: {}",
                        self.budget.why_no_comment(issue)
                    );
                    self.reopened_quietly(finding, issue, tier, &reason);
                    return Ok(());
                }
            }
            // Already handled this scan, or the tracker no longer has it (a regression refused
            // for want of budget waits in the backlog instead): the occurrences still count.
            let detail = self.budget.why_no_comment(issue);
            self.regression_counted(finding, issue, tier, &why, &detail);
            return Ok(());
        }
        // Noted before any call: whatever the tracker answers from here on, this closure is
        // reported once.
        let noted_for = closure.closed_at.unwrap_or_else(|| self.clock.now());
        self.egress.note_regression(issue, Some(noted_for)).await?;
        self.budget.closures.insert(
            issue,
            Closure {
                noted_for: Some(noted_for),
                ..closure
            },
        );
        let mut notes: Vec<String> = Vec::new();
        let mut reopened = false;
        if reopen_wanted {
            match self.egress.reopen(issue).await {
                Ok(()) => {
                    reopened = true;
                    self.known.set_state(issue, IssueState::Open);
                }
                Err(e) => match self.budget.refusal(issue, e)? {
                    // Nothing happened (rate limit, gone): nothing was reported either.
                    Refusal::Refused => {
                        self.forget_note(issue).await?;
                        let detail = self.budget.why_no_comment(issue);
                        self.regression_counted(finding, issue, tier, &why, &detail);
                        return Ok(());
                    }
                    Refusal::Failed(e) => {
                        self.call_failed(issue, "reopening", &e);
                        notes.push(format!(
                            "reopening it failed ({e}); a later recurrence tries again, without another comment"
                        ));
                    }
                },
            }
        }
        let heading = if closure.dismissed() {
            format!(
                "Occurred again after this issue was {closed_how}: selfmon does not reopen it, and counts later occurrences without commenting again until it is reopened"
            )
        } else if reopened {
            "Regression: this closed issue occurred again".to_string()
        } else {
            "Regression: this closed issue occurred again (selfmon counts later occurrences without commenting again until it is reopened)".to_string()
        };
        let mut maybe_posted = false;
        let commented = match self
            .egress
            .comment(issue, &heading, finding, &evidence.shown, &scan_id)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                match self.budget.refusal(issue, e)? {
                    // Not posted: a reopened issue needs no note (it is open now); a closed one
                    // is reported by a later recurrence.
                    Refusal::Refused => {
                        if !reopened {
                            self.forget_note(issue).await?;
                        }
                        notes.push(format!("no comment: {}", self.budget.why_no_comment(issue)));
                    }
                    Refusal::Failed(e) => {
                        maybe_posted = true;
                        self.call_failed(issue, "commenting on", &e);
                        notes.push(format!(
                            "the comment failed ({e}); the tracker may have stored it all the same, so selfmon does not post it again"
                        ));
                    }
                }
                false
            }
        };
        if !(commented || reopened || maybe_posted) {
            self.regression_counted(finding, issue, tier, &why, &notes.join("; "));
            return Ok(());
        }
        self.budget.commented(issue);
        if commented && !self.egress.dry_run {
            self.report.record.comments_added += 1;
        }
        self.report.record.regressions += 1;
        let mut reason = why;
        if closure.dismissed() {
            reason.push_str(&format!("; {closed_how}: not reopened"));
        }
        for n in notes {
            reason.push_str("; ");
            reason.push_str(&n);
        }
        self.report.outcomes.push(FindingOutcome::Regression {
            title: self.egress.redacted(&finding.title),
            issue,
            reopened,
            tier: Some(tier),
            reason: Some(self.egress.redacted(&reason)),
        });
        Ok(())
    }

    /// Records that closed `issue` was reopened without a comment (`reason` says why).
    fn reopened_quietly(&mut self, finding: &Finding, issue: u64, tier: DedupTier, reason: &str) {
        self.known.set_state(issue, IssueState::Open);
        self.budget.commented.insert(issue);
        self.report.record.regressions += 1;
        self.report.outcomes.push(FindingOutcome::Regression {
            title: self.egress.redacted(&finding.title),
            issue,
            reopened: true,
            tier: Some(tier),
            reason: Some(self.egress.redacted(reason)),
        });
    }

    /// Counts a recurrence of closed `issue` that is reported no further this time as a duplicate,
    /// saying why (`why`, the dedup decision, and `detail`).
    fn regression_counted(
        &mut self,
        finding: &Finding,
        issue: u64,
        tier: DedupTier,
        why: &str,
        detail: &str,
    ) {
        count_duplicate(&mut self.report.record.duplicates, tier);
        self.report.outcomes.push(FindingOutcome::Duplicate {
            title: self.egress.redacted(&finding.title),
            issue,
            reason: self
                .egress
                .redacted(&format!("regression of a closed issue ({why}); {detail}")),
            tier: Some(tier),
            score: None,
        });
    }

    /// Forgets the note of `issue`'s closure (the tracker refused the call that would have
    /// reported it), in the store and for the rest of the scan.
    async fn forget_note(&mut self, issue: u64) -> Result<()> {
        self.egress.note_regression(issue, None).await?;
        if let Some(c) = self.budget.closures.get_mut(&issue) {
            c.noted_for = None;
        }
        Ok(())
    }

    /// A recurrence of a closure selfmon already reported: counted, no comment. When the
    /// issue should be reopened and is not (the reopen failed when the recurrence was reported),
    /// the reopen is tried again, without a comment.
    async fn regression_already_reported(
        &mut self,
        issue: u64,
        tier: DedupTier,
        why: &str,
        finding: &Finding,
        reopen_wanted: bool,
        closed_how: &str,
    ) -> Result<()> {
        let mut failed = None;
        if reopen_wanted && self.budget.may_call(issue) && !self.budget.commented.contains(&issue) {
            match self.egress.reopen(issue).await {
                Ok(()) => {
                    let reason =
                        format!("{why}; reopened now (a comment already reported the recurrence)");
                    self.reopened_quietly(finding, issue, tier, &reason);
                    return Ok(());
                }
                Err(e) => {
                    if let Refusal::Failed(e) = self.budget.refusal(issue, e)? {
                        self.call_failed(issue, "reopening", &e);
                        failed = Some(e);
                    }
                }
            }
        }
        count_duplicate(&mut self.report.record.duplicates, tier);
        let mut reason = format!(
            "regression of {} ({why}); its recurrence was already reported on #{issue}: occurrences recorded, no comment until it is reopened",
            if closed_how == "closed" {
                "a closed issue".to_string()
            } else {
                format!("an issue {closed_how}")
            }
        );
        if let Some(e) = failed {
            reason.push_str(&format!("; reopening it failed again ({e})"));
        } else if self.budget.gone.contains(&issue) || self.budget.foreign.contains(&issue) {
            reason.push_str(&format!("; {}", self.budget.why_no_comment(issue)));
        }
        self.report.outcomes.push(FindingOutcome::Duplicate {
            title: self.egress.redacted(&finding.title),
            issue,
            reason: self.egress.redacted(&reason),
            tier: Some(tier),
            score: None,
        });
        Ok(())
    }

    async fn file(&mut self, candidate: &Candidate, evidence: &Evidence<'_>) -> Result<()> {
        let finding = &candidate.finding;
        let backlog = candidate.backlog.as_ref();
        let scan_id = self.report.record.scan_id.clone();
        let draft = self
            .egress
            .draft(finding, &evidence.shown, &scan_id, &candidate.fingerprint);
        let title = draft.title.clone();
        let intent = FilingIntent {
            intent_id: uuid::Uuid::new_v4().to_string(),
            scan_id: scan_id.clone(),
            draft,
            finding: finding.clone(),
            templates: candidate.templates.clone(),
            // A backlog entry brings the occurrences counted when it was deferred, atomically
            // with closing it; this scan's own occurrences are committed with its cursor.
            occurrences: backlog.map_or(0, |e| e.occurrences),
            created_at: self.clock.now(),
            backlog_entry_id: backlog.map(|e| e.entry_id.clone()),
        };
        match self.egress.file(intent, self.clock).await? {
            Filing::Previewed(draft) => {
                // Previewed issues get numbers no tracker uses, so later findings in this scan
                // dedup against them.
                let number = u64::MAX - self.known.len() as u64;
                self.known.insert(KnownIssue {
                    issue: IssueRef {
                        number,
                        url: String::new(),
                        state: IssueState::Open,
                    },
                    title: title.to_string(),
                    classification: finding.classification,
                    error_codes: finding.error_codes.clone(),
                    fingerprint: candidate.fingerprint.clone(),
                    source_files: finding.source_files.clone(),
                    error_type: finding.error_type.clone(),
                    templates: candidate.templates.clone(),
                    signature_ids: finding.signature_ids.clone(),
                });
                self.report.outcomes.push(FindingOutcome::WouldFile {
                    title,
                    body: draft.body,
                });
            }
            Filing::Filed(row) => {
                let issue = row.issue.clone();
                match backlog {
                    Some(entry) => {
                        self.backlog_filed
                            .insert(entry.entry_id.clone(), issue.number);
                    }
                    None => self
                        .effects
                        .add_occurrences(issue.number, evidence.count.max(1)),
                }
                self.known.insert(row.to_known());
                self.report.record.issues_created += 1;
                (self.emit)(ScanEvent::IssueFiled {
                    scan_id,
                    issue: issue.clone(),
                });
                self.report
                    .outcomes
                    .push(FindingOutcome::Filed { title, issue });
            }
        }
        Ok(())
    }
}

/// Closes the backlog entries an ignore rule matches (one configured after they were deferred:
/// the digest drops what the rules match before analysis, so the backlog holds only what they
/// did not match then), judged as the digest judges a signature
/// ([`CompiledIgnore::backlog_rule`]). Each is reported as [`FindingOutcome::Ignored`] with the
/// rule and closed in the scan's effects (no issue: it is never filed), so the store drops it
/// with the cursor; `backlog` keeps the rest.
pub(crate) fn close_ignored(
    backlog: &mut Vec<BacklogEntry>,
    ignore: &CompiledIgnore,
    egress: &Egress<'_>,
    report: &mut ScanReport,
    effects: &mut ScanEffects,
) {
    backlog.retain(|entry| {
        let Some(rule) = ignore.backlog_rule(entry) else {
            return true;
        };
        report.from_backlog.push(report.outcomes.len());
        report.outcomes.push(FindingOutcome::Ignored {
            title: egress.redacted(&entry.finding.title),
            rule: egress.redacted(&rule),
        });
        effects.closed.push(BacklogClosure {
            entry_id: entry.entry_id.clone(),
            reason: egress.redacted(&format!("ignored: {rule}")),
            issue: None,
        });
        false
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Classification, ScanId, ScanRecord, ScanTrigger};
    use crate::redact::Redactor;
    use crate::testing::{MemoryIssueTracker, MemoryStateStore};

    fn finding(title: &str, code: &str) -> Finding {
        let mut f = Finding::new(Classification::ServerBug, title, "summary");
        f.error_codes = vec![crate::model::ErrorCode::parse(code).unwrap()];
        f
    }

    #[tokio::test]
    async fn the_budget_files_the_first_and_defers_the_rest_and_duplicates_are_not_filed() {
        let tracker = MemoryIssueTracker::new();
        let store = MemoryStateStore::new();
        let redactor = Redactor::new();
        let egress = Egress {
            tracker: &tracker,
            store: &store,
            redactor: &redactor,
            dry_run: false,
            server: None,
        };
        let config = SelfMonitoringConfig {
            max_new_issues_per_scan: 1,
            ..Default::default()
        };
        let mut report = ScanReport::new(ScanRecord::started(
            ScanId::new(),
            ScanTrigger::Manual,
            0,
            chrono::Utc::now(),
        ));
        let mut known = KnownIssues::default();
        let mut effects = ScanEffects::default();
        let dedup = crate::dedup::ThreeTierDeduplicator::default();
        let found = candidates(
            [
                finding("Clone fails", "GIT-SYNC-001"),
                finding("Clone fails again", "GIT-SYNC-001"),
                finding("Database locked", "DB-LOCK-001"),
            ]
            .into_iter()
            .map(|f| egress.finding(f))
            .collect(),
            vec![],
            &[],
            &[],
            &egress,
            &SecretTokens::default(),
        );
        let mut act = Act {
            egress: &egress,
            dedup: &dedup,
            clock: &crate::clock::SystemClock,
            config: &config,
            emit: &|_| {},
            report: &mut report,
            known: &mut known,
            effects: &mut effects,
            budget: Budget::new(&config),
            backlog_filed: HashMap::new(),
        };
        let waiting = act.decide_all(found).await.unwrap();
        assert_eq!(waiting, 1);
        assert_eq!(report.record.issues_created, 1);
        assert_eq!(report.record.duplicates.by_error_code, 1);
        assert_eq!(report.record.deferred, 1);
        assert_eq!(effects.deferred[0].finding.title, "Database locked");
        assert_eq!(tracker.issues().len(), 1);
    }
}
