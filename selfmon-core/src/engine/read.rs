//! Stage 1, read: from the cursor, page by page, every new record into the digest.

use crate::config::SelfMonitoringConfig;
use crate::digest::{Digest, DigestBuilder};
use crate::error::{Error, Result};
use crate::template::Templater;
use crate::traits::LogSource;

/// Where reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Start {
    /// The id reading starts after: the cursor, or 0 when the log was recreated.
    pub after: i64,
    /// The stale cursor, when the log was recreated (its highest id is below the cursor).
    pub reset_from: Option<i64>,
}

/// Where reading starts: after `cursor`, unless the log is behind it (it was recreated), then
/// from 0.
pub(crate) async fn start(log_source: &dyn LogSource, cursor: i64) -> Result<Start> {
    let max_id = log_source.max_id().await?;
    if cursor > 0 && max_id.is_none_or(|m| m < cursor) {
        tracing::warn!(
            cursor,
            ?max_id,
            "log store is behind the cursor; restarting from 0"
        );
        return Ok(Start {
            after: 0,
            reset_from: Some(cursor),
        });
    }
    Ok(Start {
        after: cursor,
        reset_from: None,
    })
}

/// What reading needs.
pub(crate) struct ReadInput<'a> {
    pub log_source: &'a dyn LogSource,
    pub config: &'a SelfMonitoringConfig,
    /// The id reading starts after (see [`start`]).
    pub after: i64,
    /// What earlier scans learned (a [`Templater`] state), so the same message keeps its template
    /// and so its fingerprint.
    pub learned_templates: Option<String>,
}

/// What was read.
pub(crate) struct ReadOutput {
    /// The digest of every record read.
    pub digest: Digest,
    /// The templater, with what this scan learned.
    pub templater: Templater,
    /// Where the next scan starts: the highest id the source said it scanned through.
    pub new_cursor: i64,
    /// The first and the highest record id read (`None`: nothing read).
    pub first_id: Option<i64>,
    pub last_id: i64,
    pub records_read: u64,
    /// Records the source reported missing before the first one read (retention gaps).
    pub gap_records: u64,
}

/// Reads everything new (up to `max_records_per_scan`) into a digest.
pub(crate) async fn read(
    input: ReadInput<'_>,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<ReadOutput> {
    let ReadInput {
        log_source,
        config,
        after: start,
        learned_templates,
    } = input;
    let templater = match learned_templates {
        Some(state) => Templater::from_state_json(&state).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "learned templates are unreadable; starting afresh");
            Templater::new()
        }),
        None => Templater::new(),
    };
    let mut builder = DigestBuilder::with_templater(config, templater)?;
    let mut after = start;
    let mut first_id: Option<i64> = None;
    let mut last_id = start;
    let mut read = 0u64;
    let mut gap_records = 0;
    let mut first_page = true;
    while read < config.max_records_per_scan {
        let limit = (config.max_records_per_scan - read).min(config.page_size as u64) as usize;
        let page = log_source.read_after(after, limit).await?;
        if first_page {
            gap_records = page.missing_before_first;
            first_page = false;
        }
        for r in &page.records {
            if r.id <= after {
                return Err(Error::adapter(
                    crate::Component::LogSource,
                    false,
                    format!("log source returned record {} which is not after the cursor {after}; it breaks the LogSource contract", r.id),
                ));
            }
            builder.push(r);
            first_id.get_or_insert(r.id);
            last_id = last_id.max(r.id);
            read += 1;
        }
        let through = page.scanned_through.max(last_id);
        progress(read);
        if through <= after {
            break;
        }
        after = through;
    }
    let (digest, templater) = builder.finish_with_templater();
    Ok(ReadOutput {
        digest,
        templater,
        new_cursor: after,
        first_id,
        last_id,
        records_read: read,
        gap_records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Level;
    use crate::testing::MemoryLogSource;

    #[tokio::test]
    async fn reading_restarts_from_zero_when_the_log_is_behind_the_cursor() {
        let logs = MemoryLogSource::new();
        logs.log(Level::Error, "app", "[GIT-SYNC-001] clone failed");
        logs.log(Level::Error, "app", "[GIT-SYNC-001] clone failed");
        let config = SelfMonitoringConfig::default();
        let start = start(&logs, 50).await.unwrap();
        assert_eq!(
            start,
            Start {
                after: 0,
                reset_from: Some(50)
            }
        );
        let out = read(
            ReadInput {
                log_source: &logs,
                config: &config,
                after: start.after,
                learned_templates: None,
            },
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(out.records_read, 2);
        assert_eq!((out.first_id, out.last_id, out.new_cursor), (Some(1), 2, 2));
        assert_eq!(out.digest.signatures.len(), 1);
    }

    #[tokio::test]
    async fn reading_stops_at_the_per_scan_record_limit() {
        let logs = MemoryLogSource::new();
        for n in 0..5 {
            logs.log(Level::Error, "app", &format!("failure {n}"));
        }
        let config = SelfMonitoringConfig {
            max_records_per_scan: 3,
            page_size: 2,
            ..Default::default()
        };
        let pages = std::sync::Mutex::new(Vec::new());
        let out = read(
            ReadInput {
                log_source: &logs,
                config: &config,
                after: 0,
                learned_templates: None,
            },
            &|n| pages.lock().unwrap().push(n),
        )
        .await
        .unwrap();
        assert_eq!(out.records_read, 3);
        assert_eq!(out.new_cursor, 3);
        assert_eq!(*pages.lock().unwrap(), [2, 3]);
    }
}
