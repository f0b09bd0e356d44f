//! [`RedactedFinding`] and [`RedactedSignature`]: a finding and its evidence as they may be stored.

use std::fmt;

use super::Redactor;
use crate::digest::Signature;
use crate::model::Finding;

/// A [`Finding`] whose free-text fields (title, summary, source files, error type, suspected
/// cause, suggested fix) went through a [`Redactor`]: the only finding the outbox
/// ([`FilingIntent`](crate::model::FilingIntent)) and the backlog
/// ([`BacklogEntry`](crate::model::BacklogEntry)) hold, so no path can persist a model's answer
/// (which may copy anything it was shown) without redacting it.
///
/// Only the redactor makes one ([`Redactor::redacted_finding`]). Read it through `Deref<Target =
/// Finding>` or [`as_finding`](Self::as_finding). It serialises exactly as the `Finding` it wraps,
/// so rows written before it existed still load; reading one back (`Deserialize`) redacts it again
/// with the default rules, as [`RedactedText`](super::RedactedText) does.
///
/// A plain `Finding` cannot be made into one outside the redactor:
///
/// ```compile_fail
/// use selfmon_core::{redact::RedactedFinding, Classification, Finding};
/// let finding = RedactedFinding(Finding::new(Classification::ServerBug, "t", "s"));
/// ```
///
/// The redactor makes one:
///
/// ```
/// use selfmon_core::{redact::Redactor, Classification, Finding};
/// let secret = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
/// let raw = Finding::new(Classification::ServerBug, format!("push with {secret}"), "s");
/// let finding = Redactor::new().redacted_finding(raw);
/// assert!(!finding.title.contains(secret));
/// ```
#[derive(Clone, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct RedactedFinding(Finding);

/// Debug-formats as the finding itself.
impl fmt::Debug for RedactedFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl RedactedFinding {
    /// Only the redactor wraps a finding, after redacting it.
    pub(super) fn new(finding: Finding) -> Self {
        RedactedFinding(finding)
    }

    /// The finding.
    pub fn as_finding(&self) -> &Finding {
        &self.0
    }

    /// The finding, owned (no longer typed as redacted).
    pub fn into_finding(self) -> Finding {
        self.0
    }

    /// A finding read back from storage: redacted again with the default rules, as
    /// `Deserialize` does. Stored text is not trusted to have been redacted (an older version, or
    /// another writer, may have kept it).
    pub fn from_stored(finding: Finding) -> RedactedFinding {
        Redactor::shared().redacted_finding(finding)
    }
}

impl std::ops::Deref for RedactedFinding {
    type Target = Finding;

    fn deref(&self) -> &Finding {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for RedactedFinding {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from_stored(Finding::deserialize(d)?))
    }
}

/// A digest [`Signature`] as it may leave the process or be stored: its free texts (template,
/// samples, logger, node names) went through a [`Redactor`]. The evidence a
/// [`BacklogEntry`](crate::model::BacklogEntry) keeps (and later shows in the issue it becomes).
///
/// The engine makes one in its egress stage (`Egress::shown`: capped, stripped of control
/// characters, its template rebuilt from the redacted sample when masking disguised a secret),
/// which ends with [`Redactor::redacted_signature`]. Ids, levels, counts, codes and the template
/// fingerprint are the engine's own values and are kept. Serialised exactly as the `Signature` it
/// wraps; reading one back (`Deserialize`) redacts its texts again with the default rules.
#[derive(Clone, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct RedactedSignature(Signature);

/// Debug-formats as the signature itself.
impl fmt::Debug for RedactedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl RedactedSignature {
    /// Only the redactor wraps a signature, after redacting it.
    pub(super) fn new(signature: Signature) -> Self {
        RedactedSignature(signature)
    }

    /// The signature.
    pub fn as_signature(&self) -> &Signature {
        &self.0
    }

    /// The signature, owned (no longer typed as redacted).
    pub fn into_signature(self) -> Signature {
        self.0
    }

    /// A signature read back from storage: its texts redacted again with the default rules, as
    /// `Deserialize` does.
    pub fn from_stored(signature: Signature) -> RedactedSignature {
        Redactor::shared().redacted_signature(signature)
    }
}

impl std::ops::Deref for RedactedSignature {
    type Target = Signature;

    fn deref(&self) -> &Signature {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for RedactedSignature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from_stored(Signature::deserialize(d)?))
    }
}
