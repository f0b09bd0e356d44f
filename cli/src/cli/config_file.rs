//! The configuration file: `SelfMonitoringConfig` plus one section per adapter.
//!
//! JSON, with whole-line `//` comments allowed (so `selfmon config init` can explain each field).
//! Relative paths are relative to the file's folder. Secrets never live here: the GitHub token and
//! the model's API key are read from environment variables whose *names* the file gives.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use selfmon::claude::{ClaudeRunner, ClaudeRunnerConfig};
use selfmon::dry_run::DryRunTracker;
use selfmon::engine::SelfMonitor;
use selfmon::github::{GitHubConfig, GitHubTracker};
use selfmon::offline::OfflineRunner;
use selfmon::sqlite::{LogSourceOptions, SqliteLogSource, SqliteStateStore, StateStoreOptions};
use selfmon::{
    AnalysisRunner, IssueTracker, Level, LogSource, NumericLevels, SelfMonitoringConfig,
    StateStore, TemplateMemory,
};

use super::failure::Failure;

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CliConfig {
    /// The self-monitoring settings, at the top level of the file.
    #[serde(flatten)]
    pub monitoring: SelfMonitoringConfig,
    /// Where the server's logs are.
    pub logs: LogsSection,
    /// Where selfmon keeps its state.
    pub state: StateSection,
    /// Who analyses the digest.
    #[serde(default)]
    pub runner: RunnerSection,
    /// Where issues go.
    #[serde(default)]
    pub tracker: TrackerSection,
}

/// Which backend a `logs` or `state` section names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// A SQLite file (`"path"`); the default when `"kind"` is absent.
    #[default]
    Sqlite,
    /// PostgreSQL, its connection string in the environment variable `"url_env"` names
    /// (needs a binary built with `--features postgres`).
    Postgres,
}

/// `"logs"`: the server's logs.db, or (kind `postgres`) a cluster's shared logs table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsSection {
    /// `"sqlite"` (default) or `"postgres"`.
    #[serde(default)]
    pub kind: BackendKind,
    /// Path of the logs.db (kind `sqlite`).
    #[serde(default)]
    pub path: PathBuf,
    /// Environment variable holding the connection string (kind `postgres`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// Schema of the log table (kind `postgres`; default `public`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The log table (kind `postgres`; default `logs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Seconds a transaction may hold the log's commit horizon back before the scan report names
    /// its session (kind `postgres`; default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon_stall_warn_secs: Option<u64>,
    /// Records below this level are skipped.
    #[serde(default = "default_level")]
    pub min_level: Level,
    /// The scale a level written as a number is read on (names read the same on both):
    /// `"python"` (the default; Python's `levelno`: 10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR,
    /// 50 CRITICAL) or `"pino"` (pino/bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error,
    /// 60 fatal). Above the scale's highest number is CRITICAL.
    #[serde(default)]
    pub numeric_levels: NumericLevels,
    /// How long a read waits for the server's writer.
    #[serde(default = "default_busy")]
    pub busy_timeout_ms: u64,
}

fn default_level() -> Level {
    Level::Warning
}

fn default_busy() -> u64 {
    5_000
}

/// `"state"`: selfmon's own SQLite file (may be the host's database), or (kind `postgres`) tables
/// in a PostgreSQL database shared by every node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// `"sqlite"` (default) or `"postgres"`.
    #[serde(default)]
    pub kind: BackendKind,
    /// Path of the state file (kind `sqlite`; created if missing).
    #[serde(default)]
    pub path: PathBuf,
    /// Environment variable holding the connection string (kind `postgres`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// Schema for selfmon's tables (kind `postgres`; default `public`, created if missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
}

/// `"runner"`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RunnerSection {
    /// The rule-based runner: no model, no network.
    #[default]
    Offline,
    /// The Claude Code CLI.
    Claude(Box<ClaudeRunnerConfig>),
}

/// `"tracker"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TrackerSection {
    /// A tracker in a local folder: every issue a Markdown file plus an `index.json`, for trying
    /// selfmon without GitHub or for a host that routes issues itself. Not a dry run: issues
    /// filed here are real to selfmon (the cursor moves, occurrences count); for a preview that
    /// changes nothing, use `selfmon scan --dry-run` (or `"dry_run": true`) with any tracker.
    /// `"kind": "dry-run"` is the old name of this kind and still accepted.
    #[serde(rename = "folder", alias = "dry-run")]
    DryRun {
        /// The folder.
        dir: PathBuf,
    },
    /// GitHub or GitHub Enterprise.
    Github(Box<GitHubConfig>),
}

impl Default for TrackerSection {
    fn default() -> Self {
        TrackerSection::DryRun {
            dir: PathBuf::from("selfmon-issues"),
        }
    }
}

/// One problem, with its field path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Dotted field path.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// Removes whole-line `//` comments, keeping line numbers for error messages.
pub fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.trim_start().starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl CliConfig {
    /// Reads and parses a file; a missing file or a type error is a usage failure naming it.
    pub fn load(path: &Path) -> Result<CliConfig, Failure> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Usage(format!(
                "cannot read configuration file {}: {e}",
                path.display()
            ))
        })?;
        let mut config = CliConfig::parse(&text).map_err(|(field, e)| {
            Failure::Usage(format!(
                "configuration file {}: field `{field}`: {e}",
                path.display()
            ))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    /// Parses a configuration document (whole-line `//` comments allowed, a leading byte-order
    /// mark ignored); relative paths are left as written. On error, `(field, reason)`: the field
    /// path of the first problem (`cadence_minutes`, `tracker.repository`), or `<root>` for a
    /// document that is not one JSON object — text after the closing `}` included, which would
    /// otherwise be silently ignored.
    pub fn parse(text: &str) -> Result<CliConfig, (String, String)> {
        // Editors on Windows save UTF-8 with a byte-order mark; JSON forbids it, the file means
        // the same without it.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let stripped = strip_comments(text);
        let de = &mut serde_json::Deserializer::from_str(&stripped);
        let config: CliConfig = serde_path_to_error_free(&mut *de)
            .map_err(|(field, e)| locate_error(&stripped).unwrap_or((field, e)))?;
        de.end().map_err(|e| {
            (
                "<root>".to_string(),
                format!(
                    "{e}: there is text after the configuration's closing `}}`, which would be \
                     ignored; remove it, or move its settings inside the object"
                ),
            )
        })?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if self.logs.kind == BackendKind::Sqlite {
            fix(&mut self.logs.path);
        }
        if self.state.kind == BackendKind::Sqlite {
            fix(&mut self.state.path);
        }
        if let TrackerSection::DryRun { dir } = &mut self.tracker {
            fix(dir);
        }
    }

    /// The tracker's credentials as this process sees them (empty for trackers without one).
    fn tracker_tokens(&self) -> Vec<String> {
        match &self.tracker {
            TrackerSection::DryRun { .. } => Vec::new(),
            TrackerSection::Github(g) => std::env::var(&g.token_env)
                .ok()
                .filter(|t| !t.trim().is_empty())
                .into_iter()
                .collect(),
        }
    }

    /// Every problem, each with its field path.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out: Vec<Problem> = self
            .monitoring
            .problems()
            .into_iter()
            .map(|p| Problem {
                field: p.field,
                reason: p.reason,
            })
            .collect();
        for unknown in self.monitoring.unknown_fields() {
            out.push(Problem {
                field: unknown.to_string(),
                // The library keeps unknown fields for a newer host's round trip; the CLI refuses
                // them, so the message must not say they are kept.
                reason: "unknown field (misspelt? fix its name or remove it: selfmon refuses a \
                         configuration with unknown fields)"
                    .into(),
            });
        }
        // `page_size` is a top-level setting the log source also checks: report it once, under
        // its own name.
        let page_size_reported = out.iter().any(|p| p.field == "page_size");
        match self.logs.kind {
            BackendKind::Sqlite => {
                match self.log_options().validate() {
                    Err(selfmon::sqlite::Error::InvalidOption {
                        field: "page_size", ..
                    }) if page_size_reported => {}
                    Err(e) => out.push(Problem {
                        field: "logs".into(),
                        reason: e.to_string(),
                    }),
                    Ok(()) => {}
                }
                if self.logs.path.as_os_str().is_empty() {
                    out.push(Problem {
                        field: "logs.path".into(),
                        reason: "missing: set it to the server's logs.db".into(),
                    });
                }
            }
            BackendKind::Postgres => {
                out.extend(postgres_problems("logs", self.logs.url_env.as_deref()));
                #[cfg(feature = "postgres")]
                match self.pg_log_options().validate() {
                    Err(selfmon::postgres::Error::InvalidOption {
                        field: "page_size", ..
                    }) if page_size_reported => {}
                    Err(e) => out.push(Problem {
                        field: "logs".into(),
                        reason: e.to_string(),
                    }),
                    Ok(()) => {}
                }
            }
        }
        match self.state.kind {
            BackendKind::Sqlite => {
                if self.state.path.as_os_str().is_empty() {
                    out.push(Problem {
                        field: "state.path".into(),
                        reason: "missing: set it to selfmon's state file".into(),
                    });
                }
            }
            BackendKind::Postgres => {
                out.extend(postgres_problems("state", self.state.url_env.as_deref()));
                #[cfg(feature = "postgres")]
                if let Err(e) = self.pg_state_options().validate() {
                    out.push(Problem {
                        field: "state".into(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        match &self.runner {
            RunnerSection::Offline => {}
            RunnerSection::Claude(c) => {
                if let Err(e) = c.validate() {
                    out.push(Problem {
                        field: "runner".into(),
                        reason: e.to_string(),
                    });
                }
                // Found now, not at every scan as a recorded (and retried) failure.
                if let Err(e) = selfmon::claude::process::resolve_binary(
                    &c.binary,
                    std::env::var_os("PATH").as_deref(),
                ) {
                    out.push(Problem {
                        field: "runner.binary".into(),
                        reason: e.to_string(),
                    });
                }
                // By value too: whatever a variable is called, the tracker's token never reaches
                // the model's process.
                if let Err(e) = selfmon::claude::invocation::check_child_env(
                    c,
                    std::env::vars_os(),
                    &self.tracker_tokens(),
                ) {
                    out.push(Problem {
                        field: "runner".into(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        match &self.tracker {
            TrackerSection::DryRun { dir } => {
                if dir.as_os_str().is_empty() {
                    out.push(Problem {
                        field: "tracker.dir".into(),
                        reason: "must not be empty".into(),
                    });
                }
            }
            TrackerSection::Github(g) => {
                if let Err(e) = g.validate() {
                    out.push(Problem {
                        field: "tracker".into(),
                        reason: e.to_string(),
                    });
                } else if self.tracker_tokens().is_empty() {
                    out.push(Problem {
                        field: "tracker.token_env".into(),
                        reason: selfmon::github::Error::TokenMissing {
                            env_var: g.token_env.clone(),
                        }
                        .to_string(),
                    });
                }
            }
        }
        out
    }

    /// What is valid but may surprise, each with its field path (printed by `config validate`).
    pub fn notes(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let RunnerSection::Claude(c) = &self.runner {
            if let Some(fallback) = &c.fallback_model {
                if fallback.as_cli_arg() == self.monitoring.model.as_cli_arg() {
                    out.push(Problem {
                        field: "runner.fallback_model".into(),
                        reason: format!(
                            "the same as \"model\" ({fallback}): not passed to Claude Code (which refuses a fallback equal to the model), so scans run without a fallback; set another model to have one"
                        ),
                    });
                }
            }
        }
        out
    }

    /// Fails with every problem when there is any.
    pub fn check(&self) -> Result<(), Failure> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("  {}: {}", p.field, p.reason))
            .collect();
        Err(Failure::Usage(format!(
            "invalid configuration:\n{}",
            lines.join("\n")
        )))
    }

    /// The SQLite log file the configuration names, when nothing exists at that path yet (the
    /// server has not logged): a scheduler waits for it, where a scan fails.
    pub fn missing_log_file(&self) -> Option<&Path> {
        (self.logs.kind == BackendKind::Sqlite && !self.logs.path.exists())
            .then_some(self.logs.path.as_path())
    }

    fn log_options(&self) -> LogSourceOptions {
        LogSourceOptions {
            page_size: self.monitoring.page_size,
            min_level: self.logs.min_level,
            busy_timeout_ms: self.logs.busy_timeout_ms,
            numeric_levels: self.logs.numeric_levels,
        }
    }

    #[cfg(feature = "postgres")]
    fn pg_log_options(&self) -> selfmon::postgres::PgLogSourceOptions {
        let d = selfmon::postgres::PgLogSourceOptions::default();
        selfmon::postgres::PgLogSourceOptions {
            schema: self.logs.schema.clone().unwrap_or(d.schema),
            table: self.logs.table.clone().unwrap_or(d.table),
            page_size: self.monitoring.page_size,
            min_level: self.logs.min_level,
            numeric_levels: self.logs.numeric_levels,
            horizon_stall_warn_secs: self
                .logs
                .horizon_stall_warn_secs
                .unwrap_or(d.horizon_stall_warn_secs),
            ..d
        }
    }

    #[cfg(feature = "postgres")]
    fn pg_state_options(&self) -> selfmon::postgres::PgStateStoreOptions {
        let d = selfmon::postgres::PgStateStoreOptions::default();
        selfmon::postgres::PgStateStoreOptions {
            schema: self.state.schema.clone().unwrap_or(d.schema),
            ..d
        }
    }

    async fn build_logs(&self) -> Result<Arc<dyn LogSource>, Failure> {
        match self.logs.kind {
            BackendKind::Sqlite => {
                if !self.logs.path.is_file() {
                    return Err(Failure::Usage(missing_log_file(&self.logs.path)));
                }
                let logs =
                    SqliteLogSource::open(&self.logs.path, self.log_options()).map_err(|e| {
                        Failure::open(
                            &format!("cannot open log file {}", self.logs.path.display()),
                            &e,
                        )
                    })?;
                Ok(Arc::new(logs))
            }
            #[cfg(feature = "postgres")]
            BackendKind::Postgres => {
                let url = pg_url("logs", self.logs.url_env.as_deref())?;
                let logs = selfmon::postgres::PgLogSource::connect(url, self.pg_log_options())
                    .await
                    .map_err(|e| Failure::connect("cannot read the PostgreSQL logs table", &e))?;
                Ok(Arc::new(logs))
            }
            #[cfg(not(feature = "postgres"))]
            BackendKind::Postgres => Err(Failure::Usage(NO_POSTGRES.into())),
        }
    }

    /// The state store, and the same store as the engine's learned-template memory.
    pub async fn build_store(
        &self,
    ) -> Result<(Arc<dyn StateStore>, Arc<dyn TemplateMemory>), Failure> {
        match self.state.kind {
            BackendKind::Sqlite => {
                let store = Arc::new(
                    SqliteStateStore::open(&self.state.path, StateStoreOptions::default())
                        .map_err(|e| {
                            Failure::open(
                                &format!("cannot open state file {}", self.state.path.display()),
                                &e,
                            )
                        })?,
                );
                Ok((store.clone(), store))
            }
            #[cfg(feature = "postgres")]
            BackendKind::Postgres => {
                let url = pg_url("state", self.state.url_env.as_deref())?;
                let store = selfmon::postgres::PgStateStore::connect(url, self.pg_state_options())
                    .await
                    .map_err(|e| Failure::connect("cannot open the PostgreSQL state store", &e))?;
                let store = Arc::new(store);
                Ok((store.clone(), store))
            }
            #[cfg(not(feature = "postgres"))]
            BackendKind::Postgres => Err(Failure::Usage(NO_POSTGRES.into())),
        }
    }

    /// Builds the engine and its adapters. A missing logs.db is a usage failure naming the path;
    /// an unreachable PostgreSQL server names the server (never the password) and is transient
    /// ([`Failure::is_transient`]).
    pub async fn build(&self, dry_run: bool) -> Result<Built, Failure> {
        self.check()?;
        let logs = self.build_logs().await?;
        let (store, template_memory) = self.build_store().await?;
        let runner: Arc<dyn AnalysisRunner> = match &self.runner {
            RunnerSection::Offline => Arc::new(OfflineRunner),
            RunnerSection::Claude(c) => Arc::new(
                ClaudeRunner::new((**c).clone())
                    .map_err(|e| Failure::usage("runner", &e))?
                    .with_tracker_tokens(self.tracker_tokens()),
            ),
        };
        let tracker: Arc<dyn IssueTracker> = match &self.tracker {
            TrackerSection::DryRun { dir } => {
                Arc::new(DryRunTracker::new(dir).map_err(|e| Failure::usage("tracker", &e))?)
            }
            TrackerSection::Github(g) => Arc::new(
                GitHubTracker::new((**g).clone()).map_err(|e| Failure::usage("tracker", &e))?,
            ),
        };
        let mut monitoring = self.monitoring.clone();
        monitoring.dry_run |= dry_run;
        let monitor = SelfMonitor::builder()
            .config(monitoring)
            .log_source(logs)
            .runner(runner)
            .tracker(tracker)
            .store(store.clone())
            .template_memory(template_memory)
            .build()
            .map_err(|e| Failure::usage("configuration", &e))?;
        Ok(Built {
            monitor: Arc::new(monitor),
            store,
        })
    }
}

/// Why `path` cannot be read as a log file (it is missing, or a folder), with what to set.
pub fn missing_log_file(path: &Path) -> String {
    if path.is_dir() {
        format!(
            "log file {} is a folder, not a file (set \"logs.path\" to the server's logs.db, \
             e.g. {})",
            path.display(),
            path.join("logs.db").display()
        )
    } else {
        format!(
            "log file {} does not exist (set \"logs.path\" to the server's logs.db)",
            path.display()
        )
    }
}

/// The engine and the store it writes.
pub struct Built {
    /// The engine.
    pub monitor: Arc<SelfMonitor>,
    /// The state store.
    pub store: Arc<dyn StateStore>,
}

#[cfg(not(feature = "postgres"))]
const NO_POSTGRES: &str =
    "this selfmon was built without PostgreSQL support; rebuild it with `--features postgres`";

/// Problems of a `"kind": "postgres"` section: the variable must be named, set, and parse.
fn postgres_problems(section: &str, url_env: Option<&str>) -> Vec<Problem> {
    let field = format!("{section}.url_env");
    let Some(env) = url_env.filter(|e| !e.trim().is_empty()) else {
        return vec![Problem {
            field,
            reason: "missing: name the environment variable holding the PostgreSQL connection string (e.g. \"SELFMON_PG_URL\")".into(),
        }];
    };
    #[cfg(feature = "postgres")]
    {
        match selfmon::postgres::PgUrl::from_env(env) {
            Ok(_) => Vec::new(),
            Err(e) => vec![Problem {
                field,
                reason: e.to_string(),
            }],
        }
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = env;
        vec![Problem {
            field: format!("{section}.kind"),
            reason: NO_POSTGRES.into(),
        }]
    }
}

#[cfg(feature = "postgres")]
fn pg_url(section: &str, url_env: Option<&str>) -> Result<selfmon::postgres::PgUrl, Failure> {
    let env = url_env.unwrap_or_default();
    selfmon::postgres::PgUrl::from_env(env)
        .map_err(|e| Failure::usage(&format!("{section}.url_env"), &e))
}

/// Flattening hides field paths from serde: parse each part on its own to name the field.
fn locate_error(text: &str) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    if let Err(selfmon::Error::Config { field, reason }) = SelfMonitoringConfig::from_json(text) {
        return Some((field, reason));
    }
    fn section<T: serde::de::DeserializeOwned>(
        text: &str,
        value: &serde_json::Value,
        name: &str,
    ) -> Option<(String, String)> {
        let Some(v) = value.get(name) else {
            return Some((name.to_string(), "missing section".to_string()));
        };
        let json = v.to_string();
        let de = &mut serde_json::Deserializer::from_str(&json);
        let r: Result<T, _> = serde_path_to_error::deserialize(de);
        r.err().map(|e| {
            let p = e.path().to_string();
            let field = if p == "." {
                name.to_string()
            } else {
                format!("{name}.{p}")
            };
            // The section was parsed on its own, re-serialised on one line: serde's position
            // ("at line 1 column 13") is in that text, not in the file. Say where the section
            // starts in the file instead.
            let inner = e.into_inner();
            let mut reason = inner.to_string();
            if inner.line() > 0 {
                if let Some(cut) = reason.rfind(" at line ") {
                    reason.truncate(cut);
                }
            }
            if let Some(line) = key_line(text, name) {
                reason.push_str(&format!(
                    " (in the `{name}` section, which starts at line {line})"
                ));
            }
            (field, reason)
        })
    }
    section::<LogsSection>(text, &value, "logs")
        .or_else(|| section::<StateSection>(text, &value, "state"))
        .or_else(|| {
            value
                .get("runner")
                .and_then(|_| section::<RunnerSection>(text, &value, "runner"))
        })
        .or_else(|| {
            value
                .get("tracker")
                .and_then(|_| section::<TrackerSection>(text, &value, "tracker"))
        })
}

/// The 1-based line of the first top-level-looking `"name":` key in `text`, if any.
fn key_line(text: &str, name: &str) -> Option<usize> {
    let quoted = format!("\"{name}\"");
    let mut from = 0;
    while let Some(i) = text[from..].find(&quoted) {
        let at = from + i;
        let after = text[at + quoted.len()..].trim_start();
        if after.starts_with(':') {
            return Some(text[..at].matches('\n').count() + 1);
        }
        from = at + quoted.len();
    }
    None
}

fn serde_path_to_error_free(
    de: &mut serde_json::Deserializer<serde_json::de::StrRead<'_>>,
) -> Result<CliConfig, (String, String)> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        (
            if path == "." { "<root>".into() } else { path },
            e.into_inner().to_string(),
        )
    })
}

/// The commented default configuration written by `selfmon config init`.
pub fn default_config_text() -> String {
    let m = SelfMonitoringConfig::default();
    format!(
        r#"// selfmon configuration. JSON; whole-line `//` comments are allowed.
// Relative paths are relative to this file's folder. Secrets are never written here:
// the GitHub token and the model's API key come from environment variables.
{{
  // Scheduled scans run only when enabled (manual scans always may).
  "enabled": false,
  // Minutes between scheduled scans (1 to 10080).
  "cadence_minutes": {cadence},
  // opus, sonnet, haiku, or a full model id.
  "model": "sonnet",
  // Leave empty to use the prompt shipped with selfmon (upgrades bring the new one).
  "prompt_template": "",
  "prompt_user_modified": false,
  // Per-scan budgets: the rest waits for the next scan.
  "max_new_issues_per_scan": {issues},
  "max_comments_per_scan": {comments},
  // Bytes of log digest given to the model.
  "max_digest_bytes": {digest},
  // Record what would be filed without filing anything.
  "dry_run": false,
  // reopen_on_regression: a closed issue whose problem recurs is reopened (never one a person closed as
  // "not planned" or "duplicate"); each closure gets one comment, later recurrences are only counted.
  "dedup": {{ "related_threshold": 0.85, "min_related_attributes": 3, "reopen_on_regression": true, "closed_window_days": 30 }},
  // Signatures dropped before analysis: error codes, sources (a trailing * matches a prefix), template regexes.
  // Deferred findings they match are closed in the backlog by the next scan, never filed.
  "ignore": {{ "codes": [], "sources": [], "templates": [] }},
  // Redacted beyond secrets and emails.
  "redaction": {{ "ip_addresses": false, "user_ids": false, "extra_patterns": [] }},
  // The server's log database (CIDX: logs.db). numeric_levels: the scale of levels stored as
  // numbers, "python" (10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR, 50 CRITICAL) or "pino"
  // (pino/bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal).
  "logs": {{ "path": "logs.db", "min_level": "WARNING", "numeric_levels": "python" }},
  // Cluster mode (binary built with --features postgres): the nodes' shared table instead, e.g.
  // {{"kind": "postgres", "url_env": "SELFMON_PG_URL", "table": "logs", "min_level": "WARNING"}}.
  // selfmon's own history (created if missing); or {{"kind": "postgres", "url_env": "SELFMON_PG_URL"}}.
  "state": {{ "path": "selfmon-state.db" }},
  // "offline" (rules, no model) or {{"kind": "claude", "binary": "claude", "timeout_secs": 1800}}.
  "runner": {{ "kind": "offline" }},
  // "folder" files issues as Markdown files in a local folder (not a preview: use --dry-run for that); or {{"kind": "github", "repository": "owner/name", "token_env": "SELFMON_GITHUB_TOKEN"}}
  // (add "base_url": "https://HOST/api/v3" for GitHub Enterprise).
  "tracker": {{ "kind": "folder", "dir": "selfmon-issues" }}
}}
"#,
        cadence = m.cadence_minutes,
        issues = m.max_new_issues_per_scan,
        comments = m.max_comments_per_scan,
        digest = m.max_digest_bytes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_parses_and_is_valid() {
        let text = strip_comments(&default_config_text());
        let c: CliConfig = serde_json::from_str(&text).unwrap();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert!(matches!(c.runner, RunnerSection::Offline));
    }

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg.json");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_fallback_model_equal_to_the_model_is_a_note_not_a_problem() {
        let text = strip_comments(&default_config_text())
            .replace(r#""model": "sonnet""#, r#""model": "haiku""#)
            .replace(
                r#""runner": { "kind": "offline" }"#,
                r#""runner": { "kind": "claude", "binary": "/bin/sh", "fallback_model": "haiku" }"#,
            );
        let c: CliConfig = serde_json::from_str(&text).unwrap();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let notes = c.notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].field, "runner.fallback_model");
        assert!(notes[0].reason.contains("not passed"), "{notes:?}");
    }

    #[test]
    fn text_after_the_closing_brace_is_an_error_not_silently_ignored() {
        // Review M14: a second `"enabled": true, "tracker": {...}` pasted after the object was
        // ignored and `config validate` said "valid".
        for tail in [
            r#","enabled": true, "tracker": {"kind": "github", "repository": "o/r"} }"#,
            "{\"enabled\": true}",
            "x",
        ] {
            let (_dir, path) = write(&format!("{}{tail}\n", default_config_text()));
            let err = CliConfig::load(&path)
                .expect_err("trailing text is an error")
                .to_string();
            assert!(err.contains("field `<root>`"), "{err}");
            assert!(err.contains("trailing characters"), "{err}");
            assert!(err.contains("after the configuration's closing"), "{err}");
        }
        // Whitespace and comment lines after the object are fine.
        let (_dir, path) = write(&format!("{}\n  \n// end\n", default_config_text()));
        CliConfig::load(&path).expect("trailing whitespace and comments are not an error");
    }

    #[test]
    fn a_type_error_in_a_top_level_field_names_the_field() {
        let cadence = SelfMonitoringConfig::default().cadence_minutes;
        let text = default_config_text().replace(
            &format!(r#""cadence_minutes": {cadence}"#),
            &format!(r#""cadence_minutes": "{cadence}""#),
        );
        assert!(text.contains(&format!(r#""cadence_minutes": "{cadence}""#)));
        let (field, reason) = CliConfig::parse(&text).expect_err("a string is not a number");
        assert_eq!(field, "cadence_minutes", "{reason}");
        assert!(reason.contains("invalid type"), "{reason}");
    }

    #[test]
    fn a_config_saved_with_a_byte_order_mark_loads() {
        let (_dir, path) = write(&format!("\u{feff}{}", default_config_text()));
        let config = CliConfig::load(&path).expect("a UTF-8 BOM is not an error");
        assert!(matches!(config.runner, RunnerSection::Offline));
    }

    #[test]
    fn a_bad_value_in_a_section_is_reported_at_the_sections_line_not_line_1() {
        let text = default_config_text().replace(
            r#""runner": { "kind": "offline" }"#,
            r#""runner": { "kind": "offlne" }"#,
        );
        let runner_line = text
            .lines()
            .position(|l| l.contains(r#""runner":"#))
            .unwrap()
            + 1;
        assert!(runner_line > 20, "the runner section is far from line 1");
        let (_dir, path) = write(&text);
        let Err(Failure::Usage(message)) = CliConfig::load(&path) else {
            panic!("a misspelt runner kind must be a usage failure");
        };
        assert!(message.contains("field `runner.kind`"), "{message}");
        assert!(message.contains("offlne"), "{message}");
        assert!(!message.contains("at line 1 column"), "{message}");
        assert!(
            message.contains(&format!("starts at line {runner_line})")),
            "{message}"
        );
    }
}
