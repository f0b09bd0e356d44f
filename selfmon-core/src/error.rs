//! The crate's error type.

use std::fmt;

/// A boxed error from an adapter, kept as the source of [`Error::Adapter`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Convenience alias used throughout selfmon-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which pluggable component an [`Error::Adapter`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// A [`crate::LogSource`].
    LogSource,
    /// A [`crate::JobQueue`].
    JobQueue,
    /// An [`crate::AnalysisRunner`].
    AnalysisRunner,
    /// An [`crate::IssueTracker`].
    IssueTracker,
    /// A [`crate::Deduplicator`].
    Deduplicator,
    /// A [`crate::StateStore`].
    StateStore,
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Component::LogSource => "log source",
            Component::JobQueue => "job queue",
            Component::AnalysisRunner => "analysis runner",
            Component::IssueTracker => "issue tracker",
            Component::Deduplicator => "deduplicator",
            Component::StateStore => "state store",
        })
    }
}

/// Everything that can go wrong in selfmon-core, with variants a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value from outside (a log level, an error code, a JSON document) could not be parsed.
    #[error("invalid {what} {}: {reason}", crate::text::quoted(.input))]
    Parse {
        /// What was being parsed (`"log level"`, `"error code"`, ...).
        what: &'static str,
        /// The offending input, truncated to 200 characters.
        input: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A configuration value is out of range or malformed; fix the named field.
    #[error("configuration field `{field}`: {reason}")]
    Config {
        /// Dotted path of the field (`dedup.related_threshold`).
        field: String,
        /// What is wrong and what is accepted.
        reason: String,
    },

    /// An error-code catalog file could not be read or parsed ([`crate::inventory::Catalog`]).
    #[error("cannot use error-code catalog {}: {reason}; expected a JSON array of codes, a JSON object keyed by code, or one code per line", .path.display())]
    Catalog {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong (which entry, or the I/O error).
        reason: String,
    },

    /// The prompt template references a placeholder that selfmon does not know.
    #[error("prompt template uses unknown placeholder `{{{name}}}`; known placeholders are {known}; write `{{{{` and `}}}}` for literal braces")]
    UnknownPlaceholder {
        /// The placeholder name without braces.
        name: String,
        /// The known placeholders, comma separated.
        known: String,
    },

    /// The prompt template is malformed (an unclosed `{`, a stray `}`).
    #[error("prompt template is malformed at byte {offset}: {reason}")]
    Template {
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        reason: String,
    },

    /// Another scan holds the single-flight lease; try again after `expires_at`.
    #[error(
        "another scan is running: the lease is held by {owner} ({holder}) since {since}, until {expires_at} unless that scan renews it; wait for it to finish"
    )]
    LeaseHeld {
        /// Owner of the lease.
        owner: String,
        /// Who that is, for people ("pid 42 on host-a").
        holder: String,
        /// When the holder took the lease.
        since: chrono::DateTime<chrono::Utc>,
        /// When the lease expires unless renewed or released.
        expires_at: chrono::DateTime<chrono::Utc>,
    },

    /// The scan lost its lease (it could not renew it in time and another scan took it over), so
    /// it stopped before doing anything more; it is recorded as failed and the next scan repeats it.
    #[error("the scan lost its lease{}: it was not renewed in time (a paused process or an unreachable state store); stopped", lost_to(.owner))]
    LeaseLost {
        /// The owner that holds the lease now (empty when nobody does).
        owner: String,
    },

    /// A job of this kind is already queued or running, so none was submitted.
    #[error("a {kind} job is already {status} (job {job_id}); not submitting another")]
    AlreadyActive {
        /// The job kind.
        kind: String,
        /// The existing job.
        job_id: String,
        /// `queued` or `running`.
        status: String,
    },

    /// An adapter failed. `retryable` says whether the same call may succeed later.
    #[error("{component} failed{}: {source}", if *.retryable { " (retryable)" } else { "" })]
    Adapter {
        /// Which component failed.
        component: Component,
        /// Whether retrying the operation later may succeed.
        retryable: bool,
        /// The adapter's own error.
        #[source]
        source: BoxError,
    },

    /// A service refused the call because its rate limit is spent; the call changed nothing.
    /// Retry after `reset_at` (when the service said). The engine stops calling the issue tracker
    /// for the rest of a scan that meets one and keeps what it could not file in the backlog.
    #[error("{component} is rate limited{}: {source}", describe_reset(.reset_at))]
    RateLimited {
        /// Which component refused.
        component: Component,
        /// When the limit resets, if the service said.
        reset_at: Option<chrono::DateTime<chrono::Utc>>,
        /// The adapter's own error.
        #[source]
        source: BoxError,
    },

    /// What the call named does not exist (a repository or issue the tracker does not know, a
    /// missing file or row). Retrying the same call fails the same way: check the name.
    #[error("{component}: not found: {source}")]
    NotFound {
        /// Which component answered.
        component: Component,
        /// The adapter's own error.
        #[source]
        source: BoxError,
    },

    /// The credentials were refused or lack a permission (HTTP 401/403 without rate-limit signs,
    /// a database role without the privilege). Not retryable: fix the token or the grant.
    #[error("{component}: permission denied: {source}")]
    PermissionDenied {
        /// Which component refused.
        component: Component,
        /// The adapter's own error.
        #[source]
        source: BoxError,
    },

    /// The tracker refuses comments on this issue: its conversation is locked (GitHub answers an
    /// App or bot token 403 "Unable to create comment because issue is locked."). Not a missing
    /// permission of the token, nor a reason to stop the scan: the engine records the problem's
    /// occurrences, reopens the issue without a comment where it may, and goes on.
    #[error("{component}: the issue is locked: {source}")]
    Locked {
        /// Which component refused.
        component: Component,
        /// The adapter's own error.
        #[source]
        source: BoxError,
    },

    /// The service rejected what was sent (HTTP 422, a malformed option or URL). Not retryable:
    /// the same input fails again.
    #[error("{component}: invalid input: {source}")]
    InvalidInput {
        /// Which component rejected it.
        component: Component,
        /// The adapter's own error.
        #[source]
        source: BoxError,
    },

    /// The service or store cannot be reached or is busy right now (a timeout, a lost
    /// connection, HTTP 5xx, a locked SQLite file). Retryable: the same call may succeed later.
    #[error("{component} is unavailable (retryable): {source}")]
    Unavailable {
        /// Which component was unavailable.
        component: Component,
        /// The adapter's own error.
        #[source]
        source: BoxError,
    },

    /// The analysis runner ran but gave no answer for this request, and the same request may
    /// fail the same way again: the model refused the content (a content filter, a prompt that
    /// is too long), its answer was unusable, or the run did not finish on it (a timeout, its turn
    /// or budget limit). Retryable: the scan fails and the cursor stays. The engine counts such
    /// failures over the same records ([`ScanRecord::analysis_failures`](crate::ScanRecord::analysis_failures));
    /// at the [`ANALYSIS_ATTEMPTS`](crate::engine::ANALYSIS_ATTEMPTS)-th in a row it judges the
    /// records with the offline rules instead, so one record the model refuses cannot stall
    /// selfmon.
    #[error("analysis runner gave no answer for these records (retryable; after {} such failures in a row the offline rules judge them): {source}", crate::engine::ANALYSIS_ATTEMPTS)]
    NoAnswer {
        /// The runner's own error.
        #[source]
        source: BoxError,
    },

    /// The analysis runner returned nothing usable; the scan fails and is retried next time.
    #[error("analysis output rejected: {reason}")]
    InvalidAnalysis {
        /// Why the output was rejected.
        reason: String,
    },

    /// The analysis failed after the model had already run, so it cost money: `usage` says how
    /// much (the scan records it even though it failed). What went wrong is `source`; retry as it
    /// says.
    #[error("{source} (the failed analysis still used{})", describe_usage(.usage))]
    AnalysisFailed {
        /// What the failed analysis used.
        usage: crate::traits::Usage,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },

    /// The scan was cancelled (a [`crate::cancel::CancelToken`], [`crate::SelfMonitor::shutdown`],
    /// or a signal in the CLI) before it finished. It is recorded as failed, the cursor did not
    /// move and the lease was released: the next scan reads the same records again.
    #[error("interrupted: the scan was cancelled before it finished; the next scan reads the same records again")]
    Cancelled,

    /// A defect in selfmon or in an adapter made the scan's work panic. The panic was caught:
    /// the scan is recorded as failed, the cursor did not move and the lease was released, so
    /// the next scan reads the same records again. Not retryable until the cause is fixed; report
    /// it with the message.
    #[error("internal error: the scan panicked ({message}); it is recorded as failed and the next scan reads the same records again; please report this")]
    Panicked {
        /// The panic's message.
        message: String,
    },
}

/// ` to <owner>`, or what is known when nobody holds the lease now (it expired or was released).
fn lost_to(owner: &str) -> String {
    if owner.is_empty() {
        " (nobody holds it now: it expired or was released)".to_string()
    } else {
        format!(" to {owner}")
    }
}

/// ` until <time>`, or nothing when the reset time is unknown.
fn describe_reset(reset_at: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    reset_at.map_or_else(String::new, |t| format!(" until {t}"))
}

/// ` $0.0123, 1200 input and 300 output tokens`, or ` an unknown amount`.
fn describe_usage(u: &crate::traits::Usage) -> String {
    let mut parts = Vec::new();
    if let Some(c) = u.cost_usd {
        parts.push(format!("${c:.4}"));
    }
    if let Some(i) = u.input_tokens {
        parts.push(format!("{i} input tokens"));
    }
    if let Some(o) = u.output_tokens {
        parts.push(format!("{o} output tokens"));
    }
    if parts.is_empty() {
        " an unknown amount".to_string()
    } else {
        format!(" {}", parts.join(", "))
    }
}

impl Error {
    /// What a failed analysis used, when the runner could tell ([`Error::AnalysisFailed`]).
    pub fn analysis_usage(&self) -> Option<&crate::traits::Usage> {
        match self {
            Error::AnalysisFailed { usage, .. } => Some(usage),
            _ => None,
        }
    }

    /// Wraps an adapter error, keeping it as the source.
    pub fn adapter(component: Component, retryable: bool, source: impl Into<BoxError>) -> Self {
        Error::Adapter {
            component,
            retryable,
            source: source.into(),
        }
    }

    /// Which component an adapter error came from ([`Error::Adapter`], [`Error::RateLimited`],
    /// [`Error::NotFound`], [`Error::PermissionDenied`], [`Error::InvalidInput`],
    /// [`Error::Unavailable`]); `None` for the engine's own errors.
    pub fn component(&self) -> Option<Component> {
        match self {
            Error::Adapter { component, .. }
            | Error::RateLimited { component, .. }
            | Error::NotFound { component, .. }
            | Error::PermissionDenied { component, .. }
            | Error::Locked { component, .. }
            | Error::InvalidInput { component, .. }
            | Error::Unavailable { component, .. } => Some(*component),
            Error::NoAnswer { .. } => Some(Component::AnalysisRunner),
            Error::AnalysisFailed { source, .. } => source.component(),
            _ => None,
        }
    }

    /// Builds an [`Error::NotFound`].
    pub fn not_found(component: Component, source: impl Into<BoxError>) -> Self {
        Error::NotFound {
            component,
            source: source.into(),
        }
    }

    /// Builds an [`Error::PermissionDenied`].
    pub fn permission_denied(component: Component, source: impl Into<BoxError>) -> Self {
        Error::PermissionDenied {
            component,
            source: source.into(),
        }
    }

    /// Builds an [`Error::Locked`].
    pub fn locked(component: Component, source: impl Into<BoxError>) -> Self {
        Error::Locked {
            component,
            source: source.into(),
        }
    }

    /// Builds an [`Error::InvalidInput`].
    pub fn invalid_input(component: Component, source: impl Into<BoxError>) -> Self {
        Error::InvalidInput {
            component,
            source: source.into(),
        }
    }

    /// Builds an [`Error::NoAnswer`].
    pub fn no_answer(source: impl Into<BoxError>) -> Self {
        Error::NoAnswer {
            source: source.into(),
        }
    }

    /// Whether this is the runner giving no answer for the request ([`Error::NoAnswer`], also
    /// inside [`Error::AnalysisFailed`]): a failure the engine counts against the records it
    /// analysed (see [`Error::NoAnswer`]).
    pub fn is_no_answer(&self) -> bool {
        match self {
            Error::NoAnswer { .. } => true,
            Error::AnalysisFailed { source, .. } => source.is_no_answer(),
            _ => false,
        }
    }

    /// Builds an [`Error::Unavailable`].
    pub fn unavailable(component: Component, source: impl Into<BoxError>) -> Self {
        Error::Unavailable {
            component,
            source: source.into(),
        }
    }

    /// Whether repeating the failed operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Adapter { retryable, .. } => *retryable,
            Error::AnalysisFailed { source, .. } => source.is_retryable(),
            Error::LeaseHeld { .. }
            | Error::LeaseLost { .. }
            | Error::AlreadyActive { .. }
            | Error::RateLimited { .. }
            | Error::NoAnswer { .. }
            | Error::Unavailable { .. } => true,
            _ => false,
        }
    }

    /// Builds a [`Error::Parse`], truncating the input for display.
    pub fn parse(what: &'static str, input: &str, reason: impl Into<String>) -> Self {
        Error::Parse {
            what,
            // Redacted before it is cut: a cut through a secret would hide it from the redactor.
            input: truncate_chars(&crate::redact::Redactor::shared().redact(input), 200),
            reason: reason.into(),
        }
    }

    /// Builds a [`Error::Config`].
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Truncates `s` to at most `max` characters (not bytes), never splitting a character.
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((idx, _)) => s[..idx].to_string(),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_error_reports_component_and_retryability() {
        let e = Error::adapter(Component::IssueTracker, true, "HTTP 502");
        assert!(e.is_retryable());
        assert_eq!(e.to_string(), "issue tracker failed (retryable): HTTP 502");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn semantic_variants_keep_component_and_source_and_only_unavailable_is_retryable() {
        let cases = [
            (Error::not_found(Component::IssueTracker, "issue #7"), false),
            (
                Error::permission_denied(Component::IssueTracker, "403"),
                false,
            ),
            (
                Error::invalid_input(Component::StateStore, "bad option"),
                false,
            ),
            (
                Error::unavailable(Component::LogSource, "database is locked"),
                true,
            ),
        ];
        for (e, retryable) in cases {
            assert_eq!(e.is_retryable(), retryable, "{e}");
            assert!(e.component().is_some(), "{e}");
            assert!(std::error::Error::source(&e).is_some(), "{e}");
        }
        assert_eq!(
            Error::unavailable(Component::LogSource, "database is locked").to_string(),
            "log source is unavailable (retryable): database is locked"
        );
        assert_eq!(Error::Cancelled.component(), None);
    }

    #[test]
    fn a_lost_lease_names_its_new_owner_or_says_nobody_holds_it() {
        let to = Error::LeaseLost {
            owner: "selfmon-42/scan-b".into(),
        };
        assert!(to
            .to_string()
            .starts_with("the scan lost its lease to selfmon-42/scan-b: "));
        let nobody = Error::LeaseLost {
            owner: String::new(),
        }
        .to_string();
        assert!(!nobody.contains("to :"), "{nobody}");
        assert!(nobody.contains("nobody holds it now"), "{nobody}");
    }

    #[test]
    fn truncate_chars_never_splits_a_character() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("ab", 5), "ab");
    }
}
