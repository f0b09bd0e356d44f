//! [`IssueLedger`] for [`PgStateStore`]: filed issues, occurrences, the outbox and the open backlog.

use super::*;
use selfmon_core::redact::RedactedText;
use selfmon_core::IssueLedger;

#[async_trait]
impl IssueLedger for PgStateStore {
    async fn filed_issues(&self) -> selfmon_core::Result<Vec<FiledIssue>> {
        let sql = format!(
            "SELECT issue FROM {}.selfmon_issues ORDER BY seq",
            self.inner.s
        );
        core(
            async {
                with_conn!(self, |c| {
                    let rows = c
                        .query(&sql, &[])
                        .await
                        .map_err(Error::query("reading filed issues"))?;
                    rows.iter()
                        .map(|r| from_json("filed issue", r.col(0)?))
                        .collect()
                })
            }
            .await,
        )
    }

    async fn record_occurrences(
        &self,
        issue_number: u64,
        count: u64,
        now: DateTime<Utc>,
    ) -> selfmon_core::Result<()> {
        let s = self.inner.s.clone();
        core(
            async {
                fenced!(self, "recording occurrences", |tx| {
                    add_occurrences(tx, &s, issue_number, count, now).await
                })
            }
            .await,
        )
    }

    async fn set_issue_state(
        &self,
        issue_number: u64,
        state: IssueState,
    ) -> selfmon_core::Result<()> {
        let s = self.inner.s.clone();
        let number = to_i64(issue_number);
        let state_json = core(to_json("issue state", &state))?;
        core(
            async {
                fenced!(self, "updating an issue state", |tx| {
                    // Open again: the closure a recurrence was reported for is over.
                    tx.execute(
                        &format!(
                            "UPDATE {s}.selfmon_issues SET state = $2,
                         issue = jsonb_set(issue, '{{issue,state}}', $3)
                             - (CASE WHEN $2 = 'open' THEN 'regression_noted_for' ELSE '' END)
                         WHERE number = $1"
                        ),
                        &[&number, &state.as_str(), &state_json],
                    )
                    .await
                    .map_err(Error::query("updating an issue state"))?;
                    Ok(())
                })
            }
            .await,
        )
    }

    async fn set_regression_noted(
        &self,
        issue_number: u64,
        noted_for: Option<DateTime<Utc>>,
    ) -> selfmon_core::Result<()> {
        let s = self.inner.s.clone();
        let number = to_i64(issue_number);
        let noted_json = core(to_json("regression note", &noted_for))?;
        core(
            async {
                fenced!(self, "recording a reported regression", |tx| {
                    tx.execute(
                        &format!(
                            "UPDATE {s}.selfmon_issues
                         SET issue = jsonb_set(issue, '{{regression_noted_for}}', $2, true)
                         WHERE number = $1"
                        ),
                        &[&number, &noted_json],
                    )
                    .await
                    .map_err(Error::query("recording a reported regression"))?;
                    Ok(())
                })
            }
            .await,
        )
    }

    async fn add_issue_signatures(
        &self,
        issue_number: u64,
        signature_ids: &[String],
    ) -> selfmon_core::Result<()> {
        let s = self.inner.s.clone();
        core(
            async {
                fenced!(self, "recording an issue's signatures", |tx| {
                    for id in signature_ids {
                        add_issue_signature(
                            tx,
                            &s,
                            &selfmon_core::IssueSignature {
                                issue: issue_number,
                                signature_id: id.clone(),
                            },
                        )
                        .await?;
                    }
                    Ok(())
                })
            }
            .await,
        )
    }

    async fn forget_issue(&self, issue_number: u64) -> selfmon_core::Result<bool> {
        let s = self.inner.s.clone();
        let number = to_i64(issue_number);
        core(
            async {
                fenced!(self, "forgetting an issue", |tx| {
                    tx.execute(
                        &format!("DELETE FROM {s}.selfmon_occurrences WHERE issue_number = $1"),
                        &[&number],
                    )
                    .await
                    .map_err(Error::query("forgetting an issue's occurrences"))?;
                    let removed = tx
                        .execute(
                            &format!("DELETE FROM {s}.selfmon_issues WHERE number = $1"),
                            &[&number],
                        )
                        .await
                        .map_err(Error::query("forgetting an issue"))?;
                    Ok(removed > 0)
                })
            }
            .await,
        )
    }

    async fn record_intent(&self, intent: &FilingIntent) -> selfmon_core::Result<()> {
        let s = self.inner.s.clone();
        let id = intent.intent_id.clone();
        let created_at = intent.created_at;
        let doc = core(to_json("filing intent", intent))?;
        core(
            async {
                fenced!(self, "recording a filing intent", |tx| {
                    tx.execute(
                        &format!(
                            "INSERT INTO {s}.selfmon_intents (intent_id, created_at, intent)
                         VALUES ($1, $2, $3)
                         ON CONFLICT (intent_id) DO UPDATE SET created_at = EXCLUDED.created_at,
                         intent = EXCLUDED.intent"
                        ),
                        &[&id, &created_at, &doc],
                    )
                    .await
                    .map_err(Error::query("recording a filing intent"))?;
                    Ok(())
                })
            }
            .await,
        )
    }

    async fn open_intents(&self) -> selfmon_core::Result<Vec<FilingIntent>> {
        let sql = format!(
            "SELECT intent FROM {}.selfmon_intents ORDER BY created_at, seq",
            self.inner.s
        );
        core(
            async {
                with_conn!(self, |c| {
                    let rows = c
                        .query(&sql, &[])
                        .await
                        .map_err(Error::query("reading filing intents"))?;
                    rows.iter()
                        .map(|r| from_json("filing intent", r.col(0)?))
                        .collect()
                })
            }
            .await,
        )
    }

    async fn complete_intent(
        &self,
        intent_id: &str,
        issue: &FiledIssue,
    ) -> selfmon_core::Result<()> {
        let s = self.inner.s.clone();
        let intent_id = intent_id.to_string();
        let issue = issue.clone();
        core(async { fenced!(self, "completing a filing intent", |tx| {
                let number = to_i64(issue.issue.number);
                // Idempotent: completing twice (a retry after an unknown outcome) keeps one row
                // and the occurrences counted since.
                let existing = tx
                    .query_opt(
                        &format!(
                            "SELECT issue FROM {s}.selfmon_issues WHERE number = $1 FOR UPDATE"
                        ),
                        &[&number],
                    )
                    .await
                    .map_err(Error::query("completing a filing intent"))?;
                let mut row = issue.clone();
                if let Some(existing) = existing {
                    let old: FiledIssue = from_json("filed issue", existing.col(0)?)?;
                    row.occurrences = old.occurrences;
                    row.created_at = old.created_at;
                    row.last_seen_at = old.last_seen_at;
                }
                let doc = to_json("filed issue", &row)?;
                tx.execute(
                    &format!(
                        "INSERT INTO {s}.selfmon_issues (number, classification, state, created_at, issue)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (number) DO UPDATE SET classification = EXCLUDED.classification,
                         state = EXCLUDED.state, issue = EXCLUDED.issue"
                    ),
                    &[
                        &number,
                        &row.classification.as_str(),
                        &row.issue.state.as_str(),
                        &row.created_at,
                        &doc,
                    ],
                )
                .await
                .map_err(Error::query("recording a filed issue"))?;
                let backlog_entry = tx
                    .query_opt(
                        &format!("SELECT intent FROM {s}.selfmon_intents WHERE intent_id = $1"),
                        &[&intent_id],
                    )
                    .await
                    .map_err(Error::query("completing a filing intent"))?
                    .map(|r| from_json::<FilingIntent>("filing intent", r.col(0)?))
                    .transpose()?
                    .and_then(|i| i.backlog_entry_id);
                if let Some(entry_id) = backlog_entry {
                    // The entry's occurrences are already in the issue row (the intent carried
                    // them).
                    let closure = BacklogClosure {
                        entry_id,
                        reason: RedactedText::from_stored(&format!(
                            "filed as #{}",
                            issue.issue.number
                        )),
                        issue: Some(issue.issue.number),
                    };
                    close_backlog_entry(tx, &s, &closure, false, issue.created_at).await?;
                }
                tx.execute(
                    &format!("DELETE FROM {s}.selfmon_intents WHERE intent_id = $1"),
                    &[&intent_id],
                )
                .await
                .map_err(Error::query("closing a filing intent"))?;
                Ok(())
            })
        }.await)
    }

    async fn open_backlog(&self) -> selfmon_core::Result<Vec<BacklogEntry>> {
        let sql = format!(
            "SELECT entry FROM {}.selfmon_backlog WHERE closed_at IS NULL
             ORDER BY severity_rank DESC, occurrences DESC, deferred_at, seq",
            self.inner.s
        );
        core(
            async {
                with_conn!(self, |c| {
                    let rows = c
                        .query(&sql, &[])
                        .await
                        .map_err(Error::query("reading the backlog"))?;
                    rows.iter()
                        .map(|r| from_json("backlog entry", r.col(0)?))
                        .collect()
                })
            }
            .await,
        )
    }
}
