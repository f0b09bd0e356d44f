//! Running one subprocess in its own process group with bounded input, bounded output and a
//! deadline, in a private temporary directory.
//!
//! However a run ends (exit, timeout, an output cap exceeded, the caller dropping the future),
//! the whole process group is stopped the same way: `SIGTERM`, a short grace to let the CLI exit
//! on its own, then `SIGKILL`; then what the CLI leaves behind for its own pid
//! (`~/.claude/sessions/<pid>.json`, `/tmp/cc-socks/<pid>.sock`) and the private directory are
//! removed. A dropped future cannot wait, so that sequence runs on a thread of its own;
//! [`Terminations::wait_idle`] waits for every such thread.
//!
//! A process killed outright (`kill -9`, the OOM killer) runs none of that. For that case:
//! - on Linux the child is started with `PR_SET_PDEATHSIG = SIGKILL`, so the CLI (the process that
//!   talks to the model and spends tokens) dies with the thread that started it (tokio starts it
//!   on a runtime thread, which lives as long as the scan does). The signal reaches the direct
//!   child only: processes it started itself (a wrapper script or shim that runs the real CLI
//!   without `exec`, the CLI's own helpers) keep running, re-parented to init, until the next
//!   run's sweep below kills the process group they are still in. A wrapper should therefore
//!   `exec` the CLI, so the CLI is the direct child. (Nothing this process does survives
//!   `kill -9` to do better: a subreaper only adopts orphans of its own live descendants.)
//! - every private directory holds an owner record (`owner.json`: this process's pid and start
//!   time, then the child's pid, start time and the leftover paths), and each new run first
//!   [sweeps](sweep_temp_dir) the temporary folder: a directory whose owner is gone has its child's
//!   process group killed (the members the CLI started, which the death signal does not reach),
//!   the CLI's leftovers removed, and is removed itself.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::error::Error;

/// Everything needed to start the child.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Resolved path of the program.
    pub program: PathBuf,
    /// Arguments, without the program name.
    pub args: Vec<OsString>,
    /// The complete environment (the parent's is not inherited).
    pub env: Vec<(OsString, OsString)>,
    /// Working directory.
    pub cwd: PathBuf,
}

/// Limits for one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Most bytes of stdout kept.
    pub max_stdout_bytes: usize,
    /// Most bytes of stderr kept.
    pub max_stderr_bytes: usize,
    /// How long the group has to exit after `SIGTERM` before it gets `SIGKILL`.
    pub termination_grace: Duration,
}

/// The default [`Limits::termination_grace`].
pub const DEFAULT_TERMINATION_GRACE: Duration = Duration::from_secs(2);

/// Longest wait for the group to vanish after `SIGKILL` before the cleanup goes ahead anyway.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// How often the group is checked while it is being stopped.
const POLL: Duration = Duration::from_millis(20);

/// What a finished child left behind.
#[derive(Debug)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

/// Finds `binary` the way a shell would: a path containing `/` is used as is (made absolute), a
/// bare name is looked up on `path_var`. The result must be an executable regular file.
pub fn resolve_binary(binary: &Path, path_var: Option<&std::ffi::OsStr>) -> Result<PathBuf, Error> {
    let not_found = |source| Error::CliNotFound {
        path: binary.to_path_buf(),
        source,
    };
    if binary.components().count() > 1 || binary.is_absolute() {
        // Made absolute because the child runs in another working directory.
        let absolute = std::path::absolute(binary).map_err(|e| not_found(Some(e)))?;
        return if is_executable(&absolute) {
            Ok(absolute)
        } else {
            Err(not_executable(&absolute).unwrap_or_else(|| not_found(None)))
        };
    }
    let path_var = path_var.ok_or_else(|| not_found(None))?;
    let candidates: Vec<PathBuf> = std::env::split_paths(path_var)
        .map(|dir| dir.join(binary))
        .collect();
    if let Some(found) = candidates.iter().find(|c| is_executable(c)) {
        return Ok(found.clone());
    }
    // Nothing runnable on PATH: a file of that name that cannot be run says more than "not found".
    Err(candidates
        .iter()
        .find_map(|c| not_executable(c))
        .unwrap_or_else(|| not_found(None)))
}

/// Why an existing `path` cannot be run, as the error to report; `None` when nothing is there.
fn not_executable(path: &Path) -> Option<Error> {
    let meta = std::fs::metadata(path).ok()?;
    let reason = if meta.is_dir() {
        "it is a directory; set `binary` to the CLI's executable file".to_string()
    } else {
        "it is not executable by this user; make it executable (`chmod +x`) or point `binary` at \
         the CLI's executable"
            .to_string()
    };
    Some(Error::CliNotExecutable {
        path: path.to_path_buf(),
        reason,
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A private temporary directory (mode 0700) for one run: the child's working directory and the
/// files handed to it (mode 0600). Removed when the run's process group is gone, on every path.
#[derive(Debug)]
pub struct PrivateDir {
    dir: tempfile::TempDir,
}

impl PrivateDir {
    /// Creates the directory and its `work` subdirectory (both 0700) in the system's temporary
    /// folder, with an owner record naming this process (see [`sweep_orphans`]).
    pub fn new() -> Result<Self, Error> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let dir = tempfile::Builder::new()
            .prefix("selfmon-claude-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .map_err(|e| Error::Io {
                action: "create the temporary directory",
                source: e,
            })?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir.path().join("work"))
            .map_err(|e| Error::Io {
                action: "create the working directory",
                source: e,
            })?;
        let dir = PrivateDir { dir };
        dir.write_owner(&Owner::this_process())?;
        Ok(dir)
    }

    /// Replaces the owner record (written to a new file, then renamed over the old one).
    fn write_owner(&self, owner: &Owner) -> Result<(), Error> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| Error::Io {
            action: "write the owner record into the temporary directory",
            source,
        };
        let json = serde_json::to_vec(owner).map_err(|e| io(std::io::Error::other(e)))?;
        let tmp = self.dir.path().join(format!("{OWNER_FILE}.new"));
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        file.write_all(&json).map_err(io)?;
        std::fs::rename(&tmp, self.dir.path().join(OWNER_FILE)).map_err(io)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The child's working directory inside it.
    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Writes `contents` to a new file `name` (mode 0600, never following a planted link).
    pub fn write_file(&self, name: &str, contents: &[u8]) -> Result<PathBuf, Error> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir.path().join(name);
        let io = |source| Error::Io {
            action: "write a file into the temporary directory",
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        file.write_all(contents).map_err(io)?;
        Ok(path)
    }
}

/// Counts the process groups still being stopped in the background, so a caller can wait until
/// none remains ([`wait_idle`](Self::wait_idle)). Cheap to share.
#[derive(Debug, Default)]
pub struct Terminations {
    active: AtomicUsize,
    done: tokio::sync::Notify,
}

impl Terminations {
    /// A tracker with nothing in flight.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// How many groups are being stopped right now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Completes when no group is being stopped (at once if none is).
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.active() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Runs the child to completion in `dir`, feeding it `stdin` and collecting its output.
///
/// The child leads a new process group. Whatever happens (normal exit, timeout, an output cap
/// exceeded, the caller dropping this future) the whole group is stopped (`SIGTERM`, then
/// `SIGKILL` after `limits.termination_grace`), the CLI's leftovers for its pid and `dir` are
/// removed, and the child is reaped; when the future is dropped that happens on a background
/// thread that `terminations` counts.
pub async fn run(
    invocation: &Invocation,
    stdin: &[u8],
    limits: Limits,
    dir: PrivateDir,
    terminations: &Arc<Terminations>,
) -> Result<Output, Error> {
    let mut command = Command::new(&invocation.program);
    command
        .args(&invocation.args)
        .env_clear()
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&invocation.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // The guard stops the group gracefully; tokio reaps a dropped child in the background.
        .kill_on_drop(false);
    die_with_parent(&mut command);
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::CliNotFound {
            path: invocation.program.clone(),
            source: Some(e),
        },
        std::io::ErrorKind::PermissionDenied => Error::CliNotExecutable {
            path: invocation.program.clone(),
            reason: format!(
                "starting it was refused ({e}); check its mode and that its folder and its \
                 interpreter (`#!` line) may be run by this user"
            ),
        },
        _ => Error::Io {
            action: "start the process",
            source: e,
        },
    })?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    if let Some(pgid) = pgid {
        let mut owner = Owner::this_process();
        owner.child = Some(pgid);
        owner.child_start = selfmon_core::lease::process_start(pgid.unsigned_abs());
        owner.leftovers = leftovers(pgid, &invocation.env);
        if let Err(e) = dir.write_owner(&owner) {
            // Only the clean-up after a `kill -9` of this process depends on it.
            tracing::warn!(error = %e, "could not record the claude cli's pid in its directory");
        }
    }
    let mut guard = GroupGuard {
        stop: pgid.map(|pgid| Stop {
            pgid,
            grace: limits.termination_grace,
            leftovers: leftovers(pgid, &invocation.env),
            dir: Some(dir),
            terminations: terminations.clone(),
        }),
    };
    tracing::debug!(pid = ?pgid, program = %invocation.program.display(), "claude cli started");

    let (Some(mut child_in), Some(child_out), Some(child_err)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        guard.stop_now().await;
        let _ = child.wait().await;
        return Err(Error::Io {
            action: "open the pipes",
            source: std::io::Error::other("a standard stream was not piped"),
        });
    };

    let write_stdin = async move {
        // A child that exits without reading all of stdin closes the pipe; its exit status and
        // output say what happened, so a broken pipe here is not an error of its own.
        if let Err(e) = child_in.write_all(stdin).await {
            tracing::debug!(error = %e, "claude cli did not read all of stdin");
        }
        drop(child_in);
        Ok::<(), Error>(())
    };
    let read_stdout = read_capped(child_out, limits.max_stdout_bytes, "stdout");
    let read_stderr = read_capped(child_err, limits.max_stderr_bytes, "stderr");
    let wait = async {
        let status = child.wait().await.map_err(|e| Error::Io {
            action: "wait for the process",
            source: e,
        })?;
        // Members of the group left behind (helpers holding our pipes open) go with the leader.
        guard.stop_now().await;
        Ok::<ExitStatus, Error>(status)
    };
    let all = async { tokio::try_join!(wait, read_stdout, read_stderr, write_stdin) };

    let outcome = tokio::time::timeout(limits.timeout, all).await;
    let result = match outcome {
        Ok(Ok((status, stdout, stderr, ()))) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::Timeout {
            timeout: limits.timeout,
        }),
    };
    // On success the group is stopped already; on failure stop it now, then reap the leader.
    guard.stop_now().await;
    if result.is_err() {
        if let Err(e) = child.wait().await {
            tracing::warn!(error = %e, "could not reap the claude cli after stopping it");
        }
    }
    result
}

async fn read_capped(
    mut stream: impl AsyncRead + Unpin,
    cap: usize,
    name: &'static str,
) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| Error::Io {
            action: "read the output",
            source: e,
        })?;
        if n == 0 {
            return Ok(buf);
        }
        if buf.len() + n > cap {
            return Err(Error::OutputTooLarge {
                stream: name,
                limit: cap,
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// What the Claude CLI leaves behind when it is killed, for the pid `pid`: its session file and
/// its socket. Only these exact paths of our own child, never another process's.
fn leftovers(pid: i32, env: &[(std::ffi::OsString, std::ffi::OsString)]) -> Vec<PathBuf> {
    let get = |name: &str| {
        env.iter()
            .find(|(k, _)| k.as_os_str() == std::ffi::OsStr::new(name))
            .map(|(_, v)| PathBuf::from(v))
    };
    let mut paths = Vec::new();
    let session = format!("{pid}.json");
    if let Some(home) = get("HOME") {
        paths.push(home.join(".claude").join("sessions").join(&session));
    }
    if let Some(config_dir) = get("CLAUDE_CONFIG_DIR") {
        paths.push(config_dir.join("sessions").join(&session));
    }
    let tmp = get("TMPDIR").unwrap_or_else(|| PathBuf::from("/tmp"));
    paths.push(tmp.join("cc-socks").join(format!("{pid}.sock")));
    paths
}

/// Stops the child's process group exactly once: awaited on the normal paths, in the background
/// when the future is dropped.
struct GroupGuard {
    stop: Option<Stop>,
}

impl GroupGuard {
    /// Stops the group and cleans up, waiting for it (on a blocking thread).
    async fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.terminations.active.fetch_add(1, Ordering::SeqCst);
            let terminations = stop.terminations.clone();
            let joined = tokio::task::spawn_blocking(move || stop.run()).await;
            if let Err(e) = joined {
                tracing::warn!(error = %e, "stopping the claude cli's process group failed");
                finished(&terminations);
            }
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.terminations.active.fetch_add(1, Ordering::SeqCst);
            let terminations = stop.terminations.clone();
            let spawned = std::thread::Builder::new()
                .name("selfmon-claude-stop".into())
                .spawn(move || stop.run());
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a thread to stop the claude cli; killing it at once");
                finished(&terminations);
            }
        }
    }
}

fn finished(terminations: &Terminations) {
    terminations.active.fetch_sub(1, Ordering::SeqCst);
    terminations.done.notify_waiters();
}

/// Everything needed to stop one process group and clean up after it.
struct Stop {
    pgid: i32,
    grace: Duration,
    leftovers: Vec<PathBuf>,
    dir: Option<PrivateDir>,
    terminations: Arc<Terminations>,
}

impl Stop {
    /// SIGTERM, grace, SIGKILL, wait for the group to vanish, remove the leftovers and the
    /// private directory. Blocking; counted in `terminations` (the caller incremented it).
    fn run(mut self) {
        if group_alive(self.pgid) {
            signal_group(self.pgid, libc::SIGTERM);
            if !wait_gone(self.pgid, self.grace) {
                tracing::info!(
                    pgid = self.pgid,
                    grace_ms = self.grace.as_millis() as u64,
                    "claude cli did not exit after SIGTERM; killing its process group"
                );
                signal_group(self.pgid, libc::SIGKILL);
                if !wait_gone(self.pgid, KILL_WAIT) {
                    tracing::warn!(
                        pgid = self.pgid,
                        "claude cli's process group survived SIGKILL"
                    );
                }
            }
        }
        // Anything written after this moment belongs to a new process that reused the pid.
        let gone_at = SystemTime::now();
        for path in &self.leftovers {
            remove_leftover(path, gone_at);
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(e) = dir.dir.close() {
                tracing::warn!(error = %e, dir = %path.display(), "could not remove the claude cli's temporary directory");
            }
        }
        finished(&self.terminations);
    }
}

/// Removes a leftover file of our child unless it is a directory or was written after `gone_at`.
fn remove_leftover(path: &Path, gone_at: SystemTime) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() || meta.modified().is_ok_and(|m| m > gone_at) {
        return;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {
            tracing::debug!(path = %path.display(), "removed a file the claude cli left behind")
        }
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "could not remove a file the claude cli left behind")
        }
    }
}

/// Name of the owner record in a private directory.
const OWNER_FILE: &str = "owner.json";

/// Prefix of every private directory's name.
const DIR_PREFIX: &str = "selfmon-claude-";

/// A private directory without an owner record (made by an older version, or its owner killed
/// between creating it and writing the record) is removed once it is this old.
const UNOWNED_MAX_AGE: Duration = Duration::from_secs(3600);

/// Who owns a private directory: the process running the CLI and, once started, the CLI.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Owner {
    /// The owning process (selfmon, or the host embedding it).
    pid: u32,
    /// Its start identity ([`selfmon_core::lease::process_start`]), so a reused pid is not taken
    /// for the owner.
    start: Option<String>,
    /// The CLI's pid, which is also its process group id.
    #[serde(default)]
    child: Option<i32>,
    /// The CLI's start identity.
    #[serde(default)]
    child_start: Option<String>,
    /// The files the CLI leaves for its pid when it is killed.
    #[serde(default)]
    leftovers: Vec<PathBuf>,
}

impl Owner {
    fn this_process() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start: selfmon_core::lease::process_start(pid),
            child: None,
            child_start: None,
            leftovers: Vec::new(),
        }
    }

    /// Whether the owning process still runs (the same process, not a reuse of its pid).
    fn alive(&self) -> bool {
        match (&self.start, selfmon_core::lease::process_start(self.pid)) {
            (Some(recorded), Some(now)) => *recorded == now,
            (Some(_), None) => false,
            // No start identity was recorded (no procfs): whether some process has the pid.
            // SAFETY: signal 0 only checks for existence.
            (None, _) => unsafe { libc::kill(self.pid as libc::pid_t, 0) == 0 },
        }
    }
}

/// On Linux, makes the child receive `SIGKILL` when the thread that starts it exits (above all
/// when this process is killed), and exit at once if this process is already gone by the time it
/// starts. Elsewhere nothing: [`sweep_orphans`] still cleans up on the next run.
fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs in the forked child before exec and only makes the
        // async-signal-safe system calls prctl(2) and getppid(2); it allocates nothing (an
        // allocation after fork in a threaded process could deadlock).
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    // This process is gone already (no allocation here: this runs after fork).
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// Cleans up after runs whose owning process was killed before it could (see the module docs):
/// for each private directory in `base` that belongs to this user and whose owner no longer runs,
/// kills what is left of its CLI's process group, removes the CLI's leftovers and the directory.
/// A directory without an owner record is removed once it is [an hour](UNOWNED_MAX_AGE) old.
/// Directories of live owners (this process's own runs included) are never touched. Returns how
/// many directories were removed; failures are logged, never returned (this is housekeeping).
pub fn sweep_orphans(base: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return 0;
    };
    // SAFETY: geteuid(2) cannot fail and has no preconditions.
    let me = unsafe { libc::geteuid() };
    let mut removed = 0;
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let owner = std::fs::read(path.join(OWNER_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Owner>(&bytes).ok());
        match owner {
            Some(owner) if owner.alive() => continue,
            Some(owner) => stop_orphaned_child(&owner),
            None => {
                let old = meta
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age >= UNOWNED_MAX_AGE);
                if !old {
                    continue;
                }
            }
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::debug!(dir = %path.display(), "removed the directory of a killed claude cli run");
                removed += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(error = %e, dir = %path.display(), "could not remove the directory of a killed claude cli run")
            }
        }
    }
    removed
}

/// [`sweep_orphans`] of the system's temporary folder on a blocking thread (it may wait for a
/// killed process group to vanish), logging what it removed.
pub async fn sweep_temp_dir() {
    let swept = tokio::task::spawn_blocking(|| sweep_orphans(&std::env::temp_dir())).await;
    match swept {
        Ok(0) => {}
        Ok(swept) => tracing::info!(
            swept,
            "removed what claude cli runs of killed processes left behind"
        ),
        Err(e) => tracing::warn!(error = %e, "sweeping the temporary folder failed"),
    }
}

/// Kills what remains of a dead owner's CLI process group and removes the CLI's leftovers.
fn stop_orphaned_child(owner: &Owner) {
    let Some(child) = owner.child.filter(|&c| c > 1) else {
        return;
    };
    let leader = selfmon_core::lease::process_start(child.unsigned_abs());
    // The group is the recorded one when its leader is the recorded CLI, or when the leader is
    // gone but members remain (a pid in use as a process group id is not reused).
    let ours = match (&leader, &owner.child_start) {
        (None, _) => true,
        (Some(now), Some(recorded)) => now == recorded,
        (Some(_), None) => false,
    };
    if ours && group_alive(child) {
        tracing::info!(
            pgid = child,
            owner = owner.pid,
            "killing a claude cli process group whose owner was killed"
        );
        signal_group(child, libc::SIGKILL);
        if !wait_gone(child, KILL_WAIT) {
            tracing::warn!(pgid = child, "a claude cli process group survived SIGKILL");
        }
    }
    // The leftovers are named by the CLI's pid: only while no other process runs with that pid
    // (a zombie is our dead CLI: its pid is not reused before it is reaped).
    if !pid_running(child) {
        let now = SystemTime::now();
        for path in &owner.leftovers {
            remove_leftover(path, now);
        }
    }
}

fn signal_group(pgid: i32, signal: i32) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions. The group id is our child's pid; it is
    // only signalled while the group has live members, so it cannot have been reused.
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc != 0 {
        tracing::trace!(pgid, signal, "process group already gone");
    }
}

/// Waits up to `limit` for the group to have no live member; whether it has none.
fn wait_gone(pgid: i32, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        if !group_alive(pgid) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Whether any process of group `pgid` still runs. Zombies (exited, awaiting their parent) do not
/// count: they hold no resources and cannot be signalled away.
fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        // No procfs: ask the kernel; a zombie member makes this answer yes until it is reaped.
        // SAFETY: signal 0 only checks for existence.
        return unsafe { libc::kill(-pgid, 0) } == 0;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| parse_state_and_pgrp(&stat))
            .is_some_and(|(state, pgrp)| pgrp == pgid && !matches!(state, 'Z' | 'X'))
    })
}

/// Whether process `pid` exists and has not exited (a zombie has).
fn pid_running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            parse_state_and_pgrp(&stat).is_some_and(|(state, _)| !matches!(state, 'Z' | 'X'))
        }
        // No procfs entry: gone, or no procfs at all (then ask the kernel).
        // SAFETY: signal 0 only checks for existence.
        Err(_) => std::fs::metadata("/proc/self").is_err() && unsafe { libc::kill(pid, 0) == 0 },
    }
}

/// The state and process group fields of a `/proc/<pid>/stat` line (after the `(comm)` field,
/// which may itself contain spaces and parentheses).
fn parse_state_and_pgrp(stat: &str) -> Option<(char, i32)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_line_is_parsed_past_a_command_name_with_parentheses() {
        let stat = "4242 (my (odd) cmd) S 1 4240 4240 0 -1 4194560 100";
        assert_eq!(parse_state_and_pgrp(stat), Some(('S', 4240)));
        assert_eq!(parse_state_and_pgrp("garbage"), None);
    }

    /// A private directory in `base` with `owner` recorded.
    fn planted_dir(base: &Path, name: &str, owner: Option<&Owner>) -> PathBuf {
        let dir = base.join(format!("{DIR_PREFIX}{name}"));
        std::fs::create_dir_all(dir.join("work")).unwrap();
        if let Some(owner) = owner {
            std::fs::write(dir.join(OWNER_FILE), serde_json::to_vec(owner).unwrap()).unwrap();
        }
        dir
    }

    #[test]
    fn a_directory_whose_owner_was_killed_is_swept_with_its_clis_group_and_leftovers() {
        use std::os::unix::process::CommandExt;
        let base = tempfile::tempdir().unwrap();
        // What a killed owner's CLI leaves: a process group with a grandchild, a session file.
        let mut cli = std::process::Command::new("sh")
            .args(["-c", "sleep 1000 & echo $!; wait"])
            .process_group(0)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(cli.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let grandchild: i32 = line.trim().parse().unwrap();
        let cli_pid = cli.id() as i32;
        let reaper = std::thread::spawn(move || cli.wait());
        let session = base.path().join(format!("{cli_pid}.json"));
        std::fs::write(&session, b"{\"status\":\"busy\"}").unwrap();
        // The owner's pid now belongs to another process (this one): a different start identity.
        let mut dead_owner = Owner::this_process();
        dead_owner.start = Some("boot=x;pidns=y;start=1".into());
        dead_owner.child = Some(cli_pid);
        dead_owner.child_start = selfmon_core::lease::process_start(cli_pid as u32);
        dead_owner.leftovers = vec![session.clone()];
        assert!(!dead_owner.alive(), "a reused pid is not the owner");
        let orphan = planted_dir(base.path(), "orphan", Some(&dead_owner));
        let live = planted_dir(base.path(), "live", Some(&Owner::this_process()));
        let fresh_unowned = planted_dir(base.path(), "unowned", None);
        let other = base.path().join("not-ours");
        std::fs::create_dir(&other).unwrap();

        assert_eq!(sweep_orphans(base.path()), 1);
        assert!(!orphan.exists(), "the dead owner's directory is removed");
        assert!(live.exists(), "a live owner's directory is kept");
        assert!(
            fresh_unowned.exists(),
            "a fresh directory without a record is kept"
        );
        assert!(other.exists(), "other names are not touched");
        assert!(!session.exists(), "the CLI's session file is removed");
        assert!(!group_alive(cli_pid), "the CLI's process group is killed");
        assert!(!pid_running(grandchild), "the grandchild is killed");
        reaper.join().unwrap().unwrap();
    }

    #[test]
    fn a_directory_without_an_owner_record_is_removed_once_it_is_an_hour_old() {
        let base = tempfile::tempdir().unwrap();
        let old = planted_dir(base.path(), "old", None);
        let hours_ago = SystemTime::now() - UNOWNED_MAX_AGE - Duration::from_secs(60);
        std::fs::File::open(&old)
            .unwrap()
            .set_modified(hours_ago)
            .unwrap();
        let fresh = planted_dir(base.path(), "fresh", None);
        assert_eq!(sweep_orphans(base.path()), 1);
        assert!(!old.exists());
        assert!(fresh.exists());
        assert_eq!(
            sweep_orphans(&base.path().join("absent")),
            0,
            "a missing folder is no error"
        );
    }

    #[test]
    fn a_new_private_dir_records_this_process_as_its_owner() {
        let dir = PrivateDir::new().unwrap();
        let owner: Owner =
            serde_json::from_slice(&std::fs::read(dir.path().join(OWNER_FILE)).unwrap()).unwrap();
        assert_eq!(owner, Owner::this_process());
        assert!(owner.alive());
    }

    #[test]
    fn the_private_dir_is_0700_and_its_files_0600_and_a_planted_file_is_not_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = PrivateDir::new().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o700);
        assert_eq!(mode(&dir.work_dir()), 0o700);
        let file = dir.write_file("instructions.md", b"x").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert!(dir.write_file("instructions.md", b"y").is_err());
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn only_the_leftovers_of_our_own_pid_are_named() {
        let env = vec![
            ("HOME".into(), "/home/u".into()),
            ("TMPDIR".into(), "/var/tmp".into()),
        ];
        assert_eq!(
            leftovers(321, &env),
            vec![
                PathBuf::from("/home/u/.claude/sessions/321.json"),
                PathBuf::from("/var/tmp/cc-socks/321.sock"),
            ]
        );
        assert_eq!(
            leftovers(7, &[]),
            vec![PathBuf::from("/tmp/cc-socks/7.sock")]
        );
    }

    #[test]
    fn a_leftover_written_after_the_group_was_gone_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("1.json");
        std::fs::write(&old, "{}").unwrap();
        remove_leftover(&old, SystemTime::now() + Duration::from_secs(1));
        assert!(!old.exists());
        let new = dir.path().join("2.json");
        std::fs::write(&new, "{}").unwrap();
        remove_leftover(&new, SystemTime::now() - Duration::from_secs(60));
        assert!(
            new.exists(),
            "a file newer than the group's end belongs to someone else"
        );
        let sub = dir.path().join("3.json");
        std::fs::create_dir(&sub).unwrap();
        remove_leftover(&sub, SystemTime::now() + Duration::from_secs(1));
        assert!(sub.exists());
    }

    #[test]
    fn a_bare_name_is_found_on_the_given_path_only() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("fake-cli");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        assert_eq!(
            resolve_binary(Path::new("fake-cli"), Some(&path)).unwrap(),
            exe
        );
        assert!(matches!(
            resolve_binary(
                Path::new("fake-cli"),
                Some(std::ffi::OsStr::new("/nonexistent"))
            ),
            Err(Error::CliNotFound { .. })
        ));
        let relative = Path::new("tests/fixtures/fake-claude.sh");
        let resolved = resolve_binary(relative, None).unwrap();
        assert!(
            resolved.is_absolute() && resolved.ends_with(relative),
            "{resolved:?}"
        );
        let not_exec = dir.path().join("plain");
        std::fs::write(&not_exec, "").unwrap();
        let e = resolve_binary(&not_exec, None).unwrap_err();
        assert!(
            matches!(e, Error::CliNotExecutable { .. }) && e.to_string().contains("chmod +x"),
            "an existing file that cannot be run is not \"not found\": {e}"
        );
        assert!(!e.is_retryable());
        let on_path = std::env::join_paths([dir.path()]).unwrap();
        assert!(matches!(
            resolve_binary(Path::new("plain"), Some(&on_path)),
            Err(Error::CliNotExecutable { .. })
        ));
        let e = resolve_binary(dir.path(), None).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        assert!(matches!(
            resolve_binary(&dir.path().join("absent"), None),
            Err(Error::CliNotFound { .. })
        ));
    }
}
