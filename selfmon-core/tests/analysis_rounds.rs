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
