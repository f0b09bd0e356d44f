//! `selfmon schema`: the logs.db schema selfmon reads, and the tables it keeps its state in.

use selfmon::sqlite::LOGS_TABLE_DDL;

/// What each column of the logs table means to selfmon.
const COLUMNS: &str = "\
Columns (only id, level and message are required; missing optional columns read as NULL):
  id              INTEGER PRIMARY KEY (or under a UNIQUE index), increasing: the scan cursor.
                  Rows are read in id order, once each; a table whose ids may repeat is refused.
  timestamp       TEXT, ISO 8601: when the server logged the record.
  level           TEXT: DEBUG, INFO, WARNING, ERROR or CRITICAL (case-insensitive; common
                  aliases such as WARN, FATAL, SEVERE, W/E/F are accepted). Numbers (as text or
                  integers) are read on the scale `logs.numeric_levels` names: `python` (the
                  default): 10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR, 50 CRITICAL, any number
                  above 50 CRITICAL; `pino` (pino/bunyan): 10 trace and 20 debug as DEBUG,
                  30 info, 40 warn, 50 error, 60 fatal, any number above 60 CRITICAL. Other
                  numbers (syslog priorities 0..7, whose order is reversed, Python's custom 25)
                  are no level: like any other value they are read as ERROR, keeping the
                  original in extra_data.
  source          TEXT: the logger or module (`app.git`); used by ignore.sources and grouping.
  message         TEXT: the message; error codes like [GIT-SYNC-001] in it drive deduplication.
  correlation_id  TEXT: a request id; distinct ids are counted per signature.
  user_id         TEXT: the user, if any.
  request_path    TEXT: the HTTP path, if any.
  extra_data      TEXT: JSON with more context.
  alias, node_id, created_at: written by CIDX; selfmon does not need them.
";

/// The state tables, for the dashboard and for `selfmon history`.
const STATE_TABLES: &str = "\
selfmon's own state (the --state file, which may be the same database):
  self_monitoring_scans        one row per scan (counters, cursor range, model, cost, dry_run)
  self_monitoring_issues       one row per issue filed (fingerprint, error codes, state)
  self_monitoring_occurrences  per-issue occurrence history
  selfmon_scan_reports         per-scan report as JSON (`selfmon history show SCAN_ID`)
  selfmon_issue_events         each issue's dedup history, derived from the reports
  selfmon_intents              the filing outbox (filings in flight)
  selfmon_lease                the single-flight scan lease
  selfmon_template_state       the templater's learned templates
  selfmon_schema_version       applied migrations
";

/// Cluster mode: the shared PostgreSQL table and what selfmon assumes about it.
const CLUSTER: &str = "\
Cluster mode (\"kind\": \"postgres\" for logs and state; a binary built with --features postgres):
  The nodes' shared `logs` table has the same columns plus node_id (the node that wrote the
  row), with `id SERIAL PRIMARY KEY` (or an IDENTITY column). Ids must come from the id
  column's own sequence with the default CACHE 1: rows are read in id order up to the commit
  horizon (the highest id no open transaction can still commit below), so a row committed late
  with a lower id is waited for, not skipped. Ids allocated by the client (Hibernate
  allocationSize > 1, a sequence the column does not own, a view or a partition written
  directly) break that proof. The role needs SELECT on the table and its id sequence.
  selfmon's state lives in its own tables in the schema the configuration names
  (`selfmon history --config FILE` reads it).
";

/// The text `selfmon schema` prints; only the DDL when `ddl_only`.
pub fn text(ddl_only: bool) -> String {
    if ddl_only {
        return format!("{LOGS_TABLE_DDL};\n");
    }
    format!(
        "The logs table selfmon reads (logs.db):\n\n{LOGS_TABLE_DDL};\n\n{COLUMNS}\n{STATE_TABLES}\n{CLUSTER}"
    )
}
