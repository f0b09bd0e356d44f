//! Redaction through the whole engine: secrets planted in log records must not reach the prompt,
//! the data handed to the runner, or any issue title or body, even where the templater's masking
//! would hide a secret from a detector run afterwards (`sk-ant-api<NUM>-...`).

mod common;
mod corpus;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use selfmon_core::offline::OfflineRunner;
use selfmon_core::{Analysis, AnalysisRequest, AnalysisRunner, Level, SelfMonitoringConfig};

/// The offline runner, recording everything it is given.
#[derive(Default)]
struct Recording {
    seen: Mutex<Vec<String>>,
}

#[async_trait]
impl AnalysisRunner for Recording {
    fn name(&self) -> &str {
        "recording"
    }

    async fn analyze(&self, request: &AnalysisRequest) -> selfmon_core::Result<Analysis> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(request.instructions.to_string());
            seen.push(request.data.to_string());
            seen.push(serde_json::to_string(&request.digest).unwrap_or_default());
        }
        OfflineRunner.analyze(request).await
    }
}

#[tokio::test]
async fn secrets_in_records_reach_neither_the_runner_nor_the_tracker() {
    let planted = corpus::secrets(0xC0FF_EE00_1234_5678, 1_000);
    let runner = Arc::new(Recording::default());
    let rig = common::rig_with(runner.clone(), SelfMonitoringConfig::default());
    for p in &planted {
        rig.logs.log(Level::Error, "app.secrets", &p.line);
    }
    rig.monitor
        .scan(selfmon_core::ScanTrigger::Manual)
        .await
        .unwrap();
    let mut egress: Vec<String> = runner.seen.lock().unwrap().clone();
    for issue in rig.tracker.issues() {
        egress.push(issue.title);
        egress.push(issue.body);
        egress.extend(issue.comments);
    }
    assert!(
        !egress.is_empty(),
        "the runner was asked and issues were filed"
    );
    let mut leaked = Vec::new();
    for p in &planted {
        if let Some(text) = egress.iter().find(|t| corpus::leaks(t, &p.secret)) {
            let at = text.find(&p.secret[..16.min(p.secret.len())]).unwrap_or(0);
            let from = text.floor_char_boundary(at.saturating_sub(60));
            leaked.push(format!(
                "{}: {:?}",
                p.kind,
                &text[from..text.ceil_char_boundary((at + 80).min(text.len()))]
            ));
        }
    }
    println!(
        "whole-engine corpus: {} secrets, {} reached the runner or the tracker",
        planted.len(),
        leaked.len()
    );
    assert!(leaked.is_empty(), "{}", leaked.join("\n"));
}

#[tokio::test]
async fn a_masked_anthropic_key_is_not_published_through_its_template() {
    let rig = common::rig();
    let key = "sk-ant-api03-AbCdEfGh1234IjKlMnOp5678QrStUvWx9012-YzAbCdEf_yz";
    for _ in 0..3 {
        rig.logs.log(
            Level::Error,
            "app.llm",
            &format!(
                "Traceback (most recent call last):\nValueError: model call failed with key {key}"
            ),
        );
    }
    rig.monitor
        .scan(selfmon_core::ScanTrigger::Manual)
        .await
        .unwrap();
    let issues = rig.tracker.issues();
    assert!(!issues.is_empty());
    for i in issues {
        for piece in ["AbCdEfGh", "IjKlMnOp", "QrStUvWx", "YzAbCdEf"] {
            assert!(!i.body.contains(piece), "{piece} in {}", i.body);
            assert!(!i.title.contains(piece), "{piece} in {}", i.title);
        }
    }
}
