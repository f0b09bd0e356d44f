//! The full real path through the binary: SQLite logs.db → digest → a Claude-CLI subprocess
//! (a fixture behaving like the CLI) → validation → dedup → HTTP to a GitHub-like server on
//! 127.0.0.1.

#[allow(dead_code)]
#[path = "../../selfmon-github/tests/common/fake_github.rs"]
mod fake_github;

use std::process::Command;

use selfmon::sqlite::create_logs_table;

fn write_config(dir: &std::path::Path, github: &str) -> std::path::PathBuf {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/claude-per-signature.sh");
    let cfg = format!(
        r#"{{
  "enabled": true,
  "logs": {{ "path": "logs.db" }},
  "state": {{ "path": "state.db" }},
  "runner": {{ "kind": "claude", "binary": "{}", "timeout_secs": 60 }},
  "tracker": {{ "kind": "github", "repository": "acme/server", "base_url": "{github}", "token_env": "SELFMON_E2E_TOKEN", "mutation_spacing_ms": 10, "retry_backoff_ms": 10 }}
}}"#,
        fixture.display()
    );
    let path = dir.join("selfmon.json");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn scan(config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_selfmon"))
        .args(["scan", "--config", &config.display().to_string(), "--json"])
        .env("SELFMON_E2E_TOKEN", "test-token-not-real")
        .env("GITHUB_TOKEN", "must-never-reach-the-model")
        .output()
        .unwrap()
}

/// Runs a scan off the async runtime (the fake GitHub server lives on it) and parses its report.
async fn scan_report(config: &std::path::Path) -> serde_json::Value {
    let c = config.to_path_buf();
    let o = tokio::task::spawn_blocking(move || scan(&c)).await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_claude_subprocess_to_github_http_files_each_problem_once() {
    let (server, github) = fake_github::FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("logs.db")).unwrap();
    create_logs_table(&conn).unwrap();
    let insert = |level: &str, msg: &str| {
        conn.execute(
            "INSERT INTO logs (timestamp, level, source, message) VALUES (datetime('now'), ?1, 'app', ?2)",
            (level, msg),
        )
        .unwrap();
    };
    insert(
        "ERROR",
        "[GIT-SYNC-001] git fetch failed for /srv/golden/alpha: exit status 128",
    );
    insert(
        "CRITICAL",
        "[DB-LOCK-003] database is locked after 5 retries",
    );
    let config = write_config(dir.path(), &server.uri());

    let report = scan_report(&config).await;
    assert_eq!(report["record"]["issues_created"], 2, "{report:#}");
    assert_eq!(report["record"]["cost_usd"], 0.0123);
    let issues = github.issues();
    assert_eq!(issues.len(), 2);
    assert!(issues
        .iter()
        .all(|i| i.body.contains("<!-- selfmon:fingerprint=")));
    assert!(issues
        .iter()
        .all(|i| i.labels.contains(&"selfmon".to_string())));

    // The same problems again (another path, another retry count; the same exit status, which
    // names the outcome and is kept): known before analysis, nothing filed twice.
    insert(
        "ERROR",
        "[GIT-SYNC-001] git fetch failed for /srv/golden/beta: exit status 128",
    );
    insert(
        "CRITICAL",
        "[DB-LOCK-003] database is locked after 7 retries",
    );
    let report = scan_report(&config).await;
    assert_eq!(report["record"]["issues_created"], 0, "{report:#}");
    assert_eq!(github.issues().len(), 2);
    let creates = github
        .log()
        .iter()
        .filter(|l| l.starts_with("POST") && l.ends_with("/issues"))
        .count();
    assert_eq!(creates, 2, "{:?}", github.log());
}
