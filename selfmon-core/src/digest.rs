//! The digest: every new record grouped into signatures, rendered into a bounded text block.
//!
//! Memory is proportional to the number of signatures, never to the number of records: each
//! signature keeps counts, first/last ids and a few capped samples.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::config::{IgnoreRules, SelfMonitoringConfig};
use crate::error::{truncate_chars, Result};
use crate::hash::{sha256_hex, FxMap, FxSet};
use crate::model::{ErrorCode, Level, LogRecord};
use crate::redact::Redactor;
use crate::template::{with_introduced_names_generalised, ClusterId, Templater};

/// Sample record ids kept per signature.
pub const MAX_SAMPLE_IDS: usize = 5;
/// Sample messages kept per signature.
pub const MAX_SAMPLE_MESSAGES: usize = 3;
/// Characters kept per sample message.
pub const MAX_SAMPLE_CHARS: usize = 500;
/// Sample messages are taken from the first this many records of a signature.
pub const SAMPLE_WINDOW: u64 = 64;
/// Distinct node ids kept per signature.
pub const MAX_NODES: usize = 16;

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
    /// The cluster nodes that wrote this signature's records (at most [`MAX_NODES`], first seen
    /// first); empty for a single server. Untrusted text.
    #[serde(default)]
    pub nodes: Vec<String>,
}

/// All signatures of one scan.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Digest {
    /// Signatures, in first-seen order.
    pub signatures: Vec<Signature>,
    /// Records seen (including ignored ones).
    pub records: u64,
    /// Signatures dropped by ignore rules: the configured ones, and [`STACK_FRAME_RULE`] for
    /// stack-frame lines that belong to a crash read in the same scan.
    pub ignored_signatures: u64,
    /// Records in dropped signatures.
    pub ignored_records: u64,
    /// The dropped signatures with the rule that dropped each (at most
    /// [`crate::model::MAX_REPORT_SIGNATURES`]; unredacted, as `signatures` are). Never sent to a
    /// runner; the report keeps them as egress shows them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<IgnoredSignature>,
}

/// A signature an ignore rule dropped, and the rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IgnoredSignature {
    /// The signature, unredacted.
    pub signature: Signature,
    /// The rule, as configured (`ignore.codes: GIT-SYNC-001`), or [`STACK_FRAME_RULE`].
    pub rule: String,
}

/// Longest message, in bytes, a digest reads of one record (64 KiB); see [`DigestBuilder::push`].
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The most characters of a message a [`LogSource`](crate::LogSource) needs to hand the digest:
/// [`MAX_MESSAGE_BYTES`] + 1. A message cut to its first this-many characters digests exactly as
/// the whole one: a message longer than [`MAX_MESSAGE_BYTES`] bytes is still longer (every
/// character is at least a byte), so it is still cut and marked, and the bytes the digest keeps
/// all lie in the prefix. A source that fetches only this prefix (PostgreSQL's does, with
/// `substr` in SQL) bounds its memory per row however large a message is stored. Its
/// [`record_at`](crate::LogSource::record_at) must cut the same way, so that an anchor taken from
/// a page matches the record looked up again.
pub const MAX_MESSAGE_CHARS_READ: usize = MAX_MESSAGE_BYTES + 1;

/// What follows the part of a message longer than [`MAX_MESSAGE_BYTES`] that the digest reads.
pub const TRUNCATION_MARK: &str = " …[message truncated]";

/// `record` with its message cut to [`MAX_MESSAGE_BYTES`] (at a character boundary) and marked;
/// the other fields copied (the long message itself is not).
fn truncated(record: &LogRecord) -> LogRecord {
    let mut end = MAX_MESSAGE_BYTES.min(record.message.len());
    while !record.message.is_char_boundary(end) {
        end -= 1;
    }
    let mut message = String::with_capacity(end + TRUNCATION_MARK.len());
    message.push_str(&record.message[..end]);
    message.push_str(TRUNCATION_MARK);
    LogRecord {
        id: record.id,
        timestamp: record.timestamp.clone(),
        level: record.level,
        source: record.source.clone(),
        message,
        correlation_id: record.correlation_id.clone(),
        user_id: record.user_id.clone(),
        request_path: record.request_path.clone(),
        extra_data: record.extra_data.clone(),
        node_id: record.node_id.clone(),
    }
}

/// Most signatures a digest keeps by default; beyond it the signatures least worth keeping go to
/// the overflow signatures (see [`DigestBuilder::with_max_signatures`]).
pub const DEFAULT_MAX_SIGNATURES: usize = 10_000;

/// Start of the ids of the "other" signatures that count records beyond the signature cap, one per
/// level: `overflow-critical`, `overflow-warning`, ... (see [`overflow_signature_id`]). Their
/// template is [`OVERFLOW_TEMPLATE`]; they never match a known issue's signature.
pub const OVERFLOW_SIGNATURE_ID: &str = "overflow";

/// Most distinct error codes one overflow signature lists; further codes are counted in it but
/// not listed.
pub const MAX_OVERFLOW_CODES: usize = 32;

/// The id of the overflow signature of `level` (`overflow-critical`).
pub fn overflow_signature_id(level: Level) -> String {
    format!(
        "{OVERFLOW_SIGNATURE_ID}-{}",
        level.as_str().to_ascii_lowercase()
    )
}

/// Whether `id` names an overflow signature (of any level): a bucket of records beyond the
/// signature cap, which says nothing about which problem its records belong to.
pub fn is_overflow_signature(id: &str) -> bool {
    id.strip_prefix(OVERFLOW_SIGNATURE_ID)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
}

/// How much a signature is worth keeping once the cap is reached: level first, then whether it
/// carries error codes, then whether it is a traceback. Occurrences break ties among equals.
fn keep_rank(level: Level, coded: bool, traceback: bool) -> u8 {
    (level as u8) * 4 + u8::from(coded) * 2 + u8::from(traceback)
}

/// A signature's place in the eviction queue: (rank, count, creation sequence, slot); the least is
/// evicted first. Entries go stale as signatures grow and are refreshed when they surface.
type RankEntry = Reverse<(u8, u64, u64, u32)>;

/// The grouping key of a signature while the digest is built: (level class, source, cluster, code
/// set, generalised words), the source and code set interned, the words as
/// [`Templater::generalised_words_key`] gives them (so a word the cluster generalised by count,
/// `failed to connect to <*> server`, still tells two signatures apart).
type BuildKey = (u8, u32, ClusterId, u32, u64);

/// Template text of the overflow signature.
pub const OVERFLOW_TEMPLATE: &str = "<records of signatures beyond the signature cap>";

/// Builds a [`Digest`] from a stream of records, learning templates as it goes.
///
/// Memory is bounded: at most `max_signatures` signatures (each with capped samples, at most
/// [`MAX_DISTINCT_CORRELATION_IDS`] correlation ids and, while its samples are being taken, the
/// raw text of up to [`MAX_SAMPLE_MESSAGES`] short messages already sampled) plus one overflow
/// signature per level and the templater's capped clusters, however many records are pushed.
///
/// The cap is not first-come: once it is reached, a record that would start a signature worth
/// more than the least valuable one kept (a higher level; at the same level, one with error codes;
/// then a traceback) evicts that one — lowest level, uncoded, fewest occurrences — into the
/// overflow signature of its level; otherwise the record itself goes there. So a flood of
/// distinct warnings cannot push a later coded CRITICAL traceback out of the digest, and the
/// overflow signatures keep the error codes they absorbed (up to [`MAX_OVERFLOW_CODES`]), so the
/// analysis and dedup's code rules still see them. A slot's rank only rises when it is reused, so
/// evictions are bounded by a small multiple of the cap.
#[derive(Debug)]
pub struct DigestBuilder {
    templater: Templater,
    /// Samples are redacted when they are taken, before they are capped (see [`redacted_sample`]).
    redactor: Redactor,
    repeat_threshold: u64,
    ignore: CompiledIgnore,
    max_signatures: usize,
    sources: FxMap<Box<str>, u32>,
    code_sets: FxMap<Vec<ErrorCode>, u32>,
    index: FxMap<BuildKey, usize>,
    /// Per slot (parallel to `digest.signatures`): its key, cluster, tracking and creation sequence.
    keys: Vec<BuildKey>,
    clusters: Vec<ClusterId>,
    /// The masked text of each slot's first record: the words its final template gives back.
    masked: Vec<Box<str>>,
    /// The crash site each slot's template ends with (a Python exception line's: see
    /// [`python_crash_site`]).
    sites: Vec<Option<Box<str>>>,
    tracking: Vec<Tracking>,
    created: Vec<u64>,
    next_created: u64,
    /// Every slot once, least worth keeping on top (see [`RankEntry`]).
    ranks: BinaryHeap<RankEntry>,
    digest: Digest,
    /// Overflow signatures, by level.
    overflow: [Option<Box<(Signature, Tracking)>>; 5],
    evicted: u64,
    /// Per source: the slot, its creation sequence and the level of the source's last record that
    /// was not a stack frame. Frames logged as records of their own belong to that record's crash
    /// report (see [`is_frame_record`]).
    last_by_source: FxMap<u32, (usize, u64, Level)>,
    /// Sources (by name) inside a Python crash report logged one line per record: after its
    /// `Traceback (most recent call last):` or a `File "…", line N` frame, until the exception
    /// line that ends it. Almost always empty.
    python_trace: FxSet<Box<str>>,
    /// The record being pushed is the exception line ending a Python crash report logged one line
    /// per record: its signature is flagged as a traceback.
    python_exception: bool,
    /// Per source (by name), the slots (and their creation sequence) of the frame records of the
    /// Python crash report open on that source: they are orphans unless its exception line comes.
    python_pending: FxMap<Box<str>, FxMap<(usize, u64), u64>>,
    /// Per source (by name), the innermost frame (see [`python_crash_site`]) of the Python crash
    /// report open on that source, as far as it is read.
    python_frames: FxMap<Box<str>, Box<str>>,
    /// The crash site of the Python report the record being pushed is the exception line of
    /// (see [`python_crash_site`]), if its frames named one.
    python_site: Option<Box<str>>,
    /// What the record being pushed is as a stack-frame line.
    frame_kind: FrameKind,
}

/// What a record is as a stack-frame line logged as a record of its own (see
/// [`Tracking::orphan_frames`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum FrameKind {
    /// Not a frame, or a frame a crash record before it claims.
    #[default]
    Claimed,
    /// A frame no record before it claims.
    Orphan,
    /// A frame of a Python crash report: claimed only if its exception line comes.
    Pending,
}

/// What a record is to a Python crash report logged one line per record (see
/// [`DigestBuilder::python_part`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PythonPart {
    /// Not part of one.
    None,
    /// Its header, a frame, a source line under a frame or a chaining line: part of the report.
    Report,
    /// The exception line that ends it and says what the crash was.
    Exception,
}

/// Whether a line is a Python exception line: `ZeroDivisionError: division by zero`,
/// `asyncpg.exceptions.UniqueViolationError: …`, `KeyboardInterrupt`. A dotted name with no
/// space before a colon, or a bare name ending like an exception class.
fn is_python_exception_line(t: &str) -> bool {
    let (head, has_colon) = match t.split_once(':') {
        Some((head, _)) => (head, true),
        None => (t, false),
    };
    let mut chars = head.chars();
    head.len() >= 3
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && (has_colon
            || [
                "Error",
                "Exception",
                "Interrupt",
                "Exit",
                "Iteration",
                "Warning",
            ]
            .iter()
            .any(|end| head.ends_with(end)))
}

/// Where a Python crash happened, from one frame line (`File "/app/billing.py", line 88, in
/// charge`): `(in billing.py charge)`, the file's name and the function, without the line number
/// (which moves with every edit) or the directory (which differs between deployments). A
/// report's exception line (`KeyError: 'user_id'`) names the kind of crash, not the crash: the
/// commonest kinds (`KeyError`, `AttributeError`, `TypeError`) are raised all over a program,
/// and their messages are masked values. Its signature is keyed, and its template suffixed, with
/// the innermost frame's site, so a `KeyError` in `auth.py` is never "known" as the one in
/// `billing.py` (over-merging hides a problem; two crashes in one function stay one signature).
fn python_crash_site(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix("File \"")?;
    let (path, rest) = rest.split_once('"')?;
    let function = rest.rsplit_once(", in ").map(|(_, f)| f.trim())?;
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 200
            && s.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '<' | '>'))
    };
    (plain(file) && plain(function)).then(|| format!("(in {file} {function})"))
}

/// The crash site (see [`python_crash_site`]) of a Python crash report logged as one record:
/// its last frame's. Cheap when the message is no such report.
fn python_site_in_report(message: &str) -> Option<Box<str>> {
    if !message.contains("Traceback (most recent call last)") {
        return None;
    }
    message
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("File \""))
        .and_then(python_crash_site)
        .map(String::into_boxed_str)
}

/// A template ending with a crash site (see [`python_crash_site`]), and its fingerprint.
fn with_site(template: &str, site: &str) -> (String, String) {
    let t = format!("{template} {site}");
    let f = sha256_hex(t.as_bytes());
    (t, f)
}

/// The key a crash site (see [`python_crash_site`]) adds to a signature's.
fn site_key(site: &str) -> u64 {
    use std::hash::Hasher as _;
    let mut h = crate::hash::FxHasher::default();
    h.write(site.as_bytes());
    h.write_u8(0xfe);
    h.finish() | 1
}

/// What the builder remembers about one signature beyond the [`Signature`] itself.
#[derive(Debug, Default)]
struct Tracking {
    /// Distinct correlation ids, up to [`MAX_DISTINCT_CORRELATION_IDS`]. Only its size is
    /// reported, so the hasher is free to be fast.
    correlation: FxSet<String>,
    /// Raw messages already turned into a sample while sampling is open (at most
    /// [`MAX_SAMPLE_MESSAGES`] of at most [`MAX_REMEMBERED_MESSAGE_BYTES`] bytes each): a record
    /// repeating one of them would give a sample the signature already holds (redaction depends
    /// on the text alone), so it is not stripped and redacted again. Emptied when sampling ends.
    sampled: Vec<String>,
    /// Records of this signature that were stack-frame lines (see [`is_frame_record`]) no crash
    /// record of this scan claims: no record of their source at their level or above before them
    /// (Java and the others), or, for a Python report, no exception line ending it. A frame-only
    /// signature whose frames all belong to a crash read in this scan is judged with that crash
    /// (see [`STACK_FRAME_RULE`]); one with orphans is kept, as it may be all there is of a crash.
    orphan_frames: u64,
}

/// The rule named for a signature that is only a stack-frame line (`at <*>`, `... <NUM> more`,
/// `File <PATH>, line <NUM>, in <*>`, `Traceback (most recent call last):`) when every one of its
/// records belongs to a crash report read in the same scan: the crash is judged by the record that
/// says what it was (Java's exception line before its frames, Python's after them), which the
/// digest flags as a traceback; the frames are counted as ignored, never shown as a problem of
/// their own (every crash's frames share one template, so they would be "new" on every scan).
pub const STACK_FRAME_RULE: &str =
    "built-in: a stack-frame line of the crash report logged with it (the crash is judged by its exception line)";

/// Longest raw message remembered as already sampled (see [`Tracking::sampled`]); longer ones are
/// redacted again when they repeat, which keeps the memory per signature small.
const MAX_REMEMBERED_MESSAGE_BYTES: usize = 2_048;

/// The configured ignore rules, compiled: the digest drops the signatures they match, and the
/// engine closes the backlog entries they match (rules added after a finding was deferred).
#[derive(Debug, Default)]
pub(crate) struct CompiledIgnore {
    codes: Vec<String>,
    sources: Vec<String>,
    templates: Vec<regex::Regex>,
}

impl CompiledIgnore {
    pub(crate) fn new(rules: &IgnoreRules) -> Result<Self> {
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

    /// The first rule that drops a signature, named as configured (`ignore.codes: X`).
    fn matching_rule(
        &self,
        source: Option<&str>,
        template: &str,
        codes: &[ErrorCode],
    ) -> Option<String> {
        // Only when every code it carries is ignored: one ignored code must not hide another
        // (`[GIT-SYNC-001] sync aborted: [DISK-FULL-009] no space left`).
        if !codes.is_empty()
            && codes
                .iter()
                .all(|c| self.codes.iter().any(|i| i == c.as_str()))
        {
            return Some(format!("ignore.codes: {}", codes[0].as_str()));
        }
        if let Some(s) = source {
            if let Some(rule) = self
                .sources
                .iter()
                .find(|rule| match rule.strip_suffix('*') {
                    Some(prefix) => s.starts_with(prefix),
                    None => s == rule.as_str(),
                })
            {
                return Some(format!("ignore.sources: {rule}"));
            }
        }
        self.templates
            .iter()
            .enumerate()
            .find(|(_, re)| re.is_match(template))
            .map(|(i, re)| format!("ignore.templates[{i}]: {}", re.as_str()))
    }

    /// The first rule that drops a signature in any of the forms an operator may have written a
    /// template rule against: its `template`; `alternative` (the generalised form the digest
    /// grouped it under, or the template a backlog entry keeps for dedup); and `template` with the
    /// names after `from`, `user`, … generalised (the templater keeps the first two such names
    /// literal, so a rule written against `heartbeat from <*>` must cover them too). The digest
    /// and the backlog check both use it, so a rule that drops a signature also closes a deferred
    /// finding made of it.
    fn matching_rule_in_any_form(
        &self,
        source: Option<&str>,
        template: &str,
        alternative: Option<&str>,
        codes: &[ErrorCode],
    ) -> Option<String> {
        self.matching_rule(source, template, codes)
            .or_else(|| self.matching_rule(source, alternative?, codes))
            .or_else(|| {
                if self.templates.is_empty() {
                    return None;
                }
                let g = with_introduced_names_generalised(template)?;
                self.matching_rule(source, &g, codes)
            })
    }

    /// The rule that drops a backlog entry, if one does: the one matching its first evidence
    /// signature when each of them (by source, template and codes, as the digest judges a
    /// signature) is matched — a finding that still has a signature no rule drops would still be
    /// made. Each template is tried in the forms the digest tries
    /// ([`matching_rule_in_any_form`](Self::matching_rule_in_any_form)), the template the entry
    /// keeps for dedup among them (a secret in a template makes the shown one differ from what
    /// the operator's pattern was written against). An entry with no evidence is judged by its
    /// templates and the finding's codes.
    pub(crate) fn backlog_rule(&self, entry: &crate::model::BacklogEntry) -> Option<String> {
        let rule_for = |i: usize, source: Option<&str>, template: &str, codes: &[ErrorCode]| {
            let kept = entry.templates.get(i).map(String::as_str);
            self.matching_rule_in_any_form(source, template, kept, codes)
        };
        let rules: Vec<Option<String>> = if entry.evidence.is_empty() {
            entry
                .templates
                .iter()
                .enumerate()
                .map(|(i, t)| rule_for(i, None, t, &entry.finding.error_codes))
                .collect()
        } else {
            entry
                .evidence
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let sig = e.as_signature();
                    rule_for(i, sig.source.as_deref(), &sig.template, &sig.error_codes)
                })
                .collect()
        };
        let mut first = None;
        for rule in rules {
            // One signature no rule matches keeps the entry.
            first.get_or_insert(rule?);
        }
        first
    }
}

const NO_SOURCE: u32 = u32::MAX;

fn class_index(level: Level) -> u8 {
    match level.class() {
        "info" => 0,
        "warning" => 1,
        _ => 2,
    }
}
impl DigestBuilder {
    /// A builder using `config`'s repeat threshold and ignore rules and a fresh templater.
    pub fn new(config: &SelfMonitoringConfig) -> Result<Self> {
        Self::with_templater(config, Templater::new())
    }

    /// A builder that starts from `templater`'s learned templates (e.g. restored with
    /// [`Templater::from_state_json`] from the state store), so messages map to last scan's templates.
    pub fn with_templater(config: &SelfMonitoringConfig, mut templater: Templater) -> Result<Self> {
        let redactor = Redactor::with_config(&config.redaction)?;
        // The templater judges each message that founds a template with the same redactor, so
        // the learned state seals what the operator's patterns flag too.
        templater.set_redactor(redactor.clone());
        Ok(DigestBuilder {
            templater,
            redactor,
            repeat_threshold: config.repeat_threshold,
            ignore: CompiledIgnore::new(&config.ignore)?,
            max_signatures: DEFAULT_MAX_SIGNATURES,
            sources: FxMap::default(),
            code_sets: FxMap::default(),
            index: FxMap::default(),
            keys: Vec::new(),
            clusters: Vec::new(),
            masked: Vec::new(),
            sites: Vec::new(),
            tracking: Vec::new(),
            created: Vec::new(),
            next_created: 0,
            ranks: BinaryHeap::new(),
            digest: Digest::default(),
            overflow: Default::default(),
            evicted: 0,
            last_by_source: FxMap::default(),
            python_trace: FxSet::default(),
            python_exception: false,
            python_pending: FxMap::default(),
            python_frames: FxMap::default(),
            python_site: None,
            frame_kind: FrameKind::Claimed,
        })
    }

    /// Caps the number of signatures (at least 1); beyond it the signatures least worth keeping are
    /// counted in the overflow signature of their level (see [`DigestBuilder`]).
    pub fn with_max_signatures(mut self, max_signatures: usize) -> Self {
        self.max_signatures = max_signatures.max(1);
        self
    }

    /// The templater, with everything learned so far.
    pub fn templater(&self) -> &Templater {
        &self.templater
    }

    /// Adds one record. A message longer than [`MAX_MESSAGE_BYTES`] is digested as its first
    /// [`MAX_MESSAGE_BYTES`] (cut at a character boundary) followed by [`TRUNCATION_MARK`]: the
    /// work and memory a record costs are bounded whatever one row holds.
    pub fn push(&mut self, record: &LogRecord) {
        if record.message.len() > MAX_MESSAGE_BYTES {
            let cut = truncated(record);
            return self.push_bounded(&cut);
        }
        self.push_bounded(record)
    }

    fn push_bounded(&mut self, record: &LogRecord) {
        self.digest.records += 1;
        self.python_exception = false;
        self.python_site = None;
        let cluster = self.templater.learn(&record.message);
        let mut words = self
            .templater
            .generalised_words_key(cluster, self.templater.last_masked());
        let codes = ErrorCode::from_record(record);
        let class = class_index(record.level);
        let source = match record.source.as_deref() {
            None => Some(NO_SOURCE),
            Some(s) => self.sources.get(s).copied(),
        };
        let code_set = self.code_sets.get(&codes).copied();
        let mut frame = is_frame_record(&record.message);
        // A Python crash report opens before its frames and is named by the line after them;
        // Java's and the others' are named by the line before their frames.
        self.frame_kind = FrameKind::Claimed;
        match self.python_part(record, frame) {
            PythonPart::Report => {
                frame = true;
                self.frame_kind = FrameKind::Pending;
            }
            PythonPart::Exception => self.python_exception = true,
            PythonPart::None => {
                if frame
                    && !source.is_some_and(|source| self.flag_crash_before(source, record.level))
                {
                    self.frame_kind = FrameKind::Orphan;
                }
            }
        }
        if self.python_site.is_none() {
            // A whole report in one record: its frames' files are masked as paths.
            self.python_site = python_site_in_report(&record.message);
        }
        // Two crashes with one exception line in different code are two problems.
        let site = self.python_site.as_deref().map_or(0, site_key);
        if let (Some(source), Some(code_set)) = (source, code_set) {
            if let Some(&i) = self
                .index
                .get(&(class, source, cluster, code_set, words ^ site))
            {
                self.update(i, record, frame);
                return;
            }
        }
        // Words no signature has given back yet: the raw message is judged once, and the words
        // that held part of a secret are not given back (nor keyed on).
        let mut masked: Box<str> = self.templater.last_masked().into();
        if words != 0 {
            if let Some(safe) = self
                .templater
                .without_secret_words(&record.message, &masked)
            {
                words = self.templater.generalised_words_key(cluster, &safe);
                masked = safe.into_boxed_str();
                if let (Some(source), Some(code_set)) = (source, code_set) {
                    let key = (class, source, cluster, code_set, words ^ site);
                    if let Some(&i) = self.index.get(&key) {
                        self.update(i, record, frame);
                        return;
                    }
                }
            }
        }
        // A new signature: it takes a free slot, or the slot of one worth less, or overflows.
        let slot = if self.digest.signatures.len() < self.max_signatures {
            None
        } else {
            let rank = keep_rank(
                record.level,
                !codes.is_empty(),
                looks_like_traceback(&record.message),
            );
            match self.least_valuable_below(rank) {
                Some(i) => Some(i),
                None => {
                    if let (false, Some(source)) = (frame, source) {
                        self.last_by_source.remove(&source);
                    }
                    return self.push_overflow(record, &codes);
                }
            }
        };
        let source = source.unwrap_or_else(|| {
            let i = self.sources.len() as u32;
            self.sources
                .insert(record.source.as_deref().unwrap_or_default().into(), i);
            i
        });
        let code_set = code_set.unwrap_or_else(|| {
            let i = self.code_sets.len() as u32;
            self.code_sets.insert(codes.clone(), i);
            i
        });
        let key = (class, source, cluster, code_set, words ^ site);
        let (template, template_fingerprint) = match self.templater.cluster_text(cluster) {
            Some(_) if words != 0 => match self.templater.template_with_words(cluster, &masked) {
                Some(t) => (t.text, t.fingerprint),
                None => (masked.to_string(), sha256_hex(masked.as_bytes())),
            },
            Some((t, f)) => (t.to_string(), f.to_string()),
            None => {
                let t = self.templater.mask(&record.message);
                let f = sha256_hex(t.as_bytes());
                (t, f)
            }
        };
        let site = self.python_site.take();
        let (template, template_fingerprint) = match &site {
            Some(site) => with_site(&template, site),
            None => (template, template_fingerprint),
        };
        let sig = new_signature(record, template, template_fingerprint, codes);
        let created = self.next_created;
        self.next_created += 1;
        let i = match slot {
            Some(i) => {
                let old = std::mem::replace(&mut self.digest.signatures[i], sig);
                let old_tracking = std::mem::take(&mut self.tracking[i]);
                self.index.remove(&self.keys[i]);
                self.keys[i] = key;
                self.clusters[i] = cluster;
                self.masked[i] = masked;
                self.sites[i] = site;
                self.created[i] = created;
                self.evicted += 1;
                self.absorb_into_overflow(old, old_tracking);
                i
            }
            None => {
                self.digest.signatures.push(sig);
                self.tracking.push(Tracking::default());
                self.keys.push(key);
                self.clusters.push(cluster);
                self.masked.push(masked);
                self.sites.push(site);
                self.created.push(created);
                self.digest.signatures.len() - 1
            }
        };
        self.index.insert(key, i);
        self.update(i, record, frame);
        let sig = &self.digest.signatures[i];
        self.ranks
            .push(Reverse((rank_of(sig), sig.count, created, i as u32)));
    }

    /// The slot of the signature least worth keeping, taken out of the eviction queue, when its
    /// rank is below `rank`; `None` (and the queue unchanged) otherwise.
    fn least_valuable_below(&mut self, rank: u8) -> Option<usize> {
        loop {
            let &Reverse((r, count, created, slot)) = self.ranks.peek()?;
            let i = slot as usize;
            if self.created.get(i) != Some(&created) {
                self.ranks.pop();
                continue;
            }
            let sig = &self.digest.signatures[i];
            let now = (rank_of(sig), sig.count);
            if now != (r, count) {
                // Grown since it was queued (counts and ranks only rise): queue it as it is now.
                self.ranks.pop();
                self.ranks.push(Reverse((now.0, now.1, created, slot)));
                continue;
            }
            if r >= rank {
                return None;
            }
            self.ranks.pop();
            return Some(i);
        }
    }

    fn push_overflow(&mut self, record: &LogRecord, codes: &[ErrorCode]) {
        let threshold = self.repeat_threshold;
        let bucket = self.overflow[record.level as usize].get_or_insert_with(|| {
            Box::new((
                overflow_signature(new_signature(
                    record,
                    String::new(),
                    String::new(),
                    Vec::new(),
                )),
                Tracking::default(),
            ))
        });
        let (sig, tracking) = &mut **bucket;
        add_overflow_codes(sig, codes);
        update_signature(sig, tracking, record, threshold, &self.redactor);
    }

    /// Counts an evicted signature in the overflow signature of its level.
    fn absorb_into_overflow(&mut self, evicted: Signature, tracking: Tracking) {
        let threshold = self.repeat_threshold;
        match &mut self.overflow[evicted.level as usize] {
            Some(bucket) => {
                let (sig, into) = &mut **bucket;
                add_overflow_codes(sig, &evicted.error_codes);
                merge_signature(
                    sig,
                    &mut into.correlation,
                    evicted,
                    tracking.correlation,
                    threshold,
                );
            }
            empty => {
                let mut sig = overflow_signature(evicted);
                let codes = std::mem::take(&mut sig.error_codes);
                add_overflow_codes(&mut sig, &codes);
                *empty = Some(Box::new((
                    sig,
                    Tracking {
                        correlation: tracking.correlation,
                        sampled: Vec::new(),
                        orphan_frames: 0,
                    },
                )));
            }
        }
    }

    /// What `record` (`frame`: a stack-frame line) is to a Python crash report logged one line
    /// per record by its source: the header (`Traceback (most recent call last):`) or a `File`
    /// frame opens one; inside it, frames, the indented source lines under them, caret markers
    /// and chaining lines are part of it; the first other line ends it, and is its exception
    /// line when it reads like one (`KeyError: 'id'`).
    fn python_part(&mut self, record: &LogRecord, frame: bool) -> PythonPart {
        let message = record.message.as_str();
        let t = message.trim_start();
        let opens = (frame && t.starts_with("File \""))
            || t.trim_end() == "Traceback (most recent call last):";
        if self.python_trace.is_empty() && !opens {
            return PythonPart::None;
        }
        let source = record.source.as_deref().unwrap_or("");
        if opens {
            if !self.python_trace.contains(source) {
                self.python_trace.insert(source.into());
            }
            self.note_python_frame(source, t);
            return PythonPart::Report;
        }
        if !self.python_trace.contains(source) {
            return PythonPart::None;
        }
        let indented = message.starts_with([' ', '\t']);
        if frame || (indented && !t.contains('\n')) || t.is_empty() {
            self.note_python_frame(source, t);
            return PythonPart::Report;
        }
        self.python_trace.remove(source);
        let pending = self.python_pending.remove(source).unwrap_or_default();
        let site = self.python_frames.remove(source);
        if is_python_exception_line(t.lines().next().unwrap_or("")) {
            self.python_site = site;
            // The report's frames belong to the crash this line names.
            for ((slot, created), frames) in pending {
                if self.created.get(slot) == Some(&created) {
                    let orphans = &mut self.tracking[slot].orphan_frames;
                    *orphans = orphans.saturating_sub(frames);
                }
            }
            PythonPart::Exception
        } else {
            PythonPart::None
        }
    }

    /// Remembers the crash site a `File "…", line N, in f` frame of the Python report open on
    /// `source` names: the last one read is the innermost, where the exception was raised.
    fn note_python_frame(&mut self, source: &str, line: &str) {
        if let Some(site) = python_crash_site(line) {
            match self.python_frames.get_mut(source) {
                Some(s) => *s = site.into(),
                None => {
                    self.python_frames.insert(source.into(), site.into());
                }
            }
        }
    }

    /// Counts `record` in slot `i`; unless it is a stack frame, it is now its source's last record.
    fn update(&mut self, i: usize, record: &LogRecord, frame: bool) {
        if std::mem::take(&mut self.python_exception) {
            self.digest.signatures[i].has_traceback = true;
        }
        match std::mem::take(&mut self.frame_kind) {
            FrameKind::Claimed => {}
            FrameKind::Orphan => self.tracking[i].orphan_frames += 1,
            FrameKind::Pending => {
                self.tracking[i].orphan_frames += 1;
                let source = record.source.as_deref().unwrap_or("");
                if !self.python_pending.contains_key(source) {
                    self.python_pending.insert(source.into(), FxMap::default());
                }
                if let Some(pending) = self.python_pending.get_mut(source) {
                    *pending.entry((i, self.created[i])).or_default() += 1;
                }
            }
        }
        update_signature(
            &mut self.digest.signatures[i],
            &mut self.tracking[i],
            record,
            self.repeat_threshold,
            &self.redactor,
        );
        if !frame {
            self.last_by_source
                .insert(self.keys[i].1, (i, self.created[i], record.level));
        }
    }

    /// A stack frame of `source` was logged as a record of its own: the source's last record
    /// before it (when still in the digest, and at the frame's level or above) opened a crash
    /// report, and its signature is flagged as a traceback, as it would be had the report been one
    /// record. Whether there was such a record (the frame belongs to its crash).
    fn flag_crash_before(&mut self, source: u32, level: Level) -> bool {
        if let Some(&(slot, created, before)) = self.last_by_source.get(&source) {
            if self.created.get(slot) == Some(&created) && before >= level {
                self.digest.signatures[slot].has_traceback = true;
                return true;
            }
        }
        false
    }

    /// Signatures so far (before the merges and ignore rules applied by [`finish`](Self::finish)),
    /// not counting the overflow signatures.
    pub fn signature_count(&self) -> usize {
        self.digest.signatures.len()
    }

    /// Signatures evicted so far to make room for ones worth more (see [`DigestBuilder`]).
    pub fn evicted_signatures(&self) -> u64 {
        self.evicted
    }

    /// The finished digest.
    pub fn finish(self) -> Digest {
        self.finish_with_templater().0
    }

    /// The finished digest and the templater, whose state the caller may save
    /// ([`Templater::to_state_json`]) for the next scan.
    ///
    /// Finishing gives every signature its cluster's final template (templates generalise while
    /// records stream in), merges signatures whose final keys coincide, then applies the ignore
    /// rules (by code, by source, by template regex), counting what they drop.
    pub fn finish_with_templater(self) -> (Digest, Templater) {
        let DigestBuilder {
            templater,
            repeat_threshold,
            ignore,
            clusters,
            masked,
            sites,
            tracking,
            created,
            digest,
            overflow,
            evicted,
            ..
        } = self;
        let Digest {
            signatures,
            records,
            ..
        } = digest;
        let mut out = Digest {
            records,
            ..Digest::default()
        };
        let mut by_key: HashMap<String, usize> = HashMap::new();
        let mut cids: Vec<FxSet<String>> = Vec::new();
        // Parallel to `out.signatures`: the cluster's template when the signature's gives words
        // back (ignore rules written against the grouped template still apply).
        let mut grouped: Vec<Option<String>> = Vec::new();
        // Parallel to `out.signatures`: frame records no crash of this scan claims.
        let mut orphans: Vec<u64> = Vec::new();
        let sets = tracking
            .into_iter()
            .map(|t| (t.correlation, t.orphan_frames));
        // Slots are reused after evictions: first-seen order is creation order.
        let mut slots: Vec<_> = created
            .into_iter()
            .zip(
                signatures
                    .into_iter()
                    .zip(clusters)
                    .zip(masked.into_iter().zip(sites))
                    .zip(sets),
            )
            .collect();
        slots.sort_unstable_by_key(|(created, _)| *created);
        // The words the cluster generalised by count stay in the signature's template, judged
        // over all of them (a host numbered by one digit beside its longer siblings does not):
        // see `Templater::templates_with_words`.
        let with_words = templater.templates_with_words(
            slots
                .iter()
                .map(|(_, (((_, cluster), (masked, _)), _))| (*cluster, &**masked)),
        );
        for ((_, (((mut sig, cluster), (_, site)), (set, orphan_frames))), with_words) in
            slots.into_iter().zip(with_words)
        {
            let mut generalised = None;
            if let Some((text, fp)) = templater.cluster_text(cluster) {
                let (text, fp) = match with_words {
                    Some(t) => {
                        generalised = Some(text.to_string());
                        (Cow::Owned(t.text), Cow::Owned(t.fingerprint))
                    }
                    None => (Cow::Borrowed(text), Cow::Borrowed(fp)),
                };
                let (text, fp) = match &site {
                    Some(site) => {
                        let (t, f) = with_site(&text, site);
                        (Cow::Owned(t), Cow::Owned(f))
                    }
                    None => (text, fp),
                };
                if text != sig.template {
                    sig.template = text.into_owned();
                    sig.template_fingerprint = fp.into_owned();
                }
            }
            let key = signature_key(
                sig.level,
                sig.source.as_deref(),
                &sig.template,
                &sig.error_codes,
            );
            match by_key.get(&key) {
                Some(&i) => {
                    merge_signature(
                        &mut out.signatures[i],
                        &mut cids[i],
                        sig,
                        set,
                        repeat_threshold,
                    );
                    orphans[i] += orphan_frames;
                }
                None => {
                    sig.id = sha256_hex(key.as_bytes())[..16].to_string();
                    by_key.insert(key, out.signatures.len());
                    out.signatures.push(sig);
                    cids.push(set);
                    grouped.push(generalised);
                    orphans.push(orphan_frames);
                }
            }
        }
        let mut kept = Vec::with_capacity(out.signatures.len());
        for ((sig, generalised), orphan_frames) in
            out.signatures.into_iter().zip(grouped).zip(orphans)
        {
            if let Some(rule) = ignore
                .matching_rule_in_any_form(
                    sig.source.as_deref(),
                    &sig.template,
                    generalised.as_deref(),
                    &sig.error_codes,
                )
                .or_else(|| {
                    // Frames that all belong to a crash read in this scan: see STACK_FRAME_RULE.
                    (orphan_frames == 0 && crate::template::is_stack_frame_line(&sig.template))
                        .then(|| STACK_FRAME_RULE.to_string())
                })
            {
                out.ignored_signatures += 1;
                out.ignored_records += sig.count;
                if out.ignored.len() < crate::model::MAX_REPORT_SIGNATURES {
                    out.ignored.push(IgnoredSignature {
                        signature: sig,
                        rule,
                    });
                }
            } else {
                kept.push(sig);
            }
        }
        out.signatures = kept;
        for bucket in overflow.into_iter().rev().flatten() {
            let (sig, _) = *bucket;
            tracing::debug!(
                level = %sig.level,
                records = sig.count,
                codes = sig.error_codes.len(),
                evicted,
                "digest signature cap reached; records counted in an overflow signature"
            );
            out.signatures.push(sig);
        }
        (out, templater)
    }
}

impl Signature {
    /// The id this signature would have at `level`'s class, its source, template and codes kept:
    /// how the issue filed for a message logged as a warning is recognised when the same message
    /// comes back as an error (an escalation).
    pub fn id_at(&self, level: Level) -> String {
        let key = signature_key(
            level,
            self.source.as_deref(),
            &self.template,
            &self.error_codes,
        );
        sha256_hex(key.as_bytes())[..16].to_string()
    }
}

/// The grouping key of a signature: level class, source, template and codes, separated by U+001F.
/// Its SHA-256 (first 16 hex digits) is the signature id.
fn signature_key(
    level: Level,
    source: Option<&str>,
    template: &str,
    codes: &[ErrorCode],
) -> String {
    let mut key = String::with_capacity(template.len() + 64);
    key.push_str(level.class());
    key.push('\u{1f}');
    key.push_str(source.unwrap_or(""));
    key.push('\u{1f}');
    key.push_str(template);
    for c in codes {
        key.push('\u{1f}');
        key.push_str(c.as_str());
    }
    key
}

fn new_signature(
    record: &LogRecord,
    template: String,
    template_fingerprint: String,
    codes: Vec<ErrorCode>,
) -> Signature {
    Signature {
        id: String::new(),
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
        nodes: Vec::new(),
    }
}

/// `sig` (the first signature an overflow bucket absorbs, or a fresh one) turned into the overflow
/// signature of its level: its counts, samples and codes kept, its identity dropped.
fn overflow_signature(sig: Signature) -> Signature {
    Signature {
        id: overflow_signature_id(sig.level),
        source: None,
        template: OVERFLOW_TEMPLATE.to_string(),
        template_fingerprint: sha256_hex(OVERFLOW_TEMPLATE.as_bytes()),
        ..sig
    }
}

/// Lists `codes` on an overflow signature, up to [`MAX_OVERFLOW_CODES`].
fn add_overflow_codes(sig: &mut Signature, codes: &[ErrorCode]) {
    for c in codes {
        if sig.error_codes.len() >= MAX_OVERFLOW_CODES {
            return;
        }
        if !sig.error_codes.contains(c) {
            sig.error_codes.push(c.clone());
        }
    }
}

fn rank_of(sig: &Signature) -> u8 {
    keep_rank(sig.level, !sig.error_codes.is_empty(), sig.has_traceback)
}

fn update_signature(
    sig: &mut Signature,
    tracking: &mut Tracking,
    record: &LogRecord,
    repeat_threshold: u64,
    redactor: &Redactor,
) {
    sig.count += 1;
    sig.level = sig.level.max(record.level);
    if record.id < sig.first_id {
        sig.first_id = record.id;
        sig.first_timestamp.clone_from(&record.timestamp);
    }
    if record.id >= sig.last_id {
        sig.last_id = record.id;
        sig.last_timestamp.clone_from(&record.timestamp);
    }
    if sig.sample_ids.len() < MAX_SAMPLE_IDS {
        sig.sample_ids.push(record.id);
        // Same template, same shape: the first few records tell whether it is a traceback.
        if !sig.has_traceback && looks_like_traceback(&record.message) {
            sig.has_traceback = true;
        }
    }
    // Samples come from the first records of a signature: bounded work per record.
    if sig.sample_messages.len() < MAX_SAMPLE_MESSAGES && sig.count <= SAMPLE_WINDOW {
        if !tracking.sampled.contains(&record.message) {
            let sample = redacted_sample(&record.message, redactor);
            if !sig.sample_messages.contains(&sample) {
                sig.sample_messages.push(sample);
            }
            if tracking.sampled.len() < MAX_SAMPLE_MESSAGES
                && record.message.len() <= MAX_REMEMBERED_MESSAGE_BYTES
            {
                tracking.sampled.push(record.message.clone());
            }
        }
    } else if !tracking.sampled.is_empty() {
        tracking.sampled = Vec::new();
    }
    if sig.count >= repeat_threshold {
        sig.repeated = true;
    }
    if let Some(node) = &record.node_id {
        if sig.nodes.len() < MAX_NODES && !sig.nodes.contains(node) {
            sig.nodes.push(node.clone());
        }
    }
    if let Some(cid) = &record.correlation_id {
        let cids = &mut tracking.correlation;
        if cids.len() < MAX_DISTINCT_CORRELATION_IDS && !cids.contains(cid) {
            cids.insert(cid.clone());
        }
        sig.distinct_correlation_ids = cids.len() as u64;
    }
}

fn merge_signature(
    into: &mut Signature,
    into_cids: &mut FxSet<String>,
    from: Signature,
    from_cids: FxSet<String>,
    repeat_threshold: u64,
) {
    into.count += from.count;
    into.level = into.level.max(from.level);
    if from.first_id < into.first_id {
        into.first_id = from.first_id;
        into.first_timestamp = from.first_timestamp;
    }
    if from.last_id > into.last_id {
        into.last_id = from.last_id;
        into.last_timestamp = from.last_timestamp;
    }
    for id in from.sample_ids {
        if into.sample_ids.len() < MAX_SAMPLE_IDS && !into.sample_ids.contains(&id) {
            into.sample_ids.push(id);
        }
    }
    into.sample_ids.sort_unstable();
    for m in from.sample_messages {
        if into.sample_messages.len() < MAX_SAMPLE_MESSAGES && !into.sample_messages.contains(&m) {
            into.sample_messages.push(m);
        }
    }
    for c in from_cids {
        if into_cids.len() >= MAX_DISTINCT_CORRELATION_IDS {
            break;
        }
        into_cids.insert(c);
    }
    into.distinct_correlation_ids = into_cids.len() as u64;
    into.has_traceback |= from.has_traceback;
    for n in from.nodes {
        if into.nodes.len() < MAX_NODES && !into.nodes.contains(&n) {
            into.nodes.push(n);
        }
    }
    into.repeated = into.count >= repeat_threshold;
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

    /// Splits the digest into the signatures [`render`](Self::render) shows within `max_bytes`
    /// (most severe, then most frequent first, as it orders them) and the rest, so every signature
    /// can be shown in some analysis round: the first digest renders them all with nothing
    /// omitted; the rest (in the order they were held) did not fit, and may be shown by a later
    /// round. A signature too large to be shown in `max_bytes` at all is in the rest whatever else
    /// fits, so the first digest may be empty.
    pub fn split_to_fit(self, max_bytes: usize) -> (Digest, Vec<Signature>) {
        let Digest {
            signatures,
            records,
            ignored_signatures,
            ignored_records,
            ignored,
        } = self;
        let mut order: Vec<usize> = (0..signatures.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&signatures[a], &signatures[b]);
            b.level
                .cmp(&a.level)
                .then(b.count.cmp(&a.count))
                .then(a.first_id.cmp(&b.first_id))
        });
        // The header render writes (a shorter one for fewer signatures), then the blocks that fit.
        let mut used = format!("{records} records in {} signatures\n", signatures.len()).len();
        let mut fits = vec![false; signatures.len()];
        for i in order {
            let block = render_signature(&signatures[i]).len();
            if used + block + RENDER_RESERVE <= max_bytes {
                used += block;
                fits[i] = true;
            }
        }
        let mut shown = Vec::new();
        let mut rest = Vec::new();
        for (sig, fit) in signatures.into_iter().zip(fits) {
            if fit {
                shown.push(sig);
            } else {
                rest.push(sig);
            }
        }
        (
            Digest {
                signatures: shown,
                records,
                ignored_signatures,
                ignored_records,
                ignored,
            },
            rest,
        )
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
        let reserve = RENDER_RESERVE;
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

/// Bytes [`Digest::render`] keeps free for its last line (what was omitted).
const RENDER_RESERVE: usize = 120;

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
    if !sig.nodes.is_empty() {
        let _ = writeln!(s, "  nodes: {}", sig.nodes.join(", "));
    }
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
    cap_sample(strip_controls(message))
}

/// A sample fit to keep: control characters and bidi overrides stripped (they could split a
/// secret so that no detector sees it), *then* redacted, *then* capped — a cap applied first could
/// cut through a secret and leave a head no detector recognises.
pub fn redacted_sample(message: &str, redactor: &Redactor) -> String {
    let stripped = strip_controls(message);
    match redactor.redact(&stripped) {
        std::borrow::Cow::Owned(r) => cap_sample(r),
        std::borrow::Cow::Borrowed(_) => cap_sample(stripped),
    }
}

fn strip_controls(message: &str) -> String {
    crate::text::strip_controls(message)
}

fn cap_sample(cleaned: String) -> String {
    if cleaned.chars().count() > MAX_SAMPLE_CHARS {
        format!("{}…", truncate_chars(&cleaned, MAX_SAMPLE_CHARS))
    } else {
        cleaned
    }
}

/// Whether a record is one line of a crash report logged one line per record: a stack frame or
/// continuation line ([`crate::template::is_stack_frame_line`]) or a `Caused by:` line.
fn is_frame_record(message: &str) -> bool {
    crate::template::is_stack_frame_line(message) || message.trim_start().starts_with("Caused by: ")
}

/// Whether a message looks like a crash report: a Python traceback, a Rust panic or backtrace, a
/// Java (`Exception in thread "..."`, `\tat` frames, `Caused by:`, `... N more`), .NET (`   at`
/// frames, `--- End of inner exception stack trace ---`), Node (`    at` frames) or Go
/// (`goroutine N [running]:`) stack trace.
///
/// Cheap, as it runs per record: the message is searched for the four phrases that can stand on
/// a crash report's first line; the lines of a longer one are tested by their first bytes.
pub fn looks_like_traceback(message: &str) -> bool {
    if message.contains("Traceback (most recent call last)")
        || message.contains("panicked at")
        || message.contains("Exception in thread \"")
        || message.contains("stack backtrace:")
    {
        return true;
    }
    let mut lines = message.split('\n');
    lines.next();
    lines.any(is_stack_trace_line)
}

/// Whether one line (after the first) of a message is a stack frame or a stack-trace marker.
fn is_stack_trace_line(line: &str) -> bool {
    let indented = line.starts_with([' ', '\t']);
    let line = line.trim_start_matches([' ', '\t']);
    match line.as_bytes().first() {
        // `at com.acme.Pool.get(Pool.java:42)`, `at f (/srv/a.js:1:2)`, `at Acme.Orders.Load()`:
        // indented (a line that starts with the word "at" is prose), and naming code.
        Some(b'a') => indented && line.strip_prefix("at ").is_some_and(names_a_frame),
        Some(b'C') => line.starts_with("Caused by: "),
        // `... 12 more` (Java's elided frames).
        Some(b'.') => line
            .trim_end()
            .strip_prefix("... ")
            .and_then(|rest| rest.strip_suffix(" more"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        Some(b'-') => {
            line.starts_with("--- End of inner exception stack trace ---")
                || line.starts_with("--- End of stack trace from previous location")
        }
        // Go: `goroutine 1 [running]:`.
        Some(b'g') => line.strip_prefix("goroutine ").is_some_and(|rest| {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            digits > 0 && rest[digits..].starts_with(" [")
        }),
        _ => false,
    }
}

/// Whether the text after `at ` names a frame rather than continuing prose (`at least once`): a
/// parenthesis on the line, or a first word holding `.`, `/`, `\` or `<` (`at <anonymous>`).
fn names_a_frame(rest: &str) -> bool {
    let word = rest.split(' ').next().unwrap_or_default();
    rest.contains('(') || word.contains(['.', '/', '\\', '<'])
}

#[cfg(test)]
mod tests {

    /// A word of letters only, distinct for each `k` (a word with digits is masked as a value, and
    /// a run of those is one list).
    fn letters_word(k: i64) -> String {
        let letter = |n: i64| char::from(b'a' + n.rem_euclid(26) as u8);
        format!("w{}{}", letter(k / 26), letter(k))
    }
    use super::*;
    use std::collections::BTreeMap;

    fn rec(id: i64, level: Level, msg: &str) -> LogRecord {
        LogRecord::new(id, level, msg).with_source("svc")
    }

    #[test]
    fn a_signature_names_the_nodes_that_wrote_it_without_splitting_by_node() {
        let recs = vec![
            rec(1, Level::Error, "clone of /a failed after 3 tries").with_node_id("node-a"),
            rec(2, Level::Error, "clone of /b failed after 4 tries").with_node_id("node-b"),
            rec(3, Level::Error, "clone of /c failed after 5 tries").with_node_id("node-a"),
        ];
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        assert_eq!(d.signatures.len(), 1, "the node is evidence, not identity");
        assert_eq!(d.signatures[0].nodes, ["node-a", "node-b"]);
        assert!(d.render(100_000).contains("nodes: node-a, node-b"));
    }

    /// The digest's signatures and its ignored ones (with their rules) by template.
    fn kept_and_ignored(d: &Digest) -> (Vec<&str>, Vec<(&str, &str)>) {
        (
            d.signatures.iter().map(|s| s.template.as_str()).collect(),
            d.ignored
                .iter()
                .map(|i| (i.signature.template.as_str(), i.rule.as_str()))
                .collect(),
        )
    }

    #[test]
    fn frames_of_a_crash_read_in_the_scan_are_judged_with_it_not_shown_as_problems() {
        // A Java crash shipped one line per record: the frames belong to the exception line
        // before them, which is flagged as a traceback; the frame signatures (which every
        // crash's frames share, and which no issue can ever explain) are counted as ignored.
        let recs = vec![
            rec(
                1,
                Level::Error,
                "java.lang.IllegalStateException: ledger closed",
            ),
            rec(2, Level::Error, "\tat com.acme.Ledger.post(Ledger.java:41)"),
            rec(3, Level::Error, "\tat com.acme.Api.handle(Api.java:12)"),
            rec(4, Level::Error, "\t... 7 more"),
        ];
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        let (kept, ignored) = kept_and_ignored(&d);
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(
            kept[0].starts_with("java.lang.IllegalStateException"),
            "{kept:?}"
        );
        assert!(d.signatures[0].has_traceback);
        assert_eq!(ignored.len(), 2, "{ignored:?}");
        assert!(ignored.iter().all(|(_, rule)| *rule == STACK_FRAME_RULE));
        assert_eq!((d.ignored_signatures, d.ignored_records), (2, 3));
        assert_eq!(d.records, 4, "every record is counted");
    }

    #[test]
    fn frames_no_record_of_the_scan_claims_are_kept_as_they_may_be_all_there_is() {
        // The exception line was read by an earlier scan (or was logged below min_level, or at a
        // lower level than its frames, or by another source): the frames are all this scan holds
        // of the crash, so they are kept and shown.
        let recs = vec![
            rec(1, Level::Error, "\tat com.acme.Ledger.post(Ledger.java:41)"),
            rec(2, Level::Warning, "ledger slow"),
            rec(3, Level::Error, "\tat com.acme.Api.handle(Api.java:12)"),
            rec(4, Level::Error, "worker crashed").with_source("other"),
            rec(5, Level::Error, "\tat com.acme.Api.handle(Api.java:13)"),
        ];
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        let (kept, ignored) = kept_and_ignored(&d);
        assert!(ignored.is_empty(), "{ignored:?}");
        assert_eq!(kept.len(), 3, "{kept:?}");
        // One claimed frame does not hide a signature that also holds an orphan.
        let recs = vec![
            rec(1, Level::Error, "\tat com.acme.Ledger.post(Ledger.java:41)"),
            rec(
                2,
                Level::Error,
                "java.lang.IllegalStateException: ledger closed",
            ),
            rec(3, Level::Error, "\tat com.acme.Ledger.post(Ledger.java:42)"),
        ];
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        let (kept, ignored) = kept_and_ignored(&d);
        assert!(ignored.is_empty(), "{ignored:?}");
        assert_eq!(kept.len(), 2, "{kept:?}");
    }

    #[test]
    fn a_python_reports_frames_are_judged_with_its_exception_line_only_when_it_comes() {
        let report = [
            "Traceback (most recent call last):",
            "  File \"/srv/app/jobs.py\", line 88, in run",
            "    total = compute(rows)",
            "  File \"/srv/app/calc.py\", line 12, in compute",
            "    return sum(r.amount for r in rows) / len(rows)",
        ];
        let mut recs: Vec<LogRecord> = report
            .iter()
            .zip(1..)
            .map(|(m, id)| rec(id, Level::Error, m))
            .collect();
        recs.push(rec(6, Level::Error, "ZeroDivisionError: division by zero"));
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        let (kept, ignored) = kept_and_ignored(&d);
        let frames: Vec<&str> = ignored.iter().map(|(t, _)| *t).collect();
        assert!(
            frames.iter().any(|t| t.starts_with("Traceback"))
                && frames.iter().any(|t| t.starts_with("File ")),
            "{ignored:?}"
        );
        assert!(
            kept.iter().any(|t| t.starts_with("ZeroDivisionError")),
            "{kept:?}"
        );
        assert!(kept
            .iter()
            .all(|t| !crate::template::is_stack_frame_line(t)));
        // The scan ends inside the report: its exception line is not read, so its frames are kept.
        recs.pop();
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        let (kept, ignored) = kept_and_ignored(&d);
        assert!(ignored.is_empty(), "{ignored:?}");
        assert!(kept.iter().any(|t| t.starts_with("Traceback")), "{kept:?}");
    }

    /// A Python crash (header, innermost frame, source line, exception line) of `source`,
    /// as records from `id`, or as one record (the whole report in one message).
    fn python_crash(
        id: i64,
        file: &str,
        func: &str,
        line: u32,
        key: &str,
        one: bool,
    ) -> Vec<LogRecord> {
        let lines = [
            "Traceback (most recent call last):".to_string(),
            "  File \"/srv/app/main.py\", line 7, in handle".to_string(),
            format!("  File \"/srv/app/{file}\", line {line}, in {func}"),
            format!("    value = {func}_payload[name]"),
            format!("KeyError: '{key}'"),
        ];
        if one {
            vec![rec(id, Level::Error, &lines.join("\n"))]
        } else {
            lines
                .iter()
                .zip(id..)
                .map(|(m, id)| rec(id, Level::Error, m))
                .collect()
        }
    }

    #[test]
    fn python_crashes_of_one_exception_class_in_different_code_are_different_signatures() {
        // review4 F16: `KeyError: <STR>` named both crashes; the innermost frame's file and
        // function tell them apart, its line number and directory do not.
        for one in [false, true] {
            let mut recs = python_crash(1, "billing.py", "charge", 88, "user_id", one);
            recs.extend(python_crash(10, "billing.py", "charge", 91, "account", one));
            recs.extend(python_crash(20, "auth.py", "login", 12, "tenant", one));
            let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
            let (kept, _) = kept_and_ignored(&d);
            let crashes: Vec<&&str> = kept.iter().filter(|t| t.contains("KeyError")).collect();
            assert_eq!(crashes.len(), 2, "one message per crash: {one}: {kept:?}");
            assert!(
                crashes
                    .iter()
                    .any(|t| t.contains("billing.py") || t.contains("charge"))
                    && crashes
                        .iter()
                        .any(|t| t.contains("auth.py") || t.contains("login")),
                "{kept:?}"
            );
            let billing = d
                .signatures
                .iter()
                .find(|s| s.template.contains("KeyError") && s.template.contains("charge"))
                .unwrap();
            assert_eq!(billing.count, 2, "{one}: {kept:?}");
        }
        // Per record, the exception line's template says where it crashed.
        let d = Digest::build(
            &python_crash(1, "billing.py", "charge", 88, "user_id", false),
            &SelfMonitoringConfig::default(),
        )
        .unwrap();
        let (kept, _) = kept_and_ignored(&d);
        assert!(
            kept.contains(&"KeyError: <STR> (in billing.py charge)"),
            "{kept:?}"
        );
        assert!(d
            .signatures
            .iter()
            .any(|s| s.template.starts_with("KeyError") && s.has_traceback));
        assert_eq!(
            python_crash_site("File \"C:\\app\\jobs.py\", line 3, in <module>").as_deref(),
            Some("(in jobs.py <module>)")
        );
        assert_eq!(python_crash_site("File \"/a b/x.py\", line 3"), None);
        // In one record, the frames' files are masked as paths: the site names them.
        let d = Digest::build(
            &python_crash(1, "billing.py", "charge", 88, "user_id", true),
            &SelfMonitoringConfig::default(),
        )
        .unwrap();
        assert!(
            d.signatures[0]
                .template
                .ends_with("KeyError: <STR> (in billing.py charge)"),
            "{}",
            d.signatures[0].template
        );
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
    fn repeated_messages_give_the_samples_each_record_would_give_afresh() {
        let config = SelfMonitoringConfig::default();
        // Longer than any remembered message, so taken afresh each time.
        let long = format!("job {} failed for erin@example.com", "1".repeat(3000));
        let messages: Vec<&str> = [
            vec!["job 7 failed for alice@example.com"; 10],
            vec!["job 7 failed for bob@example.com"; 5],
            vec!["job 7 failed for alice@example.com"; 3],
            vec![long.as_str(); 3],
            vec!["job 8 failed for carol@example.com"; 2],
            vec!["job 10 failed for dave@example.com"],
        ]
        .concat();
        let recs: Vec<LogRecord> = messages
            .iter()
            .zip(1..)
            .map(|(m, id)| rec(id, Level::Error, m))
            .collect();
        // What sampling gives when every record in the window is stripped and redacted anew.
        let redactor = Redactor::with_config(&config.redaction).unwrap();
        let mut expected: Vec<String> = Vec::new();
        for m in messages.iter().take(SAMPLE_WINDOW as usize) {
            let sample = redacted_sample(m, &redactor);
            if expected.len() < MAX_SAMPLE_MESSAGES && !expected.contains(&sample) {
                expected.push(sample);
            }
        }
        let d = Digest::build(&recs, &config).unwrap();
        assert_eq!(d.signatures.len(), 1, "{:#?}", d.signatures);
        assert_eq!(d.signatures[0].sample_messages, expected);
        assert!(
            expected.iter().any(|s| s.ends_with('…')),
            "the long message is sampled"
        );
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

    /// A deferred finding whose evidence (and templates) are `evidence`.
    fn backlog_entry(
        evidence: Vec<crate::redact::RedactedSignature>,
    ) -> crate::model::BacklogEntry {
        crate::model::BacklogEntry {
            entry_id: "e".into(),
            fingerprint: "f".into(),
            severity: Level::Error,
            finding: Redactor::shared().redacted_finding(crate::model::Finding::new(
                crate::model::Classification::ServerBug,
                "t",
                "s",
            )),
            templates: evidence
                .iter()
                .map(|e| e.as_signature().template.clone())
                .collect(),
            evidence,
            occurrences: 1,
            deferred_by: crate::model::ScanId::new(),
            deferred_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_backlog_entry_is_ignored_only_when_a_rule_matches_each_of_its_signatures() {
        let mut c = SelfMonitoringConfig::default();
        c.ignore.codes.push("GIT-SYNC-001".into());
        let d = Digest::build(
            &[
                rec(1, Level::Error, "[GIT-SYNC-001] x"),
                rec(2, Level::Error, "unrelated disk failure"),
            ],
            &SelfMonitoringConfig::default(),
        )
        .unwrap();
        let shown: Vec<_> = d
            .signatures
            .iter()
            .map(|s| Redactor::shared().redacted_signature(s.clone()))
            .collect();
        let ignore = CompiledIgnore::new(&c.ignore).unwrap();
        let coded = shown
            .iter()
            .find(|s| !s.as_signature().error_codes.is_empty())
            .unwrap();
        assert_eq!(
            ignore
                .backlog_rule(&backlog_entry(vec![coded.clone()]))
                .as_deref(),
            Some("ignore.codes: GIT-SYNC-001")
        );
        assert_eq!(
            ignore.backlog_rule(&backlog_entry(shown.clone())),
            None,
            "a finding that also covers a signature no rule drops is kept"
        );
        assert_eq!(ignore.backlog_rule(&backlog_entry(vec![])), None);
    }

    /// Review4 F15: a template rule written against the generalised form (`heartbeat from <*>`)
    /// drops the digest's signature whose template kept the name literal (the templater keeps
    /// the first two), but did not close the backlog entry deferred from it: the backlog check
    /// tried the template and the kept template only.
    #[test]
    fn a_rule_against_the_generalised_form_closes_a_backlog_entry_whose_template_kept_the_name() {
        let recs = [rec(1, Level::Error, "heartbeat from node-a missed")];
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        let sig = Redactor::shared().redacted_signature(d.signatures[0].clone());
        assert_eq!(sig.as_signature().template, "heartbeat from node-a missed");
        let mut c = SelfMonitoringConfig::default();
        c.ignore
            .templates
            .push(r"^heartbeat from <\*> missed$".into());
        let dropped = Digest::build(&recs, &c).unwrap();
        assert_eq!(
            (dropped.signatures.len(), dropped.ignored_signatures),
            (0, 1),
            "the digest drops the signature"
        );
        let entry = backlog_entry(vec![sig]);
        let ignore = CompiledIgnore::new(&c.ignore).unwrap();
        assert_eq!(
            ignore.backlog_rule(&entry).as_deref(),
            Some(r"ignore.templates[0]: ^heartbeat from <\*> missed$"),
            "the backlog entry is closed by the rule that drops its signature"
        );
        let no_evidence = crate::model::BacklogEntry {
            evidence: vec![],
            ..entry
        };
        assert!(ignore.backlog_rule(&no_evidence).is_some());
    }

    /// Review4 F10 (rest): one failure reported by numbered hosts is one signature, the hosts
    /// numbered by one digit (`bglio7`) included once a sibling numbered by more digits
    /// (`bglio46`) is in the same digest; a constant numbered by one digit (`sqlite3`) keeps its
    /// own signature.
    #[test]
    fn hosts_numbered_by_one_digit_join_their_longer_siblings_signature() {
        let hosts = [
            "bglio46", "bglio1", "bglio2", "bglio75", "bglio3", "bglio5", "bglio7", "bglio559",
        ];
        let recs: Vec<LogRecord> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                rec(
                    i as i64 + 1,
                    Level::Error,
                    &format!("Lustre mount FAILED : {h} : point /p/gb1"),
                )
            })
            .collect();
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        let got: Vec<(&str, u64)> = d
            .signatures
            .iter()
            .map(|s| (s.template.as_str(), s.count))
            .collect();
        assert_eq!(
            got,
            [("Lustre mount FAILED : <*> : point <PATH>", 8)],
            "one signature for the one failure"
        );
        let names = ["sqlite3", "ipv4", "en0", "http2", "redis"];
        let recs: Vec<LogRecord> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                rec(
                    i as i64 + 1,
                    Level::Error,
                    &format!("backend {n} refused the request"),
                )
            })
            .collect();
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        assert_eq!(d.signatures.len(), names.len(), "{:?}", d.signatures);
    }

    /// A word the templater generalised only because it saw enough distinct ones (review3 H8)
    /// stays in each signature's template: a ledger outage is not a database outage, and dedup
    /// can only tell them apart if the signatures do. The templater still groups them.
    #[test]
    fn words_generalised_by_count_keep_a_signature_each_under_their_own_template() {
        let words = [
            "database", "cache", "queue", "search", "mailer", "ledger", "database",
        ];
        let recs: Vec<_> = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                rec(
                    i as i64 + 1,
                    Level::Critical,
                    &format!("failed to connect to {w} server after {i} retries"),
                )
            })
            .collect();
        let mut builder = DigestBuilder::new(&SelfMonitoringConfig::default()).unwrap();
        for r in &recs {
            builder.push(r);
        }
        let (d, templater) = builder.finish_with_templater();
        let got: Vec<(&str, u64)> = d
            .signatures
            .iter()
            .map(|s| (s.template.as_str(), s.count))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "failed to connect to database server after <NUM> retries",
                    2
                ),
                ("failed to connect to cache server after <NUM> retries", 1),
                ("failed to connect to queue server after <NUM> retries", 1),
                ("failed to connect to search server after <NUM> retries", 1),
                ("failed to connect to mailer server after <NUM> retries", 1),
                ("failed to connect to ledger server after <NUM> retries", 1),
            ]
        );
        for s in &d.signatures {
            assert_eq!(s.template_fingerprint, sha256_hex(s.template.as_bytes()));
        }
        assert_eq!(
            templater
                .template("failed to connect to auth server after 1 retries")
                .text,
            "failed to connect to <*> server after <NUM> retries",
            "grouping is unchanged"
        );
        // An ignore rule written against the grouped template still applies.
        let mut config = SelfMonitoringConfig::default();
        config.ignore.templates = vec![r"^failed to connect to <\*> server".into()];
        let d = Digest::build(&recs, &config).unwrap();
        assert_eq!((d.signatures.len(), d.ignored_records), (0, 7));
    }

    #[test]
    fn rendering_respects_the_byte_budget_and_says_what_was_cut() {
        let recs: Vec<_> = (0..500)
            .map(|i| {
                let words: Vec<String> = (0..(i % 60)).map(letters_word).collect();
                rec(
                    i,
                    Level::Error,
                    &format!("distinct message {}", words.join(" ")),
                )
            })
            .collect();
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        assert_eq!(d.signatures.len(), 60);
        let text = d.render(2048);
        assert!(text.len() <= 2048);
        assert!(text.contains("omitted"), "{text}");
    }

    /// A name after a word that introduces it (`user`) is a value: one signature, under the
    /// final template.
    #[test]
    fn messages_differing_in_introduced_names_share_a_signature_with_the_final_template() {
        let users = ["alice", "bob", "carol", "dave", "erin", "frank"];
        let recs: Vec<_> = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                rec(
                    i as i64 + 1,
                    Level::Warning,
                    &format!("login failed for user {u} from 10.0.0.{i}"),
                )
            })
            .collect();
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        assert_eq!(d.signatures.len(), 1, "{:#?}", d.signatures);
        let s = &d.signatures[0];
        assert_eq!(s.template, "login failed for user <*> from <IP>");
        assert_eq!(s.template_fingerprint, sha256_hex(s.template.as_bytes()));
        assert_eq!((s.count, s.first_id, s.last_id), (6, 1, 6));
        assert!(s.repeated);
    }

    #[test]
    fn signature_ids_are_stable_for_a_key() {
        let recs = vec![rec(1, Level::Error, "[GIT-SYNC-001] clone of /a failed")];
        let d = Digest::build(&recs, &SelfMonitoringConfig::default()).unwrap();
        let key = "error\u{1f}svc\u{1f}[GIT-SYNC-001] clone of <PATH> failed\u{1f}GIT-SYNC-001";
        assert_eq!(d.signatures[0].id, sha256_hex(key.as_bytes())[..16]);
    }

    #[test]
    fn a_learned_templater_carries_templates_across_scans() {
        let config = SelfMonitoringConfig::default();
        let mut b = DigestBuilder::new(&config).unwrap();
        for (i, u) in ["alice", "bob", "carol", "dave", "erin"].iter().enumerate() {
            b.push(&rec(
                i as i64,
                Level::Error,
                &format!("sync of repo {u} failed"),
            ));
        }
        let (first, templater) = b.finish_with_templater();
        let state = templater.to_state_json();
        let restored = Templater::from_state_json(&state).unwrap();
        let mut b = DigestBuilder::with_templater(&config, restored).unwrap();
        b.push(&rec(10, Level::Error, "sync of repo zed failed"));
        let second = b.finish();
        assert_eq!(second.signatures[0].template, first.signatures[0].template);
        assert_eq!(second.signatures[0].id, first.signatures[0].id);
    }

    #[test]
    fn a_huge_message_is_digested_as_its_first_64_kib_and_marked() {
        let config = SelfMonitoringConfig::default();
        let mut b = DigestBuilder::new(&config).unwrap();
        // One giant token (the templater caps tokens, not their length) of multi-byte characters
        // across the cut: it must land on a character boundary.
        let huge = format!("disk failure {}", "é".repeat(1_000_000));
        assert!(huge.len() > 16 * MAX_MESSAGE_BYTES);
        b.push(&rec(1, Level::Error, &huge));
        b.push(&rec(2, Level::Error, &huge));
        let d = b.finish();
        assert_eq!(d.signatures.len(), 1);
        let sig = &d.signatures[0];
        assert_eq!(sig.count, 2);
        assert!(
            sig.template.starts_with("disk failure"),
            "{}",
            &sig.template[..40]
        );
        assert!(
            sig.template.len() <= MAX_MESSAGE_BYTES + TRUNCATION_MARK.len(),
            "{} bytes",
            sig.template.len()
        );
        let cut = truncated(&rec(3, Level::Error, &huge));
        assert!(cut.message.ends_with(TRUNCATION_MARK), "the cut is marked");
        assert!(cut.message.len() <= MAX_MESSAGE_BYTES + TRUNCATION_MARK.len());
    }

    #[test]
    fn a_message_cut_to_max_message_chars_read_digests_exactly_as_the_whole_message() {
        let config = SelfMonitoringConfig::default();
        let prefix = |m: &str| m.chars().take(MAX_MESSAGE_CHARS_READ).collect::<String>();
        let cases = [
            "x".repeat(MAX_MESSAGE_BYTES - 1),
            "x".repeat(MAX_MESSAGE_BYTES),
            "x".repeat(MAX_MESSAGE_BYTES + 1),
            "x".repeat(MAX_MESSAGE_BYTES + 2),
            format!("[BIG-ROW-001] {}", "y".repeat(3 * MAX_MESSAGE_BYTES)),
            "é".repeat(MAX_MESSAGE_BYTES),
            format!("a{}", "€".repeat(MAX_MESSAGE_BYTES)),
            "😀".repeat(MAX_MESSAGE_CHARS_READ + 5),
        ];
        for (i, message) in cases.iter().enumerate() {
            let digest = |m: &str| {
                let mut b = DigestBuilder::new(&config).unwrap();
                b.push(&rec(7, Level::Error, m));
                b.finish()
            };
            assert_eq!(
                digest(&prefix(message)),
                digest(message),
                "case {i}: {} bytes",
                message.len()
            );
        }
    }

    #[test]
    fn the_signature_cap_sends_further_records_to_a_counted_overflow_signature() {
        let config = SelfMonitoringConfig::default();
        let mut b = DigestBuilder::new(&config).unwrap().with_max_signatures(3);
        for i in 0..10 {
            let words: Vec<String> = (0..i).map(letters_word).collect();
            b.push(&rec(i, Level::Error, &format!("kind {}", words.join(" "))));
            b.push(&rec(
                100 + i,
                Level::Error,
                &format!("kind {}", words.join(" ")),
            ));
        }
        let d = b.finish();
        assert_eq!(d.signatures.len(), 4);
        let overflow = d.signatures.last().unwrap();
        assert_eq!(overflow.id, overflow_signature_id(Level::Error));
        assert!(is_overflow_signature(&overflow.id));
        assert_eq!(overflow.count, 14);
        assert_eq!(d.signatures.iter().map(|s| s.count).sum::<u64>(), 20);
        assert!(d.render(4096).contains(OVERFLOW_TEMPLATE));
    }

    /// A distinct message per `kind` (its own token count, so no two kinds share a template),
    /// carrying the code `PRB-KIND-0NN` when `coded`.
    fn kind_message(kind: usize, coded: bool) -> String {
        let words: Vec<String> = (0..kind as i64).map(letters_word).collect();
        let code = if coded {
            format!("[PRB-KIND-{:03}] ", kind)
        } else {
            String::new()
        };
        format!("{code}kind {}", words.join(" "))
    }

    /// One crash report of each runtime, as each prints it.
    pub(crate) const CRASHES: &[(&str, &str)] = &[
        (
            "python",
            "Traceback (most recent call last):\n  File \"/srv/a.py\", line 3, in f\nKeyError: 'x'",
        ),
        (
            "rust",
            "thread 'main' panicked at src/main.rs:4:5:\nindex out of bounds",
        ),
        (
            "java",
            "java.lang.IllegalStateException: pool exhausted\n\tat com.acme.Pool.get(Pool.java:42)\n\tat com.acme.Api.handle(Api.java:7)",
        ),
        (
            "java caused by",
            "request failed\nCaused by: java.io.IOException: broken pipe",
        ),
        (
            "java elided frames",
            "java.lang.RuntimeException: wrapped\n... 12 more",
        ),
        (
            "java uncaught",
            "Exception in thread \"main\" java.lang.NullPointerException",
        ),
        (
            "dotnet",
            "System.InvalidOperationException: Sequence contains no elements\n   at System.Linq.Enumerable.First(IEnumerable source)\n   at Acme.Orders.Load() in /src/Orders.cs:line 12",
        ),
        (
            "dotnet inner",
            "System.AggregateException: one or more errors\n--- End of inner exception stack trace ---",
        ),
        (
            "go",
            "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1f2c]\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/main.go:12 +0x1c",
        ),
        ("node", "TypeError: x is undefined\n    at f (/srv/a.js:1:2)"),
        (
            "node anonymous",
            "Error: boom\n    at <anonymous>\r\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
        ),
    ];

    #[test]
    fn crash_reports_of_every_runtime_are_tracebacks() {
        for (runtime, message) in CRASHES {
            assert!(looks_like_traceback(message), "{runtime}: {message:?}");
        }
    }

    #[test]
    fn prose_and_single_frame_lines_are_not_tracebacks() {
        for message in [
            "retrying at least once",
            "job failed\n  at least one worker is down",
            "job failed\nat com.acme.Pool.get(Pool.java:42)",
            "caused by: a full disk",
            "still 12 more to go\n... and 12 more",
            "panic: not a Go crash without its goroutine dump",
            "goroutine pool resized to 8",
            // One frame of a trace logged one line per record: the record is not a crash report.
            "\tat com.acme.Pool.get(Pool.java:42)",
            "   at Acme.Orders.Load() in /src/Orders.cs:line 12",
        ] {
            assert!(!looks_like_traceback(message), "{message:?}");
        }
    }

    #[test]
    fn a_flood_of_distinct_warnings_does_not_push_coded_errors_and_a_traceback_out() {
        let config = SelfMonitoringConfig::default();
        let mut b = DigestBuilder::new(&config).unwrap().with_max_signatures(5);
        let mut id = 0;
        let mut next = || {
            id += 1;
            id
        };
        for k in 1..=40 {
            b.push(&rec(next(), Level::Warning, &kind_message(k, false)));
        }
        for i in 0..7 {
            b.push(&rec(
                next(),
                Level::Error,
                &format!("[DB-LOCK-003] database is locked after {i} retries"),
            ));
        }
        let traceback = "[GIT-SYNC-001] Traceback (most recent call last):\n  File \"/srv/sync.py\", line 42, in run\nValueError: empty repo";
        b.push(&rec(next(), Level::Critical, traceback));
        for k in 41..=60 {
            b.push(&rec(next(), Level::Warning, &kind_message(k, false)));
        }
        assert_eq!(b.evicted_signatures(), 2);
        let d = b.finish();
        let db = d
            .signatures
            .iter()
            .find(|s| s.error_codes.iter().any(|c| c.as_str() == "DB-LOCK-003"))
            .expect("the coded errors keep their signature");
        assert_eq!((db.count, db.level), (7, Level::Error));
        assert!(db.template.starts_with("[DB-LOCK-003] database is locked"));
        let sync = d
            .signatures
            .iter()
            .find(|s| s.error_codes.iter().any(|c| c.as_str() == "GIT-SYNC-001"))
            .expect("the coded traceback keeps its signature");
        assert!(sync.has_traceback && sync.level == Level::Critical);
        assert!(!is_overflow_signature(&db.id) && !is_overflow_signature(&sync.id));
        let overflow: Vec<&Signature> = d
            .signatures
            .iter()
            .filter(|s| is_overflow_signature(&s.id))
            .collect();
        assert_eq!(overflow.len(), 1, "only warnings overflowed");
        assert_eq!(overflow[0].id, overflow_signature_id(Level::Warning));
        assert_eq!(overflow[0].count, 60 - 3);
        assert_eq!(d.signatures.iter().map(|s| s.count).sum::<u64>(), 68);
        let ids: Vec<i64> = d.signatures[..5].iter().map(|s| s.first_id).collect();
        assert_eq!(
            ids,
            [3, 4, 5, 41, 48],
            "kept in first-seen order, overflow last"
        );
    }

    #[test]
    fn overflow_signatures_are_per_level_and_keep_the_codes_they_absorbed() {
        let config = SelfMonitoringConfig::default();
        let mut b = DigestBuilder::new(&config).unwrap().with_max_signatures(2);
        b.push(&rec(1, Level::Critical, &kind_message(1, true)));
        b.push(&rec(2, Level::Critical, &kind_message(2, true)));
        // Worth less than what is kept, or as much: these overflow, each by its level.
        b.push(&rec(3, Level::Error, &kind_message(3, true)));
        b.push(&rec(4, Level::Critical, &kind_message(4, true)));
        b.push(&rec(5, Level::Warning, &kind_message(5, false)));
        let d = b.finish();
        let codes = |s: &Signature| -> Vec<String> {
            s.error_codes
                .iter()
                .map(|c| c.as_str().to_string())
                .collect()
        };
        let by_id = |id: String| d.signatures.iter().find(|s| s.id == id).unwrap();
        let critical = by_id(overflow_signature_id(Level::Critical));
        assert_eq!(codes(critical), ["PRB-KIND-004"]);
        assert_eq!((critical.count, critical.level), (1, Level::Critical));
        let error = by_id(overflow_signature_id(Level::Error));
        assert_eq!(codes(error), ["PRB-KIND-003"]);
        let warning = by_id(overflow_signature_id(Level::Warning));
        assert!(warning.error_codes.is_empty());
        assert_eq!(d.signatures.len(), 5);
        let text = d.render(100_000);
        assert!(text.contains("codes=[PRB-KIND-004]"), "{text}");
    }

    proptest::proptest! {
        /// Whatever arrives in whatever order: no record is lost, the cap holds, and every
        /// signature worth at least as much as some rank keeps its own signature and all its
        /// records whenever no more than the cap of such signatures turn up.
        #[test]
        fn the_cap_keeps_the_signatures_most_worth_keeping(
            cap in 1usize..6,
            records in proptest::collection::vec((1usize..16, 0usize..3), 1..80),
        ) {
            let level_of = |k: usize| Level::ALL[k % 5];
            let coded = |k: usize| k % 3 == 0;
            let traceback = |k: usize| k % 4 == 0;
            let message = |k: usize| {
                let m = kind_message(k, coded(k));
                if traceback(k) {
                    format!("{m}\nTraceback (most recent call last):\n  File \"x.py\"")
                } else {
                    m
                }
            };
            let config = SelfMonitoringConfig::default();
            let mut b = DigestBuilder::new(&config).unwrap().with_max_signatures(cap);
            let mut per_kind: BTreeMap<usize, u64> = BTreeMap::new();
            let mut id = 0;
            for &(k, repeat) in &records {
                for _ in 0..=repeat {
                    id += 1;
                    b.push(&rec(id, level_of(k), &message(k)));
                    *per_kind.entry(k).or_default() += 1;
                }
            }
            let d = b.finish();
            proptest::prop_assert_eq!(d.signatures.iter().map(|s| s.count).sum::<u64>(), id as u64);
            let kept: Vec<&Signature> =
                d.signatures.iter().filter(|s| !is_overflow_signature(&s.id)).collect();
            proptest::prop_assert!(kept.len() <= cap);
            let rank = |k: usize| keep_rank(level_of(k), coded(k), traceback(k));
            for threshold in 0..=keep_rank(Level::Critical, true, true) {
                let worthy: Vec<usize> =
                    per_kind.keys().copied().filter(|&k| rank(k) >= threshold).collect();
                if worthy.len() > cap {
                    continue;
                }
                for k in worthy {
                    let sample = message(k);
                    let own = kept.iter().find(|s| s.sample_messages.contains(&sample));
                    proptest::prop_assert!(own.is_some(), "kind {} lost its signature", k);
                    proptest::prop_assert_eq!(own.unwrap().count, per_kind[&k]);
                }
            }
            // Every code reached the digest, on a kept signature or on an overflow signature.
            for &k in per_kind.keys().filter(|&&k| coded(k)) {
                let code = format!("PRB-KIND-{k:03}");
                proptest::prop_assert!(d
                    .signatures
                    .iter()
                    .any(|s| s.error_codes.iter().any(|c| c.as_str() == code)));
            }
        }
    }

    #[test]
    fn template_ignore_rules_apply_to_final_templates_and_are_counted() {
        let mut c = SelfMonitoringConfig::default();
        c.ignore.templates.push("^heartbeat from <\\*>$".into());
        let mut recs: Vec<_> = ["n-a", "n-b"]
            .iter()
            .enumerate()
            .map(|(i, h)| rec(i as i64, Level::Info, &format!("heartbeat from {h}")))
            .collect();
        recs.push(rec(9, Level::Error, "disk full"));
        let d = Digest::build(&recs, &c).unwrap();
        assert_eq!(d.signatures.len(), 1);
        // Two names after `from` are two templates until a third turns up; the rule written
        // against the generalised form covers both.
        assert_eq!((d.ignored_signatures, d.ignored_records), (2, 2));
        recs.push(rec(10, Level::Info, "heartbeat from n-c"));
        let d = Digest::build(&recs, &c).unwrap();
        assert_eq!(d.signatures.len(), 1);
        assert_eq!((d.ignored_signatures, d.ignored_records), (1, 3));
    }

    #[test]
    fn samples_are_capped_and_stripped_of_controls() {
        let s = sanitize_sample(&format!("a\u{202E}b\u{0007}c{}", "x".repeat(1000)));
        assert!(s.starts_with("abc"));
        assert!(s.chars().count() <= MAX_SAMPLE_CHARS + 1);
    }
}
