//! End-to-end tests of the `selfmon` binary against a generated logs.db, the offline runner and
//! the folder tracker.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use selfmon::sqlite::{create_logs_table, SqliteStateStore, StateStoreOptions};
use selfmon::{ScanHistory, ScanLedger};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_selfmon"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run selfmon")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        let conn = rusqlite::Connection::open(env.logs()).unwrap();
        create_logs_table(&conn).unwrap();
        env.write_config("");
        env
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn logs(&self) -> PathBuf {
        self.path("logs.db")
    }
    fn config(&self) -> String {
        self.path("selfmon.json").display().to_string()
    }
    fn write_config(&self, extra: &str) {
        let cfg = format!(
            r#"// test configuration
{{
  "enabled": true,
  "max_new_issues_per_scan": 20,
  {extra}
  "logs": {{ "path": "logs.db" }},
  "state": {{ "path": "state.db" }},
  "runner": {{ "kind": "offline" }},
  "tracker": {{ "kind": "folder", "dir": "issues" }}
}}"#
        );
        std::fs::write(self.path("selfmon.json"), cfg).unwrap();
    }
    fn log(&self, level: &str, source: &str, message: &str) {
        let conn = rusqlite::Connection::open(self.logs()).unwrap();
        conn.execute(
            "INSERT INTO logs (timestamp, level, source, message) VALUES (datetime('now'), ?1, ?2, ?3)",
            (level, source, message),
        )
        .unwrap();
    }
    fn issue_files(&self) -> usize {
        std::fs::read_dir(self.path("issues"))
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "md")
                })
                .count()
            })
            .unwrap_or(0)
    }
    fn scan(&self, extra: &[&str]) -> Output {
        let mut args = vec!["scan", "--config"];
        let c = self.config();
        args.push(&c);
        args.extend_from_slice(extra);
        run(&args)
    }
}

fn seed(env: &Env) {
    env.log(
        "ERROR",
        "cidx.git",
        "[GIT-SYNC-001] git fetch failed for /srv/golden/alpha: exit status 128",
    );
    env.log(
        "ERROR",
        "cidx.api",
        "Traceback (most recent call last):\n  File \"api.py\", line 3\nValueError: bad ref",
    );
    env.log(
        "CRITICAL",
        "cidx.db",
        "[DB-LOCK-003] database is locked after 5 retries",
    );
    env.log("INFO", "cidx.http", "GET /health 200 in 3ms");
}

#[test]
fn first_scan_files_second_files_none_then_only_new_ones() {
    let env = Env::new();
    seed(&env);
    let first = env.scan(&[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let out = text(&first.stdout);
    assert!(out.contains("filed 3"), "{out}");
    assert_eq!(env.issue_files(), 3);

    let second = env.scan(&[]);
    assert!(second.status.success());
    assert!(text(&second.stdout).contains("filed 0"));
    assert_eq!(env.issue_files(), 3);

    seed(&env);
    env.log(
        "CRITICAL",
        "cidx.index",
        "[INDEX-WRITE-002] index writer crashed: disk full",
    );
    let third = env.scan(&[]);
    assert!(third.status.success());
    let out = text(&third.stdout);
    assert!(out.contains("filed 1"), "{out}");
    assert_eq!(env.issue_files(), 4);
}

#[test]
fn json_output_parses_as_the_scan_report() {
    let env = Env::new();
    seed(&env);
    let o = env.scan(&["--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(report["record"]["status"], "SUCCESS");
    assert_eq!(report["record"]["records_read"], 3);
    assert_eq!(report["record"]["issues_created"], 3);
}

#[test]
fn dry_run_flag_files_nothing() {
    let env = Env::new();
    seed(&env);
    let o = env.scan(&["--dry-run"]);
    assert!(o.status.success());
    assert!(
        text(&o.stdout).contains("would file"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(env.issue_files(), 0);
}

/// The titles a scan report filed (real) or would have filed (dry run), sorted.
fn titles(report: &serde_json::Value, outcome: &str) -> Vec<String> {
    let mut t: Vec<String> = report["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["outcome"] == outcome)
        .map(|o| o["title"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

#[test]
fn a_dry_run_then_a_real_scan_files_exactly_what_the_dry_run_showed() {
    let env = Env::new();
    // A budget below the problems: the preview must show the deferrals the real scan makes too.
    env.write_config("");
    let cfg = std::fs::read_to_string(env.path("selfmon.json")).unwrap();
    std::fs::write(
        env.path("selfmon.json"),
        cfg.replace(
            "\"max_new_issues_per_scan\": 20",
            "\"max_new_issues_per_scan\": 2",
        ),
    )
    .unwrap();
    seed(&env);
    let mut previews = Vec::new();
    for _ in 0..2 {
        let o = env.scan(&["--dry-run", "--json"]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        previews.push(serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap());
    }
    assert_eq!(env.issue_files(), 0, "a preview files nothing");
    let would = titles(&previews[0], "would_file");
    assert_eq!(would.len(), 2, "{}", previews[0]);
    assert_eq!(
        would,
        titles(&previews[1], "would_file"),
        "a second preview shows the same: the first consumed nothing"
    );
    assert_eq!(previews[0]["record"]["dry_run"], true);
    assert_eq!(previews[0]["record"]["deferred"], 1, "{}", previews[0]);

    let o = env.scan(&["--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let real: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        titles(&real, "filed"),
        would,
        "filed exactly what the preview showed"
    );
    assert_eq!(
        real["record"]["records_read"],
        previews[0]["record"]["records_read"]
    );
    assert_eq!(real["record"]["deferred"], 1);
    assert_eq!(env.issue_files(), 2);
}

#[test]
fn a_bad_config_exits_2_naming_the_field() {
    let env = Env::new();
    env.write_config(r#""cadence_minutes": 0, "dedup": {"related_threshold": 2.0},"#);
    let o = env.scan(&[]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("cadence_minutes") && err.contains("dedup.related_threshold"),
        "{err}"
    );
    let o = run(&["config", "validate", "--config", &env.config()]);
    assert_eq!(o.status.code(), Some(2));

    env.write_config(r#""model": 42,"#);
    let o = env.scan(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("model"), "{}", text(&o.stderr));
    assert!(!text(&o.stderr).contains("panicked"));
}

#[test]
fn a_missing_log_file_exits_2_naming_the_path() {
    let env = Env::new();
    std::fs::remove_file(env.logs()).unwrap();
    let o = env.scan(&[]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains(&env.logs().display().to_string()), "{err}");
}

#[test]
fn a_missing_config_file_exits_2() {
    let o = run(&["scan", "--config", "/nonexistent/selfmon.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("/nonexistent/selfmon.json"));
    let o = run(&["scan"]);
    assert_eq!(o.status.code(), Some(2), "usage error");
}

#[test]
fn a_scan_while_another_holds_the_lease_exits_3() {
    let env = Env::new();
    seed(&env);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = SqliteStateStore::open(env.path("state.db"), StateStoreOptions::default()).unwrap();
    let outcome = rt
        .block_on(store.try_acquire_lease(
            "other-process/scan",
            std::time::Duration::from_secs(600),
            chrono::Utc::now(),
        ))
        .unwrap();
    assert!(matches!(outcome, selfmon::LeaseOutcome::Acquired(_)));
    let o = env.scan(&[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("other-process"));
    assert_eq!(env.issue_files(), 0);
}

#[test]
fn two_concurrent_scans_one_runs_the_other_exits_3() {
    let env = Env::new();
    let slow = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-slow.sh");
    std::fs::write(
        env.path("selfmon.json"),
        format!(
            r#"{{ "logs": {{ "path": "logs.db" }}, "state": {{ "path": "state.db" }},
                 "runner": {{ "kind": "claude", "binary": "{}", "timeout_secs": 60 }},
                 "tracker": {{ "kind": "dry-run", "dir": "issues" }} }}"#,
            slow.display()
        ),
    )
    .unwrap();
    seed(&env);
    let c = env.config();
    let spawn = || {
        bin()
            .args(["scan", "--config", &c])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn();
    // The first scan is inside its (slow) analysis for seconds; the second meets its lease.
    wait_for(
        || scans_in(&env.path("state.db")) >= 1,
        "the first scan to start",
    );
    let b = spawn();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(a.status.code(), Some(0), "{}", text(&a.stderr));
    assert_eq!(b.status.code(), Some(3), "{}", text(&b.stderr));
    assert!(
        text(&b.stderr).contains("another scan is running"),
        "{}",
        text(&b.stderr)
    );
}

#[test]
fn history_shows_scans_and_issues() {
    let env = Env::new();
    seed(&env);
    assert!(env.scan(&[]).status.success());
    assert!(env.scan(&[]).status.success());
    let state = env.path("state.db").display().to_string();
    let o = run(&["history", "--state", &state, "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(h["scans"]["total"], 2);
    assert_eq!(h["issues"]["total"], 3);
    let o = run(&["history", "--state", &state]);
    assert!(text(&o.stdout).contains("SUCCESS"));
    let o = run(&["history", "--config", &env.config(), "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let by_config: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        by_config, h,
        "--config reads the state store the configuration names"
    );
    let o = run(&["history", "--state", &state, "--config", &env.config()]);
    assert_eq!(o.status.code(), Some(2), "one or the other");
    let o = run(&["history", "--state", "/nonexistent/state.db"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Review5 G10: an issue deleted or transferred on the tracker held its problem for good; `history
/// forget N` removes selfmon's record of it (the engine test shows the next recurrence is filed).
#[test]
fn history_forget_removes_an_issue_from_selfmons_state_once() {
    let env = Env::new();
    seed(&env);
    assert!(env.scan(&[]).status.success());
    let state = env.path("state.db").display().to_string();
    let o = run(&["history", "forget", "1", "--state", &state]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("forgot issue #1"),
        "{}",
        text(&o.stdout)
    );
    let o = run(&["history", "--state", &state, "--json"]);
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(h["issues"]["total"], 2);
    let o = run(&["history", "forget", "1", "--config", &env.config()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no issue #1"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_logs_db_locked_by_another_process_is_a_temporary_failure_that_says_so() {
    let env = Env::new();
    seed(&env);
    let holder = rusqlite::Connection::open(env.logs()).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let o = env.scan(&[]);
    holder.execute_batch("COMMIT").unwrap();
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a lock passes by itself: not a usage error (2): {err}"
    );
    assert!(err.contains("another process holds a lock"), "{err}");
    assert!(env.scan(&[]).status.success(), "the next scan runs");
}

#[test]
fn history_pointed_at_a_file_without_selfmon_state_refuses_and_changes_nothing() {
    let env = Env::new();
    seed(&env);
    let logs = env.path("logs.db");
    let tables = || -> Vec<String> {
        let conn = rusqlite::Connection::open(&logs).unwrap();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        names
    };
    let before = tables();
    let o = run(&["history", "--state", &logs.display().to_string()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("holds no selfmon state"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        tables(),
        before,
        "history created tables in the server's logs.db"
    );
}

#[test]
fn templates_writes_one_line_per_input_line() {
    use std::io::Write;
    let mut child = bin()
        .arg("templates")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"clone of /a failed after 3s\n\nclone of /b failed after 4s\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], lines[2], "same template, same fingerprint");
    assert!(lines[0].split('\t').next().unwrap().len() == 64);
}

#[test]
fn config_init_validate_and_prompt_commands() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    let cfg_s = cfg.display().to_string();
    assert!(run(&["config", "init", "--output", &cfg_s])
        .status
        .success());
    assert_eq!(
        run(&["config", "init", "--output", &cfg_s]).status.code(),
        Some(2),
        "no overwrite"
    );
    let o = run(&["config", "validate", "--config", &cfg_s]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = run(&["prompt", "show"]);
    assert!(text(&o.stdout).starts_with("[Prompt version:"));
    let o = run(&["prompt", "diff", "--config", &cfg_s]);
    assert!(text(&o.stdout).contains("uses the shipped prompt"));
    let modified = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(
            "\"prompt_user_modified\": false",
            "\"prompt_user_modified\": true, \"prompt_template\": \"Analyse {digest}\"",
        )
        .replace("\"prompt_template\": \"\",", "");
    std::fs::write(&cfg, modified).unwrap();
    let o = run(&["prompt", "diff", "--config", &cfg_s]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("+Analyse {digest}"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn inventory_reports_coverage() {
    let env = Env::new();
    seed(&env);
    let o = run(&[
        "inventory",
        "--logs",
        &env.logs().display().to_string(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let _: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = run(&["inventory", "--logs", "/nonexistent/logs.db"]);
    assert_eq!(o.status.code(), Some(2));

    // A log message is untrusted: its escape sequences and bidi overrides are shown escaped.
    env.log(
        "ERROR",
        "cidx.web",
        "evil \u{1b}[2J\u{1b}[31mred \u{202e}desrever",
    );
    let o = run(&["inventory", "--logs", &env.logs().display().to_string()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        !out.contains('\u{1b}') && !out.contains('\u{202e}'),
        "raw control characters reached the terminal: {out:?}"
    );
    assert!(
        out.contains("\\u{1b}[") && out.contains("\\u{202e}"),
        "{out}"
    );
}

fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    for _ in 0..600 {
        if cond() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// The statuses of the scans recorded in `state`, newest first.
fn scan_statuses(state: &Path) -> Vec<selfmon::ScanStatus> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Ok(store) = SqliteStateStore::open(state, StateStoreOptions::default()) else {
        return Vec::new();
    };
    rt.block_on(store.list_scans(Default::default()))
        .map(|p| p.items.into_iter().map(|s| s.status).collect())
        .unwrap_or_default()
}

fn scans_in(state: &Path) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Ok(store) = SqliteStateStore::open(state, StateStoreOptions::default()) else {
        return 0;
    };
    rt.block_on(store.list_scans(Default::default()))
        .map(|p| p.total)
        .unwrap_or(0)
}

#[test]
fn serve_scheduler_runs_on_trigger_reloads_on_sighup_and_stops_cleanly_on_sigterm() {
    let env = Env::new();
    env.write_config(r#""cadence_minutes": 10080,"#);
    seed(&env);
    let trigger = env.path("run-now");
    let child = bin()
        .args([
            "serve-scheduler",
            "--config",
            &env.config(),
            "--trigger-file",
            &trigger.display().to_string(),
            "--tick-secs",
            "1",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Enabled and never ran: the first tick is due at once.
    wait_for(
        || scans_in(&env.path("state.db")) >= 1,
        "the first scheduled scan",
    );
    wait_for(|| env.issue_files() == 3, "the issues of the first scan");
    env.log(
        "CRITICAL",
        "cidx.index",
        "[INDEX-WRITE-002] index writer crashed: disk full",
    );
    std::fs::write(&trigger, "now").unwrap();
    wait_for(|| env.issue_files() == 4, "the triggered scan");
    wait_for(
        || {
            let s = scan_statuses(&env.path("state.db"));
            s.len() == 2 && !s.contains(&selfmon::ScanStatus::Running)
        },
        "the triggered scan to finish",
    );
    // SIGHUP reloads the configuration and does not stop the scheduler: the next trigger runs.
    let _ = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status();
    env.log(
        "CRITICAL",
        "cidx.auth",
        "[AUTH-KEYS-004] signing key store unreadable",
    );
    std::fs::write(&trigger, "again").unwrap();
    wait_for(|| env.issue_files() == 5, "the scan triggered after SIGHUP");
    wait_for(
        || {
            let s = scan_statuses(&env.path("state.db"));
            s.len() == 3 && !s.contains(&selfmon::ScanStatus::Running)
        },
        "the scan after SIGHUP to finish",
    );
    // Idle: SIGTERM stops the scheduler cleanly (exit 0).
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("manual scan queued") && err.contains("stopped"),
        "{err}"
    );
    assert!(err.contains("SIGHUP: configuration reloaded"), "{err}");
}

#[test]
fn serve_scheduler_scans_on_cadence_and_warns_when_the_last_scan_is_recorded_in_the_future() {
    let env = Env::new();
    env.write_config(r#""cadence_minutes": 60,"#);
    seed(&env);
    let first = env.scan(&[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    // What a host clock three hours ahead, then set back, would have written.
    let conn = rusqlite::Connection::open(env.path("state.db")).unwrap();
    conn.execute(
        "UPDATE self_monitoring_scans SET started_at = strftime('%Y-%m-%dT%H:%M:%fZ','now','+3 hours'), completed_at = strftime('%Y-%m-%dT%H:%M:%fZ','now','+3 hours')",
        [],
    )
    .unwrap();
    drop(conn);
    let child = bin()
        .args([
            "serve-scheduler",
            "--config",
            &env.config(),
            "--tick-secs",
            "1",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The only other scan is in the future: the schedule counts as if none ran, due at once.
    wait_for(
        || {
            let s = scan_statuses(&env.path("state.db"));
            s.len() == 2 && !s.contains(&selfmon::ScanStatus::Running)
        },
        "a scheduled scan despite the scan recorded three hours ahead",
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert!(err.contains("scheduled scan queued"), "{err}");
    assert!(
        err.contains("warning: scan") && err.contains("after now"),
        "the log says why: {err}"
    );
}

#[test]
fn serve_scheduler_help_says_sigterm_interrupts_the_scan_in_flight() {
    for args in [&["serve-scheduler", "--help"][..], &["--help"][..]] {
        let o = run(args);
        assert!(o.status.success());
        let help = text(&o.stdout);
        assert!(
            !help.contains("stops after the scan in flight"),
            "{args:?} promises a drain the scheduler does not do: {help}"
        );
        assert!(
            help.contains("interrupting the scan in flight"),
            "{args:?}: {help}"
        );
    }
}

/// The pipe `selfmon schema --help` shows runs: what the command prints is SQL that creates the
/// logs table (rusqlite stands in for the sqlite3 shell).
#[test]
fn the_schema_pipe_the_help_shows_creates_the_logs_table() {
    let help = text(&run(&["schema", "--help"]).stdout);
    let line = help
        .lines()
        .find(|l| l.contains("| sqlite3"))
        .unwrap_or_else(|| panic!("an example piping into sqlite3: {help}"));
    let command = line.split('|').next().unwrap().trim();
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    assert_eq!(command.split_whitespace().next(), Some("selfmon"), "{line}");
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(&text(&o.stdout))
        .unwrap_or_else(|e| panic!("`{command}` is not SQL sqlite3 can run: {e}"));
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'logs'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn serve_scheduler_reload_names_the_changed_sections_that_need_a_restart() {
    let env = Env::new();
    env.write_config(r#""cadence_minutes": 10080,"#);
    seed(&env);
    let log_path = env.path("scheduler.log");
    let child = bin()
        .args([
            "serve-scheduler",
            "--config",
            &env.config(),
            "--tick-secs",
            "1",
        ])
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_for(|| log().contains("succeeded"), "the first scheduled scan");
    let cfg = std::fs::read_to_string(env.path("selfmon.json")).unwrap();
    std::fs::write(
        env.path("selfmon.json"),
        cfg.replace(
            r#""logs": { "path": "logs.db" }"#,
            r#""logs": { "path": "logs.db", "min_level": "ERROR" }"#,
        )
        .replace(r#""dir": "issues""#, r#""dir": "other-issues""#)
        .replace(
            r#""max_new_issues_per_scan": 20"#,
            r#""max_new_issues_per_scan": 3"#,
        ),
    )
    .unwrap();
    wait_for(
        || log().contains("configuration reloaded"),
        "the reload of the edited file",
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut child = child;
    let _ = child.wait();
    let log = log();
    let line = log
        .lines()
        .find(|l| l.contains("configuration reloaded"))
        .unwrap();
    assert!(
        line.contains("NOT applied until serve-scheduler is restarted: logs, tracker"),
        "{log}"
    );
}

#[test]
fn history_show_explains_every_signature_and_finding_of_a_scan() {
    let env = Env::new();
    env.write_config("");
    let cfg = std::fs::read_to_string(env.path("selfmon.json")).unwrap();
    std::fs::write(
        env.path("selfmon.json"),
        cfg.replace(
            "\"max_new_issues_per_scan\": 20",
            "\"max_new_issues_per_scan\": 1",
        ),
    )
    .unwrap();
    seed(&env);
    env.log("ERROR", "cidx.web", "upstream answered slowly once");
    let o = env.scan(&["--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let scan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let scan_id = scan["record"]["scan_id"].as_str().unwrap().to_string();
    let state = env.path("state.db").display().to_string();

    let h = run(&["history", "--state", &state]);
    let table = text(&h.stdout);
    assert!(
        table.contains(" mode ") && table.contains(" real "),
        "a mode (real / dry run) column: {table}"
    );
    assert!(table.contains(&scan_id[..8]), "a scan-id column: {table}");

    let o = run(&["history", "show", &scan_id[..8], "--state", &state]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains(&format!("scan {scan_id}")), "{out}");
    assert!(
        out.contains("max_new_issues_per_scan = 1"),
        "deferred with its reason: {out}"
    );
    assert!(out.contains("backlog position 2"), "{out}");
    assert!(
        out.contains("runner made no finding: a one-off ERROR"),
        "the offline runner says why it filed nothing: {out}"
    );
    assert!(out.contains("digest sent:"), "{out}");

    let o = run(&[
        "history", "show", &scan_id, "--state", &state, "--json", "--digest",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["record"]["scan_id"], scan_id.as_str());
    assert_eq!(report["record"]["deferred"], 2);
    assert_eq!(report["signatures"].as_array().unwrap().len(), 4);
    assert!(report["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("one-off"));
    assert!(report["digest_sent"]
        .as_str()
        .unwrap()
        .contains("SELFMON-DATA-"));

    let o = run(&["history", "show", "nope", "--state", &state]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("`selfmon history` lists scan ids"));
    let o = run(&["history", "show", &scan_id]);
    assert_eq!(o.status.code(), Some(2), "--state is required");
}

#[test]
fn schema_prints_the_logs_table_a_new_logs_db_can_be_created_from() {
    let o = run(&["schema", "--ddl"]);
    assert!(o.status.success());
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("logs.db")).unwrap();
    conn.execute_batch(&text(&o.stdout)).unwrap();
    conn.execute(
        "INSERT INTO logs (timestamp, level, message) VALUES ('t', 'ERROR', 'x')",
        [],
    )
    .unwrap();
    let full = text(&run(&["schema"]).stdout);
    assert!(full.contains("correlation_id") && full.contains("selfmon_scan_reports"));
    assert!(
        full.contains("Cluster mode") && full.contains("CACHE 1"),
        "the cluster table and its assumptions are described: {full}"
    );
}

#[test]
fn config_validate_refuses_a_runner_variable_holding_the_tracker_token_whatever_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(
        &cfg,
        r#"{
  "logs": { "path": "logs.db" },
  "state": { "path": "state.db" },
  "runner": { "kind": "claude", "pass_env": ["TRACKER_PAT"] },
  "tracker": { "kind": "github", "repository": "org/repo", "token_env": "TRACKER_PAT" }
}"#,
    )
    .unwrap();
    let cfg_s = cfg.display().to_string();
    // A token whose shape says nothing: only its value gives it away.
    let validate = |value: &str| {
        bin()
            .args(["config", "validate", "--config", &cfg_s])
            .env("TRACKER_PAT", value)
            .output()
            .unwrap()
    };
    let o = validate("v1.0123456789abcdef0123456789abcdef01234567");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(
        err.contains("`TRACKER_PAT`") && err.contains("tracker's token"),
        "{err}"
    );
    assert!(
        !err.contains("v1.0123456789abcdef"),
        "the token is never printed: {err}"
    );
}

#[test]
fn config_validate_reports_a_claude_binary_that_does_not_resolve_and_an_unset_token_variable() {
    let dir = tempfile::tempdir().unwrap();
    let not_executable = dir.path().join("claude");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    let cfg = dir.path().join("c.json");
    let cfg_s = cfg.display().to_string();
    let validate = |binary: &str| {
        std::fs::write(
            &cfg,
            format!(
                r#"{{
  "logs": {{ "path": "logs.db" }},
  "state": {{ "path": "state.db" }},
  "runner": {{ "kind": "claude", "binary": "{binary}" }},
  "tracker": {{ "kind": "github", "repository": "org/repo", "token_env": "SELFMON_TEST_UNSET_TOKEN" }}
}}"#
            ),
        )
        .unwrap();
        bin()
            .args(["config", "validate", "--config", &cfg_s])
            .env_remove("SELFMON_TEST_UNSET_TOKEN")
            .env("PATH", dir.path())
            .output()
            .unwrap()
    };
    for binary in [
        "/nonexistent/claude".to_string(),
        not_executable.display().to_string(),
        "claude-not-on-path".to_string(),
    ] {
        let o = validate(&binary);
        assert_eq!(o.status.code(), Some(2), "{binary}: {}", text(&o.stdout));
        let err = text(&o.stderr);
        assert!(err.contains("runner.binary"), "{binary}: {err}");
        assert!(
            err.contains("tracker.token_env") && err.contains("SELFMON_TEST_UNSET_TOKEN"),
            "{binary}: {err}"
        );
    }
}

#[test]
fn a_scan_whose_runner_binary_does_not_resolve_is_a_configuration_error_not_a_recorded_failure() {
    let env = Env::new();
    let cfg = std::fs::read_to_string(env.path("selfmon.json")).unwrap();
    std::fs::write(
        env.path("selfmon.json"),
        cfg.replace(
            r#""runner": { "kind": "offline" }"#,
            r#""runner": { "kind": "claude", "binary": "/nonexistent/claude" }"#,
        ),
    )
    .unwrap();
    seed(&env);
    let o = env.scan(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("runner.binary"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        scans_in(&env.path("state.db")),
        0,
        "no failed scan recorded"
    );
}

/// A scan that fails prints its error on stderr, which journald and cron mail keep: it is
/// redacted like the copy kept in history. The model CLI here fails quoting a token it read.
#[test]
fn a_failed_scan_prints_its_error_redacted() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let secret = "ghp_R4nd0mT0kenV4lue0123456789abcdefABCD";
    let cli = env.path("claude-fails.sh");
    std::fs::write(
        &cli,
        format!("#!/bin/sh\ncat > /dev/null\necho \"fatal: upstream rejected token {secret}\" >&2\nexit 1\n"),
    )
    .unwrap();
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        env.path("selfmon.json"),
        format!(
            r#"{{ "logs": {{ "path": "logs.db" }}, "state": {{ "path": "state.db" }},
                 "runner": {{ "kind": "claude", "binary": "{}", "timeout_secs": 60 }},
                 "tracker": {{ "kind": "folder", "dir": "issues" }} }}"#,
            cli.display()
        ),
    )
    .unwrap();
    seed(&env);
    let o = env.scan(&[]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("upstream rejected token [REDACTED:github_token]"),
        "{err}"
    );
    assert!(!err.contains(&secret[..12]), "{err}");
    let c = env.config();
    let h = run(&["history", "--config", &c]);
    assert!(
        !text(&h.stdout).contains(&secret[..12]),
        "{}",
        text(&h.stdout)
    );
}

/// `selfmon history | head -1` and the like: the reader closing the pipe early is no crash (it was
/// a "failed printing to stdout" panic, exit 101, even after a scan had succeeded).
#[test]
fn a_reader_that_closes_the_pipe_early_is_no_panic() {
    let env = Env::new();
    env.write_config("");
    seed(&env);
    assert!(env.scan(&[]).status.success());
    let state = env.path("state.db").display().to_string();
    let logs = env.logs().display().to_string();
    let config = env.config();
    let commands: [&[&str]; 4] = [
        &["history", "--state", &state],
        &["inventory", "--logs", &logs],
        &["prompt", "show"],
        &["scan", "--config", &config, "--dry-run", "--json"],
    ];
    for args in commands {
        let mut child = bin()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command writes (it opens its files first).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert!(
            !err.contains("panicked") && out.status.code() != Some(101),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
}

/// Review L1: the CLI refuses a configuration with an unknown top-level key; the message must not
/// say the key "is kept but has no effect".
#[test]
fn a_misspelt_top_level_key_is_refused_without_saying_it_is_kept() {
    let env = Env::new();
    env.write_config(r#""enabeld": true,"#);
    let o = run(&["config", "validate", "--config", &env.config()]);
    assert_eq!(o.status.code(), Some(2));
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(all.contains("enabeld: unknown field"), "{all}");
    assert!(!all.contains("kept"), "{all}");
    assert!(all.contains("fix its name or remove it"), "{all}");
}

/// Review L5: `page_size` is checked by the monitoring settings and by the log source; it is
/// reported once.
#[test]
fn page_size_zero_is_reported_once() {
    let env = Env::new();
    env.write_config(r#""page_size": 0,"#);
    let o = run(&["config", "validate", "--config", &env.config()]);
    assert_eq!(o.status.code(), Some(2));
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(all.matches("page_size").count(), 1, "{all}");
}

/// Review L3: a `logs.path` naming a folder is called a folder, not "does not exist".
#[test]
fn a_logs_path_that_is_a_folder_is_called_a_folder() {
    let env = Env::new();
    std::fs::create_dir(env.path("logs-dir")).unwrap();
    let cfg = std::fs::read_to_string(env.path("selfmon.json"))
        .unwrap()
        .replace(r#""path": "logs.db""#, r#""path": "logs-dir""#);
    std::fs::write(env.path("selfmon.json"), cfg).unwrap();
    let o = env.scan(&[]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("is a folder, not a file"), "{err}");
    assert!(!err.contains("does not exist"), "{err}");
    let dir = env.path("logs-dir").display().to_string();
    let o = run(&["inventory", "--logs", &dir]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("is a folder"), "{err}");
    assert!(!err.contains("does not exist"), "{err}");
}

/// Review L4: `history` only reads; a damaged state file's message says nothing about scans.
#[test]
fn history_of_a_damaged_state_file_gives_no_scan_advice() {
    let env = Env::new();
    let junk = env.path("junk.db");
    std::fs::write(
        &junk,
        "this is not a SQLite database, just some text\n".repeat(200),
    )
    .unwrap();
    let o = run(&["history", "--state", &junk.display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("damaged"), "{err}");
    assert!(!err.contains("scan"), "{err}");
    assert!(!err.contains("cursor"), "{err}");
}

/// Review L7: the offline runner's inline code and parentheses reach the issue as written, not
/// as "\`cidx.db\` \(records ...\)".
#[test]
fn issue_files_keep_the_runners_inline_code_unescaped() {
    let env = Env::new();
    seed(&env);
    assert!(env.scan(&[]).status.success());
    let bodies: String = std::fs::read_dir(env.path("issues"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(bodies.contains("from `cidx.db` (records 3..3)"), "{bodies}");
    assert!(
        !bodies.contains("\\`") && !bodies.contains("\\("),
        "{bodies}"
    );
}

/// Review L8: a dry run reads the tracker and writes nothing to it, not even its empty folder.
#[test]
fn a_dry_run_leaves_no_issues_folder() {
    let env = Env::new();
    seed(&env);
    let o = env.scan(&["--dry-run"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        !env.path("issues").exists(),
        "the dry run created the folder"
    );
    assert!(env.scan(&[]).status.success());
    assert_eq!(env.issue_files(), 3);
}

/// Review L11: one 200 KB token makes no 200 KB line in `selfmon inventory`.
#[test]
fn inventory_bounds_a_huge_token() {
    let env = Env::new();
    let token = "A".repeat(200_000);
    env.log(
        "CRITICAL",
        "upload",
        &format!("rejected upload token {token} too long"),
    );
    let o = run(&["inventory", "--logs", &env.logs().display().to_string()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("rejected upload token AAA"), "{out}");
    let longest = out.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(longest < 1_000, "a line of {longest} characters");
}

/// Review L12: `history --config` before the first scan (no state file yet) says so and exits 0.
#[test]
fn history_before_the_first_scan_says_no_scans_yet() {
    let env = Env::new();
    let o = run(&["history", "--config", &env.config()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no scans yet"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).contains("scans (0 of 0)"),
        "{}",
        text(&o.stdout)
    );
    assert!(
        !env.path("state.db").exists(),
        "history created the state file"
    );
    let o = run(&["history", "--config", &env.config(), "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["scans"]["total"], 0, "{doc}");
}

/// Review L12: a scheduler started before the server's first log line waits for the logs.db
/// (saying so once), then scans when it appears; SIGTERM while waiting stops it with exit 0.
#[test]
fn serve_scheduler_waits_for_a_logs_db_that_does_not_exist_yet() {
    let env = Env::new();
    std::fs::remove_file(env.logs()).unwrap();
    let log_path = env.path("scheduler.log");
    let spawn = || {
        bin()
            .args([
                "serve-scheduler",
                "--config",
                &env.config(),
                "--tick-secs",
                "1",
            ])
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap()
    };
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let stop = |child: std::process::Child| {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait_with_output().unwrap()
    };

    // Stopped while waiting: a clean exit.
    let child = spawn();
    wait_for(
        || log().contains("does not exist yet"),
        "the waiting warning",
    );
    let o = stop(child);
    assert_eq!(o.status.code(), Some(0), "{}", log());

    // The logs.db appears: the first scheduled scan runs.
    let child = spawn();
    wait_for(
        || log().contains("does not exist yet"),
        "the waiting warning",
    );
    let conn = rusqlite::Connection::open(env.logs()).unwrap();
    create_logs_table(&conn).unwrap();
    drop(conn);
    seed(&env);
    wait_for(
        || env.issue_files() == 3,
        "the first scheduled scan's issues",
    );
    let o = stop(child);
    assert!(o.status.success(), "{}", log());
    let err = log();
    assert_eq!(err.matches("does not exist yet").count(), 1, "{err}");
    assert!(err.contains("log file found"), "{err}");
}

/// Review4 F14: pino/bunyan write 30 for info; read on Python's scale (the default) it was
/// WARNING and could be filed. With `"numeric_levels": "pino"` a level-30 line is info (below
/// the default WARNING, nothing filed) and a level-50 line is an error (filed).
#[test]
fn with_pino_numeric_levels_a_level_30_line_files_nothing_and_a_level_50_line_files() {
    let stack = "TypeError: Cannot read properties of undefined (reading 'id')\n    at handler (/srv/app/routes.js:12:7)";
    for (scale, filed_for_30) in [("pino", 0), ("python", 1)] {
        let env = Env::new();
        let cfg = std::fs::read_to_string(env.path("selfmon.json")).unwrap();
        let with_scale = cfg.replace(
            r#""logs": { "path": "logs.db" }"#,
            &format!(r#""logs": {{ "path": "logs.db", "numeric_levels": "{scale}" }}"#),
        );
        assert_ne!(cfg, with_scale);
        std::fs::write(env.path("selfmon.json"), with_scale).unwrap();
        env.log("30", "api.routes", stack);
        let first = env.scan(&[]);
        assert!(first.status.success(), "{}", text(&first.stderr));
        assert_eq!(
            env.issue_files(),
            filed_for_30,
            "{scale}: {}",
            text(&first.stdout)
        );
        env.log(
            "50",
            "api.db",
            "[DB-LOCK-003] database is locked after 5 retries",
        );
        let second = env.scan(&[]);
        assert!(second.status.success(), "{}", text(&second.stderr));
        assert_eq!(
            env.issue_files(),
            filed_for_30 + 1,
            "{scale}: {}",
            text(&second.stdout)
        );
    }
}

#[test]
fn an_unknown_numeric_level_scale_is_a_configuration_error_naming_the_field() {
    let env = Env::new();
    let cfg = std::fs::read_to_string(env.path("selfmon.json")).unwrap();
    std::fs::write(
        env.path("selfmon.json"),
        cfg.replace(
            r#""logs": { "path": "logs.db" }"#,
            r#""logs": { "path": "logs.db", "numeric_levels": "syslog" }"#,
        ),
    )
    .unwrap();
    let out = run(&["config", "validate", "--config", &env.config()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("logs.numeric_levels"), "{err}");
    assert!(err.contains("pino"), "{err}");
}

#[test]
fn inventory_reads_numeric_levels_on_the_scale_given() {
    let env = Env::new();
    env.log("30", "api", "request done");
    env.log("50", "api", "request failed");
    let total = |scale: &str| {
        let o = run(&[
            "inventory",
            "--logs",
            &env.logs().display().to_string(),
            "--json",
            "--numeric-levels",
            scale,
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["overall"]["total"].as_u64().unwrap()
    };
    assert_eq!(total("python"), 2);
    assert_eq!(total("pino"), 1, "pino's 30 is info");
    let o = run(&[
        "inventory",
        "--logs",
        &env.logs().display().to_string(),
        "--numeric-levels",
        "syslog",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("pino"), "{}", text(&o.stderr));
}
