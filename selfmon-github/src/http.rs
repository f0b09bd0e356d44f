//! One place where requests are sent: headers, spacing, rate-limit waits, GET retries, and the
//! mapping of statuses to [`Error`] variants.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, LOCATION};
use reqwest::{Method, StatusCode, Url};
use selfmon_core::clock::{Clock, SystemClock};
use serde::de::DeserializeOwned;

use crate::config::GitHubConfig;
use crate::error::Error;
use crate::rate_limit::{classify, RateLimit, Spacer};
use crate::scrub::{ScrubbedError, Scrubber};
use crate::wire::{next_link, ErrorBody};

/// The REST API version selfmon is written against.
pub const API_VERSION: &str = "2022-11-28";

/// How many rate-limit waits one call may sit through before giving up (each is bounded by
/// `max_rate_limit_wait_secs`); guards against a server that keeps answering "wait".
const MAX_RATE_LIMIT_WAITS: u32 = 3;

/// How many redirects one call may follow (a renamed repository takes one).
pub(crate) const MAX_REDIRECTS: u32 = 3;

/// What kind of request, which decides spacing and whether a failed send may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A GET of the REST API: retried on 5xx, timeouts and connection errors.
    Read,
    /// A GET of the search API: retried like `Read`, and spaced by `search_spacing_ms`.
    Search,
    /// A mutating request, spaced by `mutation_spacing_ms`. `retry_safe` only for requests whose
    /// repetition cannot change the outcome (setting an issue's state); never for a create.
    Mutation { retry_safe: bool },
}

/// One request to send.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub url: Url,
    pub body: Option<&'a serde_json::Value>,
    pub kind: Kind,
    /// What is being done, for a 403 message (`"creating an issue"`).
    pub action: &'static str,
    /// The permission the request needs, for a 403 message.
    pub needed: &'static str,
    /// What was addressed, for a 404 message (`"issue #12"`).
    pub what: String,
}

/// A successful response, read in full.
pub(crate) struct Reply {
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
    /// Scrubbed.
    pub path: String,
    scrubber: Scrubber,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.bytes).map_err(|e| Error::InvalidResponse {
            path: self.path.clone(),
            // serde's message can quote the offending value: an echoed token.
            source: ScrubbedError::new(&e, &self.scrubber),
        })
    }

    pub fn next_link(&self) -> Option<String> {
        self.headers
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link)
            .map(str::to_string)
    }
}

/// The HTTP side of the tracker.
pub(crate) struct Http {
    client: reqwest::Client,
    /// What "now" is when a rate limit's reset time is turned into a wait.
    clock: Arc<dyn Clock>,
    base: Url,
    repository: String,
    token_env: String,
    max_wait: Duration,
    max_get_attempts: u32,
    backoff: Duration,
    mutations: Spacer,
    searches: Spacer,
    /// Every text from outside that goes into an error passes through it.
    scrubber: Scrubber,
}

impl Http {
    pub fn new(config: &GitHubConfig, token: &str) -> Result<Self, Error> {
        let base = config.api_base()?;
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static(API_VERSION),
        );
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| {
            Error::config(
                "token_env",
                format!(
                    "the value of `{}` has characters an HTTP header cannot carry; it is not a GitHub token",
                    config.token_env
                ),
            )
        })?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        let timeout = config.request_timeout();
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("selfmon/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // All repetition is decided here, per method; reqwest must not resend anything itself.
            .retry(reqwest::retry::never())
            // Nor follow redirects: its policy turns a POST answered 301 into a GET (a comment
            // "posted" that never was) and follows other hosts (where a 404 would read as a
            // deleted issue). `send` follows only what stays on the configured API.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Client {
                source: ScrubbedError::new(&e, &Scrubber::new(token)),
            })?;
        Ok(Http {
            client,
            clock: Arc::new(SystemClock),
            base,
            repository: config.repository.clone(),
            token_env: config.token_env.clone(),
            max_wait: config.max_rate_limit_wait(),
            max_get_attempts: config.max_get_attempts,
            backoff: Duration::from_millis(config.retry_backoff_ms),
            mutations: Spacer::new(Duration::from_millis(config.mutation_spacing_ms)),
            searches: Spacer::new(Duration::from_millis(config.search_spacing_ms)),
            scrubber: Scrubber::new(token),
        })
    }

    /// Uses `clock` for every "now" (rate-limit waits, recently-closed windows).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// Now, by the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `base/segment/segment...`, each segment percent-encoded (label names may hold anything).
    pub fn endpoint(&self, segments: &[&str]) -> Result<Url, Error> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|_| Error::config("base_url", "cannot carry a path"))?;
            path.pop_if_empty();
            path.extend(segments);
        }
        Ok(url)
    }

    /// `base/repos/OWNER/NAME/segment...`.
    pub fn repo_endpoint(&self, segments: &[&str]) -> Result<Url, Error> {
        let (owner, name) = self
            .repository
            .split_once('/')
            .ok_or_else(|| Error::config("repository", "expected `owner/name`"))?;
        let mut all = vec!["repos", owner, name];
        all.extend_from_slice(segments);
        self.endpoint(&all)
    }

    /// Parses a pagination link, refusing one outside the configured API (the token would go there).
    pub fn checked_link(&self, link: &str) -> Result<Url, Error> {
        let foreign = || Error::ForeignLink {
            url: self.scrubber.scrub(link),
            base: self.scrubber.scrub(self.base.as_str()),
        };
        let url = Url::parse(link).map_err(|_| foreign())?;
        if self.within_api(&url) {
            Ok(url)
        } else {
            Err(foreign())
        }
    }

    /// Whether `url` is on the configured API: same scheme, host and port, under its path. Only
    /// such URLs are sent the token.
    fn within_api(&self, url: &Url) -> bool {
        let base_path = self.base.path().trim_end_matches('/');
        let same_origin = url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default();
        let under_base = base_path.is_empty()
            || url.path() == base_path
            || url.path().starts_with(&format!("{base_path}/"));
        same_origin && under_base
    }

    /// Where a redirect answering `method url` may be followed, or the [`Error::Moved`] that
    /// says why not. Followed: a redirect on the configured API (GitHub's answer for a renamed
    /// or transferred repository), for a GET any of 301/302/303/307/308, for other methods only
    /// 307/308, which repeat the method and body (301-303 would turn them into a GET), and at
    /// most [`MAX_REDIRECTS`] per call.
    fn redirect_target(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        method: &Method,
        url: &Url,
        hops: u32,
    ) -> Result<Url, Error> {
        let location = headers.get(LOCATION).and_then(|v| v.to_str().ok());
        let target = location.and_then(|l| url.join(l).ok());
        let moved = |why: String| Error::Moved {
            status: status.as_u16(),
            method: method.as_str().to_string(),
            path: self.scrubber.scrub(url.path()),
            location: match (&target, location) {
                (Some(t), _) => self.scrubber.scrub(t.as_str()),
                (None, Some(l)) => self.scrubber.scrub(l),
                (None, None) => "nowhere (no Location header)".to_string(),
            },
            why,
        };
        let Some(target) = target.clone() else {
            return Err(moved("the redirect has no usable Location".into()));
        };
        if !self.within_api(&target) {
            return Err(moved(format!(
                "it leaves the configured API {}, and the token is sent nowhere else",
                self.scrubber.scrub(self.base.as_str())
            )));
        }
        let keeps_method = matches!(
            status,
            StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
        );
        if *method != Method::GET && !keeps_method {
            return Err(moved(format!(
                "a {} answered {} would be repeated as a GET",
                method,
                status.as_u16()
            )));
        }
        if hops >= MAX_REDIRECTS {
            return Err(moved(format!(
                "the request was already redirected {MAX_REDIRECTS} times"
            )));
        }
        Ok(target)
    }

    /// Sends `call`, waiting out rate limits within the configured maximum and retrying transient
    /// failures when the call's [`Kind`] allows. Returns only successful (2xx) replies.
    pub async fn send(&self, call: Call<'_>) -> Result<Reply, Error> {
        let mut turn = match call.kind {
            Kind::Read => None,
            Kind::Search => Some(self.searches.turn().await),
            Kind::Mutation { .. } => Some(self.mutations.turn().await),
        };
        let retry_safe = !matches!(call.kind, Kind::Mutation { retry_safe: false });
        let method = call.method.as_str().to_string();
        let mut url = call.url.clone();
        // Scrubbed: it goes into errors and logs, and after a redirect it is GitHub's.
        let mut path = self.scrubber.scrub(url.path());
        let mut attempt: u32 = 1;
        let mut rate_limit_waits: u32 = 0;
        let mut redirects: u32 = 0;
        loop {
            tracing::debug!(%method, %path, attempt, "GitHub request");
            let outcome = self.attempt(&call, &url).await;
            if let Some(turn) = turn.as_mut() {
                turn.mark_done();
            }
            let transient = match outcome {
                Ok((status, headers, bytes)) if status.is_success() => {
                    return Ok(Reply {
                        headers,
                        bytes,
                        path,
                        scrubber: self.scrubber.clone(),
                    })
                }
                Ok((status, headers, _))
                    if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) =>
                {
                    // A redirect was not acted on: following it repeats nothing that happened.
                    let next =
                        self.redirect_target(status, &headers, &call.method, &url, redirects)?;
                    redirects += 1;
                    url = next;
                    let from = std::mem::replace(&mut path, self.scrubber.scrub(url.path()));
                    tracing::warn!(%method, %from, to = %path, status = status.as_u16(), "GitHub redirected the request; if the repository was renamed or transferred, update `repository` in the configuration");
                    continue;
                }
                Ok((status, headers, bytes)) => {
                    let body = ErrorBody::parse(&bytes, &self.scrubber);
                    if let Some(limit) =
                        classify(status.as_u16(), &headers, &body.message, self.now())
                    {
                        let wait = limit.wait_from(self.now());
                        if wait <= self.max_wait && rate_limit_waits < MAX_RATE_LIMIT_WAITS {
                            rate_limit_waits += 1;
                            tracing::warn!(%method, %path, wait_secs = wait.as_secs_f64(), limit = ?limit, "GitHub rate limit; waiting");
                            // A rate-limited request was rejected, not processed: sending the same
                            // request again, even a create, cannot file anything twice.
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        return Err(self.rate_limit_error(limit, wait));
                    }
                    if status.is_server_error() {
                        Error::Server {
                            status: status.as_u16(),
                            method: method.clone(),
                            path: path.clone(),
                            message: body.describe(),
                        }
                    } else {
                        return Err(
                            self.status_error(status, &headers, body, &call, &method, &path)
                        );
                    }
                }
                Err(e) if e.is_builder() => {
                    return Err(Error::Client {
                        source: ScrubbedError::new(&e, &self.scrubber),
                    })
                }
                Err(e) if e.is_timeout() => Error::Timeout {
                    method: method.clone(),
                    path: path.clone(),
                    source: ScrubbedError::new(&e, &self.scrubber),
                },
                Err(e) => Error::Connection {
                    method: method.clone(),
                    path: path.clone(),
                    source: ScrubbedError::new(&e, &self.scrubber),
                },
            };
            if !retry_safe || attempt >= self.max_get_attempts {
                return Err(transient);
            }
            let delay = self.backoff.saturating_mul(1 << (attempt - 1).min(10));
            tracing::warn!(%method, %path, attempt, delay_ms = delay.as_millis() as u64, error = %transient, "GitHub request failed; retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        call: &Call<'_>,
        url: &Url,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), reqwest::Error> {
        let mut request = self.client.request(call.method.clone(), url.clone());
        if let Some(body) = call.body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        Ok((status, headers, bytes.to_vec()))
    }

    fn rate_limit_error(&self, limit: RateLimit, wait: Duration) -> Error {
        let max_wait_secs = self.max_wait.as_secs();
        match limit {
            RateLimit::Primary { reset_at } => Error::RateLimited {
                reset_at,
                max_wait_secs,
            },
            RateLimit::Secondary { .. } => Error::SecondaryRateLimited {
                retry_after_secs: wait.as_secs(),
                retry_at: self
                    .now()
                    .checked_add_signed(chrono::Duration::seconds(
                        i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
                    ))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
                max_wait_secs,
            },
        }
    }

    fn status_error(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: ErrorBody,
        call: &Call<'_>,
        method: &str,
        path: &str,
    ) -> Error {
        let repository = self.repository.clone();
        match status.as_u16() {
            401 => Error::Unauthorized {
                env_var: self.token_env.clone(),
            },
            // GitHub's answer to a comment on a locked conversation: "Unable to create comment
            // because issue is locked." Only this issue refuses; the token is fine.
            403 if body.message.to_ascii_lowercase().contains("is locked") => Error::Locked {
                action: call.action,
                repository,
                what: call.what.clone(),
                message: body.describe(),
            },
            403 => {
                let accepted = ["x-accepted-github-permissions", "x-accepted-oauth-scopes"]
                    .iter()
                    .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
                    .map(str::trim)
                    .find(|v| !v.is_empty())
                    .map(|v| self.scrubber.scrub(v));
                Error::Forbidden {
                    action: call.action,
                    repository,
                    needed: call.needed,
                    accepted,
                    message: body.describe(),
                }
            }
            404 if !body.json && !body.message.trim().is_empty() => Error::NotTheApi {
                base_url: self.scrubber.scrub(self.base.as_str()),
                what: call.what.clone(),
                // A web page: on one line, so the error stays one line.
                message: body
                    .message
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            },
            404 => Error::NotFound {
                repository,
                what: call.what.clone(),
            },
            410 if body.message.to_ascii_lowercase().contains("deleted") => Error::Gone {
                what: call.what.clone(),
                message: body.describe(),
            },
            410 => Error::IssuesDisabled { repository },
            422 => Error::Validation {
                message: body.describe(),
            },
            other => Error::UnexpectedStatus {
                status: other,
                method: method.to_string(),
                path: path.to_string(),
                message: body.describe(),
            },
        }
    }
}
