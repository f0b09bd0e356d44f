//! `selfmon history`.

use selfmon::sqlite::{SqliteStateStore, StateStoreOptions};
use selfmon::{IssueFilter, IssueLedger, PageRequest, ScanHistory};

use super::args::HistoryArgs;
use super::failure::Failure;

/// Prints scans and filed issues, newest first.
pub async fn run(args: &HistoryArgs) -> Result<(), Failure> {
    if !args.state.is_file() {
        return Err(Failure::Usage(format!(
            "state file {} does not exist",
            args.state.display()
        )));
    }
    let store = SqliteStateStore::open(&args.state, StateStoreOptions::default()).map_err(|e| {
        Failure::usage(
            &format!("cannot open state file {}", args.state.display()),
            &e,
        )
    })?;
    let scans = store
        .list_scans(PageRequest {
            offset: 0,
            limit: args.scans,
        })
        .await
        .map_err(|e| Failure::usage("cannot read scans", &e))?;
    let issues = store
        .list_issues(
            &IssueFilter::default(),
            PageRequest {
                offset: 0,
                limit: args.issues,
            },
        )
        .await
        .map_err(|e| Failure::usage("cannot read issues", &e))?;
    let backlog = store
        .open_backlog()
        .await
        .map_err(|e| Failure::usage("cannot read the backlog", &e))?;
    if args.json {
        let doc = serde_json::json!({ "scans": scans, "issues": issues, "backlog": backlog });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    println!("scans ({} of {}):", scans.items.len(), scans.total);
    println!(
        "  {:<20} {:<9} {:<8} {:<7} {:>7} {:>7} {:>6} {:>5} {:>5} {:>5} {:>7}  error",
        "started",
        "trigger",
        "status",
        "mode",
        "secs",
        "records",
        "novel",
        "filed",
        "dups",
        "cmts",
        "backlog"
    );
    for s in &scans.items {
        println!(
            "  {:<20} {:<9} {:<8} {:<7} {:>7} {:>7} {:>6} {:>5} {:>5} {:>5} {:>7}  {}",
            s.started_at.format("%Y-%m-%d %H:%M:%S"),
            s.trigger.as_str(),
            s.status.as_str(),
            if s.dry_run { "dry-run" } else { "real" },
            s.duration_ms()
                .map_or("-".into(), |ms| format!("{:.1}", ms as f64 / 1000.0)),
            s.records_read,
            s.novel_signatures,
            s.issues_created,
            s.duplicates.total(),
            s.comments_added,
            s.backlog,
            s.error_message.as_deref().unwrap_or("")
        );
    }
    println!("issues ({} of {}):", issues.items.len(), issues.total);
    for i in &issues.items {
        let codes: Vec<&str> = i.error_codes.iter().map(|c| c.as_str()).collect();
        println!(
            "  #{:<6} {:<6} {:<17} x{:<5} last {}  {}  [{}]",
            i.issue.number,
            i.issue.state.as_str(),
            i.classification.as_str(),
            i.occurrences,
            i.last_seen_at.format("%Y-%m-%d %H:%M"),
            i.title,
            codes.join(",")
        );
    }
    println!(
        "backlog ({} waiting; filed first by the next scans, most severe first):",
        backlog.len()
    );
    for e in &backlog {
        println!(
            "  {:<8} x{:<5} since {}  {}",
            e.severity.as_str(),
            e.occurrences,
            e.deferred_at.format("%Y-%m-%d %H:%M"),
            e.finding.title
        );
    }
    Ok(())
}
