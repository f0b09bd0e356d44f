//! The scan ledger: the single-flight lease, scan records and the cursor they define.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{LogAnchor, ScanEffects, ScanRecord, ScanReport};
use crate::redact::RedactedText;

/// A single-flight lease held by one scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Who holds it: a name unique to one acquisition (the engine uses `<process>/<scan id>`), so
    /// it doubles as the token that renewals and releases must present.
    pub owner: String,
    /// The holder's host name; empty when not recorded.
    #[serde(default)]
    pub host: String,
    /// The holder's process id, when recorded.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The holder process's start identity (see [`crate::lease::process_start`]), so a reused
    /// pid is not mistaken for the holder; `None` when not recorded.
    #[serde(default)]
    pub process_start: Option<String>,
    /// When this holder took the lease.
    #[serde(default = "unix_epoch")]
    pub acquired_at: DateTime<Utc>,
    /// When it lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

fn unix_epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

impl Lease {
    /// "pid 42 on host-a", "host-a", or "an unrecorded process": who holds it, for people.
    pub fn holder_description(&self) -> String {
        match (self.pid, self.host.is_empty()) {
            (Some(pid), false) => format!("pid {pid} on {}", self.host),
            (Some(pid), true) => format!("pid {pid}"),
            (None, false) => self.host.clone(),
            (None, true) => "an unrecorded process".to_string(),
        }
    }
}

/// Who asks for the lease: see [`crate::lease`] for how the identity is judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// The lease owner name, unique to this acquisition.
    pub owner: String,
    /// Host name; empty when unknown.
    pub host: String,
    /// Process id.
    pub pid: Option<u32>,
    /// Process start identity.
    pub process_start: Option<String>,
}

/// The answer to [`ScanLedger::try_acquire_lease`] and [`ScanLedger::take_over_lease`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseOutcome {
    /// The caller holds the lease.
    Acquired(Lease),
    /// Someone else holds an unexpired lease.
    Held(Lease),
}

/// The answer to [`ScanLedger::renew_lease`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseRenewal {
    /// The caller still holds the lease; it now expires at the returned lease's `expires_at`.
    Renewed(Lease),
    /// The caller no longer holds the lease: it was taken over (the current holder, if any) or
    /// released. The caller must stop the work the lease protects.
    Lost(Option<Lease>),
}

/// Which scans ran, how they ended, and who may run the next one: what a scan needs before it reads
/// a single record.
///
/// Contract:
/// - Every method is durable on return: after `Ok`, a crash does not lose the write.
/// - The lease is exclusive across every process sharing the store: at any time at most one owner
///   holds it. An owner name identifies one acquisition (never reused), so renewals and releases
///   match on it. An expired lease may be acquired by anyone; an unexpired one only through
///   [`take_over_lease`](ScanLedger::take_over_lease) by a caller that has proven its holder dead.
///   A holder learns that it lost the lease from [`renew_lease`](ScanLedger::renew_lease)
///   (`Lost`), which it calls every third of the TTL while it works. `release_lease` of a lease
///   the caller no longer holds is a no-op.
/// - `last_successful_cursor` is the `log_id_end` of the most recently completed successful scan
///   that was not a dry run (by completion time), or 0 before any; a failed scan or a dry run never
///   moves it, and a later successful scan with a lower end (a recreated log) does.
/// - `commit_scan` makes a successful scan's record and all its effects durable atomically.
/// - Errors: a busy or unreachable database is `Error::Unavailable { component: StateStore }`
///   (retryable); otherwise `Error::Adapter { component: StateStore, retryable }` (a corrupt
///   database is not retryable). Every method may be retried after a retryable error.
// Adding a method? List it in the `forward!` at the end of this file too.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ScanLedger: Send + Sync {
    /// Takes the single-flight lease for `ttl` unless another owner holds an unexpired one,
    /// recording no process identity (so a dead holder cannot be recognised: prefer
    /// [`try_acquire_lease_for`](ScanLedger::try_acquire_lease_for)).
    ///
    /// Grants when there is no lease, when the current one expired (`expires_at <= now`), or when
    /// `owner` already holds it (then it is renewed to `now + ttl`). Otherwise `Held` with the
    /// current lease, changing nothing.
    async fn try_acquire_lease(
        &self,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseOutcome>;

    /// [`try_acquire_lease`](ScanLedger::try_acquire_lease) recording the holder's host and
    /// process identity in the lease (`host`, `pid`, `process_start`, and `acquired_at = now`),
    /// so another scan can tell whether the holder still runs.
    ///
    /// The default records only the owner name; every store shipped with selfmon overrides it.
    async fn try_acquire_lease_for(
        &self,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseOutcome> {
        self.try_acquire_lease(&holder.owner, ttl, now).await
    }

    /// Replaces `stale` with a lease for `holder` (until `now + ttl`), whether or not `stale`
    /// expired, but only if the current lease is still exactly `stale`'s acquisition (same
    /// owner): a compare-and-swap. The caller must have proven `stale`'s holder dead (same host,
    /// its process gone; see [`crate::lease::holder_state`]).
    ///
    /// Returns `Acquired` on success (also when no lease is held any more), `Held(current)` when
    /// another owner holds it now. The default cannot take over: it answers `Held(stale)`, so the
    /// caller waits for the lease to expire.
    async fn take_over_lease(
        &self,
        stale: &Lease,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseOutcome> {
        let _ = (holder, ttl, now);
        Ok(LeaseOutcome::Held(stale.clone()))
    }

    /// Extends the caller's lease to `now + ttl` if it still holds it (same owner), even when it
    /// expired meanwhile but nobody took it. Otherwise `Lost` with the current lease, if any:
    /// the caller must stop what the lease protects. Idempotent; the caller may retry an error.
    ///
    /// The default renews through [`try_acquire_lease`](ScanLedger::try_acquire_lease), which
    /// re-grants to the same owner.
    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseRenewal> {
        Ok(
            match self.try_acquire_lease(&lease.owner, ttl, now).await? {
                LeaseOutcome::Acquired(l) => LeaseRenewal::Renewed(l),
                LeaseOutcome::Held(other) => LeaseRenewal::Lost(Some(other)),
            },
        )
    }

    /// Releases a lease the caller holds (matched by owner); a no-op if it no longer does.
    async fn release_lease(&self, lease: &Lease) -> Result<()>;

    /// The cursor: `log_id_end` of the latest successful scan, 0 before the first.
    async fn last_successful_cursor(&self) -> Result<i64>;

    /// The [`log_anchor`](ScanRecord::log_anchor) of the same scan `last_successful_cursor`
    /// reads (the latest successful non-dry-run scan), `None` before any or when that scan
    /// stored none. The engine uses it to recognise a recreated log that has already grown past
    /// the cursor.
    ///
    /// The default returns `None`: a store that keeps no anchor still works, but then only a
    /// recreated log whose newest id is below the cursor is recognised (records of a recreated
    /// log that grew past the cursor are skipped). Both shipped stores implement it, and the
    /// conformance suite checks it.
    async fn last_successful_anchor(&self) -> Result<Option<LogAnchor>> {
        Ok(None)
    }

    /// Closes scans left RUNNING (by a crashed process) as FAILURE with `reason` (kept as their
    /// `error_message`, already redacted) and completion time `now`; returns how many. Only call
    /// while holding the lease.
    async fn close_abandoned_scans(&self, now: DateTime<Utc>, reason: &RedactedText)
        -> Result<u64>;

    /// Inserts a scan record (status RUNNING).
    async fn begin_scan(&self, record: &ScanRecord) -> Result<()>;

    /// Updates a scan record (matched by `scan_id`) to its final state (SUCCESS or FAILURE)
    /// without other effects (a failed scan, a dry run).
    async fn finish_scan(&self, record: &ScanRecord) -> Result<()>;

    /// Stores the report of a scan, bounded by [`ScanReport::bound`] (implementations apply it,
    /// so every store cuts an oversized report the same way), replacing an earlier report of the
    /// same scan id, and indexes its [`ScanReport::issue_events`] for
    /// [`ScanHistory::issue_history`](crate::ScanHistory::issue_history). Called before
    /// [`finish_scan`](ScanLedger::finish_scan) or [`commit_scan`](ScanLedger::commit_scan); the
    /// report's `record` is informative only (the scan row stays authoritative). Retention removes
    /// a scan's report and its events together with the scan.
    async fn save_scan_report(&self, report: &ScanReport) -> Result<()>;

    /// Finishes a successful scan in one atomic step: stores `record` (status SUCCESS, its
    /// `log_id_end` becoming the cursor unless it is a dry run), adds `effects.occurrences` to the
    /// filed issues (numbers this store never recorded are ignored), adds `effects.deferred` to
    /// the backlog (an open entry with the same fingerprint absorbs the new entry's occurrences
    /// instead), closes `effects.closed` (each closure's issue receives the entry's occurrences;
    /// closing an entry that is no longer open does nothing) and saves `effects.template_state`.
    /// After a crash either all of it happened or none did.
    async fn commit_scan(&self, record: &ScanRecord, effects: &ScanEffects) -> Result<()>;
}

crate::traits::forward::forward! {
    ScanLedger {
        async fn try_acquire_lease(&self, owner: &str, ttl: Duration, now: DateTime<Utc>) -> Result<LeaseOutcome>;
        async fn try_acquire_lease_for(&self, holder: &LeaseHolder, ttl: Duration, now: DateTime<Utc>) -> Result<LeaseOutcome>;
        async fn take_over_lease(&self, stale: &Lease, holder: &LeaseHolder, ttl: Duration, now: DateTime<Utc>) -> Result<LeaseOutcome>;
        async fn renew_lease(&self, lease: &Lease, ttl: Duration, now: DateTime<Utc>) -> Result<LeaseRenewal>;
        async fn release_lease(&self, lease: &Lease) -> Result<()>;
        async fn last_successful_cursor(&self) -> Result<i64>;
        async fn last_successful_anchor(&self) -> Result<Option<LogAnchor>>;
        async fn close_abandoned_scans(&self, now: DateTime<Utc>, reason: &RedactedText) -> Result<u64>;
        async fn begin_scan(&self, record: &ScanRecord) -> Result<()>;
        async fn finish_scan(&self, record: &ScanRecord) -> Result<()>;
        async fn save_scan_report(&self, report: &ScanReport) -> Result<()>;
        async fn commit_scan(&self, record: &ScanRecord, effects: &ScanEffects) -> Result<()>;
    }
}
