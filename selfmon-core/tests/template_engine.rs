//! What the templater decides, seen through whole scans: one-word messages keep their own
//! signatures, so a known problem never hides a new one-word message.

mod common;

use common::rig;
use selfmon_core::{Level, ScanTrigger};

/// One-word events of an HPC-style node log: each is its own event.
const WORDS: &[&str] = &[
    "normal",
    "warning",
    "running",
    "starting",
    "closing",
    "blocked",
    "active",
    "halted",
    "degraded",
    "unreachable",
    "throttled",
    "overheated",
];

#[tokio::test]
async fn one_word_messages_keep_one_signature_each() {
    let r = rig();
    for w in WORDS {
        r.logs.log(Level::Error, "hpc.node", w);
    }
    let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(
        report.record.novel_signatures,
        WORDS.len() as u64,
        "no one-word message collapses into `<*>`"
    );
}

#[tokio::test]
async fn an_issue_covering_one_word_signatures_does_not_hide_a_new_one_word_critical_message() {
    let r = rig();
    // CRITICAL records are problems the offline runner files.
    for w in WORDS {
        r.logs.log(Level::Critical, "hpc.node", w);
    }
    r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert!(
        !r.tracker.issues().is_empty(),
        "the first scan filed known problems"
    );
    r.logs.log(Level::Critical, "hpc.node", "corrupted");
    let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(report.record.known_signatures, 0);
    assert_eq!(
        report.record.novel_signatures, 1,
        "`corrupted` is a new problem, not a recurrence of a known `<*>`"
    );
    assert!(
        report.record.analysis_ran,
        "the new message reaches analysis"
    );
}
