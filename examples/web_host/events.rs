//! Live updates: everything the page shows that can change on its own (a scan starting or
//! finishing, scheduled or not; a job queued, started or ended) is pushed to open pages as
//! server-sent events, so nothing polls.
//!
//! Sources: the engine's [`ScanEvent`] stream ([`SelfMonitor::subscribe`]) and the job queue
//! (through [`NotifyingQueue`], which every submission, including the scheduler's, goes through).
//! Each open page gets one `status` event on connect and one after every burst of changes: the
//! same JSON as `GET /self-monitoring/status`, plus `history_changed` (a scan started or finished:
//! reload the tables) and `scan_event` (the last engine event of the burst).

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use selfmon::engine::{ScanEvent, SelfMonitor};
use selfmon::testing::MemoryJobQueue;
use selfmon::{JobId, JobKind, JobQueue, JobSpec, JobStatus, Submission};
use tokio::sync::broadcast;

/// Something the page shows has changed.
#[derive(Debug, Clone)]
pub enum HostEvent {
    /// The engine reported progress of a scan.
    Scan(ScanEvent),
    /// A job was queued, started or ended.
    Jobs,
    /// Some engine events were missed (a slow subscriber): reload everything.
    Missed,
}

impl HostEvent {
    /// Whether the history tables should be reloaded.
    pub fn changes_history(&self) -> bool {
        matches!(
            self,
            HostEvent::Scan(ScanEvent::Started { .. } | ScanEvent::Finished { .. })
                | HostEvent::Missed
        )
    }
}

/// The host's event channel.
pub type Events = broadcast::Sender<HostEvent>;

/// Forwards the engine's scan events into `events` until the engine goes away.
pub fn forward_scan_events(monitor: &SelfMonitor, events: Events) -> tokio::task::JoinHandle<()> {
    let mut rx = monitor.subscribe();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    let _ = events.send(HostEvent::Scan(e));
                }
                // Missed some: the pages reload everything.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = events.send(HostEvent::Missed);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

/// A [`JobQueue`] that announces every submission and, when that job ends, its end.
pub struct NotifyingQueue {
    inner: Arc<MemoryJobQueue>,
    events: Events,
}

impl NotifyingQueue {
    /// Wraps `inner`.
    pub fn new(inner: Arc<MemoryJobQueue>, events: Events) -> Arc<Self> {
        Arc::new(NotifyingQueue { inner, events })
    }

    fn announce(&self, id: &JobId) {
        let _ = self.events.send(HostEvent::Jobs);
        // The queue has no completion callback: watch the job until it is no longer active.
        // Holds the queue weakly, so a stopped host leaves no watcher behind.
        let queue: Weak<MemoryJobQueue> = Arc::downgrade(&self.inner);
        let events = self.events.clone();
        let id = id.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let Some(q) = queue.upgrade() else { return };
                match q.status(&id).await {
                    Ok(Some(s)) if s.is_active() => continue,
                    _ => {
                        let _ = events.send(HostEvent::Jobs);
                        return;
                    }
                }
            }
        });
    }
}

#[async_trait]
impl JobQueue for NotifyingQueue {
    async fn submit(&self, job: JobSpec) -> selfmon::Result<JobId> {
        let id = self.inner.submit(job).await?;
        self.announce(&id);
        Ok(id)
    }

    async fn active_job(&self, kind: &JobKind) -> selfmon::Result<Option<(JobId, JobStatus)>> {
        self.inner.active_job(kind).await
    }

    async fn status(&self, id: &JobId) -> selfmon::Result<Option<JobStatus>> {
        self.inner.status(id).await
    }

    async fn submit_if_idle(&self, job: JobSpec) -> selfmon::Result<Submission> {
        let sub = self.inner.submit_if_idle(job).await?;
        if let Submission::Submitted { job_id } = &sub {
            self.announce(job_id);
        }
        Ok(sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_notifying_queue_passes_the_job_queue_conformance_suite() {
        let (events, _receiver) = broadcast::channel(64);
        selfmon_core::conformance::job_queue(|handler| {
            NotifyingQueue::new(MemoryJobQueue::start(handler), events)
        })
        .await;
    }
}
