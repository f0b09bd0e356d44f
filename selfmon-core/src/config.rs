//! `SelfMonitoringConfig`: the JSON a host keeps in its config file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{ClaudeModel, ErrorCode};

/// The longest scan lease [`SelfMonitoringConfig::lease_ttl_secs`] accepts (one week): a lease
/// is renewed while its scan runs, so a longer one only delays recovery from a lost holder.
pub const MAX_LEASE_TTL_SECS: u64 = 7 * 24 * 60 * 60;

/// The longest window [`DedupConfig::closed_window_days`] accepts (100 years).
pub const MAX_CLOSED_WINDOW_DAYS: u32 = 36_500;

/// Self-monitoring settings. Plain data with working defaults; call [`validate`](Self::validate)
/// after loading. Unknown JSON fields are kept in [`extra`](Self::extra) (and reported by
/// [`unknown_fields`](Self::unknown_fields)), never silently dropped, so a newer host's settings
/// survive a round trip through an older library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SelfMonitoringConfig {
    /// Whether scheduled scans run at all. Off by default: a host opts in.
    pub enabled: bool,
    /// Minutes between scheduled scans (1..=10080).
    pub cadence_minutes: u32,
    /// Model used for analysis.
    pub model: ClaudeModel,
    /// A user-supplied prompt template; empty means "use the shipped prompt".
    pub prompt_template: String,
    /// Whether `prompt_template` was edited by a user. While false the shipped prompt is used, so an
    /// upgrade brings the new prompt.
    pub prompt_user_modified: bool,
    /// The shipped prompt version the user's template was based on (to tell the user a newer one exists).
    pub prompt_base_version: Option<u32>,
    /// Most new issues filed per scan; the rest wait in the outbox for the next scan.
    pub max_new_issues_per_scan: u32,
    /// Most comments added per scan (related findings and regressions).
    pub max_comments_per_scan: u32,
    /// Most records read per scan; the cursor stops at the last one read and the next scan goes on.
    pub max_records_per_scan: u64,
    /// Records per page read from the log source.
    pub page_size: usize,
    /// Budget, in bytes, of the digest text given to analysis.
    pub max_digest_bytes: usize,
    /// A signature with at least this many records in one scan is flagged as a possible stuck state.
    pub repeat_threshold: u64,
    /// Deduplication settings.
    pub dedup: DedupConfig,
    /// Signatures dropped before analysis. A finding deferred to the backlog before a rule was
    /// added that matches it is closed by the next scan (reported as ignored), never filed.
    pub ignore: IgnoreRules,
    /// Every scan is a preview: it reports what it would file, comment and defer, and changes
    /// nothing (no issue, no comment, no cursor move, no occurrences, no learned templates, no
    /// backlog change). Scans are marked as dry runs in history.
    pub dry_run: bool,
    /// Include server identity in issue bodies. Off: trackers may be public.
    pub include_server_identity: bool,
    /// The identity shown when `include_server_identity` is on (a host name or deployment label).
    pub server_identity: Option<String>,
    /// What is redacted from everything that leaves the process, beyond secrets and emails.
    pub redaction: crate::redact::RedactionConfig,
    /// How long a scan's single-flight lease lasts unless renewed (default 300 s, at least 60).
    /// A running scan renews it every third of this, so it only bounds how long a scan on
    /// another host that died silently blocks the others; a dead holder on the same host is
    /// taken over at once.
    pub lease_ttl_secs: u64,
    /// Fields this version does not know, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Deduplication thresholds and policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupConfig {
    /// Tier-3 similarity at or above which an attribute counts as agreeing (0..=1).
    pub related_threshold: f64,
    /// How many attributes must agree for a finding to be "related" (1..=5).
    pub min_related_attributes: u32,
    /// Reopen a closed issue when it recurs (a regression); a comment is added either way, once
    /// per closure (later recurrences of the same closure are counted without a comment). An
    /// issue a person closed as not planned or as a duplicate is never reopened, whatever this
    /// says.
    pub reopen_on_regression: bool,
    /// How far back closed issues are fetched to detect regressions, in days.
    pub closed_window_days: u32,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            related_threshold: 0.85,
            min_related_attributes: 3,
            reopen_on_regression: true,
            closed_window_days: 30,
        }
    }
}

/// Rules that drop signatures before analysis. Dropped signatures are counted on the scan record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IgnoreRules {
    /// Error codes to ignore (`GIT-SYNC-001`).
    pub codes: Vec<String>,
    /// Sources (logger names) to ignore; a trailing `*` matches a prefix.
    pub sources: Vec<String>,
    /// Regular expressions matched against message templates (anywhere in them, unless
    /// anchored). One that matches empty text (`""`, `x*`) would match every template and is
    /// refused by validation.
    pub templates: Vec<String>,
}

/// One problem found by [`SelfMonitoringConfig::problems`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigProblem {
    /// Dotted path of the field.
    pub field: String,
    /// What is wrong and what is accepted.
    pub reason: String,
}

impl Default for SelfMonitoringConfig {
    fn default() -> Self {
        SelfMonitoringConfig {
            enabled: false,
            cadence_minutes: 60,
            model: ClaudeModel::default(),
            prompt_template: String::new(),
            prompt_user_modified: false,
            prompt_base_version: None,
            max_new_issues_per_scan: 5,
            max_comments_per_scan: 10,
            max_records_per_scan: 5_000_000,
            page_size: 10_000,
            max_digest_bytes: 32 * 1024,
            repeat_threshold: 5,
            dedup: DedupConfig::default(),
            ignore: IgnoreRules::default(),
            dry_run: false,
            include_server_identity: false,
            server_identity: None,
            redaction: crate::redact::RedactionConfig::default(),
            lease_ttl_secs: 5 * 60,
            extra: BTreeMap::new(),
        }
    }
}

impl SelfMonitoringConfig {
    /// Parses the JSON form. A type error names the field (`dedup.related_threshold: invalid type`).
    /// A leading UTF-8 byte-order mark (as Windows editors write) is ignored.
    pub fn from_json(json: &str) -> Result<Self> {
        let json = json.strip_prefix('\u{feff}').unwrap_or(json);
        let de = &mut serde_json::Deserializer::from_str(json);
        let config = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let path = e.path().to_string();
            Error::config(
                if path == "." {
                    "<root>".to_string()
                } else {
                    path
                },
                e.into_inner().to_string(),
            )
        })?;
        // Text after the closing `}` would otherwise be ignored without a word.
        de.end().map_err(|e| {
            Error::config(
                "<root>",
                format!(
                    "{e}: there is text after the configuration's closing `}}`, which would be \
                     ignored; remove it, or move its settings inside the object"
                ),
            )
        })?;
        Ok(config)
    }

    /// Serialises to pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_string())
    }

    /// Every problem with the configuration, each naming its field. Empty when valid.
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        let mut bad = |field: &str, reason: String| {
            p.push(ConfigProblem {
                field: field.to_string(),
                reason,
            })
        };
        if !(1..=10_080).contains(&self.cadence_minutes) {
            bad(
                "cadence_minutes",
                format!(
                    "{} is out of range; use 1 to 10080 minutes (one week)",
                    self.cadence_minutes
                ),
            );
        }
        if let ClaudeModel::Custom(id) = &self.model {
            if let Err(e) = ClaudeModel::parse(id) {
                bad("model", e.to_string());
            }
        }
        if self.prompt_user_modified && self.prompt_template.trim().is_empty() {
            bad(
                "prompt_template",
                "prompt_user_modified is true but the template is empty; set a template or set prompt_user_modified to false".into(),
            );
        }
        if self.prompt_user_modified {
            if let Err(e) = crate::prompt::check_template(&self.prompt_template) {
                bad("prompt_template", e.to_string());
            }
        }
        if self.max_new_issues_per_scan > 100 {
            bad(
                "max_new_issues_per_scan",
                format!("{} is more than 100", self.max_new_issues_per_scan),
            );
        }
        if self.max_comments_per_scan > 500 {
            bad(
                "max_comments_per_scan",
                format!("{} is more than 500", self.max_comments_per_scan),
            );
        }
        if self.max_records_per_scan == 0 {
            bad("max_records_per_scan", "must be at least 1".into());
        }
        if !(1..=1_000_000).contains(&self.page_size) {
            bad(
                "page_size",
                format!("{} is out of range; use 1 to 1000000", self.page_size),
            );
        }
        if !(1024..=4 * 1024 * 1024).contains(&self.max_digest_bytes) {
            bad(
                "max_digest_bytes",
                format!(
                    "{} is out of range; use 1024 to 4194304 bytes",
                    self.max_digest_bytes
                ),
            );
        }
        if self.repeat_threshold < 2 {
            bad("repeat_threshold", "must be at least 2".into());
        }
        let t = self.dedup.related_threshold;
        if !(0.0..=1.0).contains(&t) || t.is_nan() {
            bad("dedup.related_threshold", format!("{t} is outside 0..=1"));
        }
        if !(1..=5).contains(&self.dedup.min_related_attributes) {
            bad(
                "dedup.min_related_attributes",
                format!("{} is outside 1..=5", self.dedup.min_related_attributes),
            );
        }
        for (i, code) in self.ignore.codes.iter().enumerate() {
            if let Err(e) = ErrorCode::parse(code) {
                bad(&format!("ignore.codes[{i}]"), e.to_string());
            }
        }
        for (i, re) in self.ignore.templates.iter().enumerate() {
            match regex::Regex::new(re) {
                Err(e) => bad(
                    &format!("ignore.templates[{i}]"),
                    format!("not a valid regular expression: {e}"),
                ),
                // A pattern with an empty match anywhere (`""`, `x*`, `a|`, `^`) matches every
                // template: it would ignore every signature, CRITICAL ones included. (`^$`
                // matches only an empty template, and is let through: the probe is text no
                // pattern aims at.)
                Ok(compiled) if compiled.is_match("") && compiled.is_match("\u{1}") => bad(
                    &format!("ignore.templates[{i}]"),
                    format!(
                        "{} matches empty text, so it matches every template and would ignore \
                         every signature, CRITICAL ones included; write the part of the message \
                         to ignore (`^connection reset by peer`)",
                        crate::text::quoted(re)
                    ),
                ),
                Ok(_) => {}
            }
        }
        for (field, reason) in self.redaction.problems() {
            bad(&format!("redaction.{field}"), reason);
        }
        if !(60..=MAX_LEASE_TTL_SECS).contains(&self.lease_ttl_secs) {
            bad(
                "lease_ttl_secs",
                format!(
                    "{} is out of range; use 60 to {MAX_LEASE_TTL_SECS} seconds (one week)",
                    self.lease_ttl_secs
                ),
            );
        }
        if self.dedup.closed_window_days > MAX_CLOSED_WINDOW_DAYS {
            bad(
                "dedup.closed_window_days",
                format!(
                    "{} is out of range; use 0 to {MAX_CLOSED_WINDOW_DAYS} days (100 years)",
                    self.dedup.closed_window_days
                ),
            );
        }
        p
    }

    /// Ok when [`problems`](Self::problems) is empty, else the first problem as [`Error::Config`].
    pub fn validate(&self) -> Result<()> {
        match self.problems().into_iter().next() {
            None => Ok(()),
            Some(ConfigProblem { field, reason }) => Err(Error::config(field, reason)),
        }
    }

    /// Names of JSON fields this version did not recognise (kept in [`extra`](Self::extra)).
    pub fn unknown_fields(&self) -> Vec<&str> {
        self.extra.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_disabled() {
        let c = SelfMonitoringConfig::default();
        assert!(c.validate().is_ok(), "{:?}", c.problems());
        assert!(!c.enabled);
    }

    #[test]
    fn text_after_the_closing_brace_is_a_config_error() {
        let json = SelfMonitoringConfig::default().to_json();
        SelfMonitoringConfig::from_json(&format!("{json}\n\n")).expect("whitespace is fine");
        for tail in [r#", "enabled": true }"#, r#"{"enabled": true}"#] {
            match SelfMonitoringConfig::from_json(&format!("{json}{tail}")) {
                Err(Error::Config { field, reason }) => {
                    assert_eq!(field, "<root>");
                    assert!(reason.contains("trailing characters"), "{reason}");
                    assert!(reason.contains("closing"), "{reason}");
                }
                other => panic!("trailing text accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn windows_and_leases_beyond_what_dates_can_hold_are_rejected_naming_the_field() {
        // A closed window of 99,999,999 days passed validation and every scan then panicked
        // computing the window's start ("DateTime - TimeDelta overflowed").
        for (c, field) in [
            (
                SelfMonitoringConfig {
                    dedup: DedupConfig {
                        closed_window_days: 99_999_999,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "dedup.closed_window_days",
            ),
            (
                SelfMonitoringConfig {
                    lease_ttl_secs: u64::MAX,
                    ..Default::default()
                },
                "lease_ttl_secs",
            ),
        ] {
            let problems = c.problems();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].field, field);
            assert!(problems[0].reason.contains("out of range"), "{problems:?}");
        }
        let at_the_limits = SelfMonitoringConfig {
            dedup: DedupConfig {
                closed_window_days: MAX_CLOSED_WINDOW_DAYS,
                ..Default::default()
            },
            lease_ttl_secs: MAX_LEASE_TTL_SECS,
            ..Default::default()
        };
        assert!(at_the_limits.problems().is_empty());
    }

    #[test]
    fn cadence_zero_is_rejected_naming_the_field() {
        let c = SelfMonitoringConfig {
            cadence_minutes: 0,
            ..Default::default()
        };
        match c.validate() {
            Err(Error::Config { field, .. }) => assert_eq!(field, "cadence_minutes"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn thresholds_outside_unit_interval_are_rejected() {
        let mut c = SelfMonitoringConfig::default();
        c.dedup.related_threshold = 1.5;
        assert_eq!(c.problems()[0].field, "dedup.related_threshold");
        c.dedup.related_threshold = f64::NAN;
        assert_eq!(c.problems()[0].field, "dedup.related_threshold");
    }

    #[test]
    fn every_problem_is_reported() {
        let mut c = SelfMonitoringConfig {
            cadence_minutes: 0,
            page_size: 0,
            ..Default::default()
        };
        c.ignore.codes.push("nope".into());
        c.ignore.templates.push("(".into());
        let fields: Vec<_> = c.problems().into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "cadence_minutes",
                "page_size",
                "ignore.codes[0]",
                "ignore.templates[0]"
            ]
        );
    }

    #[test]
    fn an_ignore_template_that_matches_empty_text_is_refused() {
        // Review4 F11: `ignore.templates: [""]` was valid and ignored every signature.
        for everything in ["", "x*", "a|", "^", "$", ".*", "(?:)"] {
            let mut c = SelfMonitoringConfig::default();
            c.ignore.templates = vec!["^kept$".into(), everything.into()];
            let problems = c.problems();
            assert_eq!(problems.len(), 1, "{everything:?}: {problems:?}");
            assert_eq!(problems[0].field, "ignore.templates[1]");
            assert!(
                problems[0].reason.contains("matches empty text"),
                "{problems:?}"
            );
        }
        let mut c = SelfMonitoringConfig::default();
        c.ignore.templates = vec!["^$".into(), "connection reset".into(), "^GET .*".into()];
        assert!(c.problems().is_empty(), "{:?}", c.problems());
    }

    #[test]
    fn unknown_model_form_is_an_error_naming_the_field() {
        let err = SelfMonitoringConfig::from_json(r#"{"model": "rm -rf /"}"#).unwrap_err();
        match err {
            Error::Config { field, reason } => {
                assert_eq!(field, "model");
                assert!(reason.contains("model"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn type_errors_name_nested_fields() {
        let err = SelfMonitoringConfig::from_json(r#"{"dedup": {"related_threshold": "high"}}"#)
            .unwrap_err();
        assert!(
            matches!(err, Error::Config { ref field, .. } if field == "dedup.related_threshold"),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_are_kept_and_reported() {
        let c = SelfMonitoringConfig::from_json(r#"{"enabled": true, "future_knob": 3}"#).unwrap();
        assert!(c.enabled);
        assert_eq!(c.unknown_fields(), ["future_knob"]);
        let back = SelfMonitoringConfig::from_json(&c.to_json()).unwrap();
        assert_eq!(back.extra["future_knob"], 3);
    }

    #[test]
    fn cidx_style_json_loads() {
        let c = SelfMonitoringConfig::from_json(
            r#"{"enabled": true, "cadence_minutes": 30, "model": "opus", "prompt_template": "", "prompt_user_modified": false}"#,
        )
        .unwrap();
        assert_eq!(c.model, ClaudeModel::Opus);
        assert!(c.validate().is_ok());
    }
}
