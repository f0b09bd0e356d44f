//! Who holds the scan lease, and whether that holder still runs.
//!
//! A lease records its holder's host and process identity: the pid plus an opaque start identity
//! (the boot id, the pid namespace and the process start time from `/proc/<pid>/stat`), so a pid
//! reused by another process is not mistaken for the holder. A scan that meets a lease held by a
//! process of the same host (same boot, same pid namespace) that no longer runs takes it over at
//! once; a holder it cannot judge (another host, another container, no procfs) blocks it until
//! the lease expires, at most one TTL later because a running holder renews it.

use crate::traits::{Lease, LeaseHolder};

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
