//! The offline end-to-end demo: realistic server logs → digest → rule-based analysis → dedup →
//! (in-memory) issues, then a second scan that files nothing twice.
//!
//! Run with `cargo run --example quickstart`. Needs nothing but the Rust toolchain.

use std::sync::Arc;

use selfmon::engine::SelfMonitor;
use selfmon::offline::OfflineRunner;
use selfmon::testing::{MemoryIssueTracker, MemoryLogSource, MemoryStateStore};
use selfmon::{FindingOutcome, Level, LogRecord, ScanReport, ScanTrigger, SelfMonitoringConfig};

fn generate_logs(logs: &MemoryLogSource, round: u32) {
    let ts = |i: u32| {
        format!(
            "2026-11-25T10:{:02}:{:02}Z",
            (round * 7 + i / 60) % 60,
            i % 60
        )
    };
    let mut i = 0;
    let mut log = |level: Level, source: &str, msg: String, extra: serde_json::Value| {
        i += 1;
        logs.append(
            LogRecord::new(0, level, msg)
                .with_source(source)
                .with_timestamp(ts(i))
                .with_extra(extra)
                .with_correlation_id(format!("req-{round}-{i}")),
        );
    };
    // Ordinary traffic (below the WARNING filter).
    for n in 0..20 {
        log(
            Level::Info,
            "cidx.http",
            format!("GET /api/repos/{n} 200 in {}ms", 3 + n),
            serde_json::Value::Null,
        );
    }
    // Errors with codes.
    for repo in ["alpha", "beta", "gamma"] {
        log(
            Level::Error,
            "cidx.git",
            format!("[GIT-SYNC-001] git fetch failed for golden repo /srv/golden/{repo}: exit status 128 after {}s", 30 + round),
            serde_json::json!({"error_code": "GIT-SYNC-001", "repo": repo}),
        );
    }
    // A crash with a traceback.
    log(
        Level::Error,
        "cidx.indexer",
        "Unhandled exception in indexing job 4711\nTraceback (most recent call last):\n  File \"code_indexer/services/indexer.py\", line 212, in run\n    chunk = self._chunk(path)\n  File \"code_indexer/services/chunker.py\", line 88, in _chunk\n    raise ValueError(f\"cannot decode {path}\")\nValueError: cannot decode /srv/repos/alpha/blob.bin".to_string(),
        serde_json::Value::Null,
    );
    // Repeated warnings: a stuck state.
    for n in 0..8 {
        log(
            Level::Warning,
            "cidx.jobs",
            format!(
                "job queue full: {} jobs pending, dropping refresh request",
                64 + n
            ),
            serde_json::Value::Null,
        );
    }
    // Client validation errors.
    for user in ["u1", "u2", "u3", "u4"] {
        log(
            Level::Warning,
            "cidx.api",
            format!(
                "request validation failed for user {user}: field 'limit' must be <= 100, got {}",
                500 + round
            ),
            serde_json::Value::Null,
        );
    }
    // A deprecated parameter.
    log(
        Level::Warning,
        "cidx.api",
        "parameter 'repo_alias' is deprecated; use 'alias' instead".to_string(),
        serde_json::Value::Null,
    );
    // The database itself.
    log(
        Level::Critical,
        "cidx.db",
        "[DB-LOCK-003] database is locked after 5 retries".to_string(),
        serde_json::json!({}),
    );
}

fn print_report(title: &str, report: &ScanReport) {
    let r = &report.record;
    println!("== {title} ==");
    println!(
        "status {:?}; records read {}; cursor {} -> {}; signatures {} ({} known, {} novel); findings {}; filed {}; duplicates {}; comments {}; analysis ran: {}",
        r.status, r.records_read, r.log_id_start, r.log_id_end, r.signatures, r.known_signatures,
        r.novel_signatures, r.findings, r.issues_created, r.duplicates.total(), r.comments_added, r.analysis_ran
    );
    for o in &report.outcomes {
        match o {
            FindingOutcome::Filed { title, issue } => {
                println!("  filed #{}: {title}", issue.number)
            }
            FindingOutcome::Duplicate {
                title,
                issue,
                reason,
                ..
            } => println!("  duplicate of #{issue} ({reason}): {title}"),
            FindingOutcome::Commented { title, issue, .. } => {
                println!("  commented on #{issue}: {title}")
            }
            FindingOutcome::Regression { title, issue, .. } => {
                println!("  regression of #{issue}: {title}")
            }
            FindingOutcome::WouldFile { title, .. } => println!("  would file: {title}"),
            FindingOutcome::Deferred { title, .. } => println!("  deferred (budget): {title}"),
            FindingOutcome::Ignored { title, rule } => {
                println!("  ignored from the backlog ({rule}): {title}")
            }
        }
    }
    println!();
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let logs = Arc::new(MemoryLogSource::new());
    let tracker = Arc::new(MemoryIssueTracker::new());
    let store = Arc::new(MemoryStateStore::new());
    let config = SelfMonitoringConfig {
        enabled: true,
        max_new_issues_per_scan: 10,
        ..Default::default()
    };
    let monitor = SelfMonitor::builder()
        .config(config)
        .log_source(logs.clone())
        .runner(Arc::new(OfflineRunner))
        .tracker(tracker.clone())
        .store(store.clone())
        .template_memory(store.clone())
        .build()?;

    generate_logs(&logs, 1);
    let first = monitor.scan(ScanTrigger::Manual).await?;
    print_report("scan 1: a fresh batch of server logs", &first);

    println!("== issues filed ==");
    for issue in tracker.issues() {
        println!(
            "#{} {}  [labels: {}]",
            issue.number,
            issue.title,
            issue.labels.join(", ")
        );
    }
    if let Some(issue) = tracker.issues().first() {
        println!("\n-- body of #{} --\n{}", issue.number, issue.body);
    }

    generate_logs(&logs, 2);
    let second = monitor.scan(ScanTrigger::Scheduled).await?;
    print_report("scan 2: the same problems happen again", &second);

    let total = tracker.issues().len();
    println!(
        "issues in the tracker after two scans: {total} (scan 2 filed {})",
        second.record.issues_created
    );
    if second.record.issues_created != 0 {
        return Err("the second scan filed an issue twice".into());
    }
    Ok(())
}
