//! Test support: the host served on a loopback port, and a small HTTP client that keeps the
//! session's CSRF cookie.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{COOKIE, SET_COOKIE};

use crate::app;
use crate::state::{HostOptions, HostState};

/// A host running on 127.0.0.1 for one test.
pub struct TestHost {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The host's state, for assertions.
    pub state: Arc<HostState>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TestHost {
    /// Stops the server and hands back the data dir (to start another host on it).
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.server.abort();
        let _ = (&mut self.server).await;
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self._dir, dir)
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Options for tests: no scheduler, no background records, test hooks on, no analysis delay.
pub fn test_options(dir: &std::path::Path) -> HostOptions {
    let mut o = HostOptions::demo(dir.to_path_buf());
    o.analysis_delay = Duration::ZERO;
    o.golden_job_duration = Duration::from_secs(600);
    o.tick_period = None;
    o.feed_period = None;
    o.test_hooks = true;
    o
}

/// Starts a host in a fresh data dir with options adjusted by `adjust`.
pub async fn start_host(adjust: impl FnOnce(&mut HostOptions)) -> TestHost {
    start_host_in(tempfile::tempdir().expect("tempdir"), adjust).await
}

/// Starts a host in `dir` (kept until the host is dropped).
pub async fn start_host_in(
    dir: tempfile::TempDir,
    adjust: impl FnOnce(&mut HostOptions),
) -> TestHost {
    let mut options = test_options(dir.path());
    adjust(&mut options);
    let state = HostState::start(options).expect("host starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let guard = crate::security::HostGuard::new(addr, &state.options.allowed_hosts);
    let router = app::router(state.clone(), guard);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    TestHost {
        base: format!("http://{addr}"),
        state,
        server,
        _dir: dir,
    }
}

/// An HTTP session: follows no redirects, keeps the session cookie and the page's CSRF token.
pub struct Session {
    /// The client.
    pub http: reqwest::Client,
    /// Base URL.
    pub base: String,
    /// The session id from the cookie.
    pub session: String,
    /// The CSRF token from the page.
    pub token: String,
}

/// The CSRF token a page carries in its `csrf-token` meta tag.
pub fn page_token(html: &str) -> Option<String> {
    const META: &str = r#"<meta name="csrf-token" content=""#;
    let start = html.find(META)? + META.len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].to_string())
}

impl Session {
    /// Opens the page and takes the session from its cookie and the token from the page.
    pub async fn open(base: &str) -> Session {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let resp = http
            .get(format!("{base}/self-monitoring"))
            .send()
            .await
            .expect("GET page");
        assert_eq!(resp.status(), 200);
        let cookie = resp
            .headers()
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("the page sets the CSRF cookie")
            .to_string();
        let session = cookie
            .split(';')
            .next()
            .and_then(|kv| kv.split_once('='))
            .map(|(_, v)| v.to_string())
            .expect("cookie has a value");
        let html = resp.text().await.expect("page body");
        let token = page_token(&html).expect("the page carries a CSRF token");
        Session {
            http,
            base: base.to_string(),
            session,
            token,
        }
    }

    /// The `Cookie` header value of this session.
    pub fn cookie(&self) -> String {
        format!("{}={}", crate::security::SESSION_COOKIE, self.session)
    }

    /// GETs a path with the session cookie; returns status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie())
            .send()
            .await
            .expect("GET");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }

    /// POSTs a form as the page's script does (asking for JSON), with the session cookie and the
    /// token field; returns status, body, location.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String, Option<String>) {
        self.post_accepting(path, fields, "application/json").await
    }

    /// Like [`post`](Self::post), as a browser without JavaScript posts a form (accepting HTML).
    pub async fn post_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String, Option<String>) {
        self.post_accepting(path, fields, "text/html").await
    }

    async fn post_accepting(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        accept: &str,
    ) -> (u16, String, Option<String>) {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push((crate::security::CSRF_FIELD, &self.token));
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie())
            .header(reqwest::header::ACCEPT, accept)
            .form(&form)
            .send()
            .await
            .expect("POST");
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (status, resp.text().await.expect("body"), location)
    }

    /// The status JSON.
    pub async fn status(&self) -> serde_json::Value {
        let (code, body) = self.get("/self-monitoring/status").await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status is JSON")
    }

    /// Waits until the followed job has finished; returns its final status object.
    pub async fn wait_for_job_end(&self) -> serde_json::Value {
        for _ in 0..600 {
            let s = self.status().await;
            let state = s["job"]["state"].as_str().unwrap_or("");
            if state == "succeeded" || state == "failed" {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the followed job did not finish within 30 s");
    }
}

/// The offline rules plus one invented finding whose evidence lies outside the scan, which the
/// engine's validation rejects: a scan with a rejection to explain.
pub struct InventingRunner;

#[async_trait::async_trait]
impl selfmon::AnalysisRunner for InventingRunner {
    async fn analyze(
        &self,
        request: &selfmon::AnalysisRequest,
    ) -> selfmon::Result<selfmon::Analysis> {
        let mut analysis = selfmon::offline::OfflineRunner.analyze(request).await?;
        analysis.findings.push(selfmon::Finding {
            classification: selfmon::Classification::ServerBug,
            title: "Invented outage with no evidence in this scan".to_string(),
            summary: "A finding the model made up.".to_string(),
            evidence_record_ids: vec![i64::MAX - 7],
            error_codes: Vec::new(),
            source_files: Vec::new(),
            error_type: None,
            signature_ids: Vec::new(),
            suspected_cause: None,
            suggested_fix: None,
        });
        Ok(analysis)
    }

    fn name(&self) -> &str {
        "inventing-offline"
    }
}

/// Options for a scan that files one issue, defers the rest and rejects an invented finding.
pub fn explainable_scan(o: &mut HostOptions) {
    o.runner_override = Some(crate::state::RunnerOverride(Arc::new(InventingRunner)));
    o.config.max_new_issues_per_scan = 1;
}
