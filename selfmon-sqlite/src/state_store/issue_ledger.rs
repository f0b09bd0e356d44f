//! [`IssueLedger`] for [`SqliteStateStore`]: issue rows, occurrences, the backlog and the intents
//! outbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior};
use selfmon_core::redact::RedactedText;
use selfmon_core::{
    BacklogClosure, BacklogEntry, FiledIssue, FilingIntent, IssueLedger, IssueState, ScanId,
};

use super::backlog::*;
use super::rows::*;
use super::values::*;
use super::SqliteStateStore;
use crate::error::Error;

#[async_trait]
impl IssueLedger for SqliteStateStore {
    async fn open_backlog(&self) -> selfmon_core::Result<Vec<BacklogEntry>> {
        self.run_core(|conn| {
            let sql = format!(
                "SELECT {BACKLOG_COLUMNS} FROM selfmon_backlog WHERE closed_at IS NULL
                 ORDER BY severity_rank DESC, occurrences DESC, deferred_at, rowid"
            );
            let mut stmt = conn
                .prepare(&sql)
                .map_err(Error::sqlite("reading the backlog"))?;
            let mut rows = stmt
                .query([])
                .map_err(Error::sqlite("reading the backlog"))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(Error::sqlite("reading the backlog"))? {
                out.push(backlog_from_row(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn filed_issues(&self) -> selfmon_core::Result<Vec<FiledIssue>> {
        self.run_core(|conn| {
            let sql = format!(
                "SELECT {ISSUE_COLUMNS} FROM self_monitoring_issues
                 WHERE github_issue_number IS NOT NULL ORDER BY id"
            );
            let mut stmt = conn
                .prepare(&sql)
                .map_err(Error::sqlite("reading filed issues"))?;
            let mut rows = stmt
                .query([])
                .map_err(Error::sqlite("reading filed issues"))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(Error::sqlite("reading filed issues"))? {
                out.push(issue_from_row(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn record_occurrences(
        &self,
        issue_number: u64,
        count: u64,
        now: DateTime<Utc>,
    ) -> selfmon_core::Result<()> {
        self.run_core(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::sqlite("recording occurrences"))?;
            add_occurrences(&tx, issue_number, count, now)?;
            tx.commit()
                .map_err(Error::sqlite("committing occurrences"))?;
            Ok(())
        })
        .await
    }

    async fn set_issue_state(
        &self,
        issue_number: u64,
        state: IssueState,
    ) -> selfmon_core::Result<()> {
        self.run_core(move |conn| {
            // Open again: the closure a recurrence was reported for is over.
            conn.execute(
                "UPDATE self_monitoring_issues SET state = ?1,
                 regression_noted_for = CASE WHEN ?1 = 'open' THEN NULL ELSE regression_noted_for END
                 WHERE github_issue_number = ?2",
                rusqlite::params![state.as_str(), to_i64(issue_number)],
            )
            .map_err(Error::sqlite("updating an issue state"))?;
            Ok(())
        })
        .await
    }

    async fn set_regression_noted(
        &self,
        issue_number: u64,
        noted_for: Option<DateTime<Utc>>,
    ) -> selfmon_core::Result<()> {
        self.run_core(move |conn| {
            conn.execute(
                "UPDATE self_monitoring_issues SET regression_noted_for = ?1
                 WHERE github_issue_number = ?2",
                rusqlite::params![noted_for.map(time_text), to_i64(issue_number)],
            )
            .map_err(Error::sqlite("recording a reported regression"))?;
            Ok(())
        })
        .await
    }

    async fn add_issue_signatures(
        &self,
        issue_number: u64,
        signature_ids: &[String],
    ) -> selfmon_core::Result<()> {
        let ids = signature_ids.to_vec();
        self.run_core(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::sqlite("recording an issue's signatures"))?;
            for id in ids {
                add_issue_signature(
                    &tx,
                    &selfmon_core::IssueSignature {
                        issue: issue_number,
                        signature_id: id,
                    },
                )?;
            }
            tx.commit()
                .map_err(Error::sqlite("recording an issue's signatures"))?;
            Ok(())
        })
        .await
    }

    async fn forget_issue(&self, issue_number: u64) -> selfmon_core::Result<bool> {
        self.run_core(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::sqlite("forgetting an issue"))?;
            let number = to_i64(issue_number);
            tx.execute(
                "DELETE FROM self_monitoring_occurrences WHERE issue_id IN
                 (SELECT id FROM self_monitoring_issues WHERE github_issue_number = ?1)",
                [number],
            )
            .map_err(Error::sqlite("forgetting an issue's occurrences"))?;
            let removed = tx
                .execute(
                    "DELETE FROM self_monitoring_issues WHERE github_issue_number = ?1",
                    [number],
                )
                .map_err(Error::sqlite("forgetting an issue"))?;
            tx.commit().map_err(Error::sqlite("forgetting an issue"))?;
            Ok(removed > 0)
        })
        .await
    }

    async fn record_intent(&self, intent: &FilingIntent) -> selfmon_core::Result<()> {
        let intent = intent.clone();
        self.run_core(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO selfmon_intents (intent_id, scan_id, fingerprint, marker,
                 title, draft, finding, templates, occurrences, created_at, backlog_entry_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                rusqlite::params![
                    intent.intent_id,
                    intent.scan_id.as_str(),
                    intent.draft.fingerprint,
                    intent.draft.marker.as_str(),
                    intent.draft.title.as_str(),
                    to_json("issue draft", &intent.draft)?,
                    to_json("finding", &intent.finding)?,
                    to_json("templates", &intent.templates)?,
                    to_i64(intent.occurrences),
                    time_text(intent.created_at),
                    intent.backlog_entry_id,
                ],
            )
            .map_err(Error::sqlite("recording a filing intent"))?;
            Ok(())
        })
        .await
    }

    async fn open_intents(&self) -> selfmon_core::Result<Vec<FilingIntent>> {
        self.run_core(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT intent_id, scan_id, draft, finding, templates, occurrences, created_at,
                     backlog_entry_id FROM selfmon_intents ORDER BY created_at, rowid",
                )
                .map_err(Error::sqlite("reading filing intents"))?;
            let mut rows = stmt
                .query([])
                .map_err(Error::sqlite("reading filing intents"))?;
            let mut out = Vec::new();
            while let Some(r) = rows
                .next()
                .map_err(Error::sqlite("reading filing intents"))?
            {
                let get = |i| {
                    r.get::<_, String>(i)
                        .map_err(Error::sqlite("reading filing intents"))
                };
                out.push(FilingIntent {
                    intent_id: get(0)?,
                    scan_id: ScanId(get(1)?),
                    draft: from_json("issue draft", &get(2)?)?,
                    finding: from_json("finding", &get(3)?)?,
                    templates: from_json("templates", &get(4)?)?,
                    occurrences: to_u64(
                        r.get::<_, Option<i64>>(5)
                            .map_err(Error::sqlite("reading filing intents"))?,
                    ),
                    created_at: parse_time(&get(6)?),
                    backlog_entry_id: r
                        .get::<_, Option<String>>(7)
                        .map_err(Error::sqlite("reading filing intents"))?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn complete_intent(
        &self,
        intent_id: &str,
        issue: &FiledIssue,
    ) -> selfmon_core::Result<()> {
        let intent_id = intent_id.to_string();
        let issue = issue.clone();
        self.run_core(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::sqlite("completing a filing intent"))?;
            // Idempotent: completing twice (a retry after an unknown outcome) keeps one row.
            match issue_row_id(&tx, issue.issue.number)? {
                Some(id) => update_issue(&tx, id, &issue)?,
                None => insert_issue(&tx, &issue)?,
            }
            let backlog_entry: Option<String> = tx
                .query_row(
                    "SELECT backlog_entry_id FROM selfmon_intents WHERE intent_id = ?1",
                    [&intent_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(Error::sqlite("reading a filing intent"))?
                .flatten();
            if let Some(entry_id) = backlog_entry {
                // The intent carried the entry's occurrences into the issue row already.
                let closure = BacklogClosure {
                    entry_id,
                    reason: RedactedText::from_stored(&format!("filed as #{}", issue.issue.number)),
                    issue: Some(issue.issue.number),
                };
                close_backlog_entry(&tx, &closure, false, issue.created_at)?;
            }
            tx.execute(
                "DELETE FROM selfmon_intents WHERE intent_id = ?1",
                [&intent_id],
            )
            .map_err(Error::sqlite("closing a filing intent"))?;
            tx.commit()
                .map_err(Error::sqlite("committing a filed issue"))?;
            Ok(())
        })
        .await
    }
}
