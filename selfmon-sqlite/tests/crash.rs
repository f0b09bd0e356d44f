//! A real process is killed (SIGKILL) in the middle of writing the state store; the file must
//! reopen consistent. The child is this test binary re-executed with an environment variable.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rusqlite::Connection;
use selfmon_core::{
    IssueLedger, LeaseOutcome, ScanHistory, ScanId, ScanLedger, ScanRecord, ScanStatus, ScanTrigger,
};
use support::{intent, open_store, row_for, t, FakeTracker};

const DB_VAR: &str = "SELFMON_CRASH_CHILD_DB";
const MODE_VAR: &str = "SELFMON_CRASH_CHILD_MODE";

fn spawn_child(db: &Path, mode: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_VAR, db)
        .env(MODE_VAR, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Reads the child's `PROGRESS ...` lines until `stop` says to kill it; returns the lines.
fn run_child_until(db: &Path, mode: &str, stop: impl Fn(&str) -> bool) -> Vec<String> {
    let mut child = spawn_child(db, mode);
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // The harness may print "test crash_child_process ... " on the same line.
        if let Some(at) = line.find("PROGRESS ") {
            let p = &line[at + "PROGRESS ".len()..];
            lines.push(p.to_string());
            if stop(p) {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    lines
}

fn integrity_ok(db: &Path) {
    let conn = Connection::open(db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let fk: Vec<String> = conn
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(fk.is_empty(), "foreign key violations: {fk:?}");
}

#[tokio::test]
async fn a_process_killed_mid_transaction_leaves_the_file_consistent_and_unlocked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    drop(open_store(&db));
    let progress = run_child_until(&db, "mid_transaction", |p| p == "in-transaction");
    assert_eq!(progress.last().map(String::as_str), Some("in-transaction"));

    integrity_ok(&db);
    let store = open_store(&db);
    assert!(
        store.filed_issues().await.unwrap().is_empty(),
        "the uncommitted rows are gone"
    );
    assert_eq!(store.list_scans(Default::default()).await.unwrap().total, 1);
    // The dead writer's lock went with it: writes succeed at once.
    assert!(matches!(
        store
            .try_acquire_lease("survivor", Duration::from_secs(5), t(1))
            .await
            .unwrap(),
        LeaseOutcome::Acquired(_)
    ));
}

#[tokio::test]
async fn a_process_killed_while_filing_leaves_each_filing_either_open_or_complete() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    drop(open_store(&db));
    let progress = run_child_until(&db, "filing_loop", |p| p == "completed 40");
    integrity_ok(&db);

    let store = open_store(&db);
    let open: BTreeSet<String> = store
        .open_intents()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.intent_id)
        .collect();
    let filed: BTreeSet<String> = store
        .filed_issues()
        .await
        .unwrap()
        .into_iter()
        .map(|i| format!("i{}", i.issue.number))
        .collect();
    assert!(
        open.is_disjoint(&filed),
        "an intent is never both open and complete"
    );
    for p in &progress {
        if let Some(n) = p.strip_prefix("completed ") {
            assert!(
                filed.contains(&format!("i{n}")),
                "completed filing {n} lost"
            );
        }
        if let Some(n) = p.strip_prefix("recorded ") {
            let id = format!("i{n}");
            assert!(
                open.contains(&id) || filed.contains(&id),
                "recorded intent {n} lost"
            );
        }
    }
    assert!(filed.len() >= 40);
    // The scan the child left RUNNING is closed by the next holder of the lease.
    assert!(
        store
            .close_abandoned_scans(
                t(10_000),
                &selfmon_core::redact::Redactor::shared().redacted("killed")
            )
            .await
            .unwrap()
            >= 1
    );
}

#[tokio::test]
async fn a_lease_held_by_another_process_is_refused_until_it_expires_after_that_process_dies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    drop(open_store(&db));
    let mut child = spawn_child(&db, "hold_lease");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("child exited early").unwrap();
        if line.contains("PROGRESS lease-held") {
            break;
        }
    }
    let store = open_store(&db);
    let ttl = Duration::from_secs(600);
    assert!(
        matches!(store.try_acquire_lease("parent", ttl, t(1)).await.unwrap(), LeaseOutcome::Held(ref l) if l.owner == "child"),
        "the live child holds the lease"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        matches!(
            store.try_acquire_lease("parent", ttl, t(2)).await.unwrap(),
            LeaseOutcome::Held(_)
        ),
        "a dead holder's lease lasts until it expires"
    );
    assert!(matches!(
        store
            .try_acquire_lease("parent", ttl, t(601))
            .await
            .unwrap(),
        LeaseOutcome::Acquired(_)
    ));
}

/// Not a test on its own: the body of the child process for the tests above.
#[tokio::test]
#[ignore = "run as a child process by the crash tests"]
async fn crash_child_process() {
    let (Ok(db), Ok(mode)) = (std::env::var(DB_VAR), std::env::var(MODE_VAR)) else {
        return;
    };
    let db = Path::new(&db);
    let store = open_store(db);
    let scan = ScanRecord::started(ScanId("child".into()), ScanTrigger::Scheduled, 0, t(0));
    store.begin_scan(&scan).await.unwrap();
    match mode.as_str() {
        "mid_transaction" => {
            let mut conn = Connection::open(db).unwrap();
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .unwrap();
            for n in 0..1_000 {
                tx.execute(
                    "INSERT INTO self_monitoring_issues (scan_id, github_issue_number, classification, title, created_at)
                     VALUES ('child', ?1, 'server_bug', 't', '2025-01-01T00:00:00.000000Z')",
                    [n],
                )
                .unwrap();
            }
            tx.execute("UPDATE self_monitoring_scans SET status = 'SUCCESS'", [])
                .unwrap();
            println!("PROGRESS in-transaction");
            std::thread::sleep(Duration::from_secs(120));
        }
        "filing_loop" => {
            let tracker = FakeTracker::default();
            for n in 1..100_000u64 {
                let i = intent(&format!("i{n}"), n);
                store.record_intent(&i).await.unwrap();
                println!("PROGRESS recorded {n}");
                let issue = tracker.create(&i.draft);
                store
                    .complete_intent(&i.intent_id, &row_for(&i, issue))
                    .await
                    .unwrap();
                println!("PROGRESS completed {n}");
                let mut s = scan.clone();
                s.records_read = n;
                s.status = ScanStatus::Running;
                store.finish_scan(&s).await.unwrap();
            }
        }
        "hold_lease" => {
            let outcome = store
                .try_acquire_lease("child", Duration::from_secs(600), t(0))
                .await
                .unwrap();
            assert!(matches!(outcome, LeaseOutcome::Acquired(_)));
            println!("PROGRESS lease-held");
            std::thread::sleep(Duration::from_secs(120));
        }
        other => panic!("unknown child mode {other}"),
    }
}
