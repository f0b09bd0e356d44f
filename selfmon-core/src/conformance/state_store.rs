use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::model::{
    Classification, FiledIssue, FilingIntent, Finding, IssueDraft, IssueRef, IssueState, Marker,
    ScanId, ScanRecord, ScanStatus, ScanTrigger,
};
use crate::traits::{
    IssueFilter, Lease, LeaseHolder, LeaseOutcome, LeaseRenewal, PageRequest, StateStore,
};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0)
        .single()
        .unwrap_or_default()
}

fn holder(owner: &str, pid: u32) -> LeaseHolder {
    LeaseHolder {
        owner: owner.to_string(),
        host: "host-a".to_string(),
        pid: Some(pid),
        process_start: Some(format!("boot=b;pidns=n;start={pid}")),
    }
}

fn acquired(outcome: LeaseOutcome, what: &str) -> Lease {
    match outcome {
        LeaseOutcome::Acquired(l) => l,
        LeaseOutcome::Held(l) => panic!("{what}: expected the lease, held by {}", l.owner),
    }
}

/// The identity a lease records, takeover as a compare-and-swap, renewal, and a holder learning
/// it lost the lease. Runs on a store whose earlier leases all expired before `t(1000)`.
async fn lease_identity_takeover_and_renewal<S: StateStore + ?Sized>(store: &S) {
    let ttl = Duration::from_secs(60);
    let d = acquired(
        store
            .try_acquire_lease_for(&holder("d", 11), ttl, t(1000))
            .await
            .expect("lease d"),
        "an expired lease is grantable",
    );
    assert_eq!(
        (d.host.as_str(), d.pid, d.process_start.as_deref()),
        ("host-a", Some(11), Some("boot=b;pidns=n;start=11")),
        "the lease records the holder's identity"
    );
    assert_eq!((d.acquired_at, d.expires_at), (t(1000), t(1060)));
    match store
        .try_acquire_lease_for(&holder("e", 12), ttl, t(1001))
        .await
        .expect("lease e")
    {
        LeaseOutcome::Held(held) => assert_eq!(
            held, d,
            "a refusal returns the current lease with its identity"
        ),
        other => panic!("a held lease must be refused, got {other:?}"),
    }
    // Renewal extends the holder's lease, even once it expired if nobody took it.
    match store.renew_lease(&d, ttl, t(1070)).await.expect("renew d") {
        LeaseRenewal::Renewed(l) => {
            assert_eq!((l.owner.as_str(), l.expires_at), ("d", t(1130)));
            assert_eq!(l.acquired_at, t(1000), "renewal keeps the acquisition time");
        }
        other => panic!("the holder must be able to renew, got {other:?}"),
    }
    // Takeover of an unexpired lease by a caller that proved its holder dead.
    let e = acquired(
        store
            .take_over_lease(&d, &holder("e", 12), ttl, t(1080))
            .await
            .expect("take over d"),
        "taking over the current lease",
    );
    assert_eq!((e.owner.as_str(), e.pid), ("e", Some(12)));
    // A second taker that saw the same stale lease loses the race.
    match store
        .take_over_lease(&d, &holder("f", 13), ttl, t(1081))
        .await
        .expect("take over d again")
    {
        LeaseOutcome::Held(l) => assert_eq!(l.owner, "e", "takeover is a compare-and-swap"),
        other => panic!("a stale takeover must fail, got {other:?}"),
    }
    // The old holder learns it lost the lease, and its release does not free e's.
    match store.renew_lease(&d, ttl, t(1082)).await.expect("renew d") {
        LeaseRenewal::Lost(Some(l)) => assert_eq!(l.owner, "e"),
        other => panic!("a holder that was taken over must learn it, got {other:?}"),
    }
    store.release_lease(&d).await.expect("stale release");
    assert!(matches!(
        store
            .try_acquire_lease_for(&holder("g", 14), ttl, t(1083))
            .await
            .expect("g"),
        LeaseOutcome::Held(ref l) if l.owner == "e"
    ));
    store.release_lease(&e).await.expect("release e");
    match store.renew_lease(&e, ttl, t(1084)).await.expect("renew e") {
        LeaseRenewal::Lost(None) => {}
        other => panic!("a released lease cannot be renewed, got {other:?}"),
    }
}

fn intent(id: &str, number: u64, class: Classification, at: i64) -> FilingIntent {
    let fingerprint = format!("{number:064x}");
    FilingIntent {
        intent_id: id.to_string(),
        scan_id: ScanId(format!("scan-{number}")),
        draft: IssueDraft {
            title: format!("{} finding {number}", class.title_prefix()),
            body: "body".into(),
            labels: vec!["selfmon".into()],
            classification: class,
            fingerprint: fingerprint.clone(),
            marker: Marker::for_fingerprint(&fingerprint),
        },
        finding: Finding::new(class, format!("finding {number}"), "summary"),
        templates: vec![format!("template {number}")],
        occurrences: 1,
        created_at: t(at),
    }
}

fn issue_ref(number: u64) -> IssueRef {
    IssueRef {
        number,
        url: format!("https://example.invalid/{number}"),
        state: IssueState::Open,
    }
}

/// Checks a fresh, empty [`StateStore`] against the trait contract.
pub async fn state_store(store: &dyn StateStore) {
    // Fresh.
    assert_eq!(
        store.last_successful_cursor().await.expect("cursor"),
        0,
        "cursor is 0 before any scan"
    );
    assert!(store.filed_issues().await.expect("filed").is_empty());
    assert!(store.open_intents().await.expect("intents").is_empty());
    assert_eq!(
        store
            .list_scans(PageRequest::default())
            .await
            .expect("scans")
            .total,
        0
    );

    // Lease: exclusive, renewable by its owner, released, taken over when expired.
    let ttl = Duration::from_secs(60);
    let a = match store
        .try_acquire_lease("a", ttl, t(0))
        .await
        .expect("lease a")
    {
        LeaseOutcome::Acquired(l) => l,
        other => panic!("a fresh store must grant the lease, got {other:?}"),
    };
    assert!(
        matches!(store.try_acquire_lease("b", ttl, t(1)).await.expect("lease b"), LeaseOutcome::Held(ref l) if l.owner == "a"),
        "a held lease must be refused to others"
    );
    store.release_lease(&a).await.expect("release");
    let b = match store
        .try_acquire_lease("b", ttl, t(2))
        .await
        .expect("lease b2")
    {
        LeaseOutcome::Acquired(l) => l,
        other => panic!("a released lease must be grantable, got {other:?}"),
    };
    assert!(matches!(
        store.try_acquire_lease("c", ttl, t(3)).await.expect("c"),
        LeaseOutcome::Held(_)
    ));
    assert!(
        matches!(
            store
                .try_acquire_lease("c", ttl, t(2 + 61))
                .await
                .expect("c expired"),
            LeaseOutcome::Acquired(_)
        ),
        "an expired lease must be taken over"
    );
    store
        .release_lease(&b)
        .await
        .expect("releasing a lease no longer held is a no-op");
    lease_identity_takeover_and_renewal(store).await;

    // Scans and the cursor.
    let mut s1 = ScanRecord::started(ScanId("s1".into()), ScanTrigger::Scheduled, 0, t(10));
    store.begin_scan(&s1).await.expect("begin s1");
    s1.status = ScanStatus::Success;
    s1.completed_at = Some(t(11));
    s1.log_id_end = 42;
    s1.records_read = 42;
    store.finish_scan(&s1).await.expect("finish s1");
    assert_eq!(store.last_successful_cursor().await.expect("cursor"), 42);

    let mut s2 = ScanRecord::started(ScanId("s2".into()), ScanTrigger::Manual, 42, t(20));
    store.begin_scan(&s2).await.expect("begin s2");
    s2.status = ScanStatus::Failure;
    s2.completed_at = Some(t(21));
    s2.error_message = Some("runner failed".into());
    store.finish_scan(&s2).await.expect("finish s2");
    assert_eq!(
        store.last_successful_cursor().await.expect("cursor"),
        42,
        "a failed scan never moves the cursor"
    );

    let mut s3 = ScanRecord::started(ScanId("s3".into()), ScanTrigger::Scheduled, 0, t(30));
    s3.cursor_reset = true;
    store.begin_scan(&s3).await.expect("begin s3");
    s3.status = ScanStatus::Success;
    s3.completed_at = Some(t(31));
    s3.log_id_end = 7;
    store.finish_scan(&s3).await.expect("finish s3");
    assert_eq!(
        store.last_successful_cursor().await.expect("cursor"),
        7,
        "the cursor is the latest successful scan's end, even when lower (log recreated)"
    );

    let s4 = ScanRecord::started(ScanId("s4".into()), ScanTrigger::Scheduled, 7, t(40));
    store.begin_scan(&s4).await.expect("begin s4");
    assert_eq!(
        store
            .close_abandoned_scans(t(50), "process died")
            .await
            .expect("close"),
        1
    );
    let page = store
        .list_scans(PageRequest {
            offset: 0,
            limit: 2,
        })
        .await
        .expect("list");
    assert_eq!(page.total, 4, "total counts every scan");
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[0].scan_id.as_str(), "s4", "newest first");
    assert_eq!(
        page.items[0].status,
        ScanStatus::Failure,
        "abandoned scans are closed as FAILURE"
    );
    assert_eq!(page.items[0].completed_at, Some(t(50)));
    assert_eq!(page.items[0].error_message.as_deref(), Some("process died"));
    let rest = store
        .list_scans(PageRequest {
            offset: 2,
            limit: 10,
        })
        .await
        .expect("list 2");
    assert_eq!(rest.items.len(), 2);
    assert_eq!(rest.items[1].scan_id.as_str(), "s1");
    assert_eq!(rest.items[1].records_read, 42, "scan fields round-trip");
    assert_eq!(
        rest.items[0].error_message.as_deref(),
        Some("runner failed")
    );

    // Outbox.
    let first = intent("intent-1", 5, Classification::ServerBug, 60);
    store.record_intent(&first).await.expect("record intent");
    let open = store.open_intents().await.expect("open intents");
    assert_eq!(open, vec![first.clone()], "an intent round-trips intact");
    let row = FiledIssue::from_intent(&first, issue_ref(5), t(60));
    store
        .complete_intent("intent-1", &row)
        .await
        .expect("complete");
    assert!(
        store.open_intents().await.expect("open").is_empty(),
        "a completed intent is gone"
    );
    let filed = store.filed_issues().await.expect("filed");
    assert_eq!(filed.len(), 1);
    assert_eq!(filed[0], row, "a filed issue round-trips intact");

    // Occurrences, state, filters.
    store
        .record_occurrences(5, 4, t(70))
        .await
        .expect("occurrences");
    store
        .set_issue_state(5, IssueState::Closed)
        .await
        .expect("state");
    let filed = store.filed_issues().await.expect("filed");
    assert_eq!(filed[0].occurrences, 5, "occurrences accumulate");
    assert_eq!(filed[0].last_seen_at, t(70));
    assert_eq!(filed[0].issue.state, IssueState::Closed);
    let second = intent("intent-2", 6, Classification::DocumentationGap, 80);
    store.record_intent(&second).await.expect("intent 2");
    store
        .complete_intent(
            "intent-2",
            &FiledIssue::from_intent(&second, issue_ref(6), t(80)),
        )
        .await
        .expect("complete 2");
    let docs = store
        .list_issues(
            &IssueFilter {
                classification: Some(Classification::DocumentationGap),
                state: None,
            },
            PageRequest::default(),
        )
        .await
        .expect("filter");
    assert_eq!((docs.total, docs.items[0].issue.number), (1, 6));
    let closed = store
        .list_issues(
            &IssueFilter {
                classification: None,
                state: Some(IssueState::Closed),
            },
            PageRequest::default(),
        )
        .await
        .expect("filter state");
    assert_eq!((closed.total, closed.items[0].issue.number), (1, 5));
    let all = store
        .list_issues(
            &IssueFilter::default(),
            PageRequest {
                offset: 0,
                limit: 1,
            },
        )
        .await
        .expect("all");
    assert_eq!(
        (all.total, all.items.len(), all.items[0].issue.number),
        (2, 1, 6),
        "newest issue first"
    );

    // Template state: either kept exactly or not kept at all.
    store
        .save_template_state("{\"v\":1}")
        .await
        .expect("save templates");
    let loaded = store.load_template_state().await.expect("load templates");
    assert!(loaded.is_none() || loaded.as_deref() == Some("{\"v\":1}"));
}
