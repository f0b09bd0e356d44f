//! The state store's schema and its forward migrations.
//!
//! Versions (recorded in `selfmon_schema_version`, one row per applied migration):
//!
//! 1. The CIDX dashboard's tables `self_monitoring_scans` and `self_monitoring_issues`. A host file
//!    that already has them (written by CIDX, without a version table) is adopted as version 1:
//!    tables are created only if absent and missing version-1 columns are added.
//! 2. selfmon's extensions: scan counters, model, cost and tokens, gap count; issue state,
//!    occurrences, last seen, templates and signature ids; the lease, the filing outbox
//!    (`selfmon_intents`) and the templater's learned state.
//! 3. Per-issue occurrence history (`self_monitoring_occurrences`) for the dashboard.
//! 4. The backlog of deferred findings (`selfmon_backlog`).
//! 5. Per-scan reports (`selfmon_scan_reports`: the bounded JSON report of each scan) and the
//!    issue events derived from them (`selfmon_issue_events`: each issue's dedup history).
//!
//! Later versions (see `MIGRATIONS`) add columns only; 9 adds
//! `self_monitoring_scans.analysis_failures`, how many scans in a row the analysis runner gave no
//! answer for the same records; the latest (10) adds `self_monitoring_issues.regression_noted_for`,
//! the closure of an issue whose recurrence selfmon already reported.
//!
//! Every migration runs in its own `BEGIN IMMEDIATE` transaction that also records its version, so
//! two processes opening the same file migrate it once, and a crash leaves it at a whole version.
//! Migrations only add (tables, columns, indexes); a file is never migrated backwards, and a file
//! newer than [`SCHEMA_VERSION`] is refused.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};
use crate::logs_schema::table_columns;

/// The newest schema version this library writes.
pub const SCHEMA_VERSION: i64 = 10;

/// Name of the table recording applied migrations.
pub const VERSION_TABLE: &str = "selfmon_schema_version";

struct Migration {
    version: i64,
    description: &'static str,
    apply: fn(&Connection) -> rusqlite::Result<()>,
}

const MIGRATIONS: [Migration; 10] = [
    Migration {
        version: 1,
        description: "CIDX dashboard tables: self_monitoring_scans, self_monitoring_issues",
        apply: v1,
    },
    Migration {
        version: 2,
        description:
            "selfmon extensions: scan counters, issue state, lease, outbox, template state",
        apply: v2,
    },
    Migration {
        version: 3,
        description: "per-issue occurrence history",
        apply: v3,
    },
    Migration {
        version: 4,
        description: "backlog of deferred findings",
        apply: v4,
    },
    Migration {
        version: 5,
        description: "lease holder identity: host, pid, process start",
        apply: v5,
    },
    Migration {
        version: 6,
        description: "per-scan reports and issue events",
        apply: v6,
    },
    Migration {
        version: 7,
        description: "log anchor: the last record a scan read (detects a recreated log)",
        apply: v7,
    },
    Migration {
        version: 8,
        description: "log anchor: the last record read as a second witness",
        apply: v8,
    },
    Migration {
        version: 9,
        description: "scans in a row the analysis runner gave no answer for",
        apply: v9,
    },
    Migration {
        version: 10,
        description: "issues: the closure whose recurrence selfmon already reported",
        apply: v10,
    },
];

/// The version recorded in the file; 0 for a file selfmon never migrated.
pub fn current_version(conn: &Connection) -> rusqlite::Result<i64> {
    if table_columns(conn, VERSION_TABLE)?.is_empty() {
        return Ok(0);
    }
    conn.query_row(
        &format!("SELECT COALESCE(max(version), 0) FROM {VERSION_TABLE}"),
        [],
        |r| r.get(0),
    )
}

/// Migrates the file to [`SCHEMA_VERSION`].
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    migrate_to(conn, path, SCHEMA_VERSION)
}

/// Migrates the file up to `target` (tests use it to build files of older versions).
pub fn migrate_to(conn: &mut Connection, path: &Path, target: i64) -> Result<()> {
    // Fast path without taking the write lock: nothing to do for an up-to-date file.
    let found = current_version(conn).map_err(Error::sqlite("reading the schema version"))?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found >= target {
        return Ok(());
    }
    for m in MIGRATIONS.iter().filter(|m| m.version <= target) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::sqlite("starting a schema migration"))?;
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
                version INTEGER PRIMARY KEY,
                applied_at TEXT NOT NULL,
                description TEXT NOT NULL
            )"
        ))
        .map_err(Error::sqlite("creating the schema version table"))?;
        // Re-read inside the write lock: another process may have migrated meanwhile.
        let found = current_version(&tx).map_err(Error::sqlite("reading the schema version"))?;
        if found > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found >= m.version {
            continue;
        }
        (m.apply)(&tx).map_err(Error::sqlite("applying a schema migration"))?;
        tx.execute(
            &format!(
                "INSERT INTO {VERSION_TABLE} (version, applied_at, description) VALUES (?1, ?2, ?3)"
            ),
            rusqlite::params![
                m.version,
                crate::state_store::values::now_text(),
                m.description
            ],
        )
        .map_err(Error::sqlite("recording the schema version"))?;
        tx.commit()
            .map_err(Error::sqlite("committing a schema migration"))?;
        tracing::info!(version = m.version, path = %path.display(), "state store migrated");
    }
    Ok(())
}

fn add_columns(conn: &Connection, table: &str, columns: &[(&str, &str)]) -> rusqlite::Result<()> {
    let present = table_columns(conn, table)?;
    for (name, decl) in columns {
        if !present.iter().any(|p| p.eq_ignore_ascii_case(name)) {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {name} {decl}"))?;
        }
    }
    Ok(())
}

fn v1(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS self_monitoring_scans (
            scan_id TEXT PRIMARY KEY,
            started_at TEXT NOT NULL,
            completed_at TEXT,
            status TEXT NOT NULL,
            log_id_start INTEGER,
            log_id_end INTEGER,
            issues_created INTEGER DEFAULT 0,
            error_message TEXT
        );
        CREATE TABLE IF NOT EXISTS self_monitoring_issues (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            scan_id TEXT NOT NULL,
            github_issue_number INTEGER,
            github_issue_url TEXT,
            classification TEXT NOT NULL,
            title TEXT NOT NULL,
            error_codes TEXT,
            fingerprint TEXT,
            source_log_ids TEXT,
            source_files TEXT,
            created_at TEXT NOT NULL
        );",
    )?;
    // A CIDX-created table may predate some of these columns.
    add_columns(
        conn,
        "self_monitoring_scans",
        &[
            ("completed_at", "TEXT"),
            ("log_id_start", "INTEGER"),
            ("log_id_end", "INTEGER"),
            ("issues_created", "INTEGER DEFAULT 0"),
            ("error_message", "TEXT"),
        ],
    )?;
    add_columns(
        conn,
        "self_monitoring_issues",
        &[
            ("github_issue_number", "INTEGER"),
            ("github_issue_url", "TEXT"),
            ("error_codes", "TEXT"),
            ("fingerprint", "TEXT"),
            ("source_log_ids", "TEXT"),
            ("source_files", "TEXT"),
        ],
    )
}

fn v2(conn: &Connection) -> rusqlite::Result<()> {
    add_columns(
        conn,
        "self_monitoring_scans",
        &[
            ("trigger", "TEXT NOT NULL DEFAULT 'scheduled'"),
            ("model", "TEXT"),
            ("prompt_version", "INTEGER"),
            ("records_read", "INTEGER NOT NULL DEFAULT 0"),
            ("signatures", "INTEGER NOT NULL DEFAULT 0"),
            ("novel_signatures", "INTEGER NOT NULL DEFAULT 0"),
            ("known_signatures", "INTEGER NOT NULL DEFAULT 0"),
            ("ignored_signatures", "INTEGER NOT NULL DEFAULT 0"),
            ("findings", "INTEGER NOT NULL DEFAULT 0"),
            ("rejected_findings", "INTEGER NOT NULL DEFAULT 0"),
            ("duplicates_by_error_code", "INTEGER NOT NULL DEFAULT 0"),
            ("duplicates_by_fingerprint", "INTEGER NOT NULL DEFAULT 0"),
            ("duplicates_by_similarity", "INTEGER NOT NULL DEFAULT 0"),
            ("comments_added", "INTEGER NOT NULL DEFAULT 0"),
            ("regressions", "INTEGER NOT NULL DEFAULT 0"),
            ("deferred", "INTEGER NOT NULL DEFAULT 0"),
            ("analysis_ran", "INTEGER NOT NULL DEFAULT 0"),
            ("cost_usd", "REAL"),
            ("input_tokens", "INTEGER"),
            ("output_tokens", "INTEGER"),
            ("gap_records", "INTEGER NOT NULL DEFAULT 0"),
            ("cursor_reset", "INTEGER NOT NULL DEFAULT 0"),
            ("dry_run", "INTEGER NOT NULL DEFAULT 0"),
        ],
    )?;
    add_columns(
        conn,
        "self_monitoring_issues",
        &[
            ("error_type", "TEXT"),
            ("templates", "TEXT"),
            ("signature_ids", "TEXT"),
            ("state", "TEXT NOT NULL DEFAULT 'open'"),
            ("occurrences", "INTEGER NOT NULL DEFAULT 0"),
            ("last_seen_at", "TEXT"),
        ],
    )?;
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS idx_smscans_started ON self_monitoring_scans(started_at);
        CREATE INDEX IF NOT EXISTS idx_smscans_status ON self_monitoring_scans(status, completed_at);
        CREATE INDEX IF NOT EXISTS idx_smissues_number ON self_monitoring_issues(github_issue_number);
        CREATE INDEX IF NOT EXISTS idx_smissues_created ON self_monitoring_issues(created_at);
        CREATE TABLE IF NOT EXISTS selfmon_lease (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            acquired_at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS selfmon_intents (
            intent_id TEXT PRIMARY KEY,
            scan_id TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            marker TEXT NOT NULL,
            title TEXT NOT NULL,
            draft TEXT NOT NULL,
            finding TEXT NOT NULL,
            templates TEXT NOT NULL,
            occurrences INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS selfmon_template_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            state TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );",
    )
}

fn v3(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS self_monitoring_occurrences (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            issue_id INTEGER NOT NULL REFERENCES self_monitoring_issues(id) ON DELETE CASCADE,
            issue_number INTEGER NOT NULL,
            seen_at TEXT NOT NULL,
            count INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS idx_smocc_issue ON self_monitoring_occurrences(issue_number, seen_at);
        CREATE INDEX IF NOT EXISTS idx_smocc_seen ON self_monitoring_occurrences(seen_at);",
    )
}

fn v4(conn: &Connection) -> rusqlite::Result<()> {
    add_columns(
        conn,
        "self_monitoring_scans",
        &[("backlog", "INTEGER NOT NULL DEFAULT 0")],
    )?;
    add_columns(conn, "selfmon_intents", &[("backlog_entry_id", "TEXT")])?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS selfmon_backlog (
            entry_id TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            severity TEXT NOT NULL,
            severity_rank INTEGER NOT NULL,
            finding TEXT NOT NULL,
            evidence TEXT NOT NULL,
            templates TEXT NOT NULL,
            occurrences INTEGER NOT NULL DEFAULT 0,
            deferred_by TEXT NOT NULL,
            deferred_at TEXT NOT NULL,
            closed_at TEXT,
            close_reason TEXT,
            closed_issue INTEGER
        );
        CREATE INDEX IF NOT EXISTS idx_smbacklog_open ON selfmon_backlog(closed_at, fingerprint);",
    )
}

/// v5: the lease row records who holds it (host, pid, process start identity), so a scan can tell
/// a dead holder from a live one.
fn v5(conn: &Connection) -> rusqlite::Result<()> {
    add_columns(
        conn,
        "selfmon_lease",
        &[
            ("host", "TEXT NOT NULL DEFAULT ''"),
            ("pid", "INTEGER"),
            ("process_start", "TEXT"),
        ],
    )
}

// No foreign keys to the scans table: a CIDX-created table need not declare scan_id unique.
// Retention deletes reports and events whose scan is gone.
/// v6: per-scan reports and the issue events indexed from them.
fn v6(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS selfmon_scan_reports (
            scan_id TEXT PRIMARY KEY,
            report TEXT NOT NULL,
            saved_at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS selfmon_issue_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            scan_id TEXT NOT NULL,
            issue_number INTEGER NOT NULL,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            records INTEGER NOT NULL DEFAULT 0,
            detail TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS idx_smevents_issue ON selfmon_issue_events(issue_number, at);
        CREATE INDEX IF NOT EXISTS idx_smevents_scan ON selfmon_issue_events(scan_id);",
    )
}

/// v7: the last record each scan read, so the next scan recognises a recreated log.
fn v7(conn: &Connection) -> rusqlite::Result<()> {
    add_columns(
        conn,
        "self_monitoring_scans",
        &[("log_anchor_id", "INTEGER"), ("log_anchor_digest", "TEXT")],
    )
}

/// v8: the last record a scan read, when the anchor names a later one (the record at the cursor):
/// a second witness, so one deleted row does not look like a recreated log.
fn v8(conn: &Connection) -> rusqlite::Result<()> {
    add_columns(
        conn,
        "self_monitoring_scans",
        &[
            ("log_anchor_read_id", "INTEGER"),
            ("log_anchor_read_digest", "TEXT"),
        ],
    )
}

/// v9: how many scans in a row the analysis runner gave no answer for the same records, so the
/// engine falls back to the offline rules after a few also across restarts.
fn v9(conn: &Connection) -> rusqlite::Result<()> {
    add_columns(
        conn,
        "self_monitoring_scans",
        &[("analysis_failures", "INTEGER NOT NULL DEFAULT 0")],
    )
}

/// v10: the closure of an issue on which selfmon already reported a recurrence
/// (`FiledIssue::regression_noted_for`), so each closure is commented on once (review5 G1, G2).
/// A nullable column: older binaries never read it, and a row they write leaves it empty.
fn v10(conn: &Connection) -> rusqlite::Result<()> {
    add_columns(
        conn,
        "self_monitoring_issues",
        &[("regression_noted_for", "TEXT")],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_consecutively_up_to_the_current_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
        assert_eq!(MIGRATIONS.len() as i64, SCHEMA_VERSION);
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path).unwrap();
        migrate(&mut conn, &path).unwrap();
        assert_eq!(current_version(&conn).unwrap(), SCHEMA_VERSION);
        let rows: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {VERSION_TABLE}"), [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(rows, SCHEMA_VERSION);
    }

    #[test]
    fn a_file_from_a_newer_selfmon_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path).unwrap();
        conn.execute(
            &format!("INSERT INTO {VERSION_TABLE} VALUES (99, 'x', 'future')"),
            [],
        )
        .unwrap();
        let err = migrate(&mut conn, &path).unwrap_err();
        assert!(
            matches!(err, Error::SchemaTooNew { found: 99, .. }),
            "{err}"
        );
    }
}
