//! Every signature triage leaves is judged: what does not fit in one digest, or what a full answer
//! had no room for, is shown in another analysis round; what is left after the last round is judged
//! by the offline rules. Nothing read is left unjudged, and a finding that cites only records is
//! linked to their signatures.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{rig, rig_with};
use selfmon_core::testing::ScriptedRunner;
use selfmon_core::{
    Analysis, Classification, Finding, Level, ScanTrigger, SelfMonitoringConfig, SignatureFate,
};

/// `n` distinct coded CRITICAL problems, one record each.
fn coded_problems(logs: &selfmon_core::testing::MemoryLogSource, n: usize) {
    const WORDS: [&str; 10] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    ];
    for i in 0..n {
        logs.log(
            Level::Critical,
            &format!("app.{}", WORDS[i % 10]),
            &format!(
                "[SVC{}-{}-{:03}] {} {} subsystem halted",
                (b'A' + (i / 10) as u8) as char,
                WORDS[i % 10].to_uppercase(),
                i + 1,
                WORDS[i % 10],
                WORDS[(i / 10) % 10]
            ),
        );
    }
}

/// The ids of the analysed signatures of a report.
fn analysed(report: &selfmon_core::ScanReport) -> HashSet<String> {
    report
        .signatures
        .iter()
        .filter(|s| s.fate == SignatureFate::Analysed)
        .map(|s| s.id.clone())
        .collect()
}

#[tokio::test]
async fn problems_beyond_one_answers_findings_are_judged_in_another_round_not_dropped() {
    let r = rig();
    coded_problems(&r.logs, 25);
    let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(
        report.record.findings, 25,
        "the offline rules apply to all 25; 20 fit in one answer, 5 in the next round"
    );
    assert!(
        report
            .skipped
            .iter()
            .all(|s| !s.reason.contains("most findings")),
        "{:?}",
        report.skipped
    );
    assert_eq!(
        report.record.issues_created + report.record.deferred,
        25,
        "each is filed or waits in the backlog"
    );
    // The backlog drains: every one of the 25 is filed in the end, once.
    for _ in 0..6 {
        r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    }
    assert_eq!(r.tracker.issues().len(), 25);
}

#[tokio::test]
async fn signatures_that_do_not_fit_the_digest_are_shown_in_later_rounds_then_judged_offline() {
    let runner = Arc::new(ScriptedRunner::default());
    let config = SelfMonitoringConfig {
        max_digest_bytes: 4096,
        ..Default::default()
    };
    let r = rig_with(runner.clone(), config);
    coded_problems(&r.logs, 120);
    let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    let requests = runner.requests();
    assert_eq!(requests.len(), 4, "the most rounds a scan asks for");
    let mut shown: Vec<String> = requests
        .iter()
        .flat_map(|q| q.digest.signature_ids())
        .collect();
    let before = shown.len();
    shown.sort();
    shown.dedup();
    assert_eq!(shown.len(), before, "no signature is shown twice");
    for q in &requests {
        assert!(q.data.len() <= 4096 + 200, "each round's digest is bounded");
        assert!(
            !q.data.contains("omitted to stay within"),
            "each round shows all it was given"
        );
    }
    // The scripted runner answered nothing (no findings, room to spare): it judged what it was
    // shown; what no round showed was judged by the offline rules, which file coded problems.
    let analysed = analysed(&report);
    assert_eq!(analysed.len(), 120);
    let unshown: Vec<&String> = analysed.iter().filter(|id| !shown.contains(id)).collect();
    assert!(
        !unshown.is_empty(),
        "120 problems do not fit in 4 rounds of 4 KB"
    );
    // Each is coded and CRITICAL: the offline rules make a finding of every one.
    assert_eq!(report.record.findings as usize, unshown.len());
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.kind == "analysis_fallback" && w.message.contains("offline rules")),
        "{:?}",
        report.warnings
    );
}

#[tokio::test]
async fn a_full_answer_leaves_what_it_had_no_room_for_to_the_next_round() {
    // A model that answers the most findings asked for, citing only the first ones: the
    // signatures it had no room to mention are shown again, and only those.
    let runner = Arc::new(ScriptedRunner::default());
    let r = rig_with(runner.clone(), SelfMonitoringConfig::default());
    coded_problems(&r.logs, 3);
    // An answer with room to spare (no findings of 20 asked) judged all it was shown: one round.
    let first = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(runner.requests().len(), 1, "room to spare: one round");
    assert_eq!(first.record.findings, 0);

    let runner = Arc::new(ScriptedRunner::default());
    let r = rig_with(runner.clone(), SelfMonitoringConfig::default());
    coded_problems(&r.logs, 30);
    let finding = |title: &str| Finding::new(Classification::ServerBug, title, "summary");
    // Round 1: 20 findings citing no signature (full); round 2 onwards: nothing.
    runner.push(Analysis {
        findings: (0..20).map(|i| finding(&format!("problem {i}"))).collect(),
        ..Default::default()
    });
    runner.push(Analysis::default());
    r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    let requests = runner.requests();
    assert_eq!(
        requests.len(),
        2,
        "the full answer left all 30 unjudged once"
    );
    assert_eq!(requests[1].digest.signatures.len(), 30);
}

#[tokio::test]
async fn a_finding_citing_only_records_is_linked_to_their_signature_and_not_filed_again() {
    let runner = Arc::new(ScriptedRunner::default());
    let r = rig_with(runner.clone(), SelfMonitoringConfig::default());
    let id = r
        .logs
        .log(Level::Error, "app.pay", "payment gateway unreachable");
    let mut f = Finding::new(
        Classification::ServerBug,
        "Payment gateway unreachable",
        "The gateway does not answer.",
    );
    f.evidence_record_ids = vec![id];
    runner.push(Analysis {
        findings: vec![f],
        ..Default::default()
    });
    let mut again = Finding::new(
        Classification::ServerBug,
        "Payments cannot reach their gateway",
        "Reworded by the model on the next scan.",
    );
    let first = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(first.record.issues_created, 1);
    let id2 = r
        .logs
        .log(Level::Error, "app.pay", "payment gateway unreachable");
    again.evidence_record_ids = vec![id2];
    runner.push(Analysis {
        findings: vec![again],
        ..Default::default()
    });
    let second = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(
        (second.record.known_signatures, second.record.issues_created),
        (1, 0),
        "the signature is known by the first issue"
    );
    assert_eq!(r.tracker.issues().len(), 1);
}

/// The newest scan's count of runner failures over the same records.
async fn analysis_failures(r: &common::Rig) -> u32 {
    use selfmon_core::ScanHistory;
    r.store
        .list_scans(selfmon_core::PageRequest {
            offset: 0,
            limit: 1,
        })
        .await
        .unwrap()
        .items[0]
        .analysis_failures
}

#[tokio::test]
async fn records_the_runner_gives_no_answer_for_are_judged_offline_at_the_third_scan_and_filed() {
    let runner = Arc::new(ScriptedRunner::default());
    runner.push_no_answer("Output blocked by content filtering policy");
    let r = rig_with(runner.clone(), SelfMonitoringConfig::default());
    r.logs.log(
        Level::Error,
        "app.upload",
        "upload rejected: file contains POISON payload",
    );
    for attempt in 1..selfmon_core::engine::ANALYSIS_ATTEMPTS {
        r.logs.log(
            Level::Critical,
            "app.db",
            "[DB-LOCK-003] database is locked",
        );
        let err = r.monitor.scan(ScanTrigger::Manual).await.unwrap_err();
        assert!(err.is_no_answer() && err.is_retryable(), "{err}");
        assert_eq!(
            analysis_failures(&r).await,
            attempt,
            "counted, scan by scan"
        );
        assert!(r.tracker.issues().is_empty());
    }
    let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(
        runner.requests().len() as u32,
        selfmon_core::engine::ANALYSIS_ATTEMPTS,
        "the model is asked once per scan, the last time too"
    );
    assert!(
        report.warnings.iter().any(|w| w.kind == "analysis_fallback"
            && w.message.contains("gave no answer")
            && w.message.contains("content filtering")),
        "{:?}",
        report.warnings
    );
    assert_eq!(
        report.record.records_read, 3,
        "every record since the cursor is triaged"
    );
    assert_eq!(
        r.tracker.issues().len(),
        1,
        "the CRITICAL that arrived meanwhile is filed (by the offline rules)"
    );
    assert_eq!(analysis_failures(&r).await, 0, "the run of failures ended");
    // New records go to the model again; a single failure is retried, not judged offline.
    r.logs
        .log(Level::Error, "app.web", "[WEB-500-002] handler crashed");
    let err = r.monitor.scan(ScanTrigger::Manual).await.unwrap_err();
    assert!(err.is_no_answer(), "{err}");
    assert_eq!(analysis_failures(&r).await, 1);
    runner.push(Analysis::default());
    r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(analysis_failures(&r).await, 0, "an answer ends the run");
}

#[tokio::test]
async fn failures_that_say_nothing_about_the_records_are_retried_and_never_judged_offline() {
    let runner = Arc::new(ScriptedRunner::default());
    runner.push_failure("Claude CLI not found");
    let r = rig_with(runner.clone(), SelfMonitoringConfig::default());
    r.logs.log(
        Level::Critical,
        "app.db",
        "[DB-LOCK-003] database is locked",
    );
    for _ in 0..selfmon_core::engine::ANALYSIS_ATTEMPTS * 2 {
        let err = r.monitor.scan(ScanTrigger::Manual).await.unwrap_err();
        assert!(!err.is_no_answer(), "{err}");
        assert_eq!(analysis_failures(&r).await, 0);
    }
    assert!(r.tracker.issues().is_empty(), "nothing judged offline");
    use selfmon_core::ScanLedger;
    assert_eq!(
        r.store.last_successful_cursor().await.unwrap(),
        0,
        "no record consumed"
    );
    // A scan interrupted between refusals neither resets nor adds to the count.
    runner.push_no_answer("Prompt is too long");
    r.monitor.scan(ScanTrigger::Manual).await.unwrap_err();
    assert_eq!(analysis_failures(&r).await, 1);
    runner.push_failure("overloaded");
    r.monitor.scan(ScanTrigger::Manual).await.unwrap_err();
    assert_eq!(
        analysis_failures(&r).await,
        1,
        "a transient failure keeps the count"
    );
}

#[tokio::test]
async fn a_dry_run_counts_a_refusal_but_only_a_real_scan_ends_the_run_of_failures() {
    let runner = Arc::new(ScriptedRunner::default());
    runner.push_no_answer("Output blocked by content filtering policy");
    let r = rig_with(runner.clone(), SelfMonitoringConfig::default());
    r.logs.log(
        Level::Critical,
        "app.db",
        "[DB-LOCK-003] database is locked",
    );
    let dry = selfmon_core::ScanOptions {
        dry_run: true,
        ..Default::default()
    };
    for _ in 0..selfmon_core::engine::ANALYSIS_ATTEMPTS - 1 {
        r.monitor.scan(ScanTrigger::Manual).await.unwrap_err();
    }
    let preview = r.monitor.scan_with(dry).await.unwrap();
    assert!(preview
        .warnings
        .iter()
        .any(|w| w.kind == "analysis_fallback"));
    assert!(r.tracker.issues().is_empty(), "a dry run files nothing");
    assert_eq!(
        analysis_failures(&r).await,
        selfmon_core::engine::ANALYSIS_ATTEMPTS,
        "the dry run's fallback leaves the count for the real scan"
    );
    r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(r.tracker.issues().len(), 1);
    assert_eq!(analysis_failures(&r).await, 0);
}
