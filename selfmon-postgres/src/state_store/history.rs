//! [`ScanHistory`] for [`PgStateStore`]: paged, read-only scan and issue history.

use super::*;
use selfmon_core::{IssueEvent, ScanHistory, ScanId, ScanReport};

#[async_trait]
impl ScanHistory for PgStateStore {
    async fn list_scans(&self, page: PageRequest) -> selfmon_core::Result<Page<ScanRecord>> {
        let s = self.inner.s.clone();
        let (limit, offset) = limits(page);
        core(
            async {
                with_conn!(self, |c| {
                    let total: i64 = c
                        .query_one(&format!("SELECT count(*) FROM {s}.selfmon_scans"), &[])
                        .await
                        .map_err(Error::query("counting scans"))?
                        .col(0)?;
                    let rows = c
                        .query(
                            &format!(
                                "SELECT record FROM {s}.selfmon_scans
                             ORDER BY started_at DESC, seq DESC LIMIT $1 OFFSET $2"
                            ),
                            &[&limit, &offset],
                        )
                        .await
                        .map_err(Error::query("listing scans"))?;
                    let items = rows
                        .iter()
                        .map(|r| from_json("scan record", r.col(0)?))
                        .collect::<Result<Vec<_>>>()?;
                    Ok(Page {
                        items,
                        total: to_u64(total),
                    })
                })
            }
            .await,
        )
    }

    async fn list_issues(
        &self,
        filter: &IssueFilter,
        page: PageRequest,
    ) -> selfmon_core::Result<Page<FiledIssue>> {
        let s = self.inner.s.clone();
        let (limit, offset) = limits(page);
        let class = filter.classification.map(|c| c.as_str().to_string());
        let state = filter.state.map(|st| st.as_str().to_string());
        core(
            async {
                with_conn!(self, |c| {
                    let cond = "($1::text IS NULL OR classification = $1)
                            AND ($2::text IS NULL OR state = $2)";
                    let total: i64 = c
                        .query_one(
                            &format!("SELECT count(*) FROM {s}.selfmon_issues WHERE {cond}"),
                            &[&class, &state],
                        )
                        .await
                        .map_err(Error::query("counting issues"))?
                        .col(0)?;
                    let rows = c
                        .query(
                            &format!(
                                "SELECT issue FROM {s}.selfmon_issues WHERE {cond}
                             ORDER BY created_at DESC, seq DESC LIMIT $3 OFFSET $4"
                            ),
                            &[&class, &state, &limit, &offset],
                        )
                        .await
                        .map_err(Error::query("listing issues"))?;
                    let items = rows
                        .iter()
                        .map(|r| from_json("filed issue", r.col(0)?))
                        .collect::<Result<Vec<_>>>()?;
                    Ok(Page {
                        items,
                        total: to_u64(total),
                    })
                })
            }
            .await,
        )
    }

    async fn closed_backlog(
        &self,
        page: PageRequest,
    ) -> selfmon_core::Result<Page<ClosedBacklogEntry>> {
        let s = self.inner.s.clone();
        let (limit, offset) = limits(page);
        core(
            async {
                with_conn!(self, |c| {
                    let total: i64 = c
                        .query_one(
                            &format!(
                                "SELECT count(*) FROM {s}.selfmon_backlog WHERE closed_at IS NOT NULL"
                            ),
                            &[],
                        )
                        .await
                        .map_err(Error::query("counting the closed backlog"))?
                        .col(0)?;
                    let rows = c
                        .query(
                            &format!(
                                "SELECT entry, closure, closed_at FROM {s}.selfmon_backlog
                                 WHERE closed_at IS NOT NULL
                                 ORDER BY closed_at DESC, seq DESC LIMIT $1 OFFSET $2"
                            ),
                            &[&limit, &offset],
                        )
                        .await
                        .map_err(Error::query("reading the closed backlog"))?;
                    let items = rows
                        .iter()
                        .map(|r| {
                            Ok(ClosedBacklogEntry {
                                entry: from_json("backlog entry", r.col(0)?)?,
                                closure: from_json("backlog closure", r.col(1)?)?,
                                closed_at: r.col(2)?,
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    Ok(Page {
                        items,
                        total: to_u64(total),
                    })
                })
            }
            .await,
        )
    }

    async fn scan_report(&self, scan_id: &ScanId) -> selfmon_core::Result<Option<ScanReport>> {
        let s = self.inner.s.clone();
        let id = scan_id.as_str().to_string();
        core(
            async {
                with_conn!(self, |c| {
                    let Some(row) = c
                        .query_opt(
                            &format!(
                                "SELECT c.record, r.report FROM {s}.selfmon_scans c
                                 LEFT JOIN {s}.selfmon_scan_reports r ON r.scan_id = c.scan_id
                                 WHERE c.scan_id = $1"
                            ),
                            &[&id],
                        )
                        .await
                        .map_err(Error::query("reading a scan report"))?
                    else {
                        return Ok(None);
                    };
                    let record: ScanRecord = from_json("scan record", row.col(0)?)?;
                    let report: Option<serde_json::Value> = row.col(1)?;
                    Ok(Some(match report {
                        Some(doc) => ScanReport {
                            record,
                            ..from_json::<ScanReport>("scan report", doc)?
                        },
                        None => ScanReport {
                            details_recorded: false,
                            ..ScanReport::new(record)
                        },
                    }))
                })
            }
            .await,
        )
    }

    async fn issue_history(
        &self,
        issue_number: u64,
        page: PageRequest,
    ) -> selfmon_core::Result<Page<IssueEvent>> {
        let s = self.inner.s.clone();
        let (limit, offset) = limits(page);
        let number = to_i64(issue_number);
        core(
            async {
                with_conn!(self, |c| {
                    let total: i64 = c
                        .query_one(
                            &format!(
                                "SELECT count(*) FROM {s}.selfmon_issue_events
                                 WHERE issue_number = $1"
                            ),
                            &[&number],
                        )
                        .await
                        .map_err(Error::query("counting issue events"))?
                        .col(0)?;
                    let rows = c
                        .query(
                            &format!(
                                "SELECT event FROM {s}.selfmon_issue_events WHERE issue_number = $1
                                 ORDER BY at DESC, seq ASC LIMIT $2 OFFSET $3"
                            ),
                            &[&number, &limit, &offset],
                        )
                        .await
                        .map_err(Error::query("listing issue events"))?;
                    let items = rows
                        .iter()
                        .map(|r| from_json("issue event", r.col(0)?))
                        .collect::<Result<Vec<_>>>()?;
                    Ok(Page {
                        items,
                        total: to_u64(total),
                    })
                })
            }
            .await,
        )
    }
}
