//! The routes of the Self-Monitoring tab.
//!
//! Reads are plain GETs. Every state-changing request is a POST carrying the session's CSRF token
//! in a `csrf_token` form field; see [`crate::security`] for how the token is bound to the session
//! cookie, and for the `Host` check and headers that wrap every route.
//!
//! Authentication is the embedding host's business (CIDX puts its admin session check in front);
//! this example has none.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Request;
use axum::extract::{Path, Query, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use selfmon::prompt;
use selfmon::{
    ClaudeModel, FiledIssue, IssueFilter, JobStatus, Page, PageRequest, ScanId, ScanRecord,
    Submission,
};
use serde_json::json;
use tokio::sync::broadcast;

use crate::events::HostEvent;
use crate::pages::{self, FormProblem, Notice, PageData, Paging};
use crate::report_pages;
use crate::security::{self, HostGuard, OriginCheck, CSRF_FIELD};
use crate::state::HostState;

type Shared = Arc<HostState>;

/// The host's router. `guard` says which `Host` names address it (see [`crate::security`]).
pub fn router(state: Shared, guard: HostGuard) -> Router {
    let mut r = Router::new()
        .route("/", get(|| async { Redirect::to("/self-monitoring") }))
        .route("/self-monitoring", get(page))
        .route("/self-monitoring/status", get(status))
        .route("/self-monitoring/events", get(events))
        .route("/self-monitoring/fragments/scans", get(scans_fragment))
        .route("/self-monitoring/fragments/issues", get(issues_fragment))
        .route("/self-monitoring/scans/{scan_id}", get(scan_page))
        .route("/self-monitoring/issues/{number}", get(issue_page))
        .route(
            "/self-monitoring/issues/{number}/markdown",
            get(dry_run_issue),
        )
        .route("/self-monitoring/config", post(save_config))
        .route("/self-monitoring/prompt", post(save_prompt))
        .route("/self-monitoring/run-now", post(run_now))
        .route("/golden-repo/run", post(golden_run))
        .route("/static/app.js", get(app_js))
        .route("/static/app.css", get(app_css))
        .route("/static/favicon.svg", get(favicon))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/static/favicon.svg") }),
        );
    if state.options.test_hooks {
        r = r.route("/test-hooks/break-logs", post(break_logs));
    }
    r.fallback(not_found)
        .with_state(state)
        .layer(middleware::from_fn_with_state(Arc::new(guard), host_check))
        .layer(middleware::map_response(with_security_headers))
}

// ---------------------------------------------------------------------------------------------
// Refusals and error pages

/// Whether the client asked for JSON (the page's own `fetch` calls do); everything else gets HTML.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// An error as the client wants it: an HTML page for a browser, JSON for the page's script.
fn error_response(headers: &HeaderMap, status: StatusCode, title: &str, message: &str) -> Response {
    if wants_json(headers) {
        return (
            status,
            Json(json!({"result": "rejected", "message": message})),
        )
            .into_response();
    }
    let html = pages::error_page(status.as_u16(), title, message);
    (status, axum::response::Html(html)).into_response()
}

/// Why a POST was refused before doing anything.
enum Refused {
    /// The body is not a urlencoded form.
    Malformed(String),
    /// No session cookie, or the token does not belong to it (a stale page, or a forgery).
    Csrf,
    /// The browser says the form came from another site.
    Origin(String),
}

impl Refused {
    fn respond(self, headers: &HeaderMap) -> Response {
        match self {
            Refused::Malformed(e) => error_response(
                headers,
                StatusCode::BAD_REQUEST,
                "Malformed form",
                &format!("The form could not be read: {e}."),
            ),
            Refused::Csrf => error_response(
                headers,
                StatusCode::FORBIDDEN,
                "Session expired",
                "Missing or invalid CSRF token: this page is older than the server's last restart, \
                 or the request was not sent by this page. Reload the page and try again.",
            ),
            Refused::Origin(origin) => error_response(
                headers,
                StatusCode::FORBIDDEN,
                "Request from another site",
                &format!(
                    "Refused: this request came from another site ({origin}), not from the \
                     Self-Monitoring page. Reloading will not help; open the page on this host \
                     and use its controls."
                ),
            ),
        }
    }
}

/// Parses a urlencoded body and checks its origin and its CSRF field against the session.
fn checked_form(
    s: &HostState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<HashMap<String, String>, Refused> {
    if let OriginCheck::Foreign(origin) = security::check_origin(headers) {
        return Err(Refused::Origin(origin));
    }
    let form: HashMap<String, String> =
        serde_urlencoded::from_bytes(body).map_err(|e| Refused::Malformed(e.to_string()))?;
    match (security::session_cookie(headers), form.get(CSRF_FIELD)) {
        (Some(session), Some(token)) if s.session_key.verify(&session, token) => Ok(form),
        _ => Err(Refused::Csrf),
    }
}

/// Refuses a request whose `Host` does not name this server (DNS rebinding).
async fn host_check(State(guard): State<Arc<HostGuard>>, req: Request, next: Next) -> Response {
    match security::host_header(req.headers()) {
        Some(h) if guard.allows(h) => next.run(req).await,
        h => {
            let shown = h.unwrap_or("(none)").chars().take(100).collect::<String>();
            let html = pages::error_page(
                421,
                "Unknown host name",
                &format!(
                    "This server does not answer to the host name {}. Open it by its own \
                     address, or add the name with --allow-host.",
                    selfmon::text::quoted(&shown)
                ),
            );
            (StatusCode::MISDIRECTED_REQUEST, axum::response::Html(html)).into_response()
        }
    }
}

async fn with_security_headers(resp: Response) -> Response {
    security::add_headers(resp)
}

async fn not_found(headers: HeaderMap) -> Response {
    error_response(
        &headers,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing at this address.",
    )
}

// ---------------------------------------------------------------------------------------------
// Pages

fn page_number(q: &HashMap<String, String>, key: &str) -> u64 {
    q.get(key)
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| *n >= 1 && *n <= 1_000_000)
        .unwrap_or(1)
}

fn page_request(page: u64, size: u64) -> PageRequest {
    PageRequest {
        offset: (page - 1) * size,
        limit: size,
    }
}

/// The last page that has rows (1 when there are none).
fn last_page(total: u64, size: u64) -> u64 {
    total.div_ceil(size).max(1)
}

/// A page of scans; a page past the end shows the last one instead.
async fn scans_page(
    s: &HostState,
    page: u64,
    size: u64,
) -> selfmon::Result<(Page<ScanRecord>, u64)> {
    let p = s.store.list_scans(page_request(page, size)).await?;
    let last = last_page(p.total, size);
    if page > last {
        return Ok((s.store.list_scans(page_request(last, size)).await?, last));
    }
    Ok((p, page))
}

/// A page of filed issues; a page past the end shows the last one instead.
async fn issues_page(
    s: &HostState,
    page: u64,
    size: u64,
) -> selfmon::Result<(Page<FiledIssue>, u64)> {
    let all = IssueFilter::default();
    let p = s.store.list_issues(&all, page_request(page, size)).await?;
    let last = last_page(p.total, size);
    if page > last {
        return Ok((
            s.store.list_issues(&all, page_request(last, size)).await?,
            last,
        ));
    }
    Ok((p, page))
}

fn internal(e: impl std::fmt::Display) -> Response {
    let html = pages::error_page(
        500,
        "Cannot read selfmon's state",
        &format!("The host could not read selfmon's state: {e}. Reload to try again."),
    );
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::response::Html(html),
    )
        .into_response()
}

fn not_found_page(message: &str) -> Response {
    let html = pages::error_page(404, "Not found", message);
    (StatusCode::NOT_FOUND, axum::response::Html(html)).into_response()
}

async fn render_page(
    s: &HostState,
    headers: &HeaderMap,
    paging: Paging,
    notice: Option<Notice>,
    problem: Option<FormProblem>,
) -> Response {
    let (session, set_cookie) = security::session(headers);
    let token = s.session_key.token(&session);
    let current = s.monitor.config();
    let config = &current;
    let prompt_status = prompt::effective(config);
    let golden_model = s
        .golden
        .model
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut paging = paging;
    let result = async {
        let state = s.service.state().await?;
        let next = s.service.next_scan_at(Utc::now()).await?;
        let (scans, scans_page) = scans_page(s, paging.scans_page, paging.page_size).await?;
        let (issues, issues_page) = issues_page(s, paging.issues_page, paging.page_size).await?;
        let last = s.store.list_scans(page_request(1, 1)).await?;
        Ok::<_, selfmon::Error>((state, next, scans, scans_page, issues, issues_page, last))
    }
    .await;
    let (state, next, scans, issues, last) = match result {
        Ok((state, next, scans, sp, issues, ip, last)) => {
            paging.scans_page = sp;
            paging.issues_page = ip;
            (state, next, scans, issues, last)
        }
        Err(e) => return internal(e),
    };
    let html = pages::page(&PageData {
        config,
        prompt: &prompt_status,
        golden_model: &golden_model,
        state: &state,
        last_scan: last.items.first(),
        next_scan_at: next,
        scans: &scans,
        issues: &issues,
        paging,
        csrf_token: &token,
        notice,
        problem: problem.as_ref(),
        log_location: &s.feed.location(),
        tracker_description: &s.tracker_description,
        runner_description: &s.runner_description,
        test_hooks: s.options.test_hooks,
    });
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut resp = (status, axum::response::Html(html)).into_response();
    if let Some(c) = set_cookie {
        resp.headers_mut().insert(SET_COOKIE, c);
    }
    resp
}

async fn page(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let paging = Paging {
        scans_page: page_number(&q, "scans_page"),
        issues_page: page_number(&q, "issues_page"),
        page_size: s.options.page_size,
    };
    let notice = q.get("saved").and_then(|k| Notice::from_key(k));
    render_page(&s, &headers, paging, notice, None).await
}

fn first_pages(s: &HostState) -> Paging {
    Paging {
        scans_page: 1,
        issues_page: 1,
        page_size: s.options.page_size,
    }
}

async fn scans_fragment(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut paging = first_pages(&s);
    match scans_page(&s, page_number(&q, "page"), paging.page_size).await {
        Ok((p, page)) => {
            paging.scans_page = page;
            axum::response::Html(pages::scans_table(&p, paging)).into_response()
        }
        Err(e) => internal(e),
    }
}

async fn issues_fragment(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut paging = first_pages(&s);
    match issues_page(&s, page_number(&q, "page"), paging.page_size).await {
        Ok((p, page)) => {
            paging.issues_page = page;
            axum::response::Html(pages::issues_table(&p, paging)).into_response()
        }
        Err(e) => internal(e),
    }
}

async fn status(State(s): State<Shared>) -> Response {
    match status_json(&s).await {
        Ok(body) => Json(body).into_response(),
        Err(e) => internal(e),
    }
}

/// What the status area shows, as JSON (the endpoint's body and every live update's data).
async fn status_json(s: &HostState) -> selfmon::Result<serde_json::Value> {
    let config = s.monitor.config();
    let state = s.service.state().await?;
    let next = s.service.next_scan_at(Utc::now()).await?;
    let last = s.store.list_scans(page_request(1, 1)).await?;
    let followed = s
        .followed_job
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let job = match followed {
        Some(id) => s.job_status(&id).await.map(|st| {
            json!({
                "id": id.0,
                "state": st.as_str(),
                "error": match &st { JobStatus::Failed { error } => Some(error.clone()), _ => None },
            })
        }),
        None => None,
    };
    let golden = s
        .golden_job
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let golden_job = match golden {
        Some(id) => s.job_status(&id).await.map(|st| {
            let model = s
                .golden
                .last_ran_on
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_else(|| "(not started)".into());
            json!({"id": id.0, "state": st.as_str(), "model": model})
        }),
        None => None,
    };
    let last_scan = last.items.first();
    let last_scan_html = match last_scan {
        None => "never".to_string(),
        Some(r) => {
            let mut t = format!(
                r#"<span class="status-{}">{}</span> ({}, started {})"#,
                r.status.as_str().to_lowercase(),
                r.status.as_str(),
                r.trigger.as_str(),
                pages::when(&r.started_at)
            );
            let _ = write!(
                t,
                r#" · <a class="scan-link" href="{}">details</a>"#,
                report_pages::scan_href(&r.scan_id)
            );
            if let Some(e) = &r.error_message {
                t.push_str(&format!(
                    r#" — <span class="error-text">{}</span>"#,
                    pages::esc(e)
                ));
            }
            t
        }
    };
    let body = json!({
        "enabled": config.enabled,
        "cadence_minutes": config.cadence_minutes,
        "model": config.model.to_string(),
        "scheduler_state": pages::state_word(&state),
        "next_scan_at": next.map(|t| t.to_rfc3339()),
        "next_scan_text": next.map(|t| pages::when(&t)).unwrap_or_else(|| "not scheduled (monitoring is disabled)".into()),
        "last_scan": last_scan.map(|r| json!({
            "scan_id": r.scan_id.0,
            "status": r.status.as_str(),
            "trigger": r.trigger.as_str(),
            "started_at": r.started_at.to_rfc3339(),
            "error_message": r.error_message,
        })),
        "last_scan_html": last_scan_html,
        "job": job,
        "golden_job": golden_job,
    });
    Ok(body)
}

// ---------------------------------------------------------------------------------------------
// Live updates

/// Server-sent events: a `status` event now and after every burst of changes (see
/// [`crate::events`]).
async fn events(
    State(s): State<Shared>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let rx = s.events.subscribe();
    let stream = futures_util::stream::unfold((s, rx, true), |(s, mut rx, first)| async move {
        let mut history_changed = first;
        let mut scan_event = None;
        if !first {
            let mut take = |e: HostEvent| {
                history_changed |= e.changes_history();
                if let HostEvent::Scan(e) = e {
                    scan_event = Some(e);
                }
            };
            match rx.recv().await {
                Ok(e) => take(e),
                Err(broadcast::error::RecvError::Lagged(_)) => take(HostEvent::Missed),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
            // A scan emits several events within milliseconds: send one status for all.
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            loop {
                match rx.try_recv() {
                    Ok(e) => take(e),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => take(HostEvent::Missed),
                    Err(_) => break,
                }
            }
        }
        let event = match status_json(&s).await {
            Ok(mut v) => {
                v["history_changed"] = json!(history_changed);
                v["scan_event"] = json!(scan_event);
                Event::default().event("status").data(v.to_string())
            }
            Err(e) => Event::default()
                .event("problem")
                .data(format!("the host could not read selfmon's state: {e}")),
        };
        Some((Ok(event), (s, rx, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

// ---------------------------------------------------------------------------------------------
// Admin POSTs

/// A field that failed to parse: its `name` and why.
type FieldError = (String, String);

/// Parses the select + custom-id pair of a model field.
fn model_field(form: &HashMap<String, String>, name: &str) -> Result<ClaudeModel, FieldError> {
    let choice = form.get(name).map(String::as_str).unwrap_or("sonnet");
    let (field, raw) = if choice == "custom" {
        let field = format!("{name}_custom");
        let raw = form.get(&field).map(String::as_str).unwrap_or("");
        (field, raw)
    } else {
        (name.to_string(), choice)
    };
    ClaudeModel::parse(raw).map_err(|e| (field, format!("{name}: {e}")))
}

fn cadence_field(form: &HashMap<String, String>) -> Result<u32, FieldError> {
    let preset = form
        .get("cadence_preset")
        .map(String::as_str)
        .unwrap_or("60");
    let (field, raw) = if preset == "custom" {
        let raw = form.get("cadence_custom").map(String::as_str).unwrap_or("");
        ("cadence_custom", raw)
    } else {
        ("cadence_preset", preset)
    };
    let minutes = raw.trim().parse::<u32>().map_err(|_| {
        (
            field.to_string(),
            format!(
                "cadence: {} is not a whole number of minutes; use 1 to 10080",
                selfmon::text::quoted(raw)
            ),
        )
    })?;
    if !(1..=10080).contains(&minutes) {
        return Err((
            field.to_string(),
            format!("cadence: {minutes} minutes is out of range; use 1 to 10080"),
        ));
    }
    Ok(minutes)
}

async fn save_config(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match checked_form(&s, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r.respond(&headers),
    };
    let mut config = s.monitor.config();
    config.enabled = form.get("enabled").is_some_and(|v| v == "on");
    let parsed = cadence_field(&form).and_then(|cadence| {
        config.cadence_minutes = cadence;
        config.model = model_field(&form, "model")?;
        model_field(&form, "golden_model")
    });
    let result = parsed.and_then(|golden| {
        let general = |e: String| (String::new(), e);
        config.validate().map_err(|e| general(e.to_string()))?;
        s.monitor
            .set_config(config.clone())
            .map_err(|e| general(e.to_string()))?;
        *s.golden.model.write().unwrap_or_else(|p| p.into_inner()) = golden;
        s.persist()
            .map_err(|e| general(format!("applied, but not kept across a restart: {e}")))
    });
    match result {
        Ok(()) => Redirect::to("/self-monitoring?saved=config").into_response(),
        Err((field, e)) => {
            let problem = FormProblem {
                form: "config",
                message: format!("Not saved: {e}"),
                field: (!field.is_empty()).then_some(field),
                values: form,
            };
            render_page(&s, &headers, first_pages(&s), None, Some(problem)).await
        }
    }
}

async fn save_prompt(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match checked_form(&s, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r.respond(&headers),
    };
    let mut config = s.monitor.config();
    let notice = if form.get("action").map(String::as_str) == Some("reset") {
        config.prompt_template = String::new();
        config.prompt_user_modified = false;
        config.prompt_base_version = None;
        Notice::PromptReset
    } else {
        let text = form
            .get("prompt_template")
            .cloned()
            .unwrap_or_default()
            .replace("\r\n", "\n");
        if text.len() > pages::MAX_PROMPT_BYTES {
            let problem = FormProblem {
                form: "prompt",
                message: format!(
                    "Prompt not saved: the override is {} bytes; at most {} are accepted.",
                    text.len(),
                    pages::MAX_PROMPT_BYTES
                ),
                field: Some("prompt_template".to_string()),
                values: form,
            };
            return render_page(&s, &headers, first_pages(&s), None, Some(problem)).await;
        }
        if text.trim() == prompt::SHIPPED_PROMPT.trim() {
            // Saving the shipped text unchanged is not an override: keep following upgrades.
            config.prompt_template = String::new();
            config.prompt_user_modified = false;
            config.prompt_base_version = None;
        } else {
            config.prompt_template = text;
            config.prompt_user_modified = true;
            config.prompt_base_version = form
                .get("base_version")
                .and_then(|v| v.trim().parse::<u32>().ok());
        }
        Notice::PromptSaved
    };
    let result = s
        .monitor
        .set_config(config.clone())
        .map_err(|e| e.to_string())
        .and_then(|()| {
            s.persist()
                .map_err(|e| format!("applied, but not kept across a restart: {e}"))
        });
    match result {
        Ok(()) => Redirect::to(&format!("/self-monitoring?saved={}", notice.key())).into_response(),
        Err(e) => {
            let problem = FormProblem {
                form: "prompt",
                message: format!("Prompt not saved: {e}"),
                field: Some("prompt_template".to_string()),
                values: form,
            };
            render_page(&s, &headers, first_pages(&s), None, Some(problem)).await
        }
    }
}

/// What a run-now request that met an active scan gets: a queued scan answers it; a running one
/// may have read the log before the request, so another scan follows it.
fn already_active_message(job_id: &selfmon::JobId, status: &selfmon::JobStatus) -> String {
    match status {
        selfmon::JobStatus::Queued => {
            format!("A scan is already queued (job {job_id}); it answers this request.")
        }
        other => format!(
            "A scan is already {} (job {job_id}); another scan runs after it.",
            other.as_str()
        ),
    }
}

async fn run_now(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = checked_form(&s, &headers, &body) {
        return r.respond(&headers);
    }
    let json = wants_json(&headers);
    match s.service.run_now().await {
        Ok(Submission::Submitted { job_id }) => {
            *s.followed_job.lock().unwrap_or_else(|p| p.into_inner()) = Some(job_id.clone());
            // The queue announced the job before it became the followed one: announce again so
            // open pages follow it from its first state.
            let _ = s.events.send(HostEvent::Jobs);
            if !json {
                // A browser without JavaScript posted the form itself: back to the page.
                return Redirect::to("/self-monitoring?saved=run_now").into_response();
            }
            Json(json!({
                "result": "submitted",
                "job_id": job_id.0,
                "message": format!("Scan queued (job {job_id})."),
            }))
            .into_response()
        }
        Ok(Submission::AlreadyActive { job_id, status }) if !json => error_response(
            &headers,
            StatusCode::CONFLICT,
            "A scan is already active",
            &format!(
                "{} The page shows when it ends.",
                already_active_message(&job_id, &status)
            ),
        ),
        Err(e) if !json => error_response(
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            "Could not queue a scan",
            &format!("Could not queue a scan: {e}"),
        ),
        Ok(Submission::AlreadyActive { job_id, status }) => (
            StatusCode::CONFLICT,
            Json(json!({
                "result": "already_active",
                "job_id": job_id.0,
                "status": status.as_str(),
                "message": already_active_message(&job_id, &status),
            })),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"result": "error", "message": format!("Could not queue a scan: {e}")})),
        )
            .into_response(),
    }
}

async fn golden_run(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = checked_form(&s, &headers, &body) {
        return r.respond(&headers);
    }
    match s.submit_golden_job().await {
        Ok(_) if !wants_json(&headers) => Redirect::to("/self-monitoring").into_response(),
        Err(e) if !wants_json(&headers) => error_response(
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            "Could not queue the job",
            &e,
        ),
        Ok(id) => Json(json!({
            "result": "submitted",
            "job_id": id.0,
            "message": format!("Golden-repo job {id} queued."),
        }))
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"result": "error", "message": e})),
        )
            .into_response(),
    }
}

async fn break_logs(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = checked_form(&s, &headers, &body) {
        return r.respond(&headers);
    }
    match s.feed.break_log() {
        Ok(what) => Json(json!({"result": "broken", "message": format!("Log broken: {what}.")}))
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"result": "error", "message": e})),
        )
            .into_response(),
    }
}

/// The page of one scan, from its stored report.
async fn scan_page(State(s): State<Shared>, Path(scan_id): Path<String>) -> Response {
    let plausible = !scan_id.is_empty()
        && scan_id.len() <= 64
        && scan_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !plausible {
        return not_found_page("That is not a scan id.");
    }
    match s.store.scan_report(&ScanId(scan_id.clone())).await {
        Ok(Some(report)) => axum::response::Html(report_pages::scan_page(&report)).into_response(),
        Ok(None) => not_found_page(&format!(
            "There is no scan {scan_id}; retention may have removed it."
        )),
        Err(e) => internal(e),
    }
}

/// The filed issue with this number, searched page by page (the store has no lookup by number).
async fn find_filed(s: &HostState, number: u64) -> selfmon::Result<Option<FiledIssue>> {
    let all = IssueFilter::default();
    let mut offset = 0;
    loop {
        let page = s
            .store
            .list_issues(&all, PageRequest { offset, limit: 500 })
            .await?;
        if let Some(found) = page.items.iter().find(|i| i.issue.number == number) {
            return Ok(Some(found.clone()));
        }
        offset += page.items.len() as u64;
        if page.items.is_empty() || offset >= page.total {
            return Ok(None);
        }
    }
}

/// The page of one issue: who filed it and its dedup history.
async fn issue_page(
    State(s): State<Shared>,
    Path(number): Path<u64>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let page = page_number(&q, "page");
    let result = async {
        let filed = find_filed(&s, number).await?;
        let history = s
            .store
            .issue_history(number, page_request(page, report_pages::ISSUE_HISTORY_PAGE))
            .await?;
        Ok::<_, selfmon::Error>((filed, history))
    }
    .await;
    match result {
        Ok((None, history)) if history.total == 0 => {
            not_found_page(&format!("selfmon knows nothing about issue #{number}."))
        }
        Ok((filed, history)) => {
            let link = filed.as_ref().map(pages::tracker_link);
            axum::response::Html(report_pages::issue_page(
                number,
                filed.as_ref(),
                link.as_deref(),
                &history,
                page,
            ))
            .into_response()
        }
        Err(e) => internal(e),
    }
}

/// Shows a dry-run issue's Markdown file, looked up by number in the tracker's index (never by a
/// path from the request).
async fn dry_run_issue(State(s): State<Shared>, Path(number): Path<u64>) -> Response {
    let Some(tracker) = &s.dry_run else {
        return not_found_page("Issues are not filed to a dry-run folder.");
    };
    let issues = match tracker.issues() {
        Ok(i) => i,
        Err(e) => return internal(e),
    };
    let Some(issue) = issues.into_iter().find(|i| i.number == number) else {
        return not_found_page(&format!("There is no dry-run issue #{number}."));
    };
    let file = std::path::Path::new(&issue.file);
    let plain = file.components().count() == 1
        && matches!(
            file.components().next(),
            Some(std::path::Component::Normal(_))
        );
    if !plain {
        return not_found_page("The issue's file is outside the dry-run folder.");
    }
    match std::fs::read_to_string(tracker.dir().join(file)) {
        Ok(text) => ([(CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        Err(e) => internal(e),
    }
}

async fn app_js() -> Response {
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8")],
        pages::APP_JS,
    )
        .into_response()
}

async fn app_css() -> Response {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], pages::APP_CSS).into_response()
}

async fn favicon() -> Response {
    ([(CONTENT_TYPE, "image/svg+xml")], pages::FAVICON_SVG).into_response()
}
