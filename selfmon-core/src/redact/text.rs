//! [`RedactedText`]: text the redactor produced, the only text an egress path accepts.

use std::fmt;

use super::Redactor;

/// Text that went through a [`Redactor`]: what an issue title or body, a tracker comment, the
/// prompt handed to the runner, or text stored in a scan report must be.
///
/// Only the redactor makes one ([`Redactor::redacted`]), so a path that sends or stores text
/// cannot skip redaction without failing to compile. Adapters read it with
/// [`as_str`](Self::as_str), `Deref<Target = str>` or `Display`. Reading one back from storage (`Deserialize`) redacts it
/// again with the default rules: stored text is not trusted to have been redacted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(transparent)]
pub struct RedactedText(String);

impl RedactedText {
    /// Only the redactor wraps text.
    pub(super) fn new(text: String) -> Self {
        RedactedText(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The text between a line `<<<boundary` and a line `boundary>>>`
    /// ([`crate::prompt::fence`]). The boundary is made by the engine, never taken from log text:
    /// it is random, so the redactor would take it for a secret.
    pub fn fenced(&self, boundary: &str) -> RedactedText {
        RedactedText(crate::prompt::fence(&self.0, boundary))
    }
}

impl fmt::Display for RedactedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for RedactedText {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for RedactedText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for RedactedText {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for RedactedText {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl<'de> serde::Deserialize<'de> for RedactedText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(Redactor::shared().redacted(&text))
    }
}
