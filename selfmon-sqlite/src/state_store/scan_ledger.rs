//! [`ScanLedger`] for [`SqliteStateStore`]: the lease row, scan rows, the cursor and the atomic
//! scan commit.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::TransactionBehavior;
use selfmon_core::redact::RedactedText;
use selfmon_core::{
    Lease, LeaseHolder, LeaseOutcome, LeaseRenewal, LogAnchor, ScanEffects, ScanLedger, ScanRecord,
    ScanReport,
};

use super::backlog::*;
use super::rows::*;
use super::values::*;
use super::{SqliteStateStore, LEASE_NAME};
use crate::error::Error;

#[async_trait]
impl ScanLedger for SqliteStateStore {
    async fn try_acquire_lease(
        &self,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> selfmon_core::Result<LeaseOutcome> {
        self.try_acquire_lease_for(&LeaseHolder::named(owner), ttl, now)
            .await
    }

    async fn try_acquire_lease_for(
        &self,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> selfmon_core::Result<LeaseOutcome> {
        let holder = holder.clone();
        self.run_core(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::sqlite("taking the lease"))?;
            if let Some(held) = read_lease(&tx)? {
                if held.owner != holder.owner && held.expires_at > now {
                    return Ok(LeaseOutcome::Held(held));
                }
            }
            let lease = write_lease(&tx, &holder, ttl, now)?;
            tx.commit().map_err(Error::sqlite("committing the lease"))?;
            Ok(LeaseOutcome::Acquired(lease))
        })
        .await
    }

    async fn take_over_lease(
        &self,
        stale: &Lease,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> selfmon_core::Result<LeaseOutcome> {
        let (stale_owner, holder) = (stale.owner.clone(), holder.clone());
        self.run_core(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::sqlite("taking over the lease"))?;
            if let Some(held) = read_lease(&tx)? {
                if held.owner != stale_owner && held.owner != holder.owner && held.expires_at > now
                {
                    return Ok(LeaseOutcome::Held(held));
                }
            }
            let lease = write_lease(&tx, &holder, ttl, now)?;
            tx.commit()
                .map_err(Error::sqlite("committing the lease takeover"))?;
            Ok(LeaseOutcome::Acquired(lease))
        })
        .await
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> selfmon_core::Result<LeaseRenewal> {
        let owner = lease.owner.clone();
        self.run_core(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::sqlite("renewing the lease"))?;
            match read_lease(&tx)? {
                Some(mut held) if held.owner == owner => {
                    held.expires_at = lease_expiry(ttl, now);
                    tx.execute(
                        "UPDATE selfmon_lease SET expires_at = ?1 WHERE name = ?2 AND owner = ?3",
                        rusqlite::params![time_text(held.expires_at), LEASE_NAME, owner],
                    )
                    .map_err(Error::sqlite("renewing the lease"))?;
                    tx.commit()
                        .map_err(Error::sqlite("committing the lease renewal"))?;
                    Ok(LeaseRenewal::Renewed(held))
                }
                other => Ok(LeaseRenewal::Lost(other)),
            }
        })
        .await
    }

    async fn release_lease(&self, lease: &Lease) -> selfmon_core::Result<()> {
        let owner = lease.owner.clone();
        self.run_core(move |conn| {
            conn.execute(
                "DELETE FROM selfmon_lease WHERE name = ?1 AND owner = ?2",
                rusqlite::params![LEASE_NAME, owner],
            )
            .map_err(Error::sqlite("releasing the lease"))?;
            Ok(())
        })
        .await
    }

    async fn last_successful_cursor(&self) -> selfmon_core::Result<i64> {
        self.run_core(|conn| Ok(latest_success(conn)?.map_or(0, |(_, end)| end)))
            .await
    }

    async fn last_successful_anchor(&self) -> selfmon_core::Result<Option<LogAnchor>> {
        self.run_core(|conn| latest_success_anchor(conn)).await
    }

    async fn close_abandoned_scans(
        &self,
        now: DateTime<Utc>,
        reason: &RedactedText,
    ) -> selfmon_core::Result<u64> {
        let reason = reason.to_string();
        self.run_core(move |conn| {
            let n = conn
                .execute(
                    "UPDATE self_monitoring_scans SET status = 'FAILURE', completed_at = ?1,
                     error_message = ?2 WHERE status = 'RUNNING'",
                    rusqlite::params![time_text(now), reason],
                )
                .map_err(Error::sqlite("closing abandoned scans"))?;
            Ok(n as u64)
        })
        .await
    }

    async fn begin_scan(&self, record: &ScanRecord) -> selfmon_core::Result<()> {
        let record = record.clone();
        self.run_core(move |conn| write_scan(conn, &record)).await
    }

    async fn finish_scan(&self, record: &ScanRecord) -> selfmon_core::Result<()> {
        let record = record.clone();
        self.run_core(move |conn| write_scan(conn, &record)).await
    }

    async fn save_scan_report(&self, report: &ScanReport) -> selfmon_core::Result<()> {
        let report = report.clone();
        let now = self.now_text();
        self.run_core(move |conn| super::reports::save_report(conn, &report, &now))
            .await
    }

    async fn commit_scan(
        &self,
        record: &ScanRecord,
        effects: &ScanEffects,
    ) -> selfmon_core::Result<()> {
        let record = record.clone();
        let effects = effects.clone();
        self.run_core(move |conn| {
            let now = record.completed_at.unwrap_or(record.started_at);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::sqlite("committing a scan"))?;
            for o in &effects.occurrences {
                add_occurrences(&tx, o.issue, o.count, now)?;
            }
            for entry in &effects.deferred {
                defer_backlog_entry(&tx, entry)?;
            }
            for closure in &effects.closed {
                close_backlog_entry(&tx, closure, true, now)?;
            }
            for added in &effects.issue_signatures {
                add_issue_signature(&tx, added)?;
            }
            if let Some(state) = &effects.template_state {
                tx.execute(
                    "INSERT OR REPLACE INTO selfmon_template_state (id, state, updated_at)
                     VALUES (1, ?1, ?2)",
                    rusqlite::params![state, time_text(now)],
                )
                .map_err(Error::sqlite("saving the template state"))?;
            }
            write_scan_in(&tx, &record)?;
            tx.commit().map_err(Error::sqlite("committing a scan"))?;
            Ok(())
        })
        .await
    }
}
