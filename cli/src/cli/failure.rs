//! What went wrong, as one line plus the cause chain, and the exit code it means.

use std::fmt;
use std::process::ExitCode;

/// A command's failure.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or configuration: exit 2.
    Usage(String),
    /// The scan ran and failed (it is recorded as failed), or could not start for a reason that
    /// passes by itself (another process holds a lock on a SQLite file): exit 1.
    ScanFailed(String),
    /// Another scan holds the lease: exit 3.
    LeaseHeld(String),
    /// SIGINT, SIGTERM or (for `scan`) SIGHUP stopped the command: exit 128 + the signal number
    /// (130, 143, 129).
    Interrupted {
        /// The signal number.
        signal: i32,
        /// What was stopped and what state it was left in.
        message: String,
    },
}

impl Failure {
    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::ScanFailed(_) => 1,
            Failure::Usage(_) => 2,
            Failure::LeaseHeld(_) => 3,
            Failure::Interrupted { signal, .. } => {
                u8::try_from(128 + signal.clamp(&0, &127)).unwrap_or(1)
            }
        })
    }

    /// Opening a SQLite file failed: a lock another process holds is temporary (exit 1, the next
    /// scan retries); anything else is a usage failure (exit 2).
    pub fn open(context: &str, e: &selfmon::sqlite::Error) -> Self {
        if e.is_retryable() {
            Failure::ScanFailed(format!("{context}: {}", chain(e)))
        } else {
            Failure::usage(context, e)
        }
    }

    /// Connecting to PostgreSQL failed: an unreachable or restarting server (a transient outage,
    /// a node started before the database) is exit 1, which a supervisor retries, and the
    /// scheduler waits for it; anything else (a malformed URL, a missing table) is a usage
    /// failure (exit 2).
    #[cfg(feature = "postgres")]
    pub fn connect(context: &str, e: &selfmon::postgres::Error) -> Self {
        if e.is_retryable() {
            Failure::ScanFailed(format!("{context}: {}", chain(e)))
        } else {
            Failure::usage(context, e)
        }
    }

    /// Whether the failure passes by itself (exit 1 before any scan ran: a SQLite file another
    /// process locks, an unreachable PostgreSQL server), so waiting and trying again may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Failure::ScanFailed(_))
    }

    /// A usage failure from any error, with its cause chain.
    pub fn usage(context: &str, e: &(dyn std::error::Error + 'static)) -> Self {
        Failure::Usage(format!("{context}: {}", chain(e)))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m)
            | Failure::ScanFailed(m)
            | Failure::LeaseHeld(m)
            | Failure::Interrupted { message: m, .. } => f.write_str(m),
        }
    }
}

/// An error and its sources on one line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    selfmon::engine::error_chain(e)
}

/// Maps an engine error to a failure: the lease to 3, configuration to 2, the rest to 1. The text
/// is redacted with `redactor` (the configuration's, with its extra patterns): an error can quote
/// what a log record or the model's CLI said (`stderr ends with: ...`), and stderr is read by
/// people and kept by journald and cron mail.
pub fn from_scan_error(e: &selfmon::Error, redactor: &selfmon::redact::Redactor) -> Failure {
    let line = redactor.redact_string(&chain(e));
    match e {
        selfmon::Error::LeaseHeld { .. } => Failure::LeaseHeld(line),
        selfmon::Error::Config { .. }
        | selfmon::Error::UnknownPlaceholder { .. }
        | selfmon::Error::Template { .. } => Failure::Usage(line),
        _ => Failure::ScanFailed(format!("scan failed: {line}")),
    }
}
