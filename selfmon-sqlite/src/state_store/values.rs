//! Stored forms of times, JSON documents and integers.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use selfmon_core::PageRequest;
use serde::Serialize;

use super::MAX_PAGE_SIZE;
use crate::error::{Error, Result};

/// The stored form of a time: RFC 3339 UTC with microseconds, which sorts in time order.
pub(crate) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Now by the system clock, in the stored form (schema migrations, which run before any clock
/// can be injected).
pub(crate) fn now_text() -> String {
    time_text(Utc::now())
}

/// Reads a stored time leniently (RFC 3339, or ISO 8601 without offset taken as UTC). An
/// unreadable value reads as the Unix epoch (logged), so one bad row never hides the others.
pub(super) fn parse_time(s: &str) -> DateTime<Utc> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return d.with_timezone(&Utc);
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return n.and_utc();
        }
    }
    tracing::warn!(
        value = t,
        "unreadable stored timestamp; using the Unix epoch"
    );
    DateTime::<Utc>::UNIX_EPOCH
}

pub(super) fn to_json<T: Serialize>(what: &'static str, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|source| Error::Json {
        action: "encode",
        what,
        source,
    })
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(what: &'static str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|source| Error::Json {
        action: "decode",
        what,
        source,
    })
}

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn to_u64(v: Option<i64>) -> u64 {
    v.map_or(0, |v| u64::try_from(v).unwrap_or(0))
}

pub(super) fn to_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

pub(super) fn limits(page: PageRequest) -> (i64, i64) {
    (to_i64(page.limit.min(MAX_PAGE_SIZE)), to_i64(page.offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_sort_in_time_order_and_read_leniently() {
        let a = time_text(DateTime::from_timestamp(1_000, 5_000).unwrap());
        let b = time_text(DateTime::from_timestamp(1_000_000, 0).unwrap());
        assert!(a < b);
        assert_eq!(
            parse_time(&a),
            DateTime::from_timestamp(1_000, 5_000).unwrap()
        );
        assert_eq!(
            parse_time("2025-01-02 03:04:05.5"),
            DateTime::parse_from_rfc3339("2025-01-02T03:04:05.5Z").unwrap()
        );
        assert_eq!(parse_time("garbage"), DateTime::<Utc>::UNIX_EPOCH);
    }
}
