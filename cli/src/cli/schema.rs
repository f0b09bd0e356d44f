//! `selfmon schema`: the logs.db schema selfmon reads, and the tables it keeps its state in.

use selfmon::sqlite::LOGS_TABLE_DDL;

/// What each column of the logs table means to selfmon.
const COLUMNS: &str = "\
Columns (only id, level and message are required; missing optional columns read as NULL):
  id              INTEGER, increasing: the scan cursor. Rows are read in id order, once each.
  timestamp       TEXT, ISO 8601: when the server logged the record.
  level           TEXT: DEBUG, INFO, WARNING, ERROR or CRITICAL (case-insensitive; WARN and
                  FATAL are accepted).
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

/// The text `selfmon schema` prints; only the DDL when `ddl_only`.
pub fn text(ddl_only: bool) -> String {
    if ddl_only {
        return format!("{LOGS_TABLE_DDL};\n");
    }
    format!(
        "The logs table selfmon reads (logs.db):\n\n{LOGS_TABLE_DDL};\n\n{COLUMNS}\n{STATE_TABLES}"
    )
}
