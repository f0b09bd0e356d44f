//! The error-code inventory of a log (CIDX "log context inventory and standardization").
//!
//! For WARNING, ERROR and CRITICAL records: how many carry a well-formed code
//! (`[SUBSYSTEM-CATEGORY-NNN]` in the message, or `extra_data.error_code`), broken down by level and
//! by source module; the most frequent uncoded message templates (the call sites to fix first); and
//! codes that are malformed or missing from a catalog. Deterministic: the same records give the
//! same report, byte for byte, in JSON and in text.
//!
//! It works on plain [`LogRecord`]s, so any [`LogSource`](crate::LogSource) gets it: feed an
//! [`InventoryBuilder`] record by record (selfmon-sqlite's `inventory` does this for a
//! `logs.db`). The [`Catalog`] is the project's declared error codes, the one catalog selfmon has.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{ErrorCode, Level, LogRecord, NumericLevels, MAX_REPORT_TEMPLATE_CHARS};
use crate::template::Templater;

/// How the inventory is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InventoryOptions {
    /// How many uncoded templates to list.
    pub top_uncoded: usize,
    /// How many example sources to keep per uncoded template.
    pub sources_per_template: usize,
    /// Rows per page read from the log.
    pub page_size: usize,
    /// The scale a level written as a number is read on (as `logs.numeric_levels` in a
    /// configuration): Python's (the default) or pino's/bunyan's.
    pub numeric_levels: NumericLevels,
}

impl Default for InventoryOptions {
    fn default() -> Self {
        InventoryOptions {
            top_uncoded: 20,
            sources_per_template: 3,
            page_size: 10_000,
            numeric_levels: NumericLevels::Python,
        }
    }
}

/// The set of codes a project has declared (its error-code catalog).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Where it was loaded from, if from a file.
    pub path: Option<PathBuf>,
    /// The declared codes.
    pub codes: BTreeSet<ErrorCode>,
}

impl Catalog {
    /// A catalog of the given codes.
    pub fn from_codes(codes: impl IntoIterator<Item = ErrorCode>) -> Self {
        Catalog {
            path: None,
            codes: codes.into_iter().collect(),
        }
    }

    /// Loads a catalog file: a JSON array of codes, a JSON object keyed by code (values are
    /// ignored, e.g. descriptions), or plain text with one code per line (blank lines and lines
    /// starting with `#` are skipped). A malformed code is an error naming it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let fail = |reason: String| Error::Catalog {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Self::parse(&text)
            .map(|mut c| {
                c.path = Some(path.to_path_buf());
                c
            })
            .map_err(fail)
    }

    /// Parses catalog text (see [`load`](Self::load)); the error says which entry is wrong.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let trimmed = text.trim_start();
        let entries: Vec<String> = if trimmed.starts_with('[') || trimmed.starts_with('{') {
            match serde_json::from_str::<serde_json::Value>(trimmed) {
                Ok(serde_json::Value::Array(items)) => items
                    .into_iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => Ok(s),
                        other => Err(format!("catalog entry {other} is not a string")),
                    })
                    .collect::<std::result::Result<_, _>>()?,
                Ok(serde_json::Value::Object(map)) => map.into_iter().map(|(k, _)| k).collect(),
                Ok(_) => return Err("JSON catalog must be an array or an object".into()),
                Err(e) => return Err(format!("invalid JSON: {e}")),
            }
        } else {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        };
        let codes = entries
            .iter()
            .map(|e| {
                ErrorCode::parse(e.trim().trim_matches(|c| c == '[' || c == ']'))
                    .map_err(|err| err.to_string())
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(Catalog { path: None, codes })
    }
}

/// Coded versus total records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Coverage {
    /// Records counted.
    pub total: u64,
    /// Of which carry a well-formed code.
    pub coded: u64,
}

impl Coverage {
    /// Records without a code.
    pub fn uncoded(&self) -> u64 {
        self.total - self.coded
    }

    /// Coded share in percent (100 when there is nothing to code).
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            self.coded as f64 * 100.0 / self.total as f64
        }
    }
}

/// Coverage of one source module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCoverage {
    /// The module (`<none>` when records have no source).
    pub source: String,
    /// Its coverage.
    #[serde(flatten)]
    pub coverage: Coverage,
}

/// `text` cut to [`MAX_REPORT_TEMPLATE_CHARS`] characters, ending in `…` when it was cut.
fn capped(text: &str) -> String {
    if text.chars().count() <= MAX_REPORT_TEMPLATE_CHARS {
        return text.to_string();
    }
    let mut out = crate::error::truncate_chars(text, MAX_REPORT_TEMPLATE_CHARS - 1);
    out.push('…');
    out
}

/// A frequent message template without a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UncodedTemplate {
    /// The masked message, at most [`MAX_REPORT_TEMPLATE_CHARS`] characters (a longer one ends
    /// in `…`).
    pub template: String,
    /// Records with this template.
    pub count: u64,
    /// The most severe level seen.
    pub max_level: Level,
    /// A few sources that wrote it (sorted).
    pub sources: Vec<String>,
    /// The first record with it.
    pub example_record_id: i64,
}

/// A code and how often it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeCount {
    /// The code text as written.
    pub code: String,
    /// Records carrying it.
    pub count: u64,
    /// The first record with it.
    pub example_record_id: i64,
    /// Why it is listed (for malformed codes: what is wrong).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The inventory. Serialises to stable JSON (sorted keys and lists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryReport {
    /// The log read.
    pub source: String,
    /// Highest record id examined.
    pub scanned_through: i64,
    /// WARNING, ERROR and CRITICAL records.
    pub overall: Coverage,
    /// By level (`WARNING`, `ERROR`, `CRITICAL`).
    pub by_level: BTreeMap<String, Coverage>,
    /// By source module, most uncoded records first.
    pub by_source: Vec<SourceCoverage>,
    /// Most frequent uncoded templates, most frequent first.
    pub top_uncoded_templates: Vec<UncodedTemplate>,
    /// Distinct uncoded templates in all.
    pub distinct_uncoded_templates: u64,
    /// Well-formed codes seen, most frequent first.
    pub codes_seen: Vec<CodeCount>,
    /// Code-like text that is not a well-formed code (`[GIT-SYNC-01]`, a bad `error_code`).
    pub malformed_codes: Vec<CodeCount>,
    /// Well-formed codes not in the catalog (empty without a catalog).
    pub uncatalogued_codes: Vec<CodeCount>,
    /// Catalog codes never seen (empty without a catalog).
    pub unused_catalog_codes: Vec<String>,
    /// The catalog used, if any.
    pub catalog: Option<PathBuf>,
}

/// Builds an inventory record by record, for any source of [`LogRecord`]s.
#[derive(Debug)]
pub struct InventoryBuilder {
    options: InventoryOptions,
    templater: Templater,
    scanned_through: i64,
    overall: Coverage,
    by_level: BTreeMap<Level, Coverage>,
    by_source: HashMap<String, Coverage>,
    uncoded: HashMap<String, UncodedTemplate>,
    codes: HashMap<String, CodeCount>,
    malformed: HashMap<String, CodeCount>,
}

impl InventoryBuilder {
    /// An empty inventory.
    pub fn new(options: InventoryOptions) -> Self {
        InventoryBuilder {
            options,
            templater: Templater::new(),
            scanned_through: 0,
            overall: Coverage::default(),
            by_level: BTreeMap::new(),
            by_source: HashMap::new(),
            uncoded: HashMap::new(),
            codes: HashMap::new(),
            malformed: HashMap::new(),
        }
    }

    /// Counts one record (records below WARNING are ignored).
    pub fn add(&mut self, r: &LogRecord) {
        self.scanned_through = self.scanned_through.max(r.id);
        if r.level < Level::Warning {
            return;
        }
        let codes = ErrorCode::from_record(r);
        let coded = !codes.is_empty();
        for c in [
            &mut self.overall,
            self.by_level.entry(r.level).or_default(),
            self.by_source
                .entry(r.source.clone().unwrap_or_else(|| "<none>".into()))
                .or_default(),
        ] {
            c.total += 1;
            c.coded += u64::from(coded);
        }
        for c in &codes {
            bump(&mut self.codes, c.as_str(), r.id, None);
        }
        for (text, reason) in malformed_codes(r) {
            bump(&mut self.malformed, &text, r.id, Some(reason));
        }
        if !coded {
            let template = self.templater.mask(&r.message);
            let entry = self
                .uncoded
                .entry(template)
                .or_insert_with_key(|t| UncodedTemplate {
                    template: t.clone(),
                    count: 0,
                    max_level: r.level,
                    sources: Vec::new(),
                    example_record_id: r.id,
                });
            entry.count += 1;
            entry.max_level = entry.max_level.max(r.level);
            entry.example_record_id = entry.example_record_id.min(r.id);
            if let Some(s) = &r.source {
                if !entry.sources.contains(s) {
                    entry.sources.push(s.clone());
                    entry.sources.sort();
                    entry.sources.truncate(self.options.sources_per_template);
                }
            }
        }
    }

    /// The report, checked against `catalog` when given.
    pub fn finish(self, source: &str, catalog: Option<&Catalog>) -> InventoryReport {
        let mut by_source: Vec<SourceCoverage> = self
            .by_source
            .into_iter()
            .map(|(source, coverage)| SourceCoverage { source, coverage })
            .collect();
        by_source.sort_by(|a, b| {
            b.coverage
                .uncoded()
                .cmp(&a.coverage.uncoded())
                .then_with(|| a.source.cmp(&b.source))
        });
        let distinct_uncoded_templates = self.uncoded.len() as u64;
        let mut top: Vec<UncodedTemplate> = self.uncoded.into_values().collect();
        top.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.template.cmp(&b.template))
        });
        top.truncate(self.options.top_uncoded);
        // One huge token (a 200 KB upload id) must not make a 200 KB line: templates are capped
        // as in a scan report.
        for t in &mut top {
            t.template = capped(&t.template);
            for source in &mut t.sources {
                *source = capped(source);
            }
        }
        for sc in &mut by_source {
            sc.source = capped(&sc.source);
        }
        let codes_seen = sorted_counts(self.codes);
        let (uncatalogued_codes, unused_catalog_codes) = match catalog {
            Some(cat) => (
                codes_seen
                    .iter()
                    .filter(|c| !cat.codes.iter().any(|k| k.as_str() == c.code))
                    .cloned()
                    .collect(),
                cat.codes
                    .iter()
                    .filter(|k| !codes_seen.iter().any(|c| c.code == k.as_str()))
                    .map(|k| k.to_string())
                    .collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        InventoryReport {
            source: source.to_string(),
            scanned_through: self.scanned_through,
            overall: self.overall,
            by_level: self
                .by_level
                .into_iter()
                .map(|(l, c)| (l.as_str().to_string(), c))
                .collect(),
            by_source,
            top_uncoded_templates: top,
            distinct_uncoded_templates,
            codes_seen,
            malformed_codes: sorted_counts(self.malformed),
            uncatalogued_codes,
            unused_catalog_codes,
            catalog: catalog.and_then(|c| c.path.clone()),
        }
    }
}

fn bump(map: &mut HashMap<String, CodeCount>, code: &str, id: i64, reason: Option<String>) {
    let e = map.entry(code.to_string()).or_insert_with(|| CodeCount {
        code: code.to_string(),
        count: 0,
        example_record_id: id,
        reason,
    });
    e.count += 1;
    e.example_record_id = e.example_record_id.min(id);
}

fn sorted_counts(map: HashMap<String, CodeCount>) -> Vec<CodeCount> {
    let mut v: Vec<CodeCount> = map.into_values().collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
    v
}

/// Code-like text in a record that is not a well-formed code, with the reason: a bracketed token
/// of three dash-separated alphanumeric parts (`[GIT-SYNC-01]`, `[git-sync-001]`), a leading
/// bracketed token with a dash, letters and digits (`[AUTH-7] ...`), or an `extra_data.error_code`
/// that does not parse.
fn malformed_codes(r: &LogRecord) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let msg = &r.message;
    let leading = msg.trim_start().starts_with('[');
    let mut rest = msg.as_str();
    let mut first = true;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let token = &after[..close];
        if token.len() <= 30 && ErrorCode::parse(token).is_err() {
            let parts: Vec<&str> = token.split('-').collect();
            let alnum_parts = parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()));
            let has_letter = token.bytes().any(|b| b.is_ascii_alphabetic());
            let has_digit = token.bytes().any(|b| b.is_ascii_digit());
            let code_like = alnum_parts
                && has_letter
                && (parts.len() == 3 || (first && leading && parts.len() == 2 && has_digit));
            if code_like {
                if let Err(e) = ErrorCode::parse(token) {
                    out.push((token.to_string(), reason_of(&e)));
                }
            }
        }
        first = false;
        rest = &after[close + 1..];
    }
    let mut check = |s: &str| {
        let t = s.trim().trim_matches(|c| c == '[' || c == ']');
        if let Err(e) = ErrorCode::parse(t) {
            out.push((t.to_string(), reason_of(&e)));
        }
    };
    match r.extra_data.get("error_code") {
        Some(serde_json::Value::String(s)) => check(s),
        Some(serde_json::Value::Array(items)) => {
            items.iter().filter_map(|v| v.as_str()).for_each(check)
        }
        _ => {}
    }
    out
}

fn reason_of(e: &Error) -> String {
    match e {
        Error::Parse { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// The report for people: a few aligned sections, deterministic.
pub fn render_text(report: &InventoryReport) -> String {
    let mut s = String::new();
    let pct = |c: &Coverage| format!("{:5.1}%", c.percent());
    let _ = writeln!(
        s,
        "Error-code inventory of {} (through id {})",
        report.source, report.scanned_through
    );
    let _ = writeln!(
        s,
        "WARNING+ records: {}  coded: {} ({})  uncoded: {}",
        report.overall.total,
        report.overall.coded,
        pct(&report.overall).trim(),
        report.overall.uncoded()
    );
    let _ = writeln!(s, "\nBy level:");
    for (level, c) in &report.by_level {
        let _ = writeln!(
            s,
            "  {level:<9} {:>9} records  {:>9} coded  {}",
            c.total,
            c.coded,
            pct(c)
        );
    }
    let _ = writeln!(s, "\nBy source (most uncoded first):");
    for sc in &report.by_source {
        let c = &sc.coverage;
        let _ = writeln!(
            s,
            "  {:<40} {:>9} records  {:>9} uncoded  {}",
            sc.source,
            c.total,
            c.uncoded(),
            pct(c)
        );
    }
    let _ = writeln!(
        s,
        "\nTop uncoded templates ({} of {} distinct):",
        report.top_uncoded_templates.len(),
        report.distinct_uncoded_templates
    );
    for t in &report.top_uncoded_templates {
        let _ = writeln!(
            s,
            "  {:>9}  {:<8} {}  [{}] e.g. #{}",
            t.count,
            t.max_level.as_str(),
            t.template,
            t.sources.join(", "),
            t.example_record_id
        );
    }
    let list = |s: &mut String, title: &str, items: &[CodeCount]| {
        let _ = writeln!(
            s,
            "\n{title}: {}",
            if items.is_empty() { "none" } else { "" }
        );
        for c in items {
            let reason = c
                .reason
                .as_deref()
                .map(|r| format!("  ({r})"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  {:>9}  {}  e.g. #{}{reason}",
                c.count, c.code, c.example_record_id
            );
        }
    };
    list(&mut s, "Codes seen", &report.codes_seen);
    list(&mut s, "Malformed codes", &report.malformed_codes);
    if let Some(cat) = &report.catalog {
        list(
            &mut s,
            &format!("Codes missing from catalog {}", cat.display()),
            &report.uncatalogued_codes,
        );
        let _ = writeln!(
            s,
            "\nCatalog codes never seen: {}",
            if report.unused_catalog_codes.is_empty() {
                "none".to_string()
            } else {
                report.unused_catalog_codes.join(", ")
            }
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: i64, level: Level, msg: &str, source: &str) -> LogRecord {
        LogRecord::new(id, level, msg).with_source(source)
    }

    #[test]
    fn a_huge_token_does_not_make_a_huge_line() {
        // Review L11: a 200 KB letters-only token was printed as one 200 KB line.
        let token = "A".repeat(200_000);
        let mut b = InventoryBuilder::new(InventoryOptions::default());
        b.add(&rec(
            1,
            Level::Critical,
            &format!("rejected upload token {token} too long"),
            &format!("upload{token}"),
        ));
        let r = b.finish("logs.db", None);
        let t = &r.top_uncoded_templates[0];
        assert_eq!(t.template.chars().count(), MAX_REPORT_TEMPLATE_CHARS);
        assert!(t.template.starts_with("rejected upload token AAA"));
        assert!(t.template.ends_with('…'));
        assert!(t.sources[0].chars().count() <= MAX_REPORT_TEMPLATE_CHARS);
        assert!(r.by_source[0].source.chars().count() <= MAX_REPORT_TEMPLATE_CHARS);
        let longest = render_text(&r).lines().map(|l| l.chars().count()).max();
        assert!(longest < Some(3 * MAX_REPORT_TEMPLATE_CHARS), "{longest:?}");
    }

    #[test]
    fn coverage_is_counted_by_level_and_source() {
        let mut b = InventoryBuilder::new(InventoryOptions::default());
        b.add(&rec(1, Level::Error, "[GIT-SYNC-001] clone failed", "git"));
        b.add(&rec(2, Level::Error, "clone failed for repo 12", "git"));
        b.add(&rec(3, Level::Warning, "slow query 15 ms", "db"));
        b.add(&rec(4, Level::Info, "ignored", "db"));
        let r = b.finish("x", None);
        assert_eq!(r.overall, Coverage { total: 3, coded: 1 });
        assert_eq!(r.by_level["ERROR"], Coverage { total: 2, coded: 1 });
        assert_eq!(r.by_source[0].source, "db");
        assert_eq!(r.codes_seen[0].code, "GIT-SYNC-001");
        assert_eq!(r.distinct_uncoded_templates, 2);
    }

    #[test]
    fn malformed_code_like_text_is_reported_with_its_reason() {
        let mut b = InventoryBuilder::new(InventoryOptions::default());
        b.add(&rec(1, Level::Error, "[GIT-SYNC-01] clone failed", "git"));
        b.add(&rec(2, Level::Error, "[AUTH-7] denied", "auth"));
        b.add(&rec(
            3,
            Level::Error,
            "at [2025-01-01] [x] nothing code-like",
            "auth",
        ));
        b.add(
            &LogRecord::new(4, Level::Error, "y")
                .with_extra(serde_json::json!({"error_code": "db-lock-1"})),
        );
        let r = b.finish("x", None);
        let codes: Vec<&str> = r.malformed_codes.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, ["AUTH-7", "GIT-SYNC-01", "db-lock-1"]);
        assert!(r.malformed_codes[1]
            .reason
            .as_deref()
            .unwrap()
            .contains("three digits"));
    }

    #[test]
    fn catalog_formats_parse_and_bad_entries_are_named() {
        let a = Catalog::parse(r#"["GIT-SYNC-001"]"#).unwrap();
        let b = Catalog::parse(r#"{"GIT-SYNC-001": "clone failed"}"#).unwrap();
        let c = Catalog::parse("# codes\nGIT-SYNC-001\n\n").unwrap();
        assert_eq!(a.codes, b.codes);
        assert_eq!(b.codes, c.codes);
        let err = Catalog::parse("GIT-SYNC-1").unwrap_err();
        assert!(err.contains("GIT-SYNC-1"), "{err}");
    }

    #[test]
    fn uncatalogued_and_unused_codes_are_listed() {
        let mut b = InventoryBuilder::new(InventoryOptions::default());
        b.add(&rec(1, Level::Error, "[GIT-SYNC-001] a", "git"));
        b.add(&rec(2, Level::Error, "[DB-LOCK-002] b", "db"));
        let cat = Catalog::parse("GIT-SYNC-001\nAUTH-TOKEN-003").unwrap();
        let r = b.finish("x", Some(&cat));
        assert_eq!(r.uncatalogued_codes.len(), 1);
        assert_eq!(r.uncatalogued_codes[0].code, "DB-LOCK-002");
        assert_eq!(r.unused_catalog_codes, ["AUTH-TOKEN-003"]);
    }
}
