//! Server-rendered HTML of the Self-Monitoring page, its fragments, and its small script.
//!
//! Every value that reaches HTML goes through [`esc`]: titles and error messages come from log
//! records, which any client of the monitored server can influence.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use selfmon::prompt::PromptStatus;
use selfmon::{ClaudeModel, FiledIssue, Page, ScanRecord, SchedulerState, SelfMonitoringConfig};

use crate::report_pages;

/// Cadence presets offered in the form, in minutes, with their labels.
pub const CADENCE_PRESETS: [(u32, &str); 5] = [
    (15, "every 15 minutes"),
    (30, "every 30 minutes"),
    (60, "hourly"),
    (360, "every 6 hours"),
    (1440, "daily"),
];

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A timestamp as shown in tables (UTC, to the second).
pub fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The scheduler state as a word.
pub fn state_word(s: &SchedulerState) -> &'static str {
    match s {
        SchedulerState::Idle => "idle",
        SchedulerState::Queued => "queued",
        SchedulerState::Running => "running",
    }
}

/// Which page of a table is shown.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    /// 1-based page number of the scan history.
    pub scans_page: u64,
    /// 1-based page number of the filed issues.
    pub issues_page: u64,
    /// Rows per page.
    pub page_size: u64,
}

/// A notice after a successful POST (redirect-after-post keeps only its kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Configuration saved.
    ConfigSaved,
    /// Prompt override saved.
    PromptSaved,
    /// Prompt reset to the shipped one.
    PromptReset,
    /// A scan was queued (Run Now without JavaScript).
    ScanQueued,
}

impl Notice {
    /// The query value naming it.
    pub fn key(self) -> &'static str {
        match self {
            Notice::ConfigSaved => "config",
            Notice::PromptSaved => "prompt",
            Notice::PromptReset => "prompt_reset",
            Notice::ScanQueued => "run_now",
        }
    }
    /// Parses [`key`](Self::key).
    pub fn from_key(key: &str) -> Option<Self> {
        Some(match key {
            "config" => Notice::ConfigSaved,
            "prompt" => Notice::PromptSaved,
            "prompt_reset" => Notice::PromptReset,
            "run_now" => Notice::ScanQueued,
            _ => return None,
        })
    }
    fn text(self) -> &'static str {
        match self {
            Notice::ConfigSaved => "Configuration saved; the next scan uses it.",
            Notice::PromptSaved => "Prompt override saved; the next scan uses it.",
            Notice::PromptReset => "Prompt reset to the shipped version.",
            Notice::ScanQueued => "Scan queued; this page updates when it starts and ends.",
        }
    }
}

/// A form that was not saved: the message, the field at fault, and the submitted values (so the
/// page shows what was typed, not what is stored).
#[derive(Debug, Clone, Default)]
pub struct FormProblem {
    /// `"config"` or `"prompt"`.
    pub form: &'static str,
    /// What went wrong.
    pub message: String,
    /// The `name` of the field at fault, when one is.
    pub field: Option<String>,
    /// The submitted fields.
    pub values: std::collections::HashMap<String, String>,
}

impl FormProblem {
    /// The submitted value of `name`, when this problem is about `form`.
    fn value(&self, form: &str, name: &str) -> Option<&str> {
        (self.form == form)
            .then(|| self.values.get(name).map(String::as_str))
            .flatten()
    }

    /// `aria-invalid`/`aria-describedby` for the field at fault, and its message element.
    fn marks(&self, name: &str) -> (String, String) {
        if self.field.as_deref() != Some(name) {
            return (String::new(), String::new());
        }
        (
            format!(r#" aria-invalid="true" aria-describedby="{name}-error""#),
            format!(
                r#"<span id="{name}-error" class="field-error">{}</span>"#,
                esc(&self.message)
            ),
        )
    }
}

fn marks(d: &PageData<'_>, name: &str) -> (String, String) {
    d.problem.map(|p| p.marks(name)).unwrap_or_default()
}

fn submitted<'a>(d: &'a PageData<'_>, form: &str, name: &str) -> Option<&'a str> {
    d.problem.and_then(|p| p.value(form, name))
}

/// Everything the page shows.
pub struct PageData<'a> {
    /// Current configuration.
    pub config: &'a SelfMonitoringConfig,
    /// The prompt in effect.
    pub prompt: &'a PromptStatus,
    /// The golden-repo job model.
    pub golden_model: &'a ClaudeModel,
    /// Idle, queued or running.
    pub state: &'a SchedulerState,
    /// The newest scan.
    pub last_scan: Option<&'a ScanRecord>,
    /// When the next scheduled scan is due.
    pub next_scan_at: Option<DateTime<Utc>>,
    /// A page of scans.
    pub scans: &'a Page<ScanRecord>,
    /// A page of filed issues.
    pub issues: &'a Page<FiledIssue>,
    /// Which pages.
    pub paging: Paging,
    /// The CSRF token of this session.
    pub csrf_token: &'a str,
    /// A success notice.
    pub notice: Option<Notice>,
    /// Why the last form was not saved, with what was submitted (shown again, field marked).
    pub problem: Option<&'a FormProblem>,
    /// Where logs come from.
    pub log_location: &'a str,
    /// Where issues go.
    pub tracker_description: &'a str,
    /// What analyses the logs.
    pub runner_description: &'a str,
    /// Whether to show the test-only controls.
    pub test_hooks: bool,
}

/// The head every page shares (stylesheet, script, icon), up to and including `<main>`.
pub fn head(h: &mut String, title: &str, csrf_token: Option<&str>) {
    head_with(h, title, csrf_token, "");
}

/// [`head`], with extra attributes on `<body>` (already escaped).
pub fn head_with(h: &mut String, title: &str, csrf_token: Option<&str>, body_attrs: &str) {
    let meta = csrf_token
        .map(|t| format!(r#"<meta name="csrf-token" content="{}">"#, esc(t)))
        .unwrap_or_default();
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{meta}
<title>{title}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head><body{body_attrs}>
<nav><span class="brand">CIDX</span> <a href="/self-monitoring" class="active">Self-Monitoring</a></nav>
<main>
"#,
        title = esc(title),
    );
}

/// An error page: what went wrong and a way back.
pub fn error_page(status: u16, title: &str, message: &str) -> String {
    let mut h = String::with_capacity(2048);
    head(&mut h, title, None);
    let _ = write!(
        h,
        r#"<h1>{title}</h1>
<section class="error-page"><p class="error" id="error-message">{message}</p>
<p class="muted">HTTP {status}</p>
<p><a href="/self-monitoring">Back to Self-Monitoring</a></p></section>
</main></body></html>
"#,
        title = esc(title),
        message = esc(message),
    );
    h
}

/// The whole Self-Monitoring page.
pub fn page(d: &PageData<'_>) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let token = esc(d.csrf_token);
    head(&mut h, "Self-Monitoring", Some(d.csrf_token));
    h.push_str("<h1>Self-Monitoring</h1>\n");
    if let Some(n) = d.notice {
        let _ = write!(h, r#"<p class="notice" id="notice">{}</p>"#, esc(n.text()));
    }
    if let Some(p) = d.problem {
        let _ = write!(
            h,
            r#"<p class="error" id="form-error" role="alert">{}</p>"#,
            esc(&p.message)
        );
    }
    status_section(&mut h, d, &token);
    config_section(&mut h, d, &token);
    prompt_section(&mut h, d, &token);
    let _ = write!(
        h,
        r#"<section><h2>Scan history</h2><div id="scans-fragment" data-page="{}">{}</div></section>
<section><h2>Filed issues</h2><div id="issues-fragment" data-page="{}">{}</div></section>
"#,
        d.paging.scans_page,
        scans_table(d.scans, d.paging),
        d.paging.issues_page,
        issues_table(d.issues, d.paging),
    );
    if d.test_hooks {
        let _ = write!(
            h,
            r#"<section class="hooks"><h2>Test hooks</h2>
<button type="button" id="break-logs" data-url="/test-hooks/break-logs">Break the log file</button>
<span id="break-result"></span></section>
"#
        );
    }
    h.push_str("</main></body></html>\n");
    h
}

fn status_section(h: &mut String, d: &PageData<'_>, token: &str) {
    let last = match d.last_scan {
        None => "never".to_string(),
        Some(s) => {
            let mut t = format!(
                r#"<span class="status-{}">{}</span> ({}, started {})"#,
                s.status.as_str().to_lowercase(),
                s.status.as_str(),
                s.trigger.as_str(),
                when(&s.started_at)
            );
            if let Some(e) = &s.error_message {
                let _ = write!(t, r#" — <span class="error-text">{}</span>"#, esc(e));
            }
            t
        }
    };
    let next = match d.next_scan_at {
        None => "not scheduled (monitoring is disabled)".to_string(),
        Some(t) => when(&t),
    };
    let _ = write!(
        h,
        r#"<section class="status"><h2>Status <span id="live-state" class="live">connecting…</span></h2>
<dl aria-live="polite">
<dt>Monitoring</dt><dd id="enabled-state">{enabled}</dd>
<dt>Scheduler</dt><dd><span id="scheduler-state" class="badge">{state}</span></dd>
<dt>Last scan</dt><dd id="last-scan">{last}</dd>
<dt>Next scan</dt><dd id="next-scan">{next}</dd>
<dt>Model</dt><dd id="current-model">{model}</dd>
<dt>Logs</dt><dd>{logs}</dd>
<dt>Analysis</dt><dd>{runner}</dd>
<dt>Issues go to</dt><dd>{tracker}</dd>
</dl>
<form id="run-now-form" method="post" action="/self-monitoring/run-now">
<input type="hidden" name="csrf_token" value="{token}">
<button type="submit" id="run-now"{run_disabled}>Run Now</button>
</form>
<p id="run-now-result" aria-live="polite"></p>
<ul id="run-now-log"></ul>
<div class="follow"><span>Followed scan:</span> <ol id="job-timeline" aria-live="polite" aria-label="Followed scan's states"></ol></div>
<p id="job-error" class="error-text"></p>
<h3>Golden-repo jobs (same queue)</h3>
<form id="golden-run-form" method="post" action="/golden-repo/run">
<input type="hidden" name="csrf_token" value="{token}">
<button type="submit" id="golden-run">Refresh golden repo</button> <span id="golden-status"></span>
</form>
</section>
"#,
        enabled = if d.config.enabled {
            "enabled"
        } else {
            "disabled"
        },
        state = state_word(d.state),
        run_disabled = if matches!(d.state, SchedulerState::Idle) {
            ""
        } else {
            r#" disabled title="A scan is already queued or running.""#
        },
        model = esc(d.config.model.as_cli_arg()),
        logs = esc(d.log_location),
        tracker = esc(d.tracker_description),
        runner = esc(d.runner_description),
    );
}

fn model_select(h: &mut String, d: &PageData<'_>, name: &str, label: &str, model: &ClaudeModel) {
    let stored_choice = match model {
        ClaudeModel::Opus => "opus",
        ClaudeModel::Sonnet => "sonnet",
        ClaudeModel::Haiku => "haiku",
        ClaudeModel::Custom(_) => "custom",
    };
    let choice = submitted(d, "config", name).unwrap_or(stored_choice);
    let custom_name = format!("{name}_custom");
    let custom = match (submitted(d, "config", &custom_name), model) {
        (Some(v), _) => v,
        (None, ClaudeModel::Custom(id)) => id.as_str(),
        _ => "",
    };
    let (select_marks, select_msg) = marks(d, name);
    let (custom_marks, custom_msg) = marks(d, &custom_name);
    let _ = write!(
        h,
        r#"<label for="{name}">{label}</label>
<span><select name="{name}" id="{name}"{select_marks}>"#
    );
    for (value, text) in [
        ("opus", "Opus (most capable)"),
        ("sonnet", "Sonnet (balanced)"),
        ("haiku", "Haiku (fastest)"),
        ("custom", "Custom model id…"),
    ] {
        let selected = if value == choice { " selected" } else { "" };
        let _ = write!(h, r#"<option value="{value}"{selected}>{text}</option>"#);
    }
    let _ = writeln!(
        h,
        r#"</select>{select_msg}
<span id="{custom_name}-wrap" class="custom-wrap"><input type="text" name="{custom_name}" id="{custom_name}" placeholder="claude-sonnet-4-5-20250929" value="{}" aria-label="{label}: custom model id"{custom_marks}>{custom_msg}</span></span>"#,
        esc(custom)
    );
}

fn config_section(h: &mut String, d: &PageData<'_>, token: &str) {
    let c = d.config;
    let is_preset = CADENCE_PRESETS.iter().any(|(m, _)| *m == c.cadence_minutes);
    let stored_preset = if is_preset {
        c.cadence_minutes.to_string()
    } else {
        "custom".to_string()
    };
    let preset = submitted(d, "config", "cadence_preset")
        .map(str::to_string)
        .unwrap_or(stored_preset);
    let custom = match submitted(d, "config", "cadence_custom") {
        Some(v) => v.to_string(),
        None if is_preset => String::new(),
        None => c.cadence_minutes.to_string(),
    };
    let enabled = match d.problem.filter(|p| p.form == "config") {
        Some(p) => p.values.get("enabled").is_some_and(|v| v == "on"),
        None => c.enabled,
    };
    let (preset_marks, preset_msg) = marks(d, "cadence_preset");
    let (custom_marks, custom_msg) = marks(d, "cadence_custom");
    let _ = write!(
        h,
        r#"<section><h2>Configuration</h2>
<form id="config-form" method="post" action="/self-monitoring/config" class="grid">
<input type="hidden" name="csrf_token" value="{token}">
<label for="enabled">Enabled</label>
<span><input type="checkbox" name="enabled" id="enabled" value="on"{checked}> run scans on the cadence below</span>
<label for="cadence_preset">Cadence</label>
<span><select name="cadence_preset" id="cadence_preset"{preset_marks}>"#,
        checked = if enabled { " checked" } else { "" },
    );
    for (minutes, label) in CADENCE_PRESETS {
        let sel = if minutes.to_string() == preset {
            " selected"
        } else {
            ""
        };
        let _ = write!(h, r#"<option value="{minutes}"{sel}>{label}</option>"#);
    }
    let _ = writeln!(
        h,
        r#"<option value="custom"{sel}>custom…</option></select>{preset_msg}
<span id="cadence_custom-wrap" class="custom-wrap"><input type="number" name="cadence_custom" id="cadence_custom" min="1" max="10080" value="{custom}" aria-label="custom cadence in minutes"{custom_marks}> minutes (1–10080){custom_msg}</span></span>"#,
        sel = if preset == "custom" { " selected" } else { "" },
        custom = esc(&custom),
    );
    model_select(h, d, "model", "Self-monitoring model", &c.model);
    model_select(
        h,
        d,
        "golden_model",
        "Golden-repo job model",
        d.golden_model,
    );
    h.push_str(
        r#"<span></span><button type="submit" id="save-config">Save configuration</button>
</form></section>
"#,
    );
}

fn prompt_section(h: &mut String, d: &PageData<'_>, token: &str) {
    let p = d.prompt;
    let shipped = selfmon::prompt::SHIPPED_PROMPT;
    let _ = write!(
        h,
        r#"<section><h2>Analysis prompt</h2>
<p id="prompt-state">{state}</p>
"#,
        state = if p.using_shipped {
            format!("Using the shipped prompt (version {}).", p.shipped_version)
        } else {
            format!(
                "Using your override{}.",
                p.version
                    .map(|v| format!(" (version line {v})"))
                    .unwrap_or_default()
            )
        }
    );
    if p.newer_shipped_available {
        let _ = writeln!(
            h,
            r#"<p class="warning" id="prompt-newer">A newer shipped prompt (version {}) is available than the one your override is based on. Review it below, then reset or update your override.</p>"#,
            p.shipped_version
        );
    }
    let stored_text = if p.using_shipped {
        shipped
    } else {
        p.template.as_str()
    };
    let override_text = submitted(d, "prompt", "prompt_template").unwrap_or(stored_text);
    let (prompt_marks, prompt_msg) = marks(d, "prompt_template");
    if !p.using_shipped {
        let diff = similar::TextDiff::from_lines(shipped, stored_text)
            .unified_diff()
            .context_radius(2)
            .header("shipped", "your override")
            .to_string();
        let _ = writeln!(
            h,
            r#"<details id="prompt-diff-details"><summary>What your override changes in the shipped prompt</summary><pre id="prompt-diff" class="scroll">{}</pre></details>"#,
            esc(&diff)
        );
    }
    let base = if p.using_shipped {
        p.shipped_version.to_string()
    } else {
        d.config
            .prompt_base_version
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    let _ = write!(
        h,
        r#"<details><summary>Shipped prompt, version {version} (read-only)</summary>
<textarea id="shipped-prompt" readonly rows="12" aria-label="Shipped prompt (read-only)">{shipped}</textarea></details>
<form id="prompt-form" method="post" action="/self-monitoring/prompt">
<input type="hidden" name="csrf_token" value="{token}">
<input type="hidden" name="base_version" value="{base}">
<label for="prompt_template">Your override (placeholders: {placeholders}; at most {max} bytes)</label>
<textarea name="prompt_template" id="prompt_template" rows="12" maxlength="{max}"{prompt_marks}>{override_text}</textarea>{prompt_msg}
<button type="submit" name="action" value="save" id="save-prompt">Save override</button>
<button type="submit" name="action" value="reset" id="reset-prompt" formnovalidate>Reset to shipped</button>
</form></section>
"#,
        version = p.shipped_version,
        shipped = esc(shipped),
        placeholders = esc(&selfmon::prompt::PLACEHOLDERS
            .map(|p| format!("{{{p}}}"))
            .join(", ")),
        override_text = esc(override_text),
        max = MAX_PROMPT_BYTES,
    );
}

/// The largest prompt override the page accepts (the shipped prompt is a few KiB).
pub const MAX_PROMPT_BYTES: usize = 32 * 1024;

fn pager(h: &mut String, which: &str, total: u64, paging: Paging) {
    let (page, other_key, other) = if which == "scans" {
        (paging.scans_page, "issues_page", paging.issues_page)
    } else {
        (paging.issues_page, "scans_page", paging.scans_page)
    };
    let pages = total.div_ceil(paging.page_size).max(1);
    let first = if total == 0 {
        0
    } else {
        (page - 1) * paging.page_size + 1
    };
    let last = (page * paging.page_size).min(total);
    let _ = write!(
        h,
        r#"<p class="pager" id="{which}-pager"><span id="{which}-total">{first}–{last} of {total} {which}</span> · page {page} of {pages}"#
    );
    if page > 1 {
        let _ = write!(
            h,
            r#" · <a id="{which}-prev" href="/self-monitoring?{which}_page={}&amp;{other_key}={other}">previous</a>"#,
            page - 1
        );
    }
    if page < pages {
        let _ = write!(
            h,
            r#" · <a id="{which}-next" href="/self-monitoring?{which}_page={}&amp;{other_key}={other}">next</a>"#,
            page + 1
        );
    }
    h.push_str("</p>");
}

/// The scan-history table with its pager.
pub fn scans_table(scans: &Page<ScanRecord>, paging: Paging) -> String {
    let mut h = String::new();
    pager(&mut h, "scans", scans.total, paging);
    h.push_str(
        r#"<div class="table-scroll"><table id="scans-table"><caption>Scan history, newest first; open a scan for what happened to each signature and finding</caption><thead><tr><th>Scan</th><th>Started</th><th>Trigger</th><th>Mode</th><th>Status</th><th>Duration</th><th>Records read</th><th>Known signatures</th><th>Novel signatures</th><th>Issues filed</th><th>Duplicates skipped (code/fingerprint/similar)</th><th>Comments</th><th>Deferred</th><th>Rejected</th><th>Cost</th><th>Error</th></tr></thead><tbody>"#,
    );
    for s in &scans.items {
        let duration = s
            .duration_ms()
            .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
            .unwrap_or_else(|| "—".into());
        let cost = s
            .cost_usd
            .map(|c| format!("${c:.4}"))
            .unwrap_or_else(|| "—".into());
        let d = &s.duplicates;
        let _ = write!(
            h,
            r#"<tr class="scan-row row-{cls}"><td><a class="scan-link" href="{href}">{short}</a></td><td>{}</td><td>{}</td><td>{mode}</td><td class="scan-status status-{cls}">{}</td><td>{}</td><td>{}</td><td>{known}</td><td>{}</td><td>{}</td><td>{} ({}/{}/{})</td><td>{}</td><td>{deferred}</td><td>{rejected}</td><td>{}</td><td class="scan-error">{}</td></tr>"#,
            when(&s.started_at),
            s.trigger.as_str(),
            s.status.as_str(),
            duration,
            s.records_read,
            s.novel_signatures,
            s.issues_created,
            d.total(),
            d.by_error_code,
            d.by_fingerprint,
            d.by_similarity,
            s.comments_added,
            cost,
            esc(s.error_message.as_deref().unwrap_or("")),
            cls = s.status.as_str().to_lowercase(),
            href = report_pages::scan_href(&s.scan_id),
            short = esc(report_pages::short_id(&s.scan_id)),
            mode = report_pages::mode_word(s),
            deferred = s.deferred,
            known = s.known_signatures,
            rejected = s.rejected_findings,
        );
    }
    if scans.items.is_empty() {
        h.push_str(r#"<tr><td colspan="16" class="empty">No scans yet.</td></tr>"#);
    }
    h.push_str("</tbody></table></div>");
    h
}

/// The filed-issues table with its pager.
pub fn issues_table(issues: &Page<FiledIssue>, paging: Paging) -> String {
    let mut h = String::new();
    pager(&mut h, "issues", issues.total, paging);
    h.push_str(
        r#"<div class="table-scroll"><table id="issues-table"><caption>Issues selfmon filed, newest first; open one for its dedup history</caption><thead><tr><th>Issue</th><th>Title</th><th>Classification</th><th>State</th><th>Error codes</th><th>Occurrences</th><th>First seen</th><th>Last seen</th><th>Filed by scan</th></tr></thead><tbody>"#,
    );
    for i in &issues.items {
        let codes: Vec<String> = i.error_codes.iter().map(|c| c.to_string()).collect();
        let _ = write!(
            h,
            r#"<tr class="issue-row"><td><a href="{url}">#{num}</a></td><td class="issue-title">{title}</td><td>{class}</td><td>{state}</td><td>{codes}</td><td>{occ}</td><td>{first}</td><td>{last}</td><td><a class="scan-link" href="{scan}">{short}</a></td></tr>"#,
            url = report_pages::issue_href(i.issue.number),
            scan = report_pages::scan_href(&i.scan_id),
            short = esc(report_pages::short_id(&i.scan_id)),
            num = i.issue.number,
            title = esc(&i.title),
            class = esc(&i.classification.to_string()),
            state = i.issue.state.as_str(),
            codes = esc(&codes.join(", ")),
            occ = i.occurrences,
            first = when(&i.created_at),
            last = when(&i.last_seen_at),
        );
    }
    if issues.items.is_empty() {
        h.push_str(r#"<tr><td colspan="9" class="empty">No issues filed yet.</td></tr>"#);
    }
    h.push_str("</tbody></table></div>");
    h
}

/// A tracker's web link when it has one; otherwise (dry-run files) the host's view of the
/// issue's Markdown file. Nothing else (`javascript:`) ever becomes a link.
pub fn tracker_link(i: &FiledIssue) -> String {
    let url = i.issue.url.trim();
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        url.to_string()
    } else {
        format!("/self-monitoring/issues/{}/markdown", i.issue.number)
    }
}

/// The tab's icon: a small pulse line.
pub const FAVICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1d2330"/><path d="M3 17h7l3-8 5 15 3-7h8" fill="none" stroke="#9fc4ff" stroke-width="3" stroke-linejoin="round" stroke-linecap="round"/></svg>"##;

/// The page's stylesheet.
pub const APP_CSS: &str = r#"
*, *::before, *::after { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0; color: #1d2330; background: #f5f6f8; }
nav { background: #1d2330; color: #fff; padding: .6rem 1.2rem; }
nav a { color: #9fc4ff; margin-left: 1rem; text-decoration: none; }
nav a.active { color: #fff; font-weight: 600; }
main { padding: 0 1.2rem 2rem; max-width: 1400px; }
section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: .4rem 1rem 1rem; margin: 1rem 0; min-width: 0; }
h1 { overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; }
dl { display: grid; grid-template-columns: 9rem minmax(0, 1fr); gap: .3rem .8rem; }
dl.summary { grid-template-columns: 11rem minmax(0, 1fr); }
dt { color: #5b6475; }
dd { margin: 0; overflow-wrap: anywhere; }
code { overflow-wrap: anywhere; }
.badge { padding: .1rem .5rem; border-radius: 1rem; background: #e4e8ef; font-weight: 600; font-size: .9rem; }
.grid { display: grid; grid-template-columns: 12rem minmax(0, 1fr); gap: .5rem .8rem; align-items: center; }
.grid input[type=text] { max-width: 100%; }
.grid > button { justify-self: start; }
.table-scroll { overflow-x: auto; max-width: 100%; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; }
caption { text-align: left; color: #5b6475; font-size: .8rem; padding: .2rem 0 .4rem; }
th, td { border-bottom: 1px solid #e4e8ef; text-align: left; padding: .3rem .4rem; vertical-align: top; }
th { background: #f0f2f5; }
.status-success { color: #137333; font-weight: 600; }
.status-failure { color: #b3261e; font-weight: 600; }
.status-running { color: #8a5a00; font-weight: 600; }
.error, .error-text { color: #b3261e; }
.warning-text { color: #8a5a00; }
.notice { color: #137333; }
.muted { color: #5b6475; }
.crumbs { margin: .8rem 0 0; font-size: .9rem; }
.crumbs a { color: #1a56b0; }
.warning { background: #fff4d6; border: 1px solid #e8c46a; padding: .5rem; }
.outcome-deferred td, .rejected td { background: #fff8e6; }
textarea { width: 100%; font-family: ui-monospace, monospace; font-size: .8rem; }
pre.scroll { overflow-x: auto; max-height: 30rem; background: #f5f6f8; padding: .5rem; font-size: .75rem; }
.follow ol { display: inline; padding: 0; }
.follow li { display: inline; margin-right: .3rem; }
.follow li + li::before { content: "→ "; color: #5b6475; }
.row-failure { background: #fdf0ef; }
#prompt-form label { display: block; margin: .6rem 0 .2rem; }
details { margin: .4rem 0; }
.hooks { border-color: #e8c46a; }
button { padding: .35rem .8rem; }
button:disabled { opacity: .55; cursor: not-allowed; }
[aria-invalid="true"] { border: 2px solid #b3261e; }
.field-error { color: #b3261e; font-size: .85rem; }
.live { font-size: .8rem; color: #5b6475; }
.live.on::before { content: "● "; color: #137333; }
@media (max-width: 640px) {
  main { padding: 0 .6rem 1.5rem; }
  nav { padding: .6rem; }
  section { padding: .3rem .6rem .8rem; }
  .grid, dl, dl.summary { grid-template-columns: minmax(0, 1fr); }
  .grid > span:empty { display: none; }
  dt { font-weight: 600; margin-top: .3rem; }
  select, input[type=text], input[type=number] { max-width: 100%; }
  .grid select, .grid input[type=text] { width: 100%; }
}
"#;

/// The page's script: Run Now through fetch; the status, the followed scan and the tables kept
/// current by the server's events (`/self-monitoring/events`), without polling.
pub const APP_JS: &str = r#"'use strict';
(function () {
  const token = document.querySelector('meta[name="csrf-token"]');
  const running = document.body.dataset.runningScan;
  if (running) {
    // A scan page opened while its scan runs: reload once it has finished.
    const es = new EventSource('/self-monitoring/events');
    es.addEventListener('status', function (m) {
      let s;
      try { s = JSON.parse(m.data); } catch (e) { return; }
      const ev = s.scan_event;
      if ((ev && ev.event === 'finished' && ev.record && ev.record.scan_id === running) ||
          (s.last_scan && s.last_scan.scan_id === running && s.last_scan.status !== 'RUNNING')) {
        es.close();
        window.location.reload();
      }
    });
  }
  if (!token) { return; }
  let followed = null;
  let lastState = null;

  function post(url) {
    return fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Accept': 'application/json' },
      body: 'csrf_token=' + encodeURIComponent(token.content),
      credentials: 'same-origin',
    }).then(function (r) {
      return r.json().catch(function () {
        return { result: 'error', message: 'The server answered ' + r.status + '; reload the page.' };
      });
    });
  }

  function word(job) {
    if (job.state === 'succeeded') { return 'success'; }
    if (job.state === 'failed') { return 'failure'; }
    return job.state;
  }

  function refreshFragments() {
    ['scans', 'issues'].forEach(function (which) {
      const el = document.getElementById(which + '-fragment');
      fetch('/self-monitoring/fragments/' + which + '?page=' + el.dataset.page)
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { el.innerHTML = html; })
        .catch(function () {});
    });
  }

  function render(s) {
    document.getElementById('scheduler-state').textContent = s.scheduler_state;
    document.getElementById('enabled-state').textContent = s.enabled ? 'enabled' : 'disabled';
    document.getElementById('next-scan').textContent = s.next_scan_text;
    document.getElementById('last-scan').innerHTML = s.last_scan_html;
    const g = document.getElementById('golden-status');
    g.textContent = s.golden_job ? ('job ' + s.golden_job.id + ': ' + s.golden_job.state + ' on model ' + s.golden_job.model) : '';
    const job = s.job;
    const tl = document.getElementById('job-timeline');
    if (job) {
      if (job.id !== followed) {
        followed = job.id;
        lastState = null;
        tl.innerHTML = '';
        tl.dataset.job = job.id;
      }
      const w = word(job);
      if (w !== lastState) {
        lastState = w;
        const li = document.createElement('li');
        li.className = 'state-' + w;
        li.textContent = w;
        tl.appendChild(li);
      }
      document.getElementById('job-error').textContent = job.error ? ('Scan failed: ' + job.error) : '';
    }
    const active = s.scheduler_state !== 'idle';
    const run = document.getElementById('run-now');
    run.disabled = active;
    run.title = active ? 'A scan is ' + s.scheduler_state + '; Run Now is available when it ends.' : '';
    if (!active) {
      const r = document.getElementById('run-now-result');
      if (r.dataset.stale === 'yes') { r.textContent = ''; r.className = ''; r.dataset.stale = ''; }
    }
  }

  // Live updates: the server pushes a status after every change (EventSource reconnects by itself).
  const live = document.getElementById('live-state');
  function connect() {
    const es = new EventSource('/self-monitoring/events');
    es.addEventListener('status', function (m) {
      let s;
      try { s = JSON.parse(m.data); } catch (e) { return; }
      render(s);
      if (s.history_changed) { refreshFragments(); }
    });
    es.onopen = function () { live.textContent = 'live'; live.className = 'live on'; };
    es.onerror = function () { live.textContent = 'reconnecting…'; live.className = 'live'; };
  }

  document.getElementById('run-now-form').addEventListener('submit', function (e) {
    e.preventDefault();
    post('/self-monitoring/run-now').then(function (r) {
      const el = document.getElementById('run-now-result');
      el.textContent = r.message;
      el.className = r.result === 'submitted' ? 'notice' : 'warning';
      el.dataset.stale = 'yes';
      const li = document.createElement('li');
      li.className = 'run-now-' + r.result;
      li.textContent = r.message;
      document.getElementById('run-now-log').appendChild(li);
    });
  });
  document.getElementById('golden-run-form').addEventListener('submit', function (e) {
    e.preventDefault();
    post('/golden-repo/run').then(function (r) {
      // On success the live status already says where the job is (and may be ahead of this
      // answer); only a refusal is worth showing here.
      if (r.result !== 'submitted') {
        document.getElementById('golden-status').textContent = r.message;
      }
    });
  });
  const brk = document.getElementById('break-logs');
  if (brk) {
    brk.addEventListener('click', function () {
      post(brk.dataset.url).then(function (r) {
        document.getElementById('break-result').textContent = r.message;
      });
    });
  }

  // Forms: custom inputs only when "custom" is chosen; confirm a prompt reset.
  function toggleCustom(selectId, inputId) {
    const sel = document.getElementById(selectId);
    const wrap = document.getElementById(inputId + '-wrap');
    if (!sel || !wrap) { return; }
    const sync = function () {
      const custom = sel.value === 'custom';
      wrap.hidden = !custom;
      document.getElementById(inputId).disabled = !custom;
    };
    sel.addEventListener('change', sync);
    sync();
  }
  toggleCustom('cadence_preset', 'cadence_custom');
  toggleCustom('model', 'model_custom');
  toggleCustom('golden_model', 'golden_model_custom');
  const reset = document.getElementById('reset-prompt');
  if (reset) {
    reset.addEventListener('click', function (e) {
      if (!window.confirm('Reset the prompt to the shipped version? Your override will be discarded.')) {
        e.preventDefault();
      }
    });
  }
  const notice = document.getElementById('notice');
  if (notice && window.history.replaceState) {
    // The notice belongs to this one save; a reload should not show it again.
    window.history.replaceState(null, '', '/self-monitoring' + window.location.search.replace(/[?&]saved=[^&]*/, '').replace(/^&/, '?'));
  }
  connect();
})();
"#;
