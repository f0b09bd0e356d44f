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
//!    parsed, *before* the `DEFAULT nextval(...)` runs, and keeps it until it commits or aborts. So
//!    any id ≤ `L` not yet visible belongs to one of the transactions listed.
//! 3. Once every listed transaction has ended, every id ≤ `L` is final: committed (visible to any
//!    later snapshot) or rolled back (never to appear). `L` is the horizon.
//!
//! Short inserts end within milliseconds, so the source waits a bounded time for them. A
//! transaction held open longer does not block the scan: the observation is kept and the horizon
//! stays at the last one whose writers have all ended, so the scan reads what is final and a later
//! scan reads the rest.
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

use crate::error::{Error, Result};

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
    /// Observations whose writers had not all ended, oldest first.
    pending: VecDeque<Observation>,
}

impl Horizon {
    /// Records an observation whose writers have all ended.
    pub fn settle(&mut self, allocated_through: i64) {
        self.safe = Some(
            self.safe
                .map_or(allocated_through, |s| s.max(allocated_through)),
        );
        self.pending
            .retain(|o| o.allocated_through > allocated_through);
    }

    /// Keeps an observation whose writers were still running.
    pub fn defer(&mut self, obs: Observation) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(obs);
    }

    /// The proven horizon, never above `allocated_now` (a recreated table restarts its sequence).
    pub fn safe(&self, allocated_now: i64) -> Option<i64> {
        self.safe.map(|s| s.min(allocated_now))
    }

    /// Pending observations, oldest first.
    pub fn pending(&self) -> Vec<Observation> {
        self.pending.iter().cloned().collect()
    }
}

/// SQL that names the log table's sequence and the write locks on it.
pub(crate) struct HorizonQueries {
    /// `regclass` text of the table (quoted, schema-qualified).
    pub table: String,
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
                Ok(row.get(0))
            }
            None => {
                let sql = format!("SELECT coalesce(max(id), 0)::bigint FROM {}", self.table);
                let row = client
                    .query_one(&sql, &[])
                    .await
                    .map_err(Error::query("reading the highest log id"))?;
                Ok(row.get(0))
            }
        }
    }

    /// Virtual transactions (other than this session's) holding a lock that allows writing the
    /// table.
    pub async fn writers(&self, client: &Client) -> Result<Vec<String>> {
        let rows = client
            .query(
                "SELECT DISTINCT virtualtransaction FROM pg_locks
                 WHERE locktype = 'relation'
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND relation = $1::text::regclass
                   AND mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock',
                                'AccessExclusiveLock')
                   AND pid IS DISTINCT FROM pg_backend_pid()
                   AND virtualtransaction IS NOT NULL",
                &[&self.table],
            )
            .await
            .map_err(Error::query("listing transactions writing the log table"))?;
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
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
        Ok(usize::try_from(row.get::<_, i64>(0)).unwrap_or(usize::MAX))
    }

    /// Takes an observation, waits up to `wait` for its writers, and returns the safe horizon
    /// (`None`: nothing proven final yet).
    pub async fn advance(
        &self,
        client: &Client,
        state: &std::sync::Mutex<Horizon>,
        wait: Duration,
    ) -> Result<Option<i64>> {
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
        Ok(lock(state).safe(allocated))
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
