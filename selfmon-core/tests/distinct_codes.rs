//! Error codes name problems: two problems whose messages differ only in their code get two
//! issues. Found by the state-machine test (`tests/state_machine.rs`): the second problem was
//! "related" to the first by similarity, got a comment, and never an issue of its own.

mod common;

use common::rig;
use selfmon_core::{FindingOutcome, Level, ScanTrigger};

fn message(n: u32) -> String {
    format!("[PRB-STATE-00{n}] subsystem {n} failed to commit its journal")
}

#[tokio::test]
async fn messages_that_differ_only_in_their_error_code_are_two_problems() {
    let r = rig();
    r.logs.log(Level::Critical, "app.journal", &message(1));
    let first = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(first.record.issues_created, 1);

    r.logs.log(Level::Error, "app.journal", &message(0));
    r.logs.log(Level::Error, "app.journal", &message(0));
    let second = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert!(
        matches!(second.outcomes.as_slice(), [FindingOutcome::Filed { .. }]),
        "{:?}",
        second.outcomes
    );
    let titles: Vec<String> = r.tracker.issues().into_iter().map(|i| i.title).collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(titles.iter().any(|t| t.contains("PRB-STATE-000")));
    assert!(titles.iter().any(|t| t.contains("PRB-STATE-001")));
}
