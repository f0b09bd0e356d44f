//! `GitHubConfig`: which repository, where the API is, where the token comes from, how patient to be.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use selfmon_core::Classification;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The public GitHub API.
pub const DEFAULT_BASE_URL: &str = "https://api.github.com";

/// GitHub's limit on an issue or comment body, in characters: core's one body cap
/// ([`selfmon_core::issue_body::MAX_BODY_CHARS`]), which the body builder stays below.
pub use selfmon_core::issue_body::MAX_BODY_CHARS;

/// Settings of a [`GitHubTracker`](crate::GitHubTracker). Plain data with working defaults except
/// [`repository`](Self::repository); call [`validate`](Self::validate) after loading.
///
/// The token itself is never part of the configuration: only the *name* of the environment
/// variable holding it ([`token_env`](Self::token_env)), so the config can be logged, serialised
/// and shown in a settings page safely.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GitHubConfig {
    /// `owner/name` of the repository issues are filed in.
    pub repository: String,
    /// API root: `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise Server.
    /// Plain `http://` is accepted only for loopback hosts (tests), never to send a token in clear.
    pub base_url: String,
    /// Name of the environment variable holding the token (fine-grained: Issues read/write).
    pub token_env: String,
    /// Label on every issue selfmon files; issues are listed by it.
    pub selfmon_label: String,
    /// Extra labels per classification.
    pub labels: ClassificationLabels,
    /// Title prefixes per classification. When a draft's title starts with selfmon's default
    /// prefix (`[BUG]`, ...) and the configured one differs, the prefix is replaced.
    pub title_prefixes: TitlePrefixes,
    /// Timeout of one HTTP request, in seconds (1..=600).
    pub request_timeout_secs: u64,
    /// Longest a call may wait for a rate limit to reset before failing with
    /// [`Error::RateLimited`] / [`Error::SecondaryRateLimited`], in seconds.
    pub max_rate_limit_wait_secs: u64,
    /// Minimum spacing between mutating requests (create, comment, reopen, create label), in
    /// milliseconds. GitHub asks for at least one second; lower only in tests.
    pub mutation_spacing_ms: u64,
    /// Minimum spacing between search requests, in milliseconds (the search API allows 30 per
    /// minute, so the default is 2000).
    pub search_spacing_ms: u64,
    /// How many times a GET (or a reopen, which is idempotent) is attempted when it meets a 5xx,
    /// a timeout or a connection error. Creates and comments are always sent once.
    pub max_get_attempts: u32,
    /// Delay before the first GET retry, in milliseconds; doubled after each further failure.
    pub retry_backoff_ms: u64,
    /// Most pages read by one listing (100 issues per page); more is an error rather than a
    /// silently incomplete list.
    pub max_list_pages: u32,
}

/// Labels added per classification (besides [`GitHubConfig::selfmon_label`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassificationLabels {
    /// For [`Classification::ServerBug`].
    pub server_bug: Vec<String>,
    /// For [`Classification::ClientMisuse`].
    pub client_misuse: Vec<String>,
    /// For [`Classification::DocumentationGap`].
    pub documentation_gap: Vec<String>,
}

impl Default for ClassificationLabels {
    fn default() -> Self {
        ClassificationLabels {
            server_bug: vec![Classification::ServerBug.default_label().to_string()],
            client_misuse: vec![Classification::ClientMisuse.default_label().to_string()],
            documentation_gap: vec![Classification::DocumentationGap.default_label().to_string()],
        }
    }
}

impl ClassificationLabels {
    /// The labels for `c`.
    pub fn for_classification(&self, c: Classification) -> &[String] {
        match c {
            Classification::ServerBug => &self.server_bug,
            Classification::ClientMisuse => &self.client_misuse,
            Classification::DocumentationGap => &self.documentation_gap,
        }
    }
}

/// Issue title prefixes per classification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TitlePrefixes {
    /// For [`Classification::ServerBug`] (`[BUG]`).
    pub server_bug: String,
    /// For [`Classification::ClientMisuse`] (`[CLIENT]`).
    pub client_misuse: String,
    /// For [`Classification::DocumentationGap`] (`[DOCS]`).
    pub documentation_gap: String,
}

impl Default for TitlePrefixes {
    fn default() -> Self {
        TitlePrefixes {
            server_bug: Classification::ServerBug.title_prefix().to_string(),
            client_misuse: Classification::ClientMisuse.title_prefix().to_string(),
            documentation_gap: Classification::DocumentationGap.title_prefix().to_string(),
        }
    }
}

impl TitlePrefixes {
    /// The prefix for `c`.
    pub fn for_classification(&self, c: Classification) -> &str {
        match c {
            Classification::ServerBug => &self.server_bug,
            Classification::ClientMisuse => &self.client_misuse,
            Classification::DocumentationGap => &self.documentation_gap,
        }
    }
}

impl Default for GitHubConfig {
    fn default() -> Self {
        GitHubConfig {
            repository: String::new(),
            base_url: DEFAULT_BASE_URL.to_string(),
            token_env: "GITHUB_TOKEN".to_string(),
            selfmon_label: "selfmon".to_string(),
            labels: ClassificationLabels::default(),
            title_prefixes: TitlePrefixes::default(),
            request_timeout_secs: 30,
            max_rate_limit_wait_secs: 300,
            mutation_spacing_ms: 1_000,
            search_spacing_ms: 2_000,
            max_get_attempts: 3,
            retry_backoff_ms: 1_000,
            max_list_pages: 100,
        }
    }
}

// The config holds no secret, but a hand-written Debug keeps it that way if a field is ever added.
impl fmt::Debug for GitHubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubConfig")
            .field("repository", &self.repository)
            .field("base_url", &self.base_url)
            .field("token_env", &self.token_env)
            .field("selfmon_label", &self.selfmon_label)
            .field("labels", &self.labels)
            .field("title_prefixes", &self.title_prefixes)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("max_rate_limit_wait_secs", &self.max_rate_limit_wait_secs)
            .field("mutation_spacing_ms", &self.mutation_spacing_ms)
            .field("search_spacing_ms", &self.search_spacing_ms)
            .field("max_get_attempts", &self.max_get_attempts)
            .field("retry_backoff_ms", &self.retry_backoff_ms)
            .field("max_list_pages", &self.max_list_pages)
            .finish()
    }
}

impl fmt::Display for GitHubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GitHub repository {} at {} (token from ${})",
            self.repository, self.base_url, self.token_env
        )
    }
}

impl GitHubConfig {
    /// A default configuration for `owner/name`.
    pub fn for_repository(repository: impl Into<String>) -> Self {
        GitHubConfig {
            repository: repository.into(),
            ..GitHubConfig::default()
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), Error> {
        validate_repository(&self.repository)?;
        self.api_base()?;
        if !is_env_var_name(&self.token_env) {
            return Err(Error::config(
                "token_env",
                format!(
                    "{} is not an environment variable name; use letters, digits and `_`, not starting with a digit",
                    selfmon_core::text::quoted(&self.token_env)
                ),
            ));
        }
        validate_label("selfmon_label", &self.selfmon_label)?;
        for c in Classification::ALL {
            for (i, l) in self.labels.for_classification(c).iter().enumerate() {
                validate_label(&format!("labels.{}[{i}]", c.as_str()), l)?;
            }
            if self.title_prefixes.for_classification(c).chars().count() > 50 {
                return Err(Error::config(
                    format!("title_prefixes.{}", c.as_str()),
                    "longer than 50 characters",
                ));
            }
        }
        if !(1..=600).contains(&self.request_timeout_secs) {
            return Err(Error::config(
                "request_timeout_secs",
                format!(
                    "{} is out of range; use 1 to 600",
                    self.request_timeout_secs
                ),
            ));
        }
        if self.max_rate_limit_wait_secs > 24 * 60 * 60 {
            return Err(Error::config(
                "max_rate_limit_wait_secs",
                "more than a day; use 0 to 86400",
            ));
        }
        if self.mutation_spacing_ms > 60_000 || self.search_spacing_ms > 60_000 {
            return Err(Error::config(
                if self.mutation_spacing_ms > 60_000 {
                    "mutation_spacing_ms"
                } else {
                    "search_spacing_ms"
                },
                "more than a minute; use 0 to 60000",
            ));
        }
        if !(1..=10).contains(&self.max_get_attempts) {
            return Err(Error::config(
                "max_get_attempts",
                format!("{} is out of range; use 1 to 10", self.max_get_attempts),
            ));
        }
        if self.retry_backoff_ms > 60_000 {
            return Err(Error::config(
                "retry_backoff_ms",
                "more than a minute; use 0 to 60000",
            ));
        }
        if self.max_list_pages == 0 {
            return Err(Error::config("max_list_pages", "must be at least 1"));
        }
        Ok(())
    }

    /// The API base URL, parsed, without a trailing slash in its path.
    pub(crate) fn api_base(&self) -> Result<Url, Error> {
        let bad = |reason: String| Error::config("base_url", reason);
        let mut url = Url::parse(self.base_url.trim()).map_err(|e| {
            bad(format!(
                "{} is not a URL: {e}",
                selfmon_core::text::quoted(&self.base_url)
            ))
        })?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(bad(
                    "plain http is only accepted for loopback hosts; use https so the token is not sent in clear"
                        .into(),
                ))
            }
            other => {
                return Err(bad(format!(
                    "scheme {} is not http(s)",
                    selfmon_core::text::quoted(other)
                )))
            }
        }
        if url.host_str().is_none() {
            return Err(bad("the URL has no host".into()));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(bad(
                "the URL must not carry a query, a fragment or credentials".into(),
            ));
        }
        let path = url.path().trim_end_matches('/').to_string();
        url.set_path(&path);
        Ok(url)
    }

    /// `[selfmon_label] + per-classification labels + draft labels`, without duplicates, in order.
    /// The engine's built-in labels in a draft (`selfmon` and the classification's default label)
    /// stand for the configured ones and are replaced by them, so a host that renames the labels
    /// gets only its own.
    pub(crate) fn labels_for(&self, c: Classification, draft_labels: &[String]) -> Vec<String> {
        let builtin = |l: &&String| {
            l.trim().eq_ignore_ascii_case("selfmon")
                || l.trim().eq_ignore_ascii_case(c.default_label())
        };
        let mut out: Vec<String> = Vec::new();
        let all = std::iter::once(&self.selfmon_label)
            .chain(self.labels.for_classification(c))
            .chain(draft_labels.iter().filter(|l| !builtin(l)));
        for l in all {
            let l = l.trim();
            if !l.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(l)) {
                out.push(l.to_string());
            }
        }
        out
    }

    /// The title with the configured prefix for `c`.
    pub(crate) fn title_for(&self, c: Classification, title: &str) -> String {
        let configured = self.title_prefixes.for_classification(c);
        let default = c.title_prefix();
        if configured == default || title.starts_with(configured) {
            return title.to_string();
        }
        match title.strip_prefix(default) {
            Some(rest) => format!("{configured}{rest}"),
            None if configured.is_empty() => title.to_string(),
            None => format!("{configured} {title}"),
        }
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub(crate) fn max_rate_limit_wait(&self) -> Duration {
        Duration::from_secs(self.max_rate_limit_wait_secs)
    }
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn is_env_var_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn validate_label(field: &str, label: &str) -> Result<(), Error> {
    if label.trim().is_empty() {
        return Err(Error::config(field, "a label must not be empty"));
    }
    if label.chars().count() > 50 {
        return Err(Error::config(
            field,
            format!(
                "label {} is longer than GitHub's 50 characters",
                selfmon_core::text::quoted(label)
            ),
        ));
    }
    Ok(())
}

/// Checks `owner/name`: GitHub owners are letters, digits and single hyphens (at most 39);
/// repository names are letters, digits, `-`, `_` and `.` (at most 100, not `.` or `..`).
pub(crate) fn validate_repository(repo: &str) -> Result<(), Error> {
    let bad = |reason: &str| {
        Error::config(
            "repository",
            format!(
                "{} {reason}; expected `owner/name`, e.g. `acme/server`",
                selfmon_core::text::quoted(repo)
            ),
        )
    };
    let (owner, name) = repo.split_once('/').ok_or_else(|| bad("has no `/`"))?;
    if owner.is_empty()
        || owner.len() > 39
        || owner.starts_with('-')
        || owner.ends_with('-')
        || !owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(bad("has an invalid owner"));
    }
    if name.is_empty()
        || name.len() > 100
        || name == "."
        || name == ".."
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(bad("has an invalid repository name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GitHubConfig {
        GitHubConfig::for_repository("acme/server")
    }

    #[test]
    fn defaults_are_valid_once_a_repository_is_set() {
        assert!(cfg().validate().is_ok());
        assert!(GitHubConfig::default().validate().is_err());
    }

    #[test]
    fn default_mutation_spacing_is_one_second() {
        assert_eq!(GitHubConfig::default().mutation_spacing_ms, 1_000);
        assert_eq!(GitHubConfig::default().search_spacing_ms, 2_000);
    }

    #[test]
    fn repository_must_be_owner_slash_name() {
        for bad in [
            "",
            "acme",
            "acme/",
            "/server",
            "acme/server/extra",
            "ac me/server",
            "-acme/server",
            "acme/..",
            "acme/serv?er",
            "https://github.com/acme/server",
        ] {
            let e = validate_repository(bad).unwrap_err().to_string();
            assert!(e.contains("repository"), "{bad}: {e}");
        }
        for good in ["acme/server", "a-b/c.d_e", "A1/x"] {
            assert!(validate_repository(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn enterprise_base_url_keeps_its_path_prefix() {
        let mut c = cfg();
        c.base_url = "https://ghe.example.com/api/v3/".into();
        assert_eq!(
            c.api_base().unwrap().as_str(),
            "https://ghe.example.com/api/v3"
        );
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        let mut c = cfg();
        c.base_url = "http://ghe.example.com/api/v3".into();
        assert!(c.validate().unwrap_err().to_string().contains("base_url"));
        c.base_url = "http://127.0.0.1:8080".into();
        assert!(c.validate().is_ok());
        c.base_url = "ftp://x".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn token_env_must_be_a_variable_name_not_a_token() {
        let mut c = cfg();
        c.token_env = "ghp_abc-def".into();
        assert!(c.validate().unwrap_err().to_string().contains("token_env"));
    }

    #[test]
    fn labels_combine_selfmon_classification_and_draft_labels_once() {
        let c = cfg();
        assert_eq!(
            c.labels_for(
                Classification::ServerBug,
                &["Bug".into(), "extra".into(), "selfmon".into()]
            ),
            vec!["selfmon", "bug", "extra"]
        );
    }

    #[test]
    fn configured_labels_replace_the_engines_built_in_ones() {
        let mut c = cfg();
        c.selfmon_label = "auto-triage".into();
        c.labels.server_bug = vec!["defect".into(), "p2".into()];
        assert_eq!(
            c.labels_for(
                Classification::ServerBug,
                &["selfmon".into(), "bug".into(), "extra".into()]
            ),
            vec!["auto-triage", "defect", "p2", "extra"]
        );
    }

    #[test]
    fn configured_title_prefix_replaces_the_default_one() {
        let mut c = cfg();
        assert_eq!(c.title_for(Classification::ServerBug, "[BUG] x"), "[BUG] x");
        c.title_prefixes.server_bug = "[server]".into();
        assert_eq!(
            c.title_for(Classification::ServerBug, "[BUG] x"),
            "[server] x"
        );
        assert_eq!(c.title_for(Classification::ServerBug, "x"), "[server] x");
    }

    #[test]
    fn config_round_trips_through_json_and_rejects_unknown_fields() {
        let c = cfg();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<GitHubConfig>(&json).unwrap(), c);
        assert!(serde_json::from_str::<GitHubConfig>(r#"{"token":"x"}"#).is_err());
    }
}
