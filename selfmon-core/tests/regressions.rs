//! Recurrences of closed issues and of related problems (review5 G1, G2, G6): each closure of an
//! issue is reported once, whatever the tracker answers; a person's "not planned" or "duplicate"
//! closure is never reopened; a related problem is commented on once, then known.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::{rig, rig_with};
use selfmon_core::clock::Clock;
use selfmon_core::testing::TrackerFault;
use selfmon_core::{
    Analysis, AnalysisRequest, AnalysisRunner, Classification, CloseReason, Finding,
    FindingOutcome, IssueLedger, IssueState, Level, ScanStatus, ScanTrigger, SelfMonitoringConfig,
};

const LOCKED: &str = "[DB-LOCK-003] database is locked";

fn no_reopen() -> SelfMonitoringConfig {
    let mut config = SelfMonitoringConfig::default();
    config.dedup.reopen_on_regression = false;
    config
}

async fn scan(r: &common::Rig) -> selfmon_core::ScanReport {
    let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(report.record.status, ScanStatus::Success);
    report
}

/// Files #1 for the lock and closes it (as completed) a minute later.
async fn filed_and_closed(r: &common::Rig, reason: CloseReason) {
    r.logs.log(Level::Critical, "app.db", LOCKED);
    scan(r).await;
    r.clock.advance(chrono::Duration::minutes(1));
    r.tracker.close_as(1, r.clock.now(), reason);
    r.clock.advance(chrono::Duration::minutes(1));
}

async fn recur(r: &common::Rig) -> selfmon_core::ScanReport {
    r.logs.log(Level::Critical, "app.db", LOCKED);
    let report = scan(r).await;
    r.clock.advance(chrono::Duration::minutes(10));
    report
}

async fn occurrences(r: &common::Rig, issue: u64) -> u64 {
    r.store
        .filed_issues()
        .await
        .unwrap()
        .iter()
        .find(|i| i.issue.number == issue)
        .map_or(0, |i| i.occurrences)
}

#[tokio::test]
async fn a_regression_comment_the_tracker_stored_but_answered_with_an_error_is_not_posted_again() {
    // G2 (a): the comment was stored, the answer lost; the scan failed, and the next scan
    // commented again. Now the scan goes on (a warning says so) and nothing is posted twice.
    let r = rig_with(Arc::new(selfmon_core::offline::OfflineRunner), no_reopen());
    filed_and_closed(&r, CloseReason::Completed).await;
    r.faulty_tracker
        .inject(0, TrackerFault::CommentLosesResponse);
    let report = recur(&r).await;
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.kind == "tracker_call_failed" && w.message.contains("commenting on #1")),
        "{:?}",
        report.warnings
    );
    assert_eq!(r.tracker.issues()[0].comments.len(), 1);
    for _ in 0..3 {
        recur(&r).await;
    }
    let issue = &r.tracker.issues()[0];
    assert_eq!(issue.comments.len(), 1, "{:?}", issue.comments);
    assert_eq!(issue.state, IssueState::Closed);
    assert_eq!(occurrences(&r, 1).await, 5, "every record is counted once");
}

#[tokio::test]
async fn a_reopen_that_keeps_failing_adds_no_comment_per_scan_and_is_retried() {
    // G2 (b): the comment came first and the failed reopen failed the scan: one more identical
    // comment per scan for as long as the reopen failed.
    let r = rig();
    filed_and_closed(&r, CloseReason::Completed).await;
    for _ in 0..3 {
        r.faulty_tracker.inject(0, TrackerFault::ReopenFails);
        let report = recur(&r).await;
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.message.contains("reopening #1")),
            "{:?}",
            report.warnings
        );
        r.faulty_tracker.clear_faults();
    }
    let issue = &r.tracker.issues()[0];
    assert_eq!(issue.comments.len(), 1, "{:?}", issue.comments);
    assert_eq!(issue.state, IssueState::Closed);
    // The tracker takes the reopen again: the next recurrence reopens, without a second comment.
    let report = recur(&r).await;
    assert_eq!(report.record.regressions, 1);
    let issue = &r.tracker.issues()[0];
    assert_eq!(issue.state, IssueState::Open);
    assert_eq!(issue.comments.len(), 1);
    assert_eq!(occurrences(&r, 1).await, 5);
}

#[tokio::test]
async fn a_regression_reopens_before_it_comments_so_a_lost_comment_answer_repeats_nothing() {
    let r = rig();
    filed_and_closed(&r, CloseReason::Completed).await;
    r.faulty_tracker
        .inject(0, TrackerFault::CommentLosesResponse);
    let report = recur(&r).await;
    assert_eq!(report.record.regressions, 1);
    for _ in 0..2 {
        recur(&r).await;
    }
    let issue = &r.tracker.issues()[0];
    assert_eq!(issue.state, IssueState::Open);
    assert_eq!(issue.comments.len(), 1, "{:?}", issue.comments);
}

#[tokio::test]
async fn without_reopening_a_closed_issue_gets_one_comment_per_closure_not_one_per_scan() {
    // G1, second half: with reopen_on_regression off, every scan in which the problem recurred
    // commented on the closed issue again.
    let r = rig_with(Arc::new(selfmon_core::offline::OfflineRunner), no_reopen());
    filed_and_closed(&r, CloseReason::Completed).await;
    let mut regressions = 0;
    for _ in 0..4 {
        regressions += recur(&r).await.record.regressions;
    }
    assert_eq!(regressions, 1);
    assert_eq!(r.tracker.issues()[0].comments.len(), 1);
    assert_eq!(occurrences(&r, 1).await, 5);
    // A person reopens it, selfmon sees it open, and it is closed again: a new closure, reported
    // once more.
    r.tracker.reopen_by_hand(1);
    recur(&r).await;
    r.tracker.close(1, r.clock.now());
    r.clock.advance(chrono::Duration::minutes(1));
    for _ in 0..2 {
        recur(&r).await;
    }
    assert_eq!(r.tracker.issues()[0].comments.len(), 2);
}

#[tokio::test]
async fn an_issue_closed_as_not_planned_or_duplicate_is_never_reopened_and_noted_once() {
    for reason in [CloseReason::NotPlanned, CloseReason::Duplicate] {
        let r = rig();
        filed_and_closed(&r, reason).await;
        let first = recur(&r).await;
        assert!(
            first.outcomes.iter().any(|o| matches!(
                o,
                FindingOutcome::Regression {
                    issue: 1,
                    reopened: false,
                    ..
                }
            )),
            "{reason:?}: {:?}",
            first.outcomes
        );
        for _ in 0..3 {
            let report = recur(&r).await;
            assert_eq!(report.record.regressions, 0, "{reason:?}");
            assert_eq!(report.record.comments_added, 0, "{reason:?}");
        }
        let issue = &r.tracker.issues()[0];
        assert_eq!(issue.state, IssueState::Closed, "{reason:?}: not reopened");
        assert_eq!(issue.comments.len(), 1, "{reason:?}: {:?}", issue.comments);
        assert!(
            issue.comments[0].contains(reason.describe()),
            "{:?}",
            issue.comments[0]
        );
        assert_eq!(r.tracker.issues().len(), 1, "{reason:?}: nothing refiled");
        assert_eq!(occurrences(&r, 1).await, 5, "{reason:?}");
    }
}

#[tokio::test]
async fn a_rate_limited_regression_comment_is_made_by_a_later_scan() {
    // The note is forgotten when the tracker refused the comment outright.
    let r = rig_with(Arc::new(selfmon_core::offline::OfflineRunner), no_reopen());
    filed_and_closed(&r, CloseReason::Completed).await;
    let reset_at = r.clock.now() + chrono::Duration::minutes(5);
    r.faulty_tracker
        .inject(1, TrackerFault::RateLimited { reset_at });
    recur(&r).await;
    assert!(r.tracker.issues()[0].comments.is_empty());
    r.faulty_tracker.lift_rate_limit();
    r.faulty_tracker.clear_faults();
    recur(&r).await;
    recur(&r).await;
    assert_eq!(r.tracker.issues()[0].comments.len(), 1);
}

/// Answers one finding per digest signature, titled by its template, with the same error type
/// and source file (as `obedient-claude.py` of review5's repros): a variant of a filed problem is
/// then similar to it on every attribute.
struct Obedient;

#[async_trait]
impl AnalysisRunner for Obedient {
    async fn analyze(&self, request: &AnalysisRequest) -> selfmon_core::Result<Analysis> {
        let findings = request
            .digest
            .signatures
            .iter()
            .map(|s| {
                let mut f =
                    Finding::new(Classification::ServerBug, s.template.clone(), "A problem.");
                f.signature_ids = vec![s.id.clone()];
                f.evidence_record_ids = s.sample_ids.clone();
                if s.template.contains("worker") {
                    f.error_type = Some("PoolExhausted".into());
                    f.source_files = vec!["src/worker.py".into()];
                }
                f
            })
            .collect();
        Ok(Analysis {
            findings,
            ..Default::default()
        })
    }

    fn name(&self) -> &str {
        "obedient"
    }
}

#[tokio::test]
async fn a_related_problem_is_commented_on_once_then_counted_as_known() {
    // G6: every scan in which the variant recurred ran the model again and posted another
    // "Related occurrence" comment.
    let r = rig_with(Arc::new(Obedient), SelfMonitoringConfig::default());
    let base = "worker pool exhausted while processing the nightly queue orders batch for the billing tenant";
    r.logs.log(Level::Error, "app.worker", base);
    scan(&r).await;
    assert_eq!(r.tracker.issues().len(), 1);
    let mut analysed = 0;
    for _ in 0..4 {
        r.logs
            .log(Level::Error, "app.worker", &format!("{base} again"));
        let report = scan(&r).await;
        analysed += u32::from(report.record.analysis_ran);
    }
    let issues = r.tracker.issues();
    assert_eq!(issues.len(), 1, "the variant is not filed");
    assert_eq!(issues[0].comments.len(), 1, "{:?}", issues[0].comments);
    assert!(issues[0].comments[0].contains("Related occurrence"));
    assert_eq!(analysed, 1, "the model is asked about the variant once");
    assert_eq!(occurrences(&r, 1).await, 5);
}

#[tokio::test]
async fn a_deleted_issue_holds_its_problem_until_forgotten_then_it_is_filed_anew() {
    // G10: an issue deleted on the tracker silenced its problem for good, with no way out.
    let r = rig();
    r.logs.log(Level::Critical, "app.db", LOCKED);
    scan(&r).await;
    r.tracker.delete(1);
    let report = recur(&r).await;
    let said = serde_json::to_string(&report.outcomes).unwrap();
    assert!(said.contains("selfmon history forget 1"), "{said}");
    assert_eq!(report.record.issues_created, 0);
    assert!(r.store.forget_issue(1).await.unwrap());
    let report = recur(&r).await;
    assert_eq!(report.record.issues_created, 1, "{:?}", report.outcomes);
    let issues = r.tracker.issues();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].number, 2, "filed anew under a new number");
    // And it is known from then on: filed once.
    recur(&r).await;
    assert_eq!(r.tracker.issues().len(), 1);
    assert_eq!(occurrences(&r, 2).await, 2);
}

#[tokio::test]
async fn a_related_comment_is_not_repeated_when_a_later_call_fails_the_scan() {
    // G2: one failing tracker call (here a create, after the comment) failed the whole scan, and
    // the next scan made every comment of the failed one again.
    let r = rig_with(Arc::new(Obedient), SelfMonitoringConfig::default());
    let base = "worker pool exhausted while processing the nightly queue orders batch for the billing tenant";
    r.logs.log(Level::Error, "app.worker", base);
    scan(&r).await;
    r.logs
        .log(Level::Error, "app.worker", &format!("{base} again"));
    r.logs.log(
        Level::Warning,
        "app.disk",
        "disk quota of the upload volume reached, rejecting new attachments",
    );
    r.faulty_tracker.inject(0, TrackerFault::CreateFails);
    let failed = r.monitor.scan(ScanTrigger::Manual).await;
    assert!(failed.is_err(), "the create failure fails the scan");
    assert_eq!(r.tracker.issues()[0].comments.len(), 1, "commented first");
    r.faulty_tracker.clear_faults();
    scan(&r).await;
    let issues = r.tracker.issues();
    assert_eq!(
        issues.len(),
        2,
        "the quota problem is filed by the next scan"
    );
    assert_eq!(issues[0].comments.len(), 1, "{:?}", issues[0].comments);
    assert_eq!(
        occurrences(&r, 1).await,
        2,
        "the variant's record is counted once"
    );
}
