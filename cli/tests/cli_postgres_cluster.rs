//! Cluster mode through the real `selfmon` binary: several separate `selfmon` processes (as
//! several nodes would run them) against one PostgreSQL server holding the shared `logs` table and
//! selfmon's state, on the server `.ci/install-postgres.sh` starts (`SELFMON_TEST_PG_URL`).
//!
//! Every test checks the same exactly-once promises from what is left in PostgreSQL and in the
//! dry-run tracker's folder (shared by the nodes, as a real tracker would be):
//! - scans never overlap in time (one scanner at a time);
//! - the successful scans' cursor ranges are contiguous from 0 to the last id, and together they
//!   read every WARNING-or-worse record exactly once;
//! - no scan is left RUNNING once a later scan ran;
//! - each problem (fingerprint) is filed once, in the tracker and in the state.
#![cfg(feature = "postgres")]

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use selfmon::postgres::tokio_postgres::Client;
use selfmon::postgres::PgUrl;

const URL_ENV: &str = "SELFMON_TEST_PG_URL";

/// One cluster: a schema with the shared `logs` table and selfmon's state, a folder with the
/// config and the dry-run tracker's issues.
struct Cluster {
    url: String,
    schema: String,
    admin: Client,
    dir: tempfile::TempDir,
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

async fn cluster() -> Option<Cluster> {
    let Ok(url) = std::env::var(URL_ENV) else {
        selfmon::testing::tool::skip_missing_tool(
            "postgres",
            &format!("{URL_ENV} is unset (run .ci/install-postgres.sh)"),
        );
        return None;
    };
    let parsed = PgUrl::parse(&url, URL_ENV).expect("test URL");
    let admin = parsed
        .connect("selfmon-cluster-test")
        .await
        .expect("connect");
    let schema = format!("cl_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema}; {}",
            selfmon::postgres::LOGS_TABLE_DDL
        ))
        .await
        .expect("create the logs table");
    Some(Cluster {
        url,
        schema,
        admin,
        dir: tempfile::tempdir().unwrap(),
    })
}

/// A Claude-CLI stand-in (written beside `dir`): records its pid in `dir`, waits `delay` seconds (or, with `gate`, until that file
/// exists), then answers with one server_bug finding per digest signature.
fn gated_claude(dir: &Path, delay: &str, gate: Option<&Path>) -> PathBuf {
    let per_signature =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-per-signature.sh");
    let wait = match gate {
        Some(g) => format!(
            "for _ in $(seq 1 600); do [ -e '{}' ] && break; sleep 0.05; done",
            g.display()
        ),
        None => format!("sleep {delay}"),
    };
    let script = format!(
        "#!/bin/bash\ndigest=\"$(cat)\"\necho $$ > \"{pids}/claude.$$\"\n{wait}\nprintf '%s\\n' \"$digest\" | exec '{per}'\n",
        pids = dir.display(),
        per = per_signature.display(),
    );
    let path = dir.with_extension("claude.sh");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

impl Cluster {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `selfmon.json`: logs and state in this cluster's schema, `runner` as given, the
    /// dry-run tracker in `issues/`.
    fn write_config(&self, runner: &str) -> PathBuf {
        let cfg = format!(
            r#"{{
  "enabled": true,
  "cadence_minutes": 60,
  "lease_ttl_secs": 60,
  "logs": {{ "kind": "postgres", "url_env": "{URL_ENV}", "schema": "{s}", "table": "logs", "min_level": "WARNING" }},
  "state": {{ "kind": "postgres", "url_env": "{URL_ENV}", "schema": "{s}" }},
  "runner": {runner},
  "tracker": {{ "kind": "dry-run", "dir": "issues" }}
}}"#,
            s = self.schema
        );
        let path = self.path("selfmon.json");
        std::fs::write(&path, cfg).unwrap();
        path
    }

    /// `selfmon <args>` as a child process; `app` becomes the connections' `application_name`,
    /// so the test can find (and cut) that process's backends.
    fn command(&self, args: &[&str], app: &str) -> Command {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        let mut c = Command::new(env!("CARGO_BIN_EXE_selfmon"));
        c.args(args)
            .env(URL_ENV, format!("{}{sep}application_name={app}", self.url))
            .env("HOME", self.dir.path())
            .current_dir(self.dir.path());
        c
    }

    fn scan(&self, app: &str) -> Child {
        let cfg = self.path("selfmon.json").display().to_string();
        self.command(&["scan", "--json", "--config", &cfg], app)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start selfmon scan")
    }

    fn scan_to_end(&self, app: &str) -> Output {
        self.scan(app).wait_with_output().expect("selfmon scan")
    }

    /// Inserts `n` WARNING-or-worse records per node plus one INFO record, with error codes taken
    /// from `codes`. Returns the largest id.
    async fn write_logs(&self, round: usize, codes: &[&str]) -> i64 {
        let mut last = 0;
        for node in ["node-a", "node-b", "node-c"] {
            for (i, code) in codes.iter().enumerate() {
                let level = if i % 2 == 0 { "ERROR" } else { "CRITICAL" };
                let row = self
                    .admin
                    .query_one(
                        &format!(
                            "INSERT INTO {}.logs (timestamp, level, source, message, node_id)
                             VALUES (to_char(now(), 'YYYY-MM-DD\"T\"HH24:MI:SS'), $1, 'app.worker', $2, $3)
                             RETURNING id",
                            self.schema
                        ),
                        &[
                            &level,
                            &format!("[{code}] job {round} on {node} failed: exit status 1"),
                            &node,
                        ],
                    )
                    .await
                    .expect("insert");
                last = i64::from(row.get::<_, i32>(0));
            }
            self.admin
                .execute(
                    &format!(
                        "INSERT INTO {}.logs (timestamp, level, source, message, node_id)
                         VALUES ('2026-01-01T00:00:00', 'INFO', 'app.http', 'GET /health 200', $1)",
                        self.schema
                    ),
                    &[&node],
                )
                .await
                .expect("insert");
        }
        last
    }

    async fn max_log_id(&self) -> i64 {
        self.admin
            .query_one(
                &format!(
                    "SELECT coalesce(max(id), 0)::bigint FROM {}.logs",
                    self.schema
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    async fn serious_records(&self) -> i64 {
        self.admin
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}.logs WHERE level IN ('WARNING', 'ERROR', 'CRITICAL')",
                    self.schema
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Every scan row, oldest first.
    async fn scans(&self) -> Vec<Scan> {
        let rows = self
            .admin
            .query(
                &format!(
                    "SELECT record FROM {}.selfmon_scans ORDER BY started_at, seq",
                    self.schema
                ),
                &[],
            )
            .await
            .unwrap();
        rows.iter()
            .map(|r| serde_json::from_value(r.get(0)).expect("scan record"))
            .collect()
    }

    /// The cursor: where the latest successful scan ended.
    async fn cursor(&self) -> i64 {
        self.scans()
            .await
            .iter()
            .filter(|s| s.status == "SUCCESS")
            .map(|s| s.log_id_end)
            .max()
            .unwrap_or(0)
    }

    async fn wait_for_cursor(&self, at_least: i64, timeout: Duration) {
        let start = Instant::now();
        while self.cursor().await < at_least {
            assert!(
                start.elapsed() < timeout,
                "the cursor never reached {at_least}: {:#?}\n{}",
                self.scans().await,
                self.node_logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What every `node-*.log` in the cluster's folder holds, for failure messages.
    fn node_logs(&self) -> String {
        let mut out = String::new();
        for i in 0..8 {
            if let Ok(t) = std::fs::read_to_string(self.path(&format!("node-{i}.log"))) {
                out.push_str(&format!("--- node-{i}.log ---\n{t}\n"));
            }
        }
        out
    }

    fn dry_run_issues(&self) -> Vec<serde_json::Value> {
        match std::fs::read_to_string(self.path("issues/index.json")) {
            Ok(t) => serde_json::from_str(&t).expect("the dry-run index is valid JSON"),
            Err(_) => Vec::new(),
        }
    }

    /// The exactly-once promises, checked at quiescence (no selfmon process running).
    async fn check_exactly_once(&self) -> Checked {
        let scans = self.scans().await;
        for pair in scans.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let a_end = a
                .completed_at
                .unwrap_or_else(|| panic!("{a:?} never completed"));
            assert!(
                b.started_at >= a_end,
                "two scans overlapped: {a:#?} and {b:#?}"
            );
        }
        assert!(
            scans.iter().all(|s| s.status != "RUNNING"),
            "a scan was left RUNNING: {scans:#?}"
        );
        let successes: Vec<&Scan> = scans.iter().filter(|s| s.status == "SUCCESS").collect();
        let mut cursor = 0;
        for s in &successes {
            assert_eq!(
                s.log_id_start, cursor,
                "a successful scan did not start where the previous one ended: {successes:#?}"
            );
            cursor = s.log_id_end;
        }
        assert_eq!(
            cursor,
            self.max_log_id().await,
            "the cursor reached the end"
        );
        let read: u64 = successes.iter().map(|s| s.records_read).sum();
        assert_eq!(
            read as i64,
            self.serious_records().await,
            "every WARNING-or-worse record read exactly once: {successes:#?}"
        );

        let filed = self.dry_run_issues();
        let fingerprints: Vec<&str> = filed
            .iter()
            .filter_map(|i| i["fingerprint"].as_str())
            .collect();
        let unique: BTreeSet<&str> = fingerprints.iter().copied().collect();
        assert_eq!(
            unique.len(),
            filed.len(),
            "each problem filed once in the tracker: {filed:#?}"
        );
        let stored: Vec<(i64, String)> = self
            .admin
            .query(
                &format!(
                    "SELECT number, issue->>'fingerprint' FROM {}.selfmon_issues ORDER BY number",
                    self.schema
                ),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get::<_, Option<String>>(1).unwrap_or_default()))
            .collect();
        let stored_fps: BTreeSet<&str> = stored.iter().map(|(_, f)| f.as_str()).collect();
        assert_eq!(
            stored_fps.len(),
            stored.len(),
            "each problem recorded once in the state: {stored:?}"
        );
        assert_eq!(
            stored_fps, unique,
            "the state records exactly what the tracker holds"
        );
        let intents: i64 = self
            .admin
            .query_one(
                &format!("SELECT count(*) FROM {}.selfmon_intents", self.schema),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        Checked {
            scans: scans.len(),
            successes: successes.len(),
            issues: filed.len(),
            open_intents: intents,
        }
    }
}

#[derive(Debug)]
#[allow(dead_code)]
struct Checked {
    scans: usize,
    successes: usize,
    issues: usize,
    open_intents: i64,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Scan {
    scan_id: String,
    status: String,
    started_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    log_id_start: i64,
    log_id_end: i64,
    records_read: u64,
    #[serde(default)]
    error_message: Option<String>,
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("selfmon {} did not stop within {timeout:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the Claude stand-ins a killed selfmon left behind (their pids are in `dir`).
fn kill_orphaned_claudes(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("claude.") {
            let _ = Command::new("kill")
                .args(["-KILL", pid])
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A `selfmon serve-scheduler` process and its log; killed when dropped, so a failing test leaves
/// no scheduler running.
struct Node(Child, PathBuf);

impl Drop for Node {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

const CODES: [&str; 6] = [
    "GIT-SYNC-001",
    "DB-LOCK-003",
    "QUEUE-STALL-007",
    "DISK-FULL-002",
    "AUTH-EXPIRED-004",
    "CACHE-MISS-009",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_schedulers_scan_one_at_a_time_read_every_record_once_and_file_each_problem_once() {
    let Some(cl) = cluster().await else { return };
    cl.write_logs(0, &CODES[..2]).await;
    let cfg = cl.write_config(r#"{ "kind": "offline" }"#);
    let cfg = cfg.display().to_string();
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| {
            let log = cl.path(&format!("node-{i}.log"));
            let child = cl
                .command(
                    &["serve-scheduler", "--config", &cfg, "--tick-secs", "1"],
                    &format!("selfmon-node-{i}"),
                )
                .stdout(Stdio::null())
                .stderr(File::create(&log).unwrap())
                .spawn()
                .expect("start serve-scheduler");
            Node(child, log)
        })
        .collect();
    let started = Instant::now();
    while !nodes.iter().all(|Node(_, log)| {
        std::fs::read_to_string(log).is_ok_and(|t| t.contains("scheduler started"))
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a scheduler never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Rounds of new records from every node, each followed by "run a scan now" on all three
    // nodes at once; every other round the next records arrive while the scans run.
    for round in 1..=12 {
        let codes = &CODES[(round % 3)..(round % 3) + 2 + round % 2];
        let last = cl.write_logs(round, codes).await;
        for Node(child, _) in &nodes {
            signal(child.id(), "USR1");
        }
        if round % 2 == 0 {
            cl.wait_for_cursor(last, Duration::from_secs(60)).await;
        } else {
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    let last = cl.max_log_id().await;
    for _ in 0..100 {
        if cl.cursor().await >= last {
            break;
        }
        for Node(child, _) in &nodes {
            signal(child.id(), "USR1");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    cl.wait_for_cursor(last, Duration::from_secs(5)).await;

    for Node(child, _) in &nodes {
        signal(child.id(), "TERM");
    }
    let mut succeeded_per_node = Vec::new();
    let mut lease_refusals = 0;
    for Node(child, log) in &mut nodes {
        let status = wait_with_timeout(child, Duration::from_secs(30));
        let log = std::fs::read_to_string(log).unwrap();
        assert!(
            status.success(),
            "a scheduler stopped badly ({status}): {log}"
        );
        assert!(!log.contains("panicked"), "{log}");
        succeeded_per_node.push(log.matches("succeeded").count());
        lease_refusals += log.matches("lease").count();
    }
    let checked = cl.check_exactly_once().await;
    eprintln!(
        "three schedulers: {checked:?}; successful scans per node {succeeded_per_node:?}; \
         {lease_refusals} scan(s) refused because another node held the lease"
    );
    assert!(checked.successes >= 3, "{checked:?}");
    assert_eq!(checked.open_intents, 0, "the outbox is empty at the end");
    assert!(checked.issues >= CODES.len() - 1, "{checked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_any_point_of_a_scan_then_another_node_takes_over_and_files_nothing_twice() {
    let Some(cl) = cluster().await else { return };
    let pids = cl.path("pids");
    std::fs::create_dir(&pids).unwrap();
    let claude = gated_claude(&pids, "0.2", None);
    cl.write_config(&format!(
        r#"{{ "kind": "claude", "binary": "{}", "timeout_secs": 60 }}"#,
        claude.display()
    ));
    // Kills spread over a scan's life: connecting, reading, analysing, filing, committing.
    let delays_ms = [20, 90, 160, 230, 300, 370, 450, 600, 800, 1200];
    let mut outcomes = Vec::new();
    for (round, delay) in delays_ms.iter().enumerate() {
        let codes = &CODES[round % 5..round % 5 + 2];
        cl.write_logs(round, codes).await;
        let mut victim = cl.scan(&format!("selfmon-victim-{round}"));
        tokio::time::sleep(Duration::from_millis(*delay)).await;
        signal(victim.id(), "KILL");
        let _ = victim.wait();
        kill_orphaned_claudes(&pids);

        // Another node scans at once: the dead holder's lease is taken over, not waited out.
        let t0 = Instant::now();
        let out = cl.scan_to_end(&format!("selfmon-taker-{round}"));
        let took = t0.elapsed();
        kill_orphaned_claudes(&pids);
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: the next scan must succeed: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            took < Duration::from_secs(60),
            "within one lease TTL ({took:?})"
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        outcomes.push((
            *delay,
            report.get("took_over_lease").is_some_and(|v| !v.is_null()),
            report["record"]["issues_created"].as_u64().unwrap_or(0),
        ));
        cl.check_exactly_once().await;
    }
    let checked = cl.check_exactly_once().await;
    eprintln!("kill -9 rounds (delay ms, lease taken over, issues the taker filed): {outcomes:?}; {checked:?}");
    assert!(
        outcomes.iter().any(|(_, took_over, _)| *took_over),
        "at least one kill landed while the victim held the lease: {outcomes:?}"
    );
    assert_eq!(checked.open_intents, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_whose_connections_are_terminated_mid_scan_fails_cleanly_or_reconnects() {
    let Some(cl) = cluster().await else { return };
    let pids = cl.path("pids");
    std::fs::create_dir(&pids).unwrap();
    let gate = cl.path("gate");
    let claude = gated_claude(&pids, "0", Some(&gate));
    cl.write_config(&format!(
        r#"{{ "kind": "claude", "binary": "{}", "timeout_secs": 60 }}"#,
        claude.display()
    ));
    let mut exits = Vec::new();
    for round in 0..3 {
        cl.write_logs(round, &CODES[round..round + 3]).await;
        let app = format!("selfmon-cut-{}-{round}", &cl.schema[3..11]);
        let victim = cl.scan(&app);
        // Wait until the scan is inside its analysis (it holds the lease, has read its records).
        let start = Instant::now();
        while std::fs::read_dir(&pids).unwrap().next().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the analysis never started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cut: i64 = cl
            .admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        assert!(cut >= 1, "the scan's backends were found and cut");
        std::fs::write(&gate, "go").unwrap();
        let out = tokio::task::spawn_blocking(move || victim.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        std::fs::remove_file(&gate).unwrap();
        kill_orphaned_claudes(&pids);
        let stderr = text(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0) | Some(1)),
            "a cut connection ends the scan cleanly (0 or 1), not {:?}: {stderr}",
            out.status
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            !stderr.contains(&cl.url) && !text(&out.stdout).contains(&cl.url),
            "the connection string is never printed"
        );
        exits.push(out.status.code());

        // The next scan (another node) finishes what is left; nothing is filed twice.
        std::fs::write(&gate, "go").unwrap();
        let out = cl.scan_to_end(&format!("selfmon-after-{round}"));
        std::fs::remove_file(&gate).unwrap();
        kill_orphaned_claudes(&pids);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        cl.check_exactly_once().await;
    }
    let checked = cl.check_exactly_once().await;
    eprintln!("terminated-backend scans exited with {exits:?}; {checked:?}");
    assert_eq!(checked.open_intents, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_scanner_loses_the_lease_after_one_ttl_and_lands_nothing_when_it_wakes() {
    let Some(cl) = cluster().await else { return };
    let pids = cl.path("pids");
    std::fs::create_dir(&pids).unwrap();
    let gate = cl.path("gate");
    let claude = gated_claude(&pids, "0", Some(&gate));
    cl.write_config(&format!(
        r#"{{ "kind": "claude", "binary": "{}", "timeout_secs": 300 }}"#,
        claude.display()
    ));
    cl.write_logs(0, &CODES[..3]).await;

    // Node a takes the lease, reads, and stalls inside its analysis (a long GC pause, a frozen
    // VM, a partition: its process lives but it renews nothing).
    let stalled = cl.scan("selfmon-stalled");
    let start = Instant::now();
    while std::fs::read_dir(&pids).unwrap().next().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the analysis never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(stalled.id(), "STOP");
    let stopped_at = Instant::now();

    // Its process is alive, so nobody may take the lease before it expires.
    let out = cl.scan_to_end("selfmon-early");
    assert_eq!(
        out.status.code(),
        Some(3),
        "a live holder's lease is not taken: {}",
        text(&out.stderr)
    );

    // After one TTL without renewal, node b takes over, and files.
    let expires: DateTime<Utc> = cl
        .admin
        .query_one(
            &format!("SELECT expires_at FROM {}.selfmon_lease", cl.schema),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let wait = (expires - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(500);
    assert!(wait <= Duration::from_secs(61), "{wait:?}");
    tokio::time::sleep(wait).await;
    std::fs::write(&gate, "go").unwrap();
    let out = cl.scan_to_end("selfmon-taker");
    let took = stopped_at.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let filed_by_b = report["record"]["issues_created"].as_u64().unwrap();
    assert!(filed_by_b >= 1, "{report:#}");
    assert!(
        took < Duration::from_secs(75),
        "taken over within one TTL ({took:?})"
    );
    let before_wake = cl.dry_run_issues().len();

    // Node a wakes up: its analysis answers, but it lost the lease: it must land nothing.
    signal(stalled.id(), "CONT");
    let out = tokio::task::spawn_blocking(move || stalled.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    kill_orphaned_claudes(&pids);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the stalled scan fails: {stderr}"
    );
    assert!(
        stderr.contains("lease"),
        "it says it lost the lease: {stderr}"
    );
    assert_eq!(
        cl.dry_run_issues().len(),
        before_wake,
        "the woken node filed nothing"
    );
    let checked = cl.check_exactly_once().await;
    eprintln!("stalled scanner: taken over after {took:?}; {checked:?}");
    assert_eq!(checked.open_intents, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_a_filing_is_in_flight_then_the_next_node_reconciles_the_outbox() {
    let Some(cl) = cluster().await else { return };
    let pids = cl.path("pids");
    std::fs::create_dir(&pids).unwrap();
    let claude = gated_claude(&pids, "0.1", None);
    cl.write_config(&format!(
        r#"{{ "kind": "claude", "binary": "{}", "timeout_secs": 60 }}"#,
        claude.display()
    ));
    let open_intents = format!("SELECT count(*) FROM {}.selfmon_intents", cl.schema);
    let (mut caught, mut reconciled) = (0, 0);
    for round in 0..3 {
        cl.write_logs(round, &CODES[2 * round..2 * round + 2]).await;
        let mut victim = cl.scan(&format!("selfmon-filer-{round}"));
        // Kill the moment the outbox holds a filing: the intent is committed, the tracker call
        // is in flight or done, the issue row not yet recorded.
        let start = Instant::now();
        let mut hit = false;
        while victim.try_wait().unwrap().is_none() {
            // The table appears when the victim has migrated the schema.
            let open: i64 = cl
                .admin
                .query_one(&open_intents, &[])
                .await
                .map_or(0, |r| r.get(0));
            if open > 0 {
                signal(victim.id(), "KILL");
                hit = true;
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the scan never ended"
            );
        }
        let _ = victim.wait();
        kill_orphaned_claudes(&pids);
        let out = cl.scan_to_end(&format!("selfmon-reconciler-{round}"));
        kill_orphaned_claudes(&pids);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        caught += usize::from(hit);
        reconciled += report["reconciled"].as_array().map_or(0, Vec::len);
        let checked = cl.check_exactly_once().await;
        assert_eq!(
            checked.open_intents, 0,
            "round {round}: the outbox is drained"
        );
    }
    let checked = cl.check_exactly_once().await;
    eprintln!(
        "kill -9 mid-filing: {caught} of 3 kills landed with a filing in flight; \
         {reconciled} issue(s) reconciled from the outbox by the next node; {checked:?}"
    );
    assert!(caught >= 1, "no kill landed while a filing was in flight");
    assert!(checked.issues >= CODES.len(), "{checked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selfmon_scan_names_a_node_session_left_idle_in_transaction_and_reads_its_row_once_it_commits(
) {
    let Some(cl) = cluster().await else { return };
    let cfg = cl.write_config(r#"{ "kind": "offline" }"#);
    let text_cfg = std::fs::read_to_string(&cfg).unwrap().replace(
        r#""min_level": "WARNING" }"#,
        r#""min_level": "WARNING", "horizon_stall_warn_secs": 0 }"#,
    );
    std::fs::write(&cfg, text_cfg).unwrap();
    cl.write_logs(0, &["STUCK-001"]).await;
    // A node's connection inserts a record and then sits idle inside its transaction.
    let mut stuck = PgUrl::parse(&cl.url, URL_ENV)
        .unwrap()
        .connect("node-b-stuck")
        .await
        .expect("connect");
    let pid: i32 = stuck
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let tx = stuck.transaction().await.unwrap();
    tx.execute(
        &format!(
            "INSERT INTO {}.logs (timestamp, level, message, node_id)
             VALUES ('2026-12-07T12:00:00', 'ERROR', '[STUCK-002] held', 'node-b')",
            cl.schema
        ),
        &[],
    )
    .await
    .unwrap();

    let cfg_arg = cfg.display().to_string();
    let out = cl
        .command(&["scan", "--config", &cfg_arg], "scanner")
        .output()
        .expect("selfmon scan");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    // A fresh process has never seen the table without the writer: it can prove nothing final.
    for part in [
        "warning (commit_horizon_held): no new log record is read".to_string(),
        format!("pid {pid}"),
        "`node-b-stuck`".to_string(),
        "`idle in transaction`".to_string(),
        format!("SELECT pg_terminate_backend({pid});"),
    ] {
        assert!(stdout.contains(&part), "{part} missing from:\n{stdout}");
    }

    tx.commit().await.unwrap();
    let out = cl
        .command(&["scan", "--json", "--config", &cfg_arg], "scanner")
        .output()
        .expect("selfmon scan");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert!(
        report.get("warnings").is_none(),
        "nothing holds the horizon now: {report}"
    );
    assert_eq!(
        report["record"]["log_id_end"].as_i64(),
        Some(cl.max_log_id().await),
        "every record is read once the writer commits: {report}"
    );
}
