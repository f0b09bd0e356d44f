//! Contract test against the real Claude Code CLI, pointed at a fake Anthropic Messages API served
//! on 127.0.0.1 by this test. It checks that the runner's real flags are accepted, that the tool
//! policy reaches the API request, and that the CLI's real output is parsed.
//!
//! The binary is `$SELFMON_CLAUDE_BIN`, or the one `selfmon-claude/install-claude-cli.sh` installs
//! under `.ci/tools/claude`. Without it the tests skip with a printed reason.
//!
//! Every request the CLI makes is recorded; a proxy on the same port catches any attempt to reach
//! another host (`HTTPS_PROXY`/`HTTP_PROXY` point at it, `NO_PROXY` exempts only 127.0.0.1), and
//! the tests assert there were none.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use selfmon_claude::{ClaudeRunner, ClaudeRunnerConfig, Error, ToolPolicy};
use selfmon_core::digest::Digest;
use selfmon_core::redact::Redactor;
use selfmon_core::{AnalysisRequest, AnalysisRunner, Classification, ClaudeModel, ScanId};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PLATFORM_PACKAGES: &[&str] = &[
    "claude-code-linux-x64",
    "claude-code-linux-arm64",
    "claude-code-linux-x64-musl",
    "claude-code-linux-arm64-musl",
    "claude-code-darwin-arm64",
    "claude-code-darwin-x64",
];

fn claude_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("SELFMON_CLAUDE_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("SELFMON_CLAUDE_BIN={} does not exist", p.display()))
        };
    }
    let base = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.ci/tools/claude/node_modules/@anthropic-ai");
    PLATFORM_PACKAGES
        .iter()
        .map(|pkg| base.join(pkg).join("claude"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "no Claude Code binary: set SELFMON_CLAUDE_BIN or run selfmon-claude/install-claude-cli.sh (looked under {})",
                base.display()
            )
        })
}

macro_rules! binary_or_skip {
    () => {
        match claude_binary() {
            Ok(p) => p,
            Err(reason) => {
                selfmon_core::testing::tool::skip_missing_tool("claude", &reason);
                return;
            }
        }
    };
}

#[derive(Clone)]
enum Script {
    /// Answer the StructuredOutput tool call with the scripted findings.
    Findings,
    /// Refuse the API key.
    Unauthorized,
    /// First ask for these tool calls (name, input); once their results come back, answer with the
    /// scripted findings.
    ToolsFirst(Vec<(&'static str, Value)>),
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    body: Value,
}

#[derive(Default)]
struct Recorder {
    requests: Mutex<Vec<Seen>>,
    escapes: Mutex<Vec<String>>,
}

struct FakeApi {
    port: u16,
    recorder: Arc<Recorder>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn scripted_findings() -> Value {
    json!({"findings": [{
        "classification": "server_bug",
        "title": "Repository sync crashes on empty repositories",
        "summary": "sync_repo raises ValueError when the repository has no commits.",
        "evidence_record_ids": [42],
        "signature_ids": [],
        "error_codes": ["GIT-SYNC-001"],
        "source_files": ["src/sync.py"],
        "error_type": "ValueError",
        "suspected_cause": "HEAD is read before checking for commits.",
        "suggested_fix": null
    }]})
}

async fn start_fake_api(script: Script) -> FakeApi {
    let script = Arc::new(script);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let recorder = Arc::new(Recorder::default());
    let rec = recorder.clone();
    let task = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let rec = rec.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let _ = serve(sock, rec, &script).await;
            });
        }
    });
    FakeApi {
        port,
        recorder,
        task,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// One HTTP/1.1 exchange per connection (`Connection: close`).
async fn serve(mut sock: TcpStream, rec: Arc<Recorder>, script: &Script) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        if sock.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };

    // Anything not addressed to this server directly came through the proxy variables.
    if method == "CONNECT" || target.starts_with("http://") || target.starts_with("https://") {
        rec.escapes.lock().unwrap().push(request_line);
        return respond(&mut sock, 403, "text/plain", b"no network in tests").await;
    }

    let body_start = head_end + 4;
    let body = if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while buf.len() < body_start + len {
            if sock.read_buf(&mut buf).await? == 0 {
                break;
            }
        }
        buf[body_start..buf.len().min(body_start + len)].to_vec()
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            if let Some(b) = dechunk(&buf[body_start..]) {
                break b;
            }
            if sock.read_buf(&mut buf).await? == 0 {
                break Vec::new();
            }
        }
    } else {
        Vec::new()
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    rec.requests.lock().unwrap().push(Seen {
        method: method.clone(),
        target: target.clone(),
        body: body.clone(),
    });

    if method != "POST"
        || !target.starts_with("/v1/messages")
        || target.starts_with("/v1/messages/")
    {
        return respond(
            &mut sock,
            404,
            "application/json",
            br#"{"type":"error","error":{"type":"not_found_error","message":"not here"}}"#,
        )
        .await;
    }
    if let Script::Unauthorized = *script {
        return respond(
            &mut sock,
            401,
            "application/json",
            br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        )
        .await;
    }
    let model = body["model"].as_str().unwrap_or("claude-test").to_string();
    let has_tool_results = body["messages"].to_string().contains("\"tool_result\"");
    let offers_structured = tool_names(&body).iter().any(|t| t == "StructuredOutput");
    // (name, input) of each tool_use block to answer with; none means a plain text answer.
    let calls: Vec<(&str, Value)> = match script {
        Script::ToolsFirst(calls) if !has_tool_results => calls.clone(),
        _ if offers_structured => vec![("StructuredOutput", scripted_findings())],
        _ => Vec::new(),
    };
    let (blocks, stop_reason): (Vec<Value>, &str) = if calls.is_empty() {
        (vec![json!({"type": "text", "text": "ok"})], "end_turn")
    } else {
        let blocks = calls
            .iter()
            .enumerate()
            .map(|(i, (name, input))| json!({"type": "tool_use", "id": format!("toolu_{i:02}"), "name": name, "input": input}))
            .collect();
        (blocks, "tool_use")
    };
    let usage = json!({"input_tokens": 321, "output_tokens": 87});
    if body["stream"] != true {
        let message = json!({"id": "msg_01", "type": "message", "role": "assistant", "model": model, "content": blocks, "stop_reason": stop_reason, "stop_sequence": null, "usage": usage});
        return respond(
            &mut sock,
            200,
            "application/json",
            message.to_string().as_bytes(),
        )
        .await;
    }
    let mut events = vec![(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 321, "output_tokens": 1}}}),
    )];
    for (index, block) in blocks.iter().enumerate() {
        let (start, delta) = if block["type"] == "tool_use" {
            let mut start = block.clone();
            start["input"] = json!({});
            (
                start,
                json!({"type": "input_json_delta", "partial_json": block["input"].to_string()}),
            )
        } else {
            (
                json!({"type": "text", "text": ""}),
                json!({"type": "text_delta", "text": block["text"]}),
            )
        };
        events.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        events.push((
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        ));
        events.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    events.push((
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": 87}}),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));
    let sse: String = events
        .iter()
        .map(|(e, d)| format!("event: {e}\ndata: {d}\n\n"))
        .collect();
    respond(&mut sock, 200, "text/event-stream", sse.as_bytes()).await
}

async fn respond(
    sock: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        _ => "Not Found",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nrequest-id: req_test\r\nconnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body).await?;
    sock.shutdown().await
}

fn config_for(binary: PathBuf, api: &FakeApi, home: &Path) -> ClaudeRunnerConfig {
    let base = format!("http://127.0.0.1:{}", api.port);
    let mut config = ClaudeRunnerConfig {
        binary,
        home_dir: Some(home.to_path_buf()),
        config_dir: Some(home.join(".claude")),
        max_turns: Some(3),
        timeout_secs: 120,
        ..Default::default()
    };
    for (k, v) in [
        ("ANTHROPIC_BASE_URL", base.as_str()),
        ("ANTHROPIC_API_KEY", "sk-ant-test-dummy-key"),
        ("HTTPS_PROXY", base.as_str()),
        ("HTTP_PROXY", base.as_str()),
        ("https_proxy", base.as_str()),
        ("http_proxy", base.as_str()),
        ("NO_PROXY", "127.0.0.1"),
        ("no_proxy", "127.0.0.1"),
    ] {
        config.set_env.insert(k.into(), v.into());
    }
    config
}

fn request() -> AnalysisRequest {
    AnalysisRequest {
        scan_id: ScanId("contract".into()),
        instructions: Redactor::shared()
            .redacted("CONTRACT-INSTRUCTIONS: report problems found in the log digest."),
        data: Redactor::shared()
            .redacted("CONTRACT-DATA: [GIT-SYNC-001] ValueError in sync_repo (record 42)"),
        boundary: "B".into(),
        digest: Digest::default(),
        model: ClaudeModel::Sonnet,
        max_findings: 5,
        first_record_id: 1,
        last_record_id: 100,
        timeout: Duration::from_secs(120),
    }
}

fn tool_names(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_no_escapes(api: &FakeApi) {
    let escapes = api.recorder.escapes.lock().unwrap().clone();
    assert!(
        escapes.is_empty(),
        "the CLI tried to reach other hosts: {escapes:?}"
    );
    for r in api.recorder.requests.lock().unwrap().iter() {
        assert!(
            r.target.starts_with("/v1/messages"),
            "unexpected request {} {}",
            r.method,
            r.target
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_cli_accepts_the_runner_flags_and_its_answer_is_parsed() {
    let binary = binary_or_skip!();
    let api = start_fake_api(Script::Findings).await;
    let home = tempfile::tempdir().unwrap();
    let runner = ClaudeRunner::new(config_for(binary, &api, home.path())).unwrap();
    let analysis = runner
        .analyze(&request())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(analysis.findings.len(), 1, "{analysis:?}");
    let f = &analysis.findings[0];
    assert_eq!(f.classification, Classification::ServerBug);
    assert_eq!(f.title, "Repository sync crashes on empty repositories");
    assert_eq!(f.evidence_record_ids, [42]);
    assert_eq!(f.error_codes[0].as_str(), "GIT-SYNC-001");
    assert!(analysis.rejected.is_empty());
    assert!(
        analysis.usage.output_tokens.is_some_and(|t| t >= 87),
        "{:?}",
        analysis.usage
    );
    assert!(analysis.usage.turns.is_some());

    let requests = api.recorder.requests.lock().unwrap().clone();
    let main = requests
        .iter()
        .find(|r| tool_names(&r.body).iter().any(|t| t == "StructuredOutput"))
        .expect("a Messages request offering the StructuredOutput tool");
    let tools = tool_names(&main.body);
    for forbidden in [
        "Bash",
        "Read",
        "Write",
        "Edit",
        "Glob",
        "Grep",
        "WebFetch",
        "WebSearch",
        "Task",
    ] {
        assert!(
            !tools.iter().any(|t| t == forbidden),
            "tool {forbidden} offered under the default policy: {tools:?}"
        );
    }
    let system = main.body["system"].to_string();
    assert!(
        system.contains("CONTRACT-INSTRUCTIONS"),
        "instructions not in the system prompt"
    );
    let messages = main.body["messages"].to_string();
    assert!(
        messages.contains("CONTRACT-DATA"),
        "stdin data not in the user message"
    );
    assert!(
        !system.contains("CONTRACT-DATA"),
        "data leaked into the system prompt"
    );
    assert_no_escapes(&api);
    // No transcript of the log text is kept (`--no-session-persistence`).
    let transcripts = home.path().join(".claude/projects");
    let kept = std::fs::read_dir(&transcripts)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        kept,
        0,
        "transcripts written under {}",
        transcripts.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_cli_offers_only_read_tools_under_the_read_only_policy() {
    let binary = binary_or_skip!();
    let api = start_fake_api(Script::Findings).await;
    let home = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut config = config_for(binary, &api, home.path());
    config.tool_policy = ToolPolicy::ReadOnlyCode {
        root: root.path().to_path_buf(),
    };
    let runner = ClaudeRunner::new(config).unwrap();
    let analysis = runner
        .analyze(&request())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(analysis.findings.len(), 1);
    let requests = api.recorder.requests.lock().unwrap().clone();
    let main = requests
        .iter()
        .find(|r| tool_names(&r.body).iter().any(|t| t == "StructuredOutput"))
        .expect("a Messages request offering the StructuredOutput tool");
    let tools = tool_names(&main.body);
    for wanted in ["Read", "Grep", "Glob"] {
        assert!(
            tools.iter().any(|t| t == wanted),
            "{wanted} missing: {tools:?}"
        );
    }
    for forbidden in [
        "Bash",
        "Write",
        "Edit",
        "WebFetch",
        "WebSearch",
        "NotebookEdit",
    ] {
        assert!(
            !tools.iter().any(|t| t == forbidden),
            "{forbidden} offered: {tools:?}"
        );
    }
    assert_no_escapes(&api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_cli_reports_a_refused_api_key_as_a_non_retryable_error() {
    let binary = binary_or_skip!();
    let api = start_fake_api(Script::Unauthorized).await;
    let home = tempfile::tempdir().unwrap();
    let mut config = config_for(binary, &api, home.path());
    // The CLI retries a refused key with back-off for minutes; the contract is the final answer.
    config
        .set_env
        .insert("CLAUDE_CODE_MAX_RETRIES".into(), "0".into());
    config.timeout_secs = 60;
    let runner = ClaudeRunner::new(config).unwrap();
    let schema = selfmon_claude::response_schema(None);
    let job = selfmon_claude::ClaudeJob {
        model: &ClaudeModel::Haiku,
        instructions: "x",
        data: "y",
        schema: &schema,
        timeout: None,
    };
    let err = runner.run_job(&job).await.unwrap_err();
    match &err {
        Error::CliReportedError {
            exit_code,
            subtype,
            api_error_status,
            message,
            ..
        } => {
            // Login and API failures arrive as `subtype: success` with `is_error: true` and exit 1.
            assert_eq!(*exit_code, Some(1));
            assert_eq!(subtype, "success");
            assert_eq!(*api_error_status, Some(401));
            assert!(message.contains("API key"), "{message}");
        }
        e => panic!("{e:?}"),
    }
    assert!(!err.is_retryable(), "{err}");
    assert_no_escapes(&api);
}

/// The tool results the CLI sent back in its follow-up request, as text.
fn tool_results(api: &FakeApi) -> String {
    let requests = api.recorder.requests.lock().unwrap().clone();
    requests
        .iter()
        .filter_map(|r| r.body["messages"].as_array())
        .flat_map(|m| m.iter())
        .filter_map(|m| m["content"].as_array())
        .flat_map(|c| c.iter())
        .filter(|block| block["type"] == "tool_result")
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_cli_runs_no_tool_the_model_asks_for_under_the_default_policy() {
    let binary = binary_or_skip!();
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("pwned");
    let secret = scratch.path().join("secret.txt");
    std::fs::write(&secret, "DEFAULT-POLICY-SECRET").unwrap();
    let api = start_fake_api(Script::ToolsFirst(vec![
        (
            "Bash",
            json!({"command": format!("touch {}", marker.display()), "description": "probe"}),
        ),
        ("Read", json!({"file_path": secret})),
        (
            "WebFetch",
            json!({"url": "http://example.com/", "prompt": "probe"}),
        ),
    ]))
    .await;
    let home = tempfile::tempdir().unwrap();
    let runner = ClaudeRunner::new(config_for(binary, &api, home.path())).unwrap();
    let analysis = runner
        .analyze(&request())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(analysis.findings.len(), 1);
    assert!(!marker.exists(), "the model ran a shell command");
    let results = tool_results(&api);
    assert!(!results.is_empty(), "the CLI answered the tool calls");
    assert!(
        !results.contains("DEFAULT-POLICY-SECRET"),
        "the model read a file: {results}"
    );
    assert_no_escapes(&api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_cli_reads_only_inside_the_root_under_the_read_only_policy() {
    let binary = binary_or_skip!();
    let root = tempfile::tempdir().unwrap();
    let inside = root.path().join("handler.py");
    std::fs::write(&inside, "INSIDE-ROOT-SOURCE\n").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = elsewhere.path().join("secret.txt");
    std::fs::write(&outside, "OUTSIDE-ROOT-SECRET\n").unwrap();
    let marker = elsewhere.path().join("pwned");
    let api = start_fake_api(Script::ToolsFirst(vec![
        ("Read", json!({"file_path": inside})),
        ("Read", json!({"file_path": outside})),
        ("Bash", json!({"command": format!("touch {}", marker.display()), "description": "probe"})),
        ("Write", json!({"file_path": root.path().join("new.txt"), "content": "x"})),
        ("Grep", json!({"pattern": "OUTSIDE-ROOT-SECRET", "path": elsewhere.path(), "output_mode": "content"})),
        ("Glob", json!({"pattern": "**/*.txt", "path": elsewhere.path()})),
        ("Grep", json!({"pattern": "INSIDE-ROOT-SOURCE", "path": root.path(), "output_mode": "content"})),
    ]))
    .await;
    let home = tempfile::tempdir().unwrap();
    let mut config = config_for(binary, &api, home.path());
    config.tool_policy = ToolPolicy::ReadOnlyCode {
        root: root.path().to_path_buf(),
    };
    let runner = ClaudeRunner::new(config).unwrap();
    let analysis = runner
        .analyze(&request())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(analysis.findings.len(), 1);
    let results = tool_results(&api);
    assert!(
        results.contains("INSIDE-ROOT-SOURCE"),
        "reading inside the root failed: {results}"
    );
    assert!(
        results.matches("has been denied").count() >= 3,
        "Read, Grep and Glob outside the root must be denied: {results}"
    );
    assert!(
        !results.contains("OUTSIDE-ROOT-SECRET"),
        "read outside the root: {results}"
    );
    assert!(!marker.exists(), "the model ran a shell command");
    assert!(
        !root.path().join("new.txt").exists(),
        "the model wrote a file"
    );
    assert_no_escapes(&api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_settings_hooks_do_not_run_unless_user_settings_are_loaded() {
    let binary = binary_or_skip!();
    for load_user_settings in [false, true] {
        let api = start_fake_api(Script::Findings).await;
        let home = tempfile::tempdir().unwrap();
        let marker = home.path().join("hook-ran");
        let hook = json!([{"hooks": [{"type": "command", "command": format!("touch {}", marker.display())}]}]);
        let settings =
            json!({"hooks": {"SessionStart": hook, "UserPromptSubmit": hook, "Stop": hook}});
        std::fs::create_dir_all(home.path().join(".claude")).unwrap();
        std::fs::write(
            home.path().join(".claude/settings.json"),
            settings.to_string(),
        )
        .unwrap();
        let mut config = config_for(binary.clone(), &api, home.path());
        config.load_user_settings = load_user_settings;
        let runner = ClaudeRunner::new(config).unwrap();
        runner
            .analyze(&request())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // With user settings loaded the hook runs: this proves the hook itself is well formed.
        assert_eq!(
            marker.exists(),
            load_user_settings,
            "load_user_settings={load_user_settings}"
        );
    }
}
