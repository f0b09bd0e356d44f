//! An in-memory log source.

use std::collections::BTreeSet;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{Level, LogRecord};
use crate::traits::{LogPage, LogSource, LogSourceDescription};

#[derive(Debug, Default)]
struct Inner {
    records: Vec<LogRecord>,
    next_id: i64,
    /// Records ever appended, across recreations: the clock of records written without a
    /// timestamp.
    written: i64,
    pruned: BTreeSet<i64>,
}

/// Records held in memory, with the same paging and filtering semantics as the SQLite source.
#[derive(Debug)]
pub struct MemoryLogSource {
    inner: Mutex<Inner>,
    min_level: Level,
}

impl Default for MemoryLogSource {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLogSource {
    /// An empty source returning WARNING and above.
    pub fn new() -> Self {
        Self::with_min_level(Level::Warning)
    }

    /// An empty source returning `min_level` and above.
    pub fn with_min_level(min_level: Level) -> Self {
        MemoryLogSource {
            inner: Mutex::new(Inner {
                next_id: 1,
                ..Inner::default()
            }),
            min_level,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a record, assigning the next id (the record's own id is replaced); returns the id.
    /// A record without a timestamp gets one, one second after the previous record written
    /// (recreations included, so a recreated log's records differ from the old ones as a real
    /// server's would).
    pub fn append(&self, mut record: LogRecord) -> i64 {
        let mut i = self.lock();
        record.id = i.next_id;
        i.next_id += 1;
        i.written += 1;
        if record.timestamp.is_empty() {
            let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH
                + chrono::Duration::seconds(1_767_225_600 + i.written);
            record.timestamp = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        }
        let id = record.id;
        i.records.push(record);
        id
    }

    /// Appends a record built from level, source and message.
    pub fn log(&self, level: Level, source: &str, message: &str) -> i64 {
        self.append(LogRecord::new(0, level, message).with_source(source))
    }

    /// Deletes records with id below `id`, as retention would.
    pub fn prune_before(&self, id: i64) {
        let mut i = self.lock();
        let removed: Vec<i64> = i
            .records
            .iter()
            .filter(|r| r.id < id)
            .map(|r| r.id)
            .collect();
        i.pruned.extend(removed);
        i.records.retain(|r| r.id >= id);
    }

    /// Deletes the record with this id, as a purge or a retention job that keeps some levels
    /// shorter than others would; whether it was there.
    pub fn remove(&self, id: i64) -> bool {
        let mut i = self.lock();
        let before = i.records.len();
        i.records.retain(|r| r.id != id);
        let removed = i.records.len() < before;
        if removed {
            i.pruned.insert(id);
        }
        removed
    }

    /// Rewrites the message of the record with this id in place, as a scrubber that removes
    /// personal data would; whether it was there.
    pub fn rewrite_message(&self, id: i64, message: &str) -> bool {
        let mut i = self.lock();
        match i.records.iter_mut().find(|r| r.id == id) {
            Some(r) => {
                r.message = message.to_string();
                true
            }
            None => false,
        }
    }

    /// Deletes everything and restarts ids at 1, as recreating the file would.
    pub fn recreate(&self) {
        let mut i = self.lock();
        i.records.clear();
        i.pruned.clear();
        i.next_id = 1;
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether no records are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl LogSource for MemoryLogSource {
    async fn read_after(&self, after: i64, limit: usize) -> Result<LogPage> {
        let i = self.lock();
        let start = i.records.partition_point(|r| r.id <= after);
        let mut records = Vec::new();
        let mut scanned_through = after;
        for r in &i.records[start..] {
            if records.len() >= limit {
                break;
            }
            scanned_through = r.id;
            if r.level >= self.min_level {
                records.push(r.clone());
            }
        }
        let missing_before_first = i.pruned.range(after + 1..).count() as u64;
        Ok(LogPage {
            records,
            scanned_through,
            missing_before_first,
            warnings: Vec::new(),
        })
    }

    async fn max_id(&self) -> Result<Option<i64>> {
        Ok(self.lock().records.last().map(|r| r.id))
    }

    /// The record under `id` whatever its level (the level filter applies to pages only).
    async fn record_at(&self, id: i64) -> Result<Option<LogRecord>> {
        let i = self.lock();
        Ok(i.records
            .binary_search_by_key(&id, |r| r.id)
            .ok()
            .map(|at| i.records[at].clone()))
    }

    fn describe(&self) -> LogSourceDescription {
        LogSourceDescription {
            location: "memory".to_string(),
            schema: "logs(id, timestamp, level, source, message, correlation_id, user_id, request_path, extra_data)".to_string(),
        }
    }
}
