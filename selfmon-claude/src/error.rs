//! The crate's error type: one variant per way a Claude run can fail.

use std::path::PathBuf;
use std::time::Duration;

use selfmon_core::{Component, Usage};

/// Everything that can go wrong when running the Claude Code CLI.
///
/// Converts into [`selfmon_core::Error::Adapter`] with `component: AnalysisRunner`; see
/// [`Error::is_retryable`] for which variants may succeed when repeated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The runner configuration is invalid; fix the named field.
    #[error("claude runner configuration field `{field}`: {reason}")]
    Config {
        /// The field name (`max_stdin_bytes`).
        field: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },

    /// The CLI binary was not found or is not executable.
    #[error("Claude Code CLI not found at `{}`: install it with `npm install -g @anthropic-ai/claude-code` (or the native installer) and put `claude` on PATH, or set `binary` in the claude runner configuration to its full path", .path.display())]
    CliNotFound {
        /// The configured path or name.
        path: PathBuf,
        /// The lookup or spawn error, when there was one.
        #[source]
        source: Option<std::io::Error>,
    },

    /// The configured CLI exists but cannot be run: a file without execute permission for this
    /// user, or a directory. Not retryable: fix the file's mode or the configured path.
    #[error("Claude Code CLI at `{}` cannot be run: {reason}", .path.display())]
    CliNotExecutable {
        /// The file found.
        path: PathBuf,
        /// What is wrong with it and what to do.
        reason: String,
    },

    /// An environment variable the child would receive holds a tracker credential: its value is
    /// the tracker's token or has the shape of a GitHub token. The model's process must never see
    /// one, whatever the variable is called.
    #[error("refusing to pass environment variable `{name}` to the Claude CLI: {reason}. The model's process must never see a tracker credential; remove `{name}` from the runner's `pass_env`, `api_key_env` or `set_env`, or give it another value")]
    ForbiddenEnvValue {
        /// The variable's name.
        name: String,
        /// Why its value is refused.
        reason: &'static str,
    },

    /// The data to send on stdin is larger than the configured bound.
    #[error("analysis data is {bytes} bytes, more than the limit of {limit} bytes sent to the Claude CLI on stdin; lower `max_digest_bytes` in the self-monitoring configuration or raise `max_stdin_bytes` (the CLI itself refuses 10 MB)")]
    InputTooLarge {
        /// Size of the data.
        bytes: usize,
        /// The configured limit.
        limit: usize,
    },

    /// A text that would go into an argument is too long for the operating system.
    #[error("argument `{what}` is {bytes} bytes; Linux refuses single arguments over 128 KiB, so it must go in a file or on stdin")]
    ArgumentTooLong {
        /// Which argument.
        what: &'static str,
        /// Its size.
        bytes: usize,
    },

    /// Preparing or talking to the subprocess failed (temp dir, spawn, pipes, wait).
    #[error("could not {action} for the Claude CLI")]
    Io {
        /// What was being done (`create the temporary directory`).
        action: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The run took longer than the timeout; the whole process group was killed and reaped.
    #[error("Claude CLI did not finish within {}s; its process group was killed. Raise `timeout_secs` or shrink the digest", .timeout.as_secs())]
    Timeout {
        /// The limit that expired.
        timeout: Duration,
    },

    /// The CLI wrote more to stdout or stderr than the cap allows; it was killed.
    #[error("Claude CLI wrote more than {limit} bytes to {stream}; it was killed. Raise `max_{stream}_bytes` if this is legitimate")]
    OutputTooLarge {
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// The cap.
        limit: usize,
    },

    /// The CLI was killed by a signal.
    #[error("Claude CLI was killed by signal {signal}; stderr ends with: {}", shown(.stderr_tail))]
    KilledBySignal {
        /// The signal number.
        signal: i32,
        /// The last bytes of stderr.
        stderr_tail: String,
    },

    /// The CLI exited with a non-zero status and no usable result object.
    #[error("Claude CLI exited with status {code}; stderr ends with: {}; stdout starts with: {}", shown(.stderr_tail), shown(.stdout_head))]
    Exit {
        /// The exit code.
        code: i32,
        /// The last bytes of stderr.
        stderr_tail: String,
        /// The first bytes of stdout.
        stdout_head: String,
    },

    /// The CLI reported an error in its result object (`is_error: true`): bad credentials, API
    /// failures, overload. Log in or check the API key when `retryable` is false.
    #[error("Claude CLI reported an error ({}, result `{subtype}`{}): {message}; stderr ends with: {}", exit_status(*.exit_code), .api_error_status.map(|s| format!(", API status {s}")).unwrap_or_default(), shown(.stderr_tail))]
    CliReportedError {
        /// The process exit code.
        exit_code: Option<i32>,
        /// The result subtype.
        subtype: String,
        /// HTTP status of the failed API call, if the CLI reported one.
        api_error_status: Option<u16>,
        /// The CLI's `result` text.
        message: String,
        /// The last bytes of stderr.
        stderr_tail: String,
    },

    /// The run stopped before it produced an answer (`error_max_turns`, `error_max_budget_usd`,
    /// `error_during_execution`, `error_max_structured_output_retries`, or an unknown subtype).
    #[error("Claude CLI stopped without an answer (result `{subtype}`) after {} ({}); {hint}; stderr ends with: {}", turns(*.num_turns), exit_status(*.exit_code), shown(.stderr_tail))]
    Unfinished {
        /// The result subtype.
        subtype: String,
        /// Turns used.
        num_turns: Option<u32>,
        /// The process exit code.
        exit_code: Option<i32>,
        /// What to do about it.
        hint: &'static str,
        /// The last bytes of stderr.
        stderr_tail: String,
    },

    /// The output held no result object that could be parsed.
    #[error("Claude CLI output is not a result object ({reason}); {}; stdout starts with: {}; stderr ends with: {}", exit_status(*.exit_code), shown(.stdout_head), shown(.stderr_tail))]
    UnparseableOutput {
        /// What was wrong.
        reason: String,
        /// The process exit code.
        exit_code: Option<i32>,
        /// The first bytes of stdout.
        stdout_head: String,
        /// The last bytes of stderr.
        stderr_tail: String,
    },

    /// The run succeeded but the structured output is missing or does not match the response type.
    #[error("Claude CLI answered without a valid structured output: {reason}; the output starts with: {}", shown(.output_head))]
    InvalidStructuredOutput {
        /// What was wrong.
        reason: String,
        /// The first bytes of what was found.
        output_head: String,
    },

    /// The run failed after the model had run, so it cost money: `usage` says how much (a scan
    /// records it even though it failed); `source` says what went wrong.
    #[error("{source}")]
    Costly {
        /// What the run used.
        usage: Usage,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },
}

/// `exit status 1`, or what is known when there is no status.
fn exit_status(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit status {c}"),
        None => "no exit status (killed by a signal)".to_string(),
    }
}

/// `6 turns`, `1 turn`, or an unknown number.
fn turns(n: Option<u32>) -> String {
    match n {
        Some(1) => "1 turn".to_string(),
        Some(n) => format!("{n} turns"),
        None => "an unknown number of turns".to_string(),
    }
}

/// Captured output on one line for a person to read: `(nothing)` when empty, control characters
/// (line breaks included) shown as spaces, quoted with backticks.
fn shown(text: &str) -> String {
    let t = text.trim();
    if t.is_empty() {
        return "(nothing)".to_string();
    }
    let one_line: String = t
        .chars()
        .filter(|&c| !selfmon_core::text::is_bidi_control(c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("`{one_line}`")
}

impl Error {
    /// Whether repeating the run later may succeed: timeouts, signals, transient API failures
    /// (408, 409, 429, 5xx) and runs that stopped early are retryable; a missing binary, bad
    /// configuration, oversized input, bad credentials and other client errors (400, 401, 403, 404)
    /// are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Config { .. }
            | Error::ForbiddenEnvValue { .. }
            | Error::CliNotFound { .. }
            | Error::CliNotExecutable { .. }
            | Error::InputTooLarge { .. }
            | Error::ArgumentTooLong { .. } => false,
            Error::CliReportedError {
                api_error_status,
                message,
                ..
            } => match api_error_status {
                Some(s) => matches!(s, 408 | 409 | 429) || *s >= 500,
                None => !looks_like_auth_failure(message),
            },
            Error::Io { .. }
            | Error::Timeout { .. }
            | Error::OutputTooLarge { .. }
            | Error::KilledBySignal { .. }
            | Error::Exit { .. }
            | Error::Unfinished { .. }
            | Error::UnparseableOutput { .. }
            | Error::InvalidStructuredOutput { .. } => true,
            Error::Costly { source, .. } => source.is_retryable(),
        }
    }

    /// Whether the run gave no answer for these records in a way the same records may repeat
    /// ([`selfmon_core::Error::NoAnswer`], which the engine counts and, after a few in a row,
    /// answers with the offline rules): the API refused the request (400, 413, 422: a content
    /// filter, a prompt that is too long), the run timed out, stopped early (turns, budget), or
    /// answered with too much output or without a valid structured output. A missing binary, bad
    /// credentials, rate limits, overload and crashes of the CLI are not: they say nothing about
    /// the records.
    pub fn is_no_answer(&self) -> bool {
        match self {
            Error::Timeout { .. }
            | Error::OutputTooLarge { .. }
            | Error::Unfinished { .. }
            | Error::InvalidStructuredOutput { .. } => true,
            Error::CliReportedError {
                api_error_status,
                message,
                ..
            } => match api_error_status.or_else(|| api_status_in(message)) {
                Some(status) => matches!(status, 400 | 413 | 422),
                None => looks_like_refusal(message),
            },
            Error::Costly { source, .. } => source.is_no_answer(),
            _ => false,
        }
    }

    /// What the run used, when it failed after the model had run ([`Error::Costly`]).
    pub fn usage(&self) -> Option<&Usage> {
        match self {
            Error::Costly { usage, .. } => Some(usage),
            _ => None,
        }
    }
}

/// The HTTP status the CLI's result text names (`API Error: 400 {...}`), when it gives none apart.
fn api_status_in(message: &str) -> Option<u16> {
    let rest = message
        .trim_start()
        .strip_prefix("API Error:")?
        .trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (digits.len() == 3).then(|| digits.parse().ok()).flatten()
}

/// A result text saying the model or the API would not take these records.
fn looks_like_refusal(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["prompt is too long", "content filtering", "output blocked"]
        .iter()
        .any(|needle| m.contains(needle))
}

fn looks_like_auth_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "invalid api key",
        "not logged in",
        "please run /login",
        "authentication",
        "unauthorized",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

impl From<Error> for selfmon_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Costly { usage, source } => selfmon_core::Error::AnalysisFailed {
                usage,
                source: Box::new(selfmon_core::Error::from(*source)),
            },
            e if e.is_no_answer() => selfmon_core::Error::no_answer(e),
            e => {
                let retryable = e.is_retryable();
                selfmon_core::Error::adapter(Component::AnalysisRunner, retryable, e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_a_person_reads_hold_no_debug_formatting() {
        let errors = [
            Error::Unfinished {
                subtype: "error_max_turns".into(),
                num_turns: Some(6),
                exit_code: Some(1),
                hint: "raise `max_turns`",
                stderr_tail: "line one\nline two".into(),
            },
            Error::Unfinished {
                subtype: "error_during_execution".into(),
                num_turns: None,
                exit_code: None,
                hint: "see stderr",
                stderr_tail: String::new(),
            },
            Error::CliReportedError {
                exit_code: Some(1),
                subtype: "success".into(),
                api_error_status: Some(401),
                message: "Invalid API key".into(),
                stderr_tail: String::new(),
            },
            Error::UnparseableOutput {
                reason: "no JSON".into(),
                exit_code: None,
                stdout_head: "hello".into(),
                stderr_tail: String::new(),
            },
            Error::CliNotFound {
                path: "/opt/claude".into(),
                source: None,
            },
        ];
        for e in &errors {
            let m = e.to_string();
            for debug in ["Some(", "None", "\\n", "\"\""] {
                assert!(!m.contains(debug), "{debug} in {m}");
            }
        }
        let m = errors[0].to_string();
        assert!(
            m.contains("after 6 turns (exit status 1)") && m.contains("`line one line two`"),
            "{m}"
        );
        assert!(errors[1].to_string().contains("an unknown number of turns"));
    }

    use super::*;

    #[test]
    fn missing_binary_is_not_retryable_and_says_how_to_install() {
        let e = Error::CliNotFound {
            path: "claude".into(),
            source: None,
        };
        assert!(!e.is_retryable());
        assert!(e
            .to_string()
            .contains("npm install -g @anthropic-ai/claude-code"));
        let core: selfmon_core::Error = e.into();
        assert!(!core.is_retryable());
    }

    #[test]
    fn bad_credentials_are_not_retryable_but_overload_is() {
        let auth = Error::CliReportedError {
            exit_code: Some(1),
            subtype: "success".into(),
            api_error_status: None,
            message: "Invalid API key · Please run /login".into(),
            stderr_tail: String::new(),
        };
        assert!(!auth.is_retryable());
        let overloaded = Error::CliReportedError {
            exit_code: Some(1),
            subtype: "success".into(),
            api_error_status: Some(529),
            message: "Overloaded".into(),
            stderr_tail: String::new(),
        };
        assert!(overloaded.is_retryable());
    }

    #[test]
    fn a_refusal_of_the_records_is_no_answer_but_setup_and_transient_failures_are_not() {
        let reported = |status: Option<u16>, message: &str| Error::CliReportedError {
            exit_code: Some(1),
            subtype: "success".into(),
            api_error_status: status,
            message: message.into(),
            stderr_tail: String::new(),
        };
        let no_answer = [
            reported(None, "API Error: 400 {\"type\":\"error\",\"error\":{\"message\":\"Output blocked by content filtering policy\"}}"),
            reported(Some(413), "request too large"),
            reported(None, "Prompt is too long"),
            Error::Timeout {
                timeout: Duration::from_secs(3),
            },
            Error::Costly {
                usage: Usage::default(),
                source: Box::new(reported(Some(400), "invalid request")),
            },
        ];
        for e in no_answer {
            assert!(e.is_no_answer(), "{e}");
            let core: selfmon_core::Error = e.into();
            assert!(core.is_no_answer() && core.is_retryable(), "{core}");
        }
        let other = [
            Error::CliNotFound {
                path: "claude".into(),
                source: None,
            },
            reported(None, "Invalid API key · Please run /login"),
            reported(Some(401), "unauthorized"),
            reported(None, "API Error: 529 Overloaded"),
            reported(Some(429), "rate limited"),
            Error::KilledBySignal {
                signal: 9,
                stderr_tail: String::new(),
            },
        ];
        for e in other {
            assert!(!e.is_no_answer(), "{e}");
            let core: selfmon_core::Error = e.into();
            assert!(!core.is_no_answer(), "{core}");
        }
    }

    #[test]
    fn timeout_converts_to_a_retryable_core_error() {
        let core: selfmon_core::Error = Error::Timeout {
            timeout: Duration::from_secs(3),
        }
        .into();
        assert!(core.is_retryable());
        assert!(core.to_string().contains("within 3s"));
    }
}
