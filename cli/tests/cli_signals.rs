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
fn sigterm_or_sigint_during_analysis_leaves_no_process_no_running_scan_no_lease_no_temp_dir() {
    for (name, code) in [("TERM", 143), ("INT", 130)] {
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

#[test]
fn after_kill_9_of_a_scan_an_immediate_second_scan_takes_over_and_succeeds() {
    let env = Env::new();
    let mut child = env.scan();
    let (cli, _grandchild) = env.analysis_started();
    signal(child.id(), "KILL");
    child.wait().unwrap();
    // selfmon died without stopping its CLI (nothing can survive SIGKILL): clean up here.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{cli}")])
        .status();
    env.write_config(r#"{ "kind": "offline" }"#);
    let out = env.scan().wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("took over the lease"), "{stdout}");
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
