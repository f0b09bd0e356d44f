//! Everything the host holds: the selfmon engine, the scheduler service, the job queue shared
//! with the host's other job kind, the log feed, and the host's own settings.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use selfmon::claude::{ClaudeRunner, ClaudeRunnerConfig};
use selfmon::dry_run::DryRunTracker;
use selfmon::engine::SelfMonitor;
use selfmon::github::{GitHubConfig, GitHubTracker};
use selfmon::offline::OfflineRunner;
use selfmon::sqlite::{SqliteStateStore, StateStoreOptions};
use selfmon::testing::{JobHandler, MemoryJobQueue};
use selfmon::{
    Analysis, AnalysisRequest, AnalysisRunner, ClaudeModel, IssueTracker, JobId, JobKind, JobQueue,
    JobSpec, JobStatus, SelfMonitoringConfig, SelfMonitoringService, StateStore,
};

use crate::events::{self, Events, HostEvent, NotifyingQueue};
use crate::logs::LogFeed;
use crate::security::SessionKey;

/// How the host is set up.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Where the host keeps its files (the generated log, the state, dry-run issues).
    pub data_dir: PathBuf,
    /// Simulated latency of one analysis (a real model takes tens of seconds).
    pub analysis_delay: Duration,
    /// How long one simulated golden-repo job runs.
    pub golden_job_duration: Duration,
    /// How often the scheduler ticks; `None` runs no scheduler (tests press Run Now instead).
    pub tick_period: Option<Duration>,
    /// How often new log records are appended; `None` appends none after the seed batch.
    pub feed_period: Option<Duration>,
    /// Whether the test-only endpoints (break the log) exist.
    pub test_hooks: bool,
    /// Rows per page of the history tables.
    pub page_size: u64,
    /// The initial self-monitoring configuration (a saved one in the data dir wins).
    pub config: SelfMonitoringConfig,
    /// File issues in this GitHub repository (`owner/name`, token in `GITHUB_TOKEN`) instead of
    /// the dry-run folder.
    pub github_repository: Option<String>,
    /// Analyse with this Claude Code CLI binary instead of the offline rules.
    pub claude_binary: Option<PathBuf>,
    /// Analyse with this runner (wrapped in `analysis_delay`) instead of the offline rules or
    /// Claude; tests use it to make findings the engine rejects.
    pub runner_override: Option<RunnerOverride>,
    /// Host names (besides the bind address, and `localhost` on loopback) the server answers to,
    /// e.g. the name a reverse proxy forwards; every other `Host` is refused.
    pub allowed_hosts: Vec<String>,
}

impl HostOptions {
    /// Options for a demo in `data_dir`: a scheduler, a live log, a visible analysis delay.
    pub fn demo(data_dir: PathBuf) -> Self {
        HostOptions {
            data_dir,
            analysis_delay: Duration::from_millis(1500),
            golden_job_duration: Duration::from_secs(3),
            tick_period: Some(Duration::from_secs(5)),
            feed_period: Some(Duration::from_secs(4)),
            test_hooks: false,
            page_size: 10,
            config: SelfMonitoringConfig {
                max_new_issues_per_scan: 10,
                ..SelfMonitoringConfig::default()
            },
            github_repository: None,
            claude_binary: None,
            allowed_hosts: Vec::new(),
            runner_override: None,
        }
    }
}

/// A runner chosen by the embedding code (see [`HostOptions::runner_override`]).
#[derive(Clone)]
pub struct RunnerOverride(pub Arc<dyn AnalysisRunner>);

impl std::fmt::Debug for RunnerOverride {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunnerOverride({})", self.0.name())
    }
}

/// The model setting of the host's other job kind: the same [`ClaudeModel`] type selfmon uses.
#[derive(Debug, Default)]
pub struct GoldenRepoJobs {
    /// Model golden-repo jobs run on.
    pub model: RwLock<ClaudeModel>,
    /// The model the last golden-repo job actually ran on.
    pub last_ran_on: Mutex<Option<ClaudeModel>>,
}

/// The shared state of the host.
pub struct HostState {
    /// The engine.
    pub monitor: Arc<SelfMonitor>,
    /// Scheduling and Run Now.
    pub service: Arc<SelfMonitoringService>,
    /// The job queue (one worker), shared by self-monitoring and golden-repo jobs; announces
    /// every job's submission and end on `events`.
    pub queue: Arc<NotifyingQueue>,
    /// What changed, for the pages' live updates (see [`crate::events`]).
    pub events: Events,
    /// Scan history and filed issues.
    pub store: Arc<dyn StateStore>,
    /// The host's log.
    pub feed: Arc<LogFeed>,
    /// Where issues go (shown on the page).
    pub tracker_description: String,
    /// What analyses the logs (shown on the page).
    pub runner_description: String,
    /// The dry-run tracker, when issues go to a folder (the page serves its files).
    pub dry_run: Option<Arc<DryRunTracker>>,
    /// The other job kind's settings.
    pub golden: Arc<GoldenRepoJobs>,
    /// The self-monitoring job the page follows (the last one Run Now queued).
    pub followed_job: Mutex<Option<JobId>>,
    /// The last golden-repo job.
    pub golden_job: Mutex<Option<JobId>>,
    /// The options the host was started with.
    pub options: HostOptions,
    /// The key CSRF tokens are computed under (drawn at start).
    pub session_key: SessionKey,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for HostState {
    fn drop(&mut self) {
        for task in &self.background {
            task.abort();
        }
    }
}

impl HostState {
    /// Builds the host: engine, queue, scheduler, log feed. Must run inside a tokio runtime.
    pub fn start(options: HostOptions) -> Result<Arc<Self>, String> {
        std::fs::create_dir_all(&options.data_dir)
            .map_err(|e| format!("cannot create {}: {e}", options.data_dir.display()))?;
        let dir = &options.data_dir;
        let (config, golden_model) = load_settings(dir, &options.config)?;
        let feed = Arc::new(LogFeed::open(&dir.join("logs.db"))?);
        let sqlite = Arc::new(
            SqliteStateStore::open(dir.join("selfmon.db"), StateStoreOptions::default())
                .map_err(|e| e.to_string())?,
        );
        let store: Arc<dyn StateStore> = sqlite.clone();
        let (tracker, dry_run, tracker_description): (Arc<dyn IssueTracker>, _, _) =
            match &options.github_repository {
                Some(repo) => {
                    let config = GitHubConfig {
                        repository: repo.clone(),
                        ..GitHubConfig::default()
                    };
                    let t = GitHubTracker::new(config).map_err(|e| e.to_string())?;
                    (Arc::new(t), None, format!("GitHub {repo}"))
                }
                None => {
                    let folder = dir.join("dry-run-issues");
                    let t = Arc::new(DryRunTracker::new(&folder).map_err(|e| e.to_string())?);
                    let text = format!("dry run: Markdown files in {}", folder.display());
                    (t.clone(), Some(t), text)
                }
            };
        let (runner, runner_description): (Arc<dyn AnalysisRunner>, String) =
            match (&options.runner_override, &options.claude_binary) {
                (Some(RunnerOverride(runner)), _) => (
                    Arc::new(DelayedRunner {
                        inner: runner.clone(),
                        delay: options.analysis_delay,
                    }),
                    format!("{} (chosen by the host)", runner.name()),
                ),
                (None, Some(binary)) => {
                    let config = ClaudeRunnerConfig {
                        binary: binary.clone(),
                        ..ClaudeRunnerConfig::default()
                    };
                    let runner = ClaudeRunner::new(config).map_err(|e| e.to_string())?;
                    (
                        Arc::new(runner),
                        format!("Claude Code CLI ({})", binary.display()),
                    )
                }
                (None, None) => (
                    Arc::new(DelayedRunner {
                        inner: Arc::new(OfflineRunner),
                        delay: options.analysis_delay,
                    }),
                    "offline rules (no model)".to_string(),
                ),
            };
        let monitor = Arc::new(
            SelfMonitor::builder()
                .config(config)
                .log_source(feed.source())
                .runner(runner)
                .tracker(tracker)
                .store(store.clone())
                .template_memory(sqlite)
                .owner("web_host")
                .build()
                .map_err(|e| e.to_string())?,
        );
        let golden = Arc::new(GoldenRepoJobs {
            model: RwLock::new(golden_model),
            last_ran_on: Mutex::new(None),
        });
        let (events, _) = tokio::sync::broadcast::channel(256);
        let queue = NotifyingQueue::new(
            MemoryJobQueue::start(Arc::new(HostJobs {
                monitor: monitor.clone(),
                golden: golden.clone(),
                golden_job_duration: options.golden_job_duration,
                events: events.clone(),
            })),
            events.clone(),
        );
        let service = Arc::new(SelfMonitoringService::new(
            monitor.config_handle(),
            queue.clone() as Arc<dyn JobQueue>,
            store.clone(),
        ));
        let mut background = vec![events::forward_scan_events(&monitor, events.clone())];
        if let Some(period) = options.tick_period {
            background.push(service.clone().spawn_ticker(period));
        }
        if let Some(period) = options.feed_period {
            background.push(feed.clone().spawn_appender(period));
        }
        Ok(Arc::new(HostState {
            monitor,
            service,
            queue,
            events,
            store,
            feed,
            tracker_description,
            runner_description,
            dry_run,
            golden,
            followed_job: Mutex::new(None),
            golden_job: Mutex::new(None),
            options,
            session_key: SessionKey::random(),
            background,
        }))
    }

    /// Writes the current settings to the data dir, so a restart keeps them.
    pub fn persist(&self) -> Result<(), String> {
        let dir = &self.options.data_dir;
        let golden = self
            .golden
            .model
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let host = serde_json::json!({ "golden_model": golden });
        write_atomically(&dir.join(CONFIG_FILE), &self.monitor.config().to_json())?;
        write_atomically(&dir.join(HOST_FILE), &host.to_string())
    }

    /// Queues a golden-repo job on the shared queue, on the golden-repo model.
    pub async fn submit_golden_job(&self) -> Result<JobId, String> {
        let model = self
            .golden
            .model
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let id = self
            .queue
            .submit(JobSpec {
                kind: JobKind::GoldenRepo,
                model,
                trigger: selfmon::ScanTrigger::Manual,
                payload: serde_json::json!({"repo": "alpha"}),
            })
            .await
            .map_err(|e| e.to_string())?;
        *self.golden_job.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.clone());
        let _ = self.events.send(HostEvent::Jobs);
        Ok(id)
    }

    /// The status of a job, `None` when the queue does not know it.
    pub async fn job_status(&self, id: &JobId) -> Option<JobStatus> {
        self.queue.status(id).await.ok().flatten()
    }
}

const CONFIG_FILE: &str = "selfmon-config.json";
const HOST_FILE: &str = "host-settings.json";

/// The saved settings, or `default` and the default golden-repo model when none were saved.
fn load_settings(
    dir: &std::path::Path,
    default: &SelfMonitoringConfig,
) -> Result<(SelfMonitoringConfig, ClaudeModel), String> {
    let read = |name: &str| match std::fs::read_to_string(dir.join(name)) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", dir.join(name).display())),
    };
    let config = match read(CONFIG_FILE)? {
        Some(text) => SelfMonitoringConfig::from_json(&text)
            .and_then(|c| c.validate().map(|()| c))
            .map_err(|e| format!("{}: {e}", dir.join(CONFIG_FILE).display()))?,
        None => default.clone(),
    };
    let golden = match read(HOST_FILE)? {
        Some(text) => {
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("{}: {e}", dir.join(HOST_FILE).display()))?;
            match v.get("golden_model").and_then(|m| m.as_str()) {
                Some(m) => ClaudeModel::parse(m)
                    .map_err(|e| format!("{}: {e}", dir.join(HOST_FILE).display()))?,
                None => ClaudeModel::default(),
            }
        }
        None => ClaudeModel::default(),
    };
    Ok((config, golden))
}

fn write_atomically(path: &std::path::Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The host's job handler: self-monitoring jobs go to selfmon, golden-repo jobs are simulated.
struct HostJobs {
    monitor: Arc<SelfMonitor>,
    golden: Arc<GoldenRepoJobs>,
    golden_job_duration: Duration,
    events: Events,
}

#[async_trait]
impl JobHandler for HostJobs {
    async fn run(&self, job: &JobSpec) -> Result<(), String> {
        // The queue marked the job running before calling here.
        let _ = self.events.send(HostEvent::Jobs);
        match job.kind {
            JobKind::SelfMonitoring => self.monitor.run(job).await,
            JobKind::GoldenRepo => {
                *self
                    .golden
                    .last_ran_on
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(job.model.clone());
                tokio::time::sleep(self.golden_job_duration).await;
                Ok(())
            }
            ref other => Err(format!("this host does not run {other} jobs")),
        }
    }
}

/// Wraps a runner with a fixed delay, standing in for a real model's latency so the page can
/// show a scan running.
struct DelayedRunner {
    inner: Arc<dyn AnalysisRunner>,
    delay: Duration,
}

#[async_trait]
impl AnalysisRunner for DelayedRunner {
    async fn analyze(&self, request: &AnalysisRequest) -> selfmon::Result<Analysis> {
        tokio::time::sleep(self.delay).await;
        self.inner.analyze(request).await
    }

    fn name(&self) -> &str {
        self.inner.name()
    }
}
