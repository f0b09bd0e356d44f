//! Scan and issue rows: how records are written and read back.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{named_params, Connection, OptionalExtension, Row, TransactionBehavior};
use selfmon_core::redact::{RedactedText, Redactor};
use selfmon_core::{
    Classification, DuplicateCounts, ErrorCode, FiledIssue, IssueRef, IssueState, Lease,
    LeaseHolder, LogAnchor, ScanId, ScanRecord, ScanStatus, ScanTrigger,
};

use super::values::*;
use super::LEASE_NAME;
use crate::error::{Error, Result};

pub(super) const SCAN_COLUMNS: &str =
    "scan_id, trigger, status, started_at, completed_at, log_id_start,
    log_id_end, records_read, signatures, novel_signatures, known_signatures, ignored_signatures,
    findings, rejected_findings, issues_created, duplicates_by_error_code,
    duplicates_by_fingerprint, duplicates_by_similarity, comments_added, regressions, deferred,
    analysis_ran, model, prompt_version, cost_usd, input_tokens, output_tokens, gap_records,
    cursor_reset, dry_run, error_message, backlog, log_anchor_id, log_anchor_digest,
    log_anchor_read_id, log_anchor_read_digest, analysis_failures";

pub(super) const ISSUE_COLUMNS: &str =
    "id, scan_id, github_issue_number, github_issue_url, classification,
    title, error_codes, fingerprint, source_log_ids, source_files, created_at, error_type,
    templates, signature_ids, state, occurrences, last_seen_at, regression_noted_for";

pub(super) fn write_scan(conn: &mut Connection, r: &ScanRecord) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Error::sqlite("writing a scan"))?;
    write_scan_in(&tx, r)?;
    tx.commit().map_err(Error::sqlite("committing a scan"))?;
    Ok(())
}

/// Inserts or updates a scan row inside the caller's transaction.
pub(super) fn write_scan_in(tx: &Connection, r: &ScanRecord) -> Result<()> {
    let last_read = r.log_anchor.as_ref().and_then(|a| a.last_read.as_deref());
    let params = named_params! {
        ":scan_id": r.scan_id.as_str(),
        ":trigger": r.trigger.as_str(),
        ":status": r.status.as_str(),
        ":started_at": time_text(r.started_at),
        ":completed_at": r.completed_at.map(time_text),
        ":log_id_start": r.log_id_start,
        ":log_id_end": r.log_id_end,
        ":records_read": to_i64(r.records_read),
        ":signatures": to_i64(r.signatures),
        ":novel_signatures": to_i64(r.novel_signatures),
        ":known_signatures": to_i64(r.known_signatures),
        ":ignored_signatures": to_i64(r.ignored_signatures),
        ":findings": to_i64(r.findings),
        ":rejected_findings": to_i64(r.rejected_findings),
        ":issues_created": to_i64(r.issues_created),
        ":dup_code": r.duplicates.by_error_code,
        ":dup_fp": r.duplicates.by_fingerprint,
        ":dup_sim": r.duplicates.by_similarity,
        ":comments_added": to_i64(r.comments_added),
        ":regressions": to_i64(r.regressions),
        ":deferred": to_i64(r.deferred),
        ":analysis_ran": r.analysis_ran,
        ":model": r.model,
        ":prompt_version": r.prompt_version,
        ":cost_usd": r.cost_usd,
        ":input_tokens": r.input_tokens.map(to_i64),
        ":output_tokens": r.output_tokens.map(to_i64),
        ":gap_records": to_i64(r.gap_records),
        ":cursor_reset": r.cursor_reset,
        ":dry_run": r.dry_run,
        ":error_message": r.error_message.as_deref(),
        ":backlog": to_i64(r.backlog),
        ":anchor_id": r.log_anchor.as_ref().map(|a| a.id),
        ":anchor_digest": r.log_anchor.as_ref().map(|a| a.digest.as_str()),
        ":read_id": last_read.map(|a| a.id),
        ":read_digest": last_read.map(|a| a.digest.as_str()),
        ":analysis_failures": r.analysis_failures,
    };
    let updated = tx
        .execute(
            "UPDATE self_monitoring_scans SET trigger = :trigger, status = :status,
             started_at = :started_at, completed_at = :completed_at, log_id_start = :log_id_start,
             log_id_end = :log_id_end, records_read = :records_read, signatures = :signatures,
             novel_signatures = :novel_signatures, known_signatures = :known_signatures,
             ignored_signatures = :ignored_signatures, findings = :findings,
             rejected_findings = :rejected_findings, issues_created = :issues_created,
             duplicates_by_error_code = :dup_code, duplicates_by_fingerprint = :dup_fp,
             duplicates_by_similarity = :dup_sim, comments_added = :comments_added,
             regressions = :regressions, deferred = :deferred, analysis_ran = :analysis_ran,
             model = :model, prompt_version = :prompt_version, cost_usd = :cost_usd,
             input_tokens = :input_tokens, output_tokens = :output_tokens,
             gap_records = :gap_records, cursor_reset = :cursor_reset, dry_run = :dry_run,
             error_message = :error_message, backlog = :backlog, log_anchor_id = :anchor_id,
             log_anchor_digest = :anchor_digest, log_anchor_read_id = :read_id,
             log_anchor_read_digest = :read_digest, analysis_failures = :analysis_failures
             WHERE scan_id = :scan_id",
            params,
        )
        .map_err(Error::sqlite("writing a scan"))?;
    if updated == 0 {
        tx.execute(
            "INSERT INTO self_monitoring_scans (scan_id, trigger, status, started_at, completed_at,
             log_id_start, log_id_end, records_read, signatures, novel_signatures,
             known_signatures, ignored_signatures, findings, rejected_findings, issues_created,
             duplicates_by_error_code, duplicates_by_fingerprint, duplicates_by_similarity,
             comments_added, regressions, deferred, analysis_ran, model, prompt_version, cost_usd,
             input_tokens, output_tokens, gap_records, cursor_reset, dry_run, error_message,
             backlog, log_anchor_id, log_anchor_digest, log_anchor_read_id,
             log_anchor_read_digest, analysis_failures)
             VALUES (:scan_id, :trigger, :status, :started_at, :completed_at, :log_id_start,
             :log_id_end, :records_read, :signatures, :novel_signatures, :known_signatures,
             :ignored_signatures, :findings, :rejected_findings, :issues_created, :dup_code,
             :dup_fp, :dup_sim, :comments_added, :regressions, :deferred, :analysis_ran, :model,
             :prompt_version, :cost_usd, :input_tokens, :output_tokens, :gap_records,
             :cursor_reset, :dry_run, :error_message, :backlog, :anchor_id, :anchor_digest,
             :read_id, :read_digest, :analysis_failures)",
            params,
        )
        .map_err(Error::sqlite("writing a scan"))?;
    }
    Ok(())
}

pub(super) fn scan_from_row(r: &Row<'_>) -> Result<ScanRecord> {
    let e = Error::sqlite("reading a scan");
    let res: rusqlite::Result<ScanRecord> = (|| {
        let status_text: String = r.get(2)?;
        let trigger_text: Option<String> = r.get(1)?;
        let u = |i: usize| r.get::<_, Option<i64>>(i).map(to_u64);
        let b = |i: usize| r.get::<_, Option<i64>>(i).map(|v| v.unwrap_or(0) != 0);
        let status = parse_status(&status_text).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!(
                    "unknown scan status {}; expected RUNNING, SUCCESS or FAILURE",
                    selfmon_core::text::quoted(&status_text)
                )
                .into(),
            )
        })?;
        let log_id_start = r.get::<_, Option<i64>>(5)?.unwrap_or(0);
        Ok(ScanRecord {
            scan_id: ScanId(r.get(0)?),
            trigger: match trigger_text.as_deref() {
                Some("manual") => ScanTrigger::Manual,
                _ => ScanTrigger::Scheduled,
            },
            status,
            started_at: parse_time(&r.get::<_, Option<String>>(3)?.unwrap_or_default()),
            completed_at: r.get::<_, Option<String>>(4)?.map(|s| parse_time(&s)),
            log_id_start,
            log_id_end: r.get::<_, Option<i64>>(6)?.unwrap_or(log_id_start),
            records_read: u(7)?,
            signatures: u(8)?,
            novel_signatures: u(9)?,
            known_signatures: u(10)?,
            ignored_signatures: u(11)?,
            findings: u(12)?,
            rejected_findings: u(13)?,
            issues_created: u(14)?,
            duplicates: DuplicateCounts {
                by_error_code: to_u32(u(15)?),
                by_fingerprint: to_u32(u(16)?),
                by_similarity: to_u32(u(17)?),
            },
            comments_added: u(18)?,
            regressions: u(19)?,
            deferred: u(20)?,
            analysis_ran: b(21)?,
            model: r.get(22)?,
            prompt_version: r
                .get::<_, Option<i64>>(23)?
                .and_then(|v| u32::try_from(v).ok()),
            cost_usd: r.get(24)?,
            input_tokens: r.get::<_, Option<i64>>(25)?.map(|v| to_u64(Some(v))),
            output_tokens: r.get::<_, Option<i64>>(26)?.map(|v| to_u64(Some(v))),
            gap_records: u(27)?,
            cursor_reset: b(28)?,
            dry_run: b(29)?,
            // Read back through the redactor: stored text is not trusted to be redacted.
            error_message: r
                .get::<_, Option<String>>(30)?
                .map(|m| Redactor::shared().redacted(&m)),
            backlog: u(31)?,
            log_anchor: anchor_from(
                r.get::<_, Option<i64>>(32)?,
                r.get::<_, Option<String>>(33)?,
                r.get::<_, Option<i64>>(34)?,
                r.get::<_, Option<String>>(35)?,
            ),
            analysis_failures: to_u32(u(36)?),
        })
    })();
    res.map_err(e)
}

pub(super) fn parse_status(s: &str) -> Option<ScanStatus> {
    match s.trim().to_ascii_uppercase().as_str() {
        "RUNNING" => Some(ScanStatus::Running),
        "SUCCESS" => Some(ScanStatus::Success),
        "FAILURE" | "FAILED" => Some(ScanStatus::Failure),
        _ => None,
    }
}

pub(super) fn insert_issue(conn: &Connection, i: &FiledIssue) -> Result<()> {
    conn.execute(
        "INSERT INTO self_monitoring_issues (scan_id, github_issue_number, github_issue_url,
         classification, title, error_codes, fingerprint, source_log_ids, source_files, created_at,
         error_type, templates, signature_ids, state, occurrences, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        rusqlite::params![
            i.scan_id.as_str(),
            to_i64(i.issue.number),
            i.issue.url,
            i.classification.as_str(),
            i.title.as_str(),
            to_json("error codes", &i.error_codes)?,
            i.fingerprint,
            to_json("source log ids", &i.source_log_ids)?,
            to_json("source files", &i.source_files)?,
            time_text(i.created_at),
            i.error_type.as_deref(),
            to_json("templates", &i.templates)?,
            to_json("signature ids", &i.signature_ids)?,
            i.issue.state.as_str(),
            to_i64(i.occurrences),
            time_text(i.last_seen_at),
        ],
    )
    .map_err(Error::sqlite("recording a filed issue"))?;
    Ok(())
}

pub(super) fn update_issue(conn: &Connection, id: i64, i: &FiledIssue) -> Result<()> {
    conn.execute(
        "UPDATE self_monitoring_issues SET scan_id = ?1, github_issue_url = ?2,
         classification = ?3, title = ?4, error_codes = ?5, fingerprint = ?6,
         source_log_ids = ?7, source_files = ?8, error_type = ?9, templates = ?10,
         signature_ids = ?11, state = ?12 WHERE id = ?13",
        rusqlite::params![
            i.scan_id.as_str(),
            i.issue.url,
            i.classification.as_str(),
            i.title.as_str(),
            to_json("error codes", &i.error_codes)?,
            i.fingerprint,
            to_json("source log ids", &i.source_log_ids)?,
            to_json("source files", &i.source_files)?,
            i.error_type.as_deref(),
            to_json("templates", &i.templates)?,
            to_json("signature ids", &i.signature_ids)?,
            i.issue.state.as_str(),
            id,
        ],
    )
    .map_err(Error::sqlite("updating a filed issue"))?;
    Ok(())
}

pub(super) fn issue_from_row(r: &Row<'_>) -> Result<FiledIssue> {
    let e = || Error::sqlite("reading a filed issue");
    let s = |i: usize| r.get::<_, Option<String>>(i).map_err(e());
    let classification_text = s(4)?.unwrap_or_default();
    let classification = Classification::from_str(&classification_text).map_err(|err| {
        Error::InvalidStoredValue {
            column: "self_monitoring_issues.classification",
            value: classification_text.clone(),
            reason: err.to_string(),
        }
    })?;
    let number = r.get::<_, Option<i64>>(2).map_err(e())?;
    let created_at = parse_time(&s(10)?.unwrap_or_default());
    let state = match s(14)?.as_deref().map(str::trim) {
        Some(st) if st.eq_ignore_ascii_case("closed") => IssueState::Closed,
        _ => IssueState::Open,
    };
    Ok(FiledIssue {
        scan_id: ScanId(s(1)?.unwrap_or_default()),
        issue: IssueRef {
            number: to_u64(number),
            url: s(3)?.unwrap_or_default(),
            state,
        },
        title: RedactedText::from_stored(&s(5)?.unwrap_or_default()),
        classification,
        error_codes: decode_list(s(6)?)
            .into_iter()
            .filter_map(|c| ErrorCode::parse(c.trim()).ok())
            .collect(),
        fingerprint: s(7)?.unwrap_or_default(),
        source_log_ids: decode_list(s(8)?)
            .into_iter()
            .filter_map(|v| v.trim().parse().ok())
            .collect(),
        source_files: decode_list(s(9)?)
            .iter()
            .map(|f| RedactedText::from_stored(f))
            .collect(),
        created_at,
        error_type: s(11)?.map(|t| RedactedText::from_stored(&t)),
        templates: decode_list(s(12)?),
        signature_ids: decode_list(s(13)?),
        occurrences: to_u64(r.get::<_, Option<i64>>(15).map_err(e())?),
        last_seen_at: s(16)?.map_or(created_at, |t| parse_time(&t)),
        regression_noted_for: s(17)?.map(|t| parse_time(&t)),
    })
}

/// A list column: a JSON array (what selfmon writes) or comma-separated text (older CIDX rows).
pub(super) fn decode_list(text: Option<String>) -> Vec<String> {
    let Some(text) = text else {
        return Vec::new();
    };
    let t = text.trim();
    if t.is_empty() {
        return Vec::new();
    }
    if let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(t) {
        return items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect();
    }
    t.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub(super) fn issue_row_id(conn: &Connection, number: u64) -> Result<Option<i64>> {
    conn.query_row(
        "SELECT id FROM self_monitoring_issues WHERE github_issue_number = ?1 ORDER BY id DESC LIMIT 1",
        [to_i64(number)],
        |r| r.get(0),
    )
    .optional()
    .map_err(Error::sqlite("looking up a filed issue"))
}

pub(super) fn read_lease(conn: &Connection) -> Result<Option<Lease>> {
    conn.query_row(
        "SELECT owner, expires_at, acquired_at, host, pid, process_start
         FROM selfmon_lease WHERE name = ?1",
        [LEASE_NAME],
        |r| {
            Ok(Lease {
                owner: r.get(0)?,
                expires_at: parse_time(&r.get::<_, String>(1)?),
                acquired_at: parse_time(&r.get::<_, String>(2)?),
                host: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                pid: r
                    .get::<_, Option<i64>>(4)?
                    .and_then(|p| u32::try_from(p).ok()),
                process_start: r.get(5)?,
            })
        },
    )
    .optional()
    .map_err(Error::sqlite("reading the lease"))
}

pub(super) fn lease_expiry(ttl: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|t| now.checked_add_signed(t))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Writes a lease for `holder` (replacing any) inside the caller's transaction.
pub(super) fn write_lease(
    tx: &Connection,
    holder: &LeaseHolder,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<Lease> {
    let lease = Lease {
        owner: holder.owner.clone(),
        host: holder.host.clone(),
        pid: holder.pid,
        process_start: holder.process_start.clone(),
        acquired_at: now,
        expires_at: lease_expiry(ttl, now),
    };
    tx.execute(
        "INSERT OR REPLACE INTO selfmon_lease
             (name, owner, expires_at, acquired_at, host, pid, process_start)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        rusqlite::params![
            LEASE_NAME,
            lease.owner,
            time_text(lease.expires_at),
            time_text(lease.acquired_at),
            lease.host,
            lease.pid.map(i64::from),
            lease.process_start,
        ],
    )
    .map_err(Error::sqlite("taking the lease"))?;
    Ok(lease)
}

/// The anchor of the latest successful scan (the same row [`latest_success`] picks).
pub(super) fn latest_success_anchor(conn: &Connection) -> Result<Option<LogAnchor>> {
    let row = conn
        .query_row(
            "SELECT log_anchor_id, log_anchor_digest, log_anchor_read_id, log_anchor_read_digest
             FROM self_monitoring_scans
             WHERE status = 'SUCCESS' AND log_id_end IS NOT NULL AND COALESCE(dry_run, 0) = 0
             ORDER BY completed_at DESC, rowid DESC LIMIT 1",
            [],
            |r| {
                Ok(anchor_from(
                    r.get::<_, Option<i64>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            },
        )
        .optional()
        .map_err(Error::sqlite("reading the log anchor"))?;
    Ok(row.flatten())
}

/// An anchor from its columns: the record at the cursor and, when stored, the last record read.
fn anchor_from(
    id: Option<i64>,
    digest: Option<String>,
    read_id: Option<i64>,
    read_digest: Option<String>,
) -> Option<LogAnchor> {
    let (id, digest) = (id?, digest?);
    let last_read = match (read_id, read_digest) {
        (Some(id), Some(digest)) => Some(LogAnchor {
            id,
            digest,
            last_read: None,
        }),
        _ => None,
    };
    Some(
        LogAnchor {
            id,
            digest,
            last_read: None,
        }
        .with_last_read(last_read),
    )
}

/// The latest successful scan (by completion time, then insertion order) and its `log_id_end`.
pub(super) fn latest_success(conn: &Connection) -> Result<Option<(String, i64)>> {
    conn.query_row(
        "SELECT scan_id, log_id_end FROM self_monitoring_scans
         WHERE status = 'SUCCESS' AND log_id_end IS NOT NULL AND COALESCE(dry_run, 0) = 0
         ORDER BY completed_at DESC, rowid DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(Error::sqlite("reading the cursor"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_read_from_json_or_comma_separated_text() {
        assert_eq!(decode_list(Some(r#"["a","b"]"#.into())), ["a", "b"]);
        assert_eq!(
            decode_list(Some("GIT-SYNC-001, DB-LOCK-002".into())),
            ["GIT-SYNC-001", "DB-LOCK-002"]
        );
        assert_eq!(decode_list(Some("[1,2]".into())), ["1", "2"]);
        assert!(decode_list(None).is_empty());
    }
}
