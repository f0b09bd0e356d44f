//! `selfmon history`.

use std::path::Path;
use std::sync::Arc;

use selfmon::memory::MemoryStateStore;
use selfmon::sqlite::{SqliteStateStore, StateStoreOptions};
use selfmon::{
    FindingOutcome, IssueFilter, PageRequest, ScanId, ScanReport, SignatureFate, StateStore,
};

use super::args::{HistoryArgs, HistoryCommand};
use super::config_file::{BackendKind, CliConfig};
use super::failure::Failure;

/// Characters of a scan id shown in the history table; `history show` accepts any unique prefix.
const SHORT_ID: usize = 8;

/// The SQLite state file at `state`, refused when it does not exist or holds no selfmon state
/// (`history` only reads: it never creates a store).
fn open_file(state: &Path) -> Result<Arc<dyn StateStore>, Failure> {
    if !state.is_file() {
        return Err(Failure::Usage(format!(
            "state file {} does not exist",
            state.display()
        )));
    }
    let context = format!("cannot open state file {}", state.display());
    // A path to another SQLite file (the server's logs.db, a typo) must not get selfmon's tables
    // created in it.
    if !SqliteStateStore::holds_state(state).map_err(|e| Failure::open(&context, &e))? {
        return Err(Failure::Usage(format!(
            "{} holds no selfmon state (none of its tables): pass the file the configuration's \
             \"state.path\" names; history changes nothing, so it never creates one",
            state.display()
        )));
    }
    let store = SqliteStateStore::open(state, StateStoreOptions::default())
        .map_err(|e| Failure::open(&context, &e))?;
    Ok(Arc::new(store))
}

/// The state store `--state` or `--config` names.
async fn open(args: &HistoryArgs) -> Result<Arc<dyn StateStore>, Failure> {
    match (&args.state, &args.config) {
        (Some(state), _) => open_file(state),
        (None, Some(config)) => {
            let config = CliConfig::load(config)?;
            if config.state.kind == BackendKind::Sqlite {
                // The first scan creates the file the configuration names: before it there is
                // simply no history (a path given with --state is checked, it may be a typo).
                if !config.state.path.exists() {
                    eprintln!(
                        "selfmon: no scans yet: state file {} does not exist until the first scan \
                         creates it",
                        config.state.path.display()
                    );
                    return Ok(Arc::new(MemoryStateStore::new()));
                }
                open_file(&config.state.path)
            } else {
                Ok(config.build_store().await?.0)
            }
        }
        (None, None) => Err(Failure::Usage(
            "--state FILE (the SQLite state store, e.g. selfmon-state.db) or --config FILE (the \
             state store the configuration names, PostgreSQL included) is required"
                .into(),
        )),
    }
}

/// Prints scans and filed issues, newest first, or one scan's report.
pub async fn run(args: &HistoryArgs) -> Result<(), Failure> {
    let store = open(args).await?;
    let store = store.as_ref();
    if let Some(HistoryCommand::Show {
        scan_id,
        json,
        digest,
    }) = &args.command
    {
        return show(store, scan_id, *json, *digest).await;
    }
    if let Some(HistoryCommand::Forget { issue }) = &args.command {
        return forget(store, *issue).await;
    }
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
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    outln!("scans ({} of {}):", scans.items.len(), scans.total);
    outln!(
        "  {:<8} {:<20} {:<9} {:<8} {:<7} {:>7} {:>7} {:>6} {:>5} {:>5} {:>5} {:>7}  error",
        "scan",
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
        outln!(
            "  {:<8} {:<20} {:<9} {:<8} {:<7} {:>7} {:>7} {:>6} {:>5} {:>5} {:>5} {:>7}  {}",
            s.scan_id
                .as_str()
                .chars()
                .take(SHORT_ID)
                .collect::<String>(),
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
            super::terminal::safe(s.error_message.as_deref().unwrap_or(""))
        );
    }
    outln!("issues ({} of {}):", issues.items.len(), issues.total);
    for i in &issues.items {
        let codes: Vec<&str> = i.error_codes.iter().map(|c| c.as_str()).collect();
        outln!(
            "  #{:<6} {:<6} {:<17} x{:<5} last {}  {}  [{}]",
            i.issue.number,
            i.issue.state.as_str(),
            i.classification.as_str(),
            i.occurrences,
            i.last_seen_at.format("%Y-%m-%d %H:%M"),
            super::terminal::safe(&i.title),
            super::terminal::safe(&codes.join(","))
        );
    }
    outln!(
        "backlog ({} waiting; filed first by the next scans, most severe first):",
        backlog.len()
    );
    for e in &backlog {
        outln!(
            "  {:<8} x{:<5} since {}  {}",
            e.severity.as_str(),
            e.occurrences,
            e.deferred_at.format("%Y-%m-%d %H:%M"),
            super::terminal::safe(&e.finding.title)
        );
    }
    Ok(())
}

/// The scan whose id is `wanted` or starts with it (unique prefixes only).
async fn find_scan(store: &dyn StateStore, wanted: &str) -> Result<ScanReport, Failure> {
    let read = |e: selfmon::Error| Failure::usage("cannot read the scan report", &e);
    if let Some(r) = store
        .scan_report(&ScanId(wanted.to_string()))
        .await
        .map_err(read)?
    {
        return Ok(r);
    }
    let mut matches = Vec::new();
    let mut offset = 0;
    loop {
        let page = store
            .list_scans(PageRequest { offset, limit: 500 })
            .await
            .map_err(read)?;
        matches.extend(
            page.items
                .iter()
                .filter(|s| !wanted.is_empty() && s.scan_id.as_str().starts_with(wanted))
                .map(|s| s.scan_id.clone()),
        );
        offset += page.items.len() as u64;
        if page.items.is_empty() || offset >= page.total {
            break;
        }
    }
    match matches.as_slice() {
        [one] => store
            .scan_report(one)
            .await
            .map_err(read)?
            .ok_or_else(|| Failure::Usage(format!("scan {one} disappeared while reading"))),
        [] => Err(Failure::Usage(format!(
            "no scan with id {} in the state file; `selfmon history` lists scan ids",
            selfmon::text::quoted(wanted)
        ))),
        many => Err(Failure::Usage(format!(
            "{} matches {} scans; give more of the id",
            selfmon::text::quoted(wanted),
            many.len()
        ))),
    }
}

async fn show(
    store: &dyn StateStore,
    scan_id: &str,
    json: bool,
    digest: bool,
) -> Result<(), Failure> {
    let report = find_scan(store, scan_id).await?;
    if json {
        let cannot =
            |e: serde_json::Error| Failure::Usage(format!("cannot serialise the report: {e}"));
        let mut value = serde_json::to_value(&report).map_err(cannot)?;
        if let (false, Some(d)) = (digest, &report.digest_sent) {
            value["digest_sent"] = format!("({} bytes; pass --digest to include)", d.len()).into();
        }
        let text = serde_json::to_string_pretty(&value).map_err(cannot)?;
        outln!("{text}");
        return Ok(());
    }
    out!("{}", super::terminal::safe(&report_text(&report, digest)));
    Ok(())
}

/// `history forget N`: removes selfmon's record of issue #N (review5 G10).
async fn forget(store: &dyn StateStore, issue: u64) -> Result<(), Failure> {
    let forgotten = store.forget_issue(issue).await.map_err(|e| {
        let message = format!(
            "cannot forget issue #{issue}: {}",
            super::failure::chain(&e)
        );
        if e.is_retryable() {
            Failure::ScanFailed(message)
        } else {
            Failure::Usage(message)
        }
    })?;
    if forgotten {
        println!(
            "forgot issue #{issue}: its problem is no longer known, so its next recurrence is \
             analysed and filed as a new issue"
        );
        Ok(())
    } else {
        Err(Failure::Usage(format!(
            "no issue #{issue} in selfmon's state (see `selfmon history` for the filed issues)"
        )))
    }
}

/// The human form of a stored scan report.
pub fn report_text(report: &ScanReport, with_digest: bool) -> String {
    let mut s = format!("scan {}\n", report.record.scan_id);
    s.push_str(&super::scan::summary(report));
    if let Some(previous) = report.previous_cursor {
        s.push_str(&format!(
            "  cursor reset: the log's highest id was below the cursor {previous}; reading restarted from 0\n"
        ));
    }
    if let Some(runner) = &report.runner {
        s.push_str(&format!("  runner {runner}\n"));
    }
    if !report.details_recorded {
        s.push_str("  (no details were recorded for this scan: it stopped before saving them, or predates scan reports)\n");
    }
    if !report.signatures.is_empty() {
        s.push_str("signatures:\n");
        for sig in &report.signatures {
            let fate = match &sig.fate {
                SignatureFate::Known {
                    issue,
                    tier,
                    closed,
                } => format!(
                    "known: #{issue} by {}{}",
                    tier.as_str(),
                    if *closed { " (closed: regression)" } else { "" }
                ),
                SignatureFate::Ignored { rule } => format!("ignored by {rule}"),
                SignatureFate::Analysed => {
                    match report.skipped.iter().find(|k| k.signature_id == sig.id) {
                        Some(k) => format!("analysed; runner made no finding: {}", k.reason),
                        None => "analysed".to_string(),
                    }
                }
            };
            s.push_str(&format!(
                "  - {} {} x{} {}: {fate}\n",
                sig.id,
                sig.level,
                sig.count,
                selfmon::text::quoted(&sig.template)
            ));
        }
    }
    let orphan_skips: Vec<_> = report
        .skipped
        .iter()
        .filter(|k| !report.signatures.iter().any(|s| s.id == k.signature_id))
        .collect();
    for k in orphan_skips {
        s.push_str(&format!(
            "  - {}: runner made no finding: {}\n",
            k.signature_id, k.reason
        ));
    }
    for o in &report.outcomes {
        let extra = match o {
            FindingOutcome::Duplicate {
                tier: Some(t),
                score,
                ..
            } => Some(format!(
                "tier {}{}",
                t.as_str(),
                score.map_or(String::new(), |x| format!(", score {x:.2}"))
            )),
            FindingOutcome::Commented { score: Some(x), .. } => Some(format!("score {x:.2}")),
            FindingOutcome::Deferred {
                backlog_position: Some(p),
                ..
            } => Some(format!("backlog position {p}")),
            _ => None,
        };
        if let Some(extra) = extra {
            s.push_str(&format!("  ({}: {extra})\n", o.title()));
        }
    }
    if report.omitted.any() {
        s.push_str(&format!(
            "  (report bounded: {} signature entries, {} skip entries and {} digest bytes left out)\n",
            report.omitted.signatures, report.omitted.skipped, report.omitted.digest_bytes
        ));
    }
    match (&report.digest_sent, with_digest) {
        (Some(d), true) => {
            s.push_str("digest as sent:\n");
            s.push_str(d);
            if !d.ends_with('\n') {
                s.push('\n');
            }
        }
        (Some(d), false) => s.push_str(&format!(
            "  digest sent: {} bytes (--digest prints it)\n",
            d.len()
        )),
        (None, _) => {}
    }
    s
}
