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

/// Occurrences recorded on the issue whose title holds `needle`.
fn occurrences_of(r: &common::Rig, needle: &str) -> u64 {
    let numbers: Vec<u64> = r
        .tracker
        .issues()
        .into_iter()
        .filter(|i| i.title.contains(needle))
        .map(|i| i.number)
        .collect();
    assert_eq!(numbers.len(), 1, "one issue titled {needle:?}");
    r.store
        .issues()
        .iter()
        .find(|i| i.issue.number == numbers[0])
        .map_or(0, |i| i.occurrences)
}

/// review3 H8: one CRITICAL per scan, the same sentence with one dependency's name changed.
/// From the fifth name on the templater groups the word as `<*>`; before, every later outage
/// (mailer, ledger, billing, auth) was "known" and counted on the database issue, and so was a
/// second cache outage although the cache had its own issue. A word generalised only by count
/// is never known to an issue that did not cover it: each outage is analysed (and here filed),
/// and a recurrence is counted on its own issue.
#[tokio::test]
async fn a_word_generalised_after_five_names_is_known_only_to_the_issue_that_covered_it() {
    let r = rig();
    let words = [
        "database", "cache", "queue", "search", "mailer", "ledger", "billing", "auth",
    ];
    for w in words {
        r.logs.log(
            Level::Critical,
            "app",
            &format!("failed to connect to {w} server"),
        );
        let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
        assert_eq!(
            (
                report.record.known_signatures,
                report.record.novel_signatures
            ),
            (0, 1),
            "{w}: {}",
            serde_json::to_string(&report.outcomes).unwrap()
        );
    }
    assert_eq!(
        r.tracker.issues().len(),
        words.len(),
        "one issue per outage"
    );
    r.logs
        .log(Level::Critical, "app", "failed to connect to cache server");
    let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(
        (report.record.known_signatures, report.record.issues_created),
        (1, 0)
    );
    assert_eq!(
        occurrences_of(&r, "cache server"),
        2,
        "counted on its own issue"
    );
    for w in words.iter().filter(|w| **w != "cache") {
        assert_eq!(occurrences_of(&r, &format!("{w} server")), 1, "{w}");
    }
}

/// review3 M13: a number that names the outcome (HTTP status, exit status, errno, signal) is
/// part of the problem. Filed for the first of each pair, the second was "known"; now it is
/// analysed, while the same outcome again, or the same failure with another count, is known.
#[tokio::test]
async fn a_different_outcome_number_is_a_new_signature_and_the_same_one_is_known() {
    for (first, second) in [
        (
            "upstream payments returned HTTP 404",
            "upstream payments returned HTTP 503",
        ),
        (
            "worker exited with status 1",
            "worker exited with status 137",
        ),
        ("write failed: errno 13", "write failed: errno 28"),
        ("child killed by signal 15", "child killed by signal 11"),
        (
            "10.0.0.7 - - \"GET /api/orders HTTP/1.1\" 404 512",
            "10.0.0.7 - - \"GET /api/orders HTTP/1.1\" 502 512",
        ),
        (
            r#"{"level":"error","status":404,"msg":"upstream call failed"}"#,
            r#"{"level":"error","status":503,"msg":"upstream call failed"}"#,
        ),
    ] {
        let r = rig();
        r.logs.log(Level::Critical, "app", first);
        let filed = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
        assert_eq!(filed.record.issues_created, 1, "{first}");
        r.logs.log(Level::Critical, "app", second);
        let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
        assert_eq!(
            (
                report.record.known_signatures,
                report.record.novel_signatures
            ),
            (0, 1),
            "{second} after {first}: {}",
            serde_json::to_string(&report.outcomes).unwrap()
        );
        r.logs.log(Level::Critical, "app", first);
        let again = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
        assert_eq!(
            (again.record.known_signatures, again.record.novel_signatures),
            (1, 0),
            "{first} again"
        );
    }
    // Counts, durations and sizes stay values.
    let r = rig();
    r.logs.log(
        Level::Critical,
        "app",
        "worker exited after 3 retries in 120 ms",
    );
    r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    r.logs.log(
        Level::Critical,
        "app",
        "worker exited after 7 retries in 980 ms",
    );
    let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(report.record.known_signatures, 1);
}
