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
    let router = app::router(state.clone());
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

/// An HTTP session: follows no redirects, keeps the CSRF cookie.
pub struct Session {
    /// The client.
    pub http: reqwest::Client,
    /// Base URL.
    pub base: String,
    /// The CSRF token from the cookie.
    pub token: String,
}

impl Session {
    /// Opens the page and takes the token from its cookie.
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
        let token = cookie
            .split(';')
            .next()
            .and_then(|kv| kv.split_once('='))
            .map(|(_, v)| v.to_string())
            .expect("cookie has a value");
        Session {
            http,
            base: base.to_string(),
            token,
        }
    }

    /// GETs a path with the session cookie; returns status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, format!("{}={}", app::CSRF_COOKIE, self.token))
            .send()
            .await
            .expect("GET");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }

    /// POSTs a form with the session cookie and the token field; returns status, body, location.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String, Option<String>) {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push((app::CSRF_FIELD, &self.token));
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, format!("{}={}", app::CSRF_COOKIE, self.token))
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
