//! An issue's classification comes from what selfmon recorded in it, not from title prefixes
//! (which a tracker lets users rename); and a failed analysis still records what it cost.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::rig_with;
use selfmon_core::redact::Redactor;
use selfmon_core::{
    classification_in, classification_marker, Analysis, AnalysisRequest, AnalysisRunner,
    Classification, Error, ErrorCode, Finding, FindingOutcome, IssueDraft, IssueTracker, Level,
    Marker, ScanHistory, ScanStatus, ScanTrigger, SelfMonitoringConfig, Usage,
};

/// Answers every analysis with one client-misuse finding about `[API-AUTH-001]`.
struct ClientMisuseRunner;

#[async_trait]
impl AnalysisRunner for ClientMisuseRunner {
    async fn analyze(&self, request: &AnalysisRequest) -> selfmon_core::Result<Analysis> {
        let sig = &request.digest.signatures[0];
        let mut f = Finding::new(
            Classification::ClientMisuse,
            "[API-AUTH-001] clients send expired tokens",
            "Clients keep calling with expired tokens.",
        );
        f.error_codes = vec![ErrorCode::parse("API-AUTH-001").unwrap()];
        f.signature_ids = vec![sig.id.clone()];
        f.evidence_record_ids = vec![sig.first_id];
        Ok(Analysis {
            findings: vec![f],
            ..Default::default()
        })
    }

    fn name(&self) -> &str {
        "client-misuse"
    }
}

#[tokio::test]
async fn an_issue_under_a_renamed_title_prefix_keeps_its_classification_and_catches_its_duplicate()
{
    let r = rig_with(
        Arc::new(ClientMisuseRunner),
        SelfMonitoringConfig::default(),
    );
    // Filed earlier (another state file, or before a restore) under a renamed prefix: the
    // title says nothing a default prefix would recognise.
    let body = format!(
        "Clients send expired tokens.\n\n{}\n{}\n",
        Marker::for_fingerprint("abc123").as_str(),
        classification_marker(Classification::ClientMisuse)
    );
    r.tracker
        .create_issue(&IssueDraft {
            title: Redactor::shared()
                .redacted("(usage) [API-AUTH-001] clients send expired tokens"),
            body: Redactor::shared().redacted(&body),
            labels: vec!["selfmon".into()],
            classification: Classification::ClientMisuse,
            fingerprint: "abc123".into(),
            marker: Marker::for_fingerprint("abc123"),
        })
        .await
        .unwrap();

    // The log line carries no code (nothing is known before analysis); the finding does.
    r.logs
        .log(Level::Warning, "api.auth", "token expired for client 7");
    let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(
        report.record.issues_created, 0,
        "a duplicate by error code of the client-misuse issue: {:?}",
        report.outcomes
    );
    assert_eq!(r.tracker.issues().len(), 1);
    assert!(
        matches!(
            report.outcomes.as_slice(),
            [FindingOutcome::Duplicate { issue: 1, .. }]
        ),
        "{:?}",
        report.outcomes
    );
}

#[test]
fn the_classification_is_read_from_the_hidden_line_then_the_visible_one_never_the_title() {
    let hidden = classification_marker(Classification::DocumentationGap);
    assert_eq!(
        classification_in(&format!("x\n{hidden}\n")),
        Some(Classification::DocumentationGap)
    );
    assert_eq!(
        classification_in("**Classification:** `client_misuse`\n"),
        Some(Classification::ClientMisuse),
        "bodies written before the hidden line existed"
    );
    assert_eq!(classification_in("[BUG] a title is not a body"), None);
    assert_eq!(
        classification_in("<!-- selfmon:classification=nonsense -->"),
        None,
        "an unknown word is no classification"
    );
}

#[tokio::test]
async fn a_new_issue_body_records_its_classification_in_a_hidden_line() {
    let r = rig_with(
        Arc::new(ClientMisuseRunner),
        SelfMonitoringConfig::default(),
    );
    r.logs
        .log(Level::Warning, "api.auth", "[API-AUTH-001] token expired");
    r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    let issues = r.tracker.issues();
    assert_eq!(issues.len(), 1);
    assert!(issues[0]
        .body
        .contains(&classification_marker(Classification::ClientMisuse)));
    assert_eq!(
        classification_in(&issues[0].body),
        Some(Classification::ClientMisuse)
    );
}

/// Fails after the model ran, reporting what the run used.
struct CostlyFailure;

#[async_trait]
impl AnalysisRunner for CostlyFailure {
    async fn analyze(&self, _: &AnalysisRequest) -> selfmon_core::Result<Analysis> {
        Err(Error::AnalysisFailed {
            usage: Usage {
                cost_usd: Some(0.42),
                input_tokens: Some(12_000),
                output_tokens: Some(800),
                ..Default::default()
            },
            source: Box::new(Error::InvalidAnalysis {
                reason: "the answer did not match the schema".into(),
            }),
        })
    }

    fn name(&self) -> &str {
        "costly"
    }
}

#[tokio::test]
async fn a_failed_analysis_still_records_its_cost_and_tokens() {
    let r = rig_with(Arc::new(CostlyFailure), SelfMonitoringConfig::default());
    r.logs
        .log(Level::Error, "app", "[DB-LOCK-003] database is locked");
    let err = r.monitor.scan(ScanTrigger::Manual).await.unwrap_err();
    assert!(!err.is_retryable(), "as retryable as its source: {err}");
    let text = err.to_string();
    assert!(
        text.contains("did not match the schema") && text.contains("$0.4200"),
        "{text}"
    );
    let scans = r.store.list_scans(Default::default()).await.unwrap().items;
    assert_eq!(scans[0].status, ScanStatus::Failure);
    assert_eq!(scans[0].cost_usd, Some(0.42));
    assert_eq!(scans[0].input_tokens, Some(12_000));
    assert_eq!(scans[0].output_tokens, Some(800));
    assert_eq!(
        scans[0].log_id_end, scans[0].log_id_start,
        "the cursor stays"
    );
}
