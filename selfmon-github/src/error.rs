//! The crate's error type: one variant per condition a caller can act on.

use chrono::{DateTime, Utc};
use selfmon_core::Component;

use crate::scrub::{ScrubbedError, Scrubber};

/// Everything that can go wrong talking to GitHub.
///
/// No variant's `Display` or `Debug` holds the token: text from outside (GitHub's messages, URLs,
/// headers, the HTTP client's and the JSON decoder's errors) is scrubbed of it, and of anything
/// shaped like a GitHub token, when the error is made.
///
/// Converts into the core error with `component = IssueTracker`: rate limits into
/// `RateLimited`, 404 (and an issue transferred away, [`Error::IssueMoved`]) into `NotFound`, 401/403 into `PermissionDenied` (a 403 for a locked conversation, [`Error::Locked`], into `Locked`), 422 and an oversized body
/// into `InvalidInput`, timeouts, connection failures and 5xx into `Unavailable`, the rest
/// (a redirect not followed, [`Error::Moved`], among them: never `NotFound`) into `Adapter`; see
/// [`Error::is_retryable`] for which variants may succeed later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration field is malformed; fix the named field.
    #[error("GitHub configuration field `{field}`: {reason}")]
    Config {
        /// The field (`repository`, `base_url`, ...).
        field: String,
        /// What is wrong and what is accepted.
        reason: String,
    },

    /// The environment variable that should hold the token is unset or empty.
    // Worded so that no `token: <word>` pair appears: the CLI redacts such a pair as a secret.
    #[error("no GitHub token in environment variable `{env_var}` (it is unset or empty); set it to a token with Issues read/write access")]
    TokenMissing {
        /// The variable's name.
        env_var: String,
    },

    /// GitHub answered 401: the token is invalid, expired or revoked.
    #[error("GitHub rejected the token from `{env_var}` (401): it is invalid, expired or revoked; replace it")]
    Unauthorized {
        /// The environment variable the token came from.
        env_var: String,
    },

    /// GitHub answered 403 without rate-limit signs: the token lacks a permission.
    #[error("GitHub refused {action} on {repository} (403): the token needs {needed}{}; GitHub said: {message}",
        accepted.as_deref().map(|a| format!(" (GitHub accepts: {a})")).unwrap_or_default())]
    Forbidden {
        /// What was attempted (`"creating an issue"`).
        action: &'static str,
        /// `owner/name`.
        repository: String,
        /// The permission needed (`"Issues: write (fine-grained) or the repo scope (classic)"`).
        needed: &'static str,
        /// `x-accepted-github-permissions` / `x-accepted-oauth-scopes`, when GitHub sent them.
        accepted: Option<String>,
        /// GitHub's message.
        message: String,
    },

    /// GitHub answered 403 because the issue's conversation is locked ("Unable to create comment
    /// because issue is locked."): GitHub lets only people with write access comment on a locked
    /// conversation, not App or bot tokens. The token is fine; only this issue refuses comments.
    /// Converts into the core `Locked`: the engine records the occurrences, reopens the issue
    /// without a comment where configured, and goes on.
    #[error("GitHub refused {action} on {what} in {repository} (403): its conversation is locked, and GitHub takes comments on a locked issue only from people with write access; unlock it to get selfmon's comments again; GitHub said: {message}")]
    Locked {
        /// What was attempted (`"commenting on an issue"`).
        action: &'static str,
        /// `owner/name`.
        repository: String,
        /// The issue (`"issue #12"`).
        what: String,
        /// GitHub's message.
        message: String,
    },

    /// GitHub answered 404 for the repository (or one of its issues).
    #[error("GitHub returned 404 for {what}: the repository {repository} was not found or the token has no access to it; check `repository` and the token's repository access")]
    NotFound {
        /// `owner/name`.
        repository: String,
        /// What was looked up (`"the issue list"`, `"issue #12"`).
        what: String,
    },

    /// A 404 whose body is not GitHub's JSON: `base_url` points at a server that is not the
    /// GitHub API (a GitHub Enterprise host's web root instead of its `/api/v3`, a proxy).
    #[error("{base_url} answered 404 for {what} with a page that is not GitHub's API (not its JSON); is `base_url` the API root (https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server)? It said: {message}")]
    NotTheApi {
        /// The configured `base_url`.
        base_url: String,
        /// What was looked up (`"the issue list"`).
        what: String,
        /// The start of what the server answered.
        message: String,
    },

    /// GitHub answered 410: issues are disabled on the repository.
    #[error("issues are disabled on {repository} (410); enable them in the repository settings or file elsewhere")]
    IssuesDisabled {
        /// `owner/name`.
        repository: String,
    },

    /// GitHub answered 410 for an issue that was deleted.
    #[error("GitHub says {what} is gone (410): {message}")]
    Gone {
        /// What was addressed (`"issue #12"`).
        what: String,
        /// GitHub's message.
        message: String,
    },

    /// GitHub answered 422: it rejected the request's content.
    #[error("GitHub rejected the request (422): {message}")]
    Validation {
        /// GitHub's message, with the per-field errors.
        message: String,
    },

    /// The primary rate limit is exhausted until `reset_at`, later than the configured maximum wait.
    #[error("GitHub rate limit exhausted until {reset_at}, longer than the configured maximum wait of {max_wait_secs} s; retry after the reset")]
    RateLimited {
        /// When the limit resets.
        reset_at: DateTime<Utc>,
        /// The configured maximum wait.
        max_wait_secs: u64,
    },

    /// A secondary (abuse) rate limit asks for a wait longer than the configured maximum.
    #[error("GitHub secondary rate limit: asked to wait {retry_after_secs} s, longer than the configured maximum of {max_wait_secs} s; retry later")]
    SecondaryRateLimited {
        /// How long GitHub asked to wait (60 s when it did not say).
        retry_after_secs: u64,
        /// When that wait ends, by the tracker's clock when GitHub answered.
        retry_at: DateTime<Utc>,
        /// The configured maximum wait.
        max_wait_secs: u64,
    },

    /// The request timed out. For a create, the issue may exist anyway: reconcile by marker.
    #[error("GitHub request {method} {path} timed out")]
    Timeout {
        /// HTTP method.
        method: String,
        /// Path of the request.
        path: String,
        /// The client error, as scrubbed text.
        #[source]
        source: ScrubbedError,
    },

    /// The connection failed or broke. For a create, the issue may exist anyway: reconcile by marker.
    #[error("GitHub request {method} {path} failed to connect or lost its connection")]
    Connection {
        /// HTTP method.
        method: String,
        /// Path of the request.
        path: String,
        /// The client error, as scrubbed text.
        #[source]
        source: ScrubbedError,
    },

    /// GitHub answered 5xx.
    #[error("GitHub server error {status} on {method} {path}: {message}")]
    Server {
        /// The status code.
        status: u16,
        /// HTTP method.
        method: String,
        /// Path of the request.
        path: String,
        /// GitHub's message, if any.
        message: String,
    },

    /// Any other unexpected status.
    #[error("GitHub answered {status} to {method} {path}: {message}")]
    UnexpectedStatus {
        /// The status code.
        status: u16,
        /// HTTP method.
        method: String,
        /// Path of the request.
        path: String,
        /// GitHub's message, if any.
        message: String,
    },

    /// A response body was not the JSON GitHub documents.
    #[error("GitHub's response to {path} could not be read: {source}")]
    InvalidResponse {
        /// Path of the request.
        path: String,
        /// The decoding error, as scrubbed text (it may quote the body).
        #[source]
        source: ScrubbedError,
    },

    /// A pagination `Link` pointed outside the configured API, so it was not followed (the token
    /// would have been sent there).
    #[error("GitHub pagination link {} is outside the configured API base {base}; not following it", selfmon_core::text::quoted(.url.as_str()))]
    ForeignLink {
        /// The link.
        url: String,
        /// The configured base.
        base: String,
    },

    /// GitHub answered a redirect selfmon does not follow: the repository was renamed or
    /// transferred (or its API moved). Nothing was done by the request; fix the configuration.
    #[error("GitHub answered {status} to {method} {path}, redirecting to {}: the repository (or the issue) has moved, and selfmon does not follow this redirect because {why}; set `repository` (and `base_url` if the host changed) to where it is now", selfmon_core::text::quoted(.location.as_str()))]
    Moved {
        /// The status code (301, 302, 303, 307 or 308).
        status: u16,
        /// HTTP method.
        method: String,
        /// Path of the request.
        path: String,
        /// Where GitHub pointed (the `Location` header, resolved against the request).
        location: String,
        /// Why it was not followed.
        why: String,
    },

    /// A request about one issue was redirected (GitHub's answer for an issue transferred to
    /// another repository): the issue is no longer in the configured repository. Converts into
    /// the core `NotFound`, so the engine records its occurrences without a comment and goes on,
    /// as for a deleted issue; a moved *repository* is [`Error::Moved`] instead.
    #[error("issue #{number} is no longer in {repository}: GitHub points to {} (it was transferred to another repository); selfmon treats it as gone from {repository}", selfmon_core::text::quoted(.location.as_str()))]
    IssueMoved {
        /// `owner/name` configured.
        repository: String,
        /// The issue's number in the configured repository.
        number: u64,
        /// Where GitHub pointed (a redirect's `Location`, or the issue's address found there).
        location: String,
    },

    /// A listing had more pages than `max_list_pages`.
    #[error(
        "listing {what} exceeded {max_pages} pages; raise `max_list_pages` or close old issues"
    )]
    TooManyPages {
        /// What was listed.
        what: &'static str,
        /// The configured maximum.
        max_pages: u32,
    },

    /// A body is longer than GitHub accepts; nothing was sent.
    #[error("{what} body is {chars} characters, more than GitHub's {max}; nothing was sent")]
    BodyTooLong {
        /// `"issue"` or `"comment"`.
        what: &'static str,
        /// Its length in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },

    /// The HTTP client could not be built or a request could not be formed.
    #[error("could not prepare the GitHub HTTP client or request: {source}")]
    Client {
        /// The client error, as scrubbed text.
        #[source]
        source: ScrubbedError,
    },
}

impl Error {
    /// A configuration error; `reason` may quote a configured value, so token shapes are
    /// scrubbed from it.
    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            reason: Scrubber::shapes_only().scrub(&reason.into()),
        }
    }

    /// Whether the same call may succeed later: rate limits, timeouts, connection failures and
    /// 5xx. Authentication, permission, validation and configuration errors are not.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. }
                | Error::SecondaryRateLimited { .. }
                | Error::Timeout { .. }
                | Error::Connection { .. }
                | Error::Server { .. }
        )
    }
}

impl From<Error> for selfmon_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::RateLimited { reset_at, .. } => {
                return selfmon_core::Error::RateLimited {
                    component: Component::IssueTracker,
                    reset_at: Some(reset_at),
                    source: Box::new(e),
                }
            }
            Error::SecondaryRateLimited { retry_at, .. } => {
                return selfmon_core::Error::RateLimited {
                    component: Component::IssueTracker,
                    reset_at: Some(retry_at),
                    source: Box::new(e),
                };
            }
            _ => {}
        }
        let component = Component::IssueTracker;
        match e {
            // An issue deleted (410) is as gone as one never there.
            Error::NotFound { .. } | Error::Gone { .. } | Error::IssueMoved { .. } => {
                selfmon_core::Error::not_found(component, e)
            }
            Error::Unauthorized { .. } | Error::Forbidden { .. } => {
                selfmon_core::Error::permission_denied(component, e)
            }
            Error::Locked { .. } => selfmon_core::Error::locked(component, e),
            Error::Validation { .. } | Error::BodyTooLong { .. } => {
                selfmon_core::Error::invalid_input(component, e)
            }
            Error::Timeout { .. } | Error::Connection { .. } | Error::Server { .. } => {
                selfmon_core::Error::unavailable(component, e)
            }
            _ => {
                let retryable = e.is_retryable();
                selfmon_core::Error::adapter(component, retryable, e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_and_server_errors_are_retryable_auth_is_not() {
        let rl = Error::RateLimited {
            reset_at: Utc::now(),
            max_wait_secs: 1,
        };
        assert!(rl.is_retryable());
        let core: selfmon_core::Error = rl.into();
        assert!(core.is_retryable());
        assert!(
            matches!(
                core,
                selfmon_core::Error::RateLimited {
                    reset_at: Some(_),
                    ..
                }
            ),
            "the engine must see a rate limit as one: {core:?}"
        );
        let core: selfmon_core::Error = Error::Unauthorized {
            env_var: "GH".into(),
        }
        .into();
        assert!(!core.is_retryable());
        assert!(core
            .to_string()
            .contains("issue tracker: permission denied"));
        assert!(core.to_string().contains("`GH`"));
    }

    #[test]
    fn the_missing_token_message_survives_the_redaction_every_error_line_goes_through() {
        let text = Error::TokenMissing {
            env_var: "SELFMON_GH_TOKEN".into(),
        }
        .to_string();
        assert_eq!(
            selfmon_core::redact::Redactor::shared().redact(&text),
            text,
            "nothing in it is a secret"
        );
        assert!(text.contains("environment variable `SELFMON_GH_TOKEN`"));
    }

    #[test]
    fn a_404_from_something_that_is_not_the_api_names_base_url_and_is_no_missing_issue() {
        let e = Error::NotTheApi {
            base_url: "https://ghe.example.com/".into(),
            what: "the issue list".into(),
            message: "<html>GitHub Enterprise: sign in</html>".into(),
        };
        let text = e.to_string();
        assert!(
            text.contains("`base_url`") && text.contains("/api/v3"),
            "{text}"
        );
        assert!(!text.contains("check `repository`"), "{text}");
        let core: selfmon_core::Error = e.into();
        assert!(
            !matches!(core, selfmon_core::Error::NotFound { .. }),
            "a wrong API root must not read as a deleted issue: {core:?}"
        );
        assert!(!core.is_retryable());
    }

    #[test]
    fn http_failures_map_onto_the_core_variants_a_caller_matches() {
        use selfmon_core::Error as Core;
        let not_found: Core = Error::NotFound {
            repository: "acme/server".into(),
            what: "issue #12".into(),
        }
        .into();
        assert!(matches!(not_found, Core::NotFound { .. }), "{not_found:?}");
        let forbidden: Core = Error::Forbidden {
            action: "creating an issue",
            repository: "acme/server".into(),
            needed: "Issues: write",
            accepted: None,
            message: "Resource not accessible by personal access token".into(),
        }
        .into();
        assert!(
            matches!(forbidden, Core::PermissionDenied { .. }),
            "{forbidden:?}"
        );
        let unauthorized: Core = Error::Unauthorized {
            env_var: "GH".into(),
        }
        .into();
        assert!(matches!(unauthorized, Core::PermissionDenied { .. }));
        let invalid: Core = Error::Validation {
            message: "Validation Failed".into(),
        }
        .into();
        assert!(matches!(invalid, Core::InvalidInput { .. }), "{invalid:?}");
        let server: Core = Error::Server {
            status: 502,
            method: "POST".into(),
            path: "/repos/acme/server/issues".into(),
            message: "Bad Gateway".into(),
        }
        .into();
        assert!(matches!(server, Core::Unavailable { .. }), "{server:?}");
        assert!(server.is_retryable());
        for e in [&not_found, &forbidden, &unauthorized, &invalid, &server] {
            assert_eq!(e.component(), Some(Component::IssueTracker));
            assert!(!matches!(e, Core::Unavailable { .. }) || e.is_retryable());
        }
        assert!(!not_found.is_retryable() && !forbidden.is_retryable() && !invalid.is_retryable());
    }

    #[test]
    fn the_github_error_stays_reachable_as_the_source() {
        let core: selfmon_core::Error = Error::IssuesDisabled {
            repository: "acme/server".into(),
        }
        .into();
        let source = std::error::Error::source(&core).unwrap();
        assert!(matches!(
            source.downcast_ref::<Error>(),
            Some(Error::IssuesDisabled { .. })
        ));
    }
}
