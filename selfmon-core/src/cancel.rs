//! [`CancelToken`]: how a host asks a running scan to stop.
//!
//! A token is a cheap handle (an `Arc`): clone it, hand one clone to
//! [`SelfMonitor::scan_with_cancel`](crate::engine::SelfMonitor::scan_with_cancel) and keep the
//! other. [`cancel`](CancelToken::cancel) is sticky: once cancelled, a token stays cancelled, and
//! every waiter of [`cancelled`](CancelToken::cancelled), present or future, wakes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

/// A shared, sticky cancellation flag with an async wait.
///
/// ```
/// use selfmon_core::cancel::CancelToken;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let token = CancelToken::new();
/// let waiter = token.clone();
/// assert!(!waiter.is_cancelled());
/// token.cancel();
/// waiter.cancelled().await; // returns at once: the token is cancelled
/// assert!(waiter.is_cancelled());
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the token and wakes every waiter. Calling it again does nothing.
    pub fn cancel(&self) {
        if !self.inner.cancelled.swap(true, Ordering::SeqCst) {
            self.inner.notify.notify_waiters();
        }
    }

    /// Whether [`cancel`](Self::cancel) was called on this token or any clone of it.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Completes once the token is cancelled (at once if it already is). Cancel-safe.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            // Register before checking the flag, so a `cancel` between the check and the wait
            // still wakes this waiter.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Whether both handles are clones of the same token.
    pub fn same_token(&self, other: &CancelToken) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_waiter_started_before_cancel_wakes_on_cancel() {
        let token = CancelToken::new();
        let waiter = tokio::spawn({
            let t = token.clone();
            async move { t.cancelled().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        token.cancel();
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the waiter wakes")
            .unwrap();
    }

    #[tokio::test]
    async fn cancel_is_sticky_and_seen_by_every_clone() {
        let token = CancelToken::new();
        let other = token.clone();
        assert!(!other.is_cancelled());
        token.cancel();
        token.cancel();
        assert!(other.is_cancelled());
        other.cancelled().await;
        assert!(token.same_token(&other));
        assert!(!token.same_token(&CancelToken::new()));
    }
}
