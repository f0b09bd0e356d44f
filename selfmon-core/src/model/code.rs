//! Error codes of the form `SUBSYSTEM-CATEGORY-NNN`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A standard error code such as `GIT-SYNC-001`: 2–8 upper-case letters, a dash, 2–8 upper-case
/// letters, a dash, exactly three digits. In messages it appears in brackets: `[GIT-SYNC-001]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ErrorCode(String);

impl ErrorCode {
    /// Parses a code, explaining what is wrong when it is not well formed.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match check(s) {
            Ok(()) => Ok(ErrorCode(s.to_string())),
            Err(reason) => Err(Error::parse("error code", s, reason)),
        }
    }

    /// The code as text (`"GIT-SYNC-001"`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The subsystem part (`"GIT"`).
    pub fn subsystem(&self) -> &str {
        self.0.split('-').next().unwrap_or_default()
    }

    /// The category part (`"SYNC"`).
    pub fn category(&self) -> &str {
        self.0.split('-').nth(1).unwrap_or_default()
    }

    /// The three-digit number.
    pub fn number(&self) -> u16 {
        self.0
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_default()
    }

    /// Every well-formed bracketed code in `text` (`"[GIT-SYNC-001] clone failed"`), in order of
    /// appearance, without duplicates. Brackets holding anything else are ignored.
    pub fn extract_all(text: &str) -> Vec<ErrorCode> {
        let mut out: Vec<ErrorCode> = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        // `str::find` with an ASCII char searches word by word (core's memchr); a byte-by-byte
        // scan was most of the cost, as nearly every message has no code. `i` is always just
        // after a `[`, so a char boundary.
        while let Some(off) = text[i..].find('[') {
            let start = i + off + 1;
            // The longest code is 8+1+8+1+3 = 21 bytes.
            let window = &bytes[start..bytes.len().min(start + 22)];
            if let Some(end) = memchr(b']', window) {
                if let Ok(s) = std::str::from_utf8(&window[..end]) {
                    if check(s).is_ok() && !out.iter().any(|c| c.0 == s) {
                        out.push(ErrorCode(s.to_string()));
                    }
                }
            }
            i = start;
        }
        out
    }

    /// The codes of a record: bracketed codes in the message plus `extra_data.error_code` (a string or
    /// an array of strings) when well formed.
    pub fn from_record(record: &crate::model::LogRecord) -> Vec<ErrorCode> {
        let mut codes = Self::extract_all(&record.message);
        let mut push = |s: &str| {
            if let Ok(c) = ErrorCode::parse(s.trim().trim_matches(|c| c == '[' || c == ']')) {
                if !codes.contains(&c) {
                    codes.push(c);
                }
            }
        };
        match record.extra_data.get("error_code") {
            Some(serde_json::Value::String(s)) => push(s),
            Some(serde_json::Value::Array(items)) => {
                for item in items {
                    if let Some(s) = item.as_str() {
                        push(s);
                    }
                }
            }
            _ => {}
        }
        codes
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn check(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() != 3 {
        return Err(format!(
            "expected SUBSYSTEM-CATEGORY-NNN (three dash-separated parts), found {} part(s)",
            parts.len()
        ));
    }
    for (name, part) in [("subsystem", parts[0]), ("category", parts[1])] {
        if !(2..=8).contains(&part.len()) || !part.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!(
                "{name} {} must be 2 to 8 upper-case ASCII letters",
                crate::text::quoted(part)
            ));
        }
    }
    if parts[2].len() != 3 || !parts[2].bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "number {} must be exactly three digits",
            crate::text::quoted(parts[2])
        ));
    }
    Ok(())
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ErrorCode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::parse(s)
    }
}

impl TryFrom<String> for ErrorCode {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ErrorCode::parse(&s)
    }
}

impl From<ErrorCode> for String {
    fn from(c: ErrorCode) -> String {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Level, LogRecord};

    #[test]
    fn valid_codes_parse_and_expose_their_parts() {
        let c = ErrorCode::parse("MONITOR-GENERAL-001").unwrap();
        assert_eq!(c.subsystem(), "MONITOR");
        assert_eq!(c.category(), "GENERAL");
        assert_eq!(c.number(), 1);
        assert_eq!(c.to_string(), "MONITOR-GENERAL-001");
    }

    #[test]
    fn malformed_codes_are_rejected_with_the_reason() {
        for (bad, why) in [
            ("GIT-SYNC-01", "three digits"),
            ("git-SYNC-001", "upper-case"),
            ("G-SYNC-001", "2 to 8"),
            ("TOOLONGSUB-SYNC-001", "2 to 8"),
            ("GIT-001", "three dash-separated"),
            ("", "three dash-separated"),
        ] {
            let msg = ErrorCode::parse(bad).unwrap_err().to_string();
            assert!(msg.contains(why), "{bad}: {msg}");
        }
    }

    #[test]
    fn codes_are_extracted_from_text_in_order_without_duplicates() {
        let codes = ErrorCode::extract_all(
            "[GIT-SYNC-001] clone failed [x] [AUTH-TOKEN-042] again [GIT-SYNC-001] [BAD-1]",
        );
        let s: Vec<_> = codes.iter().map(|c| c.as_str()).collect();
        assert_eq!(s, ["GIT-SYNC-001", "AUTH-TOKEN-042"]);
    }

    #[test]
    fn extraction_survives_multibyte_text_and_unclosed_brackets() {
        assert!(ErrorCode::extract_all("[é[ü [GIT-SYNC-00").is_empty());
        assert_eq!(ErrorCode::extract_all("日本[DB-LOCK-123]語").len(), 1);
    }

    #[test]
    fn codes_come_from_extra_data_too() {
        let r = LogRecord::new(1, Level::Error, "[GIT-SYNC-001] x")
            .with_extra(serde_json::json!({"error_code": "DB-LOCK-002"}));
        let codes = ErrorCode::from_record(&r);
        assert_eq!(codes.len(), 2);
        let r = LogRecord::new(1, Level::Error, "x")
            .with_extra(serde_json::json!({"error_code": ["DB-LOCK-002", "nonsense"]}));
        assert_eq!(ErrorCode::from_record(&r).len(), 1);
    }

    #[test]
    fn serde_rejects_malformed_codes() {
        assert!(serde_json::from_str::<ErrorCode>("\"GIT-SYNC-1\"").is_err());
        assert!(serde_json::from_str::<ErrorCode>("\"GIT-SYNC-001\"").is_ok());
    }
}
