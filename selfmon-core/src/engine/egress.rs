//! Egress: the one stage everything that leaves the process goes through.
//!
//! Text that leaves (the prompt, issue titles and bodies, comments, the scan report and error
//! text kept in history) is redacted here, and only here, into [`RedactedText`]; signatures are
//! capped and stripped of control characters before anything shows them; templates are sealed
//! before they are persisted. A dry run is decided here too: the tracker and the store are
//! written only when it is not one, so the stages never ask.

use super::act::RateLimit;
use crate::clock::Clock;
use crate::config::SelfMonitoringConfig;
use crate::digest::Signature;
use crate::error::Result;
use crate::issue_body::{issue_body, issue_title, occurrence_comment};
use crate::model::{
    FiledIssue, FilingIntent, Finding, IssueDraft, IssueRef, IssueState, Marker, RejectedFinding,
    RejectedFindingReport, ScanEffects, ScanId, ScanRecord, ScanReport, SignatureFate,
    SignatureReport, SkippedSignature, SkippedSignatureReport, MAX_REPORT_TEMPLATE_CHARS,
    UNKNOWN_SIGNATURE_ID,
};
use crate::redact::{RedactedFinding, RedactedSignature, RedactedText, Redactor};
use crate::template::{seal_template_with, SecretTokens};
use crate::traits::{IssueTracker, StateStore};

/// Longest template shown outside the process, in characters.
const MAX_SHOWN_TEMPLATE_CHARS: usize = 1_000;

/// Longest title of a rejected finding a report keeps, in characters.
const MAX_REJECTED_TITLE_CHARS: usize = 200;

/// The way out of the process for one scan.
pub(crate) struct Egress<'a> {
    pub tracker: &'a dyn IssueTracker,
    pub store: &'a dyn StateStore,
    pub redactor: &'a Redactor,
    /// A preview: nothing is written to the tracker, and the scan's effects are not committed.
    pub dry_run: bool,
    /// The opt-in server identity shown in issue bodies.
    pub server: Option<&'a str>,
}

/// What became of a filing.
pub(crate) enum Filing {
    /// Filed (through the outbox).
    Filed(FiledIssue),
    /// A dry run: what would have been filed.
    Previewed(IssueDraft),
}

impl Egress<'_> {
    /// `text`, redacted.
    pub fn redacted(&self, text: &str) -> RedactedText {
        self.redactor.redacted(text)
    }

    /// A finding from the model, redacted (it may echo anything it was shown).
    pub fn finding(&self, finding: Finding) -> RedactedFinding {
        self.redactor.redacted_finding(finding)
    }

    /// Templates as they may be persisted: sealed, every token the redactor flags and every one
    /// in `known` (the tokens the templater saw holding part of a secret before masking).
    pub fn sealed(&self, templates: &[String], known: &SecretTokens) -> Vec<String> {
        templates
            .iter()
            .map(|t| seal_template_with(t, self.redactor, known))
            .collect()
    }

    /// What the templater learned, as it may be persisted: sealed.
    pub fn sealed_template_state(&self, templater: &crate::template::Templater) -> String {
        templater.to_sealed_state_json(self.redactor)
    }

    /// A copy of `sig` fit to leave the process: template capped and stripped of control and
    /// bidi characters, every text field redacted.
    ///
    /// Redaction comes before masking: a template is masked text (digits become `<NUM>`), on
    /// which a detector no longer recognises the secret it came from (`sk-ant-api<NUM>-...`). So
    /// when the redactor finds anything in the raw samples or the raw template, the template
    /// shown is rebuilt by masking the *redacted* sample instead; the original template (and the
    /// fingerprint computed from it) never leaves.
    pub fn shown(&self, sig: &Signature) -> RedactedSignature {
        let redactor = self.redactor;
        let mut s = sig.clone();
        let changes = |t: &str| matches!(redactor.redact(t), std::borrow::Cow::Owned(_));
        // Samples are redacted when the digest takes them (before they are capped).
        let holds_secret = sig
            .sample_messages
            .iter()
            .any(|m| m.contains("[REDACTED:") || changes(m))
            || changes(&sig.template);
        let source_text = match sig.sample_messages.first() {
            Some(first) if holds_secret => crate::template::mask(&redactor.redact(first)),
            _ => sig.template.clone(),
        };
        // Redacted before it is capped: a cut through a secret would hide it from the redactor.
        s.template = crate::digest::sanitize_sample(&crate::error::truncate_chars(
            &redactor.redact(&source_text),
            MAX_SHOWN_TEMPLATE_CHARS,
        ));
        // The texts are redacted (again, after sanitising) by `redacted_signature`.
        s.sample_messages = sig
            .sample_messages
            .iter()
            .map(|m| crate::digest::sanitize_sample(m))
            .collect();
        s.source = sig
            .source
            .as_ref()
            .map(|x| crate::digest::sanitize_sample(x));
        s.nodes = sig
            .nodes
            .iter()
            .map(|n| crate::digest::sanitize_sample(n))
            .collect();
        s.first_timestamp = crate::digest::sanitize_sample(&sig.first_timestamp);
        s.last_timestamp = crate::digest::sanitize_sample(&sig.last_timestamp);
        redactor.redacted_signature(s)
    }

    /// The report's copy of a signature: its template as [`shown`](Self::shown) makes it (so a
    /// secret the masking disguised is not kept either), capped.
    pub fn report_signature(&self, sig: &Signature, fate: SignatureFate) -> SignatureReport {
        SignatureReport {
            id: sig.id.clone(),
            template: self
                .redactor
                .redacted(&self.shown(sig).template)
                .truncated_chars(MAX_REPORT_TEMPLATE_CHARS),
            level: sig.level,
            count: sig.count,
            fate,
        }
    }

    /// A finding the validation rejected, as the report keeps it: title and reasons redacted
    /// (before the title is capped: a cut through a secret would hide it from the redactor).
    pub fn rejected(&self, rejected: &RejectedFinding) -> RejectedFindingReport {
        RejectedFindingReport {
            title: self
                .redacted(&rejected.title)
                .truncated_chars(MAX_REJECTED_TITLE_CHARS),
            reasons: rejected.reasons.iter().map(|r| self.redacted(r)).collect(),
        }
    }

    /// A signature the runner skipped, as the report keeps it: the reason redacted, and an id
    /// that is not one of `signature_ids` (the runner made it up) replaced.
    pub fn skipped(
        &self,
        skipped: &SkippedSignature,
        signature_ids: &[String],
    ) -> SkippedSignatureReport {
        SkippedSignatureReport {
            signature_id: if signature_ids.contains(&skipped.signature_id) {
                skipped.signature_id.clone()
            } else {
                UNKNOWN_SIGNATURE_ID.to_string()
            },
            reason: self.redacted(&skipped.reason),
        }
    }

    /// The issue a finding becomes: title and body redacted.
    pub fn draft(
        &self,
        finding: &Finding,
        evidence: &[&Signature],
        scan_id: &ScanId,
        fingerprint: &str,
    ) -> IssueDraft {
        let marker = Marker::for_fingerprint(fingerprint);
        IssueDraft {
            title: self.redacted(&issue_title(finding.classification, &finding.title)),
            body: self.redacted(&issue_body(
                finding,
                evidence,
                scan_id,
                &marker,
                self.server,
            )),
            labels: vec![
                "selfmon".to_string(),
                finding.classification.default_label().to_string(),
            ],
            classification: finding.classification,
            fingerprint: fingerprint.to_string(),
            marker,
        }
    }

    /// Files `intent` through the outbox: recorded, created, completed; in a dry run, previewed.
    ///
    /// The scan's tracker is fenced by its lease (`crate::lease::LeaseTerm::fenced`): a create
    /// that could still run when the lease may pass to another node is refused (or its
    /// rate-limit wait cut) with `Error::LeaseLost`, leaving the intent for the next holder.
    pub async fn file(&self, intent: FilingIntent, clock: &dyn Clock) -> Result<Filing> {
        if self.dry_run {
            return Ok(Filing::Previewed(intent.draft));
        }
        self.store.record_intent(&intent).await?;
        let issue = self.tracker.create_issue(&intent.draft).await?;
        let row = FiledIssue::from_intent(&intent, issue, clock.now());
        self.store.complete_intent(&intent.intent_id, &row).await?;
        Ok(Filing::Filed(row))
    }

    /// Comments on an issue about `finding` (skipped in a dry run).
    pub async fn comment(
        &self,
        issue: u64,
        heading: &str,
        finding: &Finding,
        evidence: &[&Signature],
        scan_id: &ScanId,
    ) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        let body = self.redacted(&occurrence_comment(heading, finding, evidence, scan_id));
        self.tracker.comment(issue, &body).await
    }

    /// Records (`Some`) or forgets (`None`) in the store that a recurrence of closed `issue`'s
    /// current closure was reported (skipped in a dry run). Recorded before the tracker is
    /// called, so a comment is posted at most once per closure, whatever the tracker answers
    /// and wherever the process dies.
    pub async fn note_regression(
        &self,
        issue: u64,
        noted_for: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        self.store.set_regression_noted(issue, noted_for).await
    }

    /// Records in the store that `issue` covers `signature_ids` (skipped in a dry run), before
    /// a comment about them: the comment is then made at most once, whatever happens after it.
    pub async fn attach_signatures(&self, issue: u64, signature_ids: &[String]) -> Result<()> {
        if self.dry_run || signature_ids.is_empty() {
            return Ok(());
        }
        self.store.add_issue_signatures(issue, signature_ids).await
    }

    /// Reopens an issue, in the tracker and the store (skipped in a dry run).
    pub async fn reopen(&self, issue: u64) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        self.tracker.reopen(issue).await?;
        self.store.set_issue_state(issue, IssueState::Open).await
    }

    /// Completes outbox intents a crashed scan left: records issues the tracker already has,
    /// files the ones it lacks (skipped in a dry run). Stops at a spent tracker rate limit,
    /// leaving the rest in the outbox, and returns it with what was completed.
    pub async fn reconcile_outbox(
        &self,
        clock: &dyn Clock,
    ) -> Result<(Vec<IssueRef>, Option<RateLimit>)> {
        let mut reconciled = Vec::new();
        if self.dry_run {
            return Ok((reconciled, None));
        }
        let intents = self.store.open_intents().await?;
        let backlog = if intents.iter().any(|i| i.backlog_entry_id.is_some()) {
            self.store.open_backlog().await?
        } else {
            Vec::new()
        };
        for intent in intents {
            let now = clock.now();
            let found = match self.tracker.find_by_marker(&intent.draft.marker).await {
                Ok(Some(existing)) => Ok(existing),
                Ok(None) => self.tracker.create_issue(&intent.draft).await,
                Err(e) => Err(e),
            };
            let issue = match found {
                Ok(issue) => issue,
                Err(e) => match RateLimit::of(&e) {
                    Some(limit) => {
                        tracing::warn!(error = %e, "rate limited: the outbox waits for the next scan");
                        return Ok((reconciled, Some(limit)));
                    }
                    None => return Err(e),
                },
            };
            let mut row = FiledIssue::from_intent(&intent, issue.clone(), now);
            // The entry may have absorbed occurrences since the intent was recorded (a scan the
            // rate limit stopped defers a recurrence into it): the issue receives them all.
            if let Some(entry) = backlog
                .iter()
                .find(|e| Some(&e.entry_id) == intent.backlog_entry_id.as_ref())
            {
                row.occurrences = row.occurrences.max(entry.occurrences);
            }
            self.store.complete_intent(&intent.intent_id, &row).await?;
            tracing::info!(
                issue = issue.number,
                "completed a filing left in the outbox"
            );
            reconciled.push(issue);
        }
        Ok((reconciled, None))
    }
}

/// Ends a successful scan: its effects (cursor, occurrences, backlog, learned templates) are
/// committed with it; a dry run only finishes the record.
pub(crate) async fn commit(
    store: &dyn StateStore,
    record: &ScanRecord,
    effects: &ScanEffects,
) -> Result<()> {
    if record.dry_run {
        store.finish_scan(record).await
    } else {
        store.commit_scan(record, effects).await
    }
}

/// The report as stored: bounded. Its free texts (titles, reasons, the digest as sent) are
/// [`RedactedText`], redacted when the stages wrote them.
pub(crate) fn stored_report(report: &ScanReport) -> ScanReport {
    let mut stored = report.clone();
    stored.bound();
    stored
}

/// Text the engine wrote itself (no log or model content), typed as leaving text: it goes through
/// the redactor like everything else, so the type never has an exception.
pub(crate) fn engine_text(text: &'static str) -> RedactedText {
    Redactor::shared().redacted(text)
}

/// A scan's error text as history keeps it: redacted (it can quote log content).
pub(crate) fn stored_error(error: &str, config: &SelfMonitoringConfig) -> RedactedText {
    Redactor::with_config(&config.redaction)
        .unwrap_or_default()
        .redacted(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Classification;
    use crate::testing::{MemoryIssueTracker, MemoryStateStore};

    const SECRET: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";

    #[tokio::test]
    async fn a_dry_run_writes_nothing_and_what_leaves_is_redacted() {
        let tracker = MemoryIssueTracker::new();
        let store = MemoryStateStore::new();
        let redactor = Redactor::new();
        let clock = crate::clock::SystemClock;
        let egress = |dry_run| Egress {
            tracker: &tracker,
            store: &store,
            redactor: &redactor,
            dry_run,
            server: None,
        };
        let finding = Finding::new(
            Classification::ServerBug,
            format!("push with {SECRET} fails"),
            format!("token {SECRET}"),
        );
        let scan_id = ScanId::new();
        let draft = egress(true).draft(&finding, &[], &scan_id, "fp");
        assert!(!draft.title.contains("ghp_") && !draft.body.contains("ghp_"));
        let intent = |draft: IssueDraft| FilingIntent {
            intent_id: "i".into(),
            scan_id: scan_id.clone(),
            draft,
            finding: redactor.redacted_finding(finding.clone()),
            templates: vec![],
            occurrences: 0,
            created_at: chrono::Utc::now(),
            backlog_entry_id: None,
        };
        assert!(matches!(
            egress(true)
                .file(intent(draft.clone()), &clock)
                .await
                .unwrap(),
            Filing::Previewed(_)
        ));
        egress(true)
            .comment(1, "Regression", &finding, &[], &scan_id)
            .await
            .unwrap();
        assert!(tracker.issues().is_empty());
        assert!(matches!(
            egress(false).file(intent(draft), &clock).await.unwrap(),
            Filing::Filed(_)
        ));
        assert_eq!(tracker.issues().len(), 1);
        assert!(stored_error(
            &format!("failed with {SECRET}"),
            &SelfMonitoringConfig::default()
        )
        .as_str()
        .contains("[REDACTED:"));
    }
}
