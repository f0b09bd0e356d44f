//! Reading GitHub's rate-limit signals, and spacing requests out.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::HeaderMap;
use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

/// How long GitHub asks to be left alone after a secondary limit that gives no `retry-after`.
pub(crate) const SECONDARY_DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// What a `403`/`429` response says about rate limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RateLimit {
    /// The primary (hourly) limit is used up until `reset_at`.
    Primary { reset_at: DateTime<Utc> },
    /// A secondary limit: wait `wait` before trying again.
    Secondary { wait: Duration },
}

/// Classifies a `403`/`429` response following GitHub's documented order: `retry-after` first,
/// then `x-ratelimit-remaining: 0` with its reset, then a message naming a secondary limit (or
/// any `429`), which means "wait at least a minute". `None`: not a rate limit (a permission error).
pub(crate) fn classify(
    status: u16,
    headers: &HeaderMap,
    message: &str,
    now: DateTime<Utc>,
) -> Option<RateLimit> {
    if status != 403 && status != 429 {
        return None;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(secs) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(RateLimit::Secondary {
            wait: Duration::from_secs(secs),
        });
    }
    if header("x-ratelimit-remaining") == Some("0") {
        let reset_at = header("x-ratelimit-reset")
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
            .unwrap_or_else(|| now + chrono::Duration::seconds(60));
        return Some(RateLimit::Primary { reset_at });
    }
    let m = message.to_ascii_lowercase();
    if status == 429 || m.contains("secondary rate limit") || m.contains("abuse") {
        return Some(RateLimit::Secondary {
            wait: SECONDARY_DEFAULT_WAIT,
        });
    }
    None
}

impl RateLimit {
    /// How long to wait from `now`. A reset already in the past (clock skew) still waits a second.
    pub fn wait_from(&self, now: DateTime<Utc>) -> Duration {
        match self {
            RateLimit::Primary { reset_at } => (*reset_at - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_secs(1)),
            RateLimit::Secondary { wait } => *wait,
        }
    }
}

/// Lets requests through one at a time, the next one starting at least `spacing` after the
/// previous one finished (stricter than measuring between sends, and what GitHub asks for).
///
/// Holding the returned guard keeps other requests of the same kind waiting, so "one at a time"
/// covers the whole request, including any rate-limit wait inside it.
#[derive(Debug)]
pub(crate) struct Spacer {
    spacing: Duration,
    last_done: Mutex<Option<Instant>>,
}

pub(crate) struct SpacerTurn<'a>(MutexGuard<'a, Option<Instant>>);

impl SpacerTurn<'_> {
    /// Records that a request has just finished.
    pub fn mark_done(&mut self) {
        *self.0 = Some(Instant::now());
    }
}

impl Spacer {
    pub fn new(spacing: Duration) -> Self {
        Spacer {
            spacing,
            last_done: Mutex::new(None),
        }
    }

    /// Waits for this request's turn: until no other request of this kind is in flight and
    /// `spacing` has passed since the previous one finished.
    pub async fn turn(&self) -> SpacerTurn<'_> {
        let guard = self.last_done.lock().await;
        if let Some(last) = *guard {
            tokio::time::sleep_until(last + self.spacing).await;
        }
        SpacerTurn(guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn exhausted_primary_limit_reports_its_reset() {
        let now = Utc.timestamp_opt(1_000, 0).unwrap();
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1002"),
        ]);
        let rl = classify(403, &h, "API rate limit exceeded", now).unwrap();
        assert_eq!(
            rl,
            RateLimit::Primary {
                reset_at: Utc.timestamp_opt(1_002, 0).unwrap()
            }
        );
        assert_eq!(rl.wait_from(now), Duration::from_secs(2));
        assert_eq!(classify(429, &h, "", now), Some(rl));
    }

    #[test]
    fn retry_after_means_a_secondary_limit_of_that_length() {
        let now = Utc::now();
        let h = headers(&[("retry-after", "7"), ("x-ratelimit-remaining", "12")]);
        assert_eq!(
            classify(403, &h, "", now),
            Some(RateLimit::Secondary {
                wait: Duration::from_secs(7)
            })
        );
    }

    #[test]
    fn secondary_limit_without_retry_after_waits_at_least_a_minute() {
        let now = Utc::now();
        let h = headers(&[("x-ratelimit-remaining", "4000")]);
        let rl = classify(
            403,
            &h,
            "You have exceeded a secondary rate limit. Please wait.",
            now,
        )
        .unwrap();
        assert_eq!(rl.wait_from(now), Duration::from_secs(60));
        assert_eq!(
            classify(429, &HeaderMap::new(), "", now),
            Some(RateLimit::Secondary {
                wait: SECONDARY_DEFAULT_WAIT
            })
        );
    }

    #[test]
    fn forbidden_without_rate_limit_signs_is_not_a_rate_limit() {
        let h = headers(&[("x-ratelimit-remaining", "4999")]);
        assert_eq!(
            classify(
                403,
                &h,
                "Resource not accessible by integration",
                Utc::now()
            ),
            None
        );
        assert_eq!(classify(500, &h, "", Utc::now()), None);
    }

    #[test]
    fn a_reset_in_the_past_still_waits_a_second() {
        let now = Utc.timestamp_opt(1_000, 0).unwrap();
        let rl = RateLimit::Primary {
            reset_at: Utc.timestamp_opt(900, 0).unwrap(),
        };
        assert_eq!(rl.wait_from(now), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn spacer_keeps_sends_at_least_the_spacing_apart() {
        let spacer = Spacer::new(Duration::from_secs(1));
        let start = Instant::now();
        let mut sends = Vec::new();
        for _ in 0..3 {
            let mut turn = spacer.turn().await;
            turn.mark_done();
            sends.push(Instant::now() - start);
        }
        assert_eq!(sends[0], Duration::ZERO);
        assert!(sends[1] >= Duration::from_secs(1));
        assert!(sends[2] - sends[1] >= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn spacer_lets_one_request_through_at_a_time() {
        let spacer = std::sync::Arc::new(Spacer::new(Duration::ZERO));
        let turn = spacer.turn().await;
        let s2 = spacer.clone();
        let waiting = tokio::spawn(async move {
            let _t = s2.turn().await;
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiting.is_finished());
        drop(turn);
        waiting.await.unwrap();
    }
}
