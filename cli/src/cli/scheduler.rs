//! `selfmon serve-scheduler`: the cadence loop in the foreground.

use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use tokio::signal::unix::{signal, SignalKind};

use selfmon::testing::MemoryJobQueue;
use selfmon::{
    JobId, JobKind, JobQueue, JobStatus, SelfMonitoringService, Submission, TickOutcome,
};

use super::args::SchedulerArgs;
use super::config_file::CliConfig;
use super::failure::Failure;

fn mtime(path: Option<&Path>) -> Option<SystemTime> {
    path.and_then(|p| std::fs::metadata(p).ok())
        .and_then(|m| m.modified().ok())
}

/// One line on stderr (journald keeps it), redacted: a failed scan's error can quote a log
/// record or the model CLI's stderr.
fn log(line: &str) {
    let line = selfmon::redact::Redactor::shared().redact(line);
    eprintln!(
        "{} selfmon: {}",
        Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
        super::terminal::safe(&line)
    );
}

/// Runs until SIGTERM or SIGINT, then cancels the scan in flight (recorded as failed,
/// "interrupted"; cursor kept; lease released; runner process group stopped) and waits for it.
/// Exits 0 when no scan was in flight, 130 / 143 when one was interrupted.
pub async fn run(args: &SchedulerArgs) -> Result<(), Failure> {
    let mut config = CliConfig::load(&args.config)?;
    config.check()?;
    let sig = |k: SignalKind| {
        signal(k).map_err(|e| Failure::Usage(format!("cannot install signal handler: {e}")))
    };
    let mut term = sig(SignalKind::terminate())?;
    let mut int = sig(SignalKind::interrupt())?;
    let mut usr1 = sig(SignalKind::user_defined1())?;
    // SIGHUP, as for any daemon: reload the configuration now (it is also reloaded when the
    // file changes); it does not stop the scheduler.
    let mut hup = sig(SignalKind::hangup())?;
    let tick_every = args.tick_secs.max(1);
    // A daemon started before the server wrote its first log line (boot order, a fresh
    // install) waits for the logs.db instead of dying: it is looked for again at every tick.
    let mut warned_missing: Option<std::path::PathBuf> = None;
    let mut config_seen = mtime(Some(&args.config));
    while let Some(missing) = config.missing_log_file().map(Path::to_path_buf) {
        if warned_missing.as_ref() != Some(&missing) {
            log(&format!(
                "warning: log file {} does not exist yet (the server has not logged anything, or \"logs.path\" is wrong); no scan until it does: looking again every {tick_every} s",
                missing.display()
            ));
            warned_missing = Some(missing.clone());
        }
        let stopped = "stopped (no scan ran: the log file never appeared)";
        tokio::select! {
            _ = term.recv() => { log(stopped); return Ok(()); }
            _ = int.recv() => { log(stopped); return Ok(()); }
            _ = usr1.recv() => log(&format!(
                "run-now ignored: log file {} does not exist yet",
                missing.display()
            )),
            _ = hup.recv() => config_seen = None,
            _ = tokio::time::sleep(Duration::from_secs(tick_every)) => {}
        }
        // An edit may point "logs.path" elsewhere.
        let c = mtime(Some(&args.config));
        if c != config_seen {
            config_seen = c;
            match CliConfig::load(&args.config).and_then(|c| c.check().map(|_| c)) {
                Ok(c) => config = c,
                Err(e) => log(&format!("configuration change ignored: {e}")),
            }
        }
    }
    if warned_missing.is_some() {
        log("log file found: scheduling starts");
    }
    let config = config;
    // Likewise for a database that cannot be reached yet (a cluster node started before
    // PostgreSQL, a failover during a restart): the adapters are built again at every tick.
    let mut unreachable_warned = false;
    let built = loop {
        match config.build(false).await {
            Ok(built) => break built,
            Err(e) if e.is_transient() => {
                if !unreachable_warned {
                    log(&format!(
                        "warning: {e}; no scan until it can be opened: trying again every {tick_every} s"
                    ));
                    unreachable_warned = true;
                }
                let stopped = "stopped (no scan ran: the database never became reachable)";
                tokio::select! {
                    _ = term.recv() => { log(stopped); return Ok(()); }
                    _ = int.recv() => { log(stopped); return Ok(()); }
                    _ = usr1.recv() => log("run-now ignored: the database cannot be reached yet"),
                    _ = hup.recv() => {}
                    _ = tokio::time::sleep(Duration::from_secs(tick_every)) => {}
                }
            }
            Err(e) => return Err(e),
        }
    };
    if unreachable_warned {
        log("database reachable: scheduling starts");
    }
    let queue = MemoryJobQueue::start(built.monitor.clone());
    let service = SelfMonitoringService::new(
        built.monitor.config_handle(),
        queue.clone(),
        built.store.clone(),
    );
    let mut second = tokio::time::interval(Duration::from_secs(1));
    let mut seconds = 0u64;
    let mut trigger_seen = mtime(args.trigger_file.as_deref());
    let mut watched: Vec<JobId> = Vec::new();
    let mut warned_future: Option<selfmon::ScanId> = None;
    log(&format!(
        "scheduler started (enabled: {}, cadence {} min); SIGUSR1{} runs a scan now",
        config.monitoring.enabled,
        config.monitoring.cadence_minutes,
        args.trigger_file
            .as_ref()
            .map_or(String::new(), |p| format!(" or touching {}", p.display()))
    ));
    let mut run_now = false;
    let stopped_by = loop {
        tokio::select! {
            _ = term.recv() => break super::signals::SIGTERM,
            _ = int.recv() => break super::signals::SIGINT,
            _ = usr1.recv() => run_now = true,
            _ = hup.recv() => {
                config_seen = mtime(Some(&args.config));
                reload(&args.config, &config, &built.monitor, "SIGHUP: ");
            }
            _ = second.tick() => {
                seconds += 1;
                let t = mtime(args.trigger_file.as_deref());
                if t.is_some() && t != trigger_seen {
                    trigger_seen = t;
                    run_now = true;
                }
                let c = mtime(Some(&args.config));
                if c != config_seen {
                    config_seen = c;
                    reload(&args.config, &config, &built.monitor, "");
                }
                // A run-now request still waiting for its scan is followed up every second.
                if seconds % tick_every == 1 || tick_every == 1 || service.pending_run_now().is_some() {
                    let now = Utc::now();
                    warn_of_future_scan(&service, now, &mut warned_future).await;
                    match service.tick(now).await {
                        Ok(TickOutcome::Due(Submission::Submitted { job_id })) => {
                            log(&format!("scheduled scan queued ({job_id})"));
                            watched.push(job_id);
                        }
                        Ok(TickOutcome::RunNow(Submission::Submitted { job_id })) => {
                            log(&format!("manual scan queued again: no scan has started since it was asked for ({job_id})"));
                            watched.push(job_id);
                        }
                        Ok(_) => {}
                        Err(e) => log(&format!("tick failed: {e}")),
                    }
                }
                report_finished(queue.as_ref(), &mut watched).await;
            }
        }
        if run_now {
            run_now = false;
            match service.run_now().await {
                Ok(Submission::Submitted { job_id }) => {
                    log(&format!("manual scan queued ({job_id})"));
                    watched.push(job_id);
                }
                Ok(Submission::AlreadyActive {
                    job_id,
                    status: JobStatus::Queued,
                }) => log(&format!(
                    "a scan is already queued ({job_id}); it answers this request too"
                )),
                Ok(Submission::AlreadyActive { job_id, status }) => log(&format!(
                    "a scan is already {} ({job_id}); another runs after it",
                    status.as_str()
                )),
                Err(e) => log(&format!("run-now failed: {e}")),
            }
        }
    };
    // Queued scans are cancelled at once; the running one stops its runner and records itself.
    built.monitor.shutdown();
    let mut interrupted = false;
    while let Ok(Some((id, status))) = queue.active_job(&JobKind::SelfMonitoring).await {
        let running = status == JobStatus::Running;
        if running {
            log("stopping: interrupting the scan in flight");
        }
        // A scan that finished on its own just before the signal is no interruption.
        let ended = queue.wait(&id).await;
        interrupted |= running && matches!(ended, Some(JobStatus::Failed { .. }));
    }
    report_finished(queue.as_ref(), &mut watched).await;
    log("stopped");
    if interrupted {
        return Err(super::signals::Interrupts::failure(
            stopped_by,
            "the scan in flight was recorded as failed; the next scan reads the same records",
        ));
    }
    Ok(())
}

/// Loads the configuration file again and applies what the running engine can change (the
/// monitoring settings, from the next scan on); a file that does not load or check is ignored,
/// saying why. The adapters were built from `running` at start: changes to their sections are
/// named as needing a restart, not silently ignored.
fn reload(
    path: &std::path::Path,
    running: &CliConfig,
    monitor: &selfmon::engine::SelfMonitor,
    why: &str,
) {
    match CliConfig::load(path).and_then(|c| c.check().map(|_| c)) {
        Ok(c) => match monitor.set_config(c.monitoring.clone()) {
            Ok(()) => {
                let pending = needs_restart(running, &c);
                let rest = if pending.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; NOT applied until serve-scheduler is restarted: {} (the log source, state store, runner and tracker keep the settings they started with)",
                        pending.join(", ")
                    )
                };
                log(&format!(
                    "{why}configuration reloaded (enabled: {}, cadence {} min){rest}",
                    c.monitoring.enabled, c.monitoring.cadence_minutes
                ));
            }
            Err(e) => log(&format!("{why}configuration change ignored: {e}")),
        },
        Err(e) => log(&format!("{why}configuration change ignored: {e}")),
    }
}

/// The settings of `new` that differ from those the adapters were built from (`running`): the
/// `logs`, `state`, `runner` and `tracker` sections, and `page_size` (the log source's page).
fn needs_restart(running: &CliConfig, new: &CliConfig) -> Vec<&'static str> {
    fn differs<T: serde::Serialize>(a: &T, b: &T) -> bool {
        serde_json::to_value(a).ok() != serde_json::to_value(b).ok()
    }
    let mut out = Vec::new();
    if differs(&running.logs, &new.logs) {
        out.push("logs");
    }
    if running.monitoring.page_size != new.monitoring.page_size {
        out.push("page_size");
    }
    if differs(&running.state, &new.state) {
        out.push("state");
    }
    if differs(&running.runner, &new.runner) {
        out.push("runner");
    }
    if differs(&running.tracker, &new.tracker) {
        out.push("tracker");
    }
    out
}

/// Says once per scan that the schedule ignores a scan recorded in the future (a clock that ran
/// ahead and was set back): otherwise the scheduler would wait for that time without a word.
async fn warn_of_future_scan(
    service: &SelfMonitoringService,
    now: chrono::DateTime<Utc>,
    warned: &mut Option<selfmon::ScanId>,
) {
    let Ok(Some(next)) = service.next_scan(now).await else {
        return;
    };
    let Some(f) = next.ignored_future_scan else {
        return;
    };
    if warned.as_ref() == Some(&f.scan_id) {
        return;
    }
    log(&format!(
        "warning: scan {} is recorded as started at {}, after now ({}): the clock that wrote it ran ahead or this one was set back; the schedule ignores it (treats it as not yet counted) and counts from the scans before it, next scan due {}",
        f.scan_id.as_str(),
        f.started_at.format("%Y-%m-%dT%H:%M:%SZ"),
        now.format("%Y-%m-%dT%H:%M:%SZ"),
        next.at.format("%Y-%m-%dT%H:%M:%SZ"),
    ));
    *warned = Some(f.scan_id);
}

async fn report_finished(queue: &MemoryJobQueue, watched: &mut Vec<JobId>) {
    let mut still = Vec::new();
    for id in watched.drain(..) {
        match queue.status(&id).await {
            Ok(Some(JobStatus::Succeeded)) => log(&format!("scan {id} succeeded")),
            Ok(Some(JobStatus::Failed { error })) => log(&format!("scan {id} failed: {error}")),
            _ => still.push(id),
        }
    }
    *watched = still;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::config_file::{default_config_text, strip_comments};

    fn parse(text: &str) -> CliConfig {
        serde_json::from_str(&strip_comments(text)).unwrap()
    }

    #[test]
    fn a_reload_names_every_changed_section_the_running_adapters_do_not_take() {
        let base = default_config_text();
        let running = parse(&base);
        assert!(needs_restart(&running, &parse(&base)).is_empty());
        let monitoring_only = base.replace(r#""cadence_minutes": 60"#, r#""cadence_minutes": 5"#);
        assert!(
            needs_restart(&running, &parse(&monitoring_only)).is_empty(),
            "the monitoring settings apply on reload"
        );
        let changed = base
            .replace(r#""min_level": "WARNING""#, r#""min_level": "ERROR""#)
            .replace(r#""dir": "selfmon-issues""#, r#""dir": "other-issues""#)
            .replace(
                r#""runner": { "kind": "offline" }"#,
                r#""runner": { "kind": "claude" }"#,
            )
            .replace(r#""path": "selfmon-state.db""#, r#""path": "other.db""#)
            .replace("{\n", "{\n  \"page_size\": 77,\n");
        assert_eq!(
            needs_restart(&running, &parse(&changed)),
            ["logs", "page_size", "state", "runner", "tracker"]
        );
    }
}
