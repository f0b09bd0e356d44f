//! The error-code inventory of a `logs.db`: [`selfmon_core::inventory`] (which works on any
//! source of log records) read from a CIDX-schema SQLite file. Its types are re-exported here, so
//! `selfmon_sqlite::inventory::Catalog` and the other old paths keep working.

use std::path::Path;

use selfmon_core::Level;

use crate::error::Result;
use crate::log_source::{LogSourceOptions, SqliteLogSource};

pub use selfmon_core::inventory::*;

/// The inventory of a `logs.db` at `logs`, optionally checked against `catalog`.
///
/// Reads WARNING and above page by page (memory bounded by the page size and the number of
/// distinct templates and codes). Blocks the calling thread; from async code use
/// `tokio::task::spawn_blocking`.
pub fn inventory(
    logs: impl AsRef<Path>,
    catalog: Option<&Catalog>,
    options: &InventoryOptions,
) -> Result<InventoryReport> {
    let source = SqliteLogSource::open(
        logs.as_ref(),
        LogSourceOptions {
            page_size: options.page_size,
            min_level: Level::Warning,
            numeric_levels: options.numeric_levels,
            ..LogSourceOptions::default()
        },
    )?;
    inventory_of(&source, catalog, options)
}

/// The inventory of an already opened source (its level filter applies; use WARNING or lower).
pub fn inventory_of(
    source: &SqliteLogSource,
    catalog: Option<&Catalog>,
    options: &InventoryOptions,
) -> Result<InventoryReport> {
    let mut builder = InventoryBuilder::new(options.clone());
    let through = source.for_each_blocking(0, |r| builder.add(r))?;
    let mut report = builder.finish(&source.path().display().to_string(), catalog);
    report.scanned_through = through;
    Ok(report)
}
