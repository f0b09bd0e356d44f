//! Nothing selfmon persists or publishes holds a secret in clear, even when the model copies every
//! text it is shown into every field of its findings (a naive or prompt-injected model), and the
//! sealed learned state gives the same fingerprints after a reload.
//!
//! Every byte the state store holds is searched ([`MemoryStateStore::dump`]): scan records (their
//! error text included), filed issues' metadata, filing intents, the backlog and the learned
//! template state.

mod common;
mod corpus;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use selfmon_core::offline::OfflineRunner;
use selfmon_core::template::Templater;
use selfmon_core::{
    Analysis, AnalysisRequest, AnalysisRunner, Classification, Finding, Level,
    SelfMonitoringConfig, TemplateMemory,
};

/// What the runner was given, and the template fingerprints of the signatures it was shown.
#[derive(Default)]
struct Seen {
    texts: Vec<String>,
    fingerprints: Vec<BTreeSet<String>>,
}

/// A model stand-in that copies what it is shown — samples, templates, the whole prompt and the
/// data — into every field of one finding per signature.
struct Echo {
    seen: Mutex<Seen>,
    echo: bool,
}

impl Echo {
    fn new(echo: bool) -> Self {
        Echo {
            seen: Mutex::new(Seen::default()),
            echo,
        }
    }
}

fn cap(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[async_trait]
impl AnalysisRunner for Echo {
    fn name(&self) -> &str {
        "echo"
    }

    async fn analyze(&self, request: &AnalysisRequest) -> selfmon_core::Result<Analysis> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.texts.push(request.instructions.clone());
            seen.texts.push(request.data.to_string());
            seen.texts
                .push(serde_json::to_string(&request.digest).unwrap_or_default());
            seen.fingerprints.push(
                request
                    .digest
                    .signatures
                    .iter()
                    .map(|s| s.template_fingerprint.clone())
                    .collect(),
            );
        }
        if !self.echo {
            return OfflineRunner.analyze(request).await;
        }
        let prompt = format!("{}\n{}", request.instructions, request.data);
        let findings = request
            .digest
            .signatures
            .iter()
            .enumerate()
            .map(|(i, sig)| {
                let sample = sig.sample_messages.join(" | ");
                // Rotate which text lands where, so every field carries every kind of text.
                let texts = [&sample, &sig.template, &prompt, &request.data.to_string()];
                let pick = |k: usize| texts[(i + k) % texts.len()].as_str();
                Finding {
                    classification: Classification::ServerBug,
                    title: cap(
                        &format!("{} {}", sig.template, sample).replace('\n', " "),
                        190,
                    ),
                    summary: cap(&format!("{}\n{}", pick(0), pick(1)), 7_900),
                    evidence_record_ids: sig.sample_ids.clone(),
                    error_codes: sig.error_codes.clone(),
                    source_files: vec![cap(&sig.template.replace(['/', '\\', '\n'], "_"), 500)],
                    error_type: Some(cap(pick(1), 2_000)),
                    signature_ids: vec![sig.id.clone()],
                    suspected_cause: Some(cap(pick(2), 7_900)),
                    suggested_fix: Some(cap(pick(3), 7_900)),
                }
            })
            .collect();
        Ok(Analysis {
            findings,
            ..Default::default()
        })
    }
}

/// The planted secrets found in `texts`, with where and in what context. The same test as
/// `corpus::leaks` (the secret, or for long ones any 16 characters of it), with one Aho-Corasick
/// pass per text instead of one search per window.
fn leaks_in(planted: &[corpus::Planted], texts: &[(&str, String)]) -> Vec<String> {
    let mut needles: Vec<String> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for (i, p) in planted.iter().enumerate() {
        let chars: Vec<char> = p.secret.chars().collect();
        if chars.len() < 24 {
            needles.push(p.secret.clone());
            owner.push(i);
        } else {
            for w in chars.windows(16) {
                needles.push(w.iter().collect());
                owner.push(i);
            }
        }
    }
    let ac = aho_corasick::AhoCorasick::new(&needles).unwrap();
    let mut leaked: BTreeSet<usize> = BTreeSet::new();
    let mut report = Vec::new();
    for (place, text) in texts {
        for m in ac.find_overlapping_iter(text.as_str()) {
            let i = owner[m.pattern().as_usize()];
            if leaked.insert(i) {
                let mut from = m.start().saturating_sub(60);
                while !text.is_char_boundary(from) {
                    from -= 1;
                }
                let mut to = (m.end() + 60).min(text.len());
                while !text.is_char_boundary(to) {
                    to += 1;
                }
                report.push(format!(
                    "{} in {place}: {:?}",
                    planted[i].kind,
                    &text[from..to]
                ));
            }
        }
    }
    report
}

/// The tracker's issues (titles, bodies, comments) and every byte of the state store.
fn everything(rig: &common::Rig) -> Vec<(&'static str, String)> {
    let mut out = vec![("state store", rig.store.dump())];
    for issue in rig.tracker.issues() {
        out.push(("issue title", issue.title));
        out.push(("issue body", issue.body));
        for c in issue.comments {
            out.push(("issue comment", c));
        }
    }
    out
}

async fn two_scans(echo: bool, seed: u64) {
    let planted = corpus::secrets(seed, 1_000);
    let runner = Arc::new(Echo::new(echo));
    let config = SelfMonitoringConfig {
        max_new_issues_per_scan: 25,
        ..Default::default()
    };
    let rig = common::rig_with(runner.clone(), config);
    for p in &planted {
        rig.logs.log(Level::Error, "app.secrets", &p.line);
    }
    rig.monitor
        .scan(selfmon_core::ScanTrigger::Manual)
        .await
        .unwrap();

    // The sealed state, restored, maps every line to the fingerprint a templater that never
    // stopped gives it.
    let state = rig.store.load_template_state().await.unwrap().unwrap();
    let restored = Templater::from_state_json(&state).unwrap();
    let mut live = Templater::new();
    for p in &planted {
        live.learn(&p.line);
    }
    if echo {
        assert!(
            !rig.store.backlog().is_empty(),
            "findings over the budget wait in the backlog"
        );
    }
    let mut sealed_clusters = 0;
    for p in &planted {
        let (a, b) = (live.template(&p.line), restored.template(&p.line));
        assert_eq!(a.fingerprint, b.fingerprint, "{:?}", p.line);
        sealed_clusters += usize::from(a.text != b.text);
    }

    // Close some issues so the second scan comments on regressions too.
    for issue in rig.tracker.issues().iter().take(5) {
        rig.tracker
            .close(issue.number, selfmon_core::clock::Clock::now(&*rig.clock));
    }
    rig.clock.advance(chrono::Duration::hours(2));
    for p in &planted {
        rig.logs.log(Level::Error, "app.secrets", &p.line);
    }
    rig.monitor
        .scan(selfmon_core::ScanTrigger::Manual)
        .await
        .unwrap();

    let seen = runner.seen.lock().unwrap();
    assert_eq!(seen.fingerprints.len(), 2, "both scans asked the runner");
    let new_templates: Vec<&String> = seen.fingerprints[1]
        .difference(&seen.fingerprints[0])
        .collect();
    assert!(
        new_templates.is_empty(),
        "the second scan, on a reloaded state, saw templates the first did not: {new_templates:?}"
    );
    let mut texts = everything(&rig);
    for t in &seen.texts {
        texts.push(("runner input", t.clone()));
    }
    let leaked = leaks_in(&planted, &texts);
    let issues = rig.tracker.issues();
    println!(
        "echo={echo}: {} secrets, {} issues, {} comments, {} bytes in the state store, {} leaked",
        planted.len(),
        issues.len(),
        issues.iter().map(|i| i.comments.len()).sum::<usize>(),
        rig.store.dump().len(),
        leaked.len()
    );
    assert!(!issues.is_empty());
    assert!(leaked.is_empty(), "{}", leaked.join("\n"));
    assert!(
        sealed_clusters > 0,
        "some templates held secrets and were sealed"
    );
}

#[tokio::test]
async fn nothing_persisted_holds_a_secret_and_a_reload_keeps_the_fingerprints() {
    two_scans(false, 0x5EA1_ED00_0000_0001).await;
}

#[tokio::test]
async fn an_echoing_model_gets_no_secret_to_the_tracker_or_the_state_store() {
    two_scans(true, 0xEC40_0000_0000_0002).await;
}

#[tokio::test]
async fn a_secret_straddling_the_sample_cap_is_redacted_before_the_cut() {
    let rig = common::rig_with(Arc::new(Echo::new(true)), SelfMonitoringConfig::default());
    let key = "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
    // The key starts 10 characters before the 500-character sample cap.
    let padding = format!("{} ", "x".repeat(489 - "worker failed: ".len()));
    let message = format!("worker failed: {padding}{key} while pushing");
    assert_eq!(message.find(key), Some(490));
    for _ in 0..3 {
        rig.logs.log(Level::Error, "app.push", &message);
    }
    rig.monitor
        .scan(selfmon_core::ScanTrigger::Manual)
        .await
        .unwrap();
    assert!(!rig.tracker.issues().is_empty());
    for (place, text) in everything(&rig) {
        // Even the head the cap would leave (`ghp_AbCdEf`) is gone.
        assert!(!text.contains("ghp_AbCdEf"), "{place}: {text}");
    }
}
