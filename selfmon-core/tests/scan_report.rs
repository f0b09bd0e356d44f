//! The persisted per-scan report: every signature's and every finding's fate is explained and
//! stored, and issues get a dedup history.

mod common;

use std::sync::Arc;

use common::{rig, rig_with};
use selfmon_core::offline::OfflineRunner;
use selfmon_core::testing::ScriptedRunner;
use selfmon_core::{
    Analysis, Classification, Finding, FindingOutcome, IssueEventKind, Level, PageRequest,
    ScanHistory, ScanTrigger, SelfMonitoringConfig, SignatureFate,
};

#[tokio::test]
async fn stored_report_explains_ignored_deferred_and_runner_skipped_signatures() {
    let mut config = SelfMonitoringConfig {
        max_new_issues_per_scan: 1,
        ..Default::default()
    };
    config.ignore.codes.push("NOISE-XY-001".into());
    let r = rig_with(Arc::new(OfflineRunner), config);
    for (code, what) in [
        ("SUB-CAT-001", "alpha"),
        ("SUB-CAT-002", "beta"),
        ("SUB-CAT-003", "gamma"),
    ] {
        r.logs.log(
            Level::Critical,
            "app",
            &format!("[{code}] distinct failure {what}"),
        );
    }
    r.logs.log(
        Level::Error,
        "app.web",
        "request to upstream timed out once",
    );
    r.logs
        .log(Level::Error, "app", "[NOISE-XY-001] known noise");
    let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    let stored = r
        .store
        .scan_report(&report.record.scan_id)
        .await
        .unwrap()
        .expect("the scan's report is stored");
    assert!(stored.details_recorded);
    assert_eq!(stored.record, report.record);
    assert_eq!(stored.record.issues_created, 1);

    let ignored: Vec<&str> = stored
        .signatures
        .iter()
        .filter_map(|s| match &s.fate {
            SignatureFate::Ignored { rule } => Some(rule.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ignored, ["ignore.codes: NOISE-XY-001"], "the rule is named");
    let analysed = stored
        .signatures
        .iter()
        .filter(|s| s.fate == SignatureFate::Analysed)
        .count();
    assert_eq!(analysed, 4);

    let deferred: Vec<(&str, Option<u64>)> = stored
        .outcomes
        .iter()
        .filter_map(|o| match o {
            FindingOutcome::Deferred {
                reason,
                backlog_position,
                ..
            } => Some((reason.as_str(), *backlog_position)),
            _ => None,
        })
        .collect();
    assert_eq!(deferred.len(), 2);
    assert!(deferred[0].0.contains("max_new_issues_per_scan = 1"));
    assert_eq!(
        deferred.iter().map(|d| d.1).collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );

    let uncoded = stored
        .signatures
        .iter()
        .find(|s| s.template.contains("upstream timed out"))
        .expect("the uncoded error is listed");
    let skip = stored
        .skipped
        .iter()
        .find(|s| s.signature_id == uncoded.id)
        .expect("the offline runner says why it filed nothing for the one-off error");
    assert!(skip.reason.contains("one-off ERROR"), "{}", skip.reason);
    assert_eq!(stored.runner.as_deref(), Some("offline"));
    let digest = stored.digest_sent.as_deref().expect("the digest as sent");
    assert!(digest.contains("distinct failure"));
    assert!(
        !digest.contains("known noise"),
        "ignored signatures never reach the runner"
    );
}

#[tokio::test]
async fn rejected_findings_are_stored_with_their_reasons_and_titles_redacted() {
    let mut f = Finding::new(
        Classification::ServerBug,
        "leaks password=hunter2hunter2",
        "The model claims record 1000 exists.",
    );
    f.evidence_record_ids = vec![1000];
    let runner = Arc::new(ScriptedRunner::always(Analysis {
        findings: vec![f],
        ..Default::default()
    }));
    let r = rig_with(runner, SelfMonitoringConfig::default());
    r.logs.log(Level::Error, "app", "[A-B-001] boom");
    let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    let stored = r
        .store
        .scan_report(&report.record.scan_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.rejected.len(), 1);
    assert!(stored.rejected[0].reasons[0].contains("outside the scanned range"));
    assert!(
        !stored.rejected[0].title.contains("hunter2hunter2"),
        "stored titles are redacted: {}",
        stored.rejected[0].title
    );
}

#[tokio::test]
async fn an_issue_history_lists_its_filing_and_later_known_signature_matches() {
    let r = rig();
    r.logs.log(
        Level::Critical,
        "app.db",
        "[DB-LOCK-003] database is locked",
    );
    let first = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    let issue = first.filed().next().expect("filed").number;
    r.logs.log(
        Level::Critical,
        "app.db",
        "[DB-LOCK-003] database is locked",
    );
    let second = r.monitor.scan(ScanTrigger::Scheduled).await.unwrap();
    let stored = r
        .store
        .scan_report(&second.record.scan_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(stored.signatures[0].fate, SignatureFate::Known { issue: n, closed: false, .. } if n == issue),
        "known before analysis is recorded with the issue"
    );
    let history = r
        .store
        .issue_history(issue, PageRequest::default())
        .await
        .unwrap();
    let kinds: Vec<(IssueEventKind, String)> = history
        .items
        .iter()
        .map(|e| (e.kind, e.scan_id.to_string()))
        .collect();
    assert!(kinds.contains(&(IssueEventKind::Filed, first.record.scan_id.to_string())));
    assert!(kinds.contains(&(
        IssueEventKind::KnownSignature,
        second.record.scan_id.to_string()
    )));
}

/// A report, a filed issue, a closed backlog entry and an issue event as versions before their
/// texts were typed `RedactedText` stored them (the JSON is the same shape: the type is
/// serde-transparent). They still load; text that holds a secret (written before it was redacted,
/// or by another writer) is redacted on the way in, and the digest's fence keeps its boundary.
#[test]
fn texts_stored_before_they_were_typed_still_load_and_are_redacted_on_read() {
    const KEY: &str = "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
    let boundary = "SELFMON-DATA-5f0c2a9e7b3d41c68e2f9a0b1c7d3e4f";
    let record = serde_json::to_value(selfmon_core::ScanRecord::started(
        selfmon_core::ScanId("old-scan".into()),
        ScanTrigger::Scheduled,
        0,
        chrono::Utc::now(),
    ))
    .unwrap();
    let old = serde_json::json!({
        "record": record,
        "outcomes": [
            {"outcome": "filed", "title": format!("[BUG] push with {KEY} fails"),
             "issue": {"number": 7, "url": "https://example.test/7", "state": "open"}},
            {"outcome": "duplicate", "title": "dup", "issue": 5,
             "reason": format!("same token {KEY}"), "tier": "error_code", "score": 1.0},
            {"outcome": "regression", "title": "again", "issue": 4, "reopened": true},
            {"outcome": "deferred", "title": "later"}
        ],
        "rejected": [{"title": format!("leaks {KEY}"), "reasons": [format!("quotes {KEY}")]}],
        "reconciled": [],
        "signatures": [{"id": "abc", "template": format!("push with {KEY}"), "level": "ERROR",
                        "count": 2, "fate": {"fate": "analysed"}}],
        "skipped": [{"signature_id": "abc", "reason": format!("one-off {KEY}")}],
        "runner": "offline",
        "digest_sent": format!("<<<{boundary}\n[A-B-001] push with {KEY}\n{boundary}>>>\n")
    });
    let report: selfmon_core::ScanReport =
        serde_json::from_value(old.clone()).expect("an old report loads");
    assert_eq!(report.outcomes.len(), 4);
    assert_eq!(
        report.outcomes[0].title(),
        "[BUG] push with [REDACTED:github_token] fails"
    );
    let digest = report.digest_sent.as_deref().expect("the digest");
    assert!(
        digest.starts_with(&format!("<<<{boundary}\n"))
            && digest.ends_with(&format!("\n{boundary}>>>\n")),
        "the fence keeps its boundary: {digest}"
    );
    let again = serde_json::to_string(&report).unwrap();
    assert!(!again.contains(KEY), "{again}");
    assert!(again.contains("[REDACTED:github_token]"));
    // Unchanged text round-trips byte for byte: the stored shape did not change.
    let clean = serde_json::json!({"record": old["record"], "outcomes": [
            {"outcome": "deferred", "title": "later", "reason": "the budget of 1 issue per scan is spent"}
        ],
        "rejected": [], "reconciled": [], "digest_sent": format!("<<<{boundary}\nplain\n{boundary}>>>\n")});
    let loaded: selfmon_core::ScanReport = serde_json::from_value(clean.clone()).unwrap();
    let back = serde_json::to_value(&loaded).unwrap();
    assert_eq!(back["outcomes"], clean["outcomes"]);
    assert_eq!(back["digest_sent"], clean["digest_sent"]);

    let issue: selfmon_core::FiledIssue = serde_json::from_value(serde_json::json!({
        "scan_id": "old-scan",
        "issue": {"number": 7, "url": "https://example.test/7", "state": "open"},
        "title": format!("[BUG] push with {KEY} fails"),
        "classification": "server_bug",
        "error_codes": [],
        "fingerprint": "00ff",
        "source_log_ids": [1],
        "source_files": [format!("app/{KEY}.py")],
        "error_type": format!("AuthError {KEY}"),
        "templates": [],
        "signature_ids": [],
        "created_at": "2026-01-01T00:00:00Z",
        "occurrences": 1,
        "last_seen_at": "2026-01-01T00:00:00Z"
    }))
    .expect("an old filed issue loads");
    let issue_json = serde_json::to_string(&issue).unwrap();
    assert!(!issue_json.contains(KEY), "{issue_json}");
    assert_eq!(issue.title, "[BUG] push with [REDACTED:github_token] fails");

    let closure: selfmon_core::BacklogClosure = serde_json::from_value(serde_json::json!({
        "entry_id": "e1", "reason": format!("covered by #7: same title {KEY}"), "issue": 7
    }))
    .expect("an old backlog closure loads");
    assert!(!closure.reason.contains(KEY));
    let event: selfmon_core::IssueEvent = serde_json::from_value(serde_json::json!({
        "issue_number": 7, "scan_id": "old-scan", "at": "2026-01-01T00:00:00Z",
        "kind": "filed", "records": 0, "detail": format!("[BUG] push with {KEY} fails")
    }))
    .expect("an old issue event loads");
    assert!(!event.detail.contains(KEY));
}

/// A finding as a model answered it, in the JSON shape every version stored it in, with `secret`
/// in each free-text field.
fn old_finding_json(secret: &str) -> serde_json::Value {
    serde_json::json!({
        "classification": "server_bug",
        "title": format!("push with {secret} fails"),
        "summary": format!("the remote refused {secret}"),
        "evidence_record_ids": [3],
        "error_codes": ["GIT-SYNC-001"],
        "source_files": [format!("app/{secret}.py")],
        "error_type": format!("AuthError {secret}"),
        "signature_ids": ["abc"],
        "suspected_cause": format!("the token {secret} expired"),
        "suggested_fix": format!("rotate {secret}")
    })
}

/// A filing intent (the outbox) and a backlog entry as versions before their findings and
/// evidence were typed (`RedactedFinding`, `RedactedSignature`) stored them: the JSON is the same
/// shape (both types are serde-transparent). They still load, and a finding or evidence that holds
/// a secret (written before it was redacted, or by another writer) is redacted on the way in;
/// clean ones round-trip byte for byte.
#[test]
fn findings_in_the_outbox_and_backlog_stored_before_they_were_typed_load_redacted() {
    const KEYS: [&str; 2] = [
        "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_abcdefghijKLMNOP-QRSTUV",
    ];
    for key in KEYS {
        let intent_json = serde_json::json!({
            "intent_id": "i1",
            "scan_id": "old-scan",
            "draft": {
                "title": "[BUG] push fails", "body": "body", "labels": ["selfmon"],
                "classification": "server_bug", "fingerprint": "00ff",
                "marker": "<!-- selfmon:fingerprint=00ff -->"
            },
            "finding": old_finding_json(key),
            "templates": ["push with <TOKEN> fails"],
            "occurrences": 1,
            "created_at": "2026-01-01T00:00:00Z",
            "backlog_entry_id": null
        });
        let intent: selfmon_core::FilingIntent =
            serde_json::from_value(intent_json).expect("an old filing intent loads");
        let stored = serde_json::to_string(&intent).unwrap();
        assert!(!stored.contains(key), "{stored}");
        assert!(intent.finding.title.contains("[REDACTED:"), "{stored}");
        for text in [
            Some(&intent.finding.summary),
            intent.finding.error_type.as_ref(),
            intent.finding.suspected_cause.as_ref(),
            intent.finding.suggested_fix.as_ref(),
            intent.finding.source_files.first(),
        ] {
            assert!(text.expect("the field loads").contains("[REDACTED:"));
        }
        assert_eq!(intent.finding.evidence_record_ids, vec![3]);
        assert_eq!(intent.finding.signature_ids, vec!["abc".to_string()]);

        let entry_json = serde_json::json!({
            "entry_id": "e1",
            "fingerprint": "00ff",
            "severity": "ERROR",
            "finding": old_finding_json(key),
            "evidence": [{
                "id": "abc", "level": "ERROR", "source": format!("app.{key}"),
                "template": format!("push with {key} fails"), "template_fingerprint": "00ee",
                "error_codes": [], "count": 2, "first_id": 1, "last_id": 2,
                "first_timestamp": "2026-01-01T00:00:00Z", "last_timestamp": "2026-01-01T00:00:01Z",
                "sample_ids": [1], "sample_messages": [format!("push with {key} fails")],
                "distinct_correlation_ids": 0, "repeated": false, "has_traceback": false,
                "nodes": [format!("node-{key}")]
            }],
            "templates": [],
            "occurrences": 2,
            "deferred_by": "old-scan",
            "deferred_at": "2026-01-01T00:00:00Z"
        });
        let entry: selfmon_core::BacklogEntry =
            serde_json::from_value(entry_json).expect("an old backlog entry loads");
        let stored = serde_json::to_string(&entry).unwrap();
        assert!(!stored.contains(key), "{stored}");
        let evidence = &entry.evidence[0];
        assert!(evidence.template.contains("[REDACTED:"), "{stored}");
        assert!(evidence.sample_messages[0].contains("[REDACTED:"));
        assert_eq!(
            evidence.template_fingerprint, "00ee",
            "the engine's values are kept"
        );
    }

    // Clean ones round-trip byte for byte: the stored shape did not change.
    let mut clean = old_finding_json("a token");
    clean["source_files"] = serde_json::json!(["app/sync.py"]);
    let loaded: selfmon_core::redact::RedactedFinding =
        serde_json::from_value(clean.clone()).unwrap();
    assert_eq!(serde_json::to_value(&loaded).unwrap(), clean);
}
