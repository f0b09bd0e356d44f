//! The Self-Monitoring tab in a real headless Chromium, driven through chromedriver.
//!
//! Skips with a printed reason when `chromium` or `chromedriver` is missing. Screenshots of each
//! key state go to `target/web_host_screenshots/`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::testkit::{explainable_scan, start_host};
use crate::webdriver::{missing_browser, Browser, Viewport};

const LIMIT: Duration = Duration::from_secs(60);

fn shot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/web_host_screenshots")
        .join(format!("{name}.png"))
}

fn timeline_js() -> &'static str {
    "return Array.from(document.querySelectorAll('#job-timeline li')).map(li => li.textContent);"
}

async fn wait_golden_running(b: &Browser) -> Result<(), String> {
    b.wait_for(
        "the golden-repo job to run",
        "return document.getElementById('golden-status').textContent;",
        LIMIT,
        |v| v.as_str().unwrap_or("").contains(": running"),
    )
    .await
    .map(|_| ())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_monitoring_tab_works_end_to_end_in_headless_chromium() {
    if let Some(reason) = missing_browser() {
        selfmon::testing::tool::skip_missing_tool("chromium", &reason);
        return;
    }
    let host = start_host(|o| {
        // Long enough for the page (polling every 150 ms) to see each state.
        o.analysis_delay = Duration::from_secs(2);
        o.golden_job_duration = Duration::from_millis(2500);
    })
    .await;
    let b = Browser::start().await.expect("chromium starts");
    let result = scenario(&b, &host.base).await;
    if result.is_err() {
        let _ = b.screenshot(&shot("failure")).await;
    }
    let _ = b.quit().await;
    if let Err(e) = result {
        panic!("{e}");
    }
    // The page's actions reached the real engine.
    let c = host.state.monitor.config();
    assert!(c.enabled);
    assert_eq!(c.cadence_minutes, 30);
    assert_eq!(c.model, selfmon::ClaudeModel::Opus);
}

async fn scenario(b: &Browser, base: &str) -> Result<(), String> {
    b.goto(&format!("{base}/self-monitoring")).await?;
    let title = b.script("return document.title;").await?;
    assert_eq!(title, "Self-Monitoring");
    assert_eq!(b.text("#enabled-state").await?, "disabled");
    assert_eq!(b.text("#scheduler-state").await?, "idle");

    // Enable monitoring, set cadence and models.
    b.click("#enabled").await?;
    b.select("#cadence_preset", "30").await?;
    // Resetting the prompt asks first; answering "Cancel" changes nothing.
    b.click("#reset-prompt").await?;
    let question = b.alert_text().await?;
    assert!(question.contains("Reset the prompt"), "{question}");
    b.dismiss_alert().await?;
    let url = b
        .script("return window.location.pathname + window.location.search;")
        .await?;
    assert_eq!(url, "/self-monitoring", "no reset was posted");
    b.select("#model", "opus").await?;
    b.select("#golden_model", "custom").await?;
    b.fill("#golden_model_custom", "claude-haiku-4-5-20251001")
        .await?;
    b.click("#save-config").await?;
    b.wait_for(
        "the saved notice",
        "const n = document.getElementById('notice'); return n ? n.textContent : '';",
        LIMIT,
        |v| v.as_str().unwrap_or("").contains("Configuration saved"),
    )
    .await?;
    assert_eq!(b.text("#enabled-state").await?, "enabled");
    assert_eq!(b.text("#current-model").await?, "opus");
    let selected = b
        .script("return [document.getElementById('cadence_preset').value, document.getElementById('golden_model').value, document.getElementById('golden_model_custom').value];")
        .await?;
    assert_eq!(
        strings(&selected),
        ["30", "custom", "claude-haiku-4-5-20251001"]
    );
    b.screenshot(&shot("1-configured")).await?;
    // Custom inputs show only when "custom" is chosen.
    let shown = "return [document.getElementById('cadence_custom-wrap').hidden, document.getElementById('golden_model_custom-wrap').hidden];";
    assert_eq!(b.script(shown).await?, serde_json::json!([true, false]));
    b.select("#cadence_preset", "custom").await?;
    assert_eq!(b.script(shown).await?, serde_json::json!([false, false]));
    b.select("#cadence_preset", "30").await?;
    // Resetting the prompt asks first; answering "Cancel" changes nothing.
    b.click("#reset-prompt").await?;
    let question = b.alert_text().await?;
    assert!(question.contains("Reset the prompt"), "{question}");
    b.dismiss_alert().await?;
    let url = b
        .script("return window.location.pathname + window.location.search;")
        .await?;
    assert_eq!(url, "/self-monitoring", "no reset was posted");

    // A golden-repo job holds the single worker, so Run Now shows the scan queued first.
    b.click("#golden-run").await?;
    wait_golden_running(b).await?;
    b.click("#run-now").await?;
    let tl = b
        .wait_for("the scan to finish", timeline_js(), LIMIT, |v| {
            strings(v)
                .last()
                .is_some_and(|s| s == "success" || s == "failure")
        })
        .await?;
    assert_eq!(
        strings(&tl),
        ["queued", "running", "success"],
        "the page followed the scan"
    );
    let golden = b.text("#golden-status").await?;
    assert!(
        golden.contains("claude-haiku-4-5-20251001"),
        "golden job ran on its own model: {golden}"
    );
    // The history and issue tables refresh when the scan ends.
    let rows = b
        .wait_for(
            "filed issues in the table",
            "return document.querySelectorAll('#issues-table .issue-row').length;",
            LIMIT,
            |v| v.as_u64().unwrap_or(0) > 0,
        )
        .await?;
    assert!(rows.as_u64().unwrap_or(0) >= 3, "issues listed: {rows}");
    let status = b.text("#scans-table .scan-status").await?;
    assert_eq!(status, "SUCCESS");
    assert!(b.text("#last-scan").await?.starts_with("SUCCESS"));
    let issue_link = b
        .script("return document.querySelector('#issues-table .issue-row a').textContent;")
        .await?;
    assert!(issue_link.as_str().unwrap_or("").starts_with('#'));
    b.screenshot(&shot("2-scan-succeeded")).await?;

    // Behind another golden-repo job the scan stays queued, and Run Now is disabled until it
    // ends (the server's refusal of a second one is tested over HTTP).
    let first_job = b
        .script("return document.getElementById('job-timeline').dataset.job;")
        .await?;
    b.click("#golden-run").await?;
    wait_golden_running(b).await?;
    b.click("#run-now").await?;
    b.wait_for(
        "the status to show the scan queued",
        "return document.getElementById('scheduler-state').textContent;",
        LIMIT,
        |v| v == "queued",
    )
    .await?;
    b.wait_for(
        "Run Now to be disabled",
        "return document.getElementById('run-now').disabled;",
        LIMIT,
        |v| v == true,
    )
    .await?;
    let log = b
        .script("return Array.from(document.querySelectorAll('#run-now-log li')).map(li => li.className);")
        .await?;
    assert!(
        strings(&log).iter().all(|c| c == "run-now-submitted"),
        "{log}"
    );
    b.screenshot(&shot("3-run-now-disabled-while-queued"))
        .await?;
    b.wait_for(
        "that scan to finish",
        "const t = document.getElementById('job-timeline'); return [t.dataset.job].concat(Array.from(t.querySelectorAll('li')).map(li => li.textContent));",
        LIMIT,
        |v| {
            let s = strings(v);
            s.first().map(String::as_str) != first_job.as_str()
                && s.last().is_some_and(|l| l == "success")
        },
    )
    .await?;
    b.wait_for(
        "the scheduler to be idle",
        "return document.getElementById('scheduler-state').textContent;",
        LIMIT,
        |v| v == "idle",
    )
    .await?;

    // Break the log file: the next scan fails and the page shows why.
    b.click("#break-logs").await?;
    b.wait_for(
        "the log to break",
        "return document.getElementById('break-result').textContent;",
        LIMIT,
        |v| v.as_str().unwrap_or("").contains("broken"),
    )
    .await?;
    b.click("#run-now").await?;
    b.wait_for("the scan to fail", timeline_js(), LIMIT, |v| {
        strings(v).last().is_some_and(|s| s == "failure")
    })
    .await?;
    let err = b.text("#job-error").await?;
    assert!(err.contains("not a database"), "job error shown: {err}");
    let last = b
        .wait_for(
            "the failed scan in the status",
            "return document.getElementById('last-scan').textContent;",
            LIMIT,
            |v| v.as_str().unwrap_or("").starts_with("FAILURE"),
        )
        .await?;
    assert!(
        last.as_str().unwrap_or("").contains("not a database"),
        "{last}"
    );
    let row_error = b
        .wait_for(
            "the failed scan in the history",
            "const r = document.querySelector('#scans-table .scan-row'); return r ? r.querySelector('.scan-error').textContent : '';",
            LIMIT,
            |v| !v.as_str().unwrap_or("").is_empty(),
        )
        .await?;
    assert!(row_error.as_str().unwrap_or("").contains("not a database"));
    b.screenshot(&shot("4-scan-failed")).await?;
    Ok(())
}

/// The page's width against the viewport's: `[document scroll width, viewport width]`.
const WIDTHS_JS: &str =
    "return [document.documentElement.scrollWidth, window.innerWidth, document.body.scrollWidth];";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_page_live_updates_and_phone_layout_in_headless_chromium() {
    if let Some(reason) = missing_browser() {
        selfmon::testing::tool::skip_missing_tool("chromium", &reason);
        return;
    }
    let host = start_host(|o| {
        explainable_scan(o);
    })
    .await;
    // One manual scan with a filed, deferred and rejected finding to explain.
    let report = host
        .state
        .monitor
        .scan(selfmon::ScanTrigger::Manual)
        .await
        .expect("scan");
    assert!(report.record.deferred >= 1 && report.record.rejected_findings == 1);

    let desktop = Browser::start_with(Viewport::Desktop {
        width: 1280,
        height: 1600,
    })
    .await
    .expect("chromium starts");
    let result = desktop_scenario(&desktop, &host, &report).await;
    if result.is_err() {
        let _ = desktop.screenshot(&shot("failure-desktop")).await;
    }
    let _ = desktop.quit().await;
    drop(desktop);
    if let Err(e) = result {
        panic!("{e}");
    }

    let phone = Browser::start_with(Viewport::Phone {
        width: 390,
        height: 844,
    })
    .await
    .expect("chromium starts");
    let result = phone_scenario(&phone, &host.base, &report).await;
    if result.is_err() {
        let _ = phone.screenshot(&shot("failure-phone")).await;
    }
    let _ = phone.quit().await;
    if let Err(e) = result {
        panic!("{e}");
    }
}

async fn desktop_scenario(
    b: &Browser,
    host: &crate::testkit::TestHost,
    report: &selfmon::ScanReport,
) -> Result<(), String> {
    let base = &host.base;
    b.goto(&format!("{base}/self-monitoring")).await?;
    b.wait_for(
        "the live connection",
        "return document.getElementById('live-state').textContent;",
        LIMIT,
        |v| v == "live",
    )
    .await?;
    let widths = b.script(WIDTHS_JS).await?;
    assert_eq!(widths[1], 1280, "{widths}");
    b.screenshot(&shot("desktop-1280")).await?;

    // A scheduled scan reaches the open page without a reload. The manual scan above makes the
    // next one due in an hour, so the scheduler's tick is asked about a time past that.
    b.script("window.__notReloaded = true; return 1;").await?;
    let mut config = host.state.monitor.config();
    config.enabled = true;
    host.state
        .monitor
        .set_config(config)
        .map_err(|e| e.to_string())?;
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    let tick = host
        .state
        .service
        .tick(later)
        .await
        .map_err(|e| e.to_string())?;
    assert!(
        matches!(
            tick,
            selfmon::TickOutcome::Due(selfmon::Submission::Submitted { .. })
        ),
        "{tick:?}"
    );
    let row = b
        .wait_for(
            "the scheduled scan in the history",
            "const r = document.querySelector('#scans-table .scan-row'); return r ? r.textContent : '';",
            LIMIT,
            |v| {
                let t = v.as_str().unwrap_or("");
                t.contains("scheduled") && t.contains("SUCCESS")
            },
        )
        .await?;
    assert!(row.as_str().unwrap_or("").contains("scheduled"));
    assert_eq!(
        b.script("return window.__notReloaded === true;").await?,
        true,
        "updated in place, not by reloading"
    );
    let last = b.text("#last-scan").await?;
    assert!(last.contains("scheduled"), "status follows: {last}");
    b.screenshot(&shot("desktop-1280-after-scheduled-scan"))
        .await?;

    // The manual scan's page explains its deferred and rejected findings.
    b.goto(&format!(
        "{base}/self-monitoring/scans/{}",
        report.record.scan_id
    ))
    .await?;
    let deferred = b
        .text("#findings-table tr.outcome-deferred .finding-reason")
        .await?;
    assert!(
        deferred.contains("max_new_issues_per_scan") && deferred.contains("backlog position"),
        "deferral reason shown: {deferred}"
    );
    let rejected = b.text("#rejected-table tr.rejected").await?;
    assert!(
        rejected.contains("Invented outage") && rejected.contains("evidence"),
        "rejection reason shown: {rejected}"
    );
    let filed = b
        .script("return document.querySelectorAll('#findings-table tr.outcome-filed a.issue-link').length;")
        .await?;
    assert_eq!(filed, 1);
    b.screenshot(&shot("scan-page-1280")).await?;
    // Its filed issue links back to this scan.
    b.click("#findings-table tr.outcome-filed a.issue-link")
        .await?;
    let filed_by = b.text("#filed-by").await?;
    assert!(
        filed_by.contains(&report.record.scan_id.as_str()[..8]),
        "{filed_by}"
    );
    Ok(())
}

async fn phone_scenario(
    b: &Browser,
    base: &str,
    report: &selfmon::ScanReport,
) -> Result<(), String> {
    for (path, name) in [
        ("/self-monitoring".to_string(), "phone-390"),
        (
            format!("/self-monitoring/scans/{}", report.record.scan_id),
            "scan-page-390",
        ),
    ] {
        b.goto(&format!("{base}{path}")).await?;
        let w = b.script(WIDTHS_JS).await?;
        assert_eq!(w[1], 390, "a 390 px viewport: {w}");
        assert_eq!(
            w[0], w[1],
            "{path}: no horizontal page overflow at 390 px: {w}"
        );
        assert!(w[2].as_u64() <= w[1].as_u64(), "{path}: body fits: {w}");
        b.screenshot(&shot(name)).await?;
    }
    // The wide history table scrolls inside its card instead of widening the page.
    b.goto(&format!("{base}/self-monitoring")).await?;
    let t = b
        .script("const d = document.querySelector('#scans-fragment .table-scroll'); return [d.scrollWidth, d.clientWidth, getComputedStyle(d).overflowX];")
        .await?;
    assert!(
        t[0].as_u64() > t[1].as_u64() && t[2] == "auto",
        "the table scrolls in its card: {t}"
    );
    // Forms are single-column: each label sits above its control.
    let cols = b
        .script("const l = document.querySelector('label[for=cadence_preset]').getBoundingClientRect(); const c = document.getElementById('cadence_preset').getBoundingClientRect(); return [l.left, c.left, l.bottom <= c.top + 1];")
        .await?;
    assert!(
        (cols[0].as_f64().unwrap_or(0.0) - cols[1].as_f64().unwrap_or(99.0)).abs() < 1.0
            && cols[2] == true,
        "label above its control: {cols}"
    );
    Ok(())
}
