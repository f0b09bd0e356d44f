//! `selfmon scan`.

use std::io::{IsTerminal, Write};

use selfmon::{FindingOutcome, ScanEvent, ScanOptions, ScanReport, ScanTrigger};

use super::args::ScanArgs;
use super::config_file::CliConfig;
use super::failure::{from_scan_error, Failure};
use super::signals::Interrupts;

/// Runs one scan; prints a summary or the JSON report. SIGINT, SIGTERM or SIGHUP cancels the scan
/// (it is recorded as failed, "interrupted"; the cursor stays; the lease is released; the runner's
/// process group is stopped) and exits 130, 143 or 129.
pub async fn run(args: &ScanArgs) -> Result<(), Failure> {
    let interrupts = Interrupts::install()?;
    let config = CliConfig::load(&args.config)?;
    let built = config.build(args.dry_run).await?;
    let progress = std::io::stderr().is_terminal() && !args.json;
    let mut events = built.monitor.subscribe();
    let printer = tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            if let (true, ScanEvent::RecordsRead { records, .. }) = (progress, &e) {
                eprint!("\rrecords read: {records}");
                let _ = std::io::stderr().flush();
            }
            if matches!(e, ScanEvent::Finished { .. }) {
                if progress {
                    eprintln!();
                }
                break;
            }
        }
    });
    let options = ScanOptions {
        trigger: ScanTrigger::Manual,
        ..Default::default()
    };
    let result = built
        .monitor
        .scan_with_cancel(options, interrupts.token())
        .await;
    printer.abort();
    let report = match (result, interrupts.received()) {
        (Err(selfmon::Error::Cancelled), Some(signal)) => {
            return Err(Interrupts::failure(
                signal,
                "scan recorded as failed; the cursor did not move, the next scan reads the same records",
            ))
        }
        (result, _) => result.map_err(|e| {
            let redactor = selfmon::redact::Redactor::with_config(&config.monitoring.redaction)
                .unwrap_or_else(|_| selfmon::redact::Redactor::shared().clone());
            from_scan_error(&e, &redactor)
        })?,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::ScanFailed(format!("cannot serialise the report: {e}")))?;
        outln!("{text}");
    } else {
        out!("{}", super::terminal::safe(&summary(&report)));
    }
    Ok(())
}

/// The human summary of a scan.
pub fn summary(report: &ScanReport) -> String {
    let r = &report.record;
    let mut s = String::new();
    let dur = r
        .duration_ms()
        .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
        .unwrap_or_else(|| "-".into());
    s.push_str(&format!(
        "scan {} {} in {dur}{}\n",
        r.scan_id,
        r.status.as_str(),
        if r.dry_run {
            " (dry run: nothing filed)"
        } else {
            ""
        }
    ));
    s.push_str(&format!(
        "  records read {} (cursor {} -> {}){}{}\n",
        r.records_read,
        r.log_id_start,
        r.log_id_end,
        if r.gap_records > 0 {
            format!(", {} deleted before they were read", r.gap_records)
        } else {
            String::new()
        },
        if r.cursor_reset {
            ", log was recreated: restarted from 0"
        } else {
            ""
        }
    ));
    // `signatures` counts what the ignore rules kept (known + novel); the line gives all the scan
    // saw, so its parts add up (review4 F11).
    s.push_str(&format!(
        "  signatures {} ({} known, {} novel, {} ignored); analysis {}\n",
        r.signatures + r.ignored_signatures,
        r.known_signatures,
        r.novel_signatures,
        r.ignored_signatures,
        if r.analysis_ran {
            "ran"
        } else {
            "skipped (nothing novel)"
        }
    ));
    s.push_str(&format!(
        "  findings {} ({} rejected); filed {}; duplicates {} (code {}, fingerprint {}, similarity {}); comments {}; regressions {}; deferred {}\n",
        r.findings,
        r.rejected_findings,
        r.issues_created,
        r.duplicates.total(),
        r.duplicates.by_error_code,
        r.duplicates.by_fingerprint,
        r.duplicates.by_similarity,
        r.comments_added,
        r.regressions,
        r.deferred
    ));
    if let Some(line) = backlog_line(report) {
        s.push_str(&line);
    }
    if let Some(cost) = r.cost_usd {
        s.push_str(&format!(
            "  cost ${cost:.4} ({} input / {} output tokens)\n",
            r.input_tokens.map_or("-".into(), |t| t.to_string()),
            r.output_tokens.map_or("-".into(), |t| t.to_string())
        ));
    }
    for w in &report.warnings {
        s.push_str(&format!("  warning ({}): {}\n", w.kind, w.message));
    }
    if let Some(previous) = &report.took_over_lease {
        s.push_str(&format!(
            "  took over the lease of {} ({}, held since {}): its process is gone\n",
            previous.owner,
            previous.holder_description(),
            previous.acquired_at.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    for i in &report.reconciled {
        s.push_str(&format!(
            "  completed an interrupted filing: #{} {}\n",
            i.number, i.url
        ));
    }
    // A dry run changed nothing: its outcomes are what a real scan would do.
    let would = |done: &str, would: &str| if r.dry_run { would } else { done }.to_string();
    for o in &report.outcomes {
        let line = match o {
            FindingOutcome::Filed { title, issue } => {
                format!("filed #{} {title} ({})", issue.number, issue.url)
            }
            FindingOutcome::WouldFile { title, .. } => format!("would file: {title}"),
            FindingOutcome::Duplicate {
                title,
                issue,
                reason,
                ..
            } => format!("duplicate of #{issue} ({reason}): {title}"),
            FindingOutcome::Commented { title, issue, .. } => {
                format!(
                    "{} #{issue}: {title}",
                    would("commented on", "would comment on")
                )
            }
            FindingOutcome::Regression {
                title,
                issue,
                reopened,
                ..
            } => format!(
                "regression of #{issue}{}: {title}",
                if *reopened {
                    would(" (reopened)", " (would reopen)")
                } else {
                    String::new()
                }
            ),
            FindingOutcome::Deferred { title, reason, .. } => {
                format!("deferred ({reason}): {title}")
            }
            FindingOutcome::Ignored { title, rule } => {
                format!("ignored ({rule}; deferred earlier, closed in the backlog): {title}")
            }
        };
        s.push_str(&format!("  - {line}\n"));
    }
    for r in &report.rejected {
        s.push_str(&format!(
            "  - rejected {}: {}\n",
            selfmon::text::quoted(&r.title),
            r.reasons
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    s
}

/// The line saying which of a report's outcomes were backlog entries (findings earlier scans
/// deferred), so that this scan's findings add up: `findings` = filed + duplicates + comments +
/// regressions + deferred + rejected, less what this line counts. `None` when there were none.
fn backlog_line(report: &ScanReport) -> Option<String> {
    use selfmon::FindingOutcome as O;
    let (mut filed, mut duplicates, mut comments, mut regressions, mut waiting, mut ignored) =
        (0, 0, 0, 0, 0, 0);
    for o in report
        .from_backlog
        .iter()
        .filter_map(|&i| report.outcomes.get(i))
    {
        match o {
            O::Filed { .. } | O::WouldFile { .. } => filed += 1,
            O::Duplicate { .. } => duplicates += 1,
            O::Commented { .. } => comments += 1,
            O::Regression { .. } => regressions += 1,
            O::Deferred { .. } => waiting += 1,
            O::Ignored { .. } => ignored += 1,
        }
    }
    if filed + duplicates + comments + regressions + waiting + ignored == 0 {
        return None;
    }
    Some(format!(
        "  of these, from the backlog (deferred by earlier scans): filed {filed}; duplicates {duplicates}; comments {comments}; regressions {regressions}; still waiting {waiting}{}\n",
        if ignored > 0 {
            format!("; ignored by a rule added since {ignored}")
        } else {
            String::new()
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_shows_what_the_log_source_warned_about() {
        let mut report = ScanReport::new(selfmon::ScanRecord::started(
            selfmon::ScanId("s1".into()),
            ScanTrigger::Manual,
            0,
            chrono::Utc::now(),
        ));
        report.warnings.push(selfmon::ScanWarning {
            kind: "commit_horizon_held".into(),
            message: selfmon::redact::Redactor::shared()
                .redacted("log records above id 2 are not read: pid 4242 ..."),
        });
        let text = summary(&report);
        assert!(
            text.contains(
                "warning (commit_horizon_held): log records above id 2 are not read: pid 4242"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_signature_counts_add_up_with_the_ignored_ones() {
        let mut report = ScanReport::new(selfmon::ScanRecord::started(
            selfmon::ScanId("s1".into()),
            ScanTrigger::Manual,
            0,
            chrono::Utc::now(),
        ));
        let r = &mut report.record;
        (r.signatures, r.known_signatures, r.novel_signatures) = (3, 1, 2);
        r.ignored_signatures = 4;
        let text = summary(&report);
        assert!(
            text.contains("  signatures 7 (1 known, 2 novel, 4 ignored);"),
            "{text}"
        );
    }

    #[test]
    fn the_summary_says_which_outcomes_came_from_the_backlog() {
        // Review M4: "findings 1; filed 1; duplicates 1" did not add up: the filing was a
        // finding an earlier scan deferred.
        let mut report = ScanReport::new(selfmon::ScanRecord::started(
            selfmon::ScanId("s1".into()),
            ScanTrigger::Manual,
            0,
            chrono::Utc::now(),
        ));
        let r = selfmon::redact::Redactor::shared();
        report.outcomes.push(FindingOutcome::Filed {
            title: r.redacted("queue worker crashed"),
            issue: selfmon::IssueRef {
                number: 2,
                url: String::new(),
                state: selfmon::IssueState::Open,
            },
        });
        report.outcomes.push(FindingOutcome::Duplicate {
            title: r.redacted("queue worker crashed"),
            issue: 2,
            reason: r.redacted("same fingerprint"),
            tier: None,
            score: None,
        });
        assert!(!summary(&report).contains("from the backlog"));
        report.from_backlog = vec![0];
        let text = summary(&report);
        assert!(
            text.contains("of these, from the backlog (deferred by earlier scans): filed 1; duplicates 0; comments 0; regressions 0; still waiting 0\n"),
            "{text}"
        );
        // Review4 F15: a deferred finding an ignore rule added since matches.
        report.outcomes.push(FindingOutcome::Ignored {
            title: r.redacted("[GIT-SYNC-001] mirror sync failed"),
            rule: r.redacted("ignore.codes: GIT-SYNC-001"),
        });
        report.from_backlog.push(2);
        let text = summary(&report);
        assert!(
            text.contains("still waiting 0; ignored by a rule added since 1\n"),
            "{text}"
        );
        assert!(
            text.contains("  - ignored (ignore.codes: GIT-SYNC-001; deferred earlier, closed in the backlog): [GIT-SYNC-001] mirror sync failed\n"),
            "{text}"
        );
    }
}
