//! [`IssueLedger`] for [`SqliteStateStore`]: issue rows, occurrences and the intents outbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::TransactionBehavior;
use selfmon_core::{FiledIssue, FilingIntent, IssueLedger, IssueState, ScanId};

use super::rows::*;
use super::values::*;
use super::SqliteStateStore;
use crate::error::Error;

#[async_trait]
impl IssueLedger for SqliteStateStore {
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
            let Some(issue_id) = issue_row_id(&tx, issue_number)? else {
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
            conn.execute(
                "UPDATE self_monitoring_issues SET state = ?1 WHERE github_issue_number = ?2",
                rusqlite::params![state.as_str(), to_i64(issue_number)],
            )
            .map_err(Error::sqlite("updating an issue state"))?;
            Ok(())
        })
        .await
    }

    async fn record_intent(&self, intent: &FilingIntent) -> selfmon_core::Result<()> {
        let intent = intent.clone();
        self.run_core(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO selfmon_intents (intent_id, scan_id, fingerprint, marker,
                 title, draft, finding, templates, occurrences, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                rusqlite::params![
                    intent.intent_id,
                    intent.scan_id.as_str(),
                    intent.draft.fingerprint,
                    intent.draft.marker.as_str(),
                    intent.draft.title,
                    to_json("issue draft", &intent.draft)?,
                    to_json("finding", &intent.finding)?,
                    to_json("templates", &intent.templates)?,
                    to_i64(intent.occurrences),
                    time_text(intent.created_at),
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
                    "SELECT intent_id, scan_id, draft, finding, templates, occurrences, created_at
                     FROM selfmon_intents ORDER BY created_at, rowid",
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
