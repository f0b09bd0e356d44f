//! Scan history, filed issues, the cursor and the outbox.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{FiledIssue, FilingIntent, IssueState, ScanRecord};

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

/// The answer to [`StateStore::try_acquire_lease`] and [`StateStore::take_over_lease`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseOutcome {
    /// The caller holds the lease.
    Acquired(Lease),
    /// Someone else holds an unexpired lease.
    Held(Lease),
}

/// The answer to [`StateStore::renew_lease`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseRenewal {
    /// The caller still holds the lease; it now expires at the returned lease's `expires_at`.
    Renewed(Lease),
    /// The caller no longer holds the lease: it was taken over (the current holder, if any) or
    /// released. The caller must stop the work the lease protects.
    Lost(Option<Lease>),
}

/// A page request for history queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// Zero-based offset.
    pub offset: u64,
    /// Page size (implementations cap it at 500).
    pub limit: u64,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            offset: 0,
            limit: 50,
        }
    }
}

/// A page of results with the total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// How many exist in all.
    pub total: u64,
}

/// A filter for filed-issue queries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueFilter {
    /// Only this classification.
    pub classification: Option<crate::model::Classification>,
    /// Only this state.
    pub state: Option<IssueState>,
}

/// Durable state of self-monitoring.
///
/// Contract:
/// - Every method is durable on return: after `Ok`, a crash does not lose the write.
/// - The lease is exclusive across every process sharing the store: at any time at most one owner
///   holds it. An owner name identifies one acquisition (never reused), so renewals and releases
///   match on it. An expired lease may be acquired by anyone; an unexpired one only through
///   [`take_over_lease`](StateStore::take_over_lease) by a caller that has proven its holder dead.
///   A holder learns that it lost the lease from [`renew_lease`](StateStore::renew_lease)
///   (`Lost`), which it calls every third of the TTL while it works. `release_lease` of a lease
///   the caller no longer holds is a no-op.
/// - `last_successful_cursor` is the `log_id_end` of the most recently completed successful scan, or
///   0 before any.
/// - `complete_intent` records the issue row and removes the intent atomically; after a crash either
///   both happened or neither did.
/// - Errors are `Error::Adapter { component: StateStore, retryable }`; a busy database is retryable,
///   a corrupt one is not.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Takes the single-flight lease for `ttl` unless another owner holds an unexpired one,
    /// recording no process identity (so a dead holder cannot be recognised: prefer
    /// [`try_acquire_lease_for`](StateStore::try_acquire_lease_for)).
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

    /// [`try_acquire_lease`](StateStore::try_acquire_lease) recording the holder's host and
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
    /// The default renews through [`try_acquire_lease`](StateStore::try_acquire_lease), which
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

    /// Closes scans left RUNNING (by a crashed process) as FAILURE with `reason`; returns how many.
    /// Only call while holding the lease.
    async fn close_abandoned_scans(&self, now: DateTime<Utc>, reason: &str) -> Result<u64>;

    /// Inserts a scan record (status RUNNING).
    async fn begin_scan(&self, record: &ScanRecord) -> Result<()>;

    /// Updates a scan record to its final state (SUCCESS or FAILURE).
    async fn finish_scan(&self, record: &ScanRecord) -> Result<()>;

    /// Every issue selfmon filed, for dedup.
    async fn filed_issues(&self) -> Result<Vec<FiledIssue>>;

    /// Records `count` new occurrences of a filed issue seen at `now`, and its latest known state.
    async fn record_occurrences(
        &self,
        issue_number: u64,
        count: u64,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Updates the state of a filed issue (closed, reopened) as the tracker reports it.
    async fn set_issue_state(&self, issue_number: u64, state: IssueState) -> Result<()>;

    /// Commits a filing intent before the tracker is called (the outbox).
    async fn record_intent(&self, intent: &FilingIntent) -> Result<()>;

    /// Intents not yet completed, oldest first.
    async fn open_intents(&self) -> Result<Vec<FilingIntent>>;

    /// Records the filed issue and removes the intent, atomically.
    async fn complete_intent(&self, intent_id: &str, issue: &FiledIssue) -> Result<()>;

    /// Scans, newest first.
    async fn list_scans(&self, page: PageRequest) -> Result<Page<ScanRecord>>;

    /// Filed issues, newest first.
    async fn list_issues(
        &self,
        filter: &IssueFilter,
        page: PageRequest,
    ) -> Result<Page<FiledIssue>>;

    /// The templater's learned state (an opaque JSON document written by
    /// [`save_template_state`](StateStore::save_template_state)), so the same message maps to the
    /// same template across scans. `None` before the first save. The default keeps nothing.
    async fn load_template_state(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// Replaces the templater's learned state. The default discards it.
    async fn save_template_state(&self, _state: &str) -> Result<()> {
        Ok(())
    }
}
