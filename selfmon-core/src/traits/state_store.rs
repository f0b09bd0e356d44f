//! The umbrella over the durable-state traits.

use super::{IssueLedger, ScanHistory, ScanLedger};

/// Durable state of self-monitoring: the [`ScanLedger`] (lease, scans, cursor), the [`IssueLedger`]
/// (filed issues, occurrences, outbox) and the read-only [`ScanHistory`].
///
/// Never implement it directly: implement the three parts, and the blanket impl makes the type a
/// `StateStore` (so `Arc<dyn StateStore>` works as a single handle). Learned-template memory is a
/// separate, optional [`TemplateMemory`](crate::TemplateMemory) given to the engine's builder.
///
/// A caller holding a concrete store calls these methods with the part's trait in scope
/// (`use selfmon_core::{ScanLedger, IssueLedger, ScanHistory};`); through `dyn StateStore` or a
/// `S: StateStore` bound every part's methods are available with only `StateStore` imported.
pub trait StateStore: ScanLedger + IssueLedger + ScanHistory {}

impl<T: ScanLedger + IssueLedger + ScanHistory + ?Sized> StateStore for T {}
