//! # selfmon-github
//!
//! selfmon's [`IssueTracker`](selfmon_core::IssueTracker) over the GitHub REST API (github.com or
//! GitHub Enterprise Server), built on `reqwest` with rustls.
//!
//! - It never files an issue twice on its own: a create is sent once, and the engine's outbox
//!   uses [`find_by_marker`](selfmon_core::IssueTracker::find_by_marker) (label listing first,
//!   then the search API) to learn whether an interrupted create landed.
//! - It waits out primary and secondary rate limits up to a configured maximum and otherwise
//!   fails with a typed, retryable [`Error::RateLimited`] / [`Error::SecondaryRateLimited`].
//! - Redirects are followed only on the configured API host (a renamed repository), at most
//!   three per call, and a POST/PATCH only on 307/308; any other redirect is
//!   [`Error::Moved`], naming the new location and the setting to change. The token is never
//!   sent to another host. A request about one issue that GitHub redirects (an issue transferred
//!   to another repository) is [`Error::IssueMoved`], which converts into the core `NotFound`:
//!   the engine records its occurrences without a comment, as for a deleted issue.
//! - Each HTTP condition is its own [`Error`] variant; the two rate limits convert into
//!   `selfmon_core::Error::RateLimited { component: IssueTracker, reset_at, .. }` (so the engine
//!   stops filing and keeps the rest in its backlog); 404 into `NotFound`, 401/403 into
//!   `PermissionDenied`, 422 and an oversized body into `InvalidInput`, timeouts, connection
//!   failures and 5xx into `Unavailable` (retryable); every other into
//!   `selfmon_core::Error::Adapter { component: IssueTracker, retryable, .. }`. The GitHub error
//!   stays the source.
//! - The token comes from an environment variable named in [`GitHubConfig::token_env`] and is
//!   never shown by `Debug` or `Display`, of the tracker or of any error: whatever GitHub, a
//!   proxy or a URL puts into an error is scrubbed of the token and of anything shaped like a
//!   GitHub token (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`) first.
//!
//! ```no_run
//! use selfmon_core::IssueTracker;
//! use selfmon_github::{GitHubConfig, GitHubTracker};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = GitHubConfig::for_repository("acme/server");
//! config.base_url = "https://ghe.example.com/api/v3".into(); // Enterprise; omit for github.com
//! config.token_env = "SELFMON_GITHUB_TOKEN".into();
//! let tracker = GitHubTracker::new(config)?;
//! let open = tracker.list_issues(None).await?;
//! println!("{} open selfmon issues", open.len());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod error;
mod http;
mod rate_limit;
mod scrub;
mod tracker;
mod wire;

pub use config::{
    ClassificationLabels, GitHubConfig, TitlePrefixes, DEFAULT_BASE_URL, MAX_BODY_CHARS,
};
pub use error::Error;
pub use http::API_VERSION;
pub use scrub::ScrubbedError;
pub use tracker::GitHubTracker;
