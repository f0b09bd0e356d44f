//! [`ScanHistory`] for [`SqliteStateStore`]: pages of scans, issues and closed backlog entries
//! for dashboards.

use async_trait::async_trait;
use selfmon_core::redact::RedactedText;
use selfmon_core::{
    BacklogClosure, ClosedBacklogEntry, FiledIssue, IssueEvent, IssueFilter, Page, PageRequest,
    ScanHistory, ScanId, ScanRecord, ScanReport,
};

use super::backlog::*;
use super::rows::*;
use super::values::*;
use super::SqliteStateStore;
use crate::error::Error;

#[async_trait]
impl ScanHistory for SqliteStateStore {
    async fn list_scans(&self, page: PageRequest) -> selfmon_core::Result<Page<ScanRecord>> {
        self.run_core(move |conn| {
            let total: i64 = conn
                .query_row("SELECT count(*) FROM self_monitoring_scans", [], |r| {
                    r.get(0)
                })
                .map_err(Error::sqlite("counting scans"))?;
            let (limit, offset) = limits(page);
            let sql = format!(
                "SELECT {SCAN_COLUMNS} FROM self_monitoring_scans
                 ORDER BY started_at DESC, rowid DESC LIMIT ?1 OFFSET ?2"
            );
            let mut stmt = conn.prepare(&sql).map_err(Error::sqlite("listing scans"))?;
            let mut rows = stmt
                .query([limit, offset])
                .map_err(Error::sqlite("listing scans"))?;
            let mut items = Vec::new();
            while let Some(row) = rows.next().map_err(Error::sqlite("listing scans"))? {
                items.push(scan_from_row(row)?);
            }
            Ok(Page {
                items,
                total: to_u64(Some(total)),
            })
        })
        .await
    }

    async fn list_issues(
        &self,
        filter: &IssueFilter,
        page: PageRequest,
    ) -> selfmon_core::Result<Page<FiledIssue>> {
        let filter = filter.clone();
        self.run_core(move |conn| {
            let mut clause = String::from("github_issue_number IS NOT NULL");
            let mut params: Vec<String> = Vec::new();
            if let Some(c) = filter.classification {
                params.push(c.as_str().to_string());
                clause.push_str(&format!(" AND classification = ?{}", params.len()));
            }
            if let Some(s) = filter.state {
                params.push(s.as_str().to_string());
                clause.push_str(&format!(" AND COALESCE(state, 'open') = ?{}", params.len()));
            }
            let total: i64 = conn
                .query_row(
                    &format!("SELECT count(*) FROM self_monitoring_issues WHERE {clause}"),
                    rusqlite::params_from_iter(params.iter()),
                    |r| r.get(0),
                )
                .map_err(Error::sqlite("counting issues"))?;
            let (limit, offset) = limits(page);
            let sql = format!(
                "SELECT {ISSUE_COLUMNS} FROM self_monitoring_issues WHERE {clause}
                 ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET {offset}"
            );
            let mut stmt = conn
                .prepare(&sql)
                .map_err(Error::sqlite("listing issues"))?;
            let mut rows = stmt
                .query(rusqlite::params_from_iter(params.iter()))
                .map_err(Error::sqlite("listing issues"))?;
            let mut items = Vec::new();
            while let Some(row) = rows.next().map_err(Error::sqlite("listing issues"))? {
                items.push(issue_from_row(row)?);
            }
            Ok(Page {
                items,
                total: to_u64(Some(total)),
            })
        })
        .await
    }

    async fn closed_backlog(
        &self,
        page: PageRequest,
    ) -> selfmon_core::Result<Page<ClosedBacklogEntry>> {
        self.run_core(move |conn| {
            let total: i64 = conn
                .query_row(
                    "SELECT count(*) FROM selfmon_backlog WHERE closed_at IS NOT NULL",
                    [],
                    |r| r.get(0),
                )
                .map_err(Error::sqlite("counting the closed backlog"))?;
            let (limit, offset) = limits(page);
            let sql = format!(
                "SELECT {BACKLOG_COLUMNS}, close_reason, closed_issue, closed_at
                 FROM selfmon_backlog WHERE closed_at IS NOT NULL
                 ORDER BY closed_at DESC, rowid DESC LIMIT ?1 OFFSET ?2"
            );
            let mut stmt = conn
                .prepare(&sql)
                .map_err(Error::sqlite("reading the closed backlog"))?;
            let mut rows = stmt
                .query([limit, offset])
                .map_err(Error::sqlite("reading the closed backlog"))?;
            let mut items = Vec::new();
            while let Some(row) = rows
                .next()
                .map_err(Error::sqlite("reading the closed backlog"))?
            {
                let entry = backlog_from_row(row)?;
                let e = || Error::sqlite("reading the closed backlog");
                let reason: Option<String> = row.get(BACKLOG_COLUMN_COUNT).map_err(e())?;
                let issue: Option<i64> = row.get(BACKLOG_COLUMN_COUNT + 1).map_err(e())?;
                let closed_at: Option<String> = row.get(BACKLOG_COLUMN_COUNT + 2).map_err(e())?;
                items.push(ClosedBacklogEntry {
                    closure: BacklogClosure {
                        entry_id: entry.entry_id.clone(),
                        reason: RedactedText::from_stored(&reason.unwrap_or_default()),
                        issue: issue.map(|n| to_u64(Some(n))),
                    },
                    entry,
                    closed_at: parse_time(&closed_at.unwrap_or_default()),
                });
            }
            Ok(Page {
                items,
                total: to_u64(Some(total)),
            })
        })
        .await
    }

    async fn scan_report(&self, scan_id: &ScanId) -> selfmon_core::Result<Option<ScanReport>> {
        let scan_id = scan_id.clone();
        self.run_core(move |conn| super::reports::read_report(conn, &scan_id))
            .await
    }

    async fn issue_history(
        &self,
        issue_number: u64,
        page: PageRequest,
    ) -> selfmon_core::Result<Page<IssueEvent>> {
        self.run_core(move |conn| super::reports::read_issue_events(conn, issue_number, page))
            .await
    }
}
