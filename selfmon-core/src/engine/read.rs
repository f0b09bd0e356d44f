//! Stage 1, read: from the cursor, page by page, every new record into the digest.

use crate::config::SelfMonitoringConfig;
use crate::digest::{Digest, DigestBuilder, OVERFLOW_TEMPLATE};
use crate::error::{Error, Result};
use crate::model::LogAnchor;
use crate::template::{template_text, Templater};
use crate::traits::{LogSource, SourceWarning};

/// Where reading starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    /// The id reading starts after: the cursor, or 0 when the log was recreated.
    pub after: i64,
    /// The stale cursor, when the log was recreated.
    pub reset_from: Option<i64>,
    /// The previous scan's anchor while it still holds (carried forward when nothing is read).
    pub anchor: Option<LogAnchor>,
    /// The highest id present when the scan started (`None`: the log was empty). The scan reads no
    /// further: records written while it reads wait for the next scan, so a scan of a log that
    /// keeps growing still ends.
    pub target: Option<i64>,
}

/// Where reading starts: after `cursor`, unless the log was recreated, then from 0. A log was
/// recreated when its newest id is below the cursor, or when `anchor` (the last record the
/// previous scan read) is no longer there as it was — which catches a recreated log that has
/// already grown past the cursor, whose first records would otherwise be skipped.
pub(crate) async fn start(
    log_source: &dyn LogSource,
    cursor: i64,
    anchor: Option<LogAnchor>,
) -> Result<Start> {
    let max_id = log_source.max_id().await?;
    let recreated = if cursor > 0 && max_id.is_none_or(|m| m < cursor) {
        Some("log store is behind the cursor")
    } else if let Some(a) = anchor.as_ref().filter(|_| cursor > 0) {
        anchor_lost(log_source, a).await?
    } else {
        None
    };
    if let Some(why) = recreated {
        tracing::warn!(cursor, ?max_id, "{why}; restarting from 0");
        return Ok(Start {
            after: 0,
            reset_from: Some(cursor),
            anchor: None,
            target: max_id,
        });
    }
    Ok(Start {
        after: cursor,
        reset_from: None,
        anchor,
        target: max_id,
    })
}

/// Whether the records `anchor` names (the record at the cursor and, when it is another, the last
/// record read: see [`LogAnchor`]) show the log was recreated, and why: a witness still there
/// that is a different record now, or every witness gone while older ids are still there
/// (retention removes the oldest records first, so a log that only lost records to retention has
/// none below a removed anchor). A witness that is gone while another is still there as it was
/// was deleted on its own (level-based retention, a purge): not a new log. `None` when the log is
/// the one the previous scan read.
///
/// The anchor is looked up with [`LogSource::record_at`], never with a page: a page may be empty
/// only because the source cannot yet prove what is final (PostgreSQL while a writer's transaction
/// is open), which says nothing about a record the previous scan already read.
async fn anchor_lost(
    log_source: &dyn LogSource,
    anchor: &LogAnchor,
) -> Result<Option<&'static str>> {
    let witnesses = std::iter::once(anchor).chain(anchor.last_read.as_deref());
    let mut lowest_gone: Option<i64> = None;
    let mut any_there = false;
    for witness in witnesses {
        match log_source.record_at(witness.id).await? {
            Some(r) if !witness.matches(&r) => {
                return Ok(Some(
                    "the last record read has been replaced (log recreated)",
                ));
            }
            Some(_) => any_there = true,
            None => lowest_gone = Some(lowest_gone.map_or(witness.id, |l| l.min(witness.id))),
        }
    }
    let Some(gone) = lowest_gone.filter(|_| !any_there) else {
        return Ok(None);
    };
    let first = log_source.read_after(0, 1).await?;
    Ok(first
        .records
        .first()
        .is_some_and(|r| r.id < gone)
        .then_some("the last record read is gone but older ids remain (log recreated)"))
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
    /// The templates of the issues the scan knows, of the filings waiting in the outbox and of
    /// the findings the backlog defers, as persisted: the templater learns those its learned state does not cover before it reads
    /// (see [`Templater::learn_known_template`]), so a message with another name in place of an
    /// issue's still generalises against it when the records behind the issue were never learned
    /// by a scan that kept what it learned.
    pub known_templates: Vec<String>,
    /// The anchor to carry forward when nothing is read (see [`Start::anchor`]).
    pub anchor: Option<LogAnchor>,
    /// Read no record above this id (see [`Start::target`]); `None`: read until the source has
    /// nothing more.
    pub target: Option<i64>,
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
    /// The last record read (or the anchor carried forward): the next scan checks it.
    pub anchor: Option<LogAnchor>,
    /// What the source warned about while this scan read: one per kind, the latest page's.
    pub warnings: Vec<SourceWarning>,
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
        known_templates,
        mut anchor,
        target,
    } = input;
    let mut templater = match learned_templates {
        Some(state) => Templater::from_state_json(&state).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "learned templates are unreadable; starting afresh");
            Templater::new()
        }),
        None => Templater::new(),
    };
    // An overflow bucket's template names no message.
    let relearned = known_templates
        .iter()
        .filter(|t| template_text(t) != OVERFLOW_TEMPLATE)
        .filter(|t| templater.learn_known_template(t))
        .count();
    if relearned > 0 {
        tracing::debug!(
            relearned,
            "learned templates of known issues that the learned state did not cover"
        );
    }
    let mut builder = DigestBuilder::with_templater(config, templater)?;
    let mut after = start;
    let mut first_id: Option<i64> = None;
    let mut last_id = start;
    let mut read = 0u64;
    let mut gap_records = 0;
    let mut first_page = true;
    let mut warnings: Vec<SourceWarning> = Vec::new();
    let target = target.unwrap_or(i64::MAX);
    // The next page is read while this one is digested: a source that reads off the runtime's
    // threads (SQLite reads on the blocking pool, PostgreSQL waits on the server) works while the
    // records it gave are digested, so a long scan takes the longer of the two, not their sum.
    // Only a page the loop reads anyway is fetched early.
    let page_limit =
        |read: u64| (config.max_records_per_scan - read).min(config.page_size as u64) as usize;
    let mut next = if read < config.max_records_per_scan && after < target {
        Some(log_source.read_after(after, page_limit(read)).await?)
    } else {
        None
    };
    while let Some(mut page) = next.take() {
        // Records above the target were written after the scan started: the next scan reads them.
        // The page holds every record between `after` and its end in ascending order, so what is
        // kept is complete up to min(end, target) and the cursor stops there.
        page.records.retain(|r| r.id <= target);
        page.scanned_through = page.scanned_through.min(target);
        if first_page {
            gap_records = page.missing_before_first;
            first_page = false;
        }
        for w in std::mem::take(&mut page.warnings) {
            match warnings.iter_mut().find(|seen| seen.kind == w.kind) {
                Some(seen) => *seen = w,
                None => warnings.push(w),
            }
        }
        if let Some(r) = page.records.iter().find(|r| r.id <= after) {
            return Err(Error::adapter(
                crate::Component::LogSource,
                false,
                format!("log source returned record {} which is not after the cursor {after}; it breaks the LogSource contract", r.id),
            ));
        }
        if let Some(r) = page.records.first() {
            first_id.get_or_insert(r.id);
        }
        if let Some(r) = page.records.last() {
            last_id = last_id.max(r.id);
            anchor = Some(LogAnchor::of(r));
        }
        read += page.records.len() as u64;
        let through = page.scanned_through.max(last_id);
        let more = through > after && read < config.max_records_per_scan && through < target;
        if through > after {
            after = through;
        }
        let digest_page = async {
            for r in &page.records {
                builder.push(r);
            }
        };
        if more {
            let (fetched, ()) =
                tokio::join!(log_source.read_after(after, page_limit(read)), digest_page);
            next = Some(fetched?);
        } else {
            digest_page.await;
        }
        progress(read);
    }
    // The cursor moved past rows the source filtered out (INFO below the level filter): the
    // anchor must name the record at the cursor, or a log recreated and grown past the cursor
    // would pass the next scan's check (its last *kept* record may be long gone or absent) and
    // its first records be skipped. A source whose `record_at` sees only kept records answers
    // `None` here, and the older anchor stays.
    // The last record read stays a second witness (see `LogAnchor`): a retention job that drops
    // the INFO row at the cursor, or a purge of one row, then does not look like a new log.
    if after > start && anchor.as_ref().is_none_or(|a| a.id < after) {
        if let Some(r) = log_source.record_at(after).await? {
            let last_read = anchor.take().map(|mut a| {
                a.last_read = None;
                a
            });
            anchor = Some(LogAnchor::of(&r).with_last_read(last_read));
        }
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
        anchor,
        warnings,
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
        let start = start(&logs, 50, None).await.unwrap();
        assert_eq!(
            start,
            Start {
                after: 0,
                reset_from: Some(50),
                anchor: None,
                target: Some(2),
            }
        );
        let out = read(
            ReadInput {
                log_source: &logs,
                config: &config,
                after: start.after,
                learned_templates: None,
                known_templates: Vec::new(),
                anchor: None,
                target: None,
            },
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(out.records_read, 2);
        assert_eq!((out.first_id, out.last_id, out.new_cursor), (Some(1), 2, 2));
        assert_eq!(out.digest.signatures.len(), 1);
    }

    /// A source that notes each read it is asked for, in the order they start.
    struct Noted<'a> {
        inner: &'a MemoryLogSource,
        events: &'a std::sync::Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl LogSource for Noted<'_> {
        async fn read_after(&self, after: i64, limit: usize) -> Result<crate::traits::LogPage> {
            self.events
                .lock()
                .unwrap()
                .push(format!("read {after}+{limit}"));
            self.inner.read_after(after, limit).await
        }
        async fn max_id(&self) -> Result<Option<i64>> {
            self.inner.max_id().await
        }
        fn describe(&self) -> crate::traits::LogSourceDescription {
            self.inner.describe()
        }
    }

    #[tokio::test]
    async fn the_next_page_is_read_while_this_one_is_digested_and_no_page_beyond() {
        let logs = MemoryLogSource::new();
        for n in 0..7 {
            logs.log(Level::Error, "app", &format!("failure {n}"));
        }
        let events = std::sync::Mutex::new(Vec::new());
        let source = Noted {
            inner: &logs,
            events: &events,
        };
        // Reads from 0 to `target` with `config`, noting when each page is digested.
        let noted_read = |config: SelfMonitoringConfig, target: i64| {
            let source = &source;
            let events = &events;
            async move {
                read(
                    ReadInput {
                        log_source: source,
                        config: &config,
                        after: 0,
                        learned_templates: None,
                        known_templates: Vec::new(),
                        anchor: None,
                        target: Some(target),
                    },
                    &|n| events.lock().unwrap().push(format!("digested {n}")),
                )
                .await
                .unwrap()
            }
        };
        let config = SelfMonitoringConfig {
            max_records_per_scan: 5,
            page_size: 2,
            ..Default::default()
        };
        let out = noted_read(config, 6).await;
        assert_eq!((out.records_read, out.new_cursor), (5, 5));
        // Each page's read starts before the page before it is digested; the limit ends the
        // reading, and no page is fetched that the scan would not read.
        assert_eq!(
            *events.lock().unwrap(),
            [
                "read 0+2",
                "read 2+2",
                "digested 2",
                "read 4+1",
                "digested 4",
                "digested 5"
            ]
        );
        // The target ends it as well: nothing above it is asked for.
        events.lock().unwrap().clear();
        let config = SelfMonitoringConfig {
            page_size: 2,
            ..Default::default()
        };
        let out = noted_read(config, 4).await;
        assert_eq!((out.records_read, out.new_cursor), (4, 4));
        assert_eq!(
            *events.lock().unwrap(),
            ["read 0+2", "read 2+2", "digested 2", "digested 4"]
        );
    }

    /// Reads everything after `after` from `logs` with the default configuration.
    async fn read_all(logs: &MemoryLogSource, after: i64, anchor: Option<LogAnchor>) -> ReadOutput {
        read(
            ReadInput {
                log_source: logs,
                config: &SelfMonitoringConfig::default(),
                after,
                learned_templates: None,
                known_templates: Vec::new(),
                anchor,
                target: None,
            },
            &|_| {},
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_deleted_or_scrubbed_anchor_row_is_not_a_recreated_log() {
        // The source keeps WARNING and above; the cursor ends on an INFO row after the errors.
        let logs = MemoryLogSource::with_min_level(Level::Warning);
        for _ in 0..3 {
            logs.log(
                Level::Error,
                "pay",
                "[PAY-GW-001] payment gateway unreachable",
            );
        }
        logs.log(Level::Info, "pay", "request served for alice@example.com");
        let first = read_all(&logs, 0, None).await;
        assert_eq!(first.new_cursor, 4);
        let anchor = first.anchor.clone().expect("anchored");
        assert_eq!(anchor.id, 4, "the record at the cursor");
        assert_eq!(
            anchor.last_read.as_ref().map(|w| w.id),
            Some(3),
            "the last record read is the second witness"
        );

        // A scrubber rewrites the anchor's message in place: the same log.
        assert!(logs.rewrite_message(4, "request served for <email>"));
        let scrubbed = start(&logs, 4, Some(anchor.clone())).await.unwrap();
        assert_eq!((scrubbed.after, scrubbed.reset_from), (4, None));

        // Retention that keeps INFO shorter than errors deletes the anchor row: the same log.
        assert!(logs.remove(4));
        logs.log(Level::Error, "pay", "ledger write failed");
        let retained = start(&logs, 4, Some(anchor.clone())).await.unwrap();
        assert_eq!((retained.after, retained.reset_from), (4, None));
        let second = read_all(&logs, retained.after, retained.anchor).await;
        assert_eq!(second.records_read, 1, "only the new record is read");

        // Both witnesses gone while older ids remain: recreated (nothing says otherwise).
        assert!(logs.remove(3));
        let both_gone = start(&logs, 4, Some(anchor.clone())).await.unwrap();
        assert_eq!(both_gone.reset_from, Some(4));

        // A witness that is still there but is another record: recreated.
        let logs = MemoryLogSource::with_min_level(Level::Warning);
        for _ in 0..3 {
            logs.log(
                Level::Error,
                "pay",
                "[PAY-GW-001] payment gateway unreachable",
            );
        }
        logs.log(Level::Info, "pay", "request served");
        let anchor = read_all(&logs, 0, None).await.anchor.expect("anchored");
        logs.recreate();
        for _ in 0..6 {
            logs.log(
                Level::Error,
                "pay",
                "[PAY-GW-001] payment gateway unreachable",
            );
        }
        let recreated = start(&logs, 4, Some(anchor)).await.unwrap();
        assert_eq!((recreated.after, recreated.reset_from), (0, Some(4)));
    }

    #[test]
    fn an_anchor_stored_with_the_message_in_its_digest_still_matches() {
        let r = crate::LogRecord::new(7, Level::Error, "boom").with_source("svc");
        let mut r = r;
        r.timestamp = "2026-12-01T10:00:00.123456Z".into();
        let legacy = LogAnchor {
            id: 7,
            digest: LogAnchor::legacy_digest_of(&r),
            last_read: None,
        };
        assert!(legacy.matches(&r));
        assert_ne!(legacy.digest, LogAnchor::digest_of(&r));
        let mut other = r.clone();
        other.timestamp = "2026-12-01T10:00:01.000000Z".into();
        assert!(
            !LogAnchor::of(&r).matches(&other),
            "another record under the id"
        );
        let mut scrubbed = r.clone();
        scrubbed.message = "b**m".into();
        assert!(
            LogAnchor::of(&r).matches(&scrubbed),
            "the message is not the record's identity"
        );
        // Without a timestamp, the message is what tells records apart.
        let mut bare = r.clone();
        bare.timestamp.clear();
        let mut bare_other = bare.clone();
        bare_other.message = "other".into();
        assert!(!LogAnchor::of(&bare).matches(&bare_other));
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
                known_templates: Vec::new(),
                anchor: None,
                target: None,
            },
            &|n| pages.lock().unwrap().push(n),
        )
        .await
        .unwrap();
        assert_eq!(out.records_read, 3);
        assert_eq!(out.new_cursor, 3);
        assert_eq!(*pages.lock().unwrap(), [2, 3]);
    }

    #[tokio::test]
    async fn a_replaced_anchor_restarts_from_zero_a_pruned_one_does_not() {
        let logs = MemoryLogSource::new();
        for i in 0..3 {
            logs.log(Level::Error, "app", &format!("old {i}"));
        }
        let config = SelfMonitoringConfig::default();
        let first = read(
            ReadInput {
                log_source: &logs,
                config: &config,
                after: 0,
                learned_templates: None,
                known_templates: Vec::new(),
                anchor: None,
                target: None,
            },
            &|_| {},
        )
        .await
        .unwrap();
        let anchor = first
            .anchor
            .clone()
            .expect("the last record read is the anchor");
        assert_eq!(anchor.id, 3);

        // Same log: reading continues after the cursor, and the anchor is carried forward.
        let same = start(&logs, 3, Some(anchor.clone())).await.unwrap();
        assert_eq!((same.after, same.reset_from), (3, None));
        assert_eq!(same.anchor.as_ref(), Some(&anchor));

        // Retention removed the anchor and everything before it: a gap, not a recreation.
        logs.log(Level::Error, "app", "new 3");
        logs.prune_before(4);
        let pruned = start(&logs, 3, Some(anchor.clone())).await.unwrap();
        assert_eq!((pruned.after, pruned.reset_from), (3, None));

        // Recreated and grown past the cursor: id 3 now holds another record.
        logs.recreate();
        for i in 0..5 {
            logs.log(Level::Error, "app", &format!("new {i}"));
        }
        let recreated = start(&logs, 3, Some(anchor)).await.unwrap();
        assert_eq!((recreated.after, recreated.reset_from), (0, Some(3)));
        assert_eq!(recreated.anchor, None);
    }

    /// A source whose pages stay empty until `proven` is set (as PostgreSQL's while a writer's
    /// transaction holds the commit horizon back) but which knows what it has committed.
    struct UnprovenUntilSecondRead {
        inner: MemoryLogSource,
        reads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl LogSource for UnprovenUntilSecondRead {
        async fn read_after(&self, after: i64, limit: usize) -> Result<crate::LogPage> {
            if self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                return Ok(crate::LogPage {
                    scanned_through: after,
                    ..Default::default()
                });
            }
            self.inner.read_after(after, limit).await
        }
        async fn max_id(&self) -> Result<Option<i64>> {
            self.inner.max_id().await
        }
        async fn record_at(&self, id: i64) -> Result<Option<crate::LogRecord>> {
            self.inner.record_at(id).await
        }
        fn describe(&self) -> crate::LogSourceDescription {
            self.inner.describe()
        }
    }

    #[tokio::test]
    async fn an_empty_page_while_nothing_is_proven_is_no_evidence_the_anchor_is_gone() {
        let logs = MemoryLogSource::new();
        for i in 0..3 {
            logs.log(Level::Error, "app", &format!("old {i}"));
        }
        let anchor = LogAnchor::of(&logs.read_after(2, 1).await.unwrap().records[0]);
        let source = UnprovenUntilSecondRead {
            inner: logs,
            reads: Default::default(),
        };
        let start = start(&source, 3, Some(anchor.clone())).await.unwrap();
        assert_eq!((start.after, start.reset_from), (3, None));
        assert_eq!(start.anchor, Some(anchor));
    }

    /// A log that gains a record every time a page is read (nodes that never stop logging).
    struct EverGrowing(MemoryLogSource);

    #[async_trait::async_trait]
    impl LogSource for EverGrowing {
        async fn read_after(&self, after: i64, limit: usize) -> Result<crate::LogPage> {
            self.0
                .log(Level::Error, "app", "written while the scan reads");
            self.0.read_after(after, limit).await
        }
        async fn max_id(&self) -> Result<Option<i64>> {
            self.0.max_id().await
        }
        fn describe(&self) -> crate::LogSourceDescription {
            self.0.describe()
        }
    }

    #[tokio::test]
    async fn a_scan_of_a_growing_log_stops_at_the_target_and_the_next_reads_the_rest() {
        let logs = EverGrowing(MemoryLogSource::new());
        for i in 0..4 {
            logs.0
                .log(Level::Error, "app", &format!("before the scan {i}"));
        }
        let config = SelfMonitoringConfig {
            page_size: 1,
            max_records_per_scan: 1_000,
            ..Default::default()
        };
        let mut cursor = 0;
        let mut seen = Vec::new();
        for scan in 0..3 {
            let begin = start(&logs, cursor, None).await.unwrap();
            let target = begin.target.unwrap();
            let out = read(
                ReadInput {
                    log_source: &logs,
                    config: &config,
                    after: begin.after,
                    learned_templates: None,
                    known_templates: Vec::new(),
                    anchor: None,
                    target: begin.target,
                },
                &|_| {},
            )
            .await
            .unwrap();
            assert!(
                out.new_cursor <= target,
                "scan {scan}: {} > {target}",
                out.new_cursor
            );
            assert_eq!(out.new_cursor, target, "scan {scan} reads up to its target");
            let read_ids: Vec<i64> = (out.first_id.unwrap_or(0)..=out.last_id)
                .filter(|_| out.records_read > 0)
                .collect();
            assert_eq!(read_ids.len() as u64, out.records_read, "scan {scan}");
            seen.extend(read_ids);
            cursor = out.new_cursor;
        }
        let expected: Vec<i64> = (1..=cursor).collect();
        assert_eq!(seen, expected, "every record read once, none skipped");
    }
}
