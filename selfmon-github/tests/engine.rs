//! The whole engine with the GitHub tracker against a fake GitHub on 127.0.0.1, including a crash
//! between filing an issue and recording it.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::fake_github::FakeGitHub;
use common::*;
use selfmon_core::offline::OfflineRunner;
use selfmon_core::testing::{FaultyStateStore, MemoryLogSource, MemoryStateStore, StoreOp};
use selfmon_core::{
    IssueState, Level, Marker, ScanStatus, ScanTrigger, SelfMonitor, StateStore, TemplateMemory,
};
use wiremock::MockServer;

fn monitor<S: StateStore + TemplateMemory + 'static>(
    server: &MockServer,
    logs: &Arc<MemoryLogSource>,
    store: &Arc<S>,
) -> SelfMonitor {
    monitor_with(tracker(server), logs, store)
}

fn monitor_with<S: StateStore + TemplateMemory + 'static>(
    tracker: selfmon_github::GitHubTracker,
    logs: &Arc<MemoryLogSource>,
    store: &Arc<S>,
) -> SelfMonitor {
    SelfMonitor::builder()
        .log_source(logs.clone())
        .runner(Arc::new(OfflineRunner))
        .tracker(Arc::new(tracker))
        .store(store.clone())
        .template_memory(store.clone())
        .build()
        .unwrap()
}

fn three_bugs(logs: &MemoryLogSource) {
    logs.log(
        Level::Error,
        "app.api",
        "Traceback (most recent call last):\n  File \"api.py\"\nValueError: bad ref",
    );
    logs.log(
        Level::Error,
        "app.git",
        "[GIT-SYNC-001] clone of repo alpha failed: exit 128",
    );
    logs.log(
        Level::Critical,
        "app.db",
        "[DB-LOCK-003] database is locked",
    );
}

#[tokio::test]
async fn a_crash_between_create_and_record_is_reconciled_without_filing_twice() {
    let (server, fake) = FakeGitHub::start().await;
    let logs = Arc::new(MemoryLogSource::new());
    let store = Arc::new(MemoryStateStore::new());
    let faulty_store = Arc::new(FaultyStateStore::new(store.clone()));
    three_bugs(&logs);

    // The first process files an issue on GitHub, then cannot record it: as if it died there.
    faulty_store.fail(StoreOp::CompleteIntent);
    {
        let first = monitor(&server, &logs, &faulty_store);
        let err = first.scan(ScanTrigger::Manual).await.unwrap_err();
        assert!(err.to_string().contains("state store"), "{err}");
    }
    assert_eq!(
        fake.issues().len(),
        1,
        "GitHub has the issue the store never recorded"
    );
    assert_eq!(store.intents().len(), 1, "the filing waits in the outbox");
    assert_eq!(store.scans()[0].status, ScanStatus::Failure);

    // A new process (new tracker, new engine) over the same store reconciles first.
    let second = monitor(&server, &logs, &store);
    let report = second.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(report.record.status, ScanStatus::Success);
    assert_eq!(report.reconciled.len(), 1);
    assert_eq!(report.reconciled[0].number, fake.issues()[0].number);
    assert!(store.intents().is_empty());

    let issues = fake.issues();
    assert_eq!(issues.len(), 3, "every problem filed exactly once");
    let markers: HashSet<Marker> = issues
        .iter()
        .map(|i| Marker::find_in(&i.body).expect("every body carries the marker"))
        .collect();
    assert_eq!(markers.len(), 3, "no marker twice");
    let titles: HashSet<&str> = issues.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(titles.len(), 3);
    for i in &issues {
        assert!(i.labels.contains(&"selfmon".to_string()), "{:?}", i.labels);
    }
    let mut recorded: Vec<u64> = store.issues().iter().map(|r| r.issue.number).collect();
    recorded.sort();
    let mut on_github: Vec<u64> = issues.iter().map(|i| i.number).collect();
    on_github.sort();
    assert_eq!(recorded, on_github, "the store and GitHub agree");
    assert!(
        !fake.log().iter().any(|l| l.starts_with("GET /search")),
        "the fresh issue was found by listing, not the lagging search"
    );

    // Nothing new: nothing filed.
    let quiet = second.scan(ScanTrigger::Scheduled).await.unwrap();
    assert_eq!(quiet.record.issues_created, 0);
    // The same problems again: counted, not filed.
    three_bugs(&logs);
    let again = second.scan(ScanTrigger::Scheduled).await.unwrap();
    assert_eq!(again.record.issues_created, 0);
    assert_eq!(fake.issues().len(), 3);
}

#[tokio::test]
async fn a_fixed_problem_that_recurs_reopens_its_issue_on_github() {
    let (server, fake) = FakeGitHub::start().await;
    let logs = Arc::new(MemoryLogSource::new());
    let store = Arc::new(MemoryStateStore::new());
    let engine = monitor(&server, &logs, &store);
    logs.log(
        Level::Critical,
        "app.db",
        "[DB-LOCK-003] database is locked",
    );
    engine.scan(ScanTrigger::Manual).await.unwrap();
    let number = fake.issues()[0].number;
    {
        let mut s = fake.state.lock().unwrap();
        let i = s.issues.iter_mut().find(|i| i.number == number).unwrap();
        i.open = false;
        i.closed_at = Some(chrono::Utc::now());
        i.updated_at = chrono::Utc::now();
    }
    logs.log(
        Level::Critical,
        "app.db",
        "[DB-LOCK-003] database is locked",
    );
    let report = engine.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(report.record.issues_created, 0);
    let issue = fake
        .issues()
        .into_iter()
        .find(|i| i.number == number)
        .unwrap();
    assert!(issue.open, "reopened as a regression");
    assert_eq!(fake.issues().len(), 1);
    assert!(
        !issue.comments.is_empty(),
        "the regression is explained in a comment"
    );
}

/// Review5 G1: an issue a maintainer closed as "not planned" was reopened, with a "Regression"
/// comment, at every recurrence. Now it stays closed and gets one note for the closure; later
/// recurrences are counted.
#[tokio::test]
async fn an_issue_closed_as_not_planned_on_github_is_not_reopened_and_noted_once() {
    let (server, fake) = FakeGitHub::start().await;
    let logs = Arc::new(MemoryLogSource::new());
    let store = Arc::new(MemoryStateStore::new());
    let engine = monitor(&server, &logs, &store);
    logs.log(
        Level::Critical,
        "app.db",
        "[DB-LOCK-003] database is locked",
    );
    engine.scan(ScanTrigger::Manual).await.unwrap();
    let number = fake.issues()[0].number;
    fake.edit(number, |i| {
        i.open = false;
        i.closed_at = Some(chrono::Utc::now());
        i.state_reason = Some("not_planned".into());
        i.updated_at = chrono::Utc::now();
    });
    for _ in 0..3 {
        logs.log(
            Level::Critical,
            "app.db",
            "[DB-LOCK-003] database is locked",
        );
        let report = engine.scan(ScanTrigger::Manual).await.unwrap();
        assert_eq!(report.record.issues_created, 0);
    }
    let issue = fake
        .issues()
        .into_iter()
        .find(|i| i.number == number)
        .unwrap();
    assert!(!issue.open, "not reopened");
    assert_eq!(issue.comments.len(), 1, "{:?}", issue.comments);
    assert!(issue.comments[0].contains("closed as not planned"));
    assert!(
        !fake.log().iter().any(|r| r.starts_with("PATCH")),
        "no reopen was attempted: {:?}",
        fake.log()
    );
}

/// Review4 F12: one closed and locked issue whose problem recurred failed every scan with
/// "permission denied (the token needs Issues: write)": GitHub refuses an App or bot token's
/// comment on a locked conversation with 403 "Unable to create comment because issue is
/// locked.". Now the regression reopens the issue without a comment, the scan succeeds, and a new
/// problem in the same scan is filed. Both when the listing says `locked` (GitHub does) and when
/// only the refused comment tells.
#[tokio::test]
async fn a_locked_closed_issue_that_regresses_is_reopened_without_a_comment_and_stops_no_scan() {
    for lock_hidden in [false, true] {
        let (server, fake) = FakeGitHub::start().await;
        let logs = Arc::new(MemoryLogSource::new());
        let store = Arc::new(MemoryStateStore::new());
        let engine = monitor(&server, &logs, &store);
        logs.log(Level::Critical, "app.a", "[AAA-BBB-001] alpha broke");
        engine.scan(ScanTrigger::Manual).await.unwrap();
        let number = fake.issues()[0].number;
        fake.edit(number, |i| {
            i.open = false;
            i.closed_at = Some(chrono::Utc::now());
            i.locked = true;
            i.lock_hidden = lock_hidden;
        });
        logs.log(Level::Critical, "app.a", "[AAA-BBB-001] alpha broke");
        logs.log(Level::Critical, "app.b", "[BBB-CCC-002] bravo broke");
        let report = engine
            .scan(ScanTrigger::Manual)
            .await
            .unwrap_or_else(|e| panic!("lock hidden: {lock_hidden}: {e}"));
        assert_eq!(report.record.status, ScanStatus::Success);
        assert_eq!(report.record.issues_created, 1, "bravo is filed");
        assert_eq!(report.record.regressions, 1, "{:?}", report.outcomes);
        assert_eq!(report.record.comments_added, 0);
        let issues = fake.issues();
        let alpha = issues.iter().find(|i| i.number == number).unwrap();
        assert!(alpha.open, "reopened without a comment");
        assert!(alpha.comments.is_empty());
        assert_eq!(issues.len(), 2, "alpha is not filed again");
        let said = serde_json::to_string(&report.outcomes).unwrap();
        assert!(said.contains("is locked"), "{said}");
        // With the listing's `locked`, no comment is even tried.
        let tried = fake
            .log()
            .iter()
            .filter(|l| l.starts_with(&format!("POST /repos/acme/server/issues/{number}/comments")))
            .count();
        assert_eq!(
            tried,
            usize::from(lock_hidden),
            "lock hidden: {lock_hidden}"
        );

        // Alpha recurs on the reopened, still locked issue: counted, no comment, no failure.
        logs.log(Level::Critical, "app.a", "[AAA-BBB-001] alpha broke");
        let again = engine.scan(ScanTrigger::Manual).await.unwrap();
        assert_eq!(again.record.issues_created, 0);
        assert_eq!(again.record.regressions, 0);
    }
}

#[tokio::test]
async fn a_create_whose_response_times_out_is_found_by_marker_not_filed_again() {
    let (server, fake) = FakeGitHub::start().await;
    let logs = Arc::new(MemoryLogSource::new());
    let store = Arc::new(MemoryStateStore::new());
    three_bugs(&logs);
    fake.state.lock().unwrap().delay_next_create = Some(std::time::Duration::from_secs(3));
    let mut cfg = config(&server);
    cfg.request_timeout_secs = 1;
    let engine = monitor_with(tracker_with(cfg), &logs, &store);
    let err = engine.scan(ScanTrigger::Manual).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        fake.issues().len(),
        1,
        "GitHub filed it although the response was lost"
    );
    let creates = fake
        .log()
        .iter()
        .filter(|l| l.starts_with("POST /repos/acme/server/issues"))
        .count();
    assert_eq!(creates, 1, "the timed-out create was not resent");

    let report = engine.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(report.reconciled.len(), 1);
    assert_eq!(fake.issues().len(), 3, "every problem filed exactly once");
}

fn db_locked(logs: &MemoryLogSource) {
    logs.log(
        Level::Critical,
        "app.db",
        "[DB-LOCK-003] database is locked",
    );
}

/// Lines `GET /repos/acme/server/issues/N` in the fake's request log.
fn lookups(fake: &FakeGitHub, number: u64) -> usize {
    let wanted = format!("GET /repos/acme/server/issues/{number}");
    fake.log().iter().filter(|l| **l == wanted).count()
}

#[tokio::test]
async fn an_open_issue_whose_label_was_removed_is_no_regression_on_any_scan() {
    let (server, fake) = FakeGitHub::start().await;
    let logs = Arc::new(MemoryLogSource::new());
    let store = Arc::new(MemoryStateStore::new());
    let engine = monitor(&server, &logs, &store);
    db_locked(&logs);
    engine.scan(ScanTrigger::Manual).await.unwrap();
    let number = fake.issues()[0].number;
    // A person removes selfmon's label: the issue stays open, but the label listing loses it.
    fake.edit(number, |i| i.labels.retain(|l| l != "selfmon"));

    for scan in 2..=4 {
        db_locked(&logs);
        let report = engine.scan(ScanTrigger::Scheduled).await.unwrap();
        assert_eq!(report.record.regressions, 0, "scan {scan}: {report:?}");
        assert_eq!(report.record.comments_added, 0, "scan {scan}");
        assert_eq!(report.record.issues_created, 0, "scan {scan}");
    }
    let issue = fake
        .issues()
        .into_iter()
        .find(|i| i.number == number)
        .unwrap();
    assert!(issue.open);
    assert!(issue.comments.is_empty(), "{:?}", issue.comments);
    assert_eq!(fake.issues().len(), 1, "never filed again");
    assert!(
        !fake.log().iter().any(|l| l.starts_with("PATCH")),
        "an open issue is never reopened: {:#?}",
        fake.log()
    );
    assert_eq!(
        lookups(&fake, number),
        3,
        "one lookup per scan, of the one issue the listing missed"
    );
    assert_eq!(store.issues()[0].issue.state, IssueState::Open);
}

#[tokio::test]
async fn a_closed_issue_without_the_label_regresses_once_and_is_then_seen_open() {
    let (server, fake) = FakeGitHub::start().await;
    let logs = Arc::new(MemoryLogSource::new());
    let store = Arc::new(MemoryStateStore::new());
    let engine = monitor(&server, &logs, &store);
    db_locked(&logs);
    engine.scan(ScanTrigger::Manual).await.unwrap();
    let number = fake.issues()[0].number;
    fake.edit(number, |i| {
        i.labels.retain(|l| l != "selfmon");
        i.open = false;
        i.closed_at = Some(chrono::Utc::now());
    });

    db_locked(&logs);
    let report = engine.scan(ScanTrigger::Scheduled).await.unwrap();
    assert_eq!(report.record.regressions, 1, "{report:?}");
    let issue = fake
        .issues()
        .into_iter()
        .find(|i| i.number == number)
        .unwrap();
    assert!(issue.open, "reopened as a regression");
    assert_eq!(issue.comments.len(), 1);

    for scan in 3..=4 {
        db_locked(&logs);
        let report = engine.scan(ScanTrigger::Scheduled).await.unwrap();
        assert_eq!(report.record.regressions, 0, "scan {scan}: {report:?}");
    }
    let issue = fake
        .issues()
        .into_iter()
        .find(|i| i.number == number)
        .unwrap();
    assert_eq!(issue.comments.len(), 1, "{:?}", issue.comments);
    assert_eq!(fake.issues().len(), 1, "never filed again");
}

#[tokio::test]
async fn a_deleted_issue_is_recorded_closed_and_not_filed_again() {
    let (server, fake) = FakeGitHub::start().await;
    let logs = Arc::new(MemoryLogSource::new());
    let store = Arc::new(MemoryStateStore::new());
    let engine = monitor(&server, &logs, &store);
    db_locked(&logs);
    engine.scan(ScanTrigger::Manual).await.unwrap();
    let number = fake.issues()[0].number;
    fake.delete(number);

    for scan in 2..=3 {
        db_locked(&logs);
        let report = engine.scan(ScanTrigger::Scheduled).await.unwrap();
        assert_eq!(report.record.status, ScanStatus::Success, "scan {scan}");
        assert_eq!(report.record.issues_created, 0, "scan {scan}");
        assert_eq!(report.record.comments_added, 0, "scan {scan}");
    }
    assert!(fake.issues().is_empty());
    assert_eq!(
        store.issues()[0].issue.state,
        IssueState::Closed,
        "the store no longer takes the deleted issue for open"
    );
    // Scan 2 looks it up (recorded open, unlisted) and records it closed; scan 3's regression
    // looks it up before commenting (an issue recorded closed that the listing does not return
    // may now be someone else's), finds it gone, and sends no comment.
    assert_eq!(
        lookups(&fake, number),
        2,
        "looked up once per scan that needed it"
    );
    assert!(
        !fake
            .log()
            .iter()
            .any(|l| l.starts_with("POST") && l.ends_with("/comments")),
        "no comment was attempted on the deleted issue: {:?}",
        fake.log()
    );
}

#[tokio::test]
async fn an_issue_transferred_to_another_repository_is_gone_from_this_one_and_fails_no_scan() {
    // GitHub answers a transferred issue's old address with 301 (GET, PATCH, comments). Reopening
    // or commenting then failed every scan that saw the problem again ("moved"), and a lookup
    // took the issue in the other repository for this one's.
    for closed_first in [true, false] {
        let (server, fake) = FakeGitHub::start().await;
        let logs = Arc::new(MemoryLogSource::new());
        let store = Arc::new(MemoryStateStore::new());
        let engine = monitor(&server, &logs, &store);
        db_locked(&logs);
        engine.scan(ScanTrigger::Manual).await.unwrap();
        let number = fake.issues()[0].number;
        if closed_first {
            fake.edit(number, |i| i.open = false);
        }
        fake.transfer(number);

        for scan in 2..=3 {
            db_locked(&logs);
            let report = engine.scan(ScanTrigger::Scheduled).await.unwrap();
            assert_eq!(
                report.record.status,
                ScanStatus::Success,
                "closed first: {closed_first}, scan {scan}: {:?}",
                report.record.error_message
            );
            assert_eq!(report.record.issues_created, 0, "scan {scan}");
            assert_eq!(report.record.comments_added, 0, "scan {scan}");
        }
        assert!(fake.issues().is_empty(), "nothing filed again");
        assert_eq!(
            store.issues()[0].issue.state,
            IssueState::Closed,
            "the store no longer takes the transferred issue for one of this repository's"
        );
    }
}
