//! Nothing the SQLite state store holds after scans carries a piece of a planted secret in
//! clear: not the learned template state (`selfmon_template_state`), not the templates of filed
//! issues, filing intents or the backlog, not the scan reports. Checked on the database file
//! itself (every byte of it and of its WAL) and on every row of every table, for the shapes
//! masking cuts into pieces (Google API keys with `-`/`_`, whose digits and runs become
//! `<NUM>`/`<ID>` before templates are sealed) and the other high-entropy kinds.

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use rusqlite::{params, types::ValueRef, Connection};
use selfmon_core::engine::SelfMonitor;
use selfmon_core::offline::OfflineRunner;
use selfmon_core::testing::{FakeClock, MemoryIssueTracker};
use selfmon_core::{ScanTrigger, SelfMonitoringConfig};
use selfmon_sqlite::{
    create_logs_table, LogSourceOptions, SqliteLogSource, SqliteStateStore, StateStoreOptions,
};

/// A small deterministic generator (xorshift64), so the planted keys are the same on every run.
struct Gen(u64);

impl Gen {
    fn chars(&mut self, alphabet: &str, n: usize) -> String {
        let a: Vec<char> = alphabet.chars().collect();
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                a[(self.0 % a.len() as u64) as usize]
            })
            .collect()
    }
}

const URLSAFE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const UPPER_NUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The planted secrets and the log lines carrying them (one code each, so each line is its own
/// problem and is filed or waits in the backlog).
fn planted() -> Vec<(String, String)> {
    let mut g = Gen(0x51F3_A7C0_0000_0005);
    let mut out = Vec::new();
    for j in 0..40 {
        // The review's shape (`/tmp/review/repro/r6`).
        let key = format!("AIza{}", g.chars(URLSAFE, 35));
        let line =
            format!("[KEY-ERR-{j:03}] maps request failed with key={key} status=REQUEST_DENIED");
        out.push((key, line));
    }
    for j in 0..10 {
        let id = format!("AKIA{}", g.chars(UPPER_NUM, 16));
        let secret = g.chars(B64, 40);
        out.push((
            secret.clone(),
            format!("[AWS-ERR-{j:03}] AWS creds in env: {id} / {secret}"),
        ));
        let anthropic = format!("sk-ant-api03-{}AA", g.chars(URLSAFE, 93));
        out.push((
            anthropic.clone(),
            format!("[LLM-ERR-{j:03}] model call failed with key {anthropic}"),
        ));
        let openai = format!("sk-proj-{}", g.chars(URLSAFE, 60));
        out.push((
            openai.clone(),
            format!("[OAI-ERR-{j:03}] {{\"error\":\"invalid key\",\"key\":\"{openai}\"}}"),
        ));
        let jwt = format!(
            "eyJ{}.eyJ{}.{}",
            g.chars(URLSAFE, 20),
            g.chars(URLSAFE, 40),
            g.chars(URLSAFE, 43)
        );
        for piece in jwt.split('.') {
            out.push((
                piece.to_string(),
                format!("[JWT-ERR-{j:03}] session rejected: token={jwt} expired"),
            ));
        }
    }
    out
}

fn write_logs(path: &Path, lines: &[(String, String)]) {
    let conn = Connection::open(path).unwrap();
    create_logs_table(&conn).unwrap();
    for (i, (_, message)) in lines.iter().enumerate() {
        conn.execute(
            "INSERT INTO logs (timestamp, level, source, message) VALUES ('2026-12-07T04:00:00Z', 'CRITICAL', ?1, ?2)",
            params![format!("svc{i}"), message],
        )
        .unwrap();
    }
}

/// Every text and blob in every row of every table of the database at `path`.
fn every_row(path: &Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for c in 0..columns {
                match row.get_ref(c).unwrap() {
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        out.push(String::from_utf8_lossy(t).into_owned())
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// The first piece of `secret` of 12 characters that `text` holds.
fn clear_piece(text: &str, secret: &str) -> Option<String> {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(12.min(chars.len()))
        .map(|w| w.iter().collect::<String>())
        .find(|w| text.contains(w.as_str()))
}

#[tokio::test]
async fn no_piece_of_a_planted_key_persists_in_the_sqlite_state_store() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs.db");
    let state = dir.path().join("selfmon-state.db");
    let lines = planted();
    write_logs(&logs, &lines);
    let config = SelfMonitoringConfig {
        enabled: true,
        max_new_issues_per_scan: 20,
        ..Default::default()
    };
    {
        let store = Arc::new(SqliteStateStore::open(&state, StateStoreOptions::default()).unwrap());
        let monitor = SelfMonitor::builder()
            .config(config)
            .log_source(Arc::new(
                SqliteLogSource::open(&logs, LogSourceOptions::default()).unwrap(),
            ))
            .runner(Arc::new(OfflineRunner))
            .tracker(Arc::new(MemoryIssueTracker::new()))
            .store(store.clone())
            .template_memory(store)
            .clock(Arc::new(FakeClock::new(
                Utc.with_ymd_and_hms(2026, 12, 7, 5, 0, 0).unwrap(),
            )))
            .build()
            .unwrap();
        let report = monitor.scan(ScanTrigger::Manual).await.unwrap();
        assert!(report.record.records_read as usize >= lines.len());
    }
    let rows = every_row(&state);
    assert!(
        rows.iter().any(|r| r.contains("<SEALED:")),
        "the learned state holds sealed tokens"
    );
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("selfmon-state.db") {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    let file = String::from_utf8_lossy(&bytes);
    let mut leaked = Vec::new();
    for (secret, line) in &lines {
        let found = clear_piece(&file, secret).map(|p| ("file", p)).or_else(|| {
            rows.iter()
                .find_map(|r| clear_piece(r, secret))
                .map(|p| ("row", p))
        });
        if let Some((place, piece)) = found {
            leaked.push(format!("{piece:?} ({place}) of {line:?}"));
        }
    }
    assert!(
        leaked.is_empty(),
        "{} of {} planted secrets left a clear piece of 12 characters:\n{}",
        leaked.len(),
        lines.len(),
        leaked.join("\n")
    );
}
