//! Who holds the scan lease, and whether that holder still runs.
//!
//! A lease records its holder's host and process identity: the pid plus an opaque start identity
//! (the boot id, the pid namespace and the process start time from `/proc/<pid>/stat`), so a pid
//! reused by another process is not mistaken for the holder. A scan that meets a lease held by a
//! process of the same host (same boot, same pid namespace) that no longer runs takes it over at
//! once; a holder it cannot judge (another host, another container, no procfs) blocks it until
//! the lease expires, at most one TTL later because a running holder renews it.

use std::future::Future;
use std::pin::pin;
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::model::{IssueDraft, IssueRef, Marker, TrackedIssue};
use crate::redact::RedactedText;
use crate::traits::{IssueTracker, Lease, LeaseHolder};

impl LeaseHolder {
    /// The current process as the holder `owner`.
    pub fn current(owner: impl Into<String>) -> Self {
        let pid = std::process::id();
        LeaseHolder {
            owner: owner.into(),
            host: host_name(),
            pid: Some(pid),
            process_start: process_start(pid),
        }
    }

    /// A holder known only by its name (a store or host that records no process identity).
    pub fn named(owner: impl Into<String>) -> Self {
        LeaseHolder {
            owner: owner.into(),
            host: String::new(),
            pid: None,
            process_start: None,
        }
    }
}

/// What this process can tell about a lease's holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderState {
    /// The holder runs (same host, same pid, same start).
    Running,
    /// The holder ran on this host and no longer does (its pid is gone, a zombie, or another
    /// process's): its lease may be taken over at once.
    Gone,
    /// Another host or container, or no identity recorded: wait for the lease to expire.
    Unknown,
}

/// Judges whether the holder of `lease` still runs, from this process's point of view.
pub fn holder_state(lease: &Lease) -> HolderState {
    let (Some(pid), Some(recorded)) = (lease.pid, lease.process_start.as_deref()) else {
        return HolderState::Unknown;
    };
    if lease.host != host_name() {
        return HolderState::Unknown;
    }
    let Some(ours) = process_start(std::process::id()) else {
        return HolderState::Unknown;
    };
    // Same boot and pid namespace, or the pid means nothing here.
    if same_machine_part(recorded) != same_machine_part(&ours) {
        return HolderState::Unknown;
    }
    match process_start(pid) {
        Some(now) if now == recorded && !is_zombie(pid) => HolderState::Running,
        _ => HolderState::Gone,
    }
}

/// The part of a start identity naming the boot and the pid namespace.
fn same_machine_part(identity: &str) -> &str {
    identity.rsplit_once(";start=").map_or("", |(m, _)| m)
}

/// This host's name (the kernel's, else `$HOSTNAME`, else empty).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

/// `boot=<boot id>;pidns=<namespace>;start=<ticks since boot>` of process `pid`, or `None`
/// without procfs or when the process does not exist.
pub fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let start = stat_field(&stat, 22)?;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let pidns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!(
        "boot={};pidns={};start={start}",
        boot.trim(),
        pidns.display()
    ))
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| stat_field(&s, 3).map(|f| matches!(f.as_str(), "Z" | "X")))
        .unwrap_or(true)
}

/// Field `n` (1-based, as in proc(5)) of a stat line; the command name may hold spaces and
/// parentheses, so fields are counted after its last `)`.
fn stat_field(stat: &str, n: usize) -> Option<String> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace()
        .nth(n.checked_sub(3)?)
        .map(str::to_string)
}

/// The longest a tracker mutation (one request, the GitHub adapter's default request timeout) is
/// assumed to take; a mutation starts only while the lease is surely held for that long.
const TRACKER_CALL_BOUND: Duration = Duration::from_secs(30);

/// Until when a scan surely holds its lease, by its own clock: the time it last asked for the
/// lease successfully (acquired or renewed) plus the TTL, less a safety margin (clock skew
/// between nodes, the store's latency).
///
/// The lease fences the state store's writes; the tracker is fenced here. After this time
/// another node may take the lease over and file (reconcile) what this scan intended, so this
/// scan must not call the tracker any more: the heartbeat stops the scan, and
/// [`FencedTracker`] refuses a mutation that could still run at that time.
#[derive(Debug)]
pub(crate) struct LeaseTerm {
    held_until: Mutex<DateTime<Utc>>,
    ttl: chrono::Duration,
    margin: chrono::Duration,
    /// How long before the end a tracker mutation is refused (and one waiting is dropped).
    call_bound: Duration,
}

impl LeaseTerm {
    /// The term of a lease of `ttl` asked for at `asked_at` (by this process's clock, before the
    /// request was sent).
    pub fn new(asked_at: DateTime<Utc>, ttl: Duration) -> Self {
        let ttl_c = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::weeks(1));
        // A tenth of the TTL, at most 10 s (60 s TTL: 6 s; the default 5 min: 10 s).
        let margin =
            chrono::Duration::from_std((ttl / 10).min(Duration::from_secs(10))).unwrap_or_default();
        let term = LeaseTerm {
            held_until: Mutex::new(DateTime::<Utc>::MIN_UTC),
            ttl: ttl_c,
            margin,
            // A quarter of the TTL at most, so a healthy lease (renewed every third of it)
            // always leaves room for a call.
            call_bound: TRACKER_CALL_BOUND.min(ttl / 4),
        };
        term.renewed(asked_at);
        term
    }

    /// A renewal asked for at `asked_at` succeeded.
    pub fn renewed(&self, asked_at: DateTime<Utc>) {
        let until = asked_at
            .checked_add_signed(self.ttl - self.margin)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut held = self.held_until.lock().unwrap_or_else(|p| p.into_inner());
        *held = (*held).max(until);
    }

    /// How long the lease is surely held from `now` (zero once it may have expired).
    pub fn remaining(&self, now: DateTime<Utc>) -> Duration {
        let held = *self.held_until.lock().unwrap_or_else(|p| p.into_inner());
        (held - now).to_std().unwrap_or(Duration::ZERO)
    }

    /// Runs a tracker mutation only while the lease is surely held for at least the call bound:
    /// refused with [`Error::LeaseLost`] before it starts otherwise, and dropped, with the same
    /// error, as soon as that stops being true while it is still pending (a rate-limit wait in
    /// the adapter that would outlast the lease: the request after the wait is never sent).
    ///
    /// The clock is read before the call is polled, every time: a process that was frozen past
    /// its lease (SIGSTOP, a paused VM) drops the call before it can go on with its request.
    /// What cannot be recalled is a request already sent when the lease ends (the tracker takes
    /// longer than the bound to answer, or the process freezes mid-request): for a create, the
    /// marker in its body lets the next holder's reconciliation find the issue
    /// ([`IssueTracker::find_by_marker`]) if it is visible by then; one that becomes visible only
    /// after the next holder searched and filed is a duplicate the state does not know of.
    pub async fn fenced<T>(
        &self,
        clock: &dyn Clock,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let mut call = pin!(call);
        let mut wake = pin!(tokio::time::sleep(Duration::ZERO));
        std::future::poll_fn(|cx| loop {
            let left = self.remaining(clock.now()).saturating_sub(self.call_bound);
            if left.is_zero() {
                tracing::error!(
                    held_until = %self.held_until(),
                    "the scan lease may end before a tracker call could finish; not calling the tracker, stopping the scan"
                );
                return Poll::Ready(Err(Error::LeaseLost {
                    owner: String::new(),
                }));
            }
            if let Poll::Ready(out) = call.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            wake.as_mut().reset(tokio::time::Instant::now() + left);
            if wake.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        })
        .await
    }

    fn held_until(&self) -> DateTime<Utc> {
        *self.held_until.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The tracker as a scan holding a lease calls it: every mutation (create, comment, reopen) is
/// [fenced](LeaseTerm::fenced) by the lease; reads pass through.
pub(crate) struct FencedTracker<'a> {
    pub inner: &'a dyn IssueTracker,
    pub term: &'a LeaseTerm,
    pub clock: &'a dyn Clock,
}

#[async_trait]
impl IssueTracker for FencedTracker<'_> {
    async fn list_issues(&self, closed_since: Option<DateTime<Utc>>) -> Result<Vec<TrackedIssue>> {
        self.inner.list_issues(closed_since).await
    }

    async fn create_issue(&self, draft: &IssueDraft) -> Result<IssueRef> {
        self.term
            .fenced(self.clock, self.inner.create_issue(draft))
            .await
    }

    async fn comment(&self, number: u64, body: &RedactedText) -> Result<()> {
        self.term
            .fenced(self.clock, self.inner.comment(number, body))
            .await
    }

    async fn reopen(&self, number: u64) -> Result<()> {
        self.term
            .fenced(self.clock, self.inner.reopen(number))
            .await
    }

    async fn find_by_marker(&self, marker: &Marker) -> Result<Option<IssueRef>> {
        self.inner.find_by_marker(marker).await
    }

    async fn get_issue(&self, number: u64) -> Result<Option<TrackedIssue>> {
        self.inner.get_issue(number).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn lease_of(holder: LeaseHolder) -> Lease {
        Lease {
            owner: holder.owner,
            host: holder.host,
            pid: holder.pid,
            process_start: holder.process_start,
            acquired_at: Utc::now(),
            expires_at: Utc::now(),
        }
    }

    #[test]
    fn stat_fields_are_counted_past_a_command_with_parentheses() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 987654 0";
        assert_eq!(stat_field(stat, 3).as_deref(), Some("S"));
        assert_eq!(stat_field(stat, 22).as_deref(), Some("987654"));
        assert_eq!(stat_field("nonsense", 3), None);
    }

    #[test]
    fn this_process_is_running_and_a_dead_or_reused_pid_is_gone() {
        if process_start(std::process::id()).is_none() {
            crate::testing::tool::skip_missing_tool("procfs", "holder liveness reads /proc");
            return;
        }
        let me = lease_of(LeaseHolder::current("me"));
        assert_eq!(holder_state(&me), HolderState::Running);
        // A child that exited and was reaped: its pid no longer runs.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = process_start(pid);
        child.wait().unwrap();
        let dead = Lease {
            pid: Some(pid),
            process_start: start.or_else(|| me.process_start.clone()),
            ..me.clone()
        };
        assert_eq!(holder_state(&dead), HolderState::Gone);
        // Our own pid with another start time: a reused pid, not the holder.
        let reused = Lease {
            process_start: me
                .process_start
                .as_deref()
                .map(|s| format!("{};start=1", same_machine_part(s))),
            ..me.clone()
        };
        assert_eq!(holder_state(&reused), HolderState::Gone);
    }

    #[test]
    fn a_holder_on_another_host_or_without_identity_is_unknown() {
        let me = lease_of(LeaseHolder::current("me"));
        let elsewhere = Lease {
            host: format!("{}-other", me.host),
            ..me.clone()
        };
        assert_eq!(holder_state(&elsewhere), HolderState::Unknown);
        let other_boot = Lease {
            process_start: Some("boot=x;pidns=y;start=1".into()),
            ..me.clone()
        };
        assert_eq!(holder_state(&other_boot), HolderState::Unknown);
        assert_eq!(
            holder_state(&lease_of(LeaseHolder::named("n"))),
            HolderState::Unknown
        );
    }
}
