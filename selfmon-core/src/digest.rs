//! The digest: every new record grouped into signatures, rendered into a bounded text block.
//!
//! Memory is proportional to the number of signatures, never to the number of records: each
//! signature keeps counts, first/last ids and a few capped samples.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::config::{IgnoreRules, SelfMonitoringConfig};
use crate::error::{truncate_chars, Result};
use crate::model::{ErrorCode, Level, LogRecord};
use crate::template::{sha256_hex, Templater};

/// Sample record ids kept per signature.
pub const MAX_SAMPLE_IDS: usize = 5;
/// Sample messages kept per signature.
pub const MAX_SAMPLE_MESSAGES: usize = 3;
/// Characters kept per sample message.
pub const MAX_SAMPLE_CHARS: usize = 500;
/// Distinct correlation ids counted exactly per signature; beyond this the count saturates.
pub const MAX_DISTINCT_CORRELATION_IDS: usize = 1_000;

/// One group of records sharing (level class, source, template fingerprint, error codes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// Short stable id: the first 16 hex digits of the SHA-256 of the key.
    pub id: String,
    /// Most severe level seen.
    pub level: Level,
    /// Logger / module.
    pub source: Option<String>,
    /// Message template.
    pub template: String,
    /// Template fingerprint (hex SHA-256 of the template).
    pub template_fingerprint: String,
    /// Error codes.
    pub error_codes: Vec<ErrorCode>,
    /// Records in this scan.
    pub count: u64,
    /// First record id.
    pub first_id: i64,
    /// Last record id.
    pub last_id: i64,
    /// First timestamp (as written).
    pub first_timestamp: String,
    /// Last timestamp (as written).
    pub last_timestamp: String,
    /// A few record ids.
    pub sample_ids: Vec<i64>,
    /// A few messages, capped in length. Untrusted text.
    pub sample_messages: Vec<String>,
    /// Distinct correlation ids (saturates at [`MAX_DISTINCT_CORRELATION_IDS`]).
    pub distinct_correlation_ids: u64,
    /// Whether the count reached the repeat threshold (a possible stuck state).
    pub repeated: bool,
    /// Whether a sample looks like a traceback or panic.
    pub has_traceback: bool,
}

/// All signatures of one scan.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Digest {
    /// Signatures, in first-seen order.
    pub signatures: Vec<Signature>,
    /// Records seen (including ignored ones).
    pub records: u64,
    /// Signatures dropped by ignore rules.
    pub ignored_signatures: u64,
    /// Records in dropped signatures.
    pub ignored_records: u64,
}

/// Builds a [`Digest`] from a stream of records.
#[derive(Debug)]
pub struct DigestBuilder {
    templater: Templater,
    repeat_threshold: u64,
    ignore: CompiledIgnore,
    index: HashMap<String, usize>,
    correlation: Vec<HashSet<String>>,
    digest: Digest,
    ignored_keys: HashSet<String>,
}

#[derive(Debug, Default)]
struct CompiledIgnore {
    codes: Vec<String>,
    sources: Vec<String>,
    templates: Vec<regex::Regex>,
}

impl CompiledIgnore {
    fn new(rules: &IgnoreRules) -> Result<Self> {
        let mut templates = Vec::new();
        for (i, t) in rules.templates.iter().enumerate() {
            templates.push(regex::Regex::new(t).map_err(|e| {
                crate::Error::config(format!("ignore.templates[{i}]"), e.to_string())
            })?);
        }
        Ok(CompiledIgnore {
            codes: rules.codes.clone(),
            sources: rules.sources.clone(),
            templates,
        })
    }

    fn matches(&self, source: Option<&str>, template: &str, codes: &[ErrorCode]) -> bool {
        codes
            .iter()
            .any(|c| self.codes.iter().any(|i| i == c.as_str()))
            || source.is_some_and(|s| {
                self.sources
                    .iter()
                    .any(|rule| match rule.strip_suffix('*') {
                        Some(prefix) => s.starts_with(prefix),
                        None => s == rule,
                    })
            })
            || self.templates.iter().any(|re| re.is_match(template))
    }
}

impl DigestBuilder {
    /// A builder using `config`'s repeat threshold and ignore rules.
    pub fn new(config: &SelfMonitoringConfig) -> Result<Self> {
        Ok(DigestBuilder {
            templater: Templater::new(),
            repeat_threshold: config.repeat_threshold,
            ignore: CompiledIgnore::new(&config.ignore)?,
            index: HashMap::new(),
            correlation: Vec::new(),
            digest: Digest::default(),
            ignored_keys: HashSet::new(),
        })
    }

    /// Adds one record.
    pub fn push(&mut self, record: &LogRecord) {
        self.digest.records += 1;
        let template = self.templater.mask(&record.message);
        let codes = ErrorCode::from_record(record);
        let mut key = String::with_capacity(template.len() + 64);
        key.push_str(record.level.class());
        key.push('\u{1f}');
        key.push_str(record.source.as_deref().unwrap_or(""));
        key.push('\u{1f}');
        key.push_str(&template);
        for c in &codes {
            key.push('\u{1f}');
            key.push_str(c.as_str());
        }
        if let Some(&i) = self.index.get(&key) {
            self.update(i, record);
            return;
        }
        if self.ignored_keys.contains(&key) {
            self.digest.ignored_records += 1;
            return;
        }
        if self
            .ignore
            .matches(record.source.as_deref(), &template, &codes)
        {
            self.digest.ignored_signatures += 1;
            self.digest.ignored_records += 1;
            self.ignored_keys.insert(key);
            return;
        }
        let id = sha256_hex(key.as_bytes())[..16].to_string();
        let template_fingerprint = sha256_hex(template.as_bytes());
        let sig = Signature {
            id,
            level: record.level,
            source: record.source.clone(),
            template,
            template_fingerprint,
            error_codes: codes,
            count: 0,
            first_id: record.id,
            last_id: record.id,
            first_timestamp: record.timestamp.clone(),
            last_timestamp: record.timestamp.clone(),
            sample_ids: Vec::new(),
            sample_messages: Vec::new(),
            distinct_correlation_ids: 0,
            repeated: false,
            has_traceback: false,
        };
        self.digest.signatures.push(sig);
        self.correlation.push(HashSet::new());
        let i = self.digest.signatures.len() - 1;
        self.index.insert(key, i);
        self.update(i, record);
    }

    fn update(&mut self, i: usize, record: &LogRecord) {
        let sig = &mut self.digest.signatures[i];
        sig.count += 1;
        sig.level = sig.level.max(record.level);
        if record.id < sig.first_id {
            sig.first_id = record.id;
            sig.first_timestamp = record.timestamp.clone();
        }
        if record.id >= sig.last_id {
            sig.last_id = record.id;
            sig.last_timestamp.clone_from(&record.timestamp);
        }
        if sig.sample_ids.len() < MAX_SAMPLE_IDS {
            sig.sample_ids.push(record.id);
        }
        if sig.sample_messages.len() < MAX_SAMPLE_MESSAGES
            && !sig.sample_messages.iter().any(|m| m == &record.message)
        {
            sig.sample_messages.push(sanitize_sample(&record.message));
        }
        if !sig.has_traceback && looks_like_traceback(&record.message) {
            sig.has_traceback = true;
        }
        if sig.count >= self.repeat_threshold {
            sig.repeated = true;
        }
        if let Some(cid) = &record.correlation_id {
            let set = &mut self.correlation[i];
            if set.len() < MAX_DISTINCT_CORRELATION_IDS {
                set.insert(cid.clone());
            }
            sig.distinct_correlation_ids = set.len() as u64;
        }
    }

    /// Signatures so far.
    pub fn signature_count(&self) -> usize {
        self.digest.signatures.len()
    }

    /// The finished digest.
    pub fn finish(self) -> Digest {
        self.digest
    }
}

impl Digest {
    /// Builds a digest of `records` in one pass.
    pub fn build<'a>(
        records: impl IntoIterator<Item = &'a LogRecord>,
        config: &SelfMonitoringConfig,
    ) -> Result<Digest> {
        let mut b = DigestBuilder::new(config)?;
        for r in records {
            b.push(r);
        }
        Ok(b.finish())
    }

    /// Ids of all signatures.
    pub fn signature_ids(&self) -> Vec<String> {
        self.signatures.iter().map(|s| s.id.clone()).collect()
    }

    /// Renders the digest as text of at most `max_bytes` bytes: most severe, then most frequent
    /// signatures first; what did not fit is said on the last line.
    pub fn render(&self, max_bytes: usize) -> String {
        let mut order: Vec<&Signature> = self.signatures.iter().collect();
        order.sort_by(|a, b| {
            b.level
                .cmp(&a.level)
                .then(b.count.cmp(&a.count))
                .then(a.first_id.cmp(&b.first_id))
        });
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} records in {} signatures",
            self.records,
            self.signatures.len()
        );
        let reserve = 120;
        let mut omitted = 0u64;
        let mut omitted_records = 0u64;
        for sig in order {
            let block = render_signature(sig);
            if out.len() + block.len() + reserve > max_bytes {
                omitted += 1;
                omitted_records += sig.count;
                continue;
            }
            out.push_str(&block);
        }
        if omitted > 0 {
            let _ = writeln!(
                out,
                "[{omitted} more signatures ({omitted_records} records) omitted to stay within {max_bytes} bytes]"
            );
        }
        if out.len() > max_bytes {
            out = truncate_bytes(&out, max_bytes);
        }
        out
    }
}

fn render_signature(sig: &Signature) -> String {
    let mut s = String::new();
    let codes: Vec<&str> = sig.error_codes.iter().map(ErrorCode::as_str).collect();
    let _ = writeln!(
        s,
        "- sig={} level={} count={} source={} codes=[{}] ids={}..{} samples={:?} first={} last={}{}{}",
        sig.id,
        sig.level,
        sig.count,
        sig.source.as_deref().unwrap_or("-"),
        codes.join(","),
        sig.first_id,
        sig.last_id,
        sig.sample_ids,
        sig.first_timestamp,
        sig.last_timestamp,
        if sig.repeated { " REPEATING" } else { "" },
        if sig.has_traceback { " TRACEBACK" } else { "" },
    );
    let _ = writeln!(s, "  template: {}", sig.template);
    for m in &sig.sample_messages {
        let _ = writeln!(s, "  sample: {}", m.replace('\n', "\n          "));
    }
    s
}

fn truncate_bytes(s: &str, max: usize) -> String {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Caps a sample's length and strips control characters (other than newline and tab) and Unicode
/// bidirectional overrides, which could disguise text.
pub fn sanitize_sample(message: &str) -> String {
    let cleaned: String = message
        .chars()
        .filter(|&c| {
            (c == '\n' || c == '\t' || !c.is_control())
                && !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
        })
        .collect();
    if cleaned.chars().count() > MAX_SAMPLE_CHARS {
        format!("{}…", truncate_chars(&cleaned, MAX_SAMPLE_CHARS))
    } else {
        cleaned
    }
}

/// Whether a message looks like a Python traceback, a Rust panic, or a Java/JS stack trace.
pub fn looks_like_traceback(message: &str) -> bool {
    message.contains("Traceback (most recent call last)")
        || message.contains("panicked at")
        || message.contains("\n    at ")
        || message.contains("stack backtrace:")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: i64, level: Level, msg: &str) -> LogRecord {
        LogRecord::new(id, level, msg).with_source("svc")
    }

    #[test]
    fn records_group_into_signatures_by_template() {
        let recs = vec![
            rec(1, Level::Error, "clone of /a failed after 3 tries"),
            rec(2, Level::Error, "clone of /b failed after 4 tries"),
            rec(3, Level::Warning, "slow query took 12ms"),
        ];
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        assert_eq!(d.records, 3);
        assert_eq!(d.signatures.len(), 2);
        assert_eq!(d.signatures[0].count, 2);
        assert_eq!((d.signatures[0].first_id, d.signatures[0].last_id), (1, 2));
    }

    #[test]
    fn repeating_signatures_are_flagged() {
        let recs: Vec<_> = (1..=5)
            .map(|i| rec(i, Level::Warning, "queue full"))
            .collect();
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        assert!(d.signatures[0].repeated);
        assert_eq!(d.signatures[0].sample_ids.len(), MAX_SAMPLE_IDS);
        assert_eq!(d.signatures[0].sample_messages.len(), 1);
    }

    #[test]
    fn ignore_rules_drop_and_count() {
        let mut c = SelfMonitoringConfig::default();
        c.ignore.codes.push("GIT-SYNC-001".into());
        c.ignore.sources.push("noisy.*".into());
        let recs = vec![
            rec(1, Level::Error, "[GIT-SYNC-001] x"),
            rec(2, Level::Error, "[GIT-SYNC-001] x"),
            LogRecord::new(3, Level::Error, "y").with_source("noisy.mod"),
            rec(4, Level::Error, "kept"),
        ];
        let d = Digest::build(&recs, &c).unwrap();
        assert_eq!(d.signatures.len(), 1);
        assert_eq!((d.ignored_signatures, d.ignored_records), (2, 3));
    }

    #[test]
    fn rendering_respects_the_byte_budget_and_says_what_was_cut() {
        let recs: Vec<_> = (0..500)
            .map(|i| {
                rec(
                    i,
                    Level::Error,
                    &format!(
                        "distinct message kind{} {}",
                        char::from(b'a' + (i % 26) as u8),
                        "x".repeat(i as usize % 7 + 1)
                    ),
                )
            })
            .collect();
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        let text = d.render(2048);
        assert!(text.len() <= 2048);
        assert!(text.contains("omitted"), "{text}");
    }

    #[test]
    fn samples_are_capped_and_stripped_of_controls() {
        let s = sanitize_sample(&format!("a\u{202E}b\u{0007}c{}", "x".repeat(1000)));
        assert!(s.starts_with("abc"));
        assert!(s.chars().count() <= MAX_SAMPLE_CHARS + 1);
    }
}
