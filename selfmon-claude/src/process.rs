//! Running one subprocess in its own process group with bounded input, bounded output and a
//! deadline. On timeout or overflow the whole group is killed and the child reaped.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

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
}

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
            Err(not_found(None))
        };
    }
    let path_var = path_var.ok_or_else(|| not_found(None))?;
    std::env::split_paths(path_var)
        .map(|dir| dir.join(binary))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| not_found(None))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs the child to completion, feeding it `stdin` and collecting its output.
///
/// The child leads a new process group. Whatever happens (normal exit, timeout, an output cap
/// exceeded, the caller dropping this future) the whole group is sent `SIGKILL` and the child is
/// reaped, so no member of the group outlives the call.
pub async fn run(invocation: &Invocation, stdin: &[u8], limits: Limits) -> Result<Output, Error> {
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
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => Error::CliNotFound {
            path: invocation.program.clone(),
            source: Some(e),
        },
        _ => Error::Io {
            action: "start the process",
            source: e,
        },
    })?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    let mut guard = GroupGuard(pgid);
    tracing::debug!(pid = ?pgid, program = %invocation.program.display(), "claude cli started");

    let (Some(mut child_in), Some(child_out), Some(child_err)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
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
        guard.kill();
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
    if result.is_ok() {
        // Already killed right after the leader exited; don't signal a group id that may be gone.
        guard.0 = None;
    } else {
        guard.kill();
        // The leader is in the group, but make sure of it: `wait` below must not block.
        let _ = child.start_kill();
        if let Err(e) = child.wait().await {
            tracing::warn!(error = %e, "could not reap the claude cli after killing it");
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

/// Kills the child's process group when told to and when dropped (e.g. the caller's future is
/// cancelled), so a cancelled analysis leaves nothing behind.
struct GroupGuard(Option<i32>);

impl GroupGuard {
    fn kill(&self) {
        if let Some(pgid) = self.0.filter(|&p| p > 1) {
            // SAFETY: kill(2) has no memory-safety preconditions. The group id is our child's pid,
            // which cannot be reused while the child is unreaped or the group still has members.
            let rc = unsafe { libc::kill(-pgid, libc::SIGKILL) };
            if rc != 0 {
                tracing::trace!(pgid, "process group already gone");
            }
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(resolve_binary(&not_exec, None).is_err());
    }
}
