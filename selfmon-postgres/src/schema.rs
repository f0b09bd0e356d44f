//! The state tables and their versioned migrations.
//!
//! Each migration runs once, in order, inside one transaction that holds a transaction-scoped
//! advisory lock, so nodes starting together migrate exactly once and never see a half-migrated
//! schema. The version is kept in `selfmon_schema_version`.
//!
//! - v1: scans, filed issues, the outbox (intents), the lease row, learned templates.
//! - v2: the lease's fencing epoch (every outbox and issue write checks it) and the occurrence
//!   history of each issue.
//! - v3: the backlog of deferred findings.

use tokio_postgres::Client;

use crate::connect::quote_ident;
use crate::error::{Error, Result, RowExt};

/// The schema version this library writes.
pub const SCHEMA_VERSION: i64 = 5;

/// Advisory lock key serialising migrations across nodes ("selfmon" in ASCII, as a number).
const MIGRATION_LOCK_KEY: i64 = 0x73656c666d6f6e;

/// The DDL of each version, `{s}` standing for the quoted schema name.
pub const MIGRATIONS: [&str; 5] = [
    // v1
    "CREATE TABLE IF NOT EXISTS {s}.selfmon_scans (
        seq BIGSERIAL PRIMARY KEY,
        scan_id TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        completed_at TIMESTAMPTZ,
        log_id_end BIGINT NOT NULL,
        record JSONB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS selfmon_scans_started ON {s}.selfmon_scans (started_at DESC, seq DESC);
    CREATE TABLE IF NOT EXISTS {s}.selfmon_issues (
        seq BIGSERIAL PRIMARY KEY,
        number BIGINT NOT NULL UNIQUE,
        classification TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        issue JSONB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS {s}.selfmon_intents (
        seq BIGSERIAL PRIMARY KEY,
        intent_id TEXT NOT NULL UNIQUE,
        created_at TIMESTAMPTZ NOT NULL,
        intent JSONB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS {s}.selfmon_lease (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        acquired_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE IF NOT EXISTS {s}.selfmon_template_state (
        id INT PRIMARY KEY CHECK (id = 1),
        state TEXT NOT NULL
    );",
    // v2
    "ALTER TABLE {s}.selfmon_lease ADD COLUMN IF NOT EXISTS epoch BIGINT NOT NULL DEFAULT 1;
    CREATE TABLE IF NOT EXISTS {s}.selfmon_occurrences (
        seq BIGSERIAL PRIMARY KEY,
        issue_number BIGINT NOT NULL,
        seen_at TIMESTAMPTZ NOT NULL,
        count BIGINT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS selfmon_occurrences_issue
        ON {s}.selfmon_occurrences (issue_number, seen_at DESC);",
    // v3
    "CREATE TABLE IF NOT EXISTS {s}.selfmon_backlog (
        seq BIGSERIAL PRIMARY KEY,
        entry_id TEXT NOT NULL UNIQUE,
        fingerprint TEXT NOT NULL,
        severity_rank INT NOT NULL,
        occurrences BIGINT NOT NULL,
        deferred_at TIMESTAMPTZ NOT NULL,
        closed_at TIMESTAMPTZ,
        closure JSONB,
        entry JSONB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS selfmon_backlog_open
        ON {s}.selfmon_backlog (fingerprint) WHERE closed_at IS NULL;",
    // v4: who holds the lease, so a scan can tell a dead holder from a live one
    "ALTER TABLE {s}.selfmon_lease ADD COLUMN IF NOT EXISTS host TEXT NOT NULL DEFAULT '';
    ALTER TABLE {s}.selfmon_lease ADD COLUMN IF NOT EXISTS pid BIGINT;
    ALTER TABLE {s}.selfmon_lease ADD COLUMN IF NOT EXISTS process_start TEXT;",
    // v5: per-scan reports and the issue events indexed from them
    "CREATE TABLE IF NOT EXISTS {s}.selfmon_scan_reports (
        scan_id TEXT PRIMARY KEY,
        report JSONB NOT NULL,
        saved_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS {s}.selfmon_issue_events (
        seq BIGSERIAL PRIMARY KEY,
        scan_id TEXT NOT NULL,
        issue_number BIGINT NOT NULL,
        at TIMESTAMPTZ NOT NULL,
        event JSONB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS selfmon_issue_events_issue
        ON {s}.selfmon_issue_events (issue_number, at DESC);
    CREATE INDEX IF NOT EXISTS selfmon_issue_events_scan ON {s}.selfmon_issue_events (scan_id);",
];

/// Brings the schema `schema` to version `target` (at most [`SCHEMA_VERSION`]), creating it if
/// needed, and returns the version found before. Hosts call [`crate::PgStateStore::connect`],
/// which migrates to the latest; an explicit target is for upgrade tests.
pub async fn migrate_to(client: &mut Client, schema: &str, target: i64) -> Result<i64> {
    let s = quote_ident(schema);
    let tx = client
        .transaction()
        .await
        .map_err(Error::query("starting the migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(Error::query("waiting for other nodes' migrations"))?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.selfmon_schema_version (version BIGINT NOT NULL)"
    ))
    .await
    .map_err(Error::query("creating the schema version table"))?;
    let found: i64 = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {s}.selfmon_schema_version"),
            &[],
        )
        .await
        .map_err(Error::query("reading the schema version"))?
        .col(0)?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, ddl) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= found || version > target {
            continue;
        }
        tx.batch_execute(&ddl.replace("{s}", &s))
            .await
            .map_err(Error::query("migrating the state schema"))?;
        tracing::info!(schema, version, "migrated the selfmon state schema");
    }
    if target > found {
        tx.execute(&format!("DELETE FROM {s}.selfmon_schema_version"), &[])
            .await
            .map_err(Error::query("recording the schema version"))?;
        tx.execute(
            &format!("INSERT INTO {s}.selfmon_schema_version (version) VALUES ($1)"),
            &[&target],
        )
        .await
        .map_err(Error::query("recording the schema version"))?;
    }
    tx.commit()
        .await
        .map_err(Error::query("committing the migration"))?;
    Ok(found)
}

/// The version recorded in `schema` (0 when none).
pub async fn current_version(client: &Client, schema: &str) -> Result<i64> {
    let s = quote_ident(schema);
    client
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {s}.selfmon_schema_version"),
            &[],
        )
        .await
        .map_err(Error::query("reading the schema version"))?
        .col(0)
}
