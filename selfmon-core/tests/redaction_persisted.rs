//! Nothing selfmon persists or publishes holds a secret in clear, even when the model copies every
//! text it is shown into every field of its findings (a naive or prompt-injected model), and the
//! sealed learned state gives the same fingerprints after a reload.
//!
//! Every byte the state store holds is searched ([`MemoryStateStore::dump`]): scan records (their
//! error text included), filed issues' metadata, filing intents, the backlog and the learned
//! template state. Then each text the types require to be [`RedactedText`] is searched on its own,
//! read back through the history API as a host would, so a path that stopped being exercised (or
//! stopped being redacted) fails by name: the prompt's instructions, the report's digest as sent,
//! outcome titles and reasons, rejected findings, runner skip reasons, signature templates,
//! filed issues' titles, error types and source files, backlog closure reasons and issues'
//! history details; and each finding and evidence the types require to be [`RedactedFinding`] or
//! [`RedactedSignature`]: the findings in the outbox (a third scan's filing is refused by the
//! tracker, so its intent stays there) and the backlog's findings and evidence.
//!
//! [`RedactedText`]: selfmon_core::redact::RedactedText
//! [`RedactedFinding`]: selfmon_core::redact::RedactedFinding
//! [`RedactedSignature`]: selfmon_core::redact::RedactedSignature

mod common;
mod corpus;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use selfmon_core::offline::OfflineRunner;
use selfmon_core::template::Templater;
use selfmon_core::{
    Analysis, AnalysisRequest, AnalysisRunner, Classification, Finding, FindingOutcome,
    IssueLedger, Level, PageRequest, RejectedFinding, ScanHistory, SelfMonitoringConfig,
    SkippedSignature, TemplateMemory,
};

/// What the runner was given, and the template fingerprints of the signatures it was shown.
#[derive(Default)]
struct Seen {
    texts: Vec<String>,
    fingerprints: Vec<BTreeSet<String>>,
}

/// A model stand-in that copies what it is shown — samples, templates, the whole prompt and the
/// data — into every field of one finding per signature, and into its own rejections and skip
/// reasons. It also copies raw log lines, as a model that reads the log itself (the prompt names
/// the log's location, and a model with a file tool can open it) would: what it is shown is
/// redacted already, so only text from elsewhere can prove that what comes *back* is redacted.
struct Echo {
    seen: Mutex<Seen>,
    /// The instructions of each request.
    instructions: Mutex<Vec<String>>,
    echo: bool,
    /// Raw log lines the stand-in "read from the log" (empty: it copies only what it is shown).
    raw: Vec<String>,
}

impl Echo {
    fn new(echo: bool) -> Self {
        Echo {
            seen: Mutex::new(Seen::default()),
            instructions: Mutex::new(Vec::new()),
            echo,
            raw: Vec::new(),
        }
    }

    /// A stand-in that also copies `raw` lines into what it answers.
    fn reading(raw: Vec<String>) -> Self {
        Echo {
            raw,
            ..Echo::new(true)
        }
    }

    /// The `i`-th raw line of a request (rotating through them), or nothing.
    fn raw_line(&self, request: &AnalysisRequest, i: usize) -> String {
        if self.raw.is_empty() {
            return String::new();
        }
        // Differs per scan, so the second scan copies other lines.
        let offset = usize::try_from(request.first_record_id).unwrap_or(0);
        self.raw[(offset + i * 7) % self.raw.len()].replace('\n', " ")
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
            seen.texts.push(request.instructions.to_string());
            if let Ok(mut i) = self.instructions.lock() {
                i.push(request.instructions.to_string());
            }
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
        let texts_of = |i: usize, sig: &selfmon_core::digest::Signature| {
            let sample = sig.sample_messages.join(" | ");
            format!("{} {} {sample}", self.raw_line(request, i), sig.template)
        };
        // The runner's own rejections and skips quote what it saw too.
        let rejected = request
            .digest
            .signatures
            .iter()
            .enumerate()
            .map(|(i, sig)| RejectedFinding {
                title: cap(&texts_of(i + 1, sig), 190),
                reasons: vec![texts_of(i + 2, sig), cap(&prompt, 2_000)],
            })
            .collect();
        let skipped = request
            .digest
            .signatures
            .iter()
            .enumerate()
            .map(|(i, sig)| SkippedSignature {
                signature_id: sig.id.clone(),
                reason: texts_of(i + 3, sig),
            })
            .collect();
        // And one finding citing a record outside the scan, which the engine's validation
        // rejects: its title quotes a sample.
        let invalid = request.digest.signatures.first().map(|sig| Finding {
            evidence_record_ids: vec![request.last_record_id + 1_000],
            ..Finding::new(
                Classification::ServerBug,
                cap(&texts_of(4, sig).replace('\n', " "), 190),
                "cites a record that does not exist",
            )
        });
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
                let raw = self.raw_line(request, i);
                let source_file = if raw.is_empty() {
                    sig.template.replace(['/', '\\', '\n'], "_")
                } else {
                    // Relative, so validation keeps the finding.
                    format!("src/{}", raw.replace('\\', "_").replace("..", "_"))
                };
                Finding {
                    classification: Classification::ServerBug,
                    title: cap(
                        &format!("{raw} {} {}", sig.template, sample).replace('\n', " "),
                        190,
                    ),
                    summary: cap(&format!("{raw}\n{}\n{}", pick(0), pick(1)), 7_900),
                    evidence_record_ids: sig.sample_ids.clone(),
                    error_codes: sig.error_codes.clone(),
                    source_files: vec![cap(&source_file, 500)],
                    error_type: Some(cap(&format!("{raw} {}", pick(1)), 2_000)),
                    signature_ids: vec![sig.id.clone()],
                    suspected_cause: Some(cap(&format!("{raw} {}", pick(2)), 7_900)),
                    suggested_fix: Some(cap(pick(3), 7_900)),
                }
            })
            .chain(invalid)
            .collect();
        Ok(Analysis {
            findings,
            rejected,
            skipped,
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

/// What the two scans left behind: the planted secrets, and every text a host can read back,
/// by the path it was read from.
struct Leftovers {
    planted: Vec<corpus::Planted>,
    paths: BTreeMap<&'static str, Vec<String>>,
    /// Planted secrets found anywhere: the tracker, the whole state store or the runner's input.
    leaked: Vec<String>,
}

async fn two_scans(echo: bool, seed: u64) -> Leftovers {
    let planted = corpus::secrets(seed, 1_000);
    let runner = Arc::new(if echo {
        Echo::reading(planted.iter().map(|p| p.line.clone()).collect())
    } else {
        Echo::new(false)
    });
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
    // The first scan's requests (one per analysis round).
    let first_scan_requests = runner.seen.lock().unwrap().fingerprints.len();

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
    {
        let seen = runner.seen.lock().unwrap();
        let requests = seen.fingerprints.len();
        assert!(
            first_scan_requests >= 1 && requests > first_scan_requests,
            "both scans asked the runner ({first_scan_requests} then {requests} requests)"
        );
        let union = |range: &[BTreeSet<String>]| -> BTreeSet<String> {
            range.iter().flatten().cloned().collect()
        };
        let (first, second) = (
            union(&seen.fingerprints[..first_scan_requests]),
            union(&seen.fingerprints[first_scan_requests..]),
        );
        let new_templates: Vec<&String> = second.difference(&first).collect();
        assert!(
            new_templates.is_empty(),
            "the second scan, on a reloaded state, saw templates the first did not: {new_templates:?}"
        );
    }
    if echo {
        // A third scan, on lines that form new signatures: the tracker refuses its first
        // filing, so the scan fails and the intent stays in the outbox, finding and all.
        rig.faulty_tracker
            .inject(0, selfmon_core::testing::TrackerFault::CreateFails);
        rig.clock.advance(chrono::Duration::hours(2));
        for p in &planted {
            rig.logs.log(
                Level::Error,
                "app.secrets",
                &format!("replayed by the standby: {}", p.line),
            );
        }
        let refused = rig.monitor.scan(selfmon_core::ScanTrigger::Manual).await;
        assert!(refused.is_err(), "the refused filing fails the scan");
        assert!(
            !rig.store.intents().is_empty(),
            "the refused filing waits in the outbox"
        );
        rig.faulty_tracker.clear_faults();
    }
    let paths = typed_paths(&rig, &runner).await;
    let seen = runner.seen.lock().unwrap();
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
    assert!(
        sealed_clusters > 0,
        "some templates held secrets and were sealed"
    );
    Leftovers {
        planted,
        paths,
        leaked,
    }
}

/// Each text whose type is `RedactedText`, read back as a host reads it, by path.
async fn typed_paths(rig: &common::Rig, runner: &Echo) -> BTreeMap<&'static str, Vec<String>> {
    let mut paths: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut add = |path: &'static str, text: &str| {
        paths.entry(path).or_default().push(text.to_string());
    };
    for t in runner.instructions.lock().unwrap().iter() {
        add("prompt instructions", t);
    }
    let everything = PageRequest {
        offset: 0,
        limit: 500,
    };
    let scans = rig.store.list_scans(everything).await.unwrap().items;
    for scan in &scans {
        let Some(report) = rig.store.scan_report(&scan.scan_id).await.unwrap() else {
            continue;
        };
        if let Some(d) = &report.digest_sent {
            add("report digest_sent", d);
        }
        for o in &report.outcomes {
            add("report outcome title", o.title());
            match o {
                FindingOutcome::WouldFile { body, .. } => add("report outcome body", body),
                FindingOutcome::Duplicate { reason, .. }
                | FindingOutcome::Commented { reason, .. }
                | FindingOutcome::Deferred { reason, .. } => add("report outcome reason", reason),
                FindingOutcome::Regression {
                    reason: Some(reason),
                    ..
                } => add("report outcome reason", reason),
                _ => {}
            }
        }
        for r in &report.rejected {
            add("report rejected title", &r.title);
            for reason in &r.reasons {
                add("report rejected reason", reason);
            }
        }
        for k in &report.skipped {
            add("report skipped reason", &k.reason);
        }
        for sig in &report.signatures {
            add("report signature template", &sig.template);
        }
    }
    let filed = rig.store.filed_issues().await.unwrap();
    for issue in &filed {
        add("filed issue title", &issue.title);
        if let Some(t) = &issue.error_type {
            add("filed issue error_type", t);
        }
        for f in &issue.source_files {
            add("filed issue source_files", f);
        }
        let history = rig
            .store
            .issue_history(issue.issue.number, everything)
            .await
            .unwrap();
        for e in &history.items {
            add("issue history detail", &e.detail);
        }
    }
    let finding_texts = |f: &Finding| -> Vec<String> {
        let mut texts = vec![f.title.clone(), f.summary.clone()];
        texts.extend(f.source_files.iter().cloned());
        texts.extend(f.error_type.iter().cloned());
        texts.extend(f.suspected_cause.iter().cloned());
        texts.extend(f.suggested_fix.iter().cloned());
        texts
    };
    for intent in rig.store.open_intents().await.unwrap() {
        for t in finding_texts(&intent.finding) {
            add("outbox finding", &t);
        }
    }
    let closed = rig.store.closed_backlog(everything).await.unwrap().items;
    for c in &closed {
        add("backlog closure reason", &c.closure.reason);
    }
    let open = rig.store.open_backlog().await.unwrap();
    for entry in open.iter().chain(closed.iter().map(|c| &c.entry)) {
        for t in finding_texts(&entry.finding) {
            add("backlog finding", &t);
        }
        for sig in &entry.evidence {
            add("backlog evidence", &sig.template);
            for t in sig
                .sample_messages
                .iter()
                .chain(&sig.source)
                .chain(&sig.nodes)
            {
                add("backlog evidence", t);
            }
        }
    }
    paths
}

/// The echoing model's two scans, run once and shared by the tests that search one path each.
fn echoed() -> &'static Leftovers {
    static ECHOED: OnceLock<Leftovers> = OnceLock::new();
    ECHOED.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(two_scans(true, 0xEC40_0000_0000_0002))
    })
}

/// Asserts that `path` was written (by the echoing model's scans) and holds no planted secret.
fn assert_no_secret_in(path: &str) {
    let leftovers = echoed();
    let texts = leftovers
        .paths
        .get(path)
        .unwrap_or_else(|| panic!("nothing was written to {path}; the test proves nothing"));
    assert!(!texts.is_empty());
    let named: Vec<(&str, String)> = texts.iter().map(|t| (path, t.clone())).collect();
    let leaked = leaks_in(&leftovers.planted, &named);
    println!("{path}: {} texts, {} leaked", texts.len(), leaked.len());
    assert!(leaked.is_empty(), "{}", leaked.join("\n"));
}

#[test]
fn no_planted_secret_reaches_the_prompt_instructions() {
    assert_no_secret_in("prompt instructions");
    // The instructions quote the open issues' titles, which quote the model's echo of the log.
    assert!(echoed().paths["prompt instructions"]
        .iter()
        .any(|t| t.contains("[REDACTED:")));
}

#[test]
fn no_planted_secret_reaches_the_stored_digest_as_sent() {
    assert_no_secret_in("report digest_sent");
    assert!(echoed().paths["report digest_sent"]
        .iter()
        .all(|d| d.starts_with("<<<SELFMON-DATA-")));
}

#[test]
fn no_planted_secret_reaches_a_stored_outcome_title() {
    assert_no_secret_in("report outcome title");
}

#[test]
fn no_planted_secret_reaches_a_stored_outcome_reason() {
    assert_no_secret_in("report outcome reason");
}

#[test]
fn no_planted_secret_reaches_a_stored_rejected_title() {
    assert_no_secret_in("report rejected title");
}

#[test]
fn no_planted_secret_reaches_a_stored_rejected_reason() {
    assert_no_secret_in("report rejected reason");
}

#[test]
fn no_planted_secret_reaches_a_stored_runner_skip_reason() {
    assert_no_secret_in("report skipped reason");
}

#[test]
fn no_planted_secret_reaches_a_stored_signature_template() {
    assert_no_secret_in("report signature template");
}

#[test]
fn no_planted_secret_reaches_a_filed_issue_title() {
    assert_no_secret_in("filed issue title");
}

#[test]
fn no_planted_secret_reaches_a_filed_issue_error_type() {
    assert_no_secret_in("filed issue error_type");
}

#[test]
fn no_planted_secret_reaches_a_filed_issue_source_file() {
    assert_no_secret_in("filed issue source_files");
}

#[test]
fn no_planted_secret_reaches_an_issue_history_detail() {
    assert_no_secret_in("issue history detail");
}

#[test]
fn no_planted_secret_reaches_a_backlog_closure_reason() {
    assert_no_secret_in("backlog closure reason");
}

#[test]
fn no_planted_secret_reaches_an_outbox_finding() {
    assert_no_secret_in("outbox finding");
}

#[test]
fn no_planted_secret_reaches_a_backlog_finding() {
    assert_no_secret_in("backlog finding");
}

#[test]
fn no_planted_secret_reaches_backlog_evidence() {
    assert_no_secret_in("backlog evidence");
}

#[tokio::test]
async fn nothing_persisted_holds_a_secret_and_a_reload_keeps_the_fingerprints() {
    let leaked = two_scans(false, 0x5EA1_ED00_0000_0001).await.leaked;
    assert!(leaked.is_empty(), "{}", leaked.join("\n"));
}

#[test]
fn an_echoing_model_gets_no_secret_to_the_tracker_or_the_state_store() {
    let leaked = &echoed().leaked;
    assert!(leaked.is_empty(), "{}", leaked.join("\n"));
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

/// review4 F1: the repro's records (a URL password holding `@`, JSON inside a string,
/// percent-encoded JSON and URLs, `?key=`, a password named without `=`, key-material key names)
/// reach neither the runner's prompt, nor an issue, nor the state store, from a model that copies
/// everything it is shown into every field of its findings (the repro's copycat). The corpus
/// (`corpus::own_kind`) plants the same shapes for the tests above, whose stand-in also copies
/// raw log lines.
#[tokio::test]
async fn everyday_secret_shapes_reach_neither_the_prompt_nor_issues_nor_the_state() {
    let lines = [
        "connect failed for postgresql://app:p@ssZQX01w0rd@db:5432/app",
        "oauth callback failed state=%7B%22password%22%3A%22ZQX05hunter2%22%7D",
        r#"bad payload={\"password\": \"ZQX06hunter2\", \"user\": \"bob\"}"#,
        "redirect failed next=https%3A%2F%2Fdeploy%3AZQX27pw%40hooks.example.com%2Fx",
        "request failed url=https://api.example.com/v1/charge?key=ZQX42abcdefghijk",
        r#"bad request body={\"username\": \"bob\", \"password\": \"ZQX72hunter2\"}"#,
        "smtp login failed: 535 5.7.8 Username and Password not accepted for bob with password ZQX77hunter2",
        "redis error AUTH failed for password 'ZQX84hunter2'",
        r#"cfg dump {"encryptionKey": "ZQX103hunter", "hmacKey": "ZQX113hunter", "dbPass": "ZQX105hunter", "passcode": "ZQX118hunter"}"#,
        "login failed password=ZQX50hunter2",
    ];
    let runner = Arc::new(Echo::new(true));
    let rig = common::rig_with(runner.clone(), SelfMonitoringConfig::default());
    for line in lines {
        rig.logs.log(Level::Critical, "app.worker", line);
    }
    rig.monitor
        .scan(selfmon_core::ScanTrigger::Manual)
        .await
        .unwrap();
    assert!(!rig.tracker.issues().is_empty(), "issues were filed");
    let mut texts = everything(&rig);
    for t in &runner.seen.lock().unwrap().texts {
        texts.push(("runner input", t.clone()));
    }
    let pieces = [
        "ssZQX01w0rd",
        "ZQX05hunter2",
        "ZQX06hunter2",
        "ZQX27pw",
        "ZQX42abcdefghijk",
        "ZQX72hunter2",
        "ZQX77hunter2",
        "ZQX84hunter2",
        "ZQX103hunter",
        "ZQX113hunter",
        "ZQX105hunter",
        "ZQX118hunter",
        "ZQX50hunter2",
    ];
    let leaked: Vec<String> = texts
        .iter()
        .flat_map(|(place, text)| {
            pieces
                .iter()
                .filter(|p| text.contains(*p))
                .map(move |p| format!("{p} in {place}"))
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(leaked.is_empty(), "{}", leaked.join("\n"));
}
