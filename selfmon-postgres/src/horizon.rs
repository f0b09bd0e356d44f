//! The commit horizon: the highest log id below which no row can still appear.
//!
//! Ids from a sequence are handed out when a row is *inserted*, but the row becomes visible when
//! its transaction *commits*. A transaction holding id 101 may commit after id 102 is visible; a
//! cursor that moved to 102 would skip 101 forever. So a page is read only up to a safe horizon:
//!
//! 1. Read the sequence's last handed-out value `L` (`pg_sequence_last_value`). Every id ≤ `L` was
//!    allocated before this moment.
//! 2. Then list the transactions that hold a write lock on the log table (`pg_locks`). A
//!    transaction inserting into the table takes `RowExclusiveLock` on it while the statement is
//!    parsed, *before* the `DEFAULT nextval(...)` runs, and keeps it until it commits or aborts;
//!    `nextval` itself takes `RowExclusiveLock` on the sequence before it hands out a value and
//!    keeps it as long. So any id ≤ `L` not yet visible belongs to one of the transactions listed.
//!    "The log table" is every relation a row can be written to: a partitioned table's partitions
//!    (a node may insert into today's partition directly, which locks the parent only for
//!    reading), inheritance children, and for a view, the tables under it (writers insert there;
//!    selfmon reads the view). Partitions are looked up at every look, so new ones count.
//! 3. Once every listed transaction has ended, every id ≤ `L` is final: committed (visible to any
//!    later snapshot) or rolled back (never to appear). `L` is the horizon.
//!
//! Short inserts end within milliseconds, so the source waits a bounded time for them. A
//! transaction held open longer does not block the scan: the observation is kept and the horizon
//! stays at the last one whose writers have all ended, so the scan reads what is final and a later
//! scan reads the rest.
//!
//! A writer that never ends (a node's connection left `idle in transaction`) holds the horizon
//! back for as long as it stays open, and with it every record above. That is never resolved by
//! skipping: the source names the session instead. It looks the writers
//! of the observation that holds the horizon up in `pg_stat_activity` (pid, application, client
//! address, state, how long the transaction has been open), and once one has been open longer
//! than `horizon_stall_warn_secs` each page carries a warning saying so and how to end it
//! (commit or roll back on its node, or `SELECT pg_terminate_backend(pid)`).
//!
//! Unlike a filter on the rows' `xmin` against `pg_snapshot_xmin(pg_current_snapshot())`, this
//! keeps the cursor an id (the `LogSource` contract), survives transaction-id wraparound and
//! freezing, and is not held back by unrelated write transactions elsewhere in the database.
//! Assumptions (documented in the crate docs): ids come from the column's sequence with the default
//! `CACHE 1` (a per-session cache hands out ids out of order by design), and nobody calls
//! `nextval` in one statement and inserts the id in a later one without having touched the table.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::error::{Error, Result, RowExt};

/// Observations waiting for their writers to end, at most this many (older ones are dropped:
/// that only delays progress, it never makes the horizon unsafe).
const MAX_PENDING: usize = 64;

/// One look at the table: the ids allocated so far, and who might still commit some of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Ids up to here had been handed out.
    pub allocated_through: i64,
    /// Virtual transaction ids (`pg_locks.virtualtransaction`) holding a write lock then.
    pub writers: Vec<String>,
}

/// The horizon bookkeeping of one source.
#[derive(Debug, Default)]
pub(crate) struct Horizon {
    /// The highest horizon proven so far.
    safe: Option<i64>,
    /// Observations whose writers had not all ended, oldest first, with when each was taken.
    pending: VecDeque<(Observation, Instant)>,
}

/// What one look at the horizon found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reading {
    /// The proven horizon (`None`: nothing proven final yet).
    pub safe: Option<i64>,
    /// The oldest observation still waiting for its writers (what keeps `safe` from rising), and
    /// when this source took it; `None` when nothing is held back.
    pub held_by: Option<(Observation, Instant)>,
}

/// A session (or prepared transaction) whose open transaction holds the commit horizon back, as
/// `pg_stat_activity` shows it. Fields the server does not show selfmon's role are `None`
/// (another role's session needs `pg_read_all_stats`).
#[derive(Debug, Clone, PartialEq)]
pub struct HorizonHolder {
    /// `pg_locks.virtualtransaction` of the transaction.
    pub virtual_transaction: String,
    /// The backend's pid; `None` for a prepared transaction (no session holds it).
    pub pid: Option<i32>,
    /// `application_name` the writer connected with.
    pub application_name: Option<String>,
    /// The client's address (`None` for a Unix socket or when not visible).
    pub client_addr: Option<String>,
    /// `state` (`idle in transaction`, `active`, ...).
    pub state: Option<String>,
    /// Seconds since the transaction started (`xact_start`).
    pub open_secs: Option<f64>,
}

impl Horizon {
    /// Records an observation whose writers have all ended.
    pub fn settle(&mut self, allocated_through: i64) {
        self.safe = Some(
            self.safe
                .map_or(allocated_through, |s| s.max(allocated_through)),
        );
        self.pending
            .retain(|(o, _)| o.allocated_through > allocated_through);
    }

    /// Keeps an observation whose writers were still running.
    pub fn defer(&mut self, obs: Observation) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back((obs, Instant::now()));
    }

    /// The pending observation with the lowest ids (the one whose writers keep the horizon where
    /// it is), with when it was taken.
    pub fn holding_back(&self) -> Option<(Observation, Instant)> {
        self.pending
            .iter()
            .min_by_key(|(o, _)| o.allocated_through)
            .cloned()
    }

    /// The proven horizon, never above `allocated_now` (a recreated table restarts its sequence).
    pub fn safe(&self, allocated_now: i64) -> Option<i64> {
        self.safe.map(|s| s.min(allocated_now))
    }

    /// Pending observations, oldest first.
    pub fn pending(&self) -> Vec<Observation> {
        self.pending.iter().map(|(o, _)| o.clone()).collect()
    }
}

/// SQL that names the log table's sequence and the write locks on it.
pub(crate) struct HorizonQueries {
    /// `regclass` text of the relation selfmon reads (quoted, schema-qualified): a table, a
    /// partitioned table or a view.
    pub table: String,
    /// The relations writers insert into: the table itself, or the tables under a view. Their
    /// partitions and inheritance children (found at every look: partitions come and go) count
    /// too.
    pub written: Vec<String>,
    /// The sequence behind `id`, if any (quoted, schema-qualified).
    pub sequence: Option<String>,
}

impl HorizonQueries {
    /// Ids handed out so far: the sequence's last value, or (no sequence) the highest id visible.
    pub async fn allocated_through(&self, client: &Client) -> Result<i64> {
        match &self.sequence {
            Some(seq) => {
                let row = client
                    .query_one(
                        "SELECT coalesce(pg_sequence_last_value($1::text::regclass), 0)::bigint",
                        &[seq],
                    )
                    .await
                    .map_err(Error::query(
                        "reading the log id sequence (grant SELECT on the sequence to selfmon's role)",
                    ))?;
                Ok(row.col(0)?)
            }
            None => {
                let sql = format!("SELECT coalesce(max(id), 0)::bigint FROM {}", self.table);
                let row = client
                    .query_one(&sql, &[])
                    .await
                    .map_err(Error::query("reading the highest log id"))?;
                Ok(row.col(0)?)
            }
        }
    }

    /// Virtual transactions (other than this session's) holding a lock that allows writing the
    /// log: on the table, any of its partitions (a node may insert into today's partition
    /// directly, which takes no write lock on the parent), the tables under a view, or the id
    /// sequence (`nextval` holds `RowExclusiveLock` on it until the transaction ends, whichever
    /// relation the row went to).
    pub async fn writers(&self, client: &Client) -> Result<Vec<String>> {
        let rows = client
            .query(
                "WITH RECURSIVE tree(oid) AS (
                     SELECT unnest($1::text[]::regclass[])::oid
                     UNION
                     SELECT i.inhrelid FROM pg_inherits AS i JOIN tree ON i.inhparent = tree.oid
                 )
                 SELECT DISTINCT virtualtransaction FROM pg_locks
                 WHERE locktype = 'relation'
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND (relation IN (SELECT oid FROM tree)
                        OR relation = $2::text::regclass)
                   AND mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock',
                                'AccessExclusiveLock')
                   AND pid IS DISTINCT FROM pg_backend_pid()
                   AND virtualtransaction IS NOT NULL",
                &[&self.written, &self.sequence],
            )
            .await
            .map_err(Error::query("listing transactions writing the log table"))?;
        rows.iter().map(|r| r.col::<String>(0)).collect()
    }

    /// How many of `writers` are still running.
    pub async fn still_running(&self, client: &Client, writers: &[String]) -> Result<usize> {
        if writers.is_empty() {
            return Ok(0);
        }
        let row = client
            .query_one(
                "SELECT count(DISTINCT virtualtransaction) FROM pg_locks
                 WHERE virtualtransaction = ANY($1)",
                &[&writers],
            )
            .await
            .map_err(Error::query("checking whether log writers have finished"))?;
        Ok(usize::try_from(row.col::<i64>(0)?).unwrap_or(usize::MAX))
    }

    /// The sessions behind those of `writers` still running, longest open first.
    pub async fn holders(&self, client: &Client, writers: &[String]) -> Result<Vec<HorizonHolder>> {
        if writers.is_empty() {
            return Ok(Vec::new());
        }
        let rows = client
            .query(
                "SELECT l.virtualtransaction, l.pid, a.application_name::text,
                        host(a.client_addr), a.state::text,
                        extract(epoch FROM clock_timestamp() - a.xact_start)::float8
                 FROM (SELECT DISTINCT virtualtransaction, pid FROM pg_locks
                       WHERE virtualtransaction = ANY($1)) AS l
                 LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
                 ORDER BY a.xact_start NULLS LAST, l.virtualtransaction",
                &[&writers],
            )
            .await
            .map_err(Error::query(
                "naming the sessions that hold the commit horizon back",
            ))?;
        rows.iter()
            .map(|r| {
                Ok(HorizonHolder {
                    virtual_transaction: r.col(0)?,
                    pid: r.col(1)?,
                    application_name: r.col::<Option<String>>(2)?.filter(|a| !a.is_empty()),
                    client_addr: r.col(3)?,
                    state: r.col(4)?,
                    open_secs: r.col(5)?,
                })
            })
            .collect()
    }

    /// Takes an observation, waits up to `wait` for its writers, and returns the safe horizon
    /// (`None`: nothing proven final yet) and what holds it back.
    pub async fn advance(
        &self,
        client: &Client,
        state: &std::sync::Mutex<Horizon>,
        wait: Duration,
    ) -> Result<Reading> {
        // Earlier observations first: their writers may have ended since.
        let pending = lock(state).pending();
        for obs in pending {
            if self.still_running(client, &obs.writers).await? == 0 {
                lock(state).settle(obs.allocated_through);
            }
        }
        // Order matters: the sequence first, then the locks (see the module docs).
        let allocated = self.allocated_through(client).await?;
        let writers = self.writers(client).await?;
        let obs = Observation {
            allocated_through: allocated,
            writers,
        };
        if self.wait_for(client, &obs.writers, wait).await? {
            lock(state).settle(allocated);
        } else {
            tracing::debug!(
                allocated,
                writers = obs.writers.len(),
                "log writers still running; reading up to the last proven horizon"
            );
            lock(state).defer(obs);
        }
        let h = lock(state);
        Ok(Reading {
            safe: h.safe(allocated),
            held_by: h.holding_back(),
        })
    }

    /// Polls until none of `writers` runs (true) or `wait` passes (false).
    async fn wait_for(&self, client: &Client, writers: &[String], wait: Duration) -> Result<bool> {
        if writers.is_empty() {
            return Ok(true);
        }
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(2);
        loop {
            if self.still_running(client, writers).await? == 0 {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

/// [`selfmon_core::SourceWarning::kind`] of the warning a page carries while the horizon is held back.
pub const HORIZON_HELD_KIND: &str = "commit_horizon_held";

/// The warning for a horizon held back at `held_at` by `holders`, naming each one open for at
/// least `bound` and how to end it; `None` when none has been open that long. A holder whose
/// `xact_start` the server does not show counts as open since this source first saw it held
/// (`seen_for`).
pub(crate) fn held_back_warning(
    held_at: Option<i64>,
    holders: &[HorizonHolder],
    seen_for: Duration,
    bound: Duration,
) -> Option<selfmon_core::SourceWarning> {
    let open_for = |h: &HorizonHolder| {
        h.open_secs
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(seen_for, Duration::from_secs_f64)
    };
    let stuck: Vec<&HorizonHolder> = holders.iter().filter(|h| open_for(h) >= bound).collect();
    if stuck.is_empty() {
        return None;
    }
    let shown = |v: &Option<String>| {
        v.as_deref()
            .map_or("?".to_string(), selfmon_core::text::quoted)
    };
    let who: Vec<String> = stuck
        .iter()
        .map(|h| match h.pid {
            Some(pid) => format!(
                "pid {pid} (application {}, client {}, state {}, transaction open {})",
                shown(&h.application_name),
                h.client_addr
                    .as_deref()
                    .unwrap_or("local socket or not visible"),
                shown(&h.state),
                human_duration(open_for(h)),
            ),
            None => format!(
                "prepared transaction {} (no session; open {})",
                h.virtual_transaction,
                human_duration(open_for(h)),
            ),
        })
        .collect();
    let fixes: Vec<String> = stuck
        .iter()
        .map(|h| match h.pid {
            Some(pid) => format!("SELECT pg_terminate_backend({pid});"),
            None => "COMMIT PREPARED or ROLLBACK PREPARED it (see pg_prepared_xacts);".to_string(),
        })
        .collect();
    let unread = match held_at {
        Some(id) => format!("log records above id {id} are not read"),
        None => "no new log record is read (none can be proven final while it is open)".to_string(),
    };
    Some(selfmon_core::SourceWarning {
        kind: HORIZON_HELD_KIND.to_string(),
        message: format!(
            "{unread}: the commit horizon is held back by a transaction that has written to the log \
             table and stayed open longer than {}: {}. Nothing is skipped: those records are read \
             once it ends. Commit or roll back that session on its node, or end it: {}",
            human_duration(bound),
            who.join("; "),
            fixes.join(" ")
        ),
    })
}

/// `45s`, `3m 12s`, `2h 5m`.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

fn lock(m: &std::sync::Mutex<Horizon>) -> std::sync::MutexGuard<'_, Horizon> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_horizon_only_rises_and_never_exceeds_what_is_allocated_now() {
        let mut h = Horizon::default();
        assert_eq!(h.safe(10), None);
        h.settle(5);
        h.settle(3);
        assert_eq!(h.safe(10), Some(5));
        assert_eq!(h.safe(2), Some(2), "a recreated table caps the horizon");
    }

    #[test]
    fn settling_drops_pending_observations_it_covers() {
        let mut h = Horizon::default();
        for i in 0..3 {
            h.defer(Observation {
                allocated_through: i * 10,
                writers: vec![format!("3/{i}")],
            });
        }
        h.settle(10);
        let left: Vec<i64> = h.pending().iter().map(|o| o.allocated_through).collect();
        assert_eq!(left, [20]);
    }

    fn holder(pid: Option<i32>, open_secs: Option<f64>) -> HorizonHolder {
        HorizonHolder {
            virtual_transaction: "4/17".into(),
            pid,
            application_name: Some("node-b".into()),
            client_addr: Some("10.0.0.5".into()),
            state: Some("idle in transaction".into()),
            open_secs,
        }
    }

    #[test]
    fn a_holder_open_past_the_bound_is_named_with_what_to_do() {
        let bound = Duration::from_secs(60);
        let w = held_back_warning(
            Some(41),
            &[holder(Some(4242), Some(312.0))],
            Duration::ZERO,
            bound,
        )
        .expect("open 312 s > 60 s");
        assert_eq!(w.kind, HORIZON_HELD_KIND);
        for part in [
            "above id 41",
            "pid 4242",
            "`node-b`",
            "10.0.0.5",
            "`idle in transaction`",
            "5m 12s",
            "SELECT pg_terminate_backend(4242);",
            "Nothing is skipped",
        ] {
            assert!(
                w.message.contains(part),
                "{part} missing from {}",
                w.message
            );
        }
        assert_eq!(
            held_back_warning(
                Some(41),
                &[holder(Some(1), Some(59.0))],
                Duration::ZERO,
                bound
            ),
            None,
            "a transaction open less than the bound is not reported"
        );
        assert_eq!(
            held_back_warning(Some(41), &[], Duration::from_secs(999), bound),
            None
        );
    }

    #[test]
    fn an_unseen_start_counts_from_when_the_source_saw_it_and_a_prepared_one_is_named() {
        let bound = Duration::from_secs(60);
        let w = held_back_warning(None, &[holder(None, None)], Duration::from_secs(61), bound)
            .expect("seen held for 61 s");
        assert!(
            w.message.starts_with("no new log record is read"),
            "{}",
            w.message
        );
        assert!(
            w.message.contains("prepared transaction 4/17"),
            "{}",
            w.message
        );
        assert!(w.message.contains("ROLLBACK PREPARED"), "{}", w.message);
        assert_eq!(
            held_back_warning(
                None,
                &[holder(Some(1), None)],
                Duration::from_secs(5),
                bound
            ),
            None
        );
    }

    #[test]
    fn pending_observations_are_bounded() {
        let mut h = Horizon::default();
        for i in 0..(MAX_PENDING as i64 + 10) {
            h.defer(Observation {
                allocated_through: i,
                writers: vec![],
            });
        }
        assert_eq!(h.pending().len(), MAX_PENDING);
        assert_eq!(h.pending()[0].allocated_through, 10);
    }
}
