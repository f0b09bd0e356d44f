//! HTTP-level tests of the routes: CSRF, configuration, Run Now refusal, pagination, prompt,
//! escaping, failed scans.

use crate::testkit::{page_token, start_host, start_host_in, Session};
use selfmon::{ClaudeModel, ScanTrigger};

#[tokio::test]
async fn post_without_a_matching_csrf_token_is_rejected() {
    let host = start_host(|_| {}).await;
    let s = Session::open(&host.base).await;
    let url = format!("{}/self-monitoring/run-now", host.base);

    // No cookie, no field.
    let r = s.http.post(&url).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // The field without the cookie (what a cross-site form could send, guessing a token).
    let r = s
        .http
        .post(&url)
        .form(&[("csrf_token", s.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The cookie with a wrong field.
    let wrong = "0".repeat(64);
    let r = s
        .http
        .post(&url)
        .header("cookie", s.cookie())
        .form(&[("csrf_token", wrong.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Config POST without a token changes nothing.
    let r = s
        .http
        .post(format!("{}/self-monitoring/config", host.base))
        .form(&[
            ("enabled", "on"),
            ("cadence_preset", "15"),
            ("model", "opus"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!host.state.monitor.config().enabled);
    assert_eq!(
        host.state
            .followed_job
            .lock()
            .unwrap()
            .as_ref()
            .map(|j| j.0.clone()),
        None,
        "no scan was queued by the rejected POSTs"
    );

    // A token from another site's page (right cookie and field, foreign Origin).
    let r = s
        .http
        .post(&url)
        .header("cookie", s.cookie())
        .header("origin", "http://evil.example")
        .form(&[("csrf_token", s.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // With both, it is accepted.
    let (code, body, _) = s.post("/self-monitoring/run-now", &[]).await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test]
async fn page_sets_a_strict_http_only_session_cookie_and_an_hmac_token() {
    let host = start_host(|_| {}).await;
    let r = reqwest::get(format!("{}/self-monitoring", host.base))
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    let body = r.text().await.unwrap();
    let token = page_token(&body).unwrap();
    assert_ne!(token, session, "the token is not the cookie");
    assert_eq!(token, host.state.session_key.token(session));
    assert!(body.contains(&format!(r#"name="csrf_token" value="{token}""#)));
}

#[tokio::test]
async fn a_self_chosen_cookie_with_a_matching_field_is_refused() {
    let host = start_host(|_| {}).await;
    let http = reqwest::Client::new();
    let chosen = "0123456789abcdef0123456789abcdef";
    for field in [chosen.to_string(), "0".repeat(64)] {
        let r = http
            .post(format!("{}/self-monitoring/run-now", host.base))
            .header("cookie", format!("selfmon_session={chosen}"))
            .form(&[("csrf_token", field.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "forged token {field}");
        let body = r.text().await.unwrap();
        assert!(body.contains("<!DOCTYPE html>"), "an HTML page: {body}");
        assert!(body.contains("invalid CSRF token"), "{body}");
    }
    assert!(
        host.state.followed_job.lock().unwrap().is_none(),
        "no scan was queued"
    );
    // A token from another session does not carry over either.
    let a = Session::open(&host.base).await;
    let b = Session::open(&host.base).await;
    let r = http
        .post(format!("{}/self-monitoring/run-now", host.base))
        .header("cookie", b.cookie())
        .form(&[("csrf_token", a.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_foreign_host_header_is_refused_on_every_route() {
    // What a DNS-rebinding page sends: its own name, pointed at this server's address.
    let host = start_host(|o| o.allowed_hosts = vec!["cidx.example.org".into()]).await;
    let s = Session::open(&host.base).await;
    let http = reqwest::Client::new();
    for path in [
        "/self-monitoring",
        "/self-monitoring/status",
        "/self-monitoring/events",
        "/static/app.js",
    ] {
        let r = http
            .get(format!("{}{path}", host.base))
            .header("host", "evil.example:8088")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 421, "{path}");
        assert!(r.headers().contains_key("content-security-policy"));
        let body = r.text().await.unwrap();
        assert!(!body.contains(&s.token), "the token never leaks: {path}");
        assert!(body.contains("does not answer to the host name"), "{body}");
    }
    let r = http
        .post(format!("{}/self-monitoring/run-now", host.base))
        .header("host", "evil.example")
        .header("cookie", s.cookie())
        .form(&[("csrf_token", s.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    assert!(host.state.followed_job.lock().unwrap().is_none());
    // A configured name is accepted, with any port.
    let r = http
        .get(format!("{}/self-monitoring/status", host.base))
        .header("host", "cidx.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let port = host.base.rsplit(':').next().unwrap();
    let r = http
        .get(format!("{}/self-monitoring/status", host.base))
        .header("host", format!("localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_foreign_origin_gets_its_own_message() {
    let host = start_host(|_| {}).await;
    let s = Session::open(&host.base).await;
    let r = s
        .http
        .post(format!("{}/self-monitoring/run-now", host.base))
        .header("cookie", s.cookie())
        .header("origin", "http://evil.example")
        .form(&[("csrf_token", s.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("came from another site (http://evil.example)"),
        "{body}"
    );
    assert!(!body.contains("CSRF"), "not the token message: {body}");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let host = start_host(|_| {}).await;
    let s = Session::open(&host.base).await;
    let paths = [
        "/self-monitoring",
        "/",
        "/static/app.js",
        "/static/app.css",
        "/static/favicon.svg",
        "/favicon.ico",
        "/self-monitoring/status",
        "/no-such-page",
        "/self-monitoring/issues/999",
    ];
    for path in paths {
        let r = s
            .http
            .get(format!("{}{path}", host.base))
            .send()
            .await
            .unwrap();
        let h = r.headers();
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no CSP"))
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
    // A POST refused for its token, and a 404, are HTML pages, not JSON.
    let r = s
        .http
        .post(format!("{}/self-monitoring/config", host.base))
        .form(&[("enabled", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().contains_key("content-security-policy"));
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let (code, body) = s.get("/no-such-page").await;
    assert_eq!(code, 404);
    assert!(body.contains("Back to Self-Monitoring"), "{body}");
}

#[tokio::test]
async fn configuration_saves_and_applies_to_the_next_scan() {
    let host = start_host(|_| {}).await;
    let s = Session::open(&host.base).await;
    let (code, body, location) = s
        .post(
            "/self-monitoring/config",
            &[
                ("enabled", "on"),
                ("cadence_preset", "custom"),
                ("cadence_custom", "45"),
                ("model", "custom"),
                ("model_custom", "claude-test-model-1"),
                ("golden_model", "haiku"),
            ],
        )
        .await;
    assert_eq!(code, 303, "{body}");
    assert_eq!(location.as_deref(), Some("/self-monitoring?saved=config"));
    let c = host.state.monitor.config();
    assert!(c.enabled);
    assert_eq!(c.cadence_minutes, 45);
    assert_eq!(c.model, ClaudeModel::Custom("claude-test-model-1".into()));
    assert_eq!(*host.state.golden.model.read().unwrap(), ClaudeModel::Haiku);

    let status = s.status().await;
    assert_eq!(status["enabled"], true);
    assert!(status["next_scan_at"].is_string());

    // The next scan runs on the new model, without a restart.
    let (code, _, _) = s.post("/self-monitoring/run-now", &[]).await;
    assert_eq!(code, 200);
    let end = s.wait_for_job_end().await;
    assert_eq!(end["job"]["state"], "succeeded", "{end}");
    let scans = host
        .state
        .store
        .list_scans(Default::default())
        .await
        .unwrap();
    assert_eq!(scans.items[0].model.as_deref(), Some("claude-test-model-1"));

    let (_, page) = s.get("/self-monitoring?saved=config").await;
    assert!(page.contains("Configuration saved"));
    assert!(page.contains(r#"<option value="custom" selected>custom…</option>"#));
    assert!(page.contains(r#"value="45""#));
}

#[tokio::test]
async fn invalid_cadence_and_model_are_refused_with_a_reason() {
    let host = start_host(|_| {}).await;
    let s = Session::open(&host.base).await;
    for (fields, expect) in [
        (
            vec![
                ("cadence_preset", "custom"),
                ("cadence_custom", "0"),
                ("model", "sonnet"),
            ],
            "1 to 10080",
        ),
        (
            vec![
                ("cadence_preset", "custom"),
                ("cadence_custom", "soon"),
                ("model", "sonnet"),
            ],
            "not a whole number",
        ),
        (
            vec![
                ("cadence_preset", "60"),
                ("model", "custom"),
                ("model_custom", "rm -rf /"),
            ],
            "full model id",
        ),
    ] {
        let mut f = fields.clone();
        f.push(("enabled", "on"));
        let (code, body, _) = s.post("/self-monitoring/config", &f).await;
        assert_eq!(code, 400, "{fields:?}");
        assert!(
            body.contains("Not saved") && body.contains(expect),
            "{fields:?}: {body}"
        );
    }
    let c = host.state.monitor.config();
    assert!(!c.enabled && c.cadence_minutes == 60, "nothing was saved");
}

#[tokio::test]
async fn second_run_now_is_refused_while_the_first_is_queued() {
    // A golden-repo job occupies the single worker, so the scan stays queued.
    let host = start_host(|_| {}).await;
    let s = Session::open(&host.base).await;
    let (code, _, _) = s.post("/golden-repo/run", &[]).await;
    assert_eq!(code, 200);
    let (code, first, _) = s.post("/self-monitoring/run-now", &[]).await;
    assert_eq!(code, 200, "{first}");
    let (code, second, _) = s.post("/self-monitoring/run-now", &[]).await;
    assert_eq!(code, 409, "{second}");
    let v: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert_eq!(v["result"], "already_active");
    assert_eq!(v["status"], "queued");
    assert!(v["message"].as_str().unwrap().contains("already queued"));
    assert_eq!(s.status().await["scheduler_state"], "queued");
}

#[tokio::test]
async fn history_and_issues_are_paginated_server_side_with_totals() {
    let host = start_host(|o| o.page_size = 3).await;
    for _ in 0..5 {
        host.state.feed.append_batch().unwrap();
        host.state.monitor.scan(ScanTrigger::Manual).await.unwrap();
    }
    let issues_total = host
        .state
        .store
        .list_issues(&Default::default(), Default::default())
        .await
        .unwrap()
        .total;
    assert!(
        issues_total > 3,
        "enough issues to need two pages: {issues_total}"
    );
    let s = Session::open(&host.base).await;
    let (_, p1) = s.get("/self-monitoring").await;
    assert_eq!(p1.matches(r#"class="scan-row"#).count(), 3);
    assert!(p1.contains("1–3 of 5 scans"), "{p1}");
    assert!(
        p1.contains(r#"id="scans-next" href="/self-monitoring?scans_page=2&amp;issues_page=1""#)
    );
    let (_, p2) = s.get("/self-monitoring?scans_page=2&issues_page=2").await;
    assert_eq!(p2.matches(r#"class="scan-row"#).count(), 2);
    assert!(p2.contains("4–5 of 5 scans"));
    assert!(!p2.contains(r#"id="scans-next""#));
    assert!(p2.contains(&format!(
        "4–{} of {issues_total} issues",
        issues_total.min(6)
    )));
    let (_, past_end) = s.get("/self-monitoring?scans_page=99").await;
    assert!(
        past_end.contains("4–5 of 5 scans"),
        "a page past the end shows the last"
    );
    let (_, frag) = s.get("/self-monitoring/fragments/issues?page=1").await;
    assert_eq!(frag.matches(r#"class="issue-row""#).count(), 3);
    for col in [
        "Trigger",
        "Duration",
        "Records read",
        "Known signatures",
        "Novel signatures",
        "Issues filed",
        "Duplicates skipped",
        "Comments",
        "Cost",
        "Error",
    ] {
        assert!(p1.contains(&format!("<th>{col}")), "{col}");
    }
    for col in [
        "Issue",
        "Title",
        "Classification",
        "State",
        "Error codes",
        "Occurrences",
        "First seen",
        "Last seen",
    ] {
        assert!(p1.contains(&format!("<th>{col}</th>")), "{col}");
    }
}

#[tokio::test]
async fn prompt_override_reset_and_newer_shipped_notice() {
    let host = start_host(|_| {}).await;
    let s = Session::open(&host.base).await;
    let shipped = selfmon::prompt::shipped_version();
    let older = shipped.saturating_sub(1).to_string();
    let (code, _, loc) = s
        .post(
            "/self-monitoring/prompt",
            &[
                ("action", "save"),
                ("prompt_template", "My prompt.\n{digest}"),
                ("base_version", &older),
            ],
        )
        .await;
    assert_eq!(code, 303);
    assert_eq!(loc.as_deref(), Some("/self-monitoring?saved=prompt"));
    let (_, page) = s.get("/self-monitoring").await;
    assert!(page.contains("Using your override"));
    assert!(
        page.contains(r#"id="prompt-newer""#),
        "older base shows the notice"
    );

    let (code, body, _) = s
        .post(
            "/self-monitoring/prompt",
            &[
                ("action", "save"),
                ("prompt_template", "bad {nope}"),
                ("base_version", &older),
            ],
        )
        .await;
    assert_eq!(code, 400);
    assert!(
        body.contains("Prompt not saved") && body.contains("nope"),
        "{body}"
    );

    let (code, _, _) = s
        .post("/self-monitoring/prompt", &[("action", "reset")])
        .await;
    assert_eq!(code, 303);
    let (_, page) = s.get("/self-monitoring").await;
    assert!(page.contains(&format!("Using the shipped prompt (version {shipped})")));
    assert!(!page.contains(r#"id="prompt-newer""#));
    assert!(!host.state.monitor.config().prompt_user_modified);
}

#[tokio::test]
async fn log_text_is_escaped_in_the_page() {
    let host = start_host(|_| {}).await;
    host.state.feed.append_raw(
        selfmon::Level::Critical,
        "cidx.api",
        "[API-XSS-001] handler crashed on input <script>alert \"x\" & more",
    );
    host.state.monitor.scan(ScanTrigger::Manual).await.unwrap();
    let s = Session::open(&host.base).await;
    let (_, page) = s.get("/self-monitoring").await;
    assert!(
        !page.contains("<script>alert"),
        "raw script tag reached the page"
    );
    let start = page.find("API-XSS-001]").expect("issue shown");
    assert!(
        page[start..].contains("alert &quot;x&quot; &amp; more"),
        "{}",
        &page[start..start + 200]
    );
}

#[test]
fn html_escaping_covers_markup_and_quotes() {
    assert_eq!(
        crate::pages::esc(r#"<script>"a" & 'b'</script>"#),
        "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
    );
}

#[tokio::test]
async fn a_broken_log_fails_the_scan_and_shows_its_message() {
    let host = start_host(|_| {}).await;
    let s = Session::open(&host.base).await;
    let (code, _, _) = s.post("/test-hooks/break-logs", &[]).await;
    assert_eq!(code, 200);
    let (code, _, _) = s.post("/self-monitoring/run-now", &[]).await;
    assert_eq!(code, 200);
    let end = s.wait_for_job_end().await;
    assert_eq!(end["job"]["state"], "failed");
    assert!(
        end["job"]["error"]
            .as_str()
            .unwrap()
            .contains("not a database"),
        "{end}"
    );
    assert_eq!(end["last_scan"]["status"], "FAILURE");
    assert!(end["last_scan"]["error_message"]
        .as_str()
        .unwrap()
        .contains("not a database"));
    let (_, page) = s.get("/self-monitoring").await;
    assert!(page.contains(r#"class="scan-row row-failure""#));
}

#[tokio::test]
async fn test_hooks_do_not_exist_unless_enabled() {
    let host = start_host(|o| o.test_hooks = false).await;
    let s = Session::open(&host.base).await;
    let (code, _, _) = s.post("/test-hooks/break-logs", &[]).await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn settings_survive_a_restart() {
    let host = start_host(|_| {}).await;
    let s = Session::open(&host.base).await;
    let (code, body, _) = s
        .post(
            "/self-monitoring/config",
            &[
                ("enabled", "on"),
                ("cadence_preset", "360"),
                ("model", "haiku"),
                ("golden_model", "custom"),
                ("golden_model_custom", "claude-opus-4-1-20250805"),
            ],
        )
        .await;
    assert_eq!(code, 303, "{body}");
    let dir = host.stop().await;
    let again = start_host_in(dir, |_| {}).await;
    let c = again.state.monitor.config();
    assert!(c.enabled);
    assert_eq!(c.cadence_minutes, 360);
    assert_eq!(c.model, ClaudeModel::Haiku);
    assert_eq!(
        *again.state.golden.model.read().unwrap(),
        ClaudeModel::Custom("claude-opus-4-1-20250805".into())
    );
    assert!(
        again
            .state
            .store
            .list_scans(Default::default())
            .await
            .unwrap()
            .total
            == 0,
        "state store reopened"
    );
}

#[tokio::test]
async fn dry_run_issues_are_linked_and_served_by_number() {
    let host = start_host(|_| {}).await;
    host.state.monitor.scan(ScanTrigger::Manual).await.unwrap();
    let s = Session::open(&host.base).await;
    let (_, page) = s.get("/self-monitoring").await;
    assert!(page.contains(r#"<a href="/self-monitoring/issues/1""#));
    let (code, issue) = s.get("/self-monitoring/issues/1").await;
    assert_eq!(code, 200);
    assert!(
        issue.contains(r#"href="/self-monitoring/issues/1/markdown""#),
        "{issue}"
    );
    let (code, text) = s.get("/self-monitoring/issues/1/markdown").await;
    assert_eq!(code, 200);
    assert!(text.contains("selfmon:fingerprint="), "{text}");
    let (code, _) = s.get("/self-monitoring/issues/999").await;
    assert_eq!(code, 404);
    let (code, _) = s.get("/self-monitoring/issues/999/markdown").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn the_log_is_a_sqlite_file_that_keeps_growing() {
    let host = start_host(|_| {}).await;
    let source = host.state.feed.source();
    let before = source.max_id().await.unwrap().unwrap();
    host.state.feed.append_batch().unwrap();
    let after = source.max_id().await.unwrap().unwrap();
    assert!(after > before, "{before} -> {after}");
    assert!(host.state.feed.location().ends_with("logs.db"));
}

#[tokio::test]
async fn the_scan_page_explains_every_signature_and_finding() {
    let host = start_host(crate::testkit::explainable_scan).await;
    let report = host.state.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert!(report.record.deferred >= 1 && report.record.rejected_findings == 1);
    let id = report.record.scan_id.clone();
    let s = Session::open(&host.base).await;

    // The history links to the scan by id.
    let (_, page) = s.get("/self-monitoring").await;
    let href = format!(r#"href="/self-monitoring/scans/{id}""#);
    assert!(page.contains(&href), "history links the scan");

    let (code, scan) = s.get(&format!("/self-monitoring/scans/{id}")).await;
    assert_eq!(code, 200, "{scan}");
    assert!(scan.contains(id.as_str()));
    assert_eq!(
        scan.matches(r#"<tr class="finding outcome-"#).count(),
        report.outcomes.len()
    );
    assert!(scan.contains(r#"class="finding outcome-deferred""#));
    let deferred_row = scan
        .split(r#"<tr class="finding outcome-deferred">"#)
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap_or("");
    assert!(
        deferred_row.contains("max_new_issues_per_scan"),
        "a deferral says why: {deferred_row}"
    );
    assert!(scan.contains("backlog position 1"), "deferral position");
    assert!(scan.contains(r#"<tr class="rejected">"#));
    assert!(scan.contains("Invented outage with no evidence in this scan"));
    assert!(
        scan.contains("evidence"),
        "the rejection gives the validation reason"
    );
    assert_eq!(
        scan.matches(r#"<tr class="signature fate-"#).count(),
        report.signatures.len()
    );
    assert!(scan.contains(&format!("{} signatures:", report.record.signatures)));
    assert!(scan.contains("<caption>"));

    // A filed issue links back to the scan that filed it and lists its history.
    let filed = report
        .outcomes
        .iter()
        .find_map(|o| match o {
            selfmon::FindingOutcome::Filed { issue, .. } => Some(issue.number),
            _ => None,
        })
        .expect("one issue filed");
    assert!(scan.contains(&format!(r#"href="/self-monitoring/issues/{filed}""#)));
    let (code, issue) = s.get(&format!("/self-monitoring/issues/{filed}")).await;
    assert_eq!(code, 200);
    assert!(issue.contains(&href), "the issue links its scan: {issue}");
    assert!(issue.contains(r#"class="event event-filed""#), "{issue}");

    // A second scan of the same records matches the issue; its history grows.
    host.state.feed.append_batch().unwrap();
    host.state.monitor.scan(ScanTrigger::Manual).await.unwrap();
    let (_, issue) = s.get(&format!("/self-monitoring/issues/{filed}")).await;
    assert!(
        issue.matches(r#"<tr class="event event-"#).count() >= 2,
        "{issue}"
    );

    let (code, _) = s.get("/self-monitoring/scans/no-such-scan").await;
    assert_eq!(code, 404);
    let (code, _) = s.get("/self-monitoring/scans/..%2F..%2Fetc").await;
    assert_eq!(code, 404);
}

/// Reads server-sent events from `resp` until `done` accepts a `status` event's data, or 30 s.
async fn read_status_events(
    resp: &mut reqwest::Response,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no matching event within 30 s; saw {seen:#?}"))
            .expect("stream readable")
            .expect("stream still open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let is_status = block.lines().any(|l| l == "event: status");
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            if is_status {
                let v: serde_json::Value = serde_json::from_str(&data).expect("status is JSON");
                let stop = done(&v);
                seen.push(v);
                if stop {
                    return seen;
                }
            }
        }
    }
}

#[tokio::test]
async fn a_scheduled_scan_is_pushed_to_open_pages_as_server_sent_events() {
    /// The offline rules, once the test lets the analysis finish: the scan stays running until
    /// the page has been told so (events within 30 ms are sent as one status, so an ungated
    /// scan can start and finish inside one burst).
    struct Gated(tokio::sync::Semaphore);
    #[async_trait::async_trait]
    impl selfmon::AnalysisRunner for Gated {
        async fn analyze(
            &self,
            request: &selfmon::AnalysisRequest,
        ) -> selfmon::Result<selfmon::Analysis> {
            let _permit = self.0.acquire().await.expect("gate open");
            selfmon::offline::OfflineRunner.analyze(request).await
        }
        fn name(&self) -> &str {
            "gated-offline"
        }
    }
    let gate = std::sync::Arc::new(Gated(tokio::sync::Semaphore::new(0)));
    let runner = gate.clone();
    let host = start_host(move |o| {
        o.tick_period = Some(std::time::Duration::from_millis(100));
        o.runner_override = Some(crate::state::RunnerOverride(runner));
    })
    .await;
    let s = Session::open(&host.base).await;
    let mut resp = s
        .http
        .get(format!("{}/self-monitoring/events", host.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(resp.headers().contains_key("content-security-policy"));
    let first = read_status_events(&mut resp, |_| true).await;
    assert_eq!(first[0]["last_scan"], serde_json::Value::Null);

    // Enabling monitoring lets the real scheduler queue a scan; nobody asks for a status.
    let mut config = host.state.monitor.config();
    config.enabled = true;
    host.state.monitor.set_config(config).unwrap();
    // The scan's start is pushed while it runs (it waits for the gate in its analysis).
    let started = read_status_events(&mut resp, |v| {
        v["history_changed"] == true
            && v["last_scan"]["trigger"] == "scheduled"
            && v["last_scan"]["status"] == "RUNNING"
    })
    .await;
    assert_eq!(
        started.last().unwrap()["scheduler_state"],
        "running",
        "{started:#?}"
    );
    gate.0.add_permits(100);
    let seen = read_status_events(&mut resp, |v| {
        v["history_changed"] == true
            && v["last_scan"]["trigger"] == "scheduled"
            && v["last_scan"]["status"] == "SUCCESS"
    })
    .await;
    assert!(
        seen.iter().any(|v| v["scan_event"]["event"] == "finished"),
        "{seen:#?}"
    );
}

#[tokio::test]
async fn a_rejected_form_keeps_its_input_and_marks_the_field() {
    let host = start_host(|_| {}).await;
    let s = Session::open(&host.base).await;
    let (code, body, _) = s
        .post(
            "/self-monitoring/config",
            &[
                ("enabled", "on"),
                ("cadence_preset", "custom"),
                ("cadence_custom", "soon"),
                ("model", "custom"),
                ("model_custom", "claude-kept-model"),
            ],
        )
        .await;
    assert_eq!(code, 400);
    assert!(
        body.contains(r#"value="soon" aria-label="custom cadence in minutes" aria-invalid="true" aria-describedby="cadence_custom-error""#),
        "the typed value is kept and the field marked: {body}"
    );
    assert!(body.contains(r#"<span id="cadence_custom-error" class="field-error">"#));
    assert!(
        body.contains(r#"value="claude-kept-model""#),
        "other input kept"
    );
    assert!(body.contains(r#"<option value="custom" selected>custom…</option>"#));
    assert!(body.contains(r#"id="enabled" value="on" checked"#));

    // The model field is marked when it is the one at fault.
    let (code, body, _) = s
        .post(
            "/self-monitoring/config",
            &[
                ("cadence_preset", "60"),
                ("model", "custom"),
                ("model_custom", "not a model"),
            ],
        )
        .await;
    assert_eq!(code, 400);
    assert!(
        body.contains(r#"aria-invalid="true" aria-describedby="model_custom-error""#),
        "{body}"
    );
    assert!(!body.contains(r#"aria-describedby="cadence_custom-error""#));

    // An oversized prompt is refused, kept, and marked.
    let huge = "x".repeat(crate::pages::MAX_PROMPT_BYTES + 1);
    let (code, body, _) = s
        .post(
            "/self-monitoring/prompt",
            &[("action", "save"), ("prompt_template", &huge)],
        )
        .await;
    assert_eq!(code, 400);
    assert!(body.contains("at most 32768 are accepted"), "{body}");
    assert!(body.contains(r#"aria-describedby="prompt_template-error""#));
    assert!(!host.state.monitor.config().prompt_user_modified);
}

#[tokio::test]
async fn an_override_shows_its_diff_against_the_shipped_prompt() {
    let host = start_host(|_| {}).await;
    let s = Session::open(&host.base).await;
    let text = format!(
        "{}\nAlso check the disk.\n",
        selfmon::prompt::SHIPPED_PROMPT.trim_end()
    );
    let (code, _, _) = s
        .post(
            "/self-monitoring/prompt",
            &[("action", "save"), ("prompt_template", &text)],
        )
        .await;
    assert_eq!(code, 303);
    let (_, page) = s.get("/self-monitoring").await;
    let diff = page
        .split(r#"<pre id="prompt-diff" class="scroll">"#)
        .nth(1)
        .and_then(|d| d.split("</pre>").next())
        .expect("a diff is shown");
    assert!(diff.contains("+Also check the disk."), "{diff}");
}

#[tokio::test]
async fn run_now_without_javascript_redirects_or_explains_in_html() {
    let host = start_host(|_| {}).await;
    let s = Session::open(&host.base).await;
    // A golden-repo job holds the worker, so the scan stays queued.
    let (code, _, _) = s.post_form("/golden-repo/run", &[]).await;
    assert_eq!(code, 303);
    let (code, _, location) = s.post_form("/self-monitoring/run-now", &[]).await;
    assert_eq!(code, 303);
    assert_eq!(location.as_deref(), Some("/self-monitoring?saved=run_now"));
    let (_, page) = s.get("/self-monitoring?saved=run_now").await;
    assert!(page.contains("Scan queued"));
    assert!(
        page.contains(r#"id="run-now" disabled"#),
        "Run Now is disabled while a scan is queued"
    );
    let (code, body, _) = s.post_form("/self-monitoring/run-now", &[]).await;
    assert_eq!(code, 409);
    assert!(
        body.contains("<!DOCTYPE html>") && body.contains("already queued"),
        "{body}"
    );
}

#[tokio::test]
async fn every_control_is_labelled_and_every_table_captioned() {
    let host = start_host(|_| {}).await;
    host.state.monitor.scan(ScanTrigger::Manual).await.unwrap();
    let s = Session::open(&host.base).await;
    let (_, page) = s.get("/self-monitoring").await;
    for tag in ["<select ", "<textarea ", "<input "] {
        for piece in page.split(tag).skip(1) {
            let el = &piece[..piece.find('>').unwrap()];
            if el.contains(r#"type="hidden""#) {
                continue;
            }
            let id = el
                .split(r#"id=""#)
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("");
            let labelled = el.contains("aria-label=")
                || (!id.is_empty() && page.contains(&format!(r#"<label for="{id}">"#)));
            assert!(labelled, "unlabelled control: {tag}{el}");
        }
    }
    assert_eq!(
        page.matches("<table ").count(),
        page.matches("<caption>").count()
    );
    assert!(page.contains(r#"<link rel="icon" href="/static/favicon.svg""#));
    assert!(page.contains(r#"<dl aria-live="polite">"#));
}

#[tokio::test]
async fn a_broken_log_recovers_on_the_next_scan_and_the_scan_page_shows_the_reset() {
    let host = start_host(|_| {}).await;
    let first = host.state.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert!(first.record.log_id_end > 0);
    host.state.feed.break_log().unwrap();
    assert!(host.state.monitor.scan(ScanTrigger::Manual).await.is_err());
    // The server writes its next records: the log is recreated, no restart.
    host.state.feed.append_batch().unwrap();
    let report = host.state.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(report.record.status, selfmon::ScanStatus::Success);
    assert!(report.record.cursor_reset, "{:?}", report.record);
    let s = Session::open(&host.base).await;
    let (_, page) = s
        .get(&format!("/self-monitoring/scans/{}", report.record.scan_id))
        .await;
    assert!(page.contains(r#"id="cursor-reset""#), "{page}");
    assert!(page.contains("reading restarted from the beginning"));
}

#[tokio::test]
async fn a_running_scan_page_says_so_and_follows_the_scan() {
    let host = start_host(|o| o.analysis_delay = std::time::Duration::from_millis(1500)).await;
    let monitor = host.state.monitor.clone();
    let scan = tokio::spawn(async move { monitor.scan(ScanTrigger::Manual).await });
    let mut running = None;
    for _ in 0..200 {
        let page = host
            .state
            .store
            .list_scans(Default::default())
            .await
            .unwrap();
        if let Some(r) = page
            .items
            .into_iter()
            .find(|r| r.status == selfmon::ScanStatus::Running)
        {
            running = Some(r.scan_id);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let id = running.expect("the scan shows as running");
    let s = Session::open(&host.base).await;
    let (code, page) = s.get(&format!("/self-monitoring/scans/{id}")).await;
    assert_eq!(code, 200);
    assert!(page.contains(&format!(r#"<body data-running-scan="{id}">"#)));
    assert!(page.contains(r#"id="scan-running""#));
    scan.await.unwrap().unwrap();
    let (_, page) = s.get(&format!("/self-monitoring/scans/{id}")).await;
    assert!(!page.contains("data-running-scan"));
}
