//! [`ScanLedger`] for [`PgStateStore`]: the lease, scan rows, the cursor and the atomic scan commit.

use super::*;
use selfmon_core::redact::RedactedText;
use selfmon_core::{ScanLedger, ScanReport};

#[async_trait]
impl ScanLedger for PgStateStore {
    async fn try_acquire_lease(
        &self,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> selfmon_core::Result<LeaseOutcome> {
        core(self.acquire_lease(owner, ttl, now).await.map(|(o, _)| o))
    }

    async fn try_acquire_lease_for(
        &self,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> selfmon_core::Result<LeaseOutcome> {
        core(
            self.change_lease(LeaseChange::Acquire, holder, ttl, now)
                .await
                .map(|(o, _)| o),
        )
    }

    async fn take_over_lease(
        &self,
        stale: &Lease,
        holder: &LeaseHolder,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> selfmon_core::Result<LeaseOutcome> {
        core(
            self.change_lease(LeaseChange::TakeOver(stale), holder, ttl, now)
                .await
                .map(|(o, _)| o),
        )
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> selfmon_core::Result<LeaseRenewal> {
        let holder = LeaseHolder {
            owner: lease.owner.clone(),
            host: lease.host.clone(),
            pid: lease.pid,
            process_start: lease.process_start.clone(),
        };
        core(
            self.change_lease(LeaseChange::Renew, &holder, ttl, now)
                .await
                .map(|(o, _)| match o {
                    LeaseOutcome::Acquired(l) => LeaseRenewal::Renewed(l),
                    LeaseOutcome::Held(l) if l.owner.is_empty() => LeaseRenewal::Lost(None),
                    LeaseOutcome::Held(l) => LeaseRenewal::Lost(Some(l)),
                }),
        )
    }

    async fn release_lease(&self, lease: &Lease) -> selfmon_core::Result<()> {
        core(self.release(lease).await)
    }

    async fn last_successful_cursor(&self) -> selfmon_core::Result<i64> {
        let s = self.inner.s.clone();
        core(
            async {
                with_conn!(self, |c| {
                    Ok(latest_success(c, &s).await?.map_or(0, |(_, end)| end))
                })
            }
            .await,
        )
    }

    async fn last_successful_anchor(
        &self,
    ) -> selfmon_core::Result<Option<selfmon_core::LogAnchor>> {
        let s = self.inner.s.clone();
        core(async { with_conn!(self, |c| { latest_success_anchor(c, &s).await }) }.await)
    }

    async fn close_abandoned_scans(
        &self,
        now: DateTime<Utc>,
        reason: &RedactedText,
    ) -> selfmon_core::Result<u64> {
        let reason = reason.clone();
        let s = self.inner.s.clone();
        core(async { fenced!(self, "closing abandoned scans", |tx| {
                let rows = tx
                    .query(
                        &format!(
                            "SELECT record FROM {s}.selfmon_scans WHERE status = 'RUNNING' FOR UPDATE"
                        ),
                        &[],
                    )
                    .await
                    .map_err(Error::query("closing abandoned scans"))?;
                let mut closed = 0;
                for row in rows {
                    let mut r: ScanRecord = from_json("scan record", row.col(0)?)?;
                    r.status = ScanStatus::Failure;
                    r.completed_at = Some(now);
                    r.error_message = Some(reason.clone());
                    let doc = to_json("scan record", &r)?;
                    tx.execute(
                        &format!(
                            "UPDATE {s}.selfmon_scans SET status = $2, completed_at = $3, record = $4
                             WHERE scan_id = $1"
                        ),
                        &[&r.scan_id.as_str(), &r.status.as_str(), &now, &doc],
                    )
                    .await
                    .map_err(Error::query("closing abandoned scans"))?;
                    closed += 1;
                }
                Ok(closed)
            })
        }.await)
    }

    async fn begin_scan(&self, record: &ScanRecord) -> selfmon_core::Result<()> {
        core(self.write_scan(record).await)
    }

    async fn finish_scan(&self, record: &ScanRecord) -> selfmon_core::Result<()> {
        core(self.write_scan(record).await)
    }

    async fn save_scan_report(&self, report: &ScanReport) -> selfmon_core::Result<()> {
        let mut report = report.clone();
        report.bound();
        let s = self.inner.s.clone();
        core(
            async {
                let doc = to_json("scan report", &report)?;
                let events = report
                    .issue_events()
                    .iter()
                    .map(|e| Ok((to_i64(e.issue_number), e.at, to_json("issue event", e)?)))
                    .collect::<Result<Vec<_>>>()?;
                let scan_id = report.record.scan_id.as_str();
                fenced!(self, "saving a scan report", |tx| {
                    tx.execute(
                        &format!(
                            "INSERT INTO {s}.selfmon_scan_reports (scan_id, report, saved_at)
                             VALUES ($1, $2, now())
                             ON CONFLICT (scan_id) DO UPDATE SET report = EXCLUDED.report,
                             saved_at = EXCLUDED.saved_at"
                        ),
                        &[&scan_id, &doc],
                    )
                    .await
                    .map_err(Error::query("saving a scan report"))?;
                    tx.execute(
                        &format!("DELETE FROM {s}.selfmon_issue_events WHERE scan_id = $1"),
                        &[&scan_id],
                    )
                    .await
                    .map_err(Error::query("saving a scan report"))?;
                    for (number, at, event) in &events {
                        tx.execute(
                            &format!(
                                "INSERT INTO {s}.selfmon_issue_events
                                 (scan_id, issue_number, at, event) VALUES ($1, $2, $3, $4)"
                            ),
                            &[&scan_id, number, at, event],
                        )
                        .await
                        .map_err(Error::query("saving a scan report's issue events"))?;
                    }
                    Ok(())
                })
            }
            .await,
        )
    }

    async fn commit_scan(
        &self,
        record: &ScanRecord,
        effects: &ScanEffects,
    ) -> selfmon_core::Result<()> {
        let s = self.inner.s.clone();
        let r = record.clone();
        let effects = effects.clone();
        let doc = core(to_json("scan record", &r))?;
        core(
            async {
                fenced!(self, "committing a scan", |tx| {
                    let now = r.completed_at.unwrap_or(r.started_at);
                    for o in &effects.occurrences {
                        add_occurrences(tx, &s, o.issue, o.count, now).await?;
                    }
                    for entry in &effects.deferred {
                        defer_backlog_entry(tx, &s, entry).await?;
                    }
                    for closure in &effects.closed {
                        close_backlog_entry(tx, &s, closure, true, now).await?;
                    }
                    for added in &effects.issue_signatures {
                        add_issue_signature(tx, &s, added).await?;
                    }
                    if let Some(state) = &effects.template_state {
                        tx.execute(
                            &format!(
                                "INSERT INTO {s}.selfmon_template_state (id, state) VALUES (1, $1)
                                 ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state"
                            ),
                            &[state],
                        )
                        .await
                        .map_err(Error::query("saving learned templates"))?;
                    }
                    write_scan_in(tx, &s, &r, doc).await
                })
            }
            .await,
        )
    }
}
