//! Log records and levels.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Severity of a log record, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// Diagnostic detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the server handled.
    Warning,
    /// An operation failed.
    Error,
    /// The server or a subsystem cannot continue.
    Critical,
}

impl Level {
    /// All levels, least severe first.
    pub const ALL: [Level; 5] = [
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];

    /// The canonical upper-case name (`"WARNING"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    /// The coarse class used to group signatures: `"warning"` or `"error"` (ERROR and CRITICAL), or
    /// `"info"` for anything less severe.
    pub fn class(self) -> &'static str {
        match self {
            Level::Debug | Level::Info => "info",
            Level::Warning => "warning",
            Level::Error | Level::Critical => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = Error;

    /// Parses a level case-insensitively; accepts the common aliases `WARN`, `FATAL`, `TRACE`
    /// (as DEBUG) and `ERR`. Anything else is an [`Error::Parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let level = match t.to_ascii_uppercase().as_str() {
            "TRACE" | "DEBUG" => Level::Debug,
            "INFO" | "NOTICE" => Level::Info,
            "WARN" | "WARNING" => Level::Warning,
            "ERR" | "ERROR" => Level::Error,
            "CRITICAL" | "FATAL" | "CRIT" => Level::Critical,
            _ => {
                return Err(Error::parse(
                    "log level",
                    s,
                    "expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL (case-insensitive)",
                ))
            }
        };
        Ok(level)
    }
}

/// One record the server wrote to its log, as stored in CIDX's `logs.db`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Monotonically increasing id assigned by the log store; the scan cursor.
    pub id: i64,
    /// When the record was written, as the server wrote it (usually ISO 8601). Kept verbatim.
    pub timestamp: String,
    /// Severity.
    pub level: Level,
    /// The logger / module that wrote the record (`code_indexer.server.git`), if any.
    #[serde(default)]
    pub source: Option<String>,
    /// The message text. Untrusted: any client may have influenced it.
    #[serde(default)]
    pub message: String,
    /// Request correlation id, if any.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// The user on whose behalf the server acted, if any.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The HTTP request path, if any.
    #[serde(default)]
    pub request_path: Option<String>,
    /// Structured extra data (`{"error_code": "GIT-SYNC-001", ...}`), `Null` when absent.
    #[serde(default)]
    pub extra_data: serde_json::Value,
    /// The server node that wrote the record, in a cluster whose nodes share one log table
    /// (`None` for a single server). Untrusted text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
}

impl LogRecord {
    /// A record with the given id, level and message and everything else empty.
    pub fn new(id: i64, level: Level, message: impl Into<String>) -> Self {
        LogRecord {
            id,
            timestamp: String::new(),
            level,
            source: None,
            message: message.into(),
            correlation_id: None,
            user_id: None,
            request_path: None,
            extra_data: serde_json::Value::Null,
            node_id: None,
        }
    }

    /// Builder-style setter for `node_id`.
    pub fn with_node_id(mut self, node: impl Into<String>) -> Self {
        self.node_id = Some(node.into());
        self
    }

    /// Builder-style setter for `source`.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Builder-style setter for `timestamp`.
    pub fn with_timestamp(mut self, ts: impl Into<String>) -> Self {
        self.timestamp = ts.into();
        self
    }

    /// Builder-style setter for `extra_data`.
    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra_data = extra;
        self
    }

    /// Builder-style setter for `correlation_id`.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_case_insensitively_with_aliases() {
        assert_eq!("warning".parse::<Level>().unwrap(), Level::Warning);
        assert_eq!(" Warn ".parse::<Level>().unwrap(), Level::Warning);
        assert_eq!("FATAL".parse::<Level>().unwrap(), Level::Critical);
        assert_eq!("eRrOr".parse::<Level>().unwrap(), Level::Error);
    }

    #[test]
    fn unknown_level_is_a_parse_error_naming_the_input() {
        let err = "LOUD".parse::<Level>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("log level") && msg.contains("LOUD"), "{msg}");
    }

    #[test]
    fn levels_order_by_severity() {
        assert!(Level::Critical > Level::Error && Level::Error > Level::Warning);
        assert_eq!(Level::Critical.class(), "error");
    }

    #[test]
    fn record_round_trips_through_json() {
        let r = LogRecord::new(7, Level::Error, "boom")
            .with_source("svc")
            .with_extra(serde_json::json!({"error_code": "GIT-SYNC-001"}));
        let back: LogRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
