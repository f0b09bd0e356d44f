//! PgStateStore against a real PostgreSQL server.

mod support;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use selfmon_core::redact::Redactor;
use selfmon_core::{
    Classification, FiledIssue, FilingIntent, Finding, FindingOutcome, IssueDraft, IssueLedger,
    IssueRef, IssueState, LeaseOutcome, Marker, PageRequest, ScanHistory, ScanId, ScanLedger,
    ScanRecord, ScanReport, ScanStatus, ScanTrigger,
};
use selfmon_postgres::{schema, Error, PgStateStore, PgStateStoreOptions, SCHEMA_VERSION};
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
            title: Redactor::shared().redacted(&format!("[BUG] finding {number}")),
            body: Redactor::shared().redacted("body"),
            labels: vec!["selfmon".into()],
            classification: Classification::ServerBug,
            fingerprint: fingerprint.clone(),
            marker: Marker::for_fingerprint(&fingerprint),
        },
        finding: Redactor::shared().redacted_finding(Finding::new(
            Classification::ServerBug,
            format!("finding {number}"),
            "s",
        )),
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

/// Outbox and backlog rows written before their findings and evidence were typed
/// (`RedactedFinding`, `RedactedSignature`), or by another writer, may hold a secret in clear:
/// they still load, and the findings and evidence read back are redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_in_outbox_and_backlog_rows_written_before_they_were_typed_load_redacted() {
    const KEY: &str = "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
    let Some(db) = test_db().await else { return };
    let store = PgStateStore::connect(db.url.clone(), db.state_options())
        .await
        .expect("connect");
    selfmon_core::conformance::state_store(&store).await;
    store.record_intent(&intent("leaky", 99)).await.unwrap();
    let leak = format!("quotes {KEY}");
    let finding = serde_json::json!({
        "classification": "server_bug", "title": leak, "summary": leak,
        "evidence_record_ids": [1], "error_codes": [], "source_files": [format!("app/{KEY}.py")],
        "error_type": leak, "signature_ids": [], "suspected_cause": leak, "suggested_fix": leak
    })
    .to_string();
    let evidence = serde_json::json!([{
        "id": "abc", "level": "ERROR", "source": leak, "template": leak,
        "template_fingerprint": "00ee", "error_codes": [], "count": 2, "first_id": 1,
        "last_id": 2, "first_timestamp": "t0", "last_timestamp": "t1", "sample_ids": [1],
        "sample_messages": [leak], "distinct_correlation_ids": 0, "repeated": false,
        "has_traceback": false, "nodes": [leak]
    }])
    .to_string();
    let s = &db.schema;
    db.client
        .execute(
            &format!(
                "UPDATE {s}.selfmon_intents SET intent = jsonb_set(intent, '{{finding}}', ($1::text)::jsonb)"
            ),
            &[&finding],
        )
        .await
        .unwrap();
    db.client
        .execute(
            &format!(
                "UPDATE {s}.selfmon_backlog SET entry = jsonb_set(jsonb_set(entry, '{{finding}}', ($1::text)::jsonb), '{{evidence}}', ($2::text)::jsonb)"
            ),
            &[&finding, &evidence],
        )
        .await
        .unwrap();

    let intents = store.open_intents().await.unwrap();
    let open = store.open_backlog().await.unwrap();
    let closed = store
        .closed_backlog(PageRequest::default())
        .await
        .unwrap()
        .items;
    assert!(!intents.is_empty() && !closed.is_empty());
    let read = [
        serde_json::to_string(&intents).unwrap(),
        serde_json::to_string(&open).unwrap(),
        serde_json::to_string(&closed).unwrap(),
    ]
    .join("\n");
    assert!(!read.contains(KEY), "{read}");
    // Per finding 5 texts quote the leak (title, summary, error type, cause, fix); an entry
    // adds 4 in its evidence (logger, template, sample, node).
    assert!(
        read.matches("quotes [REDACTED:github_token]").count()
            >= 5 * intents.len() + 9 * (open.len() + closed.len()),
        "{read}"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_old_scans_with_their_reports_and_events_but_never_running_scans_the_cursor_or_issues(
) {
    let Some(db) = test_db().await else { return };
    let store = PgStateStore::connect(
        db.url.clone(),
        PgStateStoreOptions {
            retention_days: 30,
            ..db.state_options()
        },
    )
    .await
    .expect("connect");
    let day = 86_400;
    let scan = |id: &str, status: ScanStatus, start: i64, end: i64, dry_run: bool| {
        let mut s = ScanRecord::started(ScanId(id.into()), ScanTrigger::Scheduled, 0, t(start));
        s.status = status;
        s.log_id_end = end;
        s.dry_run = dry_run;
        if status != ScanStatus::Running {
            s.completed_at = Some(t(start + 10));
        }
        s
    };
    for s in [
        scan("old-success", ScanStatus::Success, 0, 10, false),
        scan("old-failure", ScanStatus::Failure, day, 10, false),
        scan(
            "latest-success-but-old",
            ScanStatus::Success,
            2 * day,
            20,
            false,
        ),
        // A later dry run is no cursor: it must not shield itself and expose the real one.
        scan("old-dry-run", ScanStatus::Success, 2 * day + 100, 30, true),
        scan("old-running", ScanStatus::Running, 3 * day, 20, false),
        scan("recent-failure", ScanStatus::Failure, 99 * day, 20, false),
    ] {
        store.begin_scan(&s).await.unwrap();
        let mut report = ScanReport::new(s.clone());
        report.outcomes.push(FindingOutcome::Commented {
            title: Redactor::shared().redacted("related"),
            issue: 1,
            reason: Redactor::shared().redacted("similar"),
            score: Some(0.9),
        });
        store.save_scan_report(&report).await.unwrap();
        if s.status != ScanStatus::Running {
            store.finish_scan(&s).await.unwrap();
        }
    }
    let i = intent("a", 1);
    store.record_intent(&i).await.unwrap();
    let mut row = FiledIssue::from_intent(
        &i,
        IssueRef {
            number: 1,
            url: "u1".into(),
            state: IssueState::Open,
        },
        t(0),
    );
    row.scan_id = ScanId("old-success".into());
    store.complete_intent(&i.intent_id, &row).await.unwrap();
    store.record_occurrences(1, 2, t(5)).await.unwrap();
    store.record_occurrences(1, 3, t(99 * day)).await.unwrap();
    let history_before = store
        .issue_history(1, PageRequest::default())
        .await
        .unwrap()
        .total;

    let report = store.prune(t(100 * day)).await.unwrap();
    assert_eq!(report.scans_deleted, 3, "{report:?}");
    assert_eq!(report.occurrences_deleted, 1, "{report:?}");
    assert_eq!(report.reports_deleted, 3, "reports go with their scans");
    for gone in ["old-success", "old-failure", "old-dry-run"] {
        assert!(
            store
                .scan_report(&ScanId(gone.into()))
                .await
                .unwrap()
                .is_none(),
            "{gone}'s report"
        );
    }
    assert!(store
        .scan_report(&ScanId("latest-success-but-old".into()))
        .await
        .unwrap()
        .is_some());
    let history = store
        .issue_history(1, PageRequest::default())
        .await
        .unwrap();
    // A dry run records no issue events; the two other pruned scans' events go.
    assert_eq!(history_before, 5);
    assert_eq!(
        history.total, 3,
        "the issue events of pruned scans are pruned too"
    );
    let left: Vec<String> = store
        .list_scans(PageRequest::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.scan_id.0)
        .collect();
    assert_eq!(
        left,
        ["recent-failure", "old-running", "latest-success-but-old"]
    );
    assert_eq!(store.last_successful_cursor().await.unwrap(), 20);
    let issues = store.filed_issues().await.unwrap();
    assert_eq!(issues.len(), 1, "issue rows are never pruned");
    assert_eq!(
        issues[0].occurrences,
        1 + 2 + 3,
        "the running total is kept"
    );
    let occurrences: i64 = db
        .client
        .query_one(
            &format!("SELECT count(*) FROM {}.selfmon_occurrences", db.schema),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(occurrences, 1, "only the recent occurrence row is left");

    // Pruning again removes nothing more: what is left is all kept on purpose.
    let again = store.prune(t(100 * day)).await.unwrap();
    assert_eq!(again, Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_at_every_older_version_migrates_forward_keeping_scans_and_the_outbox() {
    for version in 1..SCHEMA_VERSION {
        let Some(db) = test_db().await else { return };
        let mut client = db.connect().await;
        schema::migrate_to(&mut client, &db.schema, version)
            .await
            .unwrap();
        let s = &db.schema;
        let mut done = ScanRecord::started(ScanId("v-old".into()), ScanTrigger::Scheduled, 0, t(0));
        done.status = ScanStatus::Success;
        done.log_id_end = 42;
        done.completed_at = Some(t(10));
        let running =
            ScanRecord::started(ScanId("v-running".into()), ScanTrigger::Manual, 42, t(20));
        for r in [&done, &running] {
            client
                .execute(
                    &format!(
                        "INSERT INTO {s}.selfmon_scans
                         (scan_id, status, started_at, completed_at, log_id_end, record)
                         VALUES ($1, $2, $3, $4, $5, $6)"
                    ),
                    &[
                        &r.scan_id.as_str(),
                        &r.status.as_str(),
                        &r.started_at,
                        &r.completed_at,
                        &r.log_id_end,
                        &serde_json::to_value(r).unwrap(),
                    ],
                )
                .await
                .unwrap();
        }
        let pending = intent("pending", 7);
        client
            .execute(
                &format!(
                    "INSERT INTO {s}.selfmon_intents (intent_id, created_at, intent)
                     VALUES ($1, $2, $3)"
                ),
                &[
                    &pending.intent_id,
                    &pending.created_at,
                    &serde_json::to_value(&pending).unwrap(),
                ],
            )
            .await
            .unwrap();

        let store = PgStateStore::connect(db.url.clone(), db.state_options())
            .await
            .unwrap_or_else(|e| panic!("upgrade from v{version}: {e}"));
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        assert_eq!(
            store.last_successful_cursor().await.unwrap(),
            42,
            "v{version}: the cursor survives"
        );
        assert_eq!(
            store.open_intents().await.unwrap(),
            vec![pending.clone()],
            "v{version}: the outbox survives"
        );
        assert_eq!(
            store
                .close_abandoned_scans(t(30), &Redactor::shared().redacted("upgraded"))
                .await
                .unwrap(),
            1,
            "v{version}: a scan left running before the upgrade is closed after it"
        );
        // Everything added since works on the upgraded rows.
        let issue = FiledIssue::from_intent(
            &pending,
            IssueRef {
                number: 7,
                url: "u7".into(),
                state: IssueState::Open,
            },
            t(40),
        );
        store.complete_intent("pending", &issue).await.unwrap();
        store.record_occurrences(7, 1, t(41)).await.unwrap();
        let mut report = ScanReport::new(done.clone());
        report.outcomes.push(FindingOutcome::Commented {
            title: Redactor::shared().redacted("t"),
            issue: 7,
            reason: Redactor::shared().redacted("r"),
            score: None,
        });
        store.save_scan_report(&report).await.unwrap();
        assert!(store.scan_report(&done.scan_id).await.unwrap().is_some());
        let (got, _) = store
            .acquire_lease("after-upgrade", Duration::from_secs(60), t(50))
            .await
            .unwrap();
        assert!(matches!(got, LeaseOutcome::Acquired(_)), "v{version}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_whose_renewal_found_the_lease_gone_stays_fenced_until_it_releases() {
    let Some(db) = test_db().await else { return };
    let a = PgStateStore::connect(db.url.clone(), db.state_options())
        .await
        .expect("a");
    let b = PgStateStore::connect(db.url.clone(), db.state_options())
        .await
        .expect("b");
    let ttl = Duration::from_secs(30);
    let LeaseOutcome::Acquired(lease_a) = a.try_acquire_lease("node-a", ttl, t(0)).await.unwrap()
    else {
        panic!("a takes the free lease")
    };
    // Node a stalls; node b takes the expired lease over, scans, and releases it.
    let LeaseOutcome::Acquired(lease_b) = b.try_acquire_lease("node-b", ttl, t(31)).await.unwrap()
    else {
        panic!("b takes the expired lease over")
    };
    b.release_lease(&lease_b).await.unwrap();
    // Node a wakes: its renewal finds the lease gone, and its scan's last writes must not land,
    // although nobody holds the lease now.
    assert!(matches!(
        a.renew_lease(&lease_a, ttl, t(40)).await.unwrap(),
        selfmon_core::LeaseRenewal::Lost(_)
    ));
    let mut late = ScanRecord::started(ScanId("late".into()), ScanTrigger::Scheduled, 0, t(0));
    late.status = ScanStatus::Failure;
    late.completed_at = Some(t(41));
    for e in [
        a.finish_scan(&late).await.unwrap_err(),
        a.record_intent(&intent("late", 1)).await.unwrap_err(),
    ] {
        assert!(
            matches!(core_source(&e), Some(Error::LeaseLost { .. })),
            "{e}"
        );
    }
    assert!(b
        .list_scans(PageRequest::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(b.open_intents().await.unwrap().is_empty());
    // Once the scan has released (ended), the store writes unfenced again, as one that never
    // took the lease (a dashboard) does.
    a.release_lease(&lease_a).await.unwrap();
    a.record_intent(&intent("dashboard", 2)).await.unwrap();
}
