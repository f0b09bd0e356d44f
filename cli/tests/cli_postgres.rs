//! The `selfmon` binary in cluster mode: logs and state in a real PostgreSQL server (the one
//! `.ci/install-postgres.sh` starts, named by `SELFMON_TEST_PG_URL`), the offline runner and the
//! dry-run tracker.
#![cfg(feature = "postgres")]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};

use selfmon::postgres::PgUrl;

const URL_ENV: &str = "SELFMON_TEST_PG_URL";

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// A fresh schema with a cluster `logs` table holding records written by two nodes.
async fn cluster() -> Option<(String, String)> {
    let Ok(url_text) = std::env::var(URL_ENV) else {
        selfmon::testing::tool::skip_missing_tool(
            "postgres",
            &format!("{URL_ENV} is unset (run .ci/install-postgres.sh)"),
        );
        return None;
    };
    let url = PgUrl::parse(&url_text, URL_ENV).expect("test URL");
    let client = url.connect("selfmon-cli-test").await.expect("connect");
    let schema = format!("cli_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema}; {ddl};
             INSERT INTO logs (timestamp, level, source, message, node_id) VALUES
             ('2026-01-01T00:00:01Z', 'ERROR', 'app.git', '[GIT-SYNC-001] clone of repo alpha failed: exit 128', 'node-a'),
             ('2026-01-01T00:00:02Z', 'ERROR', 'app.git', '[GIT-SYNC-001] clone of repo beta failed: exit 128', 'node-b'),
             ('2026-01-01T00:00:03Z', 'INFO', 'app.http', 'GET /health 200', 'node-a'),
             ('2026-01-01T00:00:04Z', 'CRITICAL', 'app.db', '[DB-LOCK-003] database is locked', 'node-c');",
            ddl = selfmon::postgres::LOGS_TABLE_DDL
        ))
        .await
        .expect("seed");
    Some((url_text, schema))
}

fn write_config(dir: &Path, schema: &str, state: &str) -> String {
    let cfg = format!(
        r#"{{
  "enabled": true,
  "logs": {{ "kind": "postgres", "url_env": "{URL_ENV}", "schema": "{schema}", "table": "logs", "min_level": "WARNING" }},
  "state": {state},
  "runner": {{ "kind": "offline" }},
  "tracker": {{ "kind": "dry-run", "dir": "issues" }}
}}"#
    );
    let path = dir.join("selfmon.json");
    std::fs::write(&path, cfg).unwrap();
    path.display().to_string()
}

fn selfmon(args: &[&str], url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_selfmon"))
        .args(args)
        .env(URL_ENV, url)
        .output()
        .expect("run selfmon")
}

fn scan_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "scan failed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json report")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_reads_the_cluster_table_into_postgres_state_and_names_the_nodes() {
    let Some((url, schema)) = cluster().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state =
        format!(r#"{{ "kind": "postgres", "url_env": "{URL_ENV}", "schema": "{schema}" }}"#);
    let cfg = write_config(dir.path(), &schema, &state);

    let o = selfmon(&["config", "validate", "--config", &cfg], &url);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));

    let report = scan_json(&selfmon(&["scan", "--json", "--config", &cfg], &url));
    assert_eq!(report["record"]["records_read"], 3, "{report}");
    assert_eq!(report["record"]["log_id_end"], 4);
    let filed: Vec<_> = std::fs::read_dir(dir.path().join("issues"))
        .map(|d| d.filter_map(Result::ok).collect())
        .unwrap_or_default();
    assert!(!filed.is_empty(), "the dry-run tracker got issues");
    let bodies: String = filed
        .iter()
        .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
        .collect();
    assert!(
        bodies.contains("nodes: node-a") && bodies.contains("nodes: node-c"),
        "the issue evidence names the nodes: {bodies}"
    );

    // A second scan reads nothing new and files nothing twice.
    let again = scan_json(&selfmon(&["scan", "--json", "--config", &cfg], &url));
    assert_eq!(again["record"]["records_read"], 0, "{again}");
    assert_eq!(again["record"]["issues_created"], 0);

    // The cluster's history on the command line: the state store the configuration names.
    let o = selfmon(&["history", "--config", &cfg, "--json"], &url);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let history: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(history["scans"]["total"], 2, "{history}");
    assert_eq!(
        history["issues"]["total"], report["record"]["issues_created"],
        "{history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_logs_and_sqlite_state_mix() {
    let Some((url, schema)) = cluster().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &schema, r#"{ "path": "state.db" }"#);
    let report = scan_json(&selfmon(&["scan", "--json", "--config", &cfg], &url));
    assert_eq!(report["record"]["records_read"], 3, "{report}");
    assert!(dir.path().join("state.db").is_file());
}

#[test]
fn validate_names_a_missing_or_unset_connection_variable_without_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "public",
        r#"{ "kind": "postgres", "url_env": "SELFMON_TEST_SURELY_UNSET_PG_URL" }"#,
    );
    let o = Command::new(env!("CARGO_BIN_EXE_selfmon"))
        .args(["config", "validate", "--config", &cfg])
        .env(URL_ENV, "postgres://u:hunter2-secret@127.0.0.1:1/db")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(err.contains("SELFMON_TEST_SURELY_UNSET_PG_URL"), "{err}");
    assert!(!err.contains("hunter2-secret"), "{err}");
}

#[test]
fn an_unreachable_server_fails_scan_with_exit_1_not_as_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "public",
        &format!(r#"{{ "kind": "postgres", "url_env": "{URL_ENV}" }}"#),
    );
    // Nothing listens on port 1 of the loopback: the connection is refused at once.
    let o = selfmon(
        &["scan", "--config", &cfg],
        "postgres://u:hunter2-secret@127.0.0.1:1/db",
    );
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "an outage is retryable (1), not a usage or configuration error (2): {err}"
    );
    assert!(err.contains("cannot connect"), "{err}");
    assert!(!err.contains("hunter2-secret"), "{err}");
}

/// A loopback TCP proxy to `target` that closes every connection while `open` is false.
fn switchable_proxy(target: std::net::SocketAddr) -> (u16, std::sync::Arc<AtomicBool>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let open = std::sync::Arc::new(AtomicBool::new(false));
    let gate = open.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            if !gate.load(Ordering::SeqCst) {
                drop(client);
                continue;
            }
            let Ok(server) = std::net::TcpStream::connect(target) else {
                continue;
            };
            let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            };
            pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
            pipe(server, client);
        }
    });
    (port, open)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_scheduler_started_before_postgres_waits_for_it_and_then_scans() {
    let Some((url, schema)) = cluster().await else {
        return;
    };
    // postgres://user@host:port/db, as .ci/install-postgres.sh writes it.
    let host_port = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|authority| authority.rsplit('@').next())
        .expect("a postgres:// test URL");
    let (_, port) = host_port
        .rsplit_once(':')
        .expect("the test URL names a port");
    let target = std::net::ToSocketAddrs::to_socket_addrs(host_port)
        .unwrap()
        .next()
        .unwrap();
    let (proxy_port, open) = switchable_proxy(target);
    let proxied = url.replacen(&format!(":{port}/"), &format!(":{proxy_port}/"), 1);
    assert_ne!(proxied, url, "the test URL names its port: {url}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &schema,
        &format!(r#"{{ "kind": "postgres", "url_env": "{URL_ENV}", "schema": "{schema}" }}"#),
    );
    let log = dir.path().join("scheduler.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_selfmon"))
        .args(["serve-scheduler", "--config", &cfg, "--tick-secs", "1"])
        .env(URL_ENV, &proxied)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let wait_for = |what: &str, done: &dyn Fn(&str) -> bool| {
        for _ in 0..600 {
            if done(&read()) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("{what} never happened: {}", read());
    };
    wait_for("the warning that the database cannot be reached", &|t| {
        t.contains("warning:") && t.contains("cannot connect")
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "the scheduler waits instead of exiting: {}",
        read()
    );
    open.store(true, Ordering::SeqCst);
    wait_for("a scan once the database is back", &|t| {
        t.contains("scheduling starts") && t.contains("succeeded")
    });
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {}", read());
}
