//! [`RedactedText`]: text the redactor produced, the only text an egress path accepts.

use std::fmt;

use super::Redactor;

/// Text that went through a [`Redactor`]: what an issue title or body, a tracker comment, the
/// prompt handed to the runner, or text stored in a scan report must be.
///
/// Required by: [`IssueDraft`](crate::model::IssueDraft) title and body,
/// [`IssueTracker::comment`](crate::traits::IssueTracker::comment), the
/// [`AnalysisRequest`](crate::traits::AnalysisRequest)'s data and instructions, a
/// [`ScanRecord`](crate::model::ScanRecord)'s error message and the reason given to
/// [`ScanLedger::close_abandoned_scans`](crate::traits::ScanLedger::close_abandoned_scans), a
/// [`ScanReport`](crate::model::ScanReport)'s digest as sent, outcome titles, reasons and bodies,
/// rejected findings, runner skip reasons and signature templates, an
/// [`IssueEvent`](crate::model::IssueEvent)'s detail, a [`FiledIssue`](crate::model::FiledIssue)'s
/// title, error type and source files, and a
/// [`BacklogClosure`](crate::model::BacklogClosure)'s reason.
///
/// Only the redactor makes one ([`Redactor::redacted`]), so a path that sends or stores text
/// cannot skip redaction without failing to compile. Adapters read it with
/// [`as_str`](Self::as_str), `Deref<Target = str>` or `Display`. Reading one back from storage (`Deserialize`) redacts it
/// again with the default rules: stored text is not trusted to have been redacted.
#[derive(Clone, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(transparent)]
pub struct RedactedText(String);

/// Debug-formats as the text itself (a quoted string), as the `String` it replaced did.
impl fmt::Debug for RedactedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

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

    /// Text read back from storage: redacted again with the default rules, as `Deserialize`
    /// does. For adapters that keep a `RedactedText` in a column of its own; stored text is not
    /// trusted to have been redacted (an older version, or another writer, may have kept it).
    pub fn from_stored(text: &str) -> RedactedText {
        Redactor::shared().redacted(text)
    }

    /// The first `max_chars` characters. A prefix of redacted text is redacted text: a cut can
    /// shorten a placeholder, never reveal what it replaced.
    pub fn truncated_chars(&self, max_chars: usize) -> RedactedText {
        if self.0.chars().count() <= max_chars {
            return self.clone();
        }
        RedactedText(crate::error::truncate_chars(&self.0, max_chars))
    }

    /// Cuts the text to at most `max_bytes` bytes (at a character boundary) and returns how many
    /// bytes were dropped. See [`truncated_chars`](Self::truncated_chars) for why this is safe.
    pub fn truncate_bytes(&mut self, max_bytes: usize) -> usize {
        if self.0.len() <= max_bytes {
            return 0;
        }
        let mut cut = max_bytes;
        while !self.0.is_char_boundary(cut) {
            cut -= 1;
        }
        let dropped = self.0.len() - cut;
        self.0.truncate(cut);
        dropped
    }

    /// Fenced text (see [`fenced`](Self::fenced)) read back from storage: the inside is redacted
    /// again with the default rules, the fence lines kept as they are. The boundary is random
    /// (made by the engine, never from log text), so redacting it would destroy the fence.
    /// Text that is not fenced is redacted whole, as [`from_stored`](Self::from_stored) does.
    pub fn from_stored_fenced(text: &str) -> RedactedText {
        let Some((boundary, inside)) = text
            .strip_prefix("<<<")
            .and_then(|rest| rest.split_once('\n'))
            .filter(|(boundary, _)| {
                !boundary.is_empty()
                    && boundary.len() <= 64
                    && boundary
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
        else {
            return Self::from_stored(text);
        };
        let redactor = Redactor::shared();
        let closing = format!("\n{boundary}>>>\n");
        match inside.strip_suffix(closing.as_str()) {
            Some(inside) => RedactedText(crate::prompt::fence(&redactor.redact(inside), boundary)),
            // Cut short by a report's bound: the closing line is gone.
            None => RedactedText(format!("<<<{boundary}\n{}", redactor.redact(inside))),
        }
    }

    /// Reads an optional fenced text (see [`from_stored_fenced`](Self::from_stored_fenced));
    /// for `#[serde(deserialize_with = ...)]`.
    pub fn deserialize_fenced<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<RedactedText>, D::Error> {
        let text: Option<String> = serde::Deserialize::deserialize(d)?;
        Ok(text.map(|t| Self::from_stored_fenced(&t)))
    }

    /// The text with every `placeholder` replaced by `boundary`. For the instructions, which name
    /// the boundary that fences the data: they are redacted with a placeholder in its place, and
    /// the boundary (engine-made, random, so the redactor would take it for a secret) is put in
    /// afterwards.
    pub(crate) fn with_boundary(&self, placeholder: &str, boundary: &str) -> RedactedText {
        RedactedText(self.0.replace(placeholder, boundary))
    }

    /// Redacted texts joined by an engine-made separator (no log text in it): still redacted.
    pub(crate) fn joined(parts: &[RedactedText], separator: &'static str) -> RedactedText {
        RedactedText(
            parts
                .iter()
                .map(RedactedText::as_str)
                .collect::<Vec<_>>()
                .join(separator),
        )
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
