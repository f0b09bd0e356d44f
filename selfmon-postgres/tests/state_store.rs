//! PgStateStore against a real PostgreSQL server.

mod support;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use selfmon_core::{
    Classification, FiledIssue, FilingIntent, Finding, IssueDraft, IssueLedger, IssueRef,
    IssueState, LeaseOutcome, Marker, ScanId, ScanLedger,
};
use selfmon_postgres::{schema, Error, PgStateStore, SCHEMA_VERSION};
use support::test_db;

fn t(secs: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).single().unwrap()
}

fn intent(id: &str, number: u64) -> FilingIntent {
    let fingerprint = format!("{number:064x}");
    FilingIntent {
        intent_id: id.to_string(),
        scan_id: ScanId(format!("scan-{number}")),
        draft: IssueDraft {
            title: format!("[BUG] finding {number}"),
            body: "body".into(),
            labels: vec!["selfmon".into()],
            classification: Classification::ServerBug,
            fingerprint: fingerprint.clone(),
            marker: Marker::for_fingerprint(&fingerprint),
        },
        finding: Finding::new(Classification::ServerBug, format!("finding {number}"), "s"),
        templates: vec![],
        occurrences: 1,
        created_at: t(0),
        backlog_entry_id: None,
    }
}

fn core_source(e: &selfmon_core::Error) -> Option<&Error> {
    std::error::Error::source(e).and_then(|s| s.downcast_ref::<Error>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_state_store_passes_the_core_conformance_suite() {
    let Some(db) = test_db().await else { return };
    let store = PgStateStore::connect(db.url.clone(), db.state_options())
        .await
        .expect("connect");
    selfmon_core::conformance::state_store(&store).await;
    selfmon_core::conformance::template_memory(&store).await;
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_the_lease_lands_no_write_even_after_its_connection_was_cut() {
    let Some(db) = test_db().await else { return };
    let a_name = format!("node-a-{}", db.schema);
    let a = PgStateStore::connect(db.url.with_application_name(&a_name), db.state_options())
        .await
        .expect("a");
    let b = PgStateStore::connect(db.url.clone(), db.state_options())
        .await
        .expect("b");
    let ttl = Duration::from_secs(30);
    let (got, epoch_a) = a.acquire_lease("node-a", ttl, t(0)).await.unwrap();
    assert!(matches!(got, LeaseOutcome::Acquired(_)));
    a.record_intent(&intent("i-1", 1))
        .await
        .expect("holder writes");
    assert!(matches!(
        b.try_acquire_lease("node-b", ttl, t(10)).await.unwrap(),
        LeaseOutcome::Held(_)
    ));

    // Node a stalls past its TTL and its connection is cut; node b takes over.
    let cut: i64 = db
        .client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = $1",
            &[&a_name],
        )
        .await
        .expect("terminate")
        .get(0);
    assert_eq!(cut, 1, "node a's connection was cut");
    let (got, epoch_b) = b.acquire_lease("node-b", ttl, t(31)).await.unwrap();
    assert!(
        matches!(got, LeaseOutcome::Acquired(_)),
        "a dead node's lease frees within one TTL"
    );
    assert!(epoch_b > epoch_a, "a takeover bumps the epoch");

    // Node a comes back (it reconnects) and tries to file: refused, nothing lands.
    let mut refused = 0;
    for _ in 0..2 {
        match a.record_intent(&intent("i-2", 2)).await {
            Err(e) if matches!(core_source(&e), Some(Error::LeaseLost { .. })) => {
                assert!(!e.is_retryable());
                refused += 1;
            }
            Err(e) if e.is_retryable() => continue,
            other => panic!("a write after losing the lease must be refused, got {other:?}"),
        }
    }
    assert!(refused >= 1);
    let issue = FiledIssue::from_intent(
        &intent("i-1", 1),
        IssueRef {
            number: 1,
            url: "u".into(),
            state: IssueState::Open,
        },
        t(40),
    );
    let e = a.complete_intent("i-1", &issue).await.unwrap_err();
    assert!(
        matches!(core_source(&e), Some(Error::LeaseLost { .. })),
        "{e}"
    );
    let e = a.record_occurrences(1, 3, t(40)).await.unwrap_err();
    assert!(
        matches!(core_source(&e), Some(Error::LeaseLost { .. })),
        "{e}"
    );
    let open = b.open_intents().await.unwrap();
    assert_eq!(
        open.len(),
        1,
        "only the write made while holding the lease landed"
    );
    assert_eq!(open[0].intent_id, "i-1");
    assert!(b.filed_issues().await.unwrap().is_empty());
    // The new holder reconciles and writes.
    b.complete_intent("i-1", &issue)
        .await
        .expect("new holder writes");
    assert_eq!(b.filed_issues().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_exclusive_among_many_racing_nodes() {
    let Some(db) = test_db().await else { return };
    let mut tasks = Vec::new();
    for i in 0..8 {
        let url = db.url.clone();
        let opts = db.state_options();
        tasks.push(tokio::spawn(async move {
            let store = PgStateStore::connect(url, opts).await.expect("connect");
            store
                .try_acquire_lease(&format!("node-{i}"), Duration::from_secs(60), t(0))
                .await
                .expect("acquire")
        }));
    }
    let mut acquired = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), LeaseOutcome::Acquired(_)) {
            acquired += 1;
        }
    }
    assert_eq!(acquired, 1, "exactly one node holds the lease");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_at_version_1_is_upgraded_with_its_data_kept() {
    let Some(db) = test_db().await else { return };
    let mut client = db.connect().await;
    assert_eq!(
        schema::migrate_to(&mut client, &db.schema, 1)
            .await
            .unwrap(),
        0
    );
    let s = &db.schema;
    let issue = FiledIssue::from_intent(
        &intent("i-9", 9),
        IssueRef {
            number: 9,
            url: "u9".into(),
            state: IssueState::Open,
        },
        t(5),
    );
    client
        .execute(
            &format!(
                "INSERT INTO {s}.selfmon_issues (number, classification, state, created_at, issue)
                 VALUES (9, 'server_bug', 'open', $1, $2)"
            ),
            &[&t(5), &serde_json::to_value(&issue).unwrap()],
        )
        .await
        .unwrap();
    client
        .execute(
            &format!(
                "INSERT INTO {s}.selfmon_lease (name, owner, expires_at, acquired_at)
                 VALUES ('scan', 'old-node', $1, $2)"
            ),
            &[&t(100), &t(0)],
        )
        .await
        .unwrap();

    let store = PgStateStore::connect(db.url.clone(), db.state_options())
        .await
        .expect("upgrade");
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(store.filed_issues().await.unwrap(), vec![issue]);
    assert!(
        matches!(
            store.try_acquire_lease("new", Duration::from_secs(5), t(50)).await.unwrap(),
            LeaseOutcome::Held(ref l) if l.owner == "old-node"
        ),
        "a lease held across the upgrade stays held"
    );
    let (got, epoch) = store
        .acquire_lease("new", Duration::from_secs(5), t(101))
        .await
        .unwrap();
    assert!(matches!(got, LeaseOutcome::Acquired(_)));
    assert_eq!(epoch, 2, "epochs continue from the upgraded row");
    store
        .record_occurrences(9, 2, t(102))
        .await
        .expect("v2 history");
    assert_eq!(store.filed_issues().await.unwrap()[0].occurrences, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_the_library_is_refused() {
    let Some(db) = test_db().await else { return };
    PgStateStore::connect(db.url.clone(), db.state_options())
        .await
        .expect("connect");
    db.client
        .batch_execute(&format!(
            "UPDATE {}.selfmon_schema_version SET version = 99",
            db.schema
        ))
        .await
        .unwrap();
    let err = PgStateStore::connect(db.url.clone(), db.state_options())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let Some(db) = test_db().await else { return };
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = db.url.clone();
        let opts = db.state_options();
        tasks.push(tokio::spawn(async move {
            PgStateStore::connect(url, opts).await
        }));
    }
    for task in tasks {
        task.await.unwrap().expect("every node connects");
    }
    let n: i64 = db
        .client
        .query_one(
            &format!("SELECT count(*) FROM {}.selfmon_schema_version", db.schema),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}
