//! The tokio runtime the module owns, shared by every monitor in the process.
//!
//! Built on first use. A process that forks (gunicorn, multiprocessing) gets a fresh runtime in the
//! child: the parent's worker threads do not exist there, so the old runtime is leaked rather than
//! dropped (dropping would wait for threads that will never answer).

use std::sync::{Arc, Mutex};

use tokio::runtime::{Builder, Runtime};

use crate::errors::{Failure, Kind};

static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// The module's runtime for this process.
pub fn get() -> Result<Arc<Runtime>, Failure> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((owner, rt)) = slot.as_ref() {
        if *owner == pid {
            return Ok(Arc::clone(rt));
        }
    }
    let rt = Arc::new(
        Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("selfmon-py")
            .enable_all()
            .build()
            .map_err(|e| {
                Failure::new(
                    Kind::Other,
                    "runtime",
                    format!("cannot start selfmon's runtime threads: {e}"),
                )
            })?,
    );
    if let Some((_, stale)) = slot.replace((pid, Arc::clone(&rt))) {
        std::mem::forget(stale);
    }
    Ok(rt)
}
