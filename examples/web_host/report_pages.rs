//! The scan page (one stored [`ScanReport`]: every signature's fate, every finding's outcome
//! with its reason, rejections, deferrals, cursor resets) and the issue page (who filed an issue
//! and its dedup history).
//!
//! Everything here comes from the state store, and titles, templates and reasons come from log
//! records: every value goes through [`esc`].

use std::fmt::Write as _;

use selfmon::{
    FiledIssue, FindingOutcome, IssueEvent, Page, ScanId, ScanRecord, ScanReport, SignatureFate,
};

use crate::pages::{esc, head, head_with, when};

/// The link to a scan's page.
pub fn scan_href(id: &ScanId) -> String {
    format!("/self-monitoring/scans/{}", esc(id.as_str()))
}

/// A scan id shortened for tables (the first 8 characters; the link carries the whole id).
pub fn short_id(id: &ScanId) -> &str {
    let s = id.as_str();
    s.get(..8).unwrap_or(s)
}

/// The link to the host's page of an issue.
pub fn issue_href(number: u64) -> String {
    format!("/self-monitoring/issues/{number}")
}

fn issue_a(number: u64) -> String {
    format!(
        r#"<a href="{}" class="issue-link">#{number}</a>"#,
        issue_href(number)
    )
}

fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "—".to_string())
}

/// "live" or "dry run".
pub fn mode_word(r: &ScanRecord) -> &'static str {
    if r.dry_run {
        "dry run"
    } else {
        "live"
    }
}

/// One sentence saying where every signature and finding went, so the counters add up.
pub fn accounting(r: &ScanRecord) -> String {
    let d = &r.duplicates;
    format!(
        "{sig} signatures: {known} known, {ign} ignored, {novel} sent to analysis. \
         {findings} findings: {filed} filed, {dup} duplicates, {com} comments added \
         ({reg} regressions), {def} deferred; {rej} rejected by validation.",
        sig = r.signatures,
        known = r.known_signatures,
        ign = r.ignored_signatures,
        novel = r.novel_signatures,
        findings = r.findings,
        filed = r.issues_created,
        dup = d.total(),
        com = r.comments_added,
        reg = r.regressions,
        def = r.deferred,
        rej = r.rejected_findings,
    )
}

/// The page of one scan.
pub fn scan_page(report: &ScanReport) -> String {
    let r = &report.record;
    let mut h = String::with_capacity(16 * 1024);
    let body_attrs = if r.status == selfmon::ScanStatus::Running {
        format!(r#" data-running-scan="{}""#, esc(r.scan_id.as_str()))
    } else {
        String::new()
    };
    head_with(
        &mut h,
        &format!("Scan {}", short_id(&r.scan_id)),
        None,
        &body_attrs,
    );
    let cls = r.status.as_str().to_lowercase();
    let _ = writeln!(
        h,
        r#"<p class="crumbs"><a href="/self-monitoring">Self-Monitoring</a> › Scan</p>
<h1>Scan <code>{short}</code> <span id="scan-status" class="badge status-{cls}">{status}</span></h1>
<section aria-labelledby="summary-h"><h2 id="summary-h">Summary</h2>
<p id="scan-accounting">{acc}</p>
<dl class="summary">
<dt>Scan id</dt><dd id="scan-id"><code>{id}</code></dd>
<dt>Trigger</dt><dd>{trigger}</dd>
<dt>Mode</dt><dd id="scan-mode">{mode}</dd>
<dt>Started</dt><dd>{started}</dd>
<dt>Finished</dt><dd>{finished}</dd>
<dt>Duration</dt><dd>{duration}</dd>
<dt>Log records</dt><dd id="scan-cursor">ids {from} → {to} ({read} read{gaps})</dd>"#,
        short = esc(short_id(&r.scan_id)),
        status = r.status.as_str(),
        acc = esc(&accounting(r)),
        id = esc(r.scan_id.as_str()),
        trigger = r.trigger.as_str(),
        mode = mode_word(r),
        started = when(&r.started_at),
        finished = or_dash(r.completed_at.as_ref().map(when)),
        duration = or_dash(
            r.duration_ms()
                .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
        ),
        from = r.log_id_start,
        to = r.log_id_end,
        read = r.records_read,
        gaps = if r.gap_records > 0 {
            format!(
                "; {} expected ids missing, deleted by retention before this scan",
                r.gap_records
            )
        } else {
            String::new()
        },
    );
    if r.cursor_reset {
        let _ = writeln!(
            h,
            r#"<dt>Cursor reset</dt><dd id="cursor-reset" class="warning-text">The log was recreated (its highest id was below the cursor{prev}), so reading restarted from the beginning.</dd>"#,
            prev = report
                .previous_cursor
                .map(|c| format!(" {c}"))
                .unwrap_or_default(),
        );
    }
    let _ = writeln!(
        h,
        r#"<dt>Analysis</dt><dd>{ran}</dd>
<dt>Model</dt><dd>{model}</dd>
<dt>Prompt version</dt><dd>{prompt}</dd>
<dt>Tokens</dt><dd>{tin} in, {tout} out</dd>
<dt>Cost</dt><dd>{cost}</dd>
<dt>Backlog after</dt><dd>{backlog} deferred findings waiting</dd>"#,
        ran = if r.analysis_ran {
            format!(
                "ran ({})",
                esc(report.runner.as_deref().unwrap_or("runner not recorded"))
            )
        } else {
            "did not run (nothing novel to analyse)".to_string()
        },
        model = esc(r.model.as_deref().unwrap_or("—")),
        prompt = or_dash(r.prompt_version.map(|v| v.to_string())),
        tin = or_dash(r.input_tokens.map(|v| v.to_string())),
        tout = or_dash(r.output_tokens.map(|v| v.to_string())),
        cost = or_dash(r.cost_usd.map(|c| format!("${c:.4}"))),
        backlog = r.backlog,
    );
    if let Some(e) = &r.error_message {
        let _ = writeln!(
            h,
            r#"<dt>Error</dt><dd id="scan-error" class="error-text">{}</dd>"#,
            esc(e)
        );
    }
    if let Some(lease) = &report.took_over_lease {
        let _ = writeln!(
            h,
            r#"<dt>Took over</dt><dd>the lease of a scan whose process was gone ({} on {})</dd>"#,
            esc(&lease.owner),
            esc(&lease.host)
        );
    }
    h.push_str("</dl></section>\n");
    if r.status == selfmon::ScanStatus::Running {
        h.push_str(
            r#"<section><p class="notice" id="scan-running" aria-live="polite">This scan is still running; the page reloads when it ends.</p></section>
"#,
        );
    }
    if !report.details_recorded {
        h.push_str(
            r#"<section><p class="warning" id="no-details">This scan's explanations were not stored: its process stopped before it saved them, or it ran before reports were kept. Only the counters above are known.</p></section>
"#,
        );
    }
    findings_section(&mut h, report);
    rejected_section(&mut h, report);
    signatures_section(&mut h, report);
    skipped_section(&mut h, report);
    if !report.reconciled.is_empty() {
        h.push_str(r#"<section><h2>Filings completed for earlier scans</h2><ul id="reconciled">"#);
        for i in &report.reconciled {
            let _ = write!(
                h,
                "<li>{} (an interrupted scan had left it in the outbox)</li>",
                issue_a(i.number)
            );
        }
        h.push_str("</ul></section>\n");
    }
    if report.omitted.any() {
        let o = &report.omitted;
        let _ = writeln!(
            h,
            r#"<section><p class="muted" id="omitted">Left out to keep the report bounded: {} signature entries, {} runner skip entries, {} bytes of digest.</p></section>"#,
            o.signatures, o.skipped, o.digest_bytes
        );
    }
    if let Some(d) = &report.digest_sent {
        let _ = writeln!(
            h,
            r#"<section><h2>Digest sent to analysis</h2>
<details><summary>Show the digest exactly as sent (redacted), {} bytes</summary>
<pre id="digest-sent" class="scroll">{}</pre></details></section>"#,
            d.len(),
            esc(d)
        );
    }
    h.push_str("</main></body></html>\n");
    h
}

fn findings_section(h: &mut String, report: &ScanReport) {
    let _ = write!(
        h,
        r#"<section><h2>Findings</h2><div class="table-scroll"><table id="findings-table"><caption>What happened to each finding analysis returned ({})</caption>
<thead><tr><th scope="col">Finding</th><th scope="col">Outcome</th><th scope="col">Issue</th><th scope="col">Why</th></tr></thead><tbody>"#,
        report.outcomes.len()
    );
    for o in &report.outcomes {
        let (kind, issue, why) = match o {
            FindingOutcome::Filed { issue, .. } => (
                "filed",
                issue_a(issue.number),
                "new: no known issue matched".to_string(),
            ),
            FindingOutcome::WouldFile { .. } => (
                "would file",
                "—".to_string(),
                "dry run: nothing was filed".to_string(),
            ),
            FindingOutcome::Duplicate {
                issue,
                reason,
                tier,
                score,
                ..
            } => (
                "duplicate",
                issue_a(*issue),
                format!(
                    "{}{}{}",
                    tier.map(|t| format!("tier {}; ", t.as_str()))
                        .unwrap_or_default(),
                    score.map(|s| format!("score {s:.2}; ")).unwrap_or_default(),
                    reason
                ),
            ),
            FindingOutcome::Commented {
                issue,
                reason,
                score,
                ..
            } => (
                "commented (related)",
                issue_a(*issue),
                format!(
                    "{}{}",
                    score.map(|s| format!("score {s:.2}; ")).unwrap_or_default(),
                    reason
                ),
            ),
            FindingOutcome::Regression {
                issue,
                reopened,
                tier,
                reason,
                ..
            } => (
                if *reopened {
                    "regression (reopened)"
                } else {
                    "regression"
                },
                issue_a(*issue),
                format!(
                    "the issue was closed and recurred{}{}",
                    tier.map(|t| format!("; tier {}", t.as_str()))
                        .unwrap_or_default(),
                    reason
                        .as_ref()
                        .map(|r| format!("; {r}"))
                        .unwrap_or_default()
                ),
            ),
            FindingOutcome::Deferred {
                reason,
                backlog_position,
                ..
            } => (
                "deferred",
                "—".to_string(),
                format!(
                    "{}{}",
                    if reason.is_empty() {
                        "the per-scan issue budget was spent"
                    } else {
                        reason
                    },
                    backlog_position
                        .map(|p| format!("; backlog position {p}"))
                        .unwrap_or_default()
                ),
            ),
            FindingOutcome::Ignored { rule, .. } => (
                "ignored",
                "—".to_string(),
                format!("deferred earlier; an ignore rule added since matches it ({rule}): closed in the backlog, never filed"),
            ),
        };
        let _ = write!(
            h,
            r#"<tr class="finding outcome-{cls}"><td class="finding-title">{title}</td><td class="finding-outcome">{kind}</td><td>{issue}</td><td class="finding-reason">{why}</td></tr>"#,
            cls = kind.split(' ').next().unwrap_or(kind),
            title = esc(o.title()),
            why = esc(&why),
        );
    }
    if report.outcomes.is_empty() {
        h.push_str(r#"<tr><td colspan="4" class="empty">No findings.</td></tr>"#);
    }
    h.push_str("</tbody></table></div></section>\n");
}

fn rejected_section(h: &mut String, report: &ScanReport) {
    if report.rejected.is_empty() {
        return;
    }
    h.push_str(
        r#"<section><h2>Rejected findings</h2><div class="table-scroll"><table id="rejected-table"><caption>Findings validation refused, with its reasons</caption>
<thead><tr><th scope="col">Finding</th><th scope="col">Why it was rejected</th></tr></thead><tbody>"#,
    );
    for r in &report.rejected {
        let _ = write!(
            h,
            r#"<tr class="rejected"><td class="finding-title">{}</td><td class="finding-reason">{}</td></tr>"#,
            esc(&r.title),
            esc(&r
                .reasons
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join("; "))
        );
    }
    h.push_str("</tbody></table></div></section>\n");
}

fn signatures_section(h: &mut String, report: &ScanReport) {
    let _ = write!(
        h,
        r#"<section><h2>Signatures</h2><div class="table-scroll"><table id="signatures-table"><caption>Every signature of the digest and its fate ({})</caption>
<thead><tr><th scope="col">Template</th><th scope="col">Level</th><th scope="col">Records</th><th scope="col">Fate</th></tr></thead><tbody>"#,
        report.signatures.len()
    );
    for s in &report.signatures {
        let (cls, fate) = match &s.fate {
            SignatureFate::Known {
                issue,
                tier,
                closed,
            } => (
                "known",
                format!(
                    "known: {} (matched by {}){}",
                    issue_a(*issue),
                    tier.as_str(),
                    if *closed {
                        ", closed: handled as a regression"
                    } else {
                        ""
                    }
                ),
            ),
            SignatureFate::Ignored { rule } => (
                "ignored",
                format!("ignored by rule <code>{}</code>", esc(rule)),
            ),
            SignatureFate::Analysed => ("analysed", "sent to analysis".to_string()),
        };
        let _ = write!(
            h,
            r#"<tr class="signature fate-{cls}"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{fate}</td></tr>"#,
            esc(&s.template),
            s.level.as_str(),
            s.count,
        );
    }
    if report.signatures.is_empty() {
        h.push_str(r#"<tr><td colspan="4" class="empty">No signatures recorded.</td></tr>"#);
    }
    h.push_str("</tbody></table></div></section>\n");
}

fn skipped_section(h: &mut String, report: &ScanReport) {
    if report.skipped.is_empty() {
        return;
    }
    h.push_str(
        r#"<section><h2>Signatures the runner filed nothing for</h2><div class="table-scroll"><table id="skipped-table"><caption>Signatures analysis looked at without making a finding, with its reasons</caption>
<thead><tr><th scope="col">Signature</th><th scope="col">Why no finding</th></tr></thead><tbody>"#,
    );
    for s in &report.skipped {
        let template = report
            .signatures
            .iter()
            .find(|sig| sig.id == s.signature_id)
            .map(|sig| sig.template.as_str())
            .unwrap_or(s.signature_id.as_str());
        let _ = write!(
            h,
            r#"<tr class="skipped"><td><code>{}</code></td><td class="finding-reason">{}</td></tr>"#,
            esc(template),
            esc(&s.reason)
        );
    }
    h.push_str("</tbody></table></div></section>\n");
}

/// The page of one issue: where it lives, which scan filed it, and what later scans did about it.
pub fn issue_page(
    number: u64,
    filed: Option<&FiledIssue>,
    tracker_link: Option<&str>,
    history: &Page<IssueEvent>,
    page: u64,
) -> String {
    let mut h = String::with_capacity(8 * 1024);
    head(&mut h, &format!("Issue #{number}"), None);
    let _ = write!(
        h,
        r#"<p class="crumbs"><a href="/self-monitoring">Self-Monitoring</a> › Issue</p>
<h1>Issue #{number}</h1><section><dl class="summary">"#
    );
    if let Some(f) = filed {
        let codes: Vec<String> = f.error_codes.iter().map(|c| c.to_string()).collect();
        let _ = writeln!(
            h,
            r#"<dt>Title</dt><dd id="issue-title">{title}</dd>
<dt>State</dt><dd>{state}</dd>
<dt>Classification</dt><dd>{class}</dd>
<dt>Error codes</dt><dd>{codes}</dd>
<dt>Filed by</dt><dd id="filed-by">scan <a href="{scan}">{short}</a> on {at}</dd>
<dt>Occurrences</dt><dd>{occ} (last seen {last})</dd>"#,
            title = esc(&f.title),
            state = f.issue.state.as_str(),
            class = esc(&f.classification.to_string()),
            codes = esc(&codes.join(", ")),
            scan = scan_href(&f.scan_id),
            short = esc(short_id(&f.scan_id)),
            at = when(&f.created_at),
            occ = f.occurrences,
            last = when(&f.last_seen_at),
        );
    } else {
        h.push_str("<dt>Filed by</dt><dd>not filed by selfmon on this host</dd>");
    }
    if let Some(link) = tracker_link {
        let _ = write!(
            h,
            r#"<dt>In the tracker</dt><dd><a id="tracker-link" href="{0}" rel="noopener noreferrer">{0}</a></dd>"#,
            esc(link)
        );
    }
    h.push_str("</dl></section>\n");
    let _ = write!(
        h,
        r#"<section><h2>Dedup history</h2><div class="table-scroll"><table id="issue-history"><caption>What scans did about this issue, newest first ({} events)</caption>
<thead><tr><th scope="col">When</th><th scope="col">Scan</th><th scope="col">What</th><th scope="col">Records</th><th scope="col">Detail</th></tr></thead><tbody>"#,
        history.total
    );
    for e in &history.items {
        let what = match e.kind.as_str() {
            "filed" => "filed",
            "known_signature" => "occurrence (signature matched before analysis)",
            "duplicate" => "duplicate finding",
            "commented" => "related finding commented",
            "regression" => "regression",
            other => other,
        };
        let _ = write!(
            h,
            r#"<tr class="event event-{kind}"><td>{at}</td><td><a href="{scan}">{short}</a></td><td>{what}</td><td>{records}</td><td>{detail}</td></tr>"#,
            kind = e.kind.as_str(),
            at = when(&e.at),
            scan = scan_href(&e.scan_id),
            short = esc(short_id(&e.scan_id)),
            records = if e.records > 0 {
                e.records.to_string()
            } else {
                "—".to_string()
            },
            detail = esc(&e.detail),
        );
    }
    if history.items.is_empty() {
        h.push_str(r#"<tr><td colspan="5" class="empty">No scan has recorded anything about this issue.</td></tr>"#);
    }
    h.push_str("</tbody></table></div>");
    let pages = history.total.div_ceil(ISSUE_HISTORY_PAGE).max(1);
    if pages > 1 {
        let _ = write!(
            h,
            r#"<p class="pager" id="history-pager">page {page} of {pages}"#
        );
        if page > 1 {
            let _ = write!(
                h,
                r#" · <a id="history-prev" href="{}?page={}">newer</a>"#,
                issue_href(number),
                page - 1
            );
        }
        if page < pages {
            let _ = write!(
                h,
                r#" · <a id="history-next" href="{}?page={}">older</a>"#,
                issue_href(number),
                page + 1
            );
        }
        h.push_str("</p>");
    }
    h.push_str("</section>\n</main></body></html>\n");
    h
}

/// Events per page of an issue's dedup history.
pub const ISSUE_HISTORY_PAGE: u64 = 100;
