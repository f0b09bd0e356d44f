//! The `selfmon` binary under signals: SIGTERM / SIGINT during analysis, and `kill -9` followed
//! by an immediate second scan. Real processes throughout: the binary, a fixture CLI that hangs
//! and starts a grandchild, a real SQLite state file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use selfmon::sqlite::{create_logs_table, SqliteStateStore, StateStoreOptions};
use selfmon::{ScanHistory, ScanLedger, ScanStatus};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(env.path("record")).unwrap();
        std::fs::create_dir(env.path("home")).unwrap();
        std::fs::create_dir(env.path("tmp")).unwrap();
        let conn = rusqlite::Connection::open(env.path("logs.db")).unwrap();
        create_logs_table(&conn).unwrap();
        for (level, source, message) in [
            (
                "ERROR",
                "app.git",
                "[GIT-SYNC-001] git fetch failed: exit status 128",
            ),
            (
                "CRITICAL",
                "app.db",
                "[DB-LOCK-003] database is locked after 5 retries",
            ),
        ] {
            conn.execute(
                "INSERT INTO logs (timestamp, level, source, message) VALUES (datetime('now'), ?1, ?2, ?3)",
                (level, source, message),
            )
            .unwrap();
        }
        // A stand-in for the Claude CLI that leaves what the real one leaves, starts a grandchild
        // in its process group, and never answers.
        let script = format!(
            r#"#!/bin/bash
rec='{rec}'
cat > /dev/null
pwd > "$rec/cwd"
mkdir -p "$HOME/.claude/sessions"
printf '{{"pid":%s,"status":"busy"}}' $$ > "$HOME/.claude/sessions/$$.json"
sleep 1000 &
echo $! > "$rec/grandchild.pid.tmp"
echo $$ > "$rec/pid"
mv "$rec/grandchild.pid.tmp" "$rec/grandchild.pid"
wait
"#,
            rec = env.path("record").display()
        );
        std::fs::write(env.path("claude"), script).unwrap();
        std::fs::set_permissions(env.path("claude"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        env.write_config(&format!(
            r#"{{ "kind": "claude", "binary": "{}", "timeout_secs": 600 }}"#,
            env.path("claude").display()
        ));
        env
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write_config(&self, runner: &str) {
        std::fs::write(
            self.path("selfmon.json"),
            format!(
                r#"{{ "logs": {{ "path": "logs.db" }}, "state": {{ "path": "state.db" }},
                     "runner": {runner},
                     "tracker": {{ "kind": "dry-run", "dir": "issues" }} }}"#
            ),
        )
        .unwrap();
    }
    fn scan(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_selfmon"))
            .args([
                "scan",
                "--config",
                &self.path("selfmon.json").display().to_string(),
            ])
            .env("HOME", self.path("home"))
            // The runner's private directories go here, where a test can look for them.
            .env("TMPDIR", self.path("tmp"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
    fn recorded_pid(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.path("record").join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
    /// Waits until the fixture CLI is inside its (endless) analysis; returns (cli, grandchild).
    fn analysis_started(&self) -> (i32, i32) {
        for _ in 0..1200 {
            if let (Some(cli), Some(gc)) = (
                self.recorded_pid("pid"),
                self.recorded_pid("grandchild.pid"),
            ) {
                return (cli, gc);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the fixture CLI never started");
    }
    fn store(&self) -> (tokio::runtime::Runtime, SqliteStateStore) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store =
            SqliteStateStore::open(self.path("state.db"), StateStoreOptions::default()).unwrap();
        (rt, store)
    }
}

/// Whether a process runs (a zombie awaiting its parent counts as gone).
fn running(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X"))
}

fn gone_eventually(pid: i32) -> bool {
    (0..200).any(|_| {
        let gone = !running(pid);
        if !gone {
            std::thread::sleep(Duration::from_millis(25));
        }
        gone
    })
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sigterm_sigint_or_sighup_during_analysis_leaves_no_process_no_running_scan_no_lease_no_temp_dir()
{
    // SIGHUP: the terminal running `selfmon scan` was closed.
    for (name, code) in [("TERM", 143), ("INT", 130), ("HUP", 129)] {
        let env = Env::new();
        let child = env.scan();
        let pid = child.id();
        let (cli, grandchild) = env.analysis_started();
        signal(pid, name);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "SIG{name}: {stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert!(gone_eventually(cli), "SIG{name}: the CLI {cli} survived");
        assert!(
            gone_eventually(grandchild),
            "SIG{name}: the grandchild {grandchild} survived"
        );
        let (rt, store) = env.store();
        let scans = rt.block_on(store.list_scans(Default::default())).unwrap();
        assert_eq!(scans.total, 1);
        let scan = &scans.items[0];
        assert_eq!(
            scan.status,
            ScanStatus::Failure,
            "SIG{name}: no RUNNING row"
        );
        assert!(
            scan.error_message
                .as_deref()
                .is_some_and(|m| m.starts_with("interrupted")),
            "{:?}",
            scan.error_message
        );
        assert_eq!(rt.block_on(store.last_successful_cursor()).unwrap(), 0);
        assert_eq!(rt.block_on(store.current_lease()).unwrap(), None);
        let cwd = std::fs::read_to_string(env.path("record/cwd")).unwrap();
        let private = Path::new(cwd.trim()).parent().unwrap();
        assert!(!private.exists(), "SIG{name}: {} left", private.display());
        assert!(
            !env.path(&format!("home/.claude/sessions/{cli}.json"))
                .exists(),
            "SIG{name}: the CLI's busy session file was left"
        );
    }
}

/// `kill -9` leaves selfmon no chance to stop its CLI: the CLI dies with it (Linux's parent-death
/// signal), and the next run of the CLI kills what the CLI had started and removes the killed
/// run's private directory and session file; the next scan takes over the lease at once.
#[test]
fn after_kill_9_of_a_scan_its_cli_dies_and_the_next_scan_takes_over_and_cleans_up() {
    let env = Env::new();
    let mut child = env.scan();
    let (cli, grandchild) = env.analysis_started();
    let cwd = std::fs::read_to_string(env.path("record/cwd")).unwrap();
    let private = Path::new(cwd.trim()).parent().unwrap().to_path_buf();
    assert!(
        private.starts_with(env.path("tmp")),
        "{}",
        private.display()
    );
    signal(child.id(), "KILL");
    child.wait().unwrap();
    assert!(
        gone_eventually(cli),
        "the CLI {cli} outlived the selfmon that started it (it would go on spending tokens)"
    );
    assert!(private.exists(), "nothing could clean up yet");

    // A CLI that answers at once: the next scan analyses the same records again.
    std::fs::write(
        env.path("claude-ok"),
        "#!/bin/bash\ncat > /dev/null\nprintf '%s\\n' '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"num_turns\":1,\"result\":\"done\",\"session_id\":\"s\",\"total_cost_usd\":0,\"usage\":{\"input_tokens\":1,\"output_tokens\":1},\"structured_output\":{\"findings\":[]}}'\n",
    )
    .unwrap();
    std::fs::set_permissions(
        env.path("claude-ok"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    env.write_config(&format!(
        r#"{{ "kind": "claude", "binary": "{}", "timeout_secs": 60 }}"#,
        env.path("claude-ok").display()
    ));
    let out = env.scan().wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("took over the lease"), "{stdout}");
    assert!(
        gone_eventually(grandchild),
        "the process the killed CLI started ({grandchild}) is killed by the next run"
    );
    assert!(!private.exists(), "{} left", private.display());
    assert!(
        !env.path(&format!("home/.claude/sessions/{cli}.json"))
            .exists(),
        "the killed CLI's busy session file was left"
    );
    let leftover_dirs: Vec<_> = std::fs::read_dir(env.path("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(leftover_dirs.is_empty(), "{leftover_dirs:?}");
    let (rt, store) = env.store();
    let scans = rt.block_on(store.list_scans(Default::default())).unwrap();
    assert_eq!(scans.total, 2);
    assert_eq!(scans.items[0].status, ScanStatus::Success);
    assert_eq!(
        scans.items[1].status,
        ScanStatus::Failure,
        "the killed scan is closed"
    );
    assert_eq!(rt.block_on(store.current_lease()).unwrap(), None);
}
