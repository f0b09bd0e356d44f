//! [`ScanHistory`] for [`PgStateStore`]: paged, read-only scan and issue history.

use super::*;
use selfmon_core::ScanHistory;

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
}
