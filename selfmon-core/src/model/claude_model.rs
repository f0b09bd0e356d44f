//! Model selection shared by self-monitoring jobs and any other job kind.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Which Claude model a job runs on: one of the aliases the CLI understands, or a full model id.
///
/// Serialises as a plain string (`"sonnet"`, `"claude-sonnet-4-5-20250929"`). Full ids are not checked
/// against a closed list (new models appear all the time); they only have to look like an id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(try_from = "String", into = "String")]
pub enum ClaudeModel {
    /// The most capable model (`opus`).
    Opus,
    /// The balanced default (`sonnet`).
    #[default]
    Sonnet,
    /// The fastest, cheapest model (`haiku`).
    Haiku,
    /// A full model id such as `claude-opus-4-1-20250805`.
    Custom(String),
}

impl ClaudeModel {
    /// The value passed to the CLI's `--model`.
    pub fn as_cli_arg(&self) -> &str {
        match self {
            ClaudeModel::Opus => "opus",
            ClaudeModel::Sonnet => "sonnet",
            ClaudeModel::Haiku => "haiku",
            ClaudeModel::Custom(id) => id,
        }
    }

    /// Parses an alias (case-insensitive) or a full id: 1–128 characters of ASCII letters, digits,
    /// `-`, `_`, `.`, `:`, `/` and `@`, starting with a letter.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "opus" => return Ok(ClaudeModel::Opus),
            "sonnet" => return Ok(ClaudeModel::Sonnet),
            "haiku" => return Ok(ClaudeModel::Haiku),
            _ => {}
        }
        let ok_chars = t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@".contains(c));
        let starts = t.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        if t.is_empty() || t.len() > 128 || !ok_chars || !starts {
            return Err(Error::parse(
                "model",
                s,
                "expected opus, sonnet, haiku or a full model id (letters, digits, - _ . : / @; at most 128 characters)",
            ));
        }
        Ok(ClaudeModel::Custom(t.to_string()))
    }
}

impl fmt::Display for ClaudeModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_cli_arg())
    }
}

impl FromStr for ClaudeModel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClaudeModel::parse(s)
    }
}

impl TryFrom<String> for ClaudeModel {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ClaudeModel::parse(&s)
    }
}

impl From<ClaudeModel> for String {
    fn from(m: ClaudeModel) -> String {
        m.as_cli_arg().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_full_ids_parse() {
        assert_eq!(ClaudeModel::parse("Opus").unwrap(), ClaudeModel::Opus);
        assert_eq!(
            ClaudeModel::parse("claude-sonnet-4-5-20250929").unwrap(),
            ClaudeModel::Custom("claude-sonnet-4-5-20250929".into())
        );
        assert_eq!(ClaudeModel::Haiku.as_cli_arg(), "haiku");
    }

    #[test]
    fn nonsense_models_are_rejected() {
        for bad in [
            "",
            "  ",
            "rm -rf /",
            "--dangerously-skip-permissions",
            "9model",
        ] {
            assert!(ClaudeModel::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serialises_as_a_plain_string() {
        assert_eq!(
            serde_json::to_string(&ClaudeModel::Sonnet).unwrap(),
            "\"sonnet\""
        );
        let m: ClaudeModel = serde_json::from_str("\"claude-x-1\"").unwrap();
        assert_eq!(m, ClaudeModel::Custom("claude-x-1".into()));
    }
}
