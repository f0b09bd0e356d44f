use std::any::Any;

use crate::dedup::{finding_fingerprint, normalise_title, KnownIssues};
use crate::digest::Signature;
use crate::model::{Classification, ErrorCode, Finding, IssueRef, IssueState, KnownIssue, Level};
use crate::template::{is_specific_template, template_fingerprint, template_text};
use crate::traits::{DedupDecision, Deduplicator, KnownIssuesView};

/// One problem the suite decides about: a finding, the signature it cites, and the issue filed for
/// it in an earlier scan (same title, codes, fingerprint and signature).
struct Case {
    name: &'static str,
    finding: Finding,
    signature: Option<Signature>,
    number: u64,
}

fn code(s: &str) -> ErrorCode {
    ErrorCode::parse(s).expect("the suite's error codes are well formed")
}

fn signature(id: &str, template: &str, codes: &[ErrorCode]) -> Signature {
    Signature {
        id: id.into(),
        level: Level::Error,
        source: Some("app".into()),
        template: template.into(),
        template_fingerprint: template_fingerprint(template),
        error_codes: codes.to_vec(),
        count: 3,
        first_id: 1,
        last_id: 3,
        first_timestamp: "2026-01-01T00:00:01Z".into(),
        last_timestamp: "2026-01-01T00:00:03Z".into(),
        sample_ids: vec![1, 2, 3],
        sample_messages: vec![template.into()],
        distinct_correlation_ids: 0,
        repeated: false,
        has_traceback: false,
        nodes: Vec::new(),
    }
}

/// Three problems a deduplicator may decide by different means: one with an error code, one known
/// only by its message template, error type and file, one by its title alone.
fn cases() -> Vec<Case> {
    let db = code("DB-LOCK-003");
    let mut coded = Finding::new(
        Classification::ServerBug,
        "Database is locked during repository sync",
        "Writes fail while a sync holds the lock.",
    );
    coded.error_codes = vec![db.clone()];
    coded.error_type = Some("OperationalError".into());
    coded.source_files = vec!["app/db.py".into()];
    coded.signature_ids = vec!["conformance-sig-db".into()];
    let coded_sig = signature(
        "conformance-sig-db",
        "[DB-LOCK-003] database is locked while syncing repository <*>",
        &[db],
    );

    let mut templated = Finding::new(
        Classification::ServerBug,
        "Sync crashes on a bad ref",
        "A ref that does not resolve raises out of the sync loop.",
    );
    templated.error_type = Some("ValueError".into());
    templated.source_files = vec!["app/sync.py".into()];
    templated.signature_ids = vec!["conformance-sig-ref".into()];
    let templated_sig = signature(
        "conformance-sig-ref",
        "ValueError: bad ref <*> in repository <*>",
        &[],
    );

    let titled = Finding::new(
        Classification::ServerBug,
        "Login page documents a parameter the API removed",
        "Clients keep sending `remember_me`, which the API no longer reads.",
    );

    vec![
        Case {
            name: "a finding with an error code",
            finding: coded,
            signature: Some(coded_sig),
            number: 11,
        },
        Case {
            name: "a finding known by its message template",
            finding: templated,
            signature: Some(templated_sig),
            number: 12,
        },
        Case {
            name: "a finding known by its title alone",
            finding: titled,
            signature: None,
            number: 13,
        },
    ]
}

impl Case {
    fn templates(&self) -> Vec<String> {
        self.signature.iter().map(|s| s.template.clone()).collect()
    }

    fn fingerprint(&self) -> String {
        finding_fingerprint(&self.finding, &self.templates())
    }

    /// The issue an earlier scan filed for this very finding, as the engine records it.
    fn filed(&self, number: u64, classification: Classification, state: IssueState) -> KnownIssue {
        let f = &self.finding;
        KnownIssue {
            issue: IssueRef {
                number,
                url: format!("conformance://issues/{number}"),
                state,
            },
            title: format!("[BUG] {}", f.title),
            classification,
            error_codes: f.error_codes.clone(),
            fingerprint: self.fingerprint(),
            source_files: f.source_files.clone(),
            error_type: f.error_type.clone(),
            templates: self.templates(),
            signature_ids: f.signature_ids.clone(),
        }
    }

    /// The same problem filed under the other classification: a decoy no decision may name.
    fn decoy(&self, number: u64, state: IssueState) -> KnownIssue {
        self.filed(number, other_class(self.finding.classification), state)
    }

    /// The known issues as the engine hands them over: [`KnownIssues`] with this scan's
    /// signatures noted.
    fn engine_view(&self, issues: &[KnownIssue]) -> KnownIssues {
        let mut known = KnownIssues::new(issues.iter().cloned());
        known.note_signatures(self.signature.iter());
        known
    }

    /// The same known issues behind a view that is not [`KnownIssues`], as a host's might be.
    fn plain_view(&self, issues: &[KnownIssue]) -> PlainView {
        PlainView {
            issues: issues.to_vec(),
            signatures: self.signature.iter().cloned().collect(),
        }
    }
}

fn other_class(c: Classification) -> Classification {
    match c {
        Classification::ServerBug => Classification::ClientMisuse,
        _ => Classification::ServerBug,
    }
}

/// A [`KnownIssuesView`] answering every lookup by a linear scan: the same known issues as
/// [`KnownIssues`], without its indexes, so a deduplicator cannot lean on the concrete type.
struct PlainView {
    issues: Vec<KnownIssue>,
    signatures: Vec<Signature>,
}

impl PlainView {
    fn matching<'a>(
        &'a self,
        keep: impl Fn(&KnownIssue) -> bool + 'a,
    ) -> Box<dyn Iterator<Item = &'a KnownIssue> + 'a> {
        Box::new(self.issues.iter().filter(move |k| keep(k)))
    }
}

impl KnownIssuesView for PlainView {
    fn issues(&self) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        Box::new(self.issues.iter())
    }
    fn issue(&self, number: u64) -> Option<&KnownIssue> {
        self.issues.iter().find(|k| k.issue.number == number)
    }
    fn issues_with_code(&self, code: &ErrorCode) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        let code = code.clone();
        self.matching(move |k| k.error_codes.contains(&code))
    }
    fn issues_with_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        let fingerprint = fingerprint.to_string();
        self.matching(move |k| k.fingerprint == fingerprint)
    }
    fn issues_with_template_fingerprint(
        &self,
        wanted: &str,
    ) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        let wanted = wanted.to_string();
        self.matching(move |k| {
            k.templates.iter().any(|t| {
                is_specific_template(template_text(t)) && template_fingerprint(t) == wanted
            })
        })
    }
    fn issue_with_signature(&self, signature_id: &str) -> Option<&KnownIssue> {
        self.issues
            .iter()
            .find(|k| k.signature_ids.iter().any(|s| s == signature_id))
    }
    fn issues_with_title(&self, title: &str) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        let title = normalise_title(title);
        self.matching(move |k| normalise_title(&k.title) == title)
    }
    fn templates_of(&self, finding: &Finding) -> Vec<String> {
        let mut t: Vec<String> = self
            .signatures
            .iter()
            .filter(|s| finding.signature_ids.contains(&s.id))
            .map(|s| s.template.clone())
            .collect();
        t.sort();
        t.dedup();
        t
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The issue a decision names, if any.
fn named(decision: &DedupDecision) -> Option<u64> {
    match decision {
        DedupDecision::New => None,
        DedupDecision::Duplicate { issue, .. }
        | DedupDecision::Related { issue, .. }
        | DedupDecision::Regression { issue, .. } => Some(*issue),
    }
}

/// Checks the rules every decision obeys, whatever it decided: it names an issue the view holds,
/// of the finding's classification; `Duplicate`/`Related` name an open issue, `Regression` a
/// closed one; scores lie in 0..=1.
fn check_decision(
    what: &str,
    finding: &Finding,
    known: &dyn KnownIssuesView,
    decision: &DedupDecision,
) {
    let Some(number) = named(decision) else {
        return;
    };
    let issue = known.issue(number).unwrap_or_else(|| {
        panic!("deduplicator: {what}: {decision:?} names #{number}, which is not a known issue")
    });
    assert_eq!(
        issue.classification, finding.classification,
        "deduplicator: {what}: {decision:?} names #{number} of another classification ({}); a \
         decision never matches across classifications",
        issue.classification
    );
    match decision {
        DedupDecision::Duplicate { score, .. } | DedupDecision::Related { score, .. } => {
            assert_eq!(
                issue.issue.state,
                IssueState::Open,
                "deduplicator: {what}: {decision:?} names closed #{number}; a match against a \
                 closed issue is a Regression"
            );
            assert!(
                (0.0..=1.0).contains(score),
                "deduplicator: {what}: score {score} lies outside 0..=1"
            );
        }
        DedupDecision::Regression { .. } => assert_eq!(
            issue.issue.state,
            IssueState::Closed,
            "deduplicator: {what}: {decision:?} names open #{number}; a Regression is a match \
             against a closed issue"
        ),
        DedupDecision::New => {}
    }
}

/// Decides `case` against `issues` through both views, twice each, checks the rules every decision
/// obeys and that all four agree (a decision depends on the finding, its fingerprint and the known
/// issues only), and returns the decision.
async fn decide(
    dedup: &dyn Deduplicator,
    case: &Case,
    issues: &[KnownIssue],
    situation: &str,
) -> DedupDecision {
    let what = format!("{} ({situation})", case.name);
    let fingerprint = case.fingerprint();
    let engine = case.engine_view(issues);
    let plain = case.plain_view(issues);
    let first = dedup
        .decide(&case.finding, &fingerprint, &engine)
        .await
        .unwrap_or_else(|e| panic!("deduplicator: {what}: decide failed: {e}"));
    check_decision(&what, &case.finding, &engine, &first);
    let again = dedup
        .decide(&case.finding, &fingerprint, &engine)
        .await
        .unwrap_or_else(|e| panic!("deduplicator: {what}: decide failed the second time: {e}"));
    assert_eq!(
        again, first,
        "deduplicator: {what}: the same inputs must give the same decision"
    );
    for round in ["first", "second"] {
        let through_plain = dedup
            .decide(&case.finding, &fingerprint, &plain)
            .await
            .unwrap_or_else(|e| {
                panic!("deduplicator: {what}: decide through another view failed: {e}")
            });
        assert_eq!(
            through_plain, first,
            "deduplicator: {what}: the same known issues behind another KnownIssuesView must give \
             the same decision ({round} call)"
        );
    }
    // explain_signature: a known issue or nothing, the same every time, whichever view.
    if let Some(sig) = &case.signature {
        let explained = dedup
            .explain_signature(sig, &engine)
            .await
            .unwrap_or_else(|e| panic!("deduplicator: {what}: explain_signature failed: {e}"));
        if let Some(m) = explained {
            assert!(
                engine.issue(m.issue).is_some(),
                "deduplicator: {what}: explain_signature names #{}, which is not a known issue",
                m.issue
            );
        }
        for view in [&engine as &(dyn KnownIssuesView + 'static), &plain] {
            let again = dedup
                .explain_signature(sig, view)
                .await
                .unwrap_or_else(|e| panic!("deduplicator: {what}: explain_signature failed: {e}"));
            assert_eq!(
                again, explained,
                "deduplicator: {what}: explain_signature must answer the same for the same \
                 signature and known issues"
            );
        }
    }
    first
}

/// Checks a [`Deduplicator`] against its contract, for three findings (one with an error code, one
/// known by its message template, one by its title alone) each against the issue an earlier scan
/// filed for it:
///
/// - with no known issues, every finding is `New` and `explain_signature` explains nothing;
/// - every decision names a known issue of the finding's classification, `Duplicate`/`Related`
///   an open one and `Regression` a closed one (scores in 0..=1), and `explain_signature` names
///   a known issue or nothing;
/// - a finding identical to a known issue of its classification is not `New`: it is a
///   `Duplicate` (or `Related`) of it while open, a `Regression` of it once closed, even beside
///   the same problem filed under another classification, which no decision names;
/// - the same inputs give the same decision, twice over and through a [`KnownIssuesView`] other
///   than [`KnownIssues`] holding the same issues.
///
/// Panics (asserts) on a violation, naming the rule.
pub async fn deduplicator(dedup: &dyn Deduplicator) {
    for case in cases() {
        let empty = decide(dedup, &case, &[], "no known issues").await;
        assert_eq!(
            empty,
            DedupDecision::New,
            "deduplicator: {}: with no known issues the finding is New",
            case.name
        );
        if let Some(sig) = &case.signature {
            assert_eq!(
                dedup
                    .explain_signature(sig, &KnownIssues::default())
                    .await
                    .expect("explain_signature"),
                None,
                "deduplicator: {}: with no known issues explain_signature explains nothing",
                case.name
            );
        }

        let n = case.number;
        let open = case.filed(n, case.finding.classification, IssueState::Open);
        let closed = case.filed(n, case.finding.classification, IssueState::Closed);
        let decoy_open = case.decoy(n + 100, IssueState::Open);
        let decoy_closed = case.decoy(n + 200, IssueState::Closed);

        let while_open = decide(
            dedup,
            &case,
            &[decoy_open.clone(), open, decoy_closed.clone()],
            "its issue open, beside decoys of another classification",
        )
        .await;
        assert!(
            matches!(
                while_open,
                DedupDecision::Duplicate { issue, .. } | DedupDecision::Related { issue, .. }
                    if issue == n
            ),
            "deduplicator: {}: a finding identical to open #{n} must be its Duplicate (or \
             Related), got {while_open:?}",
            case.name
        );

        let once_closed = decide(
            dedup,
            &case,
            &[decoy_open.clone(), closed, decoy_closed.clone()],
            "its issue closed, beside decoys of another classification",
        )
        .await;
        assert!(
            matches!(once_closed, DedupDecision::Regression { issue, .. } if issue == n),
            "deduplicator: {}: a finding identical to closed #{n} must be a Regression of it \
             (never a silent Duplicate), got {once_closed:?}",
            case.name
        );

        // Only the decoys: the rules every decision obeys forbid naming either, so it is New.
        decide(
            dedup,
            &case,
            &[decoy_open, decoy_closed],
            "only the same problem filed under another classification",
        )
        .await;
    }
}
