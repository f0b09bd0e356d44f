//! Per-scan reports and the issue events indexed from them (`selfmon_scan_reports`,
//! `selfmon_issue_events`): written by [`ScanLedger::save_scan_report`](selfmon_core::ScanLedger),
//! read by [`ScanHistory`](selfmon_core::ScanHistory).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use selfmon_core::redact::RedactedText;
use selfmon_core::{IssueEvent, IssueEventKind, Page, PageRequest, ScanId, ScanReport};

use super::rows::*;
use super::values::*;
use crate::error::{Error, Result};

/// Stores `report` (bounded) in place of an earlier report of the same scan, with its issue events.
pub(super) fn save_report(
    conn: &mut Connection,
    report: &ScanReport,
    now_text: &str,
) -> Result<()> {
    let mut report = report.clone();
    report.bound();
    let json = to_json("scan report", &report)?;
    let events = report.issue_events();
    let scan_id = report.record.scan_id.as_str();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Error::sqlite("saving a scan report"))?;
    tx.execute(
        "INSERT OR REPLACE INTO selfmon_scan_reports (scan_id, report, saved_at)
         VALUES (?1, ?2, ?3)",
        rusqlite::params![scan_id, json, now_text],
    )
    .map_err(Error::sqlite("saving a scan report"))?;
    tx.execute(
        "DELETE FROM selfmon_issue_events WHERE scan_id = ?1",
        [scan_id],
    )
    .map_err(Error::sqlite("saving a scan report"))?;
    for e in &events {
        tx.execute(
            "INSERT INTO selfmon_issue_events (scan_id, issue_number, at, kind, records, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                scan_id,
                to_i64(e.issue_number),
                time_text(e.at),
                e.kind.as_str(),
                to_i64(e.records),
                e.detail.as_str()
            ],
        )
        .map_err(Error::sqlite("saving a scan report's issue events"))?;
    }
    tx.commit()
        .map_err(Error::sqlite("committing a scan report"))
}

/// The stored record of `scan_id` with its report; `None` when there is no such scan.
pub(super) fn read_report(conn: &Connection, scan_id: &ScanId) -> Result<Option<ScanReport>> {
    let record = conn
        .query_row(
            &format!("SELECT {SCAN_COLUMNS} FROM self_monitoring_scans WHERE scan_id = ?1"),
            [scan_id.as_str()],
            |r| Ok(scan_from_row(r)),
        )
        .optional()
        .map_err(Error::sqlite("reading a scan"))?
        .transpose()?;
    let Some(record) = record else {
        return Ok(None);
    };
    let text: Option<String> = conn
        .query_row(
            "SELECT report FROM selfmon_scan_reports WHERE scan_id = ?1",
            [scan_id.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(Error::sqlite("reading a scan report"))?;
    Ok(Some(match text {
        Some(t) => ScanReport {
            record,
            ..from_json::<ScanReport>("scan report", &t)?
        },
        None => ScanReport {
            details_recorded: false,
            ..ScanReport::new(record)
        },
    }))
}

/// A page of what scans did about issue `issue_number`, newest first.
pub(super) fn read_issue_events(
    conn: &Connection,
    issue_number: u64,
    page: PageRequest,
) -> Result<Page<IssueEvent>> {
    let number = to_i64(issue_number);
    let total: i64 = conn
        .query_row(
            "SELECT count(*) FROM selfmon_issue_events WHERE issue_number = ?1",
            [number],
            |r| r.get(0),
        )
        .map_err(Error::sqlite("counting issue events"))?;
    let (limit, offset) = limits(page);
    let mut stmt = conn
        .prepare(
            "SELECT scan_id, at, kind, records, detail FROM selfmon_issue_events
             WHERE issue_number = ?1 ORDER BY at DESC, id ASC LIMIT ?2 OFFSET ?3",
        )
        .map_err(Error::sqlite("listing issue events"))?;
    let items = stmt
        .query_map(rusqlite::params![number, limit, offset], |r| {
            let kind: String = r.get(2)?;
            Ok(IssueEvent {
                issue_number,
                scan_id: ScanId(r.get(0)?),
                at: parse_time(&r.get::<_, String>(1)?),
                kind: parse_event_kind(&kind),
                records: to_u64(r.get::<_, Option<i64>>(3)?),
                detail: RedactedText::from_stored(&r.get::<_, String>(4)?),
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(Error::sqlite("listing issue events"))?;
    Ok(Page {
        items,
        total: to_u64(Some(total)),
    })
}

/// Deletes reports and events whose scan is gone (after retention removed it); returns how many
/// reports.
pub(super) fn prune_orphans(tx: &Connection) -> Result<u64> {
    let reports = tx
        .execute(
            "DELETE FROM selfmon_scan_reports
             WHERE scan_id NOT IN (SELECT scan_id FROM self_monitoring_scans)",
            [],
        )
        .map_err(Error::sqlite("pruning scan reports"))?;
    tx.execute(
        "DELETE FROM selfmon_issue_events
         WHERE scan_id NOT IN (SELECT scan_id FROM self_monitoring_scans)",
        [],
    )
    .map_err(Error::sqlite("pruning issue events"))?;
    Ok(reports as u64)
}

fn parse_event_kind(s: &str) -> IssueEventKind {
    [
        IssueEventKind::Filed,
        IssueEventKind::KnownSignature,
        IssueEventKind::Duplicate,
        IssueEventKind::Commented,
        IssueEventKind::Regression,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
    .unwrap_or(IssueEventKind::Duplicate)
}
