//! The scan ledger: the single-flight lease, scan records and the cursor they define.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{ScanEffects, ScanRecord};

/// A single-flight lease held by one scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Who holds it (a process and scan id).
    pub owner: String,
    /// When it lapses.
    pub expires_at: DateTime<Utc>,
}

/// The answer to [`ScanLedger::try_acquire_lease`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseOutcome {
    /// The caller holds the lease.
    Acquired(Lease),
    /// Someone else holds an unexpired lease.
    Held(Lease),
}

/// Which scans ran, how they ended, and who may run the next one: what a scan needs before it reads
/// a single record.
///
/// Contract:
/// - Every method is durable on return: after `Ok`, a crash does not lose the write.
/// - The lease is exclusive across every process sharing the store; an expired lease may be taken
///   over. `release_lease` of a lease the caller no longer holds is a no-op.
/// - `last_successful_cursor` is the `log_id_end` of the most recently completed successful scan
///   that was not a dry run (by completion time), or 0 before any; a failed scan or a dry run never
///   moves it, and a later successful scan with a lower end (a recreated log) does.
/// - `commit_scan` makes a successful scan's record and all its effects durable atomically.
/// - Errors are `Error::Adapter { component: StateStore, retryable }`; a busy database is retryable,
///   a corrupt one is not. Every method may be retried after a retryable error.
// Adding a method? List it in the `forward!` at the end of this file too.
#[async_trait]
pub trait ScanLedger: Send + Sync {
    /// Takes the single-flight lease for `ttl` unless another owner holds an unexpired one. The
    /// owner that already holds it renews it.
    async fn try_acquire_lease(
        &self,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<LeaseOutcome>;

    /// Releases a lease the caller holds; a no-op when it no longer holds it.
    async fn release_lease(&self, lease: &Lease) -> Result<()>;

    /// The cursor: `log_id_end` of the latest successful scan, 0 before the first.
    async fn last_successful_cursor(&self) -> Result<i64>;

    /// Closes scans left RUNNING (by a crashed process) as FAILURE with `reason` and completion
    /// time `now`; returns how many. Only call while holding the lease.
    async fn close_abandoned_scans(&self, now: DateTime<Utc>, reason: &str) -> Result<u64>;

    /// Inserts a scan record (status RUNNING).
    async fn begin_scan(&self, record: &ScanRecord) -> Result<()>;

    /// Updates a scan record (matched by `scan_id`) to its final state (SUCCESS or FAILURE)
    /// without other effects (a failed scan, a dry run).
    async fn finish_scan(&self, record: &ScanRecord) -> Result<()>;

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
        async fn release_lease(&self, lease: &Lease) -> Result<()>;
        async fn last_successful_cursor(&self) -> Result<i64>;
        async fn close_abandoned_scans(&self, now: DateTime<Utc>, reason: &str) -> Result<u64>;
        async fn begin_scan(&self, record: &ScanRecord) -> Result<()>;
        async fn finish_scan(&self, record: &ScanRecord) -> Result<()>;
        async fn commit_scan(&self, record: &ScanRecord, effects: &ScanEffects) -> Result<()>;
    }
}
