//! The runner against a fake CLI (`tests/fixtures/fake-claude.sh`) that records what it received
//! and answers per scenario: real subprocesses, real pipes, real process groups.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use selfmon_claude::{ClaudeJob, ClaudeRunner, ClaudeRunnerConfig, Error, ToolPolicy};
use selfmon_core::digest::Digest;
use selfmon_core::redact::Redactor;
use selfmon_core::{
    AnalysisRequest, AnalysisRunner, Classification, ClaudeModel, Level, LogRecord, ScanId,
    SelfMonitoringConfig,
};
use tempfile::TempDir;

const INSTRUCTIONS: &str = "INSTRUCTIONS-MARKER: analyse the digest on stdin.";

/// One fake CLI: a wrapper script that selects the scenario, and the directory it records into.
struct Fake {
    dir: TempDir,
}

impl Fake {
    fn new(scenario: &str) -> Fake {
        Fake::with_findings(scenario, None)
    }

    fn with_findings(scenario: &str, findings: Option<serde_json::Value>) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("record");
        std::fs::create_dir(&record).unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-claude.sh");
        let mut script = format!(
            "#!/bin/bash\nexport FAKE_CLAUDE_SCENARIO='{scenario}' FAKE_CLAUDE_RECORD='{}'\n",
            record.display()
        );
        if let Some(f) = findings {
            let file = dir.path().join("findings.json");
            std::fs::write(&file, f.to_string()).unwrap();
            script.push_str(&format!(
                "export FAKE_CLAUDE_FINDINGS='{}'\n",
                file.display()
            ));
        }
        script.push_str(&format!("exec '{}' \"$@\"\n", fixture.display()));
        let wrapper = dir.path().join("claude");
        std::fs::write(&wrapper, script).unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        Fake { dir }
    }

    fn config(&self) -> ClaudeRunnerConfig {
        ClaudeRunnerConfig {
            binary: self.dir.path().join("claude"),
            ..Default::default()
        }
    }

    fn runner(&self) -> ClaudeRunner {
        ClaudeRunner::new(self.config()).unwrap()
    }

    fn recorded(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join("record").join(name)).unwrap_or_default()
    }

    fn argv(&self) -> Vec<String> {
        let raw = self.recorded("argv");
        raw.split(|&b| b == 0)
            .map(|a| String::from_utf8(a.to_vec()).unwrap())
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, rest)| rest.to_vec())
            .unwrap_or_default()
    }

    fn env(&self) -> Vec<(String, String)> {
        let raw = self.recorded("env");
        raw.split(|&b| b == 0)
            .filter(|e| !e.is_empty())
            .filter_map(|e| {
                let s = String::from_utf8_lossy(e).into_owned();
                s.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect()
    }

    fn pid_file(&self, name: &str) -> Option<i32> {
        String::from_utf8(self.recorded(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

fn value_after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn request(data: String) -> AnalysisRequest {
    AnalysisRequest {
        scan_id: ScanId("scan-1".into()),
        instructions: Redactor::shared().redacted(INSTRUCTIONS),
        data: Redactor::shared().redacted(&data),
        boundary: "BOUNDARY".into(),
        digest: Digest::default(),
        model: ClaudeModel::Sonnet,
        max_findings: 10,
        first_record_id: 1,
        last_record_id: 100,
        timeout: Duration::from_secs(60),
    }
}

fn good_finding(title: &str) -> serde_json::Value {
    serde_json::json!({
        "classification": "client_misuse", "title": title, "summary": "Clients send a removed option.",
        "evidence_record_ids": [5, 6], "signature_ids": [], "error_codes": ["API-PARAM-004"],
        "source_files": ["server/api.py"],
    })
}

/// Whether a process still runs (a zombie awaiting its new parent counts as gone).
fn is_running(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X"))
}

/// Waits (bounded) for a killed process to disappear; SIGKILL delivery is asynchronous.
async fn gone_eventually(pid: i32) -> bool {
    for _ in 0..200 {
        if !is_running(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test]
async fn a_successful_run_returns_validated_findings_and_usage() {
    let fake = Fake::new("success");
    let analysis = fake
        .runner()
        .analyze(&request("DATA".into()))
        .await
        .unwrap();
    assert_eq!(analysis.findings.len(), 1, "{analysis:?}");
    let f = &analysis.findings[0];
    assert_eq!(f.classification, Classification::ServerBug);
    assert_eq!(f.title, "Sync crashes on empty repo");
    assert_eq!(f.error_codes[0].as_str(), "GIT-SYNC-001");
    assert!(analysis.rejected.is_empty());
    let u = analysis.usage;
    assert_eq!(u.input_tokens, Some(150));
    assert_eq!(u.output_tokens, Some(40));
    assert_eq!(u.turns, Some(2));
    assert_eq!(u.duration_ms, Some(1234));
    assert_eq!(u.cost_usd, Some(0.0421));
}

#[tokio::test]
async fn the_default_policy_passes_no_tools_and_sends_the_data_on_stdin() {
    let fake = Fake::new("success");
    let mut req = request("LOG DIGEST\n[GIT-SYNC-001] clone failed\n".into());
    req.model = ClaudeModel::Custom("claude-opus-4-1-20250805".into());
    fake.runner().analyze(&req).await.unwrap();
    let argv = fake.argv();
    assert_eq!(argv[0], "-p");
    assert_eq!(value_after(&argv, "--output-format"), Some("json"));
    assert_eq!(value_after(&argv, "--tools"), Some(""));
    assert_eq!(value_after(&argv, "--permission-mode"), Some("dontAsk"));
    assert_eq!(
        value_after(&argv, "--model"),
        Some("claude-opus-4-1-20250805")
    );
    assert_eq!(value_after(&argv, "--max-turns"), Some("10"));
    assert!(argv.contains(&"--strict-mcp-config".to_string()));
    assert!(argv.contains(&"--no-session-persistence".to_string()));
    assert!(!argv
        .iter()
        .any(|a| a.contains("dangerously") || a.contains("bypassPermissions")));
    assert!(!argv
        .iter()
        .any(|a| a == "--add-dir" || a == "--mcp-config" || a == "--allowedTools"));
    let schema: serde_json::Value =
        serde_json::from_str(value_after(&argv, "--json-schema").unwrap()).unwrap();
    assert_eq!(schema["properties"]["findings"]["maxItems"], 10);
    assert_eq!(fake.recorded("stdin"), req.data.as_bytes());
    assert_eq!(fake.recorded("system_prompt"), INSTRUCTIONS.as_bytes());
    assert!(!argv
        .iter()
        .any(|a| a.contains("INSTRUCTIONS-MARKER") || a.contains("LOG DIGEST")));
    // A fresh, empty, private working directory that is removed afterwards.
    assert!(fake.recorded("cwd_listing").is_empty());
    let cwd = String::from_utf8(fake.recorded("cwd")).unwrap();
    assert!(cwd.contains("selfmon-claude-"), "{cwd}");
    assert!(!Path::new(cwd.trim()).exists());
}

#[tokio::test]
async fn a_five_megabyte_digest_goes_on_stdin_and_argv_stays_small() {
    let fake = Fake::new("success");
    let data = "x".repeat(5 * 1024 * 1024);
    fake.runner().analyze(&request(data.clone())).await.unwrap();
    let argv_bytes: usize = fake.argv().iter().map(|a| a.len() + 1).sum();
    assert!(argv_bytes < 16 * 1024, "argv is {argv_bytes} bytes");
    assert_eq!(fake.recorded("stdin").len(), data.len());
}

#[tokio::test]
async fn data_over_the_stdin_bound_is_refused_before_spawning() {
    let fake = Fake::new("success");
    let config = ClaudeRunnerConfig {
        max_stdin_bytes: 1024,
        ..fake.config()
    };
    let runner = ClaudeRunner::new(config).unwrap();
    let err = runner
        .analyze(&request("y".repeat(1025)))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("more than the limit of 1024 bytes"),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert!(
        fake.recorded("argv").is_empty(),
        "the CLI must not have been started"
    );
}

#[tokio::test]
async fn the_github_token_never_reaches_the_child_environment() {
    // Set for the whole test process; no other test depends on these variables.
    std::env::set_var("GITHUB_TOKEN", "ghp_must_not_leak");
    std::env::set_var("GH_TOKEN", "ghp_must_not_leak");
    std::env::set_var("SELFMON_UNRELATED_SECRET", "nope");
    let fake = Fake::new("success");
    let mut config = fake.config();
    config
        .set_env
        .insert("ANTHROPIC_BASE_URL".into(), "http://127.0.0.1:9".into());
    ClaudeRunner::new(config)
        .unwrap()
        .analyze(&request("d".into()))
        .await
        .unwrap();
    let env = fake.env();
    assert!(
        !env.iter().any(|(_, v)| v.contains("ghp_must_not_leak")),
        "{env:?}"
    );
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    for absent in ["GITHUB_TOKEN", "GH_TOKEN", "SELFMON_UNRELATED_SECRET"] {
        assert!(!names.contains(&absent), "{absent} leaked: {names:?}");
    }
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("DISABLE_AUTOUPDATER"), Some("1"));
    assert_eq!(get("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"), Some("1"));
    assert_eq!(get("ANTHROPIC_BASE_URL"), Some("http://127.0.0.1:9"));
    assert!(get("PATH").is_some());
}

#[tokio::test]
async fn read_only_code_policy_grants_read_tools_on_the_root_only() {
    let fake = Fake::new("success");
    let root = tempfile::tempdir().unwrap();
    let config = ClaudeRunnerConfig {
        tool_policy: ToolPolicy::ReadOnlyCode {
            root: root.path().to_path_buf(),
        },
        ..fake.config()
    };
    ClaudeRunner::new(config)
        .unwrap()
        .analyze(&request("d".into()))
        .await
        .unwrap();
    let argv = fake.argv();
    assert_eq!(value_after(&argv, "--tools"), Some("Read,Grep,Glob"));
    assert_eq!(
        value_after(&argv, "--add-dir"),
        Some(root.path().to_str().unwrap())
    );
    assert!(!argv
        .iter()
        .any(|a| a.contains("Bash") || a.contains("Write") || a.contains("Edit")));
    assert!(!argv
        .iter()
        .any(|a| a.contains("dangerously") || a.contains("bypassPermissions")));
}

#[tokio::test]
async fn login_failure_with_is_error_is_a_non_retryable_error() {
    let fake = Fake::new("is_error");
    let err = fake
        .runner()
        .analyze(&request("d".into()))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("Invalid API key"), "{msg}");
    assert!(
        msg.contains("authentication failed"),
        "stderr tail missing: {msg}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn max_turns_is_reported_with_its_subtype_and_what_the_run_cost() {
    let fake = Fake::new("max_turns");
    let err = fake.runner().run_job(&job("d")).await.unwrap_err();
    assert_eq!(
        err.usage().and_then(|u| u.cost_usd),
        Some(0.5),
        "the model ran: the failure cost money"
    );
    assert!(err.is_retryable());
    let core = selfmon_core::Error::from(err);
    assert_eq!(core.analysis_usage().and_then(|u| u.turns), Some(10));
    assert!(core.is_retryable(), "as retryable as the failure itself");
    let selfmon_core::Error::AnalysisFailed { source, .. } = core else {
        panic!("{core:?}")
    };
    // A run that stops early on these records may stop early on them again: the engine counts it.
    let selfmon_core::Error::NoAnswer { source } = *source else {
        panic!("{source:?}")
    };
    let err = source.downcast::<Error>().expect("the runner's own error");
    match *err {
        Error::Unfinished {
            subtype,
            num_turns,
            exit_code,
            hint,
            ..
        } => {
            assert_eq!(subtype, "error_max_turns");
            assert_eq!(num_turns, Some(10));
            assert_eq!(exit_code, Some(1));
            assert!(hint.contains("max_turns"));
        }
        e => panic!("{e:?}"),
    }
}

fn job(data: &str) -> ClaudeJob<'_> {
    static SCHEMA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    ClaudeJob {
        model: &ClaudeModel::Haiku,
        instructions: INSTRUCTIONS,
        data,
        schema: SCHEMA.get_or_init(|| selfmon_claude::response_schema(None)),
        timeout: None,
    }
}

#[tokio::test]
async fn noisy_fenced_bracketed_multi_candidate_and_non_utf8_output_is_still_parsed() {
    for scenario in ["noisy", "fenced", "stray_bracket", "candidates", "non_utf8"] {
        let fake = Fake::new(scenario);
        let analysis = fake
            .runner()
            .analyze(&request("d".into()))
            .await
            .unwrap_or_else(|e| panic!("{scenario}: {e}"));
        assert_eq!(analysis.findings.len(), 1, "{scenario}");
        assert_eq!(analysis.usage.turns, Some(2), "{scenario}");
    }
}

#[tokio::test]
async fn structured_output_of_the_wrong_shape_or_missing_fails_the_run() {
    for scenario in ["invalid_schema", "no_structured_output"] {
        let fake = Fake::new(scenario);
        let err = fake
            .runner()
            .analyze(&request("d".into()))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("valid structured output"),
            "{scenario}: {err}"
        );
    }
}

#[tokio::test]
async fn binary_garbage_is_an_error_that_shows_the_output() {
    let fake = Fake::new("binary_garbage");
    match fake.runner().run_job(&job("d")).await.unwrap_err() {
        Error::UnparseableOutput {
            stdout_head,
            exit_code,
            ..
        } => {
            assert!(stdout_head.contains("garbage"));
            assert_eq!(exit_code, Some(0));
        }
        e => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn a_nonzero_exit_without_a_result_carries_code_and_stderr() {
    let fake = Fake::new("exit_2");
    match fake.runner().run_job(&job("d")).await.unwrap_err() {
        Error::Exit {
            code, stderr_tail, ..
        } => {
            assert_eq!(code, 2);
            assert!(stderr_tail.contains("something broke"));
        }
        e => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn output_over_the_cap_is_an_error_not_an_out_of_memory() {
    for (scenario, stream) in [("huge_stdout", "stdout"), ("huge_stderr", "stderr")] {
        let fake = Fake::new(scenario);
        let config = ClaudeRunnerConfig {
            max_stdout_bytes: 1024 * 1024,
            max_stderr_bytes: 1024 * 1024,
            ..fake.config()
        };
        let err = ClaudeRunner::new(config)
            .unwrap()
            .run_job(&job("d"))
            .await
            .unwrap_err();
        match err {
            Error::OutputTooLarge { stream: s, limit } => {
                assert_eq!(s, stream);
                assert_eq!(limit, 1024 * 1024);
            }
            e => panic!("{scenario}: {e:?}"),
        }
        let pid = fake.pid_file("pid").unwrap();
        assert!(
            gone_eventually(pid).await,
            "{scenario}: fake CLI {pid} still runs"
        );
    }
}

#[tokio::test]
async fn a_hanging_cli_times_out_and_its_whole_process_group_is_gone() {
    let fake = Fake::new("hang");
    let mut req = request("d".into());
    req.timeout = Duration::from_secs(2);
    let err = fake.runner().analyze(&req).await.unwrap_err();
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains("did not finish within 2s"),
        "{err}"
    );
    let cli = fake.pid_file("pid").expect("the fake CLI recorded its pid");
    let grandchild = fake
        .pid_file("grandchild.pid")
        .expect("the fake CLI started a grandchild");
    assert!(gone_eventually(cli).await, "CLI {cli} survived");
    assert!(
        gone_eventually(grandchild).await,
        "grandchild {grandchild} survived the timeout"
    );
}

#[tokio::test]
async fn cancelling_the_analysis_kills_the_process_group() {
    let fake = Fake::new("hang");
    let runner = fake.runner();
    let req = request("d".into());
    // The caller gives up long before the runner's own timeout.
    let outcome = tokio::time::timeout(Duration::from_secs(2), runner.analyze(&req)).await;
    assert!(outcome.is_err());
    let grandchild = fake
        .pid_file("grandchild.pid")
        .expect("the fake CLI started a grandchild");
    assert!(
        gone_eventually(grandchild).await,
        "grandchild {grandchild} survived cancellation"
    );
}

#[tokio::test]
async fn a_cli_killed_by_a_signal_is_reported_as_such() {
    let fake = Fake::new("signal");
    match fake.runner().run_job(&job("d")).await.unwrap_err() {
        Error::KilledBySignal { signal, .. } => assert_eq!(signal, libc::SIGKILL),
        e => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn a_cli_that_does_not_read_stdin_still_gets_its_answer_read() {
    let fake = Fake::new("no_stdin_read");
    let analysis = fake
        .runner()
        .analyze(&request("z".repeat(2 * 1024 * 1024)))
        .await
        .unwrap();
    assert_eq!(analysis.findings.len(), 1);
}

#[tokio::test]
async fn a_missing_binary_is_a_typed_error_that_says_how_to_install() {
    let config = ClaudeRunnerConfig {
        binary: PathBuf::from("/nonexistent/selfmon-test/claude"),
        ..Default::default()
    };
    let err = ClaudeRunner::new(config)
        .unwrap()
        .run_job(&job("d"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CliNotFound { .. }), "{err:?}");
    assert!(err
        .to_string()
        .contains("npm install -g @anthropic-ai/claude-code"));
    let core: selfmon_core::Error = err.into();
    assert!(!core.is_retryable());
}

#[tokio::test]
async fn bad_findings_are_rejected_one_by_one_with_reasons() {
    let mut bad_code = good_finding("Bad code");
    bad_code["error_codes"] = serde_json::json!(["api-param-4"]);
    let mut out_of_range = good_finding("Out of range");
    out_of_range["evidence_record_ids"] = serde_json::json!([5000]);
    let mut escaping = good_finding("Escaping path");
    escaping["source_files"] = serde_json::json!(["/etc/shadow"]);
    let mut unknown_sig = good_finding("Unknown signature");
    unknown_sig["signature_ids"] = serde_json::json!(["ffffffffffffffff"]);
    let mut uncovered = good_finding("Record the digest never showed");
    uncovered["evidence_record_ids"] = serde_json::json!([50]);
    let records = [
        LogRecord::new(5, Level::Error, "[API-PARAM-004] unknown option `fast`"),
        LogRecord::new(6, Level::Error, "[API-PARAM-004] unknown option `slow`"),
    ];
    let digest = Digest::build(records.iter(), &SelfMonitoringConfig::default()).unwrap();
    let sig = digest.signature_ids()[0].clone();
    let mut good = good_finding("Removed option still sent");
    good["signature_ids"] = serde_json::json!([sig]);
    let findings = serde_json::json!([
        bad_code,
        good,
        out_of_range,
        escaping,
        unknown_sig,
        uncovered
    ]);
    let fake = Fake::with_findings("success", Some(findings));
    let mut req = request("d".into());
    req.digest = digest;
    let analysis = fake.runner().analyze(&req).await.unwrap();
    assert_eq!(analysis.findings.len(), 1, "{:#?}", analysis.rejected);
    assert_eq!(analysis.findings[0].title, "Removed option still sent");
    let titles: Vec<&str> = analysis.rejected.iter().map(|r| r.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Bad code",
            "Out of range",
            "Escaping path",
            "Unknown signature",
            "Record the digest never showed"
        ]
    );
    let last = &analysis.rejected[4].reasons;
    assert_eq!(last.len(), 1, "{last:?}");
    assert!(last[0].contains("not covered by any signature"), "{last:?}");
    assert!(analysis.rejected.iter().all(|r| !r.reasons.is_empty()));
}

#[tokio::test]
async fn each_job_runs_on_its_own_model_and_config_changes_apply_to_the_next_job() {
    let fake = Fake::new("success");
    let runner = fake.runner();
    let schema = serde_json::json!({"type": "object"});
    for model in [
        ClaudeModel::Haiku,
        ClaudeModel::Opus,
        ClaudeModel::Custom("claude-next-9".into()),
    ] {
        let job = ClaudeJob {
            model: &model,
            instructions: "golden repo",
            data: "repo",
            schema: &schema,
            timeout: None,
        };
        let out = runner.run_job(&job).await.unwrap();
        assert!(out.structured_output["findings"].is_array());
        assert_eq!(
            out.session_id.as_deref(),
            Some("11111111-2222-3333-4444-555555555555")
        );
        assert_eq!(
            value_after(&fake.argv(), "--model"),
            Some(model.as_cli_arg())
        );
    }
    let mut changed = runner.config();
    changed.max_turns = Some(3);
    changed.fallback_model = Some(ClaudeModel::Sonnet);
    runner.set_config(changed).unwrap();
    runner.run_job(&job("d")).await.unwrap();
    let argv = fake.argv();
    assert_eq!(value_after(&argv, "--max-turns"), Some("3"));
    assert_eq!(value_after(&argv, "--fallback-model"), Some("sonnet"));
    let mut invalid = runner.config();
    invalid.pass_env.push("GITHUB_TOKEN".into());
    assert!(runner.set_config(invalid).is_err());
    assert_eq!(runner.config().max_turns, Some(3));
}

#[tokio::test]
async fn a_fallback_model_equal_to_the_jobs_model_is_not_passed_and_the_run_succeeds() {
    let fake = Fake::new("success");
    let runner = ClaudeRunner::new(ClaudeRunnerConfig {
        fallback_model: Some(ClaudeModel::Haiku),
        ..fake.config()
    })
    .unwrap();
    let schema = serde_json::json!({"type": "object"});
    let (haiku, sonnet) = (ClaudeModel::Haiku, ClaudeModel::Sonnet);
    let job = |model: &'static str| ClaudeJob {
        model: if model == "haiku" { &haiku } else { &sonnet },
        instructions: "golden repo",
        data: "repo",
        schema: &schema,
        timeout: None,
    };
    // The fixture refuses `--fallback-model haiku --model haiku` as Claude Code does.
    let out = runner.run_job(&job("haiku")).await;
    assert!(out.is_ok(), "{out:?}");
    let argv = fake.argv();
    assert_eq!(value_after(&argv, "--model"), Some("haiku"));
    assert_eq!(value_after(&argv, "--fallback-model"), None);
    // Another model keeps its fallback.
    runner.run_job(&job("sonnet")).await.unwrap();
    assert_eq!(value_after(&fake.argv(), "--fallback-model"), Some("haiku"));
}

#[tokio::test]
async fn the_runner_works_behind_the_core_trait_object() {
    let fake = Fake::new("success");
    let runner: Arc<dyn AnalysisRunner> = Arc::new(fake.runner());
    assert_eq!(runner.name(), "claude");
    assert_eq!(
        runner
            .analyze(&request("d".into()))
            .await
            .unwrap()
            .findings
            .len(),
        1
    );
}

/// Waits (bounded) for the runner's background stopping and cleanup to finish.
async fn cleaned_up(runner: &ClaudeRunner) {
    tokio::time::timeout(Duration::from_secs(30), runner.wait_for_cleanup())
        .await
        .expect("the runner finished its cleanup");
}

/// The private directory of the run: the parent of the working directory the fake recorded.
fn private_dir(fake: &Fake) -> PathBuf {
    let cwd = String::from_utf8(fake.recorded("cwd")).unwrap();
    Path::new(cwd.trim())
        .parent()
        .expect("the working directory has a parent")
        .to_path_buf()
}

#[tokio::test]
async fn a_cancelled_run_gets_sigterm_first_and_its_leftovers_and_private_dir_are_removed() {
    let fake = Fake::new("hang_leaving_files");
    let home = fake.dir.path().join("home");
    let sessions = home.join(".claude/sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    // Another process's session file: never touched.
    let foreign = sessions.join("4000000.json");
    std::fs::write(&foreign, r#"{"pid":4000000,"status":"busy"}"#).unwrap();
    let config = ClaudeRunnerConfig {
        home_dir: Some(home.clone()),
        ..fake.config()
    };
    let runner = ClaudeRunner::new(config)
        .unwrap()
        .with_termination_grace(Duration::from_secs(10));
    let req = request("d".into());
    let started = async {
        while fake.pid_file("grandchild.pid").is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // Dropping the analysis future (as a cancelled scan does) once the CLI is up.
    tokio::select! {
        _ = runner.analyze(&req) => panic!("the hanging CLI cannot answer"),
        () = started => {}
    }
    cleaned_up(&runner).await;
    let cli = fake.pid_file("pid").unwrap();
    let grandchild = fake.pid_file("grandchild.pid").unwrap();
    assert_eq!(
        String::from_utf8(fake.recorded("term")).unwrap().trim(),
        "TERM",
        "the CLI was given SIGTERM to exit on its own"
    );
    assert!(gone_eventually(cli).await, "CLI {cli} survived");
    assert!(
        gone_eventually(grandchild).await,
        "grandchild {grandchild} survived"
    );
    assert!(
        !sessions.join(format!("{cli}.json")).exists(),
        "the busy session file is left"
    );
    assert!(
        !Path::new(&format!("/tmp/cc-socks/{cli}.sock")).exists(),
        "the socket is left"
    );
    assert!(
        foreign.exists(),
        "another process's session file was removed"
    );
    assert!(
        !private_dir(&fake).exists(),
        "the private directory is left"
    );
}

#[tokio::test]
async fn a_cli_ignoring_sigterm_is_killed_after_the_grace_with_its_whole_group() {
    let fake = Fake::new("hang_ignoring_term");
    let runner = fake.runner().with_termination_grace(Duration::from_secs(1));
    let req = request("d".into());
    let started = async {
        while fake.pid_file("grandchild.pid").is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The trap is set before the grandchild starts; give the loop a moment to run.
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::select! {
        _ = runner.analyze(&req) => panic!("the hanging CLI cannot answer"),
        () = started => {}
    }
    cleaned_up(&runner).await;
    assert_eq!(
        String::from_utf8(fake.recorded("term")).unwrap().trim(),
        "TERM",
        "SIGTERM came first"
    );
    let cli = fake.pid_file("pid").unwrap();
    let grandchild = fake.pid_file("grandchild.pid").unwrap();
    assert!(gone_eventually(cli).await, "CLI {cli} survived SIGKILL");
    assert!(
        gone_eventually(grandchild).await,
        "grandchild {grandchild} ignoring SIGTERM survived"
    );
    assert!(!private_dir(&fake).exists());
}

#[tokio::test]
async fn the_private_dir_is_0700_its_instructions_0600_and_it_is_removed_after_a_run() {
    for scenario in ["success", "exit_2"] {
        let fake = Fake::new(scenario);
        let runner = fake.runner();
        let _ = runner.run_job(&job("d")).await;
        assert_eq!(
            String::from_utf8(fake.recorded("private_dir_mode"))
                .unwrap()
                .trim(),
            "700",
            "{scenario}"
        );
        assert_eq!(
            String::from_utf8(fake.recorded("system_prompt_mode"))
                .unwrap()
                .trim(),
            "600",
            "{scenario}"
        );
        assert!(!private_dir(&fake).exists(), "{scenario}: private dir left");
    }
}

#[tokio::test]
async fn the_runner_passes_the_analysis_runner_conformance_suite() {
    let fake = Fake::new("success");
    selfmon_core::conformance::analysis_runner(&fake.runner()).await;
}

#[tokio::test]
async fn the_runner_passes_the_conformance_timeout_check_against_a_hanging_cli() {
    let fake = Fake::new("hang");
    selfmon_core::conformance::analysis_runner_times_out(&fake.runner()).await;
}
