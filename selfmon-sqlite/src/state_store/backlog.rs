//! Backlog and occurrence rows, written inside the caller's transaction.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row};
use selfmon_core::{BacklogClosure, BacklogEntry, IssueSignature, Level, ScanId};

use super::rows::*;
use super::values::*;
use crate::error::{Error, Result};

/// Adds a signature id to a filed issue's (once); an issue this store never filed is ignored.
pub(super) fn add_issue_signature(tx: &Connection, added: &IssueSignature) -> Result<()> {
    let Some(issue_id) = issue_row_id(tx, added.issue)? else {
        return Ok(());
    };
    let text: Option<String> = tx
        .query_row(
            "SELECT signature_ids FROM self_monitoring_issues WHERE id = ?1",
            [issue_id],
            |r| r.get(0),
        )
        .map_err(Error::sqlite("reading an issue's signatures"))?;
    let mut ids = decode_list(text);
    if ids.contains(&added.signature_id) {
        return Ok(());
    }
    ids.push(added.signature_id.clone());
    tx.execute(
        "UPDATE self_monitoring_issues SET signature_ids = ?1 WHERE id = ?2",
        rusqlite::params![to_json("signature ids", &ids)?, issue_id],
    )
    .map_err(Error::sqlite("recording an issue's signatures"))?;
    Ok(())
}

/// Adds occurrences to a filed issue and its history; an issue this store never filed is ignored.
pub(super) fn add_occurrences(
    tx: &Connection,
    issue_number: u64,
    count: u64,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(issue_id) = issue_row_id(tx, issue_number)? else {
        tracing::debug!(
            issue_number,
            "occurrences for an issue this store did not file"
        );
        return Ok(());
    };
    let now_text = time_text(now);
    tx.execute(
        "UPDATE self_monitoring_issues SET occurrences = COALESCE(occurrences, 0) + ?1,
                 last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < ?2 THEN ?2
                 ELSE last_seen_at END WHERE id = ?3",
        rusqlite::params![to_i64(count), now_text, issue_id],
    )
    .map_err(Error::sqlite("recording occurrences"))?;
    tx.execute(
        "INSERT INTO self_monitoring_occurrences (issue_id, issue_number, seen_at, count)
                 VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![issue_id, to_i64(issue_number), now_text, to_i64(count)],
    )
    .map_err(Error::sqlite("recording occurrences"))?;
    Ok(())
}

pub(super) const BACKLOG_COLUMNS: &str =
    "entry_id, fingerprint, severity, finding, evidence, templates,
    occurrences, deferred_by, deferred_at";
pub(super) const BACKLOG_COLUMN_COUNT: usize = 9;

/// Adds a deferred finding to the backlog; an open entry with the same fingerprint absorbs it.
pub(super) fn defer_backlog_entry(tx: &Connection, e: &BacklogEntry) -> Result<()> {
    let merged = tx
        .execute(
            "UPDATE selfmon_backlog SET occurrences = occurrences + ?1
             WHERE fingerprint = ?2 AND closed_at IS NULL",
            rusqlite::params![to_i64(e.occurrences), e.fingerprint],
        )
        .map_err(Error::sqlite("deferring a finding"))?;
    if merged > 0 {
        return Ok(());
    }
    tx.execute(
        "INSERT OR IGNORE INTO selfmon_backlog (entry_id, fingerprint, severity, severity_rank,
         finding, evidence, templates, occurrences, deferred_by, deferred_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        rusqlite::params![
            e.entry_id,
            e.fingerprint,
            e.severity.as_str(),
            severity_rank(e.severity),
            to_json("finding", &e.finding)?,
            to_json("evidence", &e.evidence)?,
            to_json("templates", &e.templates)?,
            to_i64(e.occurrences),
            e.deferred_by.as_str(),
            time_text(e.deferred_at),
        ],
    )
    .map_err(Error::sqlite("deferring a finding"))?;
    Ok(())
}

/// Closes an open backlog entry, giving its occurrences to the covering issue when asked; an
/// entry that is not open is left alone.
pub(super) fn close_backlog_entry(
    tx: &Connection,
    c: &BacklogClosure,
    give_occurrences: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    let occurrences: Option<i64> = tx
        .query_row(
            "SELECT occurrences FROM selfmon_backlog WHERE entry_id = ?1 AND closed_at IS NULL",
            [&c.entry_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(Error::sqlite("closing a backlog entry"))?;
    let Some(occurrences) = occurrences else {
        return Ok(());
    };
    tx.execute(
        "UPDATE selfmon_backlog SET closed_at = ?1, close_reason = ?2, closed_issue = ?3
         WHERE entry_id = ?4",
        rusqlite::params![
            time_text(now),
            c.reason.as_str(),
            c.issue.map(to_i64),
            c.entry_id
        ],
    )
    .map_err(Error::sqlite("closing a backlog entry"))?;
    if let Some(issue) = c.issue.filter(|_| give_occurrences) {
        add_occurrences(tx, issue, to_u64(Some(occurrences)), now)?;
    }
    Ok(())
}

pub(super) fn severity_rank(l: Level) -> i64 {
    Level::ALL.iter().position(|x| *x == l).unwrap_or(0) as i64
}

pub(super) fn backlog_from_row(r: &Row<'_>) -> Result<BacklogEntry> {
    let e = || Error::sqlite("reading the backlog");
    let s = |i: usize| r.get::<_, String>(i).map_err(e());
    let severity_text = s(2)?;
    let severity = Level::from_str(&severity_text).map_err(|err| Error::InvalidStoredValue {
        column: "selfmon_backlog.severity",
        value: severity_text.clone(),
        reason: err.to_string(),
    })?;
    Ok(BacklogEntry {
        entry_id: s(0)?,
        fingerprint: s(1)?,
        severity,
        finding: from_json("finding", &s(3)?)?,
        evidence: from_json("evidence", &s(4)?)?,
        templates: from_json("templates", &s(5)?)?,
        occurrences: to_u64(r.get::<_, Option<i64>>(6).map_err(e())?),
        deferred_by: ScanId(s(7)?),
        deferred_at: parse_time(&s(8)?),
    })
}
