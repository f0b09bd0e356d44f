//! A rule-based [`AnalysisRunner`] so the whole pipeline runs with no model at all.
//!
//! Rules, applied to each digest signature in order:
//! 1. deprecation or unknown-parameter messages → `documentation_gap`;
//! 2. validation and authentication failures that repeat → `client_misuse`;
//! 3. tracebacks and panics, errors carrying an error code, CRITICAL records, and warnings that
//!    repeat (a possible stuck state) → `server_bug`.
//!
//! "Repeat" means [`crate::config::SelfMonitoringConfig::repeat_threshold`] records *in one scan*:
//! the runner sees only the scan's digest, so an uncoded error that recurs more slowly than that
//! per scan (3 a day with an hourly cadence) is never filed by these rules, and the shorter the
//! cadence, the less they file. The skip reason says so; a model runner judges such errors.
//!
//! Everything else (one-off warnings, informational records) is not actionable, and so is a
//! signature whose template is only a stack frame or continuation line (`at <*>`, `... <NUM>
//! more`: a crash shipped one line per record, see [`crate::template::is_stack_frame_line`]):
//! it is part of the crash report of the record before it, which the digest flags as a
//! traceback, and every crash's frames share its template.

use async_trait::async_trait;

use crate::digest::Signature;
use crate::error::{truncate_chars, Result};
use crate::model::{Classification, Finding, Level, SkippedSignature};
use crate::traits::{Analysis, AnalysisRequest, AnalysisRunner, Usage};

/// The offline, rule-based runner. Deterministic; costs nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineRunner;

const DOC_WORDS: [&str; 7] = [
    "deprecated",
    "deprecation",
    "unknown parameter",
    "unknown field",
    "unrecognized",
    "unrecognised",
    "unsupported parameter",
];
const CLIENT_WORDS: [&str; 10] = [
    "validation",
    "invalid request",
    "invalid parameter",
    "invalid argument",
    "missing required",
    "unauthorized",
    "authentication failed",
    "forbidden",
    "bad request",
    "not authorized",
];

impl OfflineRunner {
    /// The finding for one signature, if any rule applies.
    pub fn classify(signature: &Signature) -> Option<Finding> {
        Self::decide(signature).ok()
    }

    /// The finding for one signature, or why no rule applies.
    pub fn decide(signature: &Signature) -> std::result::Result<Finding, String> {
        if crate::template::is_stack_frame_line(&signature.template) {
            return Err(
                "a stack frame or continuation line logged as a record of its own: it belongs to the crash report of the record before it, which is judged instead"
                    .to_string(),
            );
        }
        let lower = signature.template.to_lowercase();
        let (class, why) = if DOC_WORDS.iter().any(|w| lower.contains(w)) {
            (
                Classification::DocumentationGap,
                "Clients keep sending something the server treats as deprecated or unknown; the documentation likely still describes it or does not explain the replacement.",
            )
        } else if CLIENT_WORDS.iter().any(|w| lower.contains(w)) {
            if signature.count < 3 && !signature.repeated {
                return Err(format!(
                    "looks like a rejected client request but was seen only {} time(s); the client-misuse rule needs 3 or a repeat",
                    signature.count
                ));
            }
            (
                Classification::ClientMisuse,
                "Clients repeatedly send requests the server rejects; the API should reject them earlier or explain the expected input better.",
            )
        } else if signature.has_traceback {
            (
                Classification::ServerBug,
                "The server raised an unhandled exception (a traceback or panic was logged).",
            )
        } else if signature.level >= Level::Critical
            || (signature.level >= Level::Error && !signature.error_codes.is_empty())
        {
            (
                Classification::ServerBug,
                "The server logged an error for its own operation.",
            )
        } else if signature.level >= Level::Error && signature.repeated {
            (Classification::ServerBug, "The same error keeps recurring.")
        } else if signature.level == Level::Warning && signature.repeated {
            (
                Classification::ServerBug,
                "The same warning repeats many times in one window: a possible stuck state.",
            )
        } else {
            return Err(skip_reason(signature));
        };
        let error_type = signature
            .sample_messages
            .iter()
            .find_map(|m| error_type_of(m));
        // The title comes from the first line of a sample, masked: tracebacks span many lines.
        let first_line = signature
            .sample_messages
            .first()
            .and_then(|m| m.lines().next())
            .map(|l| crate::template::Templater::new().mask(l))
            .unwrap_or_else(|| signature.template.clone());
        let title = match &error_type {
            Some(t) if signature.has_traceback && !first_line.contains(t.as_str()) => {
                format!("{t}: {first_line}")
            }
            // A record with an empty message still happened (review L10: a CRITICAL with no
            // text gave an empty title, the finding was rejected, and the record counted nowhere).
            _ if first_line.trim().is_empty() => format!(
                "{} from `{}` with an empty message",
                signature.level,
                signature.source.as_deref().unwrap_or("an unknown source")
            ),
            _ => first_line,
        };
        let mut f = Finding::new(
            class,
            truncate_chars(title.trim(), 150),
            format!(
                "{why} Seen {} time(s) at level {} from `{}` (records {}..{}).",
                signature.count,
                signature.level,
                signature.source.as_deref().unwrap_or("unknown source"),
                signature.first_id,
                signature.last_id
            ),
        );
        f.evidence_record_ids = signature.sample_ids.clone();
        f.error_codes = signature.error_codes.clone();
        f.signature_ids = vec![signature.id.clone()];
        f.error_type = error_type;
        Ok(f)
    }
}

/// Why no rule applies to a signature no rule matched.
fn skip_reason(signature: &Signature) -> String {
    let level = signature.level;
    if level >= Level::Error && signature.count <= 1 {
        format!(
            "a one-off {level} (1 record) with no error code or traceback: the offline rules file only coded, crashing, critical or recurring errors"
        )
    } else if level >= Level::Error {
        format!(
            "an {level} with no error code or traceback seen {} times in this scan, under the repeat threshold: the offline rules judge each scan's records on their own, so an error recurring more slowly than the threshold per scan is not filed by them (a model runner, or a longer cadence, judges it)",
            signature.count
        )
    } else if level == Level::Warning {
        format!(
            "a warning seen {} time(s) in this scan, under the repeat threshold: the offline rules file warnings only when one scan sees them repeat",
            signature.count
        )
    } else {
        format!("informational ({level}): not actionable")
    }
}

/// The exception or error type named in a message (`ValueError`, `ConnectionRefusedError`, `panic`).
pub fn error_type_of(message: &str) -> Option<String> {
    if message.contains("panicked at") {
        return Some("panic".to_string());
    }
    for line in message.lines().rev() {
        let word = line
            .trim()
            .split([':', ' ', '('])
            .next()
            .unwrap_or_default();
        let last = word.rsplit('.').next().unwrap_or(word);
        if (last.ends_with("Error") || last.ends_with("Exception"))
            && last.len() > 5
            && last.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Some(last.to_string());
        }
    }
    None
}

#[async_trait]
impl AnalysisRunner for OfflineRunner {
    async fn analyze(&self, request: &AnalysisRequest) -> Result<Analysis> {
        let mut findings = Vec::new();
        let mut skipped = Vec::new();
        for signature in &request.digest.signatures {
            let reason = match Self::decide(signature) {
                Ok(f) if findings.len() < request.max_findings => {
                    findings.push(f);
                    continue;
                }
                // The answer is full: left unmentioned, so the engine shows it again in another
                // round (see `AnalysisRunner`'s contract on a full answer).
                Ok(_) => continue,
                Err(reason) => reason,
            };
            skipped.push(SkippedSignature {
                signature_id: signature.id.clone(),
                reason,
            });
        }
        Ok(Analysis {
            findings,
            rejected: Vec::new(),
            usage: Usage {
                cost_usd: Some(0.0),
                ..Usage::default()
            },
            skipped,
        })
    }

    fn name(&self) -> &str {
        "offline"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SelfMonitoringConfig;
    use crate::digest::Digest;
    use crate::model::LogRecord;

    fn classify(records: Vec<LogRecord>) -> Vec<Option<Classification>> {
        let d = Digest::build(&records, &SelfMonitoringConfig::default()).unwrap();
        d.signatures
            .iter()
            .map(|s| OfflineRunner::classify(s).map(|f| f.classification))
            .collect()
    }

    #[test]
    fn rules_classify_each_kind() {
        let mut recs = vec![LogRecord::new(
            1,
            Level::Error,
            "Traceback (most recent call last):\n  File \"x.py\"\nValueError: bad",
        )];
        recs.push(LogRecord::new(
            2,
            Level::Warning,
            "parameter 'limit' is deprecated, use 'page_size'",
        ));
        for i in 3..6 {
            recs.push(LogRecord::new(
                i,
                Level::Warning,
                "request validation failed: field 'name' missing",
            ));
        }
        recs.push(LogRecord::new(7, Level::Warning, "cache miss"));
        assert_eq!(
            classify(recs),
            [
                Some(Classification::ServerBug),
                Some(Classification::DocumentationGap),
                Some(Classification::ClientMisuse),
                None
            ]
        );
    }

    #[test]
    fn a_critical_record_with_an_empty_message_gets_a_title_saying_so() {
        for message in ["", "   "] {
            let mut rec = LogRecord::new(1, Level::Critical, message);
            rec.source = Some("app.db".into());
            let d = Digest::build(&[rec], &SelfMonitoringConfig::default()).unwrap();
            let f = OfflineRunner::decide(&d.signatures[0]).expect("a CRITICAL is filed");
            assert_eq!(f.title, "CRITICAL from `app.db` with an empty message");
        }
    }

    #[test]
    fn an_uncoded_error_under_the_repeat_threshold_says_it_was_judged_per_scan_not_one_off() {
        // Review M5: 3 records were called "a one-off ERROR (3 record(s))".
        let reason = |n: i64| {
            let recs: Vec<LogRecord> = (1..=n)
                .map(|i| LogRecord::new(i, Level::Error, "queue worker crashed while draining"))
                .collect();
            let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
            OfflineRunner::decide(&d.signatures[0]).expect_err("no rule files it")
        };
        assert!(
            reason(1).starts_with("a one-off ERROR (1 record)"),
            "{}",
            reason(1)
        );
        let three = reason(3);
        assert!(!three.contains("one-off"), "{three}");
        assert!(
            three.contains("seen 3 times in this scan, under the repeat threshold"),
            "{three}"
        );
        assert!(
            three.contains("judge each scan's records on their own"),
            "{three}"
        );
    }

    #[test]
    fn recurring_stack_frames_logged_as_records_are_not_filed() {
        let recs: Vec<LogRecord> = (0..6)
            .map(|i| {
                LogRecord::new(
                    i,
                    Level::Error,
                    format!("\tat com.acme.Worker{i}.run(Worker{i}.java:{i})"),
                )
            })
            .collect();
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        assert!(!d.signatures.is_empty());
        for s in &d.signatures {
            let reason = OfflineRunner::decide(s).unwrap_err();
            assert!(reason.contains("stack frame"), "{}: {reason}", s.template);
        }
    }

    #[test]
    fn error_types_are_found_in_tracebacks_and_panics() {
        assert_eq!(
            error_type_of("Traceback\n  x\nsqlite3.OperationalError: locked").as_deref(),
            Some("OperationalError")
        );
        assert_eq!(
            error_type_of("thread 'main' panicked at src/x.rs:1").as_deref(),
            Some("panic")
        );
        assert_eq!(error_type_of("all good"), None);
    }
}
