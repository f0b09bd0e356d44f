//! What kind of problem a finding is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The three kinds of actionable problem selfmon files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// The server itself is wrong: a crash, an unhandled exception, a stuck state.
    ServerBug,
    /// Clients use the server wrongly in a way the server should reject or explain better.
    ClientMisuse,
    /// Documentation is missing or wrong (deprecated parameters, unknown options clients keep sending).
    DocumentationGap,
}

impl Classification {
    /// All classifications.
    pub const ALL: [Classification; 3] = [
        Classification::ServerBug,
        Classification::ClientMisuse,
        Classification::DocumentationGap,
    ];

    /// The wire name (`"server_bug"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::ServerBug => "server_bug",
            Classification::ClientMisuse => "client_misuse",
            Classification::DocumentationGap => "documentation_gap",
        }
    }

    /// The issue title prefix (`"[BUG]"`).
    pub fn title_prefix(self) -> &'static str {
        match self {
            Classification::ServerBug => "[BUG]",
            Classification::ClientMisuse => "[CLIENT]",
            Classification::DocumentationGap => "[DOCS]",
        }
    }

    /// The default tracker label (`"bug"`).
    pub fn default_label(self) -> &'static str {
        match self {
            Classification::ServerBug => "bug",
            Classification::ClientMisuse => "client-misuse",
            Classification::DocumentationGap => "documentation",
        }
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Classification {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Classification::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim())
            .ok_or_else(|| {
                Error::parse(
                    "classification",
                    s,
                    "expected server_bug, client_misuse or documentation_gap",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_exactly_the_wire_names() {
        for c in Classification::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(c.as_str().parse::<Classification>().unwrap(), c);
        }
    }

    #[test]
    fn prefixes_and_labels() {
        assert_eq!(Classification::ServerBug.title_prefix(), "[BUG]");
        assert_eq!(Classification::ClientMisuse.title_prefix(), "[CLIENT]");
        assert_eq!(Classification::DocumentationGap.title_prefix(), "[DOCS]");
        assert_eq!(
            Classification::DocumentationGap.default_label(),
            "documentation"
        );
    }

    #[test]
    fn unknown_classification_is_rejected() {
        assert!("bug".parse::<Classification>().is_err());
        assert!(serde_json::from_str::<Classification>("\"feature\"").is_err());
    }
}
