//! Learned-template memory: what the templater learned, kept between scans.

use async_trait::async_trait;

use crate::error::Result;

/// Keeps the templater's learned state (an opaque JSON document) between scans, so the same message
/// maps to the same template, and so to the same fingerprint, across scans and restarts.
///
/// Optional: give one to [`SelfMonitorBuilder::template_memory`](crate::engine::SelfMonitorBuilder::template_memory).
/// Without it every scan starts from a templater that knows only the templates of the known issues
/// (templates are then stable only for messages that need no learning; a name in place of one an
/// issue was filed under still generalises against it).
///
/// Contract:
/// - `load_template_state` returns exactly the document of the latest successful
///   `save_template_state`, or `None` before the first; durable across restarts for a persistent
///   store.
/// - `save_template_state` replaces the whole document atomically (a reader never sees half of it).
/// - Errors are `Error::Adapter { component: StateStore, retryable }` and fail the scan.
// Adding a method? List it in the `forward!` at the end of this file too.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait TemplateMemory: Send + Sync {
    /// The learned state last saved, `None` before the first save.
    async fn load_template_state(&self) -> Result<Option<String>>;

    /// Replaces the learned state.
    async fn save_template_state(&self, state: &str) -> Result<()>;
}

crate::traits::forward::forward! {
    TemplateMemory {
        async fn load_template_state(&self) -> Result<Option<String>>;
        async fn save_template_state(&self, state: &str) -> Result<()>;
    }
}
