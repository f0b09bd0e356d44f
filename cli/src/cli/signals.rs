//! SIGINT, SIGTERM and SIGHUP (the terminal closed): cancel the work in flight, then exit 130,
//! 143 or 129.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use selfmon::cancel::CancelToken;
use tokio::signal::unix::{signal, SignalKind};

use super::failure::Failure;

/// Watches SIGINT, SIGTERM and SIGHUP from installation on; the first one cancels the token.
pub struct Interrupts {
    received: Arc<AtomicI32>,
    cancel: CancelToken,
    task: tokio::task::JoinHandle<()>,
}

impl Interrupts {
    /// Installs the handlers (from now on the signals no longer kill the process).
    pub fn install() -> Result<Self, Failure> {
        let install = |k: SignalKind| {
            signal(k).map_err(|e| Failure::Usage(format!("cannot install signal handler: {e}")))
        };
        let mut term = install(SignalKind::terminate())?;
        let mut int = install(SignalKind::interrupt())?;
        let mut hup = install(SignalKind::hangup())?;
        let received = Arc::new(AtomicI32::new(0));
        let cancel = CancelToken::new();
        let task = tokio::spawn({
            let (received, cancel) = (received.clone(), cancel.clone());
            async move {
                let signal = tokio::select! {
                    _ = term.recv() => SIGTERM,
                    _ = int.recv() => SIGINT,
                    _ = hup.recv() => SIGHUP,
                };
                received.store(signal, Ordering::SeqCst);
                cancel.cancel();
                // Later signals are absorbed: the cleanup in progress is bounded and must finish.
                loop {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                        _ = hup.recv() => {}
                    }
                }
            }
        });
        Ok(Interrupts {
            received,
            cancel,
            task,
        })
    }

    /// The token the first signal cancels.
    pub fn token(&self) -> &CancelToken {
        &self.cancel
    }

    /// The first signal received, if any.
    pub fn received(&self) -> Option<i32> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// The failure that reports the interruption by `signal` (exit 128 + signal number).
    pub fn failure(signal: i32, what: &str) -> Failure {
        let name = match signal {
            SIGINT => "SIGINT",
            SIGHUP => "SIGHUP",
            _ => "SIGTERM",
        };
        Failure::Interrupted {
            signal,
            message: format!("interrupted by {name}: {what}"),
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// SIGHUP's number (the same on every platform selfmon supports).
pub const SIGHUP: i32 = 1;
/// SIGINT's number (the same on every platform selfmon supports).
pub const SIGINT: i32 = 2;
/// SIGTERM's number.
pub const SIGTERM: i32 = 15;
