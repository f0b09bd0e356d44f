//! A reference host: a small `axum` server that embeds selfmon the way CIDX would, with a
//! "Self-Monitoring" page (configuration, status, Run Now, scan history, filed issues), a page per
//! scan explaining every signature's and finding's fate (`/self-monitoring/scans/ID`), a page per
//! filed issue with its dedup history, and live updates by server-sent events
//! (`/self-monitoring/events`). Requests naming another host are refused (DNS rebinding), forms
//! carry a CSRF token bound to the session by an HMAC, and every response carries a CSP.
//!
//! Run with `cargo run -p selfmon-web-host` and open the printed URL. Offline by default: a log
//! that keeps receiving new records, the offline rule-based runner, and a tracker that files
//! nothing anywhere. Options:
//!
//! - `--port N` (or `WEB_HOST_PORT`; default 8088): the port on 127.0.0.1;
//! - `--data-dir DIR` (default `target/web_host`): where the host keeps its files;
//! - `--github OWNER/NAME`: file real issues in that repository (token in `GITHUB_TOKEN`) instead
//!   of writing them as Markdown files into `DIR/dry-run-issues`;
//! - `--claude BINARY`: analyse with the Claude Code CLI at BINARY (`claude` on the PATH works)
//!   instead of the offline rules;
//! - `--allow-host NAME` (repeatable): also answer to `Host: NAME` (a reverse proxy's name);
//!   requests naming any other host are refused, against DNS rebinding;
//! - `--test-hooks`: adds the test-only "Break the log file" control.
//!
//! `cargo test -p selfmon-web-host` runs the HTTP tests and the headless-Chromium tests (which
//! skip with a reason when `chromium` or `chromedriver` is missing).

mod app;
mod events;
mod logs;
mod pages;
mod report_pages;
mod security;
mod state;

#[cfg(test)]
mod browser_tests;
#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod webdriver;

use std::path::PathBuf;

use state::{HostOptions, HostState};

/// The command line, parsed by hand to keep the example's dependencies small.
struct Args {
    port: u16,
    data_dir: PathBuf,
    test_hooks: bool,
    github: Option<String>,
    claude: Option<PathBuf>,
    allowed_hosts: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: match std::env::var("WEB_HOST_PORT") {
            Ok(p) => p.parse().map_err(|_| {
                format!(
                    "WEB_HOST_PORT={} is not a port number",
                    selfmon::text::quoted(&p)
                )
            })?,
            Err(_) => 8088,
        },
        data_dir: PathBuf::from("target/web_host"),
        test_hooks: false,
        github: None,
        claude: None,
        allowed_hosts: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => {
                let v = it.next().ok_or("--port needs a value")?;
                args.port = v
                    .parse()
                    .map_err(|_| {
                        format!("--port {} is not a port number", selfmon::text::quoted(&v))
                    })?;
            }
            "--data-dir" => {
                args.data_dir = PathBuf::from(it.next().ok_or("--data-dir needs a value")?);
            }
            "--test-hooks" => args.test_hooks = true,
            "--allow-host" => args
                .allowed_hosts
                .push(it.next().ok_or("--allow-host needs a host name")?),
            "--claude" => {
                args.claude = Some(PathBuf::from(it.next().ok_or("--claude needs a binary")?))
            }
            "--github" => args.github = Some(it.next().ok_or("--github needs OWNER/NAME")?),
            "-h" | "--help" => return Err(
                "usage: web_host [--port N] [--data-dir DIR] [--github OWNER/NAME] [--claude BINARY] [--allow-host NAME]... [--test-hooks]"
                    .to_string(),
            ),
            other => {
                return Err(format!(
                    "unknown argument {}; try --help",
                    selfmon::text::quoted(other)
                ))
            }
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let mut options = HostOptions::demo(args.data_dir);
    options.test_hooks = args.test_hooks;
    options.github_repository = args.github;
    options.claude_binary = args.claude;
    options.allowed_hosts = args.allowed_hosts;
    let state = HostState::start(options)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let addr = listener.local_addr()?;
    println!("Self-Monitoring host listening on http://{addr}/self-monitoring");
    println!(
        "(logs: {}; analysis: {}; issues: {}; press Ctrl-C to stop)",
        state.feed.location(),
        state.runner_description,
        state.tracker_description
    );
    let guard = security::HostGuard::new(addr, &state.options.allowed_hosts);
    axum::serve(listener, app::router(state, guard)).await?;
    Ok(())
}
