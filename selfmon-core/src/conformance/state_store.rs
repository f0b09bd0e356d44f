use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::model::{
    BacklogClosure, BacklogEntry, Classification, FiledIssue, FilingIntent, Finding,
    FindingOutcome, IssueDraft, IssueEventKind, IssueRef, IssueState, Level, LogAnchor, Marker,
    RejectedFindingReport, ScanEffects, ScanId, ScanRecord, ScanReport, ScanStatus, ScanTrigger,
    SignatureFate, SignatureReport, SkippedSignatureReport, MAX_REPORT_SIGNATURES,
};
use crate::redact::{RedactedText, Redactor};
use crate::traits::{
    DedupTier, IssueFilter, IssueLedger, Lease, LeaseHolder, LeaseOutcome, LeaseRenewal,
    PageRequest, ScanLedger, StateStore, TemplateMemory,
};

/// `s` as text that may be stored (through the default redactor).
fn text(s: &str) -> RedactedText {
    Redactor::shared().redacted(s)
}

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
async fn lease_identity_takeover_and_renewal<S: ScanLedger + ?Sized>(store: &S) {
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
            title: Redactor::shared()
                .redacted(&format!("{} finding {number}", class.title_prefix())),
            body: Redactor::shared().redacted("body"),
            labels: vec!["selfmon".into()],
            classification: class,
            fingerprint: fingerprint.clone(),
            marker: Marker::for_fingerprint(&fingerprint),
        },
        finding: Redactor::shared().redacted_finding(Finding::new(
            class,
            format!("finding {number}"),
            "summary",
        )),
        templates: vec![format!("template {number}")],
        occurrences: 1,
        created_at: t(at),
        backlog_entry_id: None,
    }
}

fn entry(id: &str, fingerprint: &str, severity: Level, occurrences: u64, at: i64) -> BacklogEntry {
    BacklogEntry {
        entry_id: id.to_string(),
        fingerprint: fingerprint.to_string(),
        severity,
        finding: Redactor::shared().redacted_finding(Finding::new(
            Classification::ServerBug,
            format!("deferred {id}"),
            "summary",
        )),
        evidence: Vec::new(),
        templates: vec![format!("template {id}")],
        occurrences,
        deferred_by: ScanId("deferring".into()),
        deferred_at: t(at),
    }
}

fn issue_ref(number: u64) -> IssueRef {
    IssueRef {
        number,
        url: format!("https://example.invalid/{number}"),
        state: IssueState::Open,
    }
}

/// Checks a fresh, empty [`StateStore`] against the contract of all its parts: the
/// [`scan_ledger`] and [`issue_ledger`] suites, then [`ScanHistory`](crate::ScanHistory) over what they wrote.
pub async fn state_store<S: StateStore + ?Sized>(store: &S) {
    assert_eq!(
        store
            .list_issues(&IssueFilter::default(), PageRequest::default())
            .await
            .expect("issues")
            .total,
        0,
        "a fresh store lists no issues"
    );
    assert_eq!(
        store
            .list_scans(PageRequest::default())
            .await
            .expect("scans")
            .total,
        0
    );
    scan_ledger(store).await;
    issue_ledger(store).await;
    history_after_ledgers(store).await;
    backlog_and_commits(store).await;
    scan_reports(store).await;
}

/// Checks a fresh, empty [`ScanLedger`]: the lease is exclusive, renewable, released and taken over
/// when expired; the cursor follows the latest successful scan only; abandoned scans are closed.
pub async fn scan_ledger<S: ScanLedger + ?Sized>(store: &S) {
    assert_eq!(
        store.last_successful_cursor().await.expect("cursor"),
        0,
        "cursor is 0 before any scan"
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
    // With a second witness (the last record read, below the cursor's record): both are kept.
    let anchor = LogAnchor {
        id: 41,
        digest: "0123456789abcdef0123456789abcdef".into(),
        last_read: Some(Box::new(LogAnchor {
            id: 37,
            digest: "37373737373737373737373737373737".into(),
            last_read: None,
        })),
    };
    s1.log_anchor = Some(anchor.clone());
    store.finish_scan(&s1).await.expect("finish s1");
    assert_eq!(store.last_successful_cursor().await.expect("cursor"), 42);
    assert_eq!(
        store.last_successful_anchor().await.expect("anchor"),
        Some(anchor.clone()),
        "the anchor of the latest successful scan is kept with the cursor"
    );

    let mut s2 = ScanRecord::started(ScanId("s2".into()), ScanTrigger::Manual, 42, t(20));
    store.begin_scan(&s2).await.expect("begin s2");
    s2.status = ScanStatus::Failure;
    s2.completed_at = Some(t(21));
    s2.error_message = Some(Redactor::shared().redacted("runner failed"));
    s2.analysis_failures = 2;
    s2.log_anchor = Some(LogAnchor {
        id: 50,
        digest: "ffffffffffffffffffffffffffffffff".into(),
        last_read: None,
    });
    store.finish_scan(&s2).await.expect("finish s2");
    assert_eq!(
        store.last_successful_anchor().await.expect("anchor"),
        Some(anchor),
        "a failed scan never moves the anchor"
    );
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
    assert_eq!(
        store.last_successful_anchor().await.expect("anchor"),
        None,
        "the anchor follows the cursor's scan, also when that scan stored none"
    );

    let mut s4 = ScanRecord::started(ScanId("s4".into()), ScanTrigger::Scheduled, 7, t(40));
    s4.analysis_failures = 1;
    store.begin_scan(&s4).await.expect("begin s4");
    assert_eq!(
        store
            .close_abandoned_scans(t(50), &text("process died"))
            .await
            .expect("close"),
        1
    );
}

/// Checks a fresh, empty [`IssueLedger`]: intents round-trip and complete atomically, filed issues
/// round-trip, occurrences accumulate and states follow the tracker.
pub async fn issue_ledger<S: IssueLedger + ?Sized>(store: &S) {
    assert!(store.filed_issues().await.expect("filed").is_empty());
    assert!(store.open_intents().await.expect("intents").is_empty());

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
    assert_eq!(filed[0].regression_noted_for, None, "nothing noted yet");

    // A reported recurrence of a closure: noted, forgotten, and forgotten when the issue is
    // recorded open again (but not when it is recorded closed).
    let noted = |filed: Vec<FiledIssue>| filed[0].regression_noted_for;
    store
        .set_regression_noted(5, Some(t(75)))
        .await
        .expect("note");
    store
        .set_regression_noted(999, Some(t(75)))
        .await
        .expect("noting an issue the ledger never recorded does nothing");
    assert_eq!(
        noted(store.filed_issues().await.expect("filed")),
        Some(t(75))
    );
    store.set_regression_noted(5, None).await.expect("forget");
    assert_eq!(noted(store.filed_issues().await.expect("filed")), None);
    store
        .set_regression_noted(5, Some(t(76)))
        .await
        .expect("note again");
    store
        .set_issue_state(5, IssueState::Closed)
        .await
        .expect("state");
    assert_eq!(
        noted(store.filed_issues().await.expect("filed")),
        Some(t(76)),
        "recording the issue closed keeps the note"
    );
    store
        .set_issue_state(5, IssueState::Open)
        .await
        .expect("state");
    assert_eq!(
        noted(store.filed_issues().await.expect("filed")),
        None,
        "recording the issue open forgets the note"
    );
    store
        .set_issue_state(5, IssueState::Closed)
        .await
        .expect("state");
    let second = intent("intent-2", 6, Classification::DocumentationGap, 80);
    store.record_intent(&second).await.expect("intent 2");
    store
        .complete_intent(
            "intent-2",
            &FiledIssue::from_intent(&second, issue_ref(6), t(80)),
        )
        .await
        .expect("complete 2");

    // Signatures attached at once (outside a scan commit), each once; an unknown issue is no error.
    let ids = |store_filed: Vec<FiledIssue>| {
        store_filed
            .into_iter()
            .find(|i| i.issue.number == 6)
            .map(|i| i.signature_ids)
            .unwrap_or_default()
    };
    let before = ids(store.filed_issues().await.expect("filed"));
    store
        .add_issue_signatures(6, &["sig-new".to_string(), "sig-new".to_string()])
        .await
        .expect("attach");
    store
        .add_issue_signatures(6, &["sig-new".to_string()])
        .await
        .expect("attach again");
    store
        .add_issue_signatures(999, &["sig-new".to_string()])
        .await
        .expect("attaching to an issue the ledger never recorded does nothing");
    let mut expected = before.clone();
    expected.push("sig-new".to_string());
    assert_eq!(
        ids(store.filed_issues().await.expect("filed")),
        expected,
        "an attached signature is added once"
    );

    // Forgetting an issue removes it from the ledger (and from dedup's memory); only once.
    let third = intent("intent-3", 7, Classification::ServerBug, 85);
    store.record_intent(&third).await.expect("intent 3");
    store
        .complete_intent(
            "intent-3",
            &FiledIssue::from_intent(&third, issue_ref(7), t(85)),
        )
        .await
        .expect("complete 3");
    store
        .record_occurrences(7, 2, t(86))
        .await
        .expect("occurrences of 7");
    assert!(store.forget_issue(7).await.expect("forget"), "it had #7");
    let numbers: Vec<u64> = store
        .filed_issues()
        .await
        .expect("filed")
        .iter()
        .map(|i| i.issue.number)
        .collect();
    assert_eq!(numbers, vec![5, 6], "#7 is forgotten, the others stay");
    assert!(
        !store.forget_issue(7).await.expect("forget again"),
        "forgetting twice finds nothing the second time"
    );
    assert!(!store.forget_issue(999).await.expect("forget unknown"));
}

/// [`ScanHistory`](crate::ScanHistory) after [`scan_ledger`] and [`issue_ledger`] ran on the same store: four scans
/// (s1..s4), issues 5 (server bug, closed) and 6 (documentation gap).
async fn history_after_ledgers<S: StateStore + ?Sized>(store: &S) {
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
    assert_eq!(
        page.items[0].analysis_failures, 1,
        "an abandoned scan keeps the count of analysis failures it began with"
    );
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
    assert_eq!(
        rest.items[0].analysis_failures, 2,
        "the count of analysis failures round-trips (the engine reads it back)"
    );

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
}

/// Checks a fresh, empty [`TemplateMemory`]: nothing before the first save, then exactly the latest
/// document saved.
pub async fn template_memory<M: TemplateMemory + ?Sized>(memory: &M) {
    assert_eq!(
        memory.load_template_state().await.expect("load"),
        None,
        "nothing is learned before the first save"
    );
    memory
        .save_template_state("{\"v\":1}")
        .await
        .expect("save templates");
    assert_eq!(
        memory.load_template_state().await.expect("load").as_deref(),
        Some("{\"v\":1}"),
        "the saved document comes back exactly"
    );
    memory
        .save_template_state("{\"v\":2,\"t\":[\"é ✓\"]}")
        .await
        .expect("replace templates");
    assert_eq!(
        memory.load_template_state().await.expect("load").as_deref(),
        Some("{\"v\":2,\"t\":[\"é ✓\"]}"),
        "a save replaces the whole document"
    );
}

/// The backlog, atomic scan commits and dry runs. Runs after the sections above: issues #5
/// (5 occurrences) and #6 (1) exist and the cursor is 7.
async fn backlog_and_commits<S: StateStore + ?Sized>(store: &S) {
    assert!(store.open_backlog().await.expect("backlog").is_empty());

    // A dry run, even a successful one, never moves the cursor.
    let mut dry = ScanRecord::started(ScanId("dry".into()), ScanTrigger::Manual, 7, t(100));
    dry.dry_run = true;
    store.begin_scan(&dry).await.expect("begin dry");
    dry.status = ScanStatus::Success;
    dry.completed_at = Some(t(101));
    dry.log_id_end = 90;
    dry.log_anchor = Some(LogAnchor {
        id: 90,
        digest: "90909090909090909090909090909090".into(),
        last_read: None,
    });
    store.finish_scan(&dry).await.expect("finish dry");
    assert_eq!(
        store.last_successful_anchor().await.expect("anchor"),
        None,
        "a dry run never moves the anchor"
    );
    assert_eq!(
        store.last_successful_cursor().await.expect("cursor"),
        7,
        "a dry run never moves the cursor"
    );
    let listed = store
        .list_scans(PageRequest::default())
        .await
        .expect("list");
    assert!(
        listed
            .items
            .iter()
            .any(|s| s.scan_id.as_str() == "dry" && s.dry_run),
        "a dry run is marked in history"
    );

    // A commit: cursor, occurrences, deferrals and the backlog count, together.
    let mut s5 = ScanRecord::started(ScanId("s5".into()), ScanTrigger::Scheduled, 7, t(110));
    store.begin_scan(&s5).await.expect("begin s5");
    s5.status = ScanStatus::Success;
    s5.completed_at = Some(t(111));
    s5.log_id_end = 20;
    s5.backlog = 3;
    let anchor = LogAnchor {
        id: 19,
        digest: "19191919191919191919191919191919".into(),
        last_read: None,
    };
    s5.log_anchor = Some(anchor.clone());
    let mut effects = ScanEffects::default();
    effects.add_occurrences(5, 2);
    effects.add_occurrences(5, 1);
    effects.add_occurrences(999, 1);
    effects.deferred = vec![
        entry("warn", "f1", Level::Warning, 50, 110),
        entry("crit", "f2", Level::Critical, 1, 110),
        entry("err-many", "f3", Level::Error, 9, 110),
    ];
    store.commit_scan(&s5, &effects).await.expect("commit s5");
    assert_eq!(store.last_successful_cursor().await.expect("cursor"), 20);
    assert_eq!(
        store.last_successful_anchor().await.expect("anchor"),
        Some(anchor),
        "a committed scan's anchor is kept with its cursor"
    );
    let five = store.filed_issues().await.expect("filed");
    assert_eq!(
        five.iter()
            .find(|i| i.issue.number == 5)
            .map(|i| i.occurrences),
        Some(8),
        "committed occurrences add up; unknown issue numbers are ignored"
    );
    let open = store.open_backlog().await.expect("backlog");
    let order: Vec<&str> = open.iter().map(|e| e.entry_id.as_str()).collect();
    assert_eq!(
        order,
        ["crit", "err-many", "warn"],
        "the backlog comes most severe first"
    );
    assert_eq!(open[0], effects.deferred[1], "an entry round-trips intact");
    let s5_listed = store
        .list_scans(PageRequest::default())
        .await
        .expect("list");
    assert_eq!(
        s5_listed
            .items
            .iter()
            .find(|s| s.scan_id.as_str() == "s5")
            .map(|s| s.backlog),
        Some(3),
        "the backlog size is on the scan record"
    );

    // Deferring the same fingerprint again merges; closing gives the covering issue the
    // occurrences; closing twice does nothing.
    let mut s6 = ScanRecord::started(ScanId("s6".into()), ScanTrigger::Scheduled, 20, t(120));
    store.begin_scan(&s6).await.expect("begin s6");
    s6.status = ScanStatus::Success;
    s6.completed_at = Some(t(121));
    s6.log_id_end = 30;
    let closure = BacklogClosure {
        entry_id: "err-many".into(),
        reason: text("covered by #6"),
        issue: Some(6),
    };
    let signatures_of_six = || async {
        store
            .filed_issues()
            .await
            .expect("filed")
            .into_iter()
            .find(|i| i.issue.number == 6)
            .expect("issue 6 is filed")
            .signature_ids
    };
    let six_before = signatures_of_six().await;
    let added = |id: &str, issue: u64| crate::model::IssueSignature {
        issue,
        signature_id: id.into(),
    };
    let effects = ScanEffects {
        deferred: vec![
            entry("warn-again", "f1", Level::Warning, 5, 120),
            entry("same-fp-too", "f2", Level::Critical, 2, 120),
        ],
        closed: vec![closure.clone(), closure.clone()],
        // An escalated signature: added once, however often it is named; unknown issues skipped.
        issue_signatures: vec![
            added("e1e1e1e1e1e1e1e1", 6),
            added("e1e1e1e1e1e1e1e1", 6),
            added("e2e2e2e2e2e2e2e2", 999_999),
        ],
        ..ScanEffects::default()
    };
    store.commit_scan(&s6, &effects).await.expect("commit s6");
    let six_after = signatures_of_six().await;
    let mut expected = six_before.clone();
    expected.push("e1e1e1e1e1e1e1e1".into());
    assert_eq!(
        six_after, expected,
        "a committed issue signature is appended to the issue's, once"
    );
    let open = store.open_backlog().await.expect("backlog");
    let summary: Vec<(&str, u64)> = open
        .iter()
        .map(|e| (e.entry_id.as_str(), e.occurrences))
        .collect();
    assert_eq!(
        summary,
        [("crit", 3), ("warn", 55)],
        "an open entry with the same fingerprint absorbs a new deferral"
    );
    let six = store.filed_issues().await.expect("filed");
    assert_eq!(
        six.iter()
            .find(|i| i.issue.number == 6)
            .map(|i| i.occurrences),
        Some(10),
        "a closed entry's occurrences go to the covering issue, once"
    );
    let closed = store
        .closed_backlog(PageRequest::default())
        .await
        .expect("closed backlog");
    assert_eq!(closed.total, 1);
    assert_eq!(closed.items[0].closure, closure, "the reason is kept");
    assert_eq!(closed.items[0].entry.entry_id, "err-many");

    // Filing from the backlog closes the entry together with the intent.
    let mut from_backlog = intent("intent-b", 7, Classification::ServerBug, 130);
    from_backlog.backlog_entry_id = Some("crit".into());
    from_backlog.occurrences = 3;
    store
        .record_intent(&from_backlog)
        .await
        .expect("record backlog intent");
    assert_eq!(
        store.open_intents().await.expect("intents"),
        vec![from_backlog.clone()],
        "the backlog link round-trips"
    );
    let row = FiledIssue::from_intent(&from_backlog, issue_ref(7), t(131));
    store
        .complete_intent("intent-b", &row)
        .await
        .expect("complete backlog intent");
    let open = store.open_backlog().await.expect("backlog");
    assert_eq!(
        open.iter().map(|e| e.entry_id.as_str()).collect::<Vec<_>>(),
        ["warn"],
        "completing the intent closes its backlog entry"
    );
    let seven = store.filed_issues().await.expect("filed");
    assert_eq!(
        seven
            .iter()
            .find(|i| i.issue.number == 7)
            .map(|i| i.occurrences),
        Some(3),
        "the entry's occurrences come with the filing, not twice"
    );
    let closed = store
        .closed_backlog(PageRequest::default())
        .await
        .expect("closed backlog");
    assert_eq!(closed.total, 2);
    assert_eq!(
        closed.items[0].entry.entry_id, "crit",
        "most recently closed first"
    );
    assert_eq!(closed.items[0].closure.issue, Some(7));
}

fn signature(id: &str, fate: SignatureFate) -> SignatureReport {
    SignatureReport {
        id: id.to_string(),
        template: text(&format!("template of {id}")),
        level: Level::Error,
        count: 3,
        fate,
    }
}

/// A report exercising every kind of entry.
fn full_report(record: ScanRecord) -> ScanReport {
    let mut r = ScanReport::new(record);
    r.warnings = vec![crate::model::ScanWarning {
        kind: "commit_horizon_held".into(),
        message: text("held back by pid 7"),
    }];
    r.signatures = vec![
        signature(
            "known",
            SignatureFate::Known {
                issue: 5,
                tier: DedupTier::ErrorCode,
                closed: false,
            },
        ),
        signature(
            "ignored",
            SignatureFate::Ignored {
                rule: "ignore.codes: GIT-SYNC-001".into(),
            },
        ),
        signature("novel", SignatureFate::Analysed),
    ];
    r.outcomes = vec![
        FindingOutcome::Filed {
            title: text("[BUG] filed"),
            issue: issue_ref(7),
        },
        FindingOutcome::Duplicate {
            title: text("dup"),
            issue: 5,
            reason: text("same error code"),
            tier: Some(DedupTier::ErrorCode),
            score: Some(1.0),
        },
        FindingOutcome::Deferred {
            title: text("later"),
            reason: text("budget spent"),
            backlog_position: Some(1),
        },
    ];
    r.rejected = vec![RejectedFindingReport {
        title: text("bad"),
        reasons: vec![text("evidence outside the scanned range")],
    }];
    r.skipped = vec![SkippedSignatureReport {
        signature_id: "novel".into(),
        reason: text("a one-off ERROR"),
    }];
    r.runner = Some("offline".into());
    r.digest_sent = Some(text("digest").fenced("B"));
    r.previous_cursor = Some(99);
    r
}

/// Checks the scan-report part of the contract: round trip, replacement, the stored record is
/// authoritative, scans without a report, bounds, and issue histories.
async fn scan_reports<S: StateStore + ?Sized>(store: &S) {
    assert_eq!(
        store
            .scan_report(&ScanId("no-such-scan".into()))
            .await
            .expect("report of an unknown scan"),
        None,
        "an unknown scan id has no report"
    );
    let no_report = store
        .scan_report(&ScanId("s2".into()))
        .await
        .expect("report of s2")
        .expect("s2 exists");
    assert!(
        !no_report.details_recorded,
        "a scan without a saved report says so"
    );
    assert_eq!(no_report.record.scan_id.as_str(), "s2");
    assert!(no_report.outcomes.is_empty() && no_report.signatures.is_empty());

    let cursor = store.last_successful_cursor().await.expect("cursor");
    let mut r1 = ScanRecord::started(ScanId("r1".into()), ScanTrigger::Manual, 7, t(100));
    store.begin_scan(&r1).await.expect("begin r1");
    r1.status = ScanStatus::Success;
    r1.completed_at = Some(t(101));
    r1.log_id_end = 9;
    let mut first = full_report(r1.clone());
    first.runner = Some("first save".into());
    store.save_scan_report(&first).await.expect("save r1");
    let report = full_report(r1.clone());
    store
        .save_scan_report(&report)
        .await
        .expect("save r1 again");
    r1.status = ScanStatus::Failure;
    r1.error_message = Some(Redactor::shared().redacted("failed after the report"));
    store.finish_scan(&r1).await.expect("finish r1");
    let loaded = store
        .scan_report(&ScanId("r1".into()))
        .await
        .expect("load r1")
        .expect("r1 exists");
    assert_eq!(
        loaded.record, r1,
        "the stored scan record is authoritative over the report's copy"
    );
    assert_eq!(
        ScanReport {
            record: r1.clone(),
            ..loaded.clone()
        },
        ScanReport {
            record: r1.clone(),
            ..report.clone()
        },
        "a report round-trips intact, the later save replacing the earlier"
    );

    // Bounds: an oversized report is cut as ScanReport::bound cuts it.
    let mut r2 = ScanRecord::started(ScanId("r2".into()), ScanTrigger::Scheduled, 9, t(200));
    store.begin_scan(&r2).await.expect("begin r2");
    // Failed scans here, so the cursor stays where the scans above left it.
    r2.status = ScanStatus::Failure;
    r2.completed_at = Some(t(201));
    let mut big = ScanReport::new(r2.clone());
    big.signatures = (0..MAX_REPORT_SIGNATURES + 20)
        .map(|i| signature(&format!("s{i}"), SignatureFate::Analysed))
        .collect();
    big.outcomes = vec![FindingOutcome::Commented {
        title: text("related"),
        issue: 5,
        reason: text("similar"),
        score: Some(0.8),
    }];
    store.save_scan_report(&big).await.expect("save r2");
    store.finish_scan(&r2).await.expect("finish r2");
    let loaded = store
        .scan_report(&ScanId("r2".into()))
        .await
        .expect("load r2")
        .expect("r2 exists");
    let mut bounded = big.clone();
    bounded.bound();
    assert_eq!(loaded.signatures.len(), MAX_REPORT_SIGNATURES);
    assert_eq!(loaded.omitted.signatures, 20, "what was cut is counted");
    assert_eq!(loaded.signatures, bounded.signatures);

    // A dry run touches no issue's history.
    let mut dry = ScanRecord::started(ScanId("r3".into()), ScanTrigger::Manual, 9, t(300));
    dry.dry_run = true;
    store.begin_scan(&dry).await.expect("begin r3");
    dry.status = ScanStatus::Failure;
    dry.completed_at = Some(t(301));
    store
        .save_scan_report(&full_report(dry.clone()))
        .await
        .expect("save r3");
    store.finish_scan(&dry).await.expect("finish r3");

    let history = store
        .issue_history(5, PageRequest::default())
        .await
        .expect("history of #5");
    let kinds: Vec<(String, IssueEventKind)> = history
        .items
        .iter()
        .map(|e| (e.scan_id.to_string(), e.kind))
        .collect();
    assert_eq!(history.total, 3);
    assert_eq!(
        kinds[0],
        ("r2".to_string(), IssueEventKind::Commented),
        "newest first"
    );
    assert!(kinds[1..].contains(&("r1".to_string(), IssueEventKind::KnownSignature)));
    assert!(kinds[1..].contains(&("r1".to_string(), IssueEventKind::Duplicate)));
    assert_eq!(history.items[0].at, t(201));
    let filed = store
        .issue_history(7, PageRequest::default())
        .await
        .expect("history of #7");
    assert_eq!(
        (filed.total, filed.items[0].kind),
        (1, IssueEventKind::Filed),
        "the filing scan is in the history; the dry run is not"
    );
    assert_eq!(
        store.last_successful_cursor().await.expect("cursor"),
        cursor,
        "saving reports never moves the cursor"
    );
    assert_eq!(
        store
            .issue_history(404, PageRequest::default())
            .await
            .expect("history of an unknown issue")
            .total,
        0
    );
}
