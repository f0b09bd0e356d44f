//! A minimal W3C WebDriver client over `reqwest`, driving Debian's `chromedriver` and headless
//! `chromium`: the dozen commands the browser tests need, and no new dependency.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// Where Debian installs the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian installs the driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Why the browser tests cannot run here, if they cannot.
pub fn missing_browser() -> Option<String> {
    [CHROMIUM, CHROMEDRIVER]
        .iter()
        .find(|p| !Path::new(p).exists())
        .map(|p| {
            format!("{p} is not installed; run .ci/install-chromium.sh (Debian: apt-get install chromium chromium-driver)")
        })
}

/// The size of the browser's viewport.
#[derive(Debug, Clone, Copy)]
pub enum Viewport {
    /// A desktop window of this size.
    Desktop {
        /// CSS pixels.
        width: u32,
        /// CSS pixels.
        height: u32,
    },
    /// A phone (mobile emulation: viewport, touch, device pixel ratio 2).
    Phone {
        /// CSS pixels.
        width: u32,
        /// CSS pixels.
        height: u32,
    },
}

/// A running chromedriver with one headless Chromium session.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session_url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium session with a
    /// fresh profile and a 1400 × 2200 window.
    pub async fn start() -> Result<Browser, String> {
        Self::start_with(Viewport::Desktop {
            width: 1400,
            height: 2200,
        })
        .await
    }

    /// Like [`start`](Self::start), with the given viewport.
    pub async fn start_with(viewport: Viewport) -> Result<Browser, String> {
        let port = free_port()?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {CHROMEDRIVER}: {e}"))?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            http,
            session_url: String::new(),
            _profile: profile,
        };
        let mut ready = false;
        for _ in 0..200 {
            if let Ok(r) = browser.http.get(format!("{base}/status")).send().await {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == true {
                        ready = true;
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !ready {
            return Err("chromedriver did not become ready within 20 s".into());
        }
        let (window, mobile) = match viewport {
            Viewport::Desktop { width, height } => {
                (format!("--window-size={width},{height}"), None)
            }
            // Chromium will not make a window narrower than ~500 px; a phone is emulated instead.
            Viewport::Phone { width, height } => (
                format!("--window-size={},{}", width.max(500), height),
                Some(
                    json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0, "touch": true}}),
                ),
            ),
        };
        let mut options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-quic",
                "--disable-dev-shm-usage", window,
                format!("--user-data-dir={}", browser._profile.path().display()),
            ],
        });
        if let Some(m) = mobile {
            options["mobileEmulation"] = m;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
        }}});
        let v = browser
            .raw("POST", &format!("{base}/session"), Some(caps))
            .await?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {v}"))?;
        browser.session_url = format!("{base}/session/{id}");
        Ok(browser)
    }

    async fn raw(&self, method: &str, url: &str, body: Option<Value>) -> Result<Value, String> {
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{method} {url}: {status}: {}", v["value"]));
        }
        Ok(v["value"].clone())
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.raw(method, &format!("{}{path}", self.session_url), body)
            .await
    }

    /// Opens a URL and waits for the load.
    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.cmd("POST", "/url", Some(json!({"url": url})))
            .await
            .map(|_| ())
    }

    async fn element(&self, css: &str) -> Result<String, String> {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        v[ELEMENT_KEY]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no element id for {css}: {v}"))
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) -> Result<(), String> {
        let id = self.element(css).await?;
        self.cmd("POST", &format!("/element/{id}/click"), None)
            .await
            .map(|_| ())
    }

    /// Replaces the value of an input.
    pub async fn fill(&self, css: &str, text: &str) -> Result<(), String> {
        let id = self.element(css).await?;
        self.cmd("POST", &format!("/element/{id}/clear"), None)
            .await?;
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await
        .map(|_| ())
    }

    /// Picks an option of a `<select>` by value.
    pub async fn select(&self, select_css: &str, value: &str) -> Result<(), String> {
        self.click(&format!("{select_css} option[value=\"{value}\"]"))
            .await
    }

    /// The visible text of the element matching `css`.
    pub async fn text(&self, css: &str) -> Result<String, String> {
        let id = self.element(css).await?;
        let v = self
            .cmd("GET", &format!("/element/{id}/text"), None)
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// The text of the open alert or confirm dialog.
    pub async fn alert_text(&self) -> Result<String, String> {
        let v = self.cmd("GET", "/alert/text", None).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Dismisses the open dialog (a confirm answers "Cancel").
    pub async fn dismiss_alert(&self) -> Result<(), String> {
        self.cmd("POST", "/alert/dismiss", None).await.map(|_| ())
    }

    /// Runs a script in the page and returns its result.
    pub async fn script(&self, js: &str) -> Result<Value, String> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
        .await
    }

    /// Polls `js` (a script returning a value) until `done` accepts it, or fails after `limit`.
    pub async fn wait_for(
        &self,
        what: &str,
        js: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let start = std::time::Instant::now();
        loop {
            let v = self.script(js).await?;
            if done(&v) {
                return Ok(v);
            }
            if start.elapsed() > limit {
                return Err(format!("gave up waiting for {what}; last value {v}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<PathBuf, String> {
        let v = self.cmd("GET", "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot is not base64: {e}"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path.to_path_buf())
    }

    /// Ends the session (closing Chromium); the driver stops on drop.
    pub async fn quit(&self) -> Result<(), String> {
        self.raw("DELETE", &self.session_url, None)
            .await
            .map(|_| ())
    }
}
