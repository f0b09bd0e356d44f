//! The response type the model must produce, its JSON schema, and the lenient parse and
//! validation that turn it into [`Finding`]s and [`RejectedFinding`]s.

use selfmon_core::digest::Digest;
use selfmon_core::error::truncate_chars;
use selfmon_core::{Classification, EvidenceScope, Finding, FindingLimits, RejectedFinding};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The top-level answer: a list of findings, each parsed on its own so one malformed finding is
/// rejected without losing the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawResponse {
    /// The findings, unparsed.
    pub findings: Vec<Value>,
}

/// One finding as the model wrote it: plain strings, so a bad classification or error code is a
/// reason to reject this finding rather than a parse failure of the whole answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawFinding {
    /// `server_bug`, `client_misuse` or `documentation_gap`.
    pub classification: String,
    /// One-line title.
    pub title: String,
    /// What is wrong and why it matters.
    pub summary: String,
    /// Log record ids that show the problem.
    #[serde(default)]
    pub evidence_record_ids: Vec<i64>,
    /// Digest signature ids the finding explains.
    #[serde(default)]
    pub signature_ids: Vec<String>,
    /// Error codes (`GIT-SYNC-001`).
    #[serde(default)]
    pub error_codes: Vec<String>,
    /// Source files, relative to the repository root.
    #[serde(default)]
    pub source_files: Vec<String>,
    /// The error type, if known.
    #[serde(default)]
    pub error_type: Option<String>,
    /// The suspected cause, if any.
    #[serde(default)]
    pub suspected_cause: Option<String>,
    /// A suggested fix, if any.
    #[serde(default)]
    pub suggested_fix: Option<String>,
}

/// The JSON schema passed to `--json-schema`, derived from [`RawFinding`]'s fields.
///
/// `max_findings` bounds the array when given. Extra properties are allowed so a chatty model does
/// not burn retries; they are ignored.
pub fn response_schema(max_findings: Option<usize>) -> Value {
    let string = |desc: &str| json!({"type": "string", "description": desc});
    let nullable = |desc: &str| json!({"type": ["string", "null"], "description": desc});
    let strings =
        |desc: &str| json!({"type": "array", "items": {"type": "string"}, "description": desc});
    let classes: Vec<&str> = Classification::ALL.iter().map(|c| c.as_str()).collect();
    let finding = json!({
        "type": "object",
        "properties": {
            "classification": {"type": "string", "enum": classes, "description": "What kind of problem this is."},
            "title": string("One-line title without a classification prefix."),
            "summary": string("What is wrong and why it matters, in a few sentences."),
            "evidence_record_ids": {"type": "array", "items": {"type": "integer"}, "description": "Ids of log records that show the problem."},
            "signature_ids": strings("Digest signature ids this finding explains."),
            "error_codes": strings("Error codes involved, e.g. GIT-SYNC-001."),
            "source_files": strings("Suspected source files, relative to the repository root."),
            "error_type": nullable("The error type, if known."),
            "suspected_cause": nullable("The suspected cause, if any."),
            "suggested_fix": nullable("A suggested fix, if any."),
        },
        "required": ["classification", "title", "summary", "evidence_record_ids", "signature_ids", "error_codes"],
    });
    let mut findings = json!({"type": "array", "items": finding});
    if let Some(n) = max_findings {
        findings["maxItems"] = json!(n);
    }
    json!({
        "type": "object",
        "properties": {"findings": findings},
        "required": ["findings"],
    })
}

/// Parses and validates each raw finding on its own.
///
/// A finding is rejected, with every reason, when it does not match [`RawFinding`], when its
/// classification or an error code is malformed, when [`Finding::validate`] refuses it, or when
/// `digest` has signatures and an evidence record id lies in none of their `first_id..=last_id`
/// ranges (the model cites a record the digest never showed it). Findings beyond `max_findings`
/// are rejected too.
pub fn validate_findings(
    raw: &RawResponse,
    limits: &FindingLimits,
    scope: &EvidenceScope<'_>,
    digest: &Digest,
    max_findings: usize,
) -> (Vec<Finding>, Vec<RejectedFinding>) {
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for (index, value) in raw.findings.iter().enumerate() {
        let title_of = |v: &Value| {
            let t = v.get("title").and_then(Value::as_str).unwrap_or("");
            truncate_chars(t, limits.max_title_chars)
        };
        let parsed = match serde_json::from_value::<RawFinding>(value.clone()) {
            Ok(p) => p,
            Err(e) => {
                rejected.push(RejectedFinding {
                    title: title_of(value),
                    reasons: vec![format!(
                        "finding {index} does not match the response schema: {e}"
                    )],
                });
                continue;
            }
        };
        let title = truncate_chars(&parsed.title, limits.max_title_chars);
        if accepted.len() >= max_findings {
            rejected.push(RejectedFinding {
                title,
                reasons: vec![format!("more than the {max_findings} findings asked for")],
            });
            continue;
        }
        let finding = to_finding(parsed).and_then(|finding| {
            let mut reasons = finding.validate(limits, scope).err().unwrap_or_default();
            reasons.extend(uncovered_evidence(&finding, digest));
            if reasons.is_empty() {
                Ok(finding)
            } else {
                Err(reasons)
            }
        });
        match finding {
            Ok(finding) => accepted.push(finding),
            Err(reasons) => rejected.push(RejectedFinding { title, reasons }),
        }
    }
    (accepted, rejected)
}

fn uncovered_evidence(finding: &Finding, digest: &Digest) -> Vec<String> {
    if digest.signatures.is_empty() {
        return Vec::new();
    }
    finding
        .evidence_record_ids
        .iter()
        .filter(|&&id| {
            !digest
                .signatures
                .iter()
                .any(|s| (s.first_id..=s.last_id).contains(&id))
        })
        .map(|id| format!("evidence record id {id} is not covered by any signature in the digest"))
        .collect()
}

fn to_finding(raw: RawFinding) -> Result<Finding, Vec<String>> {
    let mut reasons = Vec::new();
    let classification = raw
        .classification
        .parse::<Classification>()
        .map_err(|e| e.to_string());
    let mut codes = Vec::new();
    for code in &raw.error_codes {
        match selfmon_core::ErrorCode::parse(code.trim()) {
            Ok(c) => codes.push(c),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    let classification = match classification {
        Ok(c) => Some(c),
        Err(e) => {
            reasons.push(e);
            None
        }
    };
    match classification {
        Some(classification) if reasons.is_empty() => Ok(Finding {
            classification,
            title: raw.title.trim().to_string(),
            summary: raw.summary,
            evidence_record_ids: raw.evidence_record_ids,
            error_codes: codes,
            source_files: raw.source_files,
            error_type: raw.error_type,
            signature_ids: raw.signature_ids,
            suspected_cause: raw.suspected_cause,
            suggested_fix: raw.suggested_fix,
        }),
        _ => Err(reasons),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(sigs: &[String]) -> EvidenceScope<'_> {
        EvidenceScope {
            first_id: 10,
            last_id: 20,
            signature_ids: sigs,
        }
    }

    fn good() -> Value {
        json!({
            "classification": "server_bug", "title": "Crash in sync", "summary": "It crashes.",
            "evidence_record_ids": [10, 12], "signature_ids": ["abc"], "error_codes": ["GIT-SYNC-001"],
            "source_files": ["src/sync.py"], "error_type": "ValueError",
        })
    }

    #[test]
    fn schema_is_stable() {
        // Golden: a change here changes what the CLI enforces on the model; update deliberately.
        let s = response_schema(Some(5));
        assert_eq!(s["required"], json!(["findings"]));
        assert_eq!(s["properties"]["findings"]["maxItems"], 5);
        let item = &s["properties"]["findings"]["items"];
        assert_eq!(
            item["properties"]["classification"]["enum"],
            json!(["server_bug", "client_misuse", "documentation_gap"])
        );
        let mut props: Vec<&str> = item["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        props.sort_unstable();
        assert_eq!(
            props,
            [
                "classification",
                "error_codes",
                "error_type",
                "evidence_record_ids",
                "signature_ids",
                "source_files",
                "suggested_fix",
                "summary",
                "suspected_cause",
                "title"
            ]
        );
    }

    #[test]
    fn every_schema_property_is_a_raw_finding_field() {
        let s = response_schema(None);
        let mut example = serde_json::Map::new();
        for (k, v) in s["properties"]["findings"]["items"]["properties"]
            .as_object()
            .unwrap()
        {
            let value = match v["type"].as_str() {
                Some("array") => json!([]),
                _ => json!("server_bug"),
            };
            example.insert(k.clone(), value);
        }
        let raw: RawFinding = serde_json::from_value(Value::Object(example)).unwrap();
        assert_eq!(raw.classification, "server_bug");
    }

    #[test]
    fn one_bad_finding_is_rejected_with_reasons_and_the_others_kept() {
        let sigs = vec!["abc".to_string()];
        let mut bad_code = good();
        bad_code["error_codes"] = json!(["git-sync-1"]);
        bad_code["title"] = json!("Bad code");
        let mut bad_class = good();
        bad_class["classification"] = json!("feature_request");
        let mut out_of_range = good();
        out_of_range["evidence_record_ids"] = json!([99]);
        let mut escaping = good();
        escaping["source_files"] = json!(["../../etc/passwd"]);
        let mut unknown_sig = good();
        unknown_sig["signature_ids"] = json!(["zzz"]);
        let not_an_object = json!("just text");
        let wrong_types = json!({"classification": "server_bug", "title": "Ids", "summary": "s", "evidence_record_ids": ["x"]});
        let raw = RawResponse {
            findings: vec![
                good(),
                bad_code,
                bad_class,
                out_of_range,
                escaping,
                unknown_sig,
                not_an_object,
                wrong_types,
            ],
        };
        let (ok, rejected) = validate_findings(
            &raw,
            &FindingLimits::default(),
            &scope(&sigs),
            &Digest::default(),
            10,
        );
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].error_codes[0].as_str(), "GIT-SYNC-001");
        assert_eq!(rejected.len(), 7, "{rejected:#?}");
        assert_eq!(rejected[0].title, "Bad code");
        assert!(
            rejected[0].reasons[0].contains("three digits")
                || rejected[0].reasons[0].contains("upper-case")
        );
        assert!(rejected[1].reasons[0].contains("classification"));
        assert!(rejected[2].reasons[0].contains("outside the scanned range"));
        assert!(rejected[3].reasons[0].contains(".."));
        assert!(rejected[4].reasons[0].contains("not in the digest"));
        assert!(rejected[5].reasons[0].contains("does not match the response schema"));
        assert_eq!(rejected[6].title, "Ids");
    }

    #[test]
    fn findings_beyond_the_maximum_are_rejected() {
        let raw = RawResponse {
            findings: vec![good(), good(), good()],
        };
        let (ok, rejected) = validate_findings(
            &raw,
            &FindingLimits::default(),
            &scope(&[]),
            &Digest::default(),
            2,
        );
        assert_eq!((ok.len(), rejected.len()), (2, 1));
        assert!(rejected[0].reasons[0].contains("more than the 2"));
    }
}
