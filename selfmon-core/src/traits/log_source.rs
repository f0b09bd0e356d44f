//! Where log records come from.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::LogRecord;

/// One page of records read after a cursor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LogPage {
    /// Records with `id > after`, ascending by id, at most `limit` of them. Records a source filters
    /// out (e.g. below its minimum level) are not included.
    pub records: Vec<LogRecord>,
    /// The highest id the source examined for this page, including filtered-out rows; the engine may
    /// advance its cursor to this value once the scan succeeds. Equals `after` when nothing was there.
    pub scanned_through: i64,
    /// Ids between `after` and the first id present that no longer exist (deleted by retention
    /// before the scan reached them). Only reported for the first gap after `after`.
    pub missing_before_first: u64,
    /// What the operator should know about this read: something holds reading back (an open
    /// transaction pinning PostgreSQL's commit horizon), with what to do about it. The engine puts
    /// them in [`ScanReport::warnings`](crate::ScanReport::warnings) (one per
    /// [`kind`](SourceWarning::kind) per scan) and logs them. Empty for a healthy read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<SourceWarning>,
}

/// A condition a [`LogSource`] reports with a page: reading is not failing, but it is held back
/// or degraded in a way only the operator can fix. Never log content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceWarning {
    /// A stable, machine-readable name of the condition (`commit_horizon_held`). A scan keeps one
    /// warning per kind: the latest page's.
    pub kind: String,
    /// What is wrong, who causes it and what to do, for a person. The engine redacts it before it
    /// is stored or shown, like every other text it keeps.
    pub message: String,
}

/// What a source tells the prompt about itself.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LogSourceDescription {
    /// A path or URI a person would recognise (`/var/lib/cidx/logs.db`).
    pub location: String,
    /// The schema actually present, in a form a model can read.
    pub schema: String,
}

/// A store of log records with monotonically increasing ids (CIDX's `logs.db`, a file, a service).
///
/// Contract:
/// - Ids are unique and increase in write order; a record once readable keeps its id.
/// - [`read_after`](LogSource::read_after) returns records with `id > after`, ascending, at most
///   `limit`; it never returns a record with `id <= after`, so a cursor never reads a record twice.
///   Reading is side-effect free: the same call may be repeated (and retried) freely.
/// - The source may be written concurrently; records that appear after a page was read are returned
///   by a later call.
/// - Errors: a busy, locked or unreachable store is `Error::Unavailable { component: LogSource }`
///   (retryable); otherwise `Error::Adapter { component: LogSource, retryable }`, not retryable
///   for a missing file or a schema that lacks required columns.
// Adding a method? List it in the `forward!` at the end of this file too.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait LogSource: Send + Sync {
    /// Reads the next page after `after` (see the trait docs).
    async fn read_after(&self, after: i64, limit: usize) -> Result<LogPage>;

    /// The highest id present, or `None` when the store is empty. Used to detect a store that was
    /// recreated (max id below the cursor).
    async fn max_id(&self) -> Result<Option<i64>>;

    /// The record stored under `id` now, or `None` when the store holds no record with that id
    /// (removed by retention, or the store was recreated without it). The engine asks for the
    /// last record the previous scan read (its anchor, at or below the cursor) to tell a recreated
    /// log from the same one, so `None` must mean "not there", never "not known yet": a source
    /// whose [`read_after`](LogSource::read_after) holds back records it cannot yet prove final
    /// (PostgreSQL's commit horizon) answers this from what is committed, without waiting.
    ///
    /// A record below the source's level filter should be returned too: when a scan's cursor ends
    /// on a filtered-out row (a page of INFO records), the engine anchors on the record at the
    /// cursor if this returns it, and otherwise keeps the last record it read (or none), which
    /// leaves a log recreated and grown past that cursor unrecognised. What an id-based check
    /// cannot see at all: a recreated log whose records up to the old cursor were all removed by
    /// retention before the next scan looks like the old log after retention; nothing present is
    /// skipped, but those removed records are not counted as a gap.
    ///
    /// The default reads `read_after(id - 1, 1)`, right for a source whose pages show every
    /// committed record; it cannot return a filtered-out record.
    async fn record_at(&self, id: i64) -> Result<Option<LogRecord>> {
        let page = self.read_after(id.saturating_sub(1), 1).await?;
        Ok(page.records.into_iter().next().filter(|r| r.id == id))
    }

    /// Location and schema, for the prompt.
    fn describe(&self) -> LogSourceDescription;
}

crate::traits::forward::forward! {
    LogSource {
        async fn read_after(&self, after: i64, limit: usize) -> Result<LogPage>;
        async fn max_id(&self) -> Result<Option<i64>>;
        async fn record_at(&self, id: i64) -> Result<Option<LogRecord>>;
        fn describe(&self) -> LogSourceDescription;
    }
}
