use super::known::KnownIssues;
use super::*;
use crate::config::DedupConfig;
use crate::digest::{Signature, OVERFLOW_SIGNATURE_ID};
use crate::hash::sha256_hex;
use crate::model::{Classification, ErrorCode, Finding, IssueRef, IssueState, KnownIssue};
use crate::traits::{DedupDecision, DedupTier, Deduplicator};

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
        d.decide(&f, "", &k).await.unwrap(),
        DedupDecision::Duplicate { issue: 1, .. }
    ));
    let f = Finding::new(Classification::ClientMisuse, "sync crashes", "s");
    assert_eq!(d.decide(&f, "", &k).await.unwrap(), DedupDecision::New);
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
        ExactTitleDeduplicator.decide(&f, "", &k).await.unwrap(),
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
    // A code no issue carries beside the known one: a new cause, not a duplicate.
    f.error_codes = vec![
        ErrorCode::parse("GIT-SYNC-001").unwrap(),
        ErrorCode::parse("DISK-FULL-009").unwrap(),
    ];
    assert_eq!(decide(&f, &k), DedupDecision::New);
    f.error_codes = vec![ErrorCode::parse("GIT-SYNC-001").unwrap()];
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
fn a_stack_frame_signature_is_not_explained_by_the_issue_that_covers_it() {
    // An issue filed for the frames of one crash (logged one line per record) covers their
    // signature; the frames of every other crash share that signature and template.
    let i = known(
        4,
        "[BUG] at com.acme.billing.InvoiceService.create",
        Classification::ServerBug,
        IssueState::Open,
    );
    let k = KnownIssues::new([i]);
    for frame in ["at <*>", "... <NUM> more", "<PATH> +<HEX>"] {
        assert!(
            k.match_signature(&sig("sig4", frame, &[])).is_none(),
            "{frame:?}"
        );
    }
    assert_eq!(
        k.match_signature(&sig("sig4", "pool exhausted", &[]))
            .map(|(_, t)| t),
        Some(DedupTier::Fingerprint)
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

#[test]
fn an_issue_filed_under_a_narrower_template_explains_its_generalised_signature() {
    let mut queue = known(
        7,
        "[BUG] queue",
        Classification::ServerBug,
        IssueState::Open,
    );
    queue.templates = vec!["queue orderService is backed up (<NUM> messages)".into()];
    let mut bean = known(8, "[BUG] bean", Classification::ServerBug, IssueState::Open);
    bean.templates = vec!["No bean named 'orderService' available".into()];
    let mut coded = known(
        9,
        "[BUG] coded",
        Classification::ServerBug,
        IssueState::Open,
    );
    coded.error_codes = vec![ErrorCode::parse("DB-LOCK-003").unwrap()];
    coded.templates = vec!["database <*> is locked after <NUM> retries".into()];
    let k = KnownIssues::new([queue, bean, coded]);
    let explained = |s: &Signature| k.match_signature(s).map(|(k, t)| (k.issue.number, t));
    assert_eq!(
        explained(&sig("a", "queue <*> is backed up (<NUM> messages)", &[])),
        Some((7, DedupTier::Template)),
        "the template generalised since the issue was filed"
    );
    assert_eq!(
        explained(&sig(
            "b",
            "No bean named 'billingRepository' available",
            &[]
        )),
        Some((8, DedupTier::Template)),
        "another quoted name"
    );
    assert_eq!(
        explained(&sig(
            "c",
            "queue orderService is backed up (<NUM> bytes)",
            &[]
        )),
        None,
        "a different constant word is another message"
    );
    assert_eq!(
        explained(&sig(
            "d",
            "queue <*> is backed up (<NUM> messages)",
            &["SEC-BREACH-001"]
        )),
        None,
        "a new error code is another problem, whatever the template"
    );
    assert_eq!(
        explained(&sig(
            "e",
            "database primary is locked after <NUM> retries",
            &["DB-LOCK-004"]
        )),
        None,
        "a known template does not explain another code"
    );
}

#[tokio::test]
async fn a_finding_whose_templates_generalise_an_issues_is_its_duplicate() {
    let mut queue = known(
        7,
        "[BUG] queue",
        Classification::ServerBug,
        IssueState::Open,
    );
    queue.templates = vec!["queue orderService is backed up (<NUM> messages)".into()];
    let mut k = KnownIssues::new([queue]);
    let wide = sig("w", "queue <*> is backed up (<NUM> messages)", &[]);
    let other = sig("o", "queue <*> was drained (<NUM> messages)", &[]);
    k.note_signatures([&wide, &other]);
    let d = ThreeTierDeduplicator::new(DedupConfig::default());
    let mut f = Finding::new(Classification::ServerBug, "Queue stuck", "s");
    f.signature_ids = vec!["w".into()];
    let (decision, why) = d.decide_explained(&f, &k);
    assert!(
        matches!(
            decision,
            DedupDecision::Duplicate {
                issue: 7,
                tier: DedupTier::Template,
                ..
            }
        ),
        "{decision:?} {why:?}"
    );
    // Every cited template must be the issue's: one that is not makes it another finding.
    f.signature_ids.push("o".into());
    let (decision, _) = d.decide_explained(&f, &k);
    assert!(!matches!(
        decision,
        DedupDecision::Duplicate {
            tier: DedupTier::Template,
            ..
        }
    ));
    // And a coded finding is never matched by its templates.
    f.signature_ids = vec!["w".into()];
    f.error_codes = vec![ErrorCode::parse("SEC-BREACH-001").unwrap()];
    let (decision, _) = d.decide_explained(&f, &k);
    assert!(!matches!(
        decision,
        DedupDecision::Duplicate {
            tier: DedupTier::Template,
            ..
        }
    ));
}

/// The trait's default answer (a scan of every issue), to hold the index against.
struct Unindexed<'a>(&'a KnownIssues);

impl crate::traits::KnownIssuesView for Unindexed<'_> {
    fn issues(&self) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        Box::new(self.0.iter())
    }
    fn issue(&self, number: u64) -> Option<&KnownIssue> {
        self.0.get(number)
    }
    fn issues_with_code(&self, code: &ErrorCode) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        Box::new(self.0.with_code(code))
    }
    fn issues_with_fingerprint(&self, fp: &str) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        Box::new(self.0.with_fingerprint(fp))
    }
    fn issues_with_template_fingerprint(
        &self,
        fp: &str,
    ) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        crate::traits::KnownIssuesView::issues_with_template_fingerprint(self.0, fp)
    }
    fn issue_with_signature(&self, id: &str) -> Option<&KnownIssue> {
        self.0.with_signature(id)
    }
    fn issues_with_title(&self, title: &str) -> Box<dyn Iterator<Item = &KnownIssue> + '_> {
        Box::new(self.0.with_title(title))
    }
    fn templates_of(&self, finding: &Finding) -> Vec<String> {
        self.0.templates_of(finding)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self.0
    }
}

proptest::proptest! {
    /// The template index answers what a scan of every issue answers (issues with fewer than two
    /// constants are left out of both by the rule itself).
    #[test]
    fn the_template_index_answers_as_a_scan_of_every_issue(
        templates in proptest::collection::vec(
            proptest::collection::vec(
                proptest::sample::select(vec!["queue", "is", "up", "<*>", "'a'", "'b'", "<NUM>", "x"]),
                1..5,
            ),
            1..8,
        ),
        query in proptest::collection::vec(
            proptest::sample::select(vec!["queue", "is", "up", "<*>", "'a'", "'b'", "<NUM>", "x"]),
            1..5,
        ),
    ) {
        let issues = templates.iter().enumerate().map(|(n, t)| {
            let mut i = known(n as u64 + 1, "[BUG] t", Classification::ServerBug, IssueState::Open);
            i.templates = vec![t.join(" ")];
            i
        });
        let k = KnownIssues::new(issues);
        let query = query.join(" ");
        let indexed: Vec<u64> = k.with_matching_template(&query).map(|i| i.issue.number).collect();
        let view = Unindexed(&k);
        let scanned: Vec<u64> = crate::traits::KnownIssuesView::issues_with_matching_template(&view, &query)
            .map(|i| i.issue.number)
            .collect();
        proptest::prop_assert_eq!(indexed, scanned);
    }
}
